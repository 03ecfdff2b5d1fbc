//! The application: shared state and the operations the CLI, the web server and the
//! scheduler all call — one door for each (a send is paused the same way from the console,
//! the API and the command line). `startup` wires and runs the parts of a process.
//!
//! Two layers, and the visibility says which is which. The doors a caller outside the crate
//! sees take an [`Actor`], check its role and write the audit log (`ops.rs`, `accounts.rs`),
//! or need no proof (a sign-up, a login, a preview), or are a machine's own (the
//! scheduler's [`App::fire_schedule`], the feed poller's [`App::ingest_feed`]). Below them,
//! `pub(crate)`, the unchecked operations they and the web handlers share: a handler that
//! calls one has checked the reader's signed link or the editor's role itself.

mod accounts;
mod alert_plan;
mod alerts;
mod articles;
mod asked;
mod desk;
mod digests;
mod feedback;
mod guard;
mod links;
mod ops;
mod planned;
mod preferences;
mod report;
mod reputation;
mod routing;
mod sign_in;
mod state;
mod subscribers;
mod waves;

pub use alert_plan::AlertPlan;
pub use alerts::AlertView;
pub use desk::{DeskChange, DeskView, SubjectTestIn};
pub use digests::{Audience, SendControl};
pub use guard::{ProviderWait, guard_json};
pub use ops::{Actor, ImportReport, OpError, Refusal};
pub use planned::{PlanRefusal, PlanView, send_status_name};
pub use report::{Outcomes, ProviderRow};
pub use reputation::{GroupRates, REPUTATION_DAYS, Rates, Reputation};
pub use routing::{RelayCount, Routing, WarmupHeld};
pub use sign_in::{LoginOutcome, SessionLookup};
pub use state::App;
pub use subscribers::SignupError;
pub use waves::WaveView;
