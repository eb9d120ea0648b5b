//! One run of a job at a time: an exclusive `flock` on a file in the job's run root, held for
//! the whole run. The file names the run and pid holding it, for the message a second run gets.
//! It is opened without following a symlink and must be a regular file of poolrun's user, so a
//! planted link or file in a shared run root can neither be truncated nor lock a run out unseen.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::report::{ReportError, secure};

/// How often a run waiting for the lock (`overlap = "wait"`) tries again and checks whether it
/// should give up (a signal).
const WAIT_POLL: Duration = Duration::from_millis(50);

/// A held lock; released when dropped (or when poolrun dies).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

/// Who holds a lock, as its file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The run id.
    pub run_id: String,
    /// poolrun's pid.
    pub pid: String,
}

/// Whether to wait for a held lock.
pub enum Wait<'a> {
    /// Fail at once with `ReportError::Locked`.
    No,
    /// Wait while `keep_waiting()` says so; `on_wait` is called once, before waiting. At most
    /// one run waits: a second fails at once with `ReportError::Queued`.
    While {
        /// Polled while waiting; false gives up with `ReportError::Locked`.
        keep_waiting: &'a dyn Fn() -> bool,
        /// Told who holds the lock.
        on_wait: &'a dyn Fn(&Holder),
    },
}

impl RunLock {
    /// The lock file of job `name` in `run_root`.
    pub fn path(run_root: &Path, name: &str) -> PathBuf {
        run_root.join(format!(".poolrun-{name}.lock"))
    }

    /// Takes the lock at `path`, in a run root that exists and was checked; `claim` then says
    /// which run holds it.
    pub fn acquire(path: &Path, wait: &Wait<'_>) -> Result<Self, ReportError> {
        let mut file =
            secure::open_shared(path).map_err(ReportError::io("open the lock file", path))?;
        secure::check_own_file(&file, path)?;
        let mut waited = false;
        // The place in the queue: held while waiting, so that one run waits at most.
        let mut queue: Option<File> = None;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let holder = holder(&mut file);
                    match wait {
                        Wait::While {
                            keep_waiting,
                            on_wait,
                        } if keep_waiting() => {
                            if queue.is_none() {
                                queue = Some(take_queue(path, &holder)?);
                            }
                            if !std::mem::replace(&mut waited, true) {
                                on_wait(&holder);
                            }
                            std::thread::sleep(WAIT_POLL);
                        }
                        _ => {
                            return Err(ReportError::Locked {
                                path: path.to_owned(),
                                run_id: holder.run_id,
                                pid: holder.pid,
                            });
                        }
                    }
                }
                Err(TryLockError::Error(e)) => return Err(ReportError::io("lock", path)(e)),
            }
        }
        // Holding the lock now: the place in the queue is free for the next run.
        drop(queue);
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    /// Writes who holds the lock: this process, for run `run_id`.
    pub fn claim(&mut self, run_id: &str) -> Result<(), ReportError> {
        let record = format!("{} {run_id}\n", std::process::id());
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)))
            .and_then(|_| self.file.write_all(record.as_bytes()))
            .map_err(ReportError::io("write the lock file", &self.path))
    }

    /// Whether someone holds the lock at `path` now, and who. Something planted there that is
    /// not a regular file (a FIFO would block the open) is no lock.
    pub fn holder(path: &Path) -> Option<Holder> {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits())
            .open(path)
            .ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
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

/// Takes the one place in the queue for the lock at `path` (`<lock>.wait`, locked the same way),
/// or fails with `ReportError::Queued` when another run holds it.
fn take_queue(path: &Path, holder: &Holder) -> Result<File, ReportError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".wait");
    let queue = PathBuf::from(name);
    let file =
        secure::open_shared(&queue).map_err(ReportError::io("open the lock file", &queue))?;
    secure::check_own_file(&file, &queue)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(ReportError::Queued {
            path: path.to_owned(),
            run_id: holder.run_id.clone(),
            pid: holder.pid.clone(),
        }),
        Err(TryLockError::Error(e)) => Err(ReportError::io("lock", &queue)(e)),
    }
}

fn holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut text);
    let mut words = text.split_whitespace();
    let pid = words.next().unwrap_or("?").to_owned();
    let run_id = words.next().unwrap_or("?").to_owned();
    Holder { run_id, pid }
}
