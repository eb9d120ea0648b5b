//! A look at a run: its saved `report.json`, or, for a run still going (or one whose engine died
//! before writing its report), its journal read against its plan. Either way the rows come in
//! task order, one at a time.

use crate::exec::TaskStatus;
use crate::plan::Plan;
use crate::report::session::{job_record, journal_row, journal_run};
use crate::report::{
    JobRecord, REPORT_SCHEMA, ReportError, RunDir, RunRecord, RunState, Summary, TaskRecord, read,
};

/// What is known of the run before its rows: what exporters write first.
#[derive(Debug, Clone)]
pub struct Head {
    /// The report's schema.
    pub schema: String,
    /// The job.
    pub job: JobRecord,
    /// The run.
    pub run: RunRecord,
    /// Counts of the rows that will be exported (all the run's, unless filtered).
    pub summary: Summary,
    /// The run directory.
    pub dir: RunDir,
    /// Whether rows are filtered (then `summary` counts only those exported).
    pub filtered: bool,
}

/// Which tasks to show.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    /// Only tasks that ran and did not succeed.
    pub failed: bool,
    /// Only this task.
    pub task: Option<u64>,
}

impl Filter {
    /// Whether it keeps every row.
    pub fn is_all(&self) -> bool {
        !self.failed && self.task.is_none()
    }

    /// Whether `row` is kept.
    pub fn keeps(&self, row: &TaskRecord) -> bool {
        self.task.is_none_or(|id| row.id == id) && (!self.failed || is_failure(row.status))
    }
}

/// A status of a task that ran and did not succeed.
pub fn is_failure(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::SpawnFailed | TaskStatus::Cancelled
    )
}

/// Where a view's rows come from.
enum Rows<'a> {
    /// `report.json`.
    Saved,
    /// The journal, against the run's plan.
    Journal { plan: &'a Plan, state: &'a RunState },
}

/// A run to show.
pub struct View<'a> {
    /// The run directory.
    pub dir: RunDir,
    rows: Rows<'a>,
}

impl<'a> View<'a> {
    /// A run with its report written.
    pub fn saved(dir: RunDir) -> Self {
        Self {
            dir,
            rows: Rows::Saved,
        }
    }

    /// A run still going, read from its journal (`state`) against its `plan`.
    pub fn live(dir: RunDir, plan: &'a Plan, state: &'a RunState) -> Self {
        Self {
            dir,
            rows: Rows::Journal { plan, state },
        }
    }

    /// Whether the rows come from `report.json`.
    pub fn is_saved(&self) -> bool {
        matches!(self.rows, Rows::Saved)
    }

    /// The run, and the counts of the rows `filter` keeps.
    pub fn head(&self, filter: Filter) -> Result<Head, ReportError> {
        let (schema, job, run, summary) = match &self.rows {
            Rows::Saved => {
                let head = read::read_head(&self.dir)?;
                (head.schema, head.job, head.run, head.summary)
            }
            Rows::Journal { plan, state } => {
                let run = journal_run(&self.dir, state, true).ok_or_else(|| {
                    ReportError::unreadable(self.dir.journal_path())(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the journal records no run",
                    ))
                })?;
                let summary = Summary {
                    wall_seconds: state.seconds_until_now(),
                    ..Summary::default()
                };
                (
                    REPORT_SCHEMA.to_owned(),
                    job_record(plan.job()),
                    run,
                    summary,
                )
            }
        };
        let mut head = Head {
            schema,
            job,
            run,
            summary,
            dir: self.dir.clone(),
            filtered: !filter.is_all(),
        };
        if head.filtered || !self.is_saved() {
            let mut counted = Summary {
                wall_seconds: head.summary.wall_seconds,
                ..Summary::default()
            };
            self.each(&mut |row| {
                if filter.keeps(&row) {
                    counted.count(row.status);
                }
                Ok(())
            })?
            .expect("counting cannot fail");
            head.summary = counted;
        }
        Ok(head)
    }

    /// Calls `f` with each row in task order. The outer error says the run could not be read;
    /// the inner one is `f`'s, which stops the rows.
    pub fn each(
        &self,
        f: &mut dyn FnMut(TaskRecord) -> std::io::Result<()>,
    ) -> Result<std::io::Result<()>, ReportError> {
        match &self.rows {
            Rows::Saved => read::each_row(&self.dir, f),
            Rows::Journal { plan, state } => {
                for task in plan.tasks() {
                    if let Err(e) = f(journal_row(&task, state, &self.dir, true)) {
                        return Ok(Err(e));
                    }
                }
                Ok(Ok(()))
            }
        }
    }
}
