//! Invalid job files: exit 2, nothing runs, and a message with file, line, column, the line with
//! a caret, the key path, what was expected and what was found.

use std::path::{Path, PathBuf};

use crate::support::{Job, poolrun, repo};

const OK_RANGE: &str = "[range]\nstart = 0\nend = 10\n";

/// The catalogue: `tests/fixtures/invalid/<case>.toml`, each with its message pinned in
/// `snapshots/it__errors__<case>.snap`.
fn fixtures() -> Vec<PathBuf> {
    let dir = repo().join("tests/fixtures/invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    cases
}

/// Copies a fixture (file or directory) into a fresh temporary folder under the same name.
fn stage(fixture: &Path) -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let name = fixture.file_name().unwrap().to_str().unwrap().to_owned();
    if fixture.is_dir() {
        std::fs::create_dir(tmp.path().join(&name)).unwrap();
    } else {
        std::fs::copy(fixture, tmp.path().join(&name)).unwrap();
    }
    (tmp, name)
}

#[test]
fn every_invalid_job_file_is_explained_and_runs_nothing() {
    let cases = fixtures();
    assert!(cases.len() >= 40, "the catalogue has {} cases", cases.len());
    for fixture in cases {
        let (tmp, file) = stage(&fixture);
        let case = file.trim_end_matches(".toml").to_owned();
        let out = poolrun()
            .current_dir(tmp.path())
            .args(["run", &file])
            .output()
            .unwrap();
        let stderr = crate::support::strip_timestamps(&String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
        assert!(!tmp.path().join("runs").exists(), "{case}: nothing may run");
        assert!(
            stderr.contains(&format!("{file}:")),
            "{case}: no file:line:col in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
        insta::assert_snapshot!(case.as_str(), stderr);
        let validated = poolrun()
            .current_dir(tmp.path())
            .args(["validate", &file])
            .output()
            .unwrap();
        assert_eq!(validated.status.code(), Some(2), "{case}");
        assert_eq!(
            String::from_utf8_lossy(&validated.stderr),
            stderr,
            "{case}: validate says the same"
        );
    }
}

#[test]
fn a_huge_job_file_is_refused_unread() {
    let job = Job::new("");
    let mut text = String::from("command = \"echo\"\n# ");
    text.push_str(&"x".repeat(100 << 20));
    std::fs::write(&job.path, text).unwrap();
    let run = job.run(&[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("at most 1 MiB"), "{}", run.stderr);
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

#[test]
fn the_largest_items_chunk_that_fits_in_one_argument_runs() {
    // 18,000 items of 6 digits and a space: about 126 KB, just inside the kernel's 128 KiB.
    let job = Job::new(
        "command = [\"sh\", \"-c\", \"echo $# >&2; test $# -eq 1\", \"sh\", \"{items}\"]\n[range]\nstart = 100000\nend = 136000\nchunk-size = 18000\n",
    );
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_job_file_that_never_ends_is_read_with_the_cap() {
    let run = poolrun().args(["validate", "/dev/zero"]).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("at most 1 MiB"), "{stderr}");
}

#[test]
fn a_fifo_with_no_writer_is_an_error_not_a_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("job.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let run = crate::support::finish(
        poolrun()
            .args(["run"])
            .arg(&fifo)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("FIFO"), "{}", run.stderr);
}

#[test]
fn a_job_from_stdin_runs_in_the_current_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let job = b"command = \"pwd\"\n[range]\nstart = 0\nend = 2\n";
    let mut child = poolrun()
        .current_dir(tmp.path())
        .args(["run", "/dev/stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), job).unwrap();
    let run = crate::support::finish(child);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dir = std::fs::canonicalize(tmp.path().join("runs/stdin/latest")).unwrap();
    let pwd = std::fs::read_to_string(dir.join("tasks/0.out")).unwrap();
    assert_eq!(
        std::path::Path::new(pwd.trim()),
        std::fs::canonicalize(tmp.path()).unwrap()
    );
    // The report can be rebuilt from the journal: its plan starts at the same folder.
    std::fs::remove_file(dir.join("report.json")).unwrap();
    let rebuilt = poolrun().arg("report").arg(&dir).output().unwrap();
    assert_eq!(rebuilt.status.code(), Some(0));
    let report = crate::support::read_report(&dir);
    assert_eq!(report["summary"]["succeeded"], 2);
}
