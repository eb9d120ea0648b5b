//! The OS-specific part of execution: process groups, their signals, and the processes a task
//! leaves behind.
//!
//! Every task is the leader of its own process group, so one `killpg` reaches the task and every
//! descendant that did not leave the group, and a Ctrl-C at the terminal (sent to poolrun's
//! foreground group) never reaches the tasks directly: poolrun decides what they get.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::errno::Errno;
pub use nix::sys::signal::Signal as UnixSignal;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::exec::local::procfs;

/// What the child sets up for itself before it runs the command.
#[derive(Debug, Default)]
pub struct ChildSetup {
    /// `RLIMIT_AS`, in bytes.
    pub memory_limit: Option<u64>,
    /// `RLIMIT_NPROC`, where no cgroup enforces the process limit.
    pub nproc_limit: Option<u32>,
    /// A cgroup's `cgroup.procs` to join.
    pub cgroup_procs: Option<std::ffi::CString>,
}

/// Sends `signal` to the group led by `pgid`; false when the group no longer exists.
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    killpg(Pid::from_raw(pgid), signal) != Err(Errno::ESRCH)
}

/// Whether any process is still in the group led by `pgid`, once the dead ones that are ours to
/// reap are reaped (a zombie still counts as a member until its parent reaps it).
pub fn group_alive(pgid: u32) -> bool {
    let Ok(raw) = i32::try_from(pgid) else {
        return false;
    };
    reap_group(pgid);
    killpg(Pid::from_raw(raw), None) != Err(Errno::ESRCH)
}

/// Reaps every exited process of the group led by `pgid` that is poolrun's child: as a subreaper,
/// poolrun inherits a task's orphaned descendants. Call it only once the group's leader has been
/// reaped, so it cannot take the leader's status from its worker.
pub fn reap_group(pgid: u32) {
    let Ok(raw) = i32::try_from(pgid) else { return };
    while let Ok(status) = waitpid(Pid::from_raw(-raw), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Kills whatever is left of the group led by `pgid` after its leader was reaped, and waits (a
/// bounded time) until it is gone. Returns how many live processes were left.
pub fn kill_leftovers(pgid: u32) -> u32 {
    if !group_alive(pgid) {
        return 0;
    }
    let left = u32::try_from(procfs::group_members(pgid).len()).unwrap_or(u32::MAX);
    signal_group(pgid, Signal::SIGKILL);
    wait_gone(|| group_alive(pgid));
    left
}

/// Kills the processes that left a task's process group (`setsid`, a double fork) and were
/// handed to poolrun as their subreaper: poolrun's children that are not a running task's leader
/// and carry every one of `marks` in their environment (`NAME=value`: the run's token and the
/// task's `POOLRUN_TASK_ID`; without cgroups, the only way to
/// tell whose they are while other tasks run; the sweep at the end of the run takes the rest).
/// Returns how many it killed.
pub fn kill_escapees(marks: &[&str], is_task_leader: impl Fn(u32) -> bool) -> u32 {
    let mut killed = 0;
    // One pass over the adopted children: kill this task's escapees, and reap the ones that
    // already exited (never a task's leader, whose status belongs to its worker).
    for pid in procfs::orphans_adopted() {
        let Some(stat) = procfs::stat(pid).filter(|_| !is_task_leader(pid)) else {
            continue;
        };
        if !stat.live() {
            if stat.pgrp != pid
                && let Ok(raw) = i32::try_from(pid)
            {
                let _ = waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG));
            }
        } else if procfs::environ_has(pid, marks) {
            killed += kill_tree(pid);
        }
    }
    killed
}

/// Kills every process whose environment holds one of `marks` (`NAME=value`): what a run
/// killed with SIGKILL left running. Returns how many there were.
pub fn kill_marked(marks: &[String]) -> u32 {
    let me = std::process::id();
    let mut killed = 0;
    for pid in procfs::all_pids() {
        if pid != me
            && procfs::stat(pid).is_some_and(|s| s.live())
            && marks.iter().any(|m| procfs::environ_has(pid, &[m]))
        {
            killed += kill_tree(pid);
        }
    }
    killed
}

/// SIGKILL to one process, and a reap should it be poolrun's child.
pub fn kill_process(pid: u32) {
    let Ok(raw) = i32::try_from(pid) else { return };
    let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
    let _ = waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG));
}

/// SIGKILL to `pid`'s process group when it leads one, else to `pid`; waits until it is gone.
fn kill_tree(pid: u32) -> u32 {
    let Ok(raw) = i32::try_from(pid) else {
        return 0;
    };
    let leads_group = procfs::stat(pid).is_some_and(|s| s.pgrp == pid);
    let members = if leads_group {
        procfs::group_members(pid).len().max(1)
    } else {
        1
    };
    if leads_group {
        signal_group(pid, Signal::SIGKILL);
    }
    let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
    wait_gone(|| {
        let _ = waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG));
        procfs::stat(pid).is_some_and(|s| s.live())
    });
    u32::try_from(members).unwrap_or(u32::MAX)
}

/// Polls `alive` with a short backoff for up to a second: SIGKILL is quick but not instant.
fn wait_gone(mut alive: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut pause = Duration::from_micros(100);
    while alive() && Instant::now() < deadline {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Makes poolrun the reaper of its tasks' orphaned descendants (Linux), so that they stay
/// reachable: their exit is seen and reaped here rather than by an init that may be slow to.
pub fn become_subreaper() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::debug!("cannot become a child subreaper: {e}");
    }
}

/// Waits for the child `pid` to exit, reaps it and returns how it ended.
pub fn wait(pid: u32) -> io::Result<ExitStatus> {
    loop {
        if let Some(status) = wait_for(pid, None)? {
            return Ok(status);
        }
    }
}

/// Reaps the child `pid` if it has exited, and returns how it ended.
pub fn try_wait(pid: u32) -> io::Result<Option<ExitStatus>> {
    wait_for(pid, Some(WaitPidFlag::WNOHANG))
}

fn wait_for(pid: u32, flags: Option<WaitPidFlag>) -> io::Result<Option<ExitStatus>> {
    let raw = i32::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    match waitpid(Pid::from_raw(raw), flags) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(ExitStatus::from_raw((code & 0xff) << 8))),
        Ok(WaitStatus::Signaled(_, signal, core)) => Ok(Some(ExitStatus::from_raw(
            signal as i32 | if core { 0x80 } else { 0 },
        ))),
        Ok(_) | Err(Errno::EINTR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Waits for the child `pid` to exit and reaps it (for a child whose status nobody needs).
pub fn reap(pid: u32) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = waitpid(Pid::from_raw(raw), None);
    }
}

/// Reaps every exited child that is left; call it only when no task is running.
pub fn reap_orphans() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// The exit code and the signal that ended a process.
pub fn status_parts(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    (status.code(), status.signal())
}

/// A signal's name, `SIGTERM`, or its number when it has none.
pub fn signal_name(signal: i32) -> String {
    Signal::try_from(signal).map_or_else(|_| signal.to_string(), |s| s.as_str().to_owned())
}
