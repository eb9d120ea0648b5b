//! The shape of `report.json`. `schemas/report.schema.json` is generated from these types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::exec::TaskStatus;
use crate::plan::{Task, TaskItems};

/// The value of `schema` in every report this version writes.
pub const REPORT_SCHEMA: &str = "poolrun/report/v2";

/// The schemas this version reads: v1 reports (poolrun 0.1, range jobs only) lack the fields
/// that v2 added, which then take their defaults.
pub const READABLE_SCHEMAS: [&str; 2] = ["poolrun/report/v1", REPORT_SCHEMA];

/// A whole report. Its keys are written in this order, tasks before the run's end and the summary
/// because tasks are streamed to the file as they become ready in task order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "poolrun report")]
pub struct Report {
    /// "poolrun/report/v2": this schema describes the reports of this version.
    #[schemars(extend("const" = REPORT_SCHEMA))]
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
    /// The `--set KEY=VALUE` arguments the job ran with, in order.
    #[serde(default)]
    pub set: Vec<String>,
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
    #[schemars(extend("format" = "date-time"))]
    pub started_at: String,
    /// RFC 3339 UTC.
    #[schemars(extend("format" = "date-time"))]
    pub finished_at: String,
    /// Tasks that could run at once.
    pub processes: usize,
    /// How the run ended.
    pub status: RunStatus,
    /// What ran the tasks: "local" (this machine's pool) or "slurm" (job arrays).
    #[serde(default = "local")]
    pub backend: String,
    /// Why it stopped before every task had an outcome: "halt-policy", "deadline", the
    /// signal's name ("SIGINT"), or "error" (the run directory could not be written); null for
    /// a run that completed.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// Processes that tasks left running and that only the sweep at the end of the run found
    /// (so no task's `leaked` counts them), killed.
    #[serde(default)]
    pub leaked: u32,
    /// Where and how the run ran, to reproduce it and to tell two runs apart (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// `run.provenance`: what a run ran on and with. Of the environment, only the job's
/// `record-env` variables are ever recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The poolrun version.
    pub poolrun_version: String,
    /// The git commit poolrun was built from, when known.
    pub poolrun_commit: Option<String>,
    /// The machine's name.
    pub host: String,
    /// The operating system, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub os: String,
    /// The kernel release, e.g. "6.1.0-18-amd64".
    pub kernel: String,
    /// CPUs available to poolrun.
    pub cpus: usize,
    /// poolrun's command line.
    pub argv: Vec<String>,
    /// The directory poolrun ran in.
    pub cwd: String,
    /// Hex SHA-256 of the job file's bytes.
    pub job_sha256: String,
    /// Each input snapshot: the items of `[lines]` or `[glob]` as the run used them.
    pub inputs: Vec<InputRecord>,
    /// The `--set KEY=VALUE` arguments, in order.
    pub set: Vec<String>,
    /// The job's `record-env` variables and their values (null when unset).
    pub env: BTreeMap<String, Option<String>>,
}

/// One input snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputRecord {
    /// The source: "lines" or "glob".
    pub source: String,
    /// The file read ("-" for stdin), or the glob pattern.
    pub from: String,
    /// The snapshot file, relative to the run directory: one item per line.
    pub snapshot: String,
    /// Hex SHA-256 of the snapshot file.
    pub sha256: String,
    /// How many items it holds.
    pub items: u64,
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
    /// Still going: a view of its journal (never in a report file).
    Running,
}

impl RunStatus {
    /// The spelling used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Halted => "halted",
            Self::Interrupted => "interrupted",
            Self::Running => "running",
        }
    }
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
    /// Running now: only in a view of a run still going.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub running: u64,
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
            TaskStatus::Running => &mut self.running,
        } += 1;
    }

    /// Tasks that did not succeed: failed, timed out, failed to start or cancelled.
    pub fn unsuccessful(&self) -> u64 {
        self.failed + self.timed_out + self.spawn_failed + self.cancelled
    }

    /// Whether every task succeeded (true for an empty plan).
    pub fn all_succeeded(&self) -> bool {
        self.succeeded == self.tasks
    }
}

/// One task's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRecord {
    /// Plan order, from 0.
    pub id: u64,
    /// The task's identity for resume: a hash of its rendered command, cwd, env and chunk.
    pub key: String,
    /// The task's identity across runs: a hash of its items and parameters only. `poolrun
    /// diff` matches tasks by it. Absent in v1 reports (then computed from the range fields).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_key: String,
    /// A range chunk's first item; null for other sources.
    pub start: Option<i64>,
    /// A range chunk's last item, inclusive; null for other sources.
    pub last: Option<i64>,
    /// A range chunk's exclusive end; null for other sources.
    pub end: Option<i64>,
    /// Items in the chunk.
    pub count: u64,
    /// The chunk's items, for `[values]`, `[lines]` and `[glob]` (bytes that are not UTF-8
    /// replaced by U+FFFD); absent for a range, whose items `start`, `last` and `end` give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<String>>,
    /// The task's matrix parameters and their values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    /// The task's `{seed}`, when the job has a base seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
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
    #[schemars(extend("format" = "date-time"))]
    pub started_at: Option<String>,
    /// RFC 3339 UTC.
    #[schemars(extend("format" = "date-time"))]
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
    /// Hex SHA-256 of the last attempt's stdout (of nothing, for an empty one); null for a task
    /// that never started, and in v1 reports.
    #[serde(default)]
    pub stdout_sha256: Option<String>,
    /// Bytes written to stderr.
    pub stderr_bytes: u64,
    /// The last 4 KiB of stderr, lossily decoded as UTF-8.
    pub stderr_tail: String,
    /// Processes the task left running after it exited (in its process group or escaped from
    /// it), which poolrun killed; 0 for a task that cleaned up after itself.
    pub leaked: u32,
    /// Why the task did not succeed, for people.
    pub error: Option<String>,
    /// The Slurm array element that ran its last attempt, `<array job id>_<index>`; absent for
    /// a local run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
}

/// `run.backend` of reports written before there was a choice.
fn local() -> String {
    "local".to_owned()
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// RFC 3339 UTC with milliseconds.
pub fn timestamp(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

impl TaskRecord {
    /// The row for a planned task that never started.
    pub fn not_run(task: &Task) -> Self {
        let (start, last, end) = match task.items {
            TaskItems::Range {
                start, last, end, ..
            } => (Some(start), Some(last), Some(end)),
            _ => (None, None, None),
        };
        let items = match &task.items {
            TaskItems::List(items) => Some(
                items
                    .iter()
                    .map(|i| String::from_utf8_lossy(i).into_owned())
                    .collect(),
            ),
            _ => None,
        };
        let params = task
            .params
            .iter()
            .flat_map(|c| c.params())
            .map(|p| (p.key.to_string(), param_json(&p.value)))
            .collect();
        Self {
            id: task.id.0,
            key: task.key.clone(),
            content_key: task.content_key.clone(),
            start,
            last,
            end,
            count: task.items.count(),
            items,
            params,
            seed: task.seed,
            command: task.argv_text(),
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
            stdout_sha256: None,
            stderr_bytes: 0,
            stderr_tail: String::new(),
            leaked: 0,
            error: None,
            slurm_job_id: None,
        }
    }
}

impl TaskRecord {
    /// The task's items and parameters in at most `width` characters: `item 7`, `items 0..=9`,
    /// `a.csv`, `a.csv..z.csv (26)`, `lr=0.1 model=small`.
    pub fn label(&self, width: usize) -> String {
        use std::fmt::Write as _;
        let mut text = match (&self.items, self.start, self.last) {
            (Some(items), _, _) => match items.as_slice() {
                [one] => one.clone(),
                [first, .., last] => format!("{first}..{last} ({})", items.len()),
                [] => String::new(),
            },
            (None, Some(start), Some(last)) if start == last => format!("item {start}"),
            (None, Some(start), Some(last)) => format!("items {start}..={last}"),
            _ => String::new(),
        };
        for (key, value) in &self.params {
            if !text.is_empty() {
                text.push(' ');
            }
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = write!(text, "{key}={value}");
        }
        if text.chars().count() > width {
            text = text.chars().take(width - 1).collect::<String>() + "…";
        }
        text
    }
}

/// A parameter's value as JSON: a string, number or boolean.
pub(crate) fn param_json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or_else(
            || serde_json::Value::String(f.to_string()),
            serde_json::Value::Number,
        ),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        other => serde_json::Value::String(other.to_string()),
    }
}
