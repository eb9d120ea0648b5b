//! Containment with cgroups (Linux): each worker slot has a cgroup under the run's, and every
//! task the slot runs is in it from its first instruction. Whatever the task starts stays in that
//! cgroup however it leaves the process group (`setsid`, a double fork, `env -i`, `sudo`), so
//! when the attempt ends everything in it is killed and counted, and the slot is empty for the
//! next task. At the end of the run the run's cgroup is emptied the same way.
//!
//! How a task gets into its slot decides what containment costs. Best, the worker thread itself
//! lives in its slot, and the task it starts with `posix_spawn` is born there: no per-task cost,
//! and no moment in which the task runs outside. cgroup v2 allows that in a threaded subtree
//! (poolrun moves into the run's cgroup, its workers into their threaded slots); cgroup v1 places
//! threads anyway. Where neither works, the child joins its v2 slot itself between fork and exec,
//! which costs `posix_spawn`'s speed (a fork instead of a vfork, about 0.2 ms a task). A join from
//! poolrun's side after the spawn would be cheaper but too late: a shell forks its background
//! jobs before poolrun gets to move it.
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

/// A kind of cgroup to keep to (`POOLRUN_CGROUPS=v1|v2|v2-join`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V2,
    V1,
    /// v2 without a threaded subtree: each task joins its slot itself.
    V2Join,
}

/// How tasks get into their slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// v2 threaded subtree: worker threads live in their slots (`cgroup.threads`).
    V2Threads,
    /// v1: worker threads live in their slots (`tasks`).
    V1Threads,
    /// v2: each task joins its slot between fork and exec (`cgroup.procs`).
    V2Join,
}

impl Mode {
    /// The file that lists a cgroup's members, and takes a thread or process into it.
    fn members_file(self) -> &'static str {
        match self {
            Self::V2Threads => "cgroup.threads",
            Self::V1Threads => "tasks",
            Self::V2Join => "cgroup.procs",
        }
    }

    /// Whether worker threads live in their slots (and are listed there).
    fn threads(self) -> bool {
        self != Self::V2Join
    }
}

/// The run's cgroup, under which each worker slot gets one of its own.
#[derive(Debug)]
pub(crate) struct RunCgroup {
    dir: PathBuf,
    mode: Mode,
    /// poolrun's own cgroup, where it (v2 threaded) or its workers (v1) return.
    home: PathBuf,
    /// Whether slot cgroups have `pids.max`.
    pids: bool,
}

/// A worker slot's cgroup.
#[derive(Debug)]
pub(crate) struct SlotCgroup {
    dir: PathBuf,
    mode: Mode,
    /// v2 join: `cgroup.procs`, for the child to open between fork and exec without allocating.
    pub procs: Option<CString>,
    /// The members file, open for reading again and again from offset 0.
    reader: File,
}

impl RunCgroup {
    /// Makes `poolrun-<name>` in poolrun's own cgroup, or `None` where poolrun may make none;
    /// `only` keeps to one kind. The cheapest kind wins (threads in their slots, v2 before v1),
    /// but with `need_pids` (`max-processes`) one that can limit processes comes first.
    pub fn create(name: &str, only: Option<Version>, need_pids: bool) -> Option<Self> {
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let dir_name = format!("poolrun-{name}");
        let v1_home = own.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "pids")
                .then(|| Path::new("/sys/fs/cgroup/pids").join(path.trim_start_matches('/')))
        });
        let v2_home = v2_mount().and_then(|mount| {
            let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
            Some(mount.join(path.trim_start_matches('/')))
        });
        let v1 = || {
            let home = v1_home.clone()?;
            remove_stale(&home);
            let dir = home.join(&dir_name);
            fs::create_dir(&dir).ok()?;
            Some(Self {
                dir,
                mode: Mode::V1Threads,
                home,
                pids: true,
            })
        };
        let v2 = match only {
            Some(Version::V1) => None,
            _ => v2_home
                .and_then(|home| Self::create_v2(home, &dir_name, only != Some(Version::V2Join))),
        };
        if only.is_some_and(|v| v != Version::V1) {
            return v2;
        }
        match v2 {
            Some(cgroup) if cgroup.mode == Mode::V2Threads && (cgroup.pids || !need_pids) => {
                Some(cgroup)
            }
            // Joining per task is the dearest way, and a limit needs pids: v1, where there is
            // one, comes first.
            Some(cgroup) if only.is_none() => v1().or(Some(cgroup)),
            Some(cgroup) => Some(cgroup),
            None if only.is_none() || only == Some(Version::V1) => v1(),
            None => None,
        }
    }

    /// The v2 run cgroup in `home`: with `threads`, a threaded subtree with poolrun in it where
    /// the kernel and the hierarchy allow; else one whose slots tasks join themselves.
    fn create_v2(home: PathBuf, dir_name: &str, threads: bool) -> Option<Self> {
        remove_stale(&home);
        let dir = home.join(dir_name);
        fs::create_dir(&dir).ok()?;
        // The pids controller for the slots, where the parent has it to give.
        let pids = fs::write(dir.join("cgroup.subtree_control"), "+pids").is_ok();
        let mut cgroup = Self {
            dir,
            mode: Mode::V2Join,
            home,
            pids,
        };
        let probe = cgroup.dir.join("slot-0");
        let threaded = threads
            && fs::create_dir(&probe).is_ok()
            && fs::write(probe.join("cgroup.type"), "threaded").is_ok()
            && fs::write(
                cgroup.dir.join("cgroup.procs"),
                std::process::id().to_string(),
            )
            .is_ok();
        if threaded {
            cgroup.mode = Mode::V2Threads;
        } else {
            let _ = fs::remove_dir(&probe);
        }
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
        match fs::create_dir(&dir) {
            // slot-0 of a threaded subtree was made to probe for one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && index == 0 => {}
            result => result?,
        }
        if self.mode == Mode::V2Threads {
            fs::write(dir.join("cgroup.type"), "threaded")?;
        }
        if let Some(max) = max.filter(|_| self.pids) {
            // The worker thread that lives in the slot counts too.
            let max = max.saturating_add(u32::from(self.mode.threads()));
            fs::write(dir.join("pids.max"), max.to_string())?;
        }
        let members = dir.join(self.mode.members_file());
        let reader = File::open(&members)?;
        let procs = match self.mode {
            Mode::V2Join => Some(
                CString::new(members.into_os_string().into_encoded_bytes())
                    .map_err(io::Error::other)?,
            ),
            Mode::V1Threads | Mode::V2Threads => None,
        };
        Ok(SlotCgroup {
            dir,
            mode: self.mode,
            procs,
            reader,
        })
    }

    /// Moves the calling worker thread into `slot`, where the cgroup version places threads, so
    /// the tasks it starts are born there.
    pub fn enter(&self, slot: &SlotCgroup) -> io::Result<()> {
        if self.mode.threads() {
            move_thread(&slot.dir.join(self.mode.members_file()))?;
        }
        Ok(())
    }

    /// Moves the calling worker thread out of its slot again.
    pub fn leave(&self) -> io::Result<()> {
        match self.mode {
            Mode::V1Threads => move_thread(&self.home.join("tasks")),
            Mode::V2Threads => move_thread(&self.dir.join("cgroup.threads")),
            Mode::V2Join => Ok(()),
        }
    }

    /// Kills everything left in the run's cgroup and its slots; returns how many.
    pub fn empty(&self) -> u32 {
        empty_tree(&self.dir, self.mode)
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        if self.mode == Mode::V2Threads {
            // Home again, so that the run's cgroup can go.
            let _ = fs::write(
                self.home.join("cgroup.procs"),
                std::process::id().to_string(),
            );
        }
        remove_tree(&self.dir, self.mode);
    }
}

impl SlotCgroup {
    /// Kills every process still in the slot after its task ended (poolrun's worker thread, which
    /// may live there, aside); returns how many were alive.
    pub fn empty(&self) -> u32 {
        // The common case, nothing left, costs one read of an open file: empty, or only the
        // calling worker thread.
        let mut buf = [0u8; 32];
        let me = if self.mode.threads() {
            u32::try_from(nix::unistd::gettid().as_raw()).ok()
        } else {
            Some(std::process::id())
        };
        match self.reader.read_at(&mut buf, 0) {
            Ok(0) => return 0,
            Ok(n)
                if std::str::from_utf8(&buf[..n])
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    == me =>
            {
                return 0;
            }
            _ => {}
        }
        empty(&self.dir, self.mode)
    }
}

/// Moves the calling thread into a cgroup through its members file (`tasks`, `cgroup.threads`).
///
/// It writes `0`, "the writing thread", not its id: the kernel then moves it without taking
/// its lock over every process's threads, whose first taker after an idle spell waits out an
/// RCU grace period (timed from a shell here: 17-21 ms with an id, 2-4 ms with `0`).
fn move_thread(members: &Path) -> io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .open(members)?
        .write_all(b"0")
}

/// Kills every process left in the cgroup at `dir` (not its children; never poolrun itself) and
/// waits, a bounded time, until it is empty. Returns how many live processes it held.
fn empty(dir: &Path, mode: Mode) -> u32 {
    let found = members(dir, mode);
    if found.is_empty() {
        return 0;
    }
    let count = u32::try_from(found.len()).unwrap_or(u32::MAX);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_micros(100);
    // v2 kills a whole cgroup at once, forks in flight included, where poolrun is not in it;
    // otherwise rounds of SIGKILL until a round finds nobody (a fork between reading the list
    // and the kill joins the next).
    if mode == Mode::V2Join && fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        while !members_of(dir, mode).is_empty() && Instant::now() < deadline {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        return count;
    }
    let mut left = found;
    while !left.is_empty() && Instant::now() < deadline {
        for pid in &left {
            if let Ok(raw) = i32::try_from(*pid) {
                let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
        left = members(dir, mode);
    }
    count
}

/// The processes with a thread in the cgroup at `dir`, poolrun aside: one id each (a thread's id
/// stands for its process: SIGKILL to it kills the process).
fn members(dir: &Path, mode: Mode) -> Vec<u32> {
    let ids = members_of(dir, mode);
    if !mode.threads() {
        return ids;
    }
    let mut seen = std::collections::HashSet::new();
    ids.into_iter()
        .filter(|&tid| seen.insert(tgid(tid).unwrap_or(tid)))
        .collect()
}

/// The ids in the cgroup's members file, poolrun's own aside (a thread list needs each thread's
/// process looked up for that; a process list does not).
fn members_of(dir: &Path, mode: Mode) -> Vec<u32> {
    let me = std::process::id();
    fs::read_to_string(dir.join(mode.members_file()))
        .map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .filter(|&id| id != me && !(mode.threads() && tgid(id) == Some(me)))
                .collect()
        })
        .unwrap_or_default()
}

/// The process a thread belongs to.
fn tgid(tid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))?
        .trim()
        .parse()
        .ok()
}

/// `empty` for a cgroup and every cgroup below it.
fn empty_tree(dir: &Path, mode: Mode) -> u32 {
    let mut killed = empty(dir, mode);
    for child in children(dir) {
        killed += empty_tree(&child, mode);
    }
    killed
}

fn remove(dir: &Path, mode: Mode) {
    // A cgroup with processes in it cannot be removed; a leftover that stays is emptied on
    // resume, or left for the system.
    if fs::remove_dir(dir).is_err() {
        empty(dir, mode);
        let _ = fs::remove_dir(dir);
    }
}

fn remove_tree(dir: &Path, mode: Mode) {
    for child in children(dir) {
        remove_tree(&child, mode);
    }
    remove(dir, mode);
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
    // The poolrun that made it is gone: every member is a leftover, listed by thread (which
    // also reads a threaded v2 subtree, whose `cgroup.procs` cannot be read).
    let mode = if dir.join("tasks").exists() {
        Mode::V1Threads
    } else {
        Mode::V2Threads
    };
    let killed = empty_tree(dir, mode);
    remove_tree(dir, mode);
    killed
}
