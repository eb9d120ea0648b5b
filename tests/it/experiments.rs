//! Reproducible experiments (SPEC section 7): `--set`, `run -`, provenance, `poolrun diff` and
//! `poolrun rerun`, and item bytes that reach tasks exactly.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Stdio;

use proptest::prelude::*;
use serde_json::Value;

use crate::support::{Job, Run, finish, poolrun, read_report, sha256_hex};

const SWEEP: &str = r#"command = "echo {lr} {seed} $(( {item} * 2 ))"
seed = 1
record-env = ["POOLRUN_TEST_RECORDED", "POOLRUN_TEST_UNSET"]
[values]
items = [1, 2]
[matrix]
lr = [0.1, 0.01]
"#;

/// Every run directory of `job`, oldest first (run ids of the same second sort at random).
fn runs(job: &Job) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(job.file("runs/job"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.is_symlink())
        .map(|p| {
            let started = read_report(&p)["run"]["started_at"]
                .as_str()
                .unwrap()
                .to_owned();
            (started, p)
        })
        .collect();
    dirs.sort();
    dirs.into_iter().map(|(_, p)| p).collect()
}

fn diff(a: &Path, b: &Path) -> Run {
    poolrun().arg("diff").arg(a).arg(b).output().unwrap().into()
}

#[test]
fn set_changes_the_job_for_one_run_and_is_recorded() {
    let job = Job::new(SWEEP);
    let run = job.run(&[
        "-q",
        "--set",
        "matrix.lr=[0.5]",
        "--set",
        "values.items=[3]",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = job.report();
    assert_eq!(report["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(report["tasks"][0]["params"]["lr"], 0.5);
    assert_eq!(
        report["job"]["set"],
        serde_json::json!(["matrix.lr=[0.5]", "values.items=[3]"])
    );
    assert_eq!(report["run"]["provenance"]["set"], report["job"]["set"]);
    // A bare word is a string; plan and validate take --set too.
    let plan = job.cmd(
        "plan",
        &["--json", "--set", "name=nightly", "--set", "matrix.lr=[1]"],
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let validate = job.cmd("validate", &["--set", "pool.processes=0"]);
    assert_eq!(validate.code, 2);
}

#[test]
fn a_bad_set_points_a_caret_at_the_argument() {
    let job = Job::new(SWEEP);
    let run = job.run(&["--set", "seed=\"x\""]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(" --> --set:1:6\n  |\n1 | seed=\"x\"\n  |      ^^^"),
        "{}",
        run.stderr
    );
    for (arg, expected) in [
        ("range.end", "expected KEY=VALUE"),
        ("matrix.lr=[0.1", "cannot read this as KEY=VALUE"),
        ("pool.timeout=\"forever\"", "--set:1:14"),
        ("matrix.start=[1]", "shadows the built-in placeholder"),
        ("colour=\"red\"", "unknown field `colour`"),
    ] {
        let run = job.cmd("plan", &["--set", arg]);
        assert_eq!(run.code, 2, "{arg}");
        assert!(run.stderr.contains(expected), "{arg}: {}", run.stderr);
        assert!(!job.file("runs").exists());
    }
}

#[test]
fn a_different_set_on_resume_is_drift_but_processes_and_timeout_are_not() {
    let job =
        Job::new("command = \"test {item} != 2 || test -e ok\"\n[values]\nitems = [1, 2, 3]\n");
    assert_eq!(job.run(&["-q", "--set", "values.items=[1, 2]"]).code, 1);
    let run = job.run(&["--resume", "-q"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("--set values.items=[1, 2]: not given now"),
        "{}",
        run.stderr
    );
    std::fs::write(job.file("ok"), "").unwrap();
    let run = job.run(&[
        "--resume",
        "-q",
        "--set",
        "values.items=[1, 2]",
        "--set",
        "pool.processes=3",
        "--set",
        "pool.timeout=\"1m\"",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(job.report()["tasks"].as_array().unwrap().len(), 2);
}

#[test]
fn a_job_from_stdin_runs_under_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("list.txt"), "p\nq\n").unwrap();
    let mut child = poolrun()
        .current_dir(dir.path())
        .args(["run", "-", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"name = \"piped\"\ncommand = \"echo {item}\"\n[lines]\nfile = \"list.txt\"\n")
        .unwrap();
    let run = finish(child);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let latest = std::fs::canonicalize(dir.path().join("runs/piped/latest")).unwrap();
    let report = read_report(&latest);
    assert_eq!(report["tasks"].as_array().unwrap().len(), 2);
    assert!(
        std::fs::read_to_string(latest.join("job.toml"))
            .unwrap()
            .contains("name = \"piped\"")
    );
}

#[test]
fn provenance_records_the_machine_and_only_record_env_values() {
    let job = Job::new(SWEEP);
    let out = poolrun()
        .current_dir(job.dir.path())
        .args(["run", "job.toml", "-q"])
        .env("POOLRUN_TEST_RECORDED", "yes")
        .env("POOLRUN_TEST_SECRET", "hunter2")
        .output()
        .unwrap();
    assert!(out.status.success());
    let report = job.report();
    let p = &report["run"]["provenance"];
    assert_eq!(
        p["env"],
        serde_json::json!({"POOLRUN_TEST_RECORDED": "yes", "POOLRUN_TEST_UNSET": null})
    );
    assert_eq!(p["poolrun_version"], env!("CARGO_PKG_VERSION"));
    assert!(p["cpus"].as_u64().unwrap() >= 1);
    assert!(!p["kernel"].as_str().unwrap().is_empty());
    assert_eq!(p["argv"][1], "run");
    assert_eq!(p["job_sha256"], report["job"]["sha256"]);
    let text = std::fs::read_to_string(job.latest("job").join("report.json")).unwrap();
    assert!(!text.contains("hunter2"));
    // Every task that ran has the hash of its stdout.
    let task = &report["tasks"][0];
    let stdout = std::fs::read(job.latest("job").join(task["stdout"].as_str().unwrap())).unwrap();
    assert_eq!(task["stdout_sha256"], sha256_hex(&stdout));
}

#[test]
fn diff_agrees_on_identical_runs_and_lists_what_differs() {
    let job = Job::new(SWEEP);
    assert_eq!(job.run(&["-q", "-j", "1"]).code, 0);
    assert_eq!(job.run(&["-q", "-j", "2"]).code, 0);
    // Another order of the matrix matches task by task all the same.
    assert_eq!(job.run(&["-q", "--set", "matrix.lr=[0.01, 0.1]"]).code, 0);
    // Another seed changes every output.
    assert_eq!(job.run(&["-q", "--set", "seed=2"]).code, 0);
    let dirs = runs(&job);
    let same = diff(&dirs[0], &dirs[1]);
    assert_eq!(same.code, 0, "{}{}", same.stdout, same.stderr);
    assert!(
        same.stdout.contains("the runs agree: 4 tasks matched"),
        "{}",
        same.stdout
    );
    let reordered = diff(&dirs[0], &dirs[2]);
    assert_eq!(reordered.code, 0, "{}", reordered.stdout);
    assert!(
        reordered.stdout.contains("set:  -> matrix.lr=[0.01, 0.1]"),
        "{}",
        reordered.stdout
    );
    let seeded = diff(&dirs[0], &dirs[3]);
    assert_eq!(seeded.code, 1, "{}", seeded.stdout);
    assert!(
        seeded.stdout.contains("4 tasks differ"),
        "{}",
        seeded.stdout
    );
    assert!(seeded.stdout.contains("1 lr=0.1"), "{}", seeded.stdout);
    // A bad argument is a usage error.
    let bad = diff(&dirs[0], &job.file("runs/job/nothing"));
    assert_eq!(bad.code, 2);
}

#[test]
fn diff_reports_status_and_exit_code_changes() {
    let job =
        Job::new("command = \"test {item} != 2 || test -e ok\"\n[values]\nitems = [1, 2, 3]\n");
    assert_eq!(job.run(&["-q"]).code, 1);
    std::fs::write(job.file("ok"), "").unwrap();
    assert_eq!(job.run(&["-q"]).code, 0);
    let dirs = runs(&job);
    let out = diff(&dirs[0], &dirs[1]);
    assert_eq!(out.code, 1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[1].contains("failed -> succeeded"), "{}", out.stdout);
    assert!(lines[1].contains("1 -> 0"), "{}", out.stdout);
    assert!(out.stdout.contains("1 tasks differ"), "{}", out.stdout);
}

#[test]
fn rerun_runs_the_same_job_set_and_snapshot_as_a_new_run() {
    let job = Job::new(
        "command = \"echo {item} {lr}\"\n[lines]\nfile = \"list.txt\"\n[matrix]\nlr = [1, 2]\n",
    );
    std::fs::write(job.file("list.txt"), "a\nb\n").unwrap();
    assert_eq!(job.run(&["-q", "--set", "matrix.lr=[3]"]).code, 0);
    let first = runs(&job).remove(0);
    // Neither the live list nor the job file is what the run used any more.
    std::fs::write(job.file("list.txt"), "c\n").unwrap();
    std::fs::write(
        &job.path,
        "command = \"false\"\n[range]\nstart = 0\nend = 1\n",
    )
    .unwrap();
    let run: Run = poolrun()
        .current_dir(job.dir.path())
        .args(["rerun", "-q"])
        .arg(&first)
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dirs = runs(&job);
    assert_eq!(dirs.len(), 2);
    let again = read_report(&dirs[1]);
    assert_eq!(again["job"]["set"], serde_json::json!(["matrix.lr=[3]"]));
    let same = diff(&first, &dirs[1]);
    assert_eq!(same.code, 0, "{}", same.stdout);
}

#[test]
fn reports_of_poolrun_0_1_are_read_and_compared() {
    let job = Job::new("command = \"echo {start}\"\n[range]\nstart = 0\nend = 3\n");
    assert_eq!(job.run(&["-q"]).code, 0);
    assert_eq!(job.run(&["-q"]).code, 0);
    let dirs = runs(&job);
    // Rewrite the first report as poolrun 0.1 wrote it.
    let path = dirs[0].join("report.json");
    let mut report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    report["schema"] = "poolrun/report/v1".into();
    report["job"].as_object_mut().unwrap().remove("set");
    report["run"].as_object_mut().unwrap().remove("provenance");
    for task in report["tasks"].as_array_mut().unwrap() {
        let task = task.as_object_mut().unwrap();
        task.remove("content_key");
        task.remove("stdout_sha256");
    }
    std::fs::write(&path, serde_json::to_string(&report).unwrap()).unwrap();
    let shown: Run = poolrun()
        .arg("report")
        .arg(&dirs[0])
        .output()
        .unwrap()
        .into();
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let out = diff(&dirs[0], &dirs[1]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("3 tasks matched"), "{}", out.stdout);
}

/// A line or file name: any bytes but NUL and newline, weighted towards what shells and
/// argument parsers treat specially, and bytes that are not UTF-8.
fn item() -> impl Strategy<Value = Vec<u8>> {
    let special = prop::sample::select(vec![
        "'",
        "\"",
        "`",
        "$",
        "$(",
        "${",
        ")",
        ";",
        "&",
        "|",
        "\\",
        "*",
        "?",
        "[",
        "~",
        "-",
        "--",
        " ",
        "\t",
        "\r",
        "#",
        "!",
        "{}",
        "{item}",
        "é",
        "%s",
        "\u{1F600}",
    ]);
    let piece = prop_oneof![
        3 => "[a-z0-9_.]{1,4}".prop_map(String::into_bytes),
        3 => special.prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(0x80u8..=0xff, 1..3),
        1 => prop::collection::vec(1u8..=0x1f, 1..2).prop_map(|b| b.into_iter().filter(|&c| c != b'\n').collect()),
    ];
    prop::collection::vec(piece, 1..5).prop_map(|parts| parts.concat())
}

/// Runs `text` as a job and returns each task's stdout, in task order.
fn outputs_of(job: &Job) -> Vec<Vec<u8>> {
    let run = job.run(&["-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dir = job.latest("job");
    job.report()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["stdout"]
                .as_str()
                .map(|f| std::fs::read(dir.join(f)).unwrap())
                .unwrap_or_default()
        })
        .collect()
}

/// What `printf '%s\0' <item>` prints for each item.
fn expected(items: &[Vec<u8>]) -> Vec<Vec<u8>> {
    items
        .iter()
        .map(|i| [i.as_slice(), b"\0"].concat())
        .collect()
}

const COMMANDS: [&str; 2] = [
    "command = \"printf '%s\\\\0' {item}\"",
    "command = [\"printf\", \"%s\\\\0\", \"{item}\"]",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    /// Lines of any bytes but NUL and newline reach the task exactly, as one argument, through
    /// a string command and an array command.
    #[test]
    fn line_bytes_reach_tasks_exactly(items in prop::collection::vec(item(), 1..6)) {
        // A line's trailing CR is part of its end; an empty line is skipped.
        let items: Vec<Vec<u8>> = items
            .into_iter()
            .map(|mut i| { while i.last() == Some(&b'\r') { i.pop(); } i })
            .filter(|i| !i.is_empty())
            .collect();
        prop_assume!(!items.is_empty());
        for command in COMMANDS {
            let job = Job::new(&format!("{command}\n[lines]\nfile = \"list.txt\"\n"));
            let mut list = items.join(&b'\n');
            list.push(b'\n');
            std::fs::write(job.file("list.txt"), list).unwrap();
            prop_assert_eq!(outputs_of(&job), expected(&items));
        }
    }

    /// File names of any bytes but NUL, `/` and newline reach the task exactly.
    #[test]
    fn file_name_bytes_reach_tasks_exactly(names in prop::collection::btree_set(item(), 1..5)) {
        let names: Vec<Vec<u8>> = names
            .into_iter()
            .map(|n| n.into_iter().filter(|&b| b != b'/').collect::<Vec<u8>>())
            .filter(|n| !n.is_empty() && n != b"." && n != b".." && !n.starts_with(b"."))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        prop_assume!(!names.is_empty());
        for command in COMMANDS {
            let job = Job::new(&format!("{command}\ncwd = \"in\"\n[glob]\npattern = \"*\"\n"));
            std::fs::create_dir(job.file("in")).unwrap();
            for name in &names {
                std::fs::write(job.file("in").join(std::ffi::OsStr::from_bytes(name)), "").unwrap();
            }
            prop_assert_eq!(outputs_of(&job), expected(&names));
        }
    }

    /// `[values]` strings of any characters but NUL and newline reach the task exactly.
    #[test]
    fn value_text_reaches_tasks_exactly(items in prop::collection::vec(item(), 1..5)) {
        let items: Vec<Vec<u8>> = items
            .into_iter()
            .map(|i| String::from_utf8_lossy(&i).into_owned().into_bytes())
            .collect();
        let list: Vec<String> = items
            .iter()
            .map(|i| toml::Value::String(String::from_utf8(i.clone()).unwrap()).to_string())
            .collect();
        for command in COMMANDS {
            let job = Job::new(&format!("{command}\n[values]\nitems = [{}]\n", list.join(", ")));
            prop_assert_eq!(outputs_of(&job), expected(&items));
        }
    }
}

#[test]
fn an_inline_table_in_set_replaces_the_whole_table() {
    let job = Job::new("command = \"echo {start}\"\n[range]\nstart = 0\nend = 3\nstep = 0\n");
    // The file's `step = 0` goes with its [range].
    let run = job.cmd("plan", &["--json", "--set", "range={start=5, end=7}"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(plan.len(), 2);
    // A dotted key changes one key: the file's `step = 0` is still wrong, and said to be.
    let run = job.cmd("plan", &["--set", "range.end=5"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("job.toml:5:8"), "{}", run.stderr);
    // A comment sets nothing.
    let run = job.cmd("plan", &["--set", "#=1"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("sets no key"), "{}", run.stderr);
}

/// `poolrun run - < job.toml`: stdin is then a regular file, and its name (/dev/stdin) is in
/// /dev; the run still goes under the current directory, and `--resume` reads the job once.
#[test]
fn a_job_redirected_from_a_file_runs_and_resumes_under_the_current_directory() {
    let job = Job::new(
        "name = \"redirected\"\ncommand = \"test {item} != 2 || test -e ok\"\n[values]\nitems = [1, 2]\n",
    );
    let run_with_stdin = |args: &[&str]| -> Run {
        poolrun()
            .current_dir(job.dir.path())
            .args(args)
            .stdin(std::fs::File::open(&job.path).unwrap())
            .output()
            .unwrap()
            .into()
    };
    assert_eq!(run_with_stdin(&["run", "-", "-q"]).code, 1);
    assert!(job.file("runs/redirected/latest").exists());
    std::fs::write(job.file("ok"), "").unwrap();
    let resumed = run_with_stdin(&["run", "-", "--resume", "-q"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let run = run_with_stdin(&["run", "/dev/stdin", "-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_set_that_adds_a_table_is_pointed_at() {
    let job = Job::new("command = \"echo {item}\"\n[values]\nitems = [1]\n");
    let run = job.cmd("plan", &["--set", "lines.file=x"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(" --> --set:1:1\n  |\n1 | lines.file=x\n  | ^^^^^^^^^^"),
        "{}",
        run.stderr
    );
    let run = job.cmd("plan", &["--set", "name=2024-01-01"]);
    assert!(
        run.stderr.contains("found a date or time"),
        "{}",
        run.stderr
    );
    let run = job.cmd("plan", &["--set", "command=echo ${HOME}"]);
    assert!(run.stderr.contains("--set:1:15"), "{}", run.stderr);
    let run = job.cmd("plan", &["--set", "values.chunk-size=x"]);
    assert!(
        run.stderr
            .contains("`values.chunk-size`: invalid type: string \"x\""),
        "{}",
        run.stderr
    );
    // Spaces around a bare word are not part of it.
    let run = job.cmd("plan", &["--json", "--set", "name= nightly "]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
