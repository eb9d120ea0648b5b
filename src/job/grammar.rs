//! The spelling of every job-file string that has one: names, durations, sizes, percentages.
//!
//! Each rule is one regular expression, and that same string is both the JSON Schema's `pattern`
//! and what `poolrun validate` checks, so an editor and poolrun cannot disagree about a value's
//! spelling. The patterns keep to the part of regex syntax that JavaScript (ajv), Rust's `regex`
//! (poolrun, Taplo) and every other JSON Schema validator read alike: ASCII classes, no `\s`,
//! `\d` or lookaround, and anchored at both ends.

use std::sync::OnceLock;
use std::time::Duration;

use regex_lite::Regex;

/// A pattern, built once and compiled once.
pub struct Rule {
    build: fn() -> String,
    compiled: OnceLock<(String, Regex)>,
}

impl Rule {
    const fn new(build: fn() -> String) -> Self {
        Self {
            build,
            compiled: OnceLock::new(),
        }
    }

    fn get(&self) -> &(String, Regex) {
        self.compiled.get_or_init(|| {
            let pattern = (self.build)();
            let regex = Regex::new(&pattern).expect("the grammar's patterns compile");
            (pattern, regex)
        })
    }

    /// The pattern, as the schema writes it.
    pub fn pattern(&self) -> &str {
        &self.get().0
    }

    /// Whether `text` is spelled by this rule.
    pub fn is_match(&self, text: &str) -> bool {
        self.get().1.is_match(text)
    }
}

/// A job name: letters, digits, `.`, `_` and `-`, not only dots (`.` and `..` would leave the
/// run root).
pub static NAME: Rule = Rule::new(|| "^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$".into());

/// A string that reaches a process: anything but NUL.
pub static NO_NUL: Rule = Rule::new(|| r"^[^\x00]*$".into());

/// A shell command: something that is not blank, and no NUL.
pub static SHELL_COMMAND: Rule = Rule::new(|| format!(r"^[^\x00]*[^\x00{BLANK}][^\x00]*$"));

/// An environment variable's name: not empty, no `=` and no NUL.
pub static VARIABLE: Rule = Rule::new(|| r"^[^=\x00]+$".into());

/// An item of `[values]`: one line, no NUL.
pub static ITEM: Rule = Rule::new(|| r"^[^\n\x00]*$".into());

/// A matrix parameter's name: usable as a placeholder and, upper-cased, as a variable name.
pub static PARAMETER: Rule = Rule::new(|| "^[A-Za-z0-9_-]+$".into());

/// A Slurm partition, account or QOS: no blanks or NUL, not starting with `-`.
pub static SLURM_NAME: Rule = Rule::new(|| format!(r"^[^{BLANK}\x00-][^{BLANK}\x00]*$"));

/// An `sbatch` option: starts with `-`, no NUL.
pub static SBATCH_OPTION: Rule = Rule::new(|| r"^-[^\x00]*$".into());

/// A duration: parts such as `30s`, `1.5h` or `1m 30s`, each a number and a unit.
pub static DURATION: Rule = Rule::new(|| format!("^{PART}( *{PART})*$", PART = part(NUMBER)));

/// A duration above zero: at least one part's number is not zero.
pub static POSITIVE_DURATION: Rule = Rule::new(|| {
    let zero = part("0+(\\.0+)?");
    let nonzero = part("([0-9]*[1-9][0-9]*(\\.[0-9]+)?|[0-9]+\\.[0-9]*[1-9][0-9]*)");
    let any = part(NUMBER);
    format!("^({zero} *)*{nonzero}( *{any})*$")
});

/// A percentage from 0% to 100%.
pub static PERCENT: Rule = Rule::new(|| r"^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)%$".into());

/// A percentage above 0% and up to 100%.
pub static POSITIVE_PERCENT: Rule = Rule::new(|| {
    r"^(100(\.0+)?|([0-9]?[1-9]|[1-9][0-9])(\.[0-9]+)?|0{1,2}\.[0-9]*[1-9][0-9]*)%$".into()
});

/// `processes` as a string: `auto`, or `N%` of the CPUs with N from 1 to `MAX_PERCENT`.
pub static PROCESSES: Rule =
    Rule::new(|| format!("^(auto|({})%)$", from_to(1, u64::from(MAX_PERCENT))));

/// The most tasks that may run at once: each takes a worker thread and a process.
pub const MAX_PROCESSES: usize = 4096;

/// The most retries of a task.
pub const MAX_RETRIES: u32 = 1000;

/// The most runs `[report] keep` may keep.
pub const MAX_KEEP: u32 = 1_000_000;

/// The largest exit code a retry may name.
pub const MAX_EXIT_CODE: u8 = 255;

/// The bounds of a backoff's `factor`.
pub const FACTOR: (f64, f64) = (1.0, 100.0);

/// The largest `processes = "N%"`: a hundred processes per CPU.
pub const MAX_PERCENT: u32 = 10_000;

/// A size of at least one MiB: a number and an optional unit, `KiB` to `TiB` powers of 1024
/// and `KB` to `TB` powers of 1000.
pub static MEMORY_SIZE: Rule = Rule::new(|| {
    let sizes: Vec<String> = SIZE_UNITS
        .iter()
        .map(|&(unit, scale)| {
            let least = MIN_MEMORY.div_ceil(scale);
            format!("({}) *{unit}", at_least(least))
        })
        .collect();
    format!("^({})$", sizes.join("|"))
});

/// The smallest memory limit: below this no program starts.
pub const MIN_MEMORY: u64 = 1 << 20;

/// The units of a size, with their bytes; `""` is bytes.
const SIZE_UNITS: [(&str, u64); 10] = [
    ("", 1),
    ("B", 1),
    ("KB", 1000),
    ("MB", 1000 * 1000),
    ("GB", 1000 * 1000 * 1000),
    ("TB", 1000 * 1000 * 1000 * 1000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// The blanks a pattern may name in a class: ASCII space, tab, newline, CR, VT, FF.
const BLANK: &str = r" \t\n\r\x0b\x0c";

/// A number of a duration: digits, and a fraction.
const NUMBER: &str = "[0-9]+(\\.[0-9]+)?";

/// A duration's units with their length in nanoseconds, as humantime names them.
const DURATION_UNITS: [(&str, u128); 10] = [
    ("nanos|nsec|ns", 1),
    ("usec|us|µs", 1_000),
    ("millis|msec|ms", 1_000_000),
    ("seconds|second|secs|sec|s", SECOND),
    ("minutes|minute|mins|min|m", 60 * SECOND),
    ("hours|hour|hrs|hr|h", 3600 * SECOND),
    ("days|day|d", 86_400 * SECOND),
    ("weeks|week|wks|wk|w", 7 * 86_400 * SECOND),
    ("months|month|M", 2_630_016 * SECOND),
    ("years|year|yrs|yr|y", 31_557_600 * SECOND),
];

const SECOND: u128 = 1_000_000_000;

/// One part of a duration: `number`, blanks, a unit.
fn part(number: &str) -> String {
    let units: Vec<&str> = DURATION_UNITS.iter().map(|(names, _)| *names).collect();
    format!("{number} *({})", units.join("|"))
}

/// The longest duration a job file may give: anything longer is a typo, and keeping durations
/// this short keeps every deadline computed from them representable.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// Why a duration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// It is not spelled as `DURATION` says.
    Spelling,
    /// It is longer than `MAX_DURATION`.
    TooLong,
}

/// Parses a duration spelled as `DURATION` says. A fraction of a nanosecond counts as a whole
/// one, so a duration written with a digit that is not zero is never zero.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if !DURATION.is_match(text) {
        return Err(DurationError::Spelling);
    }
    let mut total: u128 = 0;
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let after = after.trim_start();
        let letters = after
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(letters);
        let scale = DURATION_UNITS
            .iter()
            .find(|(names, _)| names.split('|').any(|n| n == unit))
            .map_or(0, |&(_, scale)| scale);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        total = total.saturating_add(decimal(whole).saturating_mul(scale));
        if !fraction.is_empty() {
            // Twenty digits keep `digits * scale` inside 128 bits; a digit past them that is
            // not zero rounds up like any other remainder.
            let (kept, past) = fraction.split_at(fraction.len().min(FRACTION_DIGITS));
            let denominator = 10u128.pow(u32::try_from(kept.len()).unwrap_or(0));
            let scaled = decimal(kept) * scale;
            let exact = scaled.is_multiple_of(denominator) && past.bytes().all(|b| b == b'0');
            total = total.saturating_add(scaled / denominator + u128::from(!exact));
        }
        rest = after.trim_start();
    }
    if total > MAX_DURATION.as_nanos() {
        return Err(DurationError::TooLong);
    }
    let nanos = u64::try_from(total).expect("at most ten years");
    Ok(Duration::from_nanos(nanos))
}

/// The fraction digits a duration's part is read to; any further digit only rounds up.
const FRACTION_DIGITS: usize = 20;

/// The value of ASCII digits, saturating.
fn decimal(digits: &str) -> u128 {
    digits.bytes().fold(0u128, |n, d| {
        n.saturating_mul(10).saturating_add(u128::from(d - b'0'))
    })
}

/// Parses a size spelled as `MEMORY_SIZE` says, in bytes; `None` if it is not, or does not
/// fit in 64 bits.
pub fn parse_memory_size(text: &str) -> Option<u64> {
    if !MEMORY_SIZE.is_match(text) {
        return None;
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim_start();
    let scale = SIZE_UNITS.iter().find(|(u, _)| *u == unit)?.1;
    number.parse::<u64>().ok()?.checked_mul(scale)
}

/// Parses a percentage spelled as `rule` says into a share, 0..=1.
pub fn parse_percent(rule: &Rule, text: &str) -> Option<f64> {
    if !rule.is_match(text) {
        return None;
    }
    text.strip_suffix('%')?
        .parse::<f64>()
        .ok()
        .map(|p| p / 100.0)
}

/// A pattern (unanchored, no group) for the integers `least` and above, in plain decimal.
fn at_least(least: u64) -> String {
    let digits = least.to_string();
    let width = digits.len();
    // Any number with more digits.
    let mut options = vec![format!("[1-9][0-9]{{{width},}}")];
    // Numbers as long, larger from some place on: the same leading digits, a larger digit,
    // then anything.
    for place in 0..width {
        let digit = digits.as_bytes()[place] - b'0';
        let smallest = if place == width - 1 { digit } else { digit + 1 };
        if smallest > 9 {
            continue;
        }
        let prefix = &digits[..place];
        let tail = width - place - 1;
        let class = if smallest == 9 {
            "9".to_owned()
        } else {
            format!("[{smallest}-9]")
        };
        let rest = if tail == 0 {
            String::new()
        } else {
            format!("[0-9]{{{tail}}}")
        };
        if place == 0 && smallest == 0 {
            continue;
        }
        options.push(format!("{prefix}{class}{rest}"));
    }
    options.join("|")
}

/// A pattern (unanchored, no group) for the integers from `least` to `most`, in plain decimal:
/// for each count of digits, the range written as classes.
fn from_to(least: u64, most: u64) -> String {
    let mut options = Vec::new();
    let (low, high) = (least.to_string().len(), most.to_string().len());
    for width in low..=high {
        let power = |n: usize| 10u64.pow(u32::try_from(n).unwrap_or(0));
        let lo = if width == low {
            least
        } else {
            power(width - 1)
        };
        let hi = if width == high {
            most
        } else {
            power(width) - 1
        };
        options.extend(same_width(&lo.to_string(), &hi.to_string()));
    }
    options.join("|")
}

/// Patterns for the numbers from `lo` to `hi`, both written with the same count of digits.
fn same_width(lo: &str, hi: &str) -> Vec<String> {
    if lo == hi {
        return vec![lo.to_owned()];
    }
    let (a, b) = (lo.as_bytes()[0], hi.as_bytes()[0]);
    let (lo_rest, hi_rest) = (&lo[1..], &hi[1..]);
    let prefixed = |digit: u8, options: Vec<String>| -> Vec<String> {
        options
            .into_iter()
            .map(|rest| format!("{}{rest}", digit as char))
            .collect()
    };
    if a == b {
        return prefixed(a, same_width(lo_rest, hi_rest));
    }
    let tail = lo_rest.len();
    let any = match tail {
        0 => String::new(),
        1 => "[0-9]".to_owned(),
        n => format!("[0-9]{{{n}}}"),
    };
    let class = |x: u8, y: u8| {
        if x == y {
            (x as char).to_string()
        } else {
            format!("[{}-{}]", x as char, y as char)
        }
    };
    let low_is_round = lo_rest.bytes().all(|c| c == b'0');
    let high_is_round = hi_rest.bytes().all(|c| c == b'9');
    let mut options = Vec::new();
    let first = if low_is_round {
        a
    } else {
        options.extend(prefixed(a, same_width(lo_rest, &"9".repeat(tail))));
        a + 1
    };
    let last = if high_is_round { b } else { b - 1 };
    if first <= last {
        options.push(format!("{}{any}", class(first, last)));
    }
    if !high_is_round {
        options.extend(prefixed(b, same_width(&"0".repeat(tail), hi_rest)));
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ranges_match_exactly_their_numbers() {
        for (least, most) in [(1, 10_000), (1, 4096), (7, 123), (0, 255)] {
            let regex = Regex::new(&format!("^({})$", from_to(least, most))).unwrap();
            let rule = |n: &str| regex.is_match(n);
            for n in 0..=12_000u64 {
                assert_eq!(
                    rule(&n.to_string()),
                    (least..=most).contains(&n),
                    "{n} in {least}..={most}"
                );
            }
            assert!(!rule("007"));
        }
        for least in [1, 2, 1024, 1049, 1_048_576, 999, 10] {
            let regex = Regex::new(&format!("^({})$", at_least(least))).unwrap();
            let rule = |n: &str| regex.is_match(n);
            let near = least.saturating_sub(100)..least + 100;
            for n in (0..2_000_000u64).step_by(97).chain(near) {
                assert_eq!(rule(&n.to_string()), n >= least, "{n} >= {least}");
            }
            assert!(!rule("0"));
        }
    }

    #[test]
    fn durations() {
        let s = Duration::from_secs;
        assert_eq!(parse_duration("30s"), Ok(s(30)));
        assert_eq!(parse_duration("1m 30s"), Ok(s(90)));
        assert_eq!(parse_duration("1m30s"), Ok(s(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2 h"), Ok(s(7200)));
        assert_eq!(parse_duration("1M"), Ok(s(2_630_016)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0.5ns"), Ok(Duration::from_nanos(1)));
        assert_eq!(
            parse_duration("0.50000000000000000000000000000000s"),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(
            parse_duration("0.500000000000000000000000000000001s"),
            Ok(Duration::from_nanos(500_000_001))
        );
        assert_eq!(
            parse_duration("10.03000000000000000000000000000y"),
            Err(DurationError::TooLong)
        );
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("11y"), Err(DurationError::TooLong));
        assert_eq!(
            parse_duration("99999999999999999999999999999999999999999999h"),
            Err(DurationError::TooLong)
        );
        for bad in [
            "", "30", " 30s", "30s ", "1.s", ".5s", "-1s", "1x", "1 1s", "s", "1m,30s",
        ] {
            assert_eq!(parse_duration(bad), Err(DurationError::Spelling), "{bad:?}");
        }
        for zero in ["0s", "0.0s", "00m 0h", "0ms0s"] {
            assert!(!POSITIVE_DURATION.is_match(zero), "{zero}");
        }
        for some in ["1ns", "0.1s", "0s 1ms", "1m 0s", "0.000000001s"] {
            assert!(POSITIVE_DURATION.is_match(some), "{some}");
            assert!(parse_duration(some).unwrap() > Duration::ZERO, "{some}");
        }
    }

    #[test]
    fn sizes_and_percents() {
        assert_eq!(parse_memory_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_memory_size("2 GB"), Some(2_000_000_000));
        assert_eq!(parse_memory_size("1048576"), Some(1 << 20));
        assert_eq!(parse_memory_size("1049KB"), Some(1_049_000));
        for bad in [
            "1048575",
            "1048KB",
            "1023KiB",
            "100KiB",
            " 512MiB",
            "1.5GiB",
            "0512MiB",
            "lots",
            "99999999999TiB",
        ] {
            assert_eq!(parse_memory_size(bad), None, "{bad}");
        }
        assert_eq!(parse_percent(&PERCENT, "12.5%"), Some(0.125));
        assert_eq!(parse_percent(&PERCENT, "0%"), Some(0.0));
        assert_eq!(parse_percent(&PERCENT, "100.00%"), Some(1.0));
        for bad in ["150%", "100.5%", "10", " 10%", "+5%", "1e1%", ".5%", "5.%"] {
            assert_eq!(parse_percent(&PERCENT, bad), None, "{bad}");
        }
        for zero in ["0%", "00%", "0.00%"] {
            assert_eq!(parse_percent(&POSITIVE_PERCENT, zero), None);
        }
        for some in ["0.01%", "5%", "05%", "99.9%", "100%"] {
            assert!(
                parse_percent(&POSITIVE_PERCENT, some).is_some_and(|p| p > 0.0),
                "{some}"
            );
        }
        assert!(PROCESSES.is_match("auto") && PROCESSES.is_match("10000%"));
        assert!(!PROCESSES.is_match("10001%") && !PROCESSES.is_match("0%"));
    }
}
