//! The whole HTTP surface in one router: each area's `router()` merged, and the layers every
//! request gets (a span, body size limits, the NUL refusal, security headers), with the
//! answer for a path nobody serves.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{MatchedPath, Request, State},
    http::{StatusCode, Uri},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
};
use serde_json::json;
use tower_http::{
    limit::RequestBodyLimitLayer,
    trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer},
};
use tracing::Level;

use super::{
    admin, archive, console,
    error::ApiError,
    headers, links, ops,
    page::message_page,
    preferences,
    ratelimit::{ClientLimiter, Limits},
    redirect, signup,
};
use crate::app::App;

/// Sign-up forms and API calls are small; a feed article pushed by the API is the largest.
/// (The console's CSV import has its own, larger limit.)
const MAX_BODY: usize = 2 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    let limits = Limits {
        signup: ClientLimiter::per_hour(app.settings.server.signups_per_hour),
        login: ClientLimiter::per_hour(app.settings.security.logins_per_hour),
    };
    Router::new()
        .merge(signup::router())
        .merge(links::router())
        .merge(archive::router())
        .merge(preferences::router())
        .merge(redirect::router())
        .merge(ops::router())
        .merge(crate::bounces::webhooks::router())
        .nest("/api", admin::router(app.clone()))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        // The import route has its own limit; it is nested after the general one.
        .nest("/admin", console::router(app.clone()))
        .route(
            "/admin/",
            axum::routing::get(|| async { Redirect::to("/admin") }),
        )
        .fallback(not_found)
        .layer(axum::Extension(limits))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            refuse_nul_in_uri,
        ))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            headers::security_headers,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .with_state(app)
}

/// One span per request, so what a handler logs says which request it served: the method
/// and the route as declared (`/confirm/{token}`), never the path or query as sent, which
/// carry tokens. The span is at `info` and prints nothing on its own; the per-response lines
/// are at `debug` (`RUST_LOG=tower_http=debug`), so the default logs stay as they were.
fn request_span(req: &Request) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    tracing::info_span!("request", method = %req.method(), route)
}

/// A path nobody serves: an Arabic page (the console's own under `/admin`), JSON for the API.
async fn not_found(State(app): State<Arc<App>>, uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/webhooks/") {
        return ApiError::NotFound.into_response();
    }
    if path == "/admin" || path.starts_with("/admin/") {
        return console::not_found_page();
    }
    message_page(
        &app,
        StatusCode::NOT_FOUND,
        "الصفحة غير موجودة",
        "لم نجد الصفحة التي طلبتها. ربما تغيّر رابطها أو حُذفت.",
    )
}

/// A request whose path or query holds a NUL (`%00`) is refused before any handler: no
/// address, token or search of ours has one, and PostgreSQL refuses it (a 500 otherwise).
async fn refuse_nul_in_uri(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let uri = req.uri();
    let nul = |s: &str| {
        s.as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
    };
    if !nul(uri.path()) && !uri.query().is_some_and(nul) {
        return next.run(req).await;
    }
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/webhooks/") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "bad_request", "message": "the request's path or query holds a NUL character (%00)"})),
        )
            .into_response();
    }
    message_page(
        &app,
        StatusCode::BAD_REQUEST,
        "طلب غير صالح",
        "يحتوي الرابط على رموز غير مقبولة. تحقّق منه أو ارجع إلى الصفحة السابقة.",
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::{body::Body, routing::get};
    use tower::ServiceExt;

    use super::*;

    /// What the log lines say, for the test to read.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_request_span_names_the_route_never_the_token_or_query() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let inner = Router::new().route(
            "/confirm/{token}",
            get(|| async { tracing::info!("handled") }),
        );
        let router = Router::new()
            .nest("/admin", inner)
            .layer(TraceLayer::new_for_http().make_span_with(request_span));
        let req = axum::http::Request::get("/admin/confirm/SECRET?key=QUERY")
            .body(Body::empty())
            .unwrap();
        router.oneshot(req).await.unwrap();
        let out = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(
            out.contains("request{method=GET route=\"/admin/confirm/{token}\"}"),
            "{out}"
        );
        assert!(!out.contains("SECRET") && !out.contains("QUERY"), "{out}");
    }
}
