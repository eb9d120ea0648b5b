//! `[report] keep = N`: after a run, the oldest runs of the job beside it are removed so that
//! the newest N remain.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::report::ReportError;
use crate::report::journal::Record;

/// Removes the oldest runs of job `name` in `root` (the folder `current`, the run just made, is
/// in), keeping the newest `keep`, `current` always among them. A run is a folder with a
/// journal whose first record names the job; anything else in `root` is left alone. The job's
/// lock must be held, so none of them is running. Returns the folders removed.
pub fn prune(
    root: &Path,
    name: &str,
    current: &Path,
    keep: usize,
) -> Result<Vec<PathBuf>, ReportError> {
    let entries = fs::read_dir(root).map_err(ReportError::io("list", root))?;
    let mut runs: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        // Never follow a link (`latest` is one): only real folders are runs.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || path == current {
            continue;
        }
        if let Some(started) = first_run_of(&path, name) {
            runs.push((started, path));
        }
    }
    // Newest first: by when each started, then by name (run ids sort by time).
    runs.sort_by(|a, b| b.cmp(a));
    let mut removed = Vec::new();
    for (_, path) in runs.into_iter().skip(keep.saturating_sub(1)) {
        fs::remove_dir_all(&path).map_err(ReportError::io("remove the old run", &path))?;
        removed.push(path);
    }
    Ok(removed)
}

/// When the run in `dir` started, if `dir` is a run of job `name`.
fn first_run_of(dir: &Path, name: &str) -> Option<String> {
    let dir = crate::report::RunDir {
        path: dir.to_owned(),
    };
    let file = fs::File::open(dir.journal_path()).ok()?;
    let mut line = String::new();
    BufReader::new(file).read_line(&mut line).ok()?;
    match serde_json::from_str(&line).ok()? {
        Record::RunStarted(r) if r.job.as_deref() == Some(name) => Some(r.at),
        _ => None,
    }
}
