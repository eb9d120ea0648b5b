//! `poolrun report --format`: one file per format behind one trait. Rows are streamed in task
//! order from `report.json` (or, for a run still going, from its journal), so a report of
//! millions of tasks exports in bounded memory.

mod csv;
mod html;
mod joblog;
mod json;
mod junit;
mod table;

use std::io::{self, Write};

use clap::ValueEnum;

use crate::report::view::{Filter, Head, View};
use crate::report::{ReportError, RunRecord, Summary, TaskRecord};

pub use table::task_detail;

/// The formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: the run, its counts, one line per task that did not succeed.
    Table,
    /// The report as `report.json` holds it.
    Json,
    /// One JSON object per task, one per line.
    Jsonl,
    /// One row per task, RFC 4180, with a header row of the task fields.
    Csv,
    /// JUnit XML: a testsuite for the job, a testcase per task.
    Junit,
    /// GNU parallel's `--joblog` (tab-separated), for the tasks that ran.
    Joblog,
    /// One self-contained HTML page: summary, timeline, failed tasks.
    Html,
}

/// One format's writer: `begin`, then `row` for each exported task in task order, then `end`.
pub trait Exporter {
    /// Writes what comes before the rows.
    fn begin(&mut self, head: &Head, out: &mut dyn Write) -> io::Result<()>;
    /// Writes one task.
    fn row(&mut self, row: &TaskRecord, out: &mut dyn Write) -> io::Result<()>;
    /// Writes what comes after the rows.
    fn end(&mut self, head: &Head, out: &mut dyn Write) -> io::Result<()>;
}

/// The exporter of `format`.
pub fn exporter(format: Format) -> Box<dyn Exporter> {
    match format {
        Format::Table => Box::new(table::Table::default()),
        Format::Json => Box::new(json::Json::default()),
        Format::Jsonl => Box::new(json::Jsonl),
        Format::Csv => Box::new(csv::Csv),
        Format::Junit => Box::new(junit::Junit::default()),
        Format::Joblog => Box::new(joblog::Joblog),
        Format::Html => Box::new(html::Html::default()),
    }
}

/// Writes the rows of `view` that `filter` keeps to `out` as `format`; returns their counts
/// (`None` when they were not counted). A reader that went away (a closed pipe) ends the export
/// quietly.
pub fn export(
    view: &View<'_>,
    format: Format,
    filter: Filter,
    out: &mut dyn Write,
) -> Result<Option<Summary>, ReportError> {
    let mut summary = None;
    let written = (|| {
        if format == Format::Json && filter.is_all() && view.is_saved() {
            // The file as it is, byte for byte.
            let mut file = std::fs::File::open(view.dir.report_path())
                .map_err(ReportError::unreadable(view.dir.report_path()))?;
            return Ok(io::copy(&mut file, out).map(drop));
        }
        let head = view.head(filter)?;
        let mut exporter = exporter(format);
        exporter.begin(&head, out)?;
        if let Err(e) = view.each(&mut |row| {
            if filter.keeps(&row) {
                exporter.row(&row, out)?;
            }
            Ok(())
        })? {
            return Ok(Err(e));
        }
        exporter.end(&head, out)?;
        summary = Some(head.summary);
        Ok::<_, ExportError>(out.flush())
    })();
    let io_error = match written {
        Ok(Ok(())) => return Ok(summary),
        Ok(Err(e)) | Err(ExportError::Io(e)) => e,
        Err(ExportError::Report(e)) => return Err(e),
    };
    if io_error.kind() == io::ErrorKind::BrokenPipe {
        return Ok(None);
    }
    Err(ReportError::io("write the report to", "stdout")(io_error))
}

/// Reading the run or writing the export failed.
enum ExportError {
    Report(ReportError),
    Io(io::Error),
}

impl From<ReportError> for ExportError {
    fn from(e: ReportError) -> Self {
        Self::Report(e)
    }
}

impl From<io::Error> for ExportError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Text of a run's status: `interrupted (SIGINT)`.
pub fn status_text(run: &RunRecord) -> String {
    match &run.stop_reason {
        Some(reason) => format!("{} ({reason})", run.status.as_str()),
        None => run.status.as_str().to_owned(),
    }
}

/// A task's command as one line: the script of `sh -c SCRIPT`, else the words shell-quoted.
pub fn command_line(command: &[String]) -> String {
    match command {
        [sh, c, script] if sh == "/bin/sh" && c == "-c" => script.clone(),
        words => words
            .iter()
            .map(|w| crate::report::render::shell_quote(w))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Seconds since the Unix epoch of an RFC 3339 time.
pub fn epoch_seconds(at: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339_weak(at).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64())
}
