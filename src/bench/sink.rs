//! A small SMTP sink for the scale-out benchmark: it takes every message and answers its
//! final "." only after a fixed delay, as a relay across a network does. Postfix's
//! `smtp-sink` can only wait whole seconds.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

pub struct DelaySink {
    pub addr: SocketAddr,
    /// Messages taken so far.
    pub received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
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
        let counter = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let _ = sock.set_nodelay(true);
                tokio::spawn(session(sock, delay, counter.clone()));
            }
        });
        Ok(DelaySink {
            addr,
            received,
            task,
        })
    }
}

/// One SMTP session: every command is accepted; a message ends at "\r\n.\r\n".
async fn session(mut sock: TcpStream, delay: Duration, received: Arc<AtomicU64>) {
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
                tokio::time::sleep(delay).await;
                received.fetch_add(1, Ordering::Relaxed);
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
