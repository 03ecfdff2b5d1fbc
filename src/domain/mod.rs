//! Types that cannot hold an invalid value: an address that passed every check, a reader's
//! name, a signed token, a crontab schedule in its time zone, a sending window, a subject
//! template, a URL from outside, a reader's time zone, an inbox's provider. Nothing
//! downstream re-checks them; configuration parses into them once.

mod cidr;
pub mod cron;
mod email;
mod name;
mod provider;
mod subject;
pub mod token;
mod url;
pub mod window;
pub mod zone;

pub use cidr::{Cidr, CidrError};
pub use cron::CronSchedule;
pub use email::{EmailError, Mailbox, SubscriberEmail};
pub use name::{MAX_NAME_CHARS, NameError, SubscriberName};
pub use provider::{Provider, ProviderMapError, Providers, UnknownProvider};
pub use subject::SubjectTemplate;
pub use token::{Token, TokenError, TokenKind, Tokens, VerpTarget};
pub use url::{canonical_url, safe_url};
pub use window::SendWindow;
pub use zone::{CITIES, City, ReaderZone, city_of};
