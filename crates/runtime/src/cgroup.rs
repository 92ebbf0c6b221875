//! Recognising containers from cgroup v2 paths (pure string logic).
//!
//! Every runtime names a container's cgroup differently, and the names depend on
//! the cgroup driver (cgroupfs or systemd) and on whether Kubernetes placed the
//! container in a pod cgroup:
//!
//! | runtime | path |
//! |---|---|
//! | Docker, cgroupfs | `/docker/<64hex>` |
//! | Docker, systemd | `/system.slice/docker-<64hex>.scope` |
//! | containerd (`ctr`) | `/<namespace>/<id>` |
//! | CRI-O | `/machine.slice/crio-<64hex>.scope` (`crio-conmon-<id>.scope` is its monitor) |
//! | podman, cgroupfs | `/libpod_parent/libpod-<64hex>`; in a pod `/libpod_parent/<pod id>/libpod-<64hex>`; `--cgroup-parent /x`: `/x/libpod-<64hex>` |
//! | podman, systemd | `/machine.slice/libpod-<64hex>.scope` (`libpod-conmon-*` is the monitor) |
//! | Kubernetes, cgroupfs | `/kubepods/burstable/pod<uid>/<64hex>` |
//! | Kubernetes, systemd | `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<64hex>.scope` |
//!
//! A process may also live in a sub-cgroup of its container (systemd inside a
//! container, a container with its own cgroup namespace creating children, or
//! Docker-in-Docker): the deepest container component of the path wins.

use model::Runtime;

/// What a cgroup path says about the container that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupContainer {
    /// The runtime the naming scheme belongs to; `Runtime::Kubernetes` when a
    /// pod cgroup holds a bare id and the runtime cannot be told.
    pub runtime: Runtime,
    /// The container id as the runtime knows it (64 hex characters except for
    /// containerd containers created with a chosen name).
    pub id: String,
    /// The Kubernetes pod uid (with dashes) when the container lives in a pod cgroup.
    pub pod_uid: Option<String>,
    /// The containerd namespace for `/<namespace>/<id>` paths.
    pub namespace: Option<String>,
}

/// containerd namespaces whose `/<namespace>/<id>` children are containers even
/// when the id is not 64 hex characters (`ctr -n default run img myname`).
pub const KNOWN_CONTAINERD_NAMESPACES: &[&str] = &["k8s.io", "default", "moby", "buildkit"];

/// How the children of a top-level cgroup that holds containers are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildNaming {
    /// `/docker/<64 hex>`
    Hex64,
    /// `/<containerd namespace>/<64 hex or named id>`
    NamedId,
}

/// The top-level cgroups whose direct children [`parse_cgroup_path_with`]
/// takes for containers (given the containerd namespaces `learned`), for the
/// kernel to recognise containers as their cgroup is created. A subset of
/// what the parser accepts: other namings (systemd scopes, `libpod-`) the
/// kernel tests by the child's own name, the rest waits for the agent.
pub fn top_level_container_parents<'a>(
    learned: impl IntoIterator<Item = &'a str>,
) -> Vec<(String, ChildNaming)> {
    let mut out = vec![("docker".to_string(), ChildNaming::Hex64)];
    out.extend(KNOWN_CONTAINERD_NAMESPACES.iter().map(|ns| (ns.to_string(), ChildNaming::NamedId)));
    for ns in learned {
        if is_namespace_like(ns) && !out.iter().any(|(n, _)| n == ns) {
            out.push((ns.to_string(), ChildNaming::NamedId));
        }
    }
    out
}

/// Longest id accepted for a named (non-hex) containerd container; containerd
/// itself allows 76 characters.
const MAX_NAMED_ID: usize = 76;

/// Parse a cgroup v2 path (relative to the cgroup2 mount, as in
/// `/proc/<pid>/cgroup`'s `0::` line) into the container it belongs to.
///
/// Returns `None` for host cgroups (`/`, `/init.scope`, `/system.slice/*.service`,
/// `/user.slice/...`), runtime monitors (conmon) and pod-level cgroups that hold
/// no container.
pub fn parse_cgroup_path(path: &str) -> Option<CgroupContainer> {
    parse_cgroup_path_with(path, &|_| false)
}

/// [`parse_cgroup_path`], also taking named (non-hex) ids under the containerd
/// namespaces `namespace` accepts: the registry passes the namespaces its
/// containerd client has reported, so `ctr -n myns run img name` resolves too.
pub fn parse_cgroup_path_with(path: &str, namespace: &dyn Fn(&str) -> bool) -> Option<CgroupContainer> {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let kube = comps.first().is_some_and(|c| *c == "kubepods" || *c == "kubepods.slice");
    let mut pod_uid: Option<String> = None;
    let mut found: Option<CgroupContainer> = None;
    for (i, comp) in comps.iter().enumerate() {
        if kube {
            if let Some(uid) = pod_uid_of(comp) {
                pod_uid = Some(uid);
                continue;
            }
        }
        let parent = if i > 0 { Some(comps[i - 1]) } else { None };
        if let Some((runtime, id, namespace)) = match_component(comp, parent, i, namespace) {
            found = Some(CgroupContainer {
                runtime,
                id: id.to_string(),
                pod_uid: if kube { pod_uid.clone() } else { None },
                namespace: namespace.map(str::to_string),
            });
        }
    }
    found
}

/// The container id a cgroup path names, if any (shorthand for
/// [`parse_cgroup_path`]).
pub fn container_id_of(path: &str) -> Option<String> {
    parse_cgroup_path(path).map(|c| c.id)
}

/// One path component: `(runtime, id, containerd namespace)`.
fn match_component<'a>(
    comp: &'a str,
    parent: Option<&'a str>,
    depth: usize,
    known_namespace: &dyn Fn(&str) -> bool,
) -> Option<(Runtime, &'a str, Option<&'a str>)> {
    // systemd scope units: <prefix>-<id>.scope
    if let Some(unit) = comp.strip_suffix(".scope") {
        const SCOPES: &[(&str, Runtime)] = &[
            ("docker-", Runtime::Docker),
            ("cri-containerd-", Runtime::Containerd),
            ("crio-", Runtime::Crio),
            ("libpod-", Runtime::Podman),
        ];
        for (prefix, runtime) in SCOPES {
            if let Some(id) = unit.strip_prefix(prefix) {
                // crio-conmon-<id>.scope and libpod-conmon-<id>.scope are the
                // runtime's monitor process, not the container: is_hex64 rejects them.
                return is_hex64(id).then_some((*runtime, id, None));
            }
        }
        return None;
    }
    // cgroupfs-style names.
    if let Some(id) = comp.strip_prefix("libpod-") {
        // Under libpod_parent, under a pod's cgroup (/libpod_parent/<pod id>) or
        // under a --cgroup-parent: only podman names a cgroup libpod-<64hex>.
        return (parent.is_some() && is_hex64(id)).then_some((Runtime::Podman, id, None));
    }
    if let Some(id) = comp.strip_prefix("crio-") {
        // CRI-O with the cgroupfs manager: /kubepods/<qos>/pod<uid>/crio-<id>
        return (parent.is_some_and(|p| pod_uid_of(p).is_some()) && is_hex64(id)).then_some((
            Runtime::Crio,
            id,
            None,
        ));
    }
    let parent = parent?;
    if is_hex64(comp) {
        if parent == "docker" {
            return Some((Runtime::Docker, comp, None));
        }
        if pod_uid_of(parent).is_some() {
            // A bare id under a pod cgroup (cgroupfs driver): docker, containerd
            // and CRI-O can all produce it.
            return Some((Runtime::Kubernetes, comp, None));
        }
        // /<namespace>/<64hex>: a containerd namespace (or a custom cgroup parent).
        if depth == 1 && is_namespace_like(parent) {
            return Some((Runtime::Containerd, comp, Some(parent)));
        }
        return None;
    }
    // /<known namespace>/<any id>
    if depth == 1
        && (KNOWN_CONTAINERD_NAMESPACES.contains(&parent)
            || (is_namespace_like(parent) && known_namespace(parent)))
        && is_named_id(comp)
    {
        return Some((Runtime::Containerd, comp, Some(parent)));
    }
    None
}

/// A pod cgroup component: `pod<uid>` (cgroupfs) or
/// `kubepods[-<qos>]-pod<uid_with_underscores>.slice` (systemd). Returns the uid
/// with dashes.
fn pod_uid_of(comp: &str) -> Option<String> {
    let uid = if let Some(slice) = comp.strip_suffix(".slice") {
        if !slice.starts_with("kubepods") {
            return None;
        }
        let idx = slice.rfind("-pod")?;
        slice[idx + 4..].replace('_', "-")
    } else {
        comp.strip_prefix("pod")?.to_string()
    };
    is_uid(&uid).then_some(uid)
}

/// A Kubernetes uid: 36 characters, hex digits and dashes (UUID form), or a
/// 32-hex static-pod hash.
fn is_uid(s: &str) -> bool {
    (s.len() == 36 || s.len() == 32) && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// 64 lowercase-or-uppercase hex characters.
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A top-level component that could be a containerd namespace rather than a
/// systemd unit or a Kubernetes/runtime parent.
fn is_namespace_like(s: &str) -> bool {
    const UNIT_SUFFIXES: &[&str] = &[".slice", ".scope", ".service", ".mount", ".socket", ".swap"];
    !UNIT_SUFFIXES.iter().any(|suf| s.ends_with(suf))
        && !s.starts_with("kubepods")
        && s != "libpod_parent"
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// A containerd identifier: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 76 characters,
/// and not looking like a systemd unit.
fn is_named_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAMED_ID
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !s.ends_with(".scope")
        && !s.ends_with(".slice")
        && !s.ends_with(".service")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_parents_name_containers_the_parser_accepts() {
        let parents = top_level_container_parents(["myns", "system.slice", "docker"]);
        assert!(parents.contains(&("myns".to_string(), ChildNaming::NamedId)));
        assert!(!parents.iter().any(|(n, _)| n == "system.slice"));
        assert_eq!(parents.iter().filter(|(n, _)| n == "docker").count(), 1);
        let hex = "a".repeat(64);
        for (name, naming) in &parents {
            let learned = |ns: &str| ns == "myns";
            let c = parse_cgroup_path_with(&format!("/{name}/{hex}"), &learned);
            assert!(c.is_some(), "/{name}/<hex>");
            if *naming == ChildNaming::NamedId {
                let c = parse_cgroup_path_with(&format!("/{name}/web-1"), &learned);
                assert!(c.is_some(), "/{name}/web-1");
            }
        }
    }

    const ID: &str = "3f1c2b7e9a0d4c8b6e5f7a9c1d3e5f7091b2c4d6e8fa0b1c2d3e4f5a6b7c8d9e";
    const ID2: &str = "aa11bb22cc33dd44ee55ff6600112233445566778899aabbccddeeff00112233";
    const UID: &str = "6a5e4b2c-1d3f-4e5a-9b8c-7d6e5f4a3b2c";

    fn parse(p: &str) -> Option<(Runtime, String, Option<String>)> {
        parse_cgroup_path(p).map(|c| (c.runtime, c.id, c.pod_uid))
    }

    #[test]
    fn docker_cgroupfs() {
        assert_eq!(parse(&format!("/docker/{ID}")), Some((Runtime::Docker, ID.into(), None)));
        // trailing slash and sub-cgroups (systemd in the container, cgroupns children)
        assert_eq!(parse(&format!("/docker/{ID}/")), Some((Runtime::Docker, ID.into(), None)));
        assert_eq!(parse(&format!("/docker/{ID}/init.scope")), Some((Runtime::Docker, ID.into(), None)));
        assert_eq!(
            parse(&format!("/docker/{ID}/system.slice/cron.service")),
            Some((Runtime::Docker, ID.into(), None))
        );
    }

    #[test]
    fn docker_in_docker_takes_innermost() {
        assert_eq!(parse(&format!("/docker/{ID}/docker/{ID2}")), Some((Runtime::Docker, ID2.into(), None)));
    }

    #[test]
    fn docker_systemd() {
        assert_eq!(
            parse(&format!("/system.slice/docker-{ID}.scope")),
            Some((Runtime::Docker, ID.into(), None))
        );
        // rootless docker under the user's manager
        assert_eq!(
            parse(&format!("/user.slice/user-1000.slice/user@1000.service/user.slice/docker-{ID}.scope")),
            Some((Runtime::Docker, ID.into(), None))
        );
    }

    #[test]
    fn containerd_namespaces() {
        let c = parse_cgroup_path(&format!("/k8s.io/{ID}")).unwrap();
        assert_eq!(
            (c.runtime, c.id.as_str(), c.namespace.as_deref()),
            (Runtime::Containerd, ID, Some("k8s.io"))
        );
        // hex ids under any namespace
        let c = parse_cgroup_path(&format!("/rampart-test/{ID}")).unwrap();
        assert_eq!((c.runtime, c.namespace.as_deref()), (Runtime::Containerd, Some("rampart-test")));
        // named ids only under known namespaces
        let c = parse_cgroup_path("/default/my-redis").unwrap();
        assert_eq!((c.runtime, c.id.as_str()), (Runtime::Containerd, "my-redis"));
        assert_eq!(parse("/moby/web.1"), Some((Runtime::Containerd, "web.1".into(), None)));
        assert_eq!(parse("/somens/my-redis"), None);
        // ... unless the namespace is one containerd reported
        let c = parse_cgroup_path_with("/somens/my-redis", &|ns| ns == "somens").unwrap();
        assert_eq!(
            (c.runtime, c.id.as_str(), c.namespace.as_deref()),
            (Runtime::Containerd, "my-redis", Some("somens"))
        );
        assert_eq!(parse_cgroup_path_with("/system.slice/my-redis", &|_| true).map(|c| c.id), None);
        // systemd driver
        assert_eq!(
            parse(&format!("/system.slice/cri-containerd-{ID}.scope")),
            Some((Runtime::Containerd, ID.into(), None))
        );
    }

    #[test]
    fn crio() {
        assert_eq!(parse(&format!("/machine.slice/crio-{ID}.scope")), Some((Runtime::Crio, ID.into(), None)));
        assert_eq!(parse(&format!("/machine.slice/crio-conmon-{ID}.scope")), None);
        // cgroupfs manager under a pod
        assert_eq!(
            parse(&format!("/kubepods/besteffort/pod{UID}/crio-{ID}")),
            Some((Runtime::Crio, ID.into(), Some(UID.into())))
        );
    }

    #[test]
    fn podman() {
        assert_eq!(parse(&format!("/libpod_parent/libpod-{ID}")), Some((Runtime::Podman, ID.into(), None)));
        assert_eq!(parse(&format!("/libpod_parent/libpod-conmon-{ID}")), None);
        assert_eq!(
            parse(&format!("/machine.slice/libpod-{ID}.scope")),
            Some((Runtime::Podman, ID.into(), None))
        );
        assert_eq!(
            parse(&format!("/machine.slice/libpod-{ID}.scope/container")),
            Some((Runtime::Podman, ID.into(), None))
        );
        assert_eq!(parse(&format!("/machine.slice/libpod-conmon-{ID}.scope")), None);
        // rootless
        assert_eq!(
            parse(&format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope")),
            Some((Runtime::Podman, ID.into(), None))
        );
        // cgroupfs, a container in a pod (observed with podman 4.3)
        assert_eq!(
            parse(&format!("/libpod_parent/{ID2}/libpod-{ID}")),
            Some((Runtime::Podman, ID.into(), None))
        );
        // the pod's own cgroup is no container
        assert_eq!(parse(&format!("/libpod_parent/{ID2}")), None);
        // cgroupfs with --cgroup-parent /rampart-custom (observed)
        assert_eq!(parse(&format!("/rampart-custom/libpod-{ID}")), Some((Runtime::Podman, ID.into(), None)));
        assert_eq!(parse(&format!("/rampart-custom/libpod-conmon-{ID}")), None);
        // a top-level libpod- name has no parent: not podman's layout
        assert_eq!(parse(&format!("/libpod-{ID}")), None);
    }

    #[test]
    fn kubernetes_cgroupfs() {
        for qos in ["burstable", "besteffort"] {
            assert_eq!(
                parse(&format!("/kubepods/{qos}/pod{UID}/{ID}")),
                Some((Runtime::Kubernetes, ID.into(), Some(UID.into())))
            );
        }
        // guaranteed pods sit directly under /kubepods
        assert_eq!(
            parse(&format!("/kubepods/pod{UID}/{ID}")),
            Some((Runtime::Kubernetes, ID.into(), Some(UID.into())))
        );
        // the pod cgroup itself is not a container
        assert_eq!(parse(&format!("/kubepods/burstable/pod{UID}")), None);
        assert_eq!(parse("/kubepods/burstable"), None);
    }

    #[test]
    fn kubernetes_systemd() {
        let uid_ = UID.replace('-', "_");
        let base = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice");
        assert_eq!(
            parse(&format!("{base}/cri-containerd-{ID}.scope")),
            Some((Runtime::Containerd, ID.into(), Some(UID.into())))
        );
        assert_eq!(
            parse(&format!("{base}/docker-{ID}.scope")),
            Some((Runtime::Docker, ID.into(), Some(UID.into())))
        );
        assert_eq!(
            parse(&format!("{base}/crio-{ID}.scope")),
            Some((Runtime::Crio, ID.into(), Some(UID.into())))
        );
        assert_eq!(parse(&format!("{base}/crio-conmon-{ID}.scope")), None);
        assert_eq!(parse(&base), None);
        // guaranteed QoS: no qos slice
        assert_eq!(
            parse(&format!("/kubepods.slice/kubepods-pod{uid_}.slice/cri-containerd-{ID}.scope")),
            Some((Runtime::Containerd, ID.into(), Some(UID.into())))
        );
    }

    #[test]
    fn host_cgroups_are_not_containers() {
        for p in [
            "/",
            "",
            "/init.scope",
            "/system.slice",
            "/system.slice/docker.service",
            "/system.slice/containerd.service",
            "/system.slice/foo.service",
            "/system.slice/systemd-journald.service",
            "/user.slice/user-1000.slice/session-2.scope",
            "/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.socket",
            "/docker",
            "/docker/notanid",
            "/process_api/d2792959c31aafebf9c7e51e6040b334",
            "/machine.slice/machine-qemu\\x2d1\\x2dvm.scope",
            "/kubepods.slice/kubepods-besteffort.slice",
        ] {
            assert_eq!(parse(p), None, "{p}");
        }
        // a 64-hex child of a systemd slice is not a containerd namespace
        assert_eq!(parse(&format!("/system.slice/{ID}")), None);
        // but not at depth > 1 under an arbitrary parent either
        assert_eq!(parse(&format!("/a/b/{ID}")), None);
        // short or non-hex ids in scopes
        assert_eq!(parse("/system.slice/docker-abc.scope"), None);
        assert_eq!(parse(&format!("/system.slice/docker-{}.scope", &ID[..63])), None);
        assert_eq!(parse(&format!("/system.slice/docker-{}z.scope", &ID[..63])), None);
    }

    #[test]
    fn pod_uid_forms() {
        assert_eq!(pod_uid_of(&format!("pod{UID}")), Some(UID.into()));
        assert_eq!(
            pod_uid_of(&format!("kubepods-besteffort-pod{}.slice", UID.replace('-', "_"))),
            Some(UID.into())
        );
        assert_eq!(pod_uid_of("podman"), None);
        assert_eq!(pod_uid_of("kubepods-burstable.slice"), None);
        // static pods use a 32-hex config hash as uid
        let hash = "d2792959c31aafebf9c7e51e6040b334";
        assert_eq!(
            parse(&format!("/kubepods/besteffort/pod{hash}/{ID}")),
            Some((Runtime::Kubernetes, ID.into(), Some(hash.into())))
        );
    }

    #[test]
    fn hostile_paths_do_not_panic() {
        for p in
            ["//////", "/docker//", "/\u{1F600}/\u{1F600}", "/kubepods/pod/", "/kubepods.slice/-pod.slice"]
        {
            let _ = parse_cgroup_path(p);
        }
        let long = "/a".repeat(10_000);
        assert_eq!(parse(&long), None);
    }
}
