//! HTTP: the public pages readers and mail providers touch, the admin API and the console.
//!
//! Each area exposes `router()`; `routes` merges them and adds the layers every request
//! gets (a span, body size limits, security headers); `server` runs them with every wait
//! bounded. What the areas share lives in leaves: `extract` (bodies and path ids read
//! strictly), `error` (the API's and the reader pages' failures), `page` (the reader's
//! pages), `report` (a send's report as CSV, for the API and the console).

mod admin;
mod admin_desk;
mod admin_later;
mod archive;
mod client;
mod clock_form;
mod console;
mod error;
mod extract;
mod headers;
mod links;
mod ops;
mod page;
mod preferences;
mod ratelimit;
mod redirect;
mod report;
mod routes;
mod server;
mod signup;

pub use ratelimit::ClientLimiter;
pub use routes::router;
pub use server::serve;
