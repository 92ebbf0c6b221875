//! The guards every action passes before it runs: the protected list (rampart
//! itself, host PID 1, the container runtimes' processes, anything outside a
//! container unless `response.allow_host`), and a rate limit over all rules.

use model::Event;
use serde::Deserialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

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
    /// Actions the agent's privileges do not allow (action name -> why),
    /// found at start, never read from the file: they are skipped and reported.
    #[serde(skip)]
    pub unavailable: std::collections::BTreeMap<&'static str, String>,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        ResponseConfig {
            dry_run: false,
            max_actions_per_minute: 60,
            allow_host: false,
            protected_process_names: Vec::new(),
            stop_grace_secs: 10,
            unavailable: Default::default(),
        }
    }
}

impl ResponseConfig {
    /// The built-in protected names and the configured ones (the kernel's
    /// kill path skips them too).
    pub fn protected_names(&self) -> Vec<String> {
        PROTECTED_NAMES
            .iter()
            .map(|s| s.to_string())
            .chain(self.protected_process_names.iter().cloned())
            .collect()
    }
}

/// Processes of the container runtimes and of rampart itself.
pub const PROTECTED_NAMES: &[&str] = &[
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
#[derive(Debug)]
pub struct RateLimit {
    max: u32,
    recent: VecDeque<Instant>,
}

impl RateLimit {
    pub fn per_minute(max: u32) -> Self {
        RateLimit { max, recent: VecDeque::new() }
    }

    /// Takes a slot at `now`, if one is free.
    pub fn allow(&mut self, now: Instant) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::testing::event;

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
        assert!(custom.protected_names().iter().any(|n| n == "postgres"));
        assert!(custom.protected_names().iter().any(|n| n == "runc"));
    }

    #[test]
    fn rate_limit_window() {
        let mut r = RateLimit::per_minute(2);
        let t = Instant::now();
        assert!(r.allow(t) && r.allow(t));
        assert!(!r.allow(t + Duration::from_secs(30)));
        assert!(r.allow(t + Duration::from_secs(61)));
    }
}
