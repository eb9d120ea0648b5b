//! The job file as written: serde types that mirror the TOML exactly, and the JSON Schema made from
//! them. Nothing here is interpreted; `job::load` turns a `JobFile` into a validated `Job`.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::job::duration::DurationValue;
pub use crate::job::duration::MAX_DURATION;
use crate::job::policy::{HaltMode, HaltSpec, Overlap, RetryDelaySpec, RetryOnItem};
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// A job file, key for key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "poolrun job file")]
pub struct JobFile {
    /// The job's name, `[A-Za-z0-9._-]+`; default: the job file's stem.
    pub name: Option<String>,
    /// What the job does, for people.
    pub description: Option<String>,
    /// A string run by `/bin/sh -c` with every placeholder value shell-quoted, or an array run
    /// directly with each placeholder expanded inside its own argument.
    pub command: CommandSpec,
    /// The tasks' working directory, relative to the job file's folder; default: that folder.
    pub cwd: Option<String>,
    /// Variables added to the inherited environment; values may hold placeholders.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Start tasks from an empty environment (plus `env-pass`, `env` and the `POOLRUN_*`
    /// variables) instead of poolrun's own; default false.
    pub env_clear: Option<bool>,
    /// With `env-clear`: the variables passed on from poolrun's environment, e.g. `["PATH", "HOME"]`.
    pub env_pass: Option<Vec<String>>,
    /// Integers to run over, cut into chunks: one task per chunk. A job has at most one item
    /// source: `[range]`, `[values]`, `[lines]` or `[glob]`.
    pub range: Option<RangeFile>,
    /// Strings and numbers to run over, in order.
    pub values: Option<ValuesFile>,
    /// One item per line of a file (or of stdin, `"-"`).
    pub lines: Option<LinesFile>,
    /// The files matching a pattern, sorted byte-wise.
    pub glob: Option<GlobFile>,
    /// Parameters: every combination of their values runs every chunk of the source, like a CI
    /// matrix, with `include` and `exclude` as GitHub Actions defines them.
    pub matrix: Option<MatrixFile>,
    /// The base of every task's `{seed}`, which is derived from it and the task's items and
    /// parameters.
    #[schemars(range(min = 0))]
    pub seed: Option<i64>,
    /// Environment variables whose values go into the report's provenance (no other value ever
    /// does).
    pub record_env: Option<Vec<String>>,
    /// How tasks run.
    #[serde(default)]
    pub pool: PoolFile,
    /// Where the run directory goes.
    #[serde(default)]
    pub report: ReportFile,
    /// Run the tasks as Slurm job arrays instead of on this machine (`--backend local` runs
    /// them here anyway). The run directory must be on storage the compute nodes share.
    pub slurm: Option<SlurmFile>,
}

/// `[range]`: half-open like Python's `range(start, end, step)`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RangeFile {
    /// The first item.
    pub start: i64,
    /// The end, exclusive.
    pub end: i64,
    /// The distance between items; negative counts down (then `start > end`); default 1.
    pub step: Option<i64>,
    /// Items per task; default 1.
    #[schemars(range(min = 1))]
    pub chunk_size: Option<i64>,
}

/// `[values]`: the items, in order.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ValuesFile {
    /// Strings and numbers; each is one item.
    #[schemars(with = "Vec<Scalar>")]
    pub items: Vec<toml::Value>,
    /// Items per task; default 1.
    #[schemars(range(min = 1))]
    pub chunk_size: Option<i64>,
}

/// `[lines]`: one item per line.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LinesFile {
    /// The file, relative to the job file's folder, or `"-"` for stdin. `\n` or `\r\n` ends a
    /// line; empty lines are skipped.
    pub file: String,
    /// Items per task; default 1.
    #[schemars(range(min = 1))]
    pub chunk_size: Option<i64>,
}

/// `[glob]`: the matching files.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GlobFile {
    /// A pattern such as `data/**/*.csv`, relative to the tasks' working directory; `*` and `?`
    /// do not match `/` or a leading `.`. Matching nothing is an error.
    #[schemars(length(min = 1))]
    pub pattern: String,
    /// Items per task; default 1.
    #[schemars(range(min = 1))]
    pub chunk_size: Option<i64>,
}

/// `[matrix]`: each key a parameter with its values; `include` and `exclude` as GitHub Actions.
/// Checked key by key in `job::load`, which keeps the keys' order (the first is outermost).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct MatrixFile(#[schemars(with = "MatrixSchema")] pub toml::Table);

/// The shape of `[matrix]`, for the schema.
#[derive(JsonSchema)]
#[allow(dead_code, reason = "only describes the schema")]
struct MatrixSchema {
    /// Combinations to extend, or to add when they match none.
    include: Option<Vec<BTreeMap<String, Scalar>>>,
    /// Combinations to remove: each entry removes every combination it matches.
    exclude: Option<Vec<BTreeMap<String, Scalar>>>,
    /// Each parameter's values.
    #[serde(flatten)]
    params: BTreeMap<String, Vec<Scalar>>,
}

/// A string, number or boolean: an item or a parameter value.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "only describes the schema")]
enum Scalar {
    /// Text.
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// true or false.
    Boolean(bool),
}

/// `[pool]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PoolFile {
    /// How many tasks run at once: an integer >= 1, "auto" (the available CPUs, the default) or
    /// "N%" of the available CPUs.
    pub processes: Option<Processes>,
    /// The longest one attempt of a task may run, e.g. "30s"; default: no limit.
    pub timeout: Option<DurationValue>,
    /// After a timeout, how long the task's process group has between SIGTERM and SIGKILL;
    /// default "5s".
    pub grace_period: Option<DurationValue>,
    /// Attempts after the first for a task whose attempt failed; default 0.
    #[schemars(range(min = 0))]
    pub retries: Option<i64>,
    /// The wait before a retry: "2s", or { initial = "1s", factor = 2, max = "1m", jitter = "20%" };
    /// default none.
    pub retry_delay: Option<RetryDelaySpec>,
    /// Which attempts are retried: `"failed"`, `"timed_out"`, `"spawn_failed"` and exit codes;
    /// default `["failed", "timed_out"]`.
    pub retry_on: Option<Vec<RetryOnItem>>,
    /// When to stop starting tasks: "never" (default), "first-failure", { max-failures = N } or
    /// { max-failure-rate = "10%", after = N }.
    pub halt: Option<HaltSpec>,
    /// On a halt, "soon" (default) lets running tasks finish; "now" stops them.
    pub halt_mode: Option<HaltMode>,
    /// When another run of this job holds its lock: "skip" (default) exits 75, "wait" waits.
    pub overlap: Option<Overlap>,
    /// The whole run's time limit, e.g. "2h"; past it, running tasks are stopped and the run is
    /// halted. Default: none.
    pub deadline: Option<DurationValue>,
    /// Each process of a task may map at most this much memory (`RLIMIT_AS`): "512MiB", "2GiB";
    /// default: no limit.
    #[schemars(pattern(r"^[0-9]+\s*([KMGT]i?B|B)?$"))]
    pub memory_limit: Option<String>,
    /// A task may have at most this many processes at once (a pids cgroup where poolrun can
    /// make one, else `RLIMIT_NPROC`); default: no limit.
    #[schemars(range(min = 1))]
    pub max_processes: Option<i64>,
}

/// `[report]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReportFile {
    /// The run directory, relative to the job file's folder; may use `{name}` and `{run-id}`;
    /// default "runs/{name}/{run-id}".
    pub dir: Option<String>,
    /// After each run, remove the oldest runs of the job beside it so that this many remain
    /// (the new one among them); default: keep every run.
    #[schemars(range(min = 1))]
    pub keep: Option<i64>,
}

/// `[slurm]`: how the arrays are submitted.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SlurmFile {
    /// `sbatch --partition`; default: the cluster's default partition.
    pub partition: Option<String>,
    /// `sbatch --account`.
    pub account: Option<String>,
    /// `sbatch --qos`.
    pub qos: Option<String>,
    /// More `sbatch` arguments, one per element, e.g. `["--mem=2G", "--cpus-per-task=2"]`.
    pub extra_args: Option<Vec<String>>,
}

/// `command`: a shell string or an argv array.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum CommandSpec {
    /// Run by `/bin/sh -c`.
    Shell(String),
    /// Executed directly; the first element is the program.
    Argv(Vec<String>),
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
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(untagged)]
pub enum Processes {
    /// An explicit count, >= 1.
    Count(#[schemars(range(min = 1))] u32),
    /// `"auto"`, or `"N%"` of the available CPUs.
    Named(#[schemars(pattern(r"^(auto|[1-9][0-9]*%)$"))] String),
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
        if s == "auto" {
            return Ok(Self::Named(s.to_owned()));
        }
        // Plain digits with no sign or leading zero, as the schema's pattern says.
        let number = |digits: &str| {
            let plain = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0');
            plain.then(|| digits.parse::<u32>().ok()).flatten()
        };
        if let Some(pct) = s.strip_suffix('%') {
            return match number(pct) {
                Some(n) if n <= MAX_PERCENT => Ok(Self::Named(s.to_owned())),
                _ => Err(format!("expected {EXPECTED}, found \"{s}\"")),
            };
        }
        number(s)
            .map(Self::Count)
            .ok_or_else(|| format!("expected {EXPECTED}, found \"{s}\""))
    }
}

/// The largest `N%`: a hundred processes per CPU.
const MAX_PERCENT: u32 = 10_000;

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
