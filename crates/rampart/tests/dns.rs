//! DNS end to end: a dnsmasq container on a Docker network of the test's own
//! answers names from its own config (`--address=/example.test/...`); a client
//! container resolves one with busybox nslookup, straight at that resolver (no
//! other DNS server is ever asked), then connects to the address it got.
//!
//! Checked: the `dns` events name the client container, the name and the
//! answer (and the resolver's own view is its own); a rule on `fd.sip.name`
//! fires on the client's connect and not on another container's connect to
//! the same address (it did not resolve it); the default tunnelling rule fires
//! on a long base32 name and stays silent on the ordinary lookups.

mod common;

use common::net::*;
use common::*;
use serde_json::Value;
use std::time::Duration;

const NAME: &str = "www.example.test";
const TUNNEL_RULE: &str = "DNS tunnelling-like query from container";

/// Runs `sh -c script` in a container of the dnsmasq image on the network,
/// to completion (it must succeed); returns the container and its output.
fn run_script(net: &Network, prefix: &str, script: &str) -> (Container, String) {
    let name = unique(prefix);
    let cidfile = std::env::temp_dir().join(format!("{name}.cid"));
    let cid = cidfile.to_str().unwrap();
    let out = docker(&[
        "run",
        "--name",
        &name,
        "--cidfile",
        cid,
        "--network",
        &net.name,
        DNSMASQ_IMAGE,
        "sh",
        "-c",
        script,
    ]);
    let id = std::fs::read_to_string(&cidfile).unwrap_or_default().trim().to_string();
    let _ = std::fs::remove_file(&cidfile);
    let c = Container { id, name };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{prefix} failed:\n{text}");
    assert!(is_full_id(&c.id), "{prefix}: no container id in its cidfile");
    (c, text)
}

/// A DNS event of `container`, told by its id: the events command does not
/// hold an event for the runtime's metadata, so a container's first query
/// may come before its name is known.
fn is_dns(ev: &Value, container: &Container, response: bool, name: &str) -> bool {
    is_type(ev, "dns")
        && in_container(ev, &container.id)
        && ev["args"]["response"] == response
        && arg_str(ev, "name") == name
}

fn answers(ev: &Value) -> Vec<(String, String)> {
    ev["args"]["answers"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| (r["type"].as_str().unwrap_or("").into(), r["data"].as_str().unwrap_or("").into()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and dnsmasq"]
fn a_containers_lookups_are_events_and_name_its_later_connects() {
    preflight();
    dnsmasq_image();
    let net = Network::with_subnet("dnsnet");
    let (dns_ip, web_ip) = (net.ip(2), net.ip(3));
    const CONNECT_RULE: &str = "Connect to a resolved name (dns test)";
    let rules = std::env::temp_dir().join(format!("{}.yaml", unique("dns-rule")));
    std::fs::write(
        &rules,
        format!(
            "- rule: {CONNECT_RULE}\n  desc: a connect to an address the container resolved {NAME} to\n  \
             condition: evt.type = connect and fd.sip.name = {NAME}\n  \
             output: \"connect to %fd.sip.name (%fd.sip:%fd.sport) rip.name=%fd.rip.name (%container.name)\"\n  \
             priority: NOTICE\n"
        ),
    )
    .unwrap();
    let mut events = Agent::start(&["--flows", "--type", "dns"]);
    let mut alerts = Agent::start_run(&["--rules", rules.to_str().unwrap()]);

    let resolver = net.start(
        "dnsmasq",
        DNSMASQ_IMAGE,
        Some(&dns_ip),
        &[
            "dnsmasq",
            "--no-daemon",
            "--user=root",
            "--no-resolv",
            "--no-hosts",
            "--log-queries",
            &format!("--address=/example.test/{web_ip}"),
            "--address=/example.test/fd00::99",
        ],
    );
    let web = net.start(
        "web",
        DNSMASQ_IMAGE,
        Some(&web_ip),
        &[
            "sh",
            "-c",
            "mkdir -p /tmp/www && echo hello >/tmp/www/index.html && busybox httpd -f -p 80 -h /tmp/www",
        ],
    );
    // The resolver may still be starting: nslookup retries within its own
    // timeout; a failed lookup fails the client's script.
    let tunnel = format!("{}.t.example.test", "mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpjqwe3dsmrsgc5dfnfwg");
    std::thread::sleep(Duration::from_millis(500));
    let (client, out) = run_script(
        &net,
        "client",
        &format!(
            "busybox nslookup {NAME} {dns_ip} && busybox wget -q -O - http://{web_ip}/ && busybox nslookup -type=a {tunnel} {dns_ip} >/dev/null"
        ),
    );
    assert!(out.contains(&web_ip) && out.contains("hello"), "client output:\n{out}");
    // Connects to the same address without having resolved it.
    let (other, out) = run_script(&net, "other", &format!("busybox wget -q -O - http://{web_ip}/"));
    assert!(out.contains("hello"), "other client output:\n{out}");

    // The client's query and the answer it received, as the client saw them.
    let query = events.expect("the client's query", |ev| is_dns(ev, &client, false, NAME));
    assert_eq!(arg_str(&query, "direction"), "out", "{query}");
    assert_eq!(query["args"]["remote"]["ip"], dns_ip.as_str(), "{query}");
    assert_eq!(query["args"]["remote"]["port"], 53, "{query}");
    let answer = events.expect("the answer the client received", |ev| {
        is_dns(ev, &client, true, NAME) && arg_str(ev, "qtype") == "A"
    });
    assert_eq!(arg_str(&answer, "direction"), "in", "{answer}");
    assert_eq!(arg_str(&answer, "rcode"), "NOERROR", "{answer}");
    assert_eq!(arg_str(&answer, "proto"), "udp", "{answer}");
    assert_eq!(answers(&answer), [("A".to_string(), web_ip.clone())], "{answer}");
    let aaaa = events
        .expect("the AAAA answer", |ev| is_dns(ev, &client, true, NAME) && arg_str(ev, "qtype") == "AAAA");
    assert_eq!(answers(&aaaa), [("AAAA".to_string(), "fd00::99".to_string())], "{aaaa}");
    // The resolver's own view: it received the query on port 53.
    let served = events.expect("the resolver's side of the query", |ev| is_dns(ev, &resolver, false, NAME));
    assert_eq!(
        (arg_str(&served, "direction"), &served["args"]["local"]["port"]),
        ("in", &Value::from(53)),
        "{served}"
    );

    // fd.sip.name on the client's connect, from its own lookup.
    let alert =
        alerts.expect("the connect alert about the client", |v| is_alert_of(v, CONNECT_RULE, &client.name));
    let output = alert["output"].as_str().unwrap_or("");
    assert!(
        output.contains(&format!("connect to {NAME} ({web_ip}:80) rip.name={NAME}")),
        "alert output: {output}"
    );
    // The tunnelling rule on the long name, from the client only.
    let tun =
        alerts.expect("the tunnelling alert about the client", |v| is_alert_of(v, TUNNEL_RULE, &client.name));
    let output = tun["output"].as_str().unwrap_or("");
    assert!(output.contains(&tunnel), "tunnel alert output: {output}");
    alerts.collect_for(Duration::from_secs(2));
    let wrong = alerts.events.iter().find(|v| {
        (is_alert_of(v, CONNECT_RULE, &other.name))
            || (alert_rule(v) == TUNNEL_RULE && !v["output"].as_str().unwrap_or("").contains(&tunnel))
    });
    assert!(wrong.is_none(), "unexpected alert: {}", alert_brief(wrong.unwrap()));
    // Nothing was lost on the DNS path.
    let summary = events.stop();
    eprintln!("events agent: {summary:?}");
    alerts.stop();
    drop(web);
    let _ = std::fs::remove_file(&rules);
}
