//! `Plan` and the `Task`s it renders.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::job::{Command, Job};
use crate::plan::RunInfo;

/// A task's index in plan order, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One chunk of the range with everything rendered: what a worker needs to start it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Plan order.
    pub id: TaskId,
    /// The chunk's first item.
    pub start: i64,
    /// The chunk's last item, inclusive.
    pub last: i64,
    /// `last + step`.
    pub end: i64,
    /// Items in the chunk, >= 1.
    pub count: u64,
    /// The argv exactly as executed; a shell command is `["/bin/sh", "-c", script]`.
    pub argv: Vec<String>,
    /// Absolute working directory.
    pub cwd: PathBuf,
    /// The job's `env`, rendered for this task.
    pub env: Vec<(String, String)>,
    /// The task's identity for resume: a hash of everything that defines what it runs.
    pub key: String,
}

/// The task list of one run of a job.
#[derive(Debug, Clone)]
pub struct Plan {
    job: Arc<Job>,
    run: RunInfo,
    len: u64,
}

impl Plan {
    /// The plan for `run` of `job`.
    pub fn new(job: Arc<Job>, run: RunInfo) -> Self {
        let len = job.range.tasks();
        Self { job, run, len }
    }

    /// The number of tasks.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the plan has no task (an empty range).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The job being planned.
    pub fn job(&self) -> &Arc<Job> {
        &self.job
    }

    /// The run's id and directory.
    pub fn run(&self) -> &RunInfo {
        &self.run
    }

    /// Every task in plan order, rendered lazily.
    pub fn tasks(&self) -> impl Iterator<Item = Task> + '_ {
        (0..self.len).map(|i| self.task(TaskId(i)))
    }

    /// Every task in plan order without its key (left empty): for showing a plan, where the
    /// hash would be most of the cost.
    pub fn tasks_unkeyed(&self) -> impl Iterator<Item = Task> + '_ {
        (0..self.len).map(|i| self.render(TaskId(i), false))
    }

    /// Renders task `id`, which must be below `len()`.
    pub fn task(&self, id: TaskId) -> Task {
        self.render(id, true)
    }

    fn render(&self, id: TaskId, keyed: bool) -> Task {
        let range = self.job.range;
        assert!(
            id.0 < self.len,
            "task {id} is outside a plan of {} tasks",
            self.len
        );
        let values = range.chunk(id.0, &self.job.name, &self.run.id);
        let count = values.count;
        let argv = match &self.job.command {
            Command::Shell(script) => {
                vec![
                    "/bin/sh".to_owned(),
                    "-c".to_owned(),
                    script.render_shell(&values),
                ]
            }
            Command::Argv(args) => args.iter().map(|a| a.render(&values)).collect(),
        };
        let cwd = match &self.job.cwd {
            Some(cwd) => self.job.base_dir.join(cwd.render(&values)),
            None => self.job.base_dir.clone(),
        };
        let env: Vec<(String, String)> = self
            .job
            .env
            .iter()
            .map(|(name, value)| (name.clone(), value.render(&values)))
            .collect();
        let key = if keyed {
            task_key(
                &argv,
                &cwd,
                &env,
                values.start,
                values.last,
                values.end,
                count,
            )
        } else {
            String::new()
        };
        Task {
            id,
            start: values.start,
            last: values.last,
            end: values.end,
            count,
            argv,
            cwd,
            env,
            key,
        }
    }
}

/// The first 16 hex digits of a SHA-256 over the task's rendered command, cwd, env and chunk
/// bounds, each length-prefixed so no two different tasks can serialize alike. Not the task's
/// sequence number: after a change of chunk size or template, exactly the tasks whose key changed
/// are new to a resumed run.
fn task_key(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    start: i64,
    last: i64,
    end: i64,
    count: u64,
) -> String {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    for arg in argv {
        field(arg.as_bytes());
    }
    field(b"\0cwd");
    field(cwd.as_os_str().as_encoded_bytes());
    for (name, value) in env {
        field(name.as_bytes());
        field(value.as_bytes());
    }
    for n in [start, last, end] {
        field(&n.to_le_bytes());
    }
    field(&count.to_le_bytes());
    crate::job::hex(&hash.finalize()[..8])
}
