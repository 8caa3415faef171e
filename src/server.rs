//! Serving HTTP/1.1 with the limits `axum::serve` has no knobs for: request
//! headers must arrive within a time limit (which hyper also applies while
//! a keep-alive connection waits for its next request, so idle connections
//! close after it too); responses must make progress (a client that stops
//! reading is cut off, see [`Progressing`]); and a graceful shutdown that
//! stops waiting at a deadline and drops the connections still open.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::config::ServerSettings;

/// A pause after a failed `accept` (out of file descriptors, say), so the
/// loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish for up to `shutdown_timeout_secs` and drops
/// whatever is still open. Each request carries its peer's address as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let send_timeout = Duration::from_secs(settings.send_timeout_secs.max(1));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(settings.header_read_timeout_secs))
        .keep_alive(settings.keep_alive);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // What stays queued once the connection is let go (closed
                // while the client reads nothing) is given up as well.
                let _ = socket2::SockRef::from(&stream).set_tcp_user_timeout(Some(send_timeout));
                let service = router.clone().map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
                let connection = http.serve_connection(
                    TokioIo::new(Progressing::new(stream, send_timeout)),
                    TowerToHyperService::new(service),
                );
                let connection = graceful.watch(connection);
                connections.spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!(error = %err, %peer, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    let deadline = Duration::from_secs(settings.shutdown_timeout_secs);
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "shutdown deadline passed: dropping the connections still open"
        );
    }
    connections.shutdown().await;
}

/// A connection whose writes must make progress. A response that the
/// socket takes nothing of for `limit` (its send buffer stays full: the
/// client has stopped reading, while perhaps pipelining more requests)
/// fails the connection, which is then reset: what the system still holds
/// for it is dropped at once, not kept for a reader that never comes. A
/// timer is armed only while a write waits, so a response that goes out
/// at once costs nothing.
struct Progressing {
    stream: TcpStream,
    limit: Duration,
    /// Started when a write could not go on; dropped when one does.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl Progressing {
    fn new(stream: TcpStream, limit: Duration) -> Self {
        Self {
            stream,
            limit,
            stalled: None,
        }
    }

    /// Passes on what a write made of the socket: progress clears the
    /// stall, a wait arms it, and a wait past the limit fails.
    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(stalled.as_mut().poll(cx));
        // Reset rather than close: the unsent responses go with it.
        let _ = self.stream.set_zero_linger();
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing of the response for server.send_timeout_secs",
        )))
    }
}

impl AsyncRead for Progressing {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Progressing {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.progress(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.progress(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        self.progress(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
