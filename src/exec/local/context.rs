//! What a worker's attempt shares with the engine: the run's settings and shared state, and the
//! events it sends back.

use std::path::Path;
use std::sync::mpsc::Sender;
use std::time::Duration;

use crate::exec::Event;
use crate::exec::StartLog;
use crate::exec::local::containment::Containment;
use crate::exec::local::pause::PauseClock;
use crate::exec::local::running::Running;
use crate::exec::local::spawn::Environment;

/// What every worker shares.
pub(crate) struct Context<'a> {
    pub tasks_dir: &'a Path,
    pub timeout: Option<Duration>,
    pub grace_period: Duration,
    pub running: Running,
    pub pause: PauseClock,
    /// What every task's environment starts from.
    pub env: Environment,
    pub memory_limit: Option<u64>,
    pub max_processes: Option<u32>,
    pub containment: &'a Containment,
    pub events: Sender<Event>,
    pub start_log: Option<StartLog>,
    pub halt_on_rate: bool,
}
