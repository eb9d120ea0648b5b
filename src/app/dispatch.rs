//! From a parsed command line to an exit code: the subcommand, logging, and error messages.

use std::io::{self, Write};

use clap::CommandFactory;

use crate::cli::{Cli, CliCommand};
use crate::console;
use crate::error::exit;

/// Runs the parsed command line; returns the process exit code.
pub fn main(cli: Cli) -> u8 {
    console::set_color(cli.color);
    // With -q, a run the job's lock kept from starting (exit 75) prints nothing: cron mails
    // nothing for a skipped minute.
    let mut quiet_skip = false;
    let result = match cli.command {
        CliCommand::Run(args) => {
            console::stamp_lines();
            init_logging(args.options.verbose, args.options.quiet);
            quiet_skip = args.options.quiet;
            if args.resume.is_some() {
                super::resume::resume(&args)
            } else {
                super::run::run(&args)
            }
        }
        CliCommand::Plan(args) => super::plan::plan(&args),
        CliCommand::Validate {
            jobs,
            set,
            allow_huge,
        } => Ok(super::show::validate(&jobs, &set, allow_huge)),
        CliCommand::Rerun(args) => {
            console::stamp_lines();
            init_logging(args.run.verbose, args.run.quiet);
            quiet_skip = args.run.quiet;
            super::rerun::rerun(&args)
        }
        CliCommand::Diff { run_a, run_b } => super::diff::diff(&run_a, &run_b),
        CliCommand::Report(args) => {
            init_logging(0, false);
            super::show::report(&args)
        }
        CliCommand::Schema { which } => {
            print(format!("{}\n", crate::schema::render(which)).as_bytes());
            Ok(exit::SUCCESS)
        }
        CliCommand::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "poolrun", &mut text);
            print(&text);
            Ok(exit::SUCCESS)
        }
        CliCommand::ExecTask {
            run_dir,
            task,
            attempt,
            timeout,
        } => {
            console::stamp_lines();
            init_logging(0, false);
            super::exec_task::exec_task(&run_dir, task, attempt, timeout)
        }
        CliCommand::Man => {
            let mut text = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut text) {
                Ok(()) => {
                    print(&text);
                    Ok(exit::SUCCESS)
                }
                Err(e) => Err(
                    crate::report::ReportError::io("render the manual page", "stdout")(e).into(),
                ),
            }
        }
    };
    let code = result.unwrap_or_else(|e| {
        if !(quiet_skip && e.is_lock_skip()) {
            e.print();
        }
        e.exit_code()
    });
    console::flush();
    code
}

/// Writes to stdout; a reader that went away (`poolrun schema job | head`) is not an error.
fn print(bytes: &[u8]) {
    let _ = io::stdout().lock().write_all(bytes);
}

/// Logs go to stderr: with a terminal in colour, otherwise as plain lines that the console
/// stamps with the time (cron mail, log files).
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => tracing::Level::WARN,
        (false, 1) => tracing::Level::INFO,
        (false, _) => tracing::Level::DEBUG,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(console::event_writer)
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .with_ansi(console::color_stderr())
        .try_init();
}
