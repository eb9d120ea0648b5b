//! The command line (SPEC section 5).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::console::ColorChoice;
use crate::job::file::Processes;
use crate::report::export::Format;

/// Examples and exit codes, after `poolrun --help`.
const AFTER_HELP: &str = "\
Examples:
  poolrun run jobs/squares.toml               run a job; outputs and report in runs/squares/
  poolrun run job.toml -j 8 --timeout 30s     at most 8 tasks at once, 30 s each
  poolrun run job.toml --output ordered       also print each task's stdout, in task order
  poolrun run job.toml --resume               finish the latest run: only what did not succeed
  poolrun plan job.toml                       show the tasks without running any
  poolrun report job.toml                     the latest run of the job: what did not succeed
  poolrun report runs/squares/latest --task 7 --stderr
  poolrun report job.toml --format junit > junit.xml

Exit codes:
  0      every task succeeded
  1      the run finished and some tasks did not succeed
  2      usage error or invalid job file: nothing ran
  74     the run directory or report could not be written
  75     another run of the job holds its lock (overlap = \"skip\", or a second waiter)
  128+N  stopped by signal N (130 for Ctrl-C)";

/// Run declarative batch jobs: a TOML job file, a bounded pool of child processes, an ordered
/// report.
#[derive(Debug, Parser)]
#[command(
    name = "poolrun",
    version = env!("POOLRUN_VERSION"),
    about,
    propagate_version = true,
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// When to use colour: auto (on a terminal, unless `NO_COLOR` is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run a job: plan its tasks, run them in a bounded pool, write the report.
    Run(RunArgs),
    /// Print the task list exactly as `run` would execute it; runs nothing.
    Plan(PlanArgs),
    /// Check job files; prints nothing but errors.
    Validate {
        /// The job files ("-" reads one from stdin).
        #[arg(required = true)]
        jobs: Vec<PathBuf>,
        /// Change a key for this check, as `run --set` would.
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Accept a plan of more than 10^9 tasks, as `run --allow-huge` would.
        #[arg(long)]
        allow_huge: bool,
    },
    /// Run a past run's job again as a new run: its job file copy, its `--set` values and its
    /// input snapshot.
    Rerun(RerunArgs),
    /// Compare two runs task by task (matched by their items and parameters): exit 0 when the
    /// outcomes and outputs agree, 1 when not.
    Diff {
        /// The first run directory.
        run_a: PathBuf,
        /// The second run directory.
        run_b: PathBuf,
    },
    /// Show a run: its summary and every task that did not succeed, one task in full, its
    /// outputs, or the report as CSV, JUnit, a joblog or an HTML page.
    #[command(after_help = REPORT_HELP)]
    Report(ReportArgs),
    /// Print a JSON Schema.
    Schema {
        /// Which one.
        which: SchemaKind,
    },
    /// Print a shell completion script: `poolrun completions bash > /etc/bash_completion.d/poolrun`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `poolrun man | man -l -`.
    Man,
    /// Run one attempt of one task of a run, as a Slurm array element does, and write its
    /// outcome file.
    #[command(hide = true)]
    ExecTask {
        /// The run directory.
        run_dir: PathBuf,
        /// The task's id in the run's plan.
        task: u64,
        /// The attempt, from 1.
        #[arg(long, default_value_t = 1)]
        attempt: u32,
        /// The run's `--timeout`, when it had one.
        #[arg(long, value_parser = parse_timeout)]
        timeout: Option<Duration>,
    },
}

const REPORT_HELP: &str = "\
Examples:
  poolrun report job.toml                        the job's latest run (running runs too)
  poolrun report runs/flaky/latest --failed      only the tasks that ran and did not succeed
  poolrun report job.toml --task 13 --stderr     task 13's stderr
  poolrun report job.toml --output --tag         every task's stdout, lines prefixed by task id
  poolrun report job.toml --format csv > tasks.csv
  poolrun report job.toml --format html > report.html";

/// `poolrun report`'s options.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools, reason = "command-line flags")]
pub struct ReportArgs {
    /// A run directory (e.g. runs/NAME/latest), or a job file: its latest run.
    #[arg(value_name = "RUN_DIR|JOB")]
    pub target: PathBuf,
    /// How to print it.
    #[arg(long, value_enum, default_value_t = Format::Table, conflicts_with = "json")]
    pub format: Format,
    /// The same as --format json.
    #[arg(long)]
    pub json: bool,
    /// Only the tasks that ran and did not succeed.
    #[arg(long, conflicts_with = "task")]
    pub failed: bool,
    /// Only task N: its whole record, or with --stdout/--stderr its output.
    #[arg(long, value_name = "N")]
    pub task: Option<u64>,
    /// With --task: print the task's stdout.
    #[arg(long, requires = "task", conflicts_with = "stderr")]
    pub stdout: bool,
    /// With --task: print the task's stderr.
    #[arg(long, requires = "task")]
    pub stderr: bool,
    /// Print the tasks' stdout, in task order (with --failed or --task, only theirs).
    #[arg(long, conflicts_with_all = ["stdout", "stderr", "json"])]
    pub output: bool,
    /// With --output: put the task id and a tab before each line.
    #[arg(long, requires = "output")]
    pub tag: bool,
    /// With --output: a line printed before each task's output; {id} becomes the task's id,
    /// e.g. --separator '==> task {id} <=='.
    #[arg(long, value_name = "LINE", requires = "output")]
    pub separator: Option<String>,
}

/// `poolrun plan`'s options.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The job file ("-" reads it from stdin).
    pub job: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print a plan of more than 10^9 tasks.
    #[arg(long)]
    pub allow_huge: bool,
    /// Change a key for this plan, as `run --set` would.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// `poolrun rerun`'s options.
#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The past run's directory.
    #[arg(value_name = "RUN_DIR")]
    pub past: PathBuf,
    /// How the new run runs.
    #[command(flatten)]
    pub run: RunOptions,
}

/// How a run runs: the options of `run` that `rerun` shares.
#[derive(Debug, Args, Default, Clone)]
pub struct RunOptions {
    /// Tasks at once: N, "auto" or "N%" of the CPUs (overrides [pool] processes).
    #[arg(long, short = 'j', value_parser = Processes::parse)]
    pub processes: Option<Processes>,
    /// Per-task timeout such as 30s (overrides [pool] timeout).
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// The run directory (overrides [report] dir); relative to the current directory.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Run a plan of more than 10^9 tasks.
    #[arg(long)]
    pub allow_huge: bool,
    /// Print only errors and, when something failed, the summary.
    #[arg(long, short, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log every task as it starts and finishes.
    #[arg(long, short, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Also print each task's stdout on poolrun's stdout as tasks finish: `ordered` in task
    /// order, `completed` in the order they finish. Default: outputs stay in the run directory.
    #[arg(long, value_enum, value_name = "ORDER")]
    pub output: Option<OutputMode>,
    /// With --output: put the task id and a tab before each line.
    #[arg(long, requires = "output")]
    pub tag: bool,
    /// What runs the tasks: this machine's pool, or Slurm job arrays (default: slurm when the
    /// job file has a [slurm] table, else local).
    #[arg(long, value_enum)]
    pub backend: Option<BackendChoice>,
}

/// `run --backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// Child processes on this machine.
    Local,
    /// Slurm job arrays; the run directory must be on storage the compute nodes share.
    Slurm,
}

/// `run --output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    /// In task order, each as soon as it and every task before it finished (like `Pool.map`).
    Ordered,
    /// As tasks finish (like `imap_unordered`).
    Completed,
}

/// `poolrun run`'s options.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// The job file ("-" reads it from stdin; its relative paths then start at the current
    /// directory).
    pub job: PathBuf,
    /// Change a key of the job file for this run: a dotted key and a TOML value, e.g.
    /// --set range.end=500 or --set 'matrix.lr=[0.1]'. Recorded in the report.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Finish an earlier run: run every task without a succeeded outcome, in its run directory
    /// (default: the job's latest run).
    #[arg(long, value_name = "RUN_DIR|latest", num_args = 0..=1, default_missing_value = "latest")]
    pub resume: Option<PathBuf>,
    /// With --resume: run even though the job file (or a --set) changed since the run.
    #[arg(long, requires = "resume")]
    pub force: bool,
    /// How the run runs.
    #[command(flatten)]
    pub options: RunOptions,
}

/// The schemas `poolrun schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// The job file.
    Job,
    /// report.json.
    Report,
    /// Each line of journal.jsonl.
    Journal,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match crate::job::duration::parse(s)? {
        d if d.is_zero() => Err("expected a duration above zero, found 0".to_owned()),
        d => Ok(d),
    }
}
