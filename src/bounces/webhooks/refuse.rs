//! Why a webhook request was turned away, and the answer each reason gets: the providers
//! retry on 5xx and give up on 4xx, so a refusal must say which it is.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

pub enum Refuse {
    /// The provider is not configured (or not known).
    NotFound,
    /// The request cannot be shown to come from the provider: 401, logged, nothing changed.
    Unauthorized(&'static str),
    Bad(String),
    /// Our failure (the database, a fetch): 503, so the provider sends it again later.
    Failed(anyhow::Error),
}

impl IntoResponse for Refuse {
    fn into_response(self) -> Response {
        match self {
            Refuse::NotFound => StatusCode::NOT_FOUND.into_response(),
            Refuse::Unauthorized(why) => {
                tracing::warn!(why, "webhook refused");
                (StatusCode::UNAUTHORIZED, Json(json!({ "error": why }))).into_response()
            }
            Refuse::Bad(why) => {
                (StatusCode::BAD_REQUEST, Json(json!({ "error": why }))).into_response()
            }
            Refuse::Failed(e) => {
                tracing::error!(error = %format!("{e:#}"), "webhook failed; the provider will retry");
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
        }
    }
}

impl From<anyhow::Error> for Refuse {
    fn from(e: anyhow::Error) -> Refuse {
        Refuse::Failed(e)
    }
}
