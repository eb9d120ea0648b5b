//! What a run directory's journal says happened: the state a resumed run starts from and a lost
//! report is rebuilt from. Tasks are matched by their resume key, not their id.

use std::collections::HashMap;

use crate::report::journal::{
    self, AttemptFinished, AttemptStarted, Record, RunFinished, RunStarted,
};
use crate::report::{ReportError, RunDir};

/// The journal, folded.
#[derive(Debug, Default)]
pub struct RunState {
    /// The first `run_started`: the run's id and original start.
    pub first: Option<RunStarted>,
    /// The latest `run_started`: the job file and plan the journal's last records belong to.
    pub last: Option<RunStarted>,
    /// The latest finished attempt of each key.
    pub finished: HashMap<String, AttemptFinished>,
    /// Attempts that started and never finished, by key.
    pub open: HashMap<String, AttemptStarted>,
    /// The highest attempt number seen for each key.
    pub attempts: HashMap<String, u32>,
    /// The latest `run_finished`, if the last run ended properly.
    pub ended: Option<RunFinished>,
    /// The time of the latest record.
    pub last_at: Option<String>,
    /// What identifies each session's processes, oldest first.
    pub identities: Vec<crate::exec::Identity>,
    /// Seconds that the sessions before the latest one ran, each from its `run_started` to its
    /// last record.
    earlier_seconds: f64,
}

impl RunState {
    /// Reads and folds the journal of the run directory `dir`, one record at a time.
    pub fn read(dir: &RunDir) -> Result<Self, ReportError> {
        let mut state = Self::default();
        journal::each(&dir.journal_path(), &mut |record| {
            state.apply(record);
            Ok(())
        })?
        .expect("folding a record cannot fail");
        Ok(state)
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::RunStarted(r) => {
                self.earlier_seconds = self.seconds();
                self.identities.push(r.identity());
                self.last_at = Some(r.at.clone());
                self.first.get_or_insert_with(|| r.clone());
                self.last = Some(r);
                self.ended = None;
                // Attempts a killed engine left open were stopped with it.
                self.open.clear();
            }
            Record::Started(s) => {
                self.last_at = Some(s.at.clone());
                self.bump(&s.key, s.attempt);
                self.open.insert(s.key.clone(), s);
            }
            Record::Finished(f) => {
                self.last_at = Some(f.at.clone());
                self.bump(&f.key, f.attempt);
                self.open.remove(&f.key);
                self.finished.insert(f.key.clone(), f);
            }
            Record::RunFinished(r) => {
                self.last_at = Some(r.at.clone());
                self.ended = Some(r);
            }
        }
    }

    fn bump(&mut self, key: &str, attempt: u32) {
        let seen = self.attempts.entry(key.to_owned()).or_default();
        *seen = (*seen).max(attempt);
    }

    /// Seconds the run has been running, over every session the journal records: a resumed run's
    /// `wall_seconds` counts each session, not the time between them.
    pub fn seconds(&self) -> f64 {
        let latest = match (&self.last, &self.last_at) {
            (Some(start), Some(end)) => seconds_between(&start.at, end),
            _ => 0.0,
        };
        self.earlier_seconds + latest
    }

    /// Seconds a run still going has run until now, over every session.
    pub fn seconds_until_now(&self) -> f64 {
        let now = crate::report::model::timestamp(std::time::SystemTime::now());
        let latest = self
            .last
            .as_ref()
            .map_or(0.0, |start| seconds_between(&start.at, &now));
        self.earlier_seconds + latest
    }

    /// Whether the task with `key` has a successful outcome.
    pub fn succeeded(&self, key: &str) -> bool {
        self.finished
            .get(key)
            .is_some_and(|f| f.status == crate::exec::TaskStatus::Succeeded)
    }
}

/// Seconds from one RFC 3339 time to a later one; 0 when either does not parse.
fn seconds_between(from: &str, to: &str) -> f64 {
    match (humantime::parse_rfc3339(from), humantime::parse_rfc3339(to)) {
        (Ok(a), Ok(b)) => b.duration_since(a).map_or(0.0, |d| d.as_secs_f64()),
        _ => 0.0,
    }
}
