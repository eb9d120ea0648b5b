//! Durations as a job file writes them: humantime text, at most ten years.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// The longest duration a job file may give: anything longer is a typo, and keeping durations
/// this short keeps every deadline computed from them representable.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// A duration written in humantime syntax: "30s", "1m 30s", "250ms", "2h".
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[schemars(transparent)]
pub struct DurationValue(
    #[schemars(
        with = "String",
        pattern(r"^\s*[0-9]+\s*[a-zµ]+(\s*[0-9]+\s*[a-zµ]+)*\s*$")
    )]
    pub Duration,
);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a duration such as "30s", "1m 30s" or "250ms""#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match humantime::parse_duration(v) {
                    Ok(d) if d <= MAX_DURATION => Ok(DurationValue(d)),
                    Ok(_) => Err(E::invalid_value(
                        de::Unexpected::Str(v),
                        &"a duration of at most 10 years",
                    )),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}
