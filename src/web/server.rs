//! The HTTP server loop: hyper's HTTP/1 connections with every wait bounded.
//!
//! `axum::serve` has no header-read, idle or body timeouts and no limit on connections, so
//! partial requests, slow bodies and idle keep-alives could stay open for ever until file
//! descriptors ran out. Here a client must send a request's headers within
//! `server.header_timeout` (hyper's timer also runs while a keep-alive connection waits for
//! its next request, so it is the idle limit too), each piece of a body must follow the last
//! within that time, a whole request is answered within `server.request_timeout`, and at most
//! `server.max_connections` are open (beyond that, a new connection is closed at once). At
//! shutdown, idle connections close at once and requests in progress get a short grace.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{net::TcpListener, sync::Semaphore, sync::watch, task::JoinSet};
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use crate::config::Server;

/// How long requests in progress may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The largest request head (request line and headers) read.
const MAX_HEAD: usize = 64 * 1024;

pub async fn serve(
    listener: TcpListener,
    router: Router,
    cfg: &Server,
    mut shutdown: watch::Receiver<bool>,
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
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let svc = service_fn(move |req: hyper::Request<Incoming>| {
                    let router = router.clone();
                    async move {
                        let mut req = req.map(|b| TimeoutBody::new(body_timeout, b));
                        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                        router.oneshot(req).await
                    }
                });
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
                conns.spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = async { let _ = shutdown.wait_for(|v| *v).await; } => break,
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
/// and SMTP session holds a descriptor, and the default soft limit is often 1024.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
