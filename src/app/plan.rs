//! `poolrun plan`: the task list, exactly as `run` would execute it.

use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::sync::Arc;

use crate::cli::PlanArgs;
use crate::error::{Error, exit};
use crate::job::template::shell_quote_into;
use crate::job::{self, Job, Overrides};
use crate::plan::{Plan, RunInfo, Task, TaskItems};

pub(super) fn plan(args: &PlanArgs) -> Result<u8, Error> {
    let overrides = Overrides {
        set: args.set.clone(),
        ..Overrides::default()
    };
    let job = Arc::new(job::load(&args.job, &overrides)?);
    check_size(&job, args.allow_huge)?;
    let plan = Plan::new(Arc::clone(&job), RunInfo::new(&job));
    let written = stdout().and_then(|file| {
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        if args.json {
            crate::report::write_plan_json(&plan, &mut out)?;
        } else {
            plan_table(&plan, &mut out)?;
        }
        out.flush()
    });
    match written {
        // `poolrun plan | head` is not an error.
        Ok(()) => Ok(exit::SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(exit::SUCCESS),
        Err(e) => {
            crate::console::line(&format!("poolrun: error: cannot write the plan: {e}"));
            Ok(exit::IO)
        }
    }
}

fn plan_table(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    let job = plan.job();
    let over = match &job.source {
        Some(source) => format!("{} items from [{}]", source.items(), source.table()),
        None => "no items".to_owned(),
    };
    let combos = job
        .matrix
        .as_ref()
        .map(|m| format!(" x {} matrix combinations", m.combos.len()))
        .unwrap_or_default();
    crate::console::line(&format!(
        "{}: {} tasks over {over}{combos}, {} at once",
        job.name,
        plan.len(),
        job.pool.processes
    ));
    writeln!(out, "{:>6}  {:<24}  command", "id", "items, params")?;
    for task in plan.tasks_unkeyed() {
        let command = match task.argv.as_slice() {
            [sh, c, script] if sh == "/bin/sh" && c == "-c" => {
                script.to_string_lossy().into_owned()
            }
            // The values passed beside the script, after it as `$1=...`.
            [sh, c, script, _zero, params @ ..] if sh == "/bin/sh" && c == "-c" => {
                let mut line = script.as_encoded_bytes().to_vec();
                line.extend_from_slice(b"   #");
                for (i, param) in params.iter().enumerate() {
                    line.extend_from_slice(format!(" ${}=", i + 1).as_bytes());
                    shell_quote_into(param.as_encoded_bytes(), &mut line);
                }
                String::from_utf8_lossy(&line).into_owned()
            }
            // Each argument as a shell word: where one ends is plain.
            argv => {
                let mut line = Vec::new();
                for (i, arg) in argv.iter().enumerate() {
                    if i > 0 {
                        line.push(b' ');
                    }
                    shell_quote_into(arg.as_encoded_bytes(), &mut line);
                }
                String::from_utf8_lossy(&line).into_owned()
            }
        };
        writeln!(out, "{:>6}  {:<24}  {command}", task.id, describe(&task))?;
    }
    Ok(())
}

/// A task's items and parameters in a few words: `0..199 (200)`, `a.csv`, `lr=0.1 model=small`.
fn describe(task: &Task) -> String {
    let mut text = match &task.items {
        TaskItems::None => String::new(),
        TaskItems::Range {
            start, last, count, ..
        } if *count == 1 => format!("{start}"),
        TaskItems::Range {
            start, last, count, ..
        } => format!("{start}..{last} ({count})"),
        TaskItems::List(items) => {
            let shown = |i: &Vec<u8>| String::from_utf8_lossy(i).into_owned();
            match items.as_slice() {
                [one] => shown(one),
                [first, .., last] => format!("{}..{} ({})", shown(first), shown(last), items.len()),
                [] => String::new(),
            }
        }
    };
    for param in task.params.iter().flat_map(|c| c.params()) {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&param.key);
        text.push('=');
        text.push_str(&param.text);
    }
    text
}

/// Refuses a plan of more than `HUGE_PLAN` tasks without `--allow-huge`.
pub(super) fn check_size(job: &Job, allow_huge: bool) -> Result<(), Error> {
    Ok(job::check_size(job, allow_huge)?)
}

/// Standard output for a plan, which may be gigabytes: a file of its own rather than the
/// standard library's line-buffered handle, which splits every write at its last newline; and
/// when it is a pipe, a pipe of 1 MiB (if the system allows), so the reader and poolrun take
/// turns a sixteenth as often.
fn stdout() -> io::Result<std::fs::File> {
    let out = std::fs::File::from(io::stdout().as_fd().try_clone_to_owned()?);
    if let Ok(size) = rustix::pipe::fcntl_getpipe_size(&out)
        && size < PIPE_BYTES
    {
        let _ = rustix::pipe::fcntl_setpipe_size(&out, PIPE_BYTES);
    }
    Ok(out)
}

/// The pipe size `plan` asks for: Linux's default limit for an unprivileged process.
const PIPE_BYTES: usize = 1024 * 1024;
