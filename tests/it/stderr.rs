//! A stderr that cannot be written (a full device, a closed pipe, a terminal that hung up) never
//! hangs poolrun, never loses a result and never changes the exit code.

use std::fs::File;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Job, background, finish_background, journal, poolrun, range, wait_for};

/// A job of ten tasks, every other one failing, so poolrun has warnings to log.
fn noisy_job() -> Job {
    Job::new(&format!(
        "command = \"echo {{id}} >&2; test $(({{id}} % 2)) -eq 0\"\n{}",
        range(10, 2)
    ))
}

/// Runs the job with stderr going to `stderr`, returns poolrun's exit code.
fn run_with_stderr(job: &Job, args: &[&str], stderr: Stdio) -> i32 {
    let child = background(
        poolrun()
            .current_dir(job.dir.path())
            .arg("run")
            .arg(&job.path)
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr),
    );
    finish_background(child).code
}

fn assert_every_result_kept(job: &Job) {
    let dir = job.latest("job");
    let finished = journal(&dir)
        .iter()
        .filter(|e| e["event"] == "finished")
        .count();
    assert_eq!(finished, 10, "every outcome is in the journal");
    let report = crate::support::read_report(&dir);
    assert_eq!(report["summary"]["succeeded"], 5);
    assert_eq!(report["summary"]["failed"], 5);
}

/// A pipe whose reading end is already closed: every write to it fails with EPIPE.
fn closed_pipe() -> Stdio {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    Stdio::from(write)
}

#[test]
fn stderr_on_a_full_device_loses_nothing() {
    for args in [&[][..], &["-q"][..], &["-v"][..]] {
        let job = noisy_job();
        let full = File::options().write(true).open("/dev/full").unwrap();
        assert_eq!(run_with_stderr(&job, args, full.into()), 1, "{args:?}");
        assert_every_result_kept(&job);
        // The lock was released: the next run is not refused as an overlap.
        let full = File::options().write(true).open("/dev/full").unwrap();
        assert_eq!(run_with_stderr(&job, args, full.into()), 1, "{args:?}");
    }
}

#[test]
fn stderr_into_a_closed_pipe_loses_nothing() {
    let job = noisy_job();
    assert_eq!(run_with_stderr(&job, &["-v"], closed_pipe()), 1);
    assert_every_result_kept(&job);
}

#[test]
fn a_hang_up_with_a_dead_stderr_stops_the_run_and_writes_the_report() {
    let job = Job::new(&format!(
        "command = \"echo started >&2; sleep 1000\"\n{}",
        range(4, 2)
    ));
    let child = background(
        poolrun()
            .current_dir(job.dir.path())
            .args(["run", "-v"])
            .arg(&job.path)
            .stdout(Stdio::null())
            .stderr(closed_pipe()),
    );
    let dir = wait_for(Duration::from_secs(10), "two tasks to start", || {
        let dir = std::fs::canonicalize(job.file("runs/job/latest")).ok()?;
        let text = std::fs::read_to_string(dir.join("journal.jsonl")).ok()?;
        (text.matches("\"started\"").count() == 2).then_some(dir)
    });
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGHUP,
    )
    .unwrap();
    assert_eq!(finish_background(child).code, 129);
    let report = crate::support::read_report(&dir);
    assert_eq!(report["run"]["status"], "interrupted");
    assert_eq!(report["summary"]["cancelled"], 2);
}

#[test]
fn errors_and_plans_into_dead_pipes_do_not_panic() {
    let job = Job::new("command = \"true\"\n[range]\nstart = 0\nend = 2\nbogus = 1\n");
    let child = background(
        poolrun()
            .current_dir(job.dir.path())
            .args(["validate"])
            .arg(&job.path)
            .stdout(Stdio::null())
            .stderr(closed_pipe()),
    );
    assert_eq!(finish_background(child).code, 2);
    let child = background(
        poolrun()
            .args(["schema", "job"])
            .stdout(closed_pipe())
            .stderr(Stdio::piped()),
    );
    let run = finish_background(child);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_terminal_that_hangs_up_stops_the_run_and_writes_the_report() {
    // script(1) runs poolrun on a pseudo-terminal; killing script closes the terminal as a
    // dropped ssh session would: SIGHUP, then EIO on every write to it.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: script(1) from util-linux is not installed");
        return;
    }
    let job = Job::new(&format!(
        "command = \"echo $$ > {{id}}.pid; sleep 1000\"\n{}",
        range(4, 2)
    ));
    let command = format!("{} run -v job.toml", env!("CARGO_BIN_EXE_poolrun"));
    let mut script = background(
        std::process::Command::new("script")
            .args(["-q", "-e", "-f", "-c", &command, "/dev/null"])
            .current_dir(job.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let dir = wait_for(Duration::from_secs(20), "two tasks to start", || {
        let dir = std::fs::canonicalize(job.file("runs/job/latest")).ok()?;
        let text = std::fs::read_to_string(dir.join("journal.jsonl")).ok()?;
        (text.matches("\"started\"").count() == 2).then_some(dir)
    });
    script.kill9();
    wait_for(Duration::from_secs(20), "the report", || {
        dir.join("report.json").exists().then_some(())
    });
    let report = crate::support::read_report(&dir);
    assert_eq!(report["run"]["status"], "interrupted");
    assert_eq!(report["summary"]["cancelled"], 2);
    assert_eq!(report["summary"]["not_run"], 2);
    // `run_finished` follows the report's rename (it says the report is written): poll for it
    // rather than race the last append.
    wait_for(
        Duration::from_secs(20),
        "run_finished in the journal",
        || (journal(&dir).last()?["event"] == "run_finished").then_some(()),
    );
    crate::support::assert_all_gone(&crate::support::pids_in(job.dir.path()));
}

#[test]
fn a_terminal_paused_with_ctrl_s_does_not_hold_up_the_run() {
    // tmux gives poolrun a terminal; Ctrl-S (XOFF) stops its output, so every write to it
    // blocks once the terminal's buffer is full. The run must go on and finish all the same.
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let job = Job::new(&format!("command = \"true\"\n{}", range(300, 2)));
    let socket = job.file("tmux.sock");
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(args)
            .output()
            .expect("tmux")
    };
    let command = format!(
        "stty ixon; while [ ! -e paused ]; do sleep 0.02; done; {} run -v job.toml; touch done; sleep 60",
        env!("CARGO_BIN_EXE_poolrun")
    );
    let started = tmux(&[
        "new-session",
        "-d",
        "-x",
        "100",
        "-y",
        "20",
        "-c",
        job.dir.path().to_str().unwrap(),
        &command,
    ]);
    assert!(started.status.success(), "{started:?}");
    // Paused before poolrun starts: from its first line on, nothing it writes gets out.
    tmux(&["send-keys", "C-s"]);
    std::fs::write(job.file("paused"), "").unwrap();
    let finished = std::panic::catch_unwind(|| {
        wait_for(
            Duration::from_secs(60),
            "the report while the terminal is paused",
            || {
                let dir = std::fs::canonicalize(job.file("runs/job/latest")).ok()?;
                dir.join("report.json").exists().then_some(dir)
            },
        )
    });
    tmux(&["send-keys", "C-q"]);
    let dir = finished.unwrap_or_else(|e| {
        tmux(&["kill-server"]);
        std::panic::resume_unwind(e)
    });
    wait_for(Duration::from_secs(30), "poolrun to exit", || {
        job.file("done").exists().then_some(())
    });
    tmux(&["kill-server"]);
    let report = crate::support::read_report(&dir);
    assert_eq!(report["summary"]["succeeded"], 300);
}
