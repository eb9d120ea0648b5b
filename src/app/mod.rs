//! The subcommands: each wires the stages together and returns an exit code.

mod dispatch;
mod plan;
mod resume;
mod run;
mod show;

pub use dispatch::main;
