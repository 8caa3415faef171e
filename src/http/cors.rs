//! CORS by tower-http's layer, with one shortcut: a request without an
//! `Origin` (apps, CDNs, servers: most of the traffic) gets headers that do
//! not depend on the request, so they are computed once, by asking the layer
//! itself, and copied into each such response.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;
use axum::http::header::{self, HeaderMap, HeaderName};
use axum::response::Response;
use futures_util::FutureExt;
use pin_project_lite::pin_project;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowOrigin, Any, Cors, CorsLayer};

use crate::config::{CorsOrigins, ServerSettings};

#[derive(Clone)]
pub struct CorsShortcutLayer {
    cors: CorsLayer,
    /// What the layer adds to a response to a request without `Origin`.
    without_origin: Arc<HeaderMap>,
}

impl CorsShortcutLayer {
    pub fn new(settings: &ServerSettings, request_id: HeaderName) -> Self {
        let cors = layer(settings, request_id);
        let probe = cors
            .layer(tower::service_fn(|_: Request| async {
                Ok::<_, Infallible>(Response::new(Body::empty()))
            }))
            .oneshot(Request::new(Body::empty()))
            .now_or_never();
        let without_origin = match probe {
            Some(Ok(response)) => response.into_parts().0.headers,
            None | Some(Err(_)) => unreachable!("answered at once, infallibly"),
        };
        Self {
            cors,
            without_origin: Arc::new(without_origin),
        }
    }
}

impl<S> Layer<S> for CorsShortcutLayer {
    type Service = CorsShortcut<S>;

    fn layer(&self, inner: S) -> CorsShortcut<S> {
        CorsShortcut {
            cors: self.cors.layer(inner),
            without_origin: self.without_origin.clone(),
        }
    }
}

#[derive(Clone)]
pub struct CorsShortcut<S> {
    cors: Cors<S>,
    without_origin: Arc<HeaderMap>,
}

impl<S> Service<Request> for CorsShortcut<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ShortcutFuture<S::Future, tower_http::cors::ResponseFuture<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.cors.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() != Method::OPTIONS && !request.headers().contains_key(header::ORIGIN) {
            ShortcutFuture::Plain {
                future: self.cors.get_mut().call(request),
                headers: self.without_origin.clone(),
            }
        } else {
            ShortcutFuture::Cors {
                future: self.cors.call(request),
            }
        }
    }
}

pin_project! {
    #[project = ShortcutProj]
    pub enum ShortcutFuture<P, C> {
        Plain { #[pin] future: P, headers: Arc<HeaderMap> },
        Cors { #[pin] future: C },
    }
}

impl<P, C, E> Future for ShortcutFuture<P, C>
where
    P: Future<Output = Result<Response, E>>,
    C: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ShortcutProj::Cors { future } => future.poll(cx),
            ShortcutProj::Plain { future, headers } => future.poll(cx).map_ok(|mut response| {
                add(response.headers_mut(), headers);
                response
            }),
        }
    }
}

/// Merges as tower-http does: `Vary` is added to, the rest replaced.
fn add(response: &mut HeaderMap, added: &HeaderMap) {
    for name in added.keys() {
        let mut values = added.get_all(name).iter();
        if *name != header::VARY
            && let Some(first) = values.next()
        {
            response.insert(name.clone(), first.clone());
        }
        for value in values {
            response.append(name.clone(), value.clone());
        }
    }
}

/// The policy: the configured origins (`*` for any), any method, the
/// request headers clients send, and the response headers they read.
fn layer(settings: &ServerSettings, request_id: HeaderName) -> CorsLayer {
    let allow_origin = match &settings.cors_origins {
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::Listed(origins) => AllowOrigin::list(origins.iter().cloned()),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(Any)
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::LAST_MODIFIED,
            request_id,
            header::RETRY_AFTER,
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(3600))
}
