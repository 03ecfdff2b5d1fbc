//! A send's report by mailbox provider as a CSV file: the API's
//! `GET /api/sends/{id}/report.csv` and the console's `/admin/sends/{id}/report.csv` answer
//! the same file. The caller has checked that the send exists.

use axum::{
    http::header,
    response::{IntoResponse, Response},
};

use crate::app::App;

pub(crate) async fn csv_file(app: &App, id: i64) -> anyhow::Result<Response> {
    let rows = app.send_report(id).await?;
    let body = app.send_report_csv(&rows)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"send-{id}-providers.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}
