//! Sizes of the request line and headers.
//!
//! hyper refuses what exceeds its own buffers (about 400 KiB of headers, 64
//! KiB of URI) with a bare 431 or 414 before the service sees the request;
//! these lower limits answer the same statuses as problem JSON.

use axum::extract::Request;

use crate::error::ApiError;

/// Longest accepted request target (path and query).
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// Most header bytes (names and values) accepted in one request.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// 414 for an over-long URI, 431 for oversized headers.
pub fn oversized(request: &Request) -> Option<ApiError> {
    let uri = request.uri();
    let uri_bytes = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return Some(ApiError::UriTooLong);
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    (header_bytes > MAX_HEADER_BYTES).then_some(ApiError::HeadersTooLarge)
}
