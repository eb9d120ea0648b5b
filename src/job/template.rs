//! Placeholder templates: parsing `{name}` / `{{` / `}}` once at load time, rendering per task.
//!
//! A template is parsed into literal and placeholder segments when the job file is loaded, so an
//! unknown or unbalanced placeholder is a load-time error and rendering can never fail.

use std::fmt;

/// A value a template can refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `{id}`: the task's index in plan order.
    Id,
    /// `{start}`: the chunk's first item.
    Start,
    /// `{last}`: the chunk's last item, inclusive.
    Last,
    /// `{end}`: the chunk's exclusive end, `last + step`.
    End,
    /// `{count}`: the number of items in the chunk.
    Count,
    /// `{items}`: the chunk's items, space-separated.
    Items,
    /// `{name}`: the job's name.
    Name,
    /// `{run-id}`: the run's id.
    RunId,
}

impl Placeholder {
    /// Every placeholder, in the order the docs list them.
    pub const ALL: [Placeholder; 8] = [
        Self::Id,
        Self::Start,
        Self::Last,
        Self::End,
        Self::Count,
        Self::Items,
        Self::Name,
        Self::RunId,
    ];

    /// The placeholders that do not depend on a task: the only ones `report.dir` may use.
    pub const RUN: [Placeholder; 2] = [Self::Name, Self::RunId];

    /// The name written between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Start => "start",
            Self::Last => "last",
            Self::End => "end",
            Self::Count => "count",
            Self::Items => "items",
            Self::Name => "name",
            Self::RunId => "run-id",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.name())
    }
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Value(Placeholder),
}

/// A parsed template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// Why a template string could not be parsed; `offset` and `len` are byte positions in the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset of the offending text within the template.
    pub offset: usize,
    /// Byte length of the offending text.
    pub len: usize,
    /// What is wrong there.
    pub message: String,
    /// A hint on how to fix it.
    pub help: Option<String>,
}

const BRACE_HELP: &str =
    "write `{{` and `}}` for literal braces, e.g. `${{HOME}}` for a shell variable";

impl Template {
    /// Parses `text`, accepting only the placeholders in `allowed`.
    pub fn parse(text: &str, allowed: &[Placeholder]) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text.char_indices().peekable();
        while let Some((at, c)) = rest.next() {
            match c {
                '{' if rest.peek().map(|&(_, c)| c) == Some('{') => {
                    rest.next();
                    literal.push('{');
                }
                '}' if rest.peek().map(|&(_, c)| c) == Some('}') => {
                    rest.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(TemplateError {
                        offset: at,
                        len: 1,
                        message: "unbalanced `}` with no `{` before it".to_owned(),
                        help: Some(BRACE_HELP.to_owned()),
                    });
                }
                '{' => {
                    let Some(close) = text[at..].find('}') else {
                        return Err(TemplateError {
                            offset: at,
                            len: text.len() - at,
                            message: "unclosed `{`: a placeholder needs its `}`".to_owned(),
                            help: Some(BRACE_HELP.to_owned()),
                        });
                    };
                    let name = &text[at + 1..at + close];
                    let placeholder = Self::placeholder(name, at, allowed)?;
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Value(placeholder));
                    // Skip the name and the closing brace.
                    while rest.next_if(|&(i, _)| i <= at + close).is_some() {}
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Self { segments })
    }

    fn placeholder(
        name: &str,
        at: usize,
        allowed: &[Placeholder],
    ) -> Result<Placeholder, TemplateError> {
        let error = |message: String, help: Option<String>| TemplateError {
            offset: at,
            len: name.len() + 2,
            message,
            help,
        };
        match Placeholder::from_name(name) {
            Some(p) if allowed.contains(&p) => Ok(p),
            Some(p) => Err(error(
                format!("placeholder `{p}` has no value here"),
                Some(format!("only {} can be used here", list(allowed))),
            )),
            None => {
                let nearest = crate::job::suggest::nearest(name, allowed.iter().map(|p| p.name()));
                let help = match nearest {
                    Some(n) => format!("did you mean `{{{n}}}`? {BRACE_HELP}"),
                    None => BRACE_HELP.to_owned(),
                };
                Err(error(
                    format!(
                        "unknown placeholder `{{{name}}}`, expected one of {}",
                        list(allowed)
                    ),
                    Some(help),
                ))
            }
        }
    }

    /// A template with no placeholders.
    pub fn literal(text: &str) -> Self {
        Self {
            segments: vec![Segment::Literal(text.to_owned())],
        }
    }

    /// Whether any segment refers to `p`.
    pub fn uses(&self, p: Placeholder) -> bool {
        self.segments.contains(&Segment::Value(p))
    }

    /// The text of a template without placeholders (braces unescaped).
    pub fn literal_text(&self) -> Option<String> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Value(_) => return None,
            }
        }
        Some(out)
    }

    /// Whether the template has any placeholder at all.
    pub fn has_placeholders(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::Value(_)))
    }

    /// Renders with every value inserted as is.
    pub fn render(&self, values: &dyn Values) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Value(p) => out.push_str(&values.get(*p)),
            }
        }
        out
    }

    /// Renders for `/bin/sh -c`: every value is shell-quoted, so it reaches the command as literal
    /// text whatever characters it holds. `{items}` becomes one quoted word per item.
    pub fn render_shell(&self, values: &dyn Values) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Value(Placeholder::Items) => {
                    values.items(&mut |i, item| {
                        if i > 0 {
                            out.push(' ');
                        }
                        shell_quote_into(item, &mut out);
                    });
                }
                Segment::Value(p) => shell_quote_into(&values.get(*p), &mut out),
            }
        }
        out
    }
}

/// The values a template is rendered with.
pub trait Values {
    /// The value of `p` as text.
    fn get(&self, p: Placeholder) -> String;
    /// Calls `f` with each item of the chunk and its position.
    fn items(&self, f: &mut dyn FnMut(usize, &str));
}

fn list(allowed: &[Placeholder]) -> String {
    allowed
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Characters that never need quoting in a POSIX shell word.
fn is_shell_safe(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-' | '.' | '/' | ',' | ':' | '+' | '=' | '@' | '%')
}

/// Appends `value` to `out` as one POSIX shell word that the shell turns back into exactly `value`.
///
/// Safe words are left bare so rendered commands stay readable; anything else is single-quoted,
/// the one quoting form in which no character is special, with `'` written as `'\''`.
pub fn shell_quote_into(value: &str, out: &mut String) {
    if !value.is_empty() && value.chars().all(is_shell_safe) {
        out.push_str(value);
        return;
    }
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Values for Fixed {
        fn get(&self, p: Placeholder) -> String {
            match p {
                Placeholder::Name => "it's; $(rm -rf /)".to_owned(),
                Placeholder::Items => "1 2".to_owned(),
                other => other.name().len().to_string(),
            }
        }
        fn items(&self, f: &mut dyn FnMut(usize, &str)) {
            f(0, "1");
            f(1, "2");
        }
    }

    #[test]
    fn renders_literals_braces_and_values() {
        let t = Template::parse("a{{b}}{id}-{run-id}", &Placeholder::ALL).unwrap();
        assert_eq!(t.render(&Fixed), "a{b}2-6");
    }

    #[test]
    fn shell_rendering_quotes_values_but_not_literals() {
        let t = Template::parse("echo {name} {items} > x", &Placeholder::ALL).unwrap();
        assert_eq!(
            t.render_shell(&Fixed),
            r"echo 'it'\''s; $(rm -rf /)' 1 2 > x"
        );
    }

    #[test]
    fn quoting_of_empty_and_safe_words() {
        let mut out = String::new();
        shell_quote_into("", &mut out);
        shell_quote_into("-5", &mut out);
        assert_eq!(out, "''-5");
    }

    #[test]
    fn errors_point_at_the_offending_text() {
        let e = Template::parse("echo {idd}", &Placeholder::ALL).unwrap_err();
        assert_eq!((e.offset, e.len), (5, 5));
        assert!(e.help.unwrap().contains("`{id}`"));
        let e = Template::parse("a } b", &Placeholder::ALL).unwrap_err();
        assert_eq!(e.offset, 2);
        let e = Template::parse("a {id", &Placeholder::ALL).unwrap_err();
        assert_eq!((e.offset, e.len), (2, 3));
        let e = Template::parse("{id}", &Placeholder::RUN).unwrap_err();
        assert!(e.message.contains("has no value here"));
    }

    #[test]
    fn multibyte_text_survives() {
        let t = Template::parse("é{id}ü", &Placeholder::ALL).unwrap();
        assert_eq!(t.render(&Fixed), "é2ü");
    }
}

#[cfg(test)]
mod quoting {
    use super::*;
    use proptest::prelude::*;
    use std::process::Command;

    struct Arbitrary(String, Vec<String>);
    impl Values for Arbitrary {
        fn get(&self, _: Placeholder) -> String {
            self.0.clone()
        }
        fn items(&self, f: &mut dyn FnMut(usize, &str)) {
            for (i, item) in self.1.iter().enumerate() {
                f(i, item);
            }
        }
    }

    /// Runs `script` with /bin/sh and returns what it printed.
    fn sh(script: &str) -> Vec<u8> {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Any text but NUL, which no argument can hold; weighted towards what shells treat specially.
    fn text() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            "'",
            "\"",
            "`",
            "$",
            "$(",
            "${",
            ")",
            ";",
            "&",
            "|",
            "\\",
            "\n",
            "*",
            "?",
            "[",
            "~",
            "-",
            "--",
            " ",
            "\t",
            "#",
            "!",
            "{}",
            "é",
            "\u{1F600}",
        ]);
        let piece = prop_oneof![
            3 => "[ -~]{0,6}",
            2 => "[a-z0-9_]{1,3}",
            1 => "[^\0]{0,4}",
            2 => special.prop_map(str::to_owned),
        ];
        prop::collection::vec(piece, 0..8).prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// In a shell command, a value reaches the program byte for byte, whatever it holds.
        #[test]
        fn a_shell_value_arrives_literally(value in text(), items in prop::collection::vec(text(), 0..4)) {
            let t = Template::parse("printf '%s\\0' {name} {items} -{name}-", &Placeholder::ALL).unwrap();
            let script = t.render_shell(&Arbitrary(value.clone(), items.clone()));
            let mut expected: Vec<u8> = Vec::new();
            for word in std::iter::once(&value).chain(&items) {
                expected.extend_from_slice(word.as_bytes());
                expected.push(0);
            }
            expected.extend_from_slice(format!("-{value}-").as_bytes());
            expected.push(0);
            prop_assert_eq!(sh(&script), expected);
        }

        /// In an argv command, a placeholder stays inside its own argument, unchanged.
        #[test]
        fn an_argv_value_is_the_argument(value in text()) {
            let t = Template::parse("--x={name}", &Placeholder::ALL).unwrap();
            prop_assert_eq!(t.render(&Arbitrary(value.clone(), vec![])), format!("--x={value}"));
        }
    }
}
