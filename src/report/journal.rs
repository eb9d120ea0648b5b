//! `journal.jsonl`: one JSON event per line, appended as tasks start and finish, in completion
//! order. Each line goes to the file in one `write` on a file opened for appending, so a line is
//! never interleaved with another and a crash loses at most the line being written.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use crate::exec::{Observer, TaskOutcome, TaskStatus};
use crate::plan::Task;
use crate::report::ReportError;
use crate::report::model::{RunStatus, timestamp};

/// One line of the journal.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The run began.
    RunStarted {
        /// RFC 3339 UTC.
        at: String,
        /// The run id.
        run_id: &'a str,
        /// The job file's SHA-256.
        job_sha256: &'a str,
        /// Planned tasks.
        tasks: u64,
        /// Tasks at once.
        processes: usize,
    },
    /// An attempt of a task started.
    Started {
        /// RFC 3339 UTC.
        at: String,
        /// The task id.
        task: u64,
        /// From 1.
        attempt: u32,
        /// The direct child's pid, which is also its process group.
        pid: u32,
    },
    /// An attempt of a task ended.
    Finished {
        /// RFC 3339 UTC.
        at: String,
        /// The task id.
        task: u64,
        /// From 1.
        attempt: u32,
        /// How it ended.
        status: TaskStatus,
        /// The exit code.
        exit_code: Option<i32>,
        /// The signal.
        signal: Option<i32>,
        /// How long it ran.
        duration_ms: u64,
    },
    /// The run ended.
    RunFinished {
        /// RFC 3339 UTC.
        at: String,
        /// How.
        status: RunStatus,
    },
}

/// The open journal. Shared by the worker threads, which write `started` events.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    /// The first write error from a worker thread, which cannot return one.
    failed: Mutex<Option<ReportError>>,
}

impl Journal {
    /// Creates the journal at `path`; it must not exist yet.
    pub fn create(path: &Path) -> Result<Self, ReportError> {
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(ReportError::io("create the journal", path))?;
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(file),
            failed: Mutex::new(None),
        })
    }

    /// Appends one event.
    pub fn write(&self, event: &Event<'_>) -> Result<(), ReportError> {
        let mut line = serde_json::to_vec(event).expect("journal events serialize");
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(&line)
            .map_err(ReportError::io("append to the journal", &self.path))
    }

    /// Records that an attempt finished.
    pub fn finished(&self, o: &TaskOutcome) -> Result<(), ReportError> {
        if let Some(e) = self
            .failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            return Err(e);
        }
        self.write(&Event::Finished {
            at: timestamp(o.finished_at),
            task: o.task.id.0,
            attempt: o.attempts,
            status: o.status,
            exit_code: o.exit_code,
            signal: o.signal,
            duration_ms: u64::try_from(o.duration.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Flushes the journal to disk.
    pub fn sync(&self) -> Result<(), ReportError> {
        let file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.sync_all()
            .map_err(ReportError::io("sync the journal", &self.path))
    }
}

impl Observer for Journal {
    fn task_started(&self, task: &Task, attempt: u32, pid: u32, at: SystemTime) {
        let event = Event::Started {
            at: timestamp(at),
            task: task.id.0,
            attempt,
            pid,
        };
        if let Err(e) = self.write(&event) {
            self.failed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert(e);
        }
    }
}
