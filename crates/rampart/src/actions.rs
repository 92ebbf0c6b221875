//! Response actions on rules: `actions:` (a rampart extension of the rule
//! format; Falco-style tooling ignores the unknown key) names what to do when a
//! rule matches: `kill` the process (or its process group), `freeze`, `stop`
//! or `isolate` its container, or `deny` a network destination in the kernel.
//!
//! Every action is reported as an alert of its own (rule [`ACTION_RULE`]) with
//! its outcome: done, failed and why, skipped by dry-run, refused (protected
//! target) or rate limited. Guards keep a bad rule from taking the host down:
//! a global and per-rule `dry_run`, a rate limit, and a protected list — rampart
//! itself, host PID 1, the container runtime's own processes, and anything not
//! in a container unless `response.allow_host` is set.
//!
//! What each action can prevent (docs/ARCHITECTURE.md): a kill from here
//! lands after the syscall that matched (its effects stay), a few ms late;
//! rules the kernel can test exactly also kill in the kernel, in the same
//! syscall (`kernel_kill`, opt out with `{kill: {in_kernel: false}}`); the
//! responder then only reports it. `deny` blocks later
//! connections to the destination, in the kernel, not the one that matched;
//! freeze stops progress from then on; isolate drops packets of existing and
//! new connections.

use alerts::{Alert, Dispatcher};
use model::{Container, Event, EventKind, Priority, SockAddr};
use rules::{CompiledRule, Ruleset};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The rule name action reports are raised under.
pub const ACTION_RULE: &str = "Response action";

/// `response:` in the agent config.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResponseConfig {
    /// Report what would be done, do nothing.
    pub dry_run: bool,
    /// Actions per minute, all rules together; beyond it actions are skipped
    /// (and reported).
    pub max_actions_per_minute: u32,
    /// Let actions touch processes that are not in a container.
    pub allow_host: bool,
    /// Process names never acted on, in addition to the built-in list
    /// (rampart, container runtimes).
    pub protected_process_names: Vec<String>,
    /// Grace period of `stop` before the runtime kills the container.
    pub stop_grace_secs: u64,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        ResponseConfig {
            dry_run: false,
            max_actions_per_minute: 60,
            allow_host: false,
            protected_process_names: Vec::new(),
            stop_grace_secs: 10,
        }
    }
}

/// Processes of the container runtimes and of rampart itself.
const PROTECTED_NAMES: &[&str] = &[
    "rampart",
    "dockerd",
    "containerd",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "runc",
    "crun",
    "conmon",
    "crio",
    "podman",
    "kubelet",
    "systemd",
    "init",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    Kill { process_group: bool },
    Freeze,
    Stop,
    Isolate,
    Deny,
}

impl ActionKind {
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Kill { .. } => "kill",
            ActionKind::Freeze => "freeze",
            ActionKind::Stop => "stop",
            ActionKind::Isolate => "isolate",
            ActionKind::Deny => "deny",
        }
    }
}

/// A rule's actions, parsed from its `actions:` and `dry_run:` keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulePlan {
    pub actions: Vec<ActionKind>,
    pub dry_run: bool,
    /// `kill` may run in the kernel when the condition allows
    /// (`{kill: {in_kernel: false}}` turns it off; see `kernel_kill`).
    pub kill_in_kernel: bool,
}

/// Parses `actions: [kill, {kill: {process_group: true}}, freeze]` and
/// `dry_run: true` of every rule; errors carry the rule file's position.
pub fn plans(ruleset: &Ruleset) -> Result<HashMap<String, RulePlan>, Vec<String>> {
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

fn plan_of(rule: &CompiledRule) -> Result<Option<RulePlan>, String> {
    let Some(extra) = rule.extra.get("actions") else {
        if let Some(d) = rule.extra.get("dry_run") {
            return Err(format!(
                "{}:{}:{}: rule {:?}: dry_run without actions",
                d.file, d.line, d.col, rule.name
            ));
        }
        return Ok(None);
    };
    let at = |msg: String| {
        format!("{}:{}:{}: rule {:?}: actions: {msg}", extra.file, extra.line, extra.col, rule.name)
    };
    let items = match &extra.value {
        serde_json::Value::Array(a) => a.clone(),
        v @ (serde_json::Value::String(_) | serde_json::Value::Object(_)) => vec![v.clone()],
        other => return Err(at(format!("expected a list of actions, got {other}"))),
    };
    let mut actions = Vec::new();
    let mut kill_in_kernel = true;
    for item in items {
        let (name, opts) = match &item {
            serde_json::Value::String(s) => (s.clone(), None),
            serde_json::Value::Object(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one entry");
                (k.clone(), Some(v.clone()))
            }
            other => return Err(at(format!("expected an action name or {{name: options}}, got {other}"))),
        };
        let action = match name.as_str() {
            "kill" => {
                let mut process_group = false;
                if let Some(o) = opts.filter(|o| !o.is_null()) {
                    let m =
                        o.as_object().ok_or_else(|| at(format!("kill options must be a map, got {o}")))?;
                    for (k, v) in m {
                        match (k.as_str(), v) {
                            ("process_group", serde_json::Value::Bool(b)) => process_group = *b,
                            ("in_kernel", serde_json::Value::Bool(b)) => kill_in_kernel = *b,
                            _ => {
                                return Err(at(format!(
                                "kill: unknown option {k}: {v} (known: process_group: bool, in_kernel: bool)"
                            )))
                            }
                        }
                    }
                }
                ActionKind::Kill { process_group }
            }
            "freeze" | "stop" | "isolate" | "deny" if opts.as_ref().is_some_and(|o| !o.is_null()) => {
                return Err(at(format!("{name} takes no options")));
            }
            "freeze" => ActionKind::Freeze,
            "stop" => ActionKind::Stop,
            "isolate" => ActionKind::Isolate,
            "deny" => ActionKind::Deny,
            other => {
                return Err(at(format!(
                    "unknown action {other:?} (known: kill, freeze, stop, isolate, deny)"
                )))
            }
        };
        if !actions.contains(&action) {
            actions.push(action);
        }
    }
    let dry_run = match rule.extra.get("dry_run") {
        None => false,
        Some(d) => d.value.as_bool().ok_or_else(|| {
            format!("{}:{}:{}: rule {:?}: dry_run must be true or false", d.file, d.line, d.col, rule.name)
        })?,
    };
    Ok(Some(RulePlan { actions, dry_run, kill_in_kernel }))
}

/// Why a target is off limits, if it is.
pub fn protected(ev: &Event, cfg: &ResponseConfig, own_pid: u32) -> Option<String> {
    let p = &ev.process;
    if p.pid == own_pid {
        return Some("rampart itself".into());
    }
    if p.pid <= 1 {
        return Some("host PID 1".into());
    }
    let name = if p.comm.is_empty() { p.exe.rsplit('/').next().unwrap_or("") } else { p.comm.as_str() };
    if name.starts_with("runc:")
        || PROTECTED_NAMES.contains(&name)
        || cfg.protected_process_names.iter().any(|n| n == name)
    {
        return Some(format!("protected process {name}"));
    }
    if ev.container.is_none() && !cfg.allow_host {
        return Some("not in a container (response.allow_host is off)".into());
    }
    None
}

/// A sliding one-minute window of actions taken.
struct RateLimit {
    max: u32,
    recent: std::collections::VecDeque<Instant>,
}

impl RateLimit {
    fn allow(&mut self, now: Instant) -> bool {
        while self.recent.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60)) {
            self.recent.pop_front();
        }
        if self.recent.len() as u32 >= self.max {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

/// Runs rule actions and reports each.
pub struct Responder {
    cfg: ResponseConfig,
    plans: HashMap<String, RulePlan>,
    dispatcher: Arc<Dispatcher>,
    docker_socket: PathBuf,
    own_pid: u32,
    rate: RateLimit,
    /// Container-wide actions already taken: (action, container id).
    taken: HashMap<(&'static str, String), Instant>,
    /// The in-kernel kill fast path, once the sensor runs.
    kernel: Option<crate::kernel_kill::KernelKill>,
    pub reported: u64,
}

impl Responder {
    pub fn new(
        cfg: ResponseConfig,
        plans: HashMap<String, RulePlan>,
        dispatcher: Arc<Dispatcher>,
        docker_socket: PathBuf,
    ) -> Self {
        let rate = RateLimit { max: cfg.max_actions_per_minute, recent: Default::default() };
        Responder {
            cfg,
            plans,
            dispatcher,
            docker_socket,
            own_pid: std::process::id(),
            rate,
            taken: HashMap::new(),
            kernel: None,
            reported: 0,
        }
    }

    /// Starts the in-kernel kill fast path for `ruleset`'s kill rules.
    pub fn attach_kernel(&mut self, handles: crate::kernel_kill::KernelHandles, ruleset: Arc<Ruleset>) {
        let plan = crate::kernel_kill::KernelPlan::new(ruleset, &self.plans, &self.cfg);
        let mut names: Vec<String> = PROTECTED_NAMES.iter().map(|s| s.to_string()).collect();
        names.extend(self.cfg.protected_process_names.iter().cloned());
        self.kernel = crate::kernel_kill::KernelKill::start(handles, plan, names);
    }

    pub fn set_plans(&mut self, plans: HashMap<String, RulePlan>, ruleset: Arc<Ruleset>) {
        if let Some(k) = &self.kernel {
            k.set_plan(crate::kernel_kill::KernelPlan::new(ruleset, &plans, &self.cfg));
        }
        self.plans = plans;
    }

    /// Acts on a rule match.
    pub fn respond(&mut self, rule: &CompiledRule, ev: &Event) {
        let Some(plan) = self.plans.get(&rule.name).cloned() else { return };
        for &action in &plan.actions {
            let outcome = self.act(action, &plan, ev);
            self.report(action, rule, ev, &outcome);
        }
    }

    fn act(&mut self, action: ActionKind, plan: &RulePlan, ev: &Event) -> Outcome {
        if let ActionKind::Kill { .. } = action {
            // The kernel already killed it in the syscall: a second signal
            // could only reach a reused pid.
            if let Some(t) = self.kernel.as_ref().and_then(|k| k.killed(ev)) {
                let syscall = ev.syscall.as_deref().unwrap_or(t.point.evt_type());
                return Outcome::Done(format!(
                    "killed in the kernel at {syscall} (trigger of rule {:?} on {})",
                    t.rule, t.path
                ));
            }
        }
        if let Some(why) = protected(ev, &self.cfg, self.own_pid) {
            return Outcome::Refused(why);
        }
        let container = ev.container.clone();
        let whole_container = !matches!(action, ActionKind::Kill { .. });
        if whole_container {
            let Some(c) = &container else { return Outcome::Refused("not in a container".into()) };
            // Once per container and action: a storm of matches freezes once.
            if self.taken.contains_key(&(action.name(), c.id.clone())) && action != ActionKind::Deny {
                return Outcome::Skipped("already done for this container".into());
            }
        }
        if self.cfg.dry_run || plan.dry_run {
            return Outcome::DryRun;
        }
        if !self.rate.allow(Instant::now()) {
            return Outcome::Skipped(format!(
                "rate limit ({} actions per minute)",
                self.cfg.max_actions_per_minute
            ));
        }
        if let Some(c) = &container {
            if whole_container {
                self.taken.insert((action.name(), c.id.clone()), Instant::now());
            }
        }
        match action {
            ActionKind::Kill { process_group } => kill(ev.process.pid, process_group),
            ActionKind::Deny => deny(ev, container.as_deref()),
            ActionKind::Freeze | ActionKind::Stop | ActionKind::Isolate => {
                let c = container.expect("checked above");
                self.spawn_container_action(action, c, ev);
                Outcome::Started
            }
        }
    }

    /// Freeze, stop and isolate talk to cgroups and the runtime: they run on
    /// their own task and report when they are done.
    fn spawn_container_action(&self, action: ActionKind, c: Arc<Container>, ev: &Event) {
        let dispatcher = self.dispatcher.clone();
        let socket = self.docker_socket.clone();
        let grace = Duration::from_secs(self.cfg.stop_grace_secs);
        let ev = ev.clone();
        tokio::spawn(async move {
            let outcome = match action {
                ActionKind::Freeze => match respond::freeze(&c, &respond::FreezeOptions::default()).await {
                    Ok(m) => Outcome::Done(format!("frozen ({})", m.as_str())),
                    Err(e) => Outcome::Failed(e.to_string()),
                },
                ActionKind::Stop => match respond::stop(&c, grace, &socket).await {
                    Ok(()) => Outcome::Done("stopped".into()),
                    Err(e) => Outcome::Failed(e.to_string()),
                },
                ActionKind::Isolate => {
                    match tokio::task::spawn_blocking(move || respond::isolate(&c)).await {
                        Ok(Ok(_)) => Outcome::Done("isolated from the network".into()),
                        Ok(Err(e)) => Outcome::Failed(e.to_string()),
                        Err(e) => Outcome::Failed(e.to_string()),
                    }
                }
                _ => return,
            };
            dispatcher.emit(action_alert(action, "", Priority::Warning, &ev, &outcome));
        });
    }

    fn report(&mut self, action: ActionKind, rule: &CompiledRule, ev: &Event, outcome: &Outcome) {
        if matches!(outcome, Outcome::Started) {
            return; // reported by the task when it ends
        }
        self.reported += 1;
        self.dispatcher.emit(action_alert(action, &rule.name, rule.priority, ev, outcome));
    }
}

/// What came of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    Failed(String),
    DryRun,
    Refused(String),
    Skipped(String),
    /// Running on a task that reports when done.
    Started,
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Done(_) => "done",
            Outcome::Failed(_) => "failed",
            Outcome::DryRun => "dry_run",
            Outcome::Refused(_) => "refused",
            Outcome::Skipped(_) => "skipped",
            Outcome::Started => "started",
        }
    }

    fn detail(&self) -> &str {
        match self {
            Outcome::Done(d) | Outcome::Failed(d) | Outcome::Refused(d) | Outcome::Skipped(d) => d,
            Outcome::DryRun => "dry run: nothing done",
            Outcome::Started => "",
        }
    }
}

fn action_alert(action: ActionKind, rule: &str, priority: Priority, ev: &Event, outcome: &Outcome) -> Alert {
    let target = match (&ev.container, action) {
        (_, ActionKind::Kill { process_group: true }) => format!("process group of pid {}", ev.process.pid),
        (_, ActionKind::Kill { .. }) => format!("pid {} ({})", ev.process.pid, ev.process.comm),
        (Some(c), _) => format!("container {}", if c.name.is_empty() { &c.id } else { &c.name }),
        (None, _) => "host".into(),
    };
    let container = ev.container.as_deref().map_or_else(|| "host".to_string(), |c| c.name.clone());
    let text = format!(
        "action {} on {target} in {container}{}: {} ({})",
        action.name(),
        if rule.is_empty() { String::new() } else { format!(" for rule {rule:?}") },
        outcome.label(),
        outcome.detail()
    );
    let mut a = Alert::for_event(ev, ACTION_RULE, priority, &text)
        .with_field("action", action.name())
        .with_field("outcome", outcome.label())
        .with_field("detail", outcome.detail())
        .with_field("target", target)
        .with_field("proc.pid", ev.process.pid)
        .with_tags(["response".to_string()]);
    if !rule.is_empty() {
        a = a.with_field("rule", rule);
    }
    a
}

fn kill(pid: u32, process_group: bool) -> Outcome {
    let target = if process_group {
        // SAFETY: getpgid has no memory-safety preconditions.
        let pgid = unsafe { libc::getpgid(pid as i32) };
        // SAFETY: as above, for our own process group.
        let own = unsafe { libc::getpgid(0) };
        if pgid <= 1 || pgid == own {
            return Outcome::Refused(format!("process group {pgid} is protected"));
        }
        -pgid
    } else {
        pid as i32
    };
    // SAFETY: kill has no memory-safety preconditions; `target` was checked
    // against the protected list (never 0, -1, 1 or our own group).
    let rc = unsafe { libc::kill(target, libc::SIGKILL) };
    if rc == 0 {
        Outcome::Done("SIGKILL sent".into())
    } else {
        Outcome::Failed(std::io::Error::last_os_error().to_string())
    }
}

/// Adds the connection's destination to the container's network deny-list,
/// enforced in the kernel for every later attempt.
fn deny(ev: &Event, container: Option<&Container>) -> Outcome {
    let Some(c) = container else { return Outcome::Refused("not in a container".into()) };
    let addr = match &ev.kind {
        EventKind::Connect { remote: Some(a), .. } => a,
        _ => return Outcome::Refused("deny acts on connect events only".into()),
    };
    let (ip, port) = match addr {
        SockAddr::Inet { ip, port } | SockAddr::Inet6 { ip, port } => (*ip, *port),
        _ => return Outcome::Refused("not an IP destination".into()),
    };
    let entry = respond::policy::Entry {
        cidr: respond::policy::Cidr { addr: ip, len: if ip.is_ipv4() { 32 } else { 128 } },
        ports: vec![respond::policy::PortRange::single(port)],
        protocol: respond::policy::Protocol::Any,
        comment: Some("added by a rule's deny action".into()),
    };
    match respond::NetPolicyStore::new(respond::StoreConfig::default()).add_deny(c, entry) {
        Ok(_) => Outcome::Done(format!("{ip} port {port} denied in the kernel from now on")),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::ProcessCtx;

    fn ruleset(text: &str) -> Ruleset {
        let mut b = rules::RulesetBuilder::new();
        b.add_file("t.yaml", text);
        b.build().expect("rules load")
    }

    const BASE: &str =
        "- rule: R\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: WARNING\n";

    #[test]
    fn actions_parse_in_both_shapes() {
        let rs = ruleset(&format!(
            "{BASE}  actions: [kill, {{kill: {{process_group: true}}}}, freeze, isolate]\n  dry_run: true\n"
        ));
        let all = plans(&rs).unwrap();
        let p = &all["R"];
        assert!(p.dry_run);
        assert_eq!(
            p.actions,
            vec![
                ActionKind::Kill { process_group: false },
                ActionKind::Kill { process_group: true },
                ActionKind::Freeze,
                ActionKind::Isolate
            ]
        );
        assert!(plans(&ruleset(BASE)).unwrap().is_empty());
    }

    #[test]
    fn bad_actions_are_refused_with_position() {
        let errs = plans(&ruleset(&format!("{BASE}  actions: [kil]\n"))).unwrap_err();
        assert!(errs[0].starts_with("t.yaml:6:"), "{errs:?}");
        assert!(errs[0].contains("unknown action \"kil\""), "{errs:?}");
        let errs = plans(&ruleset(&format!("{BASE}  actions: [{{kill: {{group: true}}}}]\n"))).unwrap_err();
        assert!(errs[0].contains("unknown option group"), "{errs:?}");
        let errs = plans(&ruleset(&format!("{BASE}  actions: [stop]\n  dry_run: maybe\n"))).unwrap_err();
        assert!(errs[0].contains("dry_run must be true or false"), "{errs:?}");
    }

    fn event(pid: u32, comm: &str, container: bool) -> Event {
        let mut ev = Event {
            ts_ns: 0,
            process: ProcessCtx { pid, comm: comm.into(), ..Default::default() },
            container: None,
            ret: None,
            syscall: None,
            kind: EventKind::Exit { code: 0, signal: 0, core_dumped: false },
        };
        if container {
            ev.container =
                Some(Arc::new(Container { id: "c".repeat(64), name: "web".into(), ..Default::default() }));
        }
        ev
    }

    #[test]
    fn protected_targets() {
        let cfg = ResponseConfig::default();
        assert_eq!(protected(&event(77, "sh", true), &cfg, 5), None);
        assert!(protected(&event(5, "sh", true), &cfg, 5).unwrap().contains("rampart itself"));
        assert!(protected(&event(1, "sh", true), &cfg, 5).unwrap().contains("PID 1"));
        assert!(protected(&event(77, "runc:[2:INIT]", true), &cfg, 5).is_some());
        assert!(protected(&event(77, "containerd-shim", true), &cfg, 5).is_some());
        assert!(protected(&event(77, "sh", false), &cfg, 5).unwrap().contains("not in a container"));
        let host_ok = ResponseConfig { allow_host: true, ..Default::default() };
        assert_eq!(protected(&event(77, "sh", false), &host_ok, 5), None);
        let custom =
            ResponseConfig { protected_process_names: vec!["postgres".into()], ..Default::default() };
        assert!(protected(&event(77, "postgres", true), &custom, 5).is_some());
    }

    #[test]
    fn rate_limit_window() {
        let mut r = RateLimit { max: 2, recent: Default::default() };
        let t = Instant::now();
        assert!(r.allow(t) && r.allow(t));
        assert!(!r.allow(t + Duration::from_secs(30)));
        assert!(r.allow(t + Duration::from_secs(61)));
    }
}
