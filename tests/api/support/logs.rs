//! Log lines captured as the binary writes them: the subscriber it installs
//! (this thread's default while the guard lives: use a current-thread
//! runtime, the default of `#[tokio::test]`) and a request log of its own,
//! both writing into one buffer. Start an app with [`TestApp::logged`] for
//! its request lines to land here.
//!
//! [`TestApp::logged`]: super::TestApp::logged

use std::io::Write;
use std::sync::{Arc, Mutex};

use feedgate::config::LogFormat;
use feedgate::telemetry::{self, LogWriter, QUEUE_LINES, RequestLog};
use serde_json::Value;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::EnvFilter;

#[derive(Clone)]
pub struct CapturedLogs {
    buffer: Buffer,
    request_log: RequestLog,
    _writer: Arc<LogWriter>,
}

impl CapturedLogs {
    /// Captures JSON lines passing `filter` on this thread until the guard drops.
    pub fn start(filter: &str) -> (Self, DefaultGuard) {
        Self::start_as(LogFormat::Json, filter)
    }

    /// Captures lines in `format` passing `filter` on this thread until the
    /// guard drops.
    pub fn start_as(format: LogFormat, filter: &str) -> (Self, DefaultGuard) {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber =
            telemetry::subscriber(format, EnvFilter::new(filter), false, move || sink.clone());
        let guard = tracing::subscriber::set_default(subscriber);
        // Under the filter, which decides whether request lines are wanted.
        let (request_log, writer) =
            RequestLog::spawn(telemetry::style(format, false), buffer.clone(), QUEUE_LINES);
        let logs = Self {
            buffer,
            request_log,
            _writer: Arc::new(writer),
        };
        (logs, guard)
    }

    /// Where an app's request lines go to be captured here.
    pub fn request_log(&self) -> RequestLog {
        self.request_log.clone()
    }

    /// Everything logged so far, request lines queued included.
    pub fn text(&self) -> String {
        assert!(self.request_log.flush(), "the request log flushes");
        self.buffer.text()
    }

    /// Every line, parsed (JSON lines only).
    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
            .collect()
    }

    /// The lines logged inside the request with this id (JSON lines only).
    pub fn for_request(&self, id: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|line| line["span"]["request_id"] == id)
            .collect()
    }
}

/// A sink for log lines that tests can read.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
