//! Per-container rate limits in the kernel (the network policy's `rate:`,
//! token buckets in bpf/netpolicy.bpf.c's cgroup skb programs), measured
//! with a real UDP flood: iperf3 between two containers on a Docker network
//! of the test's own, counting at the receiver (iperf3's own report of what
//! arrived). A limit holds delivery to within 10% of the limit, lifting it
//! restores the rate, and a malformed `rate:` is refused with file:line:col.

mod common;

use common::*;
use serde_json::Value;
use std::sync::Once;
use std::time::Duration;

const IPERF3_IMAGE: &str = "rampart-iperf3:latest";
/// Each flood: this long, small datagrams, far above any limit tested.
const SECONDS: &str = "3";

fn iperf3_image() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let script = repo_root().join("tests/image/iperf3.sh");
        let out = std::process::Command::new(&script).output().expect("run tests/image/iperf3.sh");
        assert!(
            out.status.success(),
            "building {IPERF3_IMAGE} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

struct Network(String);

impl Drop for Network {
    fn drop(&mut self) {
        let _ = docker(&["network", "rm", &self.0]);
    }
}

fn start(prefix: &str, net: &Network, cmd: &[&str]) -> Container {
    let name = unique(prefix);
    let mut args = vec!["run", "-d", "--name", &name, "--network", &net.0, IPERF3_IMAGE];
    args.extend_from_slice(cmd);
    let id = docker_ok(&args).trim().to_string();
    Container { name, id }
}

/// One UDP flood from `client` to `server`: (datagrams delivered, seconds).
fn flood(client: &Container, server: &Container) -> (u64, f64) {
    let args = [
        "exec",
        &client.name,
        "iperf3",
        "-u",
        "-c",
        &server.name,
        "-b",
        "40M",
        "-l",
        "64",
        "-t",
        SECONDS,
        "--json",
        "--connect-timeout",
        "5000",
    ];
    // The server may still be starting: retry the first connection.
    for attempt in 0.. {
        let out = docker(&args);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() {
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("iperf3 JSON: {e}:\n{text}"));
            let sum = &v["end"]["sum"];
            let sent = sum["packets"].as_u64().unwrap_or_else(|| panic!("no packets in {sum}"));
            let lost = sum["lost_packets"].as_u64().unwrap_or_else(|| panic!("no lost_packets in {sum}"));
            let secs = sum["seconds"].as_f64().unwrap_or_else(|| panic!("no seconds in {sum}"));
            eprintln!("iperf3: sent {sent}, lost {lost}, delivered {} in {secs:.2} s", sent - lost);
            return (sent.saturating_sub(lost), secs);
        }
        assert!(attempt < 10, "iperf3 failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(500));
    }
    unreachable!()
}

fn assert_held(what: &str, delivered: u64, secs: f64, limit: u64) {
    let want = limit as f64 * secs;
    let off = (delivered as f64 - want).abs() / want;
    eprintln!("{what}: delivered {delivered} in {secs:.2} s, limit {limit}/s: {:.1}% off", off * 100.0);
    assert!(
        off <= 0.10,
        "{what}: delivered {delivered} datagrams in {secs:.2} s, {limit}/s allows {want:.0}"
    );
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and iperf3"]
fn a_rate_limit_holds_a_udp_flood_and_lifting_it_restores_the_rate() {
    preflight();
    iperf3_image();
    let np = Np::new("np-rate");
    let net = Network(unique("ratenet"));
    docker_ok(&["network", "create", &net.0]);
    let server = start("iperf-srv", &net, &["iperf3", "-s"]);
    let client = start("iperf-cli", &net, &["sleep", "600"]);

    let (base, secs) = flood(&client, &server);
    let base_pps = base as f64 / secs;
    assert!(
        base_pps > 5000.0,
        "the unlimited flood delivered only {base_pps:.0}/s: too slow to test a limit"
    );

    // Ingress, from the command line: the server receives at most 1000/s.
    let out = np.ok(&["netpolicy", "rate", "--container", &server.name, "--ingress-pps", "1000"]);
    assert!(out.contains("ingress_pps=1000") && out.contains("enforced on cgroup"), "{out}");
    let (got, secs) = flood(&client, &server);
    assert_held("ingress 1000/s", got, secs, 1000);
    let show = np.show(&server.name);
    let dropped = show["denied"]["ingress"].as_u64().unwrap_or(0);
    assert!(dropped > 0, "no drops counted: {show:#}");

    // Lifted: back to the unlimited rate (within what a loaded machine gives).
    let out = np.ok(&["netpolicy", "rate", "--container", &server.name, "--clear"]);
    assert!(out.contains("rate: none"), "{out}");
    let (got, secs) = flood(&client, &server);
    let pps = got as f64 / secs;
    assert!(
        pps > base_pps * 0.5 && pps > 3000.0,
        "after --clear {pps:.0}/s, before any limit {base_pps:.0}/s"
    );

    // Egress, from a policy file: the client sends at most 2000/s (the rest
    // is dropped in its cgroup, before the wire).
    let policy = np.write_policy("rate", "egress:\n  default: allow\nrate:\n  egress_pps: 2000\n");
    np.ok(&["netpolicy", "apply", "--container", &client.name, "-f", policy.to_str().unwrap()]);
    let (got, secs) = flood(&client, &server);
    assert_held("egress 2000/s", got, secs, 2000);

    // A malformed rate is refused where it is, and the limit in force stays.
    let bad = np.write_policy("bad-rate", "egress:\n  default: allow\nrate:\n  egress_pps: lots\n");
    let o = np.cli(&["netpolicy", "apply", "--container", &client.name, "-f", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a malformed rate was accepted");
    assert!(err.contains(&format!("{}:4:", bad.display())) && err.contains("egress_pps"), "{err}");
    let o = np.cli(&["netpolicy", "check", "-f", bad.to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains(":4:"));
    let show = np.show(&client.name);
    assert_eq!(show["record"]["policy"]["rate"]["egress_pps"], 2000, "{show:#}");
    drop(client);
    drop(server);
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and iperf3"]
fn a_rule_action_rate_limits_the_flooding_container() {
    preflight();
    iperf3_image();
    let np = Np::new("np-rate-action");
    let net = Network(unique("ratenet"));
    docker_ok(&["network", "create", &net.0]);
    let server = start("iperf-srv", &net, &["iperf3", "-s"]);
    let client = start("iperf-flooder", &net, &["sleep", "600"]);
    let bulk = start("iperf-bulk", &net, &["sleep", "600"]);
    const RULE: &str = "UDP flood answered with a rate limit (ratelimit test)";
    let rules = std::env::temp_dir().join(format!("{}.yaml", unique("rate-rule")));
    std::fs::write(
        &rules,
        format!(
            "- rule: {RULE}\n  desc: a container floods UDP out\n  \
             condition: evt.type = netstat and netstat.over contains udp_flood_out and container.name = {}\n  \
             output: \"UDP flood out at %netstat.udp_pps_out/s (%container.name)\"\n  \
             priority: CRITICAL\n  actions: [{{ratelimit: {{egress_pps: 1000}}}}]\n",
            client.name
        ),
    )
    .expect("write rules");
    let args = ["run", "--json", "--rules", rules.to_str().unwrap()].map(String::from).to_vec();
    let mut agent = Agent::spawn_env(args, StdoutMode::Parse, &np.env());

    // The flood crosses sensor.flows.detect's UDP threshold (20000/s out):
    // the rule fires, and its action limits the container in the kernel.
    let _ = flood(&client, &server);
    let alert = agent.expect("the rule's alert", |v| is_alert_of(v, RULE, &client.name));
    eprintln!("{}", alert_brief(&alert));
    // The default rule saw the same flood.
    let udp = agent.expect("the default UDP flood alert", |v| {
        is_alert_of(v, "UDP flood involving container", &client.name)
    });
    eprintln!("{}", alert_brief(&udp));
    let done = agent.expect("the ratelimit action's report", |v| {
        is_alert(v) && v["output_fields"]["action"] == "ratelimit" && container_name(v) == client.name
    });
    assert_eq!(done["output_fields"]["outcome"], "done", "{done:#}");
    assert!(alert_brief(&done).contains("egress_pps=1000"), "{}", alert_brief(&done));

    // The next flood is held to the limit the action set.
    let (got, secs) = flood(&client, &server);
    assert_held("ratelimit action, egress 1000/s", got, secs, 1000);
    let show = np.show(&client.name);
    assert_eq!(show["record"]["policy"]["rate"]["egress_pps"], 1000, "{show:#}");

    // A bulk TCP transfer for 3 s from a third, unlimited container: not
    // ordinary traffic by design, the egress volume rule names the sender.
    let out = docker(&["exec", &bulk.name, "iperf3", "-c", &server.name, "-t", SECONDS, "--json"]);
    assert!(out.status.success(), "iperf3 TCP failed: {}", String::from_utf8_lossy(&out.stderr));
    let big = agent.expect("the egress volume alert about the sender", |v| {
        is_alert_of(v, "Large egress volume from container", &bulk.name)
    });
    eprintln!("{}", alert_brief(&big));
    agent.stop();
    let _ = std::fs::remove_file(&rules);
}
