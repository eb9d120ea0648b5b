//! Reading a saved run back: `report.json` whole, or streamed (its head without the rows, then
//! the rows one at a time), so a report of millions of tasks is read in bounded memory.

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::report::{JobRecord, Report, ReportError, RunDir, RunRecord, Summary, TaskRecord};

/// Reads `report.json` from the run directory `dir` (`runs/<name>/latest` works too).
pub fn read_report(dir: &Path) -> Result<Report, ReportError> {
    let dir = RunDir {
        path: dir.to_owned(),
    };
    let path = dir.report_path();
    let file = open(&dir)?;
    let report: Report = serde_json::from_reader(BufReader::new(file))
        .map_err(|source| ReportError::Parse { path, source })?;
    check_schema(&dir, &report.schema)?;
    Ok(report)
}

/// A report without its rows.
#[derive(Debug, Clone, Deserialize)]
pub struct ReportHead {
    /// The schema.
    pub schema: String,
    /// The job.
    pub job: JobRecord,
    /// The run.
    pub run: RunRecord,
    /// The counts.
    pub summary: Summary,
    #[serde(default)]
    #[allow(dead_code, reason = "skipped while reading")]
    tasks: IgnoredAny,
}

/// Reads `report.json` of `dir` but for its rows, which are skipped as they are read.
pub fn read_head(dir: &RunDir) -> Result<ReportHead, ReportError> {
    let path = dir.report_path();
    let file = open(dir)?;
    let head: ReportHead = serde_json::from_reader(BufReader::new(file))
        .map_err(|source| ReportError::Parse { path, source })?;
    check_schema(dir, &head.schema)?;
    Ok(head)
}

/// Calls `f` with each row of `report.json` of `dir`, in order, holding one at a time. The
/// outer error says the report could not be read; the inner one is `f`'s, which stops it.
pub fn each_row(
    dir: &RunDir,
    f: &mut dyn FnMut(TaskRecord) -> std::io::Result<()>,
) -> Result<std::io::Result<()>, ReportError> {
    let path = dir.report_path();
    let file = open(dir)?;
    let mut failed = None;
    let mut de = serde_json::Deserializer::from_reader(BufReader::new(file));
    let result = Rows {
        f,
        failed: &mut failed,
    }
    .deserialize(&mut de);
    if let Some(e) = failed {
        return Ok(Err(e));
    }
    result.map_err(|source| ReportError::Parse { path, source })?;
    Ok(Ok(()))
}

fn open(dir: &RunDir) -> Result<File, ReportError> {
    let path = dir.report_path();
    if !path.exists() && dir.journal_path().exists() {
        let message =
            "the run has no report.json yet: it is still running, or its engine was killed";
        return Err(ReportError::unreadable(&path)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            message,
        )));
    }
    File::open(&path).map_err(ReportError::unreadable(&path))
}

fn check_schema(dir: &RunDir, schema: &str) -> Result<(), ReportError> {
    if crate::report::READABLE_SCHEMAS.contains(&schema) {
        return Ok(());
    }
    let message = format!(
        "its schema is {schema:?}; this poolrun reads {}",
        crate::report::READABLE_SCHEMAS.join(" and ")
    );
    Err(ReportError::unreadable(dir.report_path())(
        std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    ))
}

/// Visits the report object, handing each element of `tasks` to `f` and skipping the rest.
struct Rows<'a> {
    f: &'a mut dyn FnMut(TaskRecord) -> std::io::Result<()>,
    failed: &'a mut Option<std::io::Error>,
}

impl<'de> DeserializeSeed<'de> for Rows<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a poolrun report")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Rows { f, failed } = self;
        while let Some(key) = map.next_key::<String>()? {
            if key == "tasks" {
                map.next_value_seed(Each {
                    f: &mut *f,
                    failed: &mut *failed,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Each<'a> {
    f: &'a mut dyn FnMut(TaskRecord) -> std::io::Result<()>,
    failed: &'a mut Option<std::io::Error>,
}

impl<'de> DeserializeSeed<'de> for Each<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Each<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the task rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(row) = seq.next_element::<TaskRecord>()? {
            if let Err(e) = (self.f)(row) {
                *self.failed = Some(e);
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}
