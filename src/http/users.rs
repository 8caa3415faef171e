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
use crate::domain::{Role, Username};
use crate::error::{ApiError, FieldError};
use crate::views::UserView;
use crate::writes::UserWriteError;

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
    let username = Username::parse(&input.username).map_err(UserWriteError::from)?;
    let role = app.settings.auth.registration_role;
    let user = app
        .writer
        .register_user(&app.auth.passwords, &username, &input.password, role)
        .await?;
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
        Caching::Public(&app.settings.cache.control.article),
    ))
}

/// Change a user's role (admins only). The last admin cannot stop being
/// one (409): make another user an admin first.
#[utoipa::path(
    patch, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user with the new role", body = UserView),
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
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
    let user = app.writer.change_role(caller.role, id, patch.role).await?;
    Ok(written(
        StatusCode::OK,
        &Entry::json(&UserView::from(user), None),
        None,
    ))
}

fn no_user() -> ApiError {
    ApiError::NotFound("no such user".into())
}

impl From<UserWriteError> for ApiError {
    fn from(err: UserWriteError) -> Self {
        match err {
            UserWriteError::InvalidUsername(rule) => {
                ApiError::unprocessable(vec![FieldError::new(
                    "username",
                    rule.code(),
                    rule.to_string(),
                )])
            }
            UserWriteError::Taken | UserWriteError::LastAdmin => {
                ApiError::Conflict(err.to_string())
            }
            UserWriteError::NotFound => no_user(),
            UserWriteError::NotAdmin => ApiError::Forbidden(err.to_string()),
            UserWriteError::Busy(busy) => busy.into(),
            UserWriteError::Store(err) => err.into(),
        }
    }
}
