//! The run-state settings of `[pool]`: retries, halting and overlapping runs, as written (serde
//! types with their own visitors, so a wrong value is reported at its place) and as validated.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor, value::MapAccessDeserializer};
use serde::{Deserialize, Serialize};

use std::borrow::Cow;

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::json;

use crate::job::duration::DurationValue;
use crate::job::grammar;

/// `retry-delay`: a fixed duration, or an exponential backoff.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryDelaySpec {
    /// The same delay before every retry.
    Fixed(DurationValue),
    /// A delay that grows with each attempt.
    Exponential(ExponentialSpec),
}

impl JsonSchema for RetryDelaySpec {
    fn schema_name() -> Cow<'static, str> {
        "RetryDelay".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let table = generator.subschema_for::<ExponentialSpec>();
        json_schema!({
            "if": {"type": "string"},
            "then": {"type": "string", "pattern": grammar::DURATION.pattern()},
            "else": table,
        })
    }
}

/// `retry-delay = { initial = "1s", factor = 2, max = "1m", jitter = "20%" }`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExponentialSpec {
    /// The delay before the first retry.
    #[schemars(schema_with = "duration", extend("examples" = ["1s"]))]
    pub initial: DurationValue,
    /// Each further retry waits this many times longer, from 1 to 100. Default: 2.
    #[schemars(range(min = grammar::FACTOR.0, max = grammar::FACTOR.1), extend("default" = 2, "examples" = [1.5]))]
    pub factor: Option<f64>,
    /// The longest delay. Default: none.
    #[serde(default)]
    #[schemars(schema_with = "duration", extend("examples" = ["1m"]))]
    pub max: Option<DurationValue>,
    /// Up to this share of each delay is taken off at random, so retries of many tasks spread
    /// out, from 0% to 100%. Default: `"0%"`.
    #[schemars(pattern(grammar::PERCENT.pattern()), extend("default" = "0%", "examples" = ["20%"]))]
    pub jitter: Option<String>,
}

/// The schema of a duration.
pub(super) fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": grammar::DURATION.pattern()})
}

impl<'de> Deserialize<'de> for RetryDelaySpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DelayVisitor;
        impl<'de> Visitor<'de> for DelayVisitor {
            type Value = RetryDelaySpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a duration such as "2s", or a table { initial = "1s", factor = 2, max = "1m", jitter = "20%" }"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                DurationValue::deserialize(de::value::StrDeserializer::<E>::new(v))
                    .map(RetryDelaySpec::Fixed)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ExponentialSpec::deserialize(MapAccessDeserializer::new(map))
                    .map(RetryDelaySpec::Exponential)
            }
        }
        deserializer.deserialize_any(DelayVisitor)
    }
}

/// One entry of `retry-on`: an outcome name or an exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOnItem {
    /// `"failed"`, `"timed_out"` or `"spawn_failed"`.
    Outcome(String),
    /// A failed attempt with this exit code.
    ExitCode(i32),
}

/// The outcomes `retry-on` may name.
pub const RETRY_OUTCOMES: [&str; 3] = ["failed", "timed_out", "spawn_failed"];

impl JsonSchema for RetryOnItem {
    fn schema_name() -> Cow<'static, str> {
        "RetryOn".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "if": {"type": "string"},
            "then": {"type": "string", "enum": RETRY_OUTCOMES},
            "else": {"type": "integer", "minimum": 0, "maximum": grammar::MAX_EXIT_CODE},
        })
    }
}

impl<'de> Deserialize<'de> for RetryOnItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl Visitor<'_> for ItemVisitor {
            type Value = RetryOnItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#""failed", "timed_out", "spawn_failed" or an exit code"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if RETRY_OUTCOMES.contains(&v) {
                    Ok(RetryOnItem::Outcome(v.to_owned()))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match i32::try_from(v) {
                    Ok(code) if (0..=i32::from(grammar::MAX_EXIT_CODE)).contains(&code) => {
                        Ok(RetryOnItem::ExitCode(code))
                    }
                    _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(ItemVisitor)
    }
}

/// `halt` as written: a name, or a table.
#[derive(Debug, Clone, PartialEq)]
pub enum HaltSpec {
    /// `"never"` or `"first-failure"`.
    Named(String),
    /// `{ max-failures = N }` or `{ max-failure-rate = "10%", after = N }`.
    Table(HaltTable),
}

/// The names `halt` may be.
pub const HALT_NAMES: [&str; 2] = ["never", "first-failure"];

impl JsonSchema for HaltSpec {
    fn schema_name() -> Cow<'static, str> {
        "Halt".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let table = generator.subschema_for::<HaltTable>();
        json_schema!({
            "if": {"type": "string"},
            "then": {"type": "string", "enum": HALT_NAMES},
            "else": table,
        })
    }
}

/// The table form of `halt`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(transform = halt_rules)]
pub struct HaltTable {
    /// Halt at the N-th failed task (N >= 1).
    #[schemars(range(min = 1), extend("examples" = [3]))]
    pub max_failures: Option<i64>,
    /// Halt when failed / finished tasks reaches this share, above 0% and up to 100%.
    #[schemars(pattern(grammar::POSITIVE_PERCENT.pattern()), extend("examples" = ["10%"]))]
    pub max_failure_rate: Option<String>,
    /// With `max-failure-rate`: judge the rate only once this many tasks have finished.
    /// Default: 1.
    #[schemars(range(min = 1), extend("default" = 1, "examples" = [20]))]
    pub after: Option<i64>,
}

/// One of `max-failures` and `max-failure-rate`, and `after` only with the rate.
fn halt_rules(schema: &mut Schema) {
    let has = |key: &str| json!({"properties": {key: true}, "required": [key]});
    schema.insert("minProperties".into(), 1.into());
    schema.insert(
        "anyOf".into(),
        json!([has("max-failures"), has("max-failure-rate")]),
    );
    schema.insert("if".into(), has("max-failures"));
    schema.insert(
        "then".into(),
        json!({"properties": {"max-failure-rate": false, "after": false}}),
    );
}

impl<'de> Deserialize<'de> for HaltSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HaltVisitor;
        impl<'de> Visitor<'de> for HaltVisitor {
            type Value = HaltSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#""never", "first-failure", { max-failures = N } or { max-failure-rate = "10%", after = N }"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if HALT_NAMES.contains(&v) {
                    Ok(HaltSpec::Named(v.to_owned()))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                HaltTable::deserialize(MapAccessDeserializer::new(map)).map(HaltSpec::Table)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
            }
        }
        deserializer.deserialize_any(HaltVisitor)
    }
}

/// What running tasks do when the run halts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HaltMode {
    /// Running tasks finish; no new task starts.
    #[default]
    Soon,
    /// Running tasks get the kill sequence (SIGTERM, grace period, SIGKILL) and are cancelled.
    Now,
}

/// What a run does when another run of the same job holds the lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// Exit 75 at once.
    #[default]
    Skip,
    /// Wait for the other run to end.
    Wait,
}

/// Validated retry settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Attempts after the first; a task runs at most `retries + 1` times.
    pub retries: u32,
    /// The delay before each retry.
    pub delay: Backoff,
    /// Which outcomes are retried.
    pub on: RetryOn,
}

/// How long to wait before a retry.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Before the first retry.
    pub initial: Duration,
    /// Growth per retry; 1 for a fixed delay.
    pub factor: f64,
    /// The cap.
    pub max: Option<Duration>,
    /// The share, 0..=1, that may be taken off at random.
    pub jitter: f64,
}

impl Backoff {
    /// No delay.
    pub const NONE: Backoff = Backoff {
        initial: Duration::ZERO,
        factor: 1.0,
        max: None,
        jitter: 0.0,
    };

    /// The delay before retry number `retry` (1 for the first), given a random `unit` in 0..1.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let mut seconds = self.initial.as_secs_f64() * self.factor.powi(exponent);
        if let Some(max) = self.max {
            seconds = seconds.min(max.as_secs_f64());
        }
        seconds *= 1.0 - self.jitter * unit.clamp(0.0, 1.0);
        // Far beyond any sensible delay; keeps the conversion finite.
        Duration::from_secs_f64(seconds.clamp(0.0, 1e9))
    }
}

/// Which outcomes are retried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// Any failed attempt.
    pub failed: bool,
    /// Timed-out attempts.
    pub timed_out: bool,
    /// Attempts that could not start.
    pub spawn_failed: bool,
    /// Failed attempts with these exit codes.
    pub exit_codes: Vec<i32>,
}

impl RetryOn {
    /// The default: failed and timed-out attempts, not spawn failures.
    pub fn default_set() -> Self {
        Self {
            failed: true,
            timed_out: true,
            spawn_failed: false,
            exit_codes: Vec::new(),
        }
    }

    /// From `retry-on`.
    pub fn from_items(items: &[RetryOnItem]) -> Self {
        let mut on = Self::default();
        for item in items {
            match item {
                RetryOnItem::Outcome(o) if o == "failed" => on.failed = true,
                RetryOnItem::Outcome(o) if o == "timed_out" => on.timed_out = true,
                RetryOnItem::Outcome(_) => on.spawn_failed = true,
                RetryOnItem::ExitCode(code) => on.exit_codes.push(*code),
            }
        }
        on
    }
}

/// When the run stops starting tasks because too many failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Halt {
    /// Run every task whatever happens.
    Never,
    /// Halt at the N-th failure.
    MaxFailures(u64),
    /// Halt when failures / finished >= rate, once at least `after` tasks finished.
    MaxFailureRate {
        /// 0..=1.
        rate: f64,
        /// Finished tasks before the rate is judged.
        after: u64,
    },
}

impl Halt {
    /// Whether `failed` failures among `finished` finished tasks halt the run.
    pub fn triggered(&self, failed: u64, finished: u64) -> bool {
        match *self {
            Self::Never => false,
            Self::MaxFailures(n) => failed >= n,
            #[allow(clippy::cast_precision_loss, reason = "task counts far below 2^52")]
            Self::MaxFailureRate { rate, after } => {
                finished >= after && finished > 0 && failed as f64 / finished as f64 >= rate
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            factor: 2.0,
            max: Some(Duration::from_secs(5)),
            jitter: 0.5,
        };
        assert_eq!(b.delay(1, 0.0), Duration::from_secs(1));
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(b.delay(4, 0.0), Duration::from_secs(5));
        assert_eq!(b.delay(2, 1.0), Duration::from_secs(1));
        assert_eq!(Backoff::NONE.delay(7, 0.3), Duration::ZERO);
    }

    #[test]
    fn halt_rules() {
        assert!(!Halt::Never.triggered(100, 100));
        assert!(Halt::MaxFailures(2).triggered(2, 3));
        assert!(!Halt::MaxFailures(2).triggered(1, 3));
        let rate = Halt::MaxFailureRate {
            rate: 0.5,
            after: 4,
        };
        assert!(!rate.triggered(3, 3), "not judged before 4 finished");
        assert!(rate.triggered(2, 4));
        assert!(!rate.triggered(1, 4));
    }
}
