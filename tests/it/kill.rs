//! Stopping tasks: timeouts, the grace period, whole process groups, and signals to poolrun.

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
        "command = \"sleep 1000 & echo $! > {{id}}.bg.pid; echo $$ > {{id}}.sh.pid; sleep 1000\"\n{}timeout = \"2s\"\ngrace-period = \"5s\"\n",
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
    // The journal records when the SIGTERM went out: at the deadline, not before.
    let finished: Vec<serde_json::Value> = crate::support::journal(&job.latest("job"))
        .into_iter()
        .filter(|e| e["event"] == "finished")
        .collect();
    for f in &finished {
        let at = |k: &str| humantime::parse_rfc3339(f[k].as_str().unwrap()).unwrap();
        let after = at("terminated_at")
            .duration_since(at("started_at"))
            .unwrap();
        assert!(
            after >= Duration::from_secs(2),
            "SIGTERM {after:?} after the start"
        );
    }
    assert!(
        tasks(&report)[0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 2s")
    );
    let pids = pids_in(job.dir.path());
    assert_eq!(pids.len(), 4);
    assert_all_gone(&pids);
}

#[test]
fn a_task_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let job = Job::new(&format!(
        "command = \"trap '' TERM; echo $$ > {{id}}.pid; while :; do sleep 0.05; done\"\n{}timeout = \"2s\"\ngrace-period = \"300ms\"\n",
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
        "command = \"trap 'exit 0' TERM; while :; do sleep 0.05; done\"\n{}timeout = \"2s\"\n",
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
    let child = job.start(&[]);
    let run_dir = wait_for(Duration::from_secs(10), "the run directory", || {
        std::fs::canonicalize(job.dir.path().join("runs/job/latest")).ok()
    });
    wait_for(Duration::from_secs(10), "two tasks to start", || {
        let started = std::fs::read_to_string(run_dir.join("journal.jsonl")).ok()?;
        let pid_files = pids_in(job.dir.path()).len();
        (started.matches("\"started\"").count() == 2 && pid_files == 4).then_some(())
    });
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), signal).unwrap();
    let run: Run = crate::support::finish_background(child);
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

#[test]
fn a_second_sigint_kills_at_once() {
    // The task notes SIGTERM and carries on; the grace period is long: only the second Ctrl-C
    // ends it.
    let job = Job::new(&format!(
        "command = \"trap 'echo term >> got' TERM; echo $$ > {{id}}.pid; while :; do sleep 0.05; done\"\n{}grace-period = \"1h\"\n",
        range(1, 1)
    ));
    let child = job.start(&[]);
    wait_for(Duration::from_secs(10), "the task to start", || {
        (!pids_in(job.dir.path()).is_empty()).then_some(())
    });
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    kill(pid, Signal::SIGINT).unwrap();
    wait_for(Duration::from_secs(10), "the task to get SIGTERM", || {
        job.file("got").exists().then_some(())
    });
    kill(pid, Signal::SIGINT).unwrap();
    let run = crate::support::finish_background(child);
    assert_eq!(run.code, 130, "{}", run.stderr);
    let report =
        crate::support::read_report(&std::fs::canonicalize(job.file("runs/job/latest")).unwrap());
    assert_eq!(statuses(&report), ["cancelled"]);
    assert_eq!(tasks(&report)[0]["signal"], 9);
    assert_all_gone(&pids_in(job.dir.path()));
}

/// The state letter of `pid` in /proc (`T` when stopped).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn ctrl_z_pauses_the_tasks_and_their_timeouts() {
    // Each task waits for a `go` file that appears only once the run is paused, then needs
    // 300 ms more, under a 2 s timeout; the run stays paused for longer than the timeout.
    let job = Job::new(&format!(
        "command = \"echo $$ > {{id}}.pid; while [ ! -e go ]; do sleep 0.02; done; sleep 0.3\"\n{}timeout = \"2s\"\n",
        range(2, 2)
    ));
    let child = job.start(&[]);
    let tasks_started = || {
        let pids = pids_in(job.dir.path());
        (pids.len() == 2).then_some(pids)
    };
    let task_pids = wait_for(Duration::from_secs(10), "the tasks to start", tasks_started);
    let poolrun_pid = child.id();
    kill(
        Pid::from_raw(i32::try_from(poolrun_pid).unwrap()),
        Signal::SIGTSTP,
    )
    .unwrap();
    let all: Vec<u32> = task_pids.iter().copied().chain([poolrun_pid]).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !all.iter().all(|&p| state(p) == Some('T')) {
        let states: Vec<(u32, Option<char>)> = all.iter().map(|&p| (p, state(p))).collect();
        assert!(
            std::time::Instant::now() < deadline,
            "poolrun and its tasks did not all stop: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(job.file("go"), "").unwrap();
    // Held stopped for longer than the timeout: the pause is what is under test here.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        task_pids.iter().all(|&p| state(p) == Some('T')),
        "the tasks stay stopped"
    );
    kill(
        Pid::from_raw(i32::try_from(poolrun_pid).unwrap()),
        Signal::SIGCONT,
    )
    .unwrap();
    let run: Run = crate::support::finish_background(child);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report =
        crate::support::read_report(&std::fs::canonicalize(job.file("runs/job/latest")).unwrap());
    assert_eq!(statuses(&report), ["succeeded", "succeeded"]);
}

#[test]
fn processes_that_escape_the_group_are_found_and_killed() {
    let job = Job::new(&format!(
        "command = \"setsid sleep 1000 & echo $! > {{id}}.sid.pid; (setsid sh -c 'sleep 1000 & echo $! > {{id}}.dbl.pid; exec sleep 999' &); sleep 1000 & echo $! > {{id}}.grp.pid; sleep 0.2\"\n{}",
        range(2, 2)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = job.report();
    assert_eq!(statuses(&report), ["succeeded", "succeeded"]);
    // Per task: the setsid sleep, the double-forked sh (now `sleep 999`) and its sleep, and the
    // sleep left in the group.
    assert!(
        tasks(&report).iter().all(|t| t["leaked"] == 4),
        "{:?}",
        tasks(&report)
            .iter()
            .map(|t| &t["leaked"])
            .collect::<Vec<_>>()
    );
    let pids = pids_in(job.dir.path());
    assert_eq!(pids.len(), 6);
    assert_all_gone(&pids);
}

#[test]
fn a_task_that_cleans_up_has_no_leaks() {
    let job = Job::new(&format!("command = \"sleep 0.1 & wait\"\n{}", range(1, 1)));
    assert_eq!(job.run(&[]).code, 0);
    assert_eq!(tasks(&job.report())[0]["leaked"], 0);
}

#[test]
fn a_signal_in_the_first_milliseconds_still_ends_cleanly() {
    let job = Job::new(&format!("command = \"sleep 1000\"\n{}", range(3, 3)));
    for attempt in 0..40u64 {
        let child = crate::support::background(
            crate::support::poolrun()
                .current_dir(job.dir.path())
                .arg("run")
                .arg(&job.path)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped()),
        );
        // From the moment poolrun catches SIGTERM (before that it is still being loaded and no
        // program can have a handler), spread over 3 ms: before, while and after the run
        // directory is made and the tasks start.
        let pid = child.id();
        wait_for(Duration::from_secs(10), "poolrun to catch SIGTERM", || {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let caught = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            let mask = u64::from_str_radix(caught.trim(), 16).ok()?;
            (mask & (1 << (15 - 1)) != 0).then_some(())
        });
        std::thread::sleep(Duration::from_micros(attempt * 75));
        kill(
            Pid::from_raw(i32::try_from(child.id()).unwrap()),
            Signal::SIGTERM,
        )
        .unwrap();
        let run: Run = crate::support::finish_background(child);
        assert_eq!(run.code, 143, "attempt {attempt}: {}", run.stderr);
        assert!(!run.stderr.is_empty(), "attempt {attempt}: a message");
    }
    // Every run directory that was made has its report; no task is left.
    for entry in std::fs::read_dir(job.file("runs/job")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            let report = crate::support::read_report(&path);
            assert_eq!(report["run"]["status"], "interrupted");
        }
    }
}
