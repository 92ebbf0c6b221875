//! The seccomp notify agent in `rampart run`, and its profile
//! (`rampart seccomp notify-profile`): deny rules (`{deny: {errno: ...}}`)
//! answered before the syscall runs (crates/respond/src/notify).

use agent::config::{AgentConfig, RulesConfig};
use agent::detect;
use anyhow::{Context, Result};
use respond::actions::{action_alert, ActionKind, Outcome, Plans};
use respond::notify::agent::{Lookup, NotifyAgent, NotifyConfig, OciState};
use respond::notify::{notify_profile, DenyRules};
use respond::ocihook::{starting_metadata, HookState, ANSWER_TIMEOUT};
use rules::Ruleset;
use runtime::ContainerRegistry;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The seccomp agent of `rampart run`: started when the rules deny
/// syscalls, given the new deny rules on each reload (started then if it was
/// not running); its alerts go to the dispatcher.
pub struct NotifyServer {
    socket: PathBuf,
    dry_run: bool,
    dispatcher: Arc<alerts::Dispatcher>,
    containers: ContainerRegistry,
    agent: Option<NotifyAgent>,
}

impl NotifyServer {
    pub fn new(
        cfg: &AgentConfig,
        socket: &Path,
        dispatcher: &Arc<alerts::Dispatcher>,
        containers: &ContainerRegistry,
    ) -> NotifyServer {
        NotifyServer {
            socket: socket.to_path_buf(),
            dry_run: cfg.response.dry_run,
            dispatcher: dispatcher.clone(),
            containers: containers.clone(),
            agent: None,
        }
    }

    /// Swaps in the deny rules of `ruleset` (listeners use them from their
    /// next notification). Fails only when the agent must start and cannot
    /// bind its socket; then nothing changed.
    pub fn apply(&mut self, ruleset: &Arc<Ruleset>, plans: &Plans) -> Result<()> {
        let rules = DenyRules::new(ruleset.clone(), plans, self.dry_run);
        for line in rules.describe() {
            eprintln!("rampart: {line}");
        }
        let names: Vec<&str> = rules.syscalls().iter().copied().collect();
        let names = names.join(", ");
        if let Some(agent) = &self.agent {
            agent.set_rules(rules);
            eprintln!("rampart: seccomp agent rules swapped (notify profile syscalls: {names})");
            return Ok(());
        }
        if rules.is_empty() {
            return Ok(());
        }
        let d = self.dispatcher.clone();
        let agent = NotifyAgent::start(NotifyConfig {
            socket: self.socket.clone(),
            rules,
            lookup: Some(starting_lookup(self.containers.clone())),
            on_deny: Box::new(move |x| {
                let action = ActionKind::DenySyscall { errno: x.errno, backstop: true };
                let outcome = Outcome::Done(format!("denied with errno {} by the seccomp agent", x.errno));
                d.emit(action_alert(action, &x.rule, x.priority, &x.event, &outcome));
            }),
        })
        .with_context(|| format!("seccomp agent socket {}", self.socket.display()))?;
        eprintln!("rampart: seccomp agent on {} (notify profile syscalls: {names})", self.socket.display());
        self.agent = Some(agent);
        Ok(())
    }
}

/// `rampart seccomp notify-profile`: the profile for containers whose
/// syscalls the loaded deny rules decide.
pub fn profile(rules: &RulesConfig, base: Option<&Path>, listener: &str) -> Result<String> {
    let loaded = match detect::load_rules(rules) {
        Ok(l) => l,
        Err(refused) => anyhow::bail!("{}", refused.0.join("\n")),
    };
    let deny = DenyRules::new(Arc::new(loaded.ruleset), &loaded.plans, false);
    for line in deny.describe() {
        eprintln!("{line}");
    }
    let base = base.map(seccomp::Profile::load).transpose()?;
    let p = notify_profile(deny.syscalls(), base, listener).map_err(anyhow::Error::msg)?;
    Ok(p.to_json_pretty())
}

/// The seccomp agent's view of a container runc hands it: the registry's,
/// or, for a container being started (runc connects before the entrypoint,
/// often before the runtime has reported it), its metadata read the way the
/// OCI hook reads it, so that deny rules scoped by image or name hold from
/// its first syscall. The listener thread waits meanwhile; the container's
/// notified syscalls wait in the kernel, they do not fail open.
fn starting_lookup(containers: ContainerRegistry) -> Lookup {
    let handle = tokio::runtime::Handle::try_current().ok();
    Box::new(move |st: &OciState| {
        let known = containers.get(&st.id);
        if known.as_ref().is_some_and(|c| c.has_metadata()) {
            return known;
        }
        let (Some(handle), Ok(pid)) = (&handle, u32::try_from(st.pid)) else { return known };
        let state = HookState { id: st.id.clone(), pid, bundle: st.bundle.clone() };
        let found =
            handle.block_on(tokio::time::timeout(ANSWER_TIMEOUT, starting_metadata(&state, &containers)));
        match found {
            Ok(Ok(c)) => Some(c),
            Ok(Err(e)) => {
                eprintln!("rampart: seccomp agent: container {}: {e}; rules scoped by metadata wait for the runtime", st.id);
                known
            }
            Err(_) => {
                eprintln!("rampart: seccomp agent: container {}: no runtime answered in time", st.id);
                known
            }
        }
    })
}
