//! A linear pre-check of YAML text, run before a YAML reader builds values.
//!
//! YAML readers expand aliases into copies and recurse per nesting level, so
//! a small text can take gigabytes (one large scalar aliased thousands of
//! times), or quadratic time and a deep stack (deep nesting). `check` walks
//! the event stream of libyaml-safer (a safe Rust port of libyaml, the parser
//! Falco's yaml-cpp agrees with; it keeps explicit stacks, no recursion) once
//! and refuses the text before any reader sees it:
//!
//! - nesting deeper than [`Limits::max_depth`];
//! - more than [`Limits::max_nodes`] nodes once aliases are expanded;
//! - more than [`Limits::budget`] bytes once aliases are expanded: every
//!   node weighs its scalar bytes plus one, and an alias weighs what its
//!   anchor weighs (itself expanded), so nested alias bombs count in full.
//!
//! Without aliases a document's weight is at most its size, so the budget
//! only bites on expansion.

use libyaml_safer::{EventData, Mark, Parser};
use std::collections::HashMap;

/// What a YAML text may cost once read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Nested sequences and mappings.
    pub max_depth: usize,
    /// Nodes (scalars, sequences, mappings), aliases expanded.
    pub max_nodes: usize,
    /// Floor of the byte budget of the expanded document.
    pub min_budget: usize,
    /// The byte budget is at least this many times the input size.
    pub budget_factor: usize,
    /// A key repeated in one mapping is an error (serde readers keep one of
    /// the two silently; a reader that reports duplicates itself turns this
    /// off).
    pub duplicate_keys_are_errors: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_nodes: 1_000_000,
            min_budget: 1 << 20,
            budget_factor: 4,
            duplicate_keys_are_errors: true,
        }
    }
}

impl Limits {
    /// The byte budget for an input of `len` bytes.
    pub fn budget(&self, len: usize) -> usize {
        self.min_budget.max(len.saturating_mul(self.budget_factor))
    }
}

/// Why a text was refused, and where (line and column 1-based, column in
/// characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct GuardError {
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// The text is not YAML libyaml can read (as opposed to a limit).
    pub syntax: bool,
}

impl GuardError {
    fn at(m: &Mark, message: String) -> GuardError {
        GuardError { line: m.line as usize + 1, col: m.column as usize + 1, message, syntax: false }
    }
}

/// Whether libyaml reads `c` at all (YAML 1.1's printable set: tab, line
/// breaks, and printable Unicode without surrogates and U+FFFE/U+FFFF).
fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        || c >= '\u{10000}'
}

/// The first character libyaml refuses to read, as a positioned syntax error
/// (libyaml itself reports it with a byte offset only).
pub fn unreadable_char(text: &str) -> Option<GuardError> {
    first_unreadable(text).map(|(off, c)| unreadable_at(text, off, c))
}

fn first_unreadable(text: &str) -> Option<(usize, char)> {
    text.char_indices().find(|&(_, c)| !printable(c))
}

fn unreadable_at(text: &str, off: usize, c: char) -> GuardError {
    let (line, col) = line_col(text, off);
    let message = format!("invalid YAML: control character U+{:04X} is not allowed", c as u32);
    GuardError { line, col, message, syntax: true }
}

/// Line and column (1-based, column in characters) of byte offset `off`.
pub fn line_col(text: &str, off: usize) -> (usize, usize) {
    let mut off = off.min(text.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// The parser's next event. libyaml-safer panics on some input instead of
/// failing (a tag followed by `,` in a flow collection: "TODO: What is
/// expected here?"); such a panic is a syntax error near `last` (the last
/// event read), never a crash of the reader, the agent's reload included.
pub fn next_event<R: std::io::BufRead>(
    parser: &mut Parser<R>,
    text: &str,
    last: Mark,
) -> Result<libyaml_safer::Event, GuardError> {
    quiet_parser_panics();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser.parse())) {
        Ok(Ok(ev)) => Ok(ev),
        Ok(Err(e)) => Err(syntax_error(text, &e)),
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let mut e = GuardError::at(
                &last,
                format!("invalid YAML: the YAML parser cannot read what follows ({why})"),
            );
            e.syntax = true;
            Err(e)
        }
    }
}

/// Once per process: the panic hook stays quiet for panics raised in
/// libyaml-safer's own source (caught by [`next_event`] and reported as a
/// syntax error); every other panic goes to the previous hook.
fn quiet_parser_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.location().is_some_and(|l| l.file().contains("libyaml-safer")) {
                return;
            }
            previous(info);
        }));
    });
}

/// A libyaml error as a positioned syntax error: its problem, where it was
/// found, and the construct it was found in (`while parsing a block mapping`).
pub fn syntax_error(text: &str, e: &libyaml_safer::Error) -> GuardError {
    if let Some(bad) = unreadable_char(text) {
        return bad;
    }
    let mut message = format!("invalid YAML: {}", e.problem());
    if let (Some(ctx), Some(m)) = (e.context(), e.context_mark()) {
        message.push_str(&format!(" ({ctx} at line {}, column {})", m.line + 1, m.column + 1));
    }
    let (line, col) = match e.problem_mark() {
        Some(m) => (m.line as usize + 1, m.column as usize + 1),
        None => (1, 1),
    };
    GuardError { line, col, message, syntax: true }
}

/// An open sequence or mapping: its anchor and what it weighs so far.
struct Frame {
    anchor: Option<String>,
    bytes: usize,
    nodes: usize,
    /// For a mapping: its keys so far (with their line), and whether the next
    /// node is a key.
    mapping: Option<(HashMap<String, usize>, bool)>,
}

/// [`check`] for readers that parse with another YAML parser (serde_yaml_ng):
/// a syntax error is left to that parser, which reports it in its own words
/// and may accept what libyaml does not; the bounds were checked up to that
/// point.
pub fn check_bounds(text: &str, limits: &Limits) -> Result<(), GuardError> {
    match check(text, limits) {
        Err(e) if e.syntax => Ok(()),
        other => other,
    }
}

/// Check `text` against `limits`; linear in the text's size.
pub fn check(text: &str, limits: &Limits) -> Result<(), GuardError> {
    // A character libyaml refuses is a syntax error, which a caller may leave
    // to its reader to report; that reader still reads everything before it,
    // so the limits hold for that part: deep nesting ahead of a control
    // character at the end costs the reader quadratic time.
    if let Some((off, c)) = first_unreadable(text) {
        return match check_readable(&text[..off], limits) {
            Err(limit) if !limit.syntax => Err(limit),
            // The part before may end mid-document: the character is the error.
            _ => Err(unreadable_at(text, off, c)),
        };
    }
    check_readable(text, limits)
}

/// [`check`] of a text with only characters libyaml reads.
fn check_readable(text: &str, limits: &Limits) -> Result<(), GuardError> {
    let mut input = text.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    let mut guard = Guard::new(text.len(), *limits);
    let mut last = Mark::default();
    loop {
        let ev = next_event(&mut parser, text, last)?;
        if ev.data == EventData::StreamEnd {
            return Ok(());
        }
        last = ev.start_mark;
        guard.observe(&ev)?;
    }
}

/// [`check`] one event at a time, for a reader that walks libyaml-safer's
/// events itself (one parse instead of two): hand it every event, in order,
/// before using it.
pub struct Guard {
    limits: Limits,
    budget: usize,
    stack: Vec<Frame>,
    /// Anchor name -> (bytes, nodes) of the anchored node, expanded.
    anchors: HashMap<String, (usize, usize)>,
    /// The whole document so far, aliases expanded.
    bytes: usize,
    nodes: usize,
}

impl Guard {
    /// A guard for a text of `len` bytes.
    pub fn new(len: usize, limits: Limits) -> Guard {
        let budget = limits.budget(len);
        Guard { limits, budget, stack: Vec::new(), anchors: HashMap::new(), bytes: 0, nodes: 0 }
    }

    /// Account for one event; an error when the text goes past a limit.
    pub fn observe(&mut self, ev: &libyaml_safer::Event) -> Result<(), GuardError> {
        let (limits, mark) = (&self.limits, &ev.start_mark);
        // The weight of the node this event completes, with its anchor.
        let done = match &ev.data {
            EventData::Scalar { value, anchor, .. } => {
                // A scalar key of the mapping being read: seen before?
                if let Some(Frame { mapping: Some((keys, true)), .. }) = self.stack.last_mut() {
                    if limits.duplicate_keys_are_errors {
                        if let Some(first) = keys.get(value) {
                            return Err(GuardError::at(
                                mark,
                                format!("duplicate key {value:?} (first at line {first})"),
                            ));
                        }
                        keys.insert(value.clone(), mark.line as usize + 1);
                    }
                }
                Some((anchor.clone(), value.len() + 1, 1, false))
            }
            EventData::Alias { anchor } => match self.anchors.get(anchor) {
                Some(&(b, n)) => Some((None, b, n, false)),
                None => return Err(GuardError::at(mark, format!("unknown alias *{anchor}"))),
            },
            EventData::SequenceStart { anchor, .. } | EventData::MappingStart { anchor, .. } => {
                let mapping =
                    matches!(ev.data, EventData::MappingStart { .. }).then(|| (HashMap::new(), true));
                if self.stack.len() >= limits.max_depth {
                    return Err(GuardError::at(
                        mark,
                        format!("nesting deeper than {} levels", limits.max_depth),
                    ));
                }
                self.stack.push(Frame { anchor: anchor.clone(), bytes: 1, nodes: 1, mapping });
                self.bytes += 1;
                self.nodes += 1;
                None
            }
            EventData::SequenceEnd | EventData::MappingEnd => {
                self.stack.pop().map(|f| (f.anchor, f.bytes, f.nodes, true))
            }
            _ => None,
        };
        let Some((anchor, b, n, collection)) = done else { return Ok(()) };
        if let Some(anchor) = anchor {
            self.anchors.insert(anchor, (b, n));
        }
        // Charge the node to its parent (for the parent's own weight, should
        // it be anchored); a collection's own 1 was charged when it opened.
        if let Some(f) = self.stack.last_mut() {
            f.bytes = f.bytes.saturating_add(b);
            f.nodes = f.nodes.saturating_add(n);
            // Keys and values alternate in a mapping.
            if let Some((_, key_next)) = f.mapping.as_mut() {
                *key_next = !*key_next;
            }
        }
        if !collection {
            self.bytes = self.bytes.saturating_add(b);
            self.nodes = self.nodes.saturating_add(n);
        }
        if self.bytes > self.budget {
            return Err(GuardError::at(
                mark,
                format!("document expands to more than {} bytes (aliases of large nodes?)", self.budget),
            ));
        }
        if self.nodes > limits.max_nodes {
            return Err(GuardError::at(
                mark,
                format!("document expands to more than {} nodes", limits.max_nodes),
            ));
        }
        Ok(())
    }
}

/// Hostile documents for the readers' own tests: one 1 MiB scalar anchored
/// and aliased `refs` times, and `depth` nested flow sequences.
pub mod hostile {
    /// `key: &a <1 MiB>` then `refs` aliases of it in a sequence under `list`.
    pub fn alias_bomb(key: &str, refs: usize) -> String {
        let mut s = format!("{key}: &a \"{}\"\nlist:\n", "x".repeat(1 << 20));
        for _ in 0..refs {
            s.push_str("  - *a\n");
        }
        s
    }

    /// `key: [[[...]]]` nested `depth` times.
    pub fn deep(key: &str, depth: usize) -> String {
        format!("{key}: {}{}\n", "[".repeat(depth), "]".repeat(depth))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn err(text: &str) -> GuardError {
        check(text, &Limits::default()).unwrap_err()
    }

    #[test]
    fn ordinary_yaml_passes() {
        let text = "a: &x {b: [1, 2, 3]}\nc: *x\nd: |\n  text\n---\n- e\n";
        assert_eq!(check(text, &Limits::default()), Ok(()));
        assert_eq!(check("", &Limits::default()), Ok(()));
    }

    #[test]
    fn large_scalar_aliased_many_times_is_refused() {
        let text = hostile::alias_bomb("k", 5000);
        let t = Instant::now();
        let e = err(&text);
        assert!(e.message.contains("expands to more than"), "{e}");
        // The first alias past the budget: 4 MiB input -> ~4 aliases of 1 MiB.
        assert!(e.line > 2 && e.line < 10, "{e}");
        assert!(t.elapsed().as_secs() < 10);
    }

    #[test]
    fn nested_aliases_count_in_full() {
        // Billion laughs: each level aliases the previous one ten times.
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = err(&text);
        assert!(e.message.contains("expands to more than"), "{e}");
    }

    #[test]
    fn many_small_aliases_count_nodes() {
        let limits = Limits { max_nodes: 1000, ..Limits::default() };
        let mut text = String::from("a: &a x\nl:\n");
        for _ in 0..2000 {
            text.push_str("- *a\n");
        }
        let e = check(&text, &limits).unwrap_err();
        assert!(e.message.contains("1000 nodes"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_fast() {
        for text in [hostile::deep("k", 10_000), "- ".repeat(10_000), "{a: ".repeat(10_000)] {
            let t = Instant::now();
            let e = err(&text);
            assert!(e.message.contains("nesting deeper than 64"), "{e}");
            assert!(t.elapsed().as_secs() < 5);
        }
        assert_eq!(check(&hostile::deep("k", 63), &Limits::default()), Ok(()));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = err("a: [x\nb: y\n");
        assert!(e.message.starts_with("invalid YAML"), "{e}");
        assert!(e.line >= 1);
        let e = err("a: *nope\n");
        assert!(e.line >= 1, "{e}");
    }

    /// A control character is a syntax error, left by `check_bounds` to
    /// the caller's reader, which reads everything before it: the limits hold
    /// there (deep nesting ahead of it cost serde_yaml_ng quadratic time).
    #[test]
    fn limits_hold_before_a_control_character() {
        let deep = format!("a: {}{}\n\u{1}\n", "[".repeat(5000), "]".repeat(5000));
        let e = check_bounds(&deep, &Limits::default()).unwrap_err();
        assert!(!e.syntax && e.message.contains("nesting deeper than 64"), "{e}");
        assert_eq!((e.line, e.col), (1, 67), "{e}");
        // Within the limits, the character is the error, at its place.
        let e = check("a: [b, c]\nd: \u{1}\n", &Limits::default()).unwrap_err();
        assert!(e.syntax && e.message.contains("U+0001"), "{e}");
        assert_eq!((e.line, e.col), (2, 4), "{e}");
        assert!(check_bounds("a: [b, c]\nd: \u{1}\n", &Limits::default()).is_ok());
        // Cut inside a flow sequence: still the character's error.
        let e = check("a: [b, \u{1}]\n", &Limits::default()).unwrap_err();
        assert!(e.syntax && e.message.contains("U+0001"), "{e}");
    }

    #[test]
    fn budget_scales_with_input() {
        let l = Limits::default();
        assert_eq!(l.budget(10), 1 << 20);
        assert_eq!(l.budget(1 << 20), 4 << 20);
    }

    #[test]
    fn check_bounds_leaves_syntax_to_the_reader_but_not_limits() {
        let bad = "a:\n  - x\n  y: [\n";
        assert!(check(bad, &Limits::default()).unwrap_err().syntax);
        assert_eq!(check_bounds(bad, &Limits::default()), Ok(()));
        let deep = hostile::deep("k", 10_000);
        assert!(!check_bounds(&deep, &Limits::default()).unwrap_err().syntax);
        let bomb = hostile::alias_bomb("k", 5_000);
        assert!(check_bounds(&bomb, &Limits::default()).is_err());
    }

    #[test]
    fn flow_sequence_closed_at_the_key_column_is_accepted() {
        // libyaml (and so Falco) reads this; yaml-rust2 called it "invalid indentation".
        let text = "- list: l\n  items: [\n    a,\n    b\n  ]\n";
        assert_eq!(check(text, &Limits::default()), Ok(()));
    }

    #[test]
    fn control_characters_are_positioned() {
        let e = err("a: b\nc: d\u{1}e\n");
        assert!(e.syntax);
        assert_eq!((e.line, e.col), (2, 5), "{e}");
        assert!(e.message.contains("U+0001"), "{e}");
        // A byte order mark is fine.
        assert_eq!(check("\u{feff}a: b\n", &Limits::default()), Ok(()));
    }

    #[test]
    fn syntax_error_names_its_context() {
        let e = err("a:\n  - x\n  y: [\n");
        assert!(e.syntax);
        assert!(e.message.starts_with("invalid YAML: "), "{e}");
        assert!(e.line >= 2, "{e}");
    }

    #[test]
    fn duplicate_keys_are_refused_where_they_repeat() {
        let e = err("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n");
        assert_eq!((e.line, e.col), (5, 3), "{e}");
        assert_eq!(e.message, "duplicate key \"c\" (first at line 3)");
        // Same key in sibling mappings, a value equal to a key, keys in a
        // sequence of mappings, flow mappings: all fine.
        for ok in [
            "a: {x: 1}\nb: {x: 1}\n",
            "a: a\nb: a\n",
            "- k: 1\n- k: 2\n",
            "a: {b: [c, c]}\n",
            "a: &x {k: 1}\nb: *x\n",
        ] {
            check(ok, &Limits::default()).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        assert!(check("{a: 1, a: 2}", &Limits::default()).is_err());
        // A nested collection as a value keeps the key/value alternation.
        assert!(check("a: [1, 2]\nb: {c: 1}\na: 3\n", &Limits::default()).is_err());
        let off = Limits { duplicate_keys_are_errors: false, ..Limits::default() };
        assert!(check("a: 1\na: 2\n", &off).is_ok());
        // The serde readers' entry point refuses them too.
        assert!(check_bounds("a: 1\na: 2\n", &Limits::default()).is_err());
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("x", 0), (1, 1));
    }

    #[test]
    fn a_tag_before_a_comma_in_flow_is_a_syntax_error_not_a_panic() {
        // libyaml-safer 0.3.0 panics on this ("TODO: What is expected here?").
        let text = "- list: l\n  items: [a, !b, c]\n";
        let e = check(text, &Limits::default()).unwrap_err();
        assert!(e.syntax, "{e:?}");
        assert_eq!(e.line, 2, "{e:?}");
        assert!(e.message.contains("the YAML parser cannot read what follows"), "{e:?}");
    }
}
