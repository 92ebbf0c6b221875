//! Compile condition ASTs into expression trees with precompiled matchers, and
//! evaluate them.

use crate::fields::{self, Arg, EvalCtx, FieldDef, FieldType, Val};
use crate::matchers::{self, hex, icontains, Glob, IpNet, LitSet, PrefixSet, StrSet};
use crate::parse::{self, Ast, FieldRef, Op, ValTok};
use crate::transform::{self, Transform};
use model::Event;
use regex::Regex;
use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Exists,
    StrEq(Box<str>),
    StrSet(StrSet),
    StrOrd(Op, Box<str>),
    Contains(Box<str>),
    IContains(Box<str>),
    BContains(Vec<u8>),
    StartsWith(Box<str>),
    BStartsWith(Vec<u8>),
    EndsWith(Box<str>),
    Glob(Box<Glob>),
    PMatch(Box<PrefixSet>),
    Regex(Box<Regex>),
    /// Several of the string matchers above, or-ed (built by [`Expr::optimize`]).
    Lits(Box<LitSet>),
    Num(Op, i128),
    NumSet(Box<[i128]>),
    Bool(bool),
    Ip(Box<[IpNet]>),
}

fn num_of(v: &Val<'_>) -> Option<i128> {
    match v {
        Val::U64(n) => Some(i128::from(*n)),
        Val::I64(n) => Some(i128::from(*n)),
        _ => None,
    }
}

impl Matcher {
    #[inline]
    fn test(&self, v: &Val<'_>) -> bool {
        match self {
            Matcher::Exists => !v.is_none(),
            Matcher::Num(op, x) => match num_of(v) {
                Some(n) => match op {
                    Op::Eq => n == *x,
                    Op::Lt => n < *x,
                    Op::Le => n <= *x,
                    Op::Gt => n > *x,
                    Op::Ge => n >= *x,
                    _ => false,
                },
                None => false,
            },
            Matcher::NumSet(set) => num_of(v).is_some_and(|n| set.contains(&n)),
            Matcher::Bool(b) => matches!(v, Val::Bool(x) if x == b),
            Matcher::Ip(nets) => match v {
                Val::Ip(ip) => nets.iter().any(|n| n.contains(ip)),
                _ => false,
            },
            _ => {
                let Val::Str(s) = v else { return false };
                let s: &str = s;
                match self {
                    Matcher::StrEq(x) => s == &**x,
                    Matcher::StrSet(set) => set.contains(s),
                    Matcher::StrOrd(op, x) => match op {
                        Op::Lt => s < &**x,
                        Op::Le => s <= &**x,
                        Op::Gt => s > &**x,
                        Op::Ge => s >= &**x,
                        _ => false,
                    },
                    Matcher::Contains(x) => matchers::contains(s, x),
                    Matcher::IContains(x) => icontains(s, x),
                    Matcher::BContains(x) => {
                        x.is_empty() || s.as_bytes().windows(x.len()).any(|w| w == x.as_slice())
                    }
                    Matcher::StartsWith(x) => s.starts_with(&**x),
                    Matcher::BStartsWith(x) => s.as_bytes().starts_with(x),
                    Matcher::EndsWith(x) => s.ends_with(&**x),
                    Matcher::Glob(g) => g.matches(s),
                    Matcher::PMatch(p) => p.matches(s),
                    Matcher::Regex(r) => r.is_match(s),
                    Matcher::Lits(l) => l.matches(s),
                    _ => false,
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Cmp {
    pub def: &'static FieldDef,
    pub arg: Arg,
    m: Matcher,
    /// `!=`: false on a missing value, else the negation of `=`.
    negate: bool,
    /// `evt.type = x` / `evt.type in (...)`: the types it pins.
    pub evt_types: Option<Vec<String>>,
    /// Transformers applied to the value first (innermost first).
    xf: Box<[Transform]>,
    /// `val(field)`: the value is compared with this field's, not with `m`.
    rhs: Option<Box<(&'static FieldDef, Arg, Op)>>,
}

impl Cmp {
    /// A comparison of the field's own value with constants: what the
    /// optimizer and the kernel offload may rewrite or inspect.
    pub(crate) fn plain(&self) -> bool {
        self.xf.is_empty() && self.rhs.is_none()
    }

    #[inline]
    fn eval(&self, ev: &Event, ctx: &EvalCtx<'_>) -> bool {
        let mut v = (self.def.extract)(ev, ctx, &self.arg);
        if !self.xf.is_empty() {
            v = transform::apply_all(&self.xf, v);
        }
        if let Some(rhs) = &self.rhs {
            return self.eval_field(&v, ev, ctx, rhs);
        }
        match &v {
            Val::None => false,
            Val::List(items) => items.iter().any(|x| self.m.test(x)) != self.negate,
            v => self.m.test(v) != self.negate,
        }
    }
}

impl Cmp {
    /// See [`Expr::path_fragments`]: a plain, positive string test on
    /// `fd.name` or on a part of it (`fd.filename`, `fd.directory`: substrings
    /// of `fd.name` whenever they have a value) holds only on a value that
    /// contains one of its strings.
    fn path_fragments(&self) -> Option<Vec<String>> {
        if !self.plain()
            || self.negate
            || !matches!(self.def.name, "fd.name" | "fd.filename" | "fd.directory")
        {
            return None;
        }
        let frags = match &self.m {
            Matcher::StrEq(x) | Matcher::Contains(x) | Matcher::StartsWith(x) | Matcher::EndsWith(x) => {
                vec![x.to_string()]
            }
            Matcher::StrSet(set) => set.items(),
            Matcher::PMatch(p) => p.paths()?,
            Matcher::Lits(l) => {
                let (exact, prefixes, suffixes, infixes) = l.parts();
                [exact, prefixes, suffixes, infixes].concat()
            }
            _ => return None,
        };
        // The empty string is in every value.
        (!frags.iter().any(String::is_empty)).then_some(frags)
    }

    /// `field op val(other)`: holds when it holds for some value of the
    /// field (lists) against the other field's value; false when either has
    /// no value.
    fn eval_field(
        &self,
        v: &Val<'_>,
        ev: &Event,
        ctx: &EvalCtx<'_>,
        rhs: &(&'static FieldDef, Arg, Op),
    ) -> bool {
        let (def, arg, op) = rhs;
        let other = (def.extract)(ev, ctx, arg);
        let other = match other {
            Val::List(mut items) if items.len() == 1 => items.pop().unwrap_or(Val::None),
            Val::List(_) | Val::None => return false,
            o => o,
        };
        let test = |x: &Val<'_>| compare_vals(x, *op, &other);
        match v {
            Val::None => false,
            Val::List(items) => items.iter().any(test) != self.negate,
            x => test(x) != self.negate,
        }
    }
}

/// `a op b` for two extracted values of the same kind (`!=` is `=` here: the
/// caller negates).
fn compare_vals(a: &Val<'_>, op: Op, b: &Val<'_>) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (a, b) {
        (Val::Str(x), Val::Str(y)) => {
            let (x, y): (&str, &str) = (x, y);
            match op {
                Op::Contains => return matchers::contains(x, y),
                Op::IContains => return icontains(x, &y.to_ascii_lowercase()),
                Op::StartsWith => return x.starts_with(y),
                Op::EndsWith => return x.ends_with(y),
                _ => Some(x.cmp(y)),
            }
        }
        (Val::Ip(x), Val::Ip(y)) => (x == y).then_some(Ordering::Equal),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        _ => match (num_of(a), num_of(b)) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => None,
        },
    };
    let Some(ord) = ord else { return false };
    match op {
        Op::Eq | Op::Ne => ord == Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        _ => false,
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    And(Box<[Expr]>),
    Or(Box<[Expr]>),
    Not(Box<Expr>),
    Cmp(Box<Cmp>),
    Const(bool),
}

impl Expr {
    pub fn eval(&self, ev: &Event, ctx: &EvalCtx<'_>) -> bool {
        match self {
            Expr::And(items) => items.iter().all(|e| e.eval(ev, ctx)),
            Expr::Or(items) => items.iter().any(|e| e.eval(ev, ctx)),
            Expr::Not(e) => !e.eval(ev, ctx),
            Expr::Cmp(c) => c.eval(ev, ctx),
            Expr::Const(b) => *b,
        }
    }

    /// The event types this expression can match; `None` for any.
    pub fn evt_types(&self) -> Option<BTreeSet<String>> {
        match self {
            Expr::And(items) => {
                let mut acc: Option<BTreeSet<String>> = None;
                for i in items.iter() {
                    if let Some(t) = i.evt_types() {
                        acc = Some(match acc {
                            None => t,
                            Some(a) => a.intersection(&t).cloned().collect(),
                        });
                    }
                }
                acc
            }
            Expr::Or(items) => {
                let mut acc = BTreeSet::new();
                for i in items.iter() {
                    acc.extend(i.evt_types()?);
                }
                Some(acc)
            }
            Expr::Not(_) => None,
            Expr::Cmp(c) => c.evt_types.as_ref().map(|v| v.iter().cloned().collect()),
            Expr::Const(true) => None,
            Expr::Const(false) => Some(BTreeSet::new()),
        }
    }

    pub(crate) fn and(mut items: Vec<Expr>) -> Expr {
        if items.len() == 1 {
            return items.pop().unwrap_or(Expr::Const(true));
        }
        Expr::And(items.into_boxed_slice())
    }

    fn or(mut items: Vec<Expr>) -> Expr {
        if items.len() == 1 {
            return items.pop().unwrap_or(Expr::Const(false));
        }
        Expr::Or(items.into_boxed_slice())
    }
}

/// A rough cost of evaluating a field, to order `and`/`or` operands cheapest first.
fn field_cost(name: &str) -> u32 {
    match name {
        "evt.type"
        | "evt.dir"
        | "evt.source"
        | "evt.failed"
        | "evt.rawres"
        | "evt.res"
        | "evt.is_open_read"
        | "evt.is_open_write"
        | "evt.is_open_create"
        | "evt.is_open_exec"
        | "fd.typechar"
        | "fd.num"
        | "proc.pid"
        | "proc.vpid"
        | "thread.tid"
        | "user.uid"
        | "user.ruid"
        | "group.gid"
        | "user.loginuid"
        | "container.id"
        | "container.privileged"
        | "proc.tty"
        | "proc.is_exe_upper_layer"
        | "proc.is_exe_from_memfd" => 1,
        "proc.name" | "fd.name" | "fd.directory" | "fd.filename" | "container.name" | "container.image"
        | "container.full_id" | "fd.sport" | "fd.dport" | "fd.cport" | "fd.lport" | "fd.rport" | "fd.sip"
        | "fd.cip" | "fd.dip" | "fd.lip" | "fd.rip" | "fd.snet" | "fd.cnet" | "fd.rnet" | "fd.lnet"
        | "fs.path.name" => 2,
        "proc.exepath"
        | "proc.exe"
        | "proc.args"
        | "proc.cwd"
        | "proc.ppid"
        | "container.image.repository"
        | "container.image.tag"
        | "fd.ip"
        | "fd.net"
        | "fd.port"
        | "fd.type"
        | "fd.l4proto"
        | "fd.sockfamily" => 3,
        "proc.cmdline" => 5,
        n if n.starts_with("proc.p") || n.starts_with("proc.a") => 6,
        n if n.starts_with("evt.arg") || n.starts_with("evt.rawarg") || n.starts_with("evt.time") => 8,
        _ => 4,
    }
}

impl Matcher {
    fn cost(&self) -> u32 {
        match self {
            Matcher::IContains(_) | Matcher::PMatch(_) => 2,
            Matcher::Glob(_) => 4,
            Matcher::Regex(_) => 6,
            Matcher::Lits(_) => 1,
            _ => 0,
        }
    }

    /// A rough chance that the test holds on a value, to put selective tests
    /// first: equality, set membership and substring tests rarely hold,
    /// `exists` usually does, bounds and booleans are a coin toss.
    fn p_true(&self) -> f64 {
        match self {
            Matcher::Exists => 0.9,
            Matcher::Bool(_) | Matcher::StrOrd(..) => 0.5,
            Matcher::Num(op, _) => {
                if *op == Op::Eq {
                    0.1
                } else {
                    0.5
                }
            }
            _ => 0.1,
        }
    }
}

/// Fields whose value never depends on the event: comparisons on them fold.
const CONSTANT_FIELDS: &[&str] = &[
    "evt.dir",
    "evt.source",
    "proc.is_container_healthcheck",
    "proc.is_container_liveness_probe",
    "proc.is_container_readiness_probe",
];

/// An event with nothing but its type, to fold comparisons whose value does
/// not depend on anything else.
fn dummy_event(evt_type: Option<&str>) -> Event {
    Event {
        ts_ns: 0,
        process: Default::default(),
        container: None,
        ret: None,
        syscall: evt_type.map(|t| t.to_string().into()),
        kind: model::EventKind::Bpf { cmd: 0 },
    }
}

/// The chance, clamped away from 0 and 1 so that ratios stay finite.
fn clamp_p(p: f64) -> f64 {
    p.clamp(0.01, 0.99)
}

/// The string tests of one comparison that an `or` can merge into a [`LitSet`]:
/// (exact values, prefixes, suffixes, substrings).
type LitParts = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

fn lit_parts(c: &Cmp) -> Option<LitParts> {
    // `!=` is false on a missing value; evt.type stays a plain comparison (the
    // type index folds it).
    if c.negate || c.def.ty != FieldType::String || c.def.name == "evt.type" || !c.plain() {
        return None;
    }
    let one = |x: &str| vec![x.to_string()];
    Some(match &c.m {
        Matcher::StrEq(x) => (one(x), vec![], vec![], vec![]),
        Matcher::StrSet(set) => (set.items(), vec![], vec![], vec![]),
        Matcher::StartsWith(x) => (vec![], one(x), vec![], vec![]),
        Matcher::EndsWith(x) => (vec![], vec![], one(x), vec![]),
        Matcher::Contains(x) => (vec![], vec![], vec![], one(x)),
        Matcher::Lits(l) => l.parts(),
        _ => return None,
    })
}

/// In the operands of an `or`, merge the string tests on the same field (and
/// argument) into one comparison: the field is extracted once and `contains`
/// needles share one pass. `f op1 a or f op2 b` holds exactly when the value
/// (or, for a list, some element) passes one of the tests, which is what the
/// merged matcher tests.
fn merge_or_strings(items: Vec<Expr>) -> Vec<Expr> {
    let mut out: Vec<Expr> = Vec::with_capacity(items.len());
    // Index in `out` of the merged comparison, and its parts, per field.
    let mut groups: Vec<(usize, LitParts, usize)> = Vec::new();
    for e in items {
        let parts = match &e {
            Expr::Cmp(c) => lit_parts(c),
            _ => None,
        };
        let (Some(parts), Expr::Cmp(c)) = (parts, &e) else {
            out.push(e);
            continue;
        };
        let same = groups.iter_mut().find(|(i, _, _)| match &out[*i] {
            Expr::Cmp(o) => std::ptr::eq(o.def, c.def) && o.arg == c.arg,
            _ => false,
        });
        match same {
            Some((_, acc, n)) => {
                acc.0.extend(parts.0);
                acc.1.extend(parts.1);
                acc.2.extend(parts.2);
                acc.3.extend(parts.3);
                *n += 1;
            }
            None => {
                groups.push((out.len(), parts, 1));
                out.push(e);
            }
        }
    }
    for (i, (exact, pre, suf, inf), n) in groups {
        if n < 2 {
            continue;
        }
        if let Expr::Cmp(c) = &mut out[i] {
            c.m = Matcher::Lits(Box::new(LitSet::new(exact, pre, suf, inf)));
        }
    }
    out
}

impl Expr {
    /// (expected cost, chance to hold) of evaluating this expression, with
    /// the operands in their current order.
    fn stats(&self) -> (f64, f64) {
        match self {
            Expr::And(v) => {
                let (mut cost, mut p) = (0.0, 1.0);
                for e in v.iter() {
                    let (c, q) = e.stats();
                    cost += p * c;
                    p *= q;
                }
                (cost, p)
            }
            Expr::Or(v) => {
                let (mut cost, mut miss) = (0.0, 1.0);
                for e in v.iter() {
                    let (c, q) = e.stats();
                    cost += miss * c;
                    miss *= 1.0 - q;
                }
                (cost, 1.0 - miss)
            }
            Expr::Not(e) => {
                let (c, p) = e.stats();
                (c, 1.0 - p)
            }
            Expr::Cmp(c) => {
                let p = c.m.p_true();
                (f64::from(field_cost(c.def.name) + c.m.cost()), if c.negate { 1.0 - p } else { p })
            }
            Expr::Const(b) => (0.0, if *b { 1.0 } else { 0.0 }),
        }
    }

    /// Order operands for the least expected work: an `and` stops at the first
    /// false operand, so cheap and likely-false ones go first (by cost / chance
    /// of false); an `or` stops at the first true one (cost / chance of true).
    fn sort_operands(v: &mut [Expr], and: bool) {
        let key = |e: &Expr| {
            let (c, p) = e.stats();
            let stop = if and { 1.0 - p } else { p };
            c / clamp_p(stop)
        };
        let mut keyed: Vec<(f64, usize)> = v.iter().map(key).zip(0..).collect();
        // Stable on ties: the written order.
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut slots: Vec<Option<Expr>> =
            v.iter_mut().map(|e| Some(std::mem::replace(e, Expr::Const(false)))).collect();
        for (dst, (_, src)) in v.iter_mut().zip(keyed) {
            *dst = slots[src].take().unwrap_or(Expr::Const(false));
        }
    }

    /// The names of the fields this expression reads.
    pub(crate) fn fields(&self, out: &mut Vec<&'static str>) {
        match self {
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.fields(out)),
            Expr::Not(e) => e.fields(out),
            Expr::Cmp(c) => {
                out.push(c.def.name);
                if let Some(r) = &c.rhs {
                    out.push(r.0.name);
                }
            }
            Expr::Const(_) => {}
        }
    }

    /// `field = x` or `field in (x, y)` on a field without argument: exact
    /// string equality, not negated. The field and the values.
    pub(crate) fn string_equality(&self) -> Option<(&'static str, Vec<String>)> {
        let Expr::Cmp(c) = self else { return None };
        if c.negate || c.arg != Arg::None || !c.plain() {
            return None;
        }
        let values = match &c.m {
            Matcher::StrEq(x) => vec![x.to_string()],
            Matcher::StrSet(set) => set.items(),
            Matcher::Lits(l) => l.exact_only()?,
            _ => return None,
        };
        Some((c.def.name, values))
    }

    /// `field != x` / `not field = x` / `not field in (x, ...)`: exact string
    /// inequality on a field without argument. The field and the values it
    /// must differ from.
    pub(crate) fn string_inequality(&self) -> Option<(&'static str, Vec<String>)> {
        let (c, negated) = match self {
            Expr::Cmp(c) => (c, c.negate),
            Expr::Not(e) => match &**e {
                Expr::Cmp(c) => (c, !c.negate),
                _ => return None,
            },
            _ => return None,
        };
        if !negated || c.arg != Arg::None || !c.plain() {
            return None;
        }
        let values = match &c.m {
            Matcher::StrEq(x) => vec![x.to_string()],
            Matcher::StrSet(set) => set.items(),
            Matcher::Lits(l) => l.exact_only()?,
            _ => return None,
        };
        Some((c.def.name, values))
    }

    /// Strings one of which `fd.name` must contain for the expression to
    /// hold: a necessary condition, which the type index tests for many rules
    /// in one pass over the path (see `PathScan`). `None` when the expression
    /// gives none (it may hold whatever the path).
    pub(crate) fn path_fragments(&self) -> Option<Vec<String>> {
        match self {
            Expr::Cmp(c) => c.path_fragments(),
            Expr::Or(items) => {
                let mut all = Vec::new();
                for e in items.iter() {
                    all.extend(e.path_fragments()?);
                }
                Some(all)
            }
            // Any operand's condition is the whole `and`'s: the fewest strings.
            Expr::And(items) => items.iter().filter_map(Expr::path_fragments).min_by_key(Vec::len),
            Expr::Const(false) => Some(Vec::new()),
            Expr::Not(_) | Expr::Const(true) => None,
        }
    }

    /// The operands of a top-level `and` (the expression itself otherwise).
    pub(crate) fn into_conjuncts(self) -> Vec<Expr> {
        match self {
            Expr::And(v) => v.into_vec(),
            e => vec![e],
        }
    }

    /// For a comparison (or its negation) that is cheap to evaluate, a key that
    /// is equal for comparisons that are the same test: such conjuncts, shared by
    /// many rules (`evt.is_open_write = true`, `container.id != host`, ...), are
    /// evaluated once per event (see `Ruleset`).
    pub(crate) fn guard_key(&self) -> Option<String> {
        let (c, not) = match self {
            Expr::Cmp(c) => (c, false),
            Expr::Not(e) => match &**e {
                Expr::Cmp(c) => (c, true),
                _ => return None,
            },
            _ => return None,
        };
        if field_cost(c.def.name) > 2 || c.m.cost() > 1 || !c.plain() {
            return None;
        }
        // Debug shows the field, its argument, the operator and every value.
        Some(format!("{not} {} {:?} {} {:?}", c.def.name, c.arg, c.negate, c.m))
    }

    /// The expression for events of type `evt_type` only: every comparison on
    /// `evt.type` is decided (the type index guarantees the type), then the
    /// result is simplified again.
    pub fn specialize(&self, evt_type: &str) -> Expr {
        let ev = dummy_event(Some(evt_type));
        let types: BTreeSet<String> = [evt_type.to_string()].into();
        self.clone().fold_evt_type(&ev).optimize(Some(&types))
    }

    fn fold_evt_type(self, ev: &Event) -> Expr {
        match self {
            Expr::And(v) => Expr::And(v.into_vec().into_iter().map(|e| e.fold_evt_type(ev)).collect()),
            Expr::Or(v) => Expr::Or(v.into_vec().into_iter().map(|e| e.fold_evt_type(ev)).collect()),
            Expr::Not(e) => Expr::Not(Box::new(e.fold_evt_type(ev))),
            Expr::Cmp(c) if c.def.name == "evt.type" && c.plain() => {
                Expr::Const(c.eval(ev, &EvalCtx::default()))
            }
            e => e,
        }
    }

    /// Simplify for evaluation: comparisons on `evt.type` that the type index
    /// already guarantees (the rule only meets events of `types`) and on constant
    /// fields fold away; string tests on one field under an `or` merge; `and`/`or`
    /// operands are ordered for the least expected work (they have no side
    /// effects, so the result is the same).
    pub fn optimize(self, types: Option<&BTreeSet<String>>) -> Expr {
        match self {
            Expr::And(items) => {
                let mut v = Vec::with_capacity(items.len());
                for i in items.into_vec() {
                    match i.optimize(types) {
                        Expr::Const(true) => {}
                        Expr::Const(false) => return Expr::Const(false),
                        Expr::And(inner) => v.extend(inner.into_vec()),
                        e => v.push(e),
                    }
                }
                if v.is_empty() {
                    return Expr::Const(true);
                }
                Expr::sort_operands(&mut v, true);
                Expr::and(v)
            }
            Expr::Or(items) => {
                let mut v = Vec::with_capacity(items.len());
                for i in items.into_vec() {
                    match i.optimize(types) {
                        Expr::Const(false) => {}
                        Expr::Const(true) => return Expr::Const(true),
                        Expr::Or(inner) => v.extend(inner.into_vec()),
                        e => v.push(e),
                    }
                }
                if v.is_empty() {
                    return Expr::Const(false);
                }
                let mut v = merge_or_strings(v);
                Expr::sort_operands(&mut v, false);
                Expr::or(v)
            }
            Expr::Not(e) => match e.optimize(types) {
                Expr::Const(b) => Expr::Const(!b),
                e => Expr::Not(Box::new(e)),
            },
            Expr::Cmp(c) => {
                if let (Some(t), Some(pins)) = (types, &c.evt_types) {
                    if !t.is_empty() && t.iter().all(|x| pins.contains(x)) {
                        return Expr::Const(true);
                    }
                }
                if CONSTANT_FIELDS.contains(&c.def.name) && c.plain() {
                    return Expr::Const(c.eval(&dummy_event(None), &EvalCtx::default()));
                }
                Expr::Cmp(c)
            }
            e @ Expr::Const(_) => e,
        }
    }
}

/// Why a comparison could not be built.
#[derive(Debug, Clone)]
pub(crate) struct CmpErr {
    /// Which token: `None` the field, `Some(i)` the i-th value.
    pub value: Option<usize>,
    pub op: bool,
    pub msg: String,
    pub unknown_field: Option<String>,
}

impl CmpErr {
    fn op(msg: String) -> Self {
        CmpErr { value: None, op: true, msg, unknown_field: None }
    }
    fn value(i: usize, msg: String) -> Self {
        CmpErr { value: Some(i), op: false, msg, unknown_field: None }
    }
}

fn op_allowed(ty: FieldType, op: Op) -> bool {
    use Op::*;
    match ty {
        FieldType::String => true,
        FieldType::U64 | FieldType::I64 => {
            matches!(op, Eq | Ne | Lt | Le | Gt | Ge | In | Intersects | Exists)
        }
        FieldType::Bool => matches!(op, Eq | Ne | In | Exists),
        FieldType::IpAddr | FieldType::IpNet => matches!(op, Eq | Ne | In | Intersects | Exists),
    }
}

fn parse_num(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let n = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i128::from_str_radix(h, 16).ok()?
    } else {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse::<i128>().ok()?
    };
    Some(if neg { -n } else { n })
}

fn lookup_field(field: &str, arg: Option<&str>) -> Result<(&'static FieldDef, Arg), CmpErr> {
    fields::lookup(field, arg).map_err(|msg| {
        let unknown = msg.starts_with("unknown field");
        CmpErr { value: None, op: false, msg, unknown_field: unknown.then(|| field.to_string()) }
    })
}

/// The kind of value a type compares as, for `val()`.
fn kind_of(ty: FieldType) -> u8 {
    match ty {
        FieldType::String => 0,
        FieldType::U64 | FieldType::I64 => 1,
        FieldType::Bool => 2,
        FieldType::IpAddr | FieldType::IpNet => 3,
    }
}

/// Build one comparison (`values` already list-expanded), with transformers
/// around the field (innermost first) and, for `val(other)`, the other field
/// instead of `values`.
pub(crate) fn build_cmp(
    field: &str,
    arg: Option<&str>,
    xf: &[Transform],
    rhs: Option<&FieldRef>,
    op: Op,
    values: &[ValTok],
) -> Result<Cmp, CmpErr> {
    let (def, arg) = lookup_field(field, arg)?;
    // The type compared is the transformed value's (`len()` gives a number).
    let ty = transform::result_type(xf, field, def.ty).map_err(|msg| CmpErr {
        value: None,
        op: false,
        msg,
        unknown_field: None,
    })?;
    if let Some(r) = rhs {
        // The other field's errors point at it (`value: Some(0)` maps to its offset).
        let (rdef, rarg) =
            lookup_field(&r.field, r.arg.as_deref()).map_err(|e| CmpErr { value: Some(0), ..e })?;
        let shown = transform::written(xf, field);
        if !op_allowed(ty, op) {
            return Err(CmpErr::op(format!(
                "operator '{}' cannot be used with field {shown:?} of type {ty}",
                op.as_str()
            )));
        }
        let string_op = matches!(op, Op::Contains | Op::IContains | Op::StartsWith | Op::EndsWith);
        let ordered = matches!(op, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge);
        if !(ordered || string_op && ty == FieldType::String) {
            return Err(CmpErr::op(format!("operator '{}' cannot compare with val(...)", op.as_str())));
        }
        if kind_of(ty) != kind_of(rdef.ty) {
            return Err(CmpErr::value(
                0,
                format!("{shown:?} ({ty}) cannot be compared with val({}) ({})", r.field, rdef.ty),
            ));
        }
        return Ok(Cmp {
            def,
            arg,
            m: Matcher::Exists,
            negate: op == Op::Ne,
            evt_types: None,
            xf: xf.into(),
            rhs: Some(Box::new((rdef, rarg, op))),
        });
    }
    let shown = match &arg {
        Arg::None => field.to_string(),
        Arg::Index(i) if !field.contains('[') && def.name == field => format!("{field}[{i}]"),
        Arg::Key(k) if def.name == field => format!("{field}[{k}]"),
        _ => field.to_string(),
    };
    let shown = transform::written(xf, &shown);
    if !op_allowed(ty, op) {
        return Err(CmpErr::op(format!(
            "operator '{}' cannot be used with field {shown:?} of type {ty}",
            op.as_str()
        )));
    }
    let mut negate = false;
    let one = |values: &[ValTok]| -> Result<String, CmpErr> {
        match values {
            [v] => Ok(v.text.clone()),
            _ => Err(CmpErr::op(format!("operator '{}' takes one value", op.as_str()))),
        }
    };
    let m = match op {
        Op::Exists => Matcher::Exists,
        Op::Ne | Op::Eq | Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            negate = op == Op::Ne;
            let v = one(values)?;
            match ty {
                FieldType::String => match op {
                    Op::Eq | Op::Ne => Matcher::StrEq(v.into()),
                    _ => Matcher::StrOrd(op, v.into()),
                },
                FieldType::U64 | FieldType::I64 => {
                    let n = parse_num(&v).ok_or_else(|| {
                        CmpErr::value(0, format!("{v:?} is not a number (field {shown:?} is of type {ty})"))
                    })?;
                    Matcher::Num(if negate { Op::Eq } else { op }, n)
                }
                FieldType::Bool => match v.to_ascii_lowercase().as_str() {
                    "true" => Matcher::Bool(true),
                    "false" => Matcher::Bool(false),
                    _ => {
                        return Err(CmpErr::value(
                            0,
                            format!(
                                "{v:?} is not a boolean (field {shown:?} is of type bool: use true or false)"
                            ),
                        ))
                    }
                },
                FieldType::IpAddr | FieldType::IpNet => {
                    let n = IpNet::parse(&v).map_err(|e| CmpErr::value(0, e))?;
                    Matcher::Ip(vec![n].into_boxed_slice())
                }
            }
        }
        Op::In | Op::Intersects => match ty {
            FieldType::String => Matcher::StrSet(StrSet::new(values.iter().map(|v| v.text.clone()))),
            FieldType::U64 | FieldType::I64 => {
                let mut out = Vec::new();
                for (i, v) in values.iter().enumerate() {
                    out.push(parse_num(&v.text).ok_or_else(|| {
                        CmpErr::value(
                            i,
                            format!("{:?} is not a number (field {shown:?} is of type {ty})", v.text),
                        )
                    })?);
                }
                Matcher::NumSet(out.into_boxed_slice())
            }
            FieldType::Bool => {
                let mut t = false;
                let mut f = false;
                for (i, v) in values.iter().enumerate() {
                    match v.text.to_ascii_lowercase().as_str() {
                        "true" => t = true,
                        "false" => f = true,
                        _ => return Err(CmpErr::value(i, format!("{:?} is not a boolean", v.text))),
                    }
                }
                match (t, f) {
                    (true, true) => Matcher::Exists,
                    (true, false) => Matcher::Bool(true),
                    (false, true) => Matcher::Bool(false),
                    (false, false) => Matcher::NumSet(Box::new([])),
                }
            }
            FieldType::IpAddr | FieldType::IpNet => {
                let mut out = Vec::new();
                for (i, v) in values.iter().enumerate() {
                    out.push(IpNet::parse(&v.text).map_err(|e| CmpErr::value(i, e))?);
                }
                Matcher::Ip(out.into_boxed_slice())
            }
        },
        Op::PMatch => Matcher::PMatch(Box::new(PrefixSet::new(values.iter().map(|v| v.text.clone())))),
        Op::Contains => Matcher::Contains(one(values)?.into()),
        Op::IContains => Matcher::IContains(one(values)?.to_ascii_lowercase().into()),
        Op::StartsWith => Matcher::StartsWith(one(values)?.into()),
        Op::EndsWith => Matcher::EndsWith(one(values)?.into()),
        Op::BContains => Matcher::BContains(hex(&one(values)?).map_err(|e| CmpErr::value(0, e))?),
        Op::BStartsWith => Matcher::BStartsWith(hex(&one(values)?).map_err(|e| CmpErr::value(0, e))?),
        Op::Glob | Op::IGlob => Matcher::Glob(Box::new(
            Glob::new(&one(values)?, op == Op::IGlob).map_err(|e| CmpErr::value(0, e))?,
        )),
        Op::Regex => {
            let v = one(values)?;
            // Falco's regex matches the whole value (RE2 full match).
            let re = regex::RegexBuilder::new(&format!("^(?:{v})$"))
                .size_limit(1 << 20)
                .build()
                .map_err(|e| CmpErr::value(0, format!("bad regular expression {v:?}: {e}")))?;
            Matcher::Regex(Box::new(re))
        }
    };
    let evt_types = (def.name == "evt.type"
        && xf.is_empty()
        && !negate
        && matches!(op, Op::Eq | Op::In | Op::Intersects))
    .then(|| values.iter().map(|v| v.text.clone()).collect());
    Ok(Cmp { def, arg, m, negate, evt_types, xf: xf.into(), rhs: None })
}

fn budget_message(kind: &str, name: &str) -> String {
    let what = if name.is_empty() { kind.to_string() } else { format!("{kind} {name:?}") };
    format!(
        "expanding {what} exceeds the rule set's budget of {EXPANSION_BUDGET} expression nodes and list items (macros or lists that use another one more than once grow exponentially)"
    )
}

/// A list as the loader has it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListDef {
    pub items: Vec<String>,
}

/// Where an error is: the condition of a macro or of the rule being compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Macro(String),
    Rule,
}

#[derive(Debug, Clone)]
pub(crate) struct CErr {
    pub origin: Origin,
    pub off: usize,
    pub msg: String,
    pub unknown_field: Option<String>,
}

/// Why an expression could not be compiled.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fail {
    /// Fields rampart does not know, used by the expression.
    pub unknown: Vec<String>,
    /// Another error (bad operator, undefined macro, ...).
    pub hard: bool,
}

impl Fail {
    fn merge(&mut self, o: Fail) {
        for u in o.unknown {
            if !self.unknown.contains(&u) {
                self.unknown.push(u);
            }
        }
        self.hard |= o.hard;
    }
}

pub(crate) struct MacroSrc {
    pub text: String,
}

pub(crate) struct Compiler<'a> {
    pub lists: &'a HashMap<String, ListDef>,
    pub macros: &'a HashMap<String, MacroSrc>,
    /// Each macro compiled once: its expression and what one copy costs.
    cache: HashMap<String, Result<(Expr, Cost), Fail>>,
    in_progress: Vec<String>,
    /// Errors found in macro conditions (each reported once).
    pub macro_errs: Vec<CErr>,
    /// Expression nodes and list values built so far, for the whole rule
    /// set: every macro use and list use is a copy, so references that
    /// double at each level would otherwise grow exponentially.
    spent: Cell<usize>,
    /// Nesting of the expression being built, and the deepest reached.
    level: usize,
    max_level: usize,
}

/// What one copy of a compiled macro costs.
#[derive(Debug, Clone, Copy)]
struct Cost {
    nodes: usize,
    depth: usize,
}

const MAX_LIST_DEPTH: usize = 32;
/// Macros being expanded inside one another (each level recurses).
const MAX_MACRO_NESTING: usize = 64;
/// Nesting of a compiled expression, macros inlined: evaluating, optimizing,
/// cloning and dropping it recurse per level.
pub(crate) const MAX_EXPR_DEPTH: usize = 128;
/// Expression nodes and list values in the whole rule set (the default
/// rules use ~3,300, Falco's falco_rules.yaml ~1,200). A spent budget costs
/// ~270 bytes a node while it lasts (~70 MiB and 0.1 s at 250,000), which is
/// what a hostile rule file can make a reload cost. Fuzz builds use a smaller
/// one so that executions go to parsing rather than to filling the budget;
/// the code that enforces it is the same.
pub(crate) const EXPANSION_BUDGET: usize = if cfg!(fuzzing) { 20_000 } else { 250_000 };

impl<'a> Compiler<'a> {
    pub fn new(lists: &'a HashMap<String, ListDef>, macros: &'a HashMap<String, MacroSrc>) -> Self {
        Compiler {
            lists,
            macros,
            cache: HashMap::new(),
            in_progress: Vec::new(),
            macro_errs: Vec::new(),
            spent: Cell::new(0),
            level: 0,
            max_level: 0,
        }
    }

    /// Charge `n` nodes to the budget; false once it is exceeded.
    fn charge(&self, n: usize) -> bool {
        let s = self.spent.get().saturating_add(n);
        self.spent.set(s);
        s <= EXPANSION_BUDGET
    }

    /// Expansion so far.
    pub fn spent(&self) -> usize {
        self.spent.get()
    }

    /// Items of list `name`, nested lists expanded; false when the budget
    /// runs out (lists that name another list twice double per level).
    fn expand_list(&self, name: &str, depth: usize, out: &mut Vec<String>) -> bool {
        let Some(l) = self.lists.get(name) else { return true };
        for item in &l.items {
            if depth < MAX_LIST_DEPTH && item != name && self.lists.contains_key(item.as_str()) {
                if !self.expand_list(item, depth + 1, out) {
                    return false;
                }
            } else {
                if !self.charge(1) {
                    return false;
                }
                out.push(item.clone());
            }
        }
        true
    }

    /// Values with list names expanded (bare words only); the error names
    /// the list whose expansion ran out of budget.
    pub fn expand_values(&self, values: &[ValTok]) -> Result<Vec<ValTok>, (usize, String)> {
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            if !v.quoted && self.lists.contains_key(v.text.as_str()) {
                let mut items = Vec::new();
                if !self.expand_list(&v.text, 0, &mut items) {
                    return Err((v.off, budget_message("list", &v.text)));
                }
                out.extend(items.into_iter().map(|text| ValTok { text, quoted: true, off: v.off }));
            } else {
                out.push(v.clone());
            }
        }
        Ok(out)
    }

    /// Compile a macro (once) and return it with its cost; the caller
    /// charges the copy it makes.
    fn macro_cached(&mut self, name: &str) -> Option<&Result<(Expr, Cost), Fail>> {
        if !self.cache.contains_key(name) {
            let src = self.macros.get(name)?;
            self.in_progress.push(name.to_string());
            let origin = Origin::Macro(name.to_string());
            let mut errs = Vec::new();
            // A macro's cost is measured from scratch, wherever it is first used.
            let saved = (self.level, self.max_level, self.spent.get());
            (self.level, self.max_level) = (0, 0);
            let res = match parse::parse(&src.text) {
                Ok(ast) => self.compile(&ast, &origin, &mut errs),
                Err(e) => {
                    errs.push(CErr {
                        origin: origin.clone(),
                        off: e.off,
                        msg: e.message,
                        unknown_field: None,
                    });
                    Err(Fail { unknown: Vec::new(), hard: true })
                }
            };
            let cost = Cost { nodes: self.spent.get() - saved.2, depth: self.max_level };
            (self.level, self.max_level) = (saved.0, saved.1);
            self.in_progress.pop();
            self.macro_errs.extend(errs);
            self.cache.insert(name.to_string(), res.map(|e| (e, cost)));
        }
        self.cache.get(name)
    }

    /// Compile a macro (once) and return a copy of its expression.
    pub fn macro_expr(&mut self, name: &str) -> Option<Result<Expr, Fail>> {
        self.macro_cached(name).map(|r| r.as_ref().map(|(e, _)| e.clone()).map_err(Fail::clone))
    }

    fn fail(&self, errs: &mut Vec<CErr>, origin: &Origin, off: usize, msg: String) -> Fail {
        errs.push(CErr { origin: origin.clone(), off, msg, unknown_field: None });
        Fail { unknown: Vec::new(), hard: true }
    }

    /// Compile one level of nesting (and, or, not) below the current one.
    fn nested(&mut self, ast: &Ast, origin: &Origin, errs: &mut Vec<CErr>) -> Result<Expr, Fail> {
        self.level += 1;
        self.max_level = self.max_level.max(self.level);
        let r = self.compile(ast, origin, errs);
        self.level -= 1;
        r
    }

    pub fn compile(&mut self, ast: &Ast, origin: &Origin, errs: &mut Vec<CErr>) -> Result<Expr, Fail> {
        match ast {
            Ast::And(items) | Ast::Or(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut fail: Option<Fail> = None;
                for i in items {
                    match self.nested(i, origin, errs) {
                        Ok(e) => out.push(e),
                        Err(f) => fail.get_or_insert_with(Fail::default).merge(f),
                    }
                }
                if let Some(f) = fail {
                    return Err(f);
                }
                Ok(if matches!(ast, Ast::And(_)) { Expr::and(out) } else { Expr::or(out) })
            }
            Ast::Not(inner) => Ok(Expr::Not(Box::new(self.nested(inner, origin, errs)?))),
            Ast::Macro { name, off } => {
                if self.in_progress.len() >= MAX_MACRO_NESTING {
                    let msg = format!("macros nest more than {MAX_MACRO_NESTING} deep (at macro {name:?})");
                    return Err(self.fail(errs, origin, *off, msg));
                }
                if self.in_progress.iter().any(|m| m == name) {
                    errs.push(CErr {
                        origin: origin.clone(),
                        off: *off,
                        msg: format!(
                            "macro {name:?} refers to itself (cycle: {} -> {name})",
                            self.in_progress.join(" -> ")
                        ),
                        unknown_field: None,
                    });
                    return Err(Fail { unknown: Vec::new(), hard: true });
                }
                let level = self.level;
                match self.macro_cached(name) {
                    Some(Ok((e, cost))) => {
                        let (e, cost) = (e.clone(), *cost);
                        if level + cost.depth > MAX_EXPR_DEPTH {
                            let msg = format!(
                                "macro {name:?} nests the condition deeper than {MAX_EXPR_DEPTH} levels"
                            );
                            return Err(self.fail(errs, origin, *off, msg));
                        }
                        self.max_level = self.max_level.max(level + cost.depth);
                        if !self.charge(cost.nodes) {
                            return Err(self.fail(errs, origin, *off, budget_message("macro", name)));
                        }
                        Ok(e)
                    }
                    Some(Err(f)) => Err(f.clone()),
                    None => {
                        let msg = if self.lists.contains_key(name.as_str()) {
                            format!("{name:?} is a list, not a macro: use it inside a list, e.g. in ({name})")
                        } else {
                            format!("undefined macro {name:?}")
                        };
                        errs.push(CErr { origin: origin.clone(), off: *off, msg, unknown_field: None });
                        Err(Fail { unknown: Vec::new(), hard: true })
                    }
                }
            }
            Ast::Cmp { field, arg, off, op, op_off, values, bare_list, xf, rhs } => {
                if !self.charge(1) {
                    return Err(self.fail(errs, origin, *off, budget_message("condition", "")));
                }
                let values = if *bare_list {
                    let name = values.first().map(|v| v.text.as_str()).unwrap_or("");
                    if !self.lists.contains_key(name) {
                        errs.push(CErr {
                            origin: origin.clone(),
                            off: values.first().map(|v| v.off).unwrap_or(*op_off),
                            msg: format!("undefined list {name:?}"),
                            unknown_field: None,
                        });
                        return Err(Fail { unknown: Vec::new(), hard: true });
                    }
                    self.expand_values(values)
                } else if op.takes_list() {
                    self.expand_values(values)
                } else {
                    Ok(values.clone())
                };
                let values = match values {
                    Ok(v) => v,
                    Err((at, msg)) => return Err(self.fail(errs, origin, at, msg)),
                };
                match build_cmp(field, arg.as_deref(), xf, rhs.as_ref(), *op, &values) {
                    Ok(c) => Ok(Expr::Cmp(Box::new(c))),
                    Err(e) => {
                        let at = match e.value {
                            Some(_) if rhs.is_some() => rhs.as_ref().map(|r| r.off).unwrap_or(*op_off),
                            Some(i) => values.get(i).map(|v| v.off).unwrap_or(*op_off),
                            None if e.op => *op_off,
                            None => *off,
                        };
                        let fail = match &e.unknown_field {
                            Some(u) => Fail { unknown: vec![u.clone()], hard: false },
                            None => Fail { unknown: Vec::new(), hard: true },
                        };
                        errs.push(CErr {
                            origin: origin.clone(),
                            off: at,
                            msg: e.msg,
                            unknown_field: e.unknown_field,
                        });
                        Err(fail)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_num("42"), Some(42));
        assert_eq!(parse_num("-1"), Some(-1));
        assert_eq!(parse_num("0x10"), Some(16));
        assert_eq!(parse_num("4a"), None);
        assert_eq!(parse_num(""), None);
        assert_eq!(parse_num("99999999999999999999999999999999999999999999"), None);
    }
}
