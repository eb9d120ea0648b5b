//! `JobFile` -> `Job`: every check that can be done before running, each error pointing at its key.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use std::sync::Arc;

use crate::job::chunk::ChunkValues;
use crate::job::diagnostic::{self, Diagnostic, KeyPart};
use crate::job::error::JobError;
use crate::job::file::{CommandSpec, JobFile, Processes, TABLE_KEYS};
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
    let parsed = deserialize(&shown, &text, &sets).map_err(JobError::Invalid)?;
    let base_dir = base_dir.to_owned();
    let origin = JobSource {
        path: path.to_owned(),
        absolute: absolute.to_owned(),
        text,
        sha256,
    };
    let validator = Validator {
        origin,
        sets,
        found: RefCell::default(),
    };
    // The checks across keys (placeholders, items that must fit, "nothing to run over") need
    // every key they read: they run only when none of those was left out.
    // An unknown top-level key may be one of those misspelt (`[rnage]`).
    let top_level = TABLE_KEYS
        .iter()
        .find_map(|(table, keys)| table.is_empty().then_some(*keys))
        .unwrap_or_default();
    let complete = !parsed.dropped.iter().any(|d| {
        let top = d.split(['.', '[']).next().unwrap_or("");
        top.is_empty() || CROSS_KEYS.contains(&top) || !top_level.contains(&top)
    });
    let job = validator.job(parsed.file, base_dir, overrides, complete);
    let mut errors = parsed.errors;
    // A value that could not be read was left out (or stood in for); what the checks say
    // about it would only repeat the error already found. A glob is matched in `cwd`, so it
    // is not judged without it.
    let cwd_dropped = parsed.dropped.iter().any(|d| d == "cwd");
    errors.extend(validator.found.into_inner().into_iter().filter(|d| {
        let key = d.key.as_deref().unwrap_or("");
        let repeats =
            parsed.dropped.iter().any(|t| overlaps(t, key)) || cwd_dropped && overlaps("glob", key);
        !(repeats || !complete && key.is_empty())
    }));
    match job {
        Some(job) if errors.is_empty() => Ok(job),
        _ => {
            // In file order; errors in `--set` arguments after the file's, as found.
            errors.sort_by_key(|d| {
                if d.file == shown {
                    (0, d.line, d.column)
                } else {
                    (1, 0, 0)
                }
            });
            Err(JobError::Invalid(errors))
        }
    }
}

/// Refuses a plan of more than `HUGE_PLAN` tasks unless `allow_huge`: such a plan is more
/// likely a mistake than a job, so `validate`, `plan` and `run` all say so.
pub fn check_size(job: &Job, allow_huge: bool) -> Result<(), JobError> {
    let tasks = job.tasks();
    if tasks <= crate::job::HUGE_PLAN || allow_huge {
        return Ok(());
    }
    let at = job.source.as_ref().map_or("matrix", Source::table);
    let text = &job.origin.text;
    let span = diagnostic::span_of(text, &[KeyPart::Key(at.to_owned())]);
    let message = format!("the plan has {tasks} tasks, more than 10^9");
    let help = "set a larger `chunk-size`, or pass --allow-huge if you mean it".to_owned();
    let shown = job.origin.path.display().to_string();
    let diagnostic = Diagnostic::new(&shown, text, span, message)
        .with_key(Some(at.to_owned()))
        .with_help(Some(help));
    Err(JobError::Invalid(vec![*diagnostic]))
}

/// Whether one key path is the other or lies inside it.
fn overlaps(a: &str, b: &str) -> bool {
    let inside = |outer: &str, inner: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    inside(a, b) || inside(b, a)
}

/// The keys the checks across keys read.
const CROSS_KEYS: [&str; 10] = [
    "name", "command", "cwd", "env", "seed", "range", "values", "lines", "glob", "matrix",
];

/// At most this many errors are reported from one job file.
const MAX_ERRORS: usize = 50;

/// A job file as deserialized, with the errors found on the way.
struct Parsed {
    file: JobFile,
    /// Values that could not be read, in file order.
    errors: Vec<Diagnostic>,
    /// The key paths of the values left out or stood in for, as `Diagnostic::key` writes them.
    dropped: Vec<String>,
}

/// The job file as written, with the `--set` values merged in. A value that cannot be read is
/// reported and left out (a required one is stood in for), and the rest is read again, so that
/// every such error in the file is found in one pass.
fn deserialize(shown: &str, text: &str, sets: &Sets) -> Result<Parsed, Vec<Diagnostic>> {
    use serde::Deserialize;
    let mut root = toml::de::DeTable::parse(text)
        .map_err(|e| vec![*serde_diagnostic(shown, text, &e, sets)])?;
    let span = root.span();
    sets.merge_into(root.get_mut());
    let mut table = root.into_inner();
    let mut errors = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    // The keys repaired so far, each with whether it was stood in for.
    let mut seen: Vec<(String, bool)> = Vec::new();
    loop {
        let attempt = toml::Spanned::new(span.clone(), table.clone());
        let error = match JobFile::deserialize(toml::de::Deserializer::from(attempt)) {
            Ok(file) => {
                return Ok(Parsed {
                    file,
                    errors,
                    dropped,
                });
            }
            Err(e) => e,
        };
        let diagnostic = serde_diagnostic(shown, text, &error, sets);
        let key = diagnostic.key.clone().unwrap_or_default();
        let missing = error
            .message()
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next());
        // A required key is missing because its value was left out: already reported.
        if !(missing.is_some() && dropped.contains(&key)) {
            errors.push(*diagnostic);
        }
        // The same repair again means the last one did not take: stop there.
        let repair = (key.clone(), missing.is_some());
        if seen.contains(&repair) || text.trim().is_empty() || errors.len() >= MAX_ERRORS {
            return Err(errors);
        }
        let repaired = match (missing, error.span()) {
            (Some(field), Some(at)) => stand_in(&mut table, &at, field),
            (None, Some(at)) => leave_out(&mut table, at.start),
            _ => false,
        };
        if !repaired {
            return Err(errors);
        }
        seen.push(repair);
        dropped.push(match missing {
            // What the checks say of a table with a stand-in value would be about the stand-in.
            Some(_) => key
                .rsplit_once('.')
                .map_or("", |(table, _)| table)
                .to_owned(),
            // The elements after one left out have moved: the whole array is out of the checks.
            None => strip_index(&key).to_owned(),
        });
        dropped.push(key);
    }
}

/// A key path without its last array index: `record-env[2]` is `record-env`.
fn strip_index(key: &str) -> &str {
    match key.strip_suffix(']').and_then(|k| k.rsplit_once('[')) {
        Some((array, index)) if index.bytes().all(|b| b.is_ascii_digit()) => array,
        _ => key,
    }
}

/// Removes the innermost key or array element of `table` whose span holds `offset`.
fn leave_out(table: &mut toml::de::DeTable<'_>, offset: usize) -> bool {
    use toml::de::DeValue;
    let mut found = None;
    for (i, (key, value)) in table.iter_mut().enumerate() {
        let inside = match value.get_mut() {
            DeValue::Table(inner) => leave_out(inner, offset),
            DeValue::Array(items) => {
                let mut hit = None;
                let mut nested = false;
                for (j, item) in items.iter_mut().enumerate() {
                    if !item.span().contains(&offset) {
                        continue;
                    }
                    nested = true;
                    let inner = match item.get_mut() {
                        DeValue::Table(t) => leave_out(t, offset),
                        _ => false,
                    };
                    if !inner {
                        hit = Some(j);
                    }
                    break;
                }
                if let Some(at) = hit {
                    let kept: Vec<_> = items
                        .iter()
                        .enumerate()
                        .filter(|&(j, _)| j != at)
                        .map(|(_, item)| item.clone())
                        .collect();
                    *items = toml::de::DeArray::new();
                    for item in kept {
                        items.push(item);
                    }
                }
                nested
            }
            _ => false,
        };
        if inside {
            return true;
        }
        if key.span().contains(&offset) || value.span().contains(&offset) {
            found = Some(i);
            break;
        }
    }
    let Some(i) = found else { return false };
    let key = table.keys().nth(i).cloned().expect("an index of the table");
    table.remove(&key);
    true
}

/// Puts a value that reads in place of the missing required `field`, in the table whose span
/// is `at` (the whole file for the root), so that the rest of the file can be read.
fn stand_in(table: &mut toml::de::DeTable<'_>, at: &std::ops::Range<usize>, field: &str) -> bool {
    let value = match field {
        "command" => "x = \"true\"",
        "start" | "end" => "x = 0",
        "items" => "x = []",
        // Nothing can open it, and nothing is read.
        "file" => "x = \"/\\u0000\"",
        "pattern" => "x = \"\"",
        "initial" => "x = \"1s\"",
        _ => return false,
    };
    let Ok(parsed) = toml::de::DeTable::parse(value) else {
        return false;
    };
    let Some((_, value)) = parsed.into_inner().into_iter().next() else {
        return false;
    };
    let Some(target) = table_with_span(table, at) else {
        return false;
    };
    let key = toml::Spanned::new(
        at.start..at.start,
        std::borrow::Cow::Owned(field.to_owned()),
    );
    target.insert(key, value);
    true
}

/// The table whose span is `at`: one inside `table` with exactly that span, else `table`.
fn table_with_span<'t, 'i>(
    table: &'t mut toml::de::DeTable<'i>,
    at: &std::ops::Range<usize>,
) -> Option<&'t mut toml::de::DeTable<'i>> {
    use toml::de::DeValue;
    /// The indices of the tables down to the one with span `at`.
    fn find(table: &toml::de::DeTable<'_>, at: &std::ops::Range<usize>) -> Option<Vec<usize>> {
        table
            .values()
            .enumerate()
            .find_map(|(i, value)| match value.get_ref() {
                DeValue::Table(inner) if value.span() == *at => Some(vec![i]),
                DeValue::Table(inner) => find(inner, at).map(|mut rest| {
                    rest.insert(0, i);
                    rest
                }),
                _ => None,
            })
    }
    let Some(steps) = find(table, at) else {
        return Some(table);
    };
    let mut current = table;
    for i in steps {
        let (_, value) = current.iter_mut().nth(i)?;
        let DeValue::Table(inner) = value.get_mut() else {
            return None;
        };
        current = inner;
    }
    Some(current)
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
        let path: Vec<KeyPart> = key.split('.').map(|k| KeyPart::Key(k.to_owned())).collect();
        let help = misplaced_key_help(&path, &message)
            .or_else(|| unknown_field_help(&message))
            .or_else(|| slip_help(&path, &message));
        return overrides::diagnostic(arg, Some(local), message, Some(key)).with_help(help);
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
    let help = misplaced_key_help(&path, &message)
        .or_else(|| unknown_field_help(&message))
        .or_else(|| slip_help(&path, &message))
        .or_else(|| {
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
    if message.starts_with("invalid length ") && message.contains("expected struct ") {
        return "expected a table, found an array".to_owned();
    }
    match message.split_once("expected struct ") {
        Some((head, _)) => format!("{head}expected a table"),
        None => message,
    }
}

/// For a key that is unknown where it is but known in another table: where it belongs.
fn misplaced_key_help(path: &[KeyPart], message: &str) -> Option<String> {
    let unknown = message.strip_prefix("unknown field `")?.split('`').next()?;
    let here = match path {
        [KeyPart::Key(table), _] => table.as_str(),
        _ => "",
    };
    let homes: Vec<String> = TABLE_KEYS
        .iter()
        .filter(|(table, keys)| *table != here && keys.contains(&unknown))
        .map(|(table, _)| {
            if table.is_empty() {
                "the top level, above every table".to_owned()
            } else {
                format!("`[{table}]`")
            }
        })
        .collect();
    match homes.as_slice() {
        [] => None,
        [one] => Some(format!("`{unknown}` belongs in {one}")),
        [first @ .., last] => Some(format!(
            "`{unknown}` belongs in the item source's table: {} or {last}",
            first.join(", ")
        )),
    }
}

/// Hints for common slips: a duration without a unit, or as a number; a source written as an
/// array.
fn slip_help(path: &[KeyPart], message: &str) -> Option<String> {
    if let Some(found) = message
        .strip_suffix(", which has no unit")
        .and_then(|m| m.rsplit_once("found \""))
        .map(|(_, n)| n.trim_end_matches('"'))
    {
        return Some(format!("`\"{found}\"`: add a unit, e.g. `\"{found}s\"`"));
    }
    if message.contains("expected a duration")
        && let Some(number) = message
            .strip_prefix("invalid type: integer `")
            .and_then(|m| m.split('`').next())
    {
        return Some(format!(
            "write a duration as a string with a unit, e.g. `\"{number}s\"`"
        ));
    }
    let source = match path {
        [KeyPart::Key(key)] => crate::job::file::SOURCES.iter().find(|s| *s == key)?,
        _ => return None,
    };
    if !message.contains("expected a table") {
        return None;
    }
    Some(match *source {
        "range" => "write `[range]` with `start` and `end`, e.g. `range = { start = 0, end = 10 }`"
            .to_owned(),
        "values" => {
            "write `[values]` with `items`, e.g. `values = { items = [\"a\", \"b\"] }`".to_owned()
        }
        other => format!("write `[{other}]` as a table"),
    })
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": the nearest known key, if any.
fn unknown_field_help(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field ")?;
    let mut names = rest.split('`').skip(1).step_by(2);
    let unknown = names.next()?;
    let nearest = suggest::nearest(unknown, names)?;
    Some(format!("did you mean `{nearest}`?"))
}

/// A check failed, and its errors are in `Validator::found`.
pub(super) struct Reported;

/// A template and the key path it was read from, e.g. `["command", "[2]"]`.
pub(super) type PlacedTemplate<'a> = (Vec<String>, &'a Template);

/// A check's result: the value, or the error pointing at it.
pub(super) type Check<T> = Result<T, Box<Diagnostic>>;

pub(super) struct Validator {
    origin: JobSource,
    sets: Sets,
    /// The errors found so far.
    found: RefCell<Vec<Diagnostic>>,
}

impl Validator {
    /// The value of a check, or `None` with its error kept for the report of every error.
    pub(super) fn collect<T>(&self, check: Check<T>) -> Option<T> {
        check.map_err(|e| self.found.borrow_mut().push(*e)).ok()
    }

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

    /// The job, or `None` with every error found kept in `found`: each key is checked on its
    /// own, and a check that needs another key's value runs only when that value is good.
    ///
    /// `complete` says that every value of the file was read: the checks across keys (which
    /// placeholders have values, whether items fit in an argument) run only then, since a
    /// value left out would make them report what is not wrong.
    fn job(
        &self,
        file: JobFile,
        base_dir: PathBuf,
        overrides: &Overrides,
        complete: bool,
    ) -> Option<Job> {
        let name = self.collect(self.name(file.name.as_deref()));
        let matrix = self.collect(self.matrix(file.matrix.as_ref()));
        // Placeholders name the matrix's keys even when the matrix has an error.
        let params = match (&matrix, &file.matrix) {
            (Some(matrix), _) => matrix.as_ref().map(|m| m.keys.clone()).unwrap_or_default(),
            (None, Some(raw)) => raw
                .0
                .keys()
                .filter(|k| !["include", "exclude"].contains(&k.as_str()))
                .cloned()
                .collect(),
            (None, None) => Vec::new(),
        };
        let command = self.collect(self.command(&file.command, &params));
        let cwd = match &file.cwd {
            Some(cwd) => self.collect(self.cwd(cwd, &base_dir, &params)).map(Some),
            None => Some(None),
        };
        let env = self.env(&file.env, &params);
        let env_pass = self.collect(self.env_pass(&file));
        let seed = self.collect(self.seed(file.seed));
        let record_env = self.collect(self.record_env(file.record_env.as_ref()));
        // A glob is matched in `cwd`: with a `cwd` that failed its check, not at all.
        let source = if cwd.is_none() && file.glob.is_some() {
            None
        } else {
            self.collect(self.source(
                &file,
                &base_dir,
                cwd.as_ref().and_then(Option::as_ref),
                overrides,
            ))
        };
        if let (
            Some(name),
            Some(command),
            Some(cwd),
            Some(env),
            Some(source),
            Some(seed),
            Some(matrix),
        ) = (&name, &command, &cwd, &env, &source, &seed, &matrix)
            && complete
        {
            let templates = task_templates(command, cwd.as_ref(), env);
            if self
                .collect(self.placeholders_have_values(&templates, source.as_ref(), *seed))
                .is_some()
            {
                self.collect(self.items_fit(
                    &templates,
                    command,
                    source.as_ref(),
                    matrix.as_ref(),
                    name,
                ));
            }
        }
        let pool = self.pool(&file, overrides);
        let report = self.run_dir(file.report.dir.as_deref(), &base_dir, overrides);
        let keep = self.collect(self.keep(file.report.keep));
        let slurm = self.slurm(file.slurm).ok();
        let (report_base, report_dir) = report?;
        let (env_clear, env_pass) = env_pass?;
        Some(Job {
            name: name?,
            description: file.description,
            origin: self.origin.clone(),
            base_dir,
            command: command?,
            cwd: cwd?,
            env: env?,
            env_clear,
            env_pass,
            source: source?,
            matrix: matrix?,
            seed: seed?,
            record_env: record_env?,
            set: overrides.set.clone(),
            pool: pool?,
            report_base,
            report_dir,
            keep: keep?,
            slurm: slurm?,
        })
    }

    /// Where the run directory goes: `--run-dir`, `[report] dir` or the default, and the folder
    /// it is relative to.
    fn run_dir(
        &self,
        written: Option<&str>,
        base_dir: &Path,
        overrides: &Overrides,
    ) -> Option<(PathBuf, Template)> {
        match (&overrides.run_dir, written) {
            (Some(dir), _) => self.collect(
                Template::parse(&dir.to_string_lossy(), &Placeholder::RUN)
                    .map_err(|e| {
                        Diagnostic::new("--run-dir", "", None, e.message).with_help(e.help)
                    })
                    .map(|template| {
                        let here = std::env::current_dir().unwrap_or_else(|_| base_dir.to_owned());
                        (here, template)
                    }),
            ),
            (None, Some(dir)) => self
                .collect(self.template_of(&["report", "dir"], dir, &Placeholder::RUN, &[]))
                .map(|template| (base_dir.to_owned(), template)),
            (None, None) => {
                let template =
                    Template::parse(DEFAULT_REPORT_DIR, &Placeholder::RUN).expect("valid default");
                Some((base_dir.to_owned(), template))
            }
        }
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

    /// `[slurm]`, every key checked.
    fn slurm(
        &self,
        slurm: Option<crate::job::file::SlurmFile>,
    ) -> Result<Option<crate::job::Slurm>, Reported> {
        let Some(s) = slurm else {
            return Ok(None);
        };
        let mut good = true;
        for (key, value) in [
            ("partition", &s.partition),
            ("account", &s.account),
            ("qos", &s.qos),
        ] {
            if let Some(v) = value
                .as_deref()
                .filter(|v| !grammar::SLURM_NAME.is_match(v))
            {
                let message = format!(
                    "expected a Slurm name (no spaces, not starting with `-`), found {v:?}"
                );
                self.found
                    .borrow_mut()
                    .push(*self.error(&["slurm", key], None, message));
                good = false;
            }
        }
        let extra_args = s.extra_args.unwrap_or_default();
        for (i, bad) in extra_args
            .iter()
            .enumerate()
            .filter(|(_, a)| !grammar::SBATCH_OPTION.is_match(a))
        {
            let message = format!("expected sbatch options such as \"--mem=2G\", found {bad:?}");
            let at = format!("[{i}]");
            self.found
                .borrow_mut()
                .push(*self.error(&["slurm", "extra-args", &at], None, message));
            good = false;
        }
        if !good {
            return Err(Reported);
        }
        Ok(Some(crate::job::Slurm {
            partition: s.partition,
            account: s.account,
            qos: s.qos,
            extra_args,
        }))
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
                // Every argument is checked; the first error is returned, the others kept.
                let mut first = None;
                let mut templates = Vec::with_capacity(argv.len());
                for (i, arg) in argv.iter().enumerate() {
                    match self.template(&["command", &format!("[{i}]")], arg, params) {
                        Ok(t) => templates.push(t),
                        Err(e) if first.is_none() => first = Some(e),
                        Err(e) => self.found.borrow_mut().push(*e),
                    }
                }
                match first {
                    Some(e) => Err(e),
                    None => Ok(Command::Argv(templates)),
                }
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

    /// `[env]`, every entry checked.
    fn env(
        &self,
        env: &BTreeMap<String, String>,
        params: &[String],
    ) -> Option<Vec<(String, Template)>> {
        let entries: Vec<Option<(String, Template)>> = env
            .iter()
            .map(|(name, value)| {
                self.collect((|| {
                    if !grammar::VARIABLE.is_match(name) {
                        return Err(self.error(&["env", name], None, format!("expected an environment variable name without `=` or NUL, found {name:?}")));
                    }
                    if value.contains('\0') {
                        let message = "an environment value cannot contain NUL".to_owned();
                        return Err(self.error(&["env", name], None, message));
                    }
                    Ok((name.clone(), self.template(&["env", name], value, params)?))
                })())
            })
            .collect();
        entries.into_iter().collect()
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
