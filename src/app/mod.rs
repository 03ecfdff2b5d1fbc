//! The application: shared state and the operations the CLI, the web server and the
//! scheduler all call — one door for each (a send is paused the same way from the console,
//! the API and the command line). `startup` wires and runs the parts of a process.

mod accounts;
mod articles;
mod digests;
mod feedback;
mod links;
mod ops;
mod preferences;
mod state;
mod subscribers;

pub use accounts::{LoginOutcome, SessionLookup};
pub use digests::{Audience, SendControl};
pub use ops::{Actor, ImportReport, OpError, Refusal};
pub use state::App;
pub use subscribers::SignupError;
