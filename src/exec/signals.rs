//! Signals to poolrun, forwarded to the dispatch loop as events.

use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGTERM, SIGTSTP};
use signal_hook::iterator::{Handle, Signals};

use crate::exec::ExecError;

/// The signals poolrun acts on while a run goes.
pub(crate) const HANDLED: [i32; 5] = [SIGINT, SIGTERM, SIGHUP, SIGTSTP, SIGCONT];

/// A thread that turns signals into events until it is closed.
pub(crate) struct Forwarder {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Starts forwarding each handled signal as `wrap(signal)` on `tx`.
    pub fn start<E: Send + 'static>(tx: Sender<E>, wrap: fn(i32) -> E) -> Result<Self, ExecError> {
        let mut signals = Signals::new(HANDLED).map_err(ExecError::Signals)?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("poolrun-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if tx.send(wrap(signal)).is_err() {
                        break;
                    }
                }
            })
            .map_err(ExecError::Signals)?;
        Ok(Self {
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for Forwarder {
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

/// Notes SIGINT, SIGTERM and SIGHUP while poolrun finishes a run, after the pool stopped
/// forwarding them; without it they would be ignored.
pub struct Interrupt {
    seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ids: Vec<signal_hook::SigId>,
}

impl Interrupt {
    /// Starts noting the signals.
    pub fn watch() -> Result<Self, ExecError> {
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut ids = Vec::new();
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            let id = signal_hook::flag::register_usize(
                signal,
                std::sync::Arc::clone(&seen),
                usize::try_from(signal).unwrap_or(1),
            )
            .map_err(ExecError::Signals)?;
            ids.push(id);
        }
        Ok(Self { seen, ids })
    }

    /// The last signal seen, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.seen.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            n => i32::try_from(n).ok(),
        }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
