//! One-off sends for later: an editor plans a send of a schedule's digest for a date and time
//! in the newsroom's zone (or that wall-clock time in each reader's own zone); it waits as
//! `scheduled`, can be moved, given its own subject or cancelled until then, and the
//! scheduler starts it once, however many processes run (see `store::planned`).
//!
//! The digest is rendered when it starts, not when it is planned: the articles new at that
//! moment, the audience at that moment. Nothing new then, and it ends having sent nothing
//! (`reason: "nothing_new"`).

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::{Actor, App, OpError, Refusal, alert_plan::reader_zone};
use crate::{
    config::Schedule,
    domain::SubjectTemplate,
    render::calendar,
    store::{DigestKind, DigestOutcome, DigestStatus, NewPlan, Plan, Role, now_ms},
};

/// How far ahead a send may be planned: a season, not a calendar.
const HORIZON_DAYS: i64 = 90;
/// How far in the past an `at` may be and still be taken (the caller's clock and ours
/// differ a little): it starts at once.
const SKEW_MS: i64 = 10_000;
/// An editor's subject, at most (a subject line longer than this is cut by every inbox).
/// Waiting sends the console and `GET /api/sends?status=scheduled` list, and the scheduler
/// starts in one pass.
const LISTED: i64 = 100;
/// How `local_time` is stored.
const CLOCK: &str = "%Y-%m-%dT%H:%M:%S";

/// Why a send cannot be planned (or moved) as asked: English for the API, Arabic for the
/// console.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanRefusal {
    #[error("`at` is in the past: give a time to come")]
    Past,
    #[error("`at` is more than 90 days ahead")]
    TooFar,
    #[error("`at` does not exist in the newsroom's time zone ({0}): the clocks skip it")]
    NoSuchTime(String),
    #[error("subject: {0}")]
    Subject(&'static str),
    #[error("a test send goes now: `at` is for sends to readers")]
    TestLater,
}

impl PlanRefusal {
    pub fn arabic(&self) -> String {
        match self {
            PlanRefusal::Past => "الموعد مضى: اختر وقتاً قادماً.".into(),
            PlanRefusal::TooFar => {
                format!("الموعد بعيد: يمكن الجدولة حتى {HORIZON_DAYS} يوماً من الآن.")
            }
            PlanRefusal::NoSuchTime(_) => {
                "هذا الوقت لا يوجد بتوقيت النشرة (تُقدَّم فيه الساعة): اختر وقتاً آخر.".into()
            }
            PlanRefusal::Subject(_) => format!(
                "العنوان غير مقبول: نص من سطر واحد حتى {} حرف، ولا رموز فيه إلا {{{{ date }}}} و{{{{ date_short }}}}.",
                SubjectTemplate::MAX_EDITORS
            ),
            PlanRefusal::TestLater => "الإرسال التجريبي يذهب الآن، لا في موعد لاحق.".into(),
        }
    }

    /// The API's error code.
    pub fn code(&self) -> &'static str {
        match self {
            PlanRefusal::Subject(_) => "invalid_subject",
            PlanRefusal::TestLater => "invalid_request",
            _ => "invalid_at",
        }
    }
}

impl From<PlanRefusal> for OpError {
    fn from(r: PlanRefusal) -> OpError {
        OpError::Refused(Refusal::Plan(r))
    }
}

/// A send's status as the API and the console name it: a planned send waiting is
/// `scheduled` (stored as `queued`, which nothing else uses).
pub fn send_status_name(s: DigestStatus) -> &'static str {
    match s {
        DigestStatus::Queued => "scheduled",
        s => s.as_str(),
    }
}

/// A planned send as the API answers it.
#[derive(Debug, serde::Serialize)]
pub struct PlanView {
    pub id: i64,
    pub schedule: String,
    /// `scheduled` while it waits, then the send's own status.
    pub status: &'static str,
    /// When it starts (RFC 3339, the newsroom's offset).
    pub starts_at: String,
    /// The subject readers will see.
    pub subject: String,
    /// The editor's subject template, when not the schedule's.
    pub planned_subject: Option<String>,
    /// Each reader at this wall-clock time in their own zone.
    pub local: bool,
    pub local_time: Option<String>,
    pub created_by: Option<String>,
    /// Why it sent nothing (`nothing_new`).
    pub reason: Option<String>,
}

/// What a planned send will be, worked out before it is stored.
struct Worked {
    starts_at: i64,
    subject: String,
    planned_subject: Option<String>,
    local_time: Option<String>,
}

impl App {
    /// Plans a send of `schedule`'s digest to every confirmed reader at `at` (or, with
    /// `local`, at `at`'s wall-clock time in the newsroom's zone read in each reader's own).
    /// `subject` replaces the schedule's. Editors; audited.
    pub async fn plan_send(
        &self,
        actor: &Actor,
        schedule: Option<&str>,
        at: DateTime<Utc>,
        subject: Option<&str>,
        local: bool,
    ) -> Result<Plan, OpError> {
        actor.require(Role::Editor)?;
        let schedule = self
            .settings
            .schedule(schedule)
            .map_err(|_| Refusal::UnknownSchedule(schedule.unwrap_or_default().to_owned()))?;
        let w = self.work_out(schedule, at, subject, local, true).await?;
        let id = self
            .store
            .plan_send(NewPlan {
                schedule: &schedule.name,
                starts_at: w.starts_at,
                subject: &w.subject,
                planned_subject: w.planned_subject.as_deref(),
                local_time: w.local_time.as_deref(),
                created_by: &actor.name,
            })
            .await?;
        let detail = format!("{} — {}", schedule.label, self.plan_in_words(&w));
        self.audit(actor, "send_plan", format!("send:{id}"), detail)
            .await;
        tracing::info!(digest = id, starts_at = w.starts_at, "send planned");
        self.plan_or_404(id).await
    }

    /// Moves a waiting send (`at`) or changes its subject (`Some("")`: the schedule's again).
    /// 409 (`InvalidState`) once it started or was cancelled. Editors; audited.
    pub async fn edit_plan(
        &self,
        actor: &Actor,
        id: i64,
        at: Option<DateTime<Utc>>,
        subject: Option<&str>,
    ) -> Result<Plan, OpError> {
        actor.require(Role::Editor)?;
        let plan = self.plan_or_404(id).await?;
        if plan.status != DigestStatus::Queued {
            return Err(OpError::InvalidState(plan.status));
        }
        let schedule = self
            .settings
            .schedule(Some(&plan.schedule))
            .map_err(|_| Refusal::UnknownSchedule(plan.schedule.clone()))?;
        let local = plan.local_time.is_some();
        let moved = at.is_some();
        let at = match (at, &plan.local_time) {
            (Some(at), _) => at,
            (None, Some(clock)) => self.newsroom_instant(parse_clock(clock)?)?,
            (None, None) => ms_to_utc(plan.starts_at)?,
        };
        let subject = match subject {
            Some(s) => Some(s),
            None => plan.planned_subject.as_deref(),
        };
        let w = self.work_out(schedule, at, subject, local, moved).await?;
        let changed = self
            .store
            .edit_plan(
                id,
                NewPlan {
                    schedule: &schedule.name,
                    starts_at: w.starts_at,
                    subject: &w.subject,
                    planned_subject: w.planned_subject.as_deref(),
                    local_time: w.local_time.as_deref(),
                    created_by: &actor.name,
                },
            )
            .await?;
        if !changed {
            return Err(OpError::InvalidState(self.plan_or_404(id).await?.status));
        }
        self.audit(
            actor,
            "send_plan_edit",
            format!("send:{id}"),
            self.plan_in_words(&w),
        )
        .await;
        self.plan_or_404(id).await
    }

    /// Sends waiting for their time, soonest first: viewers and up.
    pub async fn waiting_plans(&self, actor: &Actor) -> Result<Vec<Plan>, OpError> {
        actor.require(Role::Viewer)?;
        Ok(self.store.waiting_plans(None, LISTED).await?)
    }

    /// A planned send, waiting or started (`NotFound` for any other send).
    pub async fn plan_or_404(&self, id: i64) -> Result<Plan, OpError> {
        self.store
            .plan(id)
            .await?
            .ok_or(OpError::NotFound("planned send"))
    }

    /// A planned send as the API answers it.
    pub fn plan_view(&self, p: &Plan) -> PlanView {
        let newsroom = self.settings.newsroom_tz();
        PlanView {
            id: p.id,
            schedule: p.schedule.clone(),
            status: send_status_name(p.status),
            starts_at: ms_to_utc(p.starts_at)
                .map(|t| t.with_timezone(&newsroom).to_rfc3339())
                .unwrap_or_default(),
            subject: p.subject.clone(),
            planned_subject: p.planned_subject.clone(),
            local: p.local_time.is_some(),
            local_time: p.local_time.clone(),
            created_by: p.created_by.clone(),
            reason: p.reason.clone(),
        }
    }

    /// A date and time as the console's form gives it, in the newsroom's zone; an hour the
    /// clocks skip is refused, an hour they repeat is its first.
    pub fn newsroom_instant(&self, clock: NaiveDateTime) -> Result<DateTime<Utc>, PlanRefusal> {
        let tz = self.settings.newsroom_tz();
        tz.from_local_datetime(&clock)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| PlanRefusal::NoSuchTime(tz.name().to_owned()))
    }

    /// Starts every planned send whose time has come: the scheduler's door. Public for it;
    /// no person calls it. Another process starting the same one at once is harmless: one
    /// fills it, the other finds it started.
    pub async fn start_due_plans(&self) -> anyhow::Result<usize> {
        let mut started = 0;
        for plan in self.store.waiting_plans(Some(now_ms()), LISTED).await? {
            let Ok(schedule) = self.settings.schedule(Some(&plan.schedule)) else {
                tracing::warn!(digest = plan.id, schedule = %plan.schedule, "a planned send's schedule is no longer configured; cancelled");
                self.store.drop_plan(plan.id, "unknown_schedule").await?;
                continue;
            };
            let out = self
                .create_digest_by(
                    schedule,
                    DigestKind::Manual,
                    None,
                    &[],
                    super::asked::Asked {
                        by: plan.created_by.as_deref(),
                        subject_test: None,
                        plan: Some(&plan),
                    },
                )
                .await;
            match out {
                // One that cannot start now (a render that fails) does not hold up the
                // others; it is tried again at the next pass.
                Err(e) => {
                    tracing::error!(digest = plan.id, error = %format!("{e:#}"), "cannot start a planned send")
                }
                Ok(DigestOutcome::Created { .. }) => started += 1,
                Ok(DigestOutcome::NothingNew) => {
                    tracing::info!(digest = plan.id, "a planned send found nothing new; done")
                }
                Ok(out) => {
                    tracing::debug!(digest = plan.id, outcome = ?out, "a planned send was started, cancelled or edited elsewhere")
                }
            }
        }
        Ok(started)
    }

    /// When the next planned send starts (ms), for the scheduler's sleep.
    pub async fn next_plan_at(&self) -> anyhow::Result<Option<i64>> {
        self.store.next_plan_at().await
    }

    /// Checks `at` (unless it is not `moved`: a send due but not yet started keeps its time
    /// while its subject changes) and `subject`, and works out when the send starts and what
    /// its subject will read.
    async fn work_out(
        &self,
        schedule: &Schedule,
        at: DateTime<Utc>,
        subject: Option<&str>,
        local: bool,
        moved: bool,
    ) -> Result<Worked, OpError> {
        let now = now_ms();
        let at_ms = at.timestamp_millis();
        if moved && at_ms < now - SKEW_MS {
            return Err(PlanRefusal::Past.into());
        }
        if at_ms > now + HORIZON_DAYS * 24 * 3600 * 1000 {
            return Err(PlanRefusal::TooFar.into());
        }
        let planned_subject = subject.map(str::trim).filter(|s| !s.is_empty());
        let template = planned_subject.map(subject_template).transpose()?;
        let newsroom = self.settings.newsroom_tz();
        let (starts_at, local_time) = if local {
            // The earliest of the zones readers chose (and the newsroom's): a zone where that
            // time has passed gets it when the send starts.
            let clock = at.with_timezone(&newsroom).naive_local();
            let clock = clock.with_nanosecond(0).unwrap_or(clock);
            let zones = self.store.reader_zones().await?;
            let first = zones
                .iter()
                .map(|z| reader_zone(Some(z), newsroom))
                .chain([newsroom])
                .map(|tz| instant_in(clock, tz))
                .min()
                .unwrap_or(at_ms);
            (first.max(now), Some(clock.format(CLOCK).to_string()))
        } else {
            (at_ms.max(now), None)
        };
        let template = template.as_ref().unwrap_or(&schedule.subject);
        let day = ms_to_utc(starts_at)?
            .with_timezone(&schedule.cron.timezone())
            .date_naive();
        let n = &self.settings.newsletter;
        let subject = template.render(
            &calendar::date_line(day, n.calendar, n.digits),
            &calendar::date_short(day, n.calendar, n.digits),
        )?;
        Ok(Worked {
            starts_at,
            subject,
            planned_subject: planned_subject.map(str::to_owned),
            local_time,
        })
    }

    /// «في 2027-01-05 07:00» (the newsroom's time, or each reader's), for the audit log.
    fn plan_in_words(&self, w: &Worked) -> String {
        let when = match &w.local_time {
            Some(clock) => format!("{} بتوقيت كل قارئ", clock.replace('T', " ")),
            None => ms_to_utc(w.starts_at)
                .map(|t| {
                    t.with_timezone(&self.settings.newsroom_tz())
                        .format("%Y-%m-%d %H:%M")
                        .to_string()
                })
                .unwrap_or_default(),
        };
        match &w.planned_subject {
            Some(s) => format!("في {when}، بعنوان «{s}»"),
            None => format!("في {when}"),
        }
    }
}

/// Inside [`App::create_digest_by`]: `schedule` with a planned send's own subject, if it has
/// one.
pub(super) fn with_plan_subject<'a>(
    schedule: &'a Schedule,
    plan: Option<&Plan>,
) -> anyhow::Result<Cow<'a, Schedule>> {
    Ok(match plan.and_then(|p| p.planned_subject.as_deref()) {
        Some(s) => Cow::Owned(Schedule {
            subject: SubjectTemplate::parse(s)?,
            ..schedule.clone()
        }),
        None => Cow::Borrowed(schedule),
    })
}

/// Inside [`App::create_digest_by`]: a local-time planned send's wall-clock time.
pub(super) fn plan_clock(plan: Option<&Plan>) -> anyhow::Result<Option<NaiveDateTime>> {
    Ok(plan
        .and_then(|p| p.local_time.as_deref())
        .map(parse_clock)
        .transpose()?)
}

/// When `clock` comes in `tz` (ms): its first instant if the clocks repeat it, the hour after
/// if they skip it.
pub(super) fn instant_in(clock: NaiveDateTime, tz: Tz) -> i64 {
    tz.from_local_datetime(&clock)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(clock + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| clock.and_utc().timestamp_millis())
}

fn parse_clock(s: &str) -> Result<NaiveDateTime, OpError> {
    NaiveDateTime::parse_from_str(s, CLOCK)
        .map_err(|e| OpError::Store(anyhow::anyhow!("a planned send's local_time `{s}`: {e}")))
}

fn ms_to_utc(ms: i64) -> Result<DateTime<Utc>, OpError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| OpError::Store(anyhow::anyhow!("a time out of range: {ms}")))
}

/// An editor's subject (see [`SubjectTemplate::editors`]).
fn subject_template(s: &str) -> Result<SubjectTemplate, PlanRefusal> {
    SubjectTemplate::editors(s).map_err(PlanRefusal::Subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_editors_subject_is_text_with_the_two_placeholders() {
        let t = subject_template("نشرة خاصة — {{ date_short }}").unwrap();
        assert_eq!(t.render("", "5 يناير").unwrap(), "نشرة خاصة — 5 يناير");
        for bad in [
            "{% for i in range(end=9) %}x{% endfor %}",
            "{{ range(end=99999999) | length }}",
            "a\nBcc: x@y.z",
            "{# #}",
        ] {
            assert!(subject_template(bad).is_err(), "{bad}");
        }
        assert!(subject_template(&"ن".repeat(201)).is_err());
    }

    #[test]
    fn a_wall_clock_time_in_each_zone() {
        let clock = NaiveDateTime::parse_from_str("2027-01-05T07:00:00", CLOCK).unwrap();
        let baghdad = instant_in(clock, chrono_tz::Asia::Baghdad);
        let kolkata = instant_in(clock, chrono_tz::Asia::Kolkata);
        assert_eq!(baghdad - kolkata, 150 * 60 * 1000);
        // 02:30 does not exist in Berlin on 2027-03-28: the hour after.
        let gap = NaiveDateTime::parse_from_str("2027-03-28T02:30:00", CLOCK).unwrap();
        let berlin = instant_in(gap, chrono_tz::Europe::Berlin);
        assert_eq!(
            Utc.timestamp_millis_opt(berlin).unwrap().to_rfc3339(),
            "2027-03-28T01:30:00+00:00"
        );
    }
}
