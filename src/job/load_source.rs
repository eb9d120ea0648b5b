//! Validation of what a job runs over: its item source, its `[matrix]`, `seed` and
//! `record-env`, and the placeholders that depend on them.

use std::num::NonZeroU64;
use std::path::Path;
use std::sync::Arc;

use crate::job::file::{JobFile, MatrixFile};
use crate::job::grammar;
use crate::job::load::{Check, Overrides, PlacedTemplate, Validator};
use crate::job::read_input;
use crate::job::source::{
    Combo, Glob, Items, Lines, List, Matrix, Param, Range, Source, count_repeats, scalar_text,
};
use crate::job::template::{Placeholder, Template};

/// The most combinations a matrix may have: each is a set of tasks, and all are held in memory.
pub const MAX_COMBINATIONS: usize = 1_000_000;

impl Validator {
    /// The one item source, if any; a job with neither a source nor a matrix is an error.
    pub(super) fn source(
        &self,
        file: &JobFile,
        base_dir: &Path,
        cwd: Option<&Template>,
        overrides: &Overrides,
    ) -> Check<Option<Source>> {
        let written: Vec<&str> = [
            file.range.as_ref().map(|_| "range"),
            file.values.as_ref().map(|_| "values"),
            file.lines.as_ref().map(|_| "lines"),
            file.glob.as_ref().map(|_| "glob"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let [first, second, ..] = written[..] {
            let message =
                format!("a job has one item source, but this one has [{first}] and [{second}]");
            let help = "run over several inputs with a [matrix] of parameters, or list the items in one source";
            return Err(self
                .error(&[second], None, message)
                .with_help(Some(help.into())));
        }
        if let Some(r) = &file.range {
            return Ok(Some(Source::Range(self.range(r)?)));
        }
        if let Some(values) = &file.values {
            let chunk_size = self.chunk_size("values", values.chunk_size)?;
            let mut items = Items::default();
            for (i, value) in values.items.iter().enumerate() {
                let at = format!("[{i}]");
                let path = ["values", "items", at.as_str()];
                let Some(text) = scalar_text(value) else {
                    let message = format!(
                        "expected a string, number or boolean, found {}",
                        value.type_str()
                    );
                    return Err(self.error(&path, None, message));
                };
                if let Some(bad) = text.find(['\n', '\0']) {
                    let what = if text.as_bytes()[bad] == b'\n' {
                        "a newline"
                    } else {
                        "NUL"
                    };
                    let message = format!("an item cannot hold {what}");
                    return Err(self.error(&path, None, message));
                }
                items.push(text.as_bytes());
            }
            return Ok(Some(Source::Values(List::new(Arc::new(items), chunk_size))));
        }
        if let Some(lines) = &file.lines {
            let chunk_size = self.chunk_size("lines", lines.chunk_size)?;
            let path = ["lines", "file"];
            let stdin = lines.file == "-";
            let file_path = (!stdin).then(|| base_dir.join(&lines.file));
            let items = match &overrides.snapshot {
                Some(items) => Arc::clone(items),
                None if stdin && overrides.job_from_stdin => {
                    let message =
                        "the job file was read from stdin, so its items cannot be too".to_owned();
                    let help = "pass the job file by name, or read the items from a file";
                    return Err(self
                        .error(&path, None, message)
                        .with_help(Some(help.into())));
                }
                None if stdin => {
                    let items = read_input::read_lines(std::io::stdin().lock())
                        .map_err(|e| self.error(&path, None, format!("stdin: {e}")))?;
                    Arc::new(items)
                }
                None => {
                    let name = file_path.as_deref().expect("a file");
                    let opened = std::fs::File::open(name).map_err(|e| {
                        self.error(&path, None, format!("cannot read {}: {e}", name.display()))
                            .with_help(Some(
                                "a relative `file` starts at the job file's folder".into(),
                            ))
                    })?;
                    let items = read_input::read_lines(opened)
                        .map_err(|e| self.error(&path, None, format!("{}: {e}", name.display())))?;
                    Arc::new(items)
                }
            };
            return Ok(Some(Source::Lines(Lines {
                file: file_path,
                list: List::new(items, chunk_size),
            })));
        }
        if let Some(glob) = &file.glob {
            let chunk_size = self.chunk_size("glob", glob.chunk_size)?;
            let path = ["glob", "pattern"];
            // Items are paths for the tasks, which run in `cwd`: the pattern is matched there.
            let dir = match cwd.and_then(Template::literal_text) {
                Some(cwd) => base_dir.join(cwd),
                None => base_dir.to_owned(),
            };
            let items = if let Some(items) = &overrides.snapshot {
                Arc::clone(items)
            } else {
                {
                    if glob.pattern.is_empty() || glob.pattern.contains('\0') {
                        let message = "expected a pattern such as \"data/*.csv\"".to_owned();
                        return Err(self.error(&path, None, message));
                    }
                    let items = read_input::glob(&dir, &glob.pattern)
                        .map_err(|e| self.error(&path, None, e))?;
                    if items.is_empty() {
                        let message =
                            format!("no file matches {:?} in {}", glob.pattern, dir.display());
                        let help = "the pattern is matched in the tasks' working directory (`cwd`, else the job file's folder); `*` does not match `/` or a leading `.`";
                        return Err(self
                            .error(&path, None, message)
                            .with_help(Some(help.into())));
                    }
                    Arc::new(items)
                }
            };
            return Ok(Some(Source::Glob(Glob {
                pattern: glob.pattern.clone(),
                dir,
                list: List::new(items, chunk_size),
            })));
        }
        if file.matrix.is_none() {
            let message = "the job has nothing to run over".to_owned();
            let help = "add an item source: [range], [values], [lines] or [glob], or a [matrix] of parameters";
            return Err(self.error(&[], None, message).with_help(Some(help.into())));
        }
        Ok(None)
    }

    fn chunk_size(&self, table: &str, value: Option<i64>) -> Check<NonZeroU64> {
        let size = value.unwrap_or(1);
        u64::try_from(size)
            .ok()
            .and_then(NonZeroU64::new)
            .ok_or_else(|| {
                self.error(
                    &[table, "chunk-size"],
                    None,
                    format!("expected an integer >= 1, found {size}"),
                )
            })
    }

    fn range(&self, r: &crate::job::file::RangeFile) -> Check<Range> {
        let step = r.step.unwrap_or(1);
        if step == 0 {
            return Err(self.error(
                &["range", "step"],
                None,
                "expected a non-zero integer, found 0".into(),
            ));
        }
        let chunk_size = self.chunk_size("range", r.chunk_size)?;
        let (start, end) = (i128::from(r.start), i128::from(r.end));
        let span = end - start;
        if span != 0 && (span > 0) != (step > 0) {
            let direction = if step > 0 { "up" } else { "down" };
            let message = format!(
                "step {step} counts {direction}, away from end {} (start is {})",
                r.end, r.start
            );
            let help = "use a negative step to count down (start > end), a positive one to count up; start = end is an empty range";
            return Err(self
                .error(&["range", "step"], None, message)
                .with_help(Some(help.into())));
        }
        let items = if span == 0 {
            0
        } else {
            (span.abs() + i128::from(step.unsigned_abs()) - 1) / i128::from(step.unsigned_abs())
        };
        let items = u64::try_from(items).expect("at most 2^64 items");
        if items > 0 {
            // `{end}` of the last chunk is `last + step`: it must fit in an i64 too.
            let after_last = start + i128::from(items) * i128::from(step);
            if i64::try_from(after_last).is_err() {
                let message =
                    format!("the last item's `{{end}}` ({after_last}) overflows a 64-bit integer");
                return Err(self.error(&["range", "end"], None, message));
            }
        }
        Ok(Range {
            start: r.start,
            end: r.end,
            step,
            chunk_size,
            items,
        })
    }

    /// `[matrix]`: every combination of the keys' values (the first key outermost), less what
    /// `exclude` matches, with `include` applied as GitHub Actions does: an entry extends every
    /// combination whose original values it agrees with, and is added as a combination of its
    /// own when it agrees with none.
    pub(super) fn matrix(&self, matrix: Option<&MatrixFile>) -> Check<Option<Matrix>> {
        let Some(MatrixFile(table)) = matrix else {
            return Ok(None);
        };
        let mut keys: Vec<String> = Vec::new();
        let mut values: Vec<Vec<Param>> = Vec::new();
        let (mut include, mut exclude) = (None, None);
        for (key, value) in table {
            match key.as_str() {
                "include" => include = Some(self.entries(key, value)?),
                "exclude" => exclude = Some(self.entries(key, value)?),
                _ => {
                    self.param_name(&["matrix", key], key, &keys)?;
                    let toml::Value::Array(list) = value else {
                        let message = format!(
                            "expected an array of values, found {}; a matrix key lists the values its parameter takes",
                            value.type_str()
                        );
                        return Err(self.error(&["matrix", key], None, message));
                    };
                    if list.is_empty() {
                        let message =
                            format!("`{key}` has no values, so the matrix has no combination");
                        return Err(self.error(&["matrix", key], None, message));
                    }
                    let shared: Arc<str> = Arc::from(key.as_str());
                    let params = list
                        .iter()
                        .enumerate()
                        .map(|(i, v)| self.param(&["matrix", key, &format!("[{i}]")], &shared, v))
                        .collect::<Check<Vec<_>>>()?;
                    keys.push(key.clone());
                    values.push(params);
                }
            }
        }
        let original = keys.len();
        let Some(mut combos) = product(&values) else {
            let message = format!("the matrix has more than {MAX_COMBINATIONS} combinations");
            return Err(self.error(&["matrix"], None, message));
        };
        for (i, entry) in exclude.unwrap_or_default().iter().enumerate() {
            for (key, _) in entry {
                if !keys.iter().take(original).any(|k| k == key.as_ref()) {
                    let message = if keys.is_empty() {
                        format!(
                            "`exclude` names `{key}`, but the matrix has no keys to exclude from"
                        )
                    } else {
                        format!(
                            "`exclude` names `{key}`, which is not a key of the matrix ({})",
                            keys.iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    return Err(self.error(
                        &["matrix", "exclude", &format!("[{i}]"), key],
                        None,
                        message,
                    ));
                }
            }
            combos.retain(|combo| !matches(combo, &keys, entry));
        }
        let include = include.unwrap_or_default();
        self.include_names(&keys, &include)?;
        // Only the matrix's own combinations are extended, never one an `include` added.
        let product = combos.len();
        for entry in include {
            apply_include(&mut keys, original, &mut combos, product, &entry);
        }
        let width = keys.len();
        for combo in &mut combos {
            combo.values.resize(width, None);
        }
        if combos.is_empty() {
            let message = if original == 0 {
                "the matrix is empty: it needs a key with values, or an `include` entry".to_owned()
            } else {
                "the matrix has no combination left: `exclude` removes every one".to_owned()
            };
            return Err(self.error(&["matrix"], None, message));
        }
        if combos.len() > MAX_COMBINATIONS {
            let message = format!("the matrix has more than {MAX_COMBINATIONS} combinations");
            return Err(self.error(&["matrix"], None, message));
        }
        count_repeats(&mut combos);
        Ok(Some(Matrix {
            keys,
            combos: combos.into_iter().map(Arc::new).collect(),
        }))
    }

    /// Keys that `include` adds must not be the same variable as another key.
    fn include_names(&self, keys: &[String], include: &[Entry]) -> Check<()> {
        let mut names = keys.to_vec();
        for (i, entry) in include.iter().enumerate() {
            for (key, _) in entry {
                if names.iter().any(|k| k == key.as_ref()) {
                    continue;
                }
                let path = ["matrix", "include", &format!("[{i}]"), key.as_ref()];
                self.param_name(&path, key, &names)?;
                names.push(key.to_string());
            }
        }
        Ok(())
    }

    /// The tables of `include` or `exclude`, each key a parameter name with one value.
    fn entries(&self, list: &str, value: &toml::Value) -> Check<Vec<Entry>> {
        let toml::Value::Array(entries) = value else {
            let message = format!(
                "expected an array of tables such as [{{ lr = 0.1 }}], found {}",
                value.type_str()
            );
            return Err(self.error(&["matrix", list], None, message));
        };
        entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let at = format!("[{i}]");
                let toml::Value::Table(table) = entry else {
                    let message = format!(
                        "expected a table such as {{ lr = 0.1 }}, found {}",
                        entry.type_str()
                    );
                    return Err(self.error(&["matrix", list, &at], None, message));
                };
                if table.is_empty() {
                    let message = if list == "exclude" {
                        "an empty `exclude` entry would remove every combination".to_owned()
                    } else {
                        "an empty `include` entry adds nothing".to_owned()
                    };
                    return Err(self.error(&["matrix", list, &at], None, message));
                }
                table
                    .iter()
                    .map(|(key, value)| {
                        let path = ["matrix", list, &at, key.as_str()];
                        self.param_name(&path, key, &[])?;
                        let shared: Arc<str> = Arc::from(key.as_str());
                        Ok((Arc::clone(&shared), self.param(&path, &shared, value)?))
                    })
                    .collect()
            })
            .collect()
    }

    /// A parameter name: usable as a placeholder and, upper-cased, as a variable name.
    fn param_name(&self, path: &[&str], key: &str, earlier: &[String]) -> Check<()> {
        if Placeholder::builtin(key).is_some() {
            let message =
                format!("matrix key `{key}` shadows the built-in placeholder `{{{key}}}`");
            let help = "rename the parameter, e.g. `my-{key}`";
            return Err(self
                .error(path, None, message)
                .with_help(Some(help.replace("{key}", key))));
        }
        let valid = grammar::PARAMETER.is_match(key);
        if !valid {
            let message = format!(
                "a matrix key is a placeholder name of letters, digits, `_` and `-`, found {key:?}"
            );
            return Err(self.error(path, None, message));
        }
        if let Some(other) = earlier.iter().find(|k| env_name(k) == env_name(key)) {
            let message = format!(
                "matrix keys `{other}` and `{key}` would both be the variable POOLRUN_PARAM_{}",
                env_name(key)
            );
            return Err(self.error(path, None, message));
        }
        Ok(())
    }

    fn param(&self, path: &[&str], key: &Arc<str>, value: &toml::Value) -> Check<Param> {
        let Some(text) = scalar_text(value) else {
            let message = format!(
                "expected a string, number or boolean, found {}",
                value.type_str()
            );
            return Err(self.error(path, None, message));
        };
        if text.contains('\0') {
            let message = "a parameter value cannot hold NUL".to_owned();
            return Err(self.error(path, None, message));
        }
        Ok(Param {
            key: Arc::clone(key),
            value: value.clone(),
            text,
        })
    }

    /// `seed`: a non-negative integer.
    pub(super) fn seed(&self, seed: Option<i64>) -> Check<Option<u64>> {
        seed.map(|s| {
            u64::try_from(s).map_err(|_| {
                self.error(
                    &["seed"],
                    None,
                    format!("expected an integer >= 0, found {s}"),
                )
            })
        })
        .transpose()
    }

    /// `record-env`: variable names.
    pub(super) fn record_env(&self, names: Option<&Vec<String>>) -> Check<Vec<String>> {
        let names = names.cloned().unwrap_or_default();
        self.variable_names("record-env", &names)?;
        Ok(names)
    }

    /// Placeholders that exist but have no value in this job: `{item}` with more than one item
    /// per chunk, item placeholders without a source, `{end}` without a range, `{seed}`
    /// without `seed`.
    pub(super) fn placeholders_have_values(
        &self,
        templates: &[PlacedTemplate<'_>],
        source: Option<&Source>,
        seed: Option<u64>,
    ) -> Check<()> {
        for (path, template) in templates {
            let problem = |p: Placeholder| -> Option<(String, &'static str)> {
                match (p, source) {
                    (
                        Placeholder::Item
                        | Placeholder::Items
                        | Placeholder::Start
                        | Placeholder::Last
                        | Placeholder::Count
                        | Placeholder::End,
                        None,
                    ) => Some((
                        format!("`{p}` has no value: the job has a [matrix] but no item source"),
                        "add [range], [values], [lines] or [glob], or use the matrix's parameters",
                    )),
                    (Placeholder::Item, Some(s)) if s.chunk_size().get() > 1 => Some((
                        format!(
                            "`{{item}}` is a chunk's only item, but chunk-size = {} puts several in a chunk",
                            s.chunk_size()
                        ),
                        "use `{items}` for all of them (or `{start}` and `{last}`), or chunk-size = 1",
                    )),
                    (Placeholder::End, Some(s)) if !matches!(s, Source::Range(_)) => Some((
                        format!(
                            "`{{end}}` has a value only with [range], and this job has [{}]",
                            s.table()
                        ),
                        "use `{last}` for the chunk's last item",
                    )),
                    (Placeholder::Seed, _) if seed.is_none() => Some((
                        "`{seed}` needs a base seed: set `seed = N` at the top of the job file"
                            .to_owned(),
                        "each task's seed is derived from the base seed and the task's items and parameters",
                    )),
                    _ => None,
                }
            };
            for p in Placeholder::ALL {
                if !template.uses(p) {
                    continue;
                }
                if let Some((message, help)) = problem(p) {
                    let path: Vec<&str> = path.iter().map(String::as_str).collect();
                    return Err(self
                        .error(&path, template.place_of(p), message)
                        .with_help(Some(help.to_owned())));
                }
            }
        }
        Ok(())
    }
}

/// One `include` or `exclude` entry: parameters and values.
type Entry = Vec<(Arc<str>, Param)>;

/// Applies one `include` entry as GitHub Actions does: it extends every one of the first
/// `product` combinations (the matrix's own) whose original values it agrees with (values an
/// earlier `include` added it may overwrite), and is added as a combination of its own when it
/// agrees with none. Keys it brings are added to `keys`.
fn apply_include(
    keys: &mut Vec<String>,
    original: usize,
    combos: &mut Vec<Combo>,
    product: usize,
    entry: &Entry,
) {
    for (key, _) in entry {
        if !keys.iter().any(|k| k == key.as_ref()) {
            keys.push(key.to_string());
        }
    }
    let index = |key: &str| keys.iter().position(|k| k == key).expect("added");
    let width = keys.len();
    let mut extended = false;
    for combo in combos.iter_mut().take(product) {
        combo.values.resize(width, None);
        let agrees = entry.iter().all(|(key, param)| {
            let k = index(key);
            k >= original
                || combo.values[k]
                    .as_ref()
                    .is_none_or(|v| same(&v.value, &param.value))
        });
        if agrees {
            // An original value stays as written (`1.0`, though the entry says `1`).
            for (key, param) in entry {
                let k = index(key);
                if k >= original || combo.values[k].is_none() {
                    combo.values[k] = Some(param.clone());
                }
            }
            extended = true;
        }
    }
    if !extended {
        let mut combo = vec![None; width];
        for (key, param) in entry {
            combo[index(key)] = Some(param.clone());
        }
        combos.push(Combo {
            values: combo,
            repeat: 0,
        });
    }
}

/// Whether `combo` has every value of `entry`.
fn matches(combo: &Combo, keys: &[String], entry: &[(Arc<str>, Param)]) -> bool {
    entry.iter().all(|(key, param)| {
        keys.iter()
            .position(|k| k == key.as_ref())
            .and_then(|k| combo.values.get(k))
            .and_then(Option::as_ref)
            .is_some_and(|v| same(&v.value, &param.value))
    })
}

/// Every combination of `values` (the values of each key), the first key outermost; `None`
/// when there are more than `MAX_COMBINATIONS`. No keys, no combination.
fn product(values: &[Vec<Param>]) -> Option<Vec<Combo>> {
    if values.is_empty() {
        return Some(Vec::new());
    }
    let total = values
        .iter()
        .try_fold(1usize, |n, v| n.checked_mul(v.len()))
        .filter(|&n| n <= MAX_COMBINATIONS)?;
    let combos = (0..total)
        .map(|mut n| {
            let mut combo = vec![None; values.len()];
            for (k, v) in values.iter().enumerate().rev() {
                combo[k] = Some(v[n % v.len()].clone());
                n /= v.len();
            }
            Combo {
                values: combo,
                repeat: 0,
            }
        })
        .collect();
    Some(combos)
}

/// Whether two parameter values are the same, as GitHub Actions compares them: `1` and `1.0`
/// are the same number.
#[allow(
    clippy::cast_precision_loss,
    clippy::float_cmp,
    reason = "the same number exactly, compared as floats, as JSON numbers are"
)]
fn same(a: &toml::Value, b: &toml::Value) -> bool {
    match (a, b) {
        (toml::Value::Integer(i), toml::Value::Float(f))
        | (toml::Value::Float(f), toml::Value::Integer(i)) => *i as f64 == *f,
        _ => a == b,
    }
}

/// A matrix key as a variable name's tail: upper case, `-` as `_`.
pub fn env_name(key: &str) -> String {
    key.to_ascii_uppercase().replace('-', "_")
}
