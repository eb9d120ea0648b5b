//! Waiting for a child with a time limit. On Linux a pidfd becomes readable when the child exits,
//! so one `poll` waits for exactly that child; elsewhere (or on kernels before 5.3)
//! `wait-timeout`, which listens for SIGCHLD and wakes every waiting thread on each one.

use std::io;
use std::os::fd::OwnedFd;
use std::process::{Child, ExitStatus};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

/// A way to wait for one child's exit.
pub(crate) struct ExitWatch {
    pidfd: Option<OwnedFd>,
}

impl ExitWatch {
    /// Watches `child`, which must not have been reaped.
    pub fn new(child: &Child) -> Self {
        Self {
            pidfd: pidfd_open(Pid::from_child(child), PidfdFlags::empty()).ok(),
        }
    }

    /// Waits up to `limit` for the child to exit; reaps it and returns its status if it did.
    pub fn wait(&self, child: &mut Child, limit: Duration) -> io::Result<Option<ExitStatus>> {
        let Some(pidfd) = &self.pidfd else {
            return wait_timeout::ChildExt::wait_timeout(child, limit);
        };
        let timeout = Timespec {
            tv_sec: i64::try_from(limit.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: limit.subsec_nanos().into(),
        };
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            // Interrupted (a signal to poolrun): the caller's loop waits again.
            Ok(_) | Err(rustix::io::Errno::INTR) => child.try_wait(),
            Err(e) => Err(e.into()),
        }
    }
}
