//! `journal.jsonl`: one JSON record per line, appended as attempts start and finish, in
//! completion order. The engine hands records over in batches; `commit` writes a batch with one
//! `write` on a file opened for appending and fsyncs it before the engine acts on any of it. A
//! crash loses at most the batch being written, and a torn last line is ignored when reading.

use std::fs::File;

use crate::report::secure;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::exec::{Identity, Started, TaskOutcome, TaskStatus};
use crate::plan::Task;
use crate::report::ReportError;
use crate::report::model::{Provenance, RunStatus, TaskRecord, timestamp};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    /// A run (or a resumption of one) began.
    RunStarted(RunStarted),
    /// An attempt of a task started.
    Started(AttemptStarted),
    /// An attempt of a task ended.
    Finished(AttemptFinished),
    /// The run ended with its report written.
    RunFinished(RunFinished),
}

/// `run_started`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunStarted {
    /// RFC 3339 UTC.
    #[schemars(extend("format" = "date-time"))]
    pub at: String,
    /// The run id.
    pub run_id: String,
    /// The job's name. Absent in journals of poolrun 0.1 (then the copy's, or its file stem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The job file as run (absolute).
    pub job_file: String,
    /// The folder the job's relative paths start from: the job file's, or the current directory
    /// for a job read from stdin or a FIFO. Absent in journals of poolrun 0.1 (the job file's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_dir: Option<String>,
    /// The SHA-256 of the job file's bytes.
    pub job_sha256: String,
    /// Planned tasks.
    pub tasks: u64,
    /// Tasks at once.
    pub processes: usize,
    /// Whether this resumes an earlier run in the same directory.
    pub resumed: bool,
    /// poolrun's pid, so a later `report` can tell a crashed run from a running one.
    pub pid: u32,
    /// The random token in this session's tasks' environment (`POOLRUN_RUN_TOKEN`): with
    /// `cgroup`, how a resumed run finds what a killed session left running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The session's cgroup folder, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// What ran the tasks: "local" or "slurm" (absent: local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Where and how this session ran: with its `--set` arguments and input snapshots, what
    /// a rebuilt report and a resumption plan from. Absent in journals of poolrun 0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Box<Provenance>>,
}

impl RunStarted {
    /// What identifies the session's processes.
    pub fn identity(&self) -> Identity {
        Identity {
            token: self.token.clone().unwrap_or_default(),
            cgroup: self.cgroup.as_ref().map(PathBuf::from),
        }
    }
}

/// `started`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttemptStarted {
    /// RFC 3339 UTC.
    #[schemars(extend("format" = "date-time"))]
    pub at: String,
    /// The task id in this run's plan.
    pub task: u64,
    /// The task's resume key.
    pub key: String,
    /// From 1.
    pub attempt: u32,
    /// The direct child's pid, which is also its process group id; in a Slurm session, the
    /// job id of the array the element was submitted in.
    pub pid: u32,
}

/// `finished`: everything the report says about an attempt, but for the task's plan data and
/// the stderr tail, which is read from the task's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttemptFinished {
    /// RFC 3339 UTC: when the attempt ended.
    #[schemars(extend("format" = "date-time"))]
    pub at: String,
    /// The task id in this run's plan.
    pub task: u64,
    /// The task's resume key.
    pub key: String,
    /// From 1.
    pub attempt: u32,
    /// How it ended.
    pub status: TaskStatus,
    /// The exit code.
    pub exit_code: Option<i32>,
    /// The signal.
    pub signal: Option<i32>,
    /// RFC 3339 UTC.
    #[schemars(extend("format" = "date-time"))]
    pub started_at: String,
    /// How long it ran.
    pub duration_ms: u64,
    /// Whether `tasks/<id>.out` and `.err` exist.
    pub has_output: bool,
    /// Bytes written to stdout.
    pub stdout_bytes: u64,
    /// Hex SHA-256 of stdout. Absent in journals of poolrun 0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_sha256: Option<String>,
    /// Bytes written to stderr.
    pub stderr_bytes: u64,
    /// Processes the task left running, killed.
    pub leaked: u32,
    /// Why it did not succeed.
    pub error: Option<String>,
    /// Whether another attempt follows.
    pub retry: bool,
    /// When poolrun sent SIGTERM because the attempt ran out of time (RFC 3339 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub terminated_at: Option<String>,
    /// The Slurm array element that ran it, `<array job id>_<index>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
}

/// `run_finished`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunFinished {
    /// RFC 3339 UTC.
    #[schemars(extend("format" = "date-time"))]
    pub at: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Why it stopped early (`run.stop_reason` in the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Processes the end-of-run sweep killed (`run.leaked` in the report).
    #[serde(default)]
    pub leaked: u32,
}

impl AttemptStarted {
    /// The record of `s`.
    pub fn new(s: &Started) -> Self {
        Self {
            at: timestamp(s.at),
            task: s.id.0,
            key: s.key.clone(),
            attempt: s.attempt,
            pid: s.handle,
        }
    }
}

impl AttemptFinished {
    /// The record of `o`.
    pub fn new(o: &TaskOutcome, retry: bool) -> Self {
        Self {
            at: timestamp(o.finished_at),
            task: o.task.id.0,
            key: o.task.key.clone(),
            attempt: o.attempt,
            status: o.status,
            exit_code: o.exit_code,
            signal: o.signal,
            started_at: timestamp(o.started_at),
            duration_ms: u64::try_from(o.duration.as_millis()).unwrap_or(u64::MAX),
            has_output: o.has_output,
            stdout_bytes: o.stdout_bytes,
            stdout_sha256: o.stdout_sha256.clone(),
            stderr_bytes: o.stderr_bytes,
            leaked: o.leaked,
            error: o.error.clone(),
            retry,
            terminated_at: o.terminated_at.map(timestamp),
            slurm_job_id: o.slurm_job_id.clone(),
        }
    }
}

/// The longest a written batch of records that nothing acts on (successes, starts) waits for its
/// fsync: a crash of poolrun loses nothing written, a crash of the machine at most this much.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// The open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    batch: Vec<u8>,
    /// Whether the batch holds a record the engine acts on, which must be fsynced at once.
    durable: bool,
    /// Whether anything written is not fsynced yet, and when the last fsync was.
    unsynced: bool,
    synced_at: Instant,
    /// The workers' `started` lines since the last commit.
    starts: Arc<Mutex<Vec<u8>>>,
    /// What the next `write` writes: those lines, then the batch.
    pending: Vec<u8>,
}

/// The workers' way to add `started` records to the journal (see `Journal::starts`).
#[derive(Debug, Clone)]
pub struct Starts(Arc<Mutex<Vec<u8>>>);

impl Starts {
    /// Adds `record`'s line; returns whether it is the first since the last commit (then the
    /// engine must be told, so that a commit comes).
    pub fn add(&self, record: &Record) -> bool {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let first = lines.is_empty();
        serde_json::to_writer(&mut *lines, record).expect("journal records serialize");
        lines.push(b'\n');
        first
    }
}

impl Journal {
    /// Creates the journal at `path`, or opens it for appending when `append` (a resumed run).
    pub fn open(path: &Path, append: bool) -> Result<Self, ReportError> {
        let file = if append {
            secure::open_append(path)
        } else {
            secure::create_new_append(path)
        }
        .map_err(ReportError::io("open the journal", path))?;
        secure::check_own_file(&file, path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            batch: Vec::with_capacity(4096),
            durable: false,
            unsynced: false,
            synced_at: Instant::now(),
            starts: Arc::default(),
            pending: Vec::with_capacity(4096),
        })
    }

    /// Adds a record to the batch.
    pub fn append(&mut self, record: &Record) {
        serde_json::to_writer(&mut self.batch, record).expect("journal records serialize");
        self.batch.push(b'\n');
        // The engine acts on failures (a retry, a halt) and on the run's own records. A success
        // or a `started` record only says what happened: it is synced within `SYNC_INTERVAL`,
        // so a burst of short tasks costs ten fsyncs a second.
        // `run_started` only needs writing before the tasks start: a crash of the machine stops
        // them with it, and a resume of a crash of poolrun reads what was written.
        self.durable |= match record {
            Record::Started(_) | Record::RunStarted(_) => false,
            Record::Finished(f) => f.status != TaskStatus::Succeeded || f.retry,
            Record::RunFinished(_) => true,
        };
    }

    /// Writes the batch; fsyncs what is written when the batch holds anything the engine will
    /// act on, or when the last fsync is `SYNC_INTERVAL` old.
    pub fn commit(&mut self) -> Result<(), ReportError> {
        // The workers' `started` lines first (a task's start comes before its end), then the
        // batch, in one `write`; what a failed write left is written first the next time.
        self.pending
            .append(&mut self.starts.lock().unwrap_or_else(PoisonError::into_inner));
        self.pending.extend_from_slice(&self.batch);
        self.batch.clear();
        if !self.pending.is_empty() {
            self.file
                .write_all(&self.pending)
                .map_err(ReportError::io("append to the journal", &self.path))?;
            self.pending.clear();
            self.unsynced = true;
        }
        let urgent = std::mem::take(&mut self.durable);
        if urgent || self.sync_due().is_some_and(|due| due <= Instant::now()) {
            self.sync()?;
        }
        Ok(())
    }

    /// Fsyncs whatever is written and not yet synced.
    pub fn sync(&mut self) -> Result<(), ReportError> {
        if std::mem::take(&mut self.unsynced) {
            self.file
                .sync_data()
                .map_err(ReportError::io("sync the journal", &self.path))?;
            self.synced_at = Instant::now();
        }
        Ok(())
    }

    /// When what is written but not synced is due for its fsync (by `commit`), if anything is.
    pub fn sync_due(&self) -> Option<Instant> {
        self.unsynced.then_some(self.synced_at + SYNC_INTERVAL)
    }

    /// Where the workers add their `started` records themselves, without waking the engine for
    /// each: the lines are written ahead of the batch at the next commit.
    pub fn starts(&self) -> Starts {
        Starts(Arc::clone(&self.starts))
    }

    /// Appends one record and commits it (synced as `commit` syncs).
    pub fn record(&mut self, record: &Record) -> Result<(), ReportError> {
        self.append(record);
        self.commit()
    }

    /// Appends one record and commits it, synced.
    pub fn write(&mut self, record: &Record) -> Result<(), ReportError> {
        self.append(record);
        self.commit()?;
        self.sync()
    }
}

/// Reads every complete record of the journal at `path`. A last line without its newline (the
/// engine died while writing it, perhaps inside a multi-byte character) is ignored; any other
/// bad line is an error.
pub fn read(path: &Path) -> Result<Vec<Record>, ReportError> {
    let mut records = Vec::new();
    each(path, &mut |record| {
        records.push(record);
        Ok(())
    })?
    .map_err(ReportError::unreadable(path))?;
    Ok(records)
}

/// Calls `f` with each complete record of the journal at `path`, in order, reading one line at
/// a time. The outer error says the journal could not be read; the inner one is `f`'s, which
/// stops the reading.
pub fn each(
    path: &Path,
    f: &mut dyn FnMut(Record) -> std::io::Result<()>,
) -> Result<std::io::Result<()>, ReportError> {
    let file = File::open(path).map_err(ReportError::unreadable(path))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(ReportError::unreadable(path))?;
        if read == 0 || line.last() != Some(&b'\n') {
            return Ok(Ok(()));
        }
        number += 1;
        let record = serde_json::from_slice(&line).map_err(|source| ReportError::Journal {
            path: path.to_owned(),
            line: number,
            source,
        })?;
        if let Err(e) = f(record) {
            return Ok(Err(e));
        }
    }
}

/// Report rows from journal records.
impl TaskRecord {
    /// The row for a task whose last attempt finished as `f`, with the end of its stderr.
    pub fn finished(task: &Task, f: &AttemptFinished, stderr_tail: String) -> Self {
        let file = |ext: &str, bytes: u64| {
            (f.has_output && bytes > 0).then(|| format!("tasks/{}", task.output_file(ext)))
        };
        Self {
            status: f.status,
            exit_code: f.exit_code,
            signal: f.signal,
            attempts: f.attempt,
            started_at: Some(f.started_at.clone()),
            finished_at: Some(f.at.clone()),
            duration_ms: Some(f.duration_ms),
            stdout: file("out", f.stdout_bytes),
            stderr: file("err", f.stderr_bytes),
            stdout_bytes: f.stdout_bytes,
            stdout_sha256: f.stdout_sha256.clone(),
            stderr_bytes: f.stderr_bytes,
            stderr_tail,
            leaked: f.leaked,
            error: f.error.clone(),
            slurm_job_id: f.slurm_job_id.clone(),
            ..Self::not_run(task)
        }
    }

    /// The row for a task whose attempt started but never finished: the engine died under it.
    pub fn lost(task: &Task, s: &AttemptStarted, stdout_bytes: u64, stderr: (u64, String)) -> Self {
        let file = |ext: &str| format!("tasks/{}", task.output_file(ext));
        Self {
            status: TaskStatus::Cancelled,
            attempts: s.attempt,
            started_at: Some(s.at.clone()),
            stdout: (stdout_bytes > 0).then(|| file("out")),
            stderr: (stderr.0 > 0).then(|| file("err")),
            stdout_bytes,
            stderr_bytes: stderr.0,
            stderr_tail: stderr.1,
            error: Some("the run ended before the task did: poolrun was killed".to_owned()),
            ..Self::not_run(task)
        }
    }
}
