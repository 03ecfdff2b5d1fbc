//! Types that cannot hold an invalid value: an address that passed every check, a signed
//! token. Nothing downstream re-checks them.

mod email;
pub mod token;

pub use email::{EmailError, Mailbox, SubscriberEmail};
pub use token::{Token, TokenError, TokenKind, Tokens};
