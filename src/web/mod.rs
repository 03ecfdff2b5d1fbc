//! HTTP: the public pages readers and mail providers touch, and the admin API.
//!
//! Each area exposes `router()`; this module merges them and adds the layers every request
//! gets (body size limit); `server` runs them with every wait bounded.

mod admin;
mod archive;
mod client;
mod links;
mod ops;
mod ratelimit;
mod server;
mod signup;

pub use ratelimit::RateLimiter;
pub use server::serve;

/// The sign-up limit of this process (per client address), shared by the sign-up handlers.
#[derive(Clone)]
pub(crate) struct SignupLimit(Option<Arc<RateLimiter>>);

use std::sync::Arc;

use axum::{
    Json, Router,
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;

use crate::app::App;

/// Sign-up forms and API calls are small; a feed article pushed by the API is the largest.
const MAX_BODY: usize = 2 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    let limit =
        SignupLimit(RateLimiter::per_hour(app.settings.server.signups_per_hour).map(Arc::new));
    Router::new()
        .merge(signup::router())
        .merge(links::router())
        .merge(archive::router())
        .merge(ops::router())
        .nest("/api", admin::router(app.clone()))
        .layer(axum::Extension(limit))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .with_state(app)
}

/// An API error: client errors carry a code and a message; internal ones are logged and
/// answered with a bare 500.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unauthorized")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    #[error("{message}")]
    Invalid {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [("WWW-Authenticate", "Bearer")],
                Json(json!({"error": "unauthorized", "message": "missing or wrong bearer token"})),
            )
                .into_response(),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "not_found", "message": "no such resource"})),
            )
                .into_response(),
            ApiError::Invalid {
                status,
                code,
                message,
            } => (status, Json(json!({"error": code, "message": message}))).into_response(),
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": "internal", "message": "internal error"})),
                )
                    .into_response()
            }
        }
    }
}

/// A full HTML page with a status.
pub fn page(status: StatusCode, html: String) -> Response {
    (status, [("Cache-Control", "no-store")], Html(html)).into_response()
}
