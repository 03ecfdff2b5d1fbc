//! The links in our mail: the double opt-in confirmation and one-click unsubscribe.
//!
//! A GET of either only shows a page with a button: link scanners, previews and prefetchers
//! follow GETs (and HEADs), and must neither confirm a sign-up the owner of the inbox never
//! wanted nor unsubscribe a reader. The button POSTs; for unsubscribe that POST is also the
//! RFC 8058 one-click request a mail client sends.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    routing::get,
};

use super::{
    error::PageFailure,
    page::{message_page, page},
};
use crate::{
    app::App,
    domain::{Token, TokenKind},
    render::Page,
    store::{ConfirmOutcome, now_ms},
};

/// A confirm link is good for a week.
const CONFIRM_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/confirm/{token}", get(confirm_page).post(confirm))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        )
        .route("/resubscribe/{token}", axum::routing::post(resubscribe))
}

fn bad_confirm(app: &App) -> Response {
    message_page(
        app,
        StatusCode::BAD_REQUEST,
        "رابط غير صالح",
        "رابط التأكيد هذا غير صالح أو انتهت صلاحيته. اشترك من جديد لتصلك رسالة تأكيد جديدة.",
    )
}

/// A verified, unexpired confirm token, or the page to answer instead.
fn confirm_token(app: &App, token: &str) -> Result<Token, Box<Response>> {
    let t = app
        .tokens
        .verify(token, TokenKind::Confirm)
        .map_err(|_| Box::new(bad_confirm(app)))?;
    if now_ms() - t.issued > CONFIRM_TTL_MS {
        return Err(Box::new(message_page(
            app,
            StatusCode::GONE,
            "انتهت صلاحية الرابط",
            "انتهت صلاحية رابط التأكيد. اشترك من جديد لتصلك رسالة تأكيد جديدة.",
        )));
    }
    Ok(t)
}

fn confirmed(app: &App, reader: i64) -> Response {
    let p = Page {
        title: "تم تأكيد اشتراكك".into(),
        lines: vec![format!(
            "أهلاً بك! ستصلك {} على بريدك الإلكتروني.",
            app.settings.newsletter.name
        )],
        preferences_url: Some(format!("/preferences/{}", app.tokens.preferences(reader))),
        back_url: Some(app.settings.newsletter.site_url.clone()),
        ..Default::default()
    };
    page(StatusCode::OK, app.renderer.page(&app.settings, &p))
}

async fn confirm_page(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
) -> Result<Response, PageFailure> {
    let t = match confirm_token(&app, &token) {
        Ok(t) => t,
        Err(r) => return Ok(*r),
    };
    Ok(
        match app.store.confirm_state(t.subscriber_id, t.issued).await? {
            ConfirmOutcome::Confirmed => {
                let p = Page {
                    title: "تأكيد الاشتراك".into(),
                    lines: vec![format!(
                        "اضغط الزر لتأكيد اشتراكك في {}.",
                        app.settings.newsletter.name
                    )],
                    form: "confirm",
                    action: format!("/confirm/{token}"),
                    ..Default::default()
                };
                page(StatusCode::OK, app.renderer.page(&app.settings, &p))
            }
            ConfirmOutcome::AlreadyConfirmed => confirmed(&app, t.subscriber_id),
            ConfirmOutcome::Stale | ConfirmOutcome::Unknown => bad_confirm(&app),
        },
    )
}

async fn confirm(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
) -> Result<Response, PageFailure> {
    let t = match confirm_token(&app, &token) {
        Ok(t) => t,
        Err(r) => return Ok(*r),
    };
    Ok(match app.confirm(t.subscriber_id, t.issued).await? {
        ConfirmOutcome::Confirmed | ConfirmOutcome::AlreadyConfirmed => {
            confirmed(&app, t.subscriber_id)
        }
        ConfirmOutcome::Stale | ConfirmOutcome::Unknown => bad_confirm(&app),
    })
}

fn bad_unsubscribe(app: &App) -> Response {
    message_page(
        app,
        StatusCode::BAD_REQUEST,
        "رابط غير صالح",
        "رابط إلغاء الاشتراك هذا غير صالح.",
    )
}

async fn unsubscribe_page(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    let Ok(t) = app.tokens.verify(&token, TokenKind::Unsubscribe) else {
        return bad_unsubscribe(&app);
    };
    let p = Page {
        title: "إلغاء الاشتراك".into(),
        lines: vec![format!(
            "هل تريد إيقاف وصول {} إلى بريدك؟",
            app.settings.newsletter.name
        )],
        form: "unsubscribe",
        action: format!("/unsubscribe/{token}"),
        // Fewer mails may be all the reader wants.
        preferences_url: Some(format!(
            "/preferences/{}",
            app.tokens.preferences(t.subscriber_id)
        )),
        preferences_label: Some("أو اختر ما يصلك: أقسام بعينها، أو نشرة أقل تكراراً".into()),
        ..Default::default()
    };
    page(StatusCode::OK, app.renderer.page(&app.settings, &p))
}

/// RFC 8058 one-click: works with no cookie and no page, answers 200, never redirects. When
/// it answers, nothing more reaches the reader, not even from a send under way.
async fn unsubscribe(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, PageFailure> {
    let Ok(t) = app.tokens.verify(&token, TokenKind::Unsubscribe) else {
        return Ok(bad_unsubscribe(&app));
    };
    // The mail client's button (RFC 8058) or the page's.
    let how = if body.as_ref() == b"List-Unsubscribe=One-Click" {
        "one-click"
    } else {
        "link"
    };
    app.unsubscribe(t.subscriber_id, how).await?;
    let p = Page {
        title: "تم إلغاء اشتراكك".into(),
        lines: vec!["لن تصلك رسائل أخرى منا. إن غيّرت رأيك، يمكنك العودة متى شئت.".into()],
        form: "resubscribe",
        action: format!("/resubscribe/{token}"),
        back_url: Some(app.settings.newsletter.site_url.clone()),
        ..Default::default()
    };
    Ok(page(StatusCode::OK, app.renderer.page(&app.settings, &p)))
}

/// «أعد اشتراكي» on the page after leaving: the address the token names gets a fresh
/// confirmation email, as a sign-up would; nothing changes until its link is followed.
async fn resubscribe(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
) -> Result<Response, PageFailure> {
    let Ok(t) = app.tokens.verify(&token, TokenKind::Unsubscribe) else {
        return Ok(bad_unsubscribe(&app));
    };
    let reader = app.store.subscriber(t.subscriber_id).await?;
    // An erased reader has no address left to send to.
    let Some(r) = reader.filter(|r| !r.email.is_empty()) else {
        return Ok(bad_unsubscribe(&app));
    };
    let (Ok(email), name) = (
        crate::domain::SubscriberEmail::parse(&r.email),
        // A sign-up for a known address keeps its stored name whatever is given.
        crate::domain::SubscriberName::parse(&r.name).unwrap_or_default(),
    ) else {
        return Ok(bad_unsubscribe(&app));
    };
    match app
        .subscribe(
            &email,
            &name,
            "resubscribe",
            &crate::store::Choice::default(),
            // A fresh consent: their zone is kept, alerts wait until they ask again.
            &crate::store::ReaderClock::default(),
        )
        .await
    {
        Ok(()) => {}
        Err(crate::app::SignupError::Store(e)) => return Err(PageFailure(e)),
        Err(crate::app::SignupError::NoSmtpUtf8) => {}
    }
    Ok(message_page(
        &app,
        StatusCode::OK,
        "تحقّق من بريدك",
        "أرسلنا إليك رسالة تأكيد جديدة. افتحها واضغط الرابط فيها ليعود اشتراكك.",
    ))
}
