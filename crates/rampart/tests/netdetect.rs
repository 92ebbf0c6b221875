//! Scan, flood and DNS abuse detection end to end: real attack tools
//! (Debian's nmap, nping and hping3, image tests/image/netattack.sh; busybox
//! nslookup against dnsmasq, tests/image/dnsmasq.sh) run in containers on a
//! Docker network of the test's own against containers of the same network
//! (no other address is ever sent to); the agent (`rampart run`, default
//! rules) must alert naming the right container, and stay silent on busy but
//! ordinary workloads. Every attack is bounded in packets (and so in time).

mod common;

use common::net::*;
use common::*;
use serde_json::Value;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// One test at a time: each floods, and the machine is small.
static SERIAL: Mutex<()> = Mutex::new(());

/// What every test starts from. Fields drop in order: the agent, the
/// target, then the network, and last the test's turn.
struct Scene {
    agent: Agent,
    /// busybox httpd on port 80 (the attack image's default command).
    target: Container,
    /// The target's address.
    ip: String,
    net: Network,
    _turn: MutexGuard<'static, ()>,
}

/// The test's turn, a network with a /24 of its own, the target on it and
/// the detection agent (`rampart run`, default rules).
fn scene() -> Scene {
    scene_with(&[])
}

/// [`scene`], the agent with more arguments.
fn scene_with(agent_args: &[&str]) -> Scene {
    preflight();
    netattack_image();
    let turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Network::with_subnet("detnet");
    let target = net.start("web", NETATTACK_IMAGE, None, &[]);
    let ip = address_of(&target);
    let agent = Agent::start_run(agent_args);
    Scene { agent, target, ip, net, _turn: turn }
}

impl Scene {
    /// Runs an attack tool of the netattack image to completion.
    fn run_tool(&self, prefix: &str, cmd: &[&str]) -> (Container, String) {
        self.net.run_tool(prefix, NETATTACK_IMAGE, cmd)
    }

    /// Waits for `rule`'s alert about container `name`; prints it.
    fn expect_alert(&mut self, rule: &str, name: &str) -> Value {
        let alert = self.agent.expect(&format!("{rule:?} about {name}"), |v| is_alert_of(v, rule, name));
        eprintln!("{}", alert_brief(&alert));
        alert
    }

    /// None of `rules`' alerts so far names any of `names`.
    fn assert_no_alert(&self, rules: &[&str], names: &[&str]) {
        let wrong: Vec<String> = self
            .agent
            .events
            .iter()
            .filter(|v| is_alert(v) && rules.contains(&alert_rule(v)) && names.contains(&container_name(v)))
            .map(alert_brief)
            .collect();
        assert!(wrong.is_empty(), "unexpected alerts:\n{}", wrong.join("\n"));
    }
}

/// A number the alert's output gives after `key` (e.g. "half-open=").
fn output_number(alert: &Value, key: &str) -> u64 {
    let output = alert["output"].as_str().unwrap_or("");
    output
        .split_once(key)
        .and_then(|(_, r)| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {output:?}"))
}

/// Every default rule of rules/85-network_detection.yaml.
const DETECTION_RULES: &[&str] = &[
    "Port scan from container",
    "Many failed connections from container",
    "SYN flood into container",
    "SYN flood from container",
    "UDP flood involving container",
    "ICMP flood involving container",
    "Large egress volume from container",
    "Host sweep from container",
    "Connection flood into container",
    "DNS query flood from container",
    "Many NXDOMAIN answers to container",
];

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, nmap"]
fn nmap_port_scan_fires_the_scan_rule_naming_the_scanner() {
    let mut sc = scene();
    // A SYN scan (raw sockets: nmap runs as root with Docker's default
    // NET_RAW) of the 1000 most common ports; -Pn: no ping first.
    let (scanner, out) = sc.run_tool("nmap", &["nmap", "-n", "-Pn", "-T4", "--top-ports", "1000", &sc.ip]);
    assert!(out.contains("80/tcp") && out.contains("open"), "nmap did not scan the target:\n{out}");
    let alert = sc.expect_alert("Port scan from container", &scanner.name);
    // The estimate of distinct destinations is near the 1000 ports scanned.
    let dsts = output_number(&alert, "distinct destinations=");
    assert!((900..=1100).contains(&dsts), "distinct destinations {dsts}, nmap probed 1000 ports");
    // The scanned container is not the scanner.
    sc.agent.collect_for(Duration::from_secs(2));
    sc.assert_no_alert(&["Port scan from container"], &[&sc.target.name]);
    sc.agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, nmap"]
fn nmap_ping_sweep_fires_the_host_sweep_rule_naming_the_sweeper() {
    let mut sc = scene();
    // ICMP echo to the 64 addresses of x.64/26 of the test's own /24 (no
    // container there: Docker hands out addresses from .2 up), sent as IP
    // rather than ARP pings, so every probe goes through the container's
    // raw socket. At 100 probes/s or more: with no host answering, nmap's
    // own pacing sent ~19/s, spreading the sweep over ~7 s, so a 5 s window
    // held ~51 hosts, one slow run under 50 (a CI run missed the alert).
    let range = format!("{}/26", sc.net.ip(64));
    let (sweeper, out) = sc
        .run_tool("nmap-sn", &["nmap", "-n", "-sn", "-PE", "--send-ip", "-T4", "--min-rate", "100", &range]);
    assert!(out.contains("64 IP addresses"), "nmap did not sweep {range}:\n{out}");
    let alert = sc.expect_alert("Host sweep from container", &sweeper.name);
    let hosts = output_number(&alert, "distinct hosts=");
    // Reported on crossing the threshold (50), at most the 64 swept (the
    // estimate is within a few %).
    assert!((50..=70).contains(&hosts), "distinct hosts {hosts}, nmap pinged 64");
    // One probe per host: below the port scan's 100 destinations.
    sc.agent.collect_for(Duration::from_secs(2));
    sc.assert_no_alert(&["Port scan from container"], &[&sweeper.name]);
    sc.assert_no_alert(DETECTION_RULES, &[&sc.target.name]);
    sc.agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, hping3"]
fn hping3_syn_flood_fires_on_the_target_and_the_source() {
    let mut sc = scene();
    // 20000 SYNs to the open port as fast as hping3 goes (~1-2 s here); its
    // container's kernel resets each SYN-ACK, so no handshake completes.
    let (flooder, out) =
        sc.run_tool("hping3", &["hping3", "-q", "-S", "-p", "80", "-c", "20000", "--faster", &sc.ip]);
    assert!(out.contains("20000 packets transmitted"), "hping3 did not send its packets:\n{out}");
    let target = sc.target.name.clone();
    let into = sc.expect_alert("SYN flood into container", &target);
    sc.expect_alert("SYN flood from container", &flooder.name);
    // The half-open count is the flood's (kernel counts, not a sample).
    let half_open = output_number(&into, "half-open=");
    assert!((1000..=20_000).contains(&half_open), "half-open {half_open}");
    // Each side is named for its own part only; no handshake completed, so
    // this is no connection flood.
    sc.agent.collect_for(Duration::from_secs(2));
    sc.assert_no_alert(&["SYN flood into container", "Connection flood into container"], &[&flooder.name]);
    sc.assert_no_alert(&["SYN flood from container", "Connection flood into container"], &[&target]);
    sc.agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, nmap"]
fn nping_connect_flood_fires_the_connection_flood_rule_naming_the_target() {
    // The target, busybox httpd, forks per connection and listens with a
    // backlog of 9: on this 2-core machine it completed 1300-3500
    // handshakes/s under nping (less while other builds ran), around the
    // default threshold (2000/s, meant for real services). The detection
    // and the rule are what is tested here, at 500/s; the load loop test
    // checks ordinary traffic against the defaults.
    let config = std::env::temp_dir().join(format!("{}.yaml", unique("connflood")));
    std::fs::write(
        &config,
        "sensor:\n  flows:\n    detect:\n      thresholds:\n        conn_flood_ps: 500\n",
    )
    .expect("write config");
    let mut sc = scene_with(&["--config", config.to_str().unwrap()]);
    // 15000 full TCP connections (handshake, then close) at up to 5000/s.
    // (The full backlog drops SYNs, which nping retries: the target also
    // sees a SYN flood, not asserted either way.)
    let (flooder, out) = sc.run_tool(
        "nping",
        &["nping", "--tcp-connect", "-p", "80", "--rate", "5000", "-c", "15000", "-q", &sc.ip],
    );
    assert!(out.contains("TCP connection attempts: 15000"), "nping did not connect:\n{out}");
    let target = sc.target.name.clone();
    let alert = sc.expect_alert("Connection flood into container", &target);
    let accepted = output_number(&alert, "accepted/s=");
    assert!(accepted >= 500, "accepted/s {accepted}");
    // The flooder is not the one flooded.
    sc.agent.collect_for(Duration::from_secs(2));
    sc.assert_no_alert(&["Connection flood into container"], &[&flooder.name]);
    sc.agent.stop();
    let _ = std::fs::remove_file(&config);
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd"]
fn a_busy_http_server_under_a_load_loop_raises_nothing() {
    let mut sc = scene();
    // ~2000 requests, one connection each, as fast as busybox wget goes
    // (~900 connections/s here), all answered.
    let script = format!(
        "ok=0; for i in $(seq 2000); do wget -q -O /dev/null http://{}/ && ok=$((ok+1)); done; echo ok=$ok",
        sc.ip
    );
    let (client, out) = sc.run_tool("loadloop", &["sh", "-c", &script]);
    assert!(out.contains("ok=2000"), "the load loop failed:\n{out}");
    // Past the window (5 s) and a few reads after the load.
    sc.agent.collect_for(Duration::from_secs(7));
    sc.assert_no_alert(DETECTION_RULES, &[&sc.target.name, &client.name]);
    sc.agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, nmap"]
fn nmap_connect_scan_fires_the_failed_connections_rule() {
    let mut sc = scene();
    // A connect() scan: every closed port refuses (SYN_SENT -> CLOSE).
    let (scanner, out) =
        sc.run_tool("nmap-st", &["nmap", "-n", "-Pn", "-sT", "-T4", "--top-ports", "1000", &sc.ip]);
    assert!(out.contains("80/tcp") && out.contains("open"), "nmap did not scan the target:\n{out}");
    sc.expect_alert("Many failed connections from container", &scanner.name);
    sc.agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, hping3"]
fn hping3_icmp_flood_fires_on_the_source() {
    let mut sc = scene();
    // 20000 echo requests as fast as hping3 goes. The target's kernel answers
    // them without a socket of the target's: no cgroup program sees that side.
    let (flooder, out) =
        sc.run_tool("hping3-icmp", &["hping3", "-q", "--icmp", "-c", "20000", "--faster", &sc.ip]);
    assert!(out.contains("20000 packets transmitted"), "hping3 did not send its packets:\n{out}");
    sc.expect_alert("ICMP flood involving container", &flooder.name);
    sc.agent.stop();
}

/// dnsmasq at host .200 of the network: answers names under example.test
/// (A and AAAA), NXDOMAIN for every name under dga.test, nothing else.
fn resolver(sc: &Scene) -> (Container, String) {
    dnsmasq_image();
    let ip = sc.net.ip(200);
    let c = sc.net.start(
        "dnsmasq",
        DNSMASQ_IMAGE,
        Some(&ip),
        &[
            "dnsmasq",
            "--no-daemon",
            "--user=root",
            "--no-resolv",
            "--no-hosts",
            "--local=/dga.test/",
            &format!("--address=/example.test/{}", sc.ip),
            "--address=/example.test/fd00::99",
        ],
    );
    (c, ip)
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, dnsmasq"]
fn many_nxdomain_answers_fire_the_dga_rule_and_a_dns_heavy_client_does_not() {
    let mut sc = scene();
    let (dns, dns_ip) = resolver(&sc);
    // Both clients first wait (bounded) for dnsmasq to answer.
    let up = format!("for t in $(seq 50); do busybox nslookup www.example.test {dns_ip} >/dev/null 2>&1 && break; sleep 0.2; done");
    // A DGA's guesses: 150 names that do not exist (an A and an AAAA query
    // each, so 300 NXDOMAIN answers in a second or two).
    let dga = format!(
        "{up}; nx=0; for i in $(seq 150); do busybox nslookup q$i-$RANDOM.dga.test {dns_ip} 2>&1 | grep -q NXDOMAIN && nx=$((nx+1)); done; echo nx=$nx"
    );
    // A DNS-heavy client, at the same time: 300 lookups of a name that
    // exists, as fast as busybox goes (~500 queries/s here).
    let heavy = format!(
        "{up}; ok=0; for i in $(seq 300); do busybox nslookup www.example.test {dns_ip} >/dev/null 2>&1 && ok=$((ok+1)); done; echo ok=$ok"
    );
    let busy = sc.net.start("dns-heavy", DNSMASQ_IMAGE, None, &["sh", "-c", &heavy]);
    let (guesser, out) = sc.net.run_tool("dga", DNSMASQ_IMAGE, &["sh", "-c", &dga]);
    assert!(out.contains("nx=150"), "the lookups did not all get NXDOMAIN:\n{out}");
    busy.wait(Duration::from_secs(60));
    let out = busy.logs();
    assert!(out.contains("ok=300"), "the DNS-heavy client's lookups failed:\n{out}");
    let alert = sc.expect_alert("Many NXDOMAIN answers to container", &guesser.name);
    let nx = output_number(&alert, "NXDOMAIN=");
    assert!((100..=300).contains(&nx), "NXDOMAIN {nx}, the client got 300");
    // Not the busy client (all answered), not the resolver (it sent them;
    // its answers to the clients' many ports are no port scan).
    sc.agent.collect_for(Duration::from_secs(4));
    sc.assert_no_alert(DETECTION_RULES, &[&busy.name, &dns.name]);
    sc.agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, hping3, dnsmasq"]
fn hping3_dns_query_flood_fires_the_query_flood_rule_naming_the_source() {
    let mut sc = scene();
    let (dns, dns_ip) = resolver(&sc);
    // 10000 copies of one DNS query (A flood.example.test) to the resolver
    // at 10000/s from hping3's raw socket: above the default 1000 queries/s,
    // below the UDP flood's 20000 packets/s.
    let query =
        r"\022\064\001\000\000\001\000\000\000\000\000\000\005flood\007example\004test\000\000\001\000\001";
    let script = format!(
        "printf '{query}' >/tmp/q && hping3 -q -2 -p 53 -k -s 40000 -E /tmp/q -d 36 -c 10000 -i u100 {dns_ip}"
    );
    let (flooder, out) = sc.run_tool("hping3-dns", &["sh", "-c", &script]);
    assert!(out.contains("10000 packets transmitted"), "hping3 did not send its queries:\n{out}");
    let alert = sc.expect_alert("DNS query flood from container", &flooder.name);
    let qps = output_number(&alert, "queries/s=");
    assert!(qps >= 1000, "queries/s {qps}");
    sc.agent.collect_for(Duration::from_secs(2));
    sc.assert_no_alert(&["UDP flood involving container"], &[&flooder.name]);
    sc.assert_no_alert(DETECTION_RULES, &[&dns.name]);
    sc.agent.stop();
}
