//! Errors of the report layer: the run directory, the journal and the report files.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// The run directory or a report could not be written or read.
#[derive(Debug, Error)]
pub enum ReportError {
    /// A file-system operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What poolrun was doing, e.g. "create the run directory".
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A run's file could not be read: a usage error (a wrong or damaged run), not a failed write.
    #[error("cannot read {}", path.display())]
    Unreadable {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A folder or file poolrun will not trust with a run.
    #[error("refusing to use {}: {reason}", path.display())]
    Unsafe {
        /// The folder or file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Another run of the job holds its lock.
    #[error("another run of this job is going: run {run_id}, pid {pid} holds {}", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The run holding it.
        run_id: String,
        /// Its pid.
        pid: String,
    },
    /// Another run of the job is already waiting for its lock (`overlap = "wait"` queues one).
    #[error(
        "another run of this job is already waiting for run {run_id} (pid {pid}) to end: at most one run waits"
    )]
    Queued {
        /// The lock file.
        path: PathBuf,
        /// The run holding the lock.
        run_id: String,
        /// Its pid.
        pid: String,
    },
    /// A signal stopped poolrun while it wrote the report.
    #[error("interrupted while writing {}: `poolrun report` on the run directory rebuilds it from the journal", path.display())]
    Interrupted {
        /// The report.
        path: PathBuf,
    },
    /// The run directory exists already; runs never share one.
    #[error("the run directory {} already exists: poolrun never reuses one", path.display())]
    Exists {
        /// The directory.
        path: PathBuf,
    },
    /// A journal line that is not a journal record.
    #[error("{}:{line} is not a poolrun journal record", path.display())]
    Journal {
        /// The journal.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A report file that is not a poolrun report.
    #[error("{} is not a poolrun report", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl ReportError {
    /// An `Unreadable` error, for `map_err`.
    pub fn unreadable(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Unreadable { path, source }
    }

    /// Whether this says a run could not be read (exit 2), rather than not written (exit 74).
    pub fn is_read_error(&self) -> bool {
        matches!(
            self,
            Self::Unreadable { .. } | Self::Journal { .. } | Self::Parse { .. }
        )
    }

    /// An `Io` error, for `map_err`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
