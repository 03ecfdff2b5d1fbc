//! A send's report by mailbox provider on its page («حسب مزوّد البريد»): per edition and
//! provider, delivered, failed, bounced, complaints, unsubscribes and readers who clicked,
//! with each provider's totals over the editions and the send's; and the same as CSV
//! (`/admin/sends/{id}/report.csv`, the API's `report.csv` twin).

use std::sync::Arc;

use axum::{Router, extract::State, response::Response, routing::get};
use serde::Serialize;

use super::{extract::Id, respond::PageError, session::Me};
use crate::{
    app::{App, OpError, Outcomes, ProviderRow},
    domain::Provider,
    store::DigestStatus,
};

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/sends/{id}/report.csv", get(csv))
}

async fn csv(State(app): State<Arc<App>>, _me: Me, Id(id): Id) -> Result<Response, PageError> {
    app.store
        .progress(id)
        .await?
        .ok_or(OpError::NotFound("send"))?;
    Ok(crate::web::report::csv_file(&app, id).await?)
}

/// The report as the send's page shows it.
#[derive(Serialize)]
pub(super) struct ReportView {
    /// Per edition and provider; `edition` is empty on the rows after an edition's first.
    rows: Vec<RowView>,
    /// Per provider over every edition, when there are several.
    by_provider: Vec<RowView>,
    total: Outcomes,
    csv_url: String,
}

#[derive(Serialize)]
struct RowView {
    edition: String,
    provider: &'static str,
    /// The services behind the provider («Outlook, Hotmail…»), as a hint.
    services: &'static str,
    #[serde(flatten)]
    outcomes: Outcomes,
}

/// `None` while the send is under way (the report reads its whole ledger; the page's
/// progress is what changes then) or when nothing was counted.
pub(super) async fn view(
    app: &App,
    id: i64,
    status: DigestStatus,
) -> anyhow::Result<Option<ReportView>> {
    if status.is_open() {
        return Ok(None);
    }
    let rows = app.send_report(id).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(report_view(app, id, &rows)))
}

fn report_view(app: &App, id: i64, rows: &[ProviderRow]) -> ReportView {
    let row = |edition: String, p: Provider, outcomes: Outcomes| RowView {
        edition,
        provider: p.arabic(),
        services: p.services(),
        outcomes,
    };
    let mut total = Outcomes::default();
    let mut per_provider = std::collections::BTreeMap::<Provider, Outcomes>::new();
    let mut shown = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        total += r.outcomes;
        *per_provider.entry(r.provider).or_default() += r.outcomes;
        let first_of_edition = i == 0 || rows[i - 1].edition != r.edition;
        let label = if first_of_edition {
            app.edition_label(&r.sections)
        } else {
            String::new()
        };
        shown.push(row(label, r.provider, r.outcomes));
    }
    let several = rows.iter().any(|r| r.edition != rows[0].edition);
    let by_provider = if several {
        per_provider
            .into_iter()
            .map(|(p, o)| row(String::new(), p, o))
            .collect()
    } else {
        Vec::new()
    };
    ReportView {
        rows: shown,
        by_provider,
        total,
        csv_url: format!("/admin/sends/{id}/report.csv"),
    }
}
