//! What poolrun says to people on stderr: log lines, warnings, the summary, errors.
//!
//! Every line goes through one writer thread and a bounded queue. A line that cannot be written
//! (`2>/dev/full`, a closed pipe, a terminal that hung up) is dropped and counted, and a stderr
//! that blocks (a reader that stopped reading) holds up only that thread: nothing the engine
//! does waits for, or panics on, a write to stderr.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Lines waiting for the writer thread; past this, new lines are dropped, not waited for.
const QUEUE: usize = 4096;

/// How long `flush` waits for the queue to drain into a stderr that is slow or stuck.
const FLUSH_LIMIT: Duration = Duration::from_secs(2);

struct Console {
    tx: Mutex<Option<SyncSender<Vec<u8>>>>,
    /// Lines handed to the writer and not yet written (or given up on).
    pending: AtomicU64,
}

/// Lines that could not be written or queued.
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn console() -> &'static Console {
    static CONSOLE: OnceLock<Console> = OnceLock::new();
    CONSOLE.get_or_init(|| {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("poolrun-stderr".into())
            .spawn(move || write_lines(&rx))
            .ok();
        Console {
            // Without the thread nothing would drain the queue: write nothing rather than block.
            tx: Mutex::new(thread.is_some().then_some(tx)),
            pending: AtomicU64::new(0),
        }
    })
}

fn write_lines(rx: &Receiver<Vec<u8>>) {
    let mut stderr = io::stderr();
    for bytes in rx {
        if stderr.write_all(&bytes).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        console().pending.fetch_sub(1, Ordering::Release);
    }
}

/// Queues `bytes` (one or more whole lines) for stderr; never blocks, never fails.
pub fn write(bytes: Vec<u8>) {
    let console = console();
    let tx = console.tx.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(tx) = tx.as_ref() else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    console.pending.fetch_add(1, Ordering::Acquire);
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(bytes) {
        console.pending.fetch_sub(1, Ordering::Release);
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Queues one line (a newline is added).
pub fn line(text: &str) {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    write(bytes);
}

/// Waits, a bounded time, until every queued line was written (or failed to be); call before
/// exiting. A stderr that blocks longer than `FLUSH_LIMIT` loses what is still queued.
pub fn flush() {
    let console = console();
    let deadline = Instant::now() + FLUSH_LIMIT;
    let mut pause = Duration::from_micros(50);
    while console.pending.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Lines dropped so far because stderr could not take them.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// A `tracing` writer: collects one formatted event and queues it when dropped.
#[derive(Default)]
pub struct EventWriter(Vec<u8>);

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            write(std::mem::take(&mut self.0));
        }
    }
}

/// For `tracing_subscriber::fmt().with_writer(console::event_writer)`.
pub fn event_writer() -> EventWriter {
    EventWriter::default()
}
