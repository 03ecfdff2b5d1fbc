//! The relays the bench sends into. Postfix's `smtp-sink`, the wire-speed reference, as a
//! process stopped when dropped. And a small SMTP sink of our own for the scale-out and alert
//! benchmarks: it takes every message and answers its final "." only after a fixed delay
//! (none for the alert), as a relay across a network does, and notes when it took the first
//! message and the latest; `smtp-sink` can only wait whole seconds and says nothing of when.

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Postfix's `smtp-sink` on 127.0.0.1:`port`, stopped when dropped: the wire-speed sink.
pub(super) struct PostfixSink(Child);

impl PostfixSink {
    pub(super) fn start(port: u16) -> anyhow::Result<PostfixSink> {
        let bin = super::setup::find_tool("smtp-sink")?;
        Ok(PostfixSink(
            Command::new(&bin)
                .args(["-u", "nobody", &format!("127.0.0.1:{port}"), "1024"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start smtp-sink")?,
        ))
    }
}

impl Drop for PostfixSink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct DelaySink {
    pub addr: SocketAddr,
    /// Messages taken so far.
    pub received: Arc<AtomicU64>,
    /// When the first message and the latest were taken.
    arrivals: Arc<Arrivals>,
    task: tokio::task::JoinHandle<()>,
}

/// Instants as nanoseconds after the sink started, 0 while none: atomics, so the sessions
/// note them without a lock.
struct Arrivals {
    started: Instant,
    first: AtomicU64,
    last: AtomicU64,
}

impl Arrivals {
    fn note(&self) {
        let ns = (self.started.elapsed().as_nanos() as u64).max(1);
        let _ = self
            .first
            .compare_exchange(0, ns, Ordering::Relaxed, Ordering::Relaxed);
        self.last.fetch_max(ns, Ordering::Relaxed);
    }

    fn at(&self, ns: &AtomicU64) -> Option<Instant> {
        match ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.started + Duration::from_nanos(ns)),
        }
    }
}

impl Drop for DelaySink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DelaySink {
    pub async fn start(delay: Duration) -> anyhow::Result<DelaySink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(AtomicU64::new(0));
        let arrivals = Arc::new(Arrivals {
            started: Instant::now(),
            first: AtomicU64::new(0),
            last: AtomicU64::new(0),
        });
        let (counter, noted) = (received.clone(), arrivals.clone());
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let _ = sock.set_nodelay(true);
                tokio::spawn(session(sock, delay, counter.clone(), noted.clone()));
            }
        });
        Ok(DelaySink {
            addr,
            received,
            arrivals,
            task,
        })
    }

    /// When the first message was taken, if one was.
    pub fn first_at(&self) -> Option<Instant> {
        self.arrivals.at(&self.arrivals.first)
    }

    /// When the latest message was taken, if one was.
    pub fn last_at(&self) -> Option<Instant> {
        self.arrivals.at(&self.arrivals.last)
    }
}

/// One SMTP session: every command is accepted; a message ends at "\r\n.\r\n".
async fn session(
    mut sock: TcpStream,
    delay: Duration,
    received: Arc<AtomicU64>,
    arrivals: Arc<Arrivals>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    if sock.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let mut in_data = false;
    loop {
        // Answer everything complete in the buffer.
        loop {
            if in_data {
                let Some(end) = memchr::memmem::find(&buf, b"\r\n.\r\n") else {
                    // Keep only what could still be the start of the terminator.
                    if buf.len() > 4 {
                        buf.drain(..buf.len() - 4);
                    }
                    break;
                };
                buf.drain(..end + 5);
                in_data = false;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                arrivals.note();
                // Release: whoever sees the count sees the arrival noted before it.
                received.fetch_add(1, Ordering::Release);
                if sock.write_all(b"250 2.0.0 ok\r\n").await.is_err() {
                    return;
                }
                continue;
            }
            let Some(nl) = memchr::memchr(b'\n', &buf) else {
                break;
            };
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let upper = String::from_utf8_lossy(&line).to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            } else if upper.starts_with("DATA") {
                in_data = true;
                b"354 go ahead\r\n"
            } else if upper.starts_with("QUIT") {
                let _ = sock.write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"250 ok\r\n"
            };
            if sock.write_all(reply).await.is_err() {
                return;
            }
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
