//! `--format json` (the report as `report.json` holds it) and `--format jsonl` (one task per
//! line, for `jq` and log pipelines).

use std::io::{self, Write};

use crate::report::TaskRecord;
use crate::report::export::Exporter;
use crate::report::view::Head;

/// The whole report.
#[derive(Default)]
pub struct Json {
    rows: u64,
}

impl Exporter for Json {
    fn begin(&mut self, head: &Head, out: &mut dyn Write) -> io::Result<()> {
        write!(
            out,
            "{{\n  \"schema\": {},\n  \"job\": {},\n  \"tasks\": [",
            to_json(&head.schema)?,
            to_json(&head.job)?
        )
    }

    fn row(&mut self, row: &TaskRecord, out: &mut dyn Write) -> io::Result<()> {
        let separator = if self.rows == 0 { "\n    " } else { ",\n    " };
        self.rows += 1;
        out.write_all(separator.as_bytes())?;
        serde_json::to_writer(&mut *out, row).map_err(io::Error::other)
    }

    fn end(&mut self, head: &Head, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "\n  ],\n  \"run\": {},\n  \"summary\": {}\n}}",
            to_json(&head.run)?,
            to_json(&head.summary)?
        )
    }
}

/// One task per line.
pub struct Jsonl;

impl Exporter for Jsonl {
    fn begin(&mut self, _: &Head, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn row(&mut self, row: &TaskRecord, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer(&mut *out, row).map_err(io::Error::other)?;
        out.write_all(b"\n")
    }

    fn end(&mut self, _: &Head, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

fn to_json(value: &impl serde::Serialize) -> io::Result<String> {
    serde_json::to_string(value).map_err(io::Error::other)
}
