//! Types that cannot hold an invalid value: an address that passed every check, a reader's
//! name, a signed token. Nothing downstream re-checks them.

mod email;
mod name;
pub mod token;

pub use email::{EmailError, Mailbox, SubscriberEmail};
pub use name::{MAX_NAME_CHARS, NameError, SubscriberName};
pub use token::{Token, TokenError, TokenKind, Tokens};
