//! `rampart pcap` end to end: a busybox httpd container and two clients on a
//! Docker network of the test's own; the capture of one client must hold its
//! HTTP exchange with the server (both directions, as `tcpdump -r` reads the
//! file) and none of the other client's packets.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

const IMAGE: &str = "rampart-dnsmasq:latest";

fn image() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let out = Command::new(repo_root().join("tests/image/dnsmasq.sh"))
            .output()
            .expect("run tests/image/dnsmasq.sh");
        assert!(out.status.success(), "building {IMAGE} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    });
}

/// Removes the named containers and the network on drop.
struct Cleanup {
    containers: Vec<String>,
    network: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", c]);
        }
        let _ = docker(&["network", "rm", &self.network]);
    }
}

fn ip_of(container: &str) -> String {
    docker_ok(&["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container])
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and tcpdump"]
fn pcap_holds_the_containers_http_exchange_and_nothing_of_another() {
    preflight();
    image();
    let tcpdump =
        ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"].into_iter().find(|p| std::path::Path::new(p).exists());
    let tcpdump = tcpdump.expect("tcpdump missing (scripts/setup.sh installs it)");
    let net = unique("pcapnet");
    docker_ok(&["network", "create", &net]);
    let (web, client, other) = (unique("web"), unique("client"), unique("other"));
    let _cleanup =
        Cleanup { containers: vec![web.clone(), client.clone(), other.clone()], network: net.clone() };
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "--network",
        &net,
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /tmp/www && echo hello-from-web >/tmp/www/index.html && busybox httpd -f -p 80 -h /tmp/www",
    ]);
    for c in [&client, &other] {
        docker_ok(&["run", "-d", "--name", c, "--network", &net, IMAGE, "sleep", "300"]);
    }
    let (web_ip, client_ip, other_ip) = (ip_of(&web), ip_of(&client), ip_of(&other));

    let file = std::env::temp_dir().join(format!("{}.pcapng", unique("cap")));
    let mut cap = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["pcap", "--container", &client, "-o", file.to_str().unwrap(), "--duration", "8s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rampart pcap");
    // Ready once it said so (the programs are attached by then).
    let stderr = cap.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut said = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !said.iter().any(|l: &String| l.contains("capturing")) {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("rampart pcap did not start: {said:?}"));
        said.push(line);
    }

    let url = format!("http://{web_ip}/index.html");
    let got = docker_ok(&["exec", &client, "busybox", "wget", "-q", "-O", "-", &url]);
    assert!(got.contains("hello-from-web"), "client got {got:?}");
    let got = docker_ok(&["exec", &other, "busybox", "wget", "-q", "-O", "-", &url]);
    assert!(got.contains("hello-from-web"), "other got {got:?}");

    let status = cap.wait().expect("rampart pcap exit");
    said.extend(rx.try_iter());
    assert!(status.success(), "rampart pcap failed: {said:?}");
    let summary = said.iter().find(|l| l.contains("packets written")).cloned().unwrap_or_default();
    eprintln!("{summary}");
    assert!(summary.contains(" 0 lost"), "{said:?}");

    let out = Command::new(tcpdump)
        .args(["-nn", "-A", "-r", file.to_str().unwrap()])
        .output()
        .expect("run tcpdump");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tcpdump -r failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("IP {client_ip}.")) && l.contains(&format!("> {web_ip}.80:"))),
        "no packet from the client to the server:\n{text}"
    );
    assert!(
        text.lines().any(|l| l.contains(&format!("IP {web_ip}.80 > {client_ip}."))),
        "no packet from the server to the client:\n{text}"
    );
    assert!(text.contains("GET /index.html HTTP/1.1"), "no HTTP request in:\n{text}");
    assert!(text.contains("hello-from-web"), "no HTTP response body in:\n{text}");
    assert!(!text.contains(&format!("{other_ip}.")), "the other container's packets are in:\n{text}");
    // Owner-only: packets are the container's data.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let _ = std::fs::remove_file(&file);
}
