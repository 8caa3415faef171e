//! `/articles`: list, read, create, replace, patch and delete.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use validator::Validate;

use super::conditional::{Caching, ReadRequest, precondition, serve, written};
use super::extract::{AppPath, AppQuery, AuthUser, MaybeUser, Valid};
use super::problems::{
    BadQuery, Conflict, Forbidden, Invalid, NotFound, PreconditionFailed, Unauthorized,
    UnknownCursor,
};
use super::rules;
use crate::app::AppState;
use crate::domain::{
    Article, ArticleContent, ArticleFilter, ArticleSort, ArticleStatus, MAX_PAGE, MAX_PER_PAGE,
    PageError, PageRequest, SearchTerms, canonical_username, normalize_tag, normalize_tags,
    slugify, summarize,
};
use crate::error::{ApiError, FieldError};
use crate::reads::{ARTICLES_PATH, article_entry, may_see};
use crate::views::{ArticleView, ListView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_articles, create_article))
        .routes(routes!(
            find_article,
            replace_article,
            update_article,
            delete_article
        ))
}

/// Paging, filtering and sorting for article lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArticleListParams {
    /// 1-based page number (default 1), for shallow pages: a page may start
    /// at most 100 (deeper pages go by `after`).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    page: Option<u32>,
    /// Items per page, 1 to 100 (default 20); other values are a 400.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    per_page: Option<u32>,
    /// The id of an article: the page holds the ones that follow it in this
    /// list's order, at any depth, as fast as the first page. `links.next`
    /// of every page uses it. Not with `page` (400). An id no page of this
    /// list follows (gone, or a draft the caller may not see) is a 404
    /// (`unknown_cursor`) naming `after`.
    after: Option<i64>,
    /// Only articles by this username.
    #[param(max_length = 100)]
    author: Option<String>,
    /// Only articles with this tag.
    #[param(pattern = r"^(\s*[\w\-.+#]{1,32}\s*)?$")]
    tag: Option<String>,
    /// `published` (default) or `draft`. Drafts list only what the caller
    /// may see: their own, or all for editors and admins.
    status: Option<ArticleStatus>,
    /// Words the title must have, every one, in any order: runs of letters,
    /// digits and underscores, compared without case or accents; whole
    /// words only. Newest first; with another `sort`, the 1,000 newest
    /// matches in that order. Empty (or only spaces) is no search; text
    /// without any word (`!!!`) is a 400.
    #[param(max_length = 100)]
    q: Option<String>,
    /// The order; `-` means descending (default `-created_at`).
    #[param(schema_with = crate::openapi::sort_schema)]
    sort: Option<String>,
}

/// Paging alone, for an article's comments.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-based page number (default 1), for shallow pages: at most 100
    /// (deeper pages go by `after`).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    page: Option<u32>,
    /// Items per page, 1 to 100 (default 20); other values are a 400.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    per_page: Option<u32>,
    /// The id of a comment of this article: the page holds the ones after
    /// it, at any depth. `links.next` uses it. Not with `page` (400); an
    /// unknown one is a 404 (`unknown_cursor`) naming `after`.
    after: Option<i64>,
}

impl PageParams {
    pub fn parse(&self) -> Result<PageRequest, ApiError> {
        parse_page(self.page, self.per_page, self.after)
    }
}

/// A page by cursor or by number, never both: a request naming two
/// starting points is ambiguous, so it is refused rather than one of them
/// silently ignored. `per_page` outside 1 to [`MAX_PER_PAGE`] is refused
/// too, never quietly served at another size.
pub fn parse_page<C>(
    page: Option<u32>,
    per_page: Option<u32>,
    after: Option<C>,
) -> Result<PageRequest<C>, ApiError> {
    let per_page = match per_page {
        None => PageRequest::<C>::default().per_page,
        Some(n) if (1..=MAX_PER_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(query_error(
                "per_page",
                "range",
                &format!("must be 1 to {MAX_PER_PAGE}"),
            ));
        }
    };
    if let Some(after) = after {
        if page.is_some() {
            return Err(query_error(
                "page",
                "exclusive",
                "give either page or after, not both (links.next uses after alone)",
            ));
        }
        return Ok(PageRequest::after(after, per_page));
    }
    PageRequest::number(page.unwrap_or(1), per_page).map_err(|err| match err {
        PageError::Zero => query_error("page", "range", "must be 1 or more"),
        PageError::TooDeep => query_error(
            "page",
            "too_deep",
            &format!(
                "numbered pages stop at {MAX_PAGE}; go deeper with \
                 after=<id of the last item seen>, as links.next does"
            ),
        ),
    })
}

fn query_error(field: &str, code: &str, message: &str) -> ApiError {
    ApiError::BadRequest {
        detail: "invalid query parameter".into(),
        errors: vec![FieldError::new(field, code, message)],
    }
}

/// Longest accepted `q`, `author` or `tag` value.
const MAX_FILTER_CHARS: usize = 100;

impl ArticleListParams {
    fn parse(self, caller: &MaybeUser) -> Result<(ArticleFilter, PageRequest), ApiError> {
        let page = parse_page(self.page, self.per_page, self.after)?;
        let sort = match self.sort.as_deref() {
            None | Some("") => ArticleSort::default(),
            Some(value) => ArticleSort::parse(value).ok_or_else(|| {
                query_error(
                    "sort",
                    "one_of",
                    &format!("must be one of: {}", ArticleSort::ALLOWED),
                )
            })?,
        };
        for (field, value) in [("author", &self.author), ("tag", &self.tag), ("q", &self.q)] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_FILTER_CHARS)
            {
                return Err(query_error(
                    field,
                    "length",
                    "must be at most 100 characters long",
                ));
            }
        }
        let tag = match self.tag.as_deref().filter(|t| !t.is_empty()) {
            None => None,
            Some(raw) => Some(
                normalize_tag(raw)
                    .ok_or_else(|| query_error("tag", "tag", "is not a valid tag"))?,
            ),
        };
        let drafts = caller.viewer().draft_scope();
        let filter = ArticleFilter {
            // A username in its canonical form: every spelling of one
            // account is one filter and one cache entry.
            author: self
                .author
                .map(|a| canonical_username(&a))
                .filter(|a| !a.is_empty()),
            tag,
            status: self.status.unwrap_or(ArticleStatus::Published),
            q: match self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
                None => None,
                Some(text) => Some(
                    SearchTerms::parse(text)
                        .filter(|terms| !terms.words().is_empty())
                        .ok_or_else(|| {
                            query_error(
                                "q",
                                "no_words",
                                "must have a word: letters, digits or underscores",
                            )
                        })?,
                ),
            },
            sort,
            drafts,
        };
        Ok((filter, page))
    }
}

/// A new article, or the full replacement of one (`PUT`).
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleInput {
    #[validate(length(min = 1, max = 200), custom(function = "rules::not_blank"))]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    title: String,
    /// Not blank.
    #[validate(length(min = 1, max = 100000), custom(function = "rules::not_blank"))]
    #[schema(min_length = 1, max_length = 100000)]
    body: String,
    /// Defaults to the body's first 200 characters.
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    summary: Option<String>,
    /// Defaults to `draft`.
    status: Option<ArticleStatus>,
    /// Up to 10; stored lower-cased.
    #[validate(custom(function = "rules::tags"))]
    #[schema(schema_with = crate::openapi::tags_schema)]
    tags: Option<Vec<String>>,
    /// Defaults to one made from the title (on create) or the current slug.
    #[validate(custom(function = "rules::slug"))]
    #[schema(max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    slug: Option<String>,
}

/// Changes to some fields of an article (`PATCH`); absent fields stay.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticlePatch {
    #[validate(length(min = 1, max = 200), custom(function = "rules::not_blank"))]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    title: Option<String>,
    /// Not blank.
    #[validate(length(min = 1, max = 100000), custom(function = "rules::not_blank"))]
    #[schema(min_length = 1, max_length = 100000)]
    body: Option<String>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    summary: Option<String>,
    status: Option<ArticleStatus>,
    #[validate(custom(function = "rules::tags"))]
    #[schema(schema_with = crate::openapi::tags_schema)]
    tags: Option<Vec<String>>,
    #[validate(custom(function = "rules::slug"))]
    #[schema(max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    slug: Option<String>,
}

fn tags_of(tags: Option<Vec<String>>) -> Vec<String> {
    tags.and_then(|t| normalize_tags(&t)).unwrap_or_default()
}

impl ArticleInput {
    /// The complete content, and whether the slug was derived from the title.
    fn into_content(self, current_slug: Option<&str>) -> (ArticleContent, bool) {
        let derived = self.slug.is_none() && current_slug.is_none();
        let slug = self
            .slug
            .or_else(|| current_slug.map(str::to_owned))
            .unwrap_or_else(|| slugify(&self.title));
        let summary = self.summary.unwrap_or_else(|| summarize(&self.body));
        let content = ArticleContent {
            slug,
            title: self.title.trim().to_owned(),
            summary,
            body: self.body,
            status: self.status.unwrap_or_default(),
            tags: tags_of(self.tags),
        };
        (content, derived)
    }
}

impl ArticlePatch {
    fn apply(self, current: Article) -> ArticleContent {
        let body = self.body.or(current.body).unwrap_or_default();
        ArticleContent {
            slug: self.slug.unwrap_or(current.slug),
            title: self.title.map_or(current.title, |t| t.trim().to_owned()),
            summary: self.summary.unwrap_or(current.summary),
            body,
            status: self.status.unwrap_or(current.status),
            tags: self.tags.map_or(current.tags, |t| tags_of(Some(t))),
        }
    }
}

/// List articles.
#[utoipa::path(
    get, path = "/api/v1/articles", tag = "articles",
    params(ArticleListParams),
    responses(
        (status = 200, description = "One page of articles, without bodies", body = ListView<ArticleView>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        BadQuery,
        UnknownCursor,
    ),
    security((), ("bearer" = [])),
)]
pub async fn list_articles(
    State(app): State<AppState>,
    caller: MaybeUser,
    AppQuery(params): AppQuery<ArticleListParams>,
    request: ReadRequest,
) -> Result<Response, ApiError> {
    let (filter, page) = params.parse(&caller)?;
    let cached = app.reader.articles(&filter, page).await?;
    let entry = cached.entry.as_ref().ok_or_else(not_found)?;
    let caching = if filter.status == ArticleStatus::Draft {
        Caching::Private
    } else {
        Caching::Public(&app.settings.cache.control.articles)
    };
    Ok(serve(entry, &request, caching))
}

/// Read one article.
#[utoipa::path(
    get, path = "/api/v1/articles/{id}", tag = "articles",
    params(("id" = i64, Path, description = "Article id")),
    responses(
        (status = 200, description = "The article", body = ArticleView),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        NotFound,
    ),
    security((), ("bearer" = [])),
)]
pub async fn find_article(
    State(app): State<AppState>,
    caller: MaybeUser,
    AppPath(id): AppPath<i64>,
    request: ReadRequest,
) -> Result<Response, ApiError> {
    let cached = app.reader.article(id).await?;
    let entry = cached
        .entry
        .as_ref()
        .filter(|entry| may_see(caller.viewer(), entry))
        .ok_or_else(not_found)?;
    let caching = if entry.draft_of.is_some() {
        Caching::Private
    } else {
        Caching::Public(&app.settings.cache.control.article)
    };
    Ok(serve(entry, &request, caching))
}

/// Create an article (authors, editors and admins).
#[utoipa::path(
    post, path = "/api/v1/articles", tag = "articles",
    request_body = ArticleInput,
    responses(
        (status = 201, description = "Created; Location names it", body = ArticleView),
        Unauthorized,
        Forbidden,
        Conflict,
        Invalid,
    ),
    security(("bearer" = [])),
)]
pub async fn create_article(
    State(app): State<AppState>,
    user: AuthUser,
    Valid(input): Valid<ArticleInput>,
) -> Result<Response, ApiError> {
    let (content, derived) = input.into_content(None);
    let article = app
        .writer
        .create_article(user.viewer(), &user.username, &content, derived)
        .await?;
    let location = format!("{ARTICLES_PATH}/{}", article.id);
    Ok(written(
        StatusCode::CREATED,
        &article_entry(article),
        Some(location),
    ))
}

/// Replace an article.
#[utoipa::path(
    put, path = "/api/v1/articles/{id}", tag = "articles",
    params(
        ("id" = i64, Path, description = "Article id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The article's ETag or version; 412 if it has changed"),
    ),
    request_body = ArticleInput,
    responses(
        (status = 200, description = "The article as replaced", body = ArticleView),
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PreconditionFailed,
        Invalid,
    ),
    security(("bearer" = [])),
)]
pub async fn replace_article(
    State(app): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    headers: HeaderMap,
    Valid(input): Valid<ArticleInput>,
) -> Result<Response, ApiError> {
    let precondition = precondition(&headers)?;
    let article = app
        .writer
        .edit_article(id, user.viewer(), &precondition, |current| {
            input.clone().into_content(Some(&current.slug)).0
        })
        .await?;
    Ok(written(StatusCode::OK, &article_entry(article), None))
}

/// Change some fields of an article.
#[utoipa::path(
    patch, path = "/api/v1/articles/{id}", tag = "articles",
    params(
        ("id" = i64, Path, description = "Article id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The article's ETag or version; 412 if it has changed"),
    ),
    request_body = ArticlePatch,
    responses(
        (status = 200, description = "The article as changed", body = ArticleView),
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PreconditionFailed,
        Invalid,
    ),
    security(("bearer" = [])),
)]
pub async fn update_article(
    State(app): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    headers: HeaderMap,
    Valid(patch): Valid<ArticlePatch>,
) -> Result<Response, ApiError> {
    let precondition = precondition(&headers)?;
    let article = app
        .writer
        .edit_article(id, user.viewer(), &precondition, |current| {
            patch.clone().apply(current.clone())
        })
        .await?;
    Ok(written(StatusCode::OK, &article_entry(article), None))
}

/// Delete an article with its comments.
#[utoipa::path(
    delete, path = "/api/v1/articles/{id}", tag = "articles",
    params(
        ("id" = i64, Path, description = "Article id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The article's ETag or version; 412 if it has changed"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PreconditionFailed,
    ),
    security(("bearer" = [])),
)]
pub async fn delete_article(
    State(app): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<i64>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let precondition = precondition(&headers)?;
    app.writer
        .delete_article(id, user.viewer(), &precondition)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such article".into())
}
