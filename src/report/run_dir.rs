//! The run directory: created fresh for every run, with the job file's copy, the task output
//! folder and the `latest` link beside it.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::job::Job;
use crate::plan::RunInfo;
use crate::report::ReportError;

/// A created run directory and the paths inside it.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory, absolute.
    pub path: PathBuf,
}

impl RunDir {
    /// Creates the run directory of `run` and fills in what is known before any task starts.
    pub fn create(run: &RunInfo, job: &Job) -> Result<Self, ReportError> {
        let path = run.dir.clone();
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(ReportError::io("create the run root", parent))?;
        }
        // Not world-writable whatever the umask: other users must not plant files in a run.
        let mut builder = DirBuilder::new();
        builder.mode(0o755);
        match builder.create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(ReportError::Exists { path });
            }
            Err(e) => return Err(ReportError::io("create the run directory", &path)(e)),
        }
        let dir = Self { path };
        builder.create(dir.tasks_dir()).map_err(ReportError::io(
            "create the task output folder",
            dir.tasks_dir(),
        ))?;
        let copy = dir.path.join("job.toml");
        crate::report::write_file(&copy, job.source.text.as_bytes())
            .map_err(ReportError::io("copy the job file to", &copy))?;
        dir.link_latest(&run.id)?;
        Ok(dir)
    }

    /// `tasks/`, where each task's output goes.
    pub fn tasks_dir(&self) -> PathBuf {
        self.path.join("tasks")
    }

    /// `report.json`.
    pub fn report_path(&self) -> PathBuf {
        self.path.join("report.json")
    }

    /// `journal.jsonl`.
    pub fn journal_path(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }

    /// Points `latest` beside the run directory at it, atomically (a new link renamed over the
    /// old). Only when the directory is named after the run id: a fixed `--run-dir /tmp/x` must
    /// not drop a `latest` link into `/tmp`.
    fn link_latest(&self, run_id: &str) -> Result<(), ReportError> {
        let (Some(parent), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return Ok(());
        };
        if !name.to_string_lossy().contains(run_id) {
            return Ok(());
        }
        let latest = parent.join("latest");
        let temp = parent.join(format!(".latest.{run_id}"));
        let _ = fs::remove_file(&temp);
        std::os::unix::fs::symlink(Path::new(name), &temp)
            .and_then(|()| fs::rename(&temp, &latest))
            .map_err(ReportError::io("update the link", latest))
    }
}
