//! Logging: human-readable or JSON lines, filtered by `RUST_LOG` or config.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};

/// The cache tier that answered a read (`"l1"`, `"l2"`, `"db"`), carried as a
/// response extension by whoever knows it; the request log line prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnsweredBy(pub &'static str);

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
