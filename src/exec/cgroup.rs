//! Per-task process limits with the pids cgroup controller (Linux): each task attempt gets its own
//! cgroup with `pids.max`, which the task's first process joins before it runs the command.

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};

/// The run's cgroup, under which each task attempt gets one of its own.
#[derive(Debug)]
pub(crate) struct PidsCgroup {
    dir: PathBuf,
}

/// One task attempt's cgroup; removed when dropped (by then its processes are gone).
#[derive(Debug)]
pub(crate) struct TaskCgroup {
    dir: PathBuf,
    /// `cgroup.procs`, ready for the child to open between fork and exec without allocating.
    pub procs: CString,
}

impl PidsCgroup {
    /// Makes `poolrun-<run_id>` in poolrun's own pids cgroup (v1), or `None` where there is no
    /// writable pids hierarchy.
    pub fn create(run_id: &str) -> Option<Self> {
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        // v1: "8:pids:/some/path". (A v2-only system needs delegation poolrun does not set up.)
        let path = own.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "pids")
                .then(|| path.trim_start_matches('/').to_owned())
        })?;
        let dir = Path::new("/sys/fs/cgroup/pids")
            .join(path)
            .join(format!("poolrun-{run_id}"));
        fs::create_dir(&dir).ok()?;
        Some(Self { dir })
    }

    /// A cgroup for one attempt, allowing at most `max` processes.
    pub fn task(&self, name: &str, max: u32) -> std::io::Result<TaskCgroup> {
        let dir = self.dir.join(name);
        fs::create_dir(&dir)?;
        fs::write(dir.join("pids.max"), max.to_string())?;
        let procs = CString::new(
            dir.join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .map_err(std::io::Error::other)?;
        Ok(TaskCgroup { dir, procs })
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

impl Drop for TaskCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}
