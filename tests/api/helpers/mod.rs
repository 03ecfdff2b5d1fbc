//! What the tests share, one file per concern: where a test keeps its data (`place`), the app
//! on port 0 (`app`), the calls a test makes on it (`calls`) and their typed answers
//! (`answers`), a reader's part (`readers`), the mail that arrives (`mail`), a console session
//! (`console`), feeds a test serves (`feed`), and the real servers a test talks to (`smtp`,
//! `dovecot`, `dns`).
//!
//! `use crate::helpers::*` brings in everything but the servers, which keep their own names
//! (`helpers::smtp::Fault`, `helpers::dovecot::Dovecot`), and the answers, which tests meet
//! as what a call returns.

pub mod answers;
pub mod app;
pub mod calls;
pub mod console;
pub mod dns;
pub mod dovecot;
pub mod feed;
pub mod mail;
pub mod place;
pub mod readers;
pub mod serve;
pub mod smtp;

pub use app::*;
pub use console::*;
pub use feed::*;
pub use mail::*;
pub use place::*;
