//! The operator's view: `poolrun report` navigation and formats, live output, output names,
//! the bar and the messages on a terminal, and the terminal conventions.
#![allow(
    clippy::format_collect,
    reason = "expected outputs are built line by line, clearer than fold"
)]

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{Job, poolrun, range, wait_for};

/// A run of 12 tasks where 3, 7 and 11 fail with a stderr that CSV and XML must quote.
fn flaky() -> Job {
    let job = Job::named(
        "flaky",
        &format!(
            "command = \"echo out {{item}}; if [ $(({{item}} % 4)) = 3 ]; then printf 'a,b \\\"q\\\" <x> & y\\\\nlast {{item}}\\\\n' >&2; exit 3; fi\"\n{}",
            range(12, 3)
        ),
    );
    assert_eq!(job.run(&[]).code, 1);
    job
}

/// `poolrun report <args>` in the job's directory.
fn report(job: &Job, args: &[&str]) -> crate::support::Run {
    job.poolrun(&[&["report"], args].concat(), &[])
}

#[test]
fn output_files_are_zero_padded_so_a_glob_lists_them_in_task_order() {
    let job = Job::new(&format!("command = \"echo {{item}}\"\n{}", range(12, 4)));
    assert_eq!(job.run(&[]).code, 0);
    let dir = job.latest("job");
    let mut names: Vec<String> = std::fs::read_dir(dir.join("tasks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let expected: Vec<String> = (0..12).map(|i| format!("{i:02}.out")).collect();
    assert_eq!(names, expected);
    let glob = Command::new("sh")
        .arg("-c")
        .arg("cat tasks/*.out")
        .current_dir(&dir)
        .output()
        .unwrap();
    let all: String = (0..12).map(|i| format!("{i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&glob.stdout), all);
    assert_eq!(
        crate::support::tasks(&job.report())[7]["stdout"],
        "tasks/07.out"
    );
}

#[test]
fn report_takes_a_job_file_and_shows_its_latest_run() {
    let job = flaky();
    let by_job = report(&job, &["flaky.toml"]);
    let by_dir = report(&job, &["runs/flaky/latest"]);
    assert_eq!(by_job.code, 1);
    assert_eq!(by_job.stdout, by_dir.stdout);
    assert!(
        by_job.stdout.contains("12 tasks: 9 succeeded, 3 failed"),
        "{}",
        by_job.stdout
    );
    let missing = report(
        &Job::named("never", &format!("command = \"true\"\n{}", range(1, 1))),
        &["never.toml"],
    );
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("no runs yet"), "{}", missing.stderr);
}

#[test]
fn the_table_lists_each_failure_once_and_folds_tasks_never_run() {
    // 2,000 tasks, one process, halted after the third failure: most never run.
    let job = Job::new(&format!(
        "command = \"if [ {{item}} -lt 3 ]; then echo no >&2; exit 1; fi\"\n{}halt = {{ max-failures = 3 }}\n",
        range(2000, 1)
    ));
    assert_eq!(job.run(&[]).code, 1);
    let out = report(&job, &["job.toml"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.len() < 30, "{} lines:\n{}", lines.len(), out.stdout);
    assert!(out.stdout.contains("(halt-policy)"), "{}", out.stdout);
    assert!(
        out.stdout.contains("3..=1999  not run  (1997 tasks)"),
        "{}",
        out.stdout
    );
    for id in 0..3 {
        assert!(
            out.stdout
                .contains(&format!("\n     {id}  failed           1 ")),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn report_task_shows_one_task_and_its_outputs() {
    let job = flaky();
    let detail = report(&job, &["flaky.toml", "--task", "7"]);
    assert_eq!(detail.code, 1);
    for field in [
        "task 7: failed, exit code 3",
        "command",
        "attempts  1",
        "tasks/07.err",
    ] {
        assert!(detail.stdout.contains(field), "{field}: {}", detail.stdout);
    }
    let stderr = report(&job, &["flaky.toml", "--task", "7", "--stderr"]);
    assert_eq!(stderr.stdout, "a,b \"q\" <x> & y\nlast 7\n");
    let stdout = report(&job, &["flaky.toml", "--task", "4", "--stdout"]);
    assert_eq!((stdout.code, stdout.stdout.as_str()), (0, "out 4\n"));
    let json = report(&job, &["flaky.toml", "--task", "7", "--format", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(value["tasks"][0]["id"], 7);
    let outside = report(&job, &["flaky.toml", "--task", "12"]);
    assert_eq!(outside.code, 2);
    assert!(outside.stderr.contains("0 to 11"), "{}", outside.stderr);
}

#[test]
fn report_output_tags_and_separates_outputs_in_task_order() {
    let job = flaky();
    let all = report(&job, &["flaky.toml", "--output"]);
    let expected: String = (0..12).map(|i| format!("out {i}\n")).collect();
    assert_eq!(all.stdout, expected);
    let failed = report(&job, &["flaky.toml", "--output", "--failed", "--tag"]);
    assert_eq!(failed.stdout, "3\tout 3\n7\tout 7\n11\tout 11\n");
    let separated = report(
        &job,
        &[
            "flaky.toml",
            "--output",
            "--failed",
            "--separator",
            "==> {id} <==",
        ],
    );
    assert_eq!(
        separated.stdout,
        "==> 3 <==\nout 3\n==> 7 <==\nout 7\n==> 11 <==\nout 11\n"
    );
}

#[test]
fn csv_reads_back_with_a_real_csv_parser() {
    let job = flaky();
    let out = report(&job, &["flaky.toml", "--format", "csv"]);
    assert_eq!(out.code, 1);
    let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    // The header is the report's task field names.
    let saved = crate::support::read_report(&job.latest("flaky"));
    for field in saved["tasks"][0].as_object().unwrap().keys() {
        assert!(header.contains(field), "{field} in {header:?}");
    }
    assert_eq!(header[..3], ["id", "key", "content_key"]);
    assert!(header.iter().any(|h| h == "stderr_tail"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 12);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[7][column("status")], "failed");
    assert_eq!(&rows[7][column("exit_code")], "3");
    assert_eq!(
        &rows[7][column("stderr_tail")],
        "a,b \"q\" <x> & y\nlast 7\n"
    );
    assert_eq!(&rows[7][column("stdout")], "tasks/07.out");
    let command: Vec<String> = serde_json::from_str(&rows[0][column("command")]).unwrap();
    assert_eq!(command[0], "/bin/sh");
    let failed = report(&job, &["flaky.toml", "--format", "csv", "--failed"]);
    assert_eq!(
        csv::Reader::from_reader(failed.stdout.as_bytes())
            .records()
            .count(),
        3
    );
}

#[test]
fn junit_is_read_by_a_real_junit_reader() {
    let job = flaky();
    let out = report(&job, &["flaky.toml", "--format", "junit"]);
    let xml = job.file("junit.xml");
    std::fs::write(&xml, &out.stdout).unwrap();
    // junitparser: the reader of JUnit XML that Python CI tooling uses.
    let script = r#"
import sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    print(suite.name, suite.tests, suite.failures, suite.errors, suite.skipped)
    for case in suite:
        for result in case.result:
            if isinstance(result, Failure):
                print(case.name, "|", result.message, "|", result.text.splitlines()[-1])
"#;
    let parsed = Command::new("python3")
        .args(["-c", script])
        .arg(&xml)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&parsed.stdout);
    assert!(
        parsed.status.success(),
        "junitparser (pip install junitparser) failed: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "flaky 12 3 0 0", "{text}");
    assert_eq!(
        lines[1], "task 3: item 3 | exited with code 3 | last 3",
        "{text}"
    );
    assert_eq!(lines.len(), 4, "{text}");
    // Well-formed for any XML parser too.
    let lint = Command::new("xmllint").arg("--noout").arg(&xml).output();
    if let Ok(lint) = lint {
        assert!(
            lint.status.success(),
            "{}",
            String::from_utf8_lossy(&lint.stderr)
        );
    }
}

#[test]
fn joblog_matches_gnu_parallel_byte_for_byte_in_its_header() {
    let job = flaky();
    let ours = report(&job, &["flaky.toml", "--format", "joblog"]);
    let theirs = job.file("parallel.joblog");
    let parallel = Command::new("parallel")
        .arg("--joblog")
        .arg(&theirs)
        .args(["echo", ":::", "1"])
        .output()
        .expect("GNU parallel (apt-get install parallel)");
    assert!(parallel.status.success());
    let theirs = std::fs::read_to_string(theirs).unwrap();
    let header = |text: &str| text.split_inclusive('\n').next().unwrap().to_owned();
    assert_eq!(header(&ours.stdout), header(&theirs));
    let rows: Vec<Vec<&str>> = ours
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 12);
    let their_row: Vec<&str> = theirs.lines().nth(1).unwrap().split('\t').collect();
    for row in &rows {
        assert_eq!(row.len(), their_row.len());
        // Starttime as parallel writes it: seconds with 3 decimals; JobRuntime 10 wide.
        assert_eq!(row[2].split('.').nth(1).map(str::len), Some(3), "{row:?}");
        assert_eq!(row[3].len(), their_row[3].len(), "{row:?}");
    }
    assert_eq!(rows[3][0], "4");
    assert_eq!(rows[3][5], "6", "Receive: the bytes of stdout");
    assert_eq!(rows[3][6], "3");
    assert_eq!(rows[3][7], "0");
    assert!(rows[3][8].starts_with("echo out 3;"), "{:?}", rows[3]);
    // GNU parallel reads it: --retry-failed reruns exactly the failed tasks from their Command.
    let log = job.file("ours.joblog");
    std::fs::write(&log, &ours.stdout).unwrap();
    let retried = Command::new("parallel")
        .arg("--retry-failed")
        .arg("--joblog")
        .arg(&log)
        .current_dir(job.dir.path())
        .output()
        .unwrap();
    let mut outputs: Vec<String> = String::from_utf8_lossy(&retried.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    outputs.sort();
    assert_eq!(outputs, ["out 11", "out 3", "out 7"]);
}

#[test]
fn jsonl_has_one_task_per_line() {
    let job = flaky();
    let out = report(&job, &["runs/flaky/latest", "--format", "jsonl"]);
    let ids: Vec<u64> = out
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, (0..12).collect::<Vec<_>>());
}

#[test]
fn run_output_ordered_streams_in_task_order_and_completed_as_tasks_finish() {
    // Task 0 finishes last: ordered holds the others back until it is done.
    let job = Job::new(&format!(
        "command = \"if [ {{item}} = 0 ]; then while [ ! -e go ]; do sleep 0.01; done; fi; echo task {{item}}; printf 'no newline'\"\n{}",
        range(4, 4)
    ));
    // Lets task 0 go once the engine has seen the other three finish (their records are in
    // the journal of the run in `runs/<name>`).
    let release = |name: &str| {
        let journal = job.file(&format!("runs/{name}/journal.jsonl"));
        let go = job.file("go");
        std::thread::spawn(move || {
            wait_for(Duration::from_secs(20), "tasks 1-3 to finish", || {
                let text = std::fs::read_to_string(&journal).ok()?;
                (text.matches("\"event\":\"finished\"").count() >= 3).then_some(())
            });
            std::fs::write(go, "").unwrap();
        })
    };
    let touch = release("ordered");
    let ordered = job.run(&["--output", "ordered", "--run-dir", "runs/ordered"]);
    touch.join().unwrap();
    assert_eq!(ordered.code, 0, "{}", ordered.stderr);
    let expected: String = (0..4).map(|i| format!("task {i}\nno newline")).collect();
    assert_eq!(ordered.stdout, expected);
    let tagged = job.run(&["--output", "ordered", "--tag"]);
    let expected: String = (0..4)
        .map(|i| format!("{i}\ttask {i}\n{i}\tno newline\n"))
        .collect();
    assert_eq!(tagged.stdout, expected);
    // Completed: task 0 waits for `go` again, so it finishes last.
    std::fs::remove_file(job.file("go")).unwrap();
    let touch = release("completed");
    let completed = job.run(&[
        "--output",
        "completed",
        "--tag",
        "--run-dir",
        "runs/completed",
    ]);
    touch.join().unwrap();
    let firsts: Vec<&str> = completed
        .stdout
        .lines()
        .filter(|l| l.contains("task"))
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(firsts.len(), 4, "{}", completed.stdout);
    assert_eq!(
        firsts.last(),
        Some(&"0"),
        "task 0 finished last: {}",
        completed.stdout
    );
}

#[test]
fn version_names_the_commit_and_help_has_examples_and_exit_codes() {
    let version = poolrun().arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(version.starts_with("poolrun 0."), "{version}");
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(crate::support::repo())
        .output();
    if let Ok(commit) = commit
        && commit.status.success()
    {
        let commit = String::from_utf8_lossy(&commit.stdout);
        assert!(version.contains(commit.trim()), "{version}");
    }
    let help = poolrun().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "Examples:",
        "Exit codes:",
        "75",
        "poolrun run jobs/squares.toml",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}

#[test]
fn completions_load_in_bash_and_the_man_page_renders() {
    let bash = poolrun().args(["completions", "bash"]).output().unwrap();
    assert!(bash.status.success());
    let script = String::from_utf8_lossy(&bash.stdout).into_owned();
    // Loaded into a real bash: the completion is registered, and completing `poolrun re`
    // offers the subcommands.
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{script}\ncomplete -p poolrun && COMP_WORDS=(poolrun re) COMP_CWORD=1 COMP_LINE='poolrun re' COMP_POINT=10 && _poolrun poolrun re poolrun && printf '%s\\n' \"${{COMPREPLY[@]}}\""
        ))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    for word in ["report", "rerun"] {
        assert!(out.lines().any(|l| l == word), "{word}: {out}");
    }
    for shell in ["zsh", "fish"] {
        let out = poolrun().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("report"));
    }
    let man = poolrun().arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH poolrun 1"),
        "{page}"
    );
    if let Ok(rendered) = Command::new("sh")
        .arg("-c")
        .arg("command -v groff >/dev/null && groff -man -Tutf8 | col -b")
        .stdin(Stdio::from(
            std::fs::File::open(write_temp(&man.stdout)).unwrap(),
        ))
        .output()
        && rendered.status.success()
    {
        assert!(String::from_utf8_lossy(&rendered.stdout).contains("poolrun"));
    }
}

fn write_temp(bytes: &[u8]) -> std::path::PathBuf {
    let file = tempfile::NamedTempFile::new().unwrap();
    let (_, path) = file.keep().unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn color_follows_no_color_and_the_color_flag() {
    let job = flaky();
    let plain = report(&job, &["flaky.toml"]);
    assert!(!plain.stdout.contains('\u{1b}'), "{}", plain.stdout);
    let forced = report(&job, &["flaky.toml", "--color", "always"]);
    assert!(
        forced.stdout.contains("\u{1b}[31mfailed"),
        "{}",
        forced.stdout
    );
    let never = poolrun()
        .current_dir(job.dir.path())
        .args(["report", "flaky.toml", "--color", "never"])
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&never.stdout).contains('\u{1b}'));
    let no_color = poolrun()
        .current_dir(job.dir.path())
        .args(["report", "flaky.toml"])
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&no_color.stdout).contains('\u{1b}'));
}

/// A tmux session running `command` in the job's directory; killed when dropped.
struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    fn start(job: &Job, command: &str) -> Option<Self> {
        let socket = job.file("tmux.sock");
        let tmux = Self { socket };
        let started = tmux.cmd(&[
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "20",
            "-c",
            job.dir.path().to_str().unwrap(),
            command,
        ])?;
        assert!(started.status.success(), "{started:?}");
        Some(tmux)
    }

    fn cmd(&self, args: &[&str]) -> Option<std::process::Output> {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .ok()
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn the_bar_ticks_while_no_task_finishes_and_ctrl_c_says_what_it_stops() {
    let job = Job::new(&format!("command = \"sleep 60\"\n{}", range(3, 2)));
    let command = format!(
        "{} run job.toml; echo exited $? > done; sleep 60",
        env!("CARGO_BIN_EXE_poolrun")
    );
    let tmux = Tmux::start(&job, &command).expect("tmux (apt-get install tmux)");
    let bar = |screen: &str| {
        screen
            .lines()
            .find(|l| l.contains("0/3"))
            .map(str::to_owned)
    };
    let first = wait_for(Duration::from_secs(20), "the bar with 2 running", || {
        bar(&tmux.screen()).filter(|l| l.contains("2 running"))
    });
    // No task finishes for a minute: the bar must still move (its clock).
    let later = wait_for(Duration::from_secs(20), "the bar to tick", || {
        bar(&tmux.screen()).filter(|l| *l != first)
    });
    assert!(
        later.contains("0/3") && later.contains("2 running"),
        "{later}"
    );
    tmux.cmd(&["send-keys", "C-c"]);
    let screen = wait_for(Duration::from_secs(20), "the stop message", || {
        let screen = tmux.screen();
        screen.contains("stopping 2 tasks").then_some(screen)
    });
    assert!(
        screen.contains(
            "SIGINT received: stopping 2 tasks (grace 5s); Ctrl-C again to kill them now"
        ),
        "{screen}"
    );
    wait_for(Duration::from_secs(20), "poolrun to exit", || {
        std::fs::read_to_string(job.file("done")).ok()
    });
    let screen = tmux.screen();
    assert!(screen.contains("poolrun report runs/job/"), "{screen}");
    assert!(screen.contains("--resume runs/job/"), "{screen}");
    assert_eq!(
        std::fs::read_to_string(job.file("done")).unwrap(),
        "exited 130\n"
    );
}

#[test]
fn report_of_a_run_root_means_its_latest_run() {
    let job = flaky();
    let by_root = report(&job, &["runs/flaky"]);
    assert_eq!(by_root.code, 1, "{}", by_root.stderr);
    assert!(
        by_root.stdout.contains("12 tasks: 9 succeeded, 3 failed"),
        "{}",
        by_root.stdout
    );
}

#[test]
fn a_run_id_above_the_run_folder_still_runs() {
    let job = Job::new(&format!(
        "command = \"true\"\n{}\n[report]\ndir = \"out/{{run-id}}/{{name}}\"\n",
        range(2, 1)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let runs: Vec<_> = std::fs::read_dir(job.file("out"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].path().join("job/report.json").exists());
}

#[test]
fn a_task_waiting_for_its_retry_is_not_failed_while_the_run_goes() {
    let job = Job::new(&format!(
        "command = \"[ $POOLRUN_ATTEMPT = 2 ] || {{{{ touch failed-once; exit 1; }}}}\"\n{}retries = 1\nretry-delay = \"3s\"\n",
        range(1, 1)
    ));
    let child = job.start(&[]);
    wait_for(Duration::from_secs(10), "the first attempt to fail", || {
        let dir = std::fs::canonicalize(job.file("runs/job/latest")).ok()?;
        let journal = std::fs::read_to_string(dir.join("journal.jsonl")).ok()?;
        journal.contains("\"retry\":true").then_some(())
    });
    let live = report(&job, &["job.toml"]);
    assert_eq!(live.code, 0, "{}{}", live.stdout, live.stderr);
    assert!(live.stdout.contains(": running\n"), "{}", live.stdout);
    assert!(live.stdout.contains("1 task: 1 running"), "{}", live.stdout);
    assert!(live.stdout.contains("waiting to retry"), "{}", live.stdout);
    assert_eq!(crate::support::finish_background(child).code, 0);
}

#[test]
fn a_killed_run_of_the_previous_version_is_rebuilt_with_its_outputs() {
    let job = flaky();
    let dir = job.latest("flaky");
    // As poolrun 0.2 left it: outputs named without padding, the engine killed before the
    // report.
    for entry in std::fs::read_dir(dir.join("tasks")).unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        let trimmed = name.trim_start_matches('0');
        let trimmed = if trimmed.starts_with('.') {
            format!("0{trimmed}")
        } else {
            trimmed.to_owned()
        };
        std::fs::rename(entry.path(), dir.join("tasks").join(trimmed)).unwrap();
    }
    assert!(dir.join("tasks/7.err").exists());
    std::fs::remove_file(dir.join("report.json")).unwrap();
    let stderr = report(&job, &["flaky.toml", "--task", "7", "--stderr"]);
    assert_eq!(
        stderr.stdout, "a,b \"q\" <x> & y\nlast 7\n",
        "{}",
        stderr.stderr
    );
    let rebuilt = crate::support::read_report(&dir);
    assert_eq!(rebuilt["tasks"][7]["stderr"], "tasks/07.err");
    assert!(
        rebuilt["tasks"][7]["stderr_tail"]
            .as_str()
            .unwrap()
            .contains("last 7"),
        "{rebuilt}"
    );
}

#[test]
fn a_stopped_run_says_why_in_its_summary_even_when_quiet() {
    let job = Job::new(&format!(
        "command = \"sleep 30\"\n{}deadline = \"500ms\"\n",
        range(2, 2)
    ));
    let run = job.run(&["-q"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("(stopped: deadline)"), "{}", run.stderr);
}

#[test]
fn the_resume_hint_of_a_job_from_stdin_can_be_typed() {
    let job = Job::new(&format!("command = \"exit 1\"\n{}", range(1, 1)));
    let run = poolrun()
        .current_dir(job.dir.path())
        .args(["run", "-"])
        .stdin(std::fs::File::open(&job.path).unwrap())
        .output()
        .unwrap();
    let stderr = crate::support::strip_timestamps(&String::from_utf8_lossy(&run.stderr));
    assert!(
        stderr.contains("resume:  poolrun run - --resume runs/stdin/")
            || stderr.contains("resume:  poolrun run - --resume runs/"),
        "{stderr}"
    );
    assert!(stderr.contains("< JOB.toml"), "{stderr}");
}

#[test]
fn task_text_reaches_the_log_escaped() {
    let job = Job::new("command = [\"./{item}\"]\n[values]\nitems = [\"a\\u001b[31mRED\"]\n");
    let run = job.run(&[]);
    assert_eq!(run.code, 1);
    assert!(!run.raw_stderr.contains('\u{1b}'), "{:?}", run.raw_stderr);
    assert!(run.stderr.contains("\\u{1b}[31mRED"), "{}", run.stderr);
}
