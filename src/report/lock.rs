//! One run of a job at a time: an exclusive `flock` on a file in the job's run root, held for
//! the whole run. The file names the run and pid holding it, for the message a second run gets.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::report::ReportError;

/// A held lock; released when dropped (or when poolrun dies).
#[derive(Debug)]
pub struct RunLock {
    file: File,
}

/// Who holds a lock, as its file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The run id.
    pub run_id: String,
    /// poolrun's pid.
    pub pid: String,
}

impl RunLock {
    /// The lock file of job `name` in `run_root`.
    pub fn path(run_root: &Path, name: &str) -> PathBuf {
        run_root.join(format!(".poolrun-{name}.lock"))
    }

    /// Takes the lock at `path` for `run_id`, waiting for it when `wait`; otherwise a held lock
    /// is `ReportError::Locked` at once. `on_wait` is called once before waiting.
    pub fn acquire(
        path: &Path,
        run_id: &str,
        wait: bool,
        on_wait: impl FnOnce(&Holder),
    ) -> Result<Self, ReportError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(ReportError::io("create the run root", parent))?;
        }
        let mut file = OpenOptions::new()
            .mode(crate::report::FILE_MODE)
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(ReportError::io("open the lock file", path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = holder(&mut file);
                if !wait {
                    return Err(ReportError::Locked {
                        path: path.to_owned(),
                        run_id: holder.run_id,
                        pid: holder.pid,
                    });
                }
                on_wait(&holder);
                file.lock()
                    .map_err(ReportError::io("wait for the lock", path))?;
            }
            Err(TryLockError::Error(e)) => return Err(ReportError::io("lock", path)(e)),
        }
        let record = format!("{} {run_id}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(record.as_bytes()))
            .map_err(ReportError::io("write the lock file", path))?;
        Ok(Self { file })
    }

    /// Whether someone holds the lock at `path` now, and who.
    pub fn holder(path: &Path) -> Option<Holder> {
        let mut file = File::open(path).ok()?;
        match file.try_lock() {
            Err(TryLockError::WouldBlock) => Some(holder(&mut file)),
            _ => None,
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Leave the file (removing it would race with a run opening it); clear its content.
        let _ = self.file.set_len(0);
    }
}

fn holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let mut words = text.split_whitespace();
    let pid = words.next().unwrap_or("?").to_owned();
    let run_id = words.next().unwrap_or("?").to_owned();
    Holder { run_id, pid }
}
