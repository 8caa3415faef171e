//! Comments: listed and written under their article, read and deleted by id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use validator::Validate;

use super::articles::PageParams;
use super::conditional::{Caching, ReadRequest, serve, written};
use super::extract::{AppPath, AppQuery, AuthUser, MaybeUser, Valid};
use super::problems::{BadQuery, Forbidden, Invalid, NotFound, Unauthorized};
use super::rules;
use crate::app::AppState;
use crate::cache::Entry;
use crate::domain::Viewer;
use crate::error::ApiError;
use crate::reads::may_see;
use crate::views::{CommentView, ListView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_comments, create_comment))
        .routes(routes!(find_comment, delete_comment))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentInput {
    #[validate(length(min = 1, max = 5000), custom(function = "rules::not_blank"))]
    #[schema(min_length = 1, max_length = 5000, pattern = r"\S")]
    body: String,
}

/// Whether the article is a draft, if the caller may see it; else 404.
async fn visible_article(app: &AppState, caller: Viewer, id: i64) -> Result<bool, ApiError> {
    let cached = app.reader.article(id).await?;
    cached
        .entry
        .as_ref()
        .filter(|entry| may_see(caller, entry))
        .map(|entry| entry.draft_of.is_some())
        .ok_or_else(|| ApiError::NotFound("no such article".into()))
}

fn comment_caching(app: &AppState, draft: bool) -> Caching<'_> {
    if draft {
        Caching::Private
    } else {
        Caching::Public(&app.settings.cache.control.comments)
    }
}

/// List an article's comments, oldest first.
#[utoipa::path(
    get, path = "/api/v1/articles/{id}/comments", tag = "comments",
    params(("id" = i64, Path, description = "Article id"), PageParams),
    responses(
        (status = 200, description = "One page of comments", body = ListView<CommentView>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        BadQuery,
        NotFound,
    ),
    security((), ("bearer" = [])),
)]
pub async fn list_comments(
    State(app): State<AppState>,
    caller: MaybeUser,
    AppPath(id): AppPath<i64>,
    AppQuery(params): AppQuery<PageParams>,
    request: ReadRequest,
) -> Result<Response, ApiError> {
    let page = params.parse()?;
    let draft = visible_article(&app, caller.viewer(), id).await?;
    let cached = app.reader.comments(id, page).await?;
    let entry = cached.entry.as_ref().ok_or_else(no_comment)?;
    Ok(serve(entry, &request, comment_caching(&app, draft)))
}

/// Comment on an article (any signed-in user).
#[utoipa::path(
    post, path = "/api/v1/articles/{id}/comments", tag = "comments",
    params(("id" = i64, Path, description = "Article id")),
    request_body = CommentInput,
    responses(
        (status = 201, description = "Created; Location names it", body = CommentView),
        Unauthorized,
        NotFound,
        Invalid,
    ),
    security(("bearer" = [])),
)]
pub async fn create_comment(
    State(app): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    Valid(input): Valid<CommentInput>,
) -> Result<Response, ApiError> {
    let comment = app
        .writer
        .create_comment(id, user.viewer(), input.body.trim())
        .await?;
    let location = format!("/api/v1/comments/{}", comment.id);
    let entry = Entry::json(&CommentView::from(comment), None);
    Ok(written(StatusCode::CREATED, &entry, Some(location)))
}

/// Read one comment.
#[utoipa::path(
    get, path = "/api/v1/comments/{id}", tag = "comments",
    params(("id" = i64, Path, description = "Comment id")),
    responses(
        (status = 200, description = "The comment", body = CommentView),
        NotFound,
    ),
    security((), ("bearer" = [])),
)]
pub async fn find_comment(
    State(app): State<AppState>,
    caller: MaybeUser,
    AppPath(id): AppPath<i64>,
    request: ReadRequest,
) -> Result<Response, ApiError> {
    let cached = app.reader.comment(id).await?;
    let entry = cached.entry.as_ref().ok_or_else(no_comment)?;
    let article_id = entry.of_article.ok_or_else(no_comment)?;
    let draft = visible_article(&app, caller.viewer(), article_id)
        .await
        .map_err(|err| match err {
            ApiError::NotFound(_) => no_comment(),
            other => other,
        })?;
    Ok(serve(entry, &request, comment_caching(&app, draft)))
}

/// Delete a comment (its author, editors and admins).
#[utoipa::path(
    delete, path = "/api/v1/comments/{id}", tag = "comments",
    params(("id" = i64, Path, description = "Comment id")),
    responses(
        (status = 204, description = "Deleted"),
        Unauthorized,
        Forbidden,
        NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn delete_comment(
    State(app): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    app.writer.delete_comment(id, user.viewer()).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn no_comment() -> ApiError {
    ApiError::NotFound("no such comment".into())
}
