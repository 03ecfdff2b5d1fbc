//! Rows and requests that cross the store's boundary, and the states stored as text: the
//! store's vocabulary, one file per aggregate beside the SQL files of the same name.

mod accounts;
mod alerts;
mod articles;
mod clicks;
mod deliveries;
mod desk;
mod digests;
mod dmarc;
mod feedback;
mod guard;
mod planned;
mod report;
mod state;
mod subscribers;

pub use accounts::*;
pub use alerts::*;
pub use articles::*;
pub use clicks::*;
pub use deliveries::*;
pub use desk::*;
pub use digests::*;
pub use dmarc::*;
pub use feedback::*;
pub use guard::*;
pub use planned::*;
pub use report::*;
pub use state::UnknownState;
pub use subscribers::*;
