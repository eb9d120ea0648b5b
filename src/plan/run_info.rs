//! A run's identity: its id and its directory, known before the first task is planned.

use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::time::SystemTime;

use crate::job::Job;
use crate::job::template::{Placeholder, Values};

/// The run's id and directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// UTC start time, sortable, plus a short random suffix: `20261126T185216Z-3f9a`.
    pub id: String,
    /// The run directory, absolute.
    pub dir: PathBuf,
}

impl RunInfo {
    /// A fresh id for a run of `job` starting now, and the directory it renders to.
    pub fn new(job: &Job) -> Self {
        let id = new_run_id(SystemTime::now());
        Self::with_id(job, id)
    }

    /// The directory for a run of `job` with the given id.
    pub fn with_id(job: &Job, id: String) -> Self {
        struct RunValues<'a> {
            name: &'a str,
            id: &'a str,
        }
        impl Values for RunValues<'_> {
            fn put(&self, p: Placeholder, out: &mut Vec<u8>) {
                match p {
                    Placeholder::Name => out.extend_from_slice(self.name.as_bytes()),
                    Placeholder::RunId => out.extend_from_slice(self.id.as_bytes()),
                    // `report.dir` is parsed with only the run placeholders allowed.
                    other => unreachable!("{other} is not a run placeholder"),
                }
            }
            fn items(&self, _: &mut dyn FnMut(usize, &[u8])) {}
        }
        let rendered = job.report_dir.render_text(&RunValues {
            name: &job.name,
            id: &id,
        });
        let dir = job.report_base.join(rendered);
        Self { id, dir }
    }
}

/// `YYYYMMDDTHHMMSSZ-xxxx`: sorts by time; the suffix keeps two runs in the same second apart.
fn new_run_id(now: SystemTime) -> String {
    let stamp: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    // RandomState is seeded from the OS's randomness once per process, then per instance.
    let random = RandomState::new().hash_one(std::process::id()) & 0xffff;
    format!("{stamp}-{random:04x}")
}

#[cfg(test)]
mod tests {
    use super::new_run_id;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn run_ids_sort_by_time() {
        let a = new_run_id(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let b = new_run_id(UNIX_EPOCH + Duration::from_secs(1_700_000_001));
        assert!(a.starts_with("20231114T221320Z-"), "{a}");
        assert_eq!(a.len(), "20231114T221320Z-0000".len());
        assert!(a < b);
    }
}
