//! Hardening end to end, with real containers under a real dockerd: `rampart
//! record` (the sensor's in-kernel syscall bitmaps plus the event stream),
//! `rampart profile`, `rampart profile verify` and `rampart caps`.

mod common;

use common::*;
use serde_json::Value;
use std::net::{IpAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
    fn json(&self, file: &str) -> Value {
        let p = self.0.join(file);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }
    fn text(&self, file: &str) -> String {
        std::fs::read_to_string(self.0.join(file)).unwrap_or_else(|e| panic!("reading {file}: {e}"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes a container by name on drop (for containers `rampart record` starts).
struct Named(String);

impl Drop for Named {
    fn drop(&mut self) {
        let _ = docker_cmd().args(["rm", "-f", &self.0]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

fn ok(out: &std::process::Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn container_ip(name: &str) -> IpAddr {
    let ip = docker_ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", name]);
    ip.parse().unwrap_or_else(|_| panic!("container {name} has no bridge address ({ip:?})"))
}

/// An HTTP GET to ip:port from the host; the body.
fn http_get(ip: IpAddr, port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

fn wait_served(ip: IpAddr, port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(body) = http_get(ip, port) {
            return body;
        }
        assert!(Instant::now() < deadline, "{ip}:{port} never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

const DOCKER_DEFAULT_CAPS: usize = 14;

/// The needed capabilities `rampart profile` wrote (capabilities.txt), checked
/// to be a strict subset of Docker's default set.
fn assert_fewer_caps_than_docker(dir: &TempDir) -> Vec<String> {
    let text = dir.text("capabilities.txt");
    let line = text.lines().find_map(|l| l.strip_prefix("needed: ")).unwrap_or_else(|| panic!("{text}"));
    let needed: Vec<String> =
        if line == "(none)" { Vec::new() } else { line.split(' ').map(str::to_string).collect() };
    for c in &needed {
        assert!(
            model::names::DOCKER_DEFAULT_CAPABILITIES.contains(&c.as_str()),
            "{c} is beyond Docker's default set"
        );
    }
    assert!(needed.len() < DOCKER_DEFAULT_CAPS, "needed {needed:?} is not smaller than Docker's default");
    needed
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn batch_job_is_recorded_profiled_and_verified() {
    preflight();
    // A server of the test's own for the job to fetch from: a network
    // destination the allow-list must name.
    let web = Container::sh(
        "hweb",
        &[],
        "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    let ip = container_ip(&web.name);
    assert_eq!(wait_served(ip, 8080).trim(), "hello");

    let dir = TempDir::new("batch");
    let job = unique("job");
    let _cleanup = Named(job.clone());
    let script = format!(
        "cat /etc/passwd > /dev/null && wget -q -O /tmp/page http://{ip}:8080/ && grep -q hello /tmp/page && ls / > /dev/null; exit 3"
    );
    let docker_client = docker_bin();
    let out = rampart_output(
        &[
            "record",
            "-o",
            dir.path(),
            "--",
            &docker_client,
            "run",
            "--name",
            &job,
            IMAGE,
            "/bin/sh",
            "-c",
            &script,
        ],
        Duration::from_secs(180),
    );
    ok(&out, "rampart record -- docker run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("recording container"), "{stderr}");

    let rec = dir.json("recording.json");
    assert_eq!(
        rec["containers"][0]["name"].as_str().map(|n| n.trim_start_matches('/')),
        Some(job.as_str()),
        "{rec:#}"
    );
    assert_eq!(rec["exit_code"], 3, "the job's exit code");
    let syscalls = strings(&rec["syscalls"]);
    for s in ["execve", "socket", "connect", "exit_group"] {
        assert!(syscalls.contains(&s.to_string()), "{s} missing from {syscalls:?}");
    }
    for s in ["reboot", "setpriority", "init_module"] {
        assert!(!syscalls.contains(&s.to_string()), "{s} was never made but recorded");
    }
    assert_eq!(rec["files"]["/etc/passwd"]["read"], true, "{:#}", rec["files"]);
    assert_eq!(rec["files"]["/tmp/page"]["create"], true, "{:#}", rec["files"]);
    assert!(strings(&rec["executables"]).iter().any(|e| e == "/bin/busybox"), "{:#}", rec["executables"]);
    let connects = rec["network"]["connect"].as_array().expect("connects");
    assert!(
        connects
            .iter()
            .any(|c| c["address"] == ip.to_string() && c["port"] == 8080 && c["protocol"] == "tcp"),
        "no connect to {ip}:8080 in {connects:?}"
    );

    let out = rampart_output(&["profile", dir.path()], Duration::from_secs(60));
    ok(&out, "rampart profile");
    assert_eq!(
        assert_fewer_caps_than_docker(&dir),
        Vec::<String>::new(),
        "a job reading world-readable files needs none"
    );
    let profile = dir.json("seccomp.json");
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    let allowed: Vec<String> =
        profile["syscalls"].as_array().unwrap().iter().flat_map(|e| strings(&e["names"])).collect();
    assert!(allowed.contains(&"connect".to_string()) && !allowed.contains(&"setpriority".to_string()));
    let netpolicy = dir.text("netpolicy.yaml");
    let policy: serde_yaml_ng::Value = serde_yaml_ng::from_str(&netpolicy).expect("netpolicy YAML");
    assert_eq!(policy["egress"]["default"], "deny", "{netpolicy}");
    assert_eq!(policy["egress"]["allow"][0]["cidr"], ip.to_string(), "{netpolicy}");
    assert_eq!(policy["egress"]["allow"][0]["ports"][0], 8080, "{netpolicy}");
    let check = rampart_output(
        &["netpolicy", "check", "-f", &format!("{}/netpolicy.yaml", dir.path())],
        Duration::from_secs(30),
    );
    ok(&check, "rampart netpolicy check of the generated allow-list");
    assert!(dir.text("k8s-networkpolicy.yaml").contains(&format!("cidr: {ip}/32")));
    assert!(dir.text("docker-flags.txt").contains("--cap-drop ALL"));

    let out = rampart_output(&["profile", "verify", dir.path()], Duration::from_secs(300));
    let stdout = ok(&out, "rampart profile verify");
    let report = dir.json("verify.json");
    assert_eq!(report["passed"], true, "{report:#}\n{stdout}");
    assert_eq!(report["baseline"]["exit_code"], 3);
    assert_eq!(report["profiled"]["exit_code"], 3);
    assert_eq!(report["denied_syscall"]["errno_with_profile"], 1, "EPERM under the profile: {report:#}");

    // Independently of verify: syscalls the job never made (getpriority and
    // setpriority, by busybox renice) fail with EPERM under the profile, and
    // work without it.
    let seccomp = format!("seccomp={}/seccomp.json", dir.path());
    let renice = "renice -n 5 -p $$";
    let plain = docker(&["run", "--rm", IMAGE, "/bin/sh", "-c", renice]);
    assert!(plain.status.success(), "renice without the profile: {}", String::from_utf8_lossy(&plain.stderr));
    let confined = docker(&[
        "run",
        "--rm",
        "--security-opt",
        &seccomp,
        "--cap-drop",
        "ALL",
        IMAGE,
        "/bin/sh",
        "-c",
        renice,
    ]);
    let err = String::from_utf8_lossy(&confined.stderr);
    assert!(
        !confined.status.success() && err.contains("Operation not permitted"),
        "renice under the profile: {err}"
    );
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn service_started_under_recording_keeps_answering_under_its_profile() {
    preflight();
    let dir = TempDir::new("svc");
    let name = unique("svc");
    let _cleanup = Named(name.clone());
    let docker_client = docker_bin();
    // A server that drops root for nobody: it needs CAP_SETUID and CAP_SETGID
    // (and, since Docker 20.10 sets ip_unprivileged_port_start=0, nothing for
    // port 80).
    let server =
        "mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 80 -h /www -u 65534:65534";
    let recorder = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args([
            "record",
            "--duration",
            "12s",
            "-o",
            dir.path(),
            "--",
            &docker_client,
            "run",
            "-d",
            "--name",
            &name,
            IMAGE,
        ])
        .args(["/bin/sh", "-c", server])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rampart record");
    // Requests while recording: the server's accept/read/write path.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ip = loop {
        let o = docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &name]);
        if let Ok(ip) = String::from_utf8_lossy(&o.stdout).trim().parse::<IpAddr>() {
            break ip;
        }
        assert!(Instant::now() < deadline, "the recorded container never started");
        std::thread::sleep(Duration::from_millis(200));
    };
    for _ in 0..5 {
        assert_eq!(wait_served(ip, 80).trim(), "served");
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = recorder.wait_with_output_timeout(Duration::from_secs(120));
    ok(&out, "rampart record (service)");
    docker(&["rm", "-f", &name]);

    let rec = dir.json("recording.json");
    let listen = rec["network"]["listen"].as_array().expect("listen");
    assert!(listen.iter().any(|l| l["port"] == 80 && l["protocol"] == "tcp"), "{listen:?}");
    for s in ["accept", "accept4"] {
        if strings(&rec["syscalls"]).contains(&s.to_string()) {
            break;
        }
        assert!(s != "accept4", "neither accept nor accept4 recorded: {:?}", rec["syscalls"]);
    }

    ok(
        &rampart_output(&["profile", dir.path(), "--name", "websvc"], Duration::from_secs(60)),
        "rampart profile",
    );
    assert_eq!(assert_fewer_caps_than_docker(&dir), vec!["CAP_SETGID", "CAP_SETUID"], "needed");
    assert!(dir.text("capabilities.txt").contains("--cap-drop ALL --cap-add SETGID --cap-add SETUID"));
    let k8s: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&dir.text("k8s-security-context.yaml")).expect("yaml");
    assert_eq!(k8s["securityContext"]["capabilities"]["add"][0], "SETGID");
    assert_eq!(k8s["securityContext"]["capabilities"]["drop"][0], "ALL");

    // The SELinux module is real CIL: the Debian toolchain compiles it into the
    // installed reference policy (SELinux cannot be enforced on this kernel).
    let cil = dir.0.join("rampart_websvc.cil");
    let cil_text = std::fs::read_to_string(&cil).expect("CIL module");
    assert!(cil_text.contains("(allow rampart_websvc_t http_port_t (tcp_socket (name_bind)))"), "{cil_text}");
    assert!(cil_text.contains("(allow rampart_websvc_t self (capability (setgid setuid)))"), "{cil_text}");
    let install =
        Command::new("semodule").args(["-s", "default", "-i"]).arg(&cil).output().expect("run semodule");
    let _ = Command::new("semodule").args(["-s", "default", "-r", "rampart_websvc"]).output();
    assert!(
        install.status.success(),
        "semodule -i failed:\n{}\n{cil_text}",
        String::from_utf8_lossy(&install.stderr)
    );

    let out = rampart_output(&["profile", "verify", dir.path()], Duration::from_secs(300));
    let stdout = ok(&out, "rampart profile verify (service)");
    let report = dir.json("verify.json");
    assert_eq!(report["passed"], true, "{report:#}\n{stdout}");
    let answer = &report["profiled"]["answers"][0];
    assert_eq!(answer[0], 80);
    assert!(
        answer[1].as_str().unwrap_or("").contains("200 OK") && answer[1].as_str().unwrap().contains("served"),
        "{answer}"
    );
    assert_eq!(report["baseline"]["answers"], report["profiled"]["answers"]);

    // Verify can fail: without `setuid` the server cannot drop root and never
    // answers, and verify must say so.
    let path = dir.0.join("seccomp.json");
    let mut profile: Value = serde_json::from_str(&dir.text("seccomp.json")).unwrap();
    for entry in profile["syscalls"].as_array_mut().unwrap() {
        entry["names"].as_array_mut().unwrap().retain(|n| n != "setuid");
    }
    std::fs::write(&path, serde_json::to_string(&profile).unwrap()).unwrap();
    let out =
        rampart_output(&["profile", "verify", dir.path(), "--timeout", "10s"], Duration::from_secs(300));
    assert!(
        !out.status.success(),
        "verify passed a profile without setuid:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(dir.json("verify.json")["same_behaviour"], false);

    // An edited recording cannot make verify start a privileged container: the
    // added option is named and refused before anything runs.
    let mut rec = dir.json("recording.json");
    let command = rec["command"].as_array_mut().expect("a recorded command");
    let run_at = command.iter().position(|a| a == "run").expect("docker run");
    command.insert(run_at + 1, "--privileged".into());
    std::fs::write(dir.0.join("recording.json"), serde_json::to_string(&rec).unwrap()).unwrap();
    let out = rampart_output(&["profile", "verify", dir.path()], Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--privileged") && stderr.contains("--trust-recording"),
        "{stderr}"
    );
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn attach_to_a_running_container_and_compare_its_capabilities() {
    preflight();
    let c = Container::sh(
        "hcaps",
        &["--cap-add", "SYS_ADMIN"],
        "while true; do cat /etc/hostname > /dev/null; sleep 0.3; done",
    );
    let dir = TempDir::new("attach");
    let out = rampart_output(
        &["record", "--container", &c.name, "--duration", "4s", "-o", dir.path()],
        Duration::from_secs(120),
    );
    ok(&out, "rampart record --container");
    let rec = dir.json("recording.json");
    assert_eq!(rec["run"]["image"], IMAGE, "start configuration kept for verify: {:#}", rec["run"]);
    assert_eq!(rec["files"]["/etc/hostname"]["read"], true);
    assert!(
        strings(&rec["syscalls"]).contains(&"nanosleep".to_string())
            || strings(&rec["syscalls"]).contains(&"clock_nanosleep".to_string())
    );

    let out =
        rampart_output(&["caps", "--container", &c.name, "--recording", dir.path()], Duration::from_secs(30));
    let text = ok(&out, "rampart caps");
    assert!(text.contains("! CAP_SYS_ADMIN"), "{text}");
    let unneeded =
        text.lines().find(|l| l.contains("not needed per the recording")).unwrap_or_else(|| panic!("{text}"));
    assert!(unneeded.contains("SYS_ADMIN"), "{unneeded}");

    let out = rampart_output(&["caps", "--container", &c.name, "--json"], Duration::from_secs(30));
    let list: Value = serde_json::from_str(&ok(&out, "rampart caps --json")).expect("json");
    let proc0 = &list[0]["processes"][0];
    assert!(strings(&proc0["effective"]).contains(&"CAP_SYS_ADMIN".to_string()), "{list:#}");
    assert!(!strings(&proc0["effective"]).contains(&"CAP_SYS_MODULE".to_string()));
}

/// `wait_with_output` with a deadline (kill on expiry).
trait WaitTimeout {
    fn wait_with_output_timeout(self, timeout: Duration) -> std::process::Output;
}

impl WaitTimeout for std::process::Child {
    fn wait_with_output_timeout(mut self, timeout: Duration) -> std::process::Output {
        let deadline = Instant::now() + timeout;
        while self.try_wait().expect("try_wait").is_none() {
            if Instant::now() > deadline {
                let _ = self.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_with_output().expect("output")
    }
}
