//! The exec stage: runs a `Plan`'s tasks as child processes and produces `TaskOutcome`s.
//!
//! `engine` decides what runs and when it stops (retries, halts, the deadline, group commits);
//! a `Backend` runs it: `local/` is the pool of child processes on this machine.

mod dispenser;
mod engine;
mod local;
mod outcome;
mod schedule;
mod signals;
pub mod slurm;

use thiserror::Error;

pub use dispenser::{Dispenser, Work};
pub use engine::{Backend, Dispatch, Event, PoolEnd, Started, StopReason};
pub use local::containment::{Containment, Identity, Release};
pub use local::output::{STDERR_TAIL_BYTES, tail};
pub use local::{LocalPool, unix};
pub use outcome::{TaskOutcome, TaskStatus};
pub use signals::SignalWatch;

/// Where the engine reports what happens. Calls come from one thread, in batches: each batch
/// ends with `commit`, and the engine acts on nothing in a batch (retries, halts, new tasks)
/// before `commit` returned.
pub trait Sink {
    /// Why recording failed.
    type Error;
    /// An attempt started.
    fn started(&mut self, started: &Started) -> Result<(), Self::Error>;
    /// A way for the workers to record starts themselves, without waking the engine's thread
    /// for each: `None` sends them through `started`. What it records is written by the next
    /// `commit`.
    fn start_log(&self) -> Option<StartLog> {
        None
    }
    /// An attempt ended; `will_retry` says whether another attempt of the task follows.
    fn attempt_finished(
        &mut self,
        outcome: &TaskOutcome,
        will_retry: bool,
    ) -> Result<(), Self::Error>;
    /// A task has its final outcome.
    fn task_done(&mut self, outcome: TaskOutcome) -> Result<(), Self::Error>;
    /// Writes everything recorded so far, durable at once where the engine acts on it (a failure
    /// it may retry or halt on); the rest may wait for its fsync until `sync_due`.
    fn commit(&mut self) -> Result<(), Self::Error>;
    /// When something written is due for its fsync, by another `commit`.
    fn sync_due(&self) -> Option<std::time::Instant> {
        None
    }

    /// The run is stopping for `reason`: no task starts any more; `running` tasks were sent
    /// SIGTERM and get SIGKILL after `grace` (`None`: they are left to finish, a soft halt).
    fn stopping(&mut self, reason: StopReason, running: usize, grace: Option<std::time::Duration>) {
        let _ = (reason, running, grace);
    }
}

/// Records a start from a worker thread, to be written with the engine's next commit.
pub type StartLog = Box<dyn Fn(&Started) -> Logged + Send + Sync>;

/// What a `StartLog` did with a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    /// Recorded; a commit is already coming.
    Yes,
    /// Recorded, and nothing else waits for a commit: the engine must be woken for one.
    Wake,
}

/// A failure of the executor itself (a task's failure is an outcome, not an error).
#[derive(Debug, Error)]
pub enum ExecError {
    /// The worker threads could not be started.
    #[error("cannot start the worker threads")]
    ThreadPool(#[source] rayon::ThreadPoolBuildError),
    /// The signal handlers could not be installed.
    #[error("cannot install the signal handlers")]
    Signals(#[source] std::io::Error),
    /// poolrun's own program, which array elements run, could not be found.
    #[error("cannot find poolrun's own program to run in the Slurm array elements")]
    Program(#[source] std::io::Error),
}
