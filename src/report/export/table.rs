//! `--format table`: for people. The run, its counts, then one line per task that did not
//! succeed (with why, its command and its last stderr line indented under it); tasks never run
//! are folded into ranges, and succeeded tasks are only counted.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::exec::TaskStatus;
use crate::exec::unix::signal_name;
use crate::report::export::{Exporter, command_line, status_text};
use crate::report::render::{clean, human_duration, paint, summary_counts};
use crate::report::view::Head;
use crate::report::{RunDir, TaskRecord};

/// Width of a command or stderr line in the table.
const LINE: usize = 100;

/// The table writer.
#[derive(Default)]
pub struct Table {
    /// A range of tasks never run, not yet printed.
    not_run: Option<(u64, u64)>,
    /// Tasks listed.
    listed: u64,
    /// The first task listed that ran and did not succeed.
    first_failure: Option<u64>,
    /// Tasks that succeeded only on a later attempt (the first few ids, and how many).
    flaky: (Vec<u64>, u64),
    width: usize,
}

impl Table {
    fn flush_not_run(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if let Some((first, last)) = self.not_run.take() {
            let n = last - first + 1;
            let ids = if n == 1 {
                format!("{first}")
            } else {
                format!("{first}..={last}")
            };
            let tasks = if n == 1 { "task" } else { "tasks" };
            writeln!(
                out,
                "  {:>w$}  {}  ({n} {tasks})",
                ids,
                paint(TaskStatus::NotRun, "not run"),
                w = self.width
            )?;
            self.listed += 1;
        }
        Ok(())
    }
}

impl Exporter for Table {
    fn begin(&mut self, head: &Head, out: &mut dyn Write) -> io::Result<()> {
        let run = &head.run;
        self.width = head
            .summary
            .tasks
            .saturating_sub(1)
            .to_string()
            .len()
            .max(4);
        writeln!(
            out,
            "run {} of job {}: {}",
            run.id,
            clean(&head.job.name),
            status_text(run)
        )?;
        let seconds = std::time::Duration::from_secs_f64(head.summary.wall_seconds.max(0.0));
        writeln!(
            out,
            "  started {}, ran {} on {}, {} at once",
            run.started_at,
            human_duration(seconds),
            clean(&run.host),
            run.processes
        )?;
        writeln!(out, "  {}", run_dir_line(&head.dir))?;
        let what = if head.filtered { "shown: " } else { "" };
        writeln!(out, "  {what}{}", summary_counts(&head.summary))?;
        if head.summary.tasks > head.summary.succeeded {
            writeln!(
                out,
                "\n  {:>w$}  {:<12} {:>5} {:>7}  TASK",
                "ID",
                "STATUS",
                "TRIES",
                "TIME",
                w = self.width
            )?;
        }
        Ok(())
    }

    fn row(&mut self, row: &TaskRecord, out: &mut dyn Write) -> io::Result<()> {
        if row.status == TaskStatus::Succeeded {
            if row.attempts > 1 {
                self.flaky.1 += 1;
                if self.flaky.0.len() < 10 {
                    self.flaky.0.push(row.id);
                }
            }
            return self.flush_not_run(out);
        }
        if row.status == TaskStatus::NotRun {
            self.not_run = match self.not_run {
                Some((first, last)) if last + 1 == row.id => Some((first, row.id)),
                pending => {
                    if pending.is_some() {
                        self.flush_not_run(out)?;
                    }
                    Some((row.id, row.id))
                }
            };
            return Ok(());
        }
        self.flush_not_run(out)?;
        self.listed += 1;
        if row.status != TaskStatus::Running {
            self.first_failure.get_or_insert(row.id);
        }
        let time = row.duration_ms.map_or_else(
            || "-".to_owned(),
            |ms| human_duration(std::time::Duration::from_millis(ms)),
        );
        let status = row.status.as_str();
        writeln!(
            out,
            "  {:>w$}  {}{} {:>5} {:>7}  {}",
            row.id,
            paint(row.status, status),
            " ".repeat(12usize.saturating_sub(status.len())),
            row.attempts,
            time,
            clean(&row.label(60)),
            w = self.width
        )?;
        let indent = " ".repeat(self.width + 4);
        let why = match (&row.error, row.exit_code, row.signal) {
            (Some(error), _, _) => Some(error.clone()),
            (None, Some(code), _) if code != 0 => Some(format!("exit code {code}")),
            (None, _, Some(signal)) => Some(format!("killed by {}", signal_name(signal))),
            _ => None,
        };
        if let Some(why) = why {
            writeln!(out, "{indent}why: {}", shorten(&clean(&why), LINE))?;
        }
        writeln!(
            out,
            "{indent}command: {}",
            shorten(&clean(&command_line(&row.command)), LINE)
        )?;
        if let Some(last) = row.stderr_tail.lines().rev().find(|l| !l.trim().is_empty()) {
            writeln!(out, "{indent}stderr: {}", shorten(&clean(last), LINE))?;
        }
        Ok(())
    }

    fn end(&mut self, head: &Head, out: &mut dyn Write) -> io::Result<()> {
        self.flush_not_run(out)?;
        if self.listed == 0 && head.summary.tasks > 0 && head.summary.all_succeeded() {
            writeln!(out, "  every task succeeded")?;
        }
        let (ids, count) = &self.flaky;
        if *count > 0 {
            let mut ids: Vec<String> = ids.iter().map(u64::to_string).collect();
            if *count > ids.len() as u64 {
                ids.push("…".to_owned());
            }
            let tasks = if *count == 1 { "task" } else { "tasks" };
            writeln!(
                out,
                "  {count} {tasks} succeeded only after a retry (flaky): {}",
                ids.join(", ")
            )?;
        }
        if let Some(id) = self.first_failure {
            let dir = crate::report::render::shown_path(&head.dir.path);
            writeln!(
                out,
                "\nmore on a task: poolrun report {dir} --task {id} [--stderr|--stdout]"
            )?;
        }
        Ok(())
    }
}

fn run_dir_line(dir: &RunDir) -> String {
    format!(
        "run directory {}",
        crate::report::render::shown_path(&dir.path)
    )
}

/// `text` cut to `width` characters, with `…` when cut.
fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    text.chars().take(width - 1).collect::<String>() + "…"
}

/// `poolrun report --task N`: everything the report says about one task.
pub fn task_detail(row: &TaskRecord, dir: &RunDir) -> String {
    let mut out = String::new();
    let how = match (row.exit_code, row.signal) {
        (Some(code), _) => format!(", exit code {code}"),
        (None, Some(sig)) => format!(", killed by {}", signal_name(sig)),
        (None, None) => String::new(),
    };
    let _ = writeln!(
        out,
        "task {}: {}{how}",
        row.id,
        paint(row.status, row.status.as_str())
    );
    let mut field = |name: &str, value: &str| {
        let _ = writeln!(out, "  {name:<9} {}", clean(value));
    };
    match (&row.items, row.start, row.last) {
        (Some(items), _, _) => field("items", &items.join(" ")),
        (None, Some(start), Some(last)) => field("items", &format!("{start}..={last}")),
        _ => {}
    }
    if !row.params.is_empty() {
        let params: Vec<String> = row.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        field("params", &params.join(" "));
    }
    if let Some(seed) = row.seed {
        field("seed", &seed.to_string());
    }
    field("command", &command_line(&row.command));
    field("attempts", &row.attempts.to_string());
    if let Some(started) = &row.started_at {
        field("started", started);
    }
    if let Some(finished) = &row.finished_at {
        field("finished", finished);
    }
    if let Some(ms) = row.duration_ms {
        field(
            "took",
            &human_duration(std::time::Duration::from_millis(ms)),
        );
    }
    if let Some(error) = &row.error {
        field("error", error);
    }
    if row.leaked > 0 {
        field("leaked", &format!("{} processes, killed", row.leaked));
    }
    let file = |path: &Option<String>, bytes: u64| match path {
        Some(path) => format!("{} ({bytes} bytes)", dir.path.join(path).display()),
        None => "none (nothing written)".to_owned(),
    };
    field("stdout", &file(&row.stdout, row.stdout_bytes));
    field("stderr", &file(&row.stderr, row.stderr_bytes));
    // Earlier attempts' outputs, kept beside the last one's: `0011.1.err`.
    let earlier: Vec<String> = row
        .stdout
        .iter()
        .chain(&row.stderr)
        .next()
        .map(|path| {
            let (stem, _) = path.rsplit_once('.').unwrap_or((path, ""));
            (1..row.attempts)
                .flat_map(|n| ["out", "err"].map(|ext| format!("{stem}.{n}.{ext}")))
                .filter(|p| dir.path.join(p).exists())
                .collect()
        })
        .unwrap_or_default();
    if !earlier.is_empty() {
        field("earlier", &earlier.join(" "));
    }
    if !row.stderr_tail.is_empty() {
        let _ = writeln!(out, "  stderr, last lines:");
        let lines: Vec<&str> = row.stderr_tail.lines().collect();
        for line in &lines[lines.len().saturating_sub(20)..] {
            let _ = writeln!(out, "  | {}", clean(line));
        }
    }
    let _ = writeln!(out, "  key       {} (content {})", row.key, row.content_key);
    out
}
