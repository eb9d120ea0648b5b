//! The job file as written: serde types that mirror the TOML exactly, and the JSON Schema made from
//! them. Nothing here is interpreted; `job::load` turns a `JobFile` into a validated `Job`.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;

use std::borrow::Cow;

use schemars::{Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::json;

use crate::job::duration::DurationValue;
pub use crate::job::duration::MAX_DURATION;
use crate::job::grammar;
use crate::job::policy::{HaltMode, HaltSpec, Overlap, RetryDelaySpec, RetryOnItem, duration};
use crate::job::template::Placeholder;

/// A job file, key for key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "poolrun job file", transform = job_rules)]
pub struct JobFile {
    /// The job's name: letters, digits, `.`, `_` and `-`. It names the run folders
    /// (`runs/NAME/`) and the lock. Default: the job file's name without `.toml`.
    #[schemars(pattern(grammar::NAME.pattern()), extend("examples" = ["nightly-resize"]))]
    pub name: Option<String>,
    /// What the job does, for people; shown by `poolrun plan` and kept in the report.
    #[schemars(extend("examples" = ["resize every photo to 1024px"]))]
    pub description: Option<String>,
    /// What each task runs. A string is run by `/bin/sh -c` with every placeholder value
    /// shell-quoted (`"convert {item} out/{item}.png"`); an array is run directly, each
    /// placeholder expanded inside its own argument (`["convert", "{item}", "out/{item}.png"]`).
    /// Placeholders: `{item}`, `{items}`, `{start}`, `{end}`, `{last}`, `{count}`, `{id}`,
    /// `{seed}`, `{name}`, `{run-id}` and the matrix's parameters.
    pub command: CommandSpec,
    /// The tasks' working directory, relative to the job file's folder; may hold placeholders.
    /// Default: the job file's folder.
    #[schemars(pattern(grammar::NO_NUL.pattern()), extend("examples" = ["data"]))]
    pub cwd: Option<String>,
    /// Variables added to the inherited environment; values may hold placeholders.
    #[serde(default)]
    #[schemars(
        extend("propertyNames" = {"type": "string", "pattern": grammar::VARIABLE.pattern()}),
        extend("additionalProperties" = {"type": "string", "pattern": grammar::NO_NUL.pattern()}),
        extend("examples" = [{"OMP_NUM_THREADS": "1", "INPUT": "{item}"}])
    )]
    pub env: BTreeMap<String, String>,
    /// Start tasks from an empty environment (plus `env-pass`, `env` and the `POOLRUN_*`
    /// variables) instead of poolrun's own. Default: false.
    #[schemars(extend("default" = false, "examples" = [true]))]
    pub env_clear: Option<bool>,
    /// With `env-clear = true`: the variables passed on from poolrun's environment.
    #[schemars(
        inner(pattern(grammar::VARIABLE.pattern())),
        extend("examples" = [["PATH", "HOME"]])
    )]
    pub env_pass: Option<Vec<String>>,
    /// Integers to run over, cut into chunks: one task per chunk. A job has at most one item
    /// source: `[range]`, `[values]`, `[lines]` or `[glob]`.
    #[schemars(extend("examples" = [{"start": 0, "end": 1000, "chunk-size": 100}]))]
    pub range: Option<RangeFile>,
    /// Strings and numbers to run over, in order, cut into chunks.
    #[schemars(extend("examples" = [{"items": ["small", "medium", "large"]}]))]
    pub values: Option<ValuesFile>,
    /// One item per line of a file (or of stdin, `"-"`), cut into chunks.
    #[schemars(extend("examples" = [{"file": "urls.txt", "chunk-size": 10}]))]
    pub lines: Option<LinesFile>,
    /// The files matching a pattern, sorted byte-wise, cut into chunks.
    #[schemars(extend("examples" = [{"pattern": "data/**/*.csv"}]))]
    pub glob: Option<GlobFile>,
    /// Parameters: every combination of their values runs every chunk of the source, like a CI
    /// matrix, with `include` and `exclude` as GitHub Actions defines them. The first key is
    /// the outermost loop.
    pub matrix: Option<MatrixFile>,
    /// The base of every task's `{seed}`, which is derived from it and the task's items and
    /// parameters. Default: none (then `{seed}` is an error).
    #[schemars(range(min = 0), extend("examples" = [42]))]
    pub seed: Option<i64>,
    /// Environment variables whose values go into the report's provenance (no other value ever
    /// does).
    #[schemars(
        inner(pattern(grammar::VARIABLE.pattern())),
        extend("examples" = [["CUDA_VISIBLE_DEVICES"]])
    )]
    pub record_env: Option<Vec<String>>,
    /// How tasks run: how many at once, time limits, retries, halting.
    #[serde(default)]
    #[schemars(extend("examples" = [{"processes": 4, "timeout": "30s", "retries": 2}]))]
    pub pool: PoolFile,
    /// Where the run directory goes, and how many runs are kept.
    #[serde(default)]
    #[schemars(extend("examples" = [{"dir": "runs/{name}/{run-id}", "keep": 30}]))]
    pub report: ReportFile,
    /// Run the tasks as Slurm job arrays instead of on this machine (`--backend local` runs
    /// them here anyway). The run directory must be on storage the compute nodes share.
    #[schemars(extend("examples" = [{"partition": "batch", "extra-args": ["--mem=2G"]}]))]
    pub slurm: Option<SlurmFile>,
}

/// Each table's keys (`""` is the top level), for the hint that says where a misplaced key
/// belongs; a test checks them against the schema.
pub const TABLE_KEYS: [(&str, &[&str]); 8] = [
    (
        "",
        &[
            "name",
            "description",
            "command",
            "cwd",
            "env",
            "env-clear",
            "env-pass",
            "range",
            "values",
            "lines",
            "glob",
            "matrix",
            "seed",
            "record-env",
            "pool",
            "report",
            "slurm",
        ],
    ),
    (
        "pool",
        &[
            "processes",
            "timeout",
            "grace-period",
            "retries",
            "retry-delay",
            "retry-on",
            "halt",
            "halt-mode",
            "overlap",
            "deadline",
            "memory-limit",
            "max-processes",
        ],
    ),
    ("report", &["dir", "keep"]),
    ("slurm", &["partition", "account", "qos", "extra-args"]),
    ("range", &["start", "end", "step", "chunk-size"]),
    ("values", &["items", "chunk-size"]),
    ("lines", &["file", "chunk-size"]),
    ("glob", &["pattern", "chunk-size"]),
];

/// The item sources: a job has at most one of them.
pub const SOURCES: [&str; 4] = ["range", "values", "lines", "glob"];

/// The rules across keys of the job file that a schema can state: at most one item source,
/// something to run over, `env-pass` only with `env-clear = true`.
fn job_rules(schema: &mut schemars::Schema) {
    let mut rules: Vec<serde_json::Value> = SOURCES
        .iter()
        .map(|source| {
            let others: serde_json::Map<String, serde_json::Value> = SOURCES
                .iter()
                .filter(|other| other != &source)
                .map(|other| ((*other).to_owned(), serde_json::Value::Bool(false)))
                .collect();
            json!({
                "if": {"properties": {*source: true}, "required": [source]},
                "then": {"properties": others},
            })
        })
        .collect();
    rules.push(json!({
        "if": {"properties": {"env-pass": true}, "required": ["env-pass"]},
        "then": {
            "properties": {"env-clear": {"const": true}},
            "required": ["env-clear"],
        },
    }));
    schema.insert("allOf".into(), rules.into());
    let something: Vec<serde_json::Value> = SOURCES
        .iter()
        .chain(&["matrix"])
        .map(|key| json!({"properties": {*key: true}, "required": [key]}))
        .collect();
    schema.insert("anyOf".into(), something.into());
}

/// `[range]`: half-open like Python's `range(start, end, step)`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RangeFile {
    /// The first item.
    #[schemars(extend("examples" = [0]))]
    pub start: i64,
    /// The end, exclusive: the last item is the last one before it.
    #[schemars(extend("examples" = [100]))]
    pub end: i64,
    /// The distance between items, not 0; a negative step counts down (then `start > end`).
    /// Default: 1.
    #[schemars(extend("not" = {"const": 0}, "default" = 1, "examples" = [10, -1]))]
    pub step: Option<i64>,
    /// Items per task. Default: 1.
    #[schemars(range(min = 1), extend("default" = 1, "examples" = [100]))]
    pub chunk_size: Option<i64>,
}

/// `[values]`: the items, in order.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ValuesFile {
    /// Strings, numbers and booleans; each is one item, on one line.
    #[schemars(with = "Vec<Item>", extend("examples" = [["small", "medium", "large"]]))]
    pub items: Vec<toml::Value>,
    /// Items per task. Default: 1.
    #[schemars(range(min = 1), extend("default" = 1, "examples" = [10]))]
    pub chunk_size: Option<i64>,
}

/// `[lines]`: one item per line.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LinesFile {
    /// The file, relative to the job file's folder, or `"-"` for stdin. `\n` or `\r\n` ends a
    /// line; empty lines are skipped.
    #[schemars(pattern(grammar::NO_NUL.pattern()), extend("examples" = ["inputs.txt", "-"]))]
    pub file: String,
    /// Items per task. Default: 1.
    #[schemars(range(min = 1), extend("default" = 1, "examples" = [10]))]
    pub chunk_size: Option<i64>,
}

/// `[glob]`: the matching files.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GlobFile {
    /// A pattern such as `data/**/*.csv`, relative to the tasks' working directory; `*` and `?`
    /// do not match `/` or a leading `.`. Matching nothing is an error.
    #[schemars(
        length(min = 1),
        pattern(grammar::NO_NUL.pattern()),
        extend("examples" = ["data/**/*.csv"])
    )]
    pub pattern: String,
    /// Items per task. Default: 1.
    #[schemars(range(min = 1), extend("default" = 1, "examples" = [10]))]
    pub chunk_size: Option<i64>,
}

/// `[matrix]`: each key a parameter with its values; `include` and `exclude` as GitHub Actions.
/// Checked key by key in `job::load`, which keeps the keys' order (the first is outermost).
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct MatrixFile(pub toml::Table);

impl JsonSchema for MatrixFile {
    fn schema_name() -> Cow<'static, str> {
        "Matrix".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let builtins: Vec<&str> = Placeholder::ALL
            .iter()
            .filter_map(|p| p.builtin_name())
            .collect();
        let name = json!({
            "type": "string",
            "pattern": grammar::PARAMETER.pattern(),
            "not": {"enum": builtins},
        });
        let value = Param::value_schema();
        let entries = |description: &str| {
            json!({
                "description": description,
                "type": "array",
                "items": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": name,
                    "additionalProperties": value,
                },
                "examples": [[{"lr": 0.1, "batch": 64}]],
            })
        };
        json_schema!({
            "type": "object",
            "properties": {
                "include": entries("Combinations to extend, or to add when they match none: each \
                    entry adds its values to every combination whose values it agrees with."),
                "exclude": entries("Combinations to remove: each entry removes every combination \
                    it matches."),
            },
            "propertyNames": name,
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "items": value,
                "description": "A parameter and the values it takes; `{name}` in a command is \
                    its value, and `POOLRUN_PARAM_NAME` too.",
            },
            // A parameter, or an `include` entry: else the matrix has no combination.
            "anyOf": [
                {
                    "properties": {"include": {"type": "array", "minItems": 1}},
                    "required": ["include"],
                },
                {"not": {"propertyNames": {"type": "string", "enum": ["include", "exclude"]}}},
            ],
            "examples": [{"lr": [0.1, 0.01], "model": ["small", "large"]}],
        })
    }
}

/// An item of `[values]`: a string on one line, a number or a boolean.
struct Item;

impl JsonSchema for Item {
    fn schema_name() -> Cow<'static, str> {
        "Item".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        scalar(grammar::ITEM.pattern())
    }
}

/// A matrix parameter's value: a string, a number or a boolean.
struct Param;

impl Param {
    fn value_schema() -> Schema {
        scalar(grammar::NO_NUL.pattern())
    }
}

/// A string spelled as `pattern` says, a number or a boolean.
fn scalar(pattern: &str) -> Schema {
    json_schema!({
        "if": {"type": "string"},
        "then": {"type": "string", "pattern": pattern},
        "else": {"anyOf": [{"type": "number"}, {"type": "boolean"}]},
    })
}

/// `[pool]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PoolFile {
    /// How many tasks run at once: an integer from 1 to 4096, `"auto"` (the available CPUs)
    /// or `"N%"` of the available CPUs. Default: `"auto"`.
    #[schemars(extend("default" = "auto", "examples" = [4, "50%"]))]
    pub processes: Option<Processes>,
    /// The longest one attempt of a task may run; past it, the task's process group gets
    /// SIGTERM, then SIGKILL after `grace-period`. Default: no limit.
    #[serde(default)]
    #[schemars(
        schema_with = "positive_duration",
        extend("examples" = ["30s", "1m 30s", "2h"])
    )]
    pub timeout: Option<DurationValue>,
    /// After a timeout or a stop, how long the task's process group has between SIGTERM and
    /// SIGKILL. Default: `"5s"`.
    #[serde(default)]
    #[schemars(
        schema_with = "duration",
        extend("default" = "5s", "examples" = ["10s"])
    )]
    pub grace_period: Option<DurationValue>,
    /// Attempts after the first for a task whose attempt failed, from 0 to 1000. Default: 0.
    #[schemars(range(min = 0, max = grammar::MAX_RETRIES), extend("default" = 0, "examples" = [2]))]
    pub retries: Option<i64>,
    /// The wait before a retry: a duration such as `"2s"`, or a growing one:
    /// `{ initial = "1s", factor = 2, max = "1m", jitter = "20%" }`. Default: none.
    #[schemars(extend("examples" = ["2s", {"initial": "1s", "factor": 2, "max": "1m"}]))]
    pub retry_delay: Option<RetryDelaySpec>,
    /// Which failed attempts are retried: `"failed"` (any), `"timed_out"`, `"spawn_failed"`
    /// and exit codes from 0 to 255. Default: `["failed", "timed_out"]`.
    #[schemars(extend("default" = ["failed", "timed_out"], "examples" = [["timed_out", 75]]))]
    pub retry_on: Option<Vec<RetryOnItem>>,
    /// When to stop starting tasks: `"never"`, `"first-failure"`, `{ max-failures = N }` or
    /// `{ max-failure-rate = "10%", after = N }`. Default: `"never"`.
    #[schemars(extend("default" = "never", "examples" = ["first-failure", {"max-failures": 3}]))]
    pub halt: Option<HaltSpec>,
    /// On a halt: `"soon"` lets running tasks finish, `"now"` stops them. Default: `"soon"`.
    #[schemars(extend("default" = "soon", "examples" = ["now"]))]
    pub halt_mode: Option<HaltMode>,
    /// When another run of this job holds its lock: `"skip"` exits 75 at once, `"wait"` waits
    /// for it (counting against `deadline`). Default: `"skip"`.
    #[schemars(extend("default" = "skip", "examples" = ["wait"]))]
    pub overlap: Option<Overlap>,
    /// The whole run's time limit; past it, running tasks are stopped and the run is halted.
    /// Default: none.
    #[serde(default)]
    #[schemars(
        schema_with = "positive_duration",
        extend("examples" = ["2h", "30m"])
    )]
    pub deadline: Option<DurationValue>,
    /// Each process of a task may map at most this much memory (`RLIMIT_AS`), at least 1 MiB:
    /// a number of bytes, or one with a unit, `KiB` to `TiB` (powers of 1024) or `KB` to `TB`
    /// (powers of 1000). Default: no limit.
    #[schemars(
        pattern(grammar::MEMORY_SIZE.pattern()),
        extend("examples" = ["512MiB", "2GiB"])
    )]
    pub memory_limit: Option<String>,
    /// A task may have at most this many processes at once (a pids cgroup where poolrun can
    /// make one, else `RLIMIT_NPROC`). Default: no limit.
    #[schemars(range(min = 1, max = u32::MAX), extend("examples" = [64]))]
    pub max_processes: Option<i64>,
}

/// The schema of a duration above zero.
fn positive_duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": grammar::POSITIVE_DURATION.pattern()})
}

/// `[report]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReportFile {
    /// The run directory, relative to the job file's folder; may use `{name}` and `{run-id}`.
    /// Default: `"runs/{name}/{run-id}"`.
    #[schemars(
        pattern(grammar::NO_NUL.pattern()),
        extend("default" = "runs/{name}/{run-id}", "examples" = ["/scratch/runs/{name}/{run-id}"])
    )]
    pub dir: Option<String>,
    /// After each run, remove the oldest runs of the job beside it so that this many remain
    /// (the new one among them), from 1 to 1000000. Default: keep every run.
    #[schemars(range(min = 1, max = grammar::MAX_KEEP), extend("examples" = [30]))]
    pub keep: Option<i64>,
}

/// `[slurm]`: how the arrays are submitted.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SlurmFile {
    /// `sbatch --partition`. Default: the cluster's default partition.
    #[schemars(pattern(grammar::SLURM_NAME.pattern()), extend("examples" = ["batch"]))]
    pub partition: Option<String>,
    /// `sbatch --account`. Default: the user's default account.
    #[schemars(pattern(grammar::SLURM_NAME.pattern()), extend("examples" = ["proj42"]))]
    pub account: Option<String>,
    /// `sbatch --qos`. Default: the account's default QOS.
    #[schemars(pattern(grammar::SLURM_NAME.pattern()), extend("examples" = ["normal"]))]
    pub qos: Option<String>,
    /// More `sbatch` options, each starting with `-`, applied to every element.
    #[schemars(
        inner(pattern(grammar::SBATCH_OPTION.pattern())),
        extend("examples" = [["--mem=2G", "--cpus-per-task=2"]])
    )]
    pub extra_args: Option<Vec<String>>,
}

/// `command`: a shell string or an argv array.
#[derive(Debug, Clone)]
pub enum CommandSpec {
    /// Run by `/bin/sh -c`.
    Shell(String),
    /// Executed directly; the first element is the program.
    Argv(Vec<String>),
}

impl JsonSchema for CommandSpec {
    fn schema_name() -> Cow<'static, str> {
        "Command".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "if": {"type": "string"},
            "then": {"type": "string", "pattern": grammar::SHELL_COMMAND.pattern()},
            "else": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "pattern": grammar::NO_NUL.pattern()},
            },
            "examples": ["gzip -k {item}", ["python3", "train.py", "--lr", "{lr}"]],
        })
    }
}

impl<'de> Deserialize<'de> for CommandSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandVisitor;
        impl<'de> Visitor<'de> for CommandVisitor {
            type Value = CommandSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a command string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CommandSpec::Shell(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(CommandSpec::Argv(argv))
            }
        }
        deserializer.deserialize_any(CommandVisitor)
    }
}

/// `processes` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processes {
    /// An explicit count, >= 1.
    Count(u32),
    /// `"auto"`, or `"N%"` of the available CPUs.
    Named(String),
}

impl JsonSchema for Processes {
    fn schema_name() -> Cow<'static, str> {
        "Processes".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "if": {"type": "integer"},
            "then": {"type": "integer", "minimum": 1, "maximum": grammar::MAX_PROCESSES},
            "else": {"type": "string", "pattern": grammar::PROCESSES.pattern()},
        })
    }
}

impl Processes {
    /// The number of processes on a machine with `cpus` available CPUs.
    pub fn resolve(&self, cpus: usize) -> usize {
        match self {
            Self::Count(n) => *n as usize,
            Self::Named(s) => match s.strip_suffix('%') {
                // Validated by the deserializer: "N%" with N >= 1.
                Some(pct) => (cpus * pct.parse::<usize>().unwrap_or(100) / 100).max(1),
                None => cpus.max(1),
            },
        }
    }

    /// Parses the command-line or file spelling: `N`, `auto` or `N%`.
    pub fn parse(s: &str) -> Result<Self, String> {
        const EXPECTED: &str = r#"an integer >= 1, "auto" or "N%""#;
        // "auto" and "N%" are spelled as the schema says.
        if grammar::PROCESSES.is_match(s) {
            return Ok(Self::Named(s.to_owned()));
        }
        // A count (on the command line): plain digits, no sign or leading zero.
        let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
        plain
            .then(|| s.parse::<u32>().ok())
            .flatten()
            .map(Self::Count)
            .ok_or_else(|| format!("expected {EXPECTED}, found \"{s}\""))
    }
}

impl fmt::Display for Processes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Named(s) => write!(f, "\"{s}\""),
        }
    }
}

impl<'de> Deserialize<'de> for Processes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProcessesVisitor;
        impl Visitor<'_> for ProcessesVisitor {
            type Value = Processes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"an integer >= 1, "auto" or "N%""#)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u32::try_from(v) {
                    Ok(n) if n >= 1 => Ok(Processes::Count(n)),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                match u32::try_from(v) {
                    Ok(n) if n >= 1 => Ok(Processes::Count(n)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                // In a file a count is an integer; a string is "auto" or "N%".
                match Processes::parse(v) {
                    Ok(p @ Processes::Named(_)) => Ok(p),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(ProcessesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::Processes;

    #[test]
    fn processes_resolve_against_cpus() {
        assert_eq!(Processes::parse("3").unwrap().resolve(8), 3);
        assert_eq!(Processes::parse("auto").unwrap().resolve(8), 8);
        assert_eq!(Processes::parse("50%").unwrap().resolve(8), 4);
        assert_eq!(Processes::parse("10%").unwrap().resolve(2), 1);
        assert_eq!(Processes::parse("200%").unwrap().resolve(2), 4);
        for bad in [
            "0", "-1", "0%", "x", "auto%", "", "+2%", "050%", "+3", "10001%",
        ] {
            assert!(Processes::parse(bad).is_err(), "{bad}");
        }
    }
}
