//! The performance ceiling for feedgate's cache hits: a bare axum server
//! (multi-thread tokio runtime, plain `axum::serve`, no middleware) that
//! answers with responses prepared once at start-up, so a request costs only
//! HTTP parsing, routing, clones and writing. A hit in feedgate does the same
//! work plus its middleware and cache lookup; `bench/hits.sh` reports each
//! hit as a ratio to this server answering the identical bytes.
//!
//!   cargo run --release --example ceiling -- ADDR DIR
//!
//! DIR holds captures from `curl -s -D NAME.head -o NAME.body URL`: for each
//! pair, `GET /NAME` answers that status, those headers and that body.
//! Headers hyper writes itself (content-length, date, connection,
//! transfer-encoding, keep-alive) are dropped from the capture.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;

/// Headers that belong to one connection or one transfer, not to the
/// response: hyper writes its own.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "content-length",
    "date",
    "keep-alive",
    "transfer-encoding",
];

type Canned = Arc<(StatusCode, HeaderMap, Bytes)>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(dir)) = (args.next(), args.next()) else {
        bail!("usage: ceiling ADDR DIR");
    };
    let mut router = Router::new();
    let mut names = Vec::new();
    for file in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let path = file?.path();
        if path.extension().is_some_and(|ext| ext == "head") {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .context("file name")?;
            let canned = load(&path).with_context(|| format!("loading {}", path.display()))?;
            router = router.route(&format!("/{name}"), get(move || serve(canned.clone())));
            names.push(name.to_owned());
        }
    }
    if names.is_empty() {
        bail!("no *.head captures in {dir}");
    }
    names.sort();
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("ceiling: serving /{} on {addr}", names.join(", /"));
    axum::serve(listener, router).await?;
    Ok(())
}

async fn serve(canned: Canned) -> Response {
    let (status, headers, body) = &*canned;
    let mut response = Response::new(Body::from(body.clone()));
    *response.status_mut() = *status;
    *response.headers_mut() = headers.clone();
    response
}

/// Reads `NAME.head` (status line and headers, as curl's `-D` writes them)
/// and `NAME.body`.
fn load(head: &Path) -> anyhow::Result<Canned> {
    let text = std::fs::read_to_string(head)?;
    let mut lines = text.lines().map(str::trim_end);
    let status_line = lines.next().context("empty head")?;
    let code = status_line
        .split_whitespace()
        .nth(1)
        .context("no status code")?;
    let status = StatusCode::from_bytes(code.as_bytes())?;
    let mut headers = HeaderMap::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("bad header line {line:?}"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())?;
        if !HOP_BY_HOP.contains(&name.as_str()) {
            headers.append(name, HeaderValue::from_bytes(value.trim().as_bytes())?);
        }
    }
    let body = std::fs::read(head.with_extension("body"))?;
    Ok(Arc::new((status, headers, Bytes::from(body))))
}
