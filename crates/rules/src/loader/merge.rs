//! `append: true` and `override:` on an item already defined, and exceptions
//! merged by name.

use super::*;

impl RulesetBuilder {
    /// How a list or macro item applies to an earlier definition: `None`
    /// defines it, `Some(true)` appends, `Some(false)` overrides. `key` is the
    /// one key of a `kind` that `override:` may name.
    pub(super) fn merge_mode(
        &mut self,
        file: usize,
        item: &Node,
        what: &str,
        kind: &str,
        key: &str,
    ) -> Option<bool> {
        let append = self.boolean(file, item, "append", what).unwrap_or(false);
        let mut mode = append.then_some(true);
        if let Some(ov) = self.overrides(file, item, what) {
            if append {
                self.error(file, item.pos, format!("{what}: use either append or override, not both"));
            }
            for (k, app, pos) in ov {
                if k == key {
                    mode = Some(app);
                } else {
                    self.error(file, pos, format!("{what}: cannot override {k:?} of a {kind} (only {key})"));
                }
            }
        }
        mode
    }

    pub(super) fn merge_exceptions(&mut self, rule: usize, new: Vec<ExceptionEntry>, what: &str) {
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

    pub(super) fn rule_append(&mut self, file: usize, item: &Node, what: &str, existing: Option<usize>) {
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

    pub(super) fn rule_override(
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
}
