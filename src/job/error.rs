//! Errors of the job layer: reading and validating a job file.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::job::diagnostic::Diagnostic;

/// A job file that cannot be used. Nothing runs when loading fails.
#[derive(Debug, Error)]
pub enum JobError {
    /// The file could not be read at all.
    #[error("cannot read job file `{}`", path.display())]
    Read {
        /// The file as named.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file was read but is not a valid job: every error found, in file order, each
    /// pointing at its place.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

impl From<Box<Diagnostic>> for JobError {
    fn from(d: Box<Diagnostic>) -> Self {
        Self::Invalid(vec![*d])
    }
}

/// The diagnostics, a blank line between two.
fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n\n")
}
