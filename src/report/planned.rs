//! `poolrun plan --json`: every task as a report row's plan fields, one JSON object a line.
//!
//! A plan can hold 10^9 tasks, so each line is written straight into one reused buffer: no
//! report row, no map and no string is built per task (a quarter of the old cost was `malloc`).
//! The bytes are those `serde_json` writes for the same fields; a test holds the two together.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use rayon::iter::{IntoParallelIterator, ParallelIterator};

use crate::job::chunk::ChunkValues;
use crate::job::template::{Part, Placeholder, Values};
use crate::plan::{NumericPlan, Plan, Task, TaskId, TaskItems};
use crate::report::model::param_json;

/// Tasks a block holds: blocks are rendered in parallel and written in order.
const BLOCK: u64 = 2048;

/// Writes `plan`'s tasks as a JSON array, one task a line. The worker threads render the next
/// blocks of lines while this thread writes the last ones, so output is limited by the slower
/// of writing and rendering on every core, and memory by two waves of blocks.
pub fn write_plan_json(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"[")?;
    let blocks = plan.len().div_ceil(BLOCK);
    let line = plan
        .numeric()
        .map(|numeric| (Line::compile(&numeric), numeric));
    let line = &line;
    let wave = u64::try_from(rayon::current_num_threads()).unwrap_or(1) * 2;
    // Written blocks' buffers, for blocks still to render: a new buffer of a block's size
    // would be new pages from the kernel, each zeroed on its first write.
    let spare = Mutex::new(Vec::<Vec<u8>>::new());
    let spare = &spare;
    let mut ready: Vec<Vec<u8>> = Vec::new();
    let mut next = 0;
    while next < blocks || !ready.is_empty() {
        let upto = (next + wave).min(blocks);
        let mut rendered = Vec::new();
        let written = rayon::in_place_scope(|scope| {
            if next < upto {
                let rendered = &mut rendered;
                scope.spawn(move |_| {
                    *rendered = (next..upto)
                        .into_par_iter()
                        .map(|block| {
                            let lines = spare.lock().ok().and_then(|mut s| s.pop());
                            let lines = lines.unwrap_or_default();
                            match &line {
                                Some((line, numeric)) => {
                                    numeric_block_json(plan, numeric, line, block, lines)
                                }
                                None => block_json(plan, block, lines),
                            }
                        })
                        .collect();
                });
            }
            ready.iter().try_for_each(|lines| out.write_all(lines))
        });
        written?;
        if let Ok(mut spare) = spare.lock() {
            spare.extend(ready.drain(..).map(|mut lines| {
                lines.clear();
                lines
            }));
        }
        ready = rendered;
        next = upto;
    }
    out.write_all(if plan.is_empty() { b"]\n" } else { b"\n]\n" })
}

/// The lines of block `block`'s tasks, each task rendered task by task, into `lines`.
fn block_json(plan: &Plan, block: u64, lines: Vec<u8>) -> Vec<u8> {
    let mut cwd = CwdCache::default();
    let mut task = Task::empty();
    block_lines(plan, block, lines, |id, lines| {
        plan.render_unkeyed_into(id, &mut task);
        task_json(&task, &mut cwd, lines);
    })
}

/// The lines of block `block`'s tasks, from the plan's compiled `line`, into `lines`.
fn numeric_block_json(
    plan: &Plan,
    numeric: &NumericPlan<'_>,
    line: &Line,
    block: u64,
    lines: Vec<u8>,
) -> Vec<u8> {
    let mut last = LastLine::default();
    block_lines(plan, block, lines, |id, lines| {
        line.render(&numeric.values(id), &mut last, lines);
    })
}

/// Block `block`'s lines, each written by `put` after its separator, into the empty `lines`.
fn block_lines(
    plan: &Plan,
    block: u64,
    mut lines: Vec<u8>,
    mut put: impl FnMut(TaskId, &mut Vec<u8>),
) -> Vec<u8> {
    let ids = block * BLOCK..((block + 1) * BLOCK).min(plan.len());
    for id in ids.clone() {
        lines.extend_from_slice(if id == 0 { b"\n" } else { b",\n" });
        put(TaskId(id), &mut lines);
        if id == ids.start {
            // Room for the block's lines as long as its first, and a quarter more, so the
            // buffer is not copied as it grows.
            let room = lines.len() * usize::try_from(ids.end - id).unwrap_or(0);
            lines.reserve(room + room / 4);
        }
    }
    lines
}

/// A plan line compiled once, for a plan whose tasks differ only in numbers: the line's bytes
/// with the numbers left as placeholders. Numbers need no JSON escaping, so a line is its
/// pieces one after the other, the same bytes as `task_json` writes; and a line is mostly the
/// line before it with its numbers counted up (see `render`).
struct Line {
    pieces: Vec<Piece>,
}

enum Piece {
    Bytes(Vec<u8>),
    Value(Placeholder),
}

impl Line {
    fn compile(numeric: &NumericPlan<'_>) -> Self {
        let mut line = Self { pieces: Vec::new() };
        line.bytes(b"{\"id\":");
        line.value(Placeholder::Id);
        for (name, value) in [
            (&b",\"start\":"[..], Placeholder::Start),
            (b",\"last\":", Placeholder::Last),
            (b",\"end\":", Placeholder::End),
            (b",\"count\":", Placeholder::Count),
        ] {
            line.bytes(name);
            line.value(value);
        }
        line.bytes(b",\"command\":[");
        let values = numeric.values(TaskId(0));
        for (i, template) in numeric.argv().iter().enumerate() {
            line.bytes(if i == 0 { b"\"" } else { b",\"" });
            for part in template.parts() {
                match part {
                    // JSON escapes character by character, so the literal pieces of an argument
                    // escape as the whole argument does.
                    Part::Text(text) => line.escaped(text.as_bytes()),
                    Part::Value(p @ (Placeholder::Name | Placeholder::RunId)) => {
                        let mut value = Vec::new();
                        values.put(p, &mut value);
                        line.escaped(&value);
                    }
                    // Digits, a minus sign and spaces between items.
                    Part::Value(p) => line.value(p),
                }
            }
            line.bytes(b"\"");
        }
        line.bytes(b"],\"cwd\":");
        let mut cwd = Vec::new();
        string(numeric.cwd().as_os_str().as_encoded_bytes(), &mut cwd);
        line.bytes(&cwd);
        line.bytes(b"}");
        line
    }

    fn bytes(&mut self, bytes: &[u8]) {
        if let Some(Piece::Bytes(last)) = self.pieces.last_mut() {
            last.extend_from_slice(bytes);
        } else {
            self.pieces.push(Piece::Bytes(bytes.to_vec()));
        }
    }

    /// `text` JSON-escaped, without the quotes.
    fn escaped(&mut self, text: &[u8]) {
        let mut quoted = Vec::new();
        string(text, &mut quoted);
        self.bytes(&quoted[1..quoted.len() - 1]);
    }

    fn value(&mut self, p: Placeholder) {
        self.pieces.push(Piece::Value(p));
    }

    /// Appends the line of the task with `values` to `out`, where `last` is the line before
    /// it. Consecutive tasks differ only in their numbers, and mostly only in their last
    /// digits: so a line is the line before it copied whole, each number then counted up in
    /// place to its new value, unless a number would change its count of digits (or is not a
    /// whole number at least as large as before). Then the line is written piece by piece.
    fn render(&self, values: &ChunkValues<'_>, last: &mut LastLine, out: &mut Vec<u8>) {
        let start = out.len();
        match last.line.clone() {
            Some(line) if last.counts_up(values) => {
                out.extend_from_within(line);
                for (digits, new) in last.numbers.iter_mut().zip(&last.next) {
                    let at = start + digits.at;
                    count_up(
                        &mut out[at..at + digits.len],
                        new - digits.value.unwrap_or(0),
                    );
                    digits.value = Some(*new);
                }
            }
            _ => {
                last.numbers.clear();
                for piece in &self.pieces {
                    match piece {
                        Piece::Bytes(bytes) => out.extend_from_slice(bytes),
                        Piece::Value(p) => {
                            let at = out.len() - start;
                            values.put(*p, out);
                            let len = out.len() - start - at;
                            last.numbers.push(Number {
                                p: *p,
                                at,
                                len,
                                value: values.number(*p),
                                below: u32::try_from(len)
                                    .ok()
                                    .and_then(|len| 10u64.checked_pow(len))
                                    .unwrap_or(u64::MAX),
                            });
                        }
                    }
                }
            }
        }
        last.line = Some(start..out.len());
    }
}

/// The line last rendered into a block, and where its numbers sit in it.
#[derive(Default)]
struct LastLine {
    line: Option<std::ops::Range<usize>>,
    numbers: Vec<Number>,
    /// The next line's numbers, while it is checked.
    next: Vec<u64>,
}

impl LastLine {
    /// Whether each number of the task with `values` can be counted up in place from
    /// this line's: it is a whole number, no smaller, with as many digits. Leaves the new numbers
    /// in `self.next`.
    fn counts_up(&mut self, values: &ChunkValues<'_>) -> bool {
        self.next.clear();
        for digits in &self.numbers {
            match values.number(digits.p) {
                Some(new) if digits.value.is_some_and(|old| old <= new) && new < digits.below => {
                    self.next.push(new);
                }
                _ => return false,
            }
        }
        true
    }
}

/// A value in a rendered line: its placeholder, offset and length, the whole number it is (if
/// it is one), and the first number with more digits.
struct Number {
    p: Placeholder,
    at: usize,
    len: usize,
    value: Option<u64>,
    below: u64,
}

/// Adds `delta` to the decimal number `digits` in place; the sum has no more digits.
fn count_up(digits: &mut [u8], delta: u64) {
    // What is left to add, carried from digit to digit; mostly done at the last.
    let mut carry = delta;
    for digit in digits.iter_mut().rev() {
        if carry == 0 {
            break;
        }
        let sum = u64::from(*digit - b'0') + carry;
        if let Ok(sum @ 0..10) = u8::try_from(sum) {
            *digit = b'0' + sum;
            break;
        }
        *digit = b'0' + (sum % 10) as u8;
        carry = sum / 10;
    }
}

/// One task's plan fields as a JSON object, in the report row's order.
fn task_json(task: &Task, cwd: &mut CwdCache, out: &mut Vec<u8>) {
    let mut numbers = itoa::Buffer::new();
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(numbers.format(task.id.0).as_bytes());
    if let TaskItems::Range {
        start, last, end, ..
    } = task.items
    {
        for (name, value) in [
            (&b",\"start\":"[..], start),
            (b",\"last\":", last),
            (b",\"end\":", end),
        ] {
            out.extend_from_slice(name);
            out.extend_from_slice(numbers.format(value).as_bytes());
        }
    }
    out.extend_from_slice(b",\"count\":");
    out.extend_from_slice(numbers.format(task.items.count()).as_bytes());
    if let TaskItems::List(items) = &task.items {
        out.extend_from_slice(b",\"items\":");
        string_array(items.iter().map(Vec::as_slice), out);
    }
    let mut params = task.params.iter().flat_map(|c| c.params()).peekable();
    if params.peek().is_some() {
        // Rare and small: the map serde_json sorts and writes, as in the report.
        let params: std::collections::BTreeMap<&str, serde_json::Value> = params
            .map(|p| (p.key.as_ref(), param_json(&p.value)))
            .collect();
        out.extend_from_slice(b",\"params\":");
        serde_json::to_writer(&mut *out, &params).expect("a map of JSON values serializes");
    }
    if let Some(seed) = task.seed {
        out.extend_from_slice(b",\"seed\":");
        out.extend_from_slice(numbers.format(seed).as_bytes());
    }
    if !task.content_key.is_empty() {
        out.extend_from_slice(b",\"content_key\":");
        string(task.content_key.as_bytes(), out);
    }
    out.extend_from_slice(b",\"command\":");
    string_array(task.argv.iter().map(|a| a.as_encoded_bytes()), out);
    out.extend_from_slice(b",\"cwd\":");
    out.extend_from_slice(cwd.json(&task.cwd));
    out.extend_from_slice(b"}");
}

/// The last working directory and its JSON string: most plans have one for every task.
#[derive(Default)]
struct CwdCache {
    path: std::path::PathBuf,
    json: Vec<u8>,
}

impl CwdCache {
    fn json(&mut self, path: &Path) -> &[u8] {
        // Compared as bytes: `Path`'s own equality walks its components.
        if self.json.is_empty() || self.path.as_os_str() != path.as_os_str() {
            path.clone_into(&mut self.path);
            self.json.clear();
            string(path.as_os_str().as_encoded_bytes(), &mut self.json);
        }
        &self.json
    }
}

fn string_array<'a>(items: impl Iterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(item, out);
    }
    out.push(b']');
}

/// `bytes` as a JSON string, bytes that are not UTF-8 replaced by U+FFFD, escaped as
/// `serde_json` escapes.
fn string(bytes: &[u8], out: &mut Vec<u8>) {
    let plain = |b: &u8| *b >= 0x20 && *b != b'"' && *b != b'\\';
    out.push(b'"');
    match std::str::from_utf8(bytes) {
        Ok(text) if text.as_bytes().iter().all(plain) => out.extend_from_slice(text.as_bytes()),
        Ok(text) => escaped(text, out),
        Err(_) => escaped(&String::from_utf8_lossy(bytes), out),
    }
    out.push(b'"');
}

fn escaped(text: &str, out: &mut Vec<u8>) {
    for b in text.bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b if b < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{count_up, string};

    #[test]
    fn counting_up_carries_from_digit_to_digit() {
        for (digits, delta, sum) in [
            ("0", 0, "0"),
            ("0", 9, "9"),
            ("41", 1, "42"),
            ("199", 1, "200"),
            ("1999999999", 8_000_000_000, "9999999999"),
            ("12345", 9876, "22221"),
            ("0000", 7, "0007"),
        ] {
            let mut digits = digits.as_bytes().to_vec();
            count_up(&mut digits, delta);
            assert_eq!(String::from_utf8(digits).unwrap(), sum);
        }
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut every: Vec<u8> = (0u8..=0x7f).collect();
        every.extend_from_slice("é ✓ \u{2028} 😀".as_bytes());
        for text in [
            &every[..],
            b"plain",
            b"",
            b"a\"b\\c/d",
            b"\xff\xfe bad utf-8",
        ] {
            let mut ours = Vec::new();
            string(text, &mut ours);
            let theirs = serde_json::to_vec(&String::from_utf8_lossy(text)).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }
}
