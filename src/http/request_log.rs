//! The request log: one line per request at `info` under the
//! `feedgate::request` target, with its request id, method, route template,
//! status, latency and the cache tier that answered; written by the request
//! log's own thread (see `telemetry`), so a request only hands it over.
//! Whether lines are wanted was decided when the log started.
//!
//! Every request runs in a scope that carries its id, method and route into
//! the other lines it causes (errors included), whether request lines are
//! on or not. Headers are never logged, so neither are `Authorization` nor
//! cookies; the route is the matched template, never the raw path.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::response::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::request_id::REQUEST_ID;
use crate::telemetry::{self, RequestContext, RequestId, RequestLine, RequestLog, Scoped};

/// Logs each request to `log`; add it inside the layer that sets
/// `x-request-id`.
#[derive(Clone, Default)]
pub struct RequestLogLayer {
    log: RequestLog,
}

impl RequestLogLayer {
    pub fn new(log: RequestLog) -> Self {
        Self { log }
    }
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLogService<S>;

    fn layer(&self, inner: S) -> RequestLogService<S> {
        RequestLogService {
            inner,
            log: self.log.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RequestLogService<S> {
    inner: S,
    log: RequestLog,
}

impl<S> Service<Request> for RequestLogService<S>
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
        let context = RequestContext {
            id: RequestId::new(
                request
                    .headers()
                    .get(REQUEST_ID)
                    .map_or(b"-".as_slice(), HeaderValue::as_bytes),
            ),
            method: request.method().clone(),
            route: request.extensions().get::<MatchedPath>().cloned(),
        };
        let log = self.log.is_on().then(|| (self.log.clone(), Instant::now()));
        LogFuture {
            inner: telemetry::scope(context, self.inner.call(request)),
            log,
        }
    }
}

pin_project! {
    /// The inner response future, in the request's scope; hands the line
    /// over when the response head is ready.
    pub struct LogFuture<F> {
        #[pin]
        inner: Scoped<F>,
        log: Option<(RequestLog, Instant)>,
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
        if let (Some((log, started)), Ok(response)) = (this.log.take(), &result)
            && let Some(scope) = this.inner.as_mut().take_value()
        {
            let (request, tier) = scope.into_parts();
            let finished = Instant::now();
            let latency = finished.saturating_duration_since(started);
            log.push(RequestLine {
                finished,
                request,
                status: response.status().as_u16(),
                latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
                tier,
            });
        }
        Poll::Ready(result)
    }
}
