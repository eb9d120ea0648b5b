//! Reading the items of `[lines]` and `[glob]` from outside the job file, byte-exact: a line or
//! a file name may hold any byte but NUL and newline, UTF-8 or not.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use globset::GlobBuilder;

use crate::job::source::{Items, Source};

/// Reads a source's items again from where they came from (not from a snapshot): `None` for a
/// source whose items cannot be read again (stdin) or that are not read at all (`[range]`,
/// `[values]`).
pub fn live(source: &Source) -> Option<Result<Items, String>> {
    match source {
        Source::Lines(lines) => {
            let file = lines.file.as_ref()?;
            Some(
                std::fs::File::open(file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))
                    .and_then(read_lines),
            )
        }
        Source::Glob(g) => Some(glob(&g.dir, &g.pattern)),
        Source::Range(_) | Source::Values(_) => None,
    }
}

/// Reads one item per line: `\n` or `\r\n` ends a line, empty lines are skipped, and a NUL is an
/// error that names its line.
pub fn read_lines(reader: impl Read) -> Result<Items, String> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut items = Items::default();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read it: {e}"))?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if line.contains(&0) {
            return Err(format!(
                "line {number} holds a NUL byte, which no argument can pass"
            ));
        }
        if !line.is_empty() {
            items.push(&line);
        }
    }
    items.shrink();
    Ok(items)
}

/// The paths matching `pattern` in `dir`, written as the pattern writes them (relative to `dir`
/// unless the pattern is absolute) and sorted byte-wise. Like a shell: `*`, `?` and `[...]`
/// never match `/`, `**` matches any number of folders, a name starting with `.` is matched
/// only by a pattern part that starts with `.`, and folders themselves are not items.
pub fn glob(dir: &Path, pattern: &str) -> Result<Items, String> {
    let matcher = GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("not a valid pattern: {}", e.kind()))?
        .compile_matcher();
    let parts: Vec<&str> = pattern.split('/').collect();
    let literal = parts
        .iter()
        .take_while(|p| !p.contains(['*', '?', '[', '{', '\\']))
        .count()
        // The last part is what is matched, even when it is a plain name.
        .min(parts.len() - 1);
    let prefix = parts[..literal].join("/");
    let base = if prefix.is_empty() && pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        dir.join(&prefix)
    };
    let rest = &parts[literal..];
    let walk = Walk {
        rest,
        deep: rest.iter().any(|p| p.contains("**")),
        matcher: &matcher,
    };
    let mut found = Vec::new();
    let written = if prefix.is_empty() && !pattern.starts_with('/') {
        Vec::new()
    } else {
        format!("{prefix}/").into_bytes()
    };
    walk.visit(&base, &written, 0, &mut found)?;
    found.sort_unstable();
    found.dedup();
    let mut items = Items::default();
    for path in &found {
        items.push(path);
    }
    items.shrink();
    Ok(items)
}

struct Walk<'a> {
    /// The pattern's parts below the literal folder.
    rest: &'a [&'a str],
    /// Whether `**` lets the pattern reach any depth.
    deep: bool,
    matcher: &'a globset::GlobMatcher,
}

impl Walk<'_> {
    fn visit(
        &self,
        folder: &Path,
        written: &[u8],
        depth: usize,
        found: &mut Vec<Vec<u8>>,
    ) -> Result<(), String> {
        let entries = match std::fs::read_dir(folder) {
            Ok(entries) => entries,
            // A folder the pattern names may simply not exist: then nothing matches there.
            Err(e) if depth == 0 && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if depth == 0 => return Err(format!("cannot list {}: {e}", folder.display())),
            Err(e) => {
                tracing::warn!("[glob]: cannot list {}: {e}", folder.display());
                return Ok(());
            }
        };
        // The pattern part this level's names are matched by; below a `**` it stays the `**`.
        let part = self
            .rest
            .get(depth)
            .or_else(|| self.rest.iter().rev().find(|p| p.contains("**")))
            .copied()
            .unwrap_or("");
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot list {}: {e}", folder.display()))?;
            let name = entry.file_name();
            let name = name.as_bytes();
            // As a shell: a leading `.` is matched only by a pattern that writes one (at this
            // level; below a `**`, anywhere after it).
            let dots = if part.contains("**") {
                self.rest[depth..].iter().any(|p| p.starts_with('.'))
            } else {
                part.starts_with('.')
            };
            if name.starts_with(b".") && !dots {
                continue;
            }
            let mut path = written.to_vec();
            path.extend_from_slice(name);
            let full = entry.path();
            // Follows links, as a shell's glob does; a link to a folder is not walked into.
            let is_dir = std::fs::metadata(&full).is_ok_and(|m| m.is_dir());
            let walks_into = entry.file_type().is_ok_and(|t| t.is_dir())
                && (self.deep || depth + 1 < self.rest.len());
            if !is_dir && self.matcher.is_match(OsStr::from_bytes(&path)) {
                if path.contains(&b'\n') {
                    return Err(format!(
                        "the file name {:?} holds a newline, which an item cannot",
                        String::from_utf8_lossy(&path)
                    ));
                }
                found.push(path.clone());
            }
            if walks_into {
                path.push(b'/');
                self.visit(&full, &path, depth + 1, found)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(items: &Items) -> Vec<&[u8]> {
        (0..items.len()).map(|i| items.get(i)).collect()
    }

    #[test]
    fn lines_cut_at_newlines_and_skip_empty_ones() {
        let items = read_lines(&b"a\r\n\nb c\n\r\n\xff\n last"[..]).unwrap();
        assert_eq!(all(&items), [&b"a"[..], b"b c", b"\xff", b" last"]);
        assert!(read_lines(&b"a\nb\0\n"[..]).unwrap_err().contains("line 2"));
    }

    #[test]
    fn globs_match_like_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "a.csv",
            "b.csv",
            ".hidden.csv",
            "x.txt",
            "sub/c.csv",
            "sub/deep/d.csv",
        ] {
            let path = root.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let items = glob(root, "*.csv").unwrap();
        assert_eq!(all(&items), [&b"a.csv"[..], b"b.csv"]);
        let items = glob(root, "**/*.csv").unwrap();
        assert_eq!(
            all(&items),
            [&b"a.csv"[..], b"b.csv", b"sub/c.csv", b"sub/deep/d.csv"]
        );
        let items = glob(root, "sub/*").unwrap();
        assert_eq!(all(&items), [&b"sub/c.csv"[..]]);
        let items = glob(root, ".*.csv").unwrap();
        assert_eq!(all(&items), [&b".hidden.csv"[..]]);
        let items = glob(root, "**/.*.csv").unwrap();
        assert_eq!(all(&items), [&b".hidden.csv"[..]]);
        assert!(glob(root, "none/*.csv").unwrap().is_empty());
        let absolute = format!("{}/*.txt", root.display());
        assert_eq!(
            all(&glob(root, &absolute).unwrap()),
            [format!("{}/x.txt", root.display()).as_bytes()]
        );
    }
}
