//! The least capability set: what the recording shows the workload exercised.

use crate::recording::Recording;
use model::names::DOCKER_DEFAULT_CAPABILITIES;
use std::fmt::Write;

/// The capabilities a workload needs, and the same as Docker flags and as a
/// Kubernetes `securityContext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityProfile {
    /// Needed: checked and granted at least once (`CAP_` names, sorted).
    pub needed: Vec<String>,
    /// Checked but not needed: only ever denied (the workload went on without
    /// them), or granted only in probes that never refuse.
    pub denied_only: Vec<String>,
}

impl CapabilityProfile {
    pub fn from_recording(rec: &Recording) -> CapabilityProfile {
        let needed = rec.needed_capabilities();
        let denied_only =
            rec.capabilities.iter().filter(|(c, u)| !u.needed(c)).map(|(c, _)| c.clone()).collect();
        CapabilityProfile { needed, denied_only }
    }

    /// Names without the `CAP_` prefix, as Docker and Kubernetes spell them.
    pub fn short_names(&self) -> Vec<String> {
        self.needed.iter().map(|c| c.trim_start_matches("CAP_").to_string()).collect()
    }

    /// `--cap-drop ALL --cap-add NET_BIND_SERVICE ...` as separate arguments.
    pub fn docker_args(&self) -> Vec<String> {
        let mut args = vec!["--cap-drop".to_string(), "ALL".to_string()];
        for c in self.short_names() {
            args.push("--cap-add".into());
            args.push(c);
        }
        args
    }

    /// Needed capabilities Docker's default set lacks (the workload failed or
    /// ran with extra capabilities when recorded).
    pub fn beyond_docker_default(&self) -> Vec<String> {
        self.needed.iter().filter(|c| !DOCKER_DEFAULT_CAPABILITIES.contains(&c.as_str())).cloned().collect()
    }

    /// A Kubernetes container `securityContext` snippet.
    pub fn kubernetes_yaml(&self) -> String {
        let mut out = String::from(
            "# Container securityContext: drop every capability, add back what the recording saw used.\n",
        );
        out.push_str("securityContext:\n  capabilities:\n    drop: [\"ALL\"]\n");
        let names = self.short_names();
        if names.is_empty() {
            out.push_str("    add: []\n");
        } else {
            let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            let _ = writeln!(out, "    add: [{}]", quoted.join(", "));
        }
        out
    }

    /// The human summary written to `capabilities.txt`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Capabilities the workload used (checked and granted while recorded).");
        let _ = writeln!(out, "# Docker flags:");
        let _ = writeln!(out, "{}", self.docker_args().join(" "));
        let _ = writeln!(out, "needed: {}", list(&self.needed));
        let _ = writeln!(out, "checked but not needed (denied, or probed only): {}", list(&self.denied_only));
        let dropped: Vec<String> = DOCKER_DEFAULT_CAPABILITIES
            .iter()
            .filter(|c| !self.needed.iter().any(|n| n == *c))
            .map(|c| c.to_string())
            .collect();
        let _ = writeln!(out, "dropped from Docker's default set: {}", list(&dropped));
        out
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::CapabilityUse;

    #[test]
    fn needed_means_granted_and_flags_follow() {
        let mut rec = Recording::default();
        let used = |granted, denied, calls: &[&str]| CapabilityUse {
            granted,
            denied,
            granted_in: calls.iter().map(|s| s.to_string()).collect(),
        };
        rec.capabilities.insert("CAP_NET_BIND_SERVICE".into(), used(1, 0, &["bind"]));
        rec.capabilities.insert("CAP_SYS_ADMIN".into(), used(0, 3, &[]));
        rec.capabilities.insert("CAP_SETUID".into(), used(2, 1, &["setuid"]));
        // The overcommit probe on mmap is not a need; a mount is.
        rec.capabilities.insert("CAP_SYS_ADMIN".into(), used(4, 0, &["mmap", "brk", "-"]));
        let p = CapabilityProfile::from_recording(&rec);
        assert_eq!(p.needed, vec!["CAP_NET_BIND_SERVICE", "CAP_SETUID"]);
        assert_eq!(p.denied_only, vec!["CAP_SYS_ADMIN"]);
        rec.capabilities.insert("CAP_SYS_ADMIN".into(), used(5, 0, &["mmap", "mount"]));
        assert!(CapabilityProfile::from_recording(&rec).needed.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(p.docker_args().join(" "), "--cap-drop ALL --cap-add NET_BIND_SERVICE --cap-add SETUID");
        assert!(p.kubernetes_yaml().contains("add: [\"NET_BIND_SERVICE\", \"SETUID\"]"));
        assert!(p.beyond_docker_default().is_empty());
        assert!(p.summary().contains("dropped from Docker's default set: CAP_CHOWN"));
    }

    #[test]
    fn nothing_used_drops_everything() {
        let p = CapabilityProfile::from_recording(&Recording::default());
        assert_eq!(p.docker_args(), vec!["--cap-drop", "ALL"]);
        assert!(p.kubernetes_yaml().contains("add: []"));
    }
}
