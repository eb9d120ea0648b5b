//! Scheduled runs: one run of a job at a time, and output fit for cron mail.

use std::time::Duration;

use crate::support::{Job, Run, poolrun, range, wait_for};

fn hold_lock(job: &Job) -> crate::support::Background {
    let child = job.start(&[]);
    wait_for(
        Duration::from_secs(10),
        "the first run's task to start",
        || job.file("started").exists().then_some(()),
    );
    child
}

#[test]
fn a_second_concurrent_run_exits_75_naming_the_holder() {
    let job = Job::new(&format!(
        "command = \"touch started; while [ ! -e release ]; do sleep 0.02; done\"\n{}",
        range(1, 1)
    ));
    let first = hold_lock(&job);
    let second = job.run(&[]);
    assert_eq!(second.code, 75, "{}", second.stderr);
    let run_id = std::fs::canonicalize(job.file("runs/job/latest")).unwrap();
    let run_id = run_id.file_name().unwrap().to_str().unwrap();
    assert!(second.stderr.contains(run_id), "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        second.stderr
    );
    std::fs::write(job.file("release"), "").unwrap();
    let first: Run = crate::support::finish_background(first);
    assert_eq!(first.code, 0, "{}", first.stderr);
    // Released: the next run goes ahead.
    assert_eq!(job.run(&[]).code, 0);
}

#[test]
fn overlap_wait_runs_after_the_holder() {
    let job = Job::new(&format!(
        "command = \"echo $POOLRUN_RUN_ID >> order; touch started; while [ ! -e release ]; do sleep 0.02; done\"\n{}overlap = \"wait\"\n",
        range(1, 1)
    ));
    let first = hold_lock(&job);
    let log = job.file("second.log");
    let second = crate::support::background(
        poolrun()
            .current_dir(job.dir.path())
            .arg("run")
            .arg(&job.path)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    // The second run says it waits for the lock.
    wait_for(
        Duration::from_secs(10),
        "the second run to wait for the lock",
        || {
            std::fs::read_to_string(&log)
                .ok()?
                .contains("waiting for run")
                .then_some(())
        },
    );
    assert_eq!(
        std::fs::read_to_string(job.file("order"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    std::fs::write(job.file("release"), "").unwrap();
    let first: Run = crate::support::finish_background(first);
    let second: Run = crate::support::finish_background(second);
    assert_eq!(
        (first.code, second.code),
        (0, 0),
        "{} / {}",
        first.stderr,
        second.stderr
    );
    assert_eq!(
        std::fs::read_to_string(job.file("order"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("waiting for run")
    );
}

#[test]
fn quiet_prints_nothing_on_success_and_the_summary_on_failure() {
    let good = Job::new(&format!("command = \"echo hi\"\n{}", range(3, 2)));
    let run = good.run(&["-q"]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );
    let bad = Job::new(&format!("command = \"exit {{id}}\"\n{}", range(30, 2)));
    let run = bad.run(&["--quiet"]);
    assert_eq!(run.code, 1);
    // The summary only: no start line, no failure lines, no hints.
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("30 tasks: 1 succeeded, 29 failed"),
        "{}",
        run.stderr
    );
}

#[test]
fn logs_without_a_terminal_are_plain_timestamped_and_short() {
    let job = Job::new(&format!("command = \"exit {{id}}\"\n{}", range(100, 2)));
    let run = job.run(&[]);
    assert_eq!(run.code, 1);
    assert!(
        !run.stderr.contains('\u{1b}'),
        "no escape codes: {:?}",
        run.stderr
    );
    // The start line, 20 failures, a line saying there are more, the summary and the two
    // commands to type: every one of them timestamped.
    let lines: Vec<&str> = run.raw_stderr.lines().collect();
    assert!(
        lines.len() <= 26,
        "{} lines:\n{}",
        lines.len(),
        run.raw_stderr
    );
    for line in &lines {
        assert!(crate::support::is_stamped(line), "timestamped: {line}");
    }
    let plain: Vec<&str> = run.stderr.lines().collect();
    assert!(plain[0].starts_with("poolrun: job: run "), "{}", run.stderr);
    assert!(
        plain
            .iter()
            .any(|l| l.starts_with("poolrun: job: 100 tasks: 1 succeeded, 99 failed")),
        "{}",
        run.stderr
    );
    assert!(
        plain.iter().any(|l| l.contains("poolrun report runs/job/")),
        "{}",
        run.stderr
    );
    assert!(
        plain
            .iter()
            .any(|l| l.contains("poolrun run job.toml --resume runs/job/")),
        "{}",
        run.stderr
    );
}

#[test]
fn the_report_of_a_running_run_is_read_from_its_journal_and_not_rebuilt() {
    let job = Job::new(&format!(
        "command = \"touch started; while [ ! -e release ]; do sleep 0.02; done\"\n{}",
        range(1, 1)
    ));
    let first = hold_lock(&job);
    let out = poolrun()
        .arg("report")
        .arg(job.file("runs/job/latest"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": running\n"), "{stdout}");
    assert!(stdout.contains("running"), "{stdout}");
    // As JSON too: the run and the task are `running`.
    let json = poolrun()
        .args(["report", "--format", "json"])
        .arg(&job.path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["run"]["status"], "running");
    assert_eq!(report["tasks"][0]["status"], "running");
    assert_eq!(report["summary"]["running"], 1);
    assert!(!job.file("runs/job/latest/report.json").exists());
    std::fs::write(job.file("release"), "").unwrap();
    assert_eq!(crate::support::finish_background(first).code, 0);
}

/// A job that holds its lock until `release` exists, with `extra` in `[pool]`.
fn holding_job(extra: &str) -> Job {
    Job::new(&format!(
        "command = \"touch started; while [ ! -e release ]; do sleep 0.02; done\"\n{}{extra}",
        range(1, 1)
    ))
}

/// `poolrun run job.toml <args>` in the background with its stderr in `log`.
fn waiter(job: &Job, log: &str, args: &[&str]) -> crate::support::Background {
    crate::support::background(
        poolrun()
            .current_dir(job.dir.path())
            .arg("run")
            .arg(&job.path)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(job.file(log)).unwrap()),
    )
}

fn log_says(job: &Job, log: &str, what: &str) {
    wait_for(Duration::from_secs(10), what, || {
        std::fs::read_to_string(job.file(log))
            .ok()?
            .contains(what)
            .then_some(())
    });
}

#[test]
fn overlap_wait_queues_one_run_and_a_second_waiter_exits_75_at_once() {
    let job = holding_job("overlap = \"wait\"\n");
    let first = hold_lock(&job);
    let holder = std::fs::canonicalize(job.file("runs/job/latest")).unwrap();
    let queued = waiter(&job, "queued.log", &[]);
    log_says(&job, "queued.log", "waiting for run");
    // A third run does not queue behind the waiting one: it exits 75 at once, naming the holder.
    let started = std::time::Instant::now();
    let third = job.run(&[]);
    assert_eq!(third.code, 75, "{}", third.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(third.stderr.contains("already waiting"), "{}", third.stderr);
    // With -q, that skip prints nothing at all.
    let quiet = job.run(&["-q"]);
    assert_eq!((quiet.code, quiet.raw_stderr.as_str()), (75, ""));
    // The queued run's id and start are when it started running, not when it queued.
    std::thread::sleep(Duration::from_millis(1100));
    let released = std::time::SystemTime::now();
    std::fs::write(job.file("release"), "").unwrap();
    assert_eq!(crate::support::finish_background(first).code, 0);
    let queued = crate::support::finish_background(queued);
    assert_eq!(queued.code, 0, "{}", queued.stderr);
    let second = std::fs::canonicalize(job.file("runs/job/latest")).unwrap();
    assert_ne!(second, holder);
    let report = crate::support::read_report(&second);
    let started_at =
        humantime::parse_rfc3339(report["run"]["started_at"].as_str().unwrap()).unwrap();
    assert!(
        started_at + Duration::from_millis(50) >= released,
        "the run started at {started_at:?}, before the lock was released at {released:?}"
    );
    let id = report["run"]["id"].as_str().unwrap();
    let stamp = humantime::format_rfc3339_seconds(started_at)
        .to_string()
        .replace(['-', ':'], "");
    assert!(id.starts_with(&stamp[..13]), "{id} vs {stamp}");
}

#[test]
fn a_waiting_run_whose_deadline_passes_gives_up_and_runs_nothing() {
    let job = holding_job("overlap = \"wait\"\ndeadline = \"1s\"\n");
    // The holder itself has all the time it needs.
    let first = job.start(&["--set", "pool.deadline=\"1h\""]);
    wait_for(
        Duration::from_secs(10),
        "the holder's task to start",
        || job.file("started").exists().then_some(()),
    );
    let waited = job.run(&[]);
    assert_eq!(waited.code, 75, "{}", waited.stderr);
    assert!(
        waited
            .stderr
            .contains("the run's deadline (1s) passed; nothing ran"),
        "{}",
        waited.stderr
    );
    std::fs::write(job.file("release"), "").unwrap();
    assert_eq!(crate::support::finish_background(first).code, 0);
    let runs = std::fs::read_dir(job.file("runs/job"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .count();
    assert_eq!(runs, 1, "the waiter made no run directory");
}

#[test]
fn the_wait_for_the_lock_counts_against_the_deadline() {
    // Waits ~1.5 s of a 3 s deadline; its task then needs 3 s: the deadline stops it.
    let job = Job::new(&format!(
        "command = \"touch started; while [ ! -e release ]; do sleep 0.02; done; [ -e second ] && sleep 3; touch second\"\n{}overlap = \"wait\"\ndeadline = \"3s\"\n",
        range(1, 1)
    ));
    let first = hold_lock(&job);
    let queued = waiter(&job, "queued.log", &[]);
    log_says(&job, "queued.log", "waiting for run");
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(job.file("release"), "").unwrap();
    assert_eq!(crate::support::finish_background(first).code, 0);
    let queued = crate::support::finish_background(queued);
    assert_eq!(queued.code, 1, "{}", queued.stderr);
    let report = crate::support::read_report(&job.latest("job"));
    assert_eq!(report["run"]["status"], "halted");
    assert_eq!(report["run"]["stop_reason"], "deadline");
    let took = report["summary"]["wall_seconds"].as_f64().unwrap();
    assert!(
        took < 2.9,
        "the deadline counted the wait: the run itself took {took}s"
    );
}

#[test]
fn why_a_run_stopped_is_recorded() {
    let halted = Job::new(&format!(
        "command = \"exit 1\"\n{}halt = \"first-failure\"\n",
        range(5, 1)
    ));
    assert_eq!(halted.run(&[]).code, 1);
    assert_eq!(halted.report()["run"]["stop_reason"], "halt-policy");
    let completed = Job::new(&format!("command = \"true\"\n{}", range(2, 1)));
    assert_eq!(completed.run(&[]).code, 0);
    assert_eq!(
        completed.report()["run"]["stop_reason"],
        serde_json::Value::Null
    );
    let interrupted = Job::new(&format!(
        "command = \"touch started; sleep 30\"\n{}",
        range(2, 1)
    ));
    let child = interrupted.start(&[]);
    wait_for(Duration::from_secs(10), "the task to start", || {
        interrupted.file("started").exists().then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(crate::support::finish_background(child).code, 143);
    assert_eq!(interrupted.report()["run"]["stop_reason"], "SIGTERM");
}

#[test]
fn keep_prunes_the_oldest_runs_of_the_job() {
    let job = Job::new(&format!(
        "command = \"true\"\n{}\n[report]\nkeep = 2\n",
        range(1, 1)
    ));
    // Something else in the run root that is not a run of this job stays.
    std::fs::create_dir_all(job.file("runs/job/notes")).unwrap();
    let mut made = Vec::new();
    for _ in 0..4 {
        assert_eq!(job.run(&[]).code, 0);
        made.push(job.latest("job"));
    }
    let left: Vec<_> = made.iter().filter(|d| d.exists()).collect();
    assert_eq!(left, [&made[2], &made[3]]);
    assert!(job.file("runs/job/notes").exists());
    let bad = Job::new(&format!(
        "command = \"true\"\n{}\n[report]\nkeep = 0\n",
        range(1, 1)
    ));
    let run = bad.run(&[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("`report.keep`"), "{}", run.stderr);
}
