//! `--format csv`: one row per task, RFC 4180 (CRLF line ends, fields quoted when they hold a
//! comma, a quote or a line break), with a header row of the report's task field names. Lists
//! and maps (`items`, `params`, `command`) are JSON text in one field.

use std::io::{self, Write};

use crate::report::TaskRecord;
use crate::report::export::Exporter;
use crate::report::view::Head;

/// The columns, in the report's order.
const COLUMNS: [&str; 26] = [
    "id",
    "key",
    "content_key",
    "start",
    "last",
    "end",
    "count",
    "items",
    "params",
    "seed",
    "command",
    "status",
    "exit_code",
    "signal",
    "attempts",
    "started_at",
    "finished_at",
    "duration_ms",
    "stdout",
    "stderr",
    "stdout_bytes",
    "stdout_sha256",
    "stderr_bytes",
    "stderr_tail",
    "leaked",
    "error",
];

/// The CSV writer.
pub struct Csv;

impl Exporter for Csv {
    fn begin(&mut self, _: &Head, out: &mut dyn Write) -> io::Result<()> {
        record(out, COLUMNS.iter().map(|c| (*c).to_owned()))
    }

    fn row(&mut self, row: &TaskRecord, out: &mut dyn Write) -> io::Result<()> {
        let opt = |v: Option<String>| v.unwrap_or_default();
        let num = |v: Option<i64>| opt(v.map(|n| n.to_string()));
        let fields = [
            row.id.to_string(),
            row.key.clone(),
            row.content_key.clone(),
            num(row.start),
            num(row.last),
            num(row.end),
            row.count.to_string(),
            row.items.as_ref().map(json).unwrap_or_default(),
            if row.params.is_empty() {
                String::new()
            } else {
                json(&row.params)
            },
            opt(row.seed.map(|s| s.to_string())),
            json(&row.command),
            row.status.as_str().to_owned(),
            opt(row.exit_code.map(|c| c.to_string())),
            opt(row.signal.map(|s| s.to_string())),
            row.attempts.to_string(),
            opt(row.started_at.clone()),
            opt(row.finished_at.clone()),
            opt(row.duration_ms.map(|d| d.to_string())),
            opt(row.stdout.clone()),
            opt(row.stderr.clone()),
            row.stdout_bytes.to_string(),
            opt(row.stdout_sha256.clone()),
            row.stderr_bytes.to_string(),
            row.stderr_tail.clone(),
            row.leaked.to_string(),
            opt(row.error.clone()),
        ];
        record(out, fields.into_iter())
    }

    fn end(&mut self, _: &Head, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

/// A value as JSON text, for one field.
fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// One record: fields quoted as RFC 4180 says, ended by CRLF.
fn record(out: &mut dyn Write, fields: impl Iterator<Item = String>) -> io::Result<()> {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if field.contains([',', '"', '\r', '\n']) {
            out.write_all(b"\"")?;
            out.write_all(field.replace('"', "\"\"").as_bytes())?;
            out.write_all(b"\"")?;
        } else {
            out.write_all(field.as_bytes())?;
        }
    }
    out.write_all(b"\r\n")
}
