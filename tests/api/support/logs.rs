//! Log lines captured from the subscriber the binary installs, for tests
//! that check what operators will read. The subscriber is this thread's
//! default while the guard lives: use a current-thread runtime (the default
//! of `#[tokio::test]`).

use std::io::Write;
use std::sync::{Arc, Mutex};

use feedgate::config::LogFormat;
use serde_json::Value;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Captures JSON lines passing `filter` on this thread until the guard drops.
    pub fn start(filter: &str) -> (Self, DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = feedgate::telemetry::subscriber(
            LogFormat::Json,
            EnvFilter::new(filter),
            false,
            move || writer.clone(),
        );
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }

    /// Every line, parsed.
    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
            .collect()
    }

    /// The lines logged inside the request with this id.
    pub fn for_request(&self, id: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|line| line["span"]["request_id"] == id)
            .collect()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
