//! The command line (SPEC section 5).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::job::file::Processes;

/// Run declarative batch jobs: a TOML job file, a bounded pool of child processes, an ordered
/// report.
#[derive(Debug, Parser)]
#[command(name = "poolrun", version, about, propagate_version = true)]
pub struct Cli {
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
    /// Show a saved run: its summary and every task that did not succeed.
    Report {
        /// The run directory, e.g. runs/NAME/latest.
        run_dir: PathBuf,
        /// Print report.json.
        #[arg(long, conflicts_with = "output")]
        json: bool,
        /// Print every task's stdout, in task order.
        #[arg(long)]
        output: bool,
    },
    /// Print a JSON Schema.
    Schema {
        /// Which one.
        which: SchemaKind,
    },
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
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    /// The job file.
    Job,
    /// report.json.
    Report,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("expected a duration above zero, found 0".to_owned()),
        Ok(d) if d > crate::job::file::MAX_DURATION => {
            Err("expected a duration of at most 10 years".to_owned())
        }
        Ok(d) => Ok(d),
        Err(e) => Err(format!("expected a duration such as 30s or 1m 30s: {e}")),
    }
}
