//! One chunk of a job's range and the values its placeholders take: what the planner renders a
//! task from, and what validation renders the largest chunks with to check they fit.

use crate::job::Range;
use crate::job::template::{Placeholder, Values};

/// The placeholder values of one chunk.
#[derive(Debug, Clone, Copy)]
pub struct ChunkValues<'a> {
    /// The task's index in plan order.
    pub id: u64,
    /// The first item.
    pub start: i64,
    /// The last item, inclusive.
    pub last: i64,
    /// The exclusive end.
    pub end: i64,
    /// Items in the chunk.
    pub count: u64,
    /// The range's step.
    pub step: i64,
    /// The job's name.
    pub name: &'a str,
    /// The run's id.
    pub run_id: &'a str,
}

impl Range {
    /// Chunk `index` (below `tasks()`), for a job called `name` in run `run_id`.
    pub fn chunk<'a>(&self, index: u64, name: &'a str, run_id: &'a str) -> ChunkValues<'a> {
        let chunk = self.chunk_size.get();
        let first = index * chunk;
        let count = chunk.min(self.items - first);
        // Job validation guarantees `start + items * step` fits in an i64; every value below
        // is at most that far from `start`.
        let at = |index: u64| {
            let value = i128::from(self.start) + i128::from(index) * i128::from(self.step);
            i64::try_from(value).expect("validated range")
        };
        ChunkValues {
            id: index,
            start: at(first),
            last: at(first + count - 1),
            end: at(first + count),
            count,
            step: self.step,
            name,
            run_id,
        }
    }
}

impl Values for ChunkValues<'_> {
    fn get(&self, p: Placeholder) -> String {
        match p {
            Placeholder::Id => self.id.to_string(),
            Placeholder::Start => self.start.to_string(),
            Placeholder::Last => self.last.to_string(),
            Placeholder::End => self.end.to_string(),
            Placeholder::Count => self.count.to_string(),
            Placeholder::Items => {
                let mut out = String::new();
                self.items(&mut |i, item| {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(item);
                });
                out
            }
            Placeholder::Name => self.name.to_owned(),
            Placeholder::RunId => self.run_id.to_owned(),
        }
    }

    fn items(&self, f: &mut dyn FnMut(usize, &str)) {
        let mut item = self.start;
        for i in 0..self.count {
            f(usize::try_from(i).unwrap_or(usize::MAX), &item.to_string());
            // The step past the last item is `end`, which fits in an i64.
            item = item.wrapping_add(self.step);
        }
    }
}
