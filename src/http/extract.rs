//! Extractors whose rejections are problem JSON: body, query, path and caller.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use super::serde_errors::field_error;
use crate::app::AppState;
use crate::auth::TokenError;
use crate::domain::{Role, Viewer};
use crate::error::{ApiError, FieldError};

/// A JSON body that must also pass its `validator` rules.
pub struct Valid<T>(pub T);

impl<T> FromRequest<AppState> for Valid<T>
where
    T: DeserializeOwned + Validate + Send,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request(rejection.body_text())
            }
        })?;
        let value: T = parse_object(&bytes)?;
        value
            .validate()
            .map_err(|errors| ApiError::unprocessable(field_errors(&errors)))?;
        Ok(Valid(value))
    }
}

/// `application/json` or any `application/*+json`.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses a body that must be a JSON object: serde would also take an array
/// for a struct, positionally, which no client means. Well-formed JSON of
/// the wrong shape is 422; malformed JSON is 400. Neither repeats what the
/// client sent.
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let well_formed = || serde_json::from_slice::<serde_json::Value>(bytes).is_ok();
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(if well_formed() {
            ApiError::Unprocessable {
                detail: "the body must be a JSON object".into(),
                errors: vec![],
            }
        } else {
            ApiError::bad_request("the body is not valid JSON")
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|err| (Some(err.path().clone()), err.into_inner()))
        .and_then(|value| {
            deserializer
                .end()
                .map(|()| value)
                .map_err(|err| (None, err))
        });
    parsed.map_err(|(path, err): (Option<serde_path_to_error::Path>, _)| {
        // serde_json files some type errors (a number for an enum) as
        // syntax errors: whether the JSON itself is sound decides.
        if err.is_data() || well_formed() {
            ApiError::unprocessable(vec![field_error(path.iter().flatten(), &err.to_string())])
        } else {
            ApiError::bad_request(format!(
                "the body is not valid JSON (line {}, column {})",
                err.line(),
                err.column()
            ))
        }
    })
}

/// Per-field messages without the rejected values (they may be passwords).
fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    for (field, kind) in errors.errors() {
        if let ValidationErrorsKind::Field(list) = kind {
            for error in list {
                let message = error
                    .message
                    .clone()
                    .unwrap_or_else(|| Cow::Owned(describe(error)));
                out.push(FieldError::new(field.to_string(), &error.code, message));
            }
        }
    }
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

fn describe(error: &validator::ValidationError) -> String {
    let param = |name: &str| error.params.get(name).map(ToString::to_string);
    match (error.code.as_ref(), param("min"), param("max")) {
        ("length", Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
        ("length", Some(min), None) => format!("must be at least {min} characters long"),
        ("length", None, Some(max)) => format!("must be at most {max} characters long"),
        _ => "is invalid".to_owned(),
    }
}

/// A query string, rejected as 400 naming the parameter and the rule.
pub struct AppQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(AppQuery)
            .map_err(|err| {
                let error = field_error(err.path(), &err.inner().to_string());
                ApiError::BadRequest {
                    detail: "invalid query parameter".into(),
                    errors: vec![error],
                }
            })
    }
}

/// Path parameters; one that does not parse names no resource, hence 404.
pub struct AppPath<T>(pub T);

impl<T, S> FromRequestParts<S> for AppPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| AppPath(value))
            .map_err(|_: PathRejection| ApiError::NotFound("no such resource".into()))
    }
}

/// The authenticated caller, from `Authorization: Bearer <access token>`.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

impl AuthUser {
    /// Who they are to the visibility and permission rules.
    pub fn viewer(&self) -> Viewer {
        Viewer::user(self.id, self.role)
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match MaybeUser::from_request_parts(parts, state).await?.0 {
            Some(user) => Ok(user),
            None => Err(ApiError::Unauthorized(
                "this needs a bearer token: POST /api/v1/tokens to get one".into(),
            )),
        }
    }
}

/// The caller if a bearer token was sent. A token that is sent but invalid
/// is still refused: a client should learn its token is bad, not silently
/// see less.
///
/// The token only names the user and the token version it was issued at;
/// who they are and what they may do come from their record as it is now
/// (cached, and made stale everywhere by role changes and password resets).
/// So a demotion applies to tokens already issued on their next request,
/// and a reset ends them. A request without `Authorization` does none of
/// this.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<AuthUser>);

impl MaybeUser {
    pub fn viewer(&self) -> Viewer {
        self.0.as_ref().map_or(Viewer::Anonymous, AuthUser::viewer)
    }
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Ok(MaybeUser(None));
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| ApiError::Unauthorized("use Authorization: Bearer <token>".into()))?;
        let claims = state
            .auth
            .verify_access_token(token)
            .map_err(|err| match err {
                TokenError::Expired => {
                    ApiError::Unauthorized("the access token has expired".into())
                }
                TokenError::Invalid => ApiError::Unauthorized("the access token is invalid".into()),
            })?;
        let id = claims
            .user_id()
            .ok_or_else(|| ApiError::Unauthorized("the access token is invalid".into()))?;
        let user = state.reader.principal(id).await?.ok_or_else(|| {
            ApiError::Unauthorized("this account no longer exists; sign in again".into())
        })?;
        if user.token_version != claims.ver {
            return Err(ApiError::Unauthorized(
                "this session has ended because the password was reset; sign in again".into(),
            ));
        }
        Ok(MaybeUser(Some(AuthUser {
            id,
            username: user.username,
            role: user.role,
        })))
    }
}
