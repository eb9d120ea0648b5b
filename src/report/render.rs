//! Text for people: the one-line summary at the end of a run and `poolrun report`'s listing.

use std::path::Path;
use std::time::Duration;

use crate::exec::TaskStatus;
use crate::report::Summary;

/// `12 tasks: 10 succeeded, 1 failed, 1 timed out in 3.2s`.
pub fn summary_counts(s: &Summary) -> String {
    let parts: Vec<String> = [
        (s.succeeded, "succeeded"),
        (s.failed, "failed"),
        (s.timed_out, "timed out"),
        (s.spawn_failed, "failed to start"),
        (s.cancelled, "cancelled"),
        (s.running, "running"),
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
    let took = human_duration(Duration::from_secs_f64(s.wall_seconds.max(0.0)));
    format!("{} {tasks}: {parts} in {took}", s.tasks)
}

/// A duration for people: `509ms`, `3.2s`, `42s`, `1m 3s`, `2h 5m`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let secs = d.as_secs();
    match secs {
        0 => format!("{ms}ms"),
        1..10 => {
            let text = format!("{:.1}", d.as_secs_f64());
            format!("{}s", text.strip_suffix(".0").unwrap_or(&text))
        }
        10..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
    }
}

/// `text` safe to print on a terminal: control characters (escape sequences, carriage
/// returns, backspaces) shown escaped, as `\u{1b}`, never acted on.
pub fn clean(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A status word, coloured when colour is on for stdout.
pub fn paint(status: TaskStatus, text: &str) -> String {
    if !crate::console::color_stdout() {
        return text.to_owned();
    }
    let code = match status {
        TaskStatus::Succeeded => "32",
        TaskStatus::Failed | TaskStatus::SpawnFailed => "31",
        TaskStatus::TimedOut => "33",
        TaskStatus::Running => "34",
        TaskStatus::Cancelled | TaskStatus::NotRun => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A path as a person would type it: relative to the current directory when under it, and
/// quoted for the shell when it needs to be.
pub fn shown_path(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let shown = cwd
        .as_deref()
        .and_then(|cwd| path.strip_prefix(cwd).ok())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(path);
    shell_quote(&shown.to_string_lossy())
}

/// The line printed on stderr when a run ends, with why it stopped early if it did.
pub fn summary_line(job: &str, summary: &Summary, stop_reason: Option<&str>) -> String {
    let stopped = stop_reason.map_or_else(String::new, |r| format!(" (stopped: {r})"));
    format!(
        "poolrun: {}: {}{stopped}",
        clean(job),
        summary_counts(summary)
    )
}

/// After a run that did not fully succeed: the commands that show why and resume it.
pub fn next_steps(run_dir: &Path, job_file: Option<&Path>) -> Vec<String> {
    let dir = shown_path(run_dir);
    let mut lines = vec![format!("poolrun:   see why: poolrun report {dir} --failed")];
    if let Some(job) = job_file {
        // A job read from stdin is given again the same way.
        let piped =
            job == Path::new("<stdin>") || job.starts_with("/dev/") || job.starts_with("/proc/");
        lines.push(if piped {
            format!("poolrun:   resume:  poolrun run - --resume {dir} < JOB.toml")
        } else {
            format!(
                "poolrun:   resume:  poolrun run {} --resume {dir}",
                shown_path(job)
            )
        });
    }
    lines
}

/// `word` as the shell reads it back: unquoted when it is a plain word.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.,/:+@%=".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{clean, human_duration, shell_quote};

    #[test]
    fn durations_read_as_people_write_them() {
        let cases = [
            (Duration::from_millis(0), "0ms"),
            (Duration::from_millis(509), "509ms"),
            (Duration::from_millis(3210), "3.2s"),
            (Duration::from_secs(5), "5s"),
            (Duration::from_secs(42), "42s"),
            (Duration::from_secs(63), "1m 3s"),
            (Duration::from_secs(2 * 3600 + 5 * 60 + 9), "2h 5m"),
        ];
        for (d, text) in cases {
            assert_eq!(human_duration(d), text);
        }
    }

    #[test]
    fn task_text_cannot_drive_the_terminal() {
        assert_eq!(clean("plain\ttab"), "plain\ttab");
        assert_eq!(clean("\x1b[2Jgone\rback"), "\\u{1b}[2Jgone\\u{d}back");
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(
            shell_quote("runs/job/20261127T084307Z-59b5"),
            "runs/job/20261127T084307Z-59b5"
        );
        assert_eq!(shell_quote("my runs/it's"), r"'my runs/it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
