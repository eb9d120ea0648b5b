//! The values a task's placeholders take: what the planner renders a task from, and what
//! validation renders the largest chunks with to check they fit.

use crate::job::source::{Chunk, Combo};
use crate::job::template::{Placeholder, Values};

/// The placeholder values of one task.
#[derive(Debug, Clone, Copy)]
pub struct ChunkValues<'a> {
    /// The task's index in plan order.
    pub id: u64,
    /// Its items.
    pub chunk: Chunk<'a>,
    /// Its matrix parameters.
    pub combo: Option<&'a Combo>,
    /// Its seed, when the job has one.
    pub seed: Option<u64>,
    /// The job's name.
    pub name: &'a str,
    /// The run's id.
    pub run_id: &'a str,
}

impl ChunkValues<'_> {
    /// What `put(p)` writes, as a number, when it writes one whole number that is not
    /// negative: the id, the count, and a range chunk's `{start}`, `{last}`, `{end}` and
    /// `{item}` (and `{items}` of one item). `None` for every other value.
    pub fn number(&self, p: Placeholder) -> Option<u64> {
        let natural = |value: i64| u64::try_from(value).ok();
        match (p, self.chunk) {
            (Placeholder::Id, _) => Some(self.id),
            (Placeholder::Count, _) => Some(self.chunk.count()),
            (Placeholder::Item | Placeholder::Start, Chunk::Range { start, .. })
            | (
                Placeholder::Items,
                Chunk::Range {
                    start, count: 1, ..
                },
            ) => natural(start),
            (Placeholder::Last, Chunk::Range { last, .. }) => natural(last),
            (Placeholder::End, Chunk::Range { end, .. }) => natural(end),
            _ => None,
        }
    }
}

impl Values for ChunkValues<'_> {
    fn put(&self, p: Placeholder, out: &mut Vec<u8>) {
        let mut numbers = itoa::Buffer::new();
        match p {
            Placeholder::Id => out.extend_from_slice(numbers.format(self.id).as_bytes()),
            Placeholder::Count => {
                out.extend_from_slice(numbers.format(self.chunk.count()).as_bytes());
            }
            Placeholder::Seed => {
                if let Some(seed) = self.seed {
                    out.extend_from_slice(numbers.format(seed).as_bytes());
                }
            }
            Placeholder::End => {
                if let Chunk::Range { end, .. } = self.chunk {
                    out.extend_from_slice(numbers.format(end).as_bytes());
                }
            }
            // Validation allows `{item}` only with one item per chunk.
            Placeholder::Item | Placeholder::Start => self.chunk.put_first(out),
            Placeholder::Last => self.chunk.put_last(out),
            Placeholder::Items => self.chunk.each(&mut |i, item| {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(item);
            }),
            Placeholder::Name => out.extend_from_slice(self.name.as_bytes()),
            Placeholder::RunId => out.extend_from_slice(self.run_id.as_bytes()),
            // A key that only an `include` adds is empty in the combinations without it.
            Placeholder::Param(i) => {
                let value = self
                    .combo
                    .and_then(|c| c.values.get(usize::from(i)))
                    .and_then(Option::as_ref);
                if let Some(param) = value {
                    out.extend_from_slice(param.text.as_bytes());
                }
            }
        }
    }

    fn items(&self, f: &mut dyn FnMut(usize, &[u8])) {
        self.chunk.each(f);
    }
}
