//! DKIM signing on threads of its own. An RSA signature is about half a millisecond of CPU,
//! too long for an async worker; `spawn_blocking` per message grew tokio's blocking pool to
//! one thread per message in flight (each with its allocator arena: the sender's memory
//! grew by a third) and paid a thread hand-off each. Here a fixed set of threads, one per
//! core, takes messages from one queue: a thread that finishes a signature takes the next
//! one waiting without sleeping, so under load the messages are signed back to back in
//! batches, and a hand-off costs only when the queue ran dry.

use std::{
    sync::{Arc, Mutex},
    thread,
};

use anyhow::Context;
use tokio::sync::{mpsc, oneshot};

use crate::dkim;

/// Messages waiting to be signed at most (the dispatcher's concurrency bounds them anyway).
const QUEUE: usize = 1024;

struct Job {
    message: Vec<u8>,
    now: i64,
    reply: oneshot::Sender<Vec<u8>>,
}

/// The signing threads' queue; the threads end when every clone of it is gone.
#[derive(Clone)]
pub struct Signing {
    tx: mpsc::Sender<Job>,
}

impl Signing {
    pub fn start(signer: Arc<dkim::Signer>) -> anyhow::Result<Signing> {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let threads = thread::available_parallelism().map_or(1, |n| n.get().min(4));
        for i in 0..threads {
            let rx = rx.clone();
            let signer = signer.clone();
            thread::Builder::new()
                .name(format!("dkim-{i}"))
                .spawn(move || {
                    loop {
                        // One thread waits on the queue at a time; the others wait for it.
                        let job = rx.lock().expect("not poisoned").blocking_recv();
                        let Some(job) = job else { return };
                        let signed = signer.sign(&job.message, job.now);
                        let _ = job.reply.send(signed);
                    }
                })
                .context("cannot start a DKIM signing thread")?;
        }
        Ok(Signing { tx })
    }

    /// `message` with its signatures (of `now`, seconds).
    pub async fn sign(&self, message: Vec<u8>, now: i64) -> anyhow::Result<Vec<u8>> {
        let (reply, signed) = oneshot::channel();
        self.tx
            .send(Job {
                message,
                now,
                reply,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the DKIM signing threads have stopped"))?;
        signed.await.context("a DKIM signing thread stopped")
    }
}
