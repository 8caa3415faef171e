//! The request log: one line per request at `info` under the
//! `feedgate::request` target, inside a span that carries the request id,
//! method and route template into every line logged while the request runs
//! (errors included).
//!
//! The span shares the line's target and level: with `feedgate::request` at
//! `warn` or above, neither is made and the layer costs a filter check.
//! Headers are never logged, so neither are `Authorization` nor cookies; the
//! route is the matched template, never the raw path.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::instrument::{Instrument, Instrumented};
use tracing::{Level, Span};

use crate::telemetry::{self, TierScope};

/// Route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// Longest client-chosen request id that is logged in full.
const MAX_ID_LEN: usize = 128;

/// Logs each request; add it inside the layer that sets `x-request-id`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLogLayer;

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> RequestLog<S> {
        RequestLog { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RequestLog<S> {
    inner: S,
}

impl<S> Service<Request> for RequestLog<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = LogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let span = request_span(&request);
        let started = (!span.is_disabled()).then(Instant::now);
        LogFuture {
            inner: telemetry::with_tier(self.inner.call(request)).instrument(span),
            started,
        }
    }
}

fn request_span(request: &Request) -> Span {
    // Checked first so that a disabled span costs no header lookups.
    if !tracing::enabled!(target: "feedgate::request", Level::INFO) {
        return Span::none();
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str);
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map_or("-", |id| id.get(..MAX_ID_LEN).unwrap_or(id));
    tracing::info_span!(
        target: "feedgate::request",
        "request",
        request_id = %id,
        method = %request.method(),
        route = %route,
    )
}

pin_project! {
    /// The inner response future, inside the request's span; logs the line
    /// when the response head is ready.
    pub struct LogFuture<F> {
        #[pin]
        inner: Instrumented<TierScope<F>>,
        started: Option<Instant>,
    }
}

impl<F, E> Future for LogFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let result = ready!(this.inner.as_mut().poll(cx));
        if let (Some(started), Ok(response)) = (this.started.take(), &result) {
            let tier = telemetry::answered(this.inner.as_mut().inner_pin_mut())
                .map(|tier| tracing::field::display(tier.as_str()));
            let _entered = this.inner.span().enter();
            tracing::info!(
                target: "feedgate::request",
                status = response.status().as_u16(),
                latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                tier,
                "response",
            );
        }
        Poll::Ready(result)
    }
}
