//! The admin API's editor's desk: `GET/PUT /api/schedules/{name}/next`, the twin of the
//! console's «المقالات» page.

use std::sync::Arc;

use axum::{
    Extension, Json, Router,
    extract::{Path, State},
    routing::get,
};

use super::{
    error::ApiError,
    extract::{BodyError, StrictJson},
};
use crate::app::{Actor, App, DeskChange, DeskView};

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/schedules/{name}/next", get(next).put(shape))
}

async fn next(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<DeskView>, ApiError> {
    Ok(Json(app.next_digest_view(&actor, &name).await?))
}

async fn shape(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    body: Result<StrictJson<DeskChange>, BodyError>,
) -> Result<Json<DeskView>, ApiError> {
    let StrictJson(change) = body?;
    Ok(Json(app.shape_next_digest(&actor, &name, change).await?))
}
