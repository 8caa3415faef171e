//! The request log's queue and the one thread that writes it.
//!
//! A request hands its line over (a small record: the formatting is the
//! writer's) with a `try_send` on a bounded queue, and never waits: when
//! the queue is full, because the sink (stdout: a pipe, a journal, a slow
//! disk) takes lines slower than they come, the line is dropped and counted
//! in `feedgate_log_lines_dropped_total`. The writer formats lines into its
//! buffer and writes the buffer out when it is full or the queue has run
//! empty, so an idle server's lines appear at once. While requests keep
//! coming it then rests a moment, so lines gather into large writes and a
//! request does not have to wake it (a send wakes the writer only when it
//! found the queue empty for a whole rest and went to sleep).

use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use metrics::Counter;
use tracing::Level;

use super::line::{Clock, RequestLine, Style};

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

enum Message {
    Line(RequestLine),
    /// Write out everything before this, then answer.
    Flush(Sender<()>),
    /// Write out everything before this and end.
    Stop,
}

/// Where request lines go: a cheap handle to the queue of a writer thread,
/// or nowhere ([`RequestLog::default`]).
#[derive(Clone, Default)]
pub struct RequestLog(Option<Arc<Queue>>);

struct Queue {
    sender: Sender<Message>,
    dropped: Counter,
}

impl RequestLog {
    /// Starts a writer thread writing lines in `style` to `sink`, with room
    /// for `capacity` lines waiting ([`QUEUE_LINES`] in the binary). The
    /// thread runs until [`LogWriter::finish`] (or the writer's drop).
    pub fn spawn<W>(style: Style, sink: W, capacity: usize) -> (Self, LogWriter)
    where
        W: Write + Send + 'static,
    {
        let (sender, receiver) = bounded(capacity.max(1));
        let (done, finished) = bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("request-log".to_owned())
            .spawn(move || {
                let _done = done;
                write_lines(&receiver, sink, style);
            })
            .expect("the request log's thread starts");
        let queue = Queue {
            sender: sender.clone(),
            dropped: crate::metrics::log_lines_dropped(),
        };
        let writer = LogWriter {
            sender,
            finished,
            thread: Some(thread),
        };
        (Self(Some(Arc::new(queue))), writer)
    }

    /// Whether request lines are wanted: there is a writer, and the log
    /// filter lets `feedgate::request` through at `info` (a check of the
    /// filter's cached verdict, not a formatting).
    pub fn is_on(&self) -> bool {
        self.0.is_some() && tracing::enabled!(target: "feedgate::request", Level::INFO)
    }

    /// Queues `line`, or drops and counts it if the queue is full; never
    /// waits.
    pub fn push(&self, line: RequestLine) {
        if let Some(queue) = &self.0
            && queue.sender.try_send(Message::Line(line)).is_err()
        {
            queue.dropped.increment(1);
        }
    }

    /// Waits (blocking this thread, for a few seconds at most) until the
    /// lines queued so far are written and the sink flushed; false if the
    /// writer did not get there in time.
    pub fn flush(&self) -> bool {
        let Some(queue) = &self.0 else { return true };
        let deadline = Instant::now() + DRAIN_DEADLINE;
        let (ack, acked) = bounded(1);
        queue
            .sender
            .send_deadline(Message::Flush(ack), deadline)
            .is_ok()
            && acked.recv_deadline(deadline).is_ok()
    }
}

/// The writer thread, drained and ended by [`LogWriter::finish`] or on drop.
pub struct LogWriter {
    sender: Sender<Message>,
    /// Disconnects when the thread ends.
    finished: Receiver<()>,
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
        let deadline = Instant::now() + DRAIN_DEADLINE;
        if self.sender.send_deadline(Message::Stop, deadline).is_ok()
            && self.finished.recv_deadline(deadline) == Err(RecvTimeoutError::Disconnected)
        {
            let _ = thread.join();
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer thread's loop: blocks while the queue is empty, then takes
/// everything queued, writes it out, rests, and looks again.
fn write_lines(receiver: &Receiver<Message>, mut sink: impl Write, style: Style) {
    let mut out = Vec::with_capacity(BUFFER_BYTES);
    let mut clock = Clock::default();
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        while let Some(mut message) = next {
            loop {
                match message {
                    Message::Line(line) => {
                        line.write(style, &mut clock, &mut out);
                        if out.len() >= BUFFER_BYTES {
                            write_out(&mut sink, &mut out);
                        }
                    }
                    Message::Flush(ack) => {
                        write_out(&mut sink, &mut out);
                        let _ = sink.flush();
                        let _ = ack.send(());
                    }
                    Message::Stop => {
                        write_out(&mut sink, &mut out);
                        let _ = sink.flush();
                        return;
                    }
                }
                match receiver.try_recv() {
                    Ok(following) => message = following,
                    Err(_) => break,
                }
            }
            write_out(&mut sink, &mut out);
            let _ = sink.flush();
            std::thread::sleep(REST);
            next = receiver.try_recv().ok();
        }
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
