//! `/tags`: the tags in use, with how many published articles carry each.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::articles::parse_page;
use super::conditional::{Caching, ReadRequest, serve};
use super::extract::AppQuery;
use super::problems::{BadQuery, UnknownCursor};
use crate::app::AppState;
use crate::error::ApiError;
use crate::views::{ListView, TagView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_tags))
}

/// Paging for the tag list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagPageParams {
    /// 1-based page number (default 1): at most 100 (deeper pages go by
    /// `after`).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    page: Option<u32>,
    /// Items per page, 1 to 100 (default 20); other values are a 400.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    per_page: Option<u32>,
    /// The name of a tag: the page holds the ones after it in this order.
    /// `links.next` uses it. Not with `page` (400); empty is none; an
    /// unknown one is a 404 (`unknown_cursor`) naming `after`.
    after: Option<String>,
}

/// List tags, most used first, then by name.
#[utoipa::path(
    get, path = "/api/v1/tags", tag = "tags",
    params(TagPageParams),
    responses(
        (status = 200, description = "One page of tags", body = ListView<TagView>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        BadQuery,
        UnknownCursor,
    ),
)]
pub async fn list_tags(
    State(app): State<AppState>,
    AppQuery(params): AppQuery<TagPageParams>,
    request: ReadRequest,
) -> Result<Response, ApiError> {
    let after = params.after.filter(|name| !name.is_empty());
    let page = parse_page(params.page, params.per_page, after)?;
    let cached = app.reader.tags(page).await?;
    let entry = cached
        .entry
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("no tags".into()))?;
    Ok(serve(
        entry,
        &request,
        Caching::Public(&app.settings.cache.control.tags),
    ))
}
