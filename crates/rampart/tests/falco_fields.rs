//! Falco fields whose values the agent reads beyond the kernel's record, on a
//! real container: user and group names from the container's own passwd and
//! group files, the environment, session leader, capability sets on every
//! event, executable inode times, process duration and the container's
//! creation time. Real agent, real dockerd; fails without root.

mod common;

use common::*;
use std::time::Duration;

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn enriched_fields_have_values_on_a_real_container() {
    preflight();
    let dir = std::env::temp_dir().join(unique("fields"));
    std::fs::create_dir_all(&dir).unwrap();
    // The container's own users: the host has no uid 4242.
    std::fs::write(
        dir.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\nbad line\nfielduser:x:4242:4343:f:/home/fielduser:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("group"), "root:x:0:\nfieldgrp:x:4343:\n").unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "- rule: fields_probe\n  desc: d\n  condition: evt.type in (open, openat) and fd.name = /etc/hostname and user.uid = 4242\n  \
         output: \"probe user=%user.name home=%user.homedir group=%group.name caps=%thread.cap_effective \
         sname=%proc.sname leader=%proc.is_vpgid_leader dur=%proc.duration env=%proc.env[FIELDS_MARKER] \
         ctime=%proc.exe_ino.ctime start=%container.start_ts l4=%fd.l4proto raw=%fd.nameraw\"\n  priority: WARNING\n",
    )
    .unwrap();
    let mut agent = Agent::start_run(&["--no-default-rules", "--rules", rules.to_str().unwrap()]);
    let passwd = format!("{}:/etc/passwd:ro", dir.join("passwd").display());
    let group = format!("{}:/etc/group:ro", dir.join("group").display());
    let c = Container::sh(
        "fields",
        &["--user", "4242:4343", "-e", "FIELDS_MARKER=hello", "-v", &passwd, "-v", &group],
        // The shell itself opens the file (a builtin's redirection) and lives
        // on until the alert is read: what the agent reads at exec is read
        // while the process runs (a process gone before the agent handles its
        // exec has none), and an agent lagging behind the parallel suite must
        // still find it.
        "sleep 1; exec /bin/sh -c 'cd /etc && read x <../etc/./hostname; sleep 120'",
    );
    let alert = agent
        .wait_for(Duration::from_secs(30), |v| is_alert(v) && alert_rule(v) == "fields_probe")
        .unwrap_or_else(|| panic!("no alert; agent stderr:\n{}", agent.stderr_text()));
    drop(c);
    let f = &alert["output_fields"];
    assert_eq!(f["user.name"], "fielduser", "{alert}");
    assert_eq!(f["user.homedir"], "/home/fielduser", "{alert}");
    assert_eq!(f["group.name"], "fieldgrp", "{alert}");
    // uid 4242 has no capabilities: an empty set, not "no value"
    assert_eq!(f["thread.cap_effective"], "", "{alert}");
    // sh -c is the container's session leader (runc makes a new session)
    assert_eq!(f["proc.sname"], "sh", "{alert}");
    assert!(f["proc.is_vpgid_leader"].is_boolean(), "{alert}");
    assert!(f["proc.duration"].as_u64().is_some_and(|d| d < 30_000_000_000), "{alert}");
    assert_eq!(f["proc.env[FIELDS_MARKER]"], "hello", "{alert}");
    assert!(f["proc.exe_ino.ctime"].as_u64().is_some_and(|t| t > 1_000_000_000_000_000_000), "{alert}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let start = f["container.start_ts"].as_u64().unwrap_or_else(|| panic!("no container.start_ts: {alert}"));
    assert!(start <= now && now - start < 120_000_000_000, "{alert}");
    assert!(f["fd.l4proto"].is_null(), "a file has no l4 protocol: {alert}");
    // the path as the process passed it, next to the resolved fd.name
    assert_eq!(f["fd.nameraw"], "../etc/./hostname", "{alert}");
    agent.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Session, group, inheritable capabilities and the executable's inode times
/// come with the kernel's exec record: a process gone before the agent handles
/// its exec still has them, and the times are the file's own.
#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn exec_fields_of_a_process_gone_at_once_come_from_the_kernel() {
    preflight();
    let dir = std::env::temp_dir().join(unique("execfields"));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "- rule: exec_probe\n  desc: d\n  condition: evt.type = execve and proc.cmdline = \"cat /etc/hostname\" \
         and container.id != host\n  \
         output: \"probe c=%container.name ctime=%proc.exe_ino.ctime mtime=%proc.exe_ino.mtime sname=%proc.sname \
         capinh=%thread.cap_inheritable\"\n  priority: WARNING\n",
    )
    .unwrap();
    let mut agent = Agent::start_run(&["--no-default-rules", "--rules", rules.to_str().unwrap()]);
    // The container's first and only process: `cat` is gone in a millisecond.
    let c = Container::run("execfields", &[], &["cat", "/etc/hostname"]);
    c.wait_ok(Duration::from_secs(30));
    let alert = agent
        .wait_for(Duration::from_secs(20), |v| {
            is_alert(v)
                && alert_rule(v) == "exec_probe"
                && v["output_fields"]["container.name"] == c.name.as_str()
        })
        .unwrap_or_else(|| panic!("no alert; agent stderr:\n{}", agent.stderr_text()));
    let f = &alert["output_fields"];
    // busybox's own ctime and mtime, as stat in the same image sees them
    let stat = Container::run("execfields-stat", &[], &["stat", "-L", "-c", "%Z %Y", "/bin/cat"]);
    let seen = stat.wait_ok(Duration::from_secs(30));
    let secs: Vec<u64> = seen.split_whitespace().map(|s| s.parse().unwrap()).collect();
    assert_eq!(secs.len(), 2, "stat printed {seen:?}");
    let ctime = f["proc.exe_ino.ctime"].as_u64().unwrap_or_else(|| panic!("no ctime: {alert}"));
    let mtime = f["proc.exe_ino.mtime"].as_u64().unwrap_or_else(|| panic!("no mtime: {alert}"));
    assert_eq!((ctime / 1_000_000_000, mtime / 1_000_000_000), (secs[0], secs[1]), "{alert}");
    // runc makes the container's first process a session leader
    assert_eq!(f["proc.sname"], "cat", "{alert}");
    // root in a container: an empty inheritable set, which is a value
    assert_eq!(f["thread.cap_inheritable"], "", "{alert}");
    agent.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
