//! The request log's queue and the one thread that writes it.
//!
//! A request hands its line over (a small record: the formatting is the
//! writer's) by pushing it onto a bounded queue under a lock held for that
//! push alone, and never waits for stdout: when the queue is full, because
//! the sink (stdout: a pipe, a journal, a slow disk) takes lines slower than
//! they come, the line is dropped and counted in
//! `feedgate_log_lines_dropped_total`. The writer takes the whole queue at
//! once, formats the lines into its buffer, and writes the buffer out when
//! it is full or the queue has been emptied, so an idle server's lines
//! appear at once. While requests keep coming it then rests a moment, so
//! lines gather into large writes; a request wakes it only when it found
//! the queue empty after a rest and went to sleep.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant, SystemTime};

use metrics::Counter;
use tracing::Level;

use super::line::{Clock, RequestLine, Style, micros};

/// How many lines may wait for the writer (about 150 bytes each, so about
/// 1.2 MiB): a second of lines at 8,000 requests a second, or 8 seconds at
/// 1,000, if the sink stalls; at full speed the writer empties it every
/// [`REST`]. Beyond it, lines are dropped and counted.
pub const QUEUE_LINES: usize = 8_192;

/// What the writer gathers before writing it out, unless the queue runs
/// empty first (as with nginx's `access_log … buffer=64k`).
const BUFFER_BYTES: usize = 64 * 1024;

/// How long the writer rests after writing out while lines keep coming.
const REST: Duration = Duration::from_millis(5);

/// How long a flush, or shutdown, waits for the writer.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Where request lines go: a cheap handle to the queue of a writer thread,
/// or nowhere ([`RequestLog::default`]).
#[derive(Clone, Default)]
pub struct RequestLog(Option<Arc<Shared>>);

struct Shared {
    queue: Mutex<Queue>,
    capacity: usize,
    /// The writer found the queue empty after a rest and sleeps until woken.
    idle: AtomicBool,
    writer: OnceLock<Thread>,
    /// Whether the log filter wanted request lines when the log started.
    on: bool,
    dropped: Counter,
}

struct Queue {
    lines: Vec<RequestLine>,
    /// Answered once the lines queued before them are written.
    flushes: Vec<SyncSender<()>>,
    stop: bool,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.flushes.is_empty() && !self.stop
    }
}

impl RequestLog {
    /// Starts a writer thread writing lines in `style` to `sink`, with room
    /// for `capacity` lines waiting ([`QUEUE_LINES`] in the binary). Lines
    /// are wanted if the log filter in force (the thread's `tracing`
    /// dispatcher) lets `feedgate::request` through at `info` now: a
    /// per-request check costs nothing. The thread runs until
    /// [`LogWriter::finish`] (or the writer's drop).
    pub fn spawn<W>(style: Style, sink: W, capacity: usize) -> (Self, LogWriter)
    where
        W: Write + Send + 'static,
    {
        let capacity = capacity.max(1);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                lines: Vec::with_capacity(capacity),
                flushes: Vec::new(),
                stop: false,
            }),
            capacity,
            idle: AtomicBool::new(false),
            writer: OnceLock::new(),
            on: tracing::enabled!(target: "feedgate::request", Level::INFO),
            dropped: crate::metrics::log_lines_dropped(),
        });
        let thread = std::thread::Builder::new()
            .name("request-log".to_owned())
            .spawn({
                let shared = shared.clone();
                move || {
                    let _ = shared.writer.set(std::thread::current());
                    write_lines(&shared, sink, style);
                }
            })
            .expect("the request log's thread starts");
        let writer = LogWriter {
            shared: shared.clone(),
            thread: Some(thread),
        };
        (Self(Some(shared)), writer)
    }

    /// Whether request lines are wanted: see [`RequestLog::spawn`].
    pub fn is_on(&self) -> bool {
        self.0.as_ref().is_some_and(|shared| shared.on)
    }

    /// Queues `line`, or drops and counts it if the queue is full; never
    /// waits for the writer.
    pub fn push(&self, line: RequestLine) {
        let Some(shared) = &self.0 else { return };
        let refused = {
            let mut queue = shared.lock();
            if queue.lines.len() < shared.capacity {
                queue.lines.push(line);
                None
            } else {
                Some(line)
            }
        };
        match refused {
            None => shared.wake(),
            Some(_dropped) => shared.dropped.increment(1),
        }
    }

    /// Waits (blocking this thread, for a few seconds at most) until the
    /// lines queued so far are written and the sink flushed; false if the
    /// writer did not get there in time.
    pub fn flush(&self) -> bool {
        let Some(shared) = &self.0 else { return true };
        let (ack, acked) = mpsc::sync_channel(1);
        shared.lock().flushes.push(ack);
        shared.wake();
        acked.recv_timeout(DRAIN_DEADLINE).is_ok()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the writer if it sleeps; a load of a flag if it does not.
    fn wake(&self) {
        if self.idle.load(Ordering::SeqCst)
            && self.idle.swap(false, Ordering::SeqCst)
            && let Some(writer) = self.writer.get()
        {
            writer.unpark();
        }
    }
}

/// The writer thread, drained and ended by [`LogWriter::finish`] or on drop.
pub struct LogWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogWriter {
    /// Writes out every line queued so far and ends the thread; gives up
    /// after a few seconds if the sink does not take them.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.shared.lock().stop = true;
        self.shared.wake();
        let deadline = Instant::now() + DRAIN_DEADLINE;
        while !thread.is_finished() {
            if Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = thread.join();
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer thread's loop: takes everything queued, writes it out, rests,
/// and looks again; sleeps while there is nothing.
fn write_lines(shared: &Shared, mut sink: impl Write, style: Style) {
    let mut lines = Vec::with_capacity(shared.capacity);
    let mut flushes = Vec::new();
    let mut out = Vec::with_capacity(BUFFER_BYTES);
    let mut clock = Clock::default();
    loop {
        let stop = {
            let mut queue = shared.lock();
            std::mem::swap(&mut queue.lines, &mut lines);
            std::mem::swap(&mut queue.flushes, &mut flushes);
            queue.stop
        };
        if lines.is_empty() && flushes.is_empty() && !stop {
            // Nothing came during the rest: sleep until woken (announced
            // first, then looked again, so that nothing is missed).
            shared.idle.store(true, Ordering::SeqCst);
            if shared.lock().is_empty() {
                std::thread::park();
            }
            shared.idle.store(false, Ordering::SeqCst);
            continue;
        }
        // Lines carry the monotonic time they finished; one reading of both
        // clocks dates the batch.
        let (now, wall) = (Instant::now(), micros(SystemTime::now()));
        for line in lines.drain(..) {
            let ago = now.saturating_duration_since(line.finished).as_micros();
            let at = wall.saturating_sub(u64::try_from(ago).unwrap_or(u64::MAX));
            line.write(style, at, &mut clock, &mut out);
            if out.len() >= BUFFER_BYTES {
                write_out(&mut sink, &mut out);
            }
        }
        write_out(&mut sink, &mut out);
        let _ = sink.flush();
        for ack in flushes.drain(..) {
            let _ = ack.send(());
        }
        if stop {
            return;
        }
        std::thread::sleep(REST);
    }
}

/// Writes whole lines only, so other writers to the same stdout (the other
/// log lines) never land inside one. A failed write loses its lines: there
/// is nowhere left to report it.
fn write_out(sink: &mut impl Write, out: &mut Vec<u8>) {
    if !out.is_empty() {
        let _ = sink.write_all(out);
        out.clear();
    }
}
