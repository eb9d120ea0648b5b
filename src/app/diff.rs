//! `poolrun diff RUN_A RUN_B`.

use std::io::{self, Write};
use std::path::Path;

use crate::error::{Error, exit};
use crate::report::{self, ReportError, compare};

pub(super) fn diff(a: &Path, b: &Path) -> Result<u8, Error> {
    for dir in [a, b] {
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "{} is not a run directory",
                dir.display()
            )));
        }
    }
    let (ra, rb) = (report::read_report(a)?, report::read_report(b)?);
    let comparison = compare::compare((&ra, a), (&rb, b));
    let text = compare::render(&comparison, ra.tasks.len(), rb.tasks.len());
    match io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(ReportError::io("print the comparison of", a)(e).into());
        }
        _ => {}
    }
    Ok(if comparison.agrees() {
        exit::SUCCESS
    } else {
        exit::TASKS_FAILED
    })
}
