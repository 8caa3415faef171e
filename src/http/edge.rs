//! The edge of every route: what each request and response goes through
//! after routing, in one layer whose future is a plain state machine.
//!
//! In order: 414/431 for oversized request lines and headers; rate limits;
//! the handler, under the request timeout, a panic in it answered as a 500;
//! problem JSON for bare error responses (axum's 405, a body limit's 413);
//! `Connection: close` on a response sent before its request's body was
//! read; the request counter and latency histogram. On a cache hit none of it allocates, boxes a future
//! or arms a timer: the timer starts only if the response is not ready at
//! the first poll, and only a limit kept in Redis is waited for in a boxed
//! future.

use std::convert::Infallible;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::{Layer, Service, ServiceExt};

use super::guard;
use super::throttle::{self, Admission};
use crate::app::AppState;
use crate::error::{ApiError, PROBLEM_JSON, problem_for_status};
use crate::metrics::{self, RequestMetrics};
use crate::ratelimit::{Bucket, Class, Decision};

/// Route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

#[derive(Clone)]
pub struct EdgeLayer {
    app: AppState,
    timeout: Duration,
}

impl EdgeLayer {
    pub fn new(app: AppState) -> Self {
        let timeout = Duration::from_secs(app.settings.server.request_timeout_secs);
        Self { app, timeout }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            app: self.app.clone(),
            timeout: self.timeout,
            metrics: Arc::default(),
        }
    }
}

/// Axum layers each route (and each method of it) separately, so one
/// `Edge` and its clones see one route and only a few methods and statuses.
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    app: AppState,
    timeout: Duration,
    metrics: Arc<RouteMetrics>,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let (request, body_read) = track_body(request);
        let mut done = Done {
            started,
            method: request.method().clone(),
            route: request.extensions().get::<MatchedPath>().cloned(),
            metrics: self.metrics.clone(),
            limit: None,
            body_read,
        };
        let state = if let Some(refusal) = guard::oversized(&request) {
            State::Ready {
                response: Some(refusal.into_response()),
            }
        } else {
            match throttle::admit(&self.app, &request) {
                Admission::Free => self.serve(request),
                Admission::Decided(_, decision) if !decision.allowed => State::Ready {
                    response: Some(ApiError::TooManyRequests(decision).into_response()),
                },
                Admission::Decided(class, decision) => {
                    done.limit = (class != Class::Read).then_some(decision);
                    self.serve(request)
                }
                Admission::Ask(class, key) => {
                    // Take the service that was made ready; leave a clone.
                    let inner = self.inner.clone();
                    let inner = std::mem::replace(&mut self.inner, inner);
                    State::Asking {
                        future: Box::pin(ask_then_call(
                            self.app.clone(),
                            class,
                            key,
                            inner,
                            request,
                            self.timeout,
                        )),
                    }
                }
            }
        };
        EdgeFuture {
            state,
            timer: None,
            deadline: started + self.timeout,
            done,
        }
    }
}

impl<S> Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    fn serve(&mut self, request: Request) -> State<S::Future> {
        match panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => State::Inner { future },
            Err(_) => State::Ready {
                response: Some(panicked()),
            },
        }
    }
}

/// A write or sign-in whose bucket is shared through Redis: waits for its
/// verdict, then serves the request under the same timeout.
async fn ask_then_call<S>(
    app: AppState,
    class: Class,
    key: Bucket,
    inner: S,
    request: Request,
    timeout: Duration,
) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let Some(limiter) = app.limiter.as_ref() else {
        return inner
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
    };
    let decision = limiter.check(class, key).await;
    if !decision.allowed {
        return ApiError::TooManyRequests(decision).into_response();
    }
    let serving = AssertUnwindSafe(inner.oneshot(request)).catch_unwind();
    let mut response = match tokio::time::timeout(timeout, serving).await {
        Ok(Ok(response)) => response.unwrap_or_else(|never| match never {}),
        Ok(Err(_)) => panicked(),
        Err(_) => timed_out(),
    };
    write_limit_headers(&mut response, decision);
    response
}

fn panicked() -> Response {
    ApiError::internal("a handler panicked").into_response()
}

fn timed_out() -> Response {
    problem_for_status(StatusCode::SERVICE_UNAVAILABLE)
}

/// A 429 from the handler (the username limit) reports its own bucket.
fn write_limit_headers(response: &mut Response, decision: Decision) {
    if response.status() != StatusCode::TOO_MANY_REQUESTS {
        decision.write_headers(response.headers_mut());
    }
}

pin_project! {
    pub struct EdgeFuture<F> {
        #[pin]
        state: State<F>,
        // Armed only once the handler has had to wait.
        timer: Option<Pin<Box<Sleep>>>,
        deadline: Instant,
        done: Done,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Ready { response: Option<Response> },
        Inner { #[pin] future: F },
        Asking { future: Pin<Box<dyn Future<Output = Response> + Send>> },
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.state.project() {
            StateProj::Ready { response } => response.take().expect("polled after completion"),
            StateProj::Inner { future } => {
                match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Ok(Poll::Ready(result)) => result.unwrap_or_else(|never| match never {}),
                    Err(_) => panicked(),
                    Ok(Poll::Pending) => {
                        let deadline = tokio::time::Instant::from_std(*this.deadline);
                        let timer = this
                            .timer
                            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                        if timer.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        timed_out()
                    }
                }
            }
            StateProj::Asking { future } => match future.as_mut().poll(cx) {
                Poll::Ready(response) => response,
                Poll::Pending => return Poll::Pending,
            },
        };
        Poll::Ready(Ok(this.done.finish(response)))
    }
}

/// What is needed once the response is there.
struct Done {
    started: Instant,
    method: Method,
    route: Option<MatchedPath>,
    metrics: Arc<RouteMetrics>,
    /// An in-process write bucket's verdict, reported in `RateLimit-*`.
    limit: Option<Decision>,
    /// For a request with a body: whether it was read to its end.
    body_read: Option<Arc<AtomicBool>>,
}

impl Done {
    fn finish(&mut self, response: Response) -> Response {
        let mut response = problem_for_bare_error(response);
        if let Some(decision) = self.limit {
            write_limit_headers(&mut response, decision);
        }
        if self
            .body_read
            .as_ref()
            .is_some_and(|read| !read.load(Ordering::Acquire))
        {
            // The rest of the body cannot be told from a next request, so
            // the connection ends after this answer: say so, or the client
            // sends its next request into a closed connection.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let route = self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
        let status = response.status().as_u16();
        self.metrics
            .record(&self.method, route, status, self.started.elapsed());
        response
    }
}

/// For a request that has a body, a flag its reader sets once the body has
/// been read to its end (a request without one is left as it is: no
/// allocation on reads).
fn track_body(request: Request) -> (Request, Option<Arc<AtomicBool>>) {
    if request.body().is_end_stream() {
        return (request, None);
    }
    let read = Arc::new(AtomicBool::new(false));
    let flag = read.clone();
    let request = request.map(|inner| Body::new(TrackedBody { inner, read: flag }));
    (request, Some(read))
}

pin_project! {
    /// A request body that records when it has been read to its end.
    struct TrackedBody {
        #[pin]
        inner: Body,
        read: Arc<AtomicBool>,
    }
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            this.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Rewrites error responses that are not already JSON (axum's 405, a body
/// limit's 413) into problem JSON, keeping headers such as `Allow`. JSON
/// error bodies stay: problems, and the readiness report's checks.
fn problem_for_bare_error(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| {
            let value = value.as_bytes();
            value.starts_with(PROBLEM_JSON.as_bytes()) || value.starts_with(b"application/json")
        });
    if is_json {
        return response;
    }
    let (parts, _) = response.into_parts();
    let mut problem = problem_for_status(status);
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

/// The request metrics of one layered route, by method, template and
/// status, resolved on first use. Methods are kept by their metric label,
/// so any number of made-up methods takes one place.
#[derive(Default)]
struct RouteMetrics {
    resolved: RwLock<Vec<Resolved>>,
}

struct Resolved {
    method: &'static str,
    route: Box<str>,
    status: u16,
    metrics: RequestMetrics,
}

impl Resolved {
    fn is(&self, method: &str, route: &str, status: u16) -> bool {
        self.status == status && self.method == method && *self.route == *route
    }
}

impl RouteMetrics {
    fn record(&self, method: &Method, route: &str, status: u16, elapsed: Duration) {
        let method = metrics::method_label(method);
        let resolved = self.resolved.read().expect("not poisoned");
        if let Some(found) = resolved.iter().find(|r| r.is(method, route, status)) {
            return found.metrics.record(elapsed);
        }
        drop(resolved);
        let mut resolved = self.resolved.write().expect("not poisoned");
        if !resolved.iter().any(|r| r.is(method, route, status)) {
            resolved.push(Resolved {
                method,
                route: route.into(),
                status,
                metrics: RequestMetrics::new(method, route, status),
            });
        }
        let found = resolved.iter().find(|r| r.is(method, route, status));
        found.expect("just added").metrics.record(elapsed);
    }
}
