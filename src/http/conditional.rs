//! Serving finished entries with HTTP validators and caching headers:
//! `ETag`, `Last-Modified`, `If-None-Match` (304), `If-Match` (412), content
//! coding by `Accept-Encoding`, `Cache-Control` and CDN surrogate keys.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cache::{Coding, Entry};
use crate::error::ApiError;

/// Who may store a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching<'a> {
    /// The same for every caller: browsers and CDNs may keep it, per this
    /// `Cache-Control` value.
    Public(&'a str),
    /// Depends on who asks (drafts, the caller's profile): nobody stores it.
    Private,
}

const PRIVATE: &str = "private, no-store";
pub const NO_STORE: &str = "no-store";

/// A 200 with the entry's bytes in the best coding the client accepts, or a
/// bodiless 304 if the client's `If-None-Match` already names this entry.
pub fn serve(entry: &Entry, request: &HeaderMap, caching: Caching<'_>) -> Response {
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| none_match_hits(value, &entry.etag));
    let (coding, body) = entry.variant(preferred_coding(request));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(body.clone()));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(name) = coding_name(coding) {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
        }
        response
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&variant_etag(&entry.etag, coding)) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(time) = entry.last_modified {
        let http_date = time.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        if let Ok(value) = HeaderValue::from_str(&http_date) {
            headers.insert(header::LAST_MODIFIED, value);
        }
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let cache_control = match caching {
        Caching::Public(policy) => {
            HeaderValue::from_str(policy).unwrap_or(HeaderValue::from_static(NO_STORE))
        }
        Caching::Private => HeaderValue::from_static(PRIVATE),
    };
    headers.insert(header::CACHE_CONTROL, cache_control);
    if !entry.tags.is_empty() {
        if let Ok(keys) = HeaderValue::from_str(&entry.tags) {
            headers.insert("surrogate-key", keys);
        }
        if let Ok(tags) = HeaderValue::from_str(&entry.tags.replace(' ', ",")) {
            headers.insert("cache-tag", tags);
        }
    }
    response
}

/// A write's answer: the new state, its ETag, never stored by caches.
pub fn written(status: StatusCode, entry: &Entry, location: Option<String>) -> Response {
    let mut response = serve(entry, &HeaderMap::new(), Caching::Private);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    headers.remove(header::VARY);
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// brotli, else gzip, else identity, as `Accept-Encoding` allows (`q=0` refuses).
fn preferred_coding(request: &HeaderMap) -> Coding {
    let Some(accept) = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return Coding::Identity;
    };
    // The q-value given to a coding; `*` covers only codings not listed.
    let quality = |name: &str| -> Option<f32> {
        let mut wildcard = None;
        for item in accept.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let q = parts
                .find_map(|p| p.replace(' ', "").parse::<Quality>().ok())
                .map_or(1.0, |q| q.0);
            if coding.eq_ignore_ascii_case(name) {
                return Some(q);
            }
            if coding == "*" {
                wildcard = Some(q);
            }
        }
        wildcard
    };
    let accepts = |name: &str| quality(name).is_some_and(|q| q > 0.0);
    if accepts("br") {
        Coding::Brotli
    } else if accepts("gzip") {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

/// A `q=` parameter.
struct Quality(f32);

impl std::str::FromStr for Quality {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let value = s
            .strip_prefix("q=")
            .or_else(|| s.strip_prefix("Q="))
            .ok_or(())?;
        value.parse().map(Quality).map_err(|_| ())
    }
}

fn coding_name(coding: Coding) -> Option<&'static str> {
    match coding {
        Coding::Identity => None,
        Coding::Gzip => Some("gzip"),
        Coding::Brotli => Some("br"),
    }
}

/// Each coding is its own representation, so its own strong ETag:
/// `"abc"`, `"abc-gzip"`, `"abc-br"`.
fn variant_etag(etag: &str, coding: Coding) -> Cow<'_, str> {
    match coding_name(coding) {
        None => Cow::Borrowed(etag),
        Some(name) => Cow::Owned(format!("{}-{name}\"", etag.trim_end_matches('"'))),
    }
}

/// The entity tag without its coding suffix or weakness marker.
fn base_etag(tag: &str) -> String {
    let tag = tag.trim().trim_start_matches("W/").trim_matches('"');
    let tag = tag
        .strip_suffix("-gzip")
        .or_else(|| tag.strip_suffix("-br"))
        .unwrap_or(tag);
    format!("\"{tag}\"")
}

/// `If-None-Match` uses weak comparison (RFC 9110 13.1.2): a CDN that
/// re-encodes a body marks its ETag `W/`, and any coding of the same
/// content is the same content.
fn none_match_hits(header: &str, etag: &str) -> bool {
    header.trim() == "*" || header.split(',').any(|tag| base_etag(tag) == etag)
}

/// Checks `If-Match` (strong comparison) against the current ETag of any
/// coding (a browser only ever sees the compressed one), also accepting the
/// version number alone (`If-Match: "3"` or `3`), which
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
        || value.split(',').map(str::trim).any(|tag| {
            !tag.starts_with("W/") && (base_etag(tag) == etag || tag.trim_matches('"') == version)
        });
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
    fn codings_are_chosen_by_accept_encoding() {
        let coding = |value: &str| preferred_coding(&headers(header::ACCEPT_ENCODING, value));
        assert_eq!(coding("gzip, deflate, br"), Coding::Brotli);
        assert_eq!(coding("gzip"), Coding::Gzip);
        assert_eq!(coding("br;q=0, gzip;q=0.5"), Coding::Gzip);
        assert_eq!(coding("br;q=0, *"), Coding::Gzip);
        assert_eq!(coding("*;q=0, gzip"), Coding::Gzip);
        assert_eq!(coding("identity"), Coding::Identity);
        assert_eq!(preferred_coding(&HeaderMap::new()), Coding::Identity);
    }

    #[test]
    fn variant_etags_match_their_entity() {
        assert_eq!(variant_etag("\"abc\"", Coding::Gzip), "\"abc-gzip\"");
        assert!(none_match_hits("W/\"abc-gzip\"", "\"abc\""));
        let if_match = headers(header::IF_MATCH, "\"abc-br\"");
        assert!(check_if_match(&if_match, "\"abc\"", 1).is_ok());
    }

    #[test]
    fn a_matching_if_none_match_gets_an_empty_304_with_the_etag() {
        let entry = Entry::json(&serde_json::json!({"a": 1}), None);
        let response = serve(
            &entry,
            &headers(header::IF_NONE_MATCH, &entry.etag),
            Caching::Private,
        );
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[header::ETAG], entry.etag.as_str());
        assert!(response.headers().get(header::CONTENT_TYPE).is_none());
    }
}
