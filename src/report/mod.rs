//! The report stage: the run directory, the journal, the ordered `report.json`, and the text a
//! person reads about a run.

mod error;
pub mod journal;
pub mod model;
mod read;
pub mod render;
mod run_dir;
mod writer;

pub use error::ReportError;
pub use journal::Journal;
pub use model::{JobRecord, REPORT_SCHEMA, Report, RunRecord, RunStatus, Summary, TaskRecord};
pub use read::read_report;
pub use run_dir::RunDir;
pub use writer::ReportWriter;
