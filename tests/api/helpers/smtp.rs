//! A real SMTP server inside the test process, with faults on demand.
//!
//! It speaks enough ESMTP for lettre (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps every
//! accepted message, and can be told to answer 421/451/550 or drop the connection for chosen
//! recipients (or for everyone), to go down entirely (connections refused) and come back on the
//! same port, to accept connections and then say nothing at all, to take its time over each
//! message, and whether to offer SMTPUTF8.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::JoinHandle,
};

#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: Vec<u8>,
    /// The parameters after `MAIL FROM:<…>` (e.g. "SMTPUTF8").
    pub mail_params: String,
    /// The envelope sender (`MAIL FROM:<…>`).
    pub from: String,
    /// When the message's final "." arrived.
    pub at: std::time::Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer RCPT with this code (421 also closes the connection).
    Code(u16),
    /// Close the connection at RCPT without a word.
    Drop,
    /// Take the whole message, then close without answering: the sender cannot know it arrived.
    DropAfterData,
}

struct State {
    messages: Vec<Received>,
    /// recipient (lower-case) → (fault, how many more times; usize::MAX = always)
    faults: HashMap<String, (Fault, usize)>,
    /// A fault for every recipient (checked after the per-recipient ones).
    fault_all: Option<Fault>,
    /// Every RCPT seen, successful or not.
    attempts: HashMap<String, usize>,
    /// Accept connections but never send a greeting (nor anything else).
    silent: bool,
    /// How long to take before answering the end of each message.
    delay: Duration,
    /// How long to take before answering each RCPT and each message's end (a slow relay).
    step_delay: Duration,
    smtputf8: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            messages: Vec::new(),
            faults: HashMap::new(),
            fault_all: None,
            attempts: HashMap::new(),
            silent: false,
            delay: Duration::ZERO,
            step_delay: Duration::ZERO,
            smtputf8: true,
        }
    }
}

pub struct TestSmtp {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl TestSmtp {
    pub async fn start() -> TestSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = TestSmtp {
            addr,
            state: Arc::default(),
            arrived: Arc::new(Notify::new()),
            server: Mutex::new(None),
        };
        s.serve(listener);
        s
    }

    fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let arrived = self.arrived.clone();
        let handle = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    break;
                };
                conns.spawn(session(sock, state.clone(), arrived.clone()));
            }
        });
        *self.server.lock().unwrap() = Some(handle);
    }

    /// Stops listening and cuts every open connection: the relay is down.
    pub fn go_down(&self) {
        if let Some(h) = self.server.lock().unwrap().take() {
            h.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn come_back(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Every recipient gets `fault` (None: back to normal).
    pub fn fault_all(&self, fault: Option<Fault>) {
        self.state.lock().unwrap().fault_all = fault;
    }

    /// Accepts connections and then says nothing (`false`: normal again, for new connections).
    pub fn set_silent(&self, silent: bool) {
        self.state.lock().unwrap().silent = silent;
    }

    /// Takes `d` over each message before answering its final ".".
    pub fn set_delay(&self, d: Duration) {
        self.state.lock().unwrap().delay = d;
    }

    /// Takes `d` before answering each RCPT and again before answering each message's ".".
    pub fn set_step_delay(&self, d: Duration) {
        self.state.lock().unwrap().step_delay = d;
    }

    /// Whether EHLO offers SMTPUTF8 (it does by default).
    pub fn set_smtputf8(&self, on: bool) {
        self.state.lock().unwrap().smtputf8 = on;
    }

    pub fn fault(&self, rcpt: &str, fault: Fault, times: usize) {
        self.state
            .lock()
            .unwrap()
            .faults
            .insert(rcpt.to_lowercase(), (fault, times));
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap().messages.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().messages.len()
    }

    pub fn attempts(&self, rcpt: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .attempts
            .get(&rcpt.to_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Messages received per recipient.
    pub fn per_recipient(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for r in self.state.lock().unwrap().messages.iter() {
            for t in &r.to {
                *m.entry(t.to_lowercase()).or_insert(0) += 1;
            }
        }
        m
    }

    pub fn messages_to(&self, rcpt: &str) -> Vec<Received> {
        let rcpt = rcpt.to_lowercase();
        self.messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.to_lowercase() == rcpt))
            .collect()
    }

    /// Waits until at least `n` messages have arrived in all, or panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            if self.count() >= n {
                return self.messages();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {n} messages, got {} after {timeout:?}",
                    self.count()
                );
            }
        }
    }
}

async fn session(sock: TcpStream, state: Arc<Mutex<State>>, arrived: Arc<Notify>) {
    if state.lock().unwrap().silent {
        // Hold the connection open and say nothing, as a wedged relay does.
        let _held = &sock;
        std::future::pending::<()>().await;
    }
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let mut mail_params = String::new();
    let mut mail_from = String::new();
    if w.write_all(b"220 test.local ESMTP ready\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut rcpts: Vec<String> = Vec::new();
    let mut drop_after_data = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let cmd = String::from_utf8_lossy(&line).trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: Vec<u8> = if upper.starts_with("EHLO") {
            if state.lock().unwrap().smtputf8 {
                b"250-test.local\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 52428800\r\n".to_vec()
            } else {
                b"250-test.local\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n".to_vec()
            }
        } else if upper.starts_with("HELO") {
            b"250 test.local\r\n".to_vec()
        } else if upper.starts_with("MAIL FROM:") {
            rcpts.clear();
            mail_params = cmd.split_once('>').map_or("", |(_, p)| p).trim().to_owned();
            mail_from = cmd
                .split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .map_or("", |(a, _)| a)
                .to_owned();
            b"250 2.1.0 ok\r\n".to_vec()
        } else if upper.starts_with("RCPT TO:") {
            let addr = cmd[8..]
                .trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .to_lowercase();
            let step = state.lock().unwrap().step_delay;
            if !step.is_zero() {
                tokio::time::sleep(step).await;
            }
            let fault = {
                let mut st = state.lock().unwrap();
                *st.attempts.entry(addr.clone()).or_insert(0) += 1;
                match st.faults.get_mut(&addr) {
                    Some((f, n)) if *n > 0 => {
                        if *n != usize::MAX {
                            *n -= 1;
                        }
                        Some(*f)
                    }
                    _ => st.fault_all,
                }
            };
            match fault {
                Some(Fault::Drop) => return,
                Some(Fault::DropAfterData) => {
                    drop_after_data = true;
                    rcpts.push(addr);
                    b"250 2.1.5 ok\r\n".to_vec()
                }
                Some(Fault::Code(421)) => {
                    let _ = w.write_all(b"421 4.3.2 service shutting down\r\n").await;
                    return;
                }
                Some(Fault::Code(451)) => b"451 4.3.0 try again later\r\n".to_vec(),
                Some(Fault::Code(550)) => b"550 5.1.1 no such user here\r\n".to_vec(),
                Some(Fault::Code(c)) => format!("{c} fault\r\n").into_bytes(),
                None => {
                    rcpts.push(addr);
                    b"250 2.1.5 ok\r\n".to_vec()
                }
            }
        } else if upper == "DATA" {
            if w.write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            let mut data = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == b".\r\n" || line == b".\n" {
                    break;
                }
                let l = if line.starts_with(b"..") {
                    &line[1..]
                } else {
                    &line[..]
                };
                data.extend_from_slice(l);
            }
            let delay = {
                let st = state.lock().unwrap();
                st.delay + st.step_delay
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            state.lock().unwrap().messages.push(Received {
                to: std::mem::take(&mut rcpts),
                data,
                mail_params: mail_params.clone(),
                from: mail_from.clone(),
                at: std::time::Instant::now(),
            });
            arrived.notify_waiters();
            if drop_after_data {
                return;
            }
            b"250 2.0.0 queued\r\n".to_vec()
        } else if upper == "RSET" {
            rcpts.clear();
            b"250 ok\r\n".to_vec()
        } else if upper == "NOOP" {
            b"250 ok\r\n".to_vec()
        } else if upper == "QUIT" {
            let _ = w.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"502 5.5.2 command not recognized\r\n".to_vec()
        };
        if w.write_all(&reply).await.is_err() {
            return;
        }
    }
}
