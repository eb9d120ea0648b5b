//! The subcommands: each wires the stages together and returns an exit code.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::cli::{Cli, CliCommand, RunArgs};
use crate::error::{Error, chain, exit};
use crate::exec::{LocalPool, TaskOutcome, TaskStatus};
use crate::job::{self, Job, Overrides};
use crate::plan::{Plan, RunInfo, Task};
use crate::report::journal::Event;
use crate::report::model::timestamp;
use crate::report::{self, JobRecord, Journal, ReportWriter, RunDir, RunRecord, RunStatus, render};

/// How far dispatch may run ahead of the lowest unfinished task, per process, and at least.
const WINDOW_PER_PROCESS: u64 = 64;
const MIN_WINDOW: u64 = 1024;

/// Runs the parsed command line; returns the process exit code.
pub fn main(cli: Cli) -> u8 {
    let result = match cli.command {
        CliCommand::Run(args) => run(&args),
        CliCommand::Plan { job, json } => plan(&job, json),
        CliCommand::Validate { jobs } => Ok(validate(&jobs)),
        CliCommand::Report {
            run_dir,
            json,
            output,
        } => show_report(&run_dir, json, output),
        CliCommand::Schema { which } => {
            println!("{}", crate::schema::render(which));
            Ok(exit::SUCCESS)
        }
    };
    result.unwrap_or_else(|e| {
        report_error(&e);
        e.exit_code()
    })
}

fn report_error(e: &Error) {
    match e {
        Error::Job(job::JobError::Invalid(d)) => eprintln!("error: {d}"),
        e => eprintln!("poolrun: error: {}", chain(e)),
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => tracing::Level::WARN,
        (false, 1) => tracing::Level::INFO,
        (false, _) => tracing::Level::DEBUG,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}

fn run(args: &RunArgs) -> Result<u8, Error> {
    init_logging(args.verbose, args.quiet);
    let overrides = Overrides {
        processes: args.processes.clone(),
        timeout: args.timeout,
        run_dir: args.run_dir.clone(),
    };
    let job = Arc::new(job::load(&args.job, &overrides)?);
    let plan = Plan::new(Arc::clone(&job), RunInfo::new(&job));
    let dir = RunDir::create(plan.run(), &job)?;
    let journal = Journal::create(&dir.journal_path())?;
    let processes = job.pool.processes.get();
    let started_at = SystemTime::now();
    let clock = Instant::now();
    journal.write(&Event::RunStarted {
        at: timestamp(started_at),
        run_id: &plan.run().id,
        job_sha256: &job.source.sha256,
        tasks: plan.len(),
        processes,
    })?;
    let mut writer = ReportWriter::create(&dir.report_path(), &job_record(&job))?;
    tracing::info!(
        "{}: {} tasks, {processes} at once, run directory {}",
        job.name,
        plan.len(),
        dir.path.display()
    );

    let progress = progress_bar(plan.len(), args.quiet);
    let tasks_dir = dir.tasks_dir();
    let pool = LocalPool {
        tasks_dir: &tasks_dir,
        window: (WINDOW_PER_PROCESS * processes as u64).max(MIN_WINDOW),
    };
    let (end, sink_error) = pool.run(&plan, &journal, |outcome: TaskOutcome| {
        progress.suspend(|| log_outcome(&outcome));
        journal.finished(&outcome)?;
        writer.push(&outcome)?;
        progress.inc(1);
        Ok::<(), report::ReportError>(())
    })?;
    progress.finish_and_clear();
    if let Some(e) = sink_error {
        return Err(e.into());
    }

    let status = if end.signal.is_some() {
        RunStatus::Interrupted
    } else {
        RunStatus::Completed
    };
    let finished_at = SystemTime::now();
    journal.write(&Event::RunFinished {
        at: timestamp(finished_at),
        status,
    })?;
    journal.sync()?;
    let record = RunRecord {
        id: plan.run().id.clone(),
        dir: dir.path.display().to_string(),
        host: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        poolrun_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: timestamp(started_at),
        finished_at: timestamp(finished_at),
        processes,
        status,
    };
    let summary = writer.finish(&plan, &record, clock.elapsed().as_secs_f64())?;
    if !args.quiet || !summary.all_succeeded() || end.signal.is_some() {
        eprintln!(
            "{}",
            render::summary_line(&job.name, &summary, &dir.report_path())
        );
    }
    Ok(match end.signal {
        Some(signal) => exit::signal(signal),
        None if summary.all_succeeded() => exit::SUCCESS,
        None => exit::TASKS_FAILED,
    })
}

fn job_record(job: &Job) -> JobRecord {
    JobRecord {
        name: job.name.clone(),
        file: job.source.absolute.display().to_string(),
        sha256: job.source.sha256.clone(),
    }
}

fn progress_bar(tasks: u64, quiet: bool) -> ProgressBar {
    // indicatif draws nothing when stderr is not a terminal, so cron mail and logs stay clean.
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(tasks)
    };
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} tasks {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn log_outcome(o: &TaskOutcome) {
    let id = o.task.id;
    match (o.status, &o.error) {
        (TaskStatus::Succeeded, _) => tracing::info!("task {id} succeeded in {:?}", o.duration),
        (status, Some(error)) => tracing::warn!("task {id} {}: {error}", status.as_str()),
        (status, None) => tracing::warn!("task {id} {}", status.as_str()),
    }
}

/// One task as `poolrun plan --json` prints it.
#[derive(Serialize)]
struct PlannedTask<'a> {
    id: u64,
    start: i64,
    last: i64,
    end: i64,
    count: u64,
    command: &'a [String],
    cwd: String,
}

fn plan(path: &Path, json: bool) -> Result<u8, Error> {
    let job = Arc::new(job::load(path, &Overrides::default())?);
    let plan = Plan::new(Arc::clone(&job), RunInfo::new(&job));
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let written = if json {
        plan_json(&plan, &mut out)
    } else {
        plan_table(&plan, &mut out)
    };
    match written.and_then(|()| out.flush()) {
        // `poolrun plan | head` is not an error.
        Ok(()) => Ok(exit::SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(exit::SUCCESS),
        Err(e) => {
            eprintln!("poolrun: error: cannot write the plan: {e}");
            Ok(exit::IO)
        }
    }
}

fn plan_json(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"[")?;
    for task in plan.tasks() {
        out.write_all(if task.id.0 == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut *out, &planned(&task))?;
    }
    out.write_all(if plan.is_empty() { b"]\n" } else { b"\n]\n" })
}

fn planned(task: &Task) -> PlannedTask<'_> {
    PlannedTask {
        id: task.id.0,
        start: task.start,
        last: task.last,
        end: task.end,
        count: task.count,
        command: &task.argv,
        cwd: task.cwd.display().to_string(),
    }
}

fn plan_table(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    let job = plan.job();
    eprintln!(
        "{}: {} tasks over {} items, {} at once",
        job.name,
        plan.len(),
        job.range.items,
        job.pool.processes
    );
    writeln!(
        out,
        "{:>6} {:>12} {:>12} {:>8}  command",
        "id", "start", "last", "count"
    )?;
    for task in plan.tasks() {
        let command = match task.argv.as_slice() {
            [sh, c, script] if sh == "/bin/sh" && c == "-c" => script.clone(),
            argv => argv.join(" "),
        };
        writeln!(
            out,
            "{:>6} {:>12} {:>12} {:>8}  {command}",
            task.id, task.start, task.last, task.count
        )?;
    }
    Ok(())
}

fn validate(paths: &[std::path::PathBuf]) -> u8 {
    let mut code = exit::SUCCESS;
    for path in paths {
        if let Err(e) = job::load(path, &Overrides::default()) {
            report_error(&e.into());
            code = exit::USAGE;
        }
    }
    code
}

fn show_report(dir: &Path, json: bool, output: bool) -> Result<u8, Error> {
    let report = report::read_report(dir)?;
    let mut out = io::stdout().lock();
    let written = if json {
        std::fs::read(dir.join("report.json")).and_then(|bytes| out.write_all(&bytes))
    } else if output {
        report
            .tasks
            .iter()
            .filter_map(|t| t.stdout.as_ref())
            .try_for_each(|file| {
                let mut f = std::fs::File::open(dir.join(file))?;
                io::copy(&mut f, &mut out).map(drop)
            })
    } else {
        out.write_all(render::report_text(&report).as_bytes())
    };
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(report::ReportError::io("print the report from", dir)(e).into()),
    }
    Ok(if report.summary.all_succeeded() {
        exit::SUCCESS
    } else {
        exit::TASKS_FAILED
    })
}
