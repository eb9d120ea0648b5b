//! Fuzzing job parsing and planning with generated TOML: whatever the text, loading either
//! returns a job whose plan renders consistently, or an error that renders; it never panics.
//!
//! CI runs a few hundred cases; a long run is
//! `POOLRUN_FUZZ_CASES=7000000 cargo test --release --lib job::fuzz` (ten to fifteen minutes on
//! two cores). Any failure it finds becomes a case in `tests/fixtures/invalid/` or a unit test.

use std::path::Path;
use std::sync::{Arc, LazyLock};

use proptest::prelude::*;

use crate::job::file::TABLE_KEYS;
use crate::job::{Overrides, parse};
use crate::plan::{Plan, RunInfo, TaskId, TaskItems};

/// Keys, valid and not, that a job file might hold, by table.
const TOP: &[&str] = &[
    "name",
    "description",
    "cwd",
    "env-clear",
    "env-pass",
    "comand",
];
const RANGE: &[&str] = &["start", "end", "step", "chunk-size", "chunk_size", "stop"];
/// `[pool]`'s keys, and a typo.
static POOL: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let (_, keys) = TABLE_KEYS
        .iter()
        .find(|(t, _)| *t == "pool")
        .expect("[pool]");
    keys.iter().copied().chain(["timout"]).collect()
});

fn integer() -> impl Strategy<Value = String> {
    prop_oneof![
        (-20i64..20).prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "0",
            "1",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "4611686018427387904",
            "1000000000",
            "0x10",
            "1_000",
            "+5",
            "1e3",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

fn string() -> impl Strategy<Value = String> {
    let fragment = prop::sample::select(vec![
        "{id}",
        "{start}",
        "{last}",
        "{end}",
        "{count}",
        "{items}",
        "{name}",
        "{run-id}",
        "{",
        "}",
        "{{",
        "}}",
        "{x}",
        "echo ",
        "30s",
        "1m 30s",
        "0s",
        "-1s",
        "auto",
        "50%",
        "0%",
        "1 fortnight",
        "512MiB",
        "first-failure",
        "soon",
        "now",
        "wait",
        "skip",
        "failed",
        "timed_out",
        "$HOME",
        "${HOME}",
        "'",
        "\\\\",
        "\\u0000",
        "é",
    ]);
    prop::collection::vec(
        prop_oneof![3 => fragment.prop_map(str::to_owned), 1 => "[ -~]{0,5}"],
        0..5,
    )
    .prop_map(|parts| format!("\"{}\"", parts.concat().replace('"', "")))
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => integer(),
        4 => string(),
        1 => Just("true".to_owned()),
        1 => Just("1.5".to_owned()),
        1 => Just("1979-05-27T07:32:00Z".to_owned()),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(
                (
                    prop::sample::select(POOL.iter().chain(RANGE).copied().collect::<Vec<_>>()),
                    inner
                ),
                0..3
            )
            .prop_map(|kv| format!(
                "{{ {} }}",
                kv.iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ]
    })
}

/// A value that suits `key` most of the time, anything some of the time.
fn value_for(key: &'static str) -> BoxedStrategy<String> {
    let good: BoxedStrategy<String> = match key {
        "start" | "end" | "step" | "chunk-size" | "retries" | "max-processes" => integer().boxed(),
        "processes" => prop_oneof![
            (0i64..6).prop_map(|n| n.to_string()),
            Just("\"auto\"".to_owned()),
            Just("\"50%\"".to_owned())
        ]
        .boxed(),
        "timeout" | "grace-period" | "deadline" | "retry-delay" => prop::sample::select(vec![
            "\"1s\"",
            "\"250ms\"",
            "\"0s\"",
            "\"2h\"",
            "{ initial = \"1s\", factor = 2 }",
        ])
        .prop_map(str::to_owned)
        .boxed(),
        "halt" => prop::sample::select(vec![
            "\"never\"",
            "\"first-failure\"",
            "{ max-failures = 2 }",
            "{ max-failure-rate = \"10%\", after = 3 }",
        ])
        .prop_map(str::to_owned)
        .boxed(),
        "env-clear" => Just("true".to_owned()).boxed(),
        "env-pass" | "retry-on" => Just("[\"PATH\", \"failed\"]".to_owned()).boxed(),
        _ => string().boxed(),
    };
    prop_oneof![3 => good, 1 => value()].boxed()
}

fn table(name: &'static str, keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::subsequence(keys, 0..keys.len().min(6))
        .prop_flat_map(|keys| {
            keys.into_iter()
                .map(|k| value_for(k).prop_map(move |v| (k, v)))
                .collect::<Vec<_>>()
        })
        .prop_map(move |entries| {
            let body: String = entries
                .iter()
                .fold(String::new(), |body, (k, v)| body + k + " = " + v + "\n");
            if name.is_empty() {
                body
            } else {
                format!("[{name}]\n{body}")
            }
        })
}

/// A job file: mostly well-formed TOML with plausible keys and values, sometimes mangled.
fn job_file() -> impl Strategy<Value = String> {
    let sane_range = (
        -50i64..50,
        -50i64..50,
        prop_oneof![Just(1i64), Just(-1), -5i64..5],
        1i64..7,
    )
        .prop_map(|(s, e, step, c)| {
            format!("[range]\nstart = {s}\nend = {e}\nstep = {step}\nchunk-size = {c}\n")
        });
    let command = prop_oneof![
        string().prop_map(|s| format!("command = {s}\n")),
        prop::collection::vec(string(), 0..4)
            .prop_map(|v| format!("command = [{}]\n", v.join(", "))),
    ];
    let text = (
        command,
        table("", TOP),
        prop_oneof![sane_range, table("range", RANGE).boxed()],
        table("pool", &POOL),
        table("report", &["dir", "directory"]),
    );
    (text, any::<u16>(), any::<u8>()).prop_map(
        |((command, top, range, pool, report), cut, byte)| {
            let mut text = format!("{command}{top}{range}{pool}{report}");
            // One time in eight, damage the text: cut it short or drop in a byte.
            match byte % 8 {
                0 if !text.is_empty() => {
                    text.truncate(text.floor_char_boundary(usize::from(cut) % text.len()));
                }
                1 if !text.is_empty() => {
                    let at = text.floor_char_boundary(usize::from(cut) % text.len());
                    text.insert(at, char::from(byte % 128));
                }
                _ => {}
            }
            text
        },
    )
}

/// A job file made only of valid keys with plausible values: most of these load, and their plans
/// are what gets exercised.
fn plausible_job() -> impl Strategy<Value = String> {
    let placeholder = prop::sample::select(vec![
        "{id}", "{start}", "{last}", "{end}", "{count}", "{items}", "{name}", "{run-id}", "{{",
        "}}", "x", " ", "'", "$",
    ]);
    let command = prop::collection::vec(placeholder, 1..6)
        .prop_map(|p| format!("command = \"echo {}\"\n", p.concat()));
    let range = (
        integer(),
        integer(),
        prop_oneof![Just(1i64), Just(-1), -5i64..5, any::<i64>()],
        prop_oneof![1i64..7, any::<i64>()],
    )
        .prop_map(|(s, e, step, c)| {
            format!("[range]\nstart = {s}\nend = {e}\nstep = {step}\nchunk-size = {c}\n")
        });
    let pool = prop::sample::subsequence(
        &[
            "processes",
            "timeout",
            "grace-period",
            "retries",
            "retry-delay",
            "halt",
            "deadline",
        ][..],
        0..4,
    )
    .prop_flat_map(|keys| {
        keys.into_iter()
            .map(|k| value_for(k).prop_map(move |v| format!("{k} = {v}\n")))
            .collect::<Vec<_>>()
    })
    .prop_map(|lines| format!("[pool]\n{}", lines.concat()));
    (command, range, pool).prop_map(|(c, r, p)| format!("{c}{r}{p}"))
}

fn cases() -> u32 {
    std::env::var("POOLRUN_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn loading_and_planning_never_panic(text in prop_oneof![plausible_job(), job_file()]) {
        let path = Path::new("/tmp/poolrun-fuzz/job.toml");
        match parse(path, &text, &Overrides::default()) {
            Err(e) => {
                let shown = e.to_string();
                prop_assert!(!shown.is_empty());
            }
            Ok(job) => {
                let job = Arc::new(job);
                let run = RunInfo { id: "20260101T000000Z-0000".to_owned(), dir: "/tmp/poolrun-fuzz/run".into() };
                let plan = Plan::new(Arc::clone(&job), run);
                let Some(crate::job::Source::Range(range)) = job.source.clone() else {
                    return Err(TestCaseError::fail("the fuzzed jobs have a range"));
                };
                prop_assert_eq!(plan.len(), range.items.div_ceil(range.chunk_size.get()));
                let ids = [0, plan.len() / 2, plan.len().saturating_sub(1)];
                for id in ids.into_iter().filter(|&id| id < plan.len()) {
                    let task = plan.task(TaskId(id));
                    let TaskItems::Range { start, last, end, count } = task.items else {
                        return Err(TestCaseError::fail("a range task"));
                    };
                    prop_assert!(count >= 1 && count <= range.chunk_size.get());
                    let span = i128::from(count - 1) * i128::from(range.step);
                    prop_assert_eq!(i128::from(last), i128::from(start) + span);
                    prop_assert_eq!(i128::from(end), i128::from(last) + i128::from(range.step));
                    prop_assert!(!task.argv.is_empty() && !task.argv[0].is_empty());
                }
            }
        }
    }
}

/// A job over `[values]` and a `[matrix]` of plausible and implausible keys and values, with
/// `include` and `exclude` entries and placeholders that may or may not have a value.
fn matrix_job() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        8 => prop::sample::select(vec!["1", "2.0", "true", "\"a b\"", "\"x\""]).prop_map(str::to_owned),
        2 => "-?[1-9][0-9]{0,2}",
        1 => Just("[1]".to_owned()),
    ];
    let key = prop_oneof![
        8 => prop::sample::select(vec!["lr", "model", "a-b"]),
        1 => prop::sample::select(vec!["seed", "start", "a_b", "x y"]),
    ];
    // One to three values (an empty list is an error the other generator finds).
    let values = prop::collection::vec(scalar.clone(), 1..4).prop_map(|v| v.join(", "));
    let keys = prop::collection::btree_map(key.clone(), values, 0..4).prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| format!("\"{k}\" = [{v}]"))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    });
    let entry = prop::collection::btree_map(key, scalar, 1..3).prop_map(|kv| {
        let fields: Vec<String> = kv
            .into_iter()
            .map(|(k, v)| format!("\"{k}\" = {v}"))
            .collect();
        format!("{{ {} }}", fields.join(", "))
    });
    let entries = prop::collection::vec(entry, 0..2).prop_map(|e| e.join(", "));
    let placeholder = prop::sample::select(vec![
        "{id}", "{item}", "{items}", "{start}", "{last}", "{end}", "{count}", "{seed}", "{lr}",
        "{model}", "{a-b}", "x", " ",
    ]);
    let command = prop::collection::vec(placeholder, 1..5)
        .prop_map(|p| format!("command = \"echo {}\"\n", p.concat()));
    let source = prop_oneof![
        Just(String::new()),
        (
            prop::collection::vec(scalar_item(), 0..6),
            prop_oneof![8 => 1i64..4, 1 => -1i64..1]
        )
            .prop_map(|(items, chunk)| {
                format!(
                    "[values]\nitems = [{}]\nchunk-size = {chunk}\n",
                    items.join(", ")
                )
            }),
    ];
    (
        command,
        prop_oneof![Just(""), Just("seed = 3\n")],
        source,
        keys,
        entries.clone(),
        entries,
    )
        .prop_map(|(command, seed, source, keys, include, exclude)| {
            format!(
                "{command}{seed}{source}[matrix]\n{keys}include = [{include}]\nexclude = [{exclude}]\n"
            )
        })
}

fn scalar_item() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["\"a\"", "3", "2.5", "\"$(x) 'y'\""]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["\"\\n\"", "{ a = 1 }"]).prop_map(str::to_owned),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Lists and matrices: a loaded job's plan has every chunk for every combination, and every
    /// task renders the same twice (content key and seed included).
    #[test]
    fn matrices_and_lists_plan_consistently(text in matrix_job()) {
        let path = Path::new("/tmp/poolrun-fuzz/job.toml");
        match parse(path, &text, &Overrides::default()) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(job) => {
                let job = Arc::new(job);
                let run = RunInfo { id: "20260101T000000Z-0000".to_owned(), dir: "/tmp/poolrun-fuzz/run".into() };
                let plan = Plan::new(Arc::clone(&job), run);
                let combos = job.matrix.as_ref().map_or(1, |m| m.combos.len() as u64);
                let chunks = job.source.as_ref().map_or(1, crate::job::Source::chunks);
                prop_assert_eq!(plan.len(), combos * chunks);
                for task in plan.tasks() {
                    prop_assert_eq!(&plan.task(task.id), &task);
                    prop_assert_eq!(task.seed.is_some(), job.seed.is_some());
                    prop_assert!(task.items.count() <= job.source.as_ref().map_or(0, |s| s.chunk_size().get()));
                }
            }
        }
    }
}
