//! Placeholder templates: parsing `{name}` / `{{` / `}}` once at load time, rendering per task.
//!
//! A template is parsed into literal and placeholder segments when the job file is loaded, so an
//! unknown or unbalanced placeholder is a load-time error and rendering can never fail.

use std::fmt;

/// A value a template can refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// `{id}`: the task's index in plan order.
    Id,
    /// `{item}`: the chunk's only item.
    Item,
    /// `{items}`: the chunk's items, space-separated.
    Items,
    /// `{start}`: the chunk's first item.
    Start,
    /// `{last}`: the chunk's last item, inclusive.
    Last,
    /// `{end}`: the chunk's exclusive end, `last + step` (ranges only).
    End,
    /// `{count}`: the number of items in the chunk.
    Count,
    /// `{seed}`: the task's seed.
    Seed,
    /// `{name}`: the job's name.
    Name,
    /// `{run-id}`: the run's id.
    RunId,
    /// `{<key>}`: the value of the matrix parameter with this index among the job's keys.
    Param(u16),
}

impl Placeholder {
    /// Every built-in placeholder, in the order the docs list them.
    pub const ALL: [Placeholder; 10] = [
        Self::Id,
        Self::Item,
        Self::Items,
        Self::Start,
        Self::Last,
        Self::End,
        Self::Count,
        Self::Seed,
        Self::Name,
        Self::RunId,
    ];

    /// The placeholders that do not depend on a task: the only ones `report.dir` may use.
    pub const RUN: [Placeholder; 2] = [Self::Name, Self::RunId];

    /// The name written between the braces (`None` for a parameter, whose name the job knows).
    pub fn builtin_name(self) -> Option<&'static str> {
        Some(match self {
            Self::Id => "id",
            Self::Item => "item",
            Self::Items => "items",
            Self::Start => "start",
            Self::Last => "last",
            Self::End => "end",
            Self::Count => "count",
            Self::Seed => "seed",
            Self::Name => "name",
            Self::RunId => "run-id",
            Self::Param(_) => return None,
        })
    }

    /// The built-in placeholder called `name`.
    pub fn builtin(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.builtin_name() == Some(name))
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.builtin_name() {
            Some(name) => write!(f, "{{{name}}}"),
            None => f.write_str("{<parameter>}"),
        }
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
    /// Where each placeholder was written: byte offset and length in the text.
    places: Vec<(Placeholder, usize, usize)>,
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

/// A piece of a template: literal text, or a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'a> {
    Text(&'a str),
    Value(Placeholder),
}

impl Template {
    /// The template's pieces in order.
    pub fn parts(&self) -> impl Iterator<Item = Part<'_>> {
        self.segments.iter().map(|segment| match segment {
            Segment::Literal(text) => Part::Text(text),
            Segment::Value(p) => Part::Value(*p),
        })
    }

    /// Parses `text`, accepting only the placeholders in `allowed`.
    pub fn parse(text: &str, allowed: &[Placeholder]) -> Result<Self, TemplateError> {
        Self::parse_with(text, allowed, &[])
    }

    /// Parses `text`, accepting the placeholders in `allowed` and the parameters `params`
    /// (`{<param>}` is `Placeholder::Param(index)`).
    pub fn parse_with(
        text: &str,
        allowed: &[Placeholder],
        params: &[String],
    ) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut places = Vec::new();
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
                    let placeholder = Self::placeholder(name, at, allowed, params)?;
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Value(placeholder));
                    places.push((placeholder, at, close + 1));
                    // Skip the name and the closing brace.
                    while rest.next_if(|&(i, _)| i <= at + close).is_some() {}
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Self { segments, places })
    }

    fn placeholder(
        name: &str,
        at: usize,
        allowed: &[Placeholder],
        params: &[String],
    ) -> Result<Placeholder, TemplateError> {
        let error = |message: String, help: Option<String>| TemplateError {
            offset: at,
            len: name.len() + 2,
            message,
            help,
        };
        if let Some(i) = params.iter().position(|p| p == name) {
            return Ok(Placeholder::Param(u16::try_from(i).unwrap_or(u16::MAX)));
        }
        let names = || {
            allowed
                .iter()
                .filter_map(|p| p.builtin_name())
                .chain(params.iter().map(String::as_str))
        };
        match Placeholder::builtin(name) {
            Some(p) if allowed.contains(&p) => Ok(p),
            Some(p) => Err(error(
                format!("placeholder `{p}` has no value here"),
                Some(format!("only {} can be used here", list(names()))),
            )),
            None => {
                let nearest = crate::job::suggest::nearest(name, names());
                let help = match nearest {
                    Some(n) => format!("did you mean `{{{n}}}`? {BRACE_HELP}"),
                    None => BRACE_HELP.to_owned(),
                };
                Err(error(
                    format!(
                        "unknown placeholder `{{{name}}}`, expected one of {}",
                        list(names())
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
            places: Vec::new(),
        }
    }

    /// Whether any segment refers to `p`.
    pub fn uses(&self, p: Placeholder) -> bool {
        self.segments.contains(&Segment::Value(p))
    }

    /// Where `p` is first written: byte offset and length in the template's text.
    pub fn place_of(&self, p: Placeholder) -> Option<(usize, usize)> {
        self.places
            .iter()
            .find(|(q, _, _)| *q == p)
            .map(|&(_, at, len)| (at, len))
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

    /// About how long a rendering is: the literal text, and a little for each value.
    fn len_hint(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(text) => text.len(),
                Segment::Value(_) => 16,
            })
            .sum()
    }

    /// Whether the template has any placeholder at all.
    pub fn has_placeholders(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::Value(_)))
    }

    /// Renders with every value inserted as is.
    pub fn render(&self, values: &dyn Values) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len_hint());
        self.render_into(values, &mut out);
        out
    }

    /// `render`, appending to `out`.
    pub fn render_into(&self, values: &dyn Values, out: &mut Vec<u8>) {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.extend_from_slice(text.as_bytes()),
                Segment::Value(p) => values.put(*p, out),
            }
        }
    }

    /// Renders as text, any byte that is not UTF-8 replaced (run-level templates, whose values
    /// are names and ids).
    pub fn render_text(&self, values: &dyn Values) -> String {
        String::from_utf8_lossy(&self.render(values)).into_owned()
    }

    /// Renders for `/bin/sh -c`. A value that is a plain word (letters, digits and
    /// `_-.,/:+@%`) is written into the script as it is, so scripts stay readable; any other
    /// value is passed beside the script as a positional parameter and the script refers to it
    /// (`"${1}"`), so no byte of it is ever read as shell syntax, whatever quotes, substitutions
    /// or comments surround the placeholder. The reference is written for where it stands:
    /// `"${1}"` outside quotes, `${1}` inside `"..."`, `'"${1}"'` inside `'...'`. `{items}`
    /// is one word per item outside quotes.
    pub fn render_shell(&self, values: &dyn Values) -> ShellScript {
        let mut rendered = ShellScript::default();
        let mut state = ShellState::default();
        let mut value = Vec::new();
        // A placeholder used twice is passed once.
        let mut passed: Vec<(Placeholder, usize)> = Vec::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => {
                    rendered.script.extend_from_slice(text.as_bytes());
                    state.scan(text);
                }
                Segment::Value(Placeholder::Items) => {
                    let mut items: Vec<Vec<u8>> = Vec::new();
                    values.items(&mut |_, item| items.push(item.to_vec()));
                    if items.iter().all(|i| is_plain_word(i)) {
                        rendered.script.extend_from_slice(&items.join(&b' '));
                    } else {
                        let first = rendered.params.len() + 1;
                        rendered.params.extend(items);
                        state.reference(first..rendered.params.len() + 1, &mut rendered.script);
                    }
                    state.after_value();
                }
                Segment::Value(p) => {
                    value.clear();
                    values.put(*p, &mut value);
                    if is_plain_word(&value) {
                        rendered.script.extend_from_slice(&value);
                    } else {
                        let index = if let Some(&(_, index)) = passed.iter().find(|(q, _)| q == p) {
                            index
                        } else {
                            rendered.params.push(value.clone());
                            passed.push((*p, rendered.params.len()));
                            rendered.params.len()
                        };
                        state.reference(index..index + 1, &mut rendered.script);
                    }
                    state.after_value();
                }
            }
        }
        rendered
    }

    /// For a shell command: the first placeholder written right after an unescaped `\` or `$`,
    /// which would escape or expand its value's first character (`\{item}`, `${item}`): the
    /// byte offset and length in the template's text, and the character.
    pub fn escaped_placeholder(&self) -> Option<(usize, usize, char)> {
        let mut quote = ShellState::default();
        let mut places = self.places.iter();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => quote.scan(text),
                Segment::Value(_) => {
                    let place = places.next();
                    let glued = match quote.last {
                        Last::Backslash => '\\',
                        Last::Dollar => '$',
                        Last::Break | Last::Other => continue,
                    };
                    return place.map(|&(_, at, len)| (at, len, glued));
                }
            }
        }
        None
    }
}

/// Where the text of a shell command is, as far as quoting goes: what decides how a value
/// inserted there must be quoted to stay data. Command substitutions (`$(...)`, backquotes)
/// start a command of their own, quotes and all, even inside double quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShellState {
    /// The outermost command first; a command substitution pushes one.
    frames: Vec<Frame>,
    /// What the last character was.
    last: Last,
    /// Inside a `#` comment, which ends at a newline.
    comment: bool,
}

/// What the last character of the text so far means for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    /// It ended a word (or nothing came yet): a `#` here starts a comment.
    Break,
    /// An unescaped `\` (outside quotes or inside double quotes): the next is literal.
    Backslash,
    /// An unescaped `$` outside single quotes: a `(` next starts a command substitution.
    Dollar,
    /// Anything else.
    Other,
}

/// One command's quoting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Frame {
    quote: Quote,
    /// Parentheses opened inside it and not closed yet (a subshell, `$((...))`).
    parens: u32,
    /// It is a backquoted command substitution, which the next backquote ends.
    backquoted: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Quote {
    #[default]
    None,
    Single,
    Double,
}

impl Default for ShellState {
    fn default() -> Self {
        Self {
            frames: vec![Frame::default()],
            last: Last::Break,
            comment: false,
        }
    }
}

impl ShellState {
    fn top(&mut self) -> &mut Frame {
        self.frames
            .last_mut()
            .expect("the outermost command is never popped")
    }

    /// Follows POSIX shell quoting through `text`.
    fn scan(&mut self, text: &str) {
        for c in text.chars() {
            if self.comment {
                self.comment = c != '\n';
                self.last = Last::Break;
                continue;
            }
            let last = std::mem::replace(&mut self.last, Last::Other);
            if last == Last::Backslash {
                continue;
            }
            let depth = self.frames.len();
            let frame = *self.top();
            match (frame.quote, c) {
                (Quote::None, '\'') => self.top().quote = Quote::Single,
                (Quote::None, '"') => self.top().quote = Quote::Double,
                (Quote::Single, '\'') | (Quote::Double, '"') => self.top().quote = Quote::None,
                (Quote::None | Quote::Double, '\\') => self.last = Last::Backslash,
                (Quote::None | Quote::Double, '$') => self.last = Last::Dollar,
                (Quote::None | Quote::Double, '(') if last == Last::Dollar => {
                    self.frames.push(Frame::default());
                }
                (Quote::None, '(') => self.top().parens += 1,
                (Quote::None, ')') if frame.parens > 0 => self.top().parens -= 1,
                (Quote::None, ')') if depth > 1 && !frame.backquoted => {
                    self.frames.pop();
                }
                (Quote::None, '`') if frame.backquoted => {
                    self.frames.pop();
                }
                (Quote::None | Quote::Double, '`') => self.frames.push(Frame {
                    backquoted: true,
                    ..Frame::default()
                }),
                (Quote::None, '#') if last == Last::Break => self.comment = true,
                _ => {}
            }
            let outside = self.top().quote == Quote::None;
            if self.last == Last::Other && outside && (c.is_whitespace() || ";&|()<>`".contains(c))
            {
                self.last = Last::Break;
            }
        }
    }

    /// Writes references to the positional parameters `indices`, for where the text is.
    fn reference(&self, indices: std::ops::Range<usize>, out: &mut Vec<u8>) {
        let frame = self.frames.last().copied().unwrap_or_default();
        let refs = indices.map(|i| format!("${{{i}}}"));
        let text = match frame.quote {
            // Inside "...": expanded, never split or re-read.
            Quote::Double => refs.collect::<Vec<_>>().join(" "),
            // Inside '...': close the quotes, the reference in double quotes, open them again.
            Quote::Single => format!("'\"{}\"'", refs.collect::<Vec<_>>().join(" ")),
            // Outside quotes (and in a comment, where it does nothing): one word each.
            Quote::None => refs
                .map(|r| format!("\"{r}\""))
                .collect::<Vec<_>>()
                .join(" "),
        };
        out.extend_from_slice(text.as_bytes());
    }

    /// A value ends no word and starts no comment.
    fn after_value(&mut self) {
        self.last = Last::Other;
    }
}

/// A shell command rendered: the script for `sh -c`, and the values it refers to as its
/// positional parameters `$1`, `$2`, ...
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellScript {
    /// The script.
    pub script: Vec<u8>,
    /// `$1`, `$2`, ...: the values that are not plain words.
    pub params: Vec<Vec<u8>>,
}

/// Bytes that are the same in every shell context (in or out of quotes, in a here-document or a
/// substitution): letters, digits and `_-.,/:+@%`. Not `=`, which assigns in `$((...))`.
fn is_plain_word(value: &[u8]) -> bool {
    !value.is_empty()
        && value.iter().all(|&c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'_' | b'-' | b'.' | b'/' | b',' | b':' | b'+' | b'@' | b'%'
                )
        })
}

/// The values a template is rendered with.
pub trait Values {
    /// Appends the value of `p`.
    fn put(&self, p: Placeholder, out: &mut Vec<u8>);
    /// Calls `f` with each item of the chunk and its position.
    fn items(&self, f: &mut dyn FnMut(usize, &[u8]));
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|p| format!("`{{{p}}}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bytes that never need quoting in a POSIX shell word.
fn is_shell_safe(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'_' | b'-' | b'.' | b'/' | b',' | b':' | b'+' | b'=' | b'@' | b'%'
        )
}

/// Appends `value` to `out` as one POSIX shell word that the shell turns back into exactly
/// `value`, whatever bytes it holds (but NUL, which no argument can).
///
/// Safe words are left bare so rendered commands stay readable; anything else is single-quoted,
/// the one quoting form in which no byte is special, with `'` written as `'\''`.
pub fn shell_quote_into(value: &[u8], out: &mut Vec<u8>) {
    if !value.is_empty() && value.iter().all(|&c| is_shell_safe(c)) {
        out.extend_from_slice(value);
        return;
    }
    out.push(b'\'');
    for &c in value {
        if c == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(c);
        }
    }
    out.push(b'\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Values for Fixed {
        fn put(&self, p: Placeholder, out: &mut Vec<u8>) {
            match p {
                Placeholder::Name => out.extend_from_slice(b"it's; $(rm -rf /)"),
                Placeholder::Items => out.extend_from_slice(b"1 2"),
                Placeholder::Param(i) => out.extend_from_slice(format!("p{i}").as_bytes()),
                other => out
                    .extend_from_slice(other.builtin_name().unwrap().len().to_string().as_bytes()),
            }
        }
        fn items(&self, f: &mut dyn FnMut(usize, &[u8])) {
            f(0, b"1");
            f(1, b"2");
        }
    }

    #[test]
    fn renders_literals_braces_and_values() {
        let t = Template::parse("a{{b}}{id}-{run-id}", &Placeholder::ALL).unwrap();
        assert_eq!(t.render(&Fixed), b"a{b}2-6");
    }

    #[test]
    fn parameters_are_placeholders_of_their_own() {
        let params = ["lr".to_owned(), "model".to_owned()];
        let t = Template::parse_with("{model}/{lr}", &Placeholder::ALL, &params).unwrap();
        assert_eq!(t.render(&Fixed), b"p1/p0");
        assert_eq!(t.place_of(Placeholder::Param(0)), Some((8, 4)));
        let e = Template::parse_with("{modle}", &Placeholder::ALL, &params).unwrap_err();
        assert!(e.help.unwrap().contains("`{model}`"));
    }

    #[test]
    fn shell_values_that_are_not_plain_words_go_beside_the_script() {
        let t = Template::parse(
            "echo {name} {items} '{name}' \"{name}\" > x",
            &Placeholder::ALL,
        )
        .unwrap();
        let rendered = t.render_shell(&Fixed);
        assert_eq!(rendered.script, br#"echo "${1}" 1 2 ''"${1}"'' "${1}" > x"#);
        assert_eq!(rendered.params, [b"it's; $(rm -rf /)".to_vec()]);
    }

    #[test]
    fn quoting_of_empty_and_safe_words() {
        let mut out = Vec::new();
        shell_quote_into(b"", &mut out);
        shell_quote_into(b"-5", &mut out);
        shell_quote_into(b"\xff", &mut out);
        assert_eq!(out, b"''-5'\xff'");
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
        assert_eq!(t.render(&Fixed), "é2ü".as_bytes());
    }
}

#[cfg(test)]
mod quoting {
    use super::*;
    use proptest::prelude::*;
    use std::process::Command;

    struct Arbitrary(Vec<u8>, Vec<Vec<u8>>);
    impl Values for Arbitrary {
        fn put(&self, _: Placeholder, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.0);
        }
        fn items(&self, f: &mut dyn FnMut(usize, &[u8])) {
            for (i, item) in self.1.iter().enumerate() {
                f(i, item);
            }
        }
    }

    /// Runs a rendered script with /bin/sh, as a task would, and returns what it printed.
    fn sh(rendered: &ShellScript) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(std::ffi::OsStr::from_bytes(&rendered.script))
            .arg("sh")
            .args(
                rendered
                    .params
                    .iter()
                    .map(|p| std::ffi::OsStr::from_bytes(p)),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{:?}: {}",
            String::from_utf8_lossy(&rendered.script),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Any bytes but NUL: text weighted towards what shells treat specially, and bytes that
    /// are not UTF-8 at all (file names and lines may hold them).
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        let raw = prop::collection::vec(1u8..=255, 0..6);
        prop::collection::vec(
            prop_oneof![3 => text().prop_map(String::into_bytes), 1 => raw],
            0..3,
        )
        .prop_map(|parts| parts.concat())
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
        fn a_shell_value_arrives_literally(value in bytes(), items in prop::collection::vec(bytes(), 0..4)) {
            let t = Template::parse("printf '%s\\0' {item} {items} -{item}-", &Placeholder::ALL).unwrap();
            let script = t.render_shell(&Arbitrary(value.clone(), items.clone()));
            let mut expected: Vec<u8> = Vec::new();
            for word in std::iter::once(&value).chain(&items) {
                expected.extend_from_slice(word);
                expected.push(0);
            }
            expected.extend_from_slice(&[b"-", value.as_slice(), b"-"].concat());
            expected.push(0);
            prop_assert_eq!(sh(&script), expected);
        }

        /// Inside quotes the template opened, a value stays inside them, byte for byte.
        #[test]
        fn a_quoted_shell_value_arrives_literally(value in bytes()) {
            for (template, prefix, substituted) in [
                ("printf '%s\\0' 'x={item}'", "x=", false),
                ("printf '%s\\0' \"x={item}\"", "x=", false),
                ("printf '%s\\0' x=\"{item}\"'{item}'{item}", "x=", false),
                ("printf '%s\\0' \"x=$(printf '%s' {item})\"", "x=", true),
                ("printf '%s\\0' \"x=$(printf '%s' \"{item}\")\"", "x=", true),
                ("printf '%s\\0' x=\"$( (printf '%s' '{item}') )\"", "x=", true),
                ("printf '%s\\0' \"x=`printf '%s' {item}`\"", "x=", true),
                // Not a comment: `#` inside a word, after a substitution.
                ("printf '%s\\0' x$(printf =)#{item}", "x=#", false),
                ("printf '%s\\0' \"x=${{unset:-{item}}}\"", "x=", false),
            ] {
                let t = Template::parse(template, &Placeholder::ALL).unwrap();
                let script = t.render_shell(&Arbitrary(value.clone(), vec![]));
                let mut expected = prefix.as_bytes().to_vec();
                let copies = template.matches("{item}").count();
                // A command substitution drops the trailing newlines of what it prints.
                let mut shown = value.as_slice();
                if substituted {
                    while let [rest @ .., b'\n'] = shown {
                        shown = rest;
                    }
                }
                for _ in 0..copies {
                    expected.extend_from_slice(shown);
                }
                expected.push(0);
                prop_assert_eq!(sh(&script), expected, "{}", template);
            }
        }

        /// In an argv command, a placeholder stays inside its own argument, unchanged.
        #[test]
        fn an_argv_value_is_the_argument(value in bytes()) {
            let t = Template::parse("--x={item}", &Placeholder::ALL).unwrap();
            prop_assert_eq!(t.render(&Arbitrary(value.clone(), vec![])), [b"--x=", value.as_slice()].concat());
        }
    }
}
