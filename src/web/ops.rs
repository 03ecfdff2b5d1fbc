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
/// under the process, or one that refuses writes, is a 503 monitoring sees.
async fn health(State(app): State<Arc<App>>) -> Response {
    match app.store.health().await {
        Ok(()) => {
            Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})).into_response()
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "database_unavailable"})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let depth = app.store.queue_depth().await.unwrap_or(-1);
    let confirmed = app.store.count_subscribers("confirmed").await.unwrap_or(-1);
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
