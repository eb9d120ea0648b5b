//! Waiting for a child with a time limit. On Linux a pidfd becomes readable when the child exits,
//! so one `poll` waits for exactly that child; elsewhere (or on kernels before 5.3) the wait
//! checks back on the child, at most 20 ms apart.

use std::io;
use std::os::fd::OwnedFd;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

use crate::exec::local::unix;

/// A way to wait for one child's exit.
pub(crate) struct ExitWatch {
    pid: u32,
    pidfd: Option<OwnedFd>,
}

impl ExitWatch {
    /// Watches the child `pid`, which must not have been reaped.
    pub fn new(pid: u32) -> Self {
        let pidfd = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok());
        Self { pid, pidfd }
    }

    /// Waits up to `limit` for the child to exit; reaps it and returns its status if it did.
    pub fn wait(&self, limit: Duration) -> io::Result<Option<ExitStatus>> {
        let Some(pidfd) = &self.pidfd else {
            return self.check_back(limit);
        };
        let timeout = Timespec {
            tv_sec: i64::try_from(limit.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: limit.subsec_nanos().into(),
        };
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            // Interrupted (a signal to poolrun): the caller's loop waits again.
            Ok(_) | Err(rustix::io::Errno::INTR) => unix::try_wait(self.pid),
            Err(e) => Err(e.into()),
        }
    }

    /// Without a pidfd: checks on the child until it exits or `limit` is over, backing off
    /// from 1 ms to 20 ms.
    fn check_back(&self, limit: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = unix::try_wait(self.pid)? {
                return Ok(Some(status));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}
