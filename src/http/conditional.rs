//! Serving finished entries with HTTP validators and caching headers:
//! `ETag`, `Last-Modified`, `If-None-Match` (304), `If-Match` (412), content
//! coding by `Accept-Encoding`, `Cache-Control` and CDN surrogate keys.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::header::InvalidHeaderValue;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cache::{Coding, Entry, entity_tag};
use crate::config::CacheControlSettings;
use crate::error::ApiError;
use crate::writes::Precondition;

/// Who may store a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching<'a> {
    /// The same for every caller: browsers and CDNs may keep it, per this
    /// `Cache-Control` value.
    Public(&'a HeaderValue),
    /// Depends on who asks (drafts, the caller's profile): nobody stores it.
    Private,
}

const PRIVATE: HeaderValue = HeaderValue::from_static("private, no-store");
pub const NO_STORE: &str = "no-store";

/// The configured `Cache-Control` of public reads, per route family,
/// validated and rendered once at start.
#[derive(Debug, Clone)]
pub struct CacheControl {
    pub article: HeaderValue,
    pub articles: HeaderValue,
    pub comments: HeaderValue,
    pub tags: HeaderValue,
}

impl CacheControl {
    pub fn new(settings: &CacheControlSettings) -> Result<Self, InvalidHeaderValue> {
        Ok(Self {
            article: HeaderValue::from_str(&settings.article)?,
            articles: HeaderValue::from_str(&settings.articles)?,
            comments: HeaderValue::from_str(&settings.comments)?,
            tags: HeaderValue::from_str(&settings.tags)?,
        })
    }
}

/// What a read needs from its request: the client's validators and the
/// codings it accepts. Extracting these instead of the whole `HeaderMap`
/// spares a hit copying every request header.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    if_none_match: Option<HeaderValue>,
    coding: Coding,
}

impl<S: Send + Sync> FromRequestParts<S> for ReadRequest {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self::from_headers(&parts.headers))
    }
}

impl ReadRequest {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            if_none_match: headers.get(header::IF_NONE_MATCH).cloned(),
            coding: preferred_coding(headers),
        }
    }
}

/// A 200 with the entry's bytes in the best coding the client accepts, or a
/// bodiless 304 if the client's `If-None-Match` already names this entry.
/// Every header value is cloned from the entry: no encoding, no formatting.
pub fn serve(entry: &Entry, request: &ReadRequest, caching: Caching<'_>) -> Response {
    let not_modified = request
        .if_none_match
        .as_ref()
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| none_match_hits(value, &entry.etag));
    let (coding, body) = entry.variant(request.coding);
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(body.clone()));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(name) = coding.name() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
        }
        response
    };
    let headers = response.headers_mut();
    // Room for every header the response will carry (these, CORS, the
    // request id, hyper's), so the map is allocated once.
    headers.reserve(16);
    let prebuilt = &entry.headers;
    headers.insert(header::ETAG, prebuilt.etag(coding).clone());
    if let Some(value) = &prebuilt.last_modified {
        headers.insert(header::LAST_MODIFIED, value.clone());
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let cache_control = match caching {
        Caching::Public(policy) => policy.clone(),
        Caching::Private => PRIVATE,
    };
    headers.insert(header::CACHE_CONTROL, cache_control);
    if let Some(value) = &prebuilt.surrogate_key {
        headers.insert("surrogate-key", value.clone());
    }
    if let Some(value) = &prebuilt.cache_tag {
        headers.insert("cache-tag", value.clone());
    }
    response
}

/// A write's answer: the new state, its ETag, never stored by caches.
pub fn written(status: StatusCode, entry: &Entry, location: Option<String>) -> Response {
    let identity = ReadRequest {
        if_none_match: None,
        coding: Coding::Identity,
    };
    let mut response = serve(entry, &identity, Caching::Private);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    headers.remove(header::VARY);
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// brotli, else gzip, else identity, as `Accept-Encoding` allows (`q=0`
/// refuses; `*` covers the codings not listed). One pass, no allocation.
fn preferred_coding(request: &HeaderMap) -> Coding {
    let Some(accept) = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return Coding::Identity;
    };
    let (mut br, mut gzip, mut any) = (None, None, None);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let q = parts.find_map(quality).unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("br") {
            br.get_or_insert(q);
        } else if coding.eq_ignore_ascii_case("gzip") {
            gzip.get_or_insert(q);
        } else if coding == "*" {
            any.get_or_insert(q);
        }
    }
    let accepts = |q: Option<f32>| q.or(any).is_some_and(|q| q > 0.0);
    if accepts(br) {
        Coding::Brotli
    } else if accepts(gzip) {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

/// The value of a `q=` parameter (`q = 0.5` too).
fn quality(parameter: &str) -> Option<f32> {
    let (name, value) = parameter.split_once('=')?;
    name.trim()
        .eq_ignore_ascii_case("q")
        .then(|| value.trim().parse().ok())
        .flatten()
}

/// `If-None-Match` uses weak comparison (RFC 9110 13.1.2): a CDN that
/// re-encodes a body marks its ETag `W/`, and any coding of the same
/// content is the same content.
fn none_match_hits(header: &str, etag: &str) -> bool {
    header.trim() == "*" || header.split(',').any(|tag| entity_tag(tag) == etag)
}

/// The write's precondition: `If-Match`, compared strongly against the
/// current ETag of any coding (a browser only ever sees the compressed one)
/// or the version number alone (`If-Match: "3"` or `3`), which clients
/// without the ETag at hand can take from the article JSON.
pub fn precondition(request: &HeaderMap) -> Result<Precondition, ApiError> {
    let Some(value) = request.get(header::IF_MATCH) else {
        return Ok(Precondition::None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::bad_request("If-Match is not valid text"))?;
    Ok(Precondition::IfMatch(value.to_owned()))
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
    fn if_match_becomes_the_precondition_and_junk_is_refused() {
        assert_eq!(precondition(&HeaderMap::new()).unwrap(), Precondition::None);
        assert_eq!(
            precondition(&headers(header::IF_MATCH, "\"3\"")).unwrap(),
            Precondition::IfMatch("\"3\"".into())
        );
        let mut junk = HeaderMap::new();
        junk.insert(
            header::IF_MATCH,
            HeaderValue::from_bytes(b"\"\xff\"").unwrap(),
        );
        assert!(precondition(&junk).is_err());
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
        assert_eq!(coding("BR"), Coding::Brotli);
        assert_eq!(coding("gzip; q = 0, br;q=0"), Coding::Identity);
        assert_eq!(coding("gzip;q=0.5, *;q=0"), Coding::Gzip);
        assert_eq!(
            coding("br;q=0, br"),
            Coding::Identity,
            "the first mention counts"
        );
        assert_eq!(preferred_coding(&HeaderMap::new()), Coding::Identity);
    }

    #[test]
    fn variant_etags_match_their_entity() {
        assert!(none_match_hits("W/\"abc-gzip\"", "\"abc\""));
    }

    #[test]
    fn a_matching_if_none_match_gets_an_empty_304_with_the_etag() {
        let entry = Entry::json(&serde_json::json!({"a": 1}), None);
        let request = ReadRequest::from_headers(&headers(header::IF_NONE_MATCH, &entry.etag));
        let response = serve(&entry, &request, Caching::Private);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[header::ETAG], entry.etag.as_str());
        assert!(response.headers().get(header::CONTENT_TYPE).is_none());
    }
}
