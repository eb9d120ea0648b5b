//! `JobFile` -> `Job`: every check that can be done before running, each error pointing at its key.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use std::sync::Arc;

use crate::job::chunk::ChunkValues;
use crate::job::diagnostic::{self, Diagnostic, KeyPart};
use crate::job::error::JobError;
use crate::job::file::{CommandSpec, JobFile, Processes};
use crate::job::grammar;
use crate::job::overrides::{self, Sets};
use crate::job::source::{Chunk, Items, Matrix, Source};
use crate::job::suggest;
use crate::job::template::{Placeholder, Template};
use crate::job::{Command, Job, JobSource};

/// Job files larger than this are refused before parsing: no real job file comes close.
const MAX_JOB_FILE_BYTES: u64 = 1 << 20;

/// The largest chunk `{items}` may list: about 1 MB of arguments, well inside Linux's limit.
const MAX_ITEMS_CHUNK: u64 = 100_000;

/// The longest single argument or environment string Linux passes to a program, its NUL
/// included (`MAX_ARG_STRLEN`, 32 pages): longer ones fail with "Argument list too long".
const MAX_ARG_BYTES: usize = 128 * 1024;

/// The default run directory, relative to the job file's folder.
pub const DEFAULT_REPORT_DIR: &str = "runs/{name}/{run-id}";

/// The default time between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(5);

/// Command-line settings that replace the job file's.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--processes`.
    pub processes: Option<Processes>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--run-dir`, relative to the current directory.
    pub run_dir: Option<PathBuf>,
    /// `--set KEY=VALUE` arguments, in order.
    pub set: Vec<String>,
    /// The items of a run's input snapshot, used instead of reading `[lines]` or `[glob]` again
    /// (a resumed or rerun run).
    pub snapshot: Option<Arc<Items>>,
    /// Whether the job file itself came from stdin (which then cannot hold `[lines]` too).
    pub job_from_stdin: bool,
}

/// What `poolrun run -` reads the job file from.
pub const STDIN_PATH: &str = "/dev/stdin";

/// Reads, parses and validates the job file at `path`. Relative paths in it start at its
/// folder; for a job read from something that is not a regular file (`/dev/stdin`, a FIFO,
/// `/dev/fd/N`) they start at the current directory, so runs never land next to a device.
/// The path `-` is stdin.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Job, JobError> {
    load_read(&read(path)?, overrides)
}

/// Whether `path` is a name of an open file descriptor: `/dev/fd/N`, `/proc/<pid, self or
/// thread-self>/fd/N`, however many slashes it is written with.
fn names_a_descriptor(path: &Path) -> bool {
    let parts: Vec<_> = path
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    matches!(
        parts.as_slice(),
        ["/", "dev", "fd", ..] | ["/", "proc", _, "fd", ..]
    )
}

/// A job file as read, before it is parsed: what `load_read` loads, as often as needed (a job
/// read from stdin can be read only once).
#[derive(Debug, Clone)]
pub struct ReadJob {
    /// As messages name it.
    shown: PathBuf,
    absolute: PathBuf,
    base_dir: PathBuf,
    text: JobText,
    from_stdin: bool,
}

/// Reads the job file at `path` (`-` is stdin).
pub fn read(path: &Path) -> Result<ReadJob, JobError> {
    let stdin = path == Path::new("-");
    let path = if stdin { Path::new(STDIN_PATH) } else { path };
    let read_error = |source| JobError::Read {
        path: path.to_owned(),
        source,
    };
    let absolute = std::path::absolute(path).map_err(read_error)?;
    let text = read_job_file(path)?;
    let from_stdin = stdin
        || ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"]
            .iter()
            .any(|p| path == Path::new(p));
    // A descriptor's name (`/dev/stdin` of `< job.toml`, `/dev/fd/3`) is a regular file when the
    // descriptor is one, but its folder is /dev: runs go under the current directory then too.
    let descriptor = from_stdin || names_a_descriptor(&absolute);
    let base_dir = if text.regular && !descriptor {
        absolute.parent().unwrap_or(Path::new("/")).to_owned()
    } else {
        std::env::current_dir().map_err(read_error)?
    };
    Ok(ReadJob {
        // Messages name the file as the user did; `-` is `<stdin>`.
        shown: if stdin {
            "<stdin>".into()
        } else {
            path.to_owned()
        },
        absolute,
        base_dir,
        text,
        from_stdin,
    })
}

/// Parses and validates a job file `read` read.
pub fn load_read(read: &ReadJob, overrides: &Overrides) -> Result<Job, JobError> {
    let overrides = Overrides {
        job_from_stdin: overrides.job_from_stdin || read.from_stdin,
        ..overrides.clone()
    };
    from_text(
        &read.shown,
        &read.absolute,
        &read.base_dir,
        read.text.clone(),
        &overrides,
    )
}

/// Loads the copy of a job file that a run directory keeps (`copy`), as if it were still the
/// file at `original` with its relative paths starting at `base_dir`.
pub fn load_copy(
    copy: &Path,
    original: &Path,
    base_dir: &Path,
    overrides: &Overrides,
) -> Result<Job, JobError> {
    let read = read_job_file(copy)?;
    from_text(copy, original, base_dir, read, overrides)
}

/// Parses and validates job-file `text` as if read from `path` (for messages; its folder is where
/// relative paths start). For tests and fuzzing: `load` is the way in for files.
pub fn parse(path: &Path, text: &str, overrides: &Overrides) -> Result<Job, JobError> {
    let read = JobText {
        sha256: hex(&Sha256::digest(text.as_bytes())),
        text: text.to_owned(),
        regular: true,
    };
    let base_dir = path.parent().unwrap_or(Path::new("/"));
    from_text(path, path, base_dir, read, overrides)
}

fn from_text(
    path: &Path,
    absolute: &Path,
    base_dir: &Path,
    read: JobText,
    overrides: &Overrides,
) -> Result<Job, JobError> {
    let JobText { text, sha256, .. } = read;
    let shown = path.display().to_string();
    let sets = Sets::parse(&overrides.set, text.len())?;
    let file = deserialize(&shown, &text, &sets)?;
    let base_dir = base_dir.to_owned();
    let origin = JobSource {
        path: path.to_owned(),
        absolute: absolute.to_owned(),
        text,
        sha256,
    };
    Validator { origin, sets }
        .job(file, base_dir, overrides)
        .map_err(JobError::from)
}

/// The job file as written, with the `--set` values merged in.
fn deserialize(shown: &str, text: &str, sets: &Sets) -> Result<JobFile, Box<Diagnostic>> {
    use serde::Deserialize;
    if sets.is_empty() {
        return toml::from_str(text).map_err(|e| serde_diagnostic(shown, text, &e, sets));
    }
    let mut root =
        toml::de::DeTable::parse(text).map_err(|e| serde_diagnostic(shown, text, &e, sets))?;
    let span = root.span();
    sets.merge_into(root.get_mut());
    let root = toml::Spanned::new(span, root.into_inner());
    JobFile::deserialize(toml::de::Deserializer::from(root))
        .map_err(|e| serde_diagnostic(shown, text, &e, sets))
}

/// A job file's text as read.
#[derive(Debug, Clone)]
struct JobText {
    text: String,
    /// Hex SHA-256 of the bytes.
    sha256: String,
    /// Whether it came from a regular file (not a pipe, FIFO or device).
    regular: bool,
}

/// Reads a job file's text and the SHA-256 of its bytes, refusing directories, huge files and
/// text that is not UTF-8 with a message that says so.
pub fn read_text(path: &Path) -> Result<(String, String), JobError> {
    read_job_file(path).map(|read| (read.text, read.sha256))
}

/// Reads at most `MAX_JOB_FILE_BYTES` (and one byte more, to tell that there is more) from
/// whatever `path` is: the cap holds for a device that never ends (`/dev/zero`) as for a
/// file, and a FIFO nobody writes to is an error at once, not a wait forever.
fn read_job_file(path: &Path) -> Result<JobText, JobError> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let read_error = |source| JobError::Read {
        path: path.to_owned(),
        source,
    };
    let shown = path.display().to_string();
    let refuse =
        |message: String| -> JobError { Diagnostic::new(&shown, "", None, message).into() };
    // Non-blocking, so that opening a FIFO with no writer returns at once.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(read_error)?;
    let kind = file.metadata().map_err(read_error)?.file_type();
    if kind.is_dir() {
        return Err(refuse("this is a directory, not a job file".into()));
    }
    let mut bytes = Vec::new();
    let cap = MAX_JOB_FILE_BYTES + 1;
    if kind.is_file() {
        (&mut file)
            .take(cap)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
    } else {
        read_stream(&mut file, cap, &mut bytes).map_err(read_error)?;
        if bytes.is_empty() && kind.is_fifo() {
            return Err(refuse(
                "this FIFO gave nothing to read: no program is writing a job file into it".into(),
            ));
        }
    }
    if bytes.len() as u64 > MAX_JOB_FILE_BYTES {
        let what = if kind.is_file() { "file" } else { "input" };
        return Err(refuse(format!(
            "the {what} holds more than 1 MiB; a job file may be at most 1 MiB"
        )));
    }
    let sha256 = hex(&Sha256::digest(&bytes));
    let regular = kind.is_file();
    match String::from_utf8(bytes) {
        Ok(text) => Ok(JobText {
            text,
            sha256,
            regular,
        }),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let message = format!(
                "the file is not UTF-8: invalid byte 0x{:02x}",
                e.as_bytes()[at]
            );
            Err(Diagnostic::new(&shown, &text, Some(at..at + 1), message).into())
        }
    }
}

/// Reads up to `cap` bytes from a non-blocking pipe, FIFO or device until its end, waiting for
/// data with `poll` while a writer is there.
fn read_stream(file: &mut std::fs::File, cap: u64, bytes: &mut Vec<u8>) -> std::io::Result<()> {
    use rustix::event::{PollFd, PollFlags, poll};
    use std::io::Read;
    let mut chunk = [0; 16 * 1024];
    while (bytes.len() as u64) < cap {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(&*file, PollFlags::IN)];
                match poll(&mut fds, None) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
    Ok(())
}

/// Lowercase hex digits of `bytes` (digests in job records and task keys).
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// Turns a `toml` error into a diagnostic with the key path found from its span.
fn serde_diagnostic(
    file: &str,
    text: &str,
    error: &toml::de::Error,
    sets: &Sets,
) -> Box<Diagnostic> {
    let span = error.span();
    let message = plain_message(error.message());
    if let Some((arg, local, key)) = span
        .as_ref()
        .filter(|s| s.start > text.len())
        .and_then(|s| sets.locate(s))
    {
        return overrides::diagnostic(arg, Some(local), message, Some(key));
    }
    // A missing key is reported on the table that lacks it; the whole document for the root.
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next());
    let whole = span
        .as_ref()
        .is_some_and(|s| s.start == 0 && (s.end == 0 || s.end >= text.trim_end().len()));
    let mut path = match &span {
        Some(s) if !(missing.is_some() && whole) => diagnostic::path_at(text, s.start),
        _ => Vec::new(),
    };
    if let Some(field) = missing {
        path.push(KeyPart::Key(field.to_owned()));
    }
    let help = unknown_field_help(&message).or_else(|| {
        let empty = text.trim().is_empty();
        empty.then(|| {
            "a job file needs at least `command` and an item source such as a `[range]` with `start` and `end`".to_owned()
        })
    });
    let message = if text.trim().is_empty() {
        format!("the job file is empty: {message}")
    } else {
        message
    };
    Diagnostic::new(file, text, span.filter(|_| !whole), message)
        .with_key(diagnostic::render_path(&path))
        .with_help(help)
}

/// A serde message in the words of the job file: TOML's types, not Rust's.
fn plain_message(message: &str) -> String {
    let message = message
        .trim()
        .replace("expected i64", "expected a 64-bit integer")
        .replace(" as i128", "")
        // A TOML date or time reaches serde as a map.
        .replace(
            "invalid type: map, expected a string",
            "expected a string, found a date or time (quote it)",
        );
    match message.split_once("expected struct ") {
        Some((head, _)) => format!("{head}expected a table"),
        None => message,
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": the nearest known key, if any.
fn unknown_field_help(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field ")?;
    let mut names = rest.split('`').skip(1).step_by(2);
    let unknown = names.next()?;
    let nearest = suggest::nearest(unknown, names)?;
    Some(format!("did you mean `{nearest}`?"))
}

/// A template and the key path it was read from, e.g. `["command", "[2]"]`.
pub(super) type PlacedTemplate<'a> = (Vec<String>, &'a Template);

/// A check's result: the value, or the error pointing at it.
pub(super) type Check<T> = Result<T, Box<Diagnostic>>;

pub(super) struct Validator {
    origin: JobSource,
    sets: Sets,
}

impl Validator {
    /// An error at the value of `path` (or at `offset..offset + len` inside that string value).
    pub(super) fn error(
        &self,
        path: &[&str],
        inner: Option<(usize, usize)>,
        message: String,
    ) -> Box<Diagnostic> {
        let parts: Vec<KeyPart> = path
            .iter()
            // Array indices are written "[3]".
            .map(|p| {
                match p
                    .strip_prefix('[')
                    .and_then(|p| p.strip_suffix(']'))
                    .and_then(|i| i.parse().ok())
                {
                    Some(i) => KeyPart::Index(i),
                    None => KeyPart::Key((*p).to_owned()),
                }
            })
            .collect();
        let text = &self.origin.text;
        let key = diagnostic::render_path(&parts);
        if let Some((arg, span)) = self.sets.find(&parts) {
            let span = match (span, inner) {
                (Some(s), Some((offset, len))) => {
                    Some(diagnostic::span_in_string(arg, s, offset, len))
                }
                (span, _) => span,
            };
            return overrides::diagnostic(arg, span, message, key);
        }
        let mut span = diagnostic::span_of(text, &parts);
        if span.is_none()
            && let Some((arg, span)) = self.sets.find_within(&parts)
        {
            return overrides::diagnostic(arg, span, message, key);
        }
        if let (Some(s), Some((offset, len))) = (span.clone(), inner) {
            span = Some(diagnostic::span_in_string(text, s, offset, len));
        }
        Diagnostic::new(&self.origin.path.display().to_string(), text, span, message)
            .with_key(diagnostic::render_path(&parts))
    }

    fn template(&self, path: &[&str], text: &str, params: &[String]) -> Check<Template> {
        self.template_of(path, text, &Placeholder::ALL, params)
    }

    fn template_of(
        &self,
        path: &[&str],
        text: &str,
        allowed: &[Placeholder],
        params: &[String],
    ) -> Check<Template> {
        if let Some(at) = text.find('\0') {
            let message = "a NUL character cannot be passed to a process".to_owned();
            return Err(self.error(path, Some((at, 1)), message));
        }
        Template::parse_with(text, allowed, params).map_err(|e| {
            self.error(path, Some((e.offset, e.len)), e.message)
                .with_help(e.help)
        })
    }

    fn job(self, file: JobFile, base_dir: PathBuf, overrides: &Overrides) -> Check<Job> {
        let name = self.name(file.name.as_deref())?;
        let matrix = self.matrix(file.matrix.as_ref())?;
        let params = matrix.as_ref().map(|m| m.keys.clone()).unwrap_or_default();
        let command = self.command(&file.command, &params)?;
        let cwd = match &file.cwd {
            Some(cwd) => Some(self.cwd(cwd, &base_dir, &params)?),
            None => None,
        };
        let env = self.env(&file.env, &params)?;
        let (env_clear, env_pass) = self.env_pass(&file)?;
        let seed = self.seed(file.seed)?;
        let record_env = self.record_env(file.record_env.as_ref())?;
        let source = self.source(&file, &base_dir, cwd.as_ref(), overrides)?;
        let templates = task_templates(&command, cwd.as_ref(), &env);
        self.placeholders_have_values(&templates, source.as_ref(), seed)?;
        self.items_fit(
            &templates,
            &command,
            source.as_ref(),
            matrix.as_ref(),
            &name,
        )?;
        let pool = self.pool(&file, overrides)?;
        let (report_base, report_dir) = match (&overrides.run_dir, &file.report.dir) {
            (Some(dir), _) => {
                let template =
                    Template::parse(&dir.to_string_lossy(), &Placeholder::RUN).map_err(|e| {
                        Diagnostic::new("--run-dir", "", None, e.message).with_help(e.help)
                    })?;
                let here = std::env::current_dir().unwrap_or_else(|_| base_dir.clone());
                (here, template)
            }
            (None, Some(dir)) => (
                base_dir.clone(),
                self.template_of(&["report", "dir"], dir, &Placeholder::RUN, &[])?,
            ),
            (None, None) => {
                let template =
                    Template::parse(DEFAULT_REPORT_DIR, &Placeholder::RUN).expect("valid default");
                (base_dir.clone(), template)
            }
        };
        let keep = self.keep(file.report.keep)?;
        let slurm = self.slurm(file.slurm)?;
        Ok(Job {
            name,
            description: file.description,
            origin: self.origin,
            base_dir,
            command,
            cwd,
            env,
            env_clear,
            env_pass,
            source,
            matrix,
            seed,
            record_env,
            set: overrides.set.clone(),
            pool,
            report_base,
            report_dir,
            keep,
            slurm,
        })
    }

    /// `[report] keep`.
    fn keep(&self, keep: Option<i64>) -> Check<Option<usize>> {
        Ok(match keep {
            None => None,
            Some(n) => Some(
                usize::try_from(n)
                    .ok()
                    .filter(|&n| (1..=grammar::MAX_KEEP as usize).contains(&n))
                    .ok_or_else(|| {
                        self.error(
                            &["report", "keep"],
                            None,
                            format!("expected a number of runs from 1 to 1000000, found {n}"),
                        )
                    })?,
            ),
        })
    }

    /// `[slurm]`.
    fn slurm(
        &self,
        slurm: Option<crate::job::file::SlurmFile>,
    ) -> Check<Option<crate::job::Slurm>> {
        Ok(match slurm {
            None => None,
            Some(s) => {
                for (key, value) in [
                    ("partition", &s.partition),
                    ("account", &s.account),
                    ("qos", &s.qos),
                ] {
                    if value
                        .as_deref()
                        .is_some_and(|v| !grammar::SLURM_NAME.is_match(v))
                    {
                        return Err(self.error(
                            &["slurm", key],
                            None,
                            format!("expected a Slurm name (no spaces, not starting with `-`), found {:?}", value.as_deref().unwrap_or("")),
                        ));
                    }
                }
                let extra_args = s.extra_args.unwrap_or_default();
                if let Some(bad) = extra_args
                    .iter()
                    .find(|a| !grammar::SBATCH_OPTION.is_match(a))
                {
                    return Err(self.error(
                        &["slurm", "extra-args"],
                        None,
                        format!("expected sbatch options such as \"--mem=2G\", found {bad:?}"),
                    ));
                }
                Some(crate::job::Slurm {
                    partition: s.partition,
                    account: s.account,
                    qos: s.qos,
                    extra_args,
                })
            }
        })
    }

    fn name(&self, name: Option<&str>) -> Check<String> {
        // A name is a folder name in the run root: `.` and `..` would escape it.
        let valid = |n: &str| grammar::NAME.is_match(n);
        match name {
            Some(n) if valid(n) => Ok(n.to_owned()),
            Some(n) => Err(self.error(
                &["name"],
                None,
                format!("expected a name of letters, digits, `.`, `_` and `-`, found {n:?}"),
            )),
            None => {
                let stem = self
                    .origin
                    .absolute
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if valid(&stem) {
                    Ok(stem)
                } else {
                    let message = format!(
                        "the file's stem {stem:?} cannot be a job name: it must be letters, digits, `.`, `_` and `-`"
                    );
                    Err(Diagnostic::new(
                        &self.origin.path.display().to_string(),
                        &self.origin.text,
                        None,
                        message,
                    )
                    .with_help(Some("set `name = \"...\"` in the job file".into())))
                }
            }
        }
    }

    fn command(&self, spec: &CommandSpec, params: &[String]) -> Check<Command> {
        match spec {
            CommandSpec::Shell(script)
                if !script.contains('\0') && !grammar::SHELL_COMMAND.is_match(script) =>
            {
                Err(self.error(
                    &["command"],
                    None,
                    if script.is_empty() {
                        "expected a command, found an empty string".into()
                    } else {
                        "expected a command, found a blank string".into()
                    },
                ))
            }
            CommandSpec::Shell(script) => {
                let template = self.template(&["command"], script, params)?;
                if let Some((at, len, glued)) = template.escaped_placeholder() {
                    let (message, help) = if glued == '$' {
                        (
                            "a `$` right before a placeholder makes the shell expand the value's start as a variable".to_owned(),
                            "write `{item}` alone for the value, or `${{NAME}}` for a shell variable",
                        )
                    } else {
                        (
                            "a `\\` right before a placeholder would escape its value's first character".to_owned(),
                            "leave the backslash out: poolrun passes every value so it arrives as it is",
                        )
                    };
                    return Err(self
                        .error(&["command"], Some((at, len)), message)
                        .with_help(Some(help.to_owned())));
                }
                Ok(Command::Shell(template))
            }
            CommandSpec::Argv(argv) if argv.is_empty() => Err(self.error(
                &["command"],
                None,
                "expected a program and its arguments, found an empty array".into(),
            )),
            CommandSpec::Argv(argv) if argv[0].is_empty() => Err(self.error(
                &["command", "[0]"],
                None,
                "expected a program, found an empty string".into(),
            )),
            CommandSpec::Argv(argv) => {
                let templates = argv
                    .iter()
                    .enumerate()
                    .map(|(i, arg)| self.template(&["command", &format!("[{i}]")], arg, params))
                    .collect::<Result<_, _>>()?;
                Ok(Command::Argv(templates))
            }
        }
    }

    fn cwd(&self, cwd: &str, base_dir: &Path, params: &[String]) -> Check<Template> {
        let template = self.template(&["cwd"], cwd, params)?;
        // A cwd that varies by task or run is checked when each task starts (spawn_failed); a
        // fixed one now, so a typo fails before anything runs.
        let joined = base_dir.join(template.literal_text().unwrap_or_default());
        if !template.has_placeholders() && !joined.is_dir() {
            let message =
                format!("expected an existing directory, found {cwd:?}, which is not one");
            let help = "a relative `cwd` starts at the job file's folder".to_owned();
            return Err(self.error(&["cwd"], None, message).with_help(Some(help)));
        }
        Ok(template)
    }

    fn env(
        &self,
        env: &BTreeMap<String, String>,
        params: &[String],
    ) -> Check<Vec<(String, Template)>> {
        env.iter()
            .map(|(name, value)| {
                if !grammar::VARIABLE.is_match(name) {
                    return Err(self.error(&["env", name], None, format!("expected an environment variable name without `=` or NUL, found {name:?}")));
                }
                if value.contains('\0') {
                    return Err(self.error(&["env", name], None, "an environment value cannot contain NUL".into()));
                }
                Ok((name.clone(), self.template(&["env", name], value, params)?))
            })
            .collect()
    }

    fn env_pass(&self, file: &JobFile) -> Check<(bool, Vec<String>)> {
        let clear = file.env_clear.unwrap_or(false);
        let pass = file.env_pass.clone().unwrap_or_default();
        if !clear && file.env_pass.is_some() {
            let help = "add `env-clear = true`; without it every variable is passed on".to_owned();
            let message = "`env-pass` only has a meaning with `env-clear = true`".to_owned();
            return Err(self
                .error(&["env-pass"], None, message)
                .with_help(Some(help)));
        }
        self.variable_names("env-pass", &pass)?;
        Ok((clear, pass))
    }

    /// Checks that every entry of the array at `key` can be a variable's name.
    pub(super) fn variable_names(&self, key: &str, names: &[String]) -> Check<()> {
        if let Some((i, bad)) = names
            .iter()
            .enumerate()
            .find(|(_, n)| !grammar::VARIABLE.is_match(n))
        {
            let message =
                format!("expected an environment variable name without `=` or NUL, found {bad:?}");
            return Err(self.error(&[key, &format!("[{i}]")], None, message));
        }
        Ok(())
    }

    /// `{items}` puts a whole chunk on one command line (or in one variable), and `{item}` a
    /// whole item: the chunk must fit in poolrun's memory, and each value it is in must fit in
    /// the one argument or environment string the kernel passes to a program (`MAX_ARG_STRLEN`).
    /// The largest values are those of the chunks with the longest items: for a range, the
    /// chunks at its ends (the items of largest magnitude) and a short last one; for a list,
    /// the chunk with the most bytes.
    fn items_fit(
        &self,
        templates: &[PlacedTemplate<'_>],
        command: &Command,
        source: Option<&Source>,
        matrix: Option<&Matrix>,
        name: &str,
    ) -> Check<()> {
        let Some(source) = source else {
            return Ok(());
        };
        let chunk = source.chunk_size().get();
        let help = || {
            Some(
                "use a smaller `chunk-size`, or pass the bounds with `{start}` and `{last}`"
                    .to_owned(),
            )
        };
        let tasks = source.chunks();
        let candidates: Vec<u64> = match source.list() {
            None => [0, tasks.saturating_sub(2), tasks.saturating_sub(1)]
                .into_iter()
                .filter(|&i| i < tasks)
                .collect(),
            // A list's widest chunk: the most bytes, newlines between items counted.
            Some(_) => (0..tasks)
                .max_by_key(|&i| match source.chunk(i) {
                    Chunk::List {
                        items,
                        first,
                        count,
                    } => items.span(first, count).len() + count,
                    _ => 0,
                })
                .into_iter()
                .collect(),
        };
        // The combination with the longest values.
        let combo = matrix.and_then(|m| {
            m.combos
                .iter()
                .max_by_key(|c| c.params().map(|p| p.text.len()).sum::<usize>())
        });
        // A run id is always this long: `20261126T185216Z-3f9a`.
        let run_id = "00000000T000000Z-0000";
        let uses_items = |t: &Template| t.uses(Placeholder::Items) || t.uses(Placeholder::Item);
        for (path, template) in templates.iter().filter(|(_, t)| uses_items(t)) {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            if chunk > MAX_ITEMS_CHUNK && template.uses(Placeholder::Items) {
                let message = format!(
                    "`{{items}}` with chunk-size = {chunk} puts {chunk} items in one value; at most {MAX_ITEMS_CHUNK} fit"
                );
                return Err(self.error(&path, None, message).with_help(help()));
            }
            let widest = candidates
                .iter()
                .map(|&i| {
                    let values = ChunkValues {
                        id: i,
                        chunk: source.chunk(i),
                        combo: combo.map(AsRef::as_ref),
                        seed: Some(u64::MAX),
                        name,
                        run_id,
                    };
                    // The longest single string: the script, or one value passed beside it.
                    let value = match (path[0], command) {
                        ("command", Command::Shell(_)) => {
                            let rendered = template.render_shell(&values);
                            rendered
                                .params
                                .into_iter()
                                .chain([rendered.script])
                                .max_by_key(Vec::len)
                                .unwrap_or_default()
                        }
                        _ => template.render(&values),
                    };
                    // An environment string is `NAME=value`; every string ends with a NUL.
                    let extra = if path[0] == "env" {
                        path[1].len() + 1
                    } else {
                        0
                    };
                    (value.len() + extra + 1, i)
                })
                .max();
            if let Some((bytes, id)) = widest.filter(|&(bytes, _)| bytes > MAX_ARG_BYTES) {
                let what = if chunk > 1 {
                    format!("`{{items}}` with chunk-size = {chunk}")
                } else {
                    "its item".to_owned()
                };
                let message = format!(
                    "{what} makes chunk {id}'s value {bytes} bytes long; the kernel passes at most {MAX_ARG_BYTES} bytes in one argument or environment variable"
                );
                return Err(self.error(&path, None, message).with_help(help()));
            }
        }
        Ok(())
    }
}

/// Every template a task renders, with its key path.
fn task_templates<'a>(
    command: &'a Command,
    cwd: Option<&'a Template>,
    env: &'a [(String, Template)],
) -> Vec<PlacedTemplate<'a>> {
    match command {
        Command::Shell(t) => vec![(vec!["command".to_owned()], t)],
        Command::Argv(args) => args
            .iter()
            .enumerate()
            .map(|(i, t)| (vec!["command".to_owned(), format!("[{i}]")], t))
            .collect(),
    }
    .into_iter()
    .chain(cwd.map(|t| (vec!["cwd".to_owned()], t)))
    .chain(
        env.iter()
            .map(|(k, t)| (vec!["env".to_owned(), k.clone()], t)),
    )
    .collect()
}

#[cfg(test)]
mod tests {
    use super::unknown_field_help;

    #[test]
    fn descriptor_names_are_known_however_written() {
        use super::names_a_descriptor;
        use std::path::Path;
        for yes in [
            "/dev/fd/3",
            "//dev/fd/3",
            "/proc/self/fd/0",
            "/proc/thread-self/fd/3",
            "/proc/42/fd/1",
        ] {
            assert!(names_a_descriptor(Path::new(yes)), "{yes}");
        }
        for no in [
            "/dev/null",
            "/tmp/fd/3",
            "/proc/self/status",
            "/work/dev/fd/3",
        ] {
            assert!(!names_a_descriptor(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn suggests_the_nearest_field() {
        let m = "unknown field `timout`, expected one of `processes`, `timeout`, `grace-period`";
        assert_eq!(
            unknown_field_help(m).as_deref(),
            Some("did you mean `timeout`?")
        );
        assert_eq!(
            unknown_field_help("unknown field `zzz`, expected `a`"),
            None
        );
    }
}
