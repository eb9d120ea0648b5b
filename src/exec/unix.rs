//! The OS-specific part of execution: process groups and their signals.
//!
//! Every task is the leader of its own process group, so one `killpg` reaches the task and every
//! descendant that did not leave the group, and a Ctrl-C at the terminal (sent to poolrun's
//! foreground group) never reaches the tasks directly: poolrun decides what they get.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use nix::errno::Errno;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Makes the command's process the leader of a new process group.
pub fn new_process_group(command: &mut Command) {
    command.process_group(0);
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
/// reaped, so it cannot take the leader's status from its `Child`.
pub fn reap_group(pgid: u32) {
    let Ok(raw) = i32::try_from(pgid) else { return };
    while let Ok(status) = waitpid(Pid::from_raw(-raw), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Kills whatever is left of the group led by `pgid` after its leader was reaped, and waits (a
/// bounded time) until it is gone. Returns whether anything was left.
pub fn kill_leftovers(pgid: u32) -> bool {
    if !group_alive(pgid) {
        return false;
    }
    signal_group(pgid, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut pause = Duration::from_micros(100);
    while group_alive(pgid) && Instant::now() < deadline {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    true
}

/// Makes poolrun the reaper of its tasks' orphaned descendants (Linux), so that they stay
/// reachable: their exit is seen and reaped here rather than by an init that may be slow to.
pub fn become_subreaper() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::debug!("cannot become a child subreaper: {e}");
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

pub use nix::sys::signal::Signal as UnixSignal;
