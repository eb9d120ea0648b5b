//! The report stage: the run directory, the journal, the ordered `report.json`, and the text a
//! person reads about a run.

mod error;
pub mod journal;
mod lock;
pub mod model;
mod read;
mod recorder;
pub mod render;
mod run_dir;
mod state;
mod writer;

pub use error::ReportError;

/// Files poolrun writes are readable by all and writable by their owner only, whatever the umask
/// allows: a run's record must not be open to other users.
pub const FILE_MODE: u32 = 0o644;

/// Creates (or truncates) a file with `FILE_MODE`.
pub fn create_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Writes `bytes` to a new or truncated file with `FILE_MODE`.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    create_file(path)?.write_all(bytes)
}
pub use journal::Journal;
pub use lock::{Holder, RunLock};
pub use model::{JobRecord, REPORT_SCHEMA, Report, RunRecord, RunStatus, Summary, TaskRecord};
pub use read::read_report;
pub use recorder::Recorder;
pub use run_dir::RunDir;
pub use state::RunState;
pub use writer::ReportWriter;
