//! For monitoring: `/health` and `/metrics`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use crate::app::App;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

/// 200 only when the store takes writes that last: a database file deleted or replaced
/// under the process, or one that refuses writes, is a 503 monitoring sees. The check writes,
/// so its answer is reused for a second: a public route cannot be used to hammer the store's
/// one write lock.
async fn health(State(app): State<Arc<App>>) -> Response {
    let cached = *app.health.lock().expect("not poisoned");
    let healthy = match cached {
        Some((at, ok)) if at.elapsed() < std::time::Duration::from_secs(1) => ok,
        _ => {
            let ok = match app.store.health().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "health check failed");
                    false
                }
            };
            *app.health.lock().expect("not poisoned") = Some((std::time::Instant::now(), ok));
            ok
        }
    };
    match healthy {
        true => Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})).into_response(),
        false => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "database_unavailable"})),
        )
            .into_response(),
    }
}

/// Prometheus text. Behind `server.metrics_token` when it is set (401 otherwise). The
/// counters are this process's atomics; the gauges read from the store (the queue, readers,
/// the DMARC reports' last 30 days) are reused for a second, as `/health` is, so the route
/// cannot be used to load the database.
async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(token) = &app.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !token.verify(given) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"error": "unauthorized", "message": "missing or wrong bearer token"})),
            )
                .into_response();
        }
    }
    let [depth, confirmed, dmarc @ ..] = store_gauges(&app).await;
    let mut body = app.metrics.render(&[
        (
            "nashra_queue_depth",
            "Deliveries waiting or in flight.",
            depth,
        ),
        (
            "nashra_subscribers_confirmed",
            "Confirmed subscribers.",
            confirmed,
        ),
        (
            "nashra_dmarc_messages_30d",
            "Messages in the DMARC aggregate reports of the last 30 days.",
            dmarc[0],
        ),
        (
            "nashra_dmarc_pass_messages_30d",
            "Of those, messages that passed DMARC (DKIM or SPF aligned).",
            dmarc[1],
        ),
        (
            "nashra_dmarc_dkim_aligned_messages_30d",
            "Of those, messages whose DKIM passed aligned.",
            dmarc[2],
        ),
        (
            "nashra_dmarc_spf_aligned_messages_30d",
            "Of those, messages whose SPF passed aligned.",
            dmarc[3],
        ),
    ]);
    if let Some(relays) = app.mailer.transport.relays() {
        relays.prometheus(&mut body);
    }
    dmarc_ratios(&mut body, dmarc);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The DMARC pass rates of the last 30 days, as fractions; left out while no report counted
/// a message (a rate of nothing is no rate, and 0 would read as everything failing).
fn dmarc_ratios(body: &mut String, [messages, passed, dkim, spf]: [i64; 4]) {
    use std::fmt::Write;
    if messages <= 0 {
        return;
    }
    for (name, help, n) in [
        (
            "nashra_dmarc_pass_ratio_30d",
            "Share of messages that passed DMARC, last 30 days.",
            passed,
        ),
        (
            "nashra_dmarc_dkim_aligned_ratio_30d",
            "Share of messages with DKIM aligned, last 30 days.",
            dkim,
        ),
        (
            "nashra_dmarc_spf_aligned_ratio_30d",
            "Share of messages with SPF aligned, last 30 days.",
            spf,
        ),
    ] {
        let _ = writeln!(
            body,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
            n as f64 / messages as f64
        );
    }
}

/// Queue depth, confirmed readers, and the DMARC counts of the last 30 days (messages,
/// passed, DKIM aligned, SPF aligned); -1 when the store cannot say; at most a second old.
async fn store_gauges(app: &App) -> [i64; 6] {
    let cached = *app.metrics_gauges.lock().expect("not poisoned");
    if let Some((at, gauges)) = cached
        && at.elapsed() < Duration::from_secs(1)
    {
        return gauges;
    }
    let dmarc = app.reputation_totals().await.ok();
    let dmarc = |f: fn(&crate::app::Rates) -> i64| dmarc.as_ref().map_or(-1, f);
    let gauges = [
        app.store.queue_depth().await.unwrap_or(-1),
        app.store
            .count_subscribers(crate::store::SubscriberStatus::Confirmed)
            .await
            .unwrap_or(-1),
        dmarc(|r| r.messages),
        dmarc(|r| r.passed),
        dmarc(|r| r.dkim_aligned),
        dmarc(|r| r.spf_aligned),
    ];
    *app.metrics_gauges.lock().expect("not poisoned") = Some((Instant::now(), gauges));
    gauges
}
