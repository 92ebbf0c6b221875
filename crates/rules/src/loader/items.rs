//! YAML items -> list, macro and rule definitions (each checked for its keys
//! and types; append and override go to `merge`).

use super::*;

impl RulesetBuilder {
    pub(super) fn list(&mut self, file: usize, item: &Node) {
        let Some(name) = self.string(file, item, "list", "list") else { return };
        let what = format!("list {name:?}");
        self.check_keys(file, item, LIST_KEYS, &what);
        // An item whose text is a quoted string of the condition language
        // (`'"10.0.0.0/8"'`) stands for that string, as when Falco pastes the
        // list into a condition.
        let items = match item.get("items") {
            Some(n) => self
                .strings(file, n, &what)
                .into_iter()
                .map(|s| crate::parse::unquote_item(&s).unwrap_or(s))
                .collect(),
            None => {
                self.error(file, item.pos, format!("{what}: missing key \"items\""));
                return;
            }
        };
        let mode = self.merge_mode(file, item, &what, "list", "items");
        match mode {
            None => {
                if let Some((prev, same)) = self.lists.get(&name).map(|l| ((l.file, l.pos), l.items == items))
                {
                    self.redefined(&what, file, item.pos, prev, same);
                }
                self.lists.insert(name, ListEntry { items, file, pos: item.pos });
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

    pub(super) fn macro_item(&mut self, file: usize, item: &Node) {
        let Some(name) = self.string(file, item, "macro", "macro") else { return };
        let what = format!("macro {name:?}");
        self.check_keys(file, item, MACRO_KEYS, &what);
        let Some(cond_node) = item.get("condition") else {
            self.error(file, item.pos, format!("{what}: missing key \"condition\""));
            return;
        };
        let Some(cond) = self.string(file, item, "condition", &what) else { return };
        let source = self.string(file, item, "source", &what).unwrap_or_else(|| "syscall".to_string());
        if source != "syscall" {
            self.warn(
                file,
                item.pos,
                format!("{what}: source {source:?} is not supported (only syscall); skipped"),
            );
            self.other_source_macros.insert(name, source);
            return;
        }
        let mode = self.merge_mode(file, item, &what, "macro", "condition");
        match mode {
            None => {
                match self.macros.get(&name).map(|m| ((m.file, m.pos), m.cond.text.trim() == cond.trim())) {
                    Some((prev, same)) => self.redefined(&what, file, item.pos, prev, same),
                    None => self.macro_order.push(name.clone()),
                }
                self.macros.insert(
                    name,
                    MacroEntry { cond: Text::new(file, cond_node, &cond), file, pos: item.pos },
                );
            }
            Some(app) => match self.macros.get_mut(&name) {
                Some(m) if app => m.cond.push(file, cond_node, &cond),
                Some(m) => m.cond = Text::new(file, cond_node, &cond),
                None if self.other_source_macros.contains_key(&name) => {}
                None => self.error(
                    file,
                    item.pos,
                    format!("{what}: cannot append to or override an undefined macro"),
                ),
            },
        }
    }

    pub(super) fn exceptions(&mut self, file: usize, n: &Node, what: &str) -> Vec<ExceptionEntry> {
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

    pub(super) fn extras(&mut self, file: usize, item: &Node) -> BTreeMap<String, Extra> {
        let mut out = BTreeMap::new();
        if let Kind::Map(entries) = &item.kind {
            for (k, v) in entries {
                let Some(key) = k.as_str() else { continue };
                if EXTENSION_KEYS.contains(&key) {
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

    pub(super) fn priority(&mut self, file: usize, item: &Node, what: &str) -> Option<Priority> {
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

    pub(super) fn rule(&mut self, file: usize, item: &Node) {
        let Some(name) = self.string(file, item, "rule", "rule") else { return };
        let what = format!("rule {name:?}");
        // Unknown keys are errors: `action: [kill]` for `actions:` must not
        // load a rule that never responds.
        let known: Vec<&str> = RULE_KEYS.iter().chain(EXTENSION_KEYS).copied().collect();
        self.check_keys(file, item, &known, &what);
        if let Some(v) = item.get("required_engine_version") {
            self.engine_requirement(file, v);
        }
        let source = self.string(file, item, "source", &what).unwrap_or_else(|| "syscall".to_string());
        if source != "syscall" {
            if !self.other_source_rules.contains_key(&name) {
                self.warn(
                    file,
                    item.pos,
                    format!("{what}: source {source:?} is not supported (only syscall); rule skipped"),
                );
                self.skipped.push(SkippedRule {
                    name: name.clone(),
                    file: self.files.get(file).map(|f| f.name.clone()).unwrap_or_default(),
                    line: item.pos.line,
                    reason: format!("source {source:?} is not supported (only syscall)"),
                });
            }
            let cond = item.get("condition").and_then(Node::as_str).map(String::from);
            self.other_source_rules.insert(name, (source, cond));
            return;
        }
        if let Some((_, cond)) = self.other_source_rules.get_mut(&name) {
            if !self.rule_index.contains_key(&name) {
                // An append or override of a rule of another source: skip with
                // it (its condition still counts for the macros it uses).
                if let (Some(c), Some(more)) = (cond.as_mut(), item.get("condition").and_then(Node::as_str)) {
                    c.push(' ');
                    c.push_str(more);
                }
                return;
            }
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
                let old = &self.rules[i];
                let same = old.cond.text.trim() == entry.cond.text.trim()
                    && old.output.text.trim() == entry.output.text.trim()
                    && old.desc == entry.desc
                    && old.priority == entry.priority
                    && old.enabled == entry.enabled
                    && old.tags == entry.tags
                    && old.exceptions.is_empty()
                    && entry.exceptions.is_empty()
                    && old.extra.keys().eq(entry.extra.keys());
                let prev = (old.file, old.pos);
                self.redefined(&what, file, item.pos, prev, same);
                self.rules[i] = entry;
            }
            None => {
                self.rule_index.insert(name, self.rules.len());
                self.rules.push(entry);
            }
        }
    }
}
