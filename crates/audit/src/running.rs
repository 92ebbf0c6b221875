//! Running containers of containerd, CRI-O and podman: audited from the OCI
//! runtime spec (`config.json`) each of them writes into the container's
//! bundle for runc/crun, parsed by [`crate::oci`], and named from what the
//! runtime's API reported ([`model::Container`]).
//!
//! Where the spec is (verified on containerd 1.6 and podman 4.3):
//! * containerd (its own API and its CRI plugin):
//!   `<state>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`,
//!   `<state>` being `/run/containerd` (k3s: `/run/k3s/containerd`);
//! * podman: `<graphroot>/<driver>-containers/<id>/userdata/config.json`
//!   (`/var/lib/containers/storage/overlay-containers/...`);
//! * CRI-O: the same layout, under its run root (`/run/containers/storage`)
//!   or its graph root.
//!
//! When none of these exists (a runtime configured with other roots), the
//! bundle is found through the container's init's parent: containerd's shim
//! runs in the bundle directory, conmon (podman, CRI-O) gets it as `-b DIR`.

use crate::config::{all_capabilities, Location, SourceKind, Subject};
use crate::Error;
use model::{Container, Runtime};
use std::path::{Path, PathBuf};

/// A spec larger than this is not a runtime's (runc refuses far smaller ones
/// in practice); reading stops there.
const MAX_SPEC_BYTES: u64 = 16 << 20;

/// The directories runtimes keep their bundles under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecRoots {
    /// containerd state directories (`--state`), holding `io.containerd.runtime.*`.
    pub containerd_state: Vec<PathBuf>,
    /// containers/storage roots (run root and graph root) of podman and CRI-O.
    pub storage: Vec<PathBuf>,
    /// Where `/proc` is, for the parent-process fallback.
    pub proc: PathBuf,
}

impl Default for SpecRoots {
    fn default() -> Self {
        SpecRoots {
            containerd_state: vec!["/run/containerd".into(), "/run/k3s/containerd".into()],
            storage: vec!["/var/lib/containers/storage".into(), "/run/containers/storage".into()],
            proc: "/proc".into(),
        }
    }
}

/// The source kind of a runtime's containers; `None` for Docker's (audited
/// from its inspect answer) and unknown runtimes.
pub fn kind_of(runtime: Option<Runtime>) -> Option<SourceKind> {
    match runtime? {
        Runtime::Containerd => Some(SourceKind::Containerd),
        Runtime::Crio => Some(SourceKind::Crio),
        Runtime::Podman => Some(SourceKind::Podman),
        Runtime::Docker | Runtime::Kubernetes => None,
    }
}

/// An id or namespace usable as one path component.
fn component(s: &str) -> Option<&str> {
    (!s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0'])).then_some(s)
}

/// Where the runtime of `c` keeps its spec, most likely first (paths that
/// may not exist; nothing is read).
pub fn spec_candidates(c: &Container, roots: &SpecRoots) -> Vec<PathBuf> {
    let Some(id) = component(&c.id) else { return Vec::new() };
    let mut out = Vec::new();
    match c.runtime {
        Some(Runtime::Containerd) => {
            let Some(ns) = c.runtime_namespace.as_deref().and_then(component) else { return out };
            for state in &roots.containerd_state {
                for shim in ["io.containerd.runtime.v2.task", "io.containerd.runtime.v1.linux"] {
                    out.push(state.join(shim).join(ns).join(id).join("config.json"));
                }
            }
        }
        Some(Runtime::Podman | Runtime::Crio) => {
            // podman writes the spec under its graph root, CRI-O under its run
            // root: try both, for every storage driver found there.
            let roots: Vec<&PathBuf> = if c.runtime == Some(Runtime::Crio) {
                roots.storage.iter().rev().collect()
            } else {
                roots.storage.iter().collect()
            };
            for root in roots {
                let mut drivers: Vec<String> = std::fs::read_dir(root)
                    .map(|d| {
                        d.flatten()
                            .filter_map(|e| e.file_name().into_string().ok())
                            .filter(|n| n.ends_with("-containers"))
                            .collect()
                    })
                    .unwrap_or_default();
                drivers.sort();
                if let Some(i) = drivers.iter().position(|d| d == "overlay-containers") {
                    drivers.swap(0, i);
                } else if drivers.is_empty() {
                    drivers.push("overlay-containers".into());
                }
                for d in drivers {
                    out.push(root.join(d).join(id).join("userdata").join("config.json"));
                }
            }
        }
        _ => {}
    }
    out
}

/// The bundle of the container whose init is `pid`, from its parent: conmon's
/// `-b DIR` / `--bundle DIR`, or the working directory of containerd's shim.
/// Only a directory holding a `config.json` is returned.
pub fn bundle_from_parent(proc: &Path, pid: u32) -> Option<PathBuf> {
    let stat = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
    let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
    let parent = proc.join(ppid.to_string());
    let cmdline = std::fs::read(parent.join("cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let prog = args.first().map(|a| String::from_utf8_lossy(a).into_owned()).unwrap_or_default();
    let base = prog.rsplit('/').next().unwrap_or("");
    let dir = if base == "conmon" {
        let mut it = args.iter().map(|a| String::from_utf8_lossy(a).into_owned());
        let mut found = None;
        while let Some(a) = it.next() {
            if a == "-b" || a == "--bundle" {
                found = it.next();
                break;
            }
            if let Some(v) = a.strip_prefix("--bundle=") {
                found = Some(v.to_string());
                break;
            }
        }
        PathBuf::from(found?)
    } else if base.starts_with("containerd-shim") {
        std::fs::read_link(parent.join("cwd")).ok()?
    } else {
        return None;
    };
    dir.join("config.json").is_file().then_some(dir)
}

/// The spec of a running container: the first candidate that exists, else
/// the bundle found through its init's parent.
pub fn find_spec(c: &Container, pid: Option<u32>, roots: &SpecRoots) -> Result<PathBuf, Error> {
    let candidates = spec_candidates(c, roots);
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    if let Some(dir) = pid.and_then(|p| bundle_from_parent(&roots.proc, p)) {
        return Ok(dir.join("config.json"));
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(Error::Invalid {
        path: candidates.first().cloned().unwrap_or_default(),
        reason: format!(
            "no OCI spec found for {} container {} (tried {}{})",
            c.runtime.map_or("unknown", |r| r.as_str()),
            c.id,
            if tried.is_empty() { "no path".to_string() } else { tried.join(", ") },
            if pid.is_some() { " and the init's parent" } else { "" }
        ),
    })
}

/// The kubelet's label naming a container within its pod.
const LABEL_K8S_CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// A pod's sandbox (pause) container, as the CRI lists it next to the pod's
/// containers: it has the pod's labels but no container name. It runs the
/// runtime's pause image with the runtime's settings, nothing a user wrote,
/// so it is not audited.
pub fn is_pod_sandbox(c: &Container) -> bool {
    c.pod_name.is_some() && !c.labels.contains_key(LABEL_K8S_CONTAINER_NAME)
}

/// The audit name of a container: `namespace/pod/container` in a Kubernetes
/// pod, else its name, else its id.
pub fn subject_name(c: &Container) -> String {
    match (&c.pod_namespace, &c.pod_name) {
        (Some(ns), Some(pod)) => {
            format!("{ns}/{pod}/{}", if c.name.is_empty() { c.short_id() } else { c.name.as_str() })
        }
        _ if !c.name.is_empty() => c.name.trim_start_matches('/').to_string(),
        _ => c.id.clone(),
    }
}

/// The subject of a running container of `c`'s runtime from its spec's text.
/// `pid` is its init's host pid: the image checks read `/proc/<pid>/root`.
pub fn subject_from_spec(
    c: &Container,
    pid: Option<u32>,
    spec_path: &Path,
    text: &str,
    proc: &Path,
) -> Result<Subject, Error> {
    let mut s = crate::oci::parse(spec_path, text)?;
    s.kind = kind_of(c.runtime).unwrap_or(SourceKind::Oci);
    s.name = subject_name(c);
    s.id = Some(c.id.clone());
    if !c.image.is_empty() {
        s.image = c.image.clone();
    }
    s.pod = match (&c.pod_namespace, &c.pod_name) {
        (Some(ns), Some(pod)) => Some(format!("{ns}/{pod}")),
        _ => None,
    };
    s.runtime_namespace = c.runtime_namespace.clone();
    s.location = Some(Location { file: spec_path.to_path_buf(), line: None });
    // The bundle's rootfs is a mount in another mount namespace (or gone):
    // the running init's root is what the container sees.
    s.rootfs = pid.map(|p| proc.join(p.to_string()).join("root")).filter(|p| p.is_dir());
    let cfg = &mut s.config;
    // The runtime's word (CRI, podman inspect), or the spec's: a privileged
    // container has every capability, no seccomp filter and every device.
    cfg.privileged = c.privileged
        || (cfg.capabilities.is_superset(&all_capabilities())
            && cfg.seccomp == crate::config::Seccomp::Unconfined
            && !cfg.device_rules.is_empty());
    // A CRI container joins its sandbox's namespaces by path
    // (`/proc/<pause>/ns/net`): whether those are the node's, the runtime
    // says (the pod sandbox's namespace options).
    let ns = &mut cfg.host_namespaces;
    ns.network |= c.host_network;
    ns.pid |= c.host_pid;
    ns.ipc |= c.host_ipc;
    if s.pod.is_some() {
        // The kubelet sets the pod's PIDs limit, not the pod spec.
        cfg.pids_applicable = false;
    }
    Ok(s)
}

/// Finds, reads and parses the spec of a running container.
pub fn load(c: &Container, pid: Option<u32>, roots: &SpecRoots) -> Result<Subject, Error> {
    let path = find_spec(c, pid, roots)?;
    let text = model::input::read_text(&path, model::input::limits::OCI_SPEC.with_bytes(MAX_SPEC_BYTES))?;
    subject_from_spec(c, pid, &path, &text, &roots.proc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctr(runtime: Runtime, id: &str, ns: Option<&str>) -> Container {
        Container {
            id: id.into(),
            runtime: Some(runtime),
            name: "web".into(),
            image: "docker.io/library/web:1".into(),
            runtime_namespace: ns.map(String::from),
            ..Default::default()
        }
    }

    fn roots(dir: &Path) -> SpecRoots {
        SpecRoots {
            containerd_state: vec![dir.join("run/containerd")],
            storage: vec![dir.join("graph"), dir.join("run/storage")],
            proc: dir.join("proc"),
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    const SPEC: &str = r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"cwd":"/",
        "capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_ADMIN"]}},"root":{"path":"rootfs"},
        "linux":{"namespaces":[{"type":"mount"},{"type":"network"},{"type":"ipc"},{"type":"uts"}],
        "maskedPaths":["/proc/kcore"],"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{}]}}}"#;

    #[test]
    fn candidates_per_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let r = roots(dir.path());
        let c = spec_candidates(&ctr(Runtime::Containerd, "abc", Some("team-a")), &r);
        assert_eq!(
            c[0],
            dir.path().join("run/containerd/io.containerd.runtime.v2.task/team-a/abc/config.json")
        );
        assert_eq!(c.len(), 2);
        // No namespace, or ids that would leave the directory: nothing.
        assert!(spec_candidates(&ctr(Runtime::Containerd, "abc", None), &r).is_empty());
        assert!(spec_candidates(&ctr(Runtime::Containerd, "../x", Some("ns")), &r).is_empty());
        assert!(spec_candidates(&ctr(Runtime::Containerd, "abc", Some("..")), &r).is_empty());
        assert!(spec_candidates(&ctr(Runtime::Docker, "abc", None), &r).is_empty());

        let id = "f".repeat(64);
        let p = spec_candidates(&ctr(Runtime::Podman, &id, None), &r);
        assert_eq!(p[0], dir.path().join(format!("graph/overlay-containers/{id}/userdata/config.json")));
        // CRI-O: its run root first; another storage driver is found.
        std::fs::create_dir_all(dir.path().join("run/storage/vfs-containers")).unwrap();
        let o = spec_candidates(&ctr(Runtime::Crio, &id, None), &r);
        assert_eq!(o[0], dir.path().join(format!("run/storage/vfs-containers/{id}/userdata/config.json")));
        assert!(o.contains(&dir.path().join(format!("graph/overlay-containers/{id}/userdata/config.json"))));
    }

    #[test]
    fn finds_the_spec_by_path_then_through_the_parent() {
        let dir = tempfile::tempdir().unwrap();
        let r = roots(dir.path());
        let c = ctr(Runtime::Containerd, "abc", Some("default"));
        let err = find_spec(&c, None, &r).unwrap_err().to_string();
        assert!(err.contains("no OCI spec found for containerd container abc"));
        assert!(err.contains("io.containerd.runtime.v2.task/default/abc/config.json"), "{err}");
        let p = dir.path().join("run/containerd/io.containerd.runtime.v2.task/default/abc/config.json");
        write(&p, SPEC);
        assert_eq!(find_spec(&c, None, &r).unwrap(), p);

        // conmon with a bundle elsewhere: init 200, parent 100.
        let bundle = dir.path().join("elsewhere/userdata");
        write(&bundle.join("config.json"), SPEC);
        write(&dir.path().join("proc/200/stat"), "200 (sleep) x) S 100 200 200 0 -1");
        let cmd = format!("/usr/bin/conmon\0--api-version\x001\0-b\0{}\0-n\0web\0", bundle.display());
        write(&dir.path().join("proc/100/cmdline"), &cmd);
        let podman = ctr(Runtime::Podman, &"e".repeat(64), None);
        assert_eq!(find_spec(&podman, Some(200), &r).unwrap(), bundle.join("config.json"));
        // Any other parent is not trusted to know the bundle.
        write(&dir.path().join("proc/100/cmdline"), &cmd.replace("conmon", "bash"));
        assert!(find_spec(&podman, Some(200), &r).is_err());
        // containerd's shim: its working directory.
        let shim_bundle = dir.path().join("state/ns/abc");
        write(&shim_bundle.join("config.json"), SPEC);
        write(&dir.path().join("proc/100/cmdline"), "/usr/bin/containerd-shim-runc-v2\0-id\0abc\0");
        std::os::unix::fs::symlink(&shim_bundle, dir.path().join("proc/100/cwd")).unwrap();
        assert_eq!(bundle_from_parent(&r.proc, 200), Some(shim_bundle));
    }

    #[test]
    fn naming_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("config.json");
        let mut c = ctr(Runtime::Containerd, "abc", Some("k8s.io"));
        c.pod_name = Some("shop-7d9".into());
        c.pod_namespace = Some("prod".into());
        c.privileged = false;
        let s = subject_from_spec(&c, None, &spec, SPEC, &dir.path().join("proc")).unwrap();
        assert!(is_pod_sandbox(&c));
        c.labels.insert(LABEL_K8S_CONTAINER_NAME.into(), "web".into());
        assert!(!is_pod_sandbox(&c) && !is_pod_sandbox(&ctr(Runtime::Podman, "x", None)));
        assert_eq!(s.kind, SourceKind::Containerd);
        assert_eq!(s.name, "prod/shop-7d9/web");
        assert_eq!(s.pod.as_deref(), Some("prod/shop-7d9"));
        assert_eq!((s.id.as_deref(), s.image.as_str()), (Some("abc"), "docker.io/library/web:1"));
        assert_eq!(s.runtime_namespace.as_deref(), Some("k8s.io"));
        assert!(!s.config.pids_applicable && !s.config.privileged);
        assert!(s.config.capabilities.contains("SYS_ADMIN"));
        // Remediation in pod spec terms, evidence in the spec's.
        let f = crate::checks::check_config(&s);
        let cap = f.iter().find(|f| f.check == "cap-added").expect("cap-added");
        assert!(cap.remediation.contains("capabilities"), "{cap:?}");
        let ns = f.iter().find(|f| f.check == "host-pid").expect("host-pid");
        assert!(ns.evidence.starts_with("hostPID: true") && ns.remediation.contains("hostPID"), "{ns:?}");
        // The spec joins the sandbox's network namespace by path: the runtime
        // says it is the node's.
        assert!(!f.iter().any(|f| f.check == "host-network"));
        c.host_network = true;
        let s = subject_from_spec(&c, None, &spec, SPEC, &dir.path().join("proc")).unwrap();
        let f = crate::checks::check_config(&s);
        assert!(f.iter().any(|f| f.check == "host-network"), "{f:#?}");

        let mut p = ctr(Runtime::Podman, &"a".repeat(64), None);
        p.name = String::new();
        p.privileged = true;
        let s = subject_from_spec(&p, Some(4_000_000), &spec, SPEC, &dir.path().join("proc")).unwrap();
        assert_eq!(
            (s.kind, s.name.as_str(), s.pod.as_ref()),
            (SourceKind::Podman, "a".repeat(64).as_str(), None)
        );
        assert!(s.config.privileged && s.rootfs.is_none() && s.config.pids_applicable);
        let f = crate::checks::check_config(&s);
        let pid = f.iter().find(|f| f.check == "host-pid").expect("host-pid");
        assert!(pid.remediation.contains("--pid host") && !pid.remediation.contains("docker "), "{pid:?}");
        let nnp = f.iter().find(|f| f.check == "no-new-privileges").expect("no-new-privileges");
        assert!(!nnp.remediation.contains("daemon.json"), "{nnp:?}");
        // Not in an OCI spec: restart policy, published ports, health check.
        assert!(
            !f.iter().any(|f| matches!(f.check, "restart-policy" | "no-healthcheck" | "port-all-interfaces")),
            "{f:#?}"
        );
    }

    #[test]
    fn privileged_is_read_from_the_spec() {
        let caps: Vec<String> = model::names::CAPABILITIES.iter().map(|c| format!("{c:?}")).collect();
        let spec = format!(
            r#"{{"ociVersion":"1.0.2","process":{{"user":{{"uid":0,"gid":0}},"cwd":"/",
            "capabilities":{{"bounding":[{}]}}}},"linux":{{"namespaces":[{{"type":"pid"}}],
            "resources":{{"devices":[{{"allow":true,"access":"rwm"}}]}}}}}}"#,
            caps.join(",")
        );
        let dir = tempfile::tempdir().unwrap();
        let c = ctr(Runtime::Containerd, "p", Some("default"));
        let s = subject_from_spec(&c, None, &dir.path().join("c.json"), &spec, dir.path()).unwrap();
        assert!(s.config.privileged);
        let f = crate::checks::check_config(&s);
        assert!(f.iter().any(|f| f.check == "privileged"), "{f:#?}");
        // cpu.shares 1024 is the kernel's default (`ctr run` writes it): no
        // CPU priority was asked for.
        let cpu = |shares: u64| {
            let text = SPEC.replace(
                r#""maskedPaths""#,
                &format!(r#""resources":{{"cpu":{{"shares":{shares}}}}},"maskedPaths""#),
            );
            let s = subject_from_spec(&c, None, Path::new("c.json"), &text, dir.path()).unwrap();
            crate::checks::check_config(&s).iter().any(|f| f.check == "no-cpu-limit")
        };
        assert!(cpu(1024) && !cpu(512));
        // A malformed spec names the file.
        let err = subject_from_spec(&c, None, Path::new("/x/config.json"), "{", dir.path()).unwrap_err();
        assert!(err.to_string().starts_with("/x/config.json:"), "{err}");
    }
}
