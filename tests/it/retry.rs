//! Retries, halting and the run deadline.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Job, assert_all_gone, journal, pids_in, statuses, tasks};

/// Fails until it has run `n` times, counting in `count.<id>`.
fn flaky(n: u32) -> String {
    format!(
        "c=$(cat count.{{id}} 2>/dev/null || echo 0); c=$((c + 1)); echo $c > count.{{id}}; echo attempt $POOLRUN_ATTEMPT; [ $c -ge {n} ] || exit 3"
    )
}

fn at(e: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339(e["at"].as_str().unwrap()).unwrap()
}

#[test]
fn retries_back_off_and_keep_every_attempt() {
    let job = Job::new(&format!(
        "command = \"{}\"\n[range]\nstart = 0\nend = 2\n[pool]\nprocesses = 2\nretries = 3\nretry-delay = {{ initial = \"300ms\", factor = 2 }}\n",
        flaky(3)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dir = job.latest("job");
    let report = job.report();
    assert_eq!(statuses(&report), ["succeeded", "succeeded"]);
    assert!(tasks(&report).iter().all(|t| t["attempts"] == 3));
    for attempt in 1..=2 {
        let out = std::fs::read_to_string(dir.join(format!("tasks/0.{attempt}.out"))).unwrap();
        assert_eq!(out, format!("attempt {attempt}\n"));
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("tasks/0.out")).unwrap(),
        "attempt 3\n"
    );
    // The delays, read from the journal: 300 ms then 600 ms (with generous bounds).
    let events = journal(&dir);
    for (attempt, delay) in [(1, 300), (2, 600)] {
        let finished = events
            .iter()
            .find(|e| e["event"] == "finished" && e["task"] == 0 && e["attempt"] == attempt)
            .unwrap();
        let next = events
            .iter()
            .find(|e| e["event"] == "started" && e["task"] == 0 && e["attempt"] == attempt + 1)
            .unwrap();
        assert_eq!(finished["retry"], true);
        let gap = at(next).duration_since(at(finished)).unwrap();
        assert!(
            gap >= Duration::from_millis(delay * 9 / 10),
            "attempt {attempt}: waited {gap:?}"
        );
    }
}

#[test]
fn retries_run_out_and_the_last_attempt_counts() {
    let job = Job::new(&format!(
        "command = \"{}\"\n[range]\nstart = 0\nend = 1\n[pool]\nretries = 2\n",
        flaky(10)
    ));
    assert_eq!(job.run(&[]).code, 1);
    let report = job.report();
    let task = &tasks(&report)[0];
    assert_eq!(
        (
            task["status"].as_str(),
            task["attempts"].as_u64(),
            task["exit_code"].as_i64()
        ),
        (Some("failed"), Some(3), Some(3))
    );
    let finished = journal(&job.latest("job"))
        .into_iter()
        .filter(|e| e["event"] == "finished")
        .count();
    assert_eq!(finished, 3);
}

#[test]
fn retry_on_limits_what_is_retried() {
    // Exit code 3 is listed; 4 is not, and neither is "failed" as a whole.
    let job = Job::new(
        "command = \"echo x >> ran.{id}; exit $((3 + {id}))\"\n[range]\nstart = 0\nend = 2\n[pool]\nretries = 2\nretry-on = [3, \"timed_out\"]\n",
    );
    assert_eq!(job.run(&[]).code, 1);
    let count = |id: u32| {
        std::fs::read_to_string(job.file(&format!("ran.{id}")))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!((count(0), count(1)), (3, 1));
}

#[test]
fn spawn_failures_are_not_retried_by_default() {
    let job =
        Job::new("command = [\"./missing\"]\n[range]\nstart = 0\nend = 1\n[pool]\nretries = 3\n");
    assert_eq!(job.run(&[]).code, 1);
    let report = job.report();
    assert_eq!(tasks(&report)[0]["status"], "spawn_failed");
    assert_eq!(tasks(&report)[0]["attempts"], 1);
}

#[test]
fn halt_soon_lets_running_tasks_finish_and_runs_no_more() {
    // Task 1 fails at once; task 0 keeps running until the journal shows task 1's failure (so
    // the halt has happened), then finishes normally.
    let job = Job::new(
        "command = [\"sh\", \"task.sh\", \"{id}\"]\n[range]\nstart = 0\nend = 6\n[pool]\nprocesses = 2\nhalt = \"first-failure\"\n",
    );
    let script = r#"
case $1 in
  1) exit 1 ;;
  0) until grep -qs '"finished".*"task":1,' "$POOLRUN_RUN_DIR/journal.jsonl"; do sleep 0.02; done ;;
esac
"#;
    std::fs::write(job.file("task.sh"), script).unwrap();
    let run = job.run(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = job.report();
    assert_eq!(
        statuses(&report),
        [
            "succeeded",
            "failed",
            "not_run",
            "not_run",
            "not_run",
            "not_run"
        ]
    );
    assert_eq!(report["run"]["status"], "halted");
}

#[test]
fn halt_now_stops_running_tasks() {
    let job = Job::new(
        "command = \"if [ {id} -eq 1 ]; then sleep 0.2; exit 1; fi; echo $$ > {id}.pid; sleep 1000\"\n[range]\nstart = 0\nend = 5\n[pool]\nprocesses = 2\nhalt = { max-failures = 1 }\nhalt-mode = \"now\"\ngrace-period = \"1s\"\n",
    );
    let run = job.run(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = job.report();
    assert_eq!(
        statuses(&report),
        ["cancelled", "failed", "not_run", "not_run", "not_run"]
    );
    assert_eq!(report["run"]["status"], "halted");
    assert_all_gone(&pids_in(job.dir.path()));
}

#[test]
fn halt_on_a_failure_rate_waits_for_enough_tasks() {
    // One task at a time: tasks 0 and 2 fail. After 4 finished the rate is 50% >= 40%.
    let job = Job::new(
        "command = \"[ $(({id} % 2)) -eq 1 ]\"\n[range]\nstart = 0\nend = 10\n[pool]\nprocesses = 1\nhalt = { max-failure-rate = \"40%\", after = 4 }\n",
    );
    assert_eq!(job.run(&[]).code, 1);
    let report = job.report();
    assert_eq!(
        &statuses(&report)[..5],
        ["failed", "succeeded", "failed", "succeeded", "not_run"]
    );
}

#[test]
fn a_retried_attempt_is_not_a_failure_yet() {
    let job = Job::new(&format!(
        "command = \"{}\"\n[range]\nstart = 0\nend = 3\n[pool]\nprocesses = 1\nretries = 1\nhalt = \"first-failure\"\n",
        flaky(2)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(statuses(&job.report()), ["succeeded"; 3]);
}

#[test]
fn the_deadline_stops_the_run() {
    let job = Job::new(
        "command = \"echo $$ > {id}.pid; sleep 1000\"\n[range]\nstart = 0\nend = 4\n[pool]\nprocesses = 2\ndeadline = \"500ms\"\ngrace-period = \"1s\"\n",
    );
    let run = job.run(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = job.report();
    assert_eq!(
        statuses(&report),
        ["cancelled", "cancelled", "not_run", "not_run"]
    );
    assert_eq!(report["run"]["status"], "halted");
    assert_all_gone(&pids_in(job.dir.path()));
}
