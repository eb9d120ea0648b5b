//! `--format junit`: JUnit XML as CI systems read it (Jenkins, GitLab, GitHub actions that
//! publish test results). One `<testsuite>` for the job, one `<testcase>` per task: a task that
//! failed or timed out has a `<failure>`, one that could not start or was cancelled an
//! `<error>`, one that never ran is `<skipped/>`; the stderr tail is the element's text. The
//! document follows the Ant JUnit schema most readers are written against: a `package` and `id`
//! on the suite, `properties`, `system-out` and `system-err` present, a timestamp without a zone
//! (UTC).

use std::io::{self, Write};

use crate::exec::TaskStatus;
use crate::report::TaskRecord;
use crate::report::export::{Exporter, command_line, status_text};
use crate::report::view::Head;

/// The JUnit writer.
#[derive(Default)]
pub struct Junit {
    /// `classname` of every testcase: `poolrun.<job>`.
    classname: String,
}

impl Exporter for Junit {
    fn begin(&mut self, head: &Head, out: &mut dyn Write) -> io::Result<()> {
        let s = &head.summary;
        let timestamp: String = head.run.started_at.chars().take(19).collect();
        let timestamp = if timestamp.len() == 19 {
            timestamp
        } else {
            "1970-01-01T00:00:00".to_owned()
        };
        let host = if head.run.host.is_empty() {
            "localhost"
        } else {
            &head.run.host
        };
        let name = if head.job.name.is_empty() {
            "poolrun"
        } else {
            &head.job.name
        };
        self.classname = format!("poolrun.{name}");
        writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        writeln!(out, "<testsuites>")?;
        writeln!(
            out,
            r#"  <testsuite name="{}" package="poolrun" id="0" timestamp="{timestamp}" hostname="{}" tests="{}" failures="{}" errors="{}" skipped="{}" time="{:.3}">"#,
            xml(name),
            xml(host),
            s.tasks,
            s.failed + s.timed_out,
            s.spawn_failed + s.cancelled,
            s.not_run + s.running,
            s.wall_seconds
        )?;
        writeln!(out, "    <properties>")?;
        for (key, value) in [
            ("run.id", head.run.id.as_str()),
            ("run.status", &status_text(&head.run)),
            ("run.dir", &head.run.dir),
            ("job.file", &head.job.file),
            ("job.sha256", &head.job.sha256),
        ] {
            writeln!(
                out,
                r#"      <property name="{key}" value="{}"/>"#,
                xml(value)
            )?;
        }
        writeln!(out, "    </properties>")
    }

    fn row(&mut self, row: &TaskRecord, out: &mut dyn Write) -> io::Result<()> {
        #[allow(clippy::cast_precision_loss, reason = "milliseconds as seconds")]
        let time = row.duration_ms.unwrap_or(0) as f64 / 1000.0;
        let label = row.label(80);
        let name = if label.is_empty() {
            format!("task {}", row.id)
        } else {
            format!("task {}: {label}", row.id)
        };
        write!(
            out,
            r#"    <testcase name="{}" classname="{}" time="{time:.3}""#,
            xml(&name),
            xml(&self.classname),
        )?;
        let message = row
            .error
            .clone()
            .unwrap_or_else(|| row.status.as_str().to_owned());
        let element = match row.status {
            TaskStatus::Succeeded => None,
            TaskStatus::Failed | TaskStatus::TimedOut => Some("failure"),
            TaskStatus::SpawnFailed | TaskStatus::Cancelled => Some("error"),
            TaskStatus::NotRun | TaskStatus::Running => {
                let why = if row.status == TaskStatus::Running {
                    "still running"
                } else {
                    "not run"
                };
                return writeln!(out, r#"><skipped message="{why}"/></testcase>"#);
            }
        };
        match element {
            None => writeln!(out, "/>"),
            Some(element) => {
                let text = format!(
                    "command: {}\nattempts: {}\n{}",
                    command_line(&row.command),
                    row.attempts,
                    row.stderr_tail
                );
                writeln!(
                    out,
                    r#"><{element} message="{}" type="{}">{}</{element}></testcase>"#,
                    xml(&message),
                    row.status.as_str(),
                    xml(&text)
                )
            }
        }
    }

    fn end(&mut self, _: &Head, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "    <system-out></system-out>")?;
        writeln!(out, "    <system-err></system-err>")?;
        writeln!(out, "  </testsuite>")?;
        writeln!(out, "</testsuites>")
    }
}

/// `text` escaped for XML text and attributes, without the characters XML 1.0 cannot hold
/// (control characters other than tab, newline and carriage return), which become U+FFFD.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::xml;

    #[test]
    fn text_is_escaped_and_characters_xml_cannot_hold_are_replaced() {
        assert_eq!(
            xml("a<b>&\"c\"'\n\u{1b}[31m\u{0}"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;&#10;\u{FFFD}[31m\u{FFFD}"
        );
    }
}
