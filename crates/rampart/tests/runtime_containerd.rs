//! The agent on a host running plain containerd (`ctr`): containers in
//! non-default namespaces, one running before the agent starts (found by its
//! first list) and one started after it in a namespace created meanwhile (found
//! through containerd's events). An exec inside each must carry the container's
//! id, name, image, runtime and namespace. The commands that act on a
//! container (`freeze`, `netpolicy`, `isolate`, `record`) find ctr containers
//! by id or name label.
//!
//! Needs root, dockerd (the test image is saved from Docker) and containerd on
//! /run/containerd/containerd.sock (scripts/setup.sh); fails, never skips,
//! without them.

mod common;

use common::ctr::*;
use common::*;
use serde_json::Value;
use std::time::Duration;

fn assert_ctr_container(v: &Value, id: &str, name: &str, ns: &str) {
    let c = container_of(v).unwrap_or_else(|| panic!("no container: {v}"));
    assert_eq!(c["id"], id, "container.id: {v}");
    assert_eq!(c["name"], name, "container.name: {v}");
    assert_eq!(c["image"], CTR_IMAGE, "container.image: {v}");
    assert_eq!(c["runtime"], "containerd", "container.runtime: {v}");
    assert_eq!(c["runtime_namespace"], ns, "container.runtime_namespace: {v}");
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and containerd (scripts/test.sh runs it)"]
fn exec_in_ctr_containers_names_them() {
    preflight_containerd();
    // Before the agent: found by the agent's first list.
    let early = Namespace::new("ctrd-early");
    let early_id = format!("early-{}", std::process::id());
    let early_name = format!("nice-{early_id}");
    early.run(&early_id, &[&format!("nerdctl/name={early_name}"), "rampart.test=e2e"]);

    let mut agent = Agent::start(&[]);

    let mark = unique("ctrd-exec").replace("rampart-it-", "mark-");
    early.exec(&early_id, "e1", &[RTEST, "nop", &mark]);
    let ev = agent.expect(&format!("exec of `rtest nop {mark}` in ctr container {early_id}"), |e| {
        is_exec_with(e, &mark)
    });
    assert_ctr_container(&ev, &early_id, &early_name, &early.name);
    assert_eq!(container_of(&ev).unwrap()["labels"]["rampart.test"], "e2e", "labels: {ev}");

    // After the agent, in a namespace it has never seen: found through events.
    let late = Namespace::new("ctrd-late");
    let late_id = format!("late-{}", std::process::id());
    late.run(&late_id, &[]);
    let mark2 = unique("ctrd-exec2").replace("rampart-it-", "mark-");
    late.exec(&late_id, "e2", &[RTEST, "nop", &mark2]);
    let ev = agent.expect(&format!("exec of `rtest nop {mark2}` in ctr container {late_id}"), |e| {
        is_exec_with(e, &mark2)
    });
    // Without a name label, containerd's id is the name.
    assert_ctr_container(&ev, &late_id, &late_id, &late.name);
    agent.stop();
}

/// The response commands find a ctr container by its name label and act on
/// its cgroup (`/<namespace>/<id>`) in the kernel: `freeze` stops its
/// processes and `unfreeze` resumes them; under `netpolicy apply` a bind of a
/// forbidden port fails with EPERM and the denial is an event naming the
/// containerd container; `isolate` and its release are recorded in the store;
/// `netpolicy remove` detaches. (A ctr container has only loopback, which a
/// policy never filters, so binds are what it can be denied.)
#[test]
#[ignore = "privileged: needs root, BPF, dockerd and containerd (scripts/test.sh runs it)"]
fn response_commands_act_on_a_ctr_container() {
    preflight_containerd();
    let ns = Namespace::new("ctrd-respond");
    let np = Np::new("ctrd-respond");
    let id = format!("respond-{}", std::process::id());
    let name = format!("nice-{id}");
    ns.run_cmd(&id, &[&format!("nerdctl/name={name}")], &[RTEST, "count", "/tmp/counter"]);
    let pid = ns.pid(&id);
    wait_until("the counter", Duration::from_secs(10), || counter(pid) > 0);

    let out = np.ok(&["freeze", "--container", &name]);
    assert!(out.contains("frozen with the cgroup v2 freezer"), "{out}");
    assert!(!progresses(pid), "the ctr container's counter advanced while frozen");
    let out = np.ok(&["unfreeze", "--container", &name]);
    assert!(out.contains("thawed"), "{out}");
    assert!(progresses(pid), "the ctr container's counter did not resume");

    let mut agent = np.events_agent(&["--container", &name]);
    let policy = np.write_policy("ctr", "ingress:\n  bind: {default: deny, allow_ports: [8080]}\n");
    let out = np.ok(&["netpolicy", "apply", "--container", &name, "-f", policy.to_str().unwrap()]);
    assert!(out.contains(&format!("enforced on cgroup /{}/{id}", ns.name)), "{out}");
    assert_rtest_ok("bind of the allowed port", ns.rtest(&id, &["bind-port", "8080"]));
    assert_rtest_eperm("bind of another port", ns.rtest(&id, &["bind-port", "9090"]));
    let ev = agent.expect("netdeny of the bind of port 9090", |e| {
        is_type(e, "netdeny")
            && in_container(e, &id)
            && e["args"]["op"] == "bind"
            && e["args"]["addr"]["port"] == 9090
    });
    assert_ctr_container(&ev, &id, &name, &ns.name);
    assert_eq!(ev["args"]["entry"], "ingress.bind.default", "{ev}");

    np.ok(&["isolate", "--container", &name]);
    assert_eq!(np.show(&name)["record"]["isolated"], true);
    np.ok(&["isolate", "--release", "--container", &name]);
    assert_eq!(np.show(&name)["record"]["isolated"], false);

    let out = np.ok(&["netpolicy", "remove", "--container", &id]);
    assert!(out.contains("detached"), "{out}");
    assert_rtest_ok("bind of any port after remove", ns.rtest(&id, &["bind-port", "9090"]));
    agent.stop();
}

/// `rampart record --container` attaches to a ctr container found by id: the
/// recording names it and its runtime; containerd keeps no start configuration
/// rampart can replay, so the recording has none (verify needs `-- cmd`). (ctr gives a container no /etc/hostname; the
/// image's /etc/passwd is read instead.)
#[test]
#[ignore = "privileged: needs root, BPF, dockerd and containerd (scripts/test.sh runs it)"]
fn record_attaches_to_a_ctr_container() {
    preflight_containerd();
    let ns = Namespace::new("ctrd-record");
    let id = format!("record-{}", std::process::id());
    ns.run_cmd(&id, &[], &["sh", "-c", "while true; do cat /etc/passwd > /dev/null; sleep 0.3; done"]);
    let dir = std::env::temp_dir().join(unique("ctrd-record"));
    let rec = record_attached(&id, "4s", &dir);
    let recorded = &rec["containers"][0];
    assert_eq!(recorded["id"], id.as_str(), "{recorded}");
    assert_eq!(recorded["runtime"], "containerd", "{recorded}");
    assert_eq!(recorded["image"], CTR_IMAGE, "{recorded}");
    assert!(rec["run"].is_null(), "no run spec from containerd: {:#}", rec["run"]);
    assert_eq!(rec["files"]["/etc/passwd"]["read"], true, "{:#}", rec["files"]);
    let _ = std::fs::remove_dir_all(dir);
}
