//! The Slurm backend against a real single-node Slurm (`ci/slurm/start.sh`, which `.ci/run`
//! runs and stops). Without Slurm on the machine these tests say they skip, unless
//! `POOLRUN_REQUIRE_SLURM` is set (as CI sets it): then they fail.
#![allow(
    clippy::format_collect,
    reason = "expected outputs are built line by line"
)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Job, Run, poolrun, repo, wait_for};

/// The private cluster's `SLURM_CONF`, started once for all the tests, with `MaxArraySize`
/// 40 so that a plan of 100 tasks needs three arrays.
fn cluster() -> Option<&'static PathBuf> {
    static CONF: OnceLock<Option<PathBuf>> = OnceLock::new();
    CONF.get_or_init(|| {
        let installed = Command::new("sh")
            .args(["-c", "command -v slurmctld && command -v sbatch"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed && std::env::var_os("POOLRUN_REQUIRE_SLURM").is_none() {
            eprintln!("skipped: Slurm is not installed (ci/slurm/start.sh installs and starts it)");
            return None;
        }
        let out = Command::new(repo().join("ci/slurm/start.sh"))
            .env("MAX_ARRAY_SIZE", "40")
            .stderr(Stdio::inherit())
            .output()
            .expect("ci/slurm/start.sh");
        assert!(out.status.success(), "the Slurm cluster did not start");
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        let conf = line
            .trim()
            .strip_prefix("export SLURM_CONF=")
            .expect("SLURM_CONF");
        Some(PathBuf::from(conf))
    })
    .as_ref()
}

macro_rules! need_slurm {
    () => {
        match cluster() {
            Some(conf) => conf,
            None => return,
        }
    };
}

/// `poolrun <args>` in the job's directory against the cluster.
fn poolrun_in(job: &Job, conf: &std::path::Path, args: &[&str]) -> Run {
    job.poolrun(args, &[("SLURM_CONF", conf)])
}

fn squeue(conf: &PathBuf, args: &[&str]) -> String {
    let out = Command::new("squeue")
        .env("SLURM_CONF", conf)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Elements of job `name` that are queued or running (not those completing).
fn live_elements(conf: &PathBuf, name: &str) -> usize {
    squeue(conf, &["-h", "--array", "-o", "%j %T"])
        .lines()
        .filter(|l| l.starts_with(&format!("poolrun-{name} ")) && !l.ends_with(" COMPLETING"))
        .count()
}

fn array_of(task: &Value) -> String {
    let id = task["slurm_job_id"].as_str().expect("slurm_job_id");
    let (array, index) = id.split_once('_').expect("<array job id>_<index>");
    assert!(array.bytes().all(|b| b.is_ascii_digit()), "{id}");
    assert!(index.bytes().all(|b| b.is_ascii_digit()), "{id}");
    array.to_owned()
}

#[test]
fn a_hundred_tasks_come_back_in_order_with_their_outcomes_across_arrays() {
    let conf = need_slurm!();
    let job = Job::named(
        "hundred",
        "command = \"echo out {item}; case {item} in 13) exit 4;; 50) sleep 30;; esac\"\n\
         [range]\nstart = 0\nend = 100\n[pool]\nprocesses = 32\ntimeout = \"3s\"\ngrace-period = \"1s\"\n[slurm]\n",
    );
    let run = poolrun_in(&job, conf, &["run", "hundred.toml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = crate::support::read_report(&job.latest("hundred"));
    assert_eq!(report["run"]["backend"], "slurm");
    assert_eq!(report["run"]["status"], "completed");
    let tasks = crate::support::tasks(&report);
    assert_eq!(tasks.len(), 100);
    for (i, task) in tasks.iter().enumerate() {
        assert_eq!(task["id"], i);
        let want = match i {
            13 => "failed",
            50 => "timed_out",
            _ => "succeeded",
        };
        assert_eq!(task["status"], want, "task {i}: {task}");
    }
    assert_eq!(tasks[13]["exit_code"], 4);
    // MaxArraySize is 40: 100 tasks go in three arrays.
    let mut arrays: Vec<String> = tasks.iter().map(array_of).collect();
    arrays.sort();
    arrays.dedup();
    assert!(arrays.len() >= 3, "{arrays:?}");
    let out = poolrun_in(&job, conf, &["report", "hundred.toml", "--output"]);
    let expected: String = (0..100).map(|i| format!("out {i}\n")).collect();
    assert_eq!(out.stdout, expected);
    assert_eq!(live_elements(conf, "hundred"), 0);
}

#[test]
fn processes_bounds_the_elements_running_at_once_across_arrays() {
    let conf = need_slurm!();
    // 60 tasks need two arrays (MaxArraySize 40); at most 4 may run at once in all.
    let job = Job::named(
        "bounded",
        "command = \"sleep 0.4\"\n[range]\nstart = 0\nend = 60\n[pool]\nprocesses = 4\n[slurm]\n",
    );
    let run = poolrun_in(&job, conf, &["run", "bounded.toml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = crate::support::read_report(&job.latest("bounded"));
    let time = |t: &Value, key: &str| humantime::parse_rfc3339(t[key].as_str().unwrap()).unwrap();
    let mut edges: Vec<(std::time::SystemTime, i32)> = Vec::new();
    for task in crate::support::tasks(&report) {
        edges.push((time(task, "started_at"), 1));
        edges.push((time(task, "finished_at"), -1));
    }
    edges.sort();
    let mut running = 0;
    let mut most = 0;
    for (_, step) in edges {
        running += step;
        most = most.max(running);
    }
    assert!(most <= 4, "{most} tasks ran at once");
    let mut arrays: Vec<String> = crate::support::tasks(&report)
        .iter()
        .map(array_of)
        .collect();
    arrays.dedup();
    assert!(arrays.len() >= 2, "{arrays:?}");
}

#[test]
fn the_timeout_of_the_command_line_reaches_the_elements() {
    let conf = need_slurm!();
    let job = Job::named(
        "override",
        "command = \"sleep 30\"\n[range]\nstart = 0\nend = 2\n[pool]\ngrace-period = \"1s\"\n[slurm]\n",
    );
    let run = poolrun_in(&job, conf, &["run", "override.toml", "--timeout", "1s"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = crate::support::read_report(&job.latest("override"));
    for task in crate::support::tasks(&report) {
        assert_eq!(task["status"], "timed_out", "{task}");
    }
}

#[test]
fn sbatch_refusing_the_job_is_reported_and_nothing_is_left() {
    let conf = need_slurm!();
    let job = Job::named(
        "refused",
        "command = \"true\"\n[range]\nstart = 0\nend = 3\n[slurm]\npartition = \"nope\"\n",
    );
    let run = poolrun_in(&job, conf, &["run", "refused.toml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot submit to Slurm"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.to_lowercase().contains("invalid partition"),
        "{}",
        run.stderr
    );
    let report = crate::support::read_report(&job.latest("refused"));
    for task in crate::support::tasks(&report) {
        assert_eq!(task["status"], "spawn_failed");
        assert!(
            task["error"].as_str().unwrap().contains("sbatch failed"),
            "{task}"
        );
    }
}

#[test]
fn a_scancel_from_outside_cancels_that_task_and_the_run_goes_on() {
    let conf = need_slurm!();
    let job = Job::named(
        "outside",
        "command = \"if [ {item} = 0 ]; then touch started; sleep 60; fi\"\n\
         [range]\nstart = 0\nend = 4\n[pool]\nprocesses = 4\n[slurm]\n",
    );
    let child = crate::support::background(
        poolrun()
            .current_dir(job.dir.path())
            .env("SLURM_CONF", conf)
            .args(["run", "outside.toml"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    wait_for(Duration::from_secs(30), "task 0 to run", || {
        job.file("started").exists().then_some(())
    });
    // Task 0 is index 0 of the run's one array.
    let element = squeue(conf, &["-h", "--array", "-o", "%i %j"])
        .lines()
        .filter(|l| l.ends_with(" poolrun-outside"))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .find(|id| id.ends_with("_0"))
        .expect("task 0's element");
    let cancelled = Command::new("scancel")
        .env("SLURM_CONF", conf)
        .arg(&element)
        .status()
        .unwrap();
    assert!(cancelled.success());
    let run = crate::support::finish_background(child);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = crate::support::read_report(&job.latest("outside"));
    let tasks = crate::support::tasks(&report);
    assert_eq!(tasks[0]["status"], "cancelled", "{}", tasks[0]);
    assert!(
        tasks[0]["error"].as_str().unwrap().contains("CANCELLED"),
        "{}",
        tasks[0]
    );
    assert_eq!(tasks[0]["slurm_job_id"], element.as_str());
    for task in &tasks[1..] {
        assert_eq!(task["status"], "succeeded");
    }
    assert_eq!(report["run"]["status"], "completed");
}

#[test]
fn ctrl_c_cancels_every_array_of_the_run() {
    let conf = need_slurm!();
    let job = Job::named(
        "interrupted",
        "command = \"touch started-{item}; sleep 60\"\n\
         [range]\nstart = 0\nend = 20\n[pool]\nprocesses = 4\ngrace-period = \"1s\"\n[slurm]\n",
    );
    let child = crate::support::background(
        poolrun()
            .current_dir(job.dir.path())
            .env("SLURM_CONF", conf)
            .args(["run", "interrupted.toml"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    wait_for(Duration::from_secs(30), "the first tasks to run", || {
        job.file("started-0").exists().then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let run = crate::support::finish_background(child);
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert_eq!(live_elements(conf, "interrupted"), 0);
    let report = crate::support::read_report(&job.latest("interrupted"));
    assert_eq!(report["run"]["status"], "interrupted");
    assert_eq!(report["run"]["stop_reason"], "SIGINT");
    // The running ones were cancelled; the queued ones never ran.
    let summary = &report["summary"];
    assert!(summary["cancelled"].as_u64().unwrap() >= 1, "{summary}");
    assert_eq!(
        summary["cancelled"].as_u64().unwrap() + summary["not_run"].as_u64().unwrap(),
        20,
        "{summary}"
    );
}

#[test]
fn resume_after_poolrun_is_killed_cancels_its_arrays_and_runs_only_what_did_not_succeed() {
    let conf = need_slurm!();
    // Tasks 0-9 end at once; 10-19 wait for `go`. poolrun is killed with SIGKILL meanwhile.
    let job = Job::named(
        "killed",
        "command = \"echo {item} >> ran; if [ {item} -ge 10 ]; then while [ ! -e go ]; do sleep 0.1; done; fi\"\n\
         [range]\nstart = 0\nend = 20\n[pool]\nprocesses = 20\n[slurm]\n",
    );
    let mut child = crate::support::background(
        poolrun()
            .current_dir(job.dir.path())
            .env("SLURM_CONF", conf)
            .args(["run", "killed.toml"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let dir = wait_for(Duration::from_secs(60), "tasks 0-9 in the journal", || {
        let dir = std::fs::canonicalize(job.file("runs/killed/latest")).ok()?;
        let journal = std::fs::read_to_string(dir.join("journal.jsonl")).ok()?;
        (journal.matches("\"status\":\"succeeded\"").count() >= 10).then_some(dir)
    });
    child.kill9();
    assert!(
        live_elements(conf, "killed") > 0,
        "its elements outlive poolrun"
    );
    std::fs::write(job.file("go"), "").unwrap();
    let resumed = poolrun_in(&job, conf, &["run", "killed.toml", "--resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(
        resumed.stderr.contains("cancelled the Slurm arrays"),
        "{}",
        resumed.stderr
    );
    assert_eq!(live_elements(conf, "killed"), 0);
    let report = crate::support::read_report(&dir);
    assert_eq!(report["summary"]["succeeded"], 20);
    // Tasks 0-9 ran once: the resumed run carried them.
    let ran = std::fs::read_to_string(job.file("ran")).unwrap();
    for i in 0..10 {
        assert_eq!(
            ran.lines().filter(|l| *l == i.to_string()).count(),
            1,
            "task {i}: {ran}"
        );
    }
}

#[test]
fn tasks_that_ended_while_poolrun_was_dead_are_not_run_again() {
    let conf = need_slurm!();
    let job = Job::named(
        "orphans",
        "command = \"echo {item} >> ran; while [ ! -e go ]; do sleep 0.1; done\"\n\
         [range]\nstart = 0\nend = 6\n[pool]\nprocesses = 6\n[slurm]\n",
    );
    let mut child = crate::support::background(
        poolrun()
            .current_dir(job.dir.path())
            .env("SLURM_CONF", conf)
            .args(["run", "orphans.toml"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    wait_for(Duration::from_secs(60), "every task to start", || {
        let ran = std::fs::read_to_string(job.file("ran")).ok()?;
        (ran.lines().count() == 6).then_some(())
    });
    child.kill9();
    // The elements finish with nobody watching, each leaving its outcome file.
    std::fs::write(job.file("go"), "").unwrap();
    wait_for(
        Duration::from_secs(60),
        "the orphaned elements to end",
        || (live_elements(conf, "orphans") == 0).then_some(()),
    );
    let resumed = poolrun_in(&job, conf, &["run", "orphans.toml", "--resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(
        resumed.stderr.contains("6 tasks ended on Slurm"),
        "{}",
        resumed.stderr
    );
    let report = crate::support::read_report(&job.latest("orphans"));
    assert_eq!(report["summary"]["succeeded"], 6);
    let ran = std::fs::read_to_string(job.file("ran")).unwrap();
    assert_eq!(ran.lines().count(), 6, "no task ran twice: {ran}");
}

#[test]
fn a_slurm_time_limit_is_a_timeout_with_its_reason() {
    // The one test that waits for Slurm's clock: limits are whole minutes.
    let conf = need_slurm!();
    let job = Job::named(
        "overtime",
        "command = \"sleep 300\"\n[range]\nstart = 0\nend = 1\n[pool]\ngrace-period = \"1s\"\n\
         [slurm]\nextra-args = [\"--time=1\"]\n",
    );
    let run = poolrun_in(&job, conf, &["run", "overtime.toml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = crate::support::read_report(&job.latest("overtime"));
    let task = &crate::support::tasks(&report)[0];
    assert_eq!(task["status"], "timed_out", "{task}");
    assert!(
        task["error"].as_str().unwrap().contains("TIMEOUT"),
        "{task}"
    );
}

#[test]
fn a_soft_halt_runs_no_queued_element_and_lets_running_ones_finish() {
    let conf = need_slurm!();
    let job = Job::named(
        "halted",
        "command = \"if [ {item} = 0 ]; then exit 1; fi; sleep 1\"\n\
         [range]\nstart = 0\nend = 12\n[pool]\nprocesses = 1\nhalt = \"first-failure\"\n[slurm]\n",
    );
    let run = poolrun_in(&job, conf, &["run", "halted.toml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = crate::support::read_report(&job.latest("halted"));
    assert_eq!(report["run"]["status"], "halted");
    assert_eq!(report["run"]["stop_reason"], "halt-policy");
    let tasks = crate::support::tasks(&report);
    assert_eq!(tasks[0]["status"], "failed");
    let never = tasks.iter().filter(|t| t["status"] == "not_run").count();
    assert!(never >= 8, "the queued elements never ran: {report}");
    assert_eq!(live_elements(conf, "halted"), 0);
}
