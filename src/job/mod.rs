//! The job stage: a TOML job file is read, parsed and validated into a `Job`, in which every value
//! is checked and typed, so no later stage re-checks configuration.

pub mod chunk;
pub mod diagnostic;
pub mod duration;
mod error;
pub mod file;
#[cfg(test)]
mod fuzz;
mod load;
mod load_pool;
pub mod policy;
mod suggest;
pub mod template;

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

pub use error::JobError;
pub use load::{
    DEFAULT_GRACE_PERIOD, DEFAULT_REPORT_DIR, Overrides, hex, load, load_copy, parse, read_text,
};
use policy::{Halt, HaltMode, Overlap, Retry};
use template::Template;

/// A validated job, ready to plan.
#[derive(Debug, Clone)]
pub struct Job {
    /// `[A-Za-z0-9._-]+`.
    pub name: String,
    /// For people.
    pub description: Option<String>,
    /// The file it came from.
    pub source: JobSource,
    /// The job file's folder, absolute: relative paths in the file start here.
    pub base_dir: PathBuf,
    /// What each task runs.
    pub command: Command,
    /// The tasks' working directory relative to `base_dir`; `None` is `base_dir` itself.
    pub cwd: Option<Template>,
    /// Variables added to each task's environment, in name order.
    pub env: Vec<(String, Template)>,
    /// Whether tasks start from an empty environment.
    pub env_clear: bool,
    /// With `env_clear`: variables passed on from poolrun's environment.
    pub env_pass: Vec<String>,
    /// The items and how they are chunked.
    pub range: Range,
    /// How tasks run.
    pub pool: Pool,
    /// The folder a relative `report_dir` starts from.
    pub report_base: PathBuf,
    /// The run directory, using only `{name}` and `{run-id}`.
    pub report_dir: Template,
}

/// The job file as read.
#[derive(Debug, Clone, Default)]
pub struct JobSource {
    /// As the user named it.
    pub path: PathBuf,
    /// Absolute.
    pub absolute: PathBuf,
    /// The exact text, copied into the run directory.
    pub text: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// A command template.
#[derive(Debug, Clone)]
pub enum Command {
    /// Run by `/bin/sh -c`, placeholder values shell-quoted.
    Shell(Template),
    /// Executed directly, one template per argument.
    Argv(Vec<Template>),
}

/// `range(start, end, step)` cut into chunks of `chunk_size` items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first item.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
    /// Never zero; its sign points from `start` to `end`.
    pub step: i64,
    /// Items per task.
    pub chunk_size: NonZeroU64,
    /// How many items the range holds; `start + items * step` fits in an i64.
    pub items: u64,
}

impl Range {
    /// The number of tasks: chunks of `chunk_size` items.
    pub fn tasks(&self) -> u64 {
        self.items.div_ceil(self.chunk_size.get())
    }
}

/// Plans of more tasks than this need `--allow-huge`: such a plan is more likely a mistake (a
/// chunk size left out) than a wish, and its report alone would take hundreds of gigabytes.
pub const HUGE_PLAN: u64 = 1_000_000_000;

/// How tasks run.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Tasks running at once.
    pub processes: NonZeroUsize,
    /// Per attempt; `None` is no limit.
    pub timeout: Option<Duration>,
    /// SIGTERM to SIGKILL.
    pub grace_period: Duration,
    /// Retries of failed attempts.
    pub retry: Retry,
    /// When to stop starting tasks.
    pub halt: Halt,
    /// What running tasks do on a halt.
    pub halt_mode: HaltMode,
    /// What to do when another run of the job holds the lock.
    pub overlap: Overlap,
    /// The whole run's time limit.
    pub deadline: Option<Duration>,
    /// `RLIMIT_AS` for each process of a task, in bytes.
    pub memory_limit: Option<u64>,
    /// The most processes a task may have at once.
    pub max_processes: Option<u32>,
}
