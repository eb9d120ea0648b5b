//! `poolrun run`: order, the process limit, output, the environment and the run directory.

use std::collections::BTreeMap;

use crate::support::{Job, journal, range, statuses, tasks};

#[test]
fn report_is_in_task_order_when_tasks_finish_in_reverse() {
    // Task i exits only once the journal records task i+1 finished, so they finish 5, 4, ..., 0
    // with no timing involved.
    let job = Job::new(&format!(
        "command = [\"sh\", \"task.sh\", \"{{id}}\"]\n{}",
        range(6, 6)
    ));
    let script = r#"
if [ "$1" -lt 5 ]; then
  until grep -qs "\"finished\".*\"task\":$(($1 + 1))," "$POOLRUN_RUN_DIR/journal.jsonl"; do sleep 0.01; done
fi
echo "$1"
"#;
    std::fs::write(job.file("task.sh"), script).unwrap();
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = job.report();
    let ids: Vec<u64> = tasks(&report)
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5]);
    let finished: Vec<u64> = journal(&job.latest("job"))
        .iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| e["task"].as_u64().unwrap())
        .collect();
    assert_eq!(
        finished,
        [5, 4, 3, 2, 1, 0],
        "the tasks really finished in reverse"
    );
    let out = job.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let printed = crate::support::poolrun()
        .arg("report")
        .arg("--output")
        .arg(job.latest("job"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        "0\n1\n2\n3\n4\n5\n"
    );
}

#[test]
fn never_more_than_processes_tasks_at_once() {
    // Each task counts itself in and out under a lock and records the count it saw. The first
    // three also wait (up to 10 s) until three are in, so the pool is seen running all its slots
    // whatever the machine's speed.
    let script = r"flock lock sh -c 'n=$(($(cat count) + 1)); echo $n > count; echo $n >> seen'; if [ {id} -lt 3 ]; then i=0; while [ $(cat count) -lt 3 ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i + 1)); done; fi; sleep 0.05; flock lock sh -c 'echo $(($(cat count) - 1)) > count'";
    let job = Job::new(&format!("command = '''{script}'''\n{}", range(12, 3)));
    std::fs::write(job.file("count"), "0\n").unwrap();
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = std::fs::read_to_string(job.file("seen")).unwrap();
    let max = seen
        .lines()
        .map(|l| l.parse::<u32>().unwrap())
        .max()
        .unwrap();
    assert_eq!(seen.lines().count(), 12);
    assert!(max <= 3, "{max} tasks ran at once with processes = 3");
    assert_eq!(max, 3, "the pool ran its 3 processes side by side");
    assert_eq!(
        std::fs::read_to_string(job.file("count")).unwrap().trim(),
        "0"
    );
}

#[test]
fn the_processes_override_wins_over_the_file() {
    let script = r"flock lock sh -c 'n=$(($(cat count) + 1)); echo $n > count; echo $n >> seen'; sleep 0.1; flock lock sh -c 'echo $(($(cat count) - 1)) > count'";
    let job = Job::new(&format!("command = '''{script}'''\n{}", range(4, 4)));
    std::fs::write(job.file("count"), "0\n").unwrap();
    assert_eq!(job.run(&["--processes", "1"]).code, 0);
    let seen = std::fs::read_to_string(job.file("seen")).unwrap();
    assert!(seen.lines().all(|l| l == "1"), "{seen}");
    assert_eq!(job.report()["run"]["processes"], 1);
}

#[test]
fn large_stdout_and_stderr_complete_normally() {
    let job = Job::new(&format!(
        "command = \"head -c 10485760 /dev/zero; head -c 10485760 /dev/zero | tr '\\\\0' x >&2\"\n{}timeout = \"60s\"\n",
        range(1, 1)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = job.report();
    let task = &tasks(&report)[0];
    assert_eq!(task["status"], "succeeded");
    assert_eq!(task["stdout_bytes"], 10_485_760);
    assert_eq!(task["stderr_bytes"], 10_485_760);
    assert_eq!(task["stderr_tail"].as_str().unwrap(), "x".repeat(4096));
    let run_dir = job.latest("job");
    assert_eq!(
        std::fs::metadata(run_dir.join("tasks/0.out"))
            .unwrap()
            .len(),
        10_485_760
    );
}

/// Writes `text` to `name` in the job's folder, with permissions `mode`.
fn script(job: &Job, name: &str, text: &str, mode: u32) {
    std::fs::write(job.file(name), text).unwrap();
    std::fs::set_permissions(
        job.file(name),
        std::os::unix::fs::PermissionsExt::from_mode(mode),
    )
    .unwrap();
}

#[test]
fn a_missing_executable_is_spawn_failed_and_the_others_succeed() {
    let job = Job::new(&format!("command = [\"./prog{{id}}\"]\n{}", range(3, 2)));
    for id in [0, 2] {
        script(&job, &format!("prog{id}"), "#!/bin/sh\necho ran\n", 0o755);
    }
    let run = job.run(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = job.report();
    assert_eq!(
        statuses(&report),
        ["succeeded", "spawn_failed", "succeeded"]
    );
    let failed = &tasks(&report)[1];
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("./prog1") && error.contains("No such file"),
        "{error}"
    );
    assert!(failed["exit_code"].is_null());
    assert_eq!(report["summary"]["spawn_failed"], 1);
    assert_eq!(report["summary"]["succeeded"], 2);
}

#[test]
fn a_command_the_shell_cannot_find_fails_with_127() {
    let job = Job::new(&format!(
        "command = \"no-such-command-poolrun\"\n{}",
        range(1, 1)
    ));
    assert_eq!(job.run(&[]).code, 1);
    let report = job.report();
    let task = &tasks(&report)[0];
    assert_eq!(task["status"], "failed");
    assert_eq!(task["exit_code"], 127);
    assert!(task["stderr_tail"].as_str().unwrap().contains("not found"));
}

#[test]
fn a_missing_cwd_for_one_task_is_spawn_failed() {
    let job = Job::new(&format!(
        "command = \"pwd\"\ncwd = \"dir{{id}}\"\n{}",
        range(2, 1)
    ));
    std::fs::create_dir(job.file("dir0")).unwrap();
    assert_eq!(job.run(&[]).code, 1);
    let report = job.report();
    assert_eq!(statuses(&report), ["succeeded", "spawn_failed"]);
    assert!(
        tasks(&report)[1]["error"]
            .as_str()
            .unwrap()
            .contains("dir1")
    );
}

#[test]
fn tasks_get_placeholders_and_poolrun_variables() {
    let job = Job::new(
        "name = \"vars\"\ncommand = [\"sh\", \"-c\", \"env | grep -E '^(POOLRUN_|MINE)' | sort; echo \\\"$@\\\"\", \"sh\", \"{id}\", \"{start}\", \"{last}\", \"{end}\", \"{count}\", \"{items}\", \"{name}\"]\nenv = { MINE = \"task-{id}\" }\n[range]\nstart = 10\nend = 0\nstep = -3\nchunk-size = 2\n",
    );
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run_dir = job.latest("vars");
    let report = crate::support::read_report(&run_dir);
    assert_eq!(tasks(&report).len(), 2);
    let out = std::fs::read_to_string(run_dir.join("tasks/1.out")).unwrap();
    let vars: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once('=')).collect();
    let run_id = report["run"]["id"].as_str().unwrap();
    assert_eq!(vars["MINE"], "task-1");
    assert_eq!(vars["POOLRUN_JOB"], "vars");
    assert_eq!(vars["POOLRUN_RUN_ID"], run_id);
    assert_eq!(vars["POOLRUN_RUN_DIR"], run_dir.to_str().unwrap());
    assert_eq!(vars["POOLRUN_TASK_ID"], "1");
    assert_eq!(
        (
            vars["POOLRUN_START"],
            vars["POOLRUN_LAST"],
            vars["POOLRUN_END"]
        ),
        ("4", "1", "-2")
    );
    assert_eq!((vars["POOLRUN_COUNT"], vars["POOLRUN_ATTEMPT"]), ("2", "1"));
    assert_eq!(out.lines().last().unwrap(), "1 4 1 -2 2 4 1 vars");
    let first = std::fs::read_to_string(run_dir.join("tasks/0.out")).unwrap();
    assert_eq!(first.lines().last().unwrap(), "0 10 7 4 2 10 7 vars");
}

#[test]
fn shell_commands_get_quoted_values() {
    let job = Job::new(
        "name = \"a.job\"\ncommand = \"printf '%s|' {name} {items} '{{x}}' > out.{id}\"\n[range]\nstart = -2\nend = 2\nchunk-size = 4\n",
    );
    assert_eq!(job.run(&[]).code, 0);
    assert_eq!(
        std::fs::read_to_string(job.file("out.0")).unwrap(),
        "a.job|-2|-1|0|1|{x}|"
    );
}

#[test]
fn the_run_directory_holds_the_job_journal_report_and_outputs() {
    let text = format!(
        "# a comment that must survive\ncommand = \"echo out {{id}}; echo err {{id}} >&2\"\n{}",
        range(3, 2)
    );
    let job = Job::new(&text);
    assert_eq!(job.run(&[]).code, 0);
    let run_dir = job.latest("job");
    assert_eq!(
        std::fs::read_to_string(run_dir.join("job.toml")).unwrap(),
        text
    );
    let leftovers: Vec<_> = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let report = job.report();
    assert_eq!(report["schema"], "poolrun/report/v2");
    assert_eq!(report["run"]["status"], "completed");
    assert_eq!(report["job"]["name"], "job");
    assert_eq!(report["summary"]["tasks"], 3);
    assert_eq!(report["summary"]["succeeded"], 3);
    for task in tasks(&report) {
        let id = task["id"].as_u64().unwrap();
        let out = run_dir.join(task["stdout"].as_str().unwrap());
        assert_eq!(std::fs::read_to_string(out).unwrap(), format!("out {id}\n"));
        assert_eq!(task["stderr_tail"], format!("err {id}\n"));
        assert_eq!(task["command"][0], "/bin/sh");
        assert_eq!(
            task["command"][2],
            format!("echo out {id}; echo err {id} >&2")
        );
    }
    let events = journal(&run_dir);
    let count = |kind: &str| events.iter().filter(|e| e["event"] == kind).count();
    assert_eq!(
        (
            count("run_started"),
            count("started"),
            count("finished"),
            count("run_finished")
        ),
        (1, 3, 3, 1)
    );
    // The run id is a sortable UTC time plus a suffix.
    let id = report["run"]["id"].as_str().unwrap();
    assert!(
        id.len() > 17 && id.as_bytes()[8] == b'T' && id.as_bytes()[15] == b'Z',
        "{id}"
    );
}

#[test]
fn two_runs_get_two_directories_and_latest_follows() {
    let job = Job::new(&format!("command = \"true\"\n{}", range(1, 1)));
    assert_eq!(job.run(&[]).code, 0);
    let first = job.latest("job");
    assert_eq!(job.run(&[]).code, 0);
    let second = job.latest("job");
    assert_ne!(first, second);
    assert!(first.join("report.json").exists());
}

#[test]
fn run_dir_override_and_an_existing_directory() {
    let job = Job::new(&format!("command = \"true\"\n{}", range(2, 1)));
    let dir = job.file("custom/here");
    assert_eq!(job.run(&["--run-dir", dir.to_str().unwrap()]).code, 0);
    let report = crate::support::read_report(&dir);
    assert_eq!(report["summary"]["succeeded"], 2);
    // A fixed run directory is never reused: the second run refuses and runs nothing.
    let again = job.run(&["--run-dir", dir.to_str().unwrap()]);
    assert_eq!(again.code, 74, "{}", again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn an_unwritable_run_root_exits_74() {
    let job = Job::new(&format!(
        "command = \"touch ran\"\n[report]\ndir = \"/proc/poolrun/{{run-id}}\"\n{}",
        range(1, 1)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 74, "{}", run.stderr);
    assert!(run.stderr.contains("/proc/poolrun"), "{}", run.stderr);
    assert!(!job.file("ran").exists());
}

#[test]
fn an_empty_range_is_an_empty_report() {
    let job = Job::new("command = \"false\"\n[range]\nstart = 5\nend = 5\n");
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = job.report();
    assert!(tasks(&report).is_empty());
    assert_eq!(report["summary"]["tasks"], 0);
}

#[test]
fn exit_code_is_one_when_any_task_fails() {
    let job = Job::new(&format!(
        "command = \"exit $(({{id}} * 3))\"\n{}",
        range(3, 3)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("1 succeeded, 2 failed"),
        "{}",
        run.stderr
    );
    let report = job.report();
    let codes: Vec<i64> = tasks(&report)
        .iter()
        .map(|t| t["exit_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [0, 3, 6]);
}

/// The names in a run's `tasks/`, sorted.
fn task_files(run_dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(run_dir.join("tasks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    files
}

#[test]
fn quiet_tasks_leave_no_empty_files() {
    let job = Job::new(&format!(
        "command = \"if [ {{id}} -eq 1 ]; then echo out; echo err >&2; fi\"\n{}",
        range(3, 2)
    ));
    assert_eq!(job.run(&[]).code, 0);
    let dir = job.latest("job");
    let files = task_files(&dir);
    assert_eq!(files, ["1.err", "1.out"]);
    let report = job.report();
    let paths: Vec<(&serde_json::Value, &serde_json::Value)> = tasks(&report)
        .iter()
        .map(|t| (&t["stdout"], &t["stderr"]))
        .collect();
    assert!(paths[0].0.is_null() && paths[0].1.is_null() && paths[2].0.is_null());
    assert_eq!(
        (paths[1].0.as_str(), paths[1].1.as_str()),
        (Some("tasks/1.out"), Some("tasks/1.err"))
    );
    let out = crate::support::poolrun()
        .args(["report", "--output"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
}

/// One worker's tasks share an output spool: every task's files hold exactly what it wrote,
/// whatever the tasks before it in the same worker did (wrote, stayed quiet, truncated their
/// stdout), and quiet ones still leave nothing.
#[test]
fn each_task_output_is_its_own_whatever_the_tasks_before_it_did() {
    let script = "case {id} in \
        1|3) printf 'out%s' {id}; printf 'err%s' {id} >&2;; \
        4) printf 'doomed'; : > /dev/stdout;; \
        6) printf 'x%.0s' $(seq 5000);; \
        esac";
    let job = Job::new(&format!(
        "command = \"{script}\"\n[range]\nstart = 0\nend = 9\n[pool]\nprocesses = 1\n"
    ));
    assert_eq!(job.run(&[]).code, 0);
    let dir = job.latest("job");
    let files = task_files(&dir);
    assert_eq!(files, ["1.err", "1.out", "3.err", "3.out", "6.out"]);
    let read = |name: &str| std::fs::read_to_string(dir.join("tasks").join(name)).unwrap();
    assert_eq!(read("1.out"), "out1");
    assert_eq!(read("3.out"), "out3");
    assert_eq!(read("3.err"), "err3");
    let six = read("6.out");
    assert!(
        six == "x".repeat(5000),
        "6.out is {} bytes and starts {:?}",
        six.len(),
        &six[..8]
    );
    let report = job.report();
    let bytes: Vec<u64> = tasks(&report)
        .iter()
        .map(|t| t["stdout_bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(bytes, [0, 4, 0, 4, 0, 0, 5000, 0, 0]);
}

#[test]
fn a_script_whose_interpreter_is_missing_says_so() {
    let job = Job::new("command = [\"./script\"]\n[range]\nstart = 0\nend = 1\n");
    script(
        &job,
        "script",
        "#!/no/such/interpreter -x\necho hi\n",
        0o755,
    );
    assert_eq!(job.run(&[]).code, 1);
    let report = job.report();
    let error = tasks(&report)[0]["error"].as_str().unwrap().to_owned();
    assert_eq!(tasks(&report)[0]["status"], "spawn_failed");
    assert!(
        error.contains("interpreter `/no/such/interpreter`"),
        "{error}"
    );
}

/// The value of a task's line `name:` of `/proc/self/status`.
#[cfg(target_os = "linux")]
fn status_field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        .trim()
}

/// A signal mask line of `/proc/self/status`, as a number.
#[cfg(target_os = "linux")]
fn status_mask(status: &str, name: &str) -> u64 {
    u64::from_str_radix(status_field(status, name), 16).unwrap()
}

#[test]
#[cfg(target_os = "linux")]
fn a_task_starts_with_no_signal_blocked_or_caught_and_sigpipe_at_its_default() {
    // `cat` installs no handler of its own: what it shows is what poolrun started it with, while
    // poolrun itself catches SIGINT, SIGTERM and others and ignores SIGPIPE.
    let job = Job::new(&format!(
        "command = [\"cat\", \"/proc/self/status\"]\n{}",
        range(2, 2)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for id in 0..2 {
        let status =
            std::fs::read_to_string(job.latest("job").join(format!("tasks/{id}.out"))).unwrap();
        assert_eq!(status_mask(&status, "SigBlk:"), 0, "{status}");
        assert_eq!(status_mask(&status, "SigCgt:"), 0, "{status}");
        let sigpipe = 1 << (13 - 1);
        assert_eq!(status_mask(&status, "SigIgn:") & sigpipe, 0, "{status}");
        // It leads its own process group.
        assert!(status.contains(&format!("NSpgid:\t{}", status_field(&status, "Pid:"))));
    }
}

#[test]
fn a_bare_command_is_looked_up_in_the_path_of_the_jobs_env() {
    let job = Job::new(&format!(
        "command = [\"poolrun-test-tool\", \"{{id}}\"]\nenv = {{ PATH = \"{}:/usr/bin:/bin\" }}\n{}",
        "bin-b:/no/such/dir:bin-a",
        range(1, 1)
    ));
    for (dir, mode) in [("bin-b", 0o644), ("bin-a", 0o755)] {
        std::fs::create_dir(job.file(dir)).unwrap();
        let text = format!("#!/bin/sh\necho {dir} \"$@\"\n");
        script(&job, &format!("{dir}/poolrun-test-tool"), &text, mode);
    }
    // As `execvp`: relative entries are the task's directory; one that may not be run is passed
    // over for the next.
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = std::fs::read_to_string(job.latest("job").join("tasks/0.out")).unwrap();
    assert_eq!(out, "bin-a 0\n");
}

#[test]
fn a_command_that_may_not_be_run_is_spawn_failed_with_permission_denied() {
    let job = Job::new(&format!("command = [\"./tool\"]\n{}", range(1, 1)));
    script(&job, "tool", "#!/bin/sh\necho hi\n", 0o644);
    assert_eq!(job.run(&[]).code, 1);
    let report = job.report();
    let error = tasks(&report)[0]["error"].as_str().unwrap();
    assert_eq!(tasks(&report)[0]["status"], "spawn_failed");
    assert!(
        error.contains("cannot start `./tool`: permission denied"),
        "{error}"
    );
}

#[test]
fn one_slow_task_does_not_stall_the_others() {
    // Task 0 waits for `go`; the other 1,499 run meanwhile (dispatch used to stop 1,024 tasks
    // past the slowest one), their rows waiting until task 0 ends.
    let job = Job::new(&format!(
        "command = \"if [ {{id}} = 0 ]; then while [ ! -e go ]; do sleep 0.02; done; fi; echo {{id}}\"\n{}",
        range(1500, 3)
    ));
    let child = job.start(&[]);
    crate::support::wait_for(
        std::time::Duration::from_secs(120),
        "every task but the slow one",
        || {
            let dir = std::fs::canonicalize(job.file("runs/job/latest")).ok()?;
            let text = std::fs::read_to_string(dir.join("journal.jsonl")).ok()?;
            (text.matches("\"event\":\"finished\"").count() == 1499).then_some(())
        },
    );
    std::fs::write(job.file("go"), "").unwrap();
    let run = crate::support::finish_background(child);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = job.report();
    let rows = tasks(&report);
    assert_eq!(rows.len(), 1500);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["id"], i, "rows in task order");
        assert_eq!(row["status"], "succeeded");
    }
    assert_eq!(report["summary"]["succeeded"], 1500);
    let out = crate::support::poolrun()
        .args(["report", "--output"])
        .arg(job.latest("job"))
        .output()
        .unwrap();
    let expected: Vec<String> = (0..1500).map(|i| i.to_string()).collect();
    let expected = expected.join("\n") + "\n";
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}
