//! `poolrun plan`: the task list, exactly as `run` would execute it.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, exit};
use crate::job::{self, HUGE_PLAN, Job, Overrides};
use crate::plan::{Plan, RunInfo, Task};

/// One task as `poolrun plan --json` prints it.
#[derive(Serialize)]
struct PlannedTask<'a> {
    id: u64,
    start: i64,
    last: i64,
    end: i64,
    count: u64,
    command: &'a [String],
    cwd: String,
}

pub(super) fn plan(path: &Path, json: bool, allow_huge: bool) -> Result<u8, Error> {
    let job = Arc::new(job::load(path, &Overrides::default())?);
    check_size(&job, allow_huge)?;
    let plan = Plan::new(Arc::clone(&job), RunInfo::new(&job));
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let written = if json {
        plan_json(&plan, &mut out)
    } else {
        plan_table(&plan, &mut out)
    };
    match written.and_then(|()| out.flush()) {
        // `poolrun plan | head` is not an error.
        Ok(()) => Ok(exit::SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(exit::SUCCESS),
        Err(e) => {
            crate::console::line(&format!("poolrun: error: cannot write the plan: {e}"));
            Ok(exit::IO)
        }
    }
}

fn plan_json(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"[")?;
    for task in plan.tasks_unkeyed() {
        out.write_all(if task.id.0 == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut *out, &planned(&task))?;
    }
    out.write_all(if plan.is_empty() { b"]\n" } else { b"\n]\n" })
}

fn planned(task: &Task) -> PlannedTask<'_> {
    PlannedTask {
        id: task.id.0,
        start: task.start,
        last: task.last,
        end: task.end,
        count: task.count,
        command: &task.argv,
        cwd: task.cwd.display().to_string(),
    }
}

fn plan_table(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    let job = plan.job();
    crate::console::line(&format!(
        "{}: {} tasks over {} items, {} at once",
        job.name,
        plan.len(),
        job.range.items,
        job.pool.processes
    ));
    writeln!(
        out,
        "{:>6} {:>12} {:>12} {:>8}  command",
        "id", "start", "last", "count"
    )?;
    for task in plan.tasks_unkeyed() {
        let command = match task.argv.as_slice() {
            [sh, c, script] if sh == "/bin/sh" && c == "-c" => script.clone(),
            argv => argv.join(" "),
        };
        writeln!(
            out,
            "{:>6} {:>12} {:>12} {:>8}  {command}",
            task.id, task.start, task.last, task.count
        )?;
    }
    Ok(())
}

/// Refuses a plan of more than `HUGE_PLAN` tasks without `--allow-huge`.
pub(super) fn check_size(job: &Job, allow_huge: bool) -> Result<(), Error> {
    let tasks = job.range.tasks();
    if tasks > HUGE_PLAN && !allow_huge {
        return Err(Error::Usage(format!(
            "{}: the plan has {tasks} tasks, more than 10^9; set a larger `chunk-size`, or pass --allow-huge if you mean it",
            job.source.path.display()
        )));
    }
    Ok(())
}
