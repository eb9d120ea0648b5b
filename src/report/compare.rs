//! `poolrun diff`: two runs compared task by task. Tasks are matched by their content key (their
//! items and parameters), not their ids, so runs of differently chunked or ordered plans line up
//! wherever they ran the same work.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::exec::TaskStatus;
use crate::plan::range_content_key;
use crate::report::model::{Provenance, Report, TaskRecord};

/// What differs between two runs.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Tasks matched in both runs.
    pub matched: u64,
    /// Tasks whose outcome or output differs, or that only one run has.
    pub tasks: Vec<TaskDifference>,
    /// `(field, a, b)` for each job field that differs.
    pub job: Vec<(String, String, String)>,
    /// `(field, a, b)` for each provenance field that differs.
    pub provenance: Vec<(String, String, String)>,
}

impl Comparison {
    /// Whether the outcomes and outputs agree (job and provenance fields may still differ).
    pub fn agrees(&self) -> bool {
        self.tasks.is_empty()
    }
}

/// One task that differs.
#[derive(Debug)]
pub struct TaskDifference {
    /// Its row in each run (`None` where that run has no such task).
    pub a: Option<Side>,
    /// Its row in the other.
    pub b: Option<Side>,
    /// Its items and parameters, in a few words.
    pub what: String,
}

/// A task as one run saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// Its id in that run.
    pub id: u64,
    /// How it ended.
    pub status: TaskStatus,
    /// Its exit code.
    pub exit_code: Option<i32>,
    /// Its stdout's SHA-256; `None` for a task that never ran.
    pub stdout: Option<String>,
}

/// Compares run `a` (its report and directory) with run `b`.
pub fn compare(a: (&Report, &Path), b: (&Report, &Path)) -> Comparison {
    let mut out = Comparison::default();
    // Tasks of one run with the same content (the same item listed twice) pair up in order.
    let mut theirs: HashMap<String, Vec<&TaskRecord>> = HashMap::new();
    for row in b.0.tasks.iter().rev() {
        theirs.entry(content_key(row)).or_default().push(row);
    }
    for row in &a.0.tasks {
        let other = theirs.get_mut(&content_key(row)).and_then(Vec::pop);
        let side_a = side(row, a.1);
        let side_b = other.map(|r| side(r, b.1));
        if side_b.is_some() {
            out.matched += 1;
        }
        let same = side_b.as_ref().is_some_and(|s| {
            s.status == side_a.status
                && s.exit_code == side_a.exit_code
                && s.stdout == side_a.stdout
        });
        if !same {
            out.tasks.push(TaskDifference {
                what: row.label(40),
                a: Some(side_a),
                b: side_b,
            });
        }
    }
    let mut only_b: Vec<&TaskRecord> = theirs.into_values().flatten().collect();
    only_b.sort_by_key(|r| r.id);
    for row in only_b {
        out.tasks.push(TaskDifference {
            what: row.label(40),
            a: None,
            b: Some(side(row, b.1)),
        });
    }
    let (ja, jb) = (&a.0.job, &b.0.job);
    let mut job = Fields::default();
    job.add("name", &ja.name, &jb.name);
    job.add("file", &ja.file, &jb.file);
    job.add("sha256", &ja.sha256, &jb.sha256);
    job.add("set", &ja.set.join(" "), &jb.set.join(" "));
    out.job = job.0;
    out.provenance = provenance_fields(a.0, b.0);
    out
}

#[derive(Default)]
struct Fields(Vec<(String, String, String)>);

impl Fields {
    fn add(&mut self, name: &str, a: &str, b: &str) {
        if a != b {
            self.0.push((name.to_owned(), a.to_owned(), b.to_owned()));
        }
    }
}

fn provenance_fields(a: &Report, b: &Report) -> Vec<(String, String, String)> {
    let mut fields = Fields::default();
    fields.add(
        "poolrun_version",
        &a.run.poolrun_version,
        &b.run.poolrun_version,
    );
    fields.add("host", &a.run.host, &b.run.host);
    fields.add(
        "processes",
        &a.run.processes.to_string(),
        &b.run.processes.to_string(),
    );
    let none = Provenance {
        poolrun_version: String::new(),
        poolrun_commit: None,
        host: String::new(),
        os: String::new(),
        kernel: String::new(),
        cpus: 0,
        argv: Vec::new(),
        cwd: String::new(),
        job_sha256: String::new(),
        inputs: Vec::new(),
        set: Vec::new(),
        env: BTreeMap::new(),
    };
    let (pa, pb) = (
        a.run.provenance.as_ref().unwrap_or(&none),
        b.run.provenance.as_ref().unwrap_or(&none),
    );
    let text = |v: Option<&String>| v.cloned().unwrap_or_default();
    fields.add(
        "poolrun_commit",
        &text(pa.poolrun_commit.as_ref()),
        &text(pb.poolrun_commit.as_ref()),
    );
    fields.add("os", &pa.os, &pb.os);
    fields.add("kernel", &pa.kernel, &pb.kernel);
    fields.add("cpus", &pa.cpus.to_string(), &pb.cpus.to_string());
    fields.add("cwd", &pa.cwd, &pb.cwd);
    let inputs = |p: &Provenance| {
        p.inputs
            .iter()
            .map(|i| format!("{} {} ({} items)", i.source, i.sha256, i.items))
            .collect::<Vec<_>>()
            .join(", ")
    };
    fields.add("inputs", &inputs(pa), &inputs(pb));
    let keys: std::collections::BTreeSet<&String> = pa.env.keys().chain(pb.env.keys()).collect();
    for key in keys {
        let value = |p: &Provenance| match p.env.get(key) {
            Some(Some(v)) => v.clone(),
            Some(None) => "(unset)".to_owned(),
            None => "(not recorded)".to_owned(),
        };
        fields.add(&format!("env.{key}"), &value(pa), &value(pb));
    }
    fields.0
}

/// A row's content key; rows of v1 reports have none, and their range bounds give it.
fn content_key(row: &TaskRecord) -> String {
    if !row.content_key.is_empty() {
        return row.content_key.clone();
    }
    match (row.start, row.last, row.end) {
        (Some(start), Some(last), Some(end)) => range_content_key(start, last, end, row.count),
        _ => format!("id:{}", row.id),
    }
}

fn side(row: &TaskRecord, dir: &Path) -> Side {
    let ran = row.started_at.is_some();
    let stdout = row.stdout_sha256.clone().or_else(|| {
        // Reports of poolrun 0.1 have no hash: the output file has the bytes.
        match &row.stdout {
            Some(file) => std::fs::read(dir.join(file))
                .ok()
                .map(|bytes| crate::job::hex(&Sha256::digest(&bytes))),
            None if ran => Some(crate::job::hex(&Sha256::digest(b""))),
            None => None,
        }
    });
    Side {
        id: row.id,
        status: row.status,
        exit_code: row.exit_code,
        stdout,
    }
}

/// The comparison as text: the differing tasks as a table, then the differing fields.
pub fn render(c: &Comparison, total_a: usize, total_b: usize) -> String {
    let mut out = String::new();
    if !c.tasks.is_empty() {
        let _ = writeln!(
            out,
            "{:>6} {:>6}  {:<40}  {:<27}  {:<9}  stdout",
            "A", "B", "task", "status", "exit"
        );
        for t in &c.tasks {
            let id = |s: &Option<Side>| s.as_ref().map_or("-".to_owned(), |s| s.id.to_string());
            let pair = |f: &dyn Fn(&Side) -> String| {
                let a = t.a.as_ref().map_or("-".to_owned(), f);
                let b = t.b.as_ref().map_or("-".to_owned(), f);
                if a == b { a } else { format!("{a} -> {b}") }
            };
            let status = pair(&|s| s.status.as_str().to_owned());
            let exit = pair(&|s| s.exit_code.map_or("-".to_owned(), |c| c.to_string()));
            let stdout = pair(&|s| {
                s.stdout
                    .as_ref()
                    .map_or("-".to_owned(), |h| h[..12].to_owned())
            });
            let stdout = if t.a.is_some() && t.b.is_some() && !stdout.contains("->") {
                "same".to_owned()
            } else {
                stdout
            };
            let _ = writeln!(
                out,
                "{:>6} {:>6}  {:<40}  {status:<27}  {exit:<9}  {stdout}",
                id(&t.a),
                id(&t.b),
                t.what
            );
        }
    }
    for (title, fields) in [("job", &c.job), ("provenance", &c.provenance)] {
        if fields.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}:");
        for (name, a, b) in fields {
            let _ = writeln!(out, "  {name}: {a} -> {b}");
        }
    }
    if c.agrees() {
        let _ = writeln!(
            out,
            "the runs agree: {} tasks matched, the same outcomes and outputs",
            c.matched
        );
    } else {
        let _ = writeln!(
            out,
            "{} tasks differ ({} matched; A has {total_a} tasks, B {total_b})",
            c.tasks.len(),
            c.matched
        );
    }
    out
}
