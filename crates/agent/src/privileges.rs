//! What the agent may do here: its effective capabilities and the host
//! mounts and namespaces it needs, checked at start (`rampart run`) and shown
//! by `rampart status`.
//!
//! A need of the core (the BPF sensor and seeing the host's processes and
//! cgroups) that is missing stops the agent with an error naming it; a need of
//! an optional feature turns that feature off with a warning, and the feature
//! reports why. The table is docs/ARCHITECTURE.md's "Privileges"; the figures
//! behind it were measured by running the agent in a container with one
//! capability or mount taken away at a time.

use serde::Serialize;
use std::path::Path;

/// Linux capability numbers (linux/capability.h).
pub mod cap {
    pub const KILL: u32 = 5;
    pub const NET_ADMIN: u32 = 12;
    pub const SYS_PTRACE: u32 = 19;
    pub const SYS_ADMIN: u32 = 21;
    pub const PERFMON: u32 = 38;
    pub const BPF: u32 = 39;
}

/// The initial PID namespace's inode number (PROC_PID_INIT_INO): a process
/// whose `/proc/self/ns/pid` names it shares the host's process IDs.
const HOST_PID_NS: &str = "pid:[4026531836]";

/// One thing the agent needs, and whether it has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Need {
    /// `CAP_BPF`, `/sys/kernel/tracing (tracefs)`, ...
    pub what: String,
    /// What needs it.
    pub feature: Feature,
    pub met: bool,
    /// How it was found missing (or where it was found).
    pub detail: String,
}

/// The agent's parts a privilege can switch off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Loading and attaching the eBPF programs: nothing works without it.
    Sensor,
    /// The host's processes and containers' cgroups: nothing is attributed without it.
    HostView,
    /// Network policy, `isolate` and `deny` actions (cgroup BPF programs).
    NetworkPolicy,
    /// `kill` actions on processes of any user.
    KillAction,
    /// Executable, working directory, environment and user names of
    /// processes read from /proc (those started before the agent).
    ProcessDetails,
}

impl Feature {
    pub fn name(self) -> &'static str {
        match self {
            Feature::Sensor => "sensor",
            Feature::HostView => "host_view",
            Feature::NetworkPolicy => "network_policy",
            Feature::KillAction => "kill_action",
            Feature::ProcessDetails => "process_details",
        }
    }

    /// The agent cannot run without it.
    pub fn is_core(self) -> bool {
        matches!(self, Feature::Sensor | Feature::HostView)
    }

    /// What the agent does when it is off.
    pub fn when_off(self) -> &'static str {
        match self {
            Feature::Sensor | Feature::HostView => "the agent does not start",
            Feature::NetworkPolicy => {
                "network policies are not enforced; isolate and deny actions are skipped and reported"
            }
            Feature::KillAction => "kill actions are skipped and reported (in-kernel kills still work)",
            Feature::ProcessDetails => {
                "processes started before the agent lack exe, cwd, environment and user name"
            }
        }
    }

    /// The rule actions that cannot run while the feature is off.
    pub fn actions(self) -> &'static [&'static str] {
        match self {
            Feature::KillAction => &["kill"],
            Feature::NetworkPolicy => &["isolate", "deny", "ratelimit"],
            _ => &[],
        }
    }

    pub const ALL: [Feature; 5] = [
        Feature::Sensor,
        Feature::HostView,
        Feature::NetworkPolicy,
        Feature::KillAction,
        Feature::ProcessDetails,
    ];
}

/// What was found at start.
#[derive(Debug, Clone, Serialize)]
pub struct Privileges {
    /// The effective capability mask (`CapEff` in /proc/self/status).
    pub cap_eff: u64,
    pub needs: Vec<Need>,
}

/// A feature that is off, with every unmet need that switched it off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disabled {
    pub feature: Feature,
    pub missing: Vec<String>,
    pub effect: &'static str,
}

impl Disabled {
    pub fn reason(&self) -> String {
        format!("{} missing: {}", self.missing.join(", "), self.effect)
    }
}

/// What the checks read from the system; tests give their own.
pub struct Observed<'a> {
    pub status: &'a str,
    pub mountinfo: &'a str,
    /// `/proc/self/ns/pid`'s link text.
    pub pid_ns: &'a str,
    pub btf_readable: bool,
    pub tracefs_events: bool,
    /// The network policy store directory (RAMPART_NETPOLICY_DIR or its
    /// default) can be written.
    pub store_writable: bool,
    pub store_dir: String,
}

impl Privileges {
    /// Reads this process's capabilities, mounts and PID namespace.
    pub fn probe() -> Privileges {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let status = read("/proc/self/status");
        let mountinfo = read("/proc/self/mountinfo");
        let pid_ns = std::fs::read_link("/proc/self/ns/pid")
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let store = respond::StoreConfig::default().dir;
        Privileges::check(&Observed {
            status: &status,
            mountinfo: &mountinfo,
            pid_ns: &pid_ns,
            btf_readable: std::fs::File::open("/sys/kernel/btf/vmlinux").is_ok(),
            tracefs_events: ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"]
                .iter()
                .any(|p| Path::new(p).is_dir()),
            store_writable: dir_writable(&store),
            store_dir: store.display().to_string(),
        })
    }

    /// The checks over what was observed (pure).
    pub fn check(o: &Observed) -> Privileges {
        let cap_eff = parse_cap_eff(o.status).unwrap_or(0);
        let has = |c: u32| cap_eff & (1u64 << c) != 0;
        let mut needs = Vec::new();
        let mut need = |what: &str, feature: Feature, met: bool, detail: String| {
            needs.push(Need { what: what.into(), feature, met, detail });
        };
        let cap_detail = |c: u32| {
            if has(c) {
                "effective".to_string()
            } else if matches!(c, cap::BPF | cap::PERFMON) && has(cap::SYS_ADMIN) {
                "through CAP_SYS_ADMIN".to_string()
            } else {
                "not in CapEff".to_string()
            }
        };
        // bpf_capable(): CAP_BPF, or CAP_SYS_ADMIN on kernels before 5.8.
        need("CAP_BPF", Feature::Sensor, has(cap::BPF) || has(cap::SYS_ADMIN), cap_detail(cap::BPF));
        // perfmon_capable(): attaching tracepoints, reading kernel memory.
        need(
            "CAP_PERFMON",
            Feature::Sensor,
            has(cap::PERFMON) || has(cap::SYS_ADMIN),
            cap_detail(cap::PERFMON),
        );
        need(
            "/sys/kernel/btf/vmlinux (kernel BTF)",
            Feature::Sensor,
            o.btf_readable,
            if o.btf_readable { "readable".into() } else { "not readable".into() },
        );
        // Tracepoint IDs come from tracefs; the sensor mounts it itself only
        // with CAP_SYS_ADMIN, which a container should not have.
        let tracefs = o.tracefs_events || has(cap::SYS_ADMIN);
        need(
            "/sys/kernel/tracing (tracefs)",
            Feature::Sensor,
            tracefs,
            if o.tracefs_events {
                "mounted".into()
            } else if tracefs {
                "not mounted; the sensor mounts it (CAP_SYS_ADMIN)".into()
            } else {
                "not mounted (mount the host's /sys/kernel/tracing)".into()
            },
        );
        let cgroup2 = runtime::cgroupfs::cgroup2_mount_from_mountinfo(o.mountinfo);
        need(
            "cgroup2 filesystem (the host's /sys/fs/cgroup)",
            Feature::HostView,
            cgroup2.is_some(),
            cgroup2.map(|p| p.display().to_string()).unwrap_or_else(|| "no cgroup2 mount".into()),
        );
        // What matters is that /proc shows the kernel's (global) pids: in the
        // host's namespace, or under a /proc of an outer namespace (NSpid
        // then lists one pid per level, as when a CI runner unshares the pid
        // namespace without remounting /proc).
        let levels = o
            .status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .map(|v| v.split_whitespace().count())
            .unwrap_or(1);
        let host_pid = o.pid_ns == HOST_PID_NS || levels > 1;
        need(
            "host PID namespace (hostPID, --pid=host)",
            Feature::HostView,
            host_pid,
            if o.pid_ns == HOST_PID_NS {
                "shared".into()
            } else if host_pid {
                format!("/proc of an outer namespace ({levels} levels in NSpid)")
            } else {
                format!("own namespace {} with its own /proc", o.pid_ns)
            },
        );
        need("CAP_NET_ADMIN", Feature::NetworkPolicy, has(cap::NET_ADMIN), cap_detail(cap::NET_ADMIN));
        let bpffs = mount_of_type(o.mountinfo, "bpf").is_some();
        need(
            "bpf filesystem (the host's /sys/fs/bpf)",
            Feature::NetworkPolicy,
            bpffs,
            mount_of_type(o.mountinfo, "bpf").unwrap_or_else(|| "no bpf mount".into()),
        );
        need(
            "writable policy store",
            Feature::NetworkPolicy,
            o.store_writable,
            format!("{} {}", o.store_dir, if o.store_writable { "writable" } else { "not writable" }),
        );
        need("CAP_KILL", Feature::KillAction, has(cap::KILL), cap_detail(cap::KILL));
        need("CAP_SYS_PTRACE", Feature::ProcessDetails, has(cap::SYS_PTRACE), cap_detail(cap::SYS_PTRACE));
        Privileges { cap_eff, needs }
    }

    /// Unmet needs of the core: the agent must not start.
    pub fn missing_core(&self) -> Vec<&Need> {
        self.needs.iter().filter(|n| !n.met && n.feature.is_core()).collect()
    }

    /// The optional features that are off, and why.
    pub fn disabled(&self) -> Vec<Disabled> {
        Feature::ALL
            .iter()
            .filter(|f| !f.is_core())
            .filter_map(|&feature| {
                let missing: Vec<String> = self
                    .needs
                    .iter()
                    .filter(|n| n.feature == feature && !n.met)
                    .map(|n| n.what.clone())
                    .collect();
                (!missing.is_empty()).then(|| Disabled { feature, missing, effect: feature.when_off() })
            })
            .collect()
    }

    #[cfg(test)]
    pub fn is_enabled(&self, feature: Feature) -> bool {
        !self.needs.iter().any(|n| n.feature == feature && !n.met)
    }

    /// The start-up error when the core lacks something, naming each need and
    /// what needs it.
    pub fn core_error(&self) -> Option<String> {
        let missing = self.missing_core();
        if missing.is_empty() {
            return None;
        }
        let list: Vec<String> = missing
            .iter()
            .map(|n| {
                let part = match n.feature {
                    Feature::Sensor => "the eBPF sensor",
                    _ => "seeing the host's processes and containers",
                };
                format!("{} ({}; needed by {part})", n.what, n.detail)
            })
            .collect();
        Some(format!("missing privileges: {}", list.join("; ")))
    }
}

/// The optional features as `/metrics` reports them: (name, on, why not).
pub fn feature_states(disabled: &[Disabled]) -> Vec<(&'static str, bool, String)> {
    Feature::ALL
        .iter()
        .filter(|f| !f.is_core())
        .map(|&f| {
            let why = disabled.iter().find(|d| d.feature == f).map(|d| d.reason()).unwrap_or_default();
            (f.name(), why.is_empty(), why)
        })
        .collect()
}

/// The rule actions the disabled features leave unavailable, with the reason.
pub fn unavailable_actions(disabled: &[Disabled]) -> std::collections::BTreeMap<&'static str, String> {
    disabled.iter().flat_map(|d| d.feature.actions().iter().map(move |a| (*a, d.reason()))).collect()
}

/// `CapEff` of a /proc/PID/status text.
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    u64::from_str_radix(hex, 16).ok()
}

/// The mount point of the first filesystem of type `fstype` in a mountinfo text.
fn mount_of_type(mountinfo: &str, fstype: &str) -> Option<String> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split_whitespace().next()? != fstype {
            return None;
        }
        left.split_whitespace().nth(4).map(str::to_string)
    })
}

/// Whether a file can be created in `dir` (created when missing, as the
/// policy store does).
fn dir_writable(dir: &Path) -> bool {
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    tempfile::tempfile_in(dir).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw
31 23 0:27 / /sys/fs/bpf rw - bpf bpf rw
32 23 0:12 / /sys/kernel/tracing rw - tracefs nodev rw
";

    fn observed<'a>(status: &'a str, mountinfo: &'a str, pid_ns: &'a str) -> Observed<'a> {
        Observed {
            status,
            mountinfo,
            pid_ns,
            btf_readable: true,
            tracefs_events: true,
            store_writable: true,
            store_dir: "/var/lib/rampart/netpolicy".into(),
        }
    }

    fn status(caps: &[u32]) -> String {
        let mask = caps.iter().fold(0u64, |m, c| m | 1 << c);
        format!(
            "Name:\trampart\nCapInh:\t0000000000000000\nCapEff:\t{mask:016x}\nCapBnd:\t000001ffffffffff\n"
        )
    }

    const LEAST: [u32; 5] = [cap::BPF, cap::PERFMON, cap::NET_ADMIN, cap::KILL, cap::SYS_PTRACE];

    #[test]
    fn the_documented_set_enables_everything() {
        let s = status(&LEAST);
        let p = Privileges::check(&observed(&s, MOUNTS, HOST_PID_NS));
        assert!(p.core_error().is_none(), "{:?}", p.core_error());
        assert!(p.disabled().is_empty(), "{:?}", p.disabled());
    }

    #[test]
    fn missing_bpf_is_a_core_error_naming_it() {
        let s = status(&[cap::PERFMON, cap::NET_ADMIN]);
        let p = Privileges::check(&observed(&s, MOUNTS, HOST_PID_NS));
        let e = p.core_error().expect("core error");
        assert!(e.contains("CAP_BPF") && e.contains("eBPF sensor"), "{e}");
        assert!(!e.contains("CAP_PERFMON"), "{e}");
    }

    #[test]
    fn sys_admin_stands_in_for_bpf_perfmon_and_tracefs() {
        let s = status(&[cap::SYS_ADMIN]);
        let mut o = observed(&s, MOUNTS, HOST_PID_NS);
        o.tracefs_events = false;
        assert!(Privileges::check(&o).core_error().is_none());
    }

    #[test]
    fn private_pid_namespace_and_no_cgroup2_are_core_errors() {
        let s = status(&LEAST);
        let p = Privileges::check(&observed(&s, "", "pid:[4026532180]"));
        let e = p.core_error().unwrap();
        assert!(e.contains("host PID namespace") && e.contains("cgroup2"), "{e}");
    }

    #[test]
    fn an_outer_namespaces_proc_is_the_host_view() {
        let s = status(&LEAST) + "NSpid:\t4242\t17\n";
        let p = Privileges::check(&observed(&s, MOUNTS, "pid:[4026532180]"));
        assert!(p.core_error().is_none(), "{:?}", p.core_error());
        let s = status(&LEAST) + "NSpid:\t1\n";
        assert!(Privileges::check(&observed(&s, MOUNTS, "pid:[4026532180]")).core_error().is_some());
    }

    #[test]
    fn optional_features_turn_off_with_their_reason() {
        let s = status(&[cap::BPF, cap::PERFMON, cap::SYS_PTRACE]);
        let p = Privileges::check(&observed(&s, MOUNTS, HOST_PID_NS));
        assert!(p.core_error().is_none());
        let off: Vec<Feature> = p.disabled().iter().map(|d| d.feature).collect();
        assert_eq!(off, vec![Feature::NetworkPolicy, Feature::KillAction]);
        assert!(
            p.disabled()[0].reason().starts_with("CAP_NET_ADMIN missing"),
            "{}",
            p.disabled()[0].reason()
        );
        assert!(!p.is_enabled(Feature::KillAction));
        assert!(p.is_enabled(Feature::ProcessDetails));
    }

    #[test]
    fn no_bpffs_turns_network_policy_off() {
        let s = status(&LEAST);
        let mounts = MOUNTS.lines().filter(|l| !l.contains(" bpf ")).collect::<Vec<_>>().join("\n");
        let p = Privileges::check(&observed(&s, &mounts, HOST_PID_NS));
        assert_eq!(p.disabled().len(), 1);
        assert_eq!(p.disabled()[0].missing, vec!["bpf filesystem (the host's /sys/fs/bpf)".to_string()]);
    }

    #[test]
    fn cap_eff_parses() {
        assert_eq!(parse_cap_eff("CapEff:\t000001fffeffffff\n"), Some(0x1fffeffffff));
        assert_eq!(parse_cap_eff("nothing"), None);
    }
}
