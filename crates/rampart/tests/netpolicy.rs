//! Network policy, isolation and freezer against real containers: the kernel
//! denies (EPERM) what the policy forbids, isolation cuts established
//! connections, enforcement survives the CLI exiting and follows a container
//! across restarts, denials arrive as `netdeny` events and alerts, freezing
//! stops progress. Needs root and dockerd; fails, never skips, without them.
//!
//! Every test has its own policy store and BPF pin directory (passed to every
//! rampart it starts through RAMPART_NETPOLICY_DIR / RAMPART_NETPOLICY_PIN), so
//! tests run in parallel without sharing kernel state or the denial ring.
//! Network: the test's own containers on the default bridge, and loopback.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::thread;
use std::time::Duration;

fn ip_of(c: &Container) -> String {
    let ip = docker_ok(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", &c.name]);
    assert!(!ip.is_empty(), "container {} has no bridge address", c.name);
    ip
}

fn pid_of(c: &Container) -> u32 {
    docker_ok(&["inspect", "--format", "{{.State.Pid}}", &c.name]).parse().expect("pid")
}

/// `docker exec NAME rtest ARGS...`: (succeeded, output).
fn rtest(c: &Container, args: &[&str]) -> (bool, String) {
    let mut exec = docker_cmd();
    exec.args(["exec", c.name.as_str()]);
    rtest_through(exec, args)
}

fn assert_allowed(c: &Container, args: &[&str]) {
    assert_rtest_ok(&format!("{args:?} in {}", c.name), rtest(c, args));
}

fn assert_eperm(c: &Container, args: &[&str]) {
    assert_rtest_eperm(&format!("{args:?} in {}", c.name), rtest(c, args));
}

fn is_netdeny(ev: &Value, id: &str, op: &str, port: u64) -> bool {
    is_type(ev, "netdeny")
        && in_container(ev, id)
        && ev["args"]["op"] == op
        && ev["args"]["addr"]["port"] == port
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn egress_policy_allows_one_port_and_denials_are_events() {
    preflight();
    let np = Np::new("np-egress");
    // Two listeners, so a refused connect would say ECONNREFUSED, not EPERM.
    let c = Container::sh("np-egress", &[], "rtest tcp-echo 7001 & exec rtest tcp-echo 7000");
    let ip = ip_of(&c);
    wait_until("echo servers", Duration::from_secs(10), || rtest(&c, &["tcp-connect", &ip, "7001"]).0);

    let mut agent = np.events_agent(&["--container", &c.name]);
    let policy = np.write_policy(
        "egress",
        &format!(
            "egress:\n  default: deny\n  allow:\n    - {{cidr: {ip}/32, ports: [7000], protocol: tcp}}\n  deny:\n    - {{cidr: 10.0.0.0/8, comment: no internal networks}}\ningress:\n  bind: {{default: deny, allow_ports: [8080]}}\n"
        ),
    );
    let out = np.ok(&["netpolicy", "apply", "--container", &c.name, "-f", policy.to_str().unwrap()]);
    assert!(out.contains("enforced on cgroup"), "{out}");

    // The CLI has exited: the pinned programs enforce on.
    assert_allowed(&c, &["tcp-connect", &ip, "7000"]);
    assert_eperm(&c, &["tcp-connect", &ip, "7001"]);
    assert_eperm(&c, &["udp-send", &ip, "7000"]); // the allow entry is tcp only
    assert_eperm(&c, &["udp-send", "10.1.2.3", "53"]);
    assert_allowed(&c, &["tcp-connect", "127.0.0.1", "7001"]); // own loopback
    assert_allowed(&c, &["bind-port", "8080"]);
    assert_eperm(&c, &["bind-port", "9090"]);
    assert_allowed(&c, &["bind-port", "0"]); // ephemeral

    let ev = agent.expect("netdeny connect to port 7001", |e| is_netdeny(e, &c.id, "connect", 7001));
    assert_eq!(ev["args"]["entry"], "egress.default", "{ev}");
    assert_eq!(ev["args"]["proto"], "tcp", "{ev}");
    assert_eq!(ev["args"]["addr"]["ip"], ip.as_str(), "{ev}");
    assert_eq!(ev["ret"], -1, "{ev}");
    assert_eq!(ev["process"]["comm"], "rtest", "{ev}");
    assert!(ev["process"]["pid"].as_u64().unwrap_or(0) > 0, "{ev}");
    assert_eq!(container_name(&ev), c.name, "{ev}");
    let ev = agent.expect("netdeny UDP send to 10.1.2.3:53", |e| is_netdeny(e, &c.id, "sendmsg", 53));
    assert_eq!(ev["args"]["entry"], "egress.deny[0]", "{ev}");
    assert_eq!(ev["args"]["entry_detail"], "10.0.0.0/8", "{ev}");
    assert_eq!(ev["args"]["proto"], "udp", "{ev}");
    let ev = agent.expect("netdeny UDP send to port 7000", |e| is_netdeny(e, &c.id, "sendmsg", 7000));
    assert_eq!(ev["args"]["entry"], "egress.default", "{ev}");
    let ev = agent.expect("netdeny bind 9090", |e| is_netdeny(e, &c.id, "bind", 9090));
    assert_eq!(ev["args"]["entry"], "ingress.bind.default", "{ev}");
    agent.poll();
    let allowed: Vec<&Value> = agent
        .events
        .iter()
        .filter(|e| {
            is_type(e, "netdeny") && [7000u64, 8080, 0].iter().any(|p| e["args"]["addr"]["port"] == *p)
        })
        .filter(|e| e["args"]["op"] != "sendmsg")
        .collect();
    assert!(allowed.is_empty(), "allowed operations were reported as denied: {allowed:?}");

    let st = np.show(&c.name);
    assert_eq!(st["attached_hooks"], 8, "{st}");
    assert!(st["denied"]["connect"].as_u64().unwrap() >= 1, "{st}");
    assert!(st["denied"]["sendmsg"].as_u64().unwrap() >= 2, "{st}");
    assert!(st["denied"]["bind"].as_u64().unwrap() >= 1, "{st}");
    agent.stop();
}

/// rtest's errno, or 0 when it succeeded.
fn errno_of(c: &Container, args: &[&str]) -> String {
    let (ok, out) = rtest(c, args);
    if ok {
        "0".into()
    } else {
        kv(&out, "errno").unwrap_or_else(|| panic!("no errno in {out}"))
    }
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn ipv6_v4_mapped_and_loopback_through_the_policy() {
    preflight();
    let np = Np::new("np-v6");
    let c = Container::run("np-v6", &[], &["sleep", "300"]);
    // Loopback goes through the rules; only ::1 port 7000 is allowed.
    let policy = np.write_policy(
        "v6",
        "loopback: policy\negress:\n  default: deny\n  allow:\n    - {cidr: \"::1\", ports: [7000]}\n",
    );
    np.ok(&["netpolicy", "apply", "--container", &c.name, "-f", policy.to_str().unwrap()]);
    assert_eq!(errno_of(&c, &["tcp-connect", "::1", "7001"]), "1", "::1 port 7001 is not allowed");
    // Allowed: whatever happens next is the network's answer, not EPERM.
    assert_ne!(errno_of(&c, &["tcp-connect", "::1", "7000"]), "1", "::1 port 7000 is allowed");
    // A v4-mapped destination is IPv4 127.0.0.1, which no entry allows.
    assert_eq!(errno_of(&c, &["tcp-connect", "::ffff:127.0.0.1", "7000"]), "1");
    assert_eq!(errno_of(&c, &["tcp-connect", "127.0.0.1", "7000"]), "1");
    assert_eq!(errno_of(&c, &["udp-send", "::1", "53"]), "1");
    // Without the policy, the same loopback connect is only refused.
    np.ok(&["netpolicy", "remove", "--container", &c.name]);
    assert_eq!(errno_of(&c, &["tcp-connect", "127.0.0.1", "7000"]), "111");
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn denials_raise_the_default_alert() {
    preflight();
    let np = Np::new("np-alert");
    let c = Container::run("np-alert", &[], &["sleep", "300"]);
    let policy = np.write_policy("deny-all", "egress: {default: deny}\n");
    np.ok(&["netpolicy", "apply", "--container", &c.name, "-f", policy.to_str().unwrap()]);
    let mut agent = Agent::spawn_env(vec!["run".into(), "--json".into()], StdoutMode::Parse, &np.env());
    assert_eperm(&c, &["tcp-connect", "192.0.2.1", "443"]);
    let alert = agent.expect("the network policy alert", |v| {
        is_alert_of(v, "Connection denied by network policy", &c.name)
    });
    assert_eq!(alert_priority(&alert), "Warning", "{alert}");
    let out = alert["output"].as_str().unwrap_or("");
    assert!(out.contains("192.0.2.1:443") && out.contains("egress.default"), "{out}");
    assert_eq!(alert["output_fields"]["proc.name"], "rtest", "{alert}");
    // Isolated: the same attempt is isolation's, at a lower priority.
    np.ok(&["isolate", "--container", &c.name]);
    assert_eperm(&c, &["tcp-connect", "192.0.2.1", "443"]);
    let alert = agent
        .expect("the isolation alert", |v| is_alert_of(v, "Traffic blocked by container isolation", &c.name));
    assert_eq!(alert_priority(&alert), "Notice", "{alert}");
    assert!(alert["output"].as_str().unwrap_or("").contains("192.0.2.1:443"), "{alert}");
    agent.stop();
}

/// Lines of the chat log (`ok N` / `stall N`) after the first `skip`.
fn chat_lines(c: &Container, skip: usize) -> Vec<String> {
    c.logs()
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("stall "))
        .skip(skip)
        .map(String::from)
        .collect()
}

fn chat_len(c: &Container) -> usize {
    chat_lines(c, 0).len()
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn isolation_cuts_established_connections_and_release_restores() {
    preflight();
    let np = Np::new("np-isolate");
    let server = Container::run("np-iso-srv", &[], &["rtest", "tcp-echo", "7000"]);
    let sip = ip_of(&server);
    wait_until("the echo server", Duration::from_secs(10), || server.logs().contains("echo-listening"));
    // The client chats with the server over one long-lived connection; it also
    // serves, for traffic towards it.
    let client =
        Container::sh("np-iso-cli", &[], &format!("rtest tcp-echo 7001 & exec rtest tcp-chat {sip} 7000"));
    let cip = ip_of(&client);
    wait_until("the chat flowing", Duration::from_secs(10), || {
        chat_lines(&client, 0).iter().filter(|l| l.starts_with("ok ")).count() >= 3
    });
    // And a chat from the server towards the client's own server.
    let (ok, out) = {
        let o = docker(&["exec", "-d", &server.name, RTEST, "tcp-chat", &cip, "7001"]);
        (o.status.success(), String::from_utf8_lossy(&o.stderr).to_string())
    };
    assert!(ok, "{out}");
    thread::sleep(Duration::from_millis(500));

    let out = np.ok(&["isolate", "--container", &client.name]);
    assert!(out.contains("isolation enforced"), "{out}");
    // Give in-flight echoes a moment, then nothing may get through.
    thread::sleep(Duration::from_secs(1));
    let mark = chat_len(&client);
    thread::sleep(Duration::from_secs(3));
    let during = chat_lines(&client, mark);
    assert!(during.len() >= 5, "the chat should keep trying: {during:?}");
    assert!(
        during.iter().all(|l| l.starts_with("stall ")),
        "data flowed on the established connection while isolated: {during:?}"
    );
    assert_eperm(&client, &["tcp-connect", &sip, "7000"]);
    assert_eperm(&client, &["udp-send", &sip, "53"]);
    assert_allowed(&client, &["connect-local"]); // the container's own loopback stays
    let st = np.show(&client.name);
    assert_eq!(st["record"]["isolated"], true, "{st}");
    assert!(st["denied"]["egress"].as_u64().unwrap() > 0, "no egress packet dropped: {st}");
    assert!(st["denied"]["ingress"].as_u64().unwrap() > 0, "no ingress packet dropped: {st}");

    let out = np.ok(&["isolate", "--release", "--container", &client.name]);
    assert!(out.contains("detached"), "{out}");
    let mark = chat_len(&client);
    // TCP retransmits with backoff: the chat recovers within seconds.
    wait_until("the chat flowing again", Duration::from_secs(30), || {
        chat_lines(&client, mark).iter().any(|l| l.starts_with("ok "))
    });
    assert_allowed(&client, &["tcp-connect", &sip, "7000"]);
}

/// The cgroup id of a running container's init process.
fn cgroup_id_of(c: &Container) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let pid = pid_of(c);
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = text.lines().find_map(|l| l.strip_prefix("0::")).expect("cgroup v2 line");
    std::fs::metadata(Path::new("/sys/fs/cgroup/unified").join(rel.trim_start_matches('/'))).unwrap().ino()
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn policy_survives_cli_exit_follows_restarts_and_remove_detaches() {
    preflight();
    let np = Np::new("np-restart");
    let c = Container::sh("np-restart", &[], "rtest tcp-echo 7001 & exec rtest tcp-echo 7000");
    let ip = ip_of(&c);
    wait_until("echo servers", Duration::from_secs(10), || rtest(&c, &["tcp-connect", &ip, "7001"]).0);
    // By port, not address: the container may get another address on restart.
    let policy = np
        .write_policy("port", "egress:\n  default: deny\n  allow:\n    - {cidr: 0.0.0.0/0, ports: [7000]}\n");
    np.ok(&["netpolicy", "apply", "--container", &c.name, "-f", policy.to_str().unwrap()]);
    assert_eperm(&c, &["tcp-connect", &ip, "7001"]);
    let before = cgroup_id_of(&c);

    // A restart gives the container a new cgroup: nothing is attached there
    // until a reconcile.
    docker_ok(&["restart", "-t", "1", &c.name]);
    let after = cgroup_id_of(&c);
    assert_ne!(before, after, "docker restart kept the cgroup");
    let ip = ip_of(&c);
    wait_until("echo servers after restart", Duration::from_secs(10), || {
        rtest(&c, &["tcp-connect", &ip, "7001"]).0
    });
    let out = np.ok(&["netpolicy", "reconcile"]);
    assert!(
        out.contains(&format!("(id {after})")),
        "reconcile did not enforce on the new cgroup {after}:\n{out}"
    );
    assert!(
        out.contains(&format!("cgroup {before}: detached"))
            || !np.pin.join("links").read_dir().unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{before}_"))),
        "{out}"
    );
    assert_eperm(&c, &["tcp-connect", &ip, "7001"]);
    assert_allowed(&c, &["tcp-connect", &ip, "7000"]);

    // The agent re-applies by itself when the container starts again.
    let agent = np.events_agent(&["--container", &c.name]);
    docker_ok(&["restart", "-t", "1", &c.name]);
    let third = cgroup_id_of(&c);
    let ip = ip_of(&c);
    wait_until("the agent to enforce on the restarted container", Duration::from_secs(20), || {
        let (ok, out) = rtest(&c, &["tcp-connect", &ip, "7001"]);
        !ok && kv(&out, "errno").as_deref() == Some("1")
    });
    let st = np.show(&c.name);
    assert_eq!(st["cgroup_id"], third, "{st}");
    assert_eq!(st["attached_hooks"], 8, "{st}");
    agent.stop();

    // remove: detached, and traffic flows again.
    let out = np.ok(&["netpolicy", "remove", "--container", &c.name]);
    assert!(out.contains("detached"), "{out}");
    assert_allowed(&c, &["tcp-connect", &ip, "7001"]);
    let links: Vec<_> = np.pin.join("links").read_dir().unwrap().collect();
    assert!(links.is_empty(), "links left after remove: {links:?}");
    let o = np.cli(&["netpolicy", "show", "--container", &c.name]);
    assert!(!o.status.success(), "show of a removed policy should fail");
}

fn cgroup_file(c: &Container, file: &str) -> String {
    let pid = pid_of(c);
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = text.lines().find_map(|l| l.strip_prefix("0::")).expect("cgroup v2 line");
    std::fs::read_to_string(Path::new("/sys/fs/cgroup/unified").join(rel.trim_start_matches('/')).join(file))
        .unwrap()
}

fn v1_freezer_state(c: &Container) -> String {
    let pid = pid_of(c);
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = text
        .lines()
        .find_map(|l| l.split_once(":freezer:").map(|(_, p)| p.to_string()))
        .expect("a v1 freezer line");
    std::fs::read_to_string(
        Path::new("/sys/fs/cgroup/freezer").join(rel.trim_start_matches('/')).join("freezer.state"),
    )
    .unwrap()
    .trim()
    .to_string()
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn freeze_stops_progress_and_unfreeze_resumes() {
    preflight();
    let np = Np::new("np-freeze");
    let c = Container::run("np-freeze", &[], &["rtest", "count", "/tmp/counter"]);
    let pid = pid_of(&c);
    wait_until("the counter", Duration::from_secs(10), || counter(pid) > 0);
    assert!(progresses(pid));

    // Default: the cgroup v2 freezer.
    let out = np.ok(&["freeze", "--container", &c.name]);
    assert!(out.contains("cgroup v2"), "{out}");
    assert!(cgroup_file(&c, "cgroup.events").contains("frozen 1"), "{}", cgroup_file(&c, "cgroup.events"));
    assert!(!progresses(pid), "the counter advanced while frozen");
    let out = np.ok(&["unfreeze", "--container", &c.name]);
    assert!(out.contains("thawed"), "{out}");
    assert!(cgroup_file(&c, "cgroup.events").contains("frozen 0"));
    assert!(progresses(pid), "the counter did not resume");

    // The cgroup v1 freezer (this host is hybrid).
    let out = np.ok(&["freeze", "--container", &c.name, "--mechanism", "cgroup-v1"]);
    assert!(out.contains("cgroup v1"), "{out}");
    assert_eq!(v1_freezer_state(&c), "FROZEN");
    assert!(!progresses(pid), "the counter advanced while frozen (v1)");
    np.ok(&["unfreeze", "--container", &c.name]);
    assert_eq!(v1_freezer_state(&c), "THAWED");
    assert!(progresses(pid));

    // The runtime's pause: docker shows it.
    let out = np.ok(&["freeze", "--container", &c.name, "--mechanism", "runtime"]);
    assert!(out.contains("docker pause"), "{out}");
    assert_eq!(docker_ok(&["inspect", "--format", "{{.State.Paused}}", &c.name]), "true");
    assert!(!progresses(pid), "the counter advanced while paused");
    let out = np.ok(&["unfreeze", "--container", &c.name]);
    assert!(out.contains("docker pause"), "{out}");
    assert_eq!(docker_ok(&["inspect", "--format", "{{.State.Paused}}", &c.name]), "false");
    assert!(progresses(pid));
    let out = np.ok(&["unfreeze", "--container", &c.name]);
    assert!(out.contains("was not frozen"), "{out}");
}

#[test]
fn policy_errors_are_located_and_unknown_keys_refused() {
    let np = Np::new("np-errors");
    let bad = np.write_policy("bad", "egress:\n  default: deny\n  alow:\n    - {cidr: 10.0.0.0/8}\n");
    let o = np.cli(&["netpolicy", "apply", "--container", "no-such-container", "-f", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains(&format!("{}:3:3:", bad.display())) && err.contains("alow"), "{err}");
    let host_bits = np.write_policy("bits", "egress:\n  deny:\n    - cidr: 10.0.0.1/8\n");
    let o = np.cli(&["netpolicy", "check", "-f", host_bits.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains(&format!("{}:3:", host_bits.display())) && err.contains("10.0.0.0/8"), "{err}");
    let good = np.write_policy(
        "good",
        "egress:\n  default: deny\n  allow:\n    - {cidr: 10.0.0.0/8, ports: [\"8000-8100\"]}\n",
    );
    let out = np.ok(&["netpolicy", "check", "-f", good.to_str().unwrap()]);
    assert!(out.starts_with("ok: "), "{out}");
    // A missing container is an error naming it, and nothing is stored.
    let o = np.cli(&[
        "netpolicy",
        "apply",
        "--container",
        "rampart-no-such-container",
        "-f",
        good.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("rampart-no-such-container"));
    assert!(!np.store.read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".json")));
}
