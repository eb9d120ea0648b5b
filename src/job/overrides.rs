//! `--set KEY=VALUE`: a dotted key and a TOML value that replace the job file's for one run.
//!
//! Each argument is itself a one-line TOML document (`range.end=500`), parsed with spans and
//! merged into the job file's parsed table before it is deserialized, so the value is checked
//! by the same code as the file's, and an error in it points at the argument. Spans of merged
//! values lie past the end of the job file's text, in a virtual text that appends each argument
//! on a line of its own; `Sets::locate` maps them back.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::job::diagnostic::{self, Diagnostic, KeyPart};

/// The label of a diagnostic about a `--set` argument.
pub const SET_LABEL: &str = "--set";

/// Keys a `--set` may change on `--resume` without it being drift: they change how the run
/// runs, not what it runs (like `--processes` and `--timeout`).
const RESUMABLE: [&str; 2] = ["pool.processes", "pool.timeout"];

/// The `--set` arguments of one load, checked.
#[derive(Debug, Clone, Default)]
pub struct Sets {
    args: Vec<SetArg>,
}

#[derive(Debug, Clone)]
struct SetArg {
    /// As given.
    text: String,
    /// The dotted key's parts.
    path: Vec<String>,
    /// Where the value is in `text`.
    value: Range<usize>,
    /// Where `text` starts in the virtual text.
    offset: usize,
}

impl Sets {
    /// Checks each argument; `file_len` is the job file's length in bytes.
    pub fn parse(args: &[String], file_len: usize) -> Result<Self, Box<Diagnostic>> {
        let mut offset = file_len + 1;
        let mut parsed = Vec::with_capacity(args.len());
        for text in args {
            let (path, value) = shape(text)?;
            parsed.push(SetArg {
                text: text.clone(),
                path,
                value,
                offset,
            });
            offset += text.len() + 1;
        }
        Ok(Self { args: parsed })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Merges every argument's value into `root`, the job file's table, in order: a later
    /// argument wins over an earlier one, and both over the file.
    pub fn merge_into<'a>(&'a self, root: &mut DeTable<'a>) {
        for arg in &self.args {
            let mut table = parse_arg(&arg.text).expect("checked in Sets::parse");
            shift_table(&mut table, arg.offset);
            merge(root, table, arg.offset + arg.value.start);
        }
    }

    /// The argument a span of the virtual text lies in, the span inside it, and the argument's
    /// dotted key.
    pub fn locate(&self, span: &Range<usize>) -> Option<(&str, Range<usize>, String)> {
        let arg = self
            .args
            .iter()
            .rev()
            .find(|a| span.start >= a.offset && span.start <= a.offset + a.text.len())?;
        let start = span.start - arg.offset;
        let end = (span.end - arg.offset).clamp(start, arg.text.len());
        Some((&arg.text, start..end, arg.path.join(".")))
    }

    /// For an error at `path`: the argument that set it (the last whose key is `path` or one of
    /// its tables), and the span of `path` inside it.
    pub fn find(&self, path: &[KeyPart]) -> Option<(&str, Option<Range<usize>>)> {
        let arg = self.args.iter().rev().find(|a| {
            a.path.len() <= path.len()
                && a.path
                    .iter()
                    .zip(path)
                    .all(|(k, p)| matches!(p, KeyPart::Key(q) if q == k))
        })?;
        let span = diagnostic::span_of(&arg.text, path).or(Some(arg.value.clone()));
        Some((&arg.text, span))
    }

    /// For an error at `path` that the job file has no key for: the last argument that set a
    /// key inside it (`--set lines.file=x` made the `[lines]` an error is about), and the span of
    /// that argument's key.
    pub fn find_within(&self, path: &[KeyPart]) -> Option<(&str, Option<Range<usize>>)> {
        if path.is_empty() {
            return None;
        }
        let arg = self.args.iter().rev().find(|a| {
            a.path.len() > path.len()
                && path
                    .iter()
                    .zip(&a.path)
                    .all(|(p, k)| matches!(p, KeyPart::Key(q) if q == k))
        })?;
        Some((&arg.text, Some(0..arg.value.start.saturating_sub(1))))
    }
}

/// A diagnostic pointing into a `--set` argument; `key` is the key path it is about (by
/// default, the one at the span).
pub fn diagnostic(
    arg: &str,
    span: Option<Range<usize>>,
    message: String,
    key: Option<String>,
) -> Box<Diagnostic> {
    let key = key.or_else(|| {
        span.as_ref()
            .and_then(|s| diagnostic::render_path(&diagnostic::path_at(arg, s.start)))
    });
    Diagnostic::new(SET_LABEL, arg, span, message).with_key(key)
}

/// Checks that `text` is `KEY=VALUE` and returns the key's parts and the value's span.
fn shape(text: &str) -> Result<(Vec<String>, Range<usize>), Box<Diagnostic>> {
    let help = || {
        Some(
            "write a dotted key, `=` and a TOML value: --set range.end=500, --set 'matrix.lr=[0.1, 0.01]', --set name=nightly"
                .to_owned(),
        )
    };
    let Some(eq) = text.find('=') else {
        let message = format!("expected KEY=VALUE, found {text:?}");
        return Err(Diagnostic::new(SET_LABEL, text, None, message).with_help(help()));
    };
    if text.contains('\n') {
        let message = "a --set argument is one line".to_owned();
        return Err(Diagnostic::new(SET_LABEL, text, None, message).with_help(help()));
    }
    let table = parse_arg(text).map_err(|e| {
        let span = e.span();
        diagnostic(
            text,
            span,
            format!("cannot read this as KEY=VALUE: {}", e.message().trim()),
            None,
        )
        .with_help(help())
    })?;
    // One key: `a.b=1` is `{ a = { b = 1 } }`.
    let mut path = Vec::new();
    let mut table = &table;
    let value = loop {
        let mut entries = table.iter();
        let (Some((key, value)), None) = (entries.next(), entries.next()) else {
            // `#=1` is a comment: no key at all.
            let message = format!("expected KEY=VALUE, found {text:?}, which sets no key");
            return Err(Diagnostic::new(SET_LABEL, text, None, message).with_help(help()));
        };
        path.push(key.get_ref().to_string());
        match value.get_ref() {
            DeValue::Table(inner) if value.span().start < eq => table = inner,
            _ => break value.span(),
        }
    };
    Ok((path, value))
}

/// `text` as a TOML document; a value that is not TOML and does not look like an attempt at one
/// (a quote, `[` or `{`) is a string, so `--set name=nightly` works unquoted.
fn parse_arg(text: &str) -> Result<DeTable<'_>, toml::de::Error> {
    match DeTable::parse(text) {
        Ok(table) => Ok(table.into_inner()),
        Err(error) => {
            let (key, value) = text.split_once('=').expect("checked");
            let value_at = key.len() + 1;
            let trimmed = value.trim_start();
            if trimmed.starts_with(['"', '\'', '[', '{']) || key.trim().is_empty() {
                return Err(error);
            }
            // The key's parts and spans, from the key with a placeholder value.
            let keyed_text = format!("{key}=0");
            let Ok(keyed) = DeTable::parse(&keyed_text) else {
                return Err(error);
            };
            let mut parts = Vec::new();
            let mut table = keyed.get_ref();
            while let Some((k, v)) = table.iter().next() {
                parts.push((k.get_ref().to_string(), k.span()));
                match v.get_ref() {
                    DeValue::Table(inner) => table = inner,
                    _ => break,
                }
            }
            // Spaces around a bare word are not part of it, as around a TOML value.
            let word = value.trim();
            let word_at = value_at + (value.len() - value.trim_start().len());
            let mut value = Spanned::new(
                word_at..word_at + word.len(),
                DeValue::String(std::borrow::Cow::Borrowed(word)),
            );
            for (name, span) in parts.into_iter().rev() {
                let mut table = DeTable::new();
                let end = value.span().end;
                table.insert(Spanned::new(span.clone(), name.into()), value);
                value = Spanned::new(span.start..end, DeValue::Table(table));
            }
            match value.into_inner() {
                DeValue::Table(table) => Ok(table),
                _ => Err(error),
            }
        }
    }
}

/// Moves every span in `table` by `offset`.
fn shift_table(table: &mut DeTable<'_>, offset: usize) {
    let entries: Vec<_> = std::mem::take(table).into_iter().collect();
    for (key, mut value) in entries {
        let key_span = key.span();
        shift_value(&mut value, offset);
        let key = Spanned::new(
            key_span.start + offset..key_span.end + offset,
            key.into_inner(),
        );
        table.insert(key, value);
    }
}

fn shift_value(value: &mut Spanned<DeValue<'_>>, offset: usize) {
    let span = value.span();
    let mut inner = std::mem::replace(value.get_mut(), DeValue::Boolean(false));
    match &mut inner {
        DeValue::Table(table) => shift_table(table, offset),
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                shift_value(item, offset);
            }
        }
        _ => {}
    }
    *value = Spanned::new(span.start + offset..span.end + offset, inner);
}

/// Merges `from` into `into`: the tables of a dotted key (`range.end=5`) key by key, the value
/// (which starts at `value_at`) replacing what was there, an inline table too (`range={end=5}`
/// is a whole new `[range]`).
fn merge<'a>(into: &mut DeTable<'a>, from: DeTable<'a>, value_at: usize) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(existing), value) => {
                let dotted = value.span().start < value_at;
                if let (true, DeValue::Table(old), DeValue::Table(_)) =
                    (dotted, existing.get_mut(), value.get_ref())
                {
                    let DeValue::Table(new) = value.into_inner() else {
                        unreachable!("matched as a table")
                    };
                    merge(old, new, value_at);
                } else {
                    *existing = value;
                }
            }
            (None, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// The keys whose `--set` differs between `old` (a run's) and `new` (a resumption's), one line
/// each, but for those that only change how the run runs.
pub fn drift(old: &[String], new: &[String]) -> Vec<String> {
    let values = |args: &[String]| {
        let mut map = BTreeMap::new();
        for arg in args {
            if let Ok((path, span)) = shape(arg) {
                // `[0.1]` and `[ 0.1 ]` are the same value.
                let raw = arg[span].trim();
                let value = format!("v = {raw}")
                    .parse::<toml::Table>()
                    .ok()
                    .and_then(|t| t.get("v").map(ToString::to_string))
                    .unwrap_or_else(|| raw.to_owned());
                map.insert(path.join("."), value);
            }
        }
        for key in RESUMABLE {
            map.remove(key);
        }
        map
    };
    changes(&values(old), &values(new))
        .into_iter()
        .map(|(key, was, now)| match (was, now) {
            (Some(was), None) => format!("  --set {key}={was}: not given now"),
            (Some(was), Some(now)) => format!("  --set {key}: {was} -> {now}"),
            (None, now) => format!("  --set {key}={}: new", now.unwrap_or_default()),
        })
        .collect()
}

/// The keys whose values differ between `old` and `new`: `(key, old value, new value)`, a value
/// `None` where its map lacks the key; keys of `old` first, then keys only `new` has.
pub fn changes<'a>(
    old: &'a BTreeMap<String, String>,
    new: &'a BTreeMap<String, String>,
) -> Vec<(&'a str, Option<&'a str>, Option<&'a str>)> {
    let mut out = Vec::new();
    for (key, was) in old {
        match new.get(key) {
            Some(now) if now == was => {}
            now => out.push((key.as_str(), Some(was.as_str()), now.map(String::as_str))),
        }
    }
    for (key, now) in new.iter().filter(|(k, _)| !old.contains_key(*k)) {
        out.push((key.as_str(), None, Some(now.as_str())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_dotted_keys_and_values() {
        let sets = Sets::parse(&["range.end=500".into(), "name=nightly".into()], 10).unwrap();
        assert_eq!(sets.args[0].path, ["range", "end"]);
        assert_eq!(&sets.args[0].text[sets.args[0].value.clone()], "500");
        assert_eq!(sets.args[1].path, ["name"]);
        assert_eq!(sets.args[1].offset, 11 + "range.end=500".len() + 1);
        assert!(Sets::parse(&["range.end".into()], 0).is_err());
        assert!(Sets::parse(&["matrix.lr=[0.1".into()], 0).is_err());
    }

    #[test]
    fn drift_ignores_processes_and_timeout() {
        let old = ["range.end=5".to_owned(), "pool.processes=2".to_owned()];
        let new = ["range.end = 5".to_owned(), "pool.timeout=\"1s\"".to_owned()];
        assert!(
            drift(
                &["matrix.lr=[0.1,0.2]".into()],
                &["matrix.lr=[ 0.1, 0.2 ]".into()]
            )
            .is_empty()
        );
        assert!(drift(&old, &new).is_empty());
        assert_eq!(drift(&old, &[]), ["  --set range.end=5: not given now"]);
    }
}
