//! Breaking-news alerts: an urgent article becomes an alert; an editor's «أرسل» starts it
//! after the undo window (or it starts at once with `alerts.approval = "auto"`); each reader
//! who takes alerts gets it within their quiet hours and daily allowance
//! ([`super::alert_plan`]), through the same ledger as digests.

use chrono::Utc;

use super::{
    Actor, App, OpError, Refusal,
    alert_plan::{self, AlertPlan},
};
use crate::{
    config::Approval,
    render::SlotMarkers,
    store::{Alert, AlertStatus, Role, now_ms},
};

/// Alerts listed on the console's «عاجل» page and by `GET /api/alerts`.
const LISTED: i64 = 50;
/// How far back a reader's alerts count toward their day (a day is at most 26 hours long
/// somewhere, and the plan counts only the reader's own day).
const BUDGET_LOOKBACK_MS: i64 = 50 * 3600 * 1000;
/// How long a planned reach is shown before it is planned again.
const REACH_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// An alert as the console and the API show it: with, while it waits, whom it would reach
/// now.
#[derive(Debug, serde::Serialize)]
pub struct AlertView {
    #[serde(flatten)]
    pub alert: Alert,
    /// Its audience were it sent now (only while waiting or in the undo window).
    pub reach: Option<AlertPlan>,
}

impl App {
    /// After an article arrives (a feed, the API): its alert when it is urgent, pushed so or
    /// in `alerts.categories`. With `alerts.approval = "auto"` it starts at once.
    pub(crate) async fn consider_alert(
        &self,
        article: i64,
        urgent: bool,
        categories: &[String],
    ) -> anyhow::Result<Option<i64>> {
        let a = &self.settings.alerts;
        if !(urgent || a.urgent_category(categories.iter().map(String::as_str))) {
            return Ok(None);
        }
        self.store.mark_urgent(article).await?;
        let auto = a.approval == Approval::Auto;
        let fresh_since = now_ms() - a.max_delay.as_millis() as i64;
        let Some(id) = self.store.create_alert(article, auto, fresh_since).await? else {
            return Ok(None);
        };
        tracing::info!(alert = id, article, auto, "alert created");
        if auto {
            self.start_due_alerts().await?;
        }
        Ok(Some(id))
    }

    /// Starts every approved alert whose undo window has ended: the scheduler's door (and the
    /// pusher's, when alerts need no approval). Public for it; no person calls it.
    pub async fn start_due_alerts(&self) -> anyhow::Result<usize> {
        let mut started = 0;
        for id in self.store.due_alerts(now_ms()).await? {
            if self.start_alert(id).await? {
                started += 1;
            }
        }
        Ok(started)
    }

    /// When the next approved alert is due (ms), for the scheduler's sleep.
    pub async fn next_alert_at(&self) -> anyhow::Result<Option<i64>> {
        self.store.next_alert_at().await
    }

    async fn start_alert(&self, id: i64) -> anyhow::Result<bool> {
        let Some(alert) = self.store.alert(id).await? else {
            return Ok(false);
        };
        let Some(article) = self.store.article(alert.article_id).await? else {
            return Ok(false);
        };
        let (renderer, settings) = (self.renderer.clone(), self.settings.clone());
        let rendered = tokio::task::spawn_blocking(move || {
            let clicks = settings.newsletter.click_counts;
            renderer.alert(
                &settings,
                &article,
                Utc::now(),
                &SlotMarkers::random(),
                clicks,
            )
        })
        .await??;
        let now = Utc::now();
        let (settings, newsroom) = (&self.settings.alerts, self.settings.newsroom_tz());
        let plan = move |readers: &[_], recent: &[_]| {
            alert_plan::plan(settings, newsroom, readers, recent, now).rows
        };
        let since = now.timestamp_millis() - BUDGET_LOOKBACK_MS;
        let Some((digest, readers)) = self.store.start_alert(id, &rendered, since, &plan).await?
        else {
            return Ok(false);
        };
        tracing::info!(alert = id, digest, readers, "alert started");
        // Budgets changed: the next look at the «عاجل» page plans again.
        self.alert_reach.lock().expect("not poisoned").take();
        self.dispatcher.wake.notify_one();
        Ok(true)
    }

    /// Whom an alert sent now would reach: at once, after quiet hours, over their day's
    /// allowance, or held for the digest.
    pub async fn alert_reach(&self) -> anyhow::Result<AlertPlan> {
        let readers = self.store.alert_readers().await?;
        let now = Utc::now();
        let recent = self
            .store
            .recent_alerts(now.timestamp_millis() - BUDGET_LOOKBACK_MS)
            .await?;
        Ok(alert_plan::plan(
            &self.settings.alerts,
            self.settings.newsroom_tz(),
            &readers,
            &recent,
            now,
        ))
    }

    /// [`App::alert_reach`], planned at most every [`REACH_TTL`].
    async fn cached_reach(&self) -> anyhow::Result<AlertPlan> {
        if let Some((at, plan)) = &*self.alert_reach.lock().expect("not poisoned")
            && at.elapsed() < REACH_TTL
        {
            return Ok(plan.clone());
        }
        let plan = self.alert_reach().await?;
        *self.alert_reach.lock().expect("not poisoned") =
            Some((std::time::Instant::now(), plan.clone()));
        Ok(plan)
    }

    /// The latest alerts (`GET /api/alerts`, the «عاجل» page): viewers and up.
    pub async fn list_alerts(&self, actor: &Actor) -> Result<Vec<AlertView>, OpError> {
        actor.require(Role::Viewer)?;
        let alerts = self.store.alerts(LISTED).await?;
        let open = alerts
            .iter()
            .any(|a| matches!(a.status, AlertStatus::Waiting | AlertStatus::Approved));
        let reach = if open {
            Some(self.cached_reach().await?)
        } else {
            None
        };
        Ok(alerts
            .into_iter()
            .map(|alert| {
                let open = matches!(alert.status, AlertStatus::Waiting | AlertStatus::Approved);
                AlertView {
                    reach: reach.clone().filter(|_| open),
                    alert,
                }
            })
            .collect())
    }

    /// «أرسل»: the alert starts when the undo window (`alerts.undo`) ends. Editors; audited.
    pub async fn send_alert(&self, actor: &Actor, id: i64) -> Result<Alert, OpError> {
        actor.require(Role::Editor)?;
        let alert = self.alert_or_404(id).await?;
        let send_at = now_ms() + self.settings.alerts.undo.as_millis() as i64;
        if !self.store.approve_alert(id, &actor.name, send_at).await? {
            return Err(Refusal::AlertState(alert.status, "sent").into());
        }
        self.audit(
            actor,
            "alert_send",
            format!("alert:{id}"),
            alert.title.clone(),
        )
        .await;
        if self.settings.alerts.undo.is_zero() {
            self.start_due_alerts().await?;
        }
        self.alert_or_404(id).await
    }

    /// «تراجع» within the undo window, or dismissing a waiting alert: nothing is sent.
    /// Editors; audited.
    pub async fn cancel_alert(&self, actor: &Actor, id: i64) -> Result<Alert, OpError> {
        actor.require(Role::Editor)?;
        let alert = self.alert_or_404(id).await?;
        if !self.store.cancel_alert(id, &actor.name).await? {
            let now = self.alert_or_404(id).await?;
            return Err(Refusal::AlertState(now.status, "cancelled").into());
        }
        self.audit(actor, "alert_cancel", format!("alert:{id}"), alert.title)
            .await;
        self.alert_or_404(id).await
    }

    async fn alert_or_404(&self, id: i64) -> Result<Alert, OpError> {
        self.store
            .alert(id)
            .await?
            .ok_or(OpError::NotFound("alert"))
    }
}
