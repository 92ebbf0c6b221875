//! rampart's own image and its Kubernetes manifests (deploy/kubernetes/).
//!
//! - The manifests validate offline against the Kubernetes 1.31 API schema
//!   (`kubernetes-validate`, pinned, installed by scripts/setup.sh), and
//!   kustomization.yaml lists every manifest.
//! - The image, built by the documented `scripts/build-image.sh`, runs as the
//!   DaemonSet says, with the pod spec read from deploy/kubernetes/daemonset.yaml
//!   (one source of truth): capabilities, hostPID, the hostPath mounts, the
//!   ConfigMap's files, read-only root, no privilege escalation, not privileged.
//!   It runs through containerd's CRI plugin, as the kubelet would run it:
//!   Docker 20.10 cannot express the DaemonSet's capabilities (it refuses
//!   CAP_BPF and CAP_PERFMON as unknown). The test's only departures from the
//!   manifest: the pod shares the host's network (no CNI here), so the metrics
//!   address is a free loopback port; /var/lib/rampart and the BPF pin
//!   directory are the test's own, so parallel tests share no policy store.
//!
//! With the DaemonSet's set, the agent detects a shell in a Docker container
//! (the alert names it) and enforces a network policy on it. Without CAP_KILL
//! it starts, says kill actions are off (stderr, /metrics, `rampart status`)
//! and still detects. Without CAP_BPF it exits non-zero naming CAP_BPF.
//!
//! Under Docker (README's "Run from the image on Docker"), the same pod spec
//! runs with CAP_SYS_ADMIN standing in for CAP_BPF and CAP_PERFMON, the one
//! substitution Docker 20.10 forces, and the ConfigMap's config unchanged (its
//! own network namespace): it detects a shell in another container.
//!
//! Needs root, dockerd, containerd with its CRI plugin (scripts/setup.sh);
//! fails, never skips, without them.

mod common;

use common::*;
use runtime::cri::testing::{ensure_images, ContainerSpec, MountSpec, PodSpec, TestPod};
use runtime::DEFAULT_CRI_CONTAINERD_SOCKET;
use serde_json::Value;
use serde_yaml_ng::Value as Yaml;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const IMAGE_NAME: &str = "rampart:latest";
const KUBE_VALIDATE: &str = "/opt/rampart-tools/venv/bin/kubernetes-validate";
/// The Kubernetes version the manifests are checked against (the pinned
/// kubernetes-validate 1.31.0 carries its schemas).
const KUBERNETES_VERSION: &str = "1.31.0";

fn manifests_dir() -> PathBuf {
    repo_root().join("deploy/kubernetes")
}

fn load_yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn strs(v: &Yaml) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The DaemonSet's pod, as the test runs it
// ---------------------------------------------------------------------------

/// What of daemonset.yaml the container runtime is asked for.
#[derive(Debug)]
struct PodFromManifest {
    host_pid: bool,
    cap_add: Vec<String>,
    cap_drop: Vec<String>,
    privileged: bool,
    no_new_privs: bool,
    readonly_rootfs: bool,
    run_as_user: Option<i64>,
    run_as_group: Option<i64>,
    seccomp: String,
    /// (volume, mountPath, readOnly)
    mounts: Vec<(String, String, bool)>,
    /// volume name -> hostPath
    host_paths: Vec<(String, String)>,
    /// The ConfigMap volume: its name and (key, path) items.
    config_volume: (String, Vec<(String, String)>),
}

fn daemonset_pod() -> PodFromManifest {
    let ds = load_yaml(&manifests_dir().join("daemonset.yaml"));
    let spec = &ds["spec"]["template"]["spec"];
    let containers = spec["containers"].as_sequence().expect("containers");
    assert_eq!(containers.len(), 1, "one container in the DaemonSet");
    let c = &containers[0];
    let sc = &c["securityContext"];
    let mounts = c["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["mountPath"].as_str().unwrap().to_string(),
                m["readOnly"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let mut host_paths = Vec::new();
    let mut config_volume = None;
    for v in spec["volumes"].as_sequence().expect("volumes") {
        let name = v["name"].as_str().unwrap().to_string();
        if let Some(p) = v["hostPath"]["path"].as_str() {
            host_paths.push((name, p.to_string()));
        } else if v["configMap"].is_mapping() {
            let items = v["configMap"]["items"]
                .as_sequence()
                .expect("configMap items")
                .iter()
                .map(|i| (i["key"].as_str().unwrap().to_string(), i["path"].as_str().unwrap().to_string()))
                .collect();
            config_volume = Some((name, items));
        } else {
            panic!("volume {name}: only hostPath and configMap volumes are expected: {v:?}");
        }
    }
    PodFromManifest {
        host_pid: spec["hostPID"].as_bool().unwrap_or(false),
        cap_add: strs(&sc["capabilities"]["add"]),
        cap_drop: strs(&sc["capabilities"]["drop"]),
        privileged: sc["privileged"].as_bool().unwrap_or(false),
        no_new_privs: sc["allowPrivilegeEscalation"].as_bool() == Some(false),
        readonly_rootfs: sc["readOnlyRootFilesystem"].as_bool().unwrap_or(false),
        run_as_user: sc["runAsUser"].as_i64(),
        run_as_group: sc["runAsGroup"].as_i64(),
        seccomp: sc["seccompProfile"]["type"].as_str().unwrap_or("").to_string(),
        mounts,
        host_paths,
        config_volume: config_volume.expect("a configMap volume"),
    }
}

/// The ConfigMap's data.
fn configmap_data() -> Vec<(String, String)> {
    let cm = load_yaml(&manifests_dir().join("configmap.yaml"));
    cm["data"]
        .as_mapping()
        .expect("configmap data")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.as_str().unwrap().to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// Tests without privileges
// ---------------------------------------------------------------------------

#[test]
fn kustomization_lists_every_manifest() {
    let k = load_yaml(&manifests_dir().join("kustomization.yaml"));
    let listed: BTreeSet<String> = strs(&k["resources"]).into_iter().collect();
    let present: BTreeSet<String> = std::fs::read_dir(manifests_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml resources vs the manifests in deploy/kubernetes");
}

#[test]
fn daemonset_asks_for_least_privileges_only() {
    let pod = daemonset_pod();
    assert!(pod.host_pid, "the agent needs the host's PID namespace");
    assert!(!pod.privileged, "never privileged");
    assert_eq!(pod.cap_drop, vec!["ALL"], "every capability dropped first");
    let add: BTreeSet<&str> = pod.cap_add.iter().map(String::as_str).collect();
    assert_eq!(add, BTreeSet::from(["BPF", "PERFMON", "NET_ADMIN", "SYS_PTRACE", "KILL"]));
    assert!(pod.no_new_privs && pod.readonly_rootfs);
    // Read-only where nothing is written: config, tracefs, runtime sockets.
    for (vol, path, ro) in &pod.mounts {
        if ["/etc/rampart", "/sys/kernel/tracing", "/run"].contains(&path.as_str()) {
            assert!(ro, "{vol} at {path} must be read-only");
        }
    }
    let text = std::fs::read_to_string(manifests_dir().join("daemonset.yaml")).unwrap();
    assert!(!text.contains("privileged: true"), "{text}");
}

/// The manifests against the API schema of a pinned Kubernetes, offline.
#[test]
#[ignore = "privileged: needs kubernetes-validate from scripts/setup.sh (scripts/test.sh runs it)"]
fn manifests_validate_against_the_kubernetes_schema() {
    assert!(
        Path::new(KUBE_VALIDATE).is_file(),
        "{KUBE_VALIDATE} missing: scripts/setup.sh installs kubernetes-validate"
    );
    let files: Vec<PathBuf> = std::fs::read_dir(manifests_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| p.file_name().unwrap() != "kustomization.yaml") // not a Kubernetes API kind
        .collect();
    assert!(files.len() >= 6, "{files:?}");
    let out = Command::new(KUBE_VALIDATE)
        .args(["--strict", "-k", KUBERNETES_VERSION])
        .args(&files)
        .output()
        .expect("run kubernetes-validate");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubernetes-validate failed:\n{text}");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(text.contains(&format!("{name} passed")), "{name} not reported as passed:\n{text}");
    }
    // The validator does refuse what the schema forbids (a check that can fail).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let ds = std::fs::read_to_string(manifests_dir().join("daemonset.yaml")).unwrap();
    std::fs::write(&bad, ds.replace("hostPID: true", "hostPID: true\n      hostPIDs: true")).unwrap();
    let out =
        Command::new(KUBE_VALIDATE).args(["--strict", "-k", KUBERNETES_VERSION]).arg(&bad).output().unwrap();
    assert!(!out.status.success(), "an unknown pod field passed validation");
}

// ---------------------------------------------------------------------------
// The image under the DaemonSet's pod spec (CRI)
// ---------------------------------------------------------------------------

/// One agent pod at a time: each binds the host's network namespace.
static ONE_AGENT: Mutex<()> = Mutex::new(());

/// Builds rampart:latest with the documented command (once per test binary)
/// and makes containerd's CRI hold it and the test image.
fn image_in_cri(rt: &tokio::runtime::Runtime) {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        preflight();
        testkit::require_containerd();
        // The binary this test run built (a nested `cargo build` would resolve
        // the dev-dependencies' features differently and rebuild).
        let out = Command::new(repo_root().join("scripts/build-image.sh"))
            .env("RAMPART_BINARY", env!("CARGO_BIN_EXE_rampart"))
            .output()
            .expect("run scripts/build-image.sh");
        assert!(
            out.status.success(),
            "scripts/build-image.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let sock = Path::new(DEFAULT_CRI_CONTAINERD_SOCKET);
        for image in [IMAGE_NAME, IMAGE] {
            rt.block_on(ensure_images(sock, image))
                .unwrap_or_else(|e| panic!("importing {image} into containerd's CRI: {e}"));
        }
    });
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The agent's pod, from daemonset.yaml; removed on drop.
struct AgentPod {
    rt: tokio::runtime::Runtime,
    pod: Option<TestPod>,
    id: String,
    log: PathBuf,
    metrics: String,
    pin_dir: PathBuf,
    _dirs: Vec<tempfile::TempDir>,
    _one: std::sync::MutexGuard<'static, ()>,
}

impl AgentPod {
    /// Starts the image with the DaemonSet's pod spec, minus `without`
    /// capabilities, with `extra_rules` (file name, text) added to rules.d/.
    fn start(prefix: &str, without: &[&str], extra_rules: &[(&str, &str)]) -> AgentPod {
        let one = ONE_AGENT.lock().unwrap_or_else(|e| e.into_inner());
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        image_in_cri(&rt);
        let m = daemonset_pod();
        let name = unique(prefix);
        let (logs, config, state) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let port = free_port();
        let metrics = format!("127.0.0.1:{port}");

        // The ConfigMap volume's files, as the kubelet would project them.
        let data = configmap_data();
        for (key, path) in &m.config_volume.1 {
            let value =
                &data.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("configmap key {key}")).1;
            // Host network in the test: a free loopback port, not 0.0.0.0:9376.
            let value = if key == "config.yaml" {
                assert!(value.contains("address: 0.0.0.0:9376"), "{value}");
                value.replace("0.0.0.0:9376", &metrics)
            } else {
                value.clone()
            };
            let file = config.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, value).unwrap();
        }
        for (file, text) in extra_rules {
            std::fs::write(config.path().join("rules.d").join(file), text).unwrap();
        }
        let mut mounts = Vec::new();
        for (vol, path, ro) in &m.mounts {
            let host_path = if *vol == m.config_volume.0 {
                config.path().display().to_string()
            } else {
                let hp =
                    &m.host_paths.iter().find(|(n, _)| n == vol).unwrap_or_else(|| panic!("volume {vol}")).1;
                if hp == "/var/lib/rampart" {
                    state.path().display().to_string()
                } else {
                    hp.clone()
                }
            };
            mounts.push(MountSpec { host_path, container_path: path.clone(), readonly: *ro });
        }
        assert!(m.seccomp == "Unconfined", "the CRI default here is no seccomp profile: {}", m.seccomp);
        let pin_dir = PathBuf::from(format!("/sys/fs/bpf/{name}"));
        let mut spec = PodSpec::new(&name, "rampart");
        spec.host_pid = m.host_pid;
        spec.log_directory = Some(logs.path().to_path_buf());
        let mut c = ContainerSpec::new("rampart", IMAGE_NAME, &[]);
        c.mounts = mounts;
        c.cap_drop = m.cap_drop.clone();
        c.cap_add = m.cap_add.iter().filter(|a| !without.contains(&a.as_str())).cloned().collect();
        assert!(!m.privileged);
        c.no_new_privs = m.no_new_privs;
        c.readonly_rootfs = m.readonly_rootfs;
        c.run_as_user = m.run_as_user;
        c.run_as_group = m.run_as_group;
        c.env = vec![("RAMPART_NETPOLICY_PIN".into(), pin_dir.display().to_string())];
        let sock = Path::new(DEFAULT_CRI_CONTAINERD_SOCKET);
        let mut pod =
            rt.block_on(TestPod::run(sock, spec)).unwrap_or_else(|e| panic!("run pod sandbox {name}: {e}"));
        let id =
            rt.block_on(pod.start_container(&c)).unwrap_or_else(|e| panic!("start rampart in {name}: {e}"));
        let log = logs.path().join("rampart.log");
        AgentPod {
            rt,
            pod: Some(pod),
            id,
            log,
            metrics,
            pin_dir,
            _dirs: vec![logs, config, state],
            _one: one,
        }
    }

    /// The container's log: (stream, line) pairs, CRI format
    /// `<time> <stdout|stderr> <F|P> <line>`.
    fn lines(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut parts = l.splitn(4, ' ');
                let (_ts, stream, _tag) = (parts.next()?, parts.next()?, parts.next()?);
                Some((stream.to_string(), parts.next().unwrap_or("").to_string()))
            })
            .collect()
    }

    fn stderr(&self) -> String {
        self.lines().into_iter().filter(|(s, _)| s == "stderr").map(|(_, l)| l + "\n").collect()
    }

    fn alerts(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|(s, _)| s == "stdout")
            .filter_map(|(_, l)| serde_json::from_str::<Value>(&l).ok())
            .filter(is_alert)
            .collect()
    }

    fn exit_code(&mut self) -> Option<i32> {
        let pod = self.pod.as_mut().unwrap();
        self.rt.block_on(pod.exit_code(&self.id)).unwrap()
    }

    /// Waits for `needle` on stderr; panics (with the log) if the agent exits first.
    fn wait_stderr(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stderr().contains(needle) {
            if let Some(code) = self.exit_code() {
                panic!("the agent exited ({code}) before `{needle}`:\n{}", self.stderr());
            }
            assert!(Instant::now() < deadline, "no `{needle}` within {timeout:?}:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_alert(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            if let Some(a) = self.alerts().into_iter().find(|a| pred(a)) {
                return a;
            }
            let seen: Vec<String> = self.alerts().iter().map(alert_brief).collect();
            assert!(
                Instant::now() < deadline,
                "no alert: {what}; alerts:\n{}\nstderr:\n{}",
                seen.join("\n"),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `ExecSync` in the agent's container (same capabilities and mounts).
    fn exec(&mut self, cmd: &[&str]) -> (i32, String) {
        let pod = self.pod.as_mut().unwrap();
        let r = self.rt.block_on(pod.exec_sync(&self.id, cmd, Duration::from_secs(60))).unwrap();
        (r.exit_code, format!("{}{}", String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr)))
    }

    fn wait_ready(&mut self) {
        self.wait_stderr(READY_LINE, READY_TIMEOUT);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, body) = http_get(&self.metrics, "/readyz");
            if code == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "/readyz is {code}: {body}\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(http_get(&self.metrics, "/healthz").0, 200);
    }

    fn metric_text(&self) -> String {
        let (code, body) = http_get(&self.metrics, "/metrics");
        assert_eq!(code, 200, "{body}");
        body
    }
}

impl Drop for AgentPod {
    fn drop(&mut self) {
        if let Some(pod) = self.pod.take() {
            if let Err(e) = self.rt.block_on(pod.remove()) {
                eprintln!("removing the agent's pod: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}

/// A metric's value without labels (`name value`), or with exactly `labels`.
fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() { format!("{name} ") } else { format!("{name}{{{labels}}} ") };
    text.lines().find_map(|l| l.strip_prefix(&key)).and_then(|v| v.trim().parse().ok())
}

fn feature_line<'a>(text: &'a str, feature: &str) -> Option<&'a str> {
    let needle = format!("rampart_feature_enabled{{feature=\"{feature}\"");
    text.lines().find(|l| l.starts_with(&needle))
}

/// linux/capability.h's number of a capability the DaemonSet may add.
fn cap_number(name: &str) -> u32 {
    match name {
        "KILL" => 5,
        "NET_ADMIN" => 12,
        "SYS_PTRACE" => 19,
        "PERFMON" => 38,
        "BPF" => 39,
        other => panic!("capability {other} is not one the DaemonSet should add"),
    }
}

/// `docker exec -t NAME sh -c ...`: a shell with a terminal in the container.
fn shell_in(c: &Container) {
    let out = docker(&["exec", "-t", &c.name, "sh", "-c", "echo interactive; true"]);
    assert!(out.status.success(), "docker exec -t: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and containerd's CRI (scripts/test.sh runs it)"]
fn image_under_the_daemonset_spec_detects_a_shell_and_enforces_a_policy() {
    preflight();
    let mut agent = AgentPod::start("deploy-full", &[], &[]);
    agent.wait_ready();
    let stderr = agent.stderr();
    assert!(!stderr.contains("is off"), "every feature should be on with the DaemonSet's set:\n{stderr}");
    let text = agent.metric_text();
    for f in ["network_policy", "kill_action", "process_details"] {
        let line = feature_line(&text, f).unwrap_or_else(|| panic!("no feature {f}:\n{text}"));
        assert!(line.ends_with(" 1"), "{line}");
    }

    // Detection: a shell in another (Docker) container, named in the alert.
    let victim = Container::sh("deploy-victim", &[], "rtest tcp-echo 7001 & exec rtest tcp-echo 7000");
    shell_in(&victim);
    let alert = agent.wait_alert("Terminal shell in the victim", |a| {
        is_alert_of(a, "Terminal shell in container", &victim.name)
    });
    assert!(alert["output"].as_str().unwrap_or("").contains(&victim.name), "{alert}");

    // Enforcement: a policy applied by the image's own rampart, in the pod.
    let ip = docker_ok(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", &victim.name]);
    let rtest = |args: &[&str]| {
        let mut exec = docker_cmd();
        exec.args(["exec", victim.name.as_str()]);
        rtest_through(exec, args)
    };
    wait_until("echo servers", Duration::from_secs(10), || rtest(&["tcp-connect", &ip, "7001"]).0);
    let policy = format!(
        "egress:\n  default: deny\n  allow:\n    - {{cidr: {ip}/32, ports: [7000], protocol: tcp}}\n"
    );
    // Beside the config, so the pod reads it at /etc/rampart/policy.yaml.
    let policy_file = agent._dirs[1].path().join("policy.yaml");
    std::fs::write(&policy_file, policy).unwrap();
    let (code, out) = agent.exec(&[
        "/usr/bin/rampart",
        "netpolicy",
        "apply",
        "--container",
        &victim.name,
        "-f",
        "/etc/rampart/policy.yaml",
    ]);
    assert_eq!(code, 0, "netpolicy apply in the agent's pod: {out}");
    assert!(out.contains("enforced on cgroup"), "{out}");
    assert_rtest_ok("tcp-connect to the allowed port", rtest(&["tcp-connect", &ip, "7000"]));
    assert_rtest_eperm("tcp-connect to a denied port", rtest(&["tcp-connect", &ip, "7001"]));
    // The agent itself reads the denial and raises its alert.
    agent.wait_alert("Connection denied by network policy", |a| {
        is_alert_of(a, "Connection denied by network policy", &victim.name)
    });

    // `rampart status` where the agent runs: exactly the DaemonSet's
    // capabilities are effective, and every feature is on.
    let (code, out) = agent.exec(&["/usr/bin/rampart", "status"]);
    assert_eq!(code, 0, "{out}");
    let want: u64 = daemonset_pod().cap_add.iter().map(|c| 1u64 << cap_number(c)).sum();
    assert!(out.contains(&format!("privileges: (CapEff {want:016x})")), "want CapEff {want:016x}:\n{out}");
    assert!(out.contains("features off: none"), "{out}");

    // The figures the DaemonSet's requests and limits come from.
    let text = agent.metric_text();
    let rss = metric(&text, "rampart_process_resident_memory_bytes", "")
        .or_else(|| metric(&text, "process_resident_memory_bytes", ""))
        .expect("the agent's RSS in /metrics");
    let cpu = metric(&text, "rampart_process_cpu_seconds_total", "")
        .or_else(|| metric(&text, "process_cpu_seconds_total", ""))
        .unwrap_or(-1.0);
    eprintln!("deploy_image: agent RSS {:.1} MiB, CPU {cpu:.2} s since start", rss / 1048576.0);
    assert!(rss < 512.0 * 1048576.0, "RSS {rss} above the DaemonSet's 512Mi limit");
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and containerd's CRI (scripts/test.sh runs it)"]
fn without_cap_kill_the_agent_starts_with_kill_actions_off_and_still_detects() {
    preflight();
    let rule = "- rule: Shadow read in deploy test container\n  desc: kill whoever reads /etc/shadow in the test's container\n  condition: evt.type in (open, openat) and fd.name = /etc/shadow and container.name startswith rampart-it-deploy-victim2\n  output: \"shadow read (proc=%proc.name container=%container.name)\"\n  priority: CRITICAL\n  actions: [{kill: {in_kernel: false}}]\n";
    let mut agent = AgentPod::start("deploy-nokill", &["KILL"], &[("kill-test.yaml", rule)]);
    agent.wait_ready();
    let stderr = agent.stderr();
    assert!(stderr.contains("warning: kill_action is off: CAP_KILL missing"), "{stderr}");
    let line =
        feature_line(&agent.metric_text(), "kill_action").expect("kill_action in /metrics").to_string();
    assert!(line.ends_with(" 0") && line.contains("CAP_KILL missing"), "{line}");
    let (code, out) = agent.exec(&["/usr/bin/rampart", "status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("CAP_KILL") && out.contains("MISSING"), "{out}");
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("kill_action") && l.contains("CAP_KILL missing")),
        "{out}"
    );

    let victim = Container::run("deploy-victim2", &[], &["sleep", "120"]);
    shell_in(&victim);
    agent.wait_alert("Terminal shell in the victim", |a| {
        is_alert_of(a, "Terminal shell in container", &victim.name)
    });

    // A kill from userspace is skipped and says why; the reader lives on (the
    // in-kernel kill, bpf_send_signal, needs no CAP_KILL: the rule opts out).
    let out = victim.exec(&["sh", "-c", "read x < /etc/shadow; sleep 2; echo survived"]);
    assert!(out.contains("survived"), "{out}");
    let report = agent.wait_alert("the kill action's report", |a| {
        alert_rule(a) == "Response action" && a["output_fields"]["action"] == "kill"
    });
    assert_eq!(report["output_fields"]["outcome"], "skipped", "{report}");
    let detail = report["output_fields"]["detail"].as_str().unwrap_or("");
    assert!(detail.contains("unavailable: CAP_KILL missing"), "{report}");
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and containerd's CRI (scripts/test.sh runs it)"]
fn without_cap_bpf_the_agent_exits_naming_it() {
    preflight();
    let mut agent = AgentPod::start("deploy-nobpf", &["BPF"], &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(code) = agent.exit_code() {
            break code;
        }
        assert!(Instant::now() < deadline, "the agent still runs without CAP_BPF:\n{}", agent.stderr());
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = agent.stderr();
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("missing privileges: CAP_BPF") && stderr.contains("needed by the eBPF sensor"),
        "{stderr}"
    );
    assert!(!stderr.contains(READY_LINE), "{stderr}");
}

/// Docker 20.10 refuses CAP_BPF and CAP_PERFMON as unknown; CAP_SYS_ADMIN
/// includes both (bpf_capable(), perfmon_capable()).
fn docker_cap(name: &str) -> &str {
    match name {
        "BPF" | "PERFMON" => "SYS_ADMIN",
        other => other,
    }
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn image_on_docker_with_the_daemonset_mounts_detects_a_shell() {
    preflight();
    let _one = ONE_AGENT.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    image_in_cri(&rt);
    let m = daemonset_pod();
    let (config, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let data = configmap_data();
    for (key, path) in &m.config_volume.1 {
        let file = config.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &data.iter().find(|(k, _)| k == key).unwrap().1).unwrap();
    }
    let name = unique("deploy-docker");
    let pin = format!("/sys/fs/bpf/{name}");
    let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.clone()];
    assert!(m.host_pid && !m.privileged);
    args.push("--pid=host".into());
    if m.readonly_rootfs {
        args.push("--read-only".into());
    }
    if m.no_new_privs {
        args.extend(["--security-opt".into(), "no-new-privileges".into()]);
    }
    if let Some(u) = m.run_as_user {
        args.extend(["--user".into(), format!("{u}:{}", m.run_as_group.unwrap_or(u))]);
    }
    for c in &m.cap_drop {
        args.extend(["--cap-drop".into(), c.clone()]);
    }
    let adds: BTreeSet<&str> = m.cap_add.iter().map(|c| docker_cap(c)).collect();
    for c in adds {
        args.extend(["--cap-add".into(), c.to_string()]);
    }
    for (vol, path, ro) in &m.mounts {
        let host = if *vol == m.config_volume.0 {
            config.path().display().to_string()
        } else {
            let hp = &m.host_paths.iter().find(|(n, _)| n == vol).unwrap().1;
            if hp == "/var/lib/rampart" {
                state.path().display().to_string()
            } else {
                hp.clone()
            }
        };
        args.extend(["-v".into(), format!("{host}:{path}{}", if *ro { ":ro" } else { "" })]);
    }
    args.extend(["-e".into(), format!("RAMPART_NETPOLICY_PIN={pin}"), IMAGE_NAME.into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    docker_ok(&argv);
    struct Remove(String, String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = docker(&["rm", "-f", &self.0]);
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let _remove = Remove(name.clone(), pin);
    let logs = |stream_stdout: bool| {
        let o = docker(&["logs", &name]);
        String::from_utf8_lossy(if stream_stdout { &o.stdout } else { &o.stderr }).into_owned()
    };
    wait_until("the agent's sensor ready", READY_TIMEOUT, || logs(false).contains(READY_LINE));
    let stderr = logs(false);
    assert!(!stderr.contains("is off"), "{stderr}");
    // The ConfigMap's metrics address, on the container's own address.
    let ip = docker_ok(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", &name]);
    let addr = format!("{ip}:9376");
    wait_until("/readyz 200", Duration::from_secs(30), || http_get(&addr, "/readyz").0 == 200);

    let victim = Container::run("deploy-victim3", &[], &["sleep", "120"]);
    shell_in(&victim);
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let alerts: Vec<Value> =
            logs(true).lines().filter_map(|l| serde_json::from_str(l).ok()).filter(is_alert).collect();
        if alerts.iter().any(|a| is_alert_of(a, "Terminal shell in container", &victim.name)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no shell alert for {}:\n{}\n{}",
            victim.name,
            logs(true),
            logs(false)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, out) = {
        let o = docker(&["exec", &name, "/usr/bin/rampart", "status"]);
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
    };
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("through CAP_SYS_ADMIN") && out.contains("features off: none"), "{out}");
}
