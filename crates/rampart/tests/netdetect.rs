//! Scan and flood detection end to end: real attack tools (Debian's nmap and
//! hping3, image tests/image/netattack.sh) run in containers on a Docker
//! network of the test's own against a target container of the same
//! network; the agent (`rampart run`, default rules) must alert naming the
//! right container, and stay silent on a busy but ordinary workload.
//! Every attack is bounded in packets (and so in time).

mod common;

use common::*;
use serde_json::Value;
use std::sync::{Mutex, Once};
use std::time::Duration;

pub const NETATTACK_IMAGE: &str = "rampart-netattack:latest";

/// One test at a time: each floods, and the machine is small.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn netattack_image() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let script = repo_root().join("tests/image/netattack.sh");
        let out = std::process::Command::new(&script).output().expect("run tests/image/netattack.sh");
        assert!(
            out.status.success(),
            "building {NETATTACK_IMAGE} failed (are nmap and hping3 installed? scripts/setup.sh installs them):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// A Docker network of the test, removed on drop.
struct Network(String);

impl Network {
    fn create() -> Network {
        let name = unique("detnet");
        docker_ok(&["network", "create", &name]);
        Network(name)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = docker(&["network", "rm", &self.0]);
    }
}

/// `docker run -d` of the attack image on the network (removed on drop).
fn start(prefix: &str, net: &Network, cmd: &[&str]) -> Container {
    let name = unique(prefix);
    let mut args = vec!["run", "-d", "--name", &name, "--network", &net.0, NETATTACK_IMAGE];
    args.extend_from_slice(cmd);
    let id = docker_ok(&args).trim().to_string();
    assert!(is_full_id(&id), "docker run printed {id:?}");
    Container { name, id }
}

/// The target: busybox httpd on port 80 (the image's default command).
fn web_server(net: &Network) -> (Container, String) {
    let c = start("web", net, &[]);
    let ip =
        docker_ok(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", &c.name]);
    let ip = ip.trim().to_string();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "target address {ip:?}");
    (c, ip)
}

/// Runs `cmd` in a container of the attack image on the network, to
/// completion; returns the container (kept until dropped, so that the agent
/// can still name it) and its output.
fn run_tool(prefix: &str, net: &Network, cmd: &[&str]) -> (Container, String) {
    let c = start(prefix, net, cmd);
    // Not the exit code: hping3 exits 1 when no reply came, which is the
    // point of a SYN flood. The callers check the tool's own report.
    c.wait(Duration::from_secs(60));
    let out = c.logs();
    (c, out)
}

const DETECTION_RULES: &[&str] = &[
    "Port scan from container",
    "Many failed connections from container",
    "SYN flood into container",
    "SYN flood from container",
    "UDP flood involving container",
    "ICMP flood involving container",
    "Large egress volume from container",
];

fn detection_alerts_about<'a>(agent: &'a Agent, name: &str) -> Vec<&'a Value> {
    agent
        .events
        .iter()
        .filter(|v| is_alert(v) && DETECTION_RULES.contains(&alert_rule(v)) && container_name(v) == name)
        .collect()
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, nmap"]
fn nmap_port_scan_fires_the_scan_rule_naming_the_scanner() {
    preflight();
    netattack_image();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Network::create();
    let (target, ip) = web_server(&net);
    let mut agent = Agent::start_run(&[]);
    // A SYN scan (raw sockets: nmap runs as root with Docker's default
    // NET_RAW) of the 1000 most common ports; -Pn: no ping first.
    let (scanner, out) = run_tool("nmap", &net, &["nmap", "-n", "-Pn", "-T4", "--top-ports", "1000", &ip]);
    assert!(out.contains("80/tcp") && out.contains("open"), "nmap did not scan the target:\n{out}");
    let alert = agent.expect("the port scan alert about the nmap container", |v| {
        is_alert_of(v, "Port scan from container", &scanner.name)
    });
    eprintln!("{}", alert_brief(&alert));
    // The estimate of distinct destinations is near the 1000 ports scanned.
    let output = alert["output"].as_str().unwrap_or("");
    let dsts: u64 = output
        .split_once("distinct destinations=")
        .and_then(|(_, r)| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count in {output:?}"));
    assert!((900..=1100).contains(&dsts), "distinct destinations {dsts}, nmap probed 1000 ports: {output}");
    // The scanned container is not the scanner.
    agent.collect_for(Duration::from_secs(2));
    let wrong = agent.events.iter().find(|v| is_alert_of(v, "Port scan from container", &target.name));
    assert!(wrong.is_none(), "scan alert about the target: {}", alert_brief(wrong.unwrap()));
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, hping3"]
fn hping3_syn_flood_fires_on_the_target_and_the_source() {
    preflight();
    netattack_image();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Network::create();
    let (target, ip) = web_server(&net);
    let mut agent = Agent::start_run(&[]);
    // 20000 SYNs to the open port as fast as hping3 goes (~1-2 s here); its
    // container's kernel resets each SYN-ACK, so no handshake completes.
    let (flooder, out) =
        run_tool("hping3", &net, &["hping3", "-q", "-S", "-p", "80", "-c", "20000", "--faster", &ip]);
    assert!(out.contains("20000 packets transmitted"), "hping3 did not send its packets:\n{out}");
    let into = agent.expect("the SYN flood alert about the target", |v| {
        is_alert_of(v, "SYN flood into container", &target.name)
    });
    eprintln!("{}", alert_brief(&into));
    let from = agent.expect("the SYN flood alert about the source", |v| {
        is_alert_of(v, "SYN flood from container", &flooder.name)
    });
    eprintln!("{}", alert_brief(&from));
    // The half-open count is the flood's (kernel counts, not a sample).
    let output = into["output"].as_str().unwrap_or("");
    let half_open: u64 = output
        .split_once("half-open=")
        .and_then(|(_, r)| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count in {output:?}"));
    assert!((1000..=20_000).contains(&half_open), "half-open {half_open}: {output}");
    // Each side is named for its own part only.
    agent.collect_for(Duration::from_secs(2));
    let wrong = agent.events.iter().find(|v| {
        is_alert_of(v, "SYN flood into container", &flooder.name)
            || is_alert_of(v, "SYN flood from container", &target.name)
    });
    assert!(wrong.is_none(), "flood alert about the wrong side: {}", alert_brief(wrong.unwrap()));
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd"]
fn a_busy_http_server_under_a_load_loop_raises_nothing() {
    preflight();
    netattack_image();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Network::create();
    let (server, ip) = web_server(&net);
    let mut agent = Agent::start_run(&[]);
    // ~2000 requests, one connection each, as fast as busybox wget goes
    // (~900 connections/s here), all answered.
    let script = format!(
        "ok=0; for i in $(seq 2000); do wget -q -O /dev/null http://{ip}/ && ok=$((ok+1)); done; echo ok=$ok"
    );
    let (client, out) = run_tool("loadloop", &net, &["sh", "-c", &script]);
    assert!(out.contains("ok=2000"), "the load loop failed:\n{out}");
    // Past the window (5 s) and a few reads after the load.
    agent.collect_for(Duration::from_secs(7));
    for name in [&server.name, &client.name] {
        let alerts = detection_alerts_about(&agent, name);
        assert!(
            alerts.is_empty(),
            "ordinary load raised: {}",
            alerts.iter().map(|a| alert_brief(a)).collect::<Vec<_>>().join("\n")
        );
    }
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, nmap"]
fn nmap_connect_scan_fires_the_failed_connections_rule() {
    preflight();
    netattack_image();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Network::create();
    let (_target, ip) = web_server(&net);
    let mut agent = Agent::start_run(&[]);
    // A connect() scan: every closed port refuses (SYN_SENT -> CLOSE).
    let (scanner, out) =
        run_tool("nmap-st", &net, &["nmap", "-n", "-Pn", "-sT", "-T4", "--top-ports", "1000", &ip]);
    assert!(out.contains("80/tcp") && out.contains("open"), "nmap did not scan the target:\n{out}");
    let alert = agent.expect("the failed connections alert about the nmap container", |v| {
        is_alert_of(v, "Many failed connections from container", &scanner.name)
    });
    eprintln!("{}", alert_brief(&alert));
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, hping3"]
fn hping3_icmp_flood_fires_on_the_source() {
    preflight();
    netattack_image();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Network::create();
    let (_target, ip) = web_server(&net);
    let mut agent = Agent::start_run(&[]);
    // 20000 echo requests as fast as hping3 goes. The target's kernel answers
    // them without a socket of the target's: no cgroup program sees that side.
    let (flooder, out) =
        run_tool("hping3-icmp", &net, &["hping3", "-q", "--icmp", "-c", "20000", "--faster", &ip]);
    assert!(out.contains("20000 packets transmitted"), "hping3 did not send its packets:\n{out}");
    let alert = agent.expect("the ICMP flood alert about the source", |v| {
        is_alert_of(v, "ICMP flood involving container", &flooder.name)
    });
    eprintln!("{}", alert_brief(&alert));
    agent.stop();
}
