//! The HTTP server under clients that take their time or never finish: every wait is bounded,
//! and shutdown closes what is left.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::*;

const TIGHT: &str =
    "[server]\nheader_timeout = \"1s\"\nrequest_timeout = \"3s\"\nmax_connections = 64\n";

fn addr(t: &TestApp) -> String {
    t.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; how long that took, if within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = tokio::time::Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|_| start.elapsed())
}

both_engines!(
    partial_requests_are_closed_and_health_keeps_answering,
    |engine| async move {
        // Issue 6, item 5: 200 clients send half a request head and wait. They are cut off after
        // the header timeout, connections beyond the cap are closed at once, and /health answers.
        let t = spawn_app_with(engine, TIGHT).await;
        let mut slow = Vec::new();
        for _ in 0..200 {
            let mut s = TcpStream::connect(addr(&t)).await.unwrap();
            let _ = s
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await;
            slow.push(s);
        }
        let health = async {
            loop {
                let r = t
                    .http
                    .get(t.url("/health"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await;
                if let Ok(r) = r {
                    return r.status();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let status = tokio::time::timeout(Duration::from_secs(10), health)
            .await
            .expect("/health answers while slow clients hold connections");
        assert_eq!(status, 200);
        for s in slow.iter_mut() {
            assert!(
                closed_within(s, Duration::from_secs(5)).await.is_some(),
                "a partial request is closed by the server"
            );
        }
    }
);

both_engines!(
    a_slow_body_and_an_idle_keep_alive_are_closed,
    |engine| async move {
        let t = spawn_app_with(engine, TIGHT).await;
        // A body that stops arriving.
        let mut s = TcpStream::connect(addr(&t)).await.unwrap();
        s.write_all(
        b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nemail=a",
    )
    .await
    .unwrap();
        assert!(
            closed_within(&mut s, Duration::from_secs(6))
                .await
                .is_some(),
            "a stalled body is not waited on for ever"
        );
        // A keep-alive connection that goes quiet after one request.
        let mut s = TcpStream::connect(addr(&t)).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        assert!(
            closed_within(&mut s, Duration::from_secs(5))
                .await
                .is_some(),
            "an idle keep-alive is closed"
        );
        // Nothing of the half-sent sign-up was stored.
        assert_eq!(t.readers("").await.total, 0);
    }
);

both_engines!(shutdown_closes_open_connections, |engine| async move {
    // Issue 6, item 5: with idle and half-sent connections open, shutdown still ends promptly
    // (the header timeout here is the default 10 s, longer than the grace).
    let t = spawn_app(engine).await;
    let mut held = Vec::new();
    for i in 0..50 {
        let mut s = TcpStream::connect(addr(&t)).await.unwrap();
        if i % 2 == 0 {
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
        }
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(8), t.stop())
        .await
        .expect("shutdown does not wait on idle or unfinished requests");
    for s in held.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(2)).await.is_some());
    }
});

both_engines!(
    a_client_that_stops_reading_is_cut_off,
    |engine| async move {
        // A small receive window and many pipelined requests: the answers fill the socket buffers
        // and the server's writes stall. It must not wait on such a client for ever.
        let t = spawn_app_with(engine, TIGHT).await;
        // A web copy of some 10 KB to ask for, many times over.
        for i in 0..10 {
            t.add_article(
                &format!("https://example.org/{i}/"),
                "خبر طويل",
                &"نص ".repeat(100),
            )
            .await;
        }
        let id = t.send_now().await;
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let mut s = sock.connect(addr(&t).parse().unwrap()).await.unwrap();
        let requests = format!("GET /archive/{id} HTTP/1.1\r\nHost: x\r\n\r\n").repeat(400);
        s.write_all(requests.as_bytes()).await.unwrap();
        // Read nothing for a while; then whatever is left in the buffers, to the end.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let mut got = Vec::new();
        let read_all = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut got)).await;
        let answers = String::from_utf8_lossy(&got)
            .matches("HTTP/1.1 200")
            .count();
        assert!(
            read_all.is_ok() && answers < 400,
            "the server gave up on the stalled reader instead of waiting: {answers} answers"
        );
    }
);

/// A connection from `local` (another loopback address: another client) to the app.
async fn connect_from(t: &TestApp, local: &str) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{local}:0").parse().unwrap()).unwrap();
    sock.connect(addr(t).parse().unwrap()).await.unwrap()
}

/// One request on a fresh connection from `local`; the status line, if it came within 3 s.
async fn ask_from(t: &TestApp, local: &str, request: &str) -> Option<String> {
    let mut s = connect_from(t, local).await;
    tokio::time::timeout(Duration::from_secs(3), async {
        s.write_all(request.as_bytes()).await.ok()?;
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.ok()?;
        Some(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        )
    })
    .await
    .ok()
    .flatten()
}

both_engines!(
    one_client_holding_a_thousand_sockets_leaves_room_for_everyone_else,
    |engine| async move {
        // Issue 15, item 3: ~1,000 sockets from one address, each trickling a body a byte at a
        // time, filled every connection for the whole request timeout.
        let t = spawn_app_with(engine, "[server]\nheader_timeout = \"2s\"\n").await;
        hog_and_check(&t, true).await;
    }
);

both_engines!(
    a_client_is_held_to_its_share_where_a_proxy_header_is_configured,
    |engine| async move {
        // Issue 15, item 3: with `client_ip_header` set, no client had a share at all. A peer
        // that is not one of `trusted_proxies` is a client like any other.
        let t = spawn_app_with(
            engine,
            "[server]\nheader_timeout = \"2s\"\nmax_connections = 256\n\
             client_ip_header = \"X-Forwarded-For\"\ntrusted_proxies = [\"127.0.0.9/32\"]\n",
        )
        .await;
        hog_and_check(&t, false).await;
    }
);

/// One address opens 1,000 connections trickling bodies; others' `/health` and one-click
/// still answer, and (with `until_cut`) the trickles are cut long before the request timeout.
async fn hog_and_check(t: &TestApp, until_cut: bool) {
    {
        let token = t.app.tokens.unsubscribe(1);
        let mut held = Vec::new();
        for _ in 0..1000 {
            let mut s = connect_from(t, "127.0.0.1").await;
            let _ = s
                .write_all(
                    b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ne",
                )
                .await;
            held.push(s);
        }
        // Another client: /health and a one-click unsubscribe answer at once.
        let health = ask_from(t, "127.0.0.2", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(health.as_deref(), Some("HTTP/1.1 200 OK"), "/health");
        let body = "List-Unsubscribe=One-Click";
        let one_click = ask_from(
            t,
            "127.0.0.3",
            &format!(
                "POST /unsubscribe/{token} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
        .await;
        assert!(
            one_click
                .as_deref()
                .is_some_and(|l| l.starts_with("HTTP/1.1 ")),
            "one-click answers: {one_click:?}"
        );
        if !until_cut {
            return;
        }
        // The trickled bodies (a byte every 1.5 s, so each piece beats the 2 s timeout) are
        // cut off once they fall behind the minimum rate, long before the request timeout.
        let start = tokio::time::Instant::now();
        let mut open: Vec<TcpStream> = held;
        while !open.is_empty() && start.elapsed() < Duration::from_secs(15) {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let mut still = Vec::new();
            for mut s in open {
                if s.write_all(b"x").await.is_ok() {
                    let mut buf = [0u8; 1024];
                    match tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => {}
                        _ => still.push(s),
                    }
                }
            }
            open = still;
        }
        assert!(
            open.is_empty(),
            "{} trickled bodies still held after {:?}",
            open.len(),
            start.elapsed()
        );
    }
}
