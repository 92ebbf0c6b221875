//! Rule files: YAML items to definitions (with append and override), then
//! compilation of the whole set.

use crate::compile::{build_cmp, CErr, Compiler, Expr, Fail, ListDef, MacroSrc, Origin};
use crate::output::Template;
use crate::parse::{self, Op, ValTok};
use crate::yaml::{self, Kind, Node, Pos, Style};
use crate::{CompiledRule, Diagnostic, Extra, LoadError, Priority, Ruleset};
use std::collections::{BTreeMap, HashMap};
use tracing::debug;

struct FileSrc {
    name: String,
    text: String,
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
}

#[derive(Debug, Clone)]
struct MacroEntry {
    cond: Text,
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
];

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
    other_source_rules: HashMap<String, String>,
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

    /// Add one rule file (YAML text); files are applied in the order added.
    pub fn add_file(&mut self, name: &str, text: &str) -> &mut Self {
        let file = self.files.len();
        self.files.push(FileSrc { name: name.to_string(), text: text.to_string() });
        let docs = match yaml::parse(text) {
            Ok(d) => d,
            Err(e) => {
                self.error(file, e.pos, format!("invalid YAML: {}", e.message));
                return self;
            }
        };
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
            let known =
                ["required_engine_version", "required_plugin_versions", "plugins", "engine", "requirements"];
            if keys.iter().any(|k| known.contains(&k.as_str())) {
                debug!(keys = ?keys, "ignoring Falco top-level item");
            } else {
                self.warn(file, item.pos, format!("ignoring unknown item with keys {keys:?}"));
            }
        }
    }

    fn check_keys(&mut self, file: usize, item: &Node, allowed: &[&str], what: &str) {
        if let Kind::Map(entries) = &item.kind {
            for (k, _) in entries {
                let key = k.as_str().unwrap_or("");
                if !allowed.contains(&key) {
                    self.error(file, k.pos, format!("{what}: unknown key {key:?}"));
                }
            }
        }
    }

    fn list(&mut self, file: usize, item: &Node) {
        let Some(name) = self.string(file, item, "list", "list") else { return };
        let what = format!("list {name:?}");
        self.check_keys(file, item, &["list", "items", "append", "override"], &what);
        let items = match item.get("items") {
            Some(n) => self.strings(file, n, &what),
            None => {
                self.error(file, item.pos, format!("{what}: missing key \"items\""));
                return;
            }
        };
        let append = self.boolean(file, item, "append", &what).unwrap_or(false);
        let mut mode = append.then_some(true);
        if let Some(ov) = self.overrides(file, item, &what) {
            if append {
                self.error(file, item.pos, format!("{what}: use either append or override, not both"));
            }
            for (k, app, pos) in ov {
                if k == "items" {
                    mode = Some(app);
                } else {
                    self.error(file, pos, format!("{what}: cannot override {k:?} of a list (only items)"));
                }
            }
        }
        match mode {
            None => {
                self.lists.insert(name, ListEntry { items });
            }
            Some(app) => match self.lists.get_mut(&name) {
                Some(l) if app => l.items.extend(items),
                Some(l) => l.items = items,
                None => self.error(
                    file,
                    item.pos,
                    format!("{what}: cannot append to or override an undefined list"),
                ),
            },
        }
    }

    fn macro_item(&mut self, file: usize, item: &Node) {
        let Some(name) = self.string(file, item, "macro", "macro") else { return };
        let what = format!("macro {name:?}");
        self.check_keys(file, item, &["macro", "condition", "append", "override"], &what);
        let Some(cond_node) = item.get("condition") else {
            self.error(file, item.pos, format!("{what}: missing key \"condition\""));
            return;
        };
        let Some(cond) = self.string(file, item, "condition", &what) else { return };
        let append = self.boolean(file, item, "append", &what).unwrap_or(false);
        let mut mode = append.then_some(true);
        if let Some(ov) = self.overrides(file, item, &what) {
            if append {
                self.error(file, item.pos, format!("{what}: use either append or override, not both"));
            }
            for (k, app, pos) in ov {
                if k == "condition" {
                    mode = Some(app);
                } else {
                    self.error(
                        file,
                        pos,
                        format!("{what}: cannot override {k:?} of a macro (only condition)"),
                    );
                }
            }
        }
        match mode {
            None => {
                if !self.macros.contains_key(&name) {
                    self.macro_order.push(name.clone());
                }
                self.macros.insert(name, MacroEntry { cond: Text::new(file, cond_node, &cond) });
            }
            Some(app) => match self.macros.get_mut(&name) {
                Some(m) if app => m.cond.push(file, cond_node, &cond),
                Some(m) => m.cond = Text::new(file, cond_node, &cond),
                None => self.error(
                    file,
                    item.pos,
                    format!("{what}: cannot append to or override an undefined macro"),
                ),
            },
        }
    }

    fn exceptions(&mut self, file: usize, n: &Node, what: &str) -> Vec<ExceptionEntry> {
        let mut out = Vec::new();
        let Kind::Seq(items) = &n.kind else {
            if !n.is_null() {
                self.error(file, n.pos, format!("{what}: \"exceptions\" must be a sequence"));
            }
            return out;
        };
        for e in items {
            if !matches!(e.kind, Kind::Map(_)) {
                self.error(file, e.pos, format!("{what}: an exception must be a mapping"));
                continue;
            }
            self.check_keys(file, e, &["name", "fields", "comps", "values"], &format!("{what}: exception"));
            let Some(name) = self.string(file, e, "name", &format!("{what}: exception")) else {
                if e.get("name").is_none() {
                    self.error(file, e.pos, format!("{what}: exception without a name"));
                }
                continue;
            };
            let values = match e.get("values") {
                None => Vec::new(),
                Some(v) => match &v.kind {
                    Kind::Seq(vals) => vals.iter().map(|x| (file, x.clone())).collect(),
                    _ if v.is_null() => Vec::new(),
                    _ => {
                        self.error(
                            file,
                            v.pos,
                            format!("{what}: exception {name:?}: values must be a sequence"),
                        );
                        Vec::new()
                    }
                },
            };
            out.push(ExceptionEntry {
                name,
                file,
                pos: e.pos,
                fields: e.get("fields").map(|x| (file, x.clone())),
                comps: e.get("comps").map(|x| (file, x.clone())),
                values,
            });
        }
        out
    }

    fn merge_exceptions(&mut self, rule: usize, new: Vec<ExceptionEntry>, what: &str) {
        for e in new {
            let existing = self.rules[rule].exceptions.iter().position(|x| x.name == e.name);
            match existing {
                Some(i) => {
                    let r = &mut self.rules[rule].exceptions[i];
                    r.values.extend(e.values);
                    if r.fields.is_none() {
                        r.fields = e.fields;
                    }
                    if r.comps.is_none() {
                        r.comps = e.comps;
                    }
                }
                None => {
                    if e.fields.is_none() {
                        let (f, p) = (e.file, e.pos);
                        self.error(
                            f,
                            p,
                            format!("{what}: exception {:?} has no fields and is not defined before", e.name),
                        );
                        continue;
                    }
                    self.rules[rule].exceptions.push(e);
                }
            }
        }
    }

    fn extras(&mut self, file: usize, item: &Node) -> BTreeMap<String, Extra> {
        let mut out = BTreeMap::new();
        if let Kind::Map(entries) = &item.kind {
            for (k, v) in entries {
                let Some(key) = k.as_str() else { continue };
                if !RULE_KEYS.contains(&key) {
                    let fname = self.files.get(file).map(|f| f.name.clone()).unwrap_or_default();
                    out.insert(
                        key.to_string(),
                        Extra { value: v.to_json(), file: fname, line: v.pos.line, col: v.pos.col },
                    );
                }
            }
        }
        out
    }

    fn priority(&mut self, file: usize, item: &Node, what: &str) -> Option<Priority> {
        let n = item.get("priority")?;
        match n.as_str().map(str::parse::<Priority>) {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                self.error(file, n.pos, format!("{what}: {e}"));
                None
            }
            None => {
                self.error(file, n.pos, format!("{what}: \"priority\" must be a string"));
                None
            }
        }
    }

    fn rule(&mut self, file: usize, item: &Node) {
        let Some(name) = self.string(file, item, "rule", "rule") else { return };
        let what = format!("rule {name:?}");
        let source = self.string(file, item, "source", &what).unwrap_or_else(|| "syscall".to_string());
        if source != "syscall" {
            if !self.other_source_rules.contains_key(&name) {
                self.warn(
                    file,
                    item.pos,
                    format!("{what}: source {source:?} is not supported (only syscall); rule skipped"),
                );
            }
            self.other_source_rules.insert(name, source);
            return;
        }
        if self.other_source_rules.contains_key(&name) && !self.rule_index.contains_key(&name) {
            // An append or override of a rule of another source: skip with it.
            return;
        }
        let append = self.boolean(file, item, "append", &what).unwrap_or(false);
        let overrides = self.overrides(file, item, &what);
        if append && overrides.is_some() {
            self.error(file, item.pos, format!("{what}: use either append or override, not both"));
            return;
        }
        let existing = self.rule_index.get(&name).copied();
        if append {
            self.rule_append(file, item, &what, existing);
            return;
        }
        if let Some(ov) = overrides {
            self.rule_override(file, item, &what, existing, ov);
            return;
        }
        // `- rule: X` + `enabled: ...` alone toggles an existing rule.
        let keys: Vec<&str> = match &item.kind {
            Kind::Map(e) => e.iter().filter_map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        };
        if keys.iter().all(|k| matches!(*k, "rule" | "enabled")) && keys.contains(&"enabled") {
            match existing {
                Some(i) => {
                    if let Some(b) = self.boolean(file, item, "enabled", &what) {
                        self.rules[i].enabled = b;
                    }
                }
                None => {
                    self.error(file, item.pos, format!("{what}: cannot enable or disable an undefined rule"))
                }
            }
            return;
        }
        let mut missing = false;
        for key in ["condition", "output", "desc", "priority"] {
            if item.get(key).is_none() {
                self.error(file, item.pos, format!("{what}: missing required key {key:?}"));
                missing = true;
            }
        }
        if missing {
            return;
        }
        let cond_node = item.get("condition");
        let out_node = item.get("output");
        let cond = self.string(file, item, "condition", &what);
        let output = self.string(file, item, "output", &what);
        let desc = self.string(file, item, "desc", &what);
        let priority = self.priority(file, item, &what);
        let tags = match item.get("tags") {
            Some(t) => self.strings(file, t, &format!("{what}: tags")),
            None => Vec::new(),
        };
        let enabled = self.boolean(file, item, "enabled", &what).unwrap_or(true);
        let skip_if_unknown = self.boolean(file, item, "skip-if-unknown-filter", &what).unwrap_or(false);
        let exceptions = match item.get("exceptions") {
            Some(n) => self.exceptions(file, n, &what),
            None => Vec::new(),
        };
        let (Some(cond), Some(output), Some(desc), Some(priority), Some(cn), Some(on)) =
            (cond, output, desc, priority, cond_node, out_node)
        else {
            return;
        };
        let mut entry = RuleEntry {
            name: name.clone(),
            file,
            pos: item.pos,
            desc,
            cond: Text::new(file, cn, &cond),
            output: Text::new(file, on, &output),
            priority,
            tags,
            enabled,
            source,
            exceptions: Vec::new(),
            extra: self.extras(file, item),
            skip_if_unknown,
        };
        for e in exceptions {
            if e.fields.is_none() {
                self.error(e.file, e.pos, format!("{what}: exception {:?} has no fields", e.name));
            } else if entry.exceptions.iter().any(|x| x.name == e.name) {
                self.error(e.file, e.pos, format!("{what}: exception {:?} defined twice", e.name));
            } else {
                entry.exceptions.push(e);
            }
        }
        match existing {
            Some(i) => {
                debug!(rule = %name, "rule redefined; replacing");
                self.rules[i] = entry;
            }
            None => {
                self.rule_index.insert(name, self.rules.len());
                self.rules.push(entry);
            }
        }
    }

    fn rule_append(&mut self, file: usize, item: &Node, what: &str, existing: Option<usize>) {
        let Some(i) = existing else {
            self.error(file, item.pos, format!("{what}: cannot append to an undefined rule"));
            return;
        };
        if let Kind::Map(entries) = &item.kind {
            for (k, _) in entries {
                let key = k.as_str().unwrap_or("");
                if matches!(key, "output" | "desc" | "priority" | "tags" | "source") {
                    self.error(
                        file,
                        k.pos,
                        format!("{what}: {key:?} cannot be appended with append: true; use override: {{{key}: replace}}"),
                    );
                }
            }
        }
        if let (Some(n), Some(c)) = (item.get("condition"), self.string(file, item, "condition", what)) {
            self.rules[i].cond.push(file, n, &c);
        }
        if let Some(n) = item.get("exceptions") {
            let ex = self.exceptions(file, n, what);
            self.merge_exceptions(i, ex, what);
        }
        if let Some(b) = self.boolean(file, item, "enabled", what) {
            self.rules[i].enabled = b;
        }
        let extra = self.extras(file, item);
        self.rules[i].extra.extend(extra);
    }

    fn rule_override(
        &mut self,
        file: usize,
        item: &Node,
        what: &str,
        existing: Option<usize>,
        ov: Vec<(String, bool, Pos)>,
    ) {
        let Some(i) = existing else {
            self.error(file, item.pos, format!("{what}: cannot override an undefined rule"));
            return;
        };
        // Every key other than rule/override must be listed in override, and vice versa.
        if let Kind::Map(entries) = &item.kind {
            for (k, _) in entries {
                let key = k.as_str().unwrap_or("");
                if key != "rule" && key != "override" && !ov.iter().any(|(o, _, _)| o == key) {
                    self.error(file, k.pos, format!("{what}: key {key:?} is not listed in override"));
                }
            }
        }
        let extra = self.extras(file, item);
        for (key, app, pos) in ov {
            let Some(n) = item.get(&key) else {
                self.error(file, pos, format!("{what}: override of {key:?} but the item has no {key:?}"));
                continue;
            };
            let appendable = matches!(key.as_str(), "condition" | "output" | "desc" | "tags" | "exceptions");
            if app && !appendable {
                self.error(file, pos, format!("{what}: {key:?} cannot be appended, only replaced"));
                continue;
            }
            match key.as_str() {
                "condition" | "output" | "desc" => {
                    let Some(v) = self.string(file, item, &key, what) else { continue };
                    let r = &mut self.rules[i];
                    match (key.as_str(), app) {
                        ("condition", true) => r.cond.push(file, n, &v),
                        ("condition", false) => r.cond = Text::new(file, n, &v),
                        ("output", true) => r.output.push(file, n, &v),
                        ("output", false) => r.output = Text::new(file, n, &v),
                        ("desc", true) => {
                            r.desc.push(' ');
                            r.desc.push_str(&v);
                        }
                        _ => r.desc = v,
                    }
                }
                "tags" => {
                    let t = self.strings(file, n, &format!("{what}: tags"));
                    let r = &mut self.rules[i];
                    if app {
                        r.tags.extend(t);
                    } else {
                        r.tags = t;
                    }
                }
                "exceptions" => {
                    let ex = self.exceptions(file, n, what);
                    if app {
                        self.merge_exceptions(i, ex, what);
                    } else {
                        self.rules[i].exceptions.clear();
                        self.merge_exceptions(i, ex, what);
                    }
                }
                "priority" => {
                    if let Some(p) = self.priority(file, item, what) {
                        self.rules[i].priority = p;
                    }
                }
                "enabled" => {
                    if let Some(b) = self.boolean(file, item, "enabled", what) {
                        self.rules[i].enabled = b;
                    }
                }
                "skip-if-unknown-filter" => {
                    if let Some(b) = self.boolean(file, item, &key, what) {
                        self.rules[i].skip_if_unknown = b;
                    }
                }
                "source" => {
                    self.error(file, pos, format!("{what}: the source of a rule cannot be overridden"))
                }
                "warn_evttypes" | "capture" | "capture_duration" => {}
                k => {
                    if let Some(x) = extra.get(k) {
                        self.rules[i].extra.insert(k.to_string(), x.clone());
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------
    // positions

    fn locate(&self, t: &Text, off: usize) -> (usize, Pos, String) {
        let Some(piece) = t.pieces.iter().rev().find(|p| p.start <= off).or(t.pieces.first()) else {
            return (0, Pos::default(), String::new());
        };
        let value = &t.text[piece.start..piece.start + piece.len];
        let mut local = off.saturating_sub(piece.start).min(value.len());
        while !value.is_char_boundary(local) {
            local -= 1;
        }
        let excerpt: String = value[local..].chars().take(40).collect();
        let excerpt = excerpt.split('\n').next().unwrap_or("").trim_end().to_string();
        let src = self.files.get(piece.file).map(|f| f.text.as_str()).unwrap_or("");
        (piece.file, locate(src, piece.pos, piece.style, value, local), excerpt)
    }

    fn cerr(&self, t: &Text, off: usize, msg: &str, ctx: &str) -> (usize, Diagnostic) {
        let (file, pos, excerpt) = self.locate(t, off);
        let message = if excerpt.is_empty() {
            format!("{msg} in {ctx}")
        } else {
            format!("{msg} in {ctx} (at {excerpt:?})")
        };
        self.diag(file, pos, message)
    }

    // ------------------------------------------------------------------
    // build

    /// Compile everything added. Returns all errors found, not just the first.
    pub fn build(mut self) -> Result<Ruleset, LoadError> {
        let lists: HashMap<String, ListDef> =
            self.lists.iter().map(|(k, v)| (k.clone(), ListDef { items: v.items.clone() })).collect();
        let macro_src: HashMap<String, MacroSrc> =
            self.macros.iter().map(|(k, v)| (k.clone(), MacroSrc { text: v.cond.text.clone() })).collect();
        let mut compiler = Compiler::new(&lists, &macro_src);
        for name in &self.macro_order {
            let _ = compiler.macro_expr(name);
        }
        let mut errors: Vec<(usize, Diagnostic)> = Vec::new();
        let mut warnings: Vec<(usize, Diagnostic)> = Vec::new();
        let mut compiled = Vec::new();
        for r in &self.rules {
            let ctx = format!("condition of rule {:?}", r.name);
            let mut errs: Vec<CErr> = Vec::new();
            let mut fail: Option<Fail> = None;
            let expr = match parse::parse(&r.cond.text) {
                Ok(ast) => match compiler.compile(&ast, &Origin::Rule, &mut errs) {
                    Ok(e) => Some(e),
                    Err(f) => {
                        fail = Some(f);
                        None
                    }
                },
                Err(e) => {
                    errs.push(CErr { origin: Origin::Rule, off: e.off, msg: e.message, unknown_field: None });
                    fail = Some(Fail { unknown: Vec::new(), hard: true });
                    None
                }
            };
            let mut diags: Vec<(usize, Diagnostic)> =
                errs.iter().map(|e| self.cerr(&r.cond, e.off, &e.msg, &ctx)).collect();
            let mut unknown: Vec<String> = fail.as_ref().map(|f| f.unknown.clone()).unwrap_or_default();
            let mut hard = fail.as_ref().is_some_and(|f| f.hard);
            // Exceptions.
            let mut exc_exprs = Vec::new();
            for e in &r.exceptions {
                match self.exception(&compiler, r, e) {
                    Ok(Some(x)) => exc_exprs.push(x),
                    Ok(None) => {}
                    Err((d, u)) => {
                        match u {
                            Some(u) => unknown.push(u),
                            None => hard = true,
                        }
                        diags.push(d);
                    }
                }
            }
            // Output.
            let template = match Template::parse(&r.output.text) {
                Ok(t) => Some(t),
                Err(terrs) => {
                    for te in terrs {
                        match te.unknown_field {
                            Some(u) => unknown.push(u),
                            None => hard = true,
                        }
                        diags.push(self.cerr(
                            &r.output,
                            te.off,
                            &te.msg,
                            &format!("output of rule {:?}", r.name),
                        ));
                    }
                    None
                }
            };
            let ok = diags.is_empty() && fail.is_none();
            if !ok {
                unknown.dedup();
                let skip = (self.skip_unknown_fields || r.skip_if_unknown) && !hard && !unknown.is_empty();
                if skip {
                    warnings.push(self.diag(
                        r.file,
                        r.pos,
                        format!(
                            "rule {:?} skipped: it uses field(s) {} that rampart does not provide",
                            r.name,
                            unknown.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                } else if !r.enabled {
                    for (f, mut d) in diags {
                        d.message = format!("{} (rule is disabled)", d.message);
                        warnings.push((f, d));
                    }
                } else {
                    errors.extend(diags);
                }
                continue;
            }
            let (Some(mut expr), Some(template)) = (expr, template) else { continue };
            if !exc_exprs.is_empty() {
                let exc = if exc_exprs.len() == 1 {
                    exc_exprs.pop().unwrap_or(Expr::Const(false))
                } else {
                    Expr::Or(exc_exprs.into_boxed_slice())
                };
                expr = Expr::And(vec![expr, Expr::Not(Box::new(exc))].into_boxed_slice());
            }
            let types = expr.evt_types();
            let expr = expr.optimize(types.as_ref());
            let evt_types = types.map(|s| s.into_iter().collect::<Vec<_>>());
            compiled.push(CompiledRule {
                name: r.name.clone(),
                desc: r.desc.clone(),
                priority: r.priority,
                tags: r.tags.clone(),
                source: r.source.clone(),
                output: r.output.text.trim().to_string(),
                enabled: r.enabled,
                extra: r.extra.clone(),
                file: self.files.get(r.file).map(|f| f.name.clone()).unwrap_or_default(),
                line: r.pos.line,
                evt_types,
                expr,
                template,
            });
        }
        // Macro errors, once each.
        for e in &compiler.macro_errs {
            if e.unknown_field.is_some() && self.skip_unknown_fields {
                continue;
            }
            let Origin::Macro(m) = &e.origin else { continue };
            let Some(entry) = self.macros.get(m) else { continue };
            errors.push(self.cerr(&entry.cond, e.off, &e.msg, &format!("condition of macro {m:?}")));
        }
        let mut all_errors = std::mem::take(&mut self.errors);
        all_errors.extend(errors);
        let mut all_warnings = std::mem::take(&mut self.warnings);
        all_warnings.extend(warnings);
        let order = |v: &mut Vec<(usize, Diagnostic)>| {
            v.sort_by_key(|d| (d.0, d.1.line, d.1.col));
            v.dedup_by(|a, b| a.1 == b.1);
        };
        order(&mut all_errors);
        order(&mut all_warnings);
        let warnings: Vec<Diagnostic> = all_warnings.into_iter().map(|(_, d)| d).collect();
        if !all_errors.is_empty() {
            return Err(LoadError { errors: all_errors.into_iter().map(|(_, d)| d).collect(), warnings });
        }
        Ok(Ruleset::new(compiled, warnings))
    }

    /// Compile one exception into the expression it excludes (`None` when it has
    /// no values).
    #[allow(clippy::type_complexity)]
    fn exception(
        &self,
        compiler: &Compiler<'_>,
        r: &RuleEntry,
        e: &ExceptionEntry,
    ) -> Result<Option<Expr>, ((usize, Diagnostic), Option<String>)> {
        let what = format!("rule {:?}: exception {:?}", r.name, e.name);
        let err = |file: usize, pos: Pos, msg: String| (self.diag(file, pos, format!("{what}: {msg}")), None);
        let Some((ffile, fnode)) = &e.fields else {
            return Err(err(e.file, e.pos, "no fields".into()));
        };
        if e.values.is_empty() {
            return Ok(None);
        }
        let scalar_list = |file: usize,
                           n: &Node,
                           key: &str|
         -> Result<Vec<(String, Pos)>, ((usize, Diagnostic), Option<String>)> {
            match &n.kind {
                Kind::Seq(items) => items
                    .iter()
                    .map(|i| match &i.kind {
                        Kind::Scalar(s, _) => Ok((s.clone(), i.pos)),
                        _ => Err(err(file, i.pos, format!("{key} must be strings"))),
                    })
                    .collect(),
                _ => Err(err(file, n.pos, format!("{key} must be a sequence"))),
            }
        };
        let cmp = |field: &str, pos: (usize, Pos), op: Op, vals: Vec<ValTok>, vpos: &[(usize, Pos)]| {
            let vals = if op.takes_list() { compiler.expand_values(&vals) } else { vals };
            let (name, arg) = split_field(field);
            build_cmp(name, arg, op, &vals).map(|c| Expr::Cmp(Box::new(c))).map_err(|ce| {
                let at = match ce.value {
                    Some(i) => vals.get(i).and_then(|v| vpos.get(v.off)).copied().unwrap_or(pos),
                    None => pos,
                };
                (self.diag(at.0, at.1, format!("{what}: {}", ce.msg)), ce.unknown_field.clone())
            })
        };
        let op_of = |s: &str, file: usize, pos: Pos| -> Result<Op, ((usize, Diagnostic), Option<String>)> {
            Op::from_word(s.trim())
                .ok_or_else(|| err(file, pos, format!("unknown comparison operator {s:?}")))
        };
        match &fnode.kind {
            Kind::Scalar(field, _) => {
                // Single field: `field comp (values...)`.
                let op = match &e.comps {
                    Some((cf, c)) => match c.as_str() {
                        Some(s) => op_of(s, *cf, c.pos)?,
                        None => {
                            return Err(err(
                                *cf,
                                c.pos,
                                "comps must be a single operator when fields is one field".into(),
                            ))
                        }
                    },
                    None => Op::In,
                };
                let mut vals = Vec::new();
                let mut vpos = Vec::new();
                for (vf, v) in &e.values {
                    match &v.kind {
                        Kind::Scalar(s, st) => {
                            vals.push(ValTok {
                                text: s.clone(),
                                quoted: *st != Style::Plain,
                                off: vpos.len(),
                            });
                            vpos.push((*vf, v.pos));
                        }
                        Kind::Seq(items) => {
                            for i in items {
                                if let Kind::Scalar(s, st) = &i.kind {
                                    vals.push(ValTok {
                                        text: s.clone(),
                                        quoted: *st != Style::Plain,
                                        off: vpos.len(),
                                    });
                                    vpos.push((*vf, i.pos));
                                }
                            }
                        }
                        _ => return Err(err(*vf, v.pos, "values must be strings".into())),
                    }
                }
                if op.takes_list() {
                    cmp(field, (*ffile, fnode.pos), op, vals, &vpos).map(Some)
                } else {
                    let mut alts = Vec::new();
                    for v in vals {
                        alts.push(cmp(field, (*ffile, fnode.pos), op, vec![v], &vpos)?);
                    }
                    Ok(Some(Expr::Or(alts.into_boxed_slice())))
                }
            }
            Kind::Seq(_) => {
                let fields = scalar_list(*ffile, fnode, "fields")?;
                let comps: Vec<(Op, usize, Pos)> = match &e.comps {
                    Some((cf, c)) => {
                        let cs = scalar_list(*cf, c, "comps")?;
                        if cs.len() != fields.len() {
                            return Err(err(
                                *cf,
                                c.pos,
                                format!("{} comps for {} fields", cs.len(), fields.len()),
                            ));
                        }
                        cs.iter()
                            .map(|(s, p)| op_of(s, *cf, *p).map(|o| (o, *cf, *p)))
                            .collect::<Result<_, _>>()?
                    }
                    None => fields.iter().map(|_| (Op::Eq, *ffile, fnode.pos)).collect(),
                };
                let mut alts = Vec::new();
                for (vf, tuple) in &e.values {
                    let Kind::Seq(items) = &tuple.kind else {
                        return Err(err(
                            *vf,
                            tuple.pos,
                            "each value must be a sequence with one item per field".into(),
                        ));
                    };
                    if items.len() != fields.len() {
                        return Err(err(
                            *vf,
                            tuple.pos,
                            format!("value has {} items but there are {} fields", items.len(), fields.len()),
                        ));
                    }
                    let mut conj = Vec::new();
                    for ((item, (field, fpos)), (op, _, _)) in items.iter().zip(&fields).zip(&comps) {
                        let mut vals = Vec::new();
                        let mut vpos = Vec::new();
                        match &item.kind {
                            Kind::Scalar(s, st) => {
                                vals.push(ValTok { text: s.clone(), quoted: *st != Style::Plain, off: 0 });
                                vpos.push((*vf, item.pos));
                            }
                            Kind::Seq(list) if op.takes_list() => {
                                for i in list {
                                    match &i.kind {
                                        Kind::Scalar(s, st) => {
                                            vals.push(ValTok {
                                                text: s.clone(),
                                                quoted: *st != Style::Plain,
                                                off: vpos.len(),
                                            });
                                            vpos.push((*vf, i.pos));
                                        }
                                        _ => return Err(err(*vf, i.pos, "values must be strings".into())),
                                    }
                                }
                            }
                            _ => {
                                return Err(err(
                                    *vf,
                                    item.pos,
                                    format!(
                                    "a list value needs a list operator (in, intersects, pmatch), not '{}'",
                                    op.as_str()
                                ),
                                ))
                            }
                        }
                        conj.push(cmp(field, (*ffile, *fpos), *op, vals, &vpos)?);
                    }
                    alts.push(Expr::And(conj.into_boxed_slice()));
                }
                Ok(Some(Expr::Or(alts.into_boxed_slice())))
            }
            _ => {
                Err(err(*ffile, fnode.pos, "fields must be a field name or a sequence of field names".into()))
            }
        }
    }
}

/// `proc.aname[2]` -> (`proc.aname`, `Some("2")`).
fn split_field(f: &str) -> (&str, Option<&str>) {
    let f = f.trim();
    match f.find('[') {
        Some(i) if f.ends_with(']') => (&f[..i], Some(&f[i + 1..f.len() - 1])),
        _ => (f, None),
    }
}

/// Map a byte offset inside a scalar's value to its position in the file:
/// non-whitespace characters of the value appear in the source in order (YAML
/// folding only changes whitespace), so count them.
fn locate(src: &str, pos: Pos, style: Style, value: &str, local: usize) -> Pos {
    let nonws = |t: &str| t.chars().filter(|c| !c.is_whitespace()).count();
    let total = nonws(value);
    if total == 0 {
        return pos;
    }
    let k = nonws(&value[..local]);
    // Past the last character: point just after it.
    let (target, after) = if k >= total { (total - 1, true) } else { (k, false) };
    let skip = match style {
        Style::SingleQuoted | Style::DoubleQuoted => pos.col,
        _ => pos.col.saturating_sub(1),
    };
    let mut count = 0;
    // Block scalars (| and >) are marked where their content starts.
    for (li, line) in src.split('\n').enumerate().skip(pos.line.saturating_sub(1)).take(100_000) {
        let first = li + 1 == pos.line;
        for (c, ch) in line.chars().enumerate().skip(if first { skip } else { 0 }) {
            if ch.is_whitespace() {
                continue;
            }
            if count == target {
                return Pos { line: li + 1, col: c + 1 + usize::from(after) };
            }
            count += 1;
        }
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_maps_offsets() {
        let src = "- rule: x\n  condition: evt.type = open and proc.nam = x\n";
        let value = "evt.type = open and proc.nam = x";
        let off = value.find("proc.nam").unwrap();
        assert_eq!(locate(src, Pos { line: 2, col: 14 }, Style::Plain, value, off), Pos { line: 2, col: 34 });
        let src = "- rule: x\n  condition: >\n    evt.type = open\n    and proc.nam = x\n";
        let value = "evt.type = open and proc.nam = x\n";
        let off = value.find("proc.nam").unwrap();
        assert_eq!(locate(src, Pos { line: 3, col: 5 }, Style::Folded, value, off), Pos { line: 4, col: 9 });
        let src = "  condition: \"a = 1 and b\"\n";
        assert_eq!(
            locate(src, Pos { line: 1, col: 14 }, Style::DoubleQuoted, "a = 1 and b", 10),
            Pos { line: 1, col: 25 }
        );
    }
}
