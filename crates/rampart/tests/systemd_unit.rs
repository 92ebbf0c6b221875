//! deploy/systemd/rampart.service: systemd accepts it, and the agent does its
//! job with exactly the capabilities the unit grants, read from the unit file
//! (one source of truth). systemd is not PID 1 on the test machines, so the
//! capability set is applied with `setpriv`, as systemd would: root with this
//! bounding set (and ambient set), and the no_new_privs bit. The unit's other
//! sandboxing options are checked by `systemd-analyze verify` only.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd/rampart.service")
}

/// The values of `key=` in the unit's [Service] section, split on spaces.
fn unit_list(unit: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    let lines: Vec<&str> = unit.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(lines.len(), 1, "exactly one {key}= line in the unit");
    lines[0][prefix.len()..].split_whitespace().map(str::to_string).collect()
}

/// `CAP_BPF CAP_KILL` -> `-all,+bpf,+kill` (setpriv's syntax).
fn setpriv_caps(caps: &[String]) -> String {
    let mut s = "-all".to_string();
    for c in caps {
        let name = c.strip_prefix("CAP_").unwrap_or_else(|| panic!("{c}: not a CAP_ name"));
        s.push_str(&format!(",+{}", name.to_lowercase()));
    }
    s
}

/// The capability bits of `CapEff` in /proc/PID/status.
fn effective_caps(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:")).expect("CapEff").trim();
    u64::from_str_radix(hex, 16).unwrap()
}

/// A capability's number (linux/capability.h), by name.
fn cap_number(name: &str) -> u32 {
    model::names::CAPABILITIES.iter().position(|c| *c == name).unwrap_or_else(|| panic!("{name}: unknown"))
        as u32
}

#[test]
#[ignore = "privileged: needs systemd-analyze (scripts/setup.sh installs systemd)"]
fn systemd_analyze_verify_accepts_the_unit() {
    let dir = tempfile::tempdir().unwrap();
    // The unit as installed, with ExecStart pointing at the binary just built.
    let unit = std::fs::read_to_string(unit_path()).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/rampart run --config /etc/rampart/config.yaml"));
    let unit = unit.replace("/usr/local/bin/rampart", env!("CARGO_BIN_EXE_rampart"));
    let path = dir.path().join("rampart.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (scripts/setup.sh installs Debian's systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Lines about other units of this machine (not PID 1 here) are not ours.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("rampart.service")).collect();
    assert!(out.status.success() && ours.is_empty(), "systemd-analyze verify: {:?}\n{stderr}", out.status);

    // And it does refuse a broken unit (the check can fail).
    std::fs::write(&path, "[Service]\nExecStart=relative/path\nProtectSystem=bogus\n").unwrap();
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() || stderr.contains("rampart.service"), "a broken unit passed: {stderr}");
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn the_agent_works_with_exactly_the_units_capabilities() {
    preflight();
    let unit = std::fs::read_to_string(unit_path()).unwrap();
    let bounding = unit_list(&unit, "CapabilityBoundingSet");
    let ambient = unit_list(&unit, "AmbientCapabilities");
    assert_eq!(bounding, ambient, "the unit grants what it bounds, no more, no less");
    let caps = setpriv_caps(&bounding);
    let mut wrapper: Vec<String> =
        ["setpriv", "--bounding-set", &caps, "--inh-caps", &caps, "--ambient-caps", &caps]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let no_new_privs = unit_list(&unit, "NoNewPrivileges") == ["yes"];
    if no_new_privs {
        wrapper.push("--no-new-privs".into());
    }
    wrapper.push("--".into());
    let args = vec!["run".to_string(), "--json".to_string()];
    let mut agent = Agent::spawn_wrapped(&wrapper, args, StdoutMode::Parse, &[]);

    // It runs with the unit's set and nothing else.
    let want: u64 = bounding.iter().map(|c| 1u64 << cap_number(c)).sum();
    assert_eq!(effective_caps(agent.pid), want, "the agent's effective capabilities");
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.pid)).unwrap();
    assert_eq!(status.contains("NoNewPrivs:\t1"), no_new_privs, "NoNewPrivileges as the unit says");
    // Every BPF program loaded and attached.
    let stderr = agent.stderr_text();
    assert!(!stderr.contains("hook not attached"), "{stderr}");

    let c = Container::run(
        "unitcaps",
        &[],
        &["/usr/local/bin/rtest", "spawn", "/bin/sh", "-c", "echo spawned; true"],
    );
    let a = agent.expect("a shell in a container, detected", |v| {
        is_alert_of(v, "Shell spawned by non-shell program in container", &c.name)
    });
    assert_eq!(a["output_fields"]["proc.name"], "sh", "{a}");
    // MemoryDenyWriteExecute=yes refuses mappings both writable and
    // executable: the agent, BPF loaded and alerting, has none.
    assert_eq!(unit_list(&unit, "MemoryDenyWriteExecute"), ["yes"]);
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", agent.pid)).unwrap();
    let wx: Vec<&str> = maps
        .lines()
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|p| p.contains('w') && p.contains('x')))
        .collect();
    assert!(wx.is_empty(), "writable and executable mappings: {wx:?}");
    assert!(agent.is_running());
    agent.stop();
}
