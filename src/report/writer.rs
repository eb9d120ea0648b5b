//! Streams `report.json`: task rows are written in task order as soon as every earlier task has
//! its row, through a reorder buffer that holds only the outcomes that finished ahead of an
//! earlier task. The buffer keeps `MEMORY_ROWS` rows in memory and spills the rest to an unnamed
//! file in the run directory, so one slow task never holds up dispatch and never grows poolrun.
//! The file is written under a temporary name and renamed into place when complete, so a reader
//! never sees half a report.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::plan::{Plan, TaskId};
use crate::report::model::{JobRecord, REPORT_SCHEMA, RunRecord, Summary, TaskRecord};
use crate::report::{ReportError, secure};

/// Rows of the reorder buffer kept in memory; the rest go to the spill file.
const MEMORY_ROWS: usize = 4096;

/// A report being written.
pub struct ReportWriter {
    temp: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    /// The next task id to write.
    next: u64,
    /// Rows that finished before some earlier task.
    waiting: BTreeMap<u64, TaskRecord>,
    /// Rows that finished before some earlier task when `waiting` was full.
    spill: Option<Spill>,
    summary: Summary,
    /// Whether an existing report at `path` wins over this one.
    keep_existing: bool,
}

/// Rows waiting on disk: their JSON appended to one unnamed file, and where each is in a second,
/// sparse one (16 bytes at `id * 16`: offset and length), so memory stays flat however many
/// wait.
struct Spill {
    rows: File,
    index: File,
    end: u64,
    /// Rows spilled and not yet written to the report.
    count: u64,
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
            waiting: BTreeMap::new(),
            spill: None,
            summary: Summary::default(),
            keep_existing: false,
        };
        for record in carried.into_values() {
            writer.accept(record)?;
        }
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
        self.accept(record)?;
        self.flush_ready()
    }

    /// Counts a row and puts it in the reorder buffer, in memory or, when that is full, on disk.
    fn accept(&mut self, record: TaskRecord) -> Result<(), ReportError> {
        self.summary.count(record.status);
        if record.id == self.next || self.waiting.len() < MEMORY_ROWS {
            self.waiting.insert(record.id, record);
            return Ok(());
        }
        let spill = match &mut self.spill {
            Some(spill) => spill,
            None => self.spill.insert(
                Spill::create(&self.path)
                    .map_err(ReportError::io("spill rows beside", &self.path))?,
            ),
        };
        spill
            .put(&record)
            .map_err(ReportError::io("spill rows beside", &self.path))
    }

    fn flush_ready(&mut self) -> Result<(), ReportError> {
        loop {
            if let Some(record) = self.waiting.remove(&self.next) {
                let row = serde_json::to_vec(&record).expect("report rows serialize");
                self.write_row(&row)?;
                continue;
            }
            let spilled = match &mut self.spill {
                Some(spill) if spill.count > 0 => spill
                    .take(self.next)
                    .map_err(ReportError::io("read spilled rows beside", &self.path))?,
                _ => None,
            };
            match spilled {
                Some(row) => self.write_row(&row)?,
                None => return Ok(()),
            }
        }
    }

    /// When the report is complete, puts it in place only if no report is there by then (one
    /// written meanwhile by the run itself is the true one): for a rebuilt report.
    pub fn keep_existing(&mut self) {
        self.keep_existing = true;
    }

    /// How many rows are written: those of tasks `0..written()`.
    pub fn written(&self) -> u64 {
        self.next
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
            self.flush_ready()?;
            if self.next >= plan.len() {
                break;
            }
            let record = TaskRecord::not_run(&plan.task(TaskId(self.next)));
            self.summary.count(record.status);
            let row = serde_json::to_vec(&record).expect("report rows serialize");
            self.write_row(&row)?;
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
        if self.keep_existing {
            // A link fails when the name exists: the check and the placing are one step.
            let linked = fs::hard_link(&self.temp, &self.path);
            let _ = fs::remove_file(&self.temp);
            match linked {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                linked => {
                    linked.map_err(ReportError::io("move the report into place at", &self.path))?;
                }
            }
        } else {
            fs::rename(&self.temp, &self.path)
                .map_err(ReportError::io("move the report into place at", &self.path))?;
        }
        if let Some(dir) = self.path.parent() {
            // Make the rename itself durable.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(ReportError::io("sync the run directory", dir))?;
        }
        Ok(self.summary)
    }

    fn write_row(&mut self, row: &[u8]) -> Result<(), ReportError> {
        let separator = if self.next == 0 { "\n    " } else { ",\n    " };
        self.write(separator.as_bytes())?;
        self.write(row)?;
        self.next += 1;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ReportError> {
        self.out
            .write_all(bytes)
            .map_err(ReportError::io("write the report", &self.temp))
    }
}

impl Spill {
    /// Two unnamed files beside `report` (named for a moment, under names nobody can guess).
    fn create(report: &Path) -> std::io::Result<Self> {
        let unnamed = || {
            let path = secure::temp_beside(report, "spill");
            let file = secure::create_new_rw(&path)?;
            fs::remove_file(&path)?;
            Ok::<_, std::io::Error>(file)
        };
        Ok(Self {
            rows: unnamed()?,
            index: unnamed()?,
            end: 0,
            count: 0,
        })
    }

    fn put(&mut self, record: &TaskRecord) -> std::io::Result<()> {
        let row = serde_json::to_vec(record).expect("report rows serialize");
        self.rows.write_all_at(&row, self.end)?;
        let mut entry = [0; 16];
        entry[..8].copy_from_slice(&self.end.to_le_bytes());
        entry[8..].copy_from_slice(&(row.len() as u64).to_le_bytes());
        self.index.write_all_at(&entry, record.id * 16)?;
        self.end += row.len() as u64;
        self.count += 1;
        Ok(())
    }

    /// The row of task `id`, if it was spilled.
    fn take(&mut self, id: u64) -> std::io::Result<Option<Vec<u8>>> {
        let mut entry = [0; 16];
        match self.index.read_exact_at(&mut entry, id * 16) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            result => result?,
        }
        let offset = u64::from_le_bytes(entry[..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(entry[8..].try_into().expect("8 bytes"));
        if len == 0 {
            return Ok(None);
        }
        let mut row = vec![0; usize::try_from(len).map_err(std::io::Error::other)?];
        self.rows.read_exact_at(&mut row, offset)?;
        self.count -= 1;
        Ok(Some(row))
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
        // (`report.json.partial` is what poolrun 0.1 called it.)
        if (file.starts_with(&prefix) && file.ends_with(".partial"))
            || file == format!("{}.partial", name.to_string_lossy())
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("report parts serialize")
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::{MEMORY_ROWS, ReportWriter};
    use crate::exec::TaskStatus;
    use crate::job::{Overrides, parse};
    use crate::plan::{Plan, RunInfo, TaskId};
    use crate::report::model::{JobRecord, RunRecord, RunStatus};
    use crate::report::{Report, TaskRecord};

    #[test]
    fn rows_past_the_memory_buffer_spill_and_come_back_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let n = MEMORY_ROWS as u64 * 3;
        let text = format!("command = \"true\"\n[range]\nstart = 0\nend = {n}\n");
        let job =
            Arc::new(parse(&tmp.path().join("job.toml"), &text, &Overrides::default()).unwrap());
        let plan = Plan::new(
            job,
            RunInfo {
                id: "r".into(),
                dir: tmp.path().into(),
            },
        );
        let path = tmp.path().join("report.json");
        let header = JobRecord {
            name: "job".into(),
            file: "job.toml".into(),
            sha256: String::new(),
            set: Vec::new(),
        };
        let mut writer =
            ReportWriter::create(&path, &header, std::collections::BTreeMap::new()).unwrap();
        // Task 0 last, every other in reverse: all but 4096 rows go to disk; the last one
        // of task 0 lets them all out. Task 1 never finishes: `not_run`.
        for id in (2..n).rev().chain([0]) {
            let mut row = TaskRecord::not_run(&plan.task(TaskId(id)));
            row.status = TaskStatus::Succeeded;
            writer.push(row).unwrap();
        }
        assert!(writer.spill.as_ref().is_some_and(|s| s.count > 0));
        let run = RunRecord {
            id: "r".into(),
            dir: String::new(),
            host: String::new(),
            poolrun_version: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            processes: 1,
            status: RunStatus::Completed,
            backend: "local".to_owned(),
            stop_reason: None,
            leaked: 0,
            provenance: None,
        };
        let summary = writer.finish(&plan, &run, 0.0, &|| false).unwrap();
        assert_eq!((summary.succeeded, summary.not_run), (n - 1, 1));
        let report: Report =
            serde_json::from_str(&std::fs::read_to_string(Path::new(&path)).unwrap()).unwrap();
        let ids: Vec<u64> = report.tasks.iter().map(|t| t.id).collect();
        assert_eq!(ids, (0..n).collect::<Vec<_>>());
        assert_eq!(report.tasks[1].status, TaskStatus::NotRun);
    }
}
