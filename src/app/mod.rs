//! The subcommands: each wires the stages together and returns an exit code.

mod diff;
mod dispatch;
mod exec_task;
mod plan;
mod rerun;
mod resume;
mod run;
mod show;

pub use dispatch::main;
