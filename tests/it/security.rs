//! A run root that other users can reach: no symlink is followed, no file is replaced, folders
//! are 0755 whatever the umask and must be poolrun's user's; and a resume never touches a run
//! that is not the job's own.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{
    Job, alive, assert_all_gone, background, finish, finish_background, pids_in, poolrun, range,
    wait_for,
};

fn root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Gives `path` (not following a symlink) to the user nobody.
fn give_to_nobody(path: &Path) {
    std::os::unix::fs::lchown(path, Some(65534), Some(65534)).unwrap();
}

#[test]
fn a_planted_lock_symlink_is_refused_and_its_target_untouched() {
    let job = Job::new(&format!("command = \"true\"\n{}", range(1, 1)));
    let precious = job.file("precious");
    std::fs::write(&precious, "keep me").unwrap();
    let root = job.file("shared");
    std::fs::create_dir(&root).unwrap();
    std::os::unix::fs::symlink(&precious, root.join(".poolrun-job.lock")).unwrap();
    let run = job.run(&["--run-dir", "shared/run"]);
    assert_eq!(run.code, 74, "{}", run.stderr);
    assert!(run.stderr.contains(".poolrun-job.lock"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    assert!(!root.join("run").exists(), "nothing ran");
}

#[test]
fn a_run_root_owned_by_another_user_is_refused() {
    if !root() {
        eprintln!("skipped: needs root to give a folder to another user");
        return;
    }
    let job = Job::new(&format!("command = \"true\"\n{}", range(1, 1)));
    let runs = job.file("runs");
    std::fs::create_dir_all(runs.join("job")).unwrap();
    give_to_nobody(&runs.join("job"));
    let run = job.run(&[]);
    assert_eq!(run.code, 74, "{}", run.stderr);
    assert!(run.stderr.contains("another user"), "{}", run.stderr);
    // A symlink made by another user to a folder of ours is refused as well.
    std::fs::remove_dir(runs.join("job")).unwrap();
    let mine = job.file("mine");
    std::fs::create_dir(&mine).unwrap();
    std::os::unix::fs::symlink(&mine, runs.join("job")).unwrap();
    give_to_nobody(&runs.join("job"));
    let run = job.run(&[]);
    assert_eq!(run.code, 74, "{}", run.stderr);
    assert!(run.stderr.contains("symlink"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 0);
}

#[test]
fn a_world_writable_run_root_is_refused_unless_sticky() {
    let job = Job::new(&format!("command = \"true\"\n{}", range(1, 1)));
    let shared = job.file("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = job.run(&["--run-dir", "shared/run"]);
    assert_eq!(run.code, 74, "{}", run.stderr);
    assert!(run.stderr.contains("chmod go-w"), "{}", run.stderr);
    // Like /tmp: others may write, but not replace what poolrun made.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let run = job.run(&["--run-dir", "shared/run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn folders_are_0755_under_any_umask() {
    let job = Job::new(&format!("command = \"true\"\n{}", range(1, 1)));
    for umask in ["000", "077"] {
        let child = background(
            std::process::Command::new("sh")
                .current_dir(job.dir.path())
                .arg("-c")
                .arg(format!("umask {umask}; exec \"$0\" run job.toml"))
                .arg(env!("CARGO_BIN_EXE_poolrun"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        let run = finish_background(child);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let runs = job.file("runs");
    let run_dir = job.latest("job");
    for dir in [
        runs.clone(),
        runs.join("job"),
        run_dir.clone(),
        run_dir.join("tasks"),
    ] {
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755, "{}", dir.display());
    }
}

#[test]
fn a_planted_partial_report_is_not_written_through() {
    let job = Job::new(&format!("command = \"exit {{id}}\"\n{}", range(2, 1)));
    assert_eq!(job.run(&[]).code, 1);
    let dir = job.latest("job");
    let precious = job.file("precious");
    std::fs::write(&precious, "keep me").unwrap();
    for name in ["report.json.partial", ".report.json.partial"] {
        std::os::unix::fs::symlink(&precious, dir.join(name)).unwrap();
    }
    let run = job.run(&["--resume"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    crate::support::read_report(&dir);
}

#[test]
fn resuming_another_jobs_run_touches_nothing() {
    let alpha = Job::named(
        "alpha",
        &format!(
            "command = \"echo $$ > {{id}}.pid; sleep 1000\"\n{}",
            range(4, 4)
        ),
    );
    let running = alpha.start(&[]);
    let pids = wait_for(Duration::from_secs(10), "alpha's four tasks", || {
        let pids = pids_in(alpha.dir.path());
        (pids.len() == 4).then_some(pids)
    });
    let alpha_run = alpha.latest("alpha");
    let beta = alpha.file("beta.toml");
    std::fs::write(&beta, format!("command = \"true\"\n{}", range(4, 4))).unwrap();
    let run = finish(
        poolrun()
            .current_dir(alpha.dir.path())
            .args(["run", "beta.toml", "--resume"])
            .arg(&alpha_run)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("`alpha`"), "{}", run.stderr);
    assert!(pids.iter().all(|&p| alive(p)), "alpha's tasks still run");
    drop(running);
    assert_all_gone(&pids);
}

#[test]
fn a_fifo_planted_as_the_lock_neither_blocks_nor_locks() {
    let job = Job::new(&format!("command = \"true\"\n{}", range(2, 1)));
    assert_eq!(job.run(&[]).code, 0);
    let dir = job.latest("job");
    std::fs::remove_file(dir.join("report.json")).unwrap();
    let lock = job.file("runs/job/.poolrun-job.lock");
    std::fs::remove_file(&lock).unwrap();
    nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    // Reading a run only asks whether the lock is held: a FIFO is no lock, and no wait.
    let report = finish(
        poolrun()
            .arg("report")
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert_eq!(report.code, 0, "{}", report.stderr);
    // A run refuses it.
    let run = job.run(&[]);
    assert_eq!(run.code, 74, "{}", run.stderr);
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
}
