//! Signals to poolrun, from the moment `run` starts until it exits.
//!
//! The handlers are installed before poolrun creates anything on disk, so no signal ever finds
//! the default action (death, with a half-made run directory). Outside the pool a signal is noted
//! for the caller to act on; while the pool runs, it is forwarded to the engine as an event.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGTERM, SIGTSTP};
use signal_hook::iterator::{Handle, Signals};

use crate::exec::ExecError;

/// The signals poolrun acts on.
pub(crate) const HANDLED: [i32; 5] = [SIGINT, SIGTERM, SIGHUP, SIGTSTP, SIGCONT];

/// Where a signal goes: forwarded to the engine while one runs.
type Forward = Box<dyn Fn(i32) -> bool + Send>;

#[derive(Default)]
struct Shared {
    forward: Mutex<Option<Forward>>,
    /// Signals noted while nothing was forwarding them, not yet taken by an engine.
    early: Mutex<Vec<i32>>,
    /// Stop signals (INT, TERM, HUP) noted outside the pool, and the last of them.
    noted: AtomicUsize,
    last: AtomicI32,
}

/// Installed handlers and the thread that receives their signals.
pub struct SignalWatch {
    shared: Arc<Shared>,
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalWatch {
    /// Installs the handlers; call it before anything else a run does.
    pub fn install() -> Result<Self, ExecError> {
        let mut signals = Signals::new(HANDLED).map_err(ExecError::Signals)?;
        let handle = signals.handle();
        let shared = Arc::new(Shared::default());
        let inner = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("poolrun-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    inner.deliver(signal);
                }
            })
            .map_err(ExecError::Signals)?;
        Ok(Self {
            shared,
            handle,
            thread: Some(thread),
        })
    }

    /// From now on forwards every signal through `forward`; returns the stop signals noted
    /// before (and not yet taken), which the caller acts on first.
    pub(crate) fn forward(&self, forward: Forward) -> Vec<i32> {
        let mut slot = self
            .shared
            .forward
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = Some(forward);
        std::mem::take(
            &mut *self
                .shared
                .early
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Stops forwarding: signals are noted again.
    pub(crate) fn stop_forwarding(&self) {
        *self
            .shared
            .forward
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The last stop signal noted outside the pool, if any.
    pub fn last(&self) -> Option<i32> {
        match self.shared.last.load(Ordering::Acquire) {
            0 => None,
            n => Some(n),
        }
    }

    /// How many stop signals were noted outside the pool so far.
    pub fn count(&self) -> usize {
        self.shared.noted.load(Ordering::Acquire)
    }
}

impl Shared {
    fn deliver(&self, signal: i32) {
        let forward = self.forward.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(forward) = forward.as_ref()
            && forward(signal)
        {
            return;
        }
        drop(forward);
        match signal {
            // Nothing runs that needs pausing first: stop as Ctrl-Z would without a handler.
            SIGTSTP => stop_self(),
            SIGCONT => {}
            _ => {
                self.early
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(signal);
                self.last.store(signal, Ordering::Release);
                self.noted.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Stops poolrun itself as Ctrl-Z would have without a handler.
pub(crate) fn stop_self() {
    let _ = signal_hook::low_level::emulate_default_handler(SIGTSTP);
}
