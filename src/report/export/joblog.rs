//! `--format joblog`: GNU parallel's `--joblog`, so the tools that read joblogs work unchanged.
//! A tab-separated header, then one line per task that ran: `Seq` counts from 1 (task id + 1),
//! `Host` is `:` (this machine), `Starttime` is Unix seconds, `JobRuntime` seconds right-aligned
//! in ten columns, `Send` is 0 and `Receive` the bytes of stdout (as parallel counts a local
//! job's), `Exitval` is -1 when the task did not exit (a signal, a failed start), `Signal` the
//! signal's number or 0, `Command` a shell command line that runs the task again: `parallel
//! --retry-failed --joblog FILE` reruns a run's failed tasks from it.

use std::io::{self, Write};

use crate::exec::TaskStatus;
use crate::report::TaskRecord;
use crate::report::export::{Exporter, command_line, epoch_seconds};
use crate::report::view::Head;

/// GNU parallel's header, byte for byte.
pub const HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

/// The joblog writer.
pub struct Joblog;

impl Exporter for Joblog {
    fn begin(&mut self, _: &Head, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(HEADER.as_bytes())
    }

    fn row(&mut self, row: &TaskRecord, out: &mut dyn Write) -> io::Result<()> {
        if matches!(row.status, TaskStatus::NotRun | TaskStatus::Running) {
            return Ok(());
        }
        let start = row
            .started_at
            .as_deref()
            .and_then(epoch_seconds)
            .unwrap_or(0.0);
        #[allow(clippy::cast_precision_loss, reason = "milliseconds as seconds")]
        let runtime = row.duration_ms.unwrap_or(0) as f64 / 1000.0;
        let exit = match (row.exit_code, row.status) {
            (Some(code), _) => code,
            (None, _) => -1,
        };
        let command: String = command_line(&row.command)
            .chars()
            .map(|c| {
                if c == '\t' || c == '\n' || c == '\r' {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        writeln!(
            out,
            "{}\t:\t{start:.3}\t{runtime:>10.3}\t0\t{}\t{exit}\t{}\t{command}",
            row.id + 1,
            row.stdout_bytes,
            row.signal.unwrap_or(0)
        )
    }

    fn end(&mut self, _: &Head, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}
