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
    /// The run directory exists already; runs never share one.
    #[error("the run directory {} already exists: poolrun never reuses one", path.display())]
    Exists {
        /// The directory.
        path: PathBuf,
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
