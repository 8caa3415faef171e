//! Serving finished entries with HTTP validators and caching headers:
//! `ETag`, `Last-Modified`, `If-None-Match` (304), `If-Match` (412), content
//! coding by `Accept-Encoding`, `Cache-Control` and CDN surrogate keys.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cache::{Coding, Entry, entity_tag};
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
    // A 304 names the variant it stands for without making it.
    let (coding, mut response) = if not_modified {
        let coding = entry.coding_for(request.coding);
        (coding, StatusCode::NOT_MODIFIED.into_response())
    } else {
        let (coding, body) = entry.variant(request.coding);
        let mut response = Response::new(Body::from(body.clone()));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(name) = coding.name() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
        }
        (coding, response)
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

/// The coding `Accept-Encoding` prefers (RFC 9110 12.5.3): the highest
/// q-value among brotli, gzip and identity, ties going to the smaller body
/// (brotli, then gzip). A coding not listed takes `*`'s q-value; `q=0`
/// refuses a coding. Identity not listed (and not refused through `*`) is
/// acceptable but ranks below any coding the client accepts. A q-value that
/// is not a number from 0 to 1 makes its element count as not sent. No
/// header: identity. One pass, no allocation.
fn preferred_coding(request: &HeaderMap) -> Coding {
    let Some(accept) = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return Coding::Identity;
    };
    let (mut br, mut gzip, mut identity, mut any) = (None, None, None, None);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let Some(q) = parts.find_map(quality).unwrap_or(Some(1.0)) else {
            continue;
        };
        let slot = if coding.eq_ignore_ascii_case("br") {
            &mut br
        } else if coding.eq_ignore_ascii_case("gzip") {
            &mut gzip
        } else if coding.eq_ignore_ascii_case("identity") {
            &mut identity
        } else if coding == "*" {
            &mut any
        } else {
            continue;
        };
        slot.get_or_insert(q);
    }
    let br = br.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    // Below every accepted coding unless listed, or refused by `*;q=0`.
    let identity = identity.unwrap_or(if any == Some(0.0) {
        0.0
    } else {
        f32::MIN_POSITIVE
    });
    if br > 0.0 && br >= gzip && br >= identity {
        Coding::Brotli
    } else if gzip > 0.0 && gzip >= identity {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

/// The value of a `q=` parameter (`q = 0.5` too): `None` if the parameter
/// is another one, `Some(None)` if its value is not a q-value (a number
/// from 0 to 1).
fn quality(parameter: &str) -> Option<Option<f32>> {
    let (name, value) = parameter.split_once('=')?;
    if !name.trim().eq_ignore_ascii_case("q") {
        return None;
    }
    Some(
        value
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|q| (0.0..=1.0).contains(q)),
    )
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
    fn the_highest_q_value_wins() {
        let coding = |value: &str| preferred_coding(&headers(header::ACCEPT_ENCODING, value));
        assert_eq!(coding("gzip;q=0.001, br;q=0.0005"), Coding::Gzip);
        assert_eq!(coding("br;q=0.5, gzip;q=0.9"), Coding::Gzip);
        assert_eq!(coding("gzip;q=0.5, br;q=0.5"), Coding::Brotli, "a tie");
        assert_eq!(coding("*;q=0.2, gzip;q=0.1"), Coding::Brotli);
        assert_eq!(coding("identity, gzip;q=0.5"), Coding::Identity);
        assert_eq!(coding("identity;q=0.4, gzip;q=0.5"), Coding::Gzip);
        assert_eq!(
            coding("gzip;q=0.001"),
            Coding::Gzip,
            "over unlisted identity"
        );
        assert_eq!(
            coding("gzip;q=0, identity;q=0"),
            Coding::Identity,
            "nothing else"
        );
        assert_eq!(coding("*;q=0"), Coding::Identity);
        assert_eq!(coding("br;q=2, gzip;q=0.5"), Coding::Gzip, "q over 1");
        assert_eq!(coding("br;q=abc, gzip;q=0.1"), Coding::Gzip);
        assert_eq!(coding("br;q=-1, gzip;q=NaN"), Coding::Identity);
        assert_eq!(coding("br;level=1;q=0.2, gzip;q=0.3"), Coding::Gzip);
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

    #[test]
    fn a_304_names_the_variant_it_stands_for_without_making_it() {
        let entry = Entry::json(&"a body worth compressing ".repeat(40), None);
        let mut request = headers(header::IF_NONE_MATCH, &entry.etag);
        request.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br"));
        let response = serve(
            &entry,
            &ReadRequest::from_headers(&request),
            Caching::Private,
        );
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            response.headers()[header::ETAG],
            entry.headers.etag(Coding::Brotli)
        );
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(entry.made(Coding::Brotli), None);

        request.remove(header::IF_NONE_MATCH);
        let response = serve(
            &entry,
            &ReadRequest::from_headers(&request),
            Caching::Private,
        );
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "br");
        assert!(entry.made(Coding::Brotli).is_some());
    }
}
