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
    serde_json::from_str(&text).map_err(|source| ReportError::Parse { path, source })
}
