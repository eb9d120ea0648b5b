//! The exec stage: runs a `Plan`'s tasks as child processes and produces `TaskOutcome`s.
//!
//! The local pool is one backend; a Slurm job-array backend will sit beside it and hand the
//! report stage the same outcomes.

mod attempt;
mod outcome;
mod pool;
pub mod unix;

use thiserror::Error;

pub use outcome::{TaskOutcome, TaskStatus};
pub use pool::{LocalPool, Observer, PoolEnd};

/// A failure of the executor itself (a task's failure is an outcome, not an error).
#[derive(Debug, Error)]
pub enum ExecError {
    /// The worker threads could not be started.
    #[error("cannot start the worker threads")]
    ThreadPool(#[source] rayon::ThreadPoolBuildError),
    /// The signal handlers could not be installed.
    #[error("cannot install the signal handlers")]
    Signals(#[source] std::io::Error),
}
