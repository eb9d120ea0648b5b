//! What a job runs over: at most one item source cut into chunks, and at most one matrix of
//! parameters. The plan is every combination of the matrix (first key outermost) times every
//! chunk of the source.
//!
//! A range is computed, never listed, so a range of 10^9 items costs nothing; the items of
//! `[values]`, `[lines]` and `[glob]` are resolved once when the job is loaded and kept in one
//! buffer, one item per line: exactly the snapshot written into the run directory.

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::Arc;

/// The item source.
#[derive(Debug, Clone)]
pub enum Source {
    /// `[range]`: integers, computed.
    Range(Range),
    /// `[values]`: the items written in the job file.
    Values(List),
    /// `[lines]`: one item per line of a file or of stdin.
    Lines(Lines),
    /// `[glob]`: the matching files.
    Glob(Glob),
}

/// `[lines]` resolved.
#[derive(Debug, Clone)]
pub struct Lines {
    /// The file read, absolute; `None` is stdin.
    pub file: Option<PathBuf>,
    /// Its items.
    pub list: List,
}

/// `[glob]` resolved.
#[derive(Debug, Clone)]
pub struct Glob {
    /// The pattern as written.
    pub pattern: String,
    /// The folder it was matched in (the tasks' working directory), absolute.
    pub dir: PathBuf,
    /// The matching paths, relative to `dir` as the pattern was.
    pub list: List,
}

/// A list of items cut into chunks.
#[derive(Debug, Clone)]
pub struct List {
    /// The items.
    pub items: Arc<Items>,
    /// Items per task.
    pub chunk_size: NonZeroU64,
    /// The chunks that hold the same items as another chunk.
    pub repeats: Arc<Repeats>,
}

impl List {
    /// `items` in chunks of `chunk_size`.
    pub fn new(items: Arc<Items>, chunk_size: NonZeroU64) -> Self {
        let repeats = Arc::new(Repeats::of(&items, chunk_size));
        Self {
            items,
            chunk_size,
            repeats,
        }
    }
}

/// Chunks of a list that hold the same items as another chunk (an item listed twice): for each,
/// how many equal chunks come before it and how many there are in all. Tasks are told apart by
/// their items, so a repeated chunk needs this to be a task of its own for resume, `{seed}` and
/// `poolrun diff`. Only repeated chunks are stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repeats(Vec<Repeat>);

/// A repeated chunk: its index, the equal chunks before it, the equal chunks in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Repeat {
    chunk: u32,
    before: u32,
    all: u32,
}

impl Repeats {
    /// Finds the repeated chunks by sorting the chunks' indices by their bytes. Memory: four
    /// bytes a chunk while sorting, twelve a repeated chunk after.
    fn of(items: &Items, chunk_size: NonZeroU64) -> Self {
        let size = usize::try_from(chunk_size.get()).unwrap_or(usize::MAX);
        let chunks = items.len().div_ceil(size);
        let bytes = |chunk: u32| {
            let first = chunk as usize * size;
            items.span(first, size.min(items.len() - first))
        };
        let Ok(count) = u32::try_from(chunks) else {
            return Self::default();
        };
        let mut order: Vec<u32> = (0..count).collect();
        order.sort_unstable_by(|&a, &b| bytes(a).cmp(bytes(b)).then(a.cmp(&b)));
        let mut repeats = Vec::new();
        for group in order.chunk_by(|&a, &b| bytes(a) == bytes(b)) {
            if let Ok(all) = u32::try_from(group.len())
                && all > 1
            {
                for (before, &chunk) in (0u32..).zip(group) {
                    repeats.push(Repeat { chunk, before, all });
                }
            }
        }
        drop(order);
        repeats.sort_unstable_by_key(|r| r.chunk);
        repeats.shrink_to_fit();
        Self(repeats)
    }

    /// For chunk `index`: equal chunks before it, and equal chunks in all (itself included).
    pub fn of_chunk(&self, index: u64) -> (u32, u32) {
        u32::try_from(index)
            .ok()
            .and_then(|i| self.0.binary_search_by_key(&i, |r| r.chunk).ok())
            .map_or((0, 1), |at| (self.0[at].before, self.0[at].all))
    }
}

impl Source {
    /// The table it was written as.
    pub fn table(&self) -> &'static str {
        match self {
            Self::Range(_) => "range",
            Self::Values(_) => "values",
            Self::Lines(_) => "lines",
            Self::Glob(_) => "glob",
        }
    }

    /// The listed items, for every source but a range.
    pub fn list(&self) -> Option<&List> {
        match self {
            Self::Range(_) => None,
            Self::Values(list)
            | Self::Lines(Lines { list, .. })
            | Self::Glob(Glob { list, .. }) => Some(list),
        }
    }

    /// How many items it holds.
    pub fn items(&self) -> u64 {
        match self {
            Self::Range(r) => r.items,
            _ => self.list().map_or(0, |l| l.items.len() as u64),
        }
    }

    /// Items per chunk.
    pub fn chunk_size(&self) -> NonZeroU64 {
        match self {
            Self::Range(r) => r.chunk_size,
            _ => self.list().map_or(NonZeroU64::MIN, |l| l.chunk_size),
        }
    }

    /// The number of chunks.
    pub fn chunks(&self) -> u64 {
        self.items().div_ceil(self.chunk_size().get())
    }

    /// Chunk `index`, below `chunks()`.
    pub fn chunk(&self, index: u64) -> Chunk<'_> {
        if let Self::Range(r) = self {
            return r.chunk(index);
        }
        let list = self.list().expect("a listed source");
        let size = list.chunk_size.get();
        let first = index * size;
        let count = size.min(list.items.len() as u64 - first);
        Chunk::List {
            items: &list.items,
            first: usize::try_from(first).expect("items are in memory"),
            count: usize::try_from(count).expect("items are in memory"),
        }
    }

    /// Whether the items were read from outside the job file (and so are snapshotted).
    pub fn is_snapshotted(&self) -> bool {
        matches!(self, Self::Lines(_) | Self::Glob(_))
    }
}

/// `range(start, end, step)` cut into chunks of `chunk_size` items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first item.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
    /// Never zero; its sign points from `start` to `end`.
    pub step: i64,
    /// Items per task.
    pub chunk_size: NonZeroU64,
    /// How many items the range holds; `start + items * step` fits in an i64.
    pub items: u64,
}

impl Range {
    /// The number of tasks: chunks of `chunk_size` items.
    pub fn tasks(&self) -> u64 {
        self.items.div_ceil(self.chunk_size.get())
    }

    /// Chunk `index`, below `tasks()`.
    pub fn chunk(&self, index: u64) -> Chunk<'static> {
        let chunk = self.chunk_size.get();
        let first = index * chunk;
        let count = chunk.min(self.items - first);
        // Job validation guarantees `start + items * step` fits in an i64; every value below
        // is at most that far from `start`.
        let at = |index: u64| {
            let value = i128::from(self.start) + i128::from(index) * i128::from(self.step);
            i64::try_from(value).expect("validated range")
        };
        Chunk::Range {
            start: at(first),
            last: at(first + count - 1),
            end: at(first + count),
            count,
            step: self.step,
        }
    }
}

/// One chunk of a source's items.
#[derive(Debug, Clone, Copy)]
pub enum Chunk<'a> {
    /// Integers from `start` to `last` (inclusive) by `step`; `end` is `last + step`.
    Range {
        /// The first item.
        start: i64,
        /// The last item.
        last: i64,
        /// The exclusive end.
        end: i64,
        /// Items, >= 1.
        count: u64,
        /// The range's step.
        step: i64,
    },
    /// Items `first..first + count` of a list.
    List {
        /// The list.
        items: &'a Items,
        /// The first item's index.
        first: usize,
        /// Items, >= 1.
        count: usize,
    },
    /// A job with a matrix and no item source: no items.
    None,
}

impl Chunk<'_> {
    /// Items in the chunk.
    pub fn count(&self) -> u64 {
        match *self {
            Self::Range { count, .. } => count,
            Self::List { count, .. } => count as u64,
            Self::None => 0,
        }
    }

    /// Calls `f` with each item's position and bytes.
    pub fn each(&self, f: &mut dyn FnMut(usize, &[u8])) {
        match *self {
            Self::Range {
                start, count, step, ..
            } => {
                let mut item = start;
                for i in 0..count {
                    f(
                        usize::try_from(i).unwrap_or(usize::MAX),
                        item.to_string().as_bytes(),
                    );
                    // The step past the last item is `end`, which fits in an i64.
                    item = item.wrapping_add(step);
                }
            }
            Self::List {
                items,
                first,
                count,
            } => {
                for i in 0..count {
                    f(i, items.get(first + i));
                }
            }
            Self::None => {}
        }
    }

    /// The first item's bytes (empty without items).
    pub fn first(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.put_first(&mut out);
        out
    }

    /// The last item's bytes (empty without items).
    pub fn last(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.put_last(&mut out);
        out
    }

    /// Appends the first item's bytes to `out` (nothing without items).
    pub fn put_first(&self, out: &mut Vec<u8>) {
        match *self {
            Self::Range { start, .. } => {
                out.extend_from_slice(itoa::Buffer::new().format(start).as_bytes());
            }
            Self::List { items, first, .. } => out.extend_from_slice(items.get(first)),
            Self::None => {}
        }
    }

    /// Appends the last item's bytes to `out` (nothing without items).
    pub fn put_last(&self, out: &mut Vec<u8>) {
        match *self {
            Self::Range { last, .. } => {
                out.extend_from_slice(itoa::Buffer::new().format(last).as_bytes());
            }
            Self::List {
                items,
                first,
                count,
            } => out.extend_from_slice(items.get(first + count - 1)),
            Self::None => {}
        }
    }
}

/// Items, each any bytes but NUL and newline, kept in one buffer with a newline after each:
/// the buffer is the snapshot file as it is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Items {
    data: Vec<u8>,
    /// Where each item's newline is.
    ends: Vec<u64>,
}

impl Items {
    /// Adds an item, which holds neither NUL nor newline.
    pub fn push(&mut self, item: &[u8]) {
        debug_assert!(!item.contains(&b'\n') && !item.contains(&0));
        self.data.extend_from_slice(item);
        self.ends.push(self.data.len() as u64);
        self.data.push(b'\n');
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Item `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 {
            0
        } else {
            usize::try_from(self.ends[i - 1]).expect("in memory") + 1
        };
        &self.data[start..usize::try_from(self.ends[i]).expect("in memory")]
    }

    /// Items `first..first + count` as stored, newlines between them.
    pub fn span(&self, first: usize, count: usize) -> &[u8] {
        if count == 0 {
            return &[];
        }
        let start = if first == 0 {
            0
        } else {
            usize::try_from(self.ends[first - 1]).expect("in memory") + 1
        };
        &self.data[start..usize::try_from(self.ends[first + count - 1]).expect("in memory")]
    }

    /// Every item, a newline after each: the snapshot's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The items of snapshot `bytes` (as `bytes()` wrote them).
    pub fn from_snapshot(bytes: Vec<u8>) -> Option<Self> {
        if !(bytes.is_empty() || bytes.ends_with(b"\n")) || bytes.contains(&0) {
            return None;
        }
        let ends = bytes
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .map(|(i, _)| i as u64)
            .collect();
        Some(Self { data: bytes, ends })
    }

    /// Gives memory back after reading.
    pub fn shrink(&mut self) {
        self.data.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// `[matrix]` resolved: the parameters and every combination, in plan order.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// The parameter names: the matrix's keys in file order, then keys only `include` adds.
    pub keys: Vec<String>,
    /// The combinations, in plan order.
    pub combos: Vec<Arc<Combo>>,
}

/// One combination: a value for each of the matrix's keys that it has (an `include` can add a
/// key to some combinations only).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Combo {
    /// By key index.
    pub values: Vec<Option<Param>>,
    /// How many earlier combinations have the same values (a value listed twice).
    pub repeat: u32,
}

/// A parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The key.
    pub key: Arc<str>,
    /// As written: a string, number or boolean.
    pub value: toml::Value,
    /// As placeholders and variables see it.
    pub text: String,
}

impl Combo {
    /// The parameters it sets, in key order.
    pub fn params(&self) -> impl Iterator<Item = &Param> {
        self.values.iter().flatten()
    }

    /// What identifies it whatever the order of the keys: each parameter's key, type and
    /// value text, sorted by key.
    pub fn identity(&self) -> Vec<(&str, &'static str, &str)> {
        let mut id: Vec<_> = self
            .params()
            .map(|p| (p.key.as_ref(), p.value.type_str(), p.text.as_str()))
            .collect();
        id.sort_unstable();
        id
    }
}

/// Sets each combination's `repeat`: how many earlier ones have the same values.
pub fn count_repeats(combos: &mut [Combo]) {
    let mut seen: std::collections::HashMap<Vec<(String, &'static str, String)>, u32> =
        std::collections::HashMap::new();
    for combo in combos {
        let id = combo
            .identity()
            .into_iter()
            .map(|(k, t, v)| (k.to_owned(), t, v.to_owned()))
            .collect();
        let count = seen.entry(id).or_insert(0);
        combo.repeat = *count;
        *count += 1;
    }
}

/// The text a scalar TOML value stands for in a command: a string as is, an integer in
/// decimal, a float in the shortest form that reads back the same and still looks like a float
/// (`2.0`, `0.001`, `1e-10`), a boolean as `true` or `false`.
pub fn scalar_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        // TOML's spellings of the special floats.
        toml::Value::Float(f) if f.is_nan() => Some("nan".to_owned()),
        toml::Value::Float(f) if f.is_infinite() => {
            Some(if *f > 0.0 { "inf" } else { "-inf" }.to_owned())
        }
        toml::Value::Float(f) => Some(format!("{f:?}")),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::scalar_text;

    #[test]
    fn numbers_read_as_written() {
        let text = |toml: &str| {
            let value: toml::Table = toml::from_str(&format!("v = {toml}")).unwrap();
            scalar_text(&value["v"]).unwrap()
        };
        assert_eq!(text("2.0"), "2.0");
        assert_eq!(text("0.1"), "0.1");
        assert_eq!(text("1e-10"), "1e-10");
        assert_eq!(text("-3"), "-3");
        assert_eq!(text("true"), "true");
        assert_eq!(text("\"a b\""), "a b");
    }
}
