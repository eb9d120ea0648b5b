//! From a parsed command line to an exit code: the subcommand, logging, and error messages.

use std::io::{self, IsTerminal, Write};

use crate::cli::{Cli, CliCommand};
use crate::console;
use crate::error::exit;

/// Runs the parsed command line; returns the process exit code.
pub fn main(cli: Cli) -> u8 {
    let result = match cli.command {
        CliCommand::Run(args) => {
            init_logging(args.options.verbose, args.options.quiet);
            if args.resume.is_some() {
                super::resume::resume(&args)
            } else {
                super::run::run(&args)
            }
        }
        CliCommand::Plan(args) => super::plan::plan(&args),
        CliCommand::Validate { jobs, set } => Ok(super::show::validate(&jobs, &set)),
        CliCommand::Rerun(args) => {
            init_logging(args.run.verbose, args.run.quiet);
            super::rerun::rerun(&args)
        }
        CliCommand::Diff { run_a, run_b } => super::diff::diff(&run_a, &run_b),
        CliCommand::Report {
            run_dir,
            json,
            output,
        } => super::show::report(&run_dir, json, output),
        CliCommand::Schema { which } => {
            let text = format!("{}\n", crate::schema::render(which));
            // `poolrun schema job | head` is not an error.
            let _ = io::stdout().lock().write_all(text.as_bytes());
            Ok(exit::SUCCESS)
        }
    };
    let code = result.unwrap_or_else(|e| {
        e.print();
        e.exit_code()
    });
    console::flush();
    code
}

/// Logs go to stderr: with a terminal in colour, otherwise as plain timestamped lines (cron mail,
/// log files).
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
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}
