//! Error responses as the OpenAPI document describes them, shared by the
//! routes' `responses(...)` lists. Each is problem JSON ([`Problem`]).
//! They describe; they are never built (errors are [`crate::error::ApiError`]).
#![allow(dead_code)]

use utoipa::IntoResponses;

use crate::error::Problem;

/// Invalid paging, filter or sort parameters.
#[derive(IntoResponses)]
#[response(status = 400, content_type = "application/problem+json")]
pub struct BadQuery(pub Problem);

/// No valid bearer token: missing, malformed, forged or expired, without
/// `iat` or `ver`, from the future (`iat` or `nbf`), for a user that no
/// longer exists, or issued before the user's password was reset or a
/// refresh token of theirs was reused (sign in again); on `POST /tokens`,
/// bad credentials or a bad, spent or pre-reset refresh token.
#[derive(IntoResponses)]
#[response(status = 401, content_type = "application/problem+json")]
pub struct Unauthorized(pub Problem);

/// Signed in, but the user's current role does not allow this. Roles are
/// read on every request, so a role change applies at once to tokens
/// already issued.
#[derive(IntoResponses)]
#[response(status = 403, content_type = "application/problem+json")]
pub struct Forbidden(pub Problem);

/// No such resource, or one the caller may not see.
#[derive(IntoResponses)]
#[response(status = 404, content_type = "application/problem+json")]
pub struct NotFound(pub Problem);

/// No page follows `after`: it names nothing this list could hold (gone, or
/// never visible to the caller); `errors` names `after`.
#[derive(IntoResponses)]
#[response(status = 404, content_type = "application/problem+json")]
pub struct UnknownCursor(pub Problem);

/// A name (slug, username) is taken, a concurrent write won, or a role
/// change would leave no admin.
#[derive(IntoResponses)]
#[response(status = 409, content_type = "application/problem+json")]
pub struct Conflict(pub Problem);

/// `If-Match` names an older ETag or version.
#[derive(IntoResponses)]
#[response(status = 412, content_type = "application/problem+json")]
pub struct PreconditionFailed(pub Problem);

/// Invalid fields, with per-field details.
#[derive(IntoResponses)]
#[response(status = 422, content_type = "application/problem+json")]
pub struct Invalid(pub Problem);
