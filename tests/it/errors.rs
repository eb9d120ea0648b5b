//! Invalid job files: exit 2, nothing runs, and a message with file, line, column, the line with
//! a caret, the key path, what was expected and what was found.

use crate::support::Job;

const OK_RANGE: &str = "[range]\nstart = 0\nend = 10\n";

/// Each case: a name for its snapshot, and the job file.
#[allow(
    clippy::too_many_lines,
    reason = "a table of cases reads best as one list"
)]
fn cases() -> Vec<(&'static str, String)> {
    let with_range = |head: &str| format!("{head}\n{OK_RANGE}");
    let with_pool = |pool: &str| format!("command = \"echo\"\n{OK_RANGE}\n[pool]\n{pool}\n");
    vec![
        (
            "syntax_unclosed_string",
            "command = \"echo\n[range]\n".to_owned(),
        ),
        (
            "syntax_bad_table",
            "command = \"echo\"\n[range\nstart = 0\n".to_owned(),
        ),
        (
            "unknown_top_level_key",
            with_range("command = \"echo\"\ncomand = \"x\""),
        ),
        (
            "unknown_table",
            "command = \"echo\"\n[rnage]\nstart = 0\nend = 1\n".to_owned(),
        ),
        ("unknown_pool_key", with_pool("timout = \"1s\"")),
        (
            "unknown_range_key",
            "command = \"echo\"\n[range]\nstart = 0\nend = 10\nchunk_size = 5\n".to_owned(),
        ),
        (
            "wrong_type_end",
            "command = \"echo\"\n[range]\nstart = 0\nend = \"10\"\n".to_owned(),
        ),
        ("wrong_type_command", with_range("command = 5")),
        (
            "wrong_type_command_element",
            with_range("command = [\"echo\", 5]"),
        ),
        (
            "overflowing_end",
            "command = \"echo\"\n[range]\nstart = 0\nend = 9223372036854775808\n".to_owned(),
        ),
        (
            "last_end_overflows",
            "command = \"echo\"\n[range]\nstart = 0\nend = 9223372036854775807\nstep = 2\n"
                .to_owned(),
        ),
        (
            "chunk_size_zero",
            "command = \"echo\"\n[range]\nstart = 0\nend = 10\nchunk-size = 0\n".to_owned(),
        ),
        (
            "step_zero",
            "command = \"echo\"\n[range]\nstart = 0\nend = 10\nstep = 0\n".to_owned(),
        ),
        (
            "step_away_from_end",
            "command = \"echo\"\n[range]\nstart = 0\nend = 10\nstep = -1\n".to_owned(),
        ),
        ("processes_zero", with_pool("processes = 0")),
        ("processes_bad_string", with_pool("processes = \"many\"")),
        (
            "timeout_unparseable",
            with_pool("timeout = \"1 fortnight\""),
        ),
        ("timeout_negative", with_pool("timeout = \"-1s\"")),
        ("timeout_zero", with_pool("timeout = \"0s\"")),
        ("timeout_not_a_string", with_pool("timeout = 30")),
        (
            "unknown_placeholder",
            with_range("command = \"echo {idd}\""),
        ),
        ("unbalanced_close_brace", with_range("command = \"echo }\"")),
        (
            "unclosed_placeholder",
            with_range("command = [\"echo\", \"{start\"]"),
        ),
        (
            "shell_variable_braces",
            with_range("command = \"echo ${HOME}\""),
        ),
        (
            "task_placeholder_in_report_dir",
            format!("command = \"echo\"\n{OK_RANGE}[report]\ndir = \"runs/{{id}}\"\n"),
        ),
        ("empty_command_string", with_range("command = \"\"")),
        ("empty_command_array", with_range("command = []")),
        ("missing_command", OK_RANGE.to_owned()),
        (
            "missing_range_end",
            "command = \"echo\"\n[range]\nstart = 0\n".to_owned(),
        ),
        (
            "missing_cwd",
            with_range("command = \"echo\"\ncwd = \"no/such/dir\""),
        ),
        (
            "bad_name",
            with_range("name = \"my job\"\ncommand = \"echo\""),
        ),
        (
            "env_name_with_equals",
            with_range("command = \"echo\"\nenv = { \"A=B\" = \"1\" }"),
        ),
        ("empty_file", String::new()),
        (
            "name_of_dots",
            with_range("name = \"..\"\ncommand = \"echo\""),
        ),
        (
            "nul_in_command",
            with_range("command = [\"echo\", \"a\\u0000b\"]"),
        ),
        (
            "duration_too_long",
            with_pool("grace-period = \"300000000000y\""),
        ),
        ("processes_too_many", with_pool("processes = 100000000")),
        ("processes_count_as_string", with_pool("processes = \"3\"")),
        ("processes_signed_percent", with_pool("processes = \"+2%\"")),
        ("retries_negative", with_pool("retries = -1")),
        (
            "retry_delay_bad_table",
            with_pool("retry-delay = { initial = \"1s\", factr = 2 }"),
        ),
        (
            "retry_on_unknown_outcome",
            with_pool("retry-on = [\"crashed\"]"),
        ),
        ("halt_unknown_name", with_pool("halt = \"sometimes\"")),
        (
            "halt_zero_failures",
            with_pool("halt = { max-failures = 0 }"),
        ),
        (
            "halt_both_rules",
            with_pool("halt = { max-failures = 1, max-failure-rate = \"5%\" }"),
        ),
        (
            "halt_bad_rate",
            with_pool("halt = { max-failure-rate = \"150%\" }"),
        ),
        ("halt_mode_unknown", with_pool("halt-mode = \"later\"")),
        ("overlap_unknown", with_pool("overlap = \"queue\"")),
        ("deadline_zero", with_pool("deadline = \"0s\"")),
        (
            "env_numeric_name_path",
            with_range("command = \"echo\"\n[env]\n\"0\" = \"a\\u0000\""),
        ),
    ]
}

#[test]
fn every_invalid_job_file_is_explained_and_runs_nothing() {
    for (name, text) in cases() {
        let job = Job::new(&text);
        let run = job.run(&[]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(!job.file("runs").exists(), "{name}: nothing may run");
        assert!(
            run.stderr.contains("job.toml:"),
            "{name}: no file:line:col in {}",
            run.stderr
        );
        insta::assert_snapshot!(name, run.stderr);
        let validated = job.cmd("validate", &[]);
        assert_eq!(
            (validated.code, validated.stderr),
            (2, run.stderr),
            "{name}: validate says the same"
        );
    }
}

#[test]
fn a_literal_cwd_with_escaped_braces_is_checked_as_written() {
    let job = Job::new(&format!(
        "command = \"pwd\"\ncwd = \"d{{{{x}}}}\"\n{OK_RANGE}"
    ));
    std::fs::create_dir(job.file("d{x}")).unwrap();
    let run = job.cmd("validate", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn validate_is_silent_for_good_files_and_checks_them_all() {
    let good = Job::new(&format!("command = \"echo\"\n{OK_RANGE}"));
    let run = good.cmd("validate", &[]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );
    let bad = good.file("bad.toml");
    std::fs::write(&bad, "command = 1\n").unwrap();
    let out = crate::support::poolrun()
        .current_dir(good.dir.path())
        .args(["validate", "job.toml", "bad.toml", "missing.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:1:11"), "{stderr}");
    assert!(stderr.contains("missing.toml"), "{stderr}");
    assert!(!stderr.contains("job.toml"), "{stderr}");
}

#[test]
fn a_directory_or_non_utf8_file_is_an_error_not_a_panic() {
    let job = Job::new("");
    std::fs::create_dir(job.file("dir.toml")).unwrap();
    std::fs::write(job.file("latin1.toml"), b"command = \"caf\xe9\"\n").unwrap();
    for (file, needle) in [
        ("dir.toml", "directory"),
        ("latin1.toml", "latin1.toml:1:15"),
    ] {
        let out = crate::support::poolrun()
            .current_dir(job.dir.path())
            .args(["run", file])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{file}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{file}: {stderr}");
    }
}

#[test]
fn bad_command_line_values_are_usage_errors() {
    let job = Job::new(&format!("command = \"echo\"\n{OK_RANGE}"));
    for args in [
        &["--processes", "0"][..],
        &["--timeout", "soon"],
        &["--frobnicate"],
    ] {
        let run = job.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!job.file("runs").exists());
    }
}
