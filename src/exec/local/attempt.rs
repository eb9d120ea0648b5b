//! One attempt of one task: spawn it in its own process group with its output going to files,
//! wait with the timeout, stop the whole group when needed, always reap, and kill whatever the
//! task left running.

use std::fs::File;
use std::io;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime};

use crate::exec::local::cgroup::SlotCgroup;
use crate::exec::local::containment::TOKEN_VARIABLE;
use crate::exec::local::context::Context;
use crate::exec::local::exit_watch::ExitWatch;
use crate::exec::local::output::{Output, Spools};
use crate::exec::local::spawn::{Launch, Spawner};
use crate::exec::local::unix::{self, ChildSetup, UnixSignal};
use crate::exec::outcome::{TaskOutcome, TaskStatus};
use crate::exec::{Event, Logged, Started};
use crate::plan::Task;

/// `run_attempt`, with a panic turned into a `failed` outcome: the pool counts outcomes, so a
/// worker that died without one would leave the run waiting forever.
pub(crate) fn run_attempt_guarded(
    task: Task,
    attempt: u32,
    ctx: &Context<'_>,
    worker: &mut Worker,
) -> TaskOutcome {
    let fallback = task.clone();
    let started_at = SystemTime::now();
    std::panic::catch_unwind(AssertUnwindSafe(|| run_attempt(task, attempt, ctx, worker)))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let reason = format!("internal error in poolrun: {what}");
            let mut outcome = not_started(fallback, attempt, started_at, false, reason);
            outcome.status = TaskStatus::Failed;
            outcome
        })
}

/// What a worker keeps from one attempt to the next: its output spools and its way of starting
/// tasks.
pub(crate) struct Worker {
    pub spools: Spools,
    pub spawner: io::Result<Spawner>,
}

/// Runs attempt `attempt` of `task` and says how it went. Every failure to start or run becomes
/// a status, never an error.
fn run_attempt(task: Task, attempt: u32, ctx: &Context<'_>, worker: &mut Worker) -> TaskOutcome {
    let Worker { spools, spawner } = worker;
    let started_at = SystemTime::now();
    let clock = Instant::now();
    if attempt > 1 {
        keep_earlier_attempt(ctx.tasks_dir, &task, attempt - 1);
    }
    let outputs = (|| {
        let out = spools.out.output(&task.output_file("out"))?;
        let err = spools.err.output(&task.output_file("err"))?;
        Ok::<_, io::Error>((out, err))
    })();
    let (out, err) = match outputs {
        Ok(outputs) => outputs,
        Err(e) => {
            let reason = format!(
                "cannot create the task's output files in {}: {e}",
                ctx.tasks_dir.display()
            );
            return not_started(task, attempt, started_at, false, reason);
        }
    };
    let slot = ctx.containment.slot();
    let pid = match start(&task, attempt, ctx, spawner, (&out, &err), slot) {
        Ok(pid) => pid,
        Err(reason) => return not_started(task, attempt, started_at, true, reason),
    };
    ctx.running.insert(task.id, pid);
    let guard = KillOnUnwind {
        pid,
        id: task.id,
        running: &ctx.running,
    };
    let started = Started {
        id: task.id,
        key: task.key.clone(),
        attempt,
        handle: pid,
        at: started_at,
    };
    match ctx.start_log.as_ref().map(|log| log(&started)) {
        Some(Logged::Yes) => {}
        Some(Logged::Wake) => {
            let _ = ctx.events.send(Event::Delivered);
        }
        None => {
            let _ = ctx.events.send(Event::Started(started));
        }
    }
    let (status, terminated_at) = wait(pid, ctx);
    let timed_out = terminated_at.is_some();
    std::mem::forget(guard);
    let cancelled = ctx.running.remove(task.id);
    // The direct child is gone; anything it left behind goes too, in its cgroup, its group or
    // escaped from it, so no task outlives its report row.
    let leaked = kill_left_behind(slot, pid, &task, ctx);
    if leaked > 0 {
        tracing::debug!(
            "task {}: killed {leaked} processes it left running",
            task.id
        );
    }
    let duration = clock.elapsed();
    let (exit_code, signal) = status
        .as_ref()
        .map_or((None, None), |s| unix::status_parts(*s));
    let (status, error) = classify(&status, timed_out, cancelled, ctx.timeout);
    let (stdout_bytes, stdout_sha256, stderr_bytes, stderr_tail) = collect_output(&out, &err);
    spools.out.settle(out, stdout_bytes);
    spools.err.settle(err, stderr_bytes);
    TaskOutcome {
        task,
        status,
        exit_code,
        signal,
        attempt,
        tries: 1,
        started_at,
        finished_at: SystemTime::now(),
        duration,
        terminated_at,
        has_output: true,
        stdout_bytes,
        stdout_sha256,
        stderr_bytes,
        stderr_tail,
        leaked,
        error,
        slurm_job_id: None,
    }
}

/// Starts attempt `attempt` of `task` with its outputs going to `outputs`; returns its process
/// id, or why it could not start. A started task is in `ctx.running`'s count of starts.
fn start(
    task: &Task,
    attempt: u32,
    ctx: &Context<'_>,
    spawner: &mut io::Result<Spawner>,
    outputs: (&Output, &Output),
    slot: Option<&SlotCgroup>,
) -> Result<u32, String> {
    let spawner = spawner
        .as_mut()
        .map_err(|e| format!("cannot prepare to start tasks: {e}"))?;
    let env = ctx
        .env
        .for_task(task, attempt)
        .map_err(|e| spawn_error(task, &e))?;
    let setup = child_setup(slot, ctx);
    let launch = Launch {
        argv: &task.argv,
        cwd: &task.cwd,
        env: &env,
        stdout: outputs.0.for_child(),
        stderr: outputs.1.for_child(),
        setup: &setup,
    };
    ctx.running.spawning(1);
    spawner.spawn(&launch).map_err(|e| {
        ctx.running.spawning(-1);
        spawn_error(task, &e)
    })
}

/// Kills what the attempt's processes left running once its direct child is gone: everything in
/// its slot's cgroup, or without one the escapees that carry the run's token and the task's id;
/// and in any case what is left in its process group. Returns how many it killed.
fn kill_left_behind(slot: Option<&SlotCgroup>, pid: u32, task: &Task, ctx: &Context<'_>) -> u32 {
    if let Some(slot) = slot {
        return slot.empty() + unix::kill_leftovers(pid);
    }
    let marks = [
        format!("{TOKEN_VARIABLE}={}", ctx.containment.token()),
        format!("POOLRUN_TASK_ID={}", task.id),
    ];
    unix::kill_leftovers(pid)
        + unix::kill_escapees(&[&marks[0], &marks[1]], |p| ctx.running.is_task_group(p))
}

/// What the child sets up before it runs the command: its limits, and the slot cgroup it must
/// join itself (cgroup v2; in v1 it is born in its worker's).
fn child_setup(slot: Option<&SlotCgroup>, ctx: &Context<'_>) -> ChildSetup {
    let limited = slot.is_some() && ctx.containment.limits_processes();
    ChildSetup {
        memory_limit: ctx.memory_limit,
        nproc_limit: ctx.max_processes.filter(|_| !limited),
        cgroup_procs: slot.and_then(|s| s.procs.clone()),
    }
}

/// The sizes of the attempt's outputs, the hash of its stdout and the tail of its stderr; names
/// the outputs that are not empty.
fn collect_output(out: &Output, err: &Output) -> (u64, Option<String>, u64, String) {
    let stdout_bytes = out.finish().unwrap_or_else(|e| {
        tracing::warn!("cannot keep a task's stdout: {e}");
        0
    });
    let stdout_sha256 = out.sha256(stdout_bytes).map_err(|e| {
        tracing::warn!("cannot hash a task's stdout: {e}");
    });
    let stderr_bytes = err.finish().unwrap_or_else(|e| {
        tracing::warn!("cannot keep a task's stderr: {e}");
        0
    });
    let tail = err.tail(stderr_bytes).unwrap_or_default();
    (stdout_bytes, stdout_sha256.ok(), stderr_bytes, tail)
}

/// Should poolrun itself fail while a task runs, the task's group is killed and reaped rather than
/// left running with nobody to stop it.
struct KillOnUnwind<'a> {
    pid: u32,
    id: crate::plan::TaskId,
    running: &'a crate::exec::local::running::Running,
}

impl Drop for KillOnUnwind<'_> {
    fn drop(&mut self) {
        self.running.remove(self.id);
        unix::signal_group(self.pid, UnixSignal::SIGKILL);
        unix::reap(self.pid);
        unix::kill_leftovers(self.pid);
    }
}

fn classify(
    status: &io::Result<ExitStatus>,
    timed_out: bool,
    cancelled: bool,
    timeout: Option<Duration>,
) -> (TaskStatus, Option<String>) {
    match status {
        Err(e) => (
            TaskStatus::Failed,
            Some(format!("waiting for the task failed: {e}")),
        ),
        Ok(_) if timed_out => {
            let limit = humantime::format_duration(timeout.unwrap_or_default());
            (
                TaskStatus::TimedOut,
                Some(format!("timed out after {limit}")),
            )
        }
        Ok(_) if cancelled => (
            TaskStatus::Cancelled,
            Some("stopped: the run was stopped".to_owned()),
        ),
        Ok(s) if s.success() => (TaskStatus::Succeeded, None),
        Ok(s) => match unix::status_parts(*s) {
            (_, Some(sig)) => (
                TaskStatus::Failed,
                Some(format!("killed by signal {}", unix::signal_name(sig))),
            ),
            (code, None) => (
                TaskStatus::Failed,
                Some(format!("exited with code {}", code.unwrap_or(-1))),
            ),
        },
    }
}

/// Renames the previous attempt's `0007.out`/`.err` to `0007.<attempt>.out`/`.err`: the plain
/// names always hold the last attempt.
fn keep_earlier_attempt(dir: &Path, task: &Task, previous: u32) {
    for ext in ["out", "err"] {
        let from = dir.join(task.output_file(ext));
        let to = dir.join(task.output_file(&format!("{previous}.{ext}")));
        if let Err(e) = std::fs::rename(&from, &to)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(
                "task {}: cannot keep attempt {previous}'s output: {e}",
                task.id
            );
        }
    }
}

/// Waits for the child, stopping its group once it has run `timeout` outside pauses. Returns its
/// status and, if it timed out, when it was sent SIGTERM.
fn wait(pid: u32, ctx: &Context<'_>) -> (io::Result<ExitStatus>, Option<SystemTime>) {
    let Some(timeout) = ctx.timeout else {
        return (unix::wait(pid), None);
    };
    let watch = ExitWatch::new(pid);
    let start = Instant::now();
    let (paused_before, _) = ctx.pause.total();
    loop {
        let (paused, paused_now) = ctx.pause.total();
        let used = start
            .elapsed()
            .saturating_sub(paused.saturating_sub(paused_before));
        let left = timeout.saturating_sub(used);
        // While the run is paused the deadline moves with the pause; check back shortly.
        let slice = if paused_now {
            left.max(Duration::from_millis(50))
        } else {
            left
        };
        if left.is_zero() && !paused_now {
            let at = SystemTime::now();
            return (terminate(&watch, pid, ctx.grace_period), Some(at));
        }
        match watch.wait(slice) {
            Ok(Some(status)) => return (Ok(status), None),
            Ok(None) => {}
            Err(e) => return (Err(e), None),
        }
    }
}

/// SIGTERM to the group; then, once the group is empty or the grace period is over, SIGKILL to
/// whatever is left; then reap the direct child.
fn terminate(watch: &ExitWatch, pid: u32, grace: Duration) -> io::Result<ExitStatus> {
    unix::signal_group(pid, UnixSignal::SIGTERM);
    // A stopped process acts on SIGTERM only once continued.
    unix::signal_group(pid, UnixSignal::SIGCONT);
    let deadline = Instant::now() + grace;
    let mut status = None;
    let mut pause = Duration::from_millis(1);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if status.is_none() {
            status = watch.wait(left.min(Duration::from_millis(50)))?;
        } else if !unix::group_alive(pid) || left.is_zero() {
            break;
        } else {
            // The leader is reaped but others in its group linger: poll, backing off.
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        if left.is_zero() {
            break;
        }
    }
    unix::signal_group(pid, UnixSignal::SIGKILL);
    match status {
        Some(status) => Ok(status),
        None => unix::wait(pid),
    }
}

fn not_started(
    task: Task,
    attempt: u32,
    at: SystemTime,
    has_output: bool,
    reason: String,
) -> TaskOutcome {
    TaskOutcome {
        started_at: at,
        has_output,
        ..TaskOutcome::not_started(task, attempt, 1, reason)
    }
}

/// Says why a task could not start, naming the thing that was missing.
fn spawn_error(task: &Task, e: &io::Error) -> String {
    let program = &task.argv[0].to_string_lossy().into_owned();
    if !task.cwd.is_dir() {
        return format!(
            "cannot start `{program}`: working directory {} does not exist",
            task.cwd.display()
        );
    }
    let found = if program.contains('/') {
        Some(task.cwd.join(program)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
        })
    };
    // The kernel says ENOENT for a script whose `#!` interpreter is missing, not for the script.
    if e.kind() == io::ErrorKind::NotFound
        && let Some(interpreter) = found.as_deref().and_then(interpreter)
    {
        return format!(
            "cannot start `{program}`: its interpreter `{interpreter}` (from its `#!` line) does not exist"
        );
    }
    match e.kind() {
        io::ErrorKind::NotFound if !program.contains('/') => {
            format!("cannot start `{program}`: command not found in PATH ({e})")
        }
        io::ErrorKind::NotFound => format!("cannot start `{program}`: no such file ({e})"),
        io::ErrorKind::PermissionDenied => {
            format!("cannot start `{program}`: permission denied ({e})")
        }
        _ => format!("cannot start `{program}`: {e}"),
    }
}

/// The interpreter named on the `#!` line of the script at `path`, if it has one.
fn interpreter(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0; 256];
    let read = File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..read].strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next()?;
    let name = String::from_utf8_lossy(line);
    name.split_whitespace().next().map(str::to_owned)
}
