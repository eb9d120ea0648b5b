//! `--format html`: one self-contained page (no network fetch) with the run's summary, a
//! timeline of every attempt (one lane per process slot, drawn on a canvas so 100,000 attempts
//! stay usable) and the failed tasks with their stderr tails. The page is `report.html` with
//! the data, a JSON object, put in place of its marker; attempts come from the journal, failed
//! tasks from the rows, and both are streamed, so the page of a huge run is written in bounded
//! memory.

use std::collections::HashMap;
use std::io::{self, Write};

use crate::exec::TaskStatus;
use crate::report::export::{Exporter, command_line, epoch_seconds};
use crate::report::journal::{self, Record};
use crate::report::view::Head;
use crate::report::view::is_failure;
use crate::report::{RunStatus, TaskRecord};

/// The page, with `{{POOLRUN_DATA}}` where the data goes.
const TEMPLATE: &str = include_str!("report.html");
const MARKER: &str = "{{POOLRUN_DATA}}";

/// Failed tasks shown with their stderr on the page; the rest are counted.
const MAX_FAILED: u64 = 500;

/// The HTML writer.
#[derive(Default)]
pub struct Html {
    failed: u64,
}

impl Exporter for Html {
    fn begin(&mut self, head: &Head, out: &mut dyn Write) -> io::Result<()> {
        let (before, _) = TEMPLATE
            .split_once(MARKER)
            .expect("the template has its marker");
        out.write_all(before.as_bytes())?;
        let mut data = NoLt(out);
        let t0 = head.run.started_at.as_str();
        let t0_ms = epoch_seconds(t0).map_or(0.0, |s| (s * 1000.0).round());
        let run = serde_json::json!({
            "id": head.run.id,
            "status": head.run.status.as_str(),
            "stop_reason": head.run.stop_reason,
            "host": head.run.host,
            "started_at": head.run.started_at,
            "finished_at": head.run.finished_at,
            "processes": head.run.processes,
            "dir": head.run.dir,
        });
        write!(
            data,
            "{{\"job\":{},\"run\":{},\"summary\":{},\"t0\":{t0_ms},\"attempts\":[",
            json(&serde_json::json!({"name": head.job.name, "file": head.job.file}))?,
            json(&run)?,
            json(&head.summary)?
        )?;
        attempts(head, t0_ms, &mut data)?;
        data.write_all(b"],\"failed\":[")
    }

    fn row(&mut self, row: &TaskRecord, out: &mut dyn Write) -> io::Result<()> {
        if !is_failure(row.status) {
            return Ok(());
        }
        self.failed += 1;
        if self.failed > MAX_FAILED {
            return Ok(());
        }
        let failed = serde_json::json!({
            "id": row.id,
            "label": row.label(80),
            "status": row.status.as_str(),
            "exit_code": row.exit_code,
            "signal": row.signal,
            "error": row.error,
            "command": command_line(&row.command),
            "attempts": row.attempts,
            "stderr_tail": row.stderr_tail,
        });
        let mut data = NoLt(out);
        if self.failed > 1 {
            data.write_all(b",")?;
        }
        data.write_all(json(&failed)?.as_bytes())
    }

    fn end(&mut self, _: &Head, out: &mut dyn Write) -> io::Result<()> {
        write!(NoLt(&mut *out), "],\"failed_total\":{}}}", self.failed)?;
        let (_, after) = TEMPLATE
            .split_once(MARKER)
            .expect("the template has its marker");
        out.write_all(after.as_bytes())
    }
}

/// Writes `[task, attempt, status, start_ms, duration_ms, retried]` for every attempt in the
/// run's journal, in the order they finished; attempts still open come last, `running` in a
/// run still going and `cancelled` in one that ended without them.
fn attempts(head: &Head, t0_ms: f64, out: &mut dyn Write) -> io::Result<()> {
    let ms = |at: &str| {
        epoch_seconds(at)
            .map_or(0.0, |s| s * 1000.0 - t0_ms)
            .max(0.0)
    };
    let mut open: HashMap<String, (u64, u32, f64)> = HashMap::new();
    let mut first = true;
    let mut last_ms = 0.0_f64;
    let mut emit = |out: &mut dyn Write, a: (u64, u32, u8, f64, f64, bool)| {
        let comma = if std::mem::replace(&mut first, false) {
            ""
        } else {
            ","
        };
        write!(
            out,
            "{comma}[{},{},{},{:.0},{:.0},{}]",
            a.0,
            a.1,
            a.2,
            a.3,
            a.4.max(0.0),
            u8::from(a.5)
        )
    };
    let path = head.dir.journal_path();
    let read = journal::each(&path, &mut |record| {
        match record {
            Record::Started(s) => {
                let start = ms(&s.at);
                last_ms = last_ms.max(start);
                open.insert(s.key, (s.task, s.attempt, start));
            }
            Record::Finished(f) => {
                open.remove(&f.key);
                #[allow(clippy::cast_precision_loss, reason = "milliseconds")]
                let duration = f.duration_ms as f64;
                // From the end and the duration, one clock: a bar never overlaps the next
                // attempt of its process slot.
                let start = (ms(&f.at) - duration).max(0.0);
                last_ms = last_ms.max(start + duration);
                emit(
                    out,
                    (f.task, f.attempt, code(f.status), start, duration, f.retry),
                )?;
            }
            Record::RunStarted(_) => open.clear(),
            Record::RunFinished(r) => last_ms = last_ms.max(ms(&r.at)),
        }
        Ok(())
    });
    match read {
        Ok(written) => written?,
        Err(e) => tracing::warn!("the timeline is incomplete: {e}"),
    }
    let live = head.run.status == RunStatus::Running;
    let end = if live {
        epoch_seconds(&crate::report::model::timestamp(
            std::time::SystemTime::now(),
        ))
        .map_or(last_ms, |s| s * 1000.0 - t0_ms)
    } else {
        last_ms
    };
    let mut still: Vec<_> = open.into_values().collect();
    still.sort_by_key(|&(task, _, _)| task);
    for (task, attempt, start) in still {
        let status = if live { 5 } else { 4 };
        emit(out, (task, attempt, status, start, end - start, false))?;
    }
    Ok(())
}

/// The page's code for a status.
fn code(status: TaskStatus) -> u8 {
    match status {
        TaskStatus::Succeeded => 0,
        TaskStatus::Failed => 1,
        TaskStatus::TimedOut => 2,
        TaskStatus::SpawnFailed => 3,
        TaskStatus::Cancelled | TaskStatus::NotRun => 4,
        TaskStatus::Running => 5,
    }
}

fn json(value: &impl serde::Serialize) -> io::Result<String> {
    serde_json::to_string(value).map_err(io::Error::other)
}

/// Writes JSON with every `<` as `\u003c`: inside the page's `<script>` element nothing can
/// close it. (In JSON, `<` only occurs inside strings, where the escape means the same.)
struct NoLt<'a>(&'a mut dyn Write);

impl Write for NoLt<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(at) = rest.iter().position(|&b| b == b'<') {
            self.0.write_all(&rest[..at])?;
            self.0.write_all(b"\\u003c")?;
            rest = &rest[at + 1..];
        }
        self.0.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
