//! Integration tests: the real binary, real processes, real files, real signals.

mod browser;
mod cron;
mod errors;
mod experiments;
mod hostile;
mod jobs;
mod kill;
mod leaks;
mod operator;
mod plan;
mod report_cmd;
mod retry;
mod run;
mod schema;
mod security;
mod slurm;
mod sources;
mod state;
mod stderr;
mod support;
