//! All SQL lives here: one `Store` over two engines, SQLite (the zero-setup default, one
//! file) and PostgreSQL (shared by any number of processes).
//!
//! Shape. `Store` is an enum over the two engines (`sqlite::Db`, `postgres::Db`), and each
//! of its methods forwards to the engine's own (the [`facade!`] below). Enum dispatch rather
//! than a trait object: the set of engines is closed, async methods in a `dyn` trait would
//! need boxed futures on the hot path, and a generic store would spread sqlx's per-database
//! trait bounds through every caller. The SQL itself is written once: each aggregate's file
//! (`subscribers`, `choices`, `articles`, `schedules`, `digests`, `ledger`, `mailq`,
//! `upgrades`) puts its methods inside [`for_each_engine!`], which compiles the same code
//! once against `sqlite::Db` and once against `postgres::Db`. The SQL is the dialect both
//! accept (`$N` parameters, `CAST(… AS BIGINT)`, `ON CONFLICT`, `RETURNING`, CTEs); what
//! differs stays in the engine's file: connecting and migrating, transactions and locks (SQLite's
//! `BEGIN IMMEDIATE` serialises writers; PostgreSQL takes advisory transaction locks where a
//! read decides a write), claims (`FOR UPDATE SKIP LOCKED`), bulk import (`COPY`), and a few
//! fragments ([`engine_sql!`]).
//!
//! Queries are checked at run time (`query_as` + `FromRow`), so the crate builds without a
//! database and one test suite drives both engines. States are Rust enums (`models`) stored as
//! their lower-case names; numbers are BIGINT on PostgreSQL and decode as `i64` on both.

use std::time::Duration;

use crate::domain::{SubscriberEmail, SubscriberName};

mod clock;
mod limits;
mod models;
mod shared;

pub use clock::now_ms;
pub use models::*;
pub use subject_tests::{HELD, sample_size};

/// Compiles the items given once for each engine, in a module of its own where `Db`, `DB`
/// (the sqlx database), `Conn`, `Tx` and `engine_sql!` are that engine's.
macro_rules! for_each_engine {
    ($($body:tt)*) => {
        mod on_sqlite {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use crate::store::sqlite::{Conn, DB, Db, SEARCH_ORDER, SEARCH_WINDOW, Tx, engine_sql, push_search_from};
            $($body)*
        }
        mod on_postgres {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use crate::store::postgres::{Conn, DB, Db, SEARCH_ORDER, SEARCH_WINDOW, Tx, engine_sql, push_search_from};
            $($body)*
        }
    };
}

mod postgres;
mod sqlite;

mod accounts;
mod alerts;
mod articles;
mod choices;
mod clicks;
mod counters;
mod dashboard;
mod desk;
mod digests;
mod dmarc;
mod feedback;
mod guard;
mod ledger;
mod mailq;
mod planned;
mod report;
mod schedules;
mod subject_tests;
mod subscribers;
mod upgrades;
mod warmup;
mod waves;

#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::Db),
    Postgres(postgres::Db),
}

impl Store {
    /// Opens (creating if needed) the database `url` names and applies its migrations:
    /// `sqlite://PATH` or `postgres://…` / `postgresql://…`.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(postgres::Db::connect(url).await?))
        } else {
            Ok(Store::Sqlite(sqlite::Db::connect(url).await?))
        }
    }

    /// Which engine, for logs and the benchmark.
    pub fn engine(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }
}

/// `Store`'s methods, each forwarded to the engine's method of the same name.
macro_rules! facade {
    ($( $(#[$m:meta])* pub async fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$m])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Store::Sqlite(db) => db.$name($($arg),*).await,
                        Store::Postgres(db) => db.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

facade! {
    // ------------------------------------------------------------ alerts
    /// The alert of an urgent article that arrived since `fresh_since`, once per article.
    pub async fn create_alert(&self, article: i64, approved: bool, fresh_since: i64) -> anyhow::Result<Option<i64>>;
    /// The latest alerts, newest first.
    pub async fn alerts(&self, limit: i64) -> anyhow::Result<Vec<Alert>>;
    pub async fn alert(&self, id: i64) -> anyhow::Result<Option<Alert>>;
    /// A waiting alert approved, to start at `send_at`.
    pub async fn approve_alert(&self, id: i64, by: &str, send_at: i64) -> anyhow::Result<bool>;
    /// A waiting or approved alert cancelled; false once it started.
    pub async fn cancel_alert(&self, id: i64, by: &str) -> anyhow::Result<bool>;
    /// Approved alerts whose undo window has ended.
    pub async fn due_alerts(&self, now: i64) -> anyhow::Result<Vec<i64>>;
    /// When the next approved alert starts.
    pub async fn next_alert_at(&self) -> anyhow::Result<Option<i64>>;
    /// Confirmed readers who take alerts.
    pub async fn alert_readers(&self) -> anyhow::Result<Vec<AlertReader>>;
    /// (reader, when) of every alert message since `since`.
    pub async fn recent_alerts(&self, since: i64) -> anyhow::Result<Vec<(i64, i64)>>;
    /// One article by id.
    pub async fn article(&self, id: i64) -> anyhow::Result<Option<Article>>;
    /// Marks an article urgent.
    pub async fn mark_urgent(&self, id: i64) -> anyhow::Result<()>;
    /// Starts an approved alert with the rows `plan` picks (see the store's `alerts`).
    pub async fn start_alert(&self, id: i64, rendered: &RenderedDigest, recent_since: i64, plan: AlertPlanner<'_>) -> anyhow::Result<Option<(i64, i64)>>;
    /// (reader, article, sections) for each of `articles` a reader of `schedule` had as an alert.
    pub async fn alerted(&self, schedule: &str, articles: &[i64]) -> anyhow::Result<Vec<Alerted>>;

    // ------------------------------------------------------------ local-hour waves
    /// The distinct time zones confirmed readers chose.
    pub async fn reader_zones(&self) -> anyhow::Result<Vec<String>>;
    /// A local-hour send's waves, earliest first.
    pub async fn waves(&self, digest: i64) -> anyhow::Result<Vec<Wave>>;
    /// A reader's rows waiting for their wave: (row, schedule, slot).
    pub async fn waiting_waves(&self, reader: i64) -> anyhow::Result<Vec<(i64, String, i64)>>;
    /// Moves a waiting row to `zone`'s wave at `at`.
    pub async fn move_to_wave(&self, row: i64, zone: &str, at: i64) -> anyhow::Result<bool>;

    // ------------------------------------------------------------ health, upgrades
    /// Whether the store takes writes that last (see each engine's `health`).
    pub async fn health(&self) -> anyhow::Result<()>;
    /// One-time rewrites of what earlier versions stored (see `upgrades`).
    pub async fn upgrade_data(&self, canonical_url: fn(&str) -> String) -> anyhow::Result<()>;

    // ------------------------------------------------------------ subscribers
    /// Records a sign-up and queues its confirmation unless that inbox had one recently.
    pub async fn subscribe(&self, email: &SubscriberEmail, name: &SubscriberName, source: &str, choice: &Choice, clock: &ReaderClock, now: i64) -> anyhow::Result<bool>;
    /// A reader's status and what they chose to receive.
    pub async fn reader_choice(&self, id: i64) -> anyhow::Result<Option<(SubscriberStatus, Choice)>>;
    /// Readers whose every chosen schedule (or section) left the configuration get everything.
    pub async fn forget_lost_choices(&self, schedules: &[&str], sections: &[&str]) -> anyhow::Result<u64>;
    /// The benchmark's readers spread over sections, one each.
    #[cfg(feature = "bench")]
    pub async fn spread_sections(&self, slugs: &[String]) -> anyhow::Result<()>;
    /// Saves a reader's choice; false when they are not subscribed.
    pub async fn set_reader_choice(&self, id: i64, choice: &Choice) -> anyhow::Result<bool>;
    /// A reader's time zone and alerts; `None` for nobody.
    pub async fn reader_clock(&self, id: i64) -> anyhow::Result<Option<ReaderClock>>;
    /// Saves a reader's choice and clock together: the clock as it was, `None` when they are
    /// not subscribed (nothing saved).
    pub async fn set_preferences(&self, id: i64, choice: &Choice, clock: &ReaderClock) -> anyhow::Result<Option<ReaderClock>>;
    /// Confirms a sign-up; with `welcome`, queues the reader's one welcome with it.
    pub async fn confirm(&self, id: i64, issued: i64, now: i64, welcome: bool) -> anyhow::Result<ConfirmOutcome>;
    pub async fn confirm_state(&self, id: i64, issued: i64) -> anyhow::Result<ConfirmOutcome>;
    /// Unsubscribes and takes the reader out of every send's queue; `how` goes to the
    /// reader's consent history.
    pub async fn unsubscribe(&self, id: i64, how: &str, now: i64) -> anyhow::Result<bool>;
    /// Adds readers (`(email, name)` or `(email, name, zone)`), leaving known addresses alone:
    /// (added, already known).
    pub async fn import(&self, rows: &[impl NewReader], confirmed: bool, source: &str) -> anyhow::Result<(u64, u64)>;
    pub async fn subscribers_after(&self, after_id: i64, limit: i64) -> anyhow::Result<Vec<SubscriberRow>>;
    pub async fn list_subscribers(&self, filter: &ReaderFilter, page: i64, per_page: i64) -> anyhow::Result<(Vec<SubscriberRow>, i64)>;
    pub async fn subscriber(&self, id: i64) -> anyhow::Result<Option<SubscriberRow>>;
    pub async fn consent_history(&self, id: i64) -> anyhow::Result<Vec<ConsentRow>>;
    pub async fn count_subscribers(&self, status: SubscriberStatus) -> anyhow::Result<i64>;
    pub async fn subscriber_id_by_email(&self, email: &SubscriberEmail) -> anyhow::Result<Option<i64>>;
    /// GDPR erasure, with the reader's consent history and queued emails; whether there was
    /// anyone to erase.
    pub async fn erase_subscriber(&self, id: i64) -> anyhow::Result<bool>;
    /// How many of the reader's deliveries are claimed by a live worker right now.
    pub async fn deliveries_in_flight_to(&self, subscriber: i64, now: i64) -> anyhow::Result<i64>;
    /// Of `ids`, the subscribers who are still confirmed.
    pub async fn still_confirmed(&self, ids: &[i64]) -> anyhow::Result<Vec<i64>>;

    // ------------------------------------------------------------ mail queue
    pub async fn claim_mail(&self, limit: i64, lease: Duration, now: i64) -> anyhow::Result<Vec<QueuedMail>>;
    pub async fn record_mail(&self, m: &QueuedMail, outcome: MailOutcome<'_>) -> anyhow::Result<()>;
    pub async fn purge_mail(&self, before: i64) -> anyhow::Result<u64>;
    pub async fn next_mail_due(&self) -> anyhow::Result<Option<i64>>;

    // ------------------------------------------------------------ articles
    pub async fn upsert_article(&self, a: &NewArticle) -> anyhow::Result<(i64, bool)>;
    /// The articles the next digest of `schedule` would carry, newest first.
    pub async fn new_articles(&self, schedule: &str, first_since: i64, max: u32) -> anyhow::Result<Vec<Article>>;
    pub async fn article_count(&self) -> anyhow::Result<i64>;
    /// Takes an article out of a schedule's coming digest, or puts it back.
    pub async fn exclude_article(&self, schedule: &str, article: i64, exclude: bool, by: &str, now: i64) -> anyhow::Result<bool>;
    pub async fn excluded_articles(&self, schedule: &str) -> anyhow::Result<Vec<ExcludedArticle>>;

    // ------------------------------------------------------------ schedules, feeds, pacing
    pub async fn schedule_last_slot(&self, name: &str) -> anyhow::Result<Option<i64>>;
    pub async fn mark_slot(&self, name: &str, slot: i64) -> anyhow::Result<()>;
    pub async fn reset_schedule(&self, name: &str) -> anyhow::Result<()>;
    pub async fn set_schedule_paused(&self, name: &str, paused: bool) -> anyhow::Result<()>;
    pub async fn schedule_states(&self) -> anyhow::Result<Vec<ScheduleState>>;
    /// Takes this process's turn to poll `url` if it is due (one process per turn).
    pub async fn take_feed_turn(&self, url: &str, every: Duration, now: i64) -> anyhow::Result<bool>;
    /// Reserves `n` send times, `interval_us` apart, from the deployment-wide pacing row;
    /// returns the first (µs since the epoch).
    pub async fn reserve_sends(&self, n: i64, interval_us: f64, now_us: i64) -> anyhow::Result<i64>;

    // ------------------------------------------------------------ digests
    /// Stores a digest rendered from `articles` and its whole audience, in one transaction.
    pub async fn create_digest(&self, req: DigestRequest<'_>, articles: &[i64], rendered: Option<&RenderedDigest>, editions: &[RenderedEdition]) -> anyhow::Result<DigestOutcome>;
    /// The distinct section choices among the readers of `schedule`.
    /// Confirmed readers of a schedule by the sections they chose.
    pub async fn audience_by_choice(&self, schedule: &str, for_new_readers: bool) -> anyhow::Result<Vec<(Option<String>, i64)>>;
    pub async fn section_choices(&self, schedule: &str, for_new_readers: bool) -> anyhow::Result<Vec<String>>;
    pub async fn digest_edition(&self, digest: i64, edition: i64) -> anyhow::Result<Option<Edition>>;
    pub async fn digest_status(&self, id: i64) -> anyhow::Result<Option<DigestStatus>>;
    pub async fn digest(&self, id: i64) -> anyhow::Result<Option<Digest>>;
    /// Published digests, newest first, `limit` after skipping `offset`.
    pub async fn archive(&self, limit: i64, offset: i64) -> anyhow::Result<Vec<ArchiveEntry>>;
    pub async fn progress(&self, id: i64) -> anyhow::Result<Option<Progress>>;
    pub async fn set_digest_status(&self, id: i64, to: DigestStatus) -> anyhow::Result<bool>;
    pub async fn fail_digest(&self, id: i64, error: &str) -> anyhow::Result<()>;
    pub async fn retry_failed(&self, id: i64) -> anyhow::Result<u64>;
    pub async fn failures(&self, id: i64, limit: i64) -> anyhow::Result<Vec<Failure>>;

    // ------------------------------------------------------------ sends for later
    /// Stores a send planned for later (status `queued`); its id.
    pub async fn plan_send(&self, p: NewPlan<'_>) -> anyhow::Result<i64>;
    /// A planned send, waiting or started; `None` for any other send.
    pub async fn plan(&self, id: i64) -> anyhow::Result<Option<Plan>>;
    /// Planned sends still waiting, soonest first (only those due by `due_by`, if given).
    pub async fn waiting_plans(&self, due_by: Option<i64>, limit: i64) -> anyhow::Result<Vec<Plan>>;
    /// When the next planned send starts.
    pub async fn next_plan_at(&self) -> anyhow::Result<Option<i64>>;
    /// Moves a waiting send or changes its subject; false once it started or was cancelled.
    pub async fn edit_plan(&self, id: i64, p: NewPlan<'_>) -> anyhow::Result<bool>;
    /// Cancels a waiting send that can no longer start, saying why.
    pub async fn drop_plan(&self, id: i64, reason: &str) -> anyhow::Result<bool>;

    // ------------------------------------------------------------ the ledger
    /// Claims due deliveries with a lease.
    pub async fn claim(&self, limit: i64, lease: Duration, now: i64, only_alerts: bool) -> anyhow::Result<Vec<Claimed>>;
    /// Extends the claims still held under the lease they were claimed with; the ids extended.
    pub async fn renew_leases(&self, held: &[(i64, i64)], lease_until: i64) -> anyhow::Result<Vec<i64>>;
    /// Writes a batch of outcomes in one transaction.
    pub async fn record(&self, outcomes: &[Outcome]) -> anyhow::Result<()>;
    pub async fn finish_digests(&self, bounce_after: u32) -> anyhow::Result<Vec<i64>>;
    pub async fn next_due(&self, only_alerts: bool) -> anyhow::Result<Option<i64>>;
    pub async fn queue_depth(&self) -> anyhow::Result<i64>;

    // ------------------------------------------------------------ bounces, complaints
    /// Records an event once and applies it to the reader.
    pub async fn record_feedback(&self, ev: &FeedbackEvent, bounce_after: u32, soft_after: u32, now: i64) -> anyhow::Result<FeedbackResult>;
    pub async fn feedback_counts(&self, digest: i64) -> anyhow::Result<FeedbackCounts>;
    pub async fn is_suppressed(&self, email_norm: &str) -> anyhow::Result<bool>;

    // ------------------------------------------------------------ DMARC reports
    /// Stores an aggregate report and its records once; false when it was stored before.
    pub async fn store_dmarc_report(&self, r: &NewDmarcReport, now: i64) -> anyhow::Result<bool>;
    /// The records from `since_day` (YYYY-MM-DD, UTC) on, counted: in total, per day, per
    /// reporting organisation, and the sources that failed.
    pub async fn dmarc_summary(&self, since_day: &str) -> anyhow::Result<DmarcSummary>;
    /// The same records in total only (for `/metrics`).
    pub async fn dmarc_totals(&self, since_day: &str) -> anyhow::Result<DmarcCounts>;

    // ------------------------------------------------------------ the send guard
    /// Counts of sends that are sending (or of one), as the guard judges them.
    pub async fn guard_counts(&self, digest: Option<i64>) -> anyhow::Result<Vec<GuardCounts>>;
    /// Pauses a send for the guard, once; true for the caller that paused it.
    pub async fn guard_pause(&self, digest: i64, stop: &GuardStop, base_delivered: i64, message: &str, now: i64) -> anyhow::Result<bool>;
    /// Mailbox providers whose readers wait, or waited last.
    pub async fn provider_backoffs(&self) -> anyhow::Result<Vec<ProviderBackoff>>;
    /// Starts a provider's backoff unless another process did since `prev_level` was read.
    pub async fn trip_provider(&self, b: &ProviderBackoff, prev_level: i64) -> anyhow::Result<bool>;
    /// Forgets a provider's ended backoff: it answers again.
    pub async fn calm_provider(&self, provider: &str, now: i64) -> anyhow::Result<()>;

    // ------------------------------------------------------------ clicks
    pub async fn click_target(&self, delivery: i64, article: i64) -> anyhow::Result<Option<ClickTarget>>;
    /// Counts a click unless its mark was counted already, and the message's first click.
    pub async fn record_click(&self, click: &Click<'_>, now: i64) -> anyhow::Result<ClickCounted>;
    pub async fn most_clicked(&self, since: i64, limit: i64) -> anyhow::Result<Vec<LinkRow>>;
    pub async fn digest_clicks(&self, digest: i64) -> anyhow::Result<Vec<ArticleClicks>>;
    /// A send's readers who clicked: (edition, provider, readers).
    pub async fn send_clicks(&self, digest: i64) -> anyhow::Result<Vec<(i64, String, i64)>>;

    // ------------------------------------------------------------ a send's report
    /// What became of a send's messages per edition and address domain.
    pub async fn send_report(&self, digest: i64) -> anyhow::Result<Vec<ReportRow>>;
    /// A send's editions beyond the main one: (edition, its sections' slugs, comma-separated).
    pub async fn edition_sections(&self, digest: i64) -> anyhow::Result<Vec<(i64, String)>>;

    // ------------------------------------------------------------ relays and warm-up
    /// Takes up to `want` of a provider's allowance on `day`, whose cap is `cap`: what was granted.
    pub async fn warmup_take(&self, day: &str, provider: &str, want: i64, cap: i64) -> anyhow::Result<i64>;
    /// Gives back `n` unused of a provider's allowance on `day`.
    pub async fn warmup_return(&self, day: &str, provider: &str, n: i64) -> anyhow::Result<()>;
    /// The warm-up's first day, if anything was sent under it.
    pub async fn warmup_first_day(&self) -> anyhow::Result<Option<String>>;
    /// What a send's warm-up held back: (provider, `pending` or `skipped`, messages).
    pub async fn warmup_held(&self, digest: i64) -> anyhow::Result<Vec<(String, String, i64)>>;
    /// Messages of a send each relay took: (relay, messages).
    pub async fn relay_counts(&self, digest: i64) -> anyhow::Result<Vec<(String, i64)>>;

    // ------------------------------------------------------------ the editor's desk
    /// What an editor set for `schedule`'s next digest.
    pub async fn next_digest(&self, schedule: &str) -> anyhow::Result<Option<StoredDesk>>;
    /// Replaces it (an empty desk deletes it).
    pub async fn set_next_digest(&self, schedule: &str, desk: &Desk, by: &str, now: i64) -> anyhow::Result<()>;
    /// Sends whose subject test is due to be decided.
    pub async fn due_subject_tests(&self, now: i64) -> anyhow::Result<Vec<i64>>;
    /// A send's subject test: each subject's sample, sent and clickers; the winner.
    pub async fn subject_test(&self, digest: i64) -> anyhow::Result<Option<SubjectTestRow>>;
    /// Records the winner and releases the rest of the audience, once.
    pub async fn decide_subject_test(&self, digest: i64, winner: i64, subject: &str, note: &str, now: i64) -> anyhow::Result<bool>;

    // ------------------------------------------------------------ dashboard
    pub async fn status_counts(&self) -> anyhow::Result<Vec<(SubscriberStatus, i64)>>;
    /// Consent events since `since` per `bucket_ms`: (bucket start, event, count).
    pub async fn consent_counts(&self, since: i64, bucket_ms: i64) -> anyhow::Result<Vec<(i64, String, i64)>>;
    pub async fn sends(&self, before: Option<i64>, limit: i64) -> anyhow::Result<Vec<SendSummary>>;

    // ------------------------------------------------------------ accounts, tokens, audit
    pub async fn add_admin(&self, email: &str, role: Role, password_hash: &str, now: i64) -> anyhow::Result<Option<i64>>;
    pub async fn admin_by_email(&self, email: &str) -> anyhow::Result<Option<Admin>>;
    pub async fn admin(&self, id: i64) -> anyhow::Result<Option<Admin>>;
    pub async fn admins(&self) -> anyhow::Result<Vec<Admin>>;
    /// Counts a failed login; returns whether the account is locked now.
    pub async fn login_failed(&self, id: i64, max: i64, lock_ms: i64, now: i64) -> anyhow::Result<bool>;
    pub async fn login_succeeded(&self, id: i64) -> anyhow::Result<()>;
    /// Changes a role or removes the account (`None`, its tokens revoked at `now`); false if
    /// it would leave no owner.
    pub async fn set_admin_role(&self, id: i64, role: Option<Role>, now: i64) -> anyhow::Result<bool>;
    pub async fn set_password(&self, id: i64, password_hash: &str) -> anyhow::Result<()>;
    pub async fn set_totp(&self, id: i64, secret: Option<&str>, step: Option<i64>) -> anyhow::Result<()>;
    /// Records a used code's step; false when it (or a later one) was used: a replay.
    pub async fn use_totp_step(&self, id: i64, step: i64) -> anyhow::Result<bool>;
    /// Clears the second factor and ends the account's sessions.
    pub async fn reset_totp(&self, id: i64) -> anyhow::Result<()>;
    pub async fn start_session(&self, id_hash: &str, admin: i64, stage: SessionStage, replaces: Option<&str>, now: i64, absolute_ms: i64) -> anyhow::Result<()>;
    pub async fn session(&self, id_hash: &str, now: i64, idle_ms: i64, absolute_ms: i64) -> anyhow::Result<Option<SessionAdmin>>;
    pub async fn end_session(&self, id_hash: &str) -> anyhow::Result<()>;
    pub async fn end_sessions_of(&self, admin: i64) -> anyhow::Result<u64>;
    pub async fn add_api_token(&self, name: &str, role: Role, token_hash: &str, hint: &str, created_by: &str, now: i64) -> anyhow::Result<i64>;
    pub async fn api_token(&self, token_hash: &str, now: i64) -> anyhow::Result<Option<ApiToken>>;
    pub async fn api_tokens(&self) -> anyhow::Result<Vec<ApiToken>>;
    pub async fn revoke_api_token(&self, id: i64, now: i64) -> anyhow::Result<Option<String>>;
    pub async fn audit(&self, r: &AuditRecord, now: i64) -> anyhow::Result<()>;
    pub async fn audit_log(&self, before: Option<i64>, action: Option<&str>, limit: i64) -> anyhow::Result<Vec<AuditEntry>>;
}
