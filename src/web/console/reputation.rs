//! «السمعة»: what the inbox providers' DMARC aggregate reports say about the mail sent in
//! our domain's name over the last thirty days (see `app::reputation`): pass rates in all,
//! per day and per reporting organisation, and the sources whose mail failed. The API's
//! `GET /api/reputation` returns the same.

use std::sync::Arc;

use axum::{Router, extract::State, response::Response, routing::get};
use chrono::NaiveDate;
use serde::Serialize;

use super::{
    respond::PageError,
    session::Me,
    view::{self, render},
};
use crate::{
    app::{App, GroupRates, Rates},
    config::Digits,
    store::DmarcSource,
};

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/reputation", get(page))
}

/// A group's rates as the page writes them: counts, and percentages in the newsroom's digits.
#[derive(Serialize)]
struct RatesView {
    /// The day (ms at its UTC midnight, for the `day` filter) or the organisation.
    day: Option<i64>,
    org: String,
    messages: i64,
    passed: i64,
    pass: String,
    dkim: String,
    spf: String,
    /// Under 98 %: the share that fails is worth a look.
    low: bool,
}

fn percent(rate: Option<f64>, d: Digits) -> String {
    match rate {
        None => "—".into(),
        Some(r) => {
            let s = view::digits(&format!("{:.1}", r * 100.0), d);
            match d {
                Digits::Latin => format!("{s}%"),
                Digits::Arabic => format!("{s}٪"),
            }
        }
    }
}

fn rates_view(key: &str, r: &Rates, is_day: bool, d: Digits) -> RatesView {
    let day = is_day
        .then(|| NaiveDate::parse_from_str(key, "%Y-%m-%d").ok())
        .flatten()
        .and_then(|t| t.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis());
    RatesView {
        day,
        org: if is_day {
            String::new()
        } else {
            key.to_owned()
        },
        messages: r.messages,
        passed: r.passed,
        pass: percent(r.pass_rate, d),
        dkim: percent(r.dkim_rate, d),
        spf: percent(r.spf_rate, d),
        low: r.pass_rate.is_some_and(|p| p < 0.98),
    }
}

async fn page(State(app): State<Arc<App>>, me: Me) -> Result<Response, PageError> {
    let rep = app.reputation().await?;
    let d = app.settings.newsletter.digits;
    let mut c = view::context(&app, &me, "السمعة", "reputation", None);
    let groups = |g: &[GroupRates], is_day: bool| -> Vec<RatesView> {
        g.iter()
            .map(|g| rates_view(&g.key, &g.rates, is_day, d))
            .collect()
    };
    c.insert("days", &rep.days);
    c.insert("reports", &rep.reports);
    c.insert("total", &rates_view("", &rep.total, false, d));
    // Newest day first: the page is read for what happened lately.
    let mut by_day = groups(&rep.by_day, true);
    by_day.reverse();
    c.insert("by_day", &by_day);
    c.insert("by_org", &groups(&rep.by_org, false));
    let failing: &[DmarcSource] = &rep.failing;
    c.insert("failing", failing);
    c.insert("has_mailbox", &app.settings.bounces.has_mailbox());
    Ok(render("reputation.html", &c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_written_in_the_newsrooms_digits() {
        assert_eq!(percent(Some(0.915), Digits::Latin), "91.5%");
        assert_eq!(percent(Some(0.915), Digits::Arabic), "٩١٫٥٪");
        assert_eq!(percent(Some(1.0), Digits::Latin), "100.0%");
        assert_eq!(percent(None, Digits::Arabic), "—");
    }
}
