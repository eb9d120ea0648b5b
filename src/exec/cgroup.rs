//! Containment with cgroups (Linux): each worker slot has a cgroup under the run's, and every
//! task the slot runs is in it from its first instruction. Whatever the task starts stays in that
//! cgroup however it leaves the process group (`setsid`, a double fork, `env -i`, `sudo`), so
//! when the attempt ends everything in it is killed and counted, and the slot is empty for the
//! next task. At the end of the run the run's cgroup is emptied the same way.
//!
//! How a task gets into its slot decides what containment costs:
//! - cgroup v1 places threads, not processes: the worker thread itself moves into its slot, and
//!   the task it starts with `posix_spawn` is born there. No per-task cost at all, and no window
//!   in which the task runs outside; so where a v1 hierarchy is mounted (the pids one, which
//!   also enforces `max-processes`) poolrun uses it.
//! - cgroup v2 places whole processes, so the child joins its slot itself between fork and exec,
//!   which costs `posix_spawn`'s speed (a fork instead of a vfork, about 0.2 ms a task). A join
//!   from poolrun's side after the spawn would be cheaper but too late: a shell forks its
//!   background jobs before poolrun gets to move it.
//!
//! Slots are made once per run, not per attempt: a cgroup's `mkdir` and `rmdir` cost more than a
//! task's spawn.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
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

/// The run's cgroup, under which each worker slot gets one of its own.
#[derive(Debug)]
pub(crate) struct RunCgroup {
    dir: PathBuf,
    version: Version,
    /// v1: poolrun's own cgroup, where worker threads return when the run ends.
    home: PathBuf,
    /// Whether slot cgroups have `pids.max`.
    pids: bool,
}

/// A worker slot's cgroup.
#[derive(Debug)]
pub(crate) struct SlotCgroup {
    dir: PathBuf,
    version: Version,
    /// v2: `cgroup.procs`, for the child to open between fork and exec without allocating.
    pub procs: Option<CString>,
    /// `cgroup.procs`, open for reading again and again from offset 0.
    reader: File,
}

impl RunCgroup {
    /// Makes `poolrun-<name>` in poolrun's own cgroup, or `None` where poolrun may make none;
    /// `only` keeps to one version.
    pub fn create(name: &str, only: Option<Version>) -> Option<Self> {
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let dir_name = format!("poolrun-{name}");
        let make = |home: PathBuf, version, pids| {
            remove_stale(&home);
            let dir = home.join(&dir_name);
            fs::create_dir(&dir).ok()?;
            Some(Self {
                dir,
                version,
                home,
                pids,
            })
        };
        let v1 = own.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "pids")
                .then(|| Path::new("/sys/fs/cgroup/pids").join(path.trim_start_matches('/')))
        });
        if only != Some(Version::V2)
            && let Some(cgroup) = v1.and_then(|home| make(home, Version::V1, true))
        {
            return Some(cgroup);
        }
        if only == Some(Version::V1) {
            return None;
        }
        let v2 = v2_mount().and_then(|mount| {
            let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
            Some(mount.join(path.trim_start_matches('/')))
        })?;
        let mut cgroup = make(v2, Version::V2, false)?;
        // The pids controller for the slots, where the parent has it to give.
        cgroup.pids = fs::write(cgroup.dir.join("cgroup.subtree_control"), "+pids").is_ok();
        Some(cgroup)
    }

    /// The cgroup's folder, recorded in the journal: a resumed run empties it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether slot cgroups can enforce `max-processes`.
    pub fn limits_processes(&self) -> bool {
        self.pids
    }

    /// The cgroup of worker slot `index`, allowing each task at most `max` processes when given.
    pub fn slot(&self, index: usize, max: Option<u32>) -> io::Result<SlotCgroup> {
        let dir = self.dir.join(format!("slot-{index}"));
        fs::create_dir(&dir)?;
        if let Some(max) = max.filter(|_| self.pids) {
            // In v1 the worker thread that lives in the slot counts too.
            let max = max.saturating_add(u32::from(self.version == Version::V1));
            fs::write(dir.join("pids.max"), max.to_string())?;
        }
        let path = dir.join("cgroup.procs");
        let reader = File::open(&path)?;
        let procs = match self.version {
            Version::V2 => Some(
                CString::new(path.into_os_string().into_encoded_bytes())
                    .map_err(io::Error::other)?,
            ),
            Version::V1 => None,
        };
        Ok(SlotCgroup {
            dir,
            version: self.version,
            procs,
            reader,
        })
    }

    /// v1: moves the calling worker thread into `slot`, so the tasks it starts are born there.
    pub fn enter(&self, slot: &SlotCgroup) -> io::Result<()> {
        match self.version {
            Version::V1 => move_thread(&slot.dir),
            Version::V2 => Ok(()),
        }
    }

    /// v1: moves the calling worker thread back to poolrun's own cgroup.
    pub fn leave(&self) -> io::Result<()> {
        match self.version {
            Version::V1 => move_thread(&self.home),
            Version::V2 => Ok(()),
        }
    }

    /// Kills everything left in the run's cgroup and its slots; returns how many.
    pub fn empty(&self) -> u32 {
        empty_tree(&self.dir, self.version)
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        remove_tree(&self.dir, self.version);
    }
}

impl SlotCgroup {
    /// Kills every process still in the slot after its task ended (poolrun aside, whose worker
    /// thread lives there in v1); returns how many were alive.
    pub fn empty(&self) -> u32 {
        // The common case, nothing left, costs one read of an open file.
        let mut buf = [0u8; 32];
        match self.reader.read_at(&mut buf, 0) {
            Ok(0) => return 0,
            Ok(n)
                if std::str::from_utf8(&buf[..n])
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    == Some(std::process::id()) =>
            {
                return 0;
            }
            _ => {}
        }
        empty(&self.dir, self.version)
    }
}

/// Writes the calling thread's id into the v1 cgroup at `dir`.
fn move_thread(dir: &Path) -> io::Result<()> {
    let tid = nix::unistd::gettid().as_raw();
    fs::OpenOptions::new()
        .write(true)
        .open(dir.join("tasks"))?
        .write_all(tid.to_string().as_bytes())
}

/// Kills every process left in the cgroup at `dir` (not its children; never poolrun itself) and
/// waits, a bounded time, until it is empty. Returns how many live processes it held.
fn empty(dir: &Path, version: Version) -> u32 {
    let members = procs(dir);
    if members.is_empty() {
        return 0;
    }
    let count = u32::try_from(members.len()).unwrap_or(u32::MAX);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_micros(100);
    let poolrun_inside = fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|text| {
        text.split_whitespace()
            .any(|p| p.parse() == Ok(std::process::id()))
    });
    // v2 kills the whole cgroup at once, forks in flight included; otherwise rounds of SIGKILL
    // until a round finds nobody (a fork between reading the list and the kill joins the next).
    if version == Version::V2 && !poolrun_inside && fs::write(dir.join("cgroup.kill"), "1").is_ok()
    {
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

/// The processes in the cgroup at `dir`, poolrun aside.
fn procs(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .filter(|&p| p != me)
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
    let version = if dir.join("tasks").exists() {
        Version::V1
    } else {
        Version::V2
    };
    let killed = empty_tree(dir, version);
    remove_tree(dir, version);
    killed
}
