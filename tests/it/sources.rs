//! Item sources and matrices (SPEC section 7): `[values]`, `[lines]`, `[glob]`, `[matrix]`, their
//! placeholders and variables, chunking, seeds and input snapshots.

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;

use crate::support::{Job, finish, poolrun, sha256_hex};

/// Each task's stdout, in task order, from the newest run of `job`.
fn outputs(job: &Job) -> Vec<String> {
    let report = job.report();
    let dir = job.latest("job");
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| match t["stdout"].as_str() {
            Some(file) => std::fs::read_to_string(dir.join(file)).unwrap(),
            None => String::new(),
        })
        .collect()
}

fn plan(job: &Job, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = job.cmd("plan", &all);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn values_are_strings_and_numbers_in_order_and_chunked() {
    let job = Job::new(
        r#"command = ["printf", "%s|", "{items}", "{start}", "{last}", "{count}"]
[values]
items = ["a.csv", "b c.csv", 3, 2.5, true, "it's"]
chunk-size = 4
"#,
    );
    let run = job.run(&["-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outputs(&job),
        ["a.csv b c.csv 3 2.5|a.csv|2.5|4|", "true it's|true|it's|2|"]
    );
    let report = job.report();
    let task = &report["tasks"][1];
    assert_eq!(task["items"], serde_json::json!(["true", "it's"]));
    assert_eq!(task["count"], 2);
    assert!(task["start"].is_null() && task["end"].is_null());
    assert_eq!(report["schema"], "poolrun/report/v2");
}

#[test]
fn a_string_command_gets_each_item_shell_quoted() {
    let job = Job::new(
        r#"command = "printf '[%s]' {item}; printf '{{%s}}' {items}"
[values]
items = ["$(touch pwned)", "a b", "'", "*", ";exit 3"]
"#,
    );
    let run = job.run(&["-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outputs(&job),
        [
            "[$(touch pwned)]{$(touch pwned)}",
            "[a b]{a b}",
            "[']{'}",
            "[*]{*}",
            "[;exit 3]{;exit 3}"
        ]
    );
    assert!(!job.file("pwned").exists());
}

#[test]
fn lines_cut_at_lf_and_crlf_and_skip_empty_lines() {
    let job = Job::new(
        r#"command = ["printf", "<%s>", "{item}"]
[lines]
file = "list.txt"
"#,
    );
    std::fs::write(job.file("list.txt"), "one\r\n\n two \n\r\nthree").unwrap();
    let run = job.run(&["-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(outputs(&job), ["<one>", "< two >", "<three>"]);
}

#[test]
fn lines_from_stdin_are_read_once_and_snapshotted() {
    let job = Job::new(
        r#"command = ["printf", "%s,", "{items}"]
[lines]
file = "-"
chunk-size = 2
"#,
    );
    let mut child = poolrun()
        .current_dir(job.dir.path())
        .args(["run", "job.toml", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"x\ny\nz\n").unwrap();
    let run = finish(child);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // In an array command `{items}` is one argument.
    assert_eq!(outputs(&job), ["x y,", "z,"]);
    let dir = job.latest("job");
    assert_eq!(
        std::fs::read_to_string(dir.join("items.txt")).unwrap(),
        "x\ny\nz\n"
    );
    let input = &job.report()["run"]["provenance"]["inputs"][0];
    assert_eq!(input["from"], "-");
    assert_eq!(input["items"], 3);
}

#[test]
fn a_line_with_nul_is_an_error_naming_its_line() {
    let job = Job::new("command = \"echo {item}\"\n[lines]\nfile = \"list.txt\"\n");
    std::fs::write(job.file("list.txt"), b"a\nb\0c\n").unwrap();
    let run = job.run(&[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("line 2 holds a NUL byte"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("lines.file"), "{}", run.stderr);
    let missing = Job::new("command = \"echo {item}\"\n[lines]\nfile = \"nope.txt\"\n");
    let run = missing.run(&[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
}

#[test]
fn globs_match_sorted_files_relative_to_the_task_directory() {
    let job = Job::new(
        r#"command = ["printf", "%s", "{item}"]
cwd = "work"
[glob]
pattern = "data/**/*.csv"
"#,
    );
    for f in ["b.csv", "a b.csv", "sub/c.csv", ".hidden.csv", "x.txt"] {
        let path = job.file("work/data").join(f);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }
    let run = job.run(&["-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outputs(&job),
        ["data/a b.csv", "data/b.csv", "data/sub/c.csv"]
    );
    let none = Job::new("command = \"echo {item}\"\n[glob]\npattern = \"*.nothing\"\n");
    let run = none.run(&[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no file matches"), "{}", run.stderr);
}

#[test]
fn every_source_chunks_the_same_way() {
    for source in [
        "[range]\nstart = 0\nend = 7\nchunk-size = 3\n",
        "[values]\nitems = [0, 1, 2, 3, 4, 5, 6]\nchunk-size = 3\n",
        "[lines]\nfile = \"list.txt\"\nchunk-size = 3\n",
    ] {
        let job = Job::new(&format!("command = \"echo {{items}}\"\n{source}"));
        std::fs::write(job.file("list.txt"), "0\n1\n2\n3\n4\n5\n6\n").unwrap();
        let tasks = plan(&job, &[]);
        let counts: Vec<u64> = tasks.iter().map(|t| t["count"].as_u64().unwrap()).collect();
        assert_eq!(counts, [3, 3, 1], "{source}");
        let commands: Vec<&str> = tasks
            .iter()
            .map(|t| t["command"][2].as_str().unwrap())
            .collect();
        assert_eq!(commands, ["echo 0 1 2", "echo 3 4 5", "echo 6"], "{source}");
    }
}

#[test]
fn a_matrix_runs_every_combination_first_key_outermost() {
    let job = Job::new(
        r#"command = ["printf", "%s-%s-%s", "{lr}", "{model}", "{item}"]
[values]
items = ["x", "y"]
[matrix]
lr = [0.1, 0.01]
model = ["small", "large"]
"#,
    );
    let run = job.run(&["-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outputs(&job),
        [
            "0.1-small-x",
            "0.1-small-y",
            "0.1-large-x",
            "0.1-large-y",
            "0.01-small-x",
            "0.01-small-y",
            "0.01-large-x",
            "0.01-large-y"
        ]
    );
    let report = job.report();
    assert_eq!(
        report["tasks"][2]["params"],
        serde_json::json!({"lr": 0.1, "model": "large"})
    );
}

/// The example of GitHub Actions' documentation for `include`: an entry extends the
/// combinations whose original values it agrees with, overwrites what an earlier `include`
/// added, and becomes a combination of its own when it agrees with none.
#[test]
fn matrix_include_and_exclude_follow_github_actions() {
    let job = Job::new(
        r#"command = "true"
[matrix]
fruit = ["apple", "pear"]
animal = ["cat", "dog"]
include = [
  { color = "green" },
  { color = "pink", animal = "cat" },
  { fruit = "apple", shape = "circle" },
  { fruit = "banana" },
  { fruit = "banana", animal = "cat" },
]
"#,
    );
    let tasks = plan(&job, &[]);
    let params: Vec<Value> = tasks.iter().map(|t| t["params"].clone()).collect();
    assert_eq!(
        params,
        [
            serde_json::json!({"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"}),
            serde_json::json!({"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"}),
            serde_json::json!({"fruit": "pear", "animal": "cat", "color": "pink"}),
            serde_json::json!({"fruit": "pear", "animal": "dog", "color": "green"}),
            serde_json::json!({"fruit": "banana"}),
            serde_json::json!({"fruit": "banana", "animal": "cat"}),
        ]
    );
    let excluded = Job::new(
        r#"command = "echo {os} {version}"
[matrix]
os = ["linux", "mac"]
version = [1, 2, 3]
exclude = [{ os = "mac", version = 1 }, { version = 3 }]
"#,
    );
    let commands: Vec<String> = plan(&excluded, &[])
        .iter()
        .map(|t| t["command"][2].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(commands, ["echo linux 1", "echo linux 2", "echo mac 2"]);
}

#[test]
fn matrix_mistakes_are_load_errors_that_name_the_key() {
    for (matrix, expected) in [
        (
            "start = [1, 2]",
            "matrix key `start` shadows the built-in placeholder `{start}`",
        ),
        ("lr = []", "`lr` has no values"),
        ("lr = 0.1", "expected an array of values"),
        ("lr = [[1]]", "expected a string, number or boolean"),
        (
            "lr = [1]\nexclude = [{ lr = 1 }]",
            "`exclude` removes every one",
        ),
        ("lr = [1]\nexclude = [{ lrr = 1 }]", "`exclude` names `lrr`"),
        (
            "a-b = [1]\na_b = [2]",
            "would both be the variable POOLRUN_PARAM_A_B",
        ),
    ] {
        let job = Job::new(&format!("command = \"true\"\n[matrix]\n{matrix}\n"));
        let run = job.cmd("validate", &[]);
        assert_eq!(run.code, 2, "{matrix}");
        assert!(run.stderr.contains(expected), "{matrix}: {}", run.stderr);
        assert!(run.stderr.contains("job.toml:"), "{matrix}: {}", run.stderr);
    }
}

#[test]
fn placeholders_without_a_value_are_load_errors() {
    for (body, expected) in [
        (
            "command = \"echo {item}\"\n[values]\nitems = [1, 2]\nchunk-size = 2\n",
            "`{item}` is a chunk's only item",
        ),
        (
            "command = \"echo {end}\"\n[values]\nitems = [1]\n",
            "`{end}` has a value only with [range]",
        ),
        (
            "command = \"echo {seed}\"\n[values]\nitems = [1]\n",
            "`{seed}` needs a base seed",
        ),
        (
            "command = \"echo {items}\"\n[matrix]\nx = [1]\n",
            "the job has a [matrix] but no item source",
        ),
        (
            "command = \"echo\"\n[values]\nitems = [1]\n[range]\nstart = 0\nend = 1\n",
            "a job has one item source",
        ),
        ("command = \"echo\"\n", "the job has nothing to run over"),
    ] {
        let job = Job::new(body);
        let run = job.cmd("validate", &[]);
        assert_eq!(run.code, 2, "{body}");
        assert!(run.stderr.contains(expected), "{body}: {}", run.stderr);
    }
    // The caret is under the placeholder.
    let job = Job::new("command = \"echo {end}\"\n[values]\nitems = [1]\n");
    let run = job.cmd("validate", &[]);
    assert!(run.stderr.contains("job.toml:1:17"), "{}", run.stderr);
}

#[test]
fn items_params_and_seeds_reach_tasks_as_variables() {
    let job = Job::new(
        r#"command = 'printf "%s|%s|%s|%s|%s" "$POOLRUN_ITEM" "$POOLRUN_START" "$POOLRUN_COUNT" "$POOLRUN_PARAM_LEARNING_RATE" "$POOLRUN_SEED"'
seed = 7
[values]
items = ["a b"]
[matrix]
learning-rate = [0.5]
"#,
    );
    let run = job.run(&["-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seed = job.report()["tasks"][0]["seed"].as_u64().unwrap();
    assert_eq!(outputs(&job), [format!("a b|a b|1|0.5|{seed}")]);
}

/// `{seed}` depends on the base seed and the task's items and parameters only: not on the
/// task's id, the process count, or whether the task ran in a resumed run.
#[test]
fn seeds_survive_reordering_processes_and_resume() {
    let text = |lrs: &str| {
        format!(
            "command = \"echo {{seed}}; test {{lr}} != 0.2 || test -e ok\"\nseed = 42\n[values]\nitems = [1, 2]\n[matrix]\nlr = {lrs}\n"
        )
    };
    let seeds = |job: &Job| -> Vec<(String, u64)> {
        job.report()["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    format!("{}/{}", t["params"]["lr"], t["items"][0].as_str().unwrap()),
                    t["seed"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let job = Job::new(&text("[0.1, 0.2]"));
    assert_eq!(job.run(&["-q", "-j", "1"]).code, 1);
    let first = seeds(&job);
    assert!(first.iter().all(|(_, s)| *s < 1 << 31));
    // The failed tasks run again in a resumed run, with 2 processes: the same seeds.
    std::fs::write(job.file("ok"), "").unwrap();
    let run = job.run(&["--resume", "-q", "-j", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seeds(&job), first);
    assert_eq!(
        outputs(&job),
        first
            .iter()
            .map(|(_, s)| format!("{s}\n"))
            .collect::<Vec<_>>()
    );
    // Another order of the matrix: each task keeps its seed.
    let reordered = Job::new(&text("[0.3, 0.2, 0.1]"));
    std::fs::write(reordered.file("ok"), "").unwrap();
    assert_eq!(reordered.run(&["-q"]).code, 0);
    for (what, seed) in seeds(&reordered) {
        if let Some((_, before)) = first.iter().find(|(w, _)| *w == what) {
            assert_eq!(seed, *before, "{what}");
        }
    }
    // Another base seed: other seeds.
    let other = Job::new(&text("[0.1, 0.2]").replace("seed = 42", "seed = 43"));
    std::fs::write(other.file("ok"), "").unwrap();
    assert_eq!(other.run(&["-q"]).code, 0);
    assert_ne!(seeds(&other), first);
}

#[test]
fn resume_plans_from_the_snapshot_when_the_input_changed() {
    let job = Job::new(
        "command = \"echo {item}; test {item} != b || test -e ok\"\n[lines]\nfile = \"list.txt\"\n",
    );
    std::fs::write(job.file("list.txt"), "a\nb\nc\n").unwrap();
    assert_eq!(job.run(&["-q"]).code, 1);
    // The list changes under the run: a resumed run still runs the items the run planned.
    std::fs::write(job.file("list.txt"), "a\nz\nb\nc\nd\n").unwrap();
    std::fs::write(job.file("ok"), "").unwrap();
    let run = job.run(&["--resume"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("changed since the run (5 items now, 3 then); resuming from the run's snapshot of 3 items"),
        "{}",
        run.stderr
    );
    assert_eq!(outputs(&job), ["a\n", "b\n", "c\n"]);
    // A removed input is no obstacle either.
    std::fs::remove_file(job.file("list.txt")).unwrap();
    let again = job.run(&["--resume", "-q"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
}

#[test]
fn glob_snapshots_are_kept_with_their_digest() {
    let job = Job::new("command = \"cat {item}\"\n[glob]\npattern = \"*.txt\"\n");
    std::fs::write(job.file("a.txt"), "A").unwrap();
    std::fs::write(job.file("b.txt"), "B").unwrap();
    assert_eq!(job.run(&["-q"]).code, 0);
    let dir = job.latest("job");
    let snapshot = std::fs::read(dir.join("items.txt")).unwrap();
    assert_eq!(snapshot, b"a.txt\nb.txt\n");
    let input = job.report()["run"]["provenance"]["inputs"][0].clone();
    assert_eq!(input["source"], "glob");
    assert_eq!(input["from"], "*.txt");
    assert_eq!(input["sha256"], sha256_hex(&snapshot));
    // A damaged snapshot is refused, not silently re-read.
    std::fs::write(dir.join("items.txt"), "a.txt\n").unwrap();
    let run = job.run(&["--resume", "-q"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("input snapshot changed"),
        "{}",
        run.stderr
    );
}

/// An item listed twice makes two tasks with the same items: each keeps its own outcome on
/// `--resume`, its own seed and its own output.
#[test]
fn repeated_items_are_tasks_of_their_own() {
    let job = Job::new(
        r#"command = "if mkdir claimed 2>/dev/null; then echo first {seed}; exit 1; fi; echo second {seed}"
seed = 5
[values]
items = ["a", "a"]
[pool]
processes = 1
"#,
    );
    assert_eq!(job.run(&["-q"]).code, 1);
    let report = job.report();
    let keys: Vec<&str> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["content_key"].as_str().unwrap())
        .collect();
    assert_ne!(keys[0], keys[1]);
    assert_ne!(report["tasks"][0]["seed"], report["tasks"][1]["seed"]);
    // Only the failed one runs again; the one that succeeded keeps its row and its output.
    let run = job.run(&["--resume", "-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let after = job.report();
    assert_eq!(after["tasks"][0]["attempts"], 2);
    assert_eq!(after["tasks"][1]["attempts"], 1);
    let out = outputs(&job);
    assert!(out[0].starts_with("second "), "{out:?}");
    assert!(out[1].starts_with("second "), "{out:?}");
}

#[test]
fn the_order_of_matrix_keys_changes_no_seed() {
    let seeds = |matrix: &str| -> Vec<(String, u64)> {
        let job = Job::new(&format!(
            "command = \"echo {{seed}}\"\nseed = 1\n[matrix]\n{matrix}\n"
        ));
        let mut seeds: Vec<(String, u64)> = plan(&job, &[])
            .iter()
            .map(|t| (t["params"].to_string(), t["seed"].as_u64().unwrap()))
            .collect();
        seeds.sort();
        seeds
    };
    assert_eq!(
        seeds("lr = [0.1, 0.2]\nmodel = [\"s\", \"l\"]"),
        seeds("model = [\"s\", \"l\"]\nlr = [0.1, 0.2]")
    );
}

#[test]
fn include_compares_numbers_as_numbers_and_checks_variable_names() {
    let job = Job::new(
        "command = \"echo {lr} {extra}\"\n[matrix]\nlr = [1.0, 2.0]\ninclude = [{ lr = 1, extra = \"x\" }]\n",
    );
    // An empty value is not a plain word: it is passed beside the script, as $1.
    let commands: Vec<Value> = plan(&job, &[])
        .iter()
        .map(|t| t["command"].clone())
        .collect();
    assert_eq!(
        commands,
        [
            serde_json::json!(["/bin/sh", "-c", "echo 1.0 x"]),
            serde_json::json!(["/bin/sh", "-c", "echo 2.0 \"${1}\"", "sh", ""]),
        ]
    );
    let clash =
        Job::new("command = \"true\"\n[matrix]\nmy-key = [1]\ninclude = [{ my_key = 2 }]\n");
    let run = clash.cmd("validate", &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("POOLRUN_PARAM_MY_KEY"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_task_never_inherits_item_or_parameter_variables() {
    let job = Job::new(
        r#"command = 'printf "%s|%s|%s" "${{POOLRUN_ITEM-unset}}" "${{POOLRUN_PARAM_STALE-unset}}" "${{POOLRUN_SEED-unset}}"'
[values]
items = [1, 2]
chunk-size = 2
"#,
    );
    let out = poolrun()
        .current_dir(job.dir.path())
        .args(["run", "job.toml", "-q"])
        .env("POOLRUN_ITEM", "outer")
        .env("POOLRUN_PARAM_STALE", "outer")
        .env("POOLRUN_SEED", "outer")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(outputs(&job), ["unset|unset|unset"]);
}

/// A placeholder inside quotes the command opened stays data: SPEC section 2's own example puts
/// `{start}` and `{last}` inside '...'.
#[test]
fn a_placeholder_inside_quotes_is_data_too() {
    let job = Job::new(
        r#"command = "printf '%s|' 'since={start}&until={last}' \"file: {item}\" x{item}x # {item}"
[lines]
file = "list.txt"
"#,
    );
    std::fs::write(
        job.file("list.txt"),
        "$(touch pwned)\nit's \"q\" `x` \\n $HOME\n",
    )
    .unwrap();
    let run = job.run(&["-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!job.file("pwned").exists());
    assert_eq!(
        outputs(&job),
        [
            "since=$(touch pwned)&until=$(touch pwned)|file: $(touch pwned)|x$(touch pwned)x|",
            "since=it's \"q\" `x` \\n $HOME&until=it's \"q\" `x` \\n $HOME|file: it's \"q\" `x` \\n $HOME|xit's \"q\" `x` \\n $HOMEx|"
        ]
    );
    for glued in ["\\\\{item}", "${item}"] {
        let glued_job = Job::new(&format!(
            "command = \"echo {glued}\"\n[values]\nitems = [1]\n"
        ));
        let run = glued_job.cmd("validate", &[]);
        assert_eq!(run.code, 2, "{glued}");
        assert!(
            run.stderr.contains("right before a placeholder"),
            "{}",
            run.stderr
        );
    }
    // The rendered script never holds a value that is not a plain word: they are its $1, $2.
    let tasks = plan(&job, &[]);
    let argv = tasks[0]["command"].as_array().unwrap();
    assert_eq!(argv[3], "sh");
    assert!(!argv[2].as_str().unwrap().contains("touch"), "{argv:?}");
}

#[test]
fn an_empty_matrix_says_so() {
    let job = Job::new("command = \"true\"\n[matrix]\ninclude = []\n");
    let run = job.cmd("validate", &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("the matrix is empty"), "{}", run.stderr);
}
