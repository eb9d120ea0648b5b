//! Time the run spent paused (Ctrl-Z), so a paused run does not time its tasks out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Total paused time, including a pause going on now.
#[derive(Debug, Default)]
pub(crate) struct PauseClock {
    state: Mutex<(Duration, Option<Instant>)>,
}

impl PauseClock {
    /// The run is paused from now.
    pub fn pause(&self) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.1.get_or_insert_with(Instant::now);
    }

    /// The run goes on.
    pub fn resume(&self) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(since) = state.1.take() {
            state.0 += since.elapsed();
        }
    }

    /// All paused time so far, and whether the run is paused now.
    pub fn total(&self) -> (Duration, bool) {
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = state.1.map_or(Duration::ZERO, |since| since.elapsed());
        (state.0 + now, state.1.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::PauseClock;

    #[test]
    fn counts_only_paused_time() {
        let clock = PauseClock::default();
        assert_eq!(clock.total(), (std::time::Duration::ZERO, false));
        clock.pause();
        assert!(clock.total().1);
        clock.resume();
        clock.resume();
        assert!(!clock.total().1);
    }
}
