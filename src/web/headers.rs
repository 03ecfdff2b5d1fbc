//! Security headers on every response. A handler that needs another policy (the embeddable
//! form, the console's preview frames) sets its own `Content-Security-Policy`, which is kept.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderName, HeaderValue, header},
    middleware::Next,
    response::Response,
};

use crate::app::App;

/// No script but our own files, no plugins, no framing, forms only to us. Inline styles stay
/// allowed: pages and the digest's web copy carry their CSS inline, as email needs.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' https: data:; font-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

pub async fn security_headers(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let framable = h.contains_key(header::CONTENT_SECURITY_POLICY);
    let mut set = |name: HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Token links (confirm, unsubscribe) must not leak to the sites our pages link to.
    set(header::REFERRER_POLICY, "same-origin");
    if !framable {
        set(header::X_FRAME_OPTIONS, "DENY");
    }
    if app.settings.server.public_url.starts_with("https://") {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    res
}
