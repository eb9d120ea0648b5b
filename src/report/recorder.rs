//! The engine's `Sink` for a local run: every start and finish goes to the journal, every final
//! outcome to the report, the report rows only once the journal batch holding them is on disk.
//! Observers (the progress bar, the log, live output) are told what happened.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::exec::{Logged, Sink, StartLog, Started, StopReason, TaskOutcome};
use crate::report::journal::{AttemptFinished, AttemptStarted, Journal, Record};
use crate::report::{ReportError, ReportWriter, TaskRecord};

/// Told what happens in a run, from the engine's thread (and `started` from the workers').
pub trait Observer: Send + Sync {
    /// An attempt started.
    fn started(&self, started: &Started) {
        let _ = started;
    }
    /// An attempt finished; `will_retry` says whether another attempt follows.
    fn attempt(&self, outcome: &TaskOutcome, will_retry: bool) {
        let _ = (outcome, will_retry);
    }
    /// The report holds the rows of tasks `0..rows`.
    fn rows_written(&self, rows: u64) {
        let _ = rows;
    }
    /// The run is stopping (see `Sink::stopping`).
    fn stopping(&self, reason: StopReason, running: usize, grace: Option<Duration>) {
        let _ = (reason, running, grace);
    }
}

/// Journal and report writer, driven by the engine.
pub struct Recorder {
    /// The run's journal.
    pub journal: Journal,
    /// The run's report.
    pub writer: ReportWriter,
    /// Rows waiting for the journal commit.
    rows: Vec<TaskRecord>,
    observers: Vec<Arc<dyn Observer>>,
}

impl Recorder {
    /// A recorder writing to `journal` and `writer`, telling `observers`.
    pub fn new(journal: Journal, writer: ReportWriter, observers: Vec<Arc<dyn Observer>>) -> Self {
        for o in &observers {
            o.rows_written(writer.written());
        }
        Self {
            journal,
            writer,
            rows: Vec::new(),
            observers,
        }
    }
}

impl Sink for Recorder {
    type Error = ReportError;

    fn start_log(&self) -> Option<StartLog> {
        let starts = self.journal.starts();
        let observers = self.observers.clone();
        Some(Box::new(move |started: &Started| {
            let first = starts.add(&Record::Started(AttemptStarted::new(started)));
            for o in &observers {
                o.started(started);
            }
            if first { Logged::Wake } else { Logged::Yes }
        }))
    }

    fn started(&mut self, started: &Started) -> Result<(), ReportError> {
        self.journal
            .append(&Record::Started(AttemptStarted::new(started)));
        for o in &self.observers {
            o.started(started);
        }
        Ok(())
    }

    fn attempt_finished(
        &mut self,
        outcome: &TaskOutcome,
        will_retry: bool,
    ) -> Result<(), ReportError> {
        self.journal
            .append(&Record::Finished(AttemptFinished::new(outcome, will_retry)));
        for o in &self.observers {
            o.attempt(outcome, will_retry);
        }
        Ok(())
    }

    fn task_done(&mut self, outcome: TaskOutcome) -> Result<(), ReportError> {
        let finished = AttemptFinished::new(&outcome, false);
        self.rows.push(TaskRecord::finished(
            &outcome.task,
            &finished,
            outcome.stderr_tail,
        ));
        Ok(())
    }

    fn commit(&mut self) -> Result<(), ReportError> {
        self.journal.commit()?;
        if self.rows.is_empty() {
            return Ok(());
        }
        for row in self.rows.drain(..) {
            self.writer.push(row)?;
        }
        for o in &self.observers {
            o.rows_written(self.writer.written());
        }
        Ok(())
    }

    fn sync_due(&self) -> Option<Instant> {
        self.journal.sync_due()
    }

    fn stopping(&mut self, reason: StopReason, running: usize, grace: Option<Duration>) {
        for o in &self.observers {
            o.stopping(reason, running, grace);
        }
    }
}
