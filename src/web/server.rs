//! The HTTP server loop: hyper's HTTP/1 connections with every wait bounded.
//!
//! `axum::serve` has no header-read, idle or body timeouts and no limit on connections, so
//! partial requests, slow bodies and idle keep-alives could stay open for ever until file
//! descriptors ran out. Here a client must send a request's headers within
//! `server.header_timeout` (hyper's timer also runs while a keep-alive connection waits for
//! its next request, so it is the idle limit too), each piece of a body must follow the last
//! within that time, a whole request is answered within `server.request_timeout`, a client
//! that stops reading the answer is cut off after the same header timeout, and at most
//! `server.max_connections` are open (beyond that, a new connection is closed at once), and one
//! client address (an IPv6 /64) holds at most an eighth of them, unless it is a proxy in
//! `server.trusted_proxies` whose `client_ip_header` names the clients behind it. At shutdown, idle connections close at once and requests in progress get a
//! short grace.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinSet,
    time::Sleep,
};
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use crate::{config::Server, shutdown::Shutdown};

/// How long requests in progress may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The largest request head (request line and headers) read.
const MAX_HEAD: usize = 64 * 1024;

pub async fn serve(
    listener: TcpListener,
    router: Router,
    cfg: &Server,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    raise_fd_limit();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        cfg.request_timeout,
    ));
    let body_timeout = cfg.header_timeout;
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let per_client = PerClient::new((cfg.max_connections / 8).max(8));
    // A proxy whose header names the clients speaks for many of them: it is not one client.
    let proxies = if cfg.client_ip_header.is_empty() {
        Vec::new()
    } else {
        cfg.trusted_proxies.clone()
    };
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, most likely: let connections close.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!("too many open connections; closing a new one");
                    continue;
                };
                let client = if proxies.iter().any(|c| c.contains(peer.ip())) {
                    None
                } else {
                    match per_client.enter(peer.ip()) {
                        Some(c) => Some(c),
                        None => continue,
                    }
                };
                let _ = stream.set_nodelay(true);
                let stream = WriteDeadline::new(stream, cfg.header_timeout);
                let router = router.clone();
                let svc = service_fn(move |req: hyper::Request<Incoming>| {
                    let router = router.clone();
                    async move {
                        let mut req = req.map(|b| {
                            MinRate::new(TimeoutBody::new(body_timeout, b), body_timeout)
                        });
                        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                        router.oneshot(req).await
                    }
                });
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
                conns.spawn(async move {
                    let _ = conn.await;
                    drop((permit, client));
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.recv() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still open after the shutdown grace; closing them");
    }
    conns.abort_all();
    Ok(())
}

/// Raises this process's open-file limit to the hard limit: each connection, database file
/// and SMTP session holds a descriptor, and the default soft limit is often 1024. (On macOS
/// the crate also respects `kern.maxfilesperproc`, which the hard limit does not show.)
fn raise_fd_limit() {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::debug!(error = %e, "open-file limit not raised");
    }
}

/// The slowest a body may arrive on average once its grace (`server.header_timeout`) is
/// over: a body trickled a byte every few seconds would otherwise hold a connection for the
/// whole request timeout. Sign-up forms and API calls arrive in one packet; a 2 MB body at
/// this rate would outlast the request timeout anyway.
const MIN_BODY_RATE: f64 = 1024.0;

/// A request body that must keep arriving at [`MIN_BODY_RATE`] on average after `grace`.
struct MinRate<B> {
    inner: Pin<Box<B>>,
    start: tokio::time::Instant,
    grace: Duration,
    received: u64,
    deadline: Pin<Box<Sleep>>,
}

impl<B> MinRate<B> {
    fn new(inner: B, grace: Duration) -> MinRate<B> {
        let start = tokio::time::Instant::now();
        MinRate {
            inner: Box::pin(inner),
            start,
            grace,
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(start + grace)),
        }
    }
}

impl<B> http_body::Body for MinRate<B>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match self.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    use bytes::Buf;
                    self.received += data.remaining() as u64;
                    let at = self.start
                        + self.grace
                        + Duration::from_secs_f64(self.received as f64 / MIN_BODY_RATE);
                    self.deadline.as_mut().reset(at);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Some(Err("the request body arrives too slowly".into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Open connections per client address, when clients connect directly.
struct PerClient {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection counted against its client until dropped.
struct ClientSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerClient {
    fn new(max: usize) -> PerClient {
        PerClient {
            max,
            open: Arc::default(),
        }
    }

    fn enter(&self, ip: IpAddr) -> Option<ClientSlot> {
        // One client holds a whole IPv6 /64, as one household or server does.
        let ip = match ip {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into())
            }
            IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
            v4 => v4,
        };
        let mut open = self.open.lock().expect("not poisoned");
        let n = open.entry(ip).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().expect("not poisoned");
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A connection whose writes must make progress within `limit`: a client that stops reading
/// the answer (its receive window full) is cut off instead of holding the connection.
struct WriteDeadline {
    inner: TcpStream,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
    armed: bool,
}

impl WriteDeadline {
    fn new(inner: TcpStream, limit: Duration) -> WriteDeadline {
        WriteDeadline {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            armed: false,
        }
    }

    /// Pending write: start the clock if it is not running, and fail once it ran out.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if !self.armed {
            self.armed = true;
            let at = tokio::time::Instant::now() + self.limit;
            self.timer.as_mut().reset(at);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.stalled(cx),
            ready => {
                self.armed = false;
                ready
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.stalled(cx),
            ready => {
                self.armed = false;
                ready
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
