//! `/users`: registration, the caller's own profile, public profiles and roles.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use validator::Validate;

use super::conditional::{Caching, ReadRequest, serve, written};
use super::extract::{AppPath, AuthUser, Valid};
use super::problems::{Conflict, Forbidden, Invalid, NotFound, Unauthorized};
use super::rules;
use crate::app::AppState;
use crate::cache::Entry;
use crate::domain::Role;
use crate::error::ApiError;
use crate::store::StoreError;
use crate::views::UserView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_user))
        .routes(routes!(find_me))
        .routes(routes!(find_user, update_user))
}

/// A new account. The role is not chosen here: it comes from configuration.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    #[validate(length(min = 3, max = 32), custom(function = "rules::username"))]
    #[schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_-]+$")]
    username: String,
    #[validate(length(min = 8, max = 128))]
    #[schema(format = Password, min_length = 8, max_length = 128)]
    password: String,
}

/// A change of role (admins only).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    role: Role,
}

/// Register an account.
#[utoipa::path(
    post, path = "/api/v1/users", tag = "users",
    request_body = RegisterInput,
    responses(
        (status = 201, description = "Registered; Location names the user", body = UserView),
        Conflict,
        Invalid,
    ),
)]
pub async fn register_user(
    State(app): State<AppState>,
    Valid(input): Valid<RegisterInput>,
) -> Result<Response, ApiError> {
    let hash = app.auth.passwords.hash(&input.password).await?;
    let role = app.settings.auth.registration_role;
    let user = app
        .writer
        .register_user(&input.username, &hash, role)
        .await
        .map_err(|err| match err {
            StoreError::Duplicate => ApiError::Conflict("that username is taken".into()),
            other => other.into(),
        })?;
    let location = format!("/api/v1/users/{}", user.id);
    Ok(written(
        StatusCode::CREATED,
        &Entry::json(&UserView::from(user), None),
        Some(location),
    ))
}

/// The signed-in user.
#[utoipa::path(
    get, path = "/api/v1/users/me", tag = "users",
    responses(
        (status = 200, description = "The caller's account", body = UserView),
        Unauthorized,
    ),
    security(("bearer" = [])),
)]
pub async fn find_me(
    State(app): State<AppState>,
    user: AuthUser,
    request: ReadRequest,
) -> Result<Response, ApiError> {
    let me = app
        .store
        .find_user(user.id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this account no longer exists".into()))?;
    Ok(serve(
        &Entry::json(&UserView::from(me), None),
        &request,
        Caching::Private,
    ))
}

/// A user's public profile.
#[utoipa::path(
    get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserView),
        NotFound,
    ),
)]
pub async fn find_user(
    State(app): State<AppState>,
    AppPath(id): AppPath<i64>,
    request: ReadRequest,
) -> Result<Response, ApiError> {
    let cached = app.reader.user(id).await?;
    let entry = cached.entry.as_ref().ok_or_else(no_user)?;
    Ok(serve(
        entry,
        &request,
        Caching::Public(&app.cache_control.article),
    ))
}

/// Change a user's role (admins only).
#[utoipa::path(
    patch, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user with the new role", body = UserView),
        Unauthorized,
        Forbidden,
        NotFound,
        Invalid,
    ),
    security(("bearer" = [])),
)]
pub async fn update_user(
    State(app): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<i64>,
    Valid(patch): Valid<UserPatch>,
) -> Result<Response, ApiError> {
    if caller.role != Role::Admin {
        return Err(ApiError::Forbidden("only admins may change roles".into()));
    }
    let user = app
        .writer
        .set_role(id, patch.role)
        .await
        .map_err(|err| match err {
            StoreError::NotFound => no_user(),
            other => other.into(),
        })?;
    Ok(written(
        StatusCode::OK,
        &Entry::json(&UserView::from(user), None),
        None,
    ))
}

fn no_user() -> ApiError {
    ApiError::NotFound("no such user".into())
}
