//! For monitoring: `/health` and `/metrics`.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
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

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let depth = app.store.queue_depth().await.unwrap_or(-1);
    let confirmed = app
        .store
        .count_subscribers(crate::store::SubscriberStatus::Confirmed)
        .await
        .unwrap_or(-1);
    let body = app.metrics.render(&[
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
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
