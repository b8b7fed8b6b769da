//! Golden-file conformance scenarios (test support, feature
//! `test-support`): what both daemons' `tests/conformance.rs` runners share.
//! The scenarios themselves, their grammar and how to regenerate them are
//! in `tests/conformance/README.md` at the repository root.
//!
//! A scenario is a directory `<NN>-<name>` holding an `input` file (one
//! directive per line: kernel messages, CONFIG_DB / STATE_DB changes,
//! Redis faults, clock steps) and an `expected` file: the transcript the
//! runner writes while it drives the daemon's core on a [`crate::sim::Sim`].
//! The runner echoes every input line and, indented under it, what the
//! daemon did in consequence: the Redis commands it sent (as recorded by
//! the in-memory Redis of [`redis`]), what the consumers pop, netlink dump
//! requests, systemd notifications, timers that fired.
//!
//! * [`scenarios`] lists and reads the scenarios of one daemon;
//! * [`Words`] splits a directive into words (double quotes group);
//! * [`Transcript`] collects the expected text;
//! * [`golden::check`] compares it with `expected`, or writes it when
//!   `CONFORMANCE_BLESS=1` ([`BLESS_VAR`]);
//! * [`run_all`] runs every scenario and reports every failure at once,
//!   each naming its file (and line, for a malformed input).

pub mod golden;
pub mod kernel;
pub mod redis;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use swss::FieldValues;

/// The environment variable that makes [`golden::check`] write the
/// `expected` files instead of comparing (`CONFORMANCE_BLESS=1`).
pub const BLESS_VAR: &str = "CONFORMANCE_BLESS";

/// The name of a scenario's input file.
pub const INPUT_FILE: &str = "input";

/// The name of a scenario's expected transcript.
pub const EXPECTED_FILE: &str = "expected";

// ===== errors =====

/// A scenario that cannot run: a malformed input line (with its file and
/// line number) or a directive that does not fit the daemon's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// The input file.
    pub file: PathBuf,
    /// 1-based line number; 0 for the file as a whole.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ScriptError {}

// ===== scenarios =====

/// One line of an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub no: usize,
    /// The line as written (without the line break).
    pub raw: String,
    /// The directive: the line without its comment (from ` #` or a leading
    /// `#`) and surrounding blanks; empty for a blank or comment line.
    pub directive: String,
}

impl Line {
    /// A [`ScriptError`] for this line of `file`.
    pub fn error(&self, file: &Path, message: impl Into<String>) -> ScriptError {
        ScriptError {
            file: file.to_path_buf(),
            line: self.no,
            message: message.into(),
        }
    }
}

/// One scenario directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The directory name, `<NN>-<name>`.
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
    /// `<dir>/input`.
    pub input: PathBuf,
    /// Its lines.
    pub lines: Vec<Line>,
}

impl Scenario {
    /// A [`ScriptError`] for line `line` of the input.
    pub fn error(&self, line: &Line, message: impl Into<String>) -> ScriptError {
        line.error(&self.input, message)
    }
}

/// Splits an input text into [`Line`]s.
pub fn parse_lines(text: &str) -> Vec<Line> {
    text.lines()
        .enumerate()
        .map(|(i, raw)| {
            let body = if raw.trim_start().starts_with('#') {
                ""
            } else {
                match raw.find(" #") {
                    Some(at) => &raw[..at],
                    None => raw,
                }
            };
            Line {
                no: i + 1,
                raw: raw.trim_end().to_string(),
                directive: body.trim().to_string(),
            }
        })
        .collect()
}

/// The scenarios under `root` (one directory each, named `<NN>-<name>`
/// with `NN` two or more digits, each number used once), sorted by name,
/// with their input read.
///
/// Errors: `root` unreadable, a directory misnamed or without `input`, a
/// number used twice.
pub fn scenarios(root: &Path) -> Result<Vec<Scenario>, ScriptError> {
    let whole = |message: String| ScriptError {
        file: root.to_path_buf(),
        line: 0,
        message,
    };
    let entries = std::fs::read_dir(root).map_err(|e| whole(format!("cannot list: {e}")))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| whole(format!("cannot list: {e}")))?;
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let number = name.split('-').next().unwrap_or("");
        if number.len() < 2 || !number.bytes().all(|b| b.is_ascii_digit()) || number == name {
            return Err(whole(format!(
                "scenario directory {name:?} is not named <NN>-<name>"
            )));
        }
        let input = dir.join(INPUT_FILE);
        let text = std::fs::read_to_string(&input).map_err(|e| ScriptError {
            file: input.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        out.push(Scenario {
            name,
            dir,
            input,
            lines: parse_lines(&text),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in out.windows(2) {
        let num = |s: &Scenario| s.name.split('-').next().unwrap_or("").to_string();
        if num(&pair[0]) == num(&pair[1]) {
            return Err(whole(format!(
                "scenarios {} and {} share a number",
                pair[0].name, pair[1].name
            )));
        }
    }
    if out.is_empty() {
        return Err(whole("no scenario found".to_string()));
    }
    Ok(out)
}

/// Runs `run` on every scenario under `root` and checks its transcript
/// against the scenario's `expected` ([`golden::check`]). Every scenario
/// runs; the failures (a malformed input, a panic inside the core or the
/// runner, a transcript that differs) are reported together.
///
/// Panics with the list of failures, if any.
pub fn run_all<F>(root: &Path, run: F)
where
    F: Fn(&Scenario) -> Result<String, ScriptError>,
{
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let all = match scenarios(&root) {
        Ok(all) => all,
        Err(e) => panic!("{e}"),
    };
    let mut failures: Vec<String> = Vec::new();
    for scenario in &all {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(scenario)));
        let failure = match result {
            Ok(Ok(transcript)) => golden::check(&scenario.dir, &transcript).err(),
            Ok(Err(e)) => Some(e.to_string()),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(no message)".to_string());
                Some(format!("{}: panicked: {what}", scenario.input.display()))
            }
        };
        if let Some(f) = failure {
            failures.push(f);
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} conformance scenarios failed (if the change is intended, regenerate with \
             {BLESS_VAR}=1 and review the diff; tests/conformance/README.md):\n\n{}",
            failures.len(),
            all.len(),
            failures.join("\n\n")
        );
    }
}

// ===== words =====

/// The words of a directive: split at blanks, a double-quoted part is one
/// word (without its quotes; `\"` and `\\` escape).
#[derive(Debug, Clone)]
pub struct Words {
    words: Vec<String>,
    at: usize,
}

impl Words {
    /// Splits `directive`. Errors: an unterminated quote.
    pub fn new(directive: &str) -> Result<Words, String> {
        let mut words = Vec::new();
        let mut chars = directive.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            let mut word = String::new();
            if c == '"' {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some(e) => word.push(e),
                            None => break,
                        },
                        c => word.push(c),
                    }
                }
                if !closed {
                    return Err("unterminated double quote".to_string());
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
            }
            words.push(word);
        }
        Ok(Words { words, at: 0 })
    }

    /// The next word, if any.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<String> {
        let w = self.words.get(self.at).cloned();
        if w.is_some() {
            self.at += 1;
        }
        w
    }

    /// The next word without taking it.
    pub fn peek(&self) -> Option<&str> {
        self.words.get(self.at).map(String::as_str)
    }

    /// The next word; `what` names it in the error.
    pub fn expect(&mut self, what: &str) -> Result<String, String> {
        self.next().ok_or_else(|| format!("missing {what}"))
    }

    /// Takes the next word when it is `word`.
    pub fn eat(&mut self, word: &str) -> bool {
        if self.peek() == Some(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Every word not taken yet.
    pub fn rest(&mut self) -> Vec<String> {
        let rest = self.words[self.at..].to_vec();
        self.at = self.words.len();
        rest
    }

    /// Errors when words are left.
    pub fn end(&self) -> Result<(), String> {
        match self.words.get(self.at) {
            None => Ok(()),
            Some(w) => Err(format!("unexpected {w:?}")),
        }
    }
}

/// `f=v` words as field/value pairs, in order (`f=` is an empty value).
///
/// Errors: a word without `=`.
pub fn parse_fvs(words: &[String]) -> Result<FieldValues, String> {
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((f, v)) if !f.is_empty() => Ok((f.to_string(), v.to_string())),
            _ => Err(format!("expected field=value, found {w:?}")),
        })
        .collect()
}

/// The rest of a `set <TABLE><sep><key> f=v ...` or `del <TABLE><sep><key>`
/// directive: (`set` or `del`, the whole key, the pairs).
///
/// Errors: another operation, a key without `sep`, a `set` without pairs,
/// words after a `del`.
pub fn set_or_del(w: &mut Words, sep: char) -> Result<(String, String, FieldValues), String> {
    let op = w.expect("set or del")?;
    let key = w.expect("a key")?;
    if !key.contains(sep) {
        return Err(format!("expected <TABLE>{sep}<key>, found {key:?}"));
    }
    match op.as_str() {
        "set" => {
            let fvs = parse_fvs(&w.rest())?;
            if fvs.is_empty() {
                return Err("set needs at least one field=value".to_string());
            }
            Ok((op, key, fvs))
        }
        "del" => {
            w.end()?;
            Ok((op, key, Vec::new()))
        }
        other => Err(format!("{other:?}: expected set or del")),
    }
}

/// `1 key`, `2 keys`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `f=v` pairs as text (`f1=v1 f2=v2`, values with blanks quoted).
pub fn format_fvs(fvs: &[(String, String)]) -> String {
    fvs.iter()
        .map(|(f, v)| format!("{}={}", f, quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word as the transcript prints it: as is, or double-quoted when empty
/// or holding blanks or quotes.
pub fn quote(s: &str) -> String {
    if !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '"') {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// A duration written `<n>ms`, `<n>s` or `<n>min`.
///
/// Errors: another shape.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration such as 20ms, 5s or 3min, found {text:?}");
    let (num, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| text.split_at(i))
        .ok_or_else(bad)?;
    let n: u64 = num.parse().map_err(|_| bad())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "min" => Ok(Duration::from_secs(60 * n)),
        _ => Err(bad()),
    }
}

/// A duration as the transcript prints it: `<n>ms`.
pub fn format_ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

// ===== kernel event outcomes =====

/// `<daemon>_kernel_events_total` as (type, outcome, reason) -> count,
/// from a core's [`Stats`](crate::stats::Stats).
pub fn kernel_event_counts(stats: &crate::stats::Stats) -> BTreeMap<(String, String, String), u64> {
    stats
        .kernel_events()
        .iter()
        .map(|((t, outcome, reason), n)| {
            (
                (
                    t.to_string(),
                    outcome.as_str().to_string(),
                    reason.to_string(),
                ),
                *n,
            )
        })
        .collect()
}

/// What changed between two [`kernel_event_counts`]: `RTM_NEWNEIGH
/// written`, `RTM_NEWNEIGH filtered (no_mac) x2`, ... joined by `, `;
/// `None` when nothing did.
pub fn describe_outcomes(
    before: &BTreeMap<(String, String, String), u64>,
    after: &BTreeMap<(String, String, String), u64>,
) -> Option<String> {
    let parts: Vec<String> = after
        .iter()
        .filter_map(|(k, n)| {
            let d = n.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| {
                let (t, outcome, reason) = k;
                let reason = if reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({reason})")
                };
                let times = if d > 1 {
                    format!(" x{d}")
                } else {
                    String::new()
                };
                format!("{t} {outcome}{reason}{times}")
            })
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Runs a future that never waits (the daemons' Redis code on a
/// [`redis::Conn`]) to completion.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

// ===== transcript =====

/// The expected text of a scenario: the input echoed line by line, and
/// under each directive what followed from it, indented.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    lines: Vec<String>,
}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Self {
        Self::default()
    }

    /// Echoes an input line: comments and blank lines as they are, a
    /// directive as `> <line>`.
    pub fn echo(&mut self, line: &Line) {
        if line.directive.is_empty() {
            self.lines.push(line.raw.clone());
        } else {
            self.lines.push(format!("> {}", line.raw.trim()));
        }
    }

    /// One line of what the daemon (or its world) did, indented.
    pub fn out(&mut self, text: impl AsRef<str>) {
        self.lines.push(format!("  {}", text.as_ref()));
    }

    /// A line at the left margin (section headers).
    pub fn header(&mut self, text: impl AsRef<str>) {
        self.lines.push(text.as_ref().to_string());
    }

    /// The text, one line each, ending with a line break.
    pub fn finish(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_drop_comments_and_keep_raw_text() {
        let lines = parse_lines("# head\n\nRTM_NEWNEIGH x # why\n  time +5ms  \n");
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].directive, "");
        assert_eq!(lines[2].directive, "RTM_NEWNEIGH x");
        assert_eq!(lines[2].no, 3);
        assert_eq!(lines[3].directive, "time +5ms");
    }

    #[test]
    fn words_group_quotes_and_fvs_split_at_the_first_equal_sign() {
        let mut w =
            Words::new(r#"redis fail-next error "OOM not \"allowed\"" a=b=c e="#).expect("words");
        assert_eq!(w.next().as_deref(), Some("redis"));
        assert!(w.eat("fail-next"));
        assert_eq!(w.expect("kind").as_deref(), Ok("error"));
        assert_eq!(w.next().as_deref(), Some(r#"OOM not "allowed""#));
        let fvs = parse_fvs(&w.rest()).expect("fvs");
        assert_eq!(
            fvs,
            [("a".into(), "b=c".into()), ("e".into(), String::new())]
        );
        assert!(Words::new("\"open").is_err());
        assert!(parse_fvs(&["x".to_string()]).is_err());
        assert_eq!(format_fvs(&fvs), "a=b=c e=\"\"");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("3min"), Ok(Duration::from_secs(180)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("5h").is_err());
    }
}
