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
/// counters are this process's atomics; the two gauges read from the store are reused for a
/// second, as `/health` is, so the route cannot be used to load the database.
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
    let [depth, confirmed] = store_gauges(&app).await;
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
    ]);
    if let Some(relays) = app.mailer.transport.relays() {
        relays.prometheus(&mut body);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Queue depth and confirmed readers (-1 when the store cannot say), at most a second old.
async fn store_gauges(app: &App) -> [i64; 2] {
    let cached = *app.metrics_gauges.lock().expect("not poisoned");
    if let Some((at, gauges)) = cached
        && at.elapsed() < Duration::from_secs(1)
    {
        return gauges;
    }
    let gauges = [
        app.store.queue_depth().await.unwrap_or(-1),
        app.store
            .count_subscribers(crate::store::SubscriberStatus::Confirmed)
            .await
            .unwrap_or(-1),
    ];
    *app.metrics_gauges.lock().expect("not poisoned") = Some((Instant::now(), gauges));
    gauges
}
