//! SMTP connections for the delivery engine, kept by Nashra rather than lettre's pool.
//!
//! Two reasons. lettre's pool connects without `TCP_NODELAY`, and it writes a message and its
//! closing "." in two writes: with Nagle's algorithm and the relay's delayed ACK that costs
//! ~40 ms per message, which capped a 16-session send at about 400 messages a second. And its
//! pool size only caps idle connections; the dispatcher bounds what is in flight anyway, so a
//! plain stack of idle connections is all the pooling needed.
//!
//! lettre still speaks the protocol: EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA. Nashra bounds
//! every wait itself, each with `smtp.timeout`: the TCP connect, the greeting and EHLO,
//! STARTTLS, AUTH, the NOOP that checks an idle connection, and each command of a
//! transaction; and a whole message with twice that. A relay that accepts the connection and
//! then says nothing is therefore a relay that cannot be reached, not a send that hangs.

use std::{
    future::Future,
    sync::{
        Mutex,
        atomic::{AtomicU8, Ordering},
    },
    time::{Duration, Instant},
};

use lettre::{
    address::Envelope,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, TlsParameters},
        commands::{Data, Mail, Rcpt},
        extension::{ClientId, Extension, MailParameter},
    },
};
use secrecy::ExposeSecret;
use tokio::net::TcpStream;

use super::send_error::SendError;
use crate::config;

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
    /// Whether the relay offered SMTPUTF8 at its last EHLO: 0 unknown, 1 no, 2 yes.
    smtputf8: AtomicU8,
}

type SmtpError = lettre::transport::smtp::Error;

/// A failure before lettre had a connection to report on, or lettre's own error.
#[derive(Debug)]
enum Failure {
    Io(std::io::Error),
    Smtp(SmtpError),
}

/// `fut`, or a "timed out" failure naming `what` after `limit`.
async fn bounded<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, SmtpError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(Failure::Smtp),
        Err(_) => Err(timed_out(what)),
    }
}

fn timed_out(what: &str) -> Failure {
    Failure::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} timed out"),
    ))
}

impl From<SmtpError> for Failure {
    fn from(e: SmtpError) -> Self {
        Failure::Smtp(e)
    }
}

impl SmtpPool {
    /// A pool for `relay`, with `[smtp]`'s `helo_name` and `timeout`, keeping at most
    /// `max_idle` idle connections.
    pub fn new(relay: &config::Relay, smtp: &config::Smtp, max_idle: usize) -> SmtpPool {
        SmtpPool {
            host: relay.host.clone(),
            port: relay.port,
            tls: relay.tls,
            credentials: (!relay.username.is_empty()).then(|| {
                Credentials::new(
                    relay.username.clone(),
                    relay.password.expose_secret().to_owned(),
                )
            }),
            hello: ClientId::Domain(smtp.helo_name.clone()),
            timeout: smtp.timeout,
            max_idle: max_idle.max(1),
            idle: Mutex::new(Vec::new()),
            smtputf8: AtomicU8::new(0),
        }
    }

    /// Whether the relay takes SMTPUTF8 (non-ASCII addresses), as of its last greeting;
    /// `None` before any greeting.
    pub fn smtputf8(&self) -> Option<bool> {
        match self.smtputf8.load(Ordering::Relaxed) {
            1 => Some(false),
            2 => Some(true),
            _ => None,
        }
    }

    /// Greets the relay once (the connection is kept for reuse), so its extensions are known.
    pub async fn probe(&self) {
        if let Ok(conn) = self.connect().await {
            self.park(conn);
        }
    }

    fn park(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().expect("not poisoned");
        if idle.len() < self.max_idle {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let t = self.timeout;
        let tls = || TlsParameters::new(self.host.clone());
        let mut conn = match self.tls {
            config::Tls::Tls => {
                // lettre bounds the TCP connect; the TLS handshake, greeting and EHLO are ours.
                let params = tls()?;
                bounded(
                    t * 2,
                    "connect, TLS handshake and greeting",
                    AsyncSmtpConnection::connect_tokio1(
                        (self.host.as_str(), self.port),
                        Some(t),
                        &self.hello,
                        Some(params),
                        None,
                    ),
                )
                .await?
            }
            _ => {
                let stream =
                    tokio::time::timeout(t, TcpStream::connect((self.host.as_str(), self.port)))
                        .await
                        .map_err(|_| timed_out("connect"))?
                        .map_err(Failure::Io)?;
                stream.set_nodelay(true).map_err(Failure::Io)?;
                bounded(
                    t,
                    "greeting and EHLO",
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello),
                )
                .await?
            }
        };
        if self.tls == config::Tls::Starttls {
            let params = tls()?;
            bounded(t, "STARTTLS", conn.starttls(params, &self.hello)).await?;
        }
        if let Some(c) = &self.credentials {
            bounded(
                t,
                "AUTH",
                conn.auth(&[Mechanism::Plain, Mechanism::Login], c),
            )
            .await?;
        }
        let utf8 = conn.server_info().supports_feature(Extension::SmtpUtfEight);
        self.smtputf8
            .store(if utf8 { 2 } else { 1 }, Ordering::Relaxed);
        Ok(conn)
    }

    async fn checkout(&self) -> Result<AsyncSmtpConnection, Failure> {
        loop {
            let popped = self.idle.lock().expect("not poisoned").pop();
            match popped {
                Some((conn, since)) if since.elapsed() > MAX_IDLE => drop(conn),
                Some((mut conn, since)) => {
                    if since.elapsed() < CHECK_AFTER_IDLE
                        || tokio::time::timeout(self.timeout, conn.test_connected())
                            .await
                            .unwrap_or(false)
                    {
                        return Ok(conn);
                    }
                }
                None => return self.connect().await,
            }
        }
    }

    /// Sends one message built by `message::MessageTemplate` (CRLF, no line starting with
    /// '.'), already ending with its "." line (see [`terminate`]). On success the connection
    /// goes back to the pool; after an error it is closed. A connection is had by
    /// `connect_by` (so another relay has time left), and the whole of it ends by `deadline`
    /// (the caller's: at most twice `smtp.timeout`, a third of the lease).
    ///
    /// A refusal before the recipient (at the greeting, AUTH or MAIL FROM: an account
    /// suspended, a sender not allowed) is the relay's, not the reader's: it counts as a relay
    /// that cannot be reached, never as a bounce.
    pub async fn send(
        &self,
        envelope: &Envelope,
        bytes: &[u8],
        connect_by: tokio::time::Instant,
        deadline: tokio::time::Instant,
    ) -> Result<(), SendError> {
        let relay_refused = |e: SendError| match e {
            SendError::Permanent(m) | SendError::Transient(m) => {
                SendError::Connection(format!("the relay refused us: {m}"))
            }
            e => e,
        };
        let mut conn = tokio::time::timeout_at(connect_by.min(deadline), self.checkout())
            .await
            .map_err(|_| classify(timed_out("connecting to the relay")))?
            .map_err(|f| relay_refused(classify(f)))?;
        let ascii = |a: &lettre::Address| AsRef::<str>::as_ref(a).is_ascii();
        let utf8 =
            envelope.from().is_some_and(|a| !ascii(a)) || envelope.to().iter().any(|a| !ascii(a));
        if utf8 && !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            self.park(conn);
            // The relay's limitation, not the reader's address: retried, never a bounce.
            return Err(SendError::Transient(
                "the relay does not offer SMTPUTF8, needed for this non-ASCII address".into(),
            ));
        }
        let mut data_sent = false;
        let mut mail_taken = false;
        let res = tokio::time::timeout_at(
            deadline,
            transaction(
                &mut conn,
                envelope,
                bytes,
                utf8,
                self.timeout,
                &mut data_sent,
                &mut mail_taken,
            ),
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
                self.park(conn);
                Ok(())
            }
            Ok(Err(Failure::Smtp(e))) if e.is_permanent() || e.is_transient() => {
                // The relay answered: say goodbye politely, but not past the deadline.
                let _ = tokio::time::timeout_at(deadline, conn.abort()).await;
                let e = after_data(classify(Failure::Smtp(e)));
                Err(if mail_taken { e } else { relay_refused(e) })
            }
            // A relay that greeted us and then stalls on this message (a tarpit for one
            // recipient, say) is not down: the row spends an attempt and comes back later,
            // instead of pausing the whole send for ever.
            Ok(Err(Failure::Io(e))) if e.kind() == std::io::ErrorKind::TimedOut => {
                Err(SendError::Transient(e.to_string()))
            }
            Err(_) => Err(SendError::Transient("SMTP transaction timed out".into())),
            // A broken connection: drop it without waiting on a QUIT.
            Ok(Err(f)) => Err(after_data(classify(f))),
        }
    }
}

/// Adds the end-of-data line to a message, so that the body goes out in one write.
pub fn terminate(bytes: &mut Vec<u8>) {
    if !bytes.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b".\r\n");
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
    utf8: bool,
    t: Duration,
    data_sent: &mut bool,
    mail_taken: &mut bool,
) -> Result<(), Failure> {
    let params = if utf8 {
        vec![MailParameter::SmtpUtfEight]
    } else {
        vec![]
    };
    bounded(
        t,
        "MAIL",
        conn.command(Mail::new(envelope.from().cloned(), params)),
    )
    .await?;
    *mail_taken = true;
    for to in envelope.to() {
        bounded(t, "RCPT", conn.command(Rcpt::new(to.clone(), vec![]))).await?;
    }
    bounded(t, "DATA", conn.command(Data)).await?;
    *data_sent = true;
    bounded(t, "the message", conn.command(Body(bytes))).await?;
    Ok(())
}

/// The DATA payload, already ending with its "." line, written as one command.
struct Body<'a>(&'a [u8]);

impl std::fmt::Display for Body<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Our messages are UTF-8 by construction (ASCII unless a header carries an SMTPUTF8
        // address); anything else is refused rather than mangled.
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
