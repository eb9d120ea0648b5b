//! Test helpers: a job in a temporary directory, the real binary, reports checked against the
//! committed schema, and polling with deadlines instead of sleeps.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub fn poolrun() -> Command {
    Command::new(env!("CARGO_BIN_EXE_poolrun"))
}

/// The repository's root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A job file in a fresh temporary directory.
pub struct Job {
    pub dir: TempDir,
    pub path: PathBuf,
}

/// What a run printed and returned.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    /// stderr without the timestamp poolrun puts before each line when stderr is not a
    /// terminal (as here).
    pub stderr: String,
    /// stderr as printed.
    pub raw_stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        let raw_stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: strip_timestamps(&raw_stderr),
            raw_stderr,
        }
    }
}

/// Whether `line` starts with poolrun's timestamp, `2026-11-27T08:18:02.123Z `.
pub fn is_stamped(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 25
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && b[23] == b'Z'
        && b[24] == b' '
}

/// `text` with the timestamp taken off each line that has one.
pub fn strip_timestamps(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| if is_stamped(line) { &line[25..] } else { line })
        .collect()
}

impl Job {
    /// Writes `text` as `job.toml` in a new temporary directory.
    pub fn new(text: &str) -> Self {
        Self::named("job", text)
    }

    /// Writes `text` as `<stem>.toml` in a new temporary directory.
    pub fn named(stem: &str, text: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(format!("{stem}.toml"));
        std::fs::write(&path, text).expect("write job");
        Self { dir, path }
    }

    /// A path inside the job's directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `poolrun <subcommand> job.toml <args>` in the job's directory (naming the file
    /// relative to it, so messages are the same in every temporary directory).
    pub fn cmd(&self, subcommand: &str, args: &[&str]) -> Run {
        let child = poolrun()
            .current_dir(self.dir.path())
            .arg(subcommand)
            .arg(self.path.file_name().expect("file name"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run poolrun");
        finish(child)
    }

    /// `poolrun <args>` in the job's directory, with `env` added to its environment.
    pub fn poolrun(&self, args: &[&str], env: &[(&str, &Path)]) -> Run {
        let mut command = poolrun();
        command
            .current_dir(self.dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        finish(command.spawn().expect("run poolrun"))
    }

    /// `poolrun run job.toml <args>`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.cmd("run", args)
    }

    /// `poolrun run job.toml <args>` in the background, stderr kept for `finish_background`.
    pub fn start(&self, args: &[&str]) -> Background {
        background(
            poolrun()
                .current_dir(self.dir.path())
                .arg("run")
                .arg(&self.path)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )
    }

    /// The newest run directory of this job (`runs/<name>/latest`).
    pub fn latest(&self, name: &str) -> PathBuf {
        let link = self.dir.path().join("runs").join(name).join("latest");
        std::fs::canonicalize(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()))
    }

    /// The newest run's report, checked against the report schema.
    pub fn report(&self) -> Value {
        read_report(&self.latest("job"))
    }
}

/// How long any one poolrun command in a test may take before the test fails (instead of
/// hanging CI).
pub const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// A poolrun started in the background. Should the test fail before `finish`, dropping it
/// sends poolrun SIGTERM (so it stops its tasks) and then SIGKILL: no test leaves processes behind.
pub struct Background(Option<Child>);

impl Background {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    /// SIGKILL, as a crash would, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        use wait_timeout::ChildExt;
        if let Some(mut child) = self.0.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            if !matches!(child.wait_timeout(Duration::from_secs(10)), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Starts `command` in the background.
pub fn background(command: &mut Command) -> Background {
    Background(Some(command.spawn().expect("start poolrun")))
}

/// Waits for a background poolrun; see `finish`.
pub fn finish_background(mut background: Background) -> Run {
    finish(background.0.take().expect("running"))
}

/// Waits for a poolrun started with piped output, failing the test (and killing it) if it
/// outlives `COMMAND_LIMIT`.
pub fn finish(mut child: Child) -> Run {
    use std::io::Read;
    use wait_timeout::ChildExt;
    // Drain the pipes on threads so a chatty poolrun cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let Some(status) = child.wait_timeout(COMMAND_LIMIT).expect("wait for poolrun") else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "poolrun ran longer than {COMMAND_LIMIT:?}: {}",
            stderr.join().unwrap_or_default()
        );
    };
    let raw_stderr = stderr.join().expect("stderr");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().expect("stdout"),
        stderr: strip_timestamps(&raw_stderr),
        raw_stderr,
    }
}

/// Reads `report.json` in `run_dir` and asserts it is valid against `schemas/report.schema.json`,
/// and every line of the run's journal against `schemas/journal.schema.json`.
pub fn read_report(run_dir: &Path) -> Value {
    let text = std::fs::read_to_string(run_dir.join("report.json")).expect("report.json");
    let report: Value = serde_json::from_str(&text).expect("report.json is JSON");
    assert_valid(report_schema(), &report, "report.json");
    assert_journal_valid(run_dir);
    report
}

/// Asserts every line of the journal in `run_dir` is valid against the journal schema.
pub fn assert_journal_valid(run_dir: &Path) {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let schema = SCHEMA.get_or_init(|| load_schema("journal.schema.json"));
    let Ok(journal) = std::fs::read_to_string(run_dir.join("journal.jsonl")) else {
        return;
    };
    for (i, line) in journal.lines().enumerate() {
        let record: Value = serde_json::from_str(line).expect("a journal line is JSON");
        assert_valid(schema, &record, &format!("journal line {}", i + 1));
    }
}

/// Asserts `value` is valid against `schema`, listing every violation.
pub fn assert_valid(schema: &jsonschema::Validator, value: &Value, what: &str) {
    let errors: Vec<String> = schema
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema:\n{}",
        errors.join("\n")
    );
}

fn load_schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("schemas").join(name)).expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

/// The committed report schema.
pub fn report_schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| load_schema("report.schema.json"))
}

/// The committed job schema.
pub fn job_schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| load_schema("job.schema.json"))
}

/// The tasks array of a report.
pub fn tasks(report: &Value) -> &Vec<Value> {
    report["tasks"].as_array().expect("tasks array")
}

/// The statuses of a report's tasks, in report order.
pub fn statuses(report: &Value) -> Vec<String> {
    tasks(report)
        .iter()
        .map(|t| t["status"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `check` until it returns `Some` or `limit` passes.
pub fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Whether `pid` is a live process (a zombie is dead: it only waits to be reaped).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Asserts every pid in `pids` is gone, allowing a short time for the kernel to finish with them.
pub fn assert_all_gone(pids: &[u32]) {
    wait_for(
        Duration::from_secs(10),
        "the task's processes to be gone",
        || pids.iter().all(|&p| !alive(p)).then_some(()),
    );
}

/// Reads every pid written to files matching `dir/*.pid`.
pub fn pids_in(dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(dir).expect("pid dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "pid") {
            let text = std::fs::read_to_string(&path).expect("pid file");
            pids.extend(
                text.split_whitespace()
                    .map(|p| p.parse::<u32>().expect("pid")),
            );
        }
    }
    pids
}

/// The lines of a run's journal, parsed.
pub fn journal(run_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("journal line is JSON"))
        .collect()
}

/// A `[range]` of `n` items from 0 and a `[pool]` with `processes`.
pub fn range(n: u64, processes: u32) -> String {
    format!("[range]\nstart = 0\nend = {n}\n\n[pool]\nprocesses = {processes}\n")
}

/// The hex SHA-256 of `bytes`, as reports write it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    poolrun::job::hex(&sha2::Sha256::digest(bytes))
}
