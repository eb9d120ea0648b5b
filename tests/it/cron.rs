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
