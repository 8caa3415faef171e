//! `/tags`: the tags in use, with how many published articles carry each.

use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::articles::PageParams;
use super::conditional::{Caching, ReadRequest, serve};
use super::extract::AppQuery;
use super::problems::BadQuery;
use crate::app::AppState;
use crate::error::ApiError;
use crate::views::{ListView, TagView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_tags))
}

/// List tags, most used first.
#[utoipa::path(
    get, path = "/tags", tag = "tags",
    params(PageParams),
    responses(
        (status = 200, description = "One page of tags", body = ListView<TagView>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        BadQuery,
    ),
)]
pub async fn list_tags(
    State(app): State<AppState>,
    AppQuery(params): AppQuery<PageParams>,
    request: ReadRequest,
) -> Result<Response, ApiError> {
    let cached = app.reader.tags(params.parse()?).await?;
    let entry = cached
        .entry
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("no tags".into()))?;
    Ok(serve(
        entry,
        &request,
        Caching::Public(&app.cache_control.tags),
    ))
}
