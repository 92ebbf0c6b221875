//! The seccomp notify agent in `rampart run`, and its profile
//! (`rampart seccomp notify-profile`): deny rules (`{deny: {errno: ...}}`)
//! answered before the syscall runs (crates/respond/src/notify).

use agent::config::{AgentConfig, RulesConfig};
use agent::detect;
use anyhow::{Context, Result};
use respond::actions::{action_alert, ActionKind, Outcome, Plans};
use respond::notify::agent::{NotifyAgent, NotifyConfig};
use respond::notify::{notify_profile, DenyRules};
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
        let c = self.containers.clone();
        let agent = NotifyAgent::start(NotifyConfig {
            socket: self.socket.clone(),
            rules,
            lookup: Some(Box::new(move |id| c.get(id))),
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
