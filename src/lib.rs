//! poolrun runs declarative batch jobs: a TOML job file describes a command, an argument range, a
//! chunk size and a process limit; poolrun plans the tasks, runs each as a child process in a
//! bounded pool with per-task timeouts, and writes a report ordered by task.
//!
//! The pipeline is one module per stage: `job` (parse, validate) -> `plan` (task list) -> `exec`
//! (the pool and the child processes) -> `report`. `app` wires them together for each subcommand.

pub mod app;
pub mod cli;
pub mod console;
pub mod error;
pub mod exec;
pub mod job;
pub mod plan;
pub mod report;
pub mod schema;

pub use app::main;
