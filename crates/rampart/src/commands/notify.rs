//! The seccomp notify agent in `rampart run`, and its profile
//! (`rampart seccomp notify-profile`): deny rules (`{deny: {errno: ...}}`)
//! answered before the syscall runs (crates/respond/src/notify).

use agent::config::{AgentConfig, RulesConfig};
use agent::detect;
use anyhow::{Context, Result};
use respond::actions::{action_alert, ActionKind, Outcome};
use respond::notify::agent::{NotifyAgent, NotifyConfig};
use respond::notify::{notify_profile, DenyRules};
use runtime::ContainerRegistry;
use std::path::Path;
use std::sync::Arc;

/// Starts the agent when the rules deny syscalls; its alerts go to the
/// dispatcher. The rules are loaded again here: the detector owns its copy.
pub fn start(
    cfg: &AgentConfig,
    socket: &Path,
    dispatcher: &Arc<alerts::Dispatcher>,
    containers: &ContainerRegistry,
) -> Result<Option<NotifyAgent>> {
    let loaded = detect::load_rules(&cfg.rules)?;
    let rules = DenyRules::new(Arc::new(loaded.ruleset), &loaded.plans, cfg.response.dry_run);
    for line in rules.describe() {
        eprintln!("rampart: {line}");
    }
    if rules.is_empty() {
        return Ok(None);
    }
    let names: Vec<&str> = rules.syscalls().iter().copied().collect();
    let d = dispatcher.clone();
    let c = containers.clone();
    let agent = NotifyAgent::start(NotifyConfig {
        socket: socket.to_path_buf(),
        rules,
        lookup: Some(Box::new(move |id| c.get(id))),
        on_deny: Box::new(move |x| {
            let action = ActionKind::DenySyscall { errno: x.errno, backstop: true };
            let outcome = Outcome::Done(format!("denied with errno {} by the seccomp agent", x.errno));
            d.emit(action_alert(action, &x.rule, x.priority, &x.event, &outcome));
        }),
    })
    .with_context(|| format!("seccomp agent socket {}", socket.display()))?;
    eprintln!(
        "rampart: seccomp agent on {} (notify profile syscalls: {})",
        socket.display(),
        names.join(", ")
    );
    Ok(Some(agent))
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
