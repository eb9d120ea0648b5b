//! The top-level error and the one mapping from errors to exit codes (SPEC section 5).

use std::fmt::Write as _;
use thiserror::Error;

use crate::exec::ExecError;
use crate::job::JobError;
use crate::report::ReportError;

/// Exit codes.
pub mod exit {
    /// Every task succeeded.
    pub const SUCCESS: u8 = 0;
    /// The run finished and some tasks did not succeed.
    pub const TASKS_FAILED: u8 = 1;
    /// Usage error or invalid job file: nothing ran.
    pub const USAGE: u8 = 2;
    /// The run directory or report could not be written.
    pub const IO: u8 = 74;
    /// Another run of the job holds its lock.
    pub const LOCKED: u8 = 75;
    /// Interrupted by a signal: 128 + its number.
    pub const fn signal(signal: i32) -> u8 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let code = (128 + signal) as u8;
        code
    }
}

/// Anything that stops a command.
#[derive(Debug, Error)]
pub enum Error {
    /// The job file.
    #[error(transparent)]
    Job(#[from] JobError),
    /// The executor.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The run directory, journal or report.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A command line that cannot be carried out; nothing ran.
    #[error("{0}")]
    Usage(String),
    /// A run that waited for the job's lock gave up (its deadline passed); nothing ran.
    #[error("{0}")]
    GaveUp(String),
    /// A signal stopped poolrun before any task ran.
    #[error("interrupted by {} {when}: nothing ran", crate::exec::unix::signal_name(*signal))]
    Interrupted {
        /// The signal.
        signal: i32,
        /// What poolrun was doing.
        when: &'static str,
    },
}

impl Error {
    /// Prints the error for people on stderr: a job-file diagnostic as it is, anything else as
    /// one line with its causes.
    pub fn print(&self) {
        let line = match self {
            Self::Job(JobError::Invalid(all)) => {
                let shown: Vec<String> = all.iter().map(|d| format!("error: {d}")).collect();
                let mut text = shown.join("\n\n");
                if all.len() > 1 {
                    let _ = write!(text, "\n\npoolrun: {} errors in the job file", all.len());
                }
                text
            }
            Self::Usage(message) | Self::GaveUp(message) => format!("poolrun: error: {message}"),
            e => format!("poolrun: error: {}", chain(e)),
        };
        crate::console::line(&line);
    }

    /// Whether this says the job's lock kept the run from starting (exit 75).
    pub fn is_lock_skip(&self) -> bool {
        self.exit_code() == exit::LOCKED
    }

    /// The documented exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Job(_) | Self::Usage(_) => exit::USAGE,
            Self::Report(ReportError::Locked { .. } | ReportError::Queued { .. })
            | Self::GaveUp(_) => exit::LOCKED,
            Self::Report(e) if e.is_read_error() => exit::USAGE,
            Self::Exec(_) | Self::Report(_) => exit::IO,
            Self::Interrupted { signal, .. } => exit::signal(*signal),
        }
    }
}

/// The error and its causes, `a: b: c`, for one line on stderr.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
