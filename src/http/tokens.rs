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
use super::throttle::ClientAddr;
use crate::app::AppState;
use crate::error::ApiError;
use crate::views::TokenView;
use crate::writes::{PasswordGrant, TokenGrantError};

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
///
/// A password grant has two budgets per username (its canonical form):
/// one per client address, and one shared by every client which, once
/// spent, only clients the user signed in from before get past (429
/// otherwise). Reusing a spent refresh token ends every session of the
/// user, access tokens included.
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
    ClientAddr(client): ClientAddr,
    Valid(request): Valid<TokenRequest>,
) -> Result<Response, ApiError> {
    let tokens = match request {
        TokenRequest::Password { username, password } => {
            let grant = PasswordGrant {
                username: &username,
                password: &password,
                client,
            };
            app.writer
                .sign_in(&app.auth, app.limiter.as_ref(), grant)
                .await?
        }
        TokenRequest::RefreshToken { refresh_token } => {
            app.writer.refresh(&app.auth, &refresh_token).await?
        }
    };
    let mut response = Json(TokenView {
        access_token: tokens.access_token,
        token_type: "Bearer",
        expires_in: tokens.expires_in,
        refresh_token: tokens.refresh_token,
    })
    .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

impl From<TokenGrantError> for ApiError {
    fn from(err: TokenGrantError) -> Self {
        match err {
            TokenGrantError::Limited(decision) => ApiError::TooManyRequests(decision),
            TokenGrantError::Busy(busy) => busy.into(),
            TokenGrantError::Store(err) => err.into(),
            unauthorized => ApiError::Unauthorized(unauthorized.to_string()),
        }
    }
}
