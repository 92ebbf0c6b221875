//! The in-kernel kill fast path: rules with a `kill` action whose whole
//! condition the kernel can test are compiled into kill triggers (bpf/kill.h)
//! that the sensor checks where it already holds the path, so the kill
//! happens in the same syscall, with no round trip to userspace.
//!
//! A rule qualifies when its condition is a conjunction of:
//! - its event types (`evt.type`, `open`/`openat`/`openat2`/`creat` or
//!   `execve`, and macros such as `spawned_process`);
//! - exact path tests: `fd.name = X` / `fd.name in (...)` for the open types,
//!   `proc.exepath = X` / `proc.exepath in (...)` for exec;
//! - tests that read only the container (`container.*`, e.g. `container.id !=
//!   host` or `container.name startswith web`): evaluated here, per
//!   container, and decide which container cgroups are armed.
//!
//! Anything else (a process name, a parent, an exception, a negated path, a
//! glob) keeps the rule in userspace: the kernel never kills more than the rule
//! matches. Neither do the guards: only container cgroups are armed (never the
//! host), rampart's own process and protected process names (runtimes,
//! `response.protected_process_names`) are skipped in the kernel, and a dry run
//! (global or per rule) or `kill: {process_group: true}` arms nothing. What
//! the kernel cannot do is the rate limit (`max_actions_per_minute`): a kernel
//! trigger kills every matching process; `kill: {in_kernel: false}` keeps a
//! rule in userspace, under the rate limit.
//!
//! The kernel only sees successful opens (the path of the new fd) and the
//! image an exec loads; a failed open, or a container armed late, still gets the
//! userspace kill.
//!
//! When a rule's container tests are only `container.id != host` (or it has
//! none), it needs nothing the runtime knows: its triggers are armed once for
//! every container ([`KernelRule::any_container`]), and the kernel applies
//! them to each cgroup it took for a container's as the cgroup was created
//! (bpf/kill.h `kill_cgroup_mkdir`, by the runtimes' cgroup names) or that
//! the agent marked since; so such a rule holds from the container's first
//! instruction, with no wait for the runtime. Other rules are armed per
//! container once its metadata is known.

use super::guard::ResponseConfig;
use super::plan::{ActionKind, Plans, RulePlan};
use model::{Container, Event, EventKind, ProcessCtx};
use rules::{CompiledRule, EvalCtx, Ruleset};
use runtime::ContainerRegistry;
use sensor::{ContainerChildren, KernelKills, KillMaps, KillPoint, KillTrigger};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often armed cgroups are checked against the registry (new containers
/// are also armed as soon as the runtime reports them).
const RECONCILE_PERIOD: Duration = Duration::from_secs(1);

/// The fields each kill point can test exactly in the kernel.
fn path_field_applies(field: &str, point: KillPoint) -> bool {
    match field {
        "fd.name" => point != KillPoint::Exec,
        "proc.exepath" => point == KillPoint::Exec,
        _ => false,
    }
}

/// A rule's kernel form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRule {
    pub rule: String,
    /// Indices of the conjuncts that test the container alone.
    container_terms: Vec<usize>,
    /// The container tests need no runtime metadata (only `container.id !=
    /// host`): the triggers hold in every container from its cgroup's creation.
    pub any_container: bool,
    /// Per kill point, the exact paths.
    pub points: BTreeMap<KillPoint, BTreeSet<String>>,
}

/// Compiles one rule, or says why it stays in userspace.
pub fn compile_rule(rule: &CompiledRule, plan: &RulePlan) -> Result<KernelRule, String> {
    // A syscall deny's backstop is this same kill, on the file actually opened
    // (the seccomp agent only saw the path argument).
    let backstop = plan.actions.iter().any(|a| matches!(a, ActionKind::DenySyscall { backstop: true, .. }));
    if !backstop && !plan.actions.contains(&ActionKind::Kill { process_group: false }) {
        if plan.actions.iter().any(|a| matches!(a, ActionKind::Kill { .. })) {
            return Err("kills a process group (userspace only)".into());
        }
        return Err("no kill action".into());
    }
    if plan.dry_run {
        return Err("dry run".into());
    }
    if !plan.kill_in_kernel {
        return Err("in_kernel: false".into());
    }
    if !rule.enabled {
        return Err("disabled".into());
    }
    let Some(types) = &rule.evt_types else {
        return Err("no event type in the condition".into());
    };
    let mut container_terms = Vec::new();
    let mut any_container = true;
    // Each path field's allowed values: all of its tests must hold.
    let mut paths: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for (i, term) in rule.conjuncts().iter().enumerate() {
        let fields = term.fields();
        if !fields.is_empty() && fields.iter().all(|f| f.starts_with("container.")) {
            container_terms.push(i);
            any_container &= is_not_host(term);
            continue;
        }
        match term.string_equality() {
            Some((field @ ("fd.name" | "proc.exepath"), values)) => {
                let values: BTreeSet<String> = values.into_iter().collect();
                let entry = paths.entry(field).or_insert_with(|| values.clone());
                *entry = entry.intersection(&values).cloned().collect();
            }
            _ => {
                return Err(format!(
                    "tests {} in a way the kernel cannot",
                    fields.first().copied().unwrap_or("a constant")
                ))
            }
        }
    }
    if paths.is_empty() {
        return Err("no exact fd.name or proc.exepath test".into());
    }
    let mut points = BTreeMap::new();
    for t in types {
        let Some(point) = KillPoint::from_evt_type(t) else { continue };
        // Every path test must be one the kernel makes at this point (fd.name
        // has no value on exec events: such a rule never matches them).
        if !paths.keys().all(|f| path_field_applies(f, point)) {
            continue;
        }
        let mut set: Option<BTreeSet<String>> = None;
        for values in paths.values() {
            set = Some(match set {
                None => values.clone(),
                Some(s) => s.intersection(values).cloned().collect(),
            });
        }
        let set: BTreeSet<String> =
            set.unwrap_or_default().into_iter().filter(|p| sensor::kill::walk_form(p).is_ok()).collect();
        if !set.is_empty() {
            points.insert(point, set);
        }
    }
    if points.is_empty() {
        return Err("no event type and path the kernel sees (open, openat, openat2, creat with fd.name; execve with proc.exepath; absolute normalised paths)".into());
    }
    Ok(KernelRule { rule: rule.name.clone(), container_terms, any_container, points })
}

/// `container.id != host`: true in every container and only there, which the
/// kernel decides by cgroup without the runtime.
fn is_not_host(term: &rules::Conjunct<'_>) -> bool {
    term.string_inequality().is_some_and(|(field, values)| field == "container.id" && values == ["host"])
}

/// One trigger, as userspace reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerInfo {
    pub rule: String,
    pub point: KillPoint,
    pub path: String,
}

/// The kernel forms of a rule set's kill rules, with the trigger table.
pub struct KernelPlan {
    ruleset: Arc<Ruleset>,
    pub rules: Vec<KernelRule>,
    /// Kill rules that stay in userspace, with why.
    pub userspace: Vec<(String, String)>,
    /// Trigger id (index) -> what it is.
    pub table: Vec<TriggerInfo>,
    ids: HashMap<(String, KillPoint, String), u32>,
    /// Rules here as the backstop of a syscall deny.
    deny_rules: HashSet<String>,
}

impl KernelPlan {
    /// Nothing runs in the kernel under a global dry run.
    pub fn new(ruleset: Arc<Ruleset>, plans: &Plans, cfg: &ResponseConfig) -> KernelPlan {
        let mut rules = Vec::new();
        let mut userspace = Vec::new();
        let mut table = Vec::new();
        let mut ids = HashMap::new();
        let mut deny_rules = HashSet::new();
        for rule in ruleset.rules() {
            let Some(plan) = plans.get(&rule.name) else { continue };
            if plan.actions.iter().any(|a| matches!(a, ActionKind::DenySyscall { backstop: true, .. })) {
                deny_rules.insert(rule.name.clone());
            } else if !plan.actions.iter().any(|a| matches!(a, ActionKind::Kill { .. })) {
                continue;
            }
            let compiled = if cfg.dry_run { Err("dry run".to_string()) } else { compile_rule(rule, plan) };
            match compiled {
                Ok(k) => {
                    for (point, set) in &k.points {
                        for path in set {
                            ids.insert((k.rule.clone(), *point, path.clone()), table.len() as u32);
                            table.push(TriggerInfo {
                                rule: k.rule.clone(),
                                point: *point,
                                path: path.clone(),
                            });
                        }
                    }
                    rules.push(k);
                }
                Err(why) => userspace.push((rule.name.clone(), why)),
            }
        }
        KernelPlan { ruleset, rules, userspace, table, ids, deny_rules }
    }

    /// The triggers of rules that hold in every container (armed once, for
    /// every container cgroup).
    pub fn any_container_triggers(&self) -> Vec<KillTrigger> {
        self.rules.iter().filter(|k| k.any_container).flat_map(|k| self.triggers_of(k)).collect()
    }

    fn triggers_of(&self, k: &KernelRule) -> Vec<KillTrigger> {
        let mut out = Vec::new();
        for (point, set) in &k.points {
            for path in set {
                if let Some(&id) = self.ids.get(&(k.rule.clone(), *point, path.clone())) {
                    out.push(KillTrigger { point: *point, path: path.clone(), id });
                }
            }
        }
        out
    }

    /// The triggers to arm in this container's cgroup; with `skip_any`, not
    /// those of rules armed for every container.
    pub fn triggers_for(&self, c: &Arc<Container>, skip_any: bool) -> Vec<KillTrigger> {
        let probe = Event {
            ts_ns: 0,
            process: ProcessCtx::default(),
            container: Some(c.clone()),
            ret: None,
            syscall: None,
            kind: EventKind::Exit { code: 0, signal: 0, core_dumped: false },
        };
        let ctx = EvalCtx::default();
        let mut out = Vec::new();
        for k in &self.rules {
            if skip_any && k.any_container {
                continue;
            }
            let Some(rule) = self.ruleset.get(&k.rule) else { continue };
            let terms = rule.conjuncts();
            if !k.container_terms.iter().all(|&i| terms.get(i).is_some_and(|t| t.eval(&probe, &ctx))) {
                continue;
            }
            out.extend(self.triggers_of(k));
        }
        out
    }

    /// One line per kill rule: which mechanism enforces it and from when
    /// (a deny rule's backstop is named as such).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let is_deny = |rule: &str| self.deny_rules.contains(rule);
        for k in &self.rules {
            let what: Vec<String> = k
                .points
                .iter()
                .map(|(p, set)| {
                    format!("{} {}", p.evt_type(), set.iter().cloned().collect::<Vec<_>>().join(","))
                })
                .collect();
            let when = if k.any_container {
                "from cgroup creation"
            } else {
                "before the entrypoint with the OCI hook, else after container metadata"
            };
            let kind = if is_deny(&k.rule) { "deny backstop: kill in kernel" } else { "kill in kernel" };
            lines.push(format!("{kind} {when}: {} ({})", k.rule, what.join("; ")));
        }
        for (rule, why) in &self.userspace {
            let kind = if is_deny(rule) { "deny backstop: kill in userspace" } else { "kill in userspace" };
            lines.push(format!("{kind} after the event: {rule} ({why})"));
        }
        lines
    }
}

/// Per cgroup id, how many triggers of its own the arm loop has armed there.
pub type ArmedCounts = HashMap<u64, usize>;

/// Requests for an arming pass now (from the OCI hook server, once it has
/// put a starting container in the registry): each is answered after the
/// next full pass of the arm loop, which sees that container.
#[derive(Clone)]
pub struct ArmNow {
    tx: tokio::sync::mpsc::UnboundedSender<tokio::sync::oneshot::Sender<ArmedCounts>>,
    rx: Arc<Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<tokio::sync::oneshot::Sender<ArmedCounts>>>>>,
}

impl std::fmt::Debug for ArmNow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArmNow")
    }
}

impl Default for ArmNow {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        ArmNow { tx, rx: Arc::new(Mutex::new(Some(rx))) }
    }
}

impl ArmNow {
    /// Waits (at most `timeout`) for a pass that started after this call;
    /// `None` when no arm loop answers in time (the kernel path is off, or
    /// not started yet).
    pub async fn request(&self, timeout: Duration) -> Option<ArmedCounts> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx.send(tx).ok()?;
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }

    /// The arm loop's end (the first loop takes it).
    fn take(
        &self,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<tokio::sync::oneshot::Sender<ArmedCounts>>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Which containers the kernel may act in: those the agent watches.
#[derive(Debug, Clone)]
pub struct KernelScope {
    /// Only this container (name or id prefix); `None`: every container.
    pub container: Option<String>,
    /// False when the agent looks at only some event types: a rule's other
    /// events would never reach userspace, so nothing is armed and only
    /// userspace acts.
    pub every_event_type: bool,
    /// Where arming passes are asked for out of turn (the OCI hook).
    pub arm_now: Option<ArmNow>,
}

impl Default for KernelScope {
    fn default() -> Self {
        KernelScope { container: None, every_event_type: true, arm_now: None }
    }
}

/// What the kernel path needs of the running sensor and agent.
#[derive(Clone)]
pub struct KernelHandles {
    /// The sensor's kill maps (`None` if they could not be opened).
    pub maps: Option<Arc<KillMaps>>,
    /// Events whose process the kernel killed.
    pub kills: KernelKills,
    pub containers: ContainerRegistry,
    pub scope: KernelScope,
}

/// The running fast path: the plan, and the task arming container cgroups.
pub struct KernelKill {
    plan: Arc<Mutex<Arc<KernelPlan>>>,
    kills: KernelKills,
    wake: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KernelKill {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KernelKill {
    pub fn start(h: KernelHandles, plan: KernelPlan, protected_names: Vec<String>) -> Option<KernelKill> {
        let maps = h.maps?;
        if let Err(e) = maps.protect(&protected_names) {
            eprintln!("rampart: in-kernel kill off: {e}");
            return None;
        }
        for line in plan.describe() {
            eprintln!("rampart: {line}");
        }
        let plan = Arc::new(Mutex::new(Arc::new(plan)));
        let wake = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(arm_loop(maps, plan.clone(), h.containers, h.scope, wake.clone()));
        Some(KernelKill { plan, kills: h.kills, wake, task })
    }

    /// Rules were reloaded.
    pub fn set_plan(&self, plan: KernelPlan) {
        for line in plan.describe() {
            eprintln!("rampart: {line}");
        }
        *self.plan.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(plan);
        self.wake.notify_one();
    }

    /// The trigger the kernel killed this event's process for, if it did.
    pub fn killed(&self, ev: &Event) -> Option<TriggerInfo> {
        let id = self.kills.get(ev.process.tid, ev.ts_ns)?;
        let plan = self.plan.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Some(plan.table.get(id as usize).cloned().unwrap_or(TriggerInfo {
            rule: format!("trigger {id} of an earlier rule set"),
            point: KillPoint::Open,
            path: String::new(),
        }))
    }
}

/// The cgroup id of a container (the inode of its cgroup v2 directory).
pub fn cgroup_id(c: &Container) -> Option<u64> {
    crate::target::Target::from_container(c).ok()?.cgroup.map(|cg| cg.id)
}

/// Keeps the armed cgroups equal to the containers (in the scope)
/// the plan has triggers for: on every runtime event and every second.
async fn arm_loop(
    maps: Arc<KillMaps>,
    plan: Arc<Mutex<Arc<KernelPlan>>>,
    containers: ContainerRegistry,
    scope: KernelScope,
    wake: Arc<tokio::sync::Notify>,
) {
    let mut events = containers.subscribe();
    let mut current: HashMap<u64, Vec<KillTrigger>> = HashMap::new();
    let mut current_any: Option<Vec<KillTrigger>> = None;
    let mut marked: HashSet<u64> = HashSet::new();
    let mut parents: HashSet<String> = HashSet::new();
    // Triggers for every container only when the agent watches every
    // container (with --container, that container is armed by itself).
    let every_container = scope.container.is_none() && scope.every_event_type;
    let mut tick = tokio::time::interval(RECONCILE_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut requests = scope.arm_now.as_ref().and_then(ArmNow::take);
    let mut waiting = Vec::new();
    loop {
        // Requests sent before this pass starts are answered after it.
        while let Some(r) = requests.as_mut().and_then(|rx| rx.try_recv().ok()) {
            waiting.push(r);
        }
        let plan_now = plan.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let any = if every_container { plan_now.any_container_triggers() } else { Vec::new() };
        if current_any.as_ref() != Some(&any) {
            if !any.is_empty() {
                // Which cgroups the kernel takes for containers at creation:
                // the top-level names (containerd namespaces learned since).
                let learned = containers.containerd_namespaces();
                for (name, naming) in
                    runtime::cgroup::top_level_container_parents(learned.iter().map(String::as_str))
                {
                    if parents.contains(&name) {
                        continue;
                    }
                    let children = match naming {
                        runtime::cgroup::ChildNaming::Hex64 => ContainerChildren::Hex64,
                        runtime::cgroup::ChildNaming::NamedId => ContainerChildren::Named,
                    };
                    match maps.add_container_parent(&name, children) {
                        Ok(()) => {
                            parents.insert(name);
                        }
                        Err(e) => tracing::warn!(cgroup = %name, error = %e, "container parent cgroup"),
                    }
                }
            }
            match maps.arm_any_container(&any) {
                Ok(()) => {
                    if !any.is_empty() {
                        eprintln!(
                            "rampart: kernel kill armed for every container from its cgroup's creation ({} triggers)",
                            any.len()
                        );
                    }
                    current_any = Some(any.clone());
                }
                Err(e) => tracing::warn!(error = %e, "arming kernel kill triggers for every container"),
            }
        }
        let mut desired: HashMap<u64, (String, Vec<KillTrigger>)> = HashMap::new();
        if scope.every_event_type && !plan_now.rules.is_empty() {
            for c in containers.containers() {
                if scope.container.as_deref().is_some_and(|q| !c.matches(q)) {
                    continue;
                }
                let Some(cg) = cgroup_id(&c) else { continue };
                let label = if c.name.is_empty() { c.short_id().to_string() } else { c.name.clone() };
                // Containers the kernel did not see created (they predate
                // the sensor, or their naming is not one it knows).
                if !any.is_empty() && marked.insert(cg) {
                    match maps.mark_container(cg) {
                        Ok(()) => eprintln!(
                            "rampart: kernel kill armed for container {label} (cgroup {cg}, by the rules for every container)"
                        ),
                        Err(e) => {
                            tracing::warn!(cgroup = cg, error = %e, "marking a container cgroup");
                            marked.remove(&cg);
                        }
                    }
                }
                let triggers = plan_now.triggers_for(&c, every_container);
                if triggers.is_empty() {
                    continue;
                }
                desired.insert(cg, (label, triggers));
            }
        }
        let gone: Vec<u64> = current.keys().filter(|cg| !desired.contains_key(cg)).copied().collect();
        for cg in gone {
            maps.disarm(cg);
            current.remove(&cg);
        }
        for (cg, (label, triggers)) in desired {
            if current.get(&cg) == Some(&triggers) {
                continue;
            }
            match maps.arm(cg, &triggers) {
                Ok(()) => {
                    eprintln!(
                        "rampart: kernel kill armed for container {label} (cgroup {cg}, {} triggers)",
                        triggers.len()
                    );
                    current.insert(cg, triggers);
                }
                Err(e) => tracing::warn!(container = %label, error = %e, "arming kernel kill triggers"),
            }
        }
        if !waiting.is_empty() {
            let counts: ArmedCounts = current.iter().map(|(cg, t)| (*cg, t.len())).collect();
            for w in waiting.drain(..) {
                let _ = w.send(counts.clone());
            }
        }
        tokio::select! {
            Some(r) = async { match requests.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                waiting.push(r);
            }
            ev = events.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = ev {
                    // No more runtime events: the tick still reconciles.
                    events = containers.subscribe();
                }
            }
            _ = tick.tick() => {}
            _ = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset(text: &str) -> Arc<Ruleset> {
        Arc::new(crate::actions::testing::ruleset(text))
    }

    fn rule(cond: &str, actions: &str) -> String {
        format!("- rule: R\n  desc: d\n  condition: {cond}\n  output: o\n  priority: WARNING\n  actions: {actions}\n")
    }

    const MACROS: &str = "- macro: container\n  condition: container.id != host\n- macro: spawned_process\n  condition: evt.type in (execve, execveat) and evt.dir = <\n- macro: open_read\n  condition: evt.type in (open, openat, openat2) and evt.is_open_read = true\n- list: secrets\n  items: [/etc/shadow, /etc/gshadow]\n";

    fn compile(cond: &str, actions: &str) -> Result<KernelRule, String> {
        let rs = ruleset(&format!("{MACROS}{}", rule(cond, actions)));
        let plans = crate::actions::plans(&rs).unwrap();
        compile_rule(rs.get("R").unwrap(), &plans["R"])
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn eligible_conditions() {
        let k =
            compile("evt.type in (open, openat) and fd.name = /etc/shadow and container", "[kill]").unwrap();
        assert_eq!(k.points.len(), 2);
        assert_eq!(k.points[&KillPoint::Openat], set(&["/etc/shadow"]));
        assert_eq!(k.container_terms.len(), 1);

        let k = compile(
            "evt.type = openat2 and fd.name in (secrets) and container.name startswith web",
            "[kill, freeze]",
        )
        .unwrap();
        assert_eq!(k.points[&KillPoint::Openat2], set(&["/etc/gshadow", "/etc/shadow"]));

        let k = compile("spawned_process and container and proc.exepath in (/usr/bin/nc, /bin/nc)", "[kill]")
            .unwrap();
        assert_eq!(k.points.keys().copied().collect::<Vec<_>>(), vec![KillPoint::Exec]);
        assert_eq!(k.points[&KillPoint::Exec], set(&["/bin/nc", "/usr/bin/nc"]));

        // Two tests on one field: both must hold.
        let k = compile("evt.type = openat and fd.name in (secrets) and fd.name = /etc/shadow", "[kill]")
            .unwrap();
        assert_eq!(k.points[&KillPoint::Openat], set(&["/etc/shadow"]));

        // `or` of equalities on one field merges into one set.
        let k = compile("evt.type = openat and (fd.name = /a or fd.name = /b)", "[kill]").unwrap();
        assert_eq!(k.points[&KillPoint::Openat], set(&["/a", "/b"]));

        // Exec types only get proc.exepath; a mixed rule keeps the kinds that fit.
        let k = compile("evt.type in (execve, openat) and fd.name = /etc/shadow", "[kill]").unwrap();
        assert_eq!(k.points.keys().copied().collect::<Vec<_>>(), vec![KillPoint::Openat]);
    }

    #[test]
    fn a_syscall_deny_is_backed_by_the_kernel_kill() {
        let cond = "evt.type = openat and fd.name = /etc/shadow and container";
        let k = compile(cond, "[{deny: {errno: EPERM}}]").unwrap();
        assert!(k.any_container);
        assert_eq!(k.points[&KillPoint::Openat], set(&["/etc/shadow"]));
        assert_eq!(compile(cond, "[{deny: {errno: EPERM, backstop: false}}]").unwrap_err(), "no kill action");
        // Named as a backstop in `rules check`, also when it stays in userspace.
        let rs = ruleset(&format!(
            "{MACROS}{}{}",
            rule(cond, "[{deny: {errno: EPERM}}]"),
            rule("evt.type = openat and fd.name = /x and proc.name = cat", "[{deny: {errno: 13}}]")
                .replace("rule: R", "rule: S")
        ));
        let plans = crate::actions::plans(&rs).unwrap();
        let lines = KernelPlan::new(rs, &plans, &ResponseConfig::default()).describe();
        assert!(lines[0].starts_with("deny backstop: kill in kernel from cgroup creation: R"), "{lines:?}");
        assert!(lines[1].starts_with("deny backstop: kill in userspace after the event: S"), "{lines:?}");
    }

    #[test]
    fn ineligible_conditions() {
        let no = |cond: &str, actions: &str| {
            let r = compile(cond, actions);
            assert!(r.is_err(), "{cond} / {actions}: {r:?}");
            r.unwrap_err()
        };
        // Anything the kernel cannot test exactly.
        no("evt.type = openat and fd.name = /etc/shadow and proc.name = cat", "[kill]");
        no("open_read and fd.name = /etc/shadow", "[kill]");
        no("evt.type = openat and fd.name startswith /etc/", "[kill]");
        no("evt.type = openat and fd.name != /etc/shadow", "[kill]");
        no("evt.type = openat and not fd.name = /etc/shadow", "[kill]");
        no("evt.type = openat and (fd.name = /a or proc.name = x)", "[kill]");
        no("evt.type = openat and fd.name glob '/etc/*'", "[kill]");
        no("evt.type = openat and container", "[kill]");
        no("fd.name = /etc/shadow", "[kill]");
        no("evt.type = connect and fd.name = /etc/shadow", "[kill]");
        no("spawned_process and fd.name = /etc/shadow", "[kill]");
        no("evt.type = openat and fd.name = etc/shadow", "[kill]");
        no("evt.type = openat and fd.name = /etc/../shadow", "[kill]");
        // Not the kind of kill the kernel does.
        no("evt.type = openat and fd.name = /etc/shadow", "[freeze]");
        assert!(no("evt.type = openat and fd.name = /etc/shadow", "[{kill: {process_group: true}}]")
            .contains("process group"));
        assert!(no("evt.type = openat and fd.name = /etc/shadow", "[{kill: {in_kernel: false}}]")
            .contains("in_kernel"));
        let rs = ruleset(&format!(
            "{MACROS}{}  dry_run: true\n",
            rule("evt.type = openat and fd.name = /etc/shadow", "[kill]")
        ));
        let plans = crate::actions::plans(&rs).unwrap();
        assert_eq!(compile_rule(rs.get("R").unwrap(), &plans["R"]).unwrap_err(), "dry run");
    }

    #[test]
    fn rules_without_metadata_hold_in_every_container() {
        let any = |cond: &str| compile(cond, "[kill]").unwrap().any_container;
        assert!(any("evt.type = openat and fd.name = /etc/shadow and container"));
        assert!(any("evt.type = openat and fd.name = /etc/shadow and container.id != host"));
        assert!(any("evt.type = openat and fd.name = /etc/shadow and not container.id = host"));
        assert!(any("evt.type = openat and fd.name = /etc/shadow"));
        // Anything that depends on which container it is waits for metadata.
        assert!(!any("evt.type = openat and fd.name = /etc/shadow and container.id != abc"));
        assert!(!any("evt.type = openat and fd.name = /etc/shadow and container.id = host"));
        assert!(!any("evt.type = openat and fd.name = /etc/shadow and container.image.repository = x"));
        assert!(!any("evt.type = openat and fd.name = /etc/shadow and container and container.name != db"));
        assert!(!any("evt.type = openat and fd.name = /etc/shadow and container.id in (host, abc)"));

        let rs = ruleset(&format!(
            "{MACROS}{}{}",
            rule("evt.type = openat and fd.name = /etc/shadow and container", "[kill]"),
            rule("evt.type = openat and fd.name = /etc/passwd and container.name = web", "[kill]")
                .replace("rule: R", "rule: S")
        ));
        let plans = crate::actions::plans(&rs).unwrap();
        let plan = KernelPlan::new(rs, &plans, &ResponseConfig::default());
        let all = plan.any_container_triggers();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].path, "/etc/shadow");
        let web = Arc::new(Container { id: "c".repeat(64), name: "web".into(), ..Default::default() });
        let paths = |t: Vec<KillTrigger>| t.into_iter().map(|t| t.path).collect::<Vec<_>>();
        assert_eq!(paths(plan.triggers_for(&web, true)), vec!["/etc/passwd"]);
        assert_eq!(paths(plan.triggers_for(&web, false)), vec!["/etc/shadow", "/etc/passwd"]);
        let lines = plan.describe();
        assert!(
            lines[0].starts_with("kill in kernel from cgroup creation: R (openat /etc/shadow)"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("kill in kernel before the entrypoint with the OCI hook, else after container metadata: S (openat /etc/passwd)"),
            "{lines:?}"
        );
    }

    #[test]
    fn triggers_follow_container_terms_and_global_dry_run() {
        let rs = ruleset(&format!(
            "{MACROS}{}",
            rule("evt.type = openat and fd.name = /etc/shadow and container.name startswith web", "[kill]")
        ));
        let plans = crate::actions::plans(&rs).unwrap();
        let plan = KernelPlan::new(rs.clone(), &plans, &ResponseConfig::default());
        let c =
            |name: &str| Arc::new(Container { id: "c".repeat(64), name: name.into(), ..Default::default() });
        let t = plan.triggers_for(&c("web-1"), true);
        assert_eq!(t, vec![KillTrigger { point: KillPoint::Openat, path: "/etc/shadow".into(), id: 0 }]);
        assert_eq!(plan.table[0].rule, "R");
        assert!(plan.triggers_for(&c("db"), true).is_empty());
        assert!(
            plan.describe()[0].starts_with("kill in kernel before the entrypoint with the OCI hook, else after container metadata: R (openat /etc/shadow)"),
            "{:?}",
            plan.describe()
        );

        let dry = KernelPlan::new(rs, &plans, &ResponseConfig { dry_run: true, ..Default::default() });
        assert!(dry.rules.is_empty());
        assert!(dry.triggers_for(&c("web-1"), true).is_empty());
        assert_eq!(dry.userspace, vec![("R".to_string(), "dry run".to_string())]);
    }
}
