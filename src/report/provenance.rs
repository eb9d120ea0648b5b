//! `run.provenance`: what a run ran on and with, gathered when a session starts.

use std::collections::BTreeMap;

use crate::job::{Job, Source};
use crate::report::model::{InputRecord, Provenance};

/// The git commit this binary was built from (`build.rs`), when it was built from a checkout.
const COMMIT: Option<&str> = option_env!("POOLRUN_GIT_COMMIT");

/// The snapshot file of a run's items, in its run directory.
pub const SNAPSHOT_FILE: &str = "items.txt";

impl Provenance {
    /// The provenance of a session of `job` starting now, with its input snapshot's digest.
    pub fn collect(job: &Job, snapshot_sha256: Option<&str>) -> Self {
        let uname = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uname
                .as_ref()
                .map(|u| f(u).to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let os = os_release().unwrap_or_else(|| field(nix::sys::utsname::UtsName::sysname));
        let inputs = match (&job.source, snapshot_sha256) {
            (Some(source), Some(sha256)) => vec![InputRecord {
                source: source.table().to_owned(),
                from: match source {
                    Source::Lines(lines) => lines
                        .file
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |f| f.display().to_string()),
                    Source::Glob(glob) => glob.pattern.clone(),
                    _ => String::new(),
                },
                snapshot: SNAPSHOT_FILE.to_owned(),
                sha256: sha256.to_owned(),
                items: source.items(),
            }],
            _ => Vec::new(),
        };
        let env: BTreeMap<String, Option<String>> = job
            .record_env
            .iter()
            .map(|name| {
                let value = std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
                (name.clone(), value)
            })
            .collect();
        Self {
            poolrun_version: env!("CARGO_PKG_VERSION").to_owned(),
            poolrun_commit: COMMIT.filter(|c| !c.is_empty()).map(str::to_owned),
            host: field(nix::sys::utsname::UtsName::nodename),
            os,
            kernel: field(nix::sys::utsname::UtsName::release),
            cpus: crate::job::cpus(),
            argv: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            cwd: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            job_sha256: job.origin.sha256.clone(),
            inputs,
            set: job.set.clone(),
            env,
        }
    }
}

/// `PRETTY_NAME` from `/etc/os-release`.
fn os_release() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines().find_map(|line| {
        let value = line.strip_prefix("PRETTY_NAME=")?;
        Some(value.trim_matches('"').to_owned())
    })
}
