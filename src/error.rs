//! The one error type of the HTTP API. Every failure becomes RFC 9457 problem
//! details (`application/problem+json`); internal causes are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ratelimit::Decision;
use crate::store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One rejected field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name (a JSON member or query parameter).
    pub field: String,
    /// A stable machine-readable reason, e.g. `length` or `required`.
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `title` is the HTTP status text and `code` says more.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// A stable machine-readable error code, e.g. `validation_failed`.
    pub code: &'static str,
    /// Per-field problems, for 400 and 422.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed syntax (JSON, query string, headers).
    #[error("bad request: {detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 401: no credentials, or credentials that do not check out.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: authenticated but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404: no such resource (or not one the caller may see).
    #[error("not found: {0}")]
    NotFound(String),
    /// 404 naming `after`: a list's cursor names nothing the list could
    /// hold (gone, or never visible to the caller), so no page follows it.
    #[error("unknown cursor")]
    UnknownCursor,
    /// 405: the resource exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request clashes with current state (duplicate name, concurrent edit).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 412: an `If-Match` precondition no longer holds.
    #[error("precondition failed")]
    PreconditionFailed,
    /// 413: the body is over the configured limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 414: the request target is longer than we read.
    #[error("uri too long")]
    UriTooLong,
    /// 415: the body is not JSON.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid content, with per-field details.
    #[error("validation failed: {detail}")]
    Unprocessable {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 431: the request headers are larger than we read.
    #[error("request headers too large")]
    HeadersTooLarge,
    /// 429: over a rate limit; the decision fills the `RateLimit-*` headers.
    #[error("too many requests")]
    TooManyRequests(Decision),
    /// 503 with `Retry-After`: too much work of this kind is queued (password
    /// hashing); retrying in a moment will likely pass.
    #[error("busy: {0}")]
    Busy(String),
    /// 503: a dependency (the database) is unavailable; retrying may help.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 500: a fault on our side. The cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 422 with per-field errors; the detail lists the fields' names.
    pub fn unprocessable(errors: Vec<FieldError>) -> Self {
        let mut fields: Vec<&str> = errors
            .iter()
            .map(|error| error.field.as_str())
            .filter(|field| !field.is_empty())
            .collect();
        fields.dedup();
        let detail = if fields.is_empty() {
            "the request body has invalid fields".to_owned()
        } else {
            format!("the request body has invalid fields: {}", fields.join(", "))
        };
        ApiError::Unprocessable { detail, errors }
    }

    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(err.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::UnknownCursor => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong => StatusCode::URI_TOO_LONG,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::UnknownCursor => "unknown_cursor",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PreconditionFailed => "precondition_failed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UriTooLong => "uri_too_long",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::HeadersTooLarge => "headers_too_large",
            ApiError::Unprocessable { .. } => "validation_failed",
            ApiError::TooManyRequests(_) => "rate_limited",
            ApiError::Busy(_) => "busy",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn into_problem(self) -> Problem {
        let status = self.status();
        let code = self.code();
        let (detail, errors) = match self {
            ApiError::BadRequest { detail, errors }
            | ApiError::Unprocessable { detail, errors } => (detail, errors),
            ApiError::Unauthorized(detail)
            | ApiError::Forbidden(detail)
            | ApiError::NotFound(detail)
            | ApiError::Conflict(detail)
            | ApiError::UnsupportedMediaType(detail)
            | ApiError::Busy(detail)
            | ApiError::Unavailable(detail) => (detail, Vec::new()),
            ApiError::TooManyRequests(_) => (
                "too many requests; retry after the number of seconds in Retry-After".into(),
                vec![],
            ),
            ApiError::MethodNotAllowed => {
                ("this resource does not support that method".into(), vec![])
            }
            ApiError::PreconditionFailed => (
                "the resource has changed since the version named in If-Match".into(),
                vec![],
            ),
            ApiError::PayloadTooLarge => ("the request body is too large".into(), vec![]),
            ApiError::UnknownCursor => (
                "no page follows that cursor".into(),
                vec![FieldError::new(
                    "after",
                    "cursor",
                    "names nothing this list could hold; start from the first page",
                )],
            ),
            ApiError::UriTooLong => ("the request URI is too long".into(), vec![]),
            ApiError::HeadersTooLarge => ("the request headers are too large".into(), vec![]),
            ApiError::Internal(_) => ("something went wrong on our side".into(), vec![]),
        };
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            code,
            errors,
        }
    }
}

/// Builds a problem response for a bare status (used for errors raised
/// outside our handlers: unknown routes, wrong methods, timeouts).
pub fn problem_for_status(status: StatusCode) -> Response {
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound("no such resource".into()),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::URI_TOO_LONG => ApiError::UriTooLong,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ApiError::HeadersTooLarge,
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
            ApiError::Unavailable("the request took too long".into())
        }
        status if status.is_server_error() => ApiError::internal(format!("bare {status} response")),
        status => ApiError::BadRequest {
            detail: status
                .canonical_reason()
                .unwrap_or("bad request")
                .to_owned(),
            errors: vec![],
        },
    };
    let mut response = error.into_response();
    *response.status_mut() = status;
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = %cause, "internal error");
        }
        let status = self.status();
        let unauthorized = matches!(self, ApiError::Unauthorized(_));
        let limited = match &self {
            ApiError::TooManyRequests(decision) => Some(*decision),
            _ => None,
        };
        let busy = matches!(self, ApiError::Busy(_));
        let problem = self.into_problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(decision) = limited {
            decision.write_headers(headers);
        }
        if busy {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<crate::auth::Busy> for ApiError {
    fn from(busy: crate::auth::Busy) -> Self {
        ApiError::Busy(busy.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound("no such resource".into()),
            StoreError::Duplicate => ApiError::Conflict("that name is already taken".into()),
            StoreError::Stale => {
                ApiError::Conflict("the resource was changed concurrently; retry".into())
            }
            StoreError::UnknownCursor => ApiError::UnknownCursor,
            StoreError::Contended => ApiError::Busy(
                "too many concurrent writes to the same data; nothing was written, retry shortly"
                    .into(),
            ),
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::Unavailable("the database is unavailable; retry shortly".into())
            }
            StoreError::CommitUnknown(cause) => {
                tracing::warn!(error = %cause, "database did not confirm a commit");
                ApiError::Unavailable(
                    "the database did not confirm the write: it may have been made; \
                     read before retrying"
                        .into(),
                )
            }
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let problem = ApiError::internal("password=hunter2 in a query").into_problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("hunter2"));
    }

    #[test]
    fn problems_carry_status_title_and_code() {
        let json = serde_json::to_value(ApiError::PreconditionFailed.into_problem()).unwrap();
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["status"], 412);
        assert_eq!(json["title"], "Precondition Failed");
        assert_eq!(json["code"], "precondition_failed");
        assert!(json.get("errors").is_none());
    }
}
