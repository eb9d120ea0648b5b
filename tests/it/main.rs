//! Integration tests: the real binary, real processes, real files, real signals.

mod errors;
mod jobs;
mod kill;
mod plan;
mod report_cmd;
mod run;
mod support;
