//! Logging, on two paths, both to stdout.
//!
//! Request lines (one per request, under the target `feedgate::request`)
//! are formatted by hand and written by a thread of their own ([`line`],
//! [`writer`]): a request only hands its line over, and never waits for
//! stdout. Every other line (startup, warnings, errors) goes through
//! `tracing`, human-readable or JSON, filtered by `RUST_LOG` or
//! `log.filter`; at start-up, that filter also decides whether request
//! lines are written (`feedgate::request` at `info`). A line
//! logged while a request runs carries the request's id, method and route,
//! kept for the request in a task-local rather than a `tracing` span, which
//! would cost every request its formatting.

mod line;
mod writer;

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::SystemTime;

use tokio::task::futures::TaskLocalFuture;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};

use crate::labels::Tier;

pub use line::{MAX_ID_BYTES, RequestContext, RequestId, RequestLine, Style};
pub use writer::{LogWriter, QUEUE_LINES, RequestLog};

/// The request log [`init`] started.
static REQUEST_LOG: OnceLock<RequestLog> = OnceLock::new();

/// Installs the process-wide subscriber and starts the request log's writer,
/// both writing to stdout; colours only on a terminal (they cost time per
/// line and litter files and journals). Finish the returned writer before
/// exiting, so that no request line is lost.
pub fn init(settings: &LogSettings) -> LogWriter {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stdout().is_terminal();
    let _ = subscriber(settings.format, filter, colour, std::io::stdout).try_init();
    let (log, writer) = RequestLog::spawn(
        style(settings.format, colour),
        std::io::stdout(),
        QUEUE_LINES,
    );
    let _ = REQUEST_LOG.set(log);
    writer
}

/// The request log [`init`] started, or none.
pub fn request_log() -> RequestLog {
    REQUEST_LOG.get().cloned().unwrap_or_default()
}

/// How request lines are written for `format`.
pub fn style(format: LogFormat, colour: bool) -> Style {
    match format {
        LogFormat::Pretty => Style::Pretty { colour },
        LogFormat::Json => Style::Json,
    }
}

/// A request while it runs: what the log knows of it, and the tier that
/// answered it (the last read's, if there were several).
pub struct RequestScope {
    request: RequestContext,
    tier: Cell<Option<Tier>>,
}

impl RequestScope {
    pub fn into_parts(self) -> (RequestContext, Option<Tier>) {
        (self.request, self.tier.get())
    }
}

/// A request's future in its [`scope`].
pub type Scoped<F> = TaskLocalFuture<RequestScope, F>;

tokio::task_local! {
    static REQUEST: RequestScope;
}

/// Runs `future` (one request) in the scope of `request`: lines it logs
/// carry the request, and [`answered_by`] records the tier that answered
/// it; `take_value` on the finished future gives the scope back.
pub fn scope<F: Future>(request: RequestContext, future: F) -> Scoped<F> {
    REQUEST.scope(
        RequestScope {
            request,
            tier: Cell::new(None),
        },
        future,
    )
}

/// Records the tier that answered the current request; nothing outside a
/// request's [`scope`].
pub fn answered_by(tier: Tier) {
    let _ = REQUEST.try_with(|scope| scope.tier.set(Some(tier)));
}

/// `f` of the request being served, if any.
fn in_request<R>(f: impl FnOnce(&RequestContext) -> R) -> Option<R> {
    REQUEST.try_with(|scope| f(&scope.request)).ok()
}

/// The subscriber [`init`] installs, writing to `writer`, so tests can read
/// exactly what operators will. Lines logged while a request runs carry its
/// request id, method and route: JSON under `span`, pretty after the level.
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
                .fmt_fields(JsonFields::new())
                .event_format(JsonEvents(
                    tracing_subscriber::fmt::format()
                        .json()
                        .flatten_event(true)
                        .with_current_span(false)
                        .with_span_list(false),
                ))
                .finish(),
        ),
        LogFormat::Pretty => Box::new(
            builder
                .event_format(PrettyEvents(
                    tracing_subscriber::fmt::format()
                        .without_time()
                        .with_level(false),
                ))
                .finish(),
        ),
    }
}

/// `tracing`'s human-readable lines, with the timestamp and level written
/// as in request lines and, in a request, the request after them.
struct PrettyEvents<F>(F);

impl<S, N, F> FormatEvent<S, N> for PrettyEvents<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let colour = writer.has_ansi_escapes();
        let at = line::timestamp(SystemTime::now());
        let level = level(*event.metadata().level(), colour);
        if colour {
            write!(writer, "\x1b[2m{at}\x1b[0m {level} ")?;
        } else {
            write!(writer, "{at} {level} ")?;
        }
        if let Some(prefix) = in_request(|request| {
            let mut prefix = Vec::new();
            line::write_pretty_span(request, colour, &mut prefix);
            prefix
        }) {
            writer.write_str(&String::from_utf8_lossy(&prefix))?;
        }
        self.0.format_event(ctx, writer, event)
    }
}

fn level(level: Level, colour: bool) -> &'static str {
    match (level, colour) {
        (Level::TRACE, false) => "TRACE",
        (Level::DEBUG, false) => "DEBUG",
        (Level::INFO, false) => " INFO",
        (Level::WARN, false) => " WARN",
        (Level::ERROR, false) => "ERROR",
        (Level::TRACE, true) => "\x1b[35mTRACE\x1b[0m",
        (Level::DEBUG, true) => "\x1b[34mDEBUG\x1b[0m",
        (Level::INFO, true) => "\x1b[32m INFO\x1b[0m",
        (Level::WARN, true) => "\x1b[33m WARN\x1b[0m",
        (Level::ERROR, true) => "\x1b[31mERROR\x1b[0m",
    }
}

/// `tracing`'s JSON lines, with the request's fields under `span` in a
/// request, as when the request was a `tracing` span.
struct JsonEvents<F>(F);

impl<S, N, F> FormatEvent<S, N> for JsonEvents<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(span) = in_request(|request| {
            let mut span = Vec::new();
            line::write_json_span(request, &mut span);
            span
        }) else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut text = String::new();
        self.0.format_event(ctx, Writer::new(&mut text), event)?;
        match text.strip_suffix("}\n") {
            Some(object) => {
                writer.write_str(object)?;
                writer.write_char(',')?;
                writer.write_str(&String::from_utf8_lossy(&span))?;
                writer.write_str("}\n")
            }
            None => writer.write_str(&text),
        }
    }
}
