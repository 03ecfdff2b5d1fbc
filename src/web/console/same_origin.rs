//! The console's guard against cross-site requests: a state-changing request must come from
//! one of its own pages, which the browser says for it.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::Response,
};

use super::view::render_error;
use crate::app::App;

/// Refuses a state-changing request that did not come from a page of ours: the browser says
/// where it came from (`Sec-Fetch-Site`), or at least its origin (`Origin`). A request with
/// neither is refused too (a form of ours always carries one).
pub async fn same_origin(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    if is_same_origin(req.headers(), &app.settings.public_origin()) {
        return next.run(req).await;
    }
    tracing::warn!(path = %req.uri().path(), "cross-site console request refused");
    render_error(
        StatusCode::FORBIDDEN,
        "طلب مرفوض",
        "رُفض هذا الطلب لأنه لم يصدر من صفحات لوحة التحكم نفسها. افتح اللوحة وأعد المحاولة منها.",
    )
}

fn is_same_origin(headers: &HeaderMap, public_origin: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    headers
        .get(header::ORIGIN)
        .is_some_and(|o| o.as_bytes() == public_origin.as_bytes())
}
