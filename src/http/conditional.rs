//! Serving finished entries with HTTP validators: `ETag`, `Last-Modified`,
//! `If-None-Match` (304) and `If-Match` (412).

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::reads::Entry;

/// Who may store a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// The same for every caller: browsers and CDNs may keep it.
    Public,
    /// Depends on who asks (drafts, the caller's profile): nobody stores it.
    Private,
}

const PUBLIC: &str =
    "public, max-age=10, s-maxage=60, stale-while-revalidate=30, stale-if-error=86400";
const PRIVATE: &str = "private, no-store";
pub const NO_STORE: &str = "no-store";

impl Caching {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Caching::Public => PUBLIC,
            Caching::Private => PRIVATE,
        })
    }
}

/// A 200 with the entry's bytes, or a bodiless 304 if the client's
/// `If-None-Match` already names this entry.
pub fn serve(entry: &Entry, request: &HeaderMap, caching: Caching) -> Response {
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| none_match_hits(value, &entry.etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(entry.body.clone()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&entry.etag) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(time) = entry.last_modified {
        let http_date = time.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        if let Ok(value) = HeaderValue::from_str(&http_date) {
            headers.insert(header::LAST_MODIFIED, value);
        }
    }
    headers.insert(header::CACHE_CONTROL, caching.header());
    response
}

/// A write's answer: the new state, its ETag, never stored by caches.
pub fn written(status: StatusCode, entry: &Entry, location: Option<String>) -> Response {
    let mut response = serve(entry, &HeaderMap::new(), Caching::Private);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// `If-None-Match` uses weak comparison (RFC 9110 13.1.2): a CDN that
/// re-encodes a body marks its ETag `W/` but the content is the same.
fn none_match_hits(header: &str, etag: &str) -> bool {
    header.trim() == "*"
        || header
            .split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == etag)
}

/// Checks `If-Match` (strong comparison) against the current ETag, also
/// accepting the version number alone (`If-Match: "3"` or `3`), which
/// clients without the ETag at hand can take from the article JSON.
pub fn check_if_match(request: &HeaderMap, etag: &str, version: i64) -> Result<(), ApiError> {
    let Some(value) = request.get(header::IF_MATCH) else {
        return Ok(());
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::bad_request("If-Match is not valid text"))?;
    let version = version.to_string();
    let matched = value.trim() == "*"
        || value
            .split(',')
            .map(str::trim)
            .any(|tag| !tag.starts_with("W/") && (tag == etag || tag.trim_matches('"') == version));
    if matched {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed)
    }
}

/// Whether the request made its write conditional.
pub fn has_if_match(request: &HeaderMap) -> bool {
    request.contains_key(header::IF_MATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        assert!(none_match_hits("\"abc\"", "\"abc\""));
        assert!(none_match_hits("W/\"abc\"", "\"abc\""));
        assert!(none_match_hits("\"x\", W/\"abc\"", "\"abc\""));
        assert!(none_match_hits("*", "\"abc\""));
        assert!(!none_match_hits("\"abd\"", "\"abc\""));
    }

    #[test]
    fn if_match_takes_the_strong_etag_or_the_version() {
        let etag = "\"abc\"";
        assert!(check_if_match(&HeaderMap::new(), etag, 3).is_ok());
        assert!(check_if_match(&headers(header::IF_MATCH, "\"abc\""), etag, 3).is_ok());
        assert!(check_if_match(&headers(header::IF_MATCH, "\"3\""), etag, 3).is_ok());
        assert!(check_if_match(&headers(header::IF_MATCH, "3"), etag, 3).is_ok());
        assert!(check_if_match(&headers(header::IF_MATCH, "W/\"abc\""), etag, 3).is_err());
        assert!(check_if_match(&headers(header::IF_MATCH, "\"2\""), etag, 3).is_err());
    }

    #[test]
    fn a_matching_if_none_match_gets_an_empty_304_with_the_etag() {
        let entry = Entry::json(&serde_json::json!({"a": 1}), None);
        let response = serve(
            &entry,
            &headers(header::IF_NONE_MATCH, &entry.etag),
            Caching::Public,
        );
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[header::ETAG], entry.etag.as_str());
        assert!(response.headers().get(header::CONTENT_TYPE).is_none());
    }
}
