//! Text for people: the one-line summary at the end of a run and `poolrun report`'s listing.

use std::fmt::Write as _;
use std::path::Path;

use crate::exec::TaskStatus;
use crate::exec::unix::signal_name;
use crate::report::{Report, Summary, TaskRecord};

/// `12 tasks: 10 succeeded, 1 failed, 1 timed out in 3.2s`.
pub fn summary_counts(s: &Summary) -> String {
    let parts: Vec<String> = [
        (s.succeeded, "succeeded"),
        (s.failed, "failed"),
        (s.timed_out, "timed out"),
        (s.spawn_failed, "failed to start"),
        (s.cancelled, "cancelled"),
        (s.not_run, "not run"),
    ]
    .into_iter()
    .filter(|&(n, _)| n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    let tasks = if s.tasks == 1 { "task" } else { "tasks" };
    let parts = if parts.is_empty() {
        "nothing to do".to_owned()
    } else {
        parts.join(", ")
    };
    format!("{} {tasks}: {parts} in {:.2}s", s.tasks, s.wall_seconds)
}

/// The line printed on stderr when a run ends.
pub fn summary_line(job: &str, summary: &Summary, report: &Path) -> String {
    format!(
        "poolrun: {job}: {}; report: {}",
        summary_counts(summary),
        report.display()
    )
}

/// `poolrun report RUN_DIR`: the run, its counts, then every task that did not succeed with the
/// end of its stderr.
pub fn report_text(report: &Report) -> String {
    let mut out = String::new();
    let run = &report.run;
    let _ = writeln!(
        out,
        "run {} of job {} on {}: {}",
        run.id,
        report.job.name,
        run.host,
        serde_json::to_value(run.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "started {}, finished {}, {} processes",
        run.started_at, run.finished_at, run.processes
    );
    let _ = writeln!(out, "{}", summary_counts(&report.summary));
    for task in report
        .tasks
        .iter()
        .filter(|t| t.status != TaskStatus::Succeeded)
    {
        out.push('\n');
        out.push_str(&task_text(task));
    }
    out
}

fn task_text(task: &TaskRecord) -> String {
    let mut out = String::new();
    let how = match (task.exit_code, task.signal) {
        (Some(code), _) => format!(", exit code {code}"),
        (None, Some(sig)) => format!(", signal {}", signal_name(sig)),
        (None, None) => String::new(),
    };
    let _ = writeln!(
        out,
        "task {} ({}): {}{how}",
        task.id,
        task.label(60),
        task.status.as_str()
    );
    if let Some(error) = &task.error {
        let _ = writeln!(out, "  {error}");
    }
    let _ = writeln!(out, "  command: {}", task.command.join(" "));
    if !task.stderr_tail.is_empty() {
        let _ = writeln!(out, "  stderr ({} bytes), last lines:", task.stderr_bytes);
        let lines: Vec<&str> = task.stderr_tail.lines().collect();
        for line in &lines[lines.len().saturating_sub(10)..] {
            let _ = writeln!(out, "  | {line}");
        }
    }
    out
}
