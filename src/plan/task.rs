//! `Plan` and the `Task`s it renders.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::job::chunk::ChunkValues;
use crate::job::source::{Chunk, Combo};
use crate::job::template::Template;
use crate::job::{Command, Job};
use crate::plan::RunInfo;

/// A task's index in plan order, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskId(pub u64);

impl TaskId {
    /// The name of this task's output file with extension `ext` in `tasks/`, its id
    /// zero-padded to `width` digits: `0007.out`.
    pub fn output_file(self, width: usize, ext: &str) -> String {
        format!("{:0width$}.{ext}", self.0)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One chunk of the source for one combination of the matrix, with everything rendered: what
/// a worker needs to start it.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Plan order.
    pub id: TaskId,
    /// Digits of the plan's last id: output files are named with ids zero-padded to it
    /// (`tasks/0007.out`), so a shell glob lists them in task order.
    pub id_width: usize,
    /// The chunk's items.
    pub items: TaskItems,
    /// Its matrix parameters.
    pub params: Option<Arc<Combo>>,
    /// `{seed}`, when the job has a base seed.
    pub seed: Option<u64>,
    /// The argv exactly as executed; a shell command is `["/bin/sh", "-c", script]`.
    pub argv: Vec<OsString>,
    /// Absolute working directory.
    pub cwd: PathBuf,
    /// The job's `env`, rendered for this task.
    pub env: Vec<(String, OsString)>,
    /// The task's identity for resume: a hash of everything that defines what it runs (its
    /// rendered command, cwd and env, its items and parameters).
    pub key: String,
    /// The task's identity across runs: a hash of its items and parameters only, the same
    /// whatever its id, command or run. `poolrun diff` matches tasks by it; `{seed}` comes from it.
    pub content_key: String,
}

/// A task's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskItems {
    /// A job with only a matrix.
    None,
    /// A chunk of a range.
    Range {
        /// The first item.
        start: i64,
        /// The last item, inclusive.
        last: i64,
        /// `last + step`.
        end: i64,
        /// Items, >= 1.
        count: u64,
    },
    /// A chunk of a list: the items themselves.
    List(Vec<Vec<u8>>),
}

impl TaskItems {
    /// Items in the chunk.
    pub fn count(&self) -> u64 {
        match self {
            Self::None => 0,
            Self::Range { count, .. } => *count,
            Self::List(items) => items.len() as u64,
        }
    }
}

impl Task {
    /// A task with nothing in it, for `Plan::render_unkeyed_into` to fill.
    pub fn empty() -> Self {
        Self {
            id: TaskId(0),
            id_width: 0,
            items: TaskItems::None,
            params: None,
            seed: None,
            argv: Vec::new(),
            cwd: PathBuf::new(),
            env: Vec::new(),
            key: String::new(),
            content_key: String::new(),
        }
    }

    /// The variables that tell the task its items, parameters and seed: `POOLRUN_START`,
    /// `POOLRUN_LAST`, `POOLRUN_COUNT` (and `POOLRUN_END` for a range, `POOLRUN_ITEM` for a
    /// chunk of one item), `POOLRUN_PARAM_<KEY>`, `POOLRUN_SEED`.
    pub fn variables(&self) -> Vec<(String, OsString)> {
        let mut vars: Vec<(String, OsString)> = Vec::new();
        let mut text =
            |name: &str, value: Vec<u8>| vars.push((name.to_owned(), OsString::from_vec(value)));
        match &self.items {
            TaskItems::None => {}
            TaskItems::Range {
                start,
                last,
                end,
                count,
            } => {
                text("POOLRUN_START", start.to_string().into_bytes());
                text("POOLRUN_LAST", last.to_string().into_bytes());
                text("POOLRUN_END", end.to_string().into_bytes());
                text("POOLRUN_COUNT", count.to_string().into_bytes());
                if *count == 1 {
                    text("POOLRUN_ITEM", start.to_string().into_bytes());
                }
            }
            TaskItems::List(items) => {
                let (first, last) = (items.first().cloned(), items.last().cloned());
                text("POOLRUN_START", first.clone().unwrap_or_default());
                text("POOLRUN_LAST", last.unwrap_or_default());
                text("POOLRUN_COUNT", items.len().to_string().into_bytes());
                if items.len() == 1 {
                    text("POOLRUN_ITEM", first.unwrap_or_default());
                }
            }
        }
        if let Some(combo) = &self.params {
            for param in combo.params() {
                let name = format!("POOLRUN_PARAM_{}", crate::job::param_env_name(&param.key));
                text(&name, param.text.clone().into_bytes());
            }
        }
        if let Some(seed) = self.seed {
            text("POOLRUN_SEED", seed.to_string().into_bytes());
        }
        vars
    }

    /// The name of the task's output file with extension `ext` in `tasks/`: `0007.out`.
    pub fn output_file(&self, ext: &str) -> String {
        self.id.output_file(self.id_width, ext)
    }

    /// The argv as text, any byte that is not UTF-8 replaced: for reports and tables.
    pub fn argv_text(&self) -> Vec<String> {
        self.argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }
}

/// A plan whose tasks differ only in their numbers; see `Plan::numeric`.
pub struct NumericPlan<'a> {
    plan: &'a Plan,
    argv: &'a [Template],
}

impl NumericPlan<'_> {
    /// The command's templates, one per argument.
    pub fn argv(&self) -> &[Template] {
        self.argv
    }

    /// Every task's working directory.
    pub fn cwd(&self) -> &Path {
        &self.plan.job.base_dir
    }

    /// The placeholder values of task `id`, which must be below the plan's `len()`.
    pub fn values(&self, id: TaskId) -> ChunkValues<'_> {
        let job = &self.plan.job;
        ChunkValues {
            id: id.0,
            chunk: job
                .source
                .as_ref()
                .map_or(Chunk::None, |source| source.chunk(id.0)),
            combo: None,
            seed: None,
            name: &job.name,
            run_id: &self.plan.run.id,
        }
    }
}

/// The task list of one run of a job.
#[derive(Debug, Clone)]
pub struct Plan {
    job: Arc<Job>,
    run: RunInfo,
    len: u64,
    /// Chunks of the source per combination of the matrix.
    chunks: u64,
}

impl Plan {
    /// The plan for `run` of `job`.
    pub fn new(job: Arc<Job>, run: RunInfo) -> Self {
        let len = job.tasks();
        let chunks = job.source.as_ref().map_or(1, crate::job::Source::chunks);
        Self {
            job,
            run,
            len,
            chunks,
        }
    }

    /// The number of tasks.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the plan has no task (an empty source).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Digits of the last task id: the width output file names pad ids to.
    pub fn id_width(&self) -> usize {
        self.len
            .saturating_sub(1)
            .checked_ilog10()
            .map_or(1, |digits| digits as usize + 1)
    }

    /// The job being planned.
    pub fn job(&self) -> &Arc<Job> {
        &self.job
    }

    /// The run's id and directory.
    pub fn run(&self) -> &RunInfo {
        &self.run
    }

    /// When every task differs from the others only in its numbers (the chunks of a range, no
    /// matrix, no seed, a command run directly, one working directory): the command's
    /// templates, the working directory, and each task's values. Lets a plan of 10^9 tasks be
    /// written from a template compiled once, instead of rendering each task.
    pub fn numeric(&self) -> Option<NumericPlan<'_>> {
        let job = &self.job;
        let (Some(crate::job::Source::Range(_)), None, None, None, Command::Argv(argv)) =
            (&job.source, &job.matrix, job.seed, &job.cwd, &job.command)
        else {
            return None;
        };
        Some(NumericPlan { plan: self, argv })
    }

    /// Every task in plan order, rendered lazily.
    pub fn tasks(&self) -> impl Iterator<Item = Task> + '_ {
        (0..self.len).map(|i| self.task(TaskId(i)))
    }

    /// Every task in plan order without its resume key and, unless its seed needs it, its
    /// content key (left empty): for showing a plan, where the hashes would be much of the cost.
    pub fn tasks_unkeyed(&self) -> impl Iterator<Item = Task> + '_ {
        (0..self.len).map(|i| self.render(TaskId(i), false))
    }

    /// Renders task `id`, which must be below `len()`.
    pub fn task(&self, id: TaskId) -> Task {
        self.render(id, true)
    }

    /// How many earlier tasks have the same items and parameters as chunk `index` with
    /// `combo`: earlier equal combinations each ran every chunk equal to this one, and this
    /// combination ran the equal chunks before it.
    fn repeat(&self, index: u64, combo: Option<&Combo>) -> u64 {
        let (before, all) = self
            .job
            .source
            .as_ref()
            .and_then(crate::job::Source::list)
            .map_or((0, 1), |list| list.repeats.of_chunk(index));
        let combos_before = combo.map_or(0, |c| c.repeat);
        u64::from(combos_before) * u64::from(all) + u64::from(before)
    }

    fn render(&self, id: TaskId, keyed: bool) -> Task {
        let mut task = Task::empty();
        self.render_into(id, keyed, &mut task);
        task
    }

    /// `tasks_unkeyed`'s task `id` in place of `task`, reusing its buffers: rendering a plan
    /// of 10^9 tasks allocates little.
    pub fn render_unkeyed_into(&self, id: TaskId, task: &mut Task) {
        self.render_into(id, false, task);
    }

    /// Renders task `id` in place of `task`, reusing the argument buffers where it can.
    fn render_into(&self, id: TaskId, keyed: bool, task: &mut Task) {
        assert!(
            id.0 < self.len,
            "task {id} is outside a plan of {} tasks",
            self.len
        );
        let job = &self.job;
        let (combo, index) = (id.0 / self.chunks, id.0 % self.chunks);
        let combo = job
            .matrix
            .as_ref()
            .map(|m| &m.combos[usize::try_from(combo).expect("combinations are in memory")]);
        let chunk = job.source.as_ref().map_or(Chunk::None, |s| s.chunk(index));
        let content = (keyed || job.seed.is_some()).then(|| {
            let repeat = self.repeat(index, combo.map(AsRef::as_ref));
            content_digest(&chunk, combo.map(AsRef::as_ref), repeat)
        });
        let seed = job
            .seed
            .zip(content.as_ref())
            .map(|(base, content)| task_seed(base, content));
        let values = ChunkValues {
            id: id.0,
            chunk,
            combo: combo.map(AsRef::as_ref),
            seed,
            name: &job.name,
            run_id: &self.run.id,
        };
        let mut argv = std::mem::take(&mut task.argv);
        render_argv(&job.command, &values, &mut argv);
        let mut cwd = std::mem::take(&mut task.cwd);
        match &job.cwd {
            Some(template) => {
                cwd = job
                    .base_dir
                    .join(OsString::from_vec(template.render(&values)));
            }
            None => cwd.clone_from(&job.base_dir),
        }
        let env: Vec<(String, OsString)> = job
            .env
            .iter()
            .map(|(name, value)| (name.clone(), OsString::from_vec(value.render(&values))))
            .collect();
        let items = match chunk {
            Chunk::None => TaskItems::None,
            Chunk::Range {
                start,
                last,
                end,
                count,
                ..
            } => TaskItems::Range {
                start,
                last,
                end,
                count,
            },
            Chunk::List { .. } => {
                let mut list = Vec::with_capacity(usize::try_from(chunk.count()).unwrap_or(0));
                chunk.each(&mut |_, item| list.push(item.to_vec()));
                TaskItems::List(list)
            }
        };
        let key = match &content {
            Some(content) if keyed => task_key(&argv, &cwd, &env, &items, combo.is_some(), content),
            _ => String::new(),
        };
        *task = Task {
            id,
            id_width: self.id_width(),
            items,
            params: combo.cloned(),
            seed,
            argv,
            cwd,
            env,
            key,
            content_key: content
                .map(|c| crate::job::hex(&c[..8]))
                .unwrap_or_default(),
        };
    }
}

/// Renders `command` into `argv`, reusing its buffers where it can.
fn render_argv(command: &Command, values: &ChunkValues<'_>, argv: &mut Vec<OsString>) {
    match command {
        Command::Shell(script) => {
            let rendered = script.render_shell(values);
            argv.clear();
            argv.extend([
                "/bin/sh".into(),
                "-c".into(),
                OsString::from_vec(rendered.script),
            ]);
            // Values that are not plain words go beside the script: `$0` is `sh`, as in the
            // shell's own messages, then `$1`, `$2`, ...
            if !rendered.params.is_empty() {
                argv.push("sh".into());
                argv.extend(rendered.params.into_iter().map(OsString::from_vec));
            }
        }
        Command::Argv(templates) => {
            argv.resize_with(templates.len(), OsString::new);
            for (arg, template) in argv.iter_mut().zip(templates) {
                let mut bytes = std::mem::take(arg).into_vec();
                bytes.clear();
                template.render_into(values, &mut bytes);
                *arg = OsString::from_vec(bytes);
            }
        }
    }
}

/// The SHA-256 of a task's items and parameters (sorted by key, so the order of the matrix's
/// keys does not matter), each length-prefixed; with `repeat`, the number of earlier tasks with
/// the same items and parameters, when there are any.
fn content_digest(chunk: &Chunk<'_>, combo: Option<&Combo>, repeat: u64) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    match *chunk {
        Chunk::Range {
            start,
            last,
            end,
            count,
            ..
        } => {
            field(b"range");
            for n in [start, last, end] {
                field(&n.to_le_bytes());
            }
            field(&count.to_le_bytes());
        }
        Chunk::List { .. } => {
            field(b"items");
            chunk.each(&mut |_, item| field(item));
        }
        Chunk::None => field(b"none"),
    }
    for (key, kind, text) in combo.map(Combo::identity).unwrap_or_default() {
        field(b"param");
        field(key.as_bytes());
        field(kind.as_bytes());
        field(text.as_bytes());
    }
    if repeat > 0 {
        field(b"repeat");
        field(&repeat.to_le_bytes());
    }
    hash.finalize().into()
}

/// The content key of a range task from its bounds alone: what a report of poolrun 0.1, whose
/// rows have no content key, is matched by.
pub fn range_content_key(start: i64, last: i64, end: i64, count: u64) -> String {
    let chunk = Chunk::Range {
        start,
        last,
        end,
        count,
        step: 0,
    };
    crate::job::hex(&content_digest(&chunk, None, 0)[..8])
}

/// `{seed}`: from the base seed and the task's content, so it does not change when the task's
/// id does. Below 2^31, so every seeding function (numpy's, R's, a C `int`) takes it.
fn task_seed(base: u64, content: &[u8; 32]) -> u64 {
    let mut hash = Sha256::new();
    hash.update(b"poolrun-seed");
    hash.update(base.to_le_bytes());
    hash.update(content);
    let digest = hash.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) & 0x7fff_ffff
}

/// The first 16 hex digits of a SHA-256 over the task's rendered command, cwd, env and chunk,
/// each length-prefixed so no two different tasks can serialize alike. Not the task's sequence
/// number: after a change of chunk size or template, exactly the tasks whose key changed are new
/// to a resumed run. A range task without parameters hashes exactly what poolrun 0.1 did, so
/// its runs resume as before.
fn task_key(
    argv: &[OsString],
    cwd: &Path,
    env: &[(String, OsString)],
    items: &TaskItems,
    has_params: bool,
    content: &[u8; 32],
) -> String {
    use std::os::unix::ffi::OsStrExt;
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
    if let TaskItems::Range {
        start,
        last,
        end,
        count,
    } = items
    {
        for n in [start, last, end] {
            field(&n.to_le_bytes());
        }
        field(&count.to_le_bytes());
        if has_params {
            field(content);
        }
    } else {
        field(b"\0content");
        field(content);
    }
    crate::job::hex(&hash.finalize()[..8])
}
