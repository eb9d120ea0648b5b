//! `poolrun run --output ordered|completed [--tag]`: each task's stdout, copied from the file it
//! was written to, to poolrun's stdout as tasks finish, in task order (like `Pool.map`) or in the
//! order they finish (like `imap_unordered`). A thread of its own does the copying, so a slow
//! reader of poolrun's stdout never holds up the engine; in task order it needs no memory per
//! task, since it follows the report's rows, which are written in task order.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::exec::TaskOutcome;
use crate::plan::TaskId;
use crate::report::Observer;

/// In which order task outputs are streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputOrder {
    /// In task order, each as soon as it and every task before it finished.
    Ordered,
    /// As tasks finish.
    Completed,
}

/// The thread copying task outputs to stdout.
pub struct OutputStream {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    order: OutputOrder,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Rows in the report: tasks `0..written` are done (task order).
    written: u64,
    /// Tasks done and not yet copied (completion order).
    done: VecDeque<u64>,
    /// No more tasks finish.
    closed: bool,
}

/// What the copying thread needs.
struct Copier {
    tasks_dir: PathBuf,
    width: usize,
    tag: bool,
}

impl OutputStream {
    /// Starts the thread for tasks whose outputs are in `tasks_dir`, named with ids `width`
    /// digits wide.
    pub fn start(order: OutputOrder, tag: bool, tasks_dir: PathBuf, width: usize) -> Self {
        let shared = Arc::new(Shared {
            order,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let copier = Copier {
            tasks_dir,
            width,
            tag,
        };
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("poolrun-output".into())
                .spawn(move || copier.run(&shared))
                .ok()
        };
        Self { shared, thread }
    }

    /// The observer to give the recorder.
    pub fn observer(&self) -> Arc<dyn Observer> {
        Arc::clone(&self.shared) as Arc<dyn Observer>
    }

    /// Says that every task of the plan's `tasks` is done, and waits until every output is
    /// copied.
    pub fn finish(mut self, tasks: u64) {
        self.close(tasks);
    }

    fn close(&mut self, tasks: u64) {
        {
            let mut state = self.shared.lock();
            state.written = state.written.max(tasks);
            state.closed = true;
        }
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for OutputStream {
    /// A run that ends another way (an error, a signal while the report is written) still gets
    /// the outputs of the tasks whose rows were written.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let written = self.shared.lock().written;
            self.close(written);
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Observer for Shared {
    fn attempt(&self, outcome: &TaskOutcome, will_retry: bool) {
        if self.order == OutputOrder::Completed && !will_retry {
            self.lock().done.push_back(outcome.task.id.0);
            self.wake.notify_all();
        }
    }

    fn rows_written(&self, rows: u64) {
        if self.order == OutputOrder::Ordered {
            self.lock().written = rows;
            self.wake.notify_all();
        }
    }
}

impl Copier {
    fn run(&self, shared: &Shared) {
        let stdout = io::stdout();
        let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
        let mut next = 0;
        loop {
            let (ids, closed): (Vec<u64>, bool) = {
                let mut state = shared.lock();
                loop {
                    let ready = match shared.order {
                        OutputOrder::Ordered => state.written > next,
                        OutputOrder::Completed => !state.done.is_empty(),
                    };
                    if ready || state.closed {
                        break;
                    }
                    state = shared
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                let ids = match shared.order {
                    OutputOrder::Ordered => {
                        let ids = (next..state.written).collect();
                        next = state.written;
                        ids
                    }
                    OutputOrder::Completed => state.done.drain(..).collect(),
                };
                (ids, state.closed)
            };
            for id in ids {
                match self.copy(id, &mut out).and_then(|()| out.flush()) {
                    Ok(()) => {}
                    // Nobody reads poolrun's stdout any more: the run goes on regardless.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return,
                    Err(e) => {
                        tracing::warn!("cannot write task {id}'s output to stdout: {e}");
                        return;
                    }
                }
            }
            if closed && (shared.order == OutputOrder::Completed || next >= shared.lock().written) {
                return;
            }
        }
    }

    /// Copies task `id`'s stdout file, if it wrote anything.
    fn copy(&self, id: u64, out: &mut impl Write) -> io::Result<()> {
        let path = self
            .tasks_dir
            .join(TaskId(id).output_file(self.width, "out"));
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if self.tag {
            tag_lines(id, file, out)
        } else {
            io::copy(&mut BufReader::new(file), out).map(drop)
        }
    }
}

/// Copies `from` with `id` and a tab before each line; a last line without a newline gets one.
pub fn tag_lines(id: u64, from: impl Read, out: &mut impl Write) -> io::Result<()> {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        write!(out, "{id}\t")?;
        out.write_all(&line)?;
        if line.last() != Some(&b'\n') {
            out.write_all(b"\n")?;
        }
    }
}
