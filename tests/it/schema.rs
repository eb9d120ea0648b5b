//! The schemas against the real validators: Taplo (what editors use on job files) and ajv in
//! strict mode, on a corpus of job files in `tests/corpus/`:
//!
//! - `valid/`: poolrun, Taplo and ajv all accept each file;
//! - `invalid/`: all three refuse each file;
//! - `poolrun-only/`: the schema accepts and poolrun refuses, for the rules no schema can
//!   see (docs/job-file.md lists them); each file's first line says which.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{Job, poolrun, repo};

/// What every checker should say of a corpus file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepts,
    Refuses,
}

/// The corpus files with what poolrun and the schema should say of each.
fn corpus() -> Vec<(PathBuf, Verdict, Verdict)> {
    let mut files = Vec::new();
    for (dir, poolrun, schema) in [
        ("valid", Verdict::Accepts, Verdict::Accepts),
        ("invalid", Verdict::Refuses, Verdict::Refuses),
        ("poolrun-only", Verdict::Refuses, Verdict::Accepts),
    ] {
        let mut here: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/corpus").join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        here.sort();
        files.extend(here.into_iter().map(|p| (p, poolrun, schema)));
    }
    assert!(files.len() > 100, "the corpus is in tests/corpus");
    files
}

fn tool(program: &str, install: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{program}` is needed: {install} (.ci/run installs it)"
    );
    Command::new(program)
}

fn taplo() -> Command {
    tool("taplo", "npm install -g @taplo/cli")
}

/// `taplo fmt --check` of `files`.
fn taplo_fmt_check(files: &[PathBuf]) -> std::process::Output {
    taplo()
        .args(["fmt", "--check"])
        .args(files)
        .output()
        .unwrap()
}

fn ajv() -> Command {
    tool("ajv", "npm install -g ajv-cli ajv-formats")
}

fn schema_path(which: &str) -> PathBuf {
    repo().join("schemas").join(format!("{which}.schema.json"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn poolrun_validate_and_taplo_agree_on_every_corpus_file() {
    let files = corpus();
    // One Taplo run checks them all (compiling the schema takes Taplo seconds).
    let out = taplo()
        .arg("check")
        .arg("--schema")
        .arg(format!("file://{}", schema_path("job").display()))
        .args(files.iter().map(|(p, _, _)| p))
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let report = text(&out);
    let refused_by_taplo = |file: &Path| {
        report
            .lines()
            .filter(|l| l.contains("invalid file"))
            .any(|l| l.contains(&format!("path=\"{}\"", file.display())))
    };
    let mut wrong = Vec::new();
    for (file, poolrun_says, schema_says) in &files {
        let validate = poolrun().arg("validate").arg(file).output().unwrap();
        let poolrun = if validate.status.success() {
            Verdict::Accepts
        } else {
            assert_eq!(validate.status.code(), Some(2), "{}", file.display());
            Verdict::Refuses
        };
        let taplo = if refused_by_taplo(file) {
            Verdict::Refuses
        } else {
            Verdict::Accepts
        };
        if poolrun != *poolrun_says || taplo != *schema_says {
            wrong.push(format!(
                "{}: poolrun {poolrun:?} (want {poolrun_says:?}), taplo {taplo:?} (want {schema_says:?})\n{}",
                file.display(),
                text(&validate)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} disagreements:\n{}\n\ntaplo said:\n{report}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The corpus read as JSON (Python's `tomllib`), for ajv: the file name with its JSON, or
/// `None` for a file that is not TOML at all.
fn corpus_as_json(files: &[(PathBuf, Verdict, Verdict)]) -> BTreeMap<PathBuf, Option<String>> {
    let script = "import json, sys, tomllib\n\
        for path in sys.argv[1:]:\n\
        \x20   try:\n\
        \x20       with open(path, 'rb') as f: doc = tomllib.load(f)\n\
        \x20       print(json.dumps([path, json.dumps(doc, default=str)]))\n\
        \x20   except tomllib.TOMLDecodeError:\n\
        \x20       print(json.dumps([path, None]))\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(files.iter().map(|(p, _, _)| p))
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (path, json): (PathBuf, Option<String>) = serde_json::from_str(line).unwrap();
            (path, json)
        })
        .collect()
}

/// Runs ajv in strict mode on each of `documents` (name, JSON text) against `schema`, and
/// returns the names it refused, with its output.
fn ajv_refuses(schema: &Path, documents: &[(String, String)]) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut names = BTreeMap::new();
    for (i, (name, json)) in documents.iter().enumerate() {
        let file = dir.path().join(format!("{i:04}.json"));
        std::fs::write(&file, json).unwrap();
        names.insert(file.display().to_string(), name.clone());
    }
    let out = ajv()
        .args([
            "validate",
            "--spec=draft2020",
            "--strict=true",
            "-c",
            "ajv-formats",
        ])
        .arg("--errors=line")
        .arg("-s")
        .arg(schema)
        .arg("-d")
        .arg(format!("{}/*.json", dir.path().display()))
        .output()
        .unwrap();
    let report = text(&out);
    let refused = report
        .lines()
        .filter_map(|l| l.strip_suffix(" invalid"))
        .map(|file| names.get(file).cloned().unwrap_or_else(|| file.to_owned()))
        .collect();
    let valid = report.lines().filter(|l| l.ends_with(" valid")).count();
    assert_eq!(
        valid + report.lines().filter(|l| l.ends_with(" invalid")).count(),
        documents.len(),
        "ajv checked every document:\n{report}"
    );
    (refused, report)
}

#[test]
fn ajv_in_strict_mode_compiles_every_schema() {
    for which in ["job", "report", "journal"] {
        let out = ajv()
            .args([
                "compile",
                "--spec=draft2020",
                "--strict=true",
                "-c",
                "ajv-formats",
            ])
            .arg("-s")
            .arg(schema_path(which))
            .output()
            .unwrap();
        assert!(out.status.success(), "{which}: {}", text(&out));
    }
}

#[test]
fn ajv_agrees_with_the_corpus() {
    let files = corpus();
    let json = corpus_as_json(&files);
    let documents: Vec<(String, String)> = json
        .iter()
        .filter_map(|(path, json)| Some((path.display().to_string(), json.clone()?)))
        .collect();
    let (refused, report) = ajv_refuses(&schema_path("job"), &documents);
    let mut wrong = Vec::new();
    for (file, _, schema_says) in &files {
        let name = file.display().to_string();
        // What TOML itself refuses never reaches a schema.
        let ajv = if json[file].is_none() || refused.contains(&name) {
            Verdict::Refuses
        } else {
            Verdict::Accepts
        };
        if ajv != *schema_says {
            wrong.push(format!("{name}: ajv {ajv:?} (want {schema_says:?})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}\n\najv said:\n{report}",
        wrong.join("\n")
    );
}

#[test]
fn reports_and_journal_lines_of_real_runs_validate_under_ajv() {
    let job = Job::new(
        r#"
command = "sh -c 'sleep 0.{item}; echo out {item}; echo err {item} >&2; exit $(( {item} % 3 ))'"
[range]
start = 0
end = 7
[pool]
processes = 3
retries = 1
timeout = "5s"
retry-on = ["failed"]
"#,
    );
    let run = job.run(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let dir = job.latest("job");
    let report = std::fs::read_to_string(dir.join("report.json")).unwrap();
    let (refused, said) = ajv_refuses(
        &schema_path("report"),
        &[("report.json".to_owned(), report.clone())],
    );
    assert!(refused.is_empty(), "{said}");
    // Edited to a schema version or a time poolrun never writes, it is refused.
    let mut edited: Value = serde_json::from_str(&report).unwrap();
    edited["schema"] = "poolrun/report/v999".into();
    let mut late: Value = serde_json::from_str(&report).unwrap();
    late["run"]["started_at"] = "yesterday".into();
    let (refused, said) = ajv_refuses(
        &schema_path("report"),
        &[
            ("v999".to_owned(), edited.to_string()),
            ("yesterday".to_owned(), late.to_string()),
        ],
    );
    assert_eq!(refused, ["v999", "yesterday"], "{said}");
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let lines: Vec<(String, String)> = journal
        .lines()
        .enumerate()
        .map(|(i, line)| (format!("journal line {}", i + 1), line.to_owned()))
        .collect();
    assert!(lines.len() > 10, "{journal}");
    let (refused, said) = ajv_refuses(&schema_path("journal"), &lines);
    assert!(refused.is_empty(), "{said}");
}

/// The key of each job-file error in `stderr`, in order.
fn error_keys(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("error: invalid job file: `"))
        .filter_map(|l| l.split('`').next())
        .collect()
}

#[test]
fn every_error_in_a_job_file_is_reported_in_one_pass_in_file_order() {
    let job = Job::new(
        r#"name = "my job!"
command = ""
timeout = "30s"
range = [0, 10]

[pool]
processes = 5000
timeout = "30"
retry-on = [300, "failed", "crashed"]
halt = {}

[env]
"A=B" = "x"
"#,
    );
    let out = job.cmd("validate", &[]);
    assert_eq!(out.code, 2);
    let stderr = out.stderr;
    let keys = error_keys(&stderr);
    assert_eq!(
        keys,
        [
            "name",
            "command",
            "timeout",
            "range",
            "pool.processes",
            "pool.timeout",
            "pool.retry-on[0]",
            "pool.retry-on[2]",
            "pool.halt",
            "env.\"A=B\"",
        ],
        "{stderr}"
    );
    for hint in [
        "help: `timeout` belongs in `[pool]`",
        "help: `\"30\"`: add a unit, e.g. `\"30s\"`",
        "help: write `[range]` with `start` and `end`",
        "poolrun: 10 errors in the job file",
    ] {
        assert!(stderr.contains(hint), "{hint}:\n{stderr}");
    }
    // Each error has its caret under the value.
    assert!(stderr.matches('^').count() >= 10, "{stderr}");
}

#[test]
fn validate_refuses_a_plan_that_plan_and_run_refuse() {
    let job =
        Job::new("command = \"echo {item}\"\n[range]\nstart = 0\nend = 9223372036854775807\n");
    let validate = job.cmd("validate", &[]);
    assert_eq!(validate.code, 2, "{}", validate.stderr);
    for said in ["more than 10^9", "--allow-huge", "--> job.toml:2:1"] {
        assert!(
            validate.stderr.contains(said),
            "{said}:\n{}",
            validate.stderr
        );
    }
    let allowed = job.cmd("validate", &["--allow-huge"]);
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    let plan = job.cmd("plan", &[]);
    assert_eq!(plan.code, 2);
}

#[test]
fn example_jobs_and_documented_job_files_are_taplo_formatted() {
    let jobs = crate::jobs::example_jobs();
    let out = taplo_fmt_check(&jobs);
    assert!(
        out.status.success(),
        "run `taplo fmt jobs/*.toml`:\n{}",
        text(&out)
    );
    // Every TOML block of the README and the docs, as a file of its own.
    let dir = tempfile::tempdir().unwrap();
    let mut blocks = Vec::new();
    let docs = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .chain([repo().join("README.md")])
        .filter(|p| p.extension().is_some_and(|e| e == "md"));
    for doc in docs {
        let markdown = std::fs::read_to_string(&doc).unwrap();
        for (i, block) in markdown.split("```toml\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap();
            let name = doc.file_stem().unwrap().to_string_lossy().into_owned();
            let file = dir.path().join(format!("{name}-{i}.toml"));
            std::fs::write(&file, block).unwrap();
            blocks.push(file);
        }
    }
    assert!(!blocks.is_empty(), "the README shows a job file");
    let out = taplo_fmt_check(&blocks);
    assert!(
        out.status.success(),
        "a TOML block in README.md or docs/ is not as `taplo fmt` writes it:\n{}",
        text(&out)
    );
}

#[test]
fn errors_in_set_arguments_come_after_the_files_with_the_same_hints() {
    let job = Job::new("command = \"echo {item}\"\nname = \"a b\"\n[range]\nstart = 0\nend = 3\n");
    let out = job.cmd(
        "validate",
        &[
            "--set",
            "timeout=30s",
            "--set",
            "pool.retries=5000",
            "--set",
            "pool.timeout=\"30\"",
        ],
    );
    assert_eq!(out.code, 2);
    let keys = error_keys(&out.stderr);
    assert_eq!(keys[0], "name", "{}", out.stderr);
    assert_eq!(keys.len(), 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("help: `timeout` belongs in `[pool]`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("add a unit, e.g. `\"30s\"`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_value_that_cannot_be_read_is_reported_once_not_again_through_what_uses_it() {
    let job = Job::new(
        "command = \"echo {item} {seed}\"\nseed = \"x\"\ncwd = 5\n[glob]\npattern = \"*.csv\"\n",
    );
    let out = job.cmd("validate", &[]);
    assert_eq!(out.code, 2);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 2, "{}", out.stderr);
    assert!(errors[0].contains("`seed`"), "{}", out.stderr);
    assert!(errors[1].contains("`cwd`"), "{}", out.stderr);
}

#[test]
fn a_wrong_type_in_a_required_key_does_not_hide_the_rest_of_the_file() {
    let job = Job::new(
        "name = \"bad name!\"\ncommand = 5\n[range]\nstart = 5\n[pool]\nprocesses = 5000\nretries = 5000\nretry-delay = { initial = \"1s\", factor = 0.5, jitter = \"150%\" }\n[slurm]\npartition = \"-x\"\nqos = \"a b\"\n",
    );
    let out = job.cmd("validate", &[]);
    assert_eq!(out.code, 2);
    let keys = error_keys(&out.stderr);
    assert_eq!(
        keys,
        [
            "name",
            "command",
            "range.end",
            "pool.processes",
            "pool.retries",
            "pool.retry-delay.factor",
            "pool.retry-delay.jitter",
            "slurm.partition",
            "slurm.qos",
        ],
        "{}",
        out.stderr
    );
}
