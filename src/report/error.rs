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
