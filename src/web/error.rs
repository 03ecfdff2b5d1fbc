//! The two ways a request outside the console fails: [`ApiError`] for the admin API (JSON
//! with a code), [`PageFailure`] behind a reader's page (an Arabic page). The console has its
//! own, `console::respond::PageError`.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{
    extract::{BodyError, IdError, Unread},
    page::page,
};

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
    /// What axum could not read: its own answer, as for any route.
    #[error(transparent)]
    Unread(#[from] Unread),
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

/// A body that is not JSON for the call gets our error shape, not axum's text.
impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> ApiError {
        match e {
            BodyError::Unread(u) => ApiError::Unread(u),
            e => ApiError::invalid("invalid_json", format!("request body: {e}")),
        }
    }
}

/// An id that is not a number names nothing.
impl From<IdError> for ApiError {
    fn from(e: IdError) -> ApiError {
        match e {
            IdError::Unread(u) => ApiError::Unread(u),
            IdError::NotANumber => ApiError::NotFound,
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
            ApiError::Unread(u) => u.into_response(),
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

/// A failure behind a reader's page (the store is down, a render failed): logged, and
/// answered with an Arabic page, never with the API's JSON.
#[derive(Debug)]
pub struct PageFailure(pub anyhow::Error);

impl From<anyhow::Error> for PageFailure {
    fn from(e: anyhow::Error) -> PageFailure {
        PageFailure(e)
    }
}

const FAILURE_PAGE: &str = "<!DOCTYPE html><html lang=\"ar\" dir=\"rtl\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>عطل مؤقت</title></head>\
<body style=\"font-family:Tahoma,'Geeza Pro','Noto Sans Arabic',Arial,sans-serif;direction:rtl;text-align:right;margin:48px auto;max-width:560px;padding:0 16px;line-height:1.9\">\
<main dir=\"rtl\"><h1>عطل مؤقت</h1><p>حدث عطل لدينا ولم يكتمل طلبك. يرجى المحاولة بعد قليل.</p></main></body></html>";

impl IntoResponse for PageFailure {
    fn into_response(self) -> Response {
        tracing::error!(error = %format!("{:#}", self.0), "page failed");
        let mut r = page(StatusCode::SERVICE_UNAVAILABLE, FAILURE_PAGE.to_owned());
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("30"),
        );
        r
    }
}
