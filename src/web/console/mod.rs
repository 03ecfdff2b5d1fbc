//! The console at `/admin`: server-rendered Arabic pages for editors, one small script of
//! our own for live progress. Every page needs a session (see `session`); every
//! state-changing request must come from our own pages (`same_origin`); what each role may
//! do is checked by the application's operations, which also write the audit log.
//!
//! This file routes; what the pages share lives in leaves: `session` (the cookie, [`Me`]),
//! `respond` (error pages, redirects), `extract` (forms and path ids), `view` (templates).

mod accounts;
mod alerts;
mod dashboard;
mod desk;
mod extract;
mod newsroom;
mod planned;
mod readers;
mod report;
mod reputation;
mod respond;
mod same_origin;
mod sends;
mod session;
mod sign_in;
mod view;

use std::sync::Arc;

use axum::{Router, middleware, routing::get};
use tower_http::limit::RequestBodyLimitLayer;

use crate::app::App;

pub use respond::not_found_page;

/// Console forms are small…
const MAX_FORM: usize = 64 * 1024;
/// …but a CSV of readers is not.
const MAX_IMPORT: usize = 50 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    view::check_templates();
    let pages = Router::new()
        .merge(dashboard::router())
        .merge(readers::router())
        .merge(newsroom::router())
        .merge(desk::router())
        .merge(sends::router())
        .merge(report::router())
        .merge(reputation::router())
        .merge(planned::router())
        .merge(alerts::router())
        .merge(accounts::router())
        .layer(RequestBodyLimitLayer::new(MAX_FORM))
        .merge(readers::import_router().layer(RequestBodyLimitLayer::new(MAX_IMPORT)))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            session::require_session,
        ));
    Router::new()
        .merge(sign_in::router().layer(RequestBodyLimitLayer::new(MAX_FORM)))
        .route("/static/{file}", get(view::asset))
        .merge(pages)
        .layer(middleware::from_fn_with_state(
            app,
            same_origin::same_origin,
        ))
}
