//! Reading a saved run back.

use std::path::Path;

use crate::report::{Report, ReportError};

/// Reads `report.json` from the run directory `dir` (`runs/<name>/latest` works too).
pub fn read_report(dir: &Path) -> Result<Report, ReportError> {
    let path = dir.join("report.json");
    if !path.exists() && dir.join("journal.jsonl").exists() {
        let message =
            "the run has no report.json yet: it is still running, or its engine was killed";
        return Err(ReportError::unreadable(&path)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            message,
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(ReportError::unreadable(&path))?;
    let report: Report = serde_json::from_str(&text).map_err(|source| ReportError::Parse {
        path: path.clone(),
        source,
    })?;
    if !crate::report::READABLE_SCHEMAS.contains(&report.schema.as_str()) {
        let message = format!(
            "its schema is {:?}; this poolrun reads {}",
            report.schema,
            crate::report::READABLE_SCHEMAS.join(" and ")
        );
        return Err(ReportError::unreadable(&path)(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            message,
        )));
    }
    Ok(report)
}
