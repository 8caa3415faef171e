//! `POST /tokens`: the OAuth2-style token endpoint (password and refresh grants).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use validator::Validate;

use super::conditional::NO_STORE;
use super::extract::Valid;
use super::problems::{Invalid, Unauthorized};
use super::throttle::limit_username;
use crate::app::{App, AppState};
use crate::auth::RefreshToken;
use crate::domain::User;
use crate::error::ApiError;
use crate::store::RefreshOutcome;
use crate::views::TokenView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_token))
}

/// A token request, told apart by `grant_type`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "grant_type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenRequest {
    /// Sign in with a username and password.
    Password {
        #[schema(max_length = 256)]
        username: String,
        #[schema(format = Password, max_length = 1024)]
        password: String,
    },
    /// Exchange a refresh token (single use) for a new pair.
    RefreshToken {
        #[schema(max_length = 256)]
        refresh_token: String,
    },
}

impl Validate for TokenRequest {
    /// Bounds only, so oversized credentials are not hashed; wrong ones are a 401.
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        let too_long = match self {
            TokenRequest::Password { username, password } => {
                username.len() > 256 || password.len() > 1024
            }
            TokenRequest::RefreshToken { refresh_token } => refresh_token.len() > 256,
        };
        let mut errors = validator::ValidationErrors::new();
        if too_long {
            errors.add(
                "credentials",
                validator::ValidationError::new("length").with_message("are too long".into()),
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Issue tokens.
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A short-lived access token and a refresh token", body = TokenView),
        Unauthorized,
        Invalid,
    ),
)]
pub async fn create_token(
    State(app): State<AppState>,
    Valid(request): Valid<TokenRequest>,
) -> Result<Response, ApiError> {
    let (user, token_version) = match request {
        TokenRequest::Password { username, password } => {
            limit_username(&app, &username).await?;
            // A place to check the password first: past the pool's bounds
            // a sign-in is refused before it costs a database query.
            let slot = app.auth.passwords.reserve()?;
            let credentials = app.store.find_credentials(&username).await?;
            let hash = credentials.as_ref().map(|c| c.password_hash.as_str());
            let valid = slot.verify(&password, hash).await?;
            match credentials {
                Some(credentials) if valid => (credentials.user, credentials.token_version),
                _ => {
                    return Err(ApiError::Unauthorized(
                        "invalid username or password".into(),
                    ));
                }
            }
        }
        TokenRequest::RefreshToken { refresh_token } => {
            let hash = RefreshToken::hash_of(&refresh_token);
            match app.store.consume_refresh_token(&hash).await? {
                RefreshOutcome::Accepted {
                    user_id,
                    token_version,
                } => {
                    let user = app.store.find_user(user_id).await?.ok_or_else(|| {
                        ApiError::Unauthorized("the account no longer exists".into())
                    })?;
                    (user, token_version)
                }
                RefreshOutcome::Reused => {
                    return Err(ApiError::Unauthorized(
                        "this refresh token was already used; all sessions were signed out".into(),
                    ));
                }
                RefreshOutcome::Rejected => {
                    return Err(ApiError::Unauthorized(
                        "the refresh token is invalid, expired, or from before a password reset"
                            .into(),
                    ));
                }
            }
        }
    };
    let tokens = issue(&app, &user, token_version).await?;
    let mut response = Json(tokens).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// A token pair at `token_version`, as read with the credentials or the
/// refresh token: if a password reset has moved the user on since, both
/// tokens are refused at their first use.
async fn issue(app: &App, user: &User, token_version: i64) -> Result<TokenView, ApiError> {
    let refresh = RefreshToken::generate();
    app.store
        .insert_refresh_token(
            user.id,
            &refresh.hash,
            app.auth.refresh_ttl_secs(),
            token_version,
        )
        .await?;
    Ok(TokenView {
        access_token: app.auth.issue_access_token(user, token_version),
        token_type: "Bearer",
        expires_in: app.auth.access_ttl_secs(),
        refresh_token: refresh.token,
    })
}
