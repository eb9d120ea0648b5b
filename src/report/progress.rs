//! What a person watching a run sees on stderr: the bar that ticks on its own (elapsed,
//! done/total, running, failed, retries waiting, rate, ETA), a line per failure (up to a cap),
//! and what a stop does.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::exec::{Started, StopReason, TaskOutcome, TaskStatus};
use crate::report::Observer;
use crate::report::render::human_duration;

/// Failure lines logged before the rest are left to the report, so cron mail stays short.
const MAX_FAILURE_LINES: u64 = 20;

/// How often the bar redraws when nothing happens.
const TICK: Duration = Duration::from_millis(200);

/// The live counts.
#[derive(Default)]
struct Counts {
    started: AtomicU64,
    ended: AtomicU64,
    failed: AtomicU64,
    /// Tasks done in this session (for the rate).
    done_now: AtomicU64,
    /// Tasks waiting for a retry.
    retrying: Mutex<HashSet<u64>>,
}

impl Counts {
    fn running(&self) -> u64 {
        self.started
            .load(Ordering::Relaxed)
            .saturating_sub(self.ended.load(Ordering::Relaxed))
    }

    fn retrying(&self) -> usize {
        self.retrying
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The bar and the log lines of a run.
pub struct Progress {
    bar: ProgressBar,
    counts: Arc<Counts>,
    failures_logged: AtomicU64,
    quiet: bool,
}

impl Progress {
    /// For a run of `total` tasks of which `done` already have an outcome (a resumed run). The
    /// bar is drawn only on a terminal, and not with `quiet`.
    pub fn new(total: u64, done: u64, quiet: bool) -> Arc<Self> {
        let counts = Arc::new(Counts::default());
        let term = crate::console::QueuedTerm::stderr().filter(|_| !quiet);
        let bar = match term {
            Some(term) => ProgressBar::with_draw_target(
                Some(total),
                ProgressDrawTarget::term_like_with_hz(Box::new(term), 10),
            ),
            None => ProgressBar::hidden(),
        };
        let clock = Instant::now();
        let live = Arc::clone(&counts);
        let elapsed = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&human_duration(clock.elapsed()));
        };
        let status = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&live_status(&live, state, clock.elapsed()));
        };
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_human:>7} [{bar:25}] {pos}/{len} {status}")
        {
            bar.set_style(
                style
                    .with_key("elapsed_human", elapsed)
                    .with_key("status", status)
                    .progress_chars("=> "),
            );
        }
        bar.set_position(done);
        if !bar.is_hidden() {
            bar.enable_steady_tick(TICK);
        }
        Arc::new(Self {
            bar,
            counts,
            failures_logged: AtomicU64::new(0),
            quiet,
        })
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Prints `text` as its own line, above the bar.
    fn say(&self, text: &str) {
        self.bar.suspend(|| crate::console::line(text));
    }
}

/// `3 running · 1 failed · 2 retrying · 12.3/s · ETA 1m 3s`.
fn live_status(counts: &Counts, state: &ProgressState, elapsed: Duration) -> String {
    let mut parts = vec![format!("{} running", counts.running())];
    let failed = counts.failed.load(Ordering::Relaxed);
    if failed > 0 {
        parts.push(format!("{failed} failed"));
    }
    let retrying = counts.retrying();
    if retrying > 0 {
        parts.push(format!("{retrying} retrying"));
    }
    let done = counts.done_now.load(Ordering::Relaxed);
    let seconds = elapsed.as_secs_f64();
    if done > 0 && seconds > 0.0 {
        #[allow(clippy::cast_precision_loss, reason = "a rate for people")]
        let rate = done as f64 / seconds;
        parts.push(if rate >= 10.0 {
            format!("{rate:.0}/s")
        } else {
            format!("{rate:.1}/s")
        });
        let left = state.len().unwrap_or(0).saturating_sub(state.pos());
        if left > 0 {
            #[allow(clippy::cast_precision_loss, reason = "an estimate for people")]
            let eta = Duration::from_secs_f64((left as f64 / rate).min(1e9));
            parts.push(format!("ETA {}", human_duration(eta)));
        }
    }
    parts.join(" · ")
}

impl Observer for Progress {
    fn started(&self, started: &Started) {
        self.counts.started.fetch_add(1, Ordering::Relaxed);
        self.counts
            .retrying
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&started.id.0);
    }

    fn attempt(&self, o: &TaskOutcome, retry: bool) {
        // A task that never started (spawn failures start nothing) still ends an attempt.
        if o.status == TaskStatus::SpawnFailed {
            self.counts.started.fetch_add(1, Ordering::Relaxed);
        }
        self.counts.ended.fetch_add(1, Ordering::Relaxed);
        let id = o.task.id;
        let error = crate::report::render::clean(o.error.as_deref().unwrap_or(""));
        if retry {
            self.counts
                .retrying
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.0);
            tracing::info!(
                "task {id} attempt {} {}: {error}; retrying",
                o.attempt,
                o.status.as_str()
            );
            return;
        }
        self.counts.done_now.fetch_add(1, Ordering::Relaxed);
        self.bar.inc(1);
        if o.status == TaskStatus::Succeeded {
            tracing::info!("task {id} succeeded in {}", human_duration(o.duration));
            return;
        }
        self.counts.failed.fetch_add(1, Ordering::Relaxed);
        let logged = self.failures_logged.fetch_add(1, Ordering::Relaxed) + 1;
        if self.quiet {
            return;
        }
        if logged <= MAX_FAILURE_LINES {
            // Only for the lines printed: past the cap a failure costs nothing here.
            let label = crate::report::render::clean(
                &crate::report::TaskRecord::not_run(&o.task).label(40),
            );
            self.say(&format!(
                "poolrun: task {id} ({label}) {}: {error}",
                o.status.as_str().replace('_', " ")
            ));
        } else if logged == MAX_FAILURE_LINES + 1 {
            self.say("poolrun: more tasks did not succeed; `poolrun report` lists them all");
        }
    }

    fn stopping(&self, reason: StopReason, running: usize, grace: Option<Duration>) {
        let why = match reason {
            StopReason::Signal(signal) => {
                format!("{} received", crate::exec::unix::signal_name(signal))
            }
            StopReason::Halted => "the halt policy stopped the run".to_owned(),
            StopReason::Deadline => "the run's deadline passed".to_owned(),
            StopReason::SinkFailed => "the run could not be recorded".to_owned(),
        };
        let tasks = if running == 1 { "task" } else { "tasks" };
        let what = match grace {
            _ if running == 0 => "no task is running".to_owned(),
            Some(grace) => {
                let mut text = format!(
                    "stopping {running} {tasks} (grace {})",
                    human_duration(grace)
                );
                if matches!(reason, StopReason::Signal(_)) {
                    text.push_str("; Ctrl-C again to kill them now");
                }
                text
            }
            None => format!("no new task starts; waiting for {running} running {tasks}"),
        };
        if !self.quiet || matches!(reason, StopReason::Signal(_)) {
            self.say(&format!("poolrun: {why}: {what}"));
        }
    }
}
