//! The report stage: the run directory, the journal, the ordered `report.json`, and the text a
//! person reads about a run.

pub mod compare;
mod error;
pub mod export;
pub mod journal;
mod lock;
pub mod model;
mod planned;
pub mod progress;
mod provenance;
mod prune;
pub mod read;
mod recorder;
pub mod render;
mod run_dir;
pub mod secure;
pub mod session;
mod state;
pub mod stream;
pub mod view;
mod writer;

pub use error::ReportError;

/// Files poolrun writes are readable by all and writable by their owner only, whatever the umask
/// allows: a run's record must not be open to other users.
pub const FILE_MODE: u32 = 0o644;

pub use journal::Journal;
pub use lock::{Holder, RunLock, Wait};
pub use model::{
    InputRecord, JobRecord, Provenance, READABLE_SCHEMAS, REPORT_SCHEMA, Report, RunRecord,
    RunStatus, Summary, TaskRecord,
};
pub use planned::write_plan_json;
pub use provenance::SNAPSHOT_FILE;
pub use prune::prune;
pub use read::read_report;
pub use recorder::{Observer, Recorder};
pub use run_dir::RunDir;
pub use state::RunState;
pub use writer::ReportWriter;
