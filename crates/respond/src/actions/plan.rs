//! What a rule asks for: its `actions:` and `dry_run:` keys, deserialised into
//! typed values. Unknown action names and options are errors with the rule
//! file's position, never ignored: a typo must not leave a rule that never acts.

use rules::{CompiledRule, Extra, Ruleset};
use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;

/// An action's name, as written in `actions:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    Kill,
    Freeze,
    Stop,
    Isolate,
    Deny,
    Ratelimit,
}

/// `{kill: {process_group: true, in_kernel: false}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KillOptions {
    /// Kill the process group, not only the process (userspace only).
    pub process_group: bool,
    /// Let the kernel kill in the syscall when the condition allows it.
    pub in_kernel: bool,
}

impl Default for KillOptions {
    fn default() -> Self {
        KillOptions { process_group: false, in_kernel: true }
    }
}

/// `{deny: {errno: EPERM}}`: the syscall fails with this errno, answered by
/// the seccomp notify agent before it runs (see [`crate::notify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyOptions {
    /// A name (`EPERM`, `EACCES`) or a number in 1..=4095.
    #[serde(deserialize_with = "errno")]
    pub errno: i32,
    /// Kill a process whose syscall this rule matched and that succeeded
    /// anyway (outside the notify profile, or a path swapped after the
    /// check): in the kernel where the condition allows, else from userspace.
    #[serde(default = "yes")]
    pub backstop: bool,
}

fn yes() -> bool {
    true
}

/// The errno names a deny may return, the ones a file or exec call can
/// plausibly fail with.
pub const ERRNO_NAMES: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EIO", libc::EIO),
    ("EBADF", libc::EBADF),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("EINVAL", libc::EINVAL),
    ("ENOSPC", libc::ENOSPC),
    ("EROFS", libc::EROFS),
    ("ENOSYS", libc::ENOSYS),
    ("ENOTSUP", libc::ENOTSUP),
];

fn errno<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(i64),
        Name(String),
    }
    let n = match Raw::deserialize(d)? {
        Raw::Num(n) => n,
        Raw::Name(s) => match ERRNO_NAMES.iter().find(|(name, _)| *name == s) {
            Some((_, n)) => *n as i64,
            None => {
                let names: Vec<&str> = ERRNO_NAMES.iter().map(|(n, _)| *n).collect();
                return Err(de::Error::custom(format!(
                    "unknown errno {s:?} (one of {}, or a number)",
                    names.join(", ")
                )));
            }
        },
    };
    if !(1..=4095).contains(&n) {
        return Err(de::Error::custom(format!("errno {n} is not in 1..=4095")));
    }
    Ok(n as i32)
}

/// One item of `actions:`: a name (`kill`), or a name with options
/// (`{kill: {process_group: true}}`, `{ratelimit: {egress_pps: 1000}}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionSpec {
    Kill(KillOptions),
    Freeze,
    Stop,
    Isolate,
    /// `deny` alone: the network destination, in the kernel.
    Deny,
    /// `{deny: {errno: ...}}`: the syscall, through the seccomp agent.
    DenySyscall(DenyOptions),
    /// Limits as the network policy's `rate:` (at least one).
    Ratelimit(policy::Rate),
}

impl ActionSpec {
    fn from_name(name: ActionName) -> Self {
        match name {
            ActionName::Kill => ActionSpec::Kill(KillOptions::default()),
            ActionName::Freeze => ActionSpec::Freeze,
            ActionName::Stop => ActionSpec::Stop,
            ActionName::Isolate => ActionSpec::Isolate,
            ActionName::Deny => ActionSpec::Deny,
            ActionName::Ratelimit => ActionSpec::Ratelimit(policy::Rate::default()),
        }
    }
}

impl<'de> Deserialize<'de> for ActionSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = ActionSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an action name (kill, freeze, stop, isolate, deny) or {name: options} (ratelimit needs its limits)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ActionSpec, E> {
                let name = ActionName::deserialize(v.into_deserializer())?;
                if name == ActionName::Ratelimit {
                    return Err(E::custom("ratelimit needs its limits: {ratelimit: {egress_pps: N}}"));
                }
                Ok(ActionSpec::from_name(name))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ActionSpec, A::Error> {
                let Some(name) = map.next_key::<ActionName>()? else {
                    return Err(de::Error::custom("an empty map names no action"));
                };
                let spec = match name {
                    ActionName::Kill => {
                        ActionSpec::Kill(map.next_value::<Option<KillOptions>>()?.unwrap_or_default())
                    }
                    // With options, deny is about the syscall; without, the
                    // network destination (as before).
                    ActionName::Deny => match map.next_value::<Option<DenyOptions>>()? {
                        Some(o) => ActionSpec::DenySyscall(o),
                        None => ActionSpec::Deny,
                    },
                    ActionName::Ratelimit => {
                        let rate = map.next_value::<Option<policy::Rate>>()?.unwrap_or_default();
                        if rate.is_none() {
                            return Err(de::Error::custom(
                                "ratelimit needs at least one limit (egress_pps, ingress_pps, egress_bytes_per_sec, ingress_bytes_per_sec)",
                            ));
                        }
                        ActionSpec::Ratelimit(rate)
                    }
                    other => {
                        let opts = map.next_value::<Option<serde_json::Map<String, serde_json::Value>>>()?;
                        if opts.is_some_and(|o| !o.is_empty()) {
                            return Err(de::Error::custom(format!(
                                "{} takes no options",
                                ActionKind::from(ActionSpec::from_name(other)).name()
                            )));
                        }
                        ActionSpec::from_name(other)
                    }
                };
                if map.next_key::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("one action per list item"));
                }
                Ok(spec)
            }
        }
        d.deserialize_any(SpecVisitor)
    }
}

/// What the responder does, options folded in (a rule may list kill twice:
/// once for the process, once for its group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    Kill {
        process_group: bool,
    },
    Freeze,
    Stop,
    Isolate,
    Deny,
    /// Fail the syscall with `errno` (seccomp agent); `backstop` kills when it
    /// succeeded anyway.
    DenySyscall {
        errno: i32,
        backstop: bool,
    },
    Ratelimit(policy::Rate),
}

impl From<ActionSpec> for ActionKind {
    fn from(s: ActionSpec) -> Self {
        match s {
            ActionSpec::Kill(o) => ActionKind::Kill { process_group: o.process_group },
            ActionSpec::Freeze => ActionKind::Freeze,
            ActionSpec::Stop => ActionKind::Stop,
            ActionSpec::Isolate => ActionKind::Isolate,
            ActionSpec::Deny => ActionKind::Deny,
            ActionSpec::DenySyscall(o) => ActionKind::DenySyscall { errno: o.errno, backstop: o.backstop },
            ActionSpec::Ratelimit(r) => ActionKind::Ratelimit(r),
        }
    }
}

impl ActionKind {
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Kill { .. } => "kill",
            ActionKind::Freeze => "freeze",
            ActionKind::Stop => "stop",
            ActionKind::Isolate => "isolate",
            ActionKind::Deny => "deny",
            ActionKind::DenySyscall { .. } => "deny_syscall",
            ActionKind::Ratelimit(_) => "ratelimit",
        }
    }
}

/// A rule's actions, parsed from its `actions:` and `dry_run:` keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulePlan {
    pub actions: Vec<ActionKind>,
    pub dry_run: bool,
    /// `kill` may run in the kernel when the condition allows
    /// (`{kill: {in_kernel: false}}` turns it off; see [`super::kernel`]).
    pub kill_in_kernel: bool,
}

/// Every rule's plan, by rule name.
pub type Plans = HashMap<String, RulePlan>;

/// Parses `actions:` and `dry_run:` of every rule; every error, each with the
/// rule file's `file:line:col`.
pub fn plans(ruleset: &Ruleset) -> Result<Plans, Vec<String>> {
    let mut plans = HashMap::new();
    let mut errors = Vec::new();
    for rule in ruleset.rules() {
        match plan_of(rule) {
            Ok(Some(p)) => {
                plans.insert(rule.name.clone(), p);
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(errors)
    }
}

fn at(x: &Extra, rule: &str, key: &str, msg: impl fmt::Display) -> String {
    format!("{}:{}:{}: rule {rule:?}: {key}: {msg}", x.file, x.line, x.col)
}

fn plan_of(rule: &CompiledRule) -> Result<Option<RulePlan>, String> {
    let dry_run = match rule.extra.get("dry_run") {
        None => false,
        Some(d) => bool::deserialize(&d.value).map_err(|e| at(d, &rule.name, "dry_run", e))?,
    };
    let Some(extra) = rule.extra.get("actions") else {
        if let Some(d) = rule.extra.get("dry_run") {
            return Err(at(d, &rule.name, "dry_run", "without actions"));
        }
        return Ok(None);
    };
    // A list, or one action on its own.
    let items: Vec<ActionSpec> = match &extra.value {
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                ActionSpec::deserialize(v).map_err(|e| at(extra, &rule.name, &format!("actions[{i}]"), e))
            })
            .collect::<Result<_, _>>()?,
        v => vec![ActionSpec::deserialize(v).map_err(|e| at(extra, &rule.name, "actions", e))?],
    };
    let mut actions = Vec::new();
    let mut kill_in_kernel = true;
    for spec in items {
        if let ActionSpec::Kill(o) = spec {
            kill_in_kernel &= o.in_kernel;
        }
        let kind = ActionKind::from(spec);
        if !actions.contains(&kind) {
            actions.push(kind);
        }
    }
    Ok(Some(RulePlan { actions, dry_run, kill_in_kernel }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::testing::{ruleset, BASE};

    #[test]
    fn actions_parse_in_both_shapes() {
        let rs = ruleset(&format!(
            "{BASE}  actions: [kill, {{kill: {{process_group: true}}}}, freeze, isolate, {{deny: }}]\n  dry_run: true\n"
        ));
        let all = plans(&rs).unwrap();
        let p = &all["R"];
        assert!(p.dry_run);
        assert!(p.kill_in_kernel);
        assert_eq!(
            p.actions,
            vec![
                ActionKind::Kill { process_group: false },
                ActionKind::Kill { process_group: true },
                ActionKind::Freeze,
                ActionKind::Isolate,
                ActionKind::Deny,
            ]
        );
        assert!(plans(&ruleset(BASE)).unwrap().is_empty());
        let one = plans(&ruleset(&format!("{BASE}  actions: stop\n"))).unwrap();
        assert_eq!(one["R"].actions, vec![ActionKind::Stop]);
        let off = plans(&ruleset(&format!("{BASE}  actions: [{{kill: {{in_kernel: false}}}}]\n"))).unwrap();
        assert!(!off["R"].kill_in_kernel);
        let rl =
            plans(&ruleset(&format!("{BASE}  actions: [{{ratelimit: {{egress_pps: 1000}}}}]\n"))).unwrap();
        let want = policy::Rate { egress_pps: Some(policy::RateValue(1000)), ..Default::default() };
        assert_eq!(rl["R"].actions, vec![ActionKind::Ratelimit(want)]);
    }

    #[test]
    fn deny_with_options_is_a_syscall_deny() {
        let p = plans(&ruleset(&format!(
            "{BASE}  actions: [deny, {{deny: {{errno: EACCES}}}}, {{deny: {{errno: 1, backstop: false}}}}]\n"
        )))
        .unwrap();
        assert_eq!(
            p["R"].actions,
            vec![
                ActionKind::Deny,
                ActionKind::DenySyscall { errno: libc::EACCES, backstop: true },
                ActionKind::DenySyscall { errno: 1, backstop: false },
            ]
        );
        let err = |a: &str| plans(&ruleset(&format!("{BASE}  actions: [{a}]\n"))).unwrap_err()[0].clone();
        assert!(err("{deny: {errno: EWHAT}}").contains("unknown errno \"EWHAT\""));
        assert!(err("{deny: {errno: 0}}").contains("not in 1..=4095"));
        assert!(err("{deny: {errno: EPERM, why: x}}").contains("unknown field `why`"));
        assert!(err("{deny: {}}").contains("missing field `errno`"));
    }

    #[test]
    fn bad_actions_are_refused_with_position() {
        let err_at = |actions: &str, line: usize| {
            let errs = plans(&ruleset(&format!("{BASE}{actions}"))).unwrap_err();
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(errs[0].starts_with(&format!("t.yaml:{line}:")), "{errs:?}");
            errs[0].clone()
        };
        let err = |actions: &str| err_at(actions, 6);
        assert!(err("  actions: [kil]\n").contains("unknown variant `kil`"));
        assert!(err("  actions: [{kill: {group: true}}]\n").contains("unknown field `group`"));
        assert!(err("  actions: [{kill: {process_group: 3}}]\n").contains("actions[0]"));
        assert!(err("  actions: [{freeze: {now: true}}]\n").contains("freeze takes no options"));
        assert!(err("  actions: [{kill: , stop: }]\n").contains("one action per list item"));
        assert!(err("  actions: 3\n").contains("an action name"));
        assert!(err_at("  actions: [stop]\n  dry_run: maybe\n", 7).contains("dry_run: invalid type"));
        assert!(err("  dry_run: true\n").contains("without actions"));
        assert!(err("  actions: [ratelimit]\n").contains("needs its limits"));
        assert!(err("  actions: [{ratelimit: {}}]\n").contains("at least one limit"));
        assert!(err("  actions: [{ratelimit: {egress_pps: 0}}]\n").contains("out of range"));
        assert!(err("  actions: [{ratelimit: {egress_ppps: 5}}]\n").contains("egress_ppps"));
    }
}
