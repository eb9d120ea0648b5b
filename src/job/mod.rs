//! The job stage: a TOML job file is read, parsed and validated into a `Job`, in which every value
//! is checked and typed, so no later stage re-checks configuration.

pub mod chunk;
pub mod diagnostic;
pub mod duration;
mod error;
pub mod file;
#[cfg(test)]
mod fuzz;
pub mod grammar;
mod load;
mod load_pool;
mod load_source;
pub mod overrides;
pub mod policy;
pub mod read_input;
pub mod source;
mod suggest;
pub mod template;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

pub use error::JobError;
pub use load::{
    DEFAULT_GRACE_PERIOD, DEFAULT_REPORT_DIR, Overrides, ReadJob, check_size, hex, load, load_copy,
    load_read, parse, read, read_text,
};
pub use load_pool::cpus;
pub use load_source::env_name as param_env_name;
use policy::{Halt, HaltMode, Overlap, Retry};
pub use source::{Chunk, Combo, Items, Matrix, Range, Source};
use template::Template;

/// A validated job, ready to plan.
#[derive(Debug, Clone)]
pub struct Job {
    /// `[A-Za-z0-9._-]+`.
    pub name: String,
    /// For people.
    pub description: Option<String>,
    /// The file it came from.
    pub origin: JobSource,
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
    /// The items and how they are chunked; `None` for a job with only a matrix.
    pub source: Option<Source>,
    /// The parameters each chunk runs with.
    pub matrix: Option<Matrix>,
    /// The base of every task's `{seed}`.
    pub seed: Option<u64>,
    /// Variables whose values the report records.
    pub record_env: Vec<String>,
    /// The `--set KEY=VALUE` arguments it was loaded with, as given.
    pub set: Vec<String>,
    /// How tasks run.
    pub pool: Pool,
    /// The folder a relative `report_dir` starts from.
    pub report_base: PathBuf,
    /// The run directory, using only `{name}` and `{run-id}`.
    pub report_dir: Template,
    /// `[report] keep`: how many runs of the job to keep after a run.
    pub keep: Option<usize>,
    /// `[slurm]`: run as Slurm job arrays.
    pub slurm: Option<Slurm>,
}

/// `[slurm]`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slurm {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--qos`.
    pub qos: Option<String>,
    /// More `sbatch` arguments.
    pub extra_args: Vec<String>,
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

/// Plans of more tasks than this need `--allow-huge`: such a plan is more likely a mistake (a
/// chunk size left out) than a wish, and its report alone would take hundreds of gigabytes.
pub const HUGE_PLAN: u64 = 1_000_000_000;

impl Job {
    /// The number of tasks: every chunk of the source for every combination of the matrix.
    /// Saturates at `u64::MAX`, which is far past any plan that may run.
    pub fn tasks(&self) -> u64 {
        let chunks = self.source.as_ref().map_or(1, Source::chunks);
        let combos = self.matrix.as_ref().map_or(1, |m| m.combos.len() as u64);
        chunks.saturating_mul(combos)
    }
}

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
