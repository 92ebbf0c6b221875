//! Rule files: YAML items to definitions (with append and override), then
//! compilation of the whole set.
//!
//! This file holds the builder's state and the YAML helpers; the steps live in
//! `items` (items -> definitions), `merge` (append / override),
//! `build` (compilation) and `positions` (offsets -> file:line:column).

use crate::compile::{build_cmp, CErr, Compiler, Expr, Fail, ListDef, MacroSrc, Origin};
use crate::output::Template;
use crate::parse::{self, Op, ValTok};
use crate::yaml::{self, Kind, Node, Pos, Style};
use crate::{CompiledRule, Diagnostic, Extra, LoadError, Priority, Ruleset, SkippedRule};
use std::collections::{BTreeMap, HashMap};
use tracing::debug;

mod build;
mod items;
mod merge;
mod positions;

struct FileSrc {
    name: String,
    text: String,
    /// Byte offset of each line's start, so positions cost a lookup, not a scan.
    line_starts: Vec<usize>,
}

impl FileSrc {
    fn new(name: &str, text: &str) -> FileSrc {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        FileSrc { name: name.to_string(), text: text.to_string(), line_starts }
    }

    /// The text of 1-based line `line` onwards.
    fn text_from_line(&self, line: usize) -> &str {
        let start = self.line_starts.get(line.saturating_sub(1)).copied().unwrap_or(self.text.len());
        &self.text[start..]
    }

    /// Line and column (in characters) of byte offset `off`.
    fn pos_of(&self, off: usize) -> Pos {
        let line = self.line_starts.partition_point(|&s| s <= off);
        let start = self.line_starts[line - 1];
        Pos { line, col: self.text[start..off].chars().count() + 1 }
    }
}

/// One YAML scalar that contributed text to a condition or output.
#[derive(Debug, Clone)]
struct Piece {
    start: usize,
    file: usize,
    pos: Pos,
    style: Style,
    len: usize,
}

/// Condition or output text, possibly appended from several scalars.
#[derive(Debug, Clone, Default)]
struct Text {
    text: String,
    pieces: Vec<Piece>,
}

impl Text {
    fn new(file: usize, node: &Node, value: &str) -> Text {
        let mut t = Text::default();
        t.push(file, node, value);
        t
    }

    fn push(&mut self, file: usize, node: &Node, value: &str) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        let style = match &node.kind {
            Kind::Scalar(_, st) => *st,
            _ => Style::Plain,
        };
        self.pieces.push(Piece { start: self.text.len(), file, pos: node.pos, style, len: value.len() });
        self.text.push_str(value);
    }
}

#[derive(Debug, Clone)]
struct ListEntry {
    items: Vec<String>,
    /// Where it was (last) defined.
    file: usize,
    pos: Pos,
}

#[derive(Debug, Clone)]
struct MacroEntry {
    cond: Text,
    file: usize,
    pos: Pos,
}

/// The Falco rule engine version whose rule language rampart implements, for
/// `required_engine_version`. 0.57.0 is what the falcosecurity/rules files
/// vendored in `tests/falco-upstream/` (commit c72713ee, June 2026) require:
/// the newest rule files rampart was checked against; they load (bar the
/// fields rampart lacks). A file asking for more may use syntax or fields
/// that came later: warned.
pub const FALCO_ENGINE_VERSION: (u64, u64, u64) = (0, 57, 0);

/// `required_engine_version` as Falco reads it: a bare number N is the old
/// scheme, now 0.N.0; otherwise MAJOR.MINOR.PATCH.
fn engine_version(text: &str) -> Option<(u64, u64, u64)> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Some((0, n, 0));
    }
    let mut it = t.split('.').map(|p| p.parse::<u64>().ok());
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(Some(a)), Some(Some(b)), Some(Some(c)), None) => Some((a, b, c)),
        _ => None,
    }
}

#[derive(Debug, Clone)]
struct ExceptionEntry {
    name: String,
    file: usize,
    pos: Pos,
    fields: Option<(usize, Node)>,
    comps: Option<(usize, Node)>,
    values: Vec<(usize, Node)>,
}

#[derive(Debug, Clone)]
struct RuleEntry {
    name: String,
    file: usize,
    pos: Pos,
    desc: String,
    cond: Text,
    output: Text,
    priority: Priority,
    tags: Vec<String>,
    enabled: bool,
    source: String,
    exceptions: Vec<ExceptionEntry>,
    extra: BTreeMap<String, Extra>,
    skip_if_unknown: bool,
}

const RULE_KEYS: &[&str] = &[
    "rule",
    "desc",
    "condition",
    "output",
    "priority",
    "tags",
    "enabled",
    "exceptions",
    "source",
    "append",
    "override",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "capture",
    "capture_duration",
    "required_engine_version",
];

/// rampart's own rule keys (response actions); kept in `CompiledRule::extra`.
const EXTENSION_KEYS: &[&str] = &["actions", "dry_run"];

const LIST_KEYS: &[&str] = &["list", "items", "append", "override"];
const MACRO_KEYS: &[&str] = &["macro", "condition", "append", "override", "source"];
/// Items that are neither list, macro nor rule (accepted and ignored).
const TOP_KEYS: &[&str] =
    &["required_engine_version", "required_plugin_versions", "plugins", "engine", "requirements"];

/// The closest of `known` to `key` within two edits, for "did you mean".
fn did_you_mean<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    // Long keys cannot be two edits from a known one; skip the quadratic work.
    if key.len() > 40 {
        return None;
    }
    known.iter().map(|k| (edit_distance(key, k), *k)).filter(|(d, _)| *d <= 2).min().map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn unknown_key_message(what: &str, key: &str, known: &[&str]) -> String {
    match did_you_mean(key, known) {
        Some(k) => format!("{what}: unknown key {key:?} (did you mean `{k}`?)"),
        None => format!("{what}: unknown key {key:?}"),
    }
}

/// Builds a [`Ruleset`] from rule files given in load order.
#[derive(Default)]
pub struct RulesetBuilder {
    files: Vec<FileSrc>,
    skip_unknown_fields: bool,
    errors: Vec<(usize, Diagnostic)>,
    warnings: Vec<(usize, Diagnostic)>,
    lists: HashMap<String, ListEntry>,
    macros: HashMap<String, MacroEntry>,
    macro_order: Vec<String>,
    rules: Vec<RuleEntry>,
    rule_index: HashMap<String, usize>,
    /// Rules of another source than syscall (skipped): name -> (source,
    /// condition as far as known), for the macros only they use.
    other_source_rules: HashMap<String, (String, Option<String>)>,
    /// Macros declared for another source (skipped).
    other_source_macros: HashMap<String, String>,
    /// Rules of other sources, as reported (file order).
    skipped: Vec<SkippedRule>,
}

fn describe(n: &Node) -> &'static str {
    n.type_name()
}

impl RulesetBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Skip (with a warning) rules that use fields rampart cannot provide,
    /// instead of refusing the rule set.
    pub fn skip_unknown_fields(mut self, yes: bool) -> Self {
        self.skip_unknown_fields = yes;
        self
    }

    fn diag(&self, file: usize, pos: Pos, message: String) -> (usize, Diagnostic) {
        let name = self.files.get(file).map(|f| f.name.clone()).unwrap_or_default();
        (file, Diagnostic { file: name, line: pos.line, col: pos.col, message })
    }

    fn error(&mut self, file: usize, pos: Pos, message: String) {
        let d = self.diag(file, pos, message);
        self.errors.push(d);
    }

    fn warn(&mut self, file: usize, pos: Pos, message: String) {
        let d = self.diag(file, pos, message);
        self.warnings.push(d);
    }

    /// A definition replacing a different one made in an earlier file (the
    /// defaults, say) without `append` or `override`: Falco replaces it
    /// silently, rampart says so. (Falco's own files repeat shared lists and
    /// macros word for word: an identical copy changes nothing and is not
    /// reported.)
    fn redefined(&mut self, what: &str, file: usize, pos: Pos, prev: (usize, Pos), same: bool) {
        if prev.0 == file || same {
            return;
        }
        let from = self.files.get(prev.0).map(|f| f.name.clone()).unwrap_or_default();
        self.warn(file, pos, format!("{what} redefines the one from {from}:{}", prev.1.line));
    }

    /// `required_engine_version`: a version above rampart's is warned (Falco
    /// refuses the file); one that is not a version is an error.
    fn engine_requirement(&mut self, file: usize, n: &Node) {
        let text = match &n.kind {
            Kind::Scalar(s, _) => s.clone(),
            _ => String::new(),
        };
        let Some(v) = engine_version(&text) else {
            self.error(
                file,
                n.pos,
                format!("required_engine_version: {text:?} is not a version (N or MAJOR.MINOR.PATCH)"),
            );
            return;
        };
        let ours = FALCO_ENGINE_VERSION;
        if v > ours || v.0 != ours.0 {
            self.warn(
                file,
                n.pos,
                format!(
                    "rules require Falco engine version {}.{}.{}, rampart implements {}.{}.{}: they may use fields or syntax rampart lacks",
                    v.0, v.1, v.2, ours.0, ours.1, ours.2
                ),
            );
        }
    }

    /// Add one rule file (YAML text); files are applied in the order added.
    pub fn add_file(&mut self, name: &str, text: &str) -> &mut Self {
        let file = self.files.len();
        self.files.push(FileSrc::new(name, text));
        // Text handed over directly (defaults, tests) is not read through the
        // file reader, so refuse NUL here too: YAML forbids it.
        if let Some(i) = text.find('\0') {
            let pos = self.files[file].pos_of(i);
            self.error(file, pos, "NUL byte in rule file".into());
            return self;
        }
        // Nesting and alias expansion are bounded as the tree is built.
        // Duplicate keys: reported by the tree, every one of them.
        let limits = yamlguard::Limits { duplicate_keys_are_errors: false, ..Default::default() };
        let (docs, dups) = match yaml::parse(text, &limits) {
            Ok(d) => d,
            Err(e) => {
                self.error(file, e.pos, e.message);
                return self;
            }
        };
        for d in dups {
            self.error(file, d.pos, d.message);
        }
        for doc in docs {
            match &doc.kind {
                _ if doc.is_null() => {}
                Kind::Seq(items) => {
                    for item in items {
                        self.item(file, item);
                    }
                }
                _ => self.error(
                    file,
                    doc.pos,
                    format!("expected a sequence of list, macro and rule items, found a {}", describe(&doc)),
                ),
            }
        }
        self
    }

    fn string(&mut self, file: usize, item: &Node, key: &str, what: &str) -> Option<String> {
        let n = item.get(key)?;
        match &n.kind {
            Kind::Scalar(s, _) if !n.is_null() => Some(s.clone()),
            _ => {
                self.error(file, n.pos, format!("{what}: {key:?} must be a string, found a {}", describe(n)));
                None
            }
        }
    }

    fn boolean(&mut self, file: usize, item: &Node, key: &str, what: &str) -> Option<bool> {
        let n = item.get(key)?;
        match n.as_bool() {
            Some(b) => Some(b),
            None => {
                self.error(file, n.pos, format!("{what}: {key:?} must be true or false"));
                None
            }
        }
    }

    fn strings(&mut self, file: usize, n: &Node, what: &str) -> Vec<String> {
        match &n.kind {
            _ if n.is_null() => Vec::new(),
            Kind::Seq(items) => {
                let mut out = Vec::new();
                for i in items {
                    match &i.kind {
                        Kind::Scalar(s, _) => out.push(s.clone()),
                        _ => self.error(
                            file,
                            i.pos,
                            format!("{what}: expected a string, found a {}", describe(i)),
                        ),
                    }
                }
                out
            }
            _ => {
                self.error(file, n.pos, format!("{what}: expected a sequence, found a {}", describe(n)));
                Vec::new()
            }
        }
    }

    /// `override:` as key -> (append?, node).
    fn overrides(&mut self, file: usize, item: &Node, what: &str) -> Option<Vec<(String, bool, Pos)>> {
        let n = item.get("override")?;
        let Kind::Map(entries) = &n.kind else {
            self.error(file, n.pos, format!("{what}: \"override\" must be a mapping of key: append|replace"));
            return Some(Vec::new());
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let Some(key) = k.as_str() else {
                self.error(file, k.pos, format!("{what}: override keys must be strings"));
                continue;
            };
            match v.as_str() {
                Some("append") => out.push((key.to_string(), true, v.pos)),
                Some("replace") => out.push((key.to_string(), false, v.pos)),
                _ => {
                    self.error(file, v.pos, format!("{what}: override of {key:?} must be append or replace"))
                }
            }
        }
        Some(out)
    }

    fn item(&mut self, file: usize, item: &Node) {
        let Kind::Map(entries) = &item.kind else {
            self.error(
                file,
                item.pos,
                format!("expected a list, macro or rule item (a mapping), found a {}", describe(item)),
            );
            return;
        };
        if item.get("rule").is_some() {
            self.rule(file, item);
        } else if item.get("macro").is_some() {
            self.macro_item(file, item);
        } else if item.get("list").is_some() {
            self.list(file, item);
        } else {
            let keys: Vec<String> =
                entries.iter().filter_map(|(k, _)| k.as_str().map(String::from)).collect();
            // A misspelt `rule:` would otherwise drop the rule without a word.
            let mut known: Vec<&str> = TOP_KEYS.to_vec();
            known.extend(["rule", "macro", "list"]);
            let mut ok = true;
            for (k, _) in entries {
                let key = k.as_str().unwrap_or("");
                if !TOP_KEYS.contains(&key) {
                    self.error(file, k.pos, unknown_key_message("item", key, &known));
                    ok = false;
                }
            }
            if let Some(v) = item.get("required_engine_version") {
                self.engine_requirement(file, v);
            }
            if ok {
                debug!(keys = ?keys, "ignoring Falco top-level item");
            }
        }
    }

    fn check_keys(&mut self, file: usize, item: &Node, allowed: &[&str], what: &str) {
        if let Kind::Map(entries) = &item.kind {
            for (k, _) in entries {
                let key = k.as_str().unwrap_or("");
                if !allowed.contains(&key) {
                    self.error(file, k.pos, unknown_key_message(what, key, allowed));
                }
            }
        }
    }
}
