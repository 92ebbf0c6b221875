//! The agent on a Kubernetes-style node: pods run by containerd's CRI plugin
//! (driven through the CRI API as the kubelet would: a sandbox from
//! rampart.local/pause, host network, cgroup parent /kubepods/besteffort/pod<uid>,
//! and a rampart-test container in it). An exec inside the pod's container
//! (CRI ExecSync) must carry the container and its pod; a rule on `k8s.pod.name`
//! must fire naming the pod; `freeze` must find the container by id.
//!
//! Needs root, dockerd and containerd with its CRI plugin on
//! /run/containerd/containerd.sock (scripts/setup.sh); fails, never skips,
//! without them.

mod common;

use common::*;
use runtime::cri::testing::{ensure_images, ContainerSpec, PodSpec, TestPod};
use runtime::DEFAULT_CRI_CONTAINERD_SOCKET;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const NAMESPACE: &str = "rampart-e2e";

/// A pod with one `sleep` container, removed on drop.
struct Pod {
    rt: tokio::runtime::Runtime,
    pod: Option<TestPod>,
    name: String,
    uid: String,
    id: String,
}

impl Pod {
    fn start(prefix: &str) -> Pod {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let sock = Path::new(DEFAULT_CRI_CONTAINERD_SOCKET);
        rt.block_on(ensure_images(sock, IMAGE)).unwrap_or_else(|e| {
            panic!("CRI images not ready ({e}); run scripts/containerd.sh start and tests/image/pause.sh")
        });
        let name = unique(prefix);
        let mut spec = PodSpec::new(&name, NAMESPACE);
        spec.labels.insert("app".into(), "rampart-e2e".into());
        let uid = spec.uid.clone();
        let mut pod =
            rt.block_on(TestPod::run(sock, spec)).unwrap_or_else(|e| panic!("run pod sandbox {name}: {e}"));
        let id = rt
            .block_on(pod.start_container(&ContainerSpec::new("app", IMAGE, &["sleep", "300"])))
            .unwrap_or_else(|e| panic!("start container in {name}: {e}"));
        Pod { rt, pod: Some(pod), name, uid, id }
    }

    /// `ExecSync` in the container; panics unless it exits 0.
    fn exec(&mut self, cmd: &[&str]) -> String {
        let pod = self.pod.as_mut().unwrap();
        let r = self.rt.block_on(pod.exec_sync(&self.id, cmd, Duration::from_secs(30))).unwrap();
        assert_eq!(r.exit_code, 0, "{cmd:?} in {}: {}", self.name, String::from_utf8_lossy(&r.stderr));
        String::from_utf8_lossy(&r.stdout).into_owned()
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

fn assert_pod_container(v: &Value, pod: &Pod) {
    let c = container_of(v).unwrap_or_else(|| panic!("no container: {v}"));
    assert_eq!(c["id"], pod.id.as_str(), "container.id: {v}");
    assert_eq!(c["name"], "app", "container name within the pod: {v}");
    assert_eq!(c["image"], IMAGE, "container.image: {v}");
    assert_eq!(c["runtime"], "containerd", "container.runtime: {v}");
    assert_eq!(c["runtime_namespace"], "k8s.io", "container.runtime_namespace: {v}");
    assert_eq!(c["pod_name"], pod.name.as_str(), "k8s.pod.name: {v}");
    assert_eq!(c["pod_namespace"], NAMESPACE, "k8s.ns.name: {v}");
    assert_eq!(c["pod_uid"], pod.uid.as_str(), "k8s.pod.uid: {v}");
    assert_eq!(c["pod_labels"]["app"], "rampart-e2e", "k8s.pod.labels: {v}");
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and containerd's CRI plugin (scripts/test.sh runs it)"]
fn exec_in_cri_pod_carries_pod_fields() {
    preflight_containerd();
    // The agent first: the pod is learned from the CRI's lifecycle.
    let mut agent = Agent::start(&[]);
    let mut pod = Pod::start("cri-ev");
    let mark = unique("mark").replace("rampart-it-", "");
    pod.exec(&[RTEST, "nop", &mark]);
    let ev =
        agent.expect(&format!("exec of `rtest nop {mark}` in pod {}", pod.name), |e| is_exec_with(e, &mark));
    assert_pod_container(&ev, &pod);
    assert_eq!(argv(&ev), vec![RTEST.to_string(), "nop".into(), mark.clone()], "argv: {ev}");
    let cgroup = pod.exec(&["cat", "/proc/self/cgroup"]);
    eprintln!("cgroup of an exec in {}:\n{cgroup}", pod.name);
    assert!(
        cgroup.lines().any(|l| l == format!("0::/kubepods/besteffort/pod{}/{}", pod.uid, pod.id)),
        "{cgroup}"
    );
    drop(pod);
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and containerd's CRI plugin (scripts/test.sh runs it)"]
fn rule_on_pod_name_alerts_naming_the_pod() {
    preflight_containerd();
    // The pod first: the agent learns it from its list at start.
    let mut pod = Pod::start("cri-run");
    let dir = std::env::temp_dir().join(unique("cri-rules"));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: exec_in_test_pod\n  desc: a process started in the e2e pod\n  \
             condition: evt.type in (execve, execveat) and k8s.pod.name = {} and k8s.ns.name = {NAMESPACE}\n  \
             output: \"exec in pod %k8s.pod.name ns=%k8s.ns.name uid=%k8s.pod.uid container=%k8s.container.name app=%k8s.pod.label.app cmd=%proc.cmdline\"\n  \
             priority: WARNING\n",
            pod.name
        ),
    )
    .unwrap();
    let mut agent = Agent::start_run(&["--no-default-rules", "--rules", rules.to_str().unwrap()]);
    let mark = unique("mark").replace("rampart-it-", "");
    pod.exec(&[RTEST, "nop", &mark]);
    let a = agent.expect(&format!("alert exec_in_test_pod for {mark}"), |v| {
        is_alert(v)
            && alert_rule(v) == "exec_in_test_pod"
            && v["output"].as_str().is_some_and(|o| o.contains(&mark))
    });
    let out = a["output"].as_str().unwrap();
    let want =
        format!("exec in pod {} ns={NAMESPACE} uid={} container=app app=rampart-e2e", pod.name, pod.uid);
    assert!(out.contains(&want), "alert output lacks {want:?}: {a}");
    assert_eq!(a["output_fields"]["k8s.pod.name"], pod.name.as_str(), "{a}");
    assert_eq!(a["output_fields"]["k8s.pod.uid"], pod.uid.as_str(), "{a}");
    assert_eq!(alert_priority(&a), "Warning", "{a}");
    assert_pod_container(&a, &pod);
    let _ = std::fs::remove_dir_all(&dir);
    drop(pod);
    agent.stop();
}

/// `freeze` finds a CRI container by an id prefix (through containerd's
/// containers in namespace k8s.io) and freezes its cgroup under the pod's;
/// `unfreeze` thaws it.
#[test]
#[ignore = "privileged: needs root, BPF, dockerd and containerd's CRI plugin (scripts/test.sh runs it)"]
fn freeze_finds_a_cri_container_by_id_prefix() {
    preflight_containerd();
    let pod = Pod::start("cri-freeze");
    let np = Np::new("cri-freeze");
    let events = Path::new("/sys/fs/cgroup/unified")
        .join(format!("kubepods/besteffort/pod{}/{}", pod.uid, pod.id))
        .join("cgroup.events");
    let frozen = || std::fs::read_to_string(&events).unwrap_or_else(|e| panic!("{}: {e}", events.display()));
    assert!(frozen().contains("frozen 0"), "{}", frozen());
    let out = np.ok(&["freeze", "--container", &pod.id[..12]]);
    assert!(out.contains("frozen with the cgroup v2 freezer"), "{out}");
    assert!(frozen().contains("frozen 1"), "{}", frozen());
    let out = np.ok(&["unfreeze", "--container", &pod.id[..12]]);
    assert!(out.contains("thawed"), "{out}");
    assert!(frozen().contains("frozen 0"), "{}", frozen());
}
