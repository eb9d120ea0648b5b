//! `poolrun validate` and `poolrun report`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::ReportArgs;
use crate::error::{Error, exit};
use crate::exec::TaskStatus;
use crate::job::{self, Job, Overrides};
use crate::plan::{Plan, RunInfo};
use crate::report::export::{self, Format, task_detail};
use crate::report::journal::RunStarted;
use crate::report::session;
use crate::report::stream::tag_lines;
use crate::report::view::{Filter, View};
use crate::report::{Provenance, ReportError, RunDir, RunLock, RunState, TaskRecord};

pub(super) fn validate(paths: &[PathBuf], set: &[String], allow_huge: bool) -> u8 {
    let mut code = exit::SUCCESS;
    let overrides = Overrides {
        set: set.to_vec(),
        ..Overrides::default()
    };
    for path in paths {
        let checked = job::load(path, &overrides).and_then(|job| job::check_size(&job, allow_huge));
        if let Err(e) = checked {
            Error::from(e).print();
            code = exit::USAGE;
        }
    }
    code
}

pub(super) fn report(args: &ReportArgs) -> Result<u8, Error> {
    let dir = locate(&args.target)?;
    let filter = Filter {
        failed: args.failed,
        task: args.task,
    };
    let format = if args.json { Format::Json } else { args.format };
    // A run with no report: still going (read from its journal, no lock needed), or its engine
    // died (the report is rebuilt from the journal, once).
    let (state, plan) = if dir.report_path().exists() {
        (None, None)
    } else {
        let state = RunState::read(&dir)?;
        let job = run_job(&dir, state.last.as_ref(), &Overrides::default())?;
        let first = state.first.as_ref().expect("run_job checked");
        let plan = Plan::new(
            Arc::new(job),
            RunInfo {
                id: first.run_id.clone(),
                dir: dir.path.clone(),
            },
        );
        if is_running(&dir, &state, plan.job()) {
            (Some(state), Some(plan))
        } else {
            session::rebuild(&dir, &plan, &state)?;
            (None, None)
        }
    };
    let view = match (&plan, &state) {
        (Some(plan), Some(state)) => View::live(dir.clone(), plan, state),
        _ => View::saved(dir.clone()),
    };
    let mut out = io::stdout().lock();
    if let Some(id) = args.task {
        let row = find(&view, id)?;
        if args.stdout || args.stderr {
            let (file, what) = if args.stdout {
                (&row.stdout, "stdout")
            } else {
                (&row.stderr, "stderr")
            };
            if let Some(file) = file {
                copy_out(&dir.path.join(file), &mut out, None)?;
            } else if row.status == TaskStatus::NotRun {
                tracing::warn!("task {id} never ran: it has no {what}");
            }
            return Ok(code_of(row.status == TaskStatus::Succeeded));
        }
        if format == Format::Table && !args.output {
            write_out(&mut out, task_detail(&row, &dir).as_bytes())?;
            return Ok(code_of(row.status == TaskStatus::Succeeded));
        }
    }
    if args.output {
        return print_outputs(&view, filter, args, &mut out);
    }
    let summary = match export::export(&view, format, filter, &mut out)? {
        Some(summary) => summary,
        None => view.head(filter)?.summary,
    };
    // A run still going is fine so far when nothing failed yet.
    let ok = if view.is_saved() {
        summary.all_succeeded()
    } else {
        summary.unsuccessful() == 0
    };
    Ok(code_of(ok))
}

/// `--output`: the stdout of each task `filter` keeps, in task order, with `--tag` and
/// `--separator`.
fn print_outputs(
    view: &View<'_>,
    filter: Filter,
    args: &ReportArgs,
    out: &mut impl Write,
) -> Result<u8, Error> {
    let mut all_ok = true;
    let mut out = LineEnd::new(out);
    let mut failed = Ok(());
    view.each(&mut |row| {
        if !filter.keeps(&row) {
            return Ok(());
        }
        all_ok &= row.status == TaskStatus::Succeeded;
        if let Some(separator) = &args.separator {
            // The separator starts a line of its own, whatever the output before it ended with.
            if !out.at_line_start {
                out.write_all(b"\n")?;
            }
            let line = separator.replace("{id}", &row.id.to_string());
            out.write_all(format!("{line}\n").as_bytes())?;
        }
        if let Some(file) = &row.stdout {
            let tag = args.tag.then_some(row.id);
            if let Err(e) = copy_out(&view.dir.path.join(file), &mut out, tag) {
                failed = Err(e);
                return Err(io::Error::other("stopped"));
            }
        }
        Ok(())
    })?
    .or_else(ignore_closed)
    .map_err(ReportError::io("write outputs to", "stdout"))?;
    failed?;
    Ok(code_of(all_ok))
}

/// A writer that knows whether what it wrote last ended a line.
struct LineEnd<W> {
    inner: W,
    at_line_start: bool,
}

impl<W: Write> LineEnd<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            at_line_start: true,
        }
    }
}

impl<W: Write> Write for LineEnd<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.at_line_start = buf[n - 1] == b'\n';
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn code_of(ok: bool) -> u8 {
    if ok {
        exit::SUCCESS
    } else {
        exit::TASKS_FAILED
    }
}

fn ignore_closed(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e)
    }
}

fn write_out(out: &mut impl Write, bytes: &[u8]) -> Result<(), Error> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .or_else(ignore_closed)
        .map_err(|e| ReportError::io("write to", "stdout")(e).into())
}

/// Copies a task's output file to `out`, with `tag` and a tab before each line when given.
fn copy_out(path: &Path, out: &mut impl Write, tag: Option<u64>) -> Result<(), Error> {
    let file = std::fs::File::open(path).map_err(ReportError::unreadable(path))?;
    match tag {
        Some(id) => tag_lines(id, file, out),
        None => io::copy(&mut io::BufReader::new(file), out).map(drop),
    }
    .and_then(|()| out.flush())
    .or_else(ignore_closed)
    .map_err(|e| ReportError::io("write to", "stdout")(e).into())
}

/// Task `id`'s row.
fn find(view: &View<'_>, id: u64) -> Result<TaskRecord, Error> {
    let mut found = None;
    let mut count = 0;
    view.each(&mut |row| {
        count += 1;
        if row.id == id {
            found = Some(row);
            // Found: stop reading.
            return Err(io::Error::other("found"));
        }
        Ok(())
    })?
    .ok();
    found.ok_or_else(|| {
        Error::Usage(format!(
            "the run in {} has no task {id}: its tasks are 0 to {}",
            dir_text(&view.dir),
            count.max(1) - 1
        ))
    })
}

fn dir_text(dir: &RunDir) -> String {
    crate::report::render::shown_path(&dir.path)
}

/// The run directory `poolrun report` shows: a run directory as given, or for a job file the
/// job's latest run.
fn locate(target: &Path) -> Result<RunDir, Error> {
    let meta = std::fs::metadata(target)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", target.display())))?;
    let path = if meta.is_dir() {
        // A job's run root (`runs/flaky`) means its latest run.
        let latest = target.join("latest");
        let is_run = target.join("report.json").exists() || target.join("journal.jsonl").exists();
        if !is_run && latest.exists() {
            latest
        } else {
            target.to_owned()
        }
    } else {
        // A job file: only its run directory is needed, not its items.
        let locating = Overrides {
            snapshot: Some(Arc::default()),
            ..Overrides::default()
        };
        let job = job::load(target, &locating)?;
        let latest = RunInfo::with_id(&job, "latest".to_owned()).dir;
        if !latest.exists() {
            return Err(Error::Usage(format!(
                "job {} has no runs yet: {} does not exist",
                job.name,
                latest.display()
            )));
        }
        latest
    };
    let path = std::fs::canonicalize(&path).map_err(ReportError::unreadable(&path))?;
    let dir = RunDir { path };
    if !dir.report_path().exists() && !dir.journal_path().exists() {
        return Err(Error::Usage(format!(
            "{} is not a poolrun run directory: it has neither report.json nor journal.jsonl",
            dir.path.display()
        )));
    }
    Ok(dir)
}

/// Whether the run in `dir` is going now: its job's lock is held, by this run.
fn is_running(dir: &RunDir, state: &RunState, job: &Job) -> bool {
    let root = dir.path.parent().unwrap_or(Path::new("/"));
    let run_id = state.first.as_ref().map(|f| f.run_id.as_str());
    RunLock::holder(&RunLock::path(root, &job.name))
        .is_some_and(|h| Some(h.run_id.as_str()) == run_id)
}

/// The job a run directory's journal says ran, loaded from the run's copy: as the session
/// `started` (the first or the latest `run_started`) had it, with `extra` settings that do not
/// change what runs.
pub(super) fn run_job(
    dir: &RunDir,
    started: Option<&RunStarted>,
    extra: &Overrides,
) -> Result<Job, Error> {
    let Some(started) = started else {
        return Err(Error::Usage(format!(
            "{}: the journal records no run",
            dir.path.display()
        )));
    };
    let original = Path::new(&started.job_file);
    let base_dir = started
        .base_dir
        .as_deref()
        .map_or_else(|| original.parent().unwrap_or(Path::new("/")), Path::new);
    load_run_job(
        dir,
        original,
        base_dir,
        started.provenance.as_deref(),
        extra,
    )
}

/// The job a run ran: its copy of the job file, as if still at `original` with relative paths
/// from `base_dir`, with the run's `--set` values and its input snapshot (`extra` adds
/// command-line settings that do not change what runs).
fn load_run_job(
    dir: &RunDir,
    original: &Path,
    base_dir: &Path,
    provenance: Option<&Provenance>,
    extra: &Overrides,
) -> Result<Job, Error> {
    let snapshot = match provenance.and_then(|p| p.inputs.first()) {
        Some(input) => Some(Arc::new(dir.read_snapshot(&input.sha256)?)),
        None => None,
    };
    let overrides = Overrides {
        set: provenance.map(|p| p.set.clone()).unwrap_or_default(),
        snapshot,
        ..extra.clone()
    };
    Ok(job::load_copy(
        &dir.job_copy_path(),
        original,
        base_dir,
        &overrides,
    )?)
}
