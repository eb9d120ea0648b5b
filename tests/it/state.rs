//! The journal, rebuilding a lost report, and resuming a run.

use std::time::Duration;

use serde_json::Value;

use crate::support::{
    Job, assert_all_gone, journal, pids_in, poolrun, read_report, statuses, tasks, wait_for,
};

/// How many task runs wrote a line to the job's `ran` file.
fn runs_recorded(job: &Job) -> usize {
    std::fs::read_to_string(job.file("ran"))
        .unwrap()
        .lines()
        .count()
}

/// Waits until the run's journal has `finished` finished and `started` started records.
fn wait_journal(job: &Job, finished: usize, started: usize) {
    wait_for(Duration::from_secs(20), "the journal to fill", || {
        let dir = std::fs::canonicalize(job.file("runs/job/latest")).ok()?;
        let text = std::fs::read_to_string(dir.join("journal.jsonl")).ok()?;
        let count = |e: &str| {
            text.lines()
                .filter(|l| l.contains(&format!("\"event\":\"{e}\"")))
                .count()
        };
        (count("finished") >= finished && count("started") >= started).then_some(())
    });
}

fn sigkill(child: &mut crate::support::Background) {
    child.kill9();
}

/// The parts of task rows that a clean run and a resumed one must share.
fn stable(report: &Value) -> Vec<Value> {
    tasks(report)
        .iter()
        .map(|t| {
            serde_json::json!([
                t["id"],
                t["start"],
                t["last"],
                t["count"],
                t["command"],
                t["status"],
                t["exit_code"],
                t["stdout"],
                t["stdout_bytes"]
            ])
        })
        .collect()
}

/// Tasks 0 and 1 finish at once; tasks 2 and 3 wait for a `go` file, so the engine can be
/// killed while they are in flight.
const GATED: &str = "command = \"echo $$ >> {id}.pid; if [ {id} -ge 2 ]; then while [ ! -e go ]; do sleep 0.02; done; fi; echo out {id}\"\n[range]\nstart = 0\nend = 6\n\n[pool]\nprocesses = 2\n";

#[test]
fn every_attempt_is_journaled_in_order() {
    let job = Job::new(
        "command = \"exit $(({id} % 2))\"\n[range]\nstart = 0\nend = 4\n[pool]\nprocesses = 2\nretries = 1\n",
    );
    assert_eq!(job.run(&[]).code, 1);
    let events = journal(&job.latest("job"));
    assert_eq!(events[0]["event"], "run_started");
    assert_eq!(events.last().unwrap()["event"], "run_finished");
    for id in 0..4u64 {
        let of = |kind: &str| {
            events
                .iter()
                .filter(|e| e["event"] == kind && e["task"] == id)
                .cloned()
                .collect::<Vec<_>>()
        };
        let (started, finished) = (of("started"), of("finished"));
        let attempts = if id % 2 == 1 { 2 } else { 1 };
        assert_eq!(
            (started.len(), finished.len()),
            (attempts, attempts),
            "task {id}"
        );
        for (n, (s, f)) in started.iter().zip(&finished).enumerate() {
            assert_eq!(s["attempt"], n + 1);
            assert_eq!(f["attempt"], n + 1);
            assert_eq!(s["key"], f["key"]);
            let position = |e: &Value| events.iter().position(|x| x == e).unwrap();
            assert!(position(s) < position(f), "started before finished");
        }
    }
}

#[test]
fn a_lost_report_is_rebuilt_identically_from_the_journal() {
    let job = Job::new(
        "command = \"echo {id}; echo warn {id} >&2; exit $(({id} % 3))\"\n[range]\nstart = 0\nend = 7\n[pool]\nprocesses = 3\n",
    );
    assert_eq!(job.run(&[]).code, 1);
    let dir = job.latest("job");
    let original = read_report(&dir);
    std::fs::remove_file(dir.join("report.json")).unwrap();
    let out = poolrun()
        .args(["report", "--json"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let rebuilt = read_report(&dir);
    assert_eq!(rebuilt["tasks"], original["tasks"]);
    for key in ["tasks", "succeeded", "failed", "not_run"] {
        assert_eq!(rebuilt["summary"][key], original["summary"][key]);
    }
    assert_eq!(rebuilt["run"]["status"], "completed");
    assert_eq!(rebuilt["run"]["id"], original["run"]["id"]);
}

#[test]
fn the_report_of_a_killed_engine_marks_running_tasks_cancelled() {
    let job = Job::new(GATED);
    let mut child = job.start(&[]);
    wait_journal(&job, 2, 4);
    sigkill(&mut child);
    let dir = job.latest("job");
    assert!(!dir.join("report.json").exists());
    let out = poolrun().arg("report").arg(&dir).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&dir);
    assert_eq!(
        statuses(&report),
        [
            "succeeded",
            "succeeded",
            "cancelled",
            "cancelled",
            "not_run",
            "not_run"
        ]
    );
    assert_eq!(report["run"]["status"], "interrupted");
    // The killed engine's tasks run on until they see `go`; none may outlive the test.
    std::fs::write(job.file("go"), "").unwrap();
    assert_all_gone(&pids_in(job.dir.path()));
}

#[test]
fn kill_9_then_resume_finishes_every_task_once() {
    let job = Job::new(GATED);
    let mut child = job.start(&[]);
    wait_journal(&job, 2, 4);
    sigkill(&mut child);
    std::fs::write(job.file("go"), "").unwrap();
    let resumed = job.run(&["--resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let dir = job.latest("job");
    let report = read_report(&dir);
    assert_eq!(statuses(&report), ["succeeded"; 6]);
    let attempts: Vec<u64> = tasks(&report)
        .iter()
        .map(|t| t["attempts"].as_u64().unwrap())
        .collect();
    assert_eq!(
        attempts,
        [1, 1, 2, 2, 1, 1],
        "only the tasks in flight ran again"
    );
    // Tasks 0 and 1 ran once in all: they did not run again.
    for id in 0..2 {
        assert_eq!(
            std::fs::read_to_string(job.file(&format!("{id}.pid")))
                .unwrap()
                .lines()
                .count(),
            1
        );
    }
    let output = poolrun()
        .args(["report", "--output"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "out 0\nout 1\nout 2\nout 3\nout 4\nout 5\n"
    );
    // The same job run cleanly gives the same rows apart from times and attempts.
    let clean = Job::new(GATED);
    std::fs::write(clean.file("go"), "").unwrap();
    assert_eq!(clean.run(&[]).code, 0);
    assert_eq!(stable(&report), stable(&clean.report()));
    assert_all_gone(&pids_in(job.dir.path()));
}

#[test]
fn resume_runs_only_what_did_not_succeed() {
    let job = Job::new(
        "command = \"echo attempt; echo {id} >> ran; [ -e fixed ] || [ {id} -ne 1 ]\"\n[range]\nstart = 0\nend = 3\n",
    );
    assert_eq!(job.run(&[]).code, 1);
    std::fs::write(job.file("fixed"), "").unwrap();
    let dir = job.latest("job");
    let run = job.run(&["--resume", dir.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ran = std::fs::read_to_string(job.file("ran")).unwrap();
    let mut ran: Vec<&str> = ran.lines().collect();
    ran.sort_unstable();
    assert_eq!(ran, ["0", "1", "1", "2"]);
    let report = read_report(&dir);
    assert_eq!(statuses(&report), ["succeeded"; 3]);
    assert_eq!(tasks(&report)[1]["attempts"], 2);
    assert!(
        dir.join("tasks/1.1.out").exists(),
        "the failed attempt's output is kept"
    );
    // Nothing left to do: a second resume runs nothing.
    assert_eq!(job.run(&["--resume"]).code, 0);
    assert_eq!(runs_recorded(&job), 4);
}

#[test]
fn resume_refuses_a_changed_job_file_unless_forced() {
    let text = "command = \"echo {start}-{last} >> ran; [ {start} -lt 4 ]\"\n[range]\nstart = 0\nend = 8\nchunk-size = 2\n";
    let job = Job::new(text);
    assert_eq!(job.run(&[]).code, 1);
    // Tasks 0..1 (items 0..3) succeeded. Chunks of 2 -> 1: only keys that changed run again.
    std::fs::write(
        &job.path,
        text.replace("chunk-size = 2", "chunk-size = 1")
            .replace("-lt 4", "-lt 100"),
    )
    .unwrap();
    let refused = job.run(&["--resume"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("range.chunk-size: 2 -> 1"),
        "{}",
        refused.stderr
    );
    let forced = job.run(&["--resume", "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    let report = job.report();
    assert_eq!(statuses(&report), ["succeeded"; 8]);
    let dir = job.latest("job");
    assert_eq!(
        std::fs::read_to_string(dir.join("job.toml")).unwrap(),
        std::fs::read_to_string(&job.path).unwrap()
    );
}

#[test]
fn resume_keeps_succeeded_tasks_whose_key_did_not_change() {
    // Changing a value that only some tasks' commands use reruns just those tasks.
    let text = "command = \"echo {id} >> ran; [ {id} -ne 2 ]\"\nenv = { X = \"1\" }\n[range]\nstart = 0\nend = 4\n";
    let job = Job::new(text);
    assert_eq!(job.run(&[]).code, 1);
    std::fs::write(&job.path, text.replace("[ {id} -ne 2 ]", "true")).unwrap();
    assert_eq!(job.run(&["--resume", "--force"]).code, 0);
    // Every task's command changed, so every task ran again: keys cover the rendered command.
    assert_eq!(runs_recorded(&job), 8);
    let same = "command = \"echo {id} >> ran; [ -e ok ] || [ {id} -ne 2 ]\"\n[range]\nstart = 0\nend = 4\n";
    let job = Job::new(same);
    assert_eq!(job.run(&[]).code, 1);
    std::fs::write(job.file("ok"), "").unwrap();
    // A comment is a change of the file, not of any task: forced, only the failed task runs.
    std::fs::write(&job.path, format!("# note\n{same}")).unwrap();
    assert_eq!(job.run(&["--resume", "--force"]).code, 0);
    assert_eq!(runs_recorded(&job), 5);
}

#[test]
fn overrides_are_not_a_change_of_the_job_file() {
    let job = Job::new("command = \"[ -e ok ]\"\n[range]\nstart = 0\nend = 2\n");
    assert_eq!(job.run(&[]).code, 1);
    std::fs::write(job.file("ok"), "").unwrap();
    let run = job.run(&["--resume", "--processes", "1", "--timeout", "5s"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn resuming_something_that_is_not_a_run_is_a_usage_error() {
    let job = Job::new("command = \"true\"\n[range]\nstart = 0\nend = 1\n");
    let run = job.run(&["--resume"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = job.run(&["--resume", job.dir.path().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("journal"), "{}", run.stderr);
}

#[test]
fn a_torn_last_line_ending_inside_a_character_is_ignored() {
    let job = Job::new("command = \"echo é\"\n[range]\nstart = 0\nend = 2\n");
    assert_eq!(job.run(&[]).code, 0);
    let dir = job.latest("job");
    std::fs::remove_file(dir.join("report.json")).unwrap();
    // A record cut after the first byte of the two-byte "é": not UTF-8, and not a whole line.
    let mut torn = b"{\"event\":\"finished\",\"error\":\"caf".to_vec();
    torn.push(0xc3);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("journal.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut file, &torn).unwrap();
    let run = poolrun().arg("report").arg(&dir).output().unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(statuses(&read_report(&dir)), ["succeeded", "succeeded"]);
    std::fs::remove_file(dir.join("report.json")).unwrap();
    let resumed = job.run(&["--resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
}

#[test]
fn the_rebuilt_report_of_a_killed_resume_shows_the_attempt_in_flight() {
    // Every task fails once; on the resume, tasks 2 and 3 wait for `go` and poolrun is killed.
    let job = Job::new(
        "command = \"if [ -e failed ]; then if [ {id} -ge 2 ]; then while [ ! -e go ]; do sleep 0.02; done; fi; exit 0; fi; exit 3\"\n[range]\nstart = 0\nend = 4\n\n[pool]\nprocesses = 2\n",
    );
    assert_eq!(job.run(&[]).code, 1);
    std::fs::write(job.file("failed"), "").unwrap();
    let mut child = job.start(&["--resume"]);
    wait_for(Duration::from_secs(20), "the resumed attempts", || {
        let dir = std::fs::canonicalize(job.file("runs/job/latest")).ok()?;
        let text = std::fs::read_to_string(dir.join("journal.jsonl")).ok()?;
        let resumed = text.split("\"resumed\":true").nth(1)?;
        (resumed.matches("\"event\":\"finished\"").count() >= 2
            && resumed.matches("\"event\":\"started\"").count() >= 4)
            .then_some(())
    });
    sigkill(&mut child);
    let dir = job.latest("job");
    let run = poolrun().arg("report").arg(&dir).output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    let report = read_report(&dir);
    assert_eq!(
        statuses(&report),
        ["succeeded", "succeeded", "cancelled", "cancelled"]
    );
    let attempts: Vec<u64> = tasks(&report)
        .iter()
        .map(|t| t["attempts"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [2, 2, 2, 2]);
    std::fs::write(job.file("go"), "").unwrap();
    let resumed = job.run(&["--resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
}

#[test]
fn a_run_that_cannot_be_read_is_a_usage_error_not_a_write_error() {
    let job = Job::new("command = \"true\"\n[range]\nstart = 0\nend = 1\n");
    let missing = poolrun()
        .args(["report", "no/such/run"])
        .current_dir(job.dir.path())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no/such/run"));
    assert_eq!(job.run(&[]).code, 0);
    let dir = job.latest("job");
    std::fs::write(dir.join("report.json"), "{ not json").unwrap();
    let corrupt = poolrun().arg("report").arg(&dir).output().unwrap();
    assert_eq!(corrupt.status.code(), Some(2));
    std::fs::remove_file(dir.join("report.json")).unwrap();
    std::fs::write(dir.join("journal.jsonl"), "garbage\n").unwrap();
    let corrupt = poolrun().arg("report").arg(&dir).output().unwrap();
    assert_eq!(corrupt.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&corrupt.stderr);
    assert!(stderr.contains("journal.jsonl:1"), "{stderr}");
}
