//! The shape of `report.json`. `schemas/report.schema.json` is generated from these types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::exec::TaskStatus;
use crate::plan::Task;

/// The value of `schema` in every report this version writes.
pub const REPORT_SCHEMA: &str = "poolrun/report/v1";

/// A whole report. Its keys are written in this order, tasks before the run's end and the summary
/// because tasks are streamed to the file as they become ready in task order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "poolrun report")]
pub struct Report {
    /// Always "poolrun/report/v1".
    pub schema: String,
    /// The job that ran.
    pub job: JobRecord,
    /// One per planned task, in task order.
    pub tasks: Vec<TaskRecord>,
    /// The run.
    pub run: RunRecord,
    /// Counts by status.
    pub summary: Summary,
}

/// `job`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRecord {
    /// The job's name.
    pub name: String,
    /// The job file's absolute path.
    pub file: String,
    /// Hex SHA-256 of the job file's bytes.
    pub sha256: String,
}

/// `run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// The run id.
    pub id: String,
    /// The run directory, absolute.
    pub dir: String,
    /// The machine it ran on.
    pub host: String,
    /// The poolrun version that ran it.
    pub poolrun_version: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub finished_at: String,
    /// Tasks that could run at once.
    pub processes: usize,
    /// How the run ended.
    pub status: RunStatus,
    /// Processes that tasks left running and that only the sweep at the end of the run found
    /// (so no task's `leaked` counts them), killed.
    #[serde(default)]
    pub leaked: u32,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every task has an outcome.
    Completed,
    /// A halt policy, a deadline or an error stopped it.
    Halted,
    /// A signal stopped it.
    Interrupted,
}

/// `summary`: how many tasks ended each way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Planned tasks.
    pub tasks: u64,
    /// Exited 0.
    pub succeeded: u64,
    /// Exited non-zero or killed by a signal poolrun did not send.
    pub failed: u64,
    /// Stopped at the timeout.
    pub timed_out: u64,
    /// Could not be started.
    pub spawn_failed: u64,
    /// Stopped when the run was.
    pub cancelled: u64,
    /// Never started.
    pub not_run: u64,
    /// The run's wall-clock time.
    pub wall_seconds: f64,
}

impl Summary {
    /// Counts one more task with `status`.
    pub fn count(&mut self, status: TaskStatus) {
        self.tasks += 1;
        *match status {
            TaskStatus::Succeeded => &mut self.succeeded,
            TaskStatus::Failed => &mut self.failed,
            TaskStatus::TimedOut => &mut self.timed_out,
            TaskStatus::SpawnFailed => &mut self.spawn_failed,
            TaskStatus::Cancelled => &mut self.cancelled,
            TaskStatus::NotRun => &mut self.not_run,
        } += 1;
    }

    /// Whether every task succeeded (true for an empty plan).
    pub fn all_succeeded(&self) -> bool {
        self.succeeded == self.tasks
    }
}

/// One task's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRecord {
    /// Plan order, from 0.
    pub id: u64,
    /// The task's identity for resume: a hash of its rendered command, cwd, env and chunk.
    pub key: String,
    /// The chunk's first item.
    pub start: i64,
    /// The chunk's last item, inclusive.
    pub last: i64,
    /// The chunk's exclusive end.
    pub end: i64,
    /// Items in the chunk.
    pub count: u64,
    /// The argv exactly as executed.
    pub command: Vec<String>,
    /// How the task ended.
    pub status: TaskStatus,
    /// The direct child's exit code; null when it was killed by a signal or never ran.
    pub exit_code: Option<i32>,
    /// The number of the signal that ended the direct child.
    pub signal: Option<i32>,
    /// Attempts made (in every run of a resumed run directory); 0 for a task that never started.
    pub attempts: u32,
    /// RFC 3339 UTC; null for a task that never started.
    pub started_at: Option<String>,
    /// RFC 3339 UTC.
    pub finished_at: Option<String>,
    /// How long the last attempt ran.
    pub duration_ms: Option<u64>,
    /// stdout's file, relative to the run directory; null when there is none (the task never
    /// started, or wrote nothing: an empty output leaves no file).
    pub stdout: Option<String>,
    /// stderr's file, relative to the run directory; null like `stdout`.
    pub stderr: Option<String>,
    /// Bytes written to stdout.
    pub stdout_bytes: u64,
    /// Bytes written to stderr.
    pub stderr_bytes: u64,
    /// The last 4 KiB of stderr, lossily decoded as UTF-8.
    pub stderr_tail: String,
    /// Processes the task left running after it exited (in its process group or escaped from
    /// it), which poolrun killed; 0 for a task that cleaned up after itself.
    pub leaked: u32,
    /// Why the task did not succeed, for people.
    pub error: Option<String>,
}

/// RFC 3339 UTC with milliseconds.
pub fn timestamp(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

impl TaskRecord {
    /// The row for a planned task that never started.
    pub fn not_run(task: &Task) -> Self {
        Self {
            id: task.id.0,
            key: task.key.clone(),
            start: task.start,
            last: task.last,
            end: task.end,
            count: task.count,
            command: task.argv.clone(),
            status: TaskStatus::NotRun,
            exit_code: None,
            signal: None,
            attempts: 0,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            stdout: None,
            stderr: None,
            stdout_bytes: 0,
            stderr_bytes: 0,
            stderr_tail: String::new(),
            leaked: 0,
            error: None,
        }
    }
}
