//! rampart's rules engine: Falco's rule language (lists, macros, rules with
//! exceptions, append and override) compiled once into expression trees with
//! precompiled matchers, indexed by event type, and evaluated over
//! [`model::Event`]s.
//!
//! Pure: no I/O. The caller passes file names and texts:
//!
//! ```
//! use rules::{EvalCtx, RulesetBuilder};
//! let mut b = RulesetBuilder::new();
//! b.add_file("r.yaml", "- rule: shell\n  desc: d\n  condition: evt.type = execve and proc.name = sh\n  output: \"%proc.cmdline\"\n  priority: warning\n");
//! let rules = b.build().expect("valid rules");
//! assert_eq!(rules.len(), 1);
//! ```

mod compile;
pub mod fields;
mod loader;
mod matchers;
mod names;
mod output;
mod parse;
mod pathscan;
mod transform;
mod yaml;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_falco;
#[cfg(test)]
mod tests_hostile;

pub use fields::{
    fields_markdown, fields_without_value, uncaptured_event_type, uncaptured_event_types, without_value,
    ArgSpec, EvalCtx, FieldDef, FieldType, CONTAINER_RATE_FIELDS, FIELDS,
};
pub use loader::{RulesetBuilder, FALCO_ENGINE_VERSION};
pub use model::{Priority, UnknownPriority};

use compile::Expr;
use matchers::FxBuild;
use model::Event;
use output::Template;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// One problem in a rule file, with its position (line and column 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

/// Rule files refused: every error found (and the warnings).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", display_all(.errors))]
pub struct LoadError {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

fn display_all(errors: &[Diagnostic]) -> String {
    let lines: Vec<String> = errors.iter().map(Diagnostic::to_string).collect();
    lines.join("\n")
}

/// A rule that was not compiled, and why (a warning says the same, with its
/// position): it is for another source than syscall, or it uses fields
/// rampart does not provide (when told to skip those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRule {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// A rule key rampart does not interpret itself (e.g. `actions:`), kept as JSON
/// with the position of its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    pub value: serde_json::Value,
    pub file: String,
    pub line: usize,
    pub col: usize,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub name: String,
    pub desc: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    /// Always `syscall` for now.
    pub source: String,
    /// The output template as written (`%field` placeholders).
    pub output: String,
    pub enabled: bool,
    /// Keys rampart does not interpret (e.g. `actions`), by key.
    pub extra: BTreeMap<String, Extra>,
    /// Where the rule was (last) defined.
    pub file: String,
    pub line: usize,
    /// The event types the rule can match (`None`: any type).
    pub evt_types: Option<Vec<String>>,
    expr: Expr,
    template: Template,
}

/// One operand of a rule condition's top-level `and` (after compilation and
/// simplification; `evt.type` tests are folded into [`CompiledRule::evt_types`]),
/// for callers that move a rule, or part of it, elsewhere (e.g. into the
/// kernel) and must know exactly what it tests.
#[derive(Debug, Clone, Copy)]
pub struct Conjunct<'a>(&'a compile::Expr);

impl Conjunct<'_> {
    /// The names of the fields the operand reads.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        self.0.fields(&mut v);
        v
    }

    /// `field = x` / `field in (x, ...)`, exact string equality on a field
    /// without argument, not negated: the field and its values.
    pub fn string_equality(&self) -> Option<(&'static str, Vec<String>)> {
        self.0.string_equality()
    }

    /// `field != x` / `not field in (x, ...)`, exact string inequality on a
    /// field without argument: the field and the values it must differ from.
    pub fn string_inequality(&self) -> Option<(&'static str, Vec<String>)> {
        self.0.string_inequality()
    }

    /// Evaluates the operand alone.
    pub fn eval(&self, ev: &Event, ctx: &EvalCtx<'_>) -> bool {
        self.0.eval(ev, ctx)
    }
}

impl CompiledRule {
    /// The operands of the condition's top-level `and` (one for a condition
    /// that is not an `and`; none for a condition that always holds).
    pub fn conjuncts(&self) -> Vec<Conjunct<'_>> {
        match &self.expr {
            Expr::And(v) => v.iter().map(Conjunct).collect(),
            Expr::Const(true) => Vec::new(),
            e => vec![Conjunct(e)],
        }
    }

    /// The fields the rule reads: its condition's and its output's.
    pub fn fields_used(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        self.expr.fields(&mut v);
        self.template.fields(&mut v);
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether the rule's condition holds for `ev` (ignores `enabled`).
    pub fn matches(&self, ev: &Event, ctx: &EvalCtx<'_>) -> bool {
        // The compiled expression relies on the type index: check the type here.
        if let Some(types) = &self.evt_types {
            match ev.syscall.as_deref() {
                Some(t) if types.iter().any(|x| x == t) => {}
                _ => return false,
            }
        }
        self.expr.eval(ev, ctx)
    }

    /// The output with `%field` placeholders filled (`<NA>` for missing values)
    /// and the fields it references (`null` for missing values).
    pub fn render_output(
        &self,
        ev: &Event,
        ctx: &EvalCtx<'_>,
    ) -> (String, BTreeMap<String, serde_json::Value>) {
        self.template.render(ev, ctx)
    }
}

/// A rule as the type index holds it: its condition specialized for one event
/// type (every `evt.type` comparison decided, see [`Expr::specialize`]), with
/// the cheap conjuncts it shares with other rules of the type taken out as
/// guards.
#[derive(Debug)]
struct Candidate {
    rule: u32,
    /// The guards (bits: indexes in [`TypeIndex::guards`]) that must hold.
    guards: u64,
    /// The type index's path scan says whether the rule can match.
    screened: bool,
    /// The rest of the condition.
    expr: Expr,
}

/// The rules for one event type. Many rules start with the same cheap tests
/// (`evt.is_open_write = true`, `evt.rawres >= 0`, `container.id != host`):
/// those are evaluated at most once per event and remembered.
#[derive(Debug, Default)]
struct TypeIndex {
    /// How many enabled rules the index routes to the type (including rules
    /// whose specialized condition is false, which are left out of `cands`).
    routed: usize,
    guards: Box<[Expr]>,
    cands: Box<[Candidate]>,
    /// One pass over the path for the candidates that need one of a few
    /// strings in it.
    paths: Option<pathscan::PathScan>,
}

/// At most this many guards per event type (one bit each).
const MAX_GUARDS: usize = 64;

impl TypeIndex {
    fn new(rules: &[CompiledRule], ids: &[u32], evt_type: &str) -> TypeIndex {
        let specialized: Vec<(u32, Expr)> = ids
            .iter()
            .map(|&i| (i, rules[i as usize].expr.specialize(evt_type)))
            .filter(|(_, e)| !matches!(e, Expr::Const(false)))
            .collect();
        // Conjuncts that are guard material, by key, with how many rules use them.
        let mut uses: HashMap<String, usize> = HashMap::new();
        for (_, e) in &specialized {
            if let Expr::And(items) = e {
                let mut keys: Vec<String> = items.iter().filter_map(Expr::guard_key).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    *uses.entry(k).or_default() += 1;
                }
            }
        }
        let mut keys: Vec<String> = Vec::new();
        let mut guards: Vec<Expr> = Vec::new();
        let mut cands = Vec::with_capacity(specialized.len());
        for (rule, e) in specialized {
            let mut bits = 0u64;
            let mut rest = Vec::new();
            for c in e.into_conjuncts() {
                let key = c.guard_key().filter(|k| uses.get(k).copied().unwrap_or(0) >= 2);
                let slot = key.and_then(|k| match keys.iter().position(|x| *x == k) {
                    Some(i) => Some(i),
                    None if keys.len() < MAX_GUARDS => {
                        keys.push(k);
                        guards.push(c.clone());
                        Some(keys.len() - 1)
                    }
                    None => None,
                });
                match slot {
                    Some(i) => bits |= 1 << i,
                    None => rest.push(c),
                }
            }
            let expr = if rest.is_empty() { Expr::Const(true) } else { Expr::and(rest) };
            cands.push(Candidate { rule, guards: bits, screened: false, expr });
        }
        let needs: Vec<Option<Vec<String>>> = cands.iter().map(|c| c.expr.path_fragments()).collect();
        let paths = pathscan::PathScan::new(&needs);
        if paths.is_some() {
            for (i, c) in cands.iter_mut().enumerate().take(pathscan::MAX_SCREENED) {
                c.screened = needs[i].is_some();
            }
        }
        TypeIndex {
            routed: ids.len(),
            guards: guards.into_boxed_slice(),
            cands: cands.into_boxed_slice(),
            paths,
        }
    }
}

/// The matching rules of one event (see [`Ruleset::evaluate`]).
struct Matching<'s, 'e> {
    rules: &'s [CompiledRule],
    guards: &'s [Expr],
    cands: &'s [Candidate],
    /// Rules for any type, for an event whose type is not indexed.
    any: std::slice::Iter<'s, u32>,
    next: usize,
    ev: &'e Event,
    ctx: &'e EvalCtx<'e>,
    /// Guards evaluated so far, and which of them hold.
    known: u64,
    holds: u64,
    paths: Option<&'s pathscan::PathScan>,
    /// The path scan's answer, once a screened candidate needed it.
    possible: Option<pathscan::Possible>,
}

impl<'s> Matching<'s, '_> {
    fn guards_hold(&mut self, mut need: u64) -> bool {
        while need != 0 {
            let bit = need & need.wrapping_neg();
            if self.known & bit == 0 {
                self.known |= bit;
                if self.guards[bit.trailing_zeros() as usize].eval(self.ev, self.ctx) {
                    self.holds |= bit;
                }
            }
            if self.holds & bit == 0 {
                return false;
            }
            need &= need - 1;
        }
        true
    }

    /// Whether the path scan lets candidate `i` (a screened one) through.
    fn path_allows(&mut self, i: usize) -> bool {
        let Some(scan) = self.paths else { return true };
        let (ev, ctx) = (self.ev, self.ctx);
        pathscan::allows(self.possible.get_or_insert_with(|| scan.possible(ev, ctx)), i)
    }
}

impl<'s> Iterator for Matching<'s, '_> {
    type Item = &'s CompiledRule;

    fn next(&mut self) -> Option<&'s CompiledRule> {
        while let Some(c) = self.cands.get(self.next) {
            let i = self.next;
            self.next += 1;
            if self.guards_hold(c.guards)
                && (!c.screened || self.path_allows(i))
                && c.expr.eval(self.ev, self.ctx)
            {
                return Some(&self.rules[c.rule as usize]);
            }
        }
        let (rules, ev, ctx) = (self.rules, self.ev, self.ctx);
        self.any.by_ref().map(|&i| &rules[i as usize]).find(|r| r.expr.eval(ev, ctx))
    }
}

/// A compiled, indexed set of rules.
#[derive(Debug, Default)]
pub struct Ruleset {
    rules: Vec<CompiledRule>,
    /// Enabled rules per event type (including the rules for any type), in
    /// order, with their conditions specialized for that type. Rules whose
    /// condition cannot hold on the type are left out.
    by_type: HashMap<Box<str>, TypeIndex, FxBuild>,
    /// Enabled rules that can match any event type (for events of a type no
    /// rule names), evaluated with their general condition.
    any: Box<[u32]>,
    warnings: Vec<Diagnostic>,
    skipped: Vec<SkippedRule>,
}

impl Ruleset {
    fn new(rules: Vec<CompiledRule>, warnings: Vec<Diagnostic>, skipped: Vec<SkippedRule>) -> Ruleset {
        let mut typed: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        let mut any = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if !r.enabled {
                continue;
            }
            match &r.evt_types {
                None => any.push(i as u32),
                Some(types) => {
                    for t in types {
                        typed.entry(t.clone()).or_default().push(i as u32);
                    }
                }
            }
        }
        let by_type = typed
            .into_iter()
            .map(|(t, mut v)| {
                v.extend(any.iter().copied());
                v.sort_unstable();
                v.dedup();
                let index = TypeIndex::new(&rules, &v, &t);
                (t.into_boxed_str(), index)
            })
            .collect();
        Ruleset { rules, by_type, any: any.into_boxed_slice(), warnings, skipped }
    }

    /// A rule set with no rules.
    pub fn empty() -> Ruleset {
        Ruleset::default()
    }

    /// Every compiled rule, enabled or not, in definition order.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    pub fn get(&self, name: &str) -> Option<&CompiledRule> {
        self.rules.iter().find(|r| r.name == name)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether an enabled rule reads the field (in its condition or its
    /// output): what the agent reads only for rules that need it (`proc.env`).
    pub fn uses_field(&self, name: &str) -> bool {
        self.rules.iter().filter(|r| r.enabled).any(|r| r.fields_used().contains(&name))
    }

    /// Warnings from loading (skipped rules, ignored items, ...).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The rules defined but not compiled, in definition order.
    pub fn skipped(&self) -> &[SkippedRule] {
        &self.skipped
    }

    /// The event types some enabled rule can match, by `evt.type` name: what
    /// a prefilter must let through. A type counts when a rule pins it and
    /// the rule's condition, specialized for the type, is not false; `None`
    /// (every type) when an enabled rule pins no type.
    pub fn event_types_used(&self) -> Option<BTreeSet<String>> {
        if !self.any.is_empty() {
            return None;
        }
        Some(self.by_type.iter().filter(|(_, ix)| !ix.cands.is_empty()).map(|(t, _)| t.to_string()).collect())
    }

    /// How many enabled rules an event of this type meets (after indexing).
    pub fn candidates_for_type(&self, evt_type: &str) -> usize {
        self.by_type.get(evt_type).map(|v| v.routed).unwrap_or(self.any.len())
    }

    /// The enabled rules matching `ev`, in definition order (lazy).
    pub fn evaluate<'s: 'e, 'e>(
        &'s self,
        ev: &'e Event,
        ctx: &'e EvalCtx<'e>,
    ) -> impl Iterator<Item = &'s CompiledRule> + 'e {
        // An indexed type meets its specialized rules; any other event the rules
        // for any type, with their general condition.
        let (guards, cands, any, paths): (&[Expr], &[Candidate], &[u32], _) =
            match ev.syscall.as_deref().and_then(|t| self.by_type.get(t)) {
                Some(ix) => (&ix.guards, &ix.cands, &[], ix.paths.as_ref()),
                None => (&[], &[], &self.any, None),
            };
        Matching {
            rules: &self.rules,
            guards,
            cands,
            any: any.iter(),
            next: 0,
            ev,
            ctx,
            known: 0,
            holds: 0,
            paths,
            possible: None,
        }
    }

    /// Push the enabled rules matching `ev` onto `out`; returns how many matched.
    pub fn matches<'a>(&'a self, ev: &Event, ctx: &EvalCtx<'_>, out: &mut Vec<&'a CompiledRule>) -> usize {
        let before = out.len();
        out.extend(self.evaluate(ev, ctx));
        out.len() - before
    }

    /// The first enabled rule matching `ev` (Falco's default `rule_matching: first`).
    pub fn first_match<'a>(&'a self, ev: &Event, ctx: &EvalCtx<'_>) -> Option<&'a CompiledRule> {
        self.evaluate(ev, ctx).next()
    }

    /// See [`CompiledRule::render_output`].
    pub fn render_output(
        &self,
        rule: &CompiledRule,
        ev: &Event,
        ctx: &EvalCtx<'_>,
    ) -> (String, BTreeMap<String, serde_json::Value>) {
        rule.render_output(ev, ctx)
    }
}

/// Check one condition text against the field registry and operators (no
/// macros or lists): for tools and tests. Errors carry the byte offset.
pub fn check_condition(text: &str) -> Result<(), (usize, String)> {
    let ast = parse::parse(text).map_err(|e| (e.off, e.message))?;
    let lists = HashMap::new();
    let macros = HashMap::new();
    let mut c = compile::Compiler::new(&lists, &macros);
    let mut errs = Vec::new();
    match c.compile(&ast, &compile::Origin::Rule, &mut errs) {
        Ok(_) => Ok(()),
        Err(_) => {
            Err(errs.first().map(|e| (e.off, e.msg.clone())).unwrap_or((0, "invalid condition".into())))
        }
    }
}
