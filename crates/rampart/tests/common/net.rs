//! Containers on a Docker network of the test's own, for the network tests
//! (flows, DNS, scan and flood detection, rate limits): the network, the
//! tool images they run (built once per test binary by their scripts under
//! tests/image/), containers of those images on the network, and iperf3's
//! UDP flood. Traffic only ever goes to addresses of such a network.

use super::*;
use serde_json::Value;
use std::process::Command;
use std::sync::Once;
use std::time::Duration;

pub const NETATTACK_IMAGE: &str = "rampart-netattack:latest";
pub const IPERF3_IMAGE: &str = "rampart-iperf3:latest";
pub const DNSMASQ_IMAGE: &str = "rampart-dnsmasq:latest";

/// Runs tests/image/`script` once per test binary (`once`), which builds
/// `image` from the host's Debian tools (`needs`, as the failure's hint).
fn build_image(once: &'static Once, script: &str, image: &str, needs: &str) {
    once.call_once(|| {
        let path = repo_root().join("tests/image").join(script);
        let out = Command::new(&path).output().unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
        assert!(
            out.status.success(),
            "building {image} failed (is {needs} installed? scripts/setup.sh installs it):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// nmap, nping, hping3 and busybox (httpd is the default command).
pub fn netattack_image() {
    static ONCE: Once = Once::new();
    build_image(&ONCE, "netattack.sh", NETATTACK_IMAGE, "nmap, hping3");
}

pub fn iperf3_image() {
    static ONCE: Once = Once::new();
    build_image(&ONCE, "iperf3.sh", IPERF3_IMAGE, "iperf3");
}

/// dnsmasq and busybox (nslookup, wget, httpd).
pub fn dnsmasq_image() {
    static ONCE: Once = Once::new();
    build_image(&ONCE, "dnsmasq.sh", DNSMASQ_IMAGE, "dnsmasq-base");
}

/// A Docker network of the test, removed on drop.
pub struct Network {
    pub name: String,
    /// With [`Network::with_subnet`]: the first three octets of its /24.
    prefix: Option<String>,
}

impl Network {
    /// A network whose subnet Docker picks.
    pub fn create(prefix: &str) -> Network {
        let name = unique(prefix);
        docker_ok(&["network", "create", &name]);
        Network { name, prefix: None }
    }

    /// A network with a 10.213.x.0/24 of its own, so that containers can
    /// get fixed addresses ([`Network::ip`]).
    pub fn with_subnet(prefix: &str) -> Network {
        let name = unique(prefix);
        // Another test may hold a subnet: try a few.
        let start = std::process::id() as usize + name.len();
        for i in 0..64 {
            let prefix = format!("10.213.{}", (start + i * 7) % 250 + 1);
            let out = docker(&["network", "create", "--subnet", &format!("{prefix}.0/24"), &name]);
            if out.status.success() {
                return Network { name, prefix: Some(prefix) };
            }
        }
        panic!("no free 10.213.x.0/24 subnet for the test network");
    }

    /// Host `host` of the network's /24 (of [`Network::with_subnet`]).
    pub fn ip(&self, host: u8) -> String {
        format!("{}.{host}", self.prefix.as_deref().expect("a network made with_subnet"))
    }

    /// `docker run -d` of `image` on the network (at `ip` if given); removed
    /// on drop.
    pub fn start(&self, prefix: &str, image: &str, ip: Option<&str>, cmd: &[&str]) -> Container {
        let name = unique(prefix);
        let mut args = vec!["run", "-d", "--name", &name, "--network", &self.name];
        if let Some(ip) = ip {
            args.extend(["--ip", ip]);
        }
        args.push(image);
        args.extend_from_slice(cmd);
        let id = docker_ok(&args).trim().to_string();
        assert!(is_full_id(&id), "docker run printed {id:?}");
        Container { name, id }
    }

    /// Runs `cmd` in a container of `image` on the network to completion;
    /// returns the container (kept until dropped, so that the agent can still
    /// name it) and its output. The exit code is not checked: hping3 exits 1
    /// when no reply came, which is the point of a flood; callers check the
    /// tool's own report.
    pub fn run_tool(&self, prefix: &str, image: &str, cmd: &[&str]) -> (Container, String) {
        let c = self.start(prefix, image, None, cmd);
        c.wait(Duration::from_secs(60));
        let out = c.logs();
        (c, out)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = docker(&["network", "rm", &self.name]);
    }
}

/// The address of a container on its (single) network.
pub fn address_of(c: &Container) -> String {
    let ip =
        docker_ok(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", &c.name]);
    let ip = ip.trim().to_string();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "address of {}: {ip:?}", c.name);
    ip
}

/// `iperf3 -c ARGS... --json` run in `client` (retried while the server is
/// still starting); iperf3's report.
pub fn iperf3_client(client: &Container, args: &[&str]) -> Value {
    let mut cmd = vec!["exec", &client.name, "iperf3", "--json", "--connect-timeout", "5000", "-c"];
    cmd.extend_from_slice(args);
    for attempt in 0.. {
        let out = docker(&cmd);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() {
            return serde_json::from_str(&text).unwrap_or_else(|e| panic!("iperf3 JSON: {e}:\n{text}"));
        }
        assert!(attempt < 10, "iperf3 failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(500));
    }
    unreachable!()
}

/// A UDP flood of 64-byte datagrams at 40 Mbit/s for `seconds` from
/// `client` to `server` (an `iperf3 -s` container): (datagrams delivered,
/// seconds), as the receiver counted them.
pub fn iperf3_udp_flood(client: &Container, server: &Container, seconds: &str) -> (u64, f64) {
    let args = [server.name.as_str(), "-u", "-b", "40M", "-l", "64", "-t", seconds];
    // Under an egress rate limit the flood and iperf3's own control
    // connection share the budget: the end-of-test exchange can be lost, and
    // the report then has no sum. Such a run is run again.
    let mut v = iperf3_client(client, &args);
    for _ in 0..3 {
        if !v["end"]["sum"].is_null() {
            break;
        }
        eprintln!("iperf3: a report without its sum ({}); again", v["error"]);
        v = iperf3_client(client, &args);
    }
    let sum = &v["end"]["sum"];
    let sent = sum["packets"].as_u64().unwrap_or_else(|| panic!("no packets in {sum}: {v}"));
    let lost = sum["lost_packets"].as_u64().unwrap_or_else(|| panic!("no lost_packets in {sum}"));
    let secs = sum["seconds"].as_f64().unwrap_or_else(|| panic!("no seconds in {sum}"));
    eprintln!("iperf3: sent {sent}, lost {lost}, delivered {} in {secs:.2} s", sent - lost);
    (sent.saturating_sub(lost), secs)
}
