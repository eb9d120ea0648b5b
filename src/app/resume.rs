//! `poolrun run --resume`: finish an earlier run in its own directory, running only the tasks
//! without a succeeded outcome. Tasks are matched by their key (command, cwd, env and chunk), so
//! after a change of chunk size or template exactly the tasks whose key changed run again.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::app::run;
use crate::cli::RunArgs;
use crate::error::Error;
use crate::exec::{LocalPool, SignalWatch};
use crate::job::{self, Job, Overrides, Source, overrides, read_input};
use crate::plan::{Plan, RunInfo};
use crate::report::{ReportError, RunDir, RunState, session};

pub(super) fn resume(args: &RunArgs) -> Result<u8, Error> {
    let signals = SignalWatch::install()?;
    let signals = &signals;
    if args.options.run_dir.is_some() {
        return Err(Error::Usage(
            "--run-dir cannot be used with --resume: a resumed run keeps its directory".into(),
        ));
    }
    let mut overrides = run::overrides(&args.options, &args.set);
    // Read once: a job file from stdin cannot be read twice.
    let read = job::read(&args.job)?;
    let target = args.resume.as_deref().unwrap_or(Path::new("latest"));
    let path = if target == Path::new("latest") {
        // Only the job's run directory is needed to find its latest run, not its items.
        let locating = Overrides {
            snapshot: Some(Arc::default()),
            ..overrides.clone()
        };
        resolve(&job::load_read(&read, &locating)?, target)?
    } else {
        resolve_path(target)?
    };
    let dir = open_run(RunDir::open(path)?)?;
    // Everything about the run is checked before anything is locked, changed or killed: a
    // wrong job file must not touch another job's run.
    let peek = RunState::read(&dir)?;
    let first = peek.first.as_ref().ok_or_else(|| {
        Error::Usage(format!(
            "{}: the journal records no run to resume",
            dir.path.display()
        ))
    })?;
    let run_id = first.run_id.clone();
    let recorded = first.provenance.as_deref();
    // The items are the run's snapshot, never the input as it is now.
    let snapshot = recorded
        .and_then(|p| p.inputs.first())
        .map(|input| input.sha256.clone());
    if let Some(sha256) = &snapshot {
        overrides.snapshot = Some(Arc::new(dir.read_snapshot(sha256)?));
    }
    let job = &Arc::new(job::load_read(&read, &overrides)?);
    super::plan::check_size(job, args.options.allow_huge)?;
    check_same_job(job, &dir, &peek)?;
    let recorded_set = recorded.map(|p| p.set.clone()).unwrap_or_default();
    let changes = check_job_unchanged(job, &dir, &recorded_set, args.force)?;
    if let Some(sha256) = &snapshot {
        note_live_input(job, sha256);
    }
    let root = dir.path.parent().unwrap_or(Path::new("/"));
    let began = std::time::Instant::now();
    let mut lock = run::lock(job, root, signals, began)?;
    lock.claim(&run_id)?;
    // Read again under the lock: a run that held it may have written more.
    let state = RunState::read(&dir)?;
    if let Some(signal) = signals.last() {
        return Err(Error::Interrupted {
            signal,
            when: "before the run resumed",
        });
    }
    // A run forced onto a job that now reads [lines] or [glob] had no snapshot: it gets one
    // now, so later resumptions, reruns and rebuilt reports plan from the same items.
    let snapshot = match (&snapshot, job.source.as_ref().and_then(Source::list)) {
        (None, Some(list)) if job.source.as_ref().is_some_and(Source::is_snapshotted) => {
            Some(dir.write_snapshot(list.items.bytes())?)
        }
        _ => snapshot,
    };
    let killed = LocalPool::kill_leftovers(&run_id, &state.identities);
    if killed > 0 {
        tracing::warn!("killed {killed} processes left running by the interrupted run");
    }
    cancel_leftover_arrays(&state);
    if let Some(changes) = changes {
        keep_old_job_file(job, &dir, &changes)?;
    }
    let plan = Plan::new(
        Arc::clone(job),
        RunInfo {
            id: run_id,
            dir: dir.path.clone(),
        },
    );
    let state = fold_orphans(&plan, state, &dir)?;
    session::relocate_outputs(&plan, &state, &dir)?;
    let carried = session::carried_rows(&plan, &state, &dir);
    tracing::info!(
        "resuming: {} of {} tasks already succeeded",
        carried.len(),
        plan.len()
    );
    // The journal holds everything the old report said; the new one replaces it when complete.
    dir.remove_report()?;
    run::execute(
        &plan,
        &dir,
        &state,
        carried,
        snapshot.as_deref(),
        &args.options,
        signals,
        began,
    )
}

/// Cancels the Slurm arrays of the attempts a killed Slurm session left open: their elements may
/// still be queued or running, and the resumed run submits them again.
fn cancel_leftover_arrays(state: &RunState) {
    let slurm = state
        .last
        .as_ref()
        .is_some_and(|s| s.backend.as_deref() == Some("slurm"));
    if !slurm {
        return;
    }
    // A Slurm session's `started` records hold the array's job id where a local one's hold a pid.
    let mut arrays: Vec<String> = state
        .open
        .values()
        .filter(|s| s.pid > 0)
        .map(|s| s.pid.to_string())
        .collect();
    arrays.sort();
    arrays.dedup();
    match crate::exec::slurm::scancel(&arrays, None) {
        Ok(()) if !arrays.is_empty() => {
            tracing::warn!(
                "cancelled the Slurm arrays {} left by the interrupted run",
                arrays.join(",")
            );
            // Their elements may still be writing outputs and outcomes: not before they end.
            if !crate::exec::slurm::wait_until_ended(&arrays, std::time::Duration::from_secs(120)) {
                tracing::warn!(
                    "the cancelled arrays {} have not ended yet",
                    arrays.join(",")
                );
            }
        }
        Err(e) if !e.contains("Invalid job id") => {
            tracing::warn!("cannot cancel the interrupted run's Slurm arrays: {e}");
        }
        _ => {}
    }
}

/// Elements of a killed Slurm session that ended while nobody watched left their outcomes: they
/// go into the journal (and the state read again), so their tasks do not run again.
fn fold_orphans(plan: &Plan, state: RunState, dir: &RunDir) -> Result<RunState, Error> {
    let folded = session::fold_orphan_outcomes(plan, &state, dir)?;
    if folded == 0 {
        return Ok(state);
    }
    tracing::warn!(
        "{folded} tasks ended on Slurm after the interrupted run stopped watching: their outcomes are kept"
    );
    Ok(RunState::read(dir)?)
}

/// `dir`, when it is a run directory: it has a journal.
pub(super) fn open_run(dir: RunDir) -> Result<RunDir, Error> {
    if dir.journal_path().is_file() {
        return Ok(dir);
    }
    Err(Error::Usage(format!(
        "{} is not a poolrun run directory: it has no journal.jsonl",
        dir.path.display()
    )))
}

/// Says so when the input a snapshotted source was read from is not what the run read: the
/// resumed run goes on with the run's snapshot either way.
fn note_live_input(job: &Job, sha256: &str) {
    let Some(source) = &job.source else { return };
    let what = match source {
        Source::Lines(lines) => lines.file.as_ref().map_or_else(
            || "stdin".to_owned(),
            |f| format!("[lines] file {}", f.display()),
        ),
        Source::Glob(glob) => format!("[glob] {:?}", glob.pattern),
        _ => return,
    };
    let items = source.items();
    match read_input::live(source) {
        None => tracing::info!(
            "{what} was read when the run started; resuming from the run's snapshot of {items} items"
        ),
        Some(Err(e)) => tracing::warn!(
            "{what} cannot be read now ({e}); resuming from the run's snapshot of {items} items"
        ),
        Some(Ok(live)) => {
            let now = job::hex(&Sha256::digest(live.bytes()));
            if now != sha256 {
                tracing::warn!(
                    "{what} changed since the run ({} items now, {items} then); resuming from the run's snapshot of {items} items",
                    live.len()
                );
            }
        }
    }
}

/// Refuses (exit 2) to resume a run of another job: the job's name decides which lock guards
/// the run, so a run of `alpha` resumed as `beta` could be running under `alpha`'s lock now.
fn check_same_job(job: &Job, dir: &RunDir, state: &RunState) -> Result<(), Error> {
    let recorded = recorded_name(dir, state);
    match recorded {
        Some(name) if name != job.name => Err(Error::Usage(format!(
            "{} is a run of job `{name}`, not of `{}`: resume it with its own job file",
            dir.path.display(),
            job.name
        ))),
        _ => Ok(()),
    }
}

/// The name of the job a run directory belongs to: from its journal, or for runs of poolrun 0.1
/// from its copy of the job file (`name =`, else the job file's stem).
fn recorded_name(dir: &RunDir, state: &RunState) -> Option<String> {
    let first = state.first.as_ref()?;
    if let Some(name) = &first.job {
        return Some(name.clone());
    }
    let (text, _) = job::read_text(&dir.job_copy_path()).ok()?;
    let table: toml::Table = text.parse().ok()?;
    match table.get("name") {
        Some(toml::Value::String(name)) => Some(name.clone()),
        _ => Path::new(&first.job_file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned()),
    }
}

/// The run directory to resume: `latest` is the job's newest run.
fn resolve(job: &Job, target: &Path) -> Result<PathBuf, Error> {
    let dir = if target == Path::new("latest") {
        RunInfo::with_id(job, "latest".to_owned()).dir
    } else {
        target.to_owned()
    };
    resolve_path(&dir)
}

fn resolve_path(dir: &Path) -> Result<PathBuf, Error> {
    fs::canonicalize(dir).map_err(|e| Error::Usage(format!("cannot resume {}: {e}", dir.display())))
}

/// Refuses (exit 2) to resume with a job file or `--set` values that differ from the run's,
/// saying what changed, unless forced; returns the job file's changes to keep when forced.
/// Reads only.
fn check_job_unchanged(
    job: &Job,
    dir: &RunDir,
    recorded_set: &[String],
    force: bool,
) -> Result<Option<String>, Error> {
    let (old_text, old_sha) = job::read_text(&dir.job_copy_path())?;
    let set_drift = overrides::drift(recorded_set, &job.set);
    let file_changed = old_sha != job.origin.sha256;
    if !file_changed && set_drift.is_empty() {
        return Ok(None);
    }
    let mut changes = Vec::new();
    if file_changed {
        changes.push(describe_changes(&old_text, &job.origin.text));
    }
    changes.extend(set_drift);
    let changes = changes.join("\n");
    if !force {
        let what = if file_changed {
            "the job file changed"
        } else {
            "the --set values differ from the run's"
        };
        return Err(Error::Usage(format!(
            "{what} since the run in {}:\n{changes}\nresume with the run's job file and --set values, or with --force to run it anyway: tasks whose command, cwd, env, items or parameters changed run again",
            dir.path.display()
        )));
    }
    Ok(file_changed.then_some(changes))
}

/// With `--force`: keeps the run's old copy of the job file beside the new one.
fn keep_old_job_file(job: &Job, dir: &RunDir, changes: &str) -> Result<(), Error> {
    tracing::warn!("the job file changed since the run (--force):\n{changes}");
    let copy = dir.job_copy_path();
    let (_, old_sha) = job::read_text(&copy)?;
    let kept = dir.path.join(format!("job.{}.toml", &old_sha[..12]));
    fs::rename(&copy, &kept).map_err(ReportError::io("keep the old job file as", &kept))?;
    crate::report::secure::write_new(&copy, job.origin.text.as_bytes())
        .map_err(ReportError::io("copy the job file to", &copy))?;
    Ok(())
}

/// One line per key that differs between two job files.
fn describe_changes(old: &str, new: &str) -> String {
    let flat = |text: &str| {
        let mut keys = BTreeMap::new();
        if let Ok(table) = text.parse::<toml::Table>() {
            flatten("", &toml::Value::Table(table), &mut keys);
        }
        keys
    };
    let (old, new) = (flat(old), flat(new));
    let mut lines: Vec<String> = overrides::changes(&old, &new)
        .into_iter()
        .map(|(key, was, now)| match (was, now) {
            (Some(was), None) => format!("  {key}: removed (was {was})"),
            (Some(was), Some(now)) => format!("  {key}: {was} -> {now}"),
            (None, now) => format!("  {key}: added ({})", now.unwrap_or_default()),
        })
        .collect();
    if lines.is_empty() {
        lines.push("  only comments or formatting".to_owned());
    }
    lines.join("\n")
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, value, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::describe_changes;

    #[test]
    fn changes_name_their_keys() {
        let old = "command = \"a\"\n[range]\nstart = 0\nend = 10\nchunk-size = 2\n";
        let new = "command = \"a\"\n[range]\nstart = 0\nend = 10\nchunk-size = 5\n[pool]\ntimeout = \"1s\"\n";
        assert_eq!(
            describe_changes(old, new),
            "  range.chunk-size: 2 -> 5\n  pool.timeout: added (\"1s\")"
        );
        assert_eq!(
            describe_changes(old, &format!("# hi\n{old}")),
            "  only comments or formatting"
        );
    }
}
