//! `poolrun plan`: the task list, exactly as run would execute it, running nothing.

use serde_json::Value;

use crate::support::{Job, poolrun, repo};

#[test]
fn the_chunks_example_plans_fifty_tasks_of_two_hundred() {
    let out = poolrun()
        .args(["plan", "--json"])
        .arg(repo().join("jobs/chunks.toml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let plan: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan.len(), 50);
    assert_eq!(
        (plan[0]["start"].as_i64(), plan[0]["last"].as_i64()),
        (Some(0), Some(199))
    );
    assert_eq!(
        (plan[49]["start"].as_i64(), plan[49]["last"].as_i64()),
        (Some(9800), Some(9999))
    );
    assert!(plan.iter().all(|t| t["count"] == 200));
    assert!(plan.iter().enumerate().all(|(i, t)| t["id"] == i));
}

#[test]
fn a_partial_last_chunk_and_a_negative_step() {
    let job = Job::new(
        "command = [\"echo\", \"{start}\", \"{last}\", \"{end}\"]\n[range]\nstart = 10\nend = -1\nstep = -2\nchunk-size = 4\n",
    );
    let run = job.cmd("plan", &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    let rows: Vec<(i64, i64, i64, u64)> = plan
        .iter()
        .map(|t| {
            (
                t["start"].as_i64().unwrap(),
                t["last"].as_i64().unwrap(),
                t["end"].as_i64().unwrap(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect();
    // range(10, -1, -2) is 10 8 6 4 2 0.
    assert_eq!(rows, [(10, 4, 2, 4), (2, 0, -2, 2)]);
    assert_eq!(
        plan[1]["command"],
        serde_json::json!(["echo", "2", "0", "-2"])
    );
    assert!(!job.file("runs").exists(), "plan runs nothing");
}

#[test]
fn the_table_shows_the_rendered_command() {
    let job = Job::new("command = \"echo {start}-{last}\"\n[range]\nstart = 0\nend = 3\n");
    let run = job.cmd("plan", &[]);
    assert_eq!(run.code, 0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[3].ends_with("echo 2-2"), "{}", lines[3]);
}

#[test]
fn an_empty_range_plans_nothing() {
    let job = Job::new("command = \"true\"\n[range]\nstart = 0\nend = 0\n");
    let run = job.cmd("plan", &["--json"]);
    assert_eq!(run.code, 0);
    assert_eq!(
        serde_json::from_str::<Vec<Value>>(&run.stdout)
            .unwrap()
            .len(),
        0
    );
}

/// `plan --json` writes its lines itself, block by block on every core: they are what the
/// report's rows say of the same tasks, in order, whatever the items hold.
#[test]
fn plan_lines_are_the_report_rows_plan_fields_in_order() {
    let job = Job::new(
        "command = [\"printf\", \"%s\", \"{item} {lr}\"]\nseed = 7\n\
         [values]\nitems = [\"plain\", \"quote \\\" back \\\\ slash\", \"tab\\tcarriage\\rreturn\", \"\\u0001 é 😀\"]\n\
         [matrix]\nlr = [0.5, 2]\n",
    );
    let planned = job.cmd("plan", &["--json"]);
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let plan: Vec<Value> = serde_json::from_str(&planned.stdout).unwrap();
    assert_eq!(job.run(&[]).code, 0);
    let report = job.report();
    let rows = crate::support::tasks(&report);
    assert_eq!(plan.len(), 8);
    for (planned, row) in plan.iter().zip(rows) {
        for field in [
            "id",
            "start",
            "last",
            "end",
            "count",
            "items",
            "params",
            "seed",
            "content_key",
            "command",
        ] {
            assert_eq!(
                planned.get(field).filter(|v| !v.is_null()),
                row.get(field).filter(|v| !v.is_null()),
                "task {}: {field}",
                row["id"]
            );
        }
        assert!(planned["cwd"].as_str().unwrap().starts_with('/'));
    }
    // Many blocks: every id once, in order, and valid JSON between them.
    let big = Job::new("command = [\"echo\", \"{start}\"]\n[range]\nstart = 0\nend = 10000\n");
    let planned = big.cmd("plan", &["--json"]);
    let plan: Vec<Value> = serde_json::from_str(&planned.stdout).unwrap();
    assert!(
        plan.iter()
            .enumerate()
            .all(|(i, t)| t["id"] == i && t["start"] == i)
    );
    assert_eq!(plan.len(), 10_000);
}

/// The plan of job `text(cwd)` as JSON, written from its line compiled once (no `cwd`), after
/// checking it line for line against the same plan written task by task (`cwd = "."`), which
/// differs only in the working directory; and the job.
fn both_ways(text: impl Fn(&str) -> String) -> (Job, Vec<Value>) {
    let compiled = Job::new(&text(""));
    let by_task = Job::new(&text("cwd = \".\"\n"));
    let lines = |job: &Job| {
        let planned = job.cmd("plan", &["--json"]);
        assert_eq!(planned.code, 0, "{}", planned.stderr);
        serde_json::from_str::<Vec<Value>>(&planned.stdout).unwrap()
    };
    let (fast, slow) = (lines(&compiled), lines(&by_task));
    assert_eq!(fast.len(), slow.len());
    for (fast, slow) in fast.iter().zip(&slow) {
        let mut slow = slow.clone();
        slow["cwd"] = fast["cwd"].clone();
        assert_eq!(fast, &slow);
    }
    (compiled, fast)
}

#[test]
fn a_range_plan_is_the_same_written_from_its_compiled_line_as_task_by_task() {
    // A range with no matrix, no seed and one working directory is written from a line compiled
    // once; a `cwd` makes the same plan go task by task. Both must be the report's rows.
    let text = |cwd: &str| {
        format!(
            "command = [\"printf\", \"%s|%s\\n\", \"q\\\"uo\\\\te\\ttab é {{items}}\", \"{{name}}-{{id}}-{{start}}-{{last}}-{{end}}-{{count}}\"]\n{cwd}\
             [range]\nstart = 10\nend = -12\nstep = -3\nchunk-size = 2\n"
        )
    };
    let (compiled, fast) = both_ways(text);
    assert_eq!(fast.len(), 4);
    assert_eq!(fast[3]["command"][3], "job-3--8--11--14-2");
    assert_eq!(fast[0]["command"][2], "q\"uo\\te\ttab é 10 7");
    assert_eq!(compiled.run(&[]).code, 0);
    let report = compiled.report();
    for (line, row) in fast.iter().zip(crate::support::tasks(&report)) {
        // Rows leave out the working directory.
        for (field, value) in line
            .as_object()
            .unwrap()
            .iter()
            .filter(|(f, _)| *f != "cwd")
        {
            assert_eq!(value, &row[field], "task {}: {field}", row["id"]);
        }
    }
}

#[test]
fn numbers_counted_up_line_to_line_are_the_numbers_of_each_task() {
    // A compiled line's numbers are counted up in place from the line before: across digit
    // counts (9 to 10, 999 to 1000), from negative to positive, by steps of many digits, into a
    // shorter last chunk and over the blocks the plan is rendered in.
    for (range, step) in [
        ("start = 0\nend = 10500\nchunk-size = 3\n", 1),
        ("start = -70\nend = 60000\nstep = 13\nchunk-size = 2\n", 13),
        (
            "start = 99999990\nend = 1000000000\nstep = 87654321\n",
            87_654_321,
        ),
        ("start = 5000\nend = -30\nstep = -1\nchunk-size = 2\n", -1),
    ] {
        let text = |cwd: &str| {
            format!(
                "command = [\"echo\", \"{{id}}:{{start}}:{{items}}\", \"{{last}}\", \"{{end}}/{{count}}\"]\n{cwd}[range]\n{range}"
            )
        };
        let (_, fast) = both_ways(text);
        assert!(!fast.is_empty());
        for fast in &fast {
            let (start, last, end) = (&fast["start"], &fast["last"], &fast["end"]);
            let items: Vec<String> = (0..fast["count"].as_i64().unwrap())
                .map(|i| (start.as_i64().unwrap() + i * step).to_string())
                .collect();
            let items = items.join(" ");
            assert_eq!(
                fast["command"],
                serde_json::json!([
                    "echo",
                    format!("{}:{start}:{items}", fast["id"]),
                    last.to_string(),
                    format!("{end}/{}", fast["count"])
                ]),
                "{range}"
            );
        }
    }
}
