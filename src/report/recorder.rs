//! The engine's `Sink` for a local run: every start and finish goes to the journal, every final
//! outcome to the report, the report rows only once the journal batch holding them is on disk.

use std::io::Write;

use crate::exec::{Sink, StartLog, Started, TaskOutcome};
use crate::report::journal::{AttemptFinished, AttemptStarted, Journal, Record};
use crate::report::{ReportError, ReportWriter, TaskRecord};

/// Journal and report writer, driven by the engine.
pub struct Recorder<'a> {
    /// The run's journal.
    pub journal: Journal,
    /// The run's report.
    pub writer: ReportWriter,
    /// Rows waiting for the journal commit.
    rows: Vec<TaskRecord>,
    /// Called with every finished attempt and whether it will be retried (progress, logs).
    on_attempt: AttemptHook<'a>,
}

/// Called with every finished attempt and whether another follows.
type AttemptHook<'a> = Box<dyn FnMut(&TaskOutcome, bool) + 'a>;

impl<'a> Recorder<'a> {
    /// A recorder writing to `journal` and `writer`.
    pub fn new(
        journal: Journal,
        writer: ReportWriter,
        on_attempt: impl FnMut(&TaskOutcome, bool) + 'a,
    ) -> Self {
        Self {
            journal,
            writer,
            rows: Vec::new(),
            on_attempt: Box::new(on_attempt),
        }
    }
}

impl Sink for Recorder<'_> {
    type Error = ReportError;

    fn start_log(&self) -> Option<StartLog> {
        let file = self.journal.append_handle()?;
        Some(Box::new(move |started: &Started| {
            let mut line = serde_json::to_vec(&Record::Started(AttemptStarted::new(started)))
                .expect("records serialize");
            line.push(b'\n');
            // One write on a file opened for appending: never interleaved with the engine's.
            (&file).write_all(&line).is_ok()
        }))
    }

    fn started(&mut self, started: &Started) -> Result<(), ReportError> {
        self.journal
            .append(&Record::Started(AttemptStarted::new(started)));
        Ok(())
    }

    fn attempt_finished(
        &mut self,
        outcome: &TaskOutcome,
        will_retry: bool,
    ) -> Result<(), ReportError> {
        self.journal
            .append(&Record::Finished(AttemptFinished::new(outcome, will_retry)));
        (self.on_attempt)(outcome, will_retry);
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
        for row in self.rows.drain(..) {
            self.writer.push(row)?;
        }
        Ok(())
    }
}
