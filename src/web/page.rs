//! The reader's pages every public handler answers with: a full HTML page that no cache
//! keeps, and the one-message page (a title, a line, the way back to the site) that bad
//! links, unknown paths and refused requests share.

use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

use crate::{app::App, render::Page};

/// A full HTML page with a status.
pub fn page(status: StatusCode, html: String) -> Response {
    (status, [("Cache-Control", "no-store")], Html(html)).into_response()
}

/// A page that says one thing, with the way back to the news site.
pub fn message_page(app: &App, status: StatusCode, title: &str, line: &str) -> Response {
    let p = Page {
        title: title.into(),
        lines: vec![line.into()],
        back_url: Some(app.settings.newsletter.site_url.clone()),
        ..Default::default()
    };
    page(status, app.renderer.page(&app.settings, &p))
}
