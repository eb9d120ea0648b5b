//! The run directory: created fresh for every run, with the job file's copy, the task output
//! folder and the `latest` link beside it. `RunDir` knows every path in it.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::job::Job;
use crate::plan::RunInfo;
use crate::report::{ReportError, secure};

/// A run directory and the paths inside it.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory, absolute.
    pub path: PathBuf,
}

impl RunDir {
    /// Creates the run root (the run directory's parent) if needed and refuses it if it cannot
    /// be trusted (see `secure::check_folder`); call before taking the job's lock there.
    pub fn prepare_root(run: &RunInfo) -> Result<PathBuf, ReportError> {
        let root = run.dir.parent().unwrap_or(Path::new("/")).to_owned();
        secure::create_dirs(&root).map_err(ReportError::io("create the run root", &root))?;
        secure::check_folder(&root)?;
        Ok(root)
    }

    /// Creates the run directory of `run`, in a root `prepare_root` checked, and fills in what
    /// is known before any task starts.
    pub fn create(run: &RunInfo, job: &Job) -> Result<Self, ReportError> {
        let path = run.dir.clone();
        // Not world-writable whatever the umask: other users must not plant files in a run.
        match secure::create_dir(&path) {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(ReportError::Exists { path });
            }
            Err(e) => return Err(ReportError::io("create the run directory", &path)(e)),
            Ok(()) => {}
        }
        let dir = Self { path };
        secure::create_dir(&dir.tasks_dir()).map_err(ReportError::io(
            "create the task output folder",
            dir.tasks_dir(),
        ))?;
        let copy = dir.job_copy_path();
        secure::write_new(&copy, job.origin.text.as_bytes())
            .map_err(ReportError::io("copy the job file to", &copy))?;
        dir.link_latest(&run.id)?;
        Ok(dir)
    }

    /// An existing run directory, to resume: it, its task folder and its run root (where the
    /// lock is taken) must be poolrun's user's and closed to others, as when poolrun made them.
    pub fn open(path: PathBuf) -> Result<Self, ReportError> {
        let dir = Self { path };
        if let Some(root) = dir.path.parent() {
            secure::check_folder(root)?;
        }
        secure::check_folder(&dir.path)?;
        if dir.tasks_dir().exists() {
            secure::check_folder(&dir.tasks_dir())?;
        }
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

    /// Removes `report.json`, if there is one.
    pub fn remove_report(&self) -> Result<(), ReportError> {
        match fs::remove_file(self.report_path()) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(ReportError::io("remove the old report", self.report_path())(e))
            }
            _ => Ok(()),
        }
    }

    /// `journal.jsonl`.
    pub fn journal_path(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }

    /// `items.txt`, the snapshot of the items of `[lines]` or `[glob]`: one per line.
    pub fn snapshot_path(&self) -> PathBuf {
        self.path.join(crate::report::SNAPSHOT_FILE)
    }

    /// Writes the snapshot of a job's items (`Items::bytes`), returning its SHA-256.
    pub fn write_snapshot(&self, bytes: &[u8]) -> Result<String, ReportError> {
        use sha2::{Digest, Sha256};
        let path = self.snapshot_path();
        secure::write_new(&path, bytes)
            .map_err(ReportError::io("write the input snapshot", &path))?;
        Ok(crate::job::hex(&Sha256::digest(bytes)))
    }

    /// Reads the snapshot of a run's items, checking it against the SHA-256 its journal
    /// recorded.
    pub fn read_snapshot(&self, sha256: &str) -> Result<crate::job::Items, ReportError> {
        use sha2::{Digest, Sha256};
        let path = self.snapshot_path();
        let bytes = std::fs::read(&path).map_err(ReportError::unreadable(&path))?;
        let actual = crate::job::hex(&Sha256::digest(&bytes));
        let damaged = |why: &str| {
            ReportError::unreadable(&path)(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the input snapshot {why}"),
            ))
        };
        if actual != sha256 {
            return Err(damaged(&format!(
                "changed since the run: its SHA-256 is {actual}, the journal says {sha256}"
            )));
        }
        crate::job::Items::from_snapshot(bytes).ok_or_else(|| damaged("is not one item per line"))
    }

    /// `job.toml`, the job file as run.
    pub fn job_copy_path(&self) -> PathBuf {
        self.path.join("job.toml")
    }

    /// Points `latest` beside the run directory at it, atomically (a new link, under a name
    /// nobody can guess, renamed over the old). Only when the directory is named after the run
    /// id: a fixed `--run-dir /tmp/x` must not drop a `latest` link into `/tmp`.
    fn link_latest(&self, run_id: &str) -> Result<(), ReportError> {
        let (Some(parent), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return Ok(());
        };
        if !name.to_string_lossy().contains(run_id) {
            return Ok(());
        }
        let latest = parent.join("latest");
        let temp = secure::temp_beside(&latest, "new");
        std::os::unix::fs::symlink(Path::new(name), &temp)
            .and_then(|()| fs::rename(&temp, &latest))
            .map_err(ReportError::io("update the link", latest))
    }
}
