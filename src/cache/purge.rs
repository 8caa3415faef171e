//! Tells a CDN (or a purging proxy) which surrogate keys a write made stale.
//! Sent after the write commits, in the background, retried; never blocks it.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, Request, Uri, header};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const ATTEMPTS: u32 = 3;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Purger {
    url: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Purger {
    pub fn new(url: Uri) -> Self {
        Self {
            url,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `POST {"surrogate_keys": [...]}` with a `Surrogate-Key` header too.
    pub fn purge(&self, keys: Vec<String>) {
        let this = self.clone();
        tokio::spawn(async move {
            let body = Bytes::from(serde_json::json!({ "surrogate_keys": keys }).to_string());
            let mut backoff = FIRST_BACKOFF;
            for attempt in 1..=ATTEMPTS {
                let request = Request::builder()
                    .method(Method::POST)
                    .uri(this.url.clone())
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("surrogate-key", keys.join(" "))
                    .body(Full::new(body.clone()));
                let Ok(request) = request else { return };
                match tokio::time::timeout(ATTEMPT_TIMEOUT, this.client.request(request)).await {
                    Ok(Ok(response)) if response.status().is_success() => return,
                    outcome => tracing::warn!(attempt, ?outcome, "CDN purge failed"),
                }
                tokio::time::sleep(backoff).await;
                backoff *= 4;
            }
            crate::metrics::purge_failed();
        });
    }
}
