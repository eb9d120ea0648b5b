//! Containment with cgroups (Linux): each task attempt runs in a cgroup of its own under the
//! run's, which its first process joins before it runs the command. Whatever the task starts
//! stays in that cgroup however it leaves the process group (`setsid`, a double fork, `env -i`,
//! `sudo`), so when the attempt ends everything in it is killed and counted, and at the end of
//! the run the run's cgroup is emptied the same way.
//!
//! cgroup v2 comes first (`cgroup.kill` empties a cgroup in one write); where poolrun can make no
//! v2 cgroup, the v1 pids hierarchy, emptied by SIGKILL to each member until none is left. When a
//! per-task process limit (`max-processes`) is asked for, the hierarchy that can enforce it
//! (`pids.max`) is preferred.

use std::ffi::CString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The cgroup versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V2,
    V1,
}

/// The run's cgroup, under which each task attempt gets one of its own.
#[derive(Debug)]
pub(crate) struct RunCgroup {
    dir: PathBuf,
    version: Version,
    /// Whether task cgroups have `pids.max`.
    pids: bool,
}

/// One task attempt's cgroup; removed when dropped.
#[derive(Debug)]
pub(crate) struct TaskCgroup {
    dir: PathBuf,
    version: Version,
    /// `cgroup.procs`, ready for the child to open between fork and exec without allocating.
    pub procs: CString,
}

impl RunCgroup {
    /// Makes `poolrun-<name>` in poolrun's own cgroup, or `None` where poolrun may make none.
    /// With `need_pids`, a hierarchy with the pids controller is preferred.
    pub fn create(name: &str, need_pids: bool) -> Option<Self> {
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let v2 = v2_mount().and_then(|mount| {
            let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
            Some(mount.join(path.trim_start_matches('/')))
        });
        let v1 = own.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "pids")
                .then(|| Path::new("/sys/fs/cgroup/pids").join(path.trim_start_matches('/')))
        });
        let dir_name = format!("poolrun-{name}");
        let v2 = || {
            let parent = v2.as_ref()?;
            remove_stale(parent);
            let dir = parent.join(&dir_name);
            fs::create_dir(&dir).ok()?;
            // The pids controller for the task cgroups, where the parent has it to give.
            let pids = fs::write(dir.join("cgroup.subtree_control"), "+pids").is_ok();
            Some(Self {
                dir,
                version: Version::V2,
                pids,
            })
        };
        let v1 = || {
            let parent = v1.as_ref()?;
            remove_stale(parent);
            let dir = parent.join(&dir_name);
            fs::create_dir(&dir).ok()?;
            Some(Self {
                dir,
                version: Version::V1,
                pids: true,
            })
        };
        match v2() {
            Some(cgroup) if cgroup.pids || !need_pids => Some(cgroup),
            Some(cgroup) => v1().or(Some(cgroup)),
            None => v1(),
        }
    }

    /// The cgroup's folder, recorded in the journal: a resumed run empties it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether task cgroups can enforce `max-processes`.
    pub fn limits_processes(&self) -> bool {
        self.pids
    }

    /// A cgroup for one attempt, allowing at most `max` processes when given.
    pub fn task(&self, name: &str, max: Option<u32>) -> io::Result<TaskCgroup> {
        let dir = self.dir.join(name);
        match fs::create_dir(&dir) {
            // Left by an attempt of a killed poolrun with the same name: emptied and reused.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                empty(&dir, self.version);
            }
            result => result?,
        }
        if let Some(max) = max.filter(|_| self.pids) {
            fs::write(dir.join("pids.max"), max.to_string())?;
        }
        let procs = CString::new(
            dir.join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .map_err(io::Error::other)?;
        Ok(TaskCgroup {
            dir,
            version: self.version,
            procs,
        })
    }

    /// Kills everything left in the run's cgroup and its task cgroups; returns how many.
    pub fn empty(&self) -> u32 {
        empty_tree(&self.dir, self.version)
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        remove_tree(&self.dir, self.version);
    }
}

impl TaskCgroup {
    /// Kills every process still in the attempt's cgroup; returns how many were alive.
    pub fn empty(&self) -> u32 {
        empty(&self.dir, self.version)
    }
}

impl Drop for TaskCgroup {
    fn drop(&mut self) {
        remove(&self.dir, self.version);
    }
}

/// Kills every process left in the cgroup at `dir` (not its children) and waits, a bounded
/// time, until it is empty. Returns how many live processes it held.
fn empty(dir: &Path, version: Version) -> u32 {
    let members = procs(dir);
    if members.is_empty() {
        return 0;
    }
    let count = u32::try_from(members.len()).unwrap_or(u32::MAX);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_micros(100);
    // v2 kills the whole cgroup at once, forks in flight included; v1 needs rounds of SIGKILL
    // until a round finds nobody (a fork between reading the list and the kill joins the next).
    if version == Version::V2 && fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        while !procs(dir).is_empty() && Instant::now() < deadline {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        return count;
    }
    let mut left = members;
    while !left.is_empty() && Instant::now() < deadline {
        for pid in &left {
            if let Ok(raw) = i32::try_from(*pid) {
                let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
        left = procs(dir);
    }
    count
}

/// `empty` for a cgroup and every cgroup below it.
fn empty_tree(dir: &Path, version: Version) -> u32 {
    let mut killed = empty(dir, version);
    for child in children(dir) {
        killed += empty_tree(&child, version);
    }
    killed
}

fn remove(dir: &Path, version: Version) {
    // A cgroup with processes in it cannot be removed; a leftover that stays is emptied on
    // resume, or left for the system.
    if fs::remove_dir(dir).is_err() {
        empty(dir, version);
        let _ = fs::remove_dir(dir);
    }
}

fn remove_tree(dir: &Path, version: Version) {
    for child in children(dir) {
        remove_tree(&child, version);
    }
    remove(dir, version);
}

/// The live processes in the cgroup at `dir`.
fn procs(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn children(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the empty cgroups that poolruns killed with SIGKILL left in `parent` (named
/// `poolrun-<run id>-<pid>`, that pid gone). Only empty ones: a cgroup with processes in it is
/// left for `--resume` to empty, and the kernel refuses to remove it anyway.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(pid) = name
            .strip_prefix("poolrun-")
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            for child in children(&entry.path()) {
                let _ = fs::remove_dir(child);
            }
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// Where the cgroup v2 hierarchy is mounted, from `/proc/self/mountinfo`.
fn v2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mount = left.split_whitespace().nth(4)?;
        (right.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mount))
    })
}

/// Empties the cgroup at `dir` left by an earlier poolrun (a run killed before it could), if it
/// is still there, and removes it; returns how many processes it killed.
pub(crate) fn empty_leftover(dir: &Path) -> u32 {
    if !dir.join("cgroup.procs").exists() {
        return 0;
    }
    let version = if dir.join("cgroup.kill").exists() || dir.join("cgroup.type").exists() {
        Version::V2
    } else {
        Version::V1
    };
    let killed = empty_tree(dir, version);
    remove_tree(dir, version);
    killed
}
