//! `poolrun run --resume`: finish an earlier run in its own directory, running only the tasks
//! without a succeeded outcome. Tasks are matched by their key (command, cwd, env and chunk), so
//! after a change of chunk size or template exactly the tasks whose key changed run again.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::run;
use crate::cli::RunArgs;
use crate::error::Error;
use crate::exec::{tail, unix};
use crate::job::{self, Job};
use crate::plan::{Plan, RunInfo};
use crate::report::{ReportError, RunDir, RunState, TaskRecord};

pub(super) fn resume(job: &Arc<Job>, target: &Path, args: &RunArgs) -> Result<u8, Error> {
    let dir = resolve(job, target)?;
    if !dir.join("journal.jsonl").is_file() {
        return Err(Error::Usage(format!(
            "{} is not a poolrun run directory: it has no journal.jsonl",
            dir.display()
        )));
    }
    let peek = RunState::read(&dir)?;
    let run_id = peek
        .first
        .as_ref()
        .map(|f| f.run_id.clone())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{}: the journal records no run to resume",
                dir.display()
            ))
        })?;
    let _lock = run::lock(job, &dir, &run_id)?;
    // Read again under the lock: a run that held it may have written more.
    let state = RunState::read(&dir)?;
    let killed = unix::kill_run_leftovers(&run_id);
    if killed > 0 {
        tracing::warn!("killed {killed} processes left running by the interrupted run");
    }
    check_job_unchanged(job, &dir, args.force)?;
    let plan = Plan::new(
        Arc::clone(job),
        RunInfo {
            id: run_id,
            dir: dir.clone(),
        },
    );
    let run_dir = RunDir { path: dir };
    relocate_outputs(&plan, &state, &run_dir.tasks_dir())?;
    let carried = carried_rows(&plan, &state, &run_dir.tasks_dir());
    tracing::info!(
        "resuming: {} of {} tasks already succeeded",
        carried.len(),
        plan.len()
    );
    // The journal holds everything the old report said; the new one replaces it when complete.
    match fs::remove_file(run_dir.report_path()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(ReportError::io("remove the old report", run_dir.report_path())(e).into());
        }
        _ => {}
    }
    run::execute(&plan, &run_dir, &state, carried, args)
}

/// The run directory to resume: `latest` is the job's newest run.
fn resolve(job: &Job, target: &Path) -> Result<PathBuf, Error> {
    let dir = if target == Path::new("latest") {
        RunInfo::with_id(job, "latest".to_owned()).dir
    } else {
        target.to_owned()
    };
    fs::canonicalize(&dir)
        .map_err(|e| Error::Usage(format!("cannot resume {}: {e}", dir.display())))
}

/// Refuses (exit 2) to resume with a job file that differs from the run's copy, saying what
/// changed, unless forced; when forced, keeps the old copy beside the new one.
fn check_job_unchanged(job: &Job, dir: &Path, force: bool) -> Result<(), Error> {
    let copy = dir.join("job.toml");
    let (old_text, old_sha) = job::read_text(&copy)?;
    if old_sha == job.source.sha256 {
        return Ok(());
    }
    let changes = describe_changes(&old_text, &job.source.text);
    if !force {
        return Err(Error::Usage(format!(
            "the job file changed since the run in {}:\n{changes}\nresume with --force to run it anyway: tasks whose command, cwd, env or chunk changed run again",
            dir.display()
        )));
    }
    tracing::warn!("the job file changed since the run (--force):\n{changes}");
    let kept = dir.join(format!("job.{}.toml", &old_sha[..12]));
    fs::rename(&copy, &kept).map_err(ReportError::io("keep the old job file as", &kept))?;
    crate::report::write_file(&copy, job.source.text.as_bytes())
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
    let mut lines = Vec::new();
    for (key, was) in &old {
        match new.get(key) {
            None => lines.push(format!("  {key}: removed (was {was})")),
            Some(now) if now != was => lines.push(format!("  {key}: {was} -> {now}")),
            Some(_) => {}
        }
    }
    for (key, now) in new.iter().filter(|(k, _)| !old.contains_key(*k)) {
        lines.push(format!("  {key}: added ({now})"));
    }
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

/// The report rows of the tasks that already succeeded, by their id in `plan`.
fn carried_rows(plan: &Plan, state: &RunState, tasks_dir: &Path) -> BTreeMap<u64, TaskRecord> {
    plan.tasks()
        .filter_map(|task| {
            let finished = state
                .finished
                .get(&task.key)
                .filter(|f| state.succeeded(&f.key))?;
            let stderr = tail(&tasks_dir.join(format!("{}.err", task.id)))
                .map(|(_, t)| t)
                .unwrap_or_default();
            Some((task.id.0, TaskRecord::finished(&task, finished, stderr)))
        })
        .collect()
}

/// Moves task output files to their task's id in the new plan when a changed job file moved the
/// task (a new chunk size or template); outputs of tasks that are gone from the plan go to
/// `tasks/superseded/`. Two phases through temporary names, so no move overwrites another.
fn relocate_outputs(plan: &Plan, state: &RunState, tasks_dir: &Path) -> Result<(), Error> {
    let mut old_ids: HashMap<&str, u64> = HashMap::new();
    for f in state.finished.values() {
        old_ids.insert(&f.key, f.task);
    }
    for s in state.open.values() {
        old_ids.insert(&s.key, s.task);
    }
    let mut new_ids: HashMap<u64, u64> = HashMap::new();
    let mut moved = false;
    for task in plan.tasks() {
        if let Some(&old) = old_ids.get(task.key.as_str()) {
            new_ids.insert(old, task.id.0);
            moved |= old != task.id.0;
        }
    }
    let gone = old_ids.values().any(|old| !new_ids.contains_key(old));
    if !moved && !gone {
        return Ok(());
    }
    let staging = tasks_dir.join(".moving");
    let superseded = tasks_dir.join("superseded");
    for dir in [&staging, &superseded] {
        fs::create_dir_all(dir).map_err(ReportError::io("create", dir))?;
    }
    let files = output_files(tasks_dir)?;
    let mut staged = Vec::new();
    for (old, rest) in &files {
        let from = tasks_dir.join(format!("{old}.{rest}"));
        match new_ids.get(old) {
            Some(new) if new == old => {}
            Some(new) => {
                let temp = staging.join(format!("{new}.{rest}"));
                fs::rename(&from, &temp).map_err(ReportError::io("move task output", &from))?;
                staged.push(temp);
            }
            None => {
                let to = superseded.join(format!("{old}.{rest}"));
                fs::rename(&from, &to).map_err(ReportError::io("move task output", &from))?;
            }
        }
    }
    for temp in staged {
        let to = tasks_dir.join(temp.file_name().expect("staged files have names"));
        fs::rename(&temp, &to).map_err(ReportError::io("move task output", &temp))?;
    }
    let _ = fs::remove_dir(&staging);
    let _ = fs::remove_dir(&superseded);
    Ok(())
}

/// `(id, rest)` for every `tasks/<id>.<rest>` file.
fn output_files(tasks_dir: &Path) -> Result<Vec<(u64, String)>, Error> {
    let entries = fs::read_dir(tasks_dir).map_err(ReportError::io("list", tasks_dir))?;
    Ok(entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (id, rest) = name.split_once('.')?;
            Some((id.parse().ok()?, rest.to_owned()))
        })
        .collect())
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
