//! Job-file error messages that point at the source: `file:line:col`, the line, a caret under the
//! offending text, the key path, and a hint.
//!
//! Serde errors from `toml` carry a byte span but no public key path, and checks done after
//! deserializing know the key path but not the span; `locate` finds one from the other by walking
//! a spanned parse of the same text.

use std::fmt::{self, Write as _};
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// A job-file error, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The text of the offending line, if the error has a place in the file.
    pub source_line: Option<String>,
    /// How many characters the caret underlines.
    pub width: usize,
    /// The dotted key path, e.g. `pool.processes`.
    pub key: Option<String>,
    /// What is wrong, saying what was expected and what was found.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic for `span` of `text` (or the file as a whole when there is no span).
    pub fn new(file: &str, text: &str, span: Option<Range<usize>>, message: String) -> Box<Self> {
        let mut d = Self {
            file: file.to_owned(),
            line: 1,
            column: 1,
            source_line: None,
            width: 1,
            key: None,
            message,
            help: None,
        };
        if let Some(span) = span {
            let start = floor_char_boundary(text, span.start.min(text.len()));
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            let line = &text[line_start..line_end];
            d.line = text[..line_start].matches('\n').count() + 1;
            d.column = text[line_start..start].chars().count() + 1;
            let end = floor_char_boundary(text, span.end.clamp(start, line_end));
            d.width = text[start..end].chars().count().max(1);
            d.source_line = Some(line.trim_end_matches('\r').to_owned());
        }
        Box::new(d)
    }

    /// Adds the key path.
    #[must_use]
    pub fn with_key(mut self: Box<Self>, key: Option<String>) -> Box<Self> {
        self.key = key;
        self
    }

    /// Adds a hint.
    #[must_use]
    pub fn with_help(mut self: Box<Self>, help: Option<String>) -> Box<Self> {
        self.help = help;
        self
    }
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => writeln!(f, "invalid job file: `{key}`: {}", self.message)?,
            None => writeln!(f, "invalid job file: {}", self.message)?,
        }
        let gutter = self.line.to_string().len();
        let pad = " ".repeat(gutter);
        write!(f, "{pad}--> {}:{}:{}", self.file, self.line, self.column)?;
        if let Some(line) = &self.source_line {
            let indent: String = line
                .chars()
                .take(self.column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n{pad} |\n{} | {line}\n{pad} | {indent}{}",
                self.line,
                "^".repeat(self.width)
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Renders a key path as `pool.processes` or `command[2]`.
pub fn render_path(path: &[KeyPart]) -> Option<String> {
    let mut out = String::new();
    for part in path {
        match part {
            KeyPart::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                // A key that TOML would need to quote is shown quoted, control characters escaped.
                if !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    out.push_str(k);
                } else {
                    let _ = write!(out, "\"{}\"", k.escape_default());
                }
            }
            KeyPart::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The key path of the innermost key or value whose span holds `offset`.
pub fn path_at(text: &str, offset: usize) -> Vec<KeyPart> {
    let Ok(root) = DeTable::parse(text) else {
        return Vec::new();
    };
    let mut path = Vec::new();
    find_in_table(root.get_ref(), offset, &mut path);
    path
}

fn find_in_table(table: &DeTable<'_>, offset: usize, path: &mut Vec<KeyPart>) -> bool {
    for (key, value) in table {
        path.push(KeyPart::Key(key.get_ref().to_string()));
        if find_in_value(value.get_ref(), offset, path)
            || key.span().contains(&offset)
            || value.span().contains(&offset)
        {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_value(value: &DeValue<'_>, offset: usize, path: &mut Vec<KeyPart>) -> bool {
    match value {
        DeValue::Table(table) => find_in_table(table, offset, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(KeyPart::Index(i));
                if find_in_value(item.get_ref(), offset, path) || item.span().contains(&offset) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

/// The span of the value at `path`, or of the nearest table on the way that exists.
pub fn span_of(text: &str, path: &[KeyPart]) -> Option<Range<usize>> {
    let root = DeTable::parse(text).ok()?;
    let mut span = None;
    let mut value: Option<&DeValue<'_>> = None;
    let mut table = Some(root.get_ref());
    for part in path {
        let next = match (part, table, value) {
            (KeyPart::Key(k), Some(t), _) => t.get(k.as_str()),
            (KeyPart::Index(i), _, Some(DeValue::Array(items))) => items.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        span = Some(next.span());
        value = Some(next.get_ref());
        table = next.get_ref().as_table();
    }
    span
}

/// The span of the text at `offset..offset + len` inside the string value spanning `span`, when the
/// string is written without escapes (so positions map one to one); else the whole value.
pub fn span_in_string(text: &str, span: Range<usize>, offset: usize, len: usize) -> Range<usize> {
    let raw = &text[span.clone()];
    // A bare word (a `--set` value taken as a string) maps one to one.
    if !raw.starts_with(['"', '\'']) && offset + len <= raw.len() {
        return span.start + offset..span.start + offset + len;
    }
    for quote in ["\"\"\"", "'''", "\"", "'"] {
        if let Some(inner) = raw.strip_prefix(quote).and_then(|r| r.strip_suffix(quote)) {
            let escaped = quote.starts_with('"') && inner.contains('\\');
            // A newline right after an opening triple quote is trimmed from the value.
            let skip = usize::from(quote.len() == 3 && inner.starts_with('\n'));
            if !escaped {
                let start = span.start + quote.len() + skip + offset;
                return start..start + len;
            }
            break;
        }
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "command = \"x\"\n[pool]\nprocesses = 0\nenv = [\"a\", 3]\n";

    #[test]
    fn finds_paths_from_offsets_and_back() {
        let at = DOC.find('0').unwrap();
        let path = path_at(DOC, at);
        assert_eq!(render_path(&path).as_deref(), Some("pool.processes"));
        assert_eq!(span_of(DOC, &path), Some(at..at + 1));
        let at = DOC.find('3').unwrap();
        assert_eq!(
            render_path(&path_at(DOC, at)).as_deref(),
            Some("pool.env[1]")
        );
    }

    #[test]
    fn renders_file_line_column_and_caret() {
        let at = DOC.find("processes").unwrap();
        let d = Diagnostic::new("job.toml", DOC, Some(at..at + 9), "bad".into())
            .with_key(Some("pool.processes".into()))
            .with_help(Some("fix it".into()));
        assert_eq!(
            d.to_string(),
            "invalid job file: `pool.processes`: bad\n --> job.toml:3:1\n  |\n3 | processes = 0\n  | ^^^^^^^^^\n  = help: fix it"
        );
    }

    #[test]
    fn maps_offsets_inside_plain_strings_only() {
        let text = "a = \"x{y}\"\nb = \"\\tx{y}\"";
        let a = text.find('"').unwrap()..text.find('\n').unwrap();
        assert_eq!(&text[span_in_string(text, a, 1, 3)], "{y}");
        let b = text.rfind("\"\\").unwrap()..text.len();
        assert_eq!(span_in_string(text, b.clone(), 2, 3), b);
    }
}
