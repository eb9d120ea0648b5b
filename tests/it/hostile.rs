//! Hostile output, environments, file systems and resource use: nothing is lost or corrupted,
//! errors are clear, and poolrun stays small.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Job, poolrun, range, statuses, tasks};

#[test]
fn binary_output_is_stored_byte_exact_and_the_tail_decoded_lossily() {
    let job = Job::new(&format!(
        "command = \"printf '\\\\377\\\\000\\\\001bin\\\\n'; printf 'bad \\\\377\\\\376 end' >&2\"\n{}",
        range(1, 1)
    ));
    assert_eq!(job.run(&[]).code, 0);
    let dir = job.latest("job");
    assert_eq!(
        std::fs::read(dir.join("tasks/0.out")).unwrap(),
        b"\xff\x00\x01bin\n"
    );
    assert_eq!(
        std::fs::read(dir.join("tasks/0.err")).unwrap(),
        b"bad \xff\xfe end"
    );
    assert_eq!(
        tasks(&job.report())[0]["stderr_tail"],
        "bad \u{fffd}\u{fffd} end"
    );
}

#[test]
fn a_task_writing_a_gibibyte_does_not_grow_poolrun() {
    // The task reports poolrun's peak resident memory (VmHWM) after writing 1 GiB to stdout.
    let job = Job::new(&format!(
        "command = \"head -c 1073741824 /dev/zero; grep VmHWM /proc/$PPID/status >&2\"\n{}timeout = \"5m\"\n",
        range(1, 1)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = job.report();
    let task = &tasks(&report)[0];
    assert_eq!(task["stdout_bytes"], 1u64 << 30);
    let kib: u64 = task["stderr_tail"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(kib < 64 * 1024, "poolrun's peak RSS was {kib} KiB");
    std::fs::remove_file(job.latest("job").join("tasks/0.out")).unwrap();
}

#[test]
fn reports_and_journals_never_hold_environment_values() {
    let job = Job::new(&format!(
        "command = \"echo ran\"\nenv = {{ TOKEN = \"job-secret-4711\" }}\n{}",
        range(2, 2)
    ));
    let out = poolrun()
        .current_dir(job.dir.path())
        .env("POOLRUN_TEST_SECRET", "outer-secret-0815")
        .args(["run", "job.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let dir = job.latest("job");
    for file in ["report.json", "journal.jsonl"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(
            !text.contains("job-secret-4711") && !text.contains("outer-secret-0815"),
            "{file} holds a value"
        );
    }
}

#[test]
fn env_clear_runs_tasks_in_a_minimal_environment() {
    let job = Job::new(&format!(
        "command = \"env | sort\"\nenv-clear = true\nenv-pass = [\"PATH\", \"HOME\"]\nenv = {{ MINE = \"{{id}}\" }}\n{}",
        range(1, 1)
    ));
    let out = poolrun()
        .current_dir(job.dir.path())
        .env("POOLRUN_TEST_LEAK", "1")
        .env("HOME", "/home/poolrun-test")
        .args(["run", "job.toml"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = std::fs::read_to_string(job.latest("job").join("tasks/0.out")).unwrap();
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    assert!(
        env.contains("HOME=/home/poolrun-test\n") && env.contains("MINE=0\n"),
        "{env}"
    );
    assert!(names.contains(&"PATH") && names.contains(&"POOLRUN_TASK_ID"));
    assert!(!names.contains(&"POOLRUN_TEST_LEAK"), "{env}");
    let allowed = |n: &&str| {
        ["PATH", "HOME", "MINE", "PWD", "SHLVL", "_"].contains(n) || n.starts_with("POOLRUN_")
    };
    assert!(names.iter().all(allowed), "{env}");
}

#[test]
fn run_directories_are_never_world_writable() {
    let job = Job::new(&format!("command = \"echo x\"\n{}", range(1, 1)));
    let status = Command::new("sh")
        .current_dir(job.dir.path())
        .arg("-c")
        .arg(format!(
            "umask 000; exec {} run job.toml",
            env!("CARGO_BIN_EXE_poolrun")
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let dir = job.latest("job");
    for path in [
        dir.clone(),
        dir.join("tasks"),
        dir.join("report.json"),
        dir.join("journal.jsonl"),
        dir.join("tasks/0.out"),
    ] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o002,
            0,
            "{} is world-writable ({mode:o})",
            path.display()
        );
    }
}

/// A small tmpfs mounted for the life of the value (tests of a full or read-only disk).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts one at `path`, or `None` when this process may not mount (not root).
    fn mount(path: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .ok()?
            .success();
        ok.then(|| Self(path.to_owned()))
    }

    fn remount_read_only(&self) {
        assert!(
            Command::new("mount")
                .args(["-o", "remount,ro"])
                .arg(&self.0)
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    })
}

/// Every complete journal line is a record; a torn last line is allowed.
fn assert_journal_valid(dir: &Path) {
    let text = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}

#[test]
fn a_full_disk_stops_the_run_with_74_and_keeps_what_was_written() {
    if !root() {
        eprintln!("skipped: mounting a small tmpfs needs root (CI runs as root)");
        return;
    }
    let job = Job::new(&format!(
        "command = \"head -c 60000 /dev/zero\"\n[report]\ndir = \"disk/{{run-id}}\"\n{}",
        range(200, 2)
    ));
    let _disk = Tmpfs::mount(&job.file("disk"), "256k").expect("mount tmpfs");
    let run = job.run(&[]);
    assert_eq!(run.code, 74, "{}", run.stderr);
    assert!(
        run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    let dir = std::fs::read_dir(job.file("disk"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    assert!(
        !dir.join("report.json").exists(),
        "no truncated report.json"
    );
    assert_journal_valid(&dir);
}

#[test]
fn a_read_only_run_root_gives_74_and_runs_nothing() {
    if !root() {
        eprintln!("skipped: mounting a tmpfs needs root (CI runs as root)");
        return;
    }
    let job = Job::new(&format!(
        "command = \"touch ran\"\n[report]\ndir = \"disk/{{run-id}}\"\n{}",
        range(1, 1)
    ));
    let disk = Tmpfs::mount(&job.file("disk"), "1m").expect("mount tmpfs");
    disk.remount_read_only();
    let run = job.run(&[]);
    assert_eq!(run.code, 74, "{}", run.stderr);
    assert!(
        run.stderr.contains("Read-only file system") && run.stderr.contains("disk"),
        "{}",
        run.stderr
    );
    assert!(!job.file("ran").exists());
}

#[test]
fn more_processes_than_the_user_may_run_is_an_error_before_anything_runs() {
    let job = Job::new(&format!("command = \"touch ran\"\n{}", range(1, 1)));
    let out = Command::new("sh")
        .current_dir(job.dir.path())
        .arg("-c")
        .arg(format!(
            "exec prlimit --nproc=50 {} run job.toml --processes 100",
            env!("CARGO_BIN_EXE_poolrun")
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("RLIMIT_NPROC"), "{stderr}");
    assert!(!job.file("ran").exists() && !job.file("runs").exists());
}

#[test]
fn a_plan_of_more_than_a_billion_tasks_needs_a_flag() {
    let job = Job::new("command = \"true\"\n[range]\nstart = 0\nend = 2000000000\n");
    let run = job.run(&[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--allow-huge"), "{}", run.stderr);
    let plan = job.cmd("plan", &["--json"]);
    assert_eq!(plan.code, 2);
    let out = Command::new("sh")
        .current_dir(job.dir.path())
        .arg("-c")
        .arg(format!(
            "{} plan --json --allow-huge job.toml | head -c 200",
            env!("CARGO_BIN_EXE_poolrun")
        ))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("[\n{\"id\":0,"));
}

#[test]
fn memory_limit_confines_a_task_that_allocates_without_bound() {
    let job = Job::new(&format!(
        "command = \"python3 -c 'x = bytearray(512 * 1024 * 1024)'\"\n{}memory-limit = \"128MiB\"\n",
        range(1, 1)
    ));
    assert_eq!(job.run(&[]).code, 1);
    let report = job.report();
    assert_eq!(statuses(&report), ["failed"]);
    assert!(
        tasks(&report)[0]["stderr_tail"]
            .as_str()
            .unwrap()
            .contains("MemoryError")
    );
}

#[test]
fn max_processes_confines_a_fork_bomb() {
    // Each task tries to start 40 processes at once; it may have 10.
    let job = Job::new(&format!(
        "command = \"i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i + 1)); done; wait\"\n{}max-processes = 10\ntimeout = \"60s\"\n",
        range(2, 2)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for task in tasks(&job.report()) {
        assert_eq!(task["status"], "failed");
        assert!(
            task["stderr_tail"].as_str().unwrap().contains("fork"),
            "{task}"
        );
    }
}
