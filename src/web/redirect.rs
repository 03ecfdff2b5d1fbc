//! Click links (`newsletter.click_counts`): `/r/<message key>-<article>` answers 302 to an
//! article of the digest that message carried, and counts the click for the article, never
//! for the reader.
//!
//! Not an open redirect: the target is looked up, never taken from the link, and only the
//! articles of that message's own edition qualify; anything else is a 404. Link scanners
//! open every link of a message as it arrives, so what is not counted: HEAD requests, clicks
//! in the first minute after the message was delivered, a message's second click on the same
//! article, and test sends.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, State},
    http::{Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use super::{error::PageFailure, page::message_page};
use crate::{
    app::App,
    store::{DigestKind, now_ms},
};

/// Clicks this soon after delivery are a scanner's, not the reader's.
const SCANNER_WINDOW_MS: i64 = 60_000;

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/r/{token}", get(follow))
}

async fn follow(
    State(app): State<Arc<App>>,
    method: Method,
    Path(token): Path<String>,
) -> Result<Response, PageFailure> {
    let not_found = || {
        message_page(
            &app,
            StatusCode::NOT_FOUND,
            "رابط غير صالح",
            "هذا الرابط غير موجود في نشرتنا.",
        )
    };
    let Some((delivery, article)) = app.tokens.verify_click(&token) else {
        return Ok(not_found());
    };
    let Some(target) = app.store.click_target(delivery, article).await? else {
        return Ok(not_found());
    };
    let in_digest = serde_json::from_str::<Vec<i64>>(&target.article_ids)
        .unwrap_or_default()
        .contains(&article);
    let url = match target.url.clone() {
        Some(u) if in_digest && crate::domain::safe_url(&u).is_some() => u,
        _ => return Ok(not_found()),
    };
    let now = now_ms();
    let counted = method == Method::GET
        && app.settings.newsletter.click_counts
        && target.kind != DigestKind::Test
        && target
            .sent_at
            .is_some_and(|at| now - at >= SCANNER_WINDOW_MS);
    if counted {
        app.count_click(&target, delivery, article, now).await?;
    }
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, url),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response())
}
