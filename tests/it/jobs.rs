//! The committed schemas and the example jobs in `jobs/`.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{assert_valid, job_schema, poolrun, read_report, repo, statuses};

pub fn example_jobs() -> Vec<PathBuf> {
    let mut jobs: Vec<PathBuf> = std::fs::read_dir(repo().join("jobs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    jobs.sort();
    assert!(jobs.len() >= 3, "jobs/ holds the examples");
    jobs
}

#[test]
fn committed_schemas_match_the_types() {
    for which in ["job", "report", "journal"] {
        let out = poolrun().args(["schema", which]).output().unwrap();
        assert!(out.status.success());
        let committed =
            std::fs::read_to_string(repo().join(format!("schemas/{which}.schema.json"))).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim_end(),
            committed.trim_end(),
            "schemas/{which}.schema.json is stale: run `cargo run -- schema {which} > schemas/{which}.schema.json`"
        );
    }
}

#[test]
fn every_example_job_validates_against_the_schema_and_loads() {
    for job in example_jobs() {
        let text = std::fs::read_to_string(&job).unwrap();
        assert!(
            text.starts_with("#:schema ../schemas/job.schema.json"),
            "{}",
            job.display()
        );
        let value: toml::Value = toml::from_str(&text).unwrap();
        let json: Value = serde_json::to_value(value).unwrap();
        assert_valid(job_schema(), &json, &job.display().to_string());
        let out = poolrun().arg("validate").arg(&job).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            job.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs an example job with its run directory in a temporary folder.
fn run_example(name: &str) -> (i32, Value, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let out = poolrun()
        .arg("run")
        .arg(repo().join("jobs").join(format!("{name}.toml")))
        .arg("--run-dir")
        .arg(&dir)
        .output()
        .unwrap();
    (out.status.code().unwrap(), read_report(&dir), tmp)
}

#[test]
fn the_squares_example_prints_squares_in_task_order() {
    let (code, report, _tmp) = run_example("squares");
    assert_eq!(code, 0);
    let squares: Vec<u64> = example_output(&report)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(squares, (0..10).map(|x| x * x).collect::<Vec<u64>>());
}

#[test]
fn the_chunks_example_sums_fifty_chunks() {
    let (code, report, _tmp) = run_example("chunks");
    assert_eq!(code, 0);
    assert_eq!(report["summary"]["succeeded"], 50);
    let dir = PathBuf::from(report["run"]["dir"].as_str().unwrap());
    let out = std::fs::read_to_string(dir.join("tasks/49.out")).unwrap();
    let expected: i64 = (9800..10000).sum();
    assert_eq!(out.trim(), format!("9800 9999 {expected}"));
}

#[test]
fn the_timeout_example_times_out_one_task() {
    let (code, report, _tmp) = run_example("timeout");
    assert_eq!(code, 1);
    let statuses = statuses(&report);
    assert_eq!(statuses.iter().filter(|s| *s == "timed_out").count(), 1);
    assert_eq!(
        statuses.iter().filter(|s| *s == "succeeded").count(),
        statuses.len() - 1
    );
}

#[test]
fn the_flaky_example_fails_twice_retries_once_and_times_out_once() {
    let (code, report, _tmp) = run_example("flaky");
    assert_eq!(code, 1);
    let summary = &report["summary"];
    assert_eq!(
        (
            &summary["succeeded"],
            &summary["failed"],
            &summary["timed_out"]
        ),
        (&Value::from(37), &Value::from(2), &Value::from(1))
    );
    let tasks = crate::support::tasks(&report);
    assert_eq!(tasks[11]["status"], "succeeded");
    assert_eq!(tasks[11]["attempts"], 2);
    assert_eq!(tasks[7]["exit_code"], 2);
    assert_eq!(tasks[20]["status"], "timed_out");
}

/// Each task's stdout of an example's run, in task order.
fn example_output(report: &Value) -> String {
    let dir = PathBuf::from(report["run"]["dir"].as_str().unwrap());
    let out = poolrun()
        .args(["report", "--output"])
        .arg(&dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_files_example_checksums_every_csv_file() {
    let (code, report, _tmp) = run_example("files");
    assert_eq!(code, 0);
    let out = example_output(&report);
    let names: Vec<&str> = out.lines().map(|l| l.split_once("  ").unwrap().1).collect();
    assert_eq!(
        names,
        ["data/cities.csv", "data/people.csv", "data/points 2024.csv"]
    );
    let expected = crate::support::sha256_hex(
        &std::fs::read(repo().join("jobs/data/points 2024.csv")).unwrap(),
    );
    assert!(
        out.contains(&format!("{expected}  data/points 2024.csv")),
        "{out}"
    );
}

#[test]
fn the_lines_example_treats_every_line_as_data() {
    let (code, report, _tmp) = run_example("lines");
    assert_eq!(code, 0);
    let out = example_output(&report);
    assert_eq!(
        out,
        "alpha\t5\nbravo charlie\t13\ndelta\t5\n$(echo not run)\t15\necho; rm -rf /tmp/nothing\t25\n"
    );
}

#[test]
fn the_sweep_example_is_reproducible() {
    let (code, first, _a) = run_example("sweep");
    assert_eq!(code, 0);
    assert_eq!(first["summary"]["succeeded"], 10);
    let (code, second, _b) = run_example("sweep");
    assert_eq!(code, 0);
    assert_eq!(example_output(&first), example_output(&second));
    let out = poolrun()
        .arg("diff")
        .arg(first["run"]["dir"].as_str().unwrap())
        .arg(second["run"]["dir"].as_str().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // The excluded combination is not there.
    assert!(!example_output(&first).contains("lr=0.1 model=large"));
}
