//! SMTP connections for the delivery engine, kept by Nashra rather than lettre's pool.
//!
//! Two reasons. lettre's pool connects without `TCP_NODELAY`, and it writes a message and its
//! closing "." in two writes: with Nagle's algorithm and the relay's delayed ACK that costs
//! ~40 ms per message, which capped a 16-session send at about 400 messages a second. And its
//! pool size only caps idle connections; the dispatcher bounds what is in flight anyway, so a
//! plain stack of idle connections is all the pooling needed.
//!
//! lettre still speaks the protocol: EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use lettre::{
    address::Envelope,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, TlsParameters},
        commands::{Data, Mail, Rcpt},
        extension::ClientId,
    },
};
use tokio::net::TcpStream;

use super::transport::SendError;
use crate::config::{self, Settings};

/// An idle connection older than this is checked with NOOP before reuse.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);
/// An idle connection older than this is closed instead of reused.
const MAX_IDLE: Duration = Duration::from_secs(60);

pub struct SmtpPool {
    host: String,
    port: u16,
    tls: config::Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

type SmtpError = lettre::transport::smtp::Error;

/// A failure before lettre had a connection to report on, or lettre's own error.
#[derive(Debug)]
enum Failure {
    Io(std::io::Error),
    Smtp(SmtpError),
}

impl From<SmtpError> for Failure {
    fn from(e: SmtpError) -> Self {
        Failure::Smtp(e)
    }
}

impl SmtpPool {
    pub fn new(settings: &Settings) -> SmtpPool {
        let s = &settings.smtp;
        SmtpPool {
            host: s.host.clone(),
            port: s.port,
            tls: s.tls,
            credentials: (!s.username.is_empty())
                .then(|| Credentials::new(s.username.clone(), s.password.clone())),
            hello: ClientId::Domain(s.helo_name.clone()),
            timeout: s.timeout,
            max_idle: settings.delivery.concurrency.max(1),
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let tls = || TlsParameters::new(self.host.clone());
        let mut conn = match self.tls {
            config::Tls::Tls => {
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    Some(tls()?),
                    None,
                )
                .await?
            }
            _ => {
                let stream = tokio::time::timeout(
                    self.timeout,
                    TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                .map_err(|_| {
                    Failure::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connect timed out",
                    ))
                })?
                .map_err(Failure::Io)?;
                stream.set_nodelay(true).map_err(Failure::Io)?;
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello).await?
            }
        };
        if self.tls == config::Tls::Starttls {
            conn.starttls(tls()?, &self.hello).await?;
        }
        if let Some(c) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c).await?;
        }
        Ok(conn)
    }

    async fn checkout(&self) -> Result<AsyncSmtpConnection, Failure> {
        loop {
            let popped = self.idle.lock().expect("not poisoned").pop();
            match popped {
                Some((conn, since)) if since.elapsed() > MAX_IDLE => drop(conn),
                Some((mut conn, since)) => {
                    if since.elapsed() < CHECK_AFTER_IDLE || conn.test_connected().await {
                        return Ok(conn);
                    }
                }
                None => return self.connect().await,
            }
        }
    }

    /// Sends one message built by `message::MessageTemplate` (7-bit, CRLF, no line starting
    /// with '.'). On success the connection goes back to the pool; after an error it is closed.
    pub async fn send(&self, envelope: &Envelope, mut bytes: Vec<u8>) -> Result<(), SendError> {
        // The end-of-data line goes in the same buffer, so the body is one write.
        if !bytes.ends_with(b"\r\n") {
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b".\r\n");
        let mut conn = self.checkout().await.map_err(classify)?;
        let mut data_sent = false;
        let res = tokio::time::timeout(
            self.timeout * 2,
            transaction(&mut conn, envelope, &bytes, &mut data_sent),
        )
        .await;
        // Once the message itself has gone out, a lost connection may have lost only the
        // relay's "250": retrying could deliver it twice, so it counts as an attempt (bounded
        // by max_attempts) instead of a free retry like an unreachable relay.
        let after_data = |e: SendError| match e {
            SendError::Connection(m) if data_sent => {
                SendError::Transient(format!("no reply after the message was sent: {m}"))
            }
            e => e,
        };
        match res {
            Ok(Ok(())) => {
                let mut idle = self.idle.lock().expect("not poisoned");
                if idle.len() < self.max_idle {
                    idle.push((conn, Instant::now()));
                }
                Ok(())
            }
            Ok(Err(e)) => {
                conn.abort().await;
                Err(after_data(classify(Failure::Smtp(e))))
            }
            Err(_) => Err(after_data(SendError::Connection(
                "SMTP transaction timed out".into(),
            ))),
        }
    }
}

/// MAIL, RCPT, DATA, then the message and its final "." in one write.
///
/// lettre's own `send` runs every byte through its dot-stuffing codec, which was most of the
/// sender's CPU per message; our messages never have a line starting with '.' (headers are
/// ours, bodies are base64), so they go out as they are.
async fn transaction(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    bytes: &[u8],
    data_sent: &mut bool,
) -> Result<(), SmtpError> {
    conn.command(Mail::new(envelope.from().cloned(), vec![]))
        .await?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), vec![])).await?;
    }
    conn.command(Data).await?;
    *data_sent = true;
    conn.command(Body(bytes)).await?;
    Ok(())
}

/// The DATA payload, already ending with its "." line, written as one command.
struct Body<'a>(&'a [u8]);

impl std::fmt::Display for Body<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Our messages are ASCII by construction; anything else is refused rather than mangled.
        f.write_str(std::str::from_utf8(self.0).map_err(|_| std::fmt::Error)?)
    }
}

/// 4xx → retry later; 5xx → this address will not take it; no reply → the relay is the problem.
fn classify(f: Failure) -> SendError {
    match f {
        Failure::Io(e) => SendError::Connection(e.to_string()),
        Failure::Smtp(e) => {
            let msg = error_text(&e);
            if e.is_permanent() {
                SendError::Permanent(msg)
            } else if e.is_transient() {
                SendError::Transient(msg)
            } else {
                SendError::Connection(msg)
            }
        }
    }
}

/// The server's reply ("550 5.1.1 no such user") when there was one, else the error chain.
fn error_text(e: &SmtpError) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s.chars().take(500).collect()
}
