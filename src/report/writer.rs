//! Streams `report.json`: task rows are written in task order as soon as every earlier task has
//! its row, through a reorder buffer that holds only the outcomes that finished ahead of an
//! earlier task. The file is written under a temporary name and renamed into place when complete,
//! so a reader never sees half a report.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::plan::{Plan, TaskId};
use crate::report::model::{JobRecord, REPORT_SCHEMA, RunRecord, Summary, TaskRecord};
use crate::report::{ReportError, secure};

/// A report being written.
pub struct ReportWriter {
    temp: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    /// The next task id to write.
    next: u64,
    /// Rows that finished before some earlier task.
    waiting: BTreeMap<u64, TaskRecord>,
    summary: Summary,
}

impl ReportWriter {
    /// Starts the report at `path` with its header. `carried` are rows already known (tasks
    /// that succeeded in the run being resumed), written when their turn comes.
    pub fn create(
        path: &Path,
        job: &JobRecord,
        carried: BTreeMap<u64, TaskRecord>,
    ) -> Result<Self, ReportError> {
        remove_leftovers(path);
        let temp = secure::temp_beside(path, "partial");
        let file =
            secure::create_new(&temp).map_err(ReportError::io("create the report", &temp))?;
        let mut writer = Self {
            out: BufWriter::with_capacity(64 * 1024, file),
            temp,
            path: path.to_owned(),
            next: 0,
            waiting: carried,
            summary: Summary::default(),
        };
        let header = format!(
            "{{\n  \"schema\": {},\n  \"job\": {},\n  \"tasks\": [",
            json(&REPORT_SCHEMA),
            json(job)
        );
        writer.write(header.as_bytes())?;
        writer.flush_ready()?;
        Ok(writer)
    }

    /// Adds a task's row; writes it and every waiting row after it once it is next in order.
    pub fn push(&mut self, record: TaskRecord) -> Result<(), ReportError> {
        self.waiting.insert(record.id, record);
        self.flush_ready()
    }

    fn flush_ready(&mut self) -> Result<(), ReportError> {
        while let Some(record) = self.waiting.remove(&self.next) {
            self.write_row(&record)?;
        }
        Ok(())
    }

    /// The counts so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Writes the remaining rows, with a `not_run` row for every task that has none, then the
    /// run record and the summary, and renames the file into place. `interrupted` is polled while
    /// `not_run` rows are written (a halted run of a huge plan has many): when it says so, the
    /// report is abandoned, and the journal still holds all it would have said.
    pub fn finish(
        mut self,
        plan: &Plan,
        run: &RunRecord,
        wall_seconds: f64,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Summary, ReportError> {
        while self.next < plan.len() {
            let record = match self.waiting.remove(&self.next) {
                Some(record) => record,
                None => TaskRecord::not_run(&plan.task(TaskId(self.next))),
            };
            self.write_row(&record)?;
            if self.next.is_multiple_of(4096) && interrupted() {
                return Err(ReportError::Interrupted { path: self.path });
            }
        }
        self.summary.wall_seconds = wall_seconds;
        let footer = format!(
            "\n  ],\n  \"run\": {},\n  \"summary\": {}\n}}\n",
            json(run),
            json(&self.summary)
        );
        self.write(footer.as_bytes())?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| ReportError::io("write the report", &self.temp)(e.into_error()))?;
        file.sync_all()
            .map_err(ReportError::io("sync the report", &self.temp))?;
        fs::rename(&self.temp, &self.path)
            .map_err(ReportError::io("move the report into place at", &self.path))?;
        if let Some(dir) = self.path.parent() {
            // Make the rename itself durable.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(ReportError::io("sync the run directory", dir))?;
        }
        Ok(self.summary)
    }

    fn write_row(&mut self, record: &TaskRecord) -> Result<(), ReportError> {
        let separator = if self.next == 0 { "\n    " } else { ",\n    " };
        self.write(separator.as_bytes())?;
        let row = serde_json::to_vec(record).expect("report rows serialize");
        self.write(&row)?;
        self.summary.count(record.status);
        self.next += 1;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ReportError> {
        self.out
            .write_all(bytes)
            .map_err(ReportError::io("write the report", &self.temp))
    }
}

/// Removes the partial reports that runs which died while writing one left beside `path`: the
/// report is rebuilt whole.
fn remove_leftovers(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&prefix) && file.ends_with(".partial") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("report parts serialize")
}
