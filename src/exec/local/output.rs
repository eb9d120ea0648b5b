//! A task's stdout and stderr: files in the run directory that the task writes straight into.
//!
//! Each worker keeps a spool per stream: an unnamed file (`O_TMPFILE`) in `tasks/` that its tasks
//! write into one after another. A quiet task leaves the spool empty and the next task uses it
//! again, so a quiet task costs no inode, no directory entry and no unlink. A task that wrote
//! something keeps the file: it is named `<id>.out` or `<id>.err` with `linkat`, and the worker
//! opens a new spool. Where the file system has no `O_TMPFILE`, named files are created and empty
//! ones removed, to the same effect.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Mode, OFlags, linkat, open};

/// How much of stderr the report keeps.
pub const STDERR_TAIL_BYTES: u64 = 4096;

/// The SHA-256 of no bytes: most tasks' stdout.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// One worker's spools, for its tasks' stdout and stderr.
pub(crate) struct Spools {
    pub out: Spool,
    pub err: Spool,
}

impl Spools {
    /// Spools in `dir` (opened at the first task).
    pub fn new(dir: &Path) -> Self {
        Self {
            out: Spool::new(dir),
            err: Spool::new(dir),
        }
    }
}

/// One worker's spool for one stream.
pub(crate) struct Spool {
    dir: PathBuf,
    /// The unnamed file, empty between tasks; `None` until first used, after a task took it, or
    /// where the file system has no `O_TMPFILE`.
    file: Option<File>,
}

impl Spool {
    /// A spool in `dir` (opened at the first task).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            file: None,
        }
    }

    /// The output `<dir>/<name>` of the next attempt: the spool, or a named file where there can
    /// be no spool.
    pub fn output(&mut self, name: &str) -> io::Result<Output> {
        let path = self.dir.join(name);
        // Not empty: a process that escaped every containment still writes to it, or the last
        // task's output could not be kept under its name. Either way the next task gets a spool
        // of its own. Seeking to the end also puts an empty spool's offset back at 0, should a
        // task have truncated what it wrote.
        if let Some(file) = &self.file
            && rustix::fs::seek(file, rustix::fs::SeekFrom::End(0))? > 0
        {
            tracing::warn!(
                "a task output spool holds bytes no task is charged with (written by a process outside any task, or an output that could not be kept); the next task gets a new one"
            );
            self.file = None;
        }
        if self.file.is_none() {
            let mode = Mode::from_raw_mode(crate::report::FILE_MODE);
            // Linked into place with `linkat`, which never follows a symlink at the new name.
            if let Ok(fd) = open(
                &self.dir,
                OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
                mode,
            ) {
                self.file = Some(File::from(fd));
            }
        }
        if let Some(file) = self.file.take() {
            return Ok(Output {
                file,
                path,
                named: false,
            });
        }
        // A leftover of an earlier attempt under the same name is replaced.
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err(e);
        }
        Ok(Output {
            file: crate::report::secure::create_new(&path)?,
            path,
            named: true,
        })
    }

    /// After the attempt, with the length `finish` gave: an unnamed output the task left empty
    /// is the spool of the next task; a written one is the task's named file, and the next task
    /// gets a new spool.
    pub fn settle(&mut self, output: Output, len: u64) {
        if len == 0 && !output.named {
            self.file = Some(output.file);
        }
    }
}

/// One output stream of a task attempt.
pub(crate) struct Output {
    file: File,
    path: PathBuf,
    /// Whether the file already has its name (the fallback without `O_TMPFILE`).
    named: bool,
}

impl Output {
    /// The file the child's stdout or stderr goes to (the child gets its own copy).
    pub fn for_child(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Once the task is done: names the file if the task wrote to it, drops it if not; returns
    /// its size.
    pub fn finish(&self) -> io::Result<u64> {
        let len = self.file.metadata()?.len();
        match (len, self.named) {
            (0, true) => std::fs::remove_file(&self.path)?,
            (0, false) | (_, true) => {}
            (_, false) => {
                let fd = format!("/proc/self/fd/{}", self.file.as_fd().as_raw_fd());
                if let Err(e) = linkat(CWD, fd.as_str(), CWD, &self.path, AtFlags::SYMLINK_FOLLOW) {
                    // A leftover of an earlier run under the same name: this attempt's output wins.
                    if e != rustix::io::Errno::EXIST {
                        return Err(e.into());
                    }
                    std::fs::remove_file(&self.path)?;
                    linkat(CWD, fd.as_str(), CWD, &self.path, AtFlags::SYMLINK_FOLLOW)?;
                }
            }
        }
        Ok(len)
    }

    /// Hex SHA-256 of the file's first `len` bytes (all a finished task wrote).
    pub fn sha256(&self, len: u64) -> io::Result<String> {
        use sha2::{Digest, Sha256};
        if len == 0 {
            return Ok(EMPTY_SHA256.to_owned());
        }
        let mut hash = Sha256::new();
        let mut buffer = vec![0; usize::try_from(len.min(64 * 1024)).unwrap_or(0)];
        let mut at = 0;
        while at < len {
            let want = usize::try_from((len - at).min(buffer.len() as u64)).unwrap_or(0);
            let n = self.file.read_at(&mut buffer[..want], at)?;
            if n == 0 {
                break;
            }
            hash.update(&buffer[..n]);
            at += n as u64;
        }
        Ok(crate::job::hex(&hash.finalize()))
    }

    /// The last `STDERR_TAIL_BYTES` of the file, lossily decoded.
    pub fn tail(&self, len: u64) -> io::Result<String> {
        read_tail(&self.file, len)
    }
}

fn read_tail(file: &File, len: u64) -> io::Result<String> {
    let start = len.saturating_sub(STDERR_TAIL_BYTES);
    let mut bytes = vec![0; usize::try_from(len - start).unwrap_or(0)];
    let mut read = 0;
    while read < bytes.len() {
        match file.read_at(&mut bytes[read..], start + read as u64)? {
            0 => break,
            n => read += n,
        }
    }
    bytes.truncate(read);
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The size of the file at `path` and its last `STDERR_TAIL_BYTES`, lossily decoded; `(0, "")`
/// when there is no file (an empty output leaves none).
pub fn tail(path: &Path) -> io::Result<(u64, String)> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, String::new())),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    Ok((len, read_tail(&file, len)?))
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    #[test]
    fn the_empty_output_hash_is_sha256_of_nothing() {
        assert_eq!(
            super::EMPTY_SHA256,
            crate::job::hex(&Sha256::new().finalize())
        );
    }
}
