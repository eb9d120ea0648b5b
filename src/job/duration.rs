//! Durations as a job file writes them: `"30s"`, `"1m 30s"`, `"1.5h"`, at most ten years.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

pub use crate::job::grammar::MAX_DURATION;
use crate::job::grammar::{self, DurationError};

/// A duration spelled as `grammar::DURATION` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

/// What a duration looks like, for messages.
pub const EXPECTED: &str = r#"a duration such as "30s", "1m 30s" or "250ms""#;

/// Parses a duration, with the message that says what is wrong with it.
pub fn parse(text: &str) -> Result<Duration, String> {
    grammar::parse_duration(text).map_err(|e| match e {
        DurationError::TooLong => {
            format!("expected a duration of at most 10 years, found {text:?}")
        }
        DurationError::Spelling if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            format!("expected {EXPECTED}, found {text:?}, which has no unit")
        }
        DurationError::Spelling => format!("expected {EXPECTED}, found {text:?}"),
    })
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse(v).map(DurationValue).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}
