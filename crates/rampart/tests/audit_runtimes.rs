//! `rampart audit` of running containers of runtimes other than Docker, each
//! started with one bad setting: a podman container with SYS_ADMIN added and
//! the host's pid namespace, containerd containers (`ctr`, in a namespace of
//! the test's own) with `--privileged` and with `--net-host`, and a pod of
//! containerd's CRI plugin whose container adds SYS_PTRACE. The JSON report
//! must give each its finding, naming the container, id, image and runtime
//! (and for the pod's container its pod), read from the OCI spec the runtime
//! wrote (the report's location).
//!
//! Needs root, dockerd (the test image is saved from Docker), containerd with
//! its CRI plugin on /run/containerd/containerd.sock and podman's API service
//! (scripts/setup.sh); fails, never skips, without them.

mod common;

use common::*;
use runtime::cri::testing::{ensure_images, ContainerSpec, PodSpec, TestPod};
use runtime::DEFAULT_CRI_CONTAINERD_SOCKET;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use testkit::{podman, CTR_IMAGE, PODMAN_IMAGE};

/// A podman container, removed on drop.
struct PodmanCtr {
    name: String,
    id: String,
}

impl PodmanCtr {
    fn run(prefix: &str, args: &[&str]) -> PodmanCtr {
        preflight_podman();
        let name = unique(prefix);
        let mut full = vec!["run", "-d", "--name", &name];
        full.extend_from_slice(args);
        full.extend([IMAGE, "sleep", "600"]);
        let id = podman(&full).unwrap_or_else(|e| panic!("{e}"));
        assert!(is_full_id(&id), "podman run printed {id:?}");
        PodmanCtr { name, id }
    }
}

impl Drop for PodmanCtr {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.name]);
    }
}

/// A containerd namespace of the test's own with the test image; its
/// containers, image and the namespace are removed on drop.
struct CtrNamespace {
    name: String,
}

impl CtrNamespace {
    fn new(prefix: &str) -> CtrNamespace {
        preflight_containerd();
        let name = unique(prefix);
        testkit::import_into_containerd(&name);
        CtrNamespace { name }
    }

    fn ctr(&self, args: &[&str]) -> Result<String, String> {
        testkit::ctr(&self.name, args)
    }

    fn run(&self, id: &str, flags: &[&str]) {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend([CTR_IMAGE, id, "sleep", "600"]);
        self.ctr(&args).unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for CtrNamespace {
    fn drop(&mut self) {
        testkit::remove_containerd_namespace(&self.name);
    }
}

/// A CRI pod (containerd's CRI plugin) with one container, removed on drop.
struct Pod {
    rt: tokio::runtime::Runtime,
    pod: Option<TestPod>,
    name: String,
    id: String,
}

const POD_NAMESPACE: &str = "rampart-audit";

impl Pod {
    fn start(prefix: &str, container: ContainerSpec) -> Pod {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let sock = Path::new(DEFAULT_CRI_CONTAINERD_SOCKET);
        rt.block_on(ensure_images(sock, IMAGE)).unwrap_or_else(|e| {
            panic!("CRI images not ready ({e}); run scripts/containerd.sh start and tests/image/pause.sh")
        });
        let name = unique(prefix);
        let spec = PodSpec::new(&name, POD_NAMESPACE);
        let mut pod =
            rt.block_on(TestPod::run(sock, spec)).unwrap_or_else(|e| panic!("run pod sandbox {name}: {e}"));
        let id = rt
            .block_on(pod.start_container(&container))
            .unwrap_or_else(|e| panic!("start container in {name}: {e}"));
        Pod { rt, pod: Some(pod), name, id }
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if let Some(pod) = self.pod.take() {
            if let Err(e) = self.rt.block_on(pod.remove()) {
                eprintln!("removing pod {}: {e}", self.name);
            }
        }
    }
}

fn audit(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("audit")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn rampart");
    out
}

fn json_of(o: &Output) -> Value {
    let text = || {
        format!(
            "status {}\nstdout:\n{}\nstderr:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(o.status.success(), "{}", text());
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text()))
}

/// The report's entry with this id.
fn entry<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no container {id} in the report: {report:#}"))
}

fn checks(c: &Value) -> Vec<&str> {
    c["findings"].as_array().unwrap().iter().map(|f| f["check"].as_str().unwrap()).collect()
}

fn finding<'a>(c: &'a Value, check: &str) -> &'a Value {
    c["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding for {}: {:?}", c["name"], checks(c)))
}

fn spec_file(c: &Value) -> String {
    let f = c["location"]["file"].as_str().unwrap_or_else(|| panic!("no spec location: {c:#}")).to_string();
    assert!(f.ends_with("/config.json") && Path::new(&f).is_file(), "{f}");
    f
}

#[test]
#[ignore = "privileged: needs root, dockerd, containerd with its CRI plugin and podman (scripts/test.sh runs it)"]
fn audits_running_containers_of_every_runtime() {
    preflight_containerd();
    preflight_podman();
    let podman = PodmanCtr::run("audit-podman", &["--cap-add", "SYS_ADMIN", "--pid", "host"]);
    let ns = CtrNamespace::new("audit-ctrd");
    let (priv_id, net_id) = (format!("priv-{}", std::process::id()), format!("net-{}", std::process::id()));
    let priv_name = format!("nice-{priv_id}");
    ns.run(&priv_id, &["--privileged", "--label", &format!("nerdctl/name={priv_name}")]);
    ns.run(&net_id, &["--net-host"]);
    let mut app = ContainerSpec::new("app", IMAGE, &["sleep", "600"]);
    app.cap_add = vec!["SYS_PTRACE".into()];
    let pod = Pod::start("audit-pod", app);

    let report = json_of(&audit(&["--format", "json"]));
    assert_eq!(report["errors"], serde_json::json!([]), "{report:#}");

    // podman: SYS_ADMIN and the host's pid namespace, phrased as podman flags.
    let p = entry(&report, &podman.id);
    assert_eq!(
        (p["kind"].as_str(), p["name"].as_str()),
        (Some("podman"), Some(podman.name.as_str())),
        "{p:#}"
    );
    assert_eq!(p["image"], PODMAN_IMAGE);
    let cap = finding(p, "cap-added");
    assert!(cap["evidence"].as_str().unwrap().contains("SYS_ADMIN"), "{cap:#}");
    assert!(cap["remediation"].as_str().unwrap().contains("--cap-add SYS_ADMIN"), "{cap:#}");
    assert!(finding(p, "host-pid")["remediation"].as_str().unwrap().contains("--pid host"));
    assert!(spec_file(p).contains(&format!("-containers/{}/userdata/config.json", podman.id)));
    // Read through the running container's root: the test image has a shell.
    finding(p, "image-shell");
    // Not in an OCI spec, so not reported: restart policy, ports, health check.
    for na in ["restart-policy", "no-healthcheck", "port-all-interfaces"] {
        assert!(!checks(p).contains(&na), "{na} for a spec-audited container: {:?}", checks(p));
    }

    // containerd: privileged (read from the spec: every capability, no
    // seccomp, every device), named by its nerdctl name.
    let c = entry(&report, &priv_id);
    assert_eq!(
        (c["kind"].as_str(), c["name"].as_str()),
        (Some("containerd"), Some(priv_name.as_str())),
        "{c:#}"
    );
    assert_eq!(
        (c["image"].as_str(), c["runtime_namespace"].as_str()),
        (Some(CTR_IMAGE), Some(ns.name.as_str()))
    );
    finding(c, "privileged");
    assert_eq!(
        spec_file(c),
        format!("/run/containerd/io.containerd.runtime.v2.task/{}/{priv_id}/config.json", ns.name)
    );
    let n = entry(&report, &net_id);
    assert_eq!(
        (n["kind"].as_str(), n["name"].as_str()),
        (Some("containerd"), Some(net_id.as_str())),
        "{n:#}"
    );
    assert!(finding(n, "host-network")["evidence"].as_str().unwrap().contains("linux.namespaces"));
    assert!(!checks(n).contains(&"privileged"), "{:?}", checks(n));
    assert!(!checks(c).contains(&"host-network"), "{:?}", checks(c));

    // CRI: the pod's container, named namespace/pod/container, fixed in the pod spec.
    let k = entry(&report, &pod.id);
    assert_eq!(k["kind"], "containerd", "{k:#}");
    assert_eq!(k["name"], format!("{POD_NAMESPACE}/{}/app", pod.name).as_str(), "{k:#}");
    assert_eq!(k["pod"], format!("{POD_NAMESPACE}/{}", pod.name).as_str(), "{k:#}");
    assert_eq!((k["image"].as_str(), k["runtime_namespace"].as_str()), (Some(IMAGE), Some("k8s.io")));
    let ptrace = finding(k, "cap-added");
    assert!(ptrace["evidence"].as_str().unwrap().contains("SYS_PTRACE"), "{ptrace:#}");
    assert!(ptrace["remediation"].as_str().unwrap().contains("securityContext"), "{ptrace:#}");
    // The pod uses the node's network (PodSpec's default).
    finding(k, "host-network");
    // The pause container is the runtime's, not the user's: not audited.
    let sandboxes: Vec<&Value> = report["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().contains(&pod.name))
        .collect();
    assert_eq!(sandboxes.len(), 1, "{sandboxes:#?}");

    // The binds runtimes add themselves (/etc/hosts, resolv.conf, hostname,
    // /dev/shm from their own state directories) are not findings.
    for e in [p, c, n, k] {
        for no in ["sensitive-mount", "runtime-socket-mount", "host-path-mount", "host-device"] {
            assert!(!checks(e).contains(&no), "{no} for {}: {:#}", e["name"], e["findings"]);
        }
    }

    // --container finds them by name in any runtime; only those are audited.
    let r = json_of(&audit(&["--format", "json", "--container", &podman.name, "--container", &priv_name]));
    let ids: Vec<&str> =
        r["containers"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&podman.id.as_str()) && ids.contains(&priv_id.as_str()), "{ids:?}");
    let missing = unique("audit-none");
    let o = audit(&["--container", &missing]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("no container {missing:?}")), "{o:?}");

    // A runtime given by its socket that does not answer is an error; one
    // found at its usual place, or off, is not needed.
    let o = audit(&["--podman-socket", "/nonexistent/podman.sock", "--containerd-socket", "off"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/podman.sock"), "{o:?}");
    let r = json_of(&audit(&["--format", "json", "--podman-socket", "off", "--containerd-socket", "off"]));
    assert!(r["containers"].as_array().unwrap().iter().all(|c| c["kind"] == "docker"), "{r:#}");
    drop(pod);
}
