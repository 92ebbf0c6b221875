//! The responder: runs a matched rule's actions through the guards and
//! reports each as an alert of its own ([`ACTION_RULE`]) with its outcome.

use super::guard::{protected, RateLimit, ResponseConfig};
use super::plan::{ActionKind, Plans, RulePlan};
use alerts::{Alert, Dispatcher};
use model::{Container, Event, EventKind, Priority, SockAddr};
use rules::{CompiledRule, Ruleset};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The rule name action reports are raised under.
pub const ACTION_RULE: &str = "Response action";

/// Runs rule actions and reports each.
pub struct Responder {
    cfg: ResponseConfig,
    /// The rule set the plans belong to, swapped with them as one.
    ruleset: Arc<Ruleset>,
    plans: Plans,
    dispatcher: Arc<Dispatcher>,
    docker_socket: PathBuf,
    own_pid: u32,
    rate: RateLimit,
    /// Container-wide actions already taken: (action, container id).
    taken: HashMap<(&'static str, String), Instant>,
    /// The in-kernel kill fast path, once the sensor runs.
    kernel: Option<super::kernel::KernelKill>,
    pub reported: u64,
    counts: Arc<ActionCounts>,
}

/// Actions taken, by action and outcome, for the agent's metrics. Shared with
/// the tasks that finish container-wide actions.
#[derive(Debug, Default)]
pub struct ActionCounts(std::sync::Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>);

impl ActionCounts {
    fn record(&self, action: ActionKind, outcome: &Outcome) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((action.name(), outcome.label())).or_default() += 1;
    }

    /// `((action, outcome), count)`, sorted.
    pub fn snapshot(&self) -> Vec<((&'static str, &'static str), u64)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (*k, *v)).collect()
    }
}

impl Responder {
    /// A responder with no rules yet; see [`Responder::set_rules`].
    pub fn new(cfg: ResponseConfig, dispatcher: Arc<Dispatcher>, docker_socket: PathBuf) -> Self {
        let rate = RateLimit::per_minute(cfg.max_actions_per_minute);
        Responder {
            cfg,
            ruleset: Arc::new(Ruleset::default()),
            plans: Plans::new(),
            dispatcher,
            docker_socket,
            own_pid: std::process::id(),
            rate,
            taken: HashMap::new(),
            kernel: None,
            reported: 0,
            counts: Arc::default(),
        }
    }

    /// The counts of actions taken so far (and taken later).
    pub fn counts(&self) -> Arc<ActionCounts> {
        self.counts.clone()
    }

    /// Starts the in-kernel kill fast path for the current rules' kill rules.
    pub fn attach_kernel(&mut self, handles: super::kernel::KernelHandles) {
        let plan = super::kernel::KernelPlan::new(self.ruleset.clone(), &self.plans, &self.cfg);
        self.kernel = super::kernel::KernelKill::start(handles, plan, self.cfg.protected_names());
    }

    /// Swaps the rules and their plans (at start and on a reload), in the
    /// kernel too once it is attached.
    /// Actions that cannot run here, with the reason (the privilege check's,
    /// again on each reload).
    pub fn set_unavailable(&mut self, unavailable: std::collections::BTreeMap<&'static str, String>) {
        self.cfg.unavailable = unavailable;
    }

    pub fn set_rules(&mut self, ruleset: Arc<Ruleset>, plans: Plans) {
        if let Some(k) = &self.kernel {
            k.set_plan(super::kernel::KernelPlan::new(ruleset.clone(), &plans, &self.cfg));
        }
        self.ruleset = ruleset;
        self.plans = plans;
    }

    /// The plans in force (by rule name).
    pub fn plans(&self) -> &Plans {
        &self.plans
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
        if let ActionKind::DenySyscall { errno, backstop } = action {
            // The seccomp agent answers before the syscall runs; what the
            // sensor reports after it is either that failure, or a success
            // the agent did not see or was fooled about: the backstop's case.
            if let Some(r) = ev.ret.filter(|r| *r < 0) {
                let by = if r == -(errno as i64) { " (as the seccomp agent answers)" } else { "" };
                return Outcome::Skipped(format!("the syscall failed with errno {}{by}", -r));
            }
            if !backstop {
                return Outcome::Skipped("the syscall succeeded: backstop off".into());
            }
            return self.act(ActionKind::Kill { process_group: false }, plan, ev);
        }
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
        let whole_container = !matches!(action, ActionKind::Kill { .. });
        // Container-wide events (netstat windows, flows, packet drops) carry
        // no process (pid 0): only the container can be acted on.
        let no_process = ev.process.pid == 0;
        if no_process && !whole_container {
            return Outcome::Refused("the event has no process (a container-wide event)".into());
        }
        if !no_process {
            if let Some(why) = protected(ev, &self.cfg, self.own_pid) {
                return Outcome::Refused(why);
            }
        }
        let container = ev.container.clone();
        if whole_container {
            let Some(c) = &container else { return Outcome::Refused("not in a container".into()) };
            // Once per container and action: a storm of matches freezes once.
            if self.taken.contains_key(&(action.name(), c.id.clone())) && action != ActionKind::Deny {
                return Outcome::Skipped("already done for this container".into());
            }
        }
        if self.cfg.dry_run || plan.dry_run {
            // Say what would have been done where that is more than the
            // action's name: the limits a rate limit would have set.
            return Outcome::DryRun(match action {
                ActionKind::Ratelimit(rate) => {
                    format!("dry run: nothing done (would rate limit in the kernel: {})", rate.describe())
                }
                _ => "dry run: nothing done".into(),
            });
        }
        if let Some(why) = self.cfg.unavailable.get(action.name()) {
            return Outcome::Skipped(format!("unavailable: {why}"));
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
            ActionKind::DenySyscall { .. } => Outcome::Skipped("answered by the seccomp agent".into()),
            ActionKind::Ratelimit(rate) => {
                let c = container.expect("checked above");
                match crate::NetPolicyStore::new(crate::StoreConfig::default()).limit_rate_of(&c, rate) {
                    Ok(_) => Outcome::Done(format!("rate limited in the kernel: {}", rate.describe())),
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            }
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
        let counts = self.counts.clone();
        let socket = self.docker_socket.clone();
        let grace = Duration::from_secs(self.cfg.stop_grace_secs);
        let ev = ev.clone();
        tokio::spawn(async move {
            let outcome = match action {
                ActionKind::Freeze => match crate::freeze(&c, &crate::FreezeOptions::default()).await {
                    Ok(m) => Outcome::Done(format!("frozen ({})", m.as_str())),
                    Err(e) => Outcome::Failed(e.to_string()),
                },
                ActionKind::Stop => match crate::stop(&c, grace, &socket).await {
                    Ok(()) => Outcome::Done("stopped".into()),
                    Err(e) => Outcome::Failed(e.to_string()),
                },
                ActionKind::Isolate => match tokio::task::spawn_blocking(move || crate::isolate(&c)).await {
                    Ok(Ok(_)) => Outcome::Done("isolated from the network".into()),
                    Ok(Err(e)) => Outcome::Failed(e.to_string()),
                    Err(e) => Outcome::Failed(e.to_string()),
                },
                _ => return,
            };
            counts.record(action, &outcome);
            dispatcher.emit(action_alert(action, "", Priority::Warning, &ev, &outcome));
        });
    }

    fn report(&mut self, action: ActionKind, rule: &CompiledRule, ev: &Event, outcome: &Outcome) {
        if matches!(outcome, Outcome::Started) {
            return; // reported by the task when it ends
        }
        self.reported += 1;
        self.counts.record(action, outcome);
        self.dispatcher.emit(action_alert(action, &rule.name, rule.priority, ev, outcome));
    }
}

/// What came of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    Failed(String),
    DryRun(String),
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
            Outcome::DryRun(_) => "dry_run",
            Outcome::Refused(_) => "refused",
            Outcome::Skipped(_) => "skipped",
            Outcome::Started => "started",
        }
    }

    fn detail(&self) -> &str {
        match self {
            Outcome::Done(d)
            | Outcome::Failed(d)
            | Outcome::DryRun(d)
            | Outcome::Refused(d)
            | Outcome::Skipped(d) => d,
            Outcome::Started => "",
        }
    }
}

/// The alert reporting an action and its outcome (also the seccomp agent's
/// denials).
pub fn action_alert(
    action: ActionKind,
    rule: &str,
    priority: Priority,
    ev: &Event,
    outcome: &Outcome,
) -> Alert {
    let target = match (&ev.container, action) {
        (_, ActionKind::Kill { process_group: true }) => format!("process group of pid {}", ev.process.pid),
        (_, ActionKind::Kill { .. } | ActionKind::DenySyscall { .. }) => {
            format!("pid {} ({})", ev.process.pid, ev.process.comm)
        }
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
    let entry = policy::Entry {
        cidr: policy::Cidr { addr: ip, len: if ip.is_ipv4() { 32 } else { 128 } },
        ports: vec![policy::PortRange::single(port)],
        protocol: policy::Protocol::Any,
        comment: Some("added by a rule's deny action".into()),
    };
    match crate::NetPolicyStore::new(crate::StoreConfig::default()).add_deny(c, entry) {
        Ok(_) => Outcome::Done(format!("{ip} port {port} denied in the kernel from now on")),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}
