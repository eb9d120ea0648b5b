use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    ExitCode::from(poolrun::main(poolrun::cli::Cli::parse()))
}
