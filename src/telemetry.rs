//! Logging: human-readable or JSON lines, filtered by `RUST_LOG` or config.

use std::cell::Cell;
use std::future::Future;
use std::io::IsTerminal;
use std::pin::Pin;

use tokio::task::futures::TaskLocalFuture;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};

use crate::labels::Tier;

/// A request's future in the scope of [`with_tier`].
pub type TierScope<F> = TaskLocalFuture<Cell<Option<Tier>>, F>;

tokio::task_local! {
    /// The tier that answered the request being served, for its log line.
    static ANSWERED_BY: Cell<Option<Tier>>;
}

/// Runs `future` (one request) with a place for [`answered_by`] to record
/// the tier that answered it; [`answered`] reads it back.
pub fn with_tier<F: Future>(future: F) -> TierScope<F> {
    ANSWERED_BY.scope(Cell::new(None), future)
}

/// Records the tier that answered the current request (the last read's, if
/// there were several); nothing outside [`with_tier`].
pub fn answered_by(tier: Tier) {
    let _ = ANSWERED_BY.try_with(|answered| answered.set(Some(tier)));
}

/// The tier recorded in `future`'s scope, once it has completed.
pub fn answered<F: Future>(future: Pin<&mut TierScope<F>>) -> Option<Tier> {
    future.take_value().and_then(|answered| answered.get())
}

/// Installs the process-wide subscriber, writing to stdout; colours only on
/// a terminal (they cost time per line and litter files and journals).
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stdout().is_terminal();
    let _ = subscriber(settings.format, filter, colour, std::io::stdout).try_init();
}

/// The subscriber [`init`] installs, writing to `writer`, so tests can read
/// exactly what operators will. JSON lines carry the current span's fields
/// (the request id, method and route) under `span`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    colour: bool,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_span_list(false)
                .finish(),
        ),
        LogFormat::Pretty => Box::new(builder.finish()),
    }
}
