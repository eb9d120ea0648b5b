//! What poolrun says to people on stderr: log lines, warnings, the summary, errors.
//!
//! Every line goes through one writer thread and a bounded queue. A line that cannot be written
//! (`2>/dev/full`, a closed pipe, a terminal that hung up) is dropped and counted, and a stderr
//! that blocks (a reader that stopped reading) holds up only that thread: nothing the engine
//! does waits for, or panics on, a write to stderr.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// When to colour what poolrun prints (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set (or with `CLICOLOR_FORCE`).
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

static COLOR: OnceLock<ColorChoice> = OnceLock::new();

/// Sets the choice for the rest of the process (the first call wins).
pub fn set_color(choice: ColorChoice) {
    let _ = COLOR.set(choice);
}

fn color_for(is_terminal: bool) -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    match COLOR.get().copied().unwrap_or_default() {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set("NO_COLOR") => false,
        ColorChoice::Auto if set("CLICOLOR_FORCE") => true,
        ColorChoice::Auto => is_terminal && std::env::var_os("TERM").is_none_or(|t| t != "dumb"),
    }
}

/// Whether what goes to stdout is coloured.
pub fn color_stdout() -> bool {
    use std::io::IsTerminal;
    color_for(io::stdout().is_terminal())
}

/// Whether what goes to stderr is coloured.
pub fn color_stderr() -> bool {
    use std::io::IsTerminal;
    color_for(io::stderr().is_terminal())
}

static STAMPS: OnceLock<bool> = OnceLock::new();

/// From now on, when stderr is not a terminal (cron mail, log files), every line on it starts
/// with the time: for the commands that run tasks.
pub fn stamp_lines() {
    use std::io::IsTerminal;
    let _ = STAMPS.set(!io::stderr().is_terminal());
}

/// Whether stderr lines get a timestamp.
fn timestamps() -> bool {
    STAMPS.get().copied().unwrap_or(false)
}

/// Lines waiting for the writer thread; past this, new lines are dropped, not waited for.
const QUEUE: usize = 4096;

/// How long `flush` waits for the queue to drain into a stderr that is slow or stuck.
const FLUSH_LIMIT: Duration = Duration::from_secs(2);

struct Console {
    tx: Mutex<Option<SyncSender<Vec<u8>>>>,
    /// Lines handed to the writer and not yet written (or given up on).
    pending: AtomicU64,
    /// Notified when `pending` drops to 0, for `flush`.
    drained: (Mutex<()>, Condvar),
}

/// Lines that could not be written or queued.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The console, made (with its thread) by the first line queued.
static CONSOLE: OnceLock<Console> = OnceLock::new();

fn console() -> &'static Console {
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
            drained: (Mutex::new(()), Condvar::new()),
        }
    })
}

fn write_lines(rx: &Receiver<Vec<u8>>) {
    let mut stderr = io::stderr();
    for bytes in rx {
        if stderr.write_all(&bytes).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        let console = console();
        if console.pending.fetch_sub(1, Ordering::Release) == 1 {
            // Under the lock, so a `flush` between its check and its wait cannot miss it.
            let _held = console
                .drained
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            console.drained.1.notify_all();
        }
    }
}

/// Queues `bytes` (one or more whole lines) for stderr; never blocks, never fails. Off a
/// terminal every line starts with the time (UTC).
pub fn write(bytes: Vec<u8>) {
    let bytes = if timestamps() { stamped(&bytes) } else { bytes };
    queue(bytes);
}

/// `bytes` with `2026-11-27T08:18:02.123Z ` before each line.
fn stamped(bytes: &[u8]) -> Vec<u8> {
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let mut out = Vec::with_capacity(bytes.len() + now.len() + 1);
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(now.as_bytes());
        out.push(b' ');
        out.extend_from_slice(line);
    }
    out
}

fn queue(bytes: Vec<u8>) {
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
    // Nothing was ever queued: no thread to start, nothing to wait for.
    let Some(console) = CONSOLE.get() else {
        return;
    };
    let (lock, drained) = &console.drained;
    let held = lock.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = drained
        .wait_timeout_while(held, FLUSH_LIMIT, |()| {
            console.pending.load(Ordering::Acquire) > 0
        })
        .unwrap_or_else(PoisonError::into_inner);
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

/// A terminal for the progress bar that writes through the same queue: drawing the bar never
/// blocks the engine's thread (a terminal paused with Ctrl-S, a slow ssh link), and the bar and
/// the log lines reach the terminal in the order they were made.
#[derive(Debug)]
pub struct QueuedTerm {
    width: u16,
    height: u16,
    pending: Mutex<Vec<u8>>,
}

impl QueuedTerm {
    /// For stderr, when it is a terminal; `None` otherwise (then nothing is drawn).
    pub fn stderr() -> Option<Self> {
        use std::io::IsTerminal;
        let stderr = io::stderr();
        if !stderr.is_terminal() {
            return None;
        }
        let size = rustix::termios::tcgetwinsize(&stderr).ok();
        Some(Self {
            width: size.map_or(80, |s| s.ws_col).max(20),
            height: size.map_or(24, |s| s.ws_row).max(1),
            pending: Mutex::new(Vec::new()),
        })
    }

    fn push(&self, bytes: &[u8]) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
    }

    fn cursor(&self, n: usize, code: char) {
        if n > 0 {
            self.push(format!("\x1b[{n}{code}").as_bytes());
        }
    }
}

impl indicatif::TermLike for QueuedTerm {
    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'A');
        Ok(())
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'B');
        Ok(())
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'C');
        Ok(())
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'D');
        Ok(())
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.push(s.as_bytes());
        self.push(b"\n");
        Ok(())
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.push(s.as_bytes());
        Ok(())
    }

    fn clear_line(&self) -> io::Result<()> {
        self.push(b"\r\x1b[2K");
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        let bytes =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if !bytes.is_empty() {
            queue(bytes);
        }
        Ok(())
    }
}
