//! Stopping tasks: timeouts, the grace period, whole process groups, and signals to poolrun.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{
    Job, Run, assert_all_gone, journal, pids_in, range, statuses, tasks, wait_for,
};

#[test]
fn a_timed_out_task_leaves_no_process_behind() {
    // The shell and both sleeps record their pids; all must be gone after the timeout.
    let job = Job::new(&format!(
        "command = \"sleep 1000 & echo $! > {{id}}.bg.pid; echo $$ > {{id}}.sh.pid; sleep 1000\"\n{}timeout = \"500ms\"\ngrace-period = \"5s\"\n",
        range(2, 2)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = job.report();
    assert_eq!(statuses(&report), ["timed_out", "timed_out"]);
    assert_eq!(
        tasks(&report)[0]["signal"],
        15,
        "the shell died of the SIGTERM"
    );
    assert!(
        tasks(&report)[0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 500ms")
    );
    let pids = pids_in(job.dir.path());
    assert_eq!(pids.len(), 4);
    assert_all_gone(&pids);
}

#[test]
fn a_task_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let job = Job::new(&format!(
        "command = \"trap '' TERM; echo $$ > {{id}}.pid; while :; do sleep 0.05; done\"\n{}timeout = \"300ms\"\ngrace-period = \"300ms\"\n",
        range(1, 1)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = job.report();
    let task = &tasks(&report)[0];
    assert_eq!(task["status"], "timed_out");
    assert_eq!(task["signal"], 9, "SIGKILL after the grace period");
    assert_all_gone(&pids_in(job.dir.path()));
}

#[test]
fn a_task_that_exits_0_on_sigterm_is_still_timed_out() {
    let job = Job::new(&format!(
        "command = \"trap 'exit 0' TERM; while :; do sleep 0.05; done\"\n{}timeout = \"300ms\"\n",
        range(1, 1)
    ));
    assert_eq!(job.run(&[]).code, 1);
    let report = job.report();
    assert_eq!(tasks(&report)[0]["status"], "timed_out");
    assert_eq!(tasks(&report)[0]["exit_code"], 0);
}

#[test]
fn the_timeout_override_applies() {
    let job = Job::new(&format!("command = \"sleep 1000\"\n{}", range(1, 1)));
    assert_eq!(job.run(&["--timeout", "200ms"]).code, 1);
    assert_eq!(statuses(&job.report()), ["timed_out"]);
}

#[test]
fn processes_left_in_the_group_after_a_normal_exit_are_killed() {
    let job = Job::new(&format!(
        "command = \"sleep 1000 & echo $! > {{id}}.pid; echo done\"\n{}",
        range(1, 1)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_all_gone(&pids_in(job.dir.path()));
}

#[test]
fn a_signal_the_task_got_from_elsewhere_is_failed_with_that_signal() {
    let job = Job::new(&format!("command = \"kill -SEGV $$\"\n{}", range(1, 1)));
    assert_eq!(job.run(&[]).code, 1);
    let report = job.report();
    assert_eq!(tasks(&report)[0]["status"], "failed");
    assert_eq!(tasks(&report)[0]["signal"], 11);
    assert!(tasks(&report)[0]["exit_code"].is_null());
}

fn interrupt(signal: Signal, expected: i32) {
    let job = Job::new(&format!(
        "command = \"echo $$ > {{id}}.pid; sleep 1000 & echo $! >> {{id}}.pid; wait\"\n{}grace-period = \"2s\"\n",
        range(5, 2)
    ));
    let child = crate::support::poolrun()
        .current_dir(job.dir.path())
        .arg("run")
        .arg(&job.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run_dir = wait_for(Duration::from_secs(10), "the run directory", || {
        std::fs::canonicalize(job.dir.path().join("runs/job/latest")).ok()
    });
    wait_for(Duration::from_secs(10), "two tasks to start", || {
        let started = std::fs::read_to_string(run_dir.join("journal.jsonl")).ok()?;
        let pid_files = pids_in(job.dir.path()).len();
        (started.matches("\"started\"").count() == 2 && pid_files == 4).then_some(())
    });
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), signal).unwrap();
    let run: Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, expected, "{}", run.stderr);
    let report = crate::support::read_report(&run_dir);
    assert_eq!(report["run"]["status"], "interrupted");
    assert_eq!(
        statuses(&report),
        ["cancelled", "cancelled", "not_run", "not_run", "not_run"]
    );
    assert_eq!(report["summary"]["cancelled"], 2);
    assert_eq!(report["summary"]["not_run"], 3);
    assert_all_gone(&pids_in(job.dir.path()));
    let events = journal(&run_dir);
    assert_eq!(events.last().unwrap()["event"], "run_finished");
}

#[test]
fn sigterm_to_poolrun_stops_the_tasks_and_writes_the_report() {
    interrupt(Signal::SIGTERM, 143);
}

#[test]
fn sigint_to_poolrun_stops_the_tasks_and_writes_the_report() {
    interrupt(Signal::SIGINT, 130);
}

#[test]
fn sighup_to_poolrun_stops_the_tasks_and_writes_the_report() {
    interrupt(Signal::SIGHUP, 129);
}
