//! Every check from small configurations: a hardened subject has no finding;
//! one bad setting at a time yields the check's finding, with its severity
//! and a remediation in the source's own terms.

use crate::checks::{check_config, Finding, Severity};
use crate::config::*;
use crate::context::{self, Alerts};
use crate::report::{Baseline, Report};
use crate::{audit, Options};

fn hardened(kind: SourceKind) -> Subject {
    Subject {
        kind,
        name: match kind {
            SourceKind::Kubernetes => "ns/Deployment/web/app".into(),
            _ => "web".into(),
        },
        id: (kind == SourceKind::Docker).then(|| "0123456789abcdef".repeat(4)),
        pod: None,
        runtime_namespace: None,
        image: "registry.local/web:1.0".into(),
        location: None,
        rootfs: None,
        k8s_list: if kind == SourceKind::Kubernetes { "containers" } else { "" },
        config: ContainerConfig {
            user: UserSpec::Uid(10001),
            user_text: "10001".into(),
            no_new_privileges: true,
            capabilities: Default::default(),
            cap_drop: vec!["ALL".into()],
            read_only_rootfs: true,
            resources: Resources {
                memory_bytes: Some(64 << 20),
                cpu: Some("0.5 cpus".into()),
                pids: Some(64),
            },
            pids_applicable: kind != SourceKind::Kubernetes,
            health_check: Some(true),
            restart: (kind == SourceKind::Docker)
                .then(|| RestartPolicy { name: "on-failure".into(), max_retries: 3 }),
            ..Default::default()
        },
    }
}

fn findings(s: &Subject) -> Vec<Finding> {
    check_config(s)
}

/// The findings of `check` after `change` to a hardened subject; nothing else
/// may appear.
fn only(kind: SourceKind, check: &str, change: impl FnOnce(&mut Subject)) -> Vec<Finding> {
    let mut s = hardened(kind);
    change(&mut s);
    let all = findings(&s);
    let (ours, others): (Vec<Finding>, Vec<Finding>) = all.into_iter().partition(|f| f.check == check);
    assert!(!ours.is_empty(), "{check}: no finding for {kind:?}");
    assert!(others.is_empty(), "{check}: unexpected other findings {others:#?}");
    for f in &ours {
        assert!(!f.evidence.is_empty() && !f.remediation.is_empty(), "{f:?}");
    }
    ours
}

fn sev(f: &[Finding]) -> Severity {
    f[0].severity
}

#[test]
fn hardened_subjects_have_no_findings() {
    for kind in [SourceKind::Docker, SourceKind::Oci, SourceKind::Kubernetes] {
        assert_eq!(findings(&hardened(kind)), vec![], "{kind:?}");
    }
}

#[test]
fn privileged() {
    let f = only(SourceKind::Docker, "privileged", |s| {
        s.config.privileged = true;
        s.config.capabilities = all_capabilities();
        s.config.seccomp = Seccomp::Unconfined;
        s.config.apparmor = MacProfile::Disabled;
        s.config.unmasked_paths = true;
    });
    assert_eq!(sev(&f), Severity::Critical);
    assert!(f[0].remediation.contains("remove --privileged"));
    let k = only(SourceKind::Kubernetes, "privileged", |s| s.config.privileged = true);
    assert!(
        k[0].remediation.contains("containers[name=app].securityContext.privileged: false"),
        "{}",
        k[0].remediation
    );
}

fn bind(src: &str, dst: &str, ro: bool) -> MountSpec {
    MountSpec {
        source: src.into(),
        destination: dst.into(),
        host_path: true,
        read_only: ro,
        propagation: "rprivate".into(),
    }
}

#[test]
fn runtime_socket_and_sensitive_mounts() {
    let f = only(SourceKind::Docker, "runtime-socket-mount", |s| {
        s.config.mounts.push(bind("/var/run/docker.sock", "/var/run/docker.sock", false))
    });
    assert_eq!(sev(&f), Severity::Critical);
    assert!(f[0].remediation.contains("-v /var/run/docker.sock:/var/run/docker.sock"));
    assert_eq!(f[0].key, "/var/run/docker.sock");

    let rw = only(SourceKind::Docker, "sensitive-mount", |s| {
        s.config.mounts.push(bind("/etc", "/host/etc", false))
    });
    assert_eq!(sev(&rw), Severity::High);
    let ro = only(SourceKind::Docker, "sensitive-mount", |s| {
        s.config.mounts.push(bind("/proc", "/host/proc", true))
    });
    assert_eq!(sev(&ro), Severity::Medium);
    assert!(ro[0].evidence.contains("read-only"));

    // / is both sensitive (critical) and a way to the socket.
    let mut s = hardened(SourceKind::Docker);
    s.config.mounts.push(bind("/", "/host", true));
    let all = findings(&s);
    assert!(all.iter().any(|f| f.check == "sensitive-mount" && f.severity == Severity::Critical));
    assert!(all.iter().any(|f| f.check == "runtime-socket-mount"));

    // Volumes and harmless bind mounts are not findings.
    let mut s = hardened(SourceKind::Docker);
    s.config.mounts.push(MountSpec {
        source: "data".into(),
        destination: "/etc".into(),
        host_path: false,
        read_only: false,
        propagation: String::new(),
    });
    s.config.mounts.push(bind("/srv/app", "/app", false));
    assert_eq!(findings(&s), vec![]);

    // Kubernetes: any hostPath is a PSS baseline violation.
    let hp = only(SourceKind::Kubernetes, "host-path-mount", |s| {
        s.config.mounts.push(bind("/srv/app", "/app", false))
    });
    assert_eq!(sev(&hp), Severity::Low);
}

#[test]
fn shared_propagation() {
    let f = only(SourceKind::Docker, "shared-propagation", |s| {
        s.config.mounts.push(MountSpec { propagation: "rshared".into(), ..bind("/srv/x", "/x", false) })
    });
    assert!(f[0].remediation.contains(":rslave"));
    let k = only(SourceKind::Kubernetes, "shared-propagation", |s| {
        s.config.mounts.push(MountSpec {
            propagation: "rshared".into(),
            host_path: false,
            ..bind("vol", "/x", false)
        })
    });
    assert!(k[0].remediation.contains("mountPropagation: HostToContainer"));
}

#[test]
fn host_namespaces() {
    type Case = (&'static str, fn(&mut HostNamespaces), Severity);
    let cases: [Case; 6] = [
        ("host-pid", |n| n.pid = true, Severity::High),
        ("host-network", |n| n.network = true, Severity::High),
        ("host-ipc", |n| n.ipc = true, Severity::Medium),
        ("host-uts", |n| n.uts = true, Severity::Low),
        ("host-userns", |n| n.user = true, Severity::Medium),
        ("host-cgroupns", |n| n.cgroup = true, Severity::Info),
    ];
    for (id, set, severity) in cases {
        let f = only(SourceKind::Docker, id, |s| set(&mut s.config.host_namespaces));
        assert_eq!(sev(&f), severity, "{id}");
        assert!(f[0].remediation.starts_with("remove --"), "{id}: {}", f[0].remediation);
        let o = only(SourceKind::Oci, id, |s| set(&mut s.config.host_namespaces));
        assert!(o[0].remediation.contains("linux.namespaces"), "{id}");
    }
    let k = only(SourceKind::Kubernetes, "host-pid", |s| s.config.host_namespaces.pid = true);
    assert!(k[0].evidence.contains("hostPID: true"));
}

#[test]
fn capabilities() {
    // Adding also keeps a capability: cap-not-dropped fires too.
    let mut s = hardened(SourceKind::Docker);
    s.config.capabilities = apply_caps(default_capabilities(), &["SYS_ADMIN".into()], &[]);
    let all = findings(&s);
    let added = all.iter().find(|f| f.check == "cap-added").expect("cap-added");
    assert_eq!(added.severity, Severity::High);
    assert!(added.evidence.contains("dangerous: SYS_ADMIN"), "{}", added.evidence);
    assert!(added.remediation.contains("--cap-add SYS_ADMIN"));
    assert!(all.iter().any(|f| f.check == "cap-not-dropped"));

    let mut s = hardened(SourceKind::Docker);
    s.config.capabilities = ["IPC_LOCK"].iter().map(|c| c.to_string()).collect();
    let f: Vec<Finding> = findings(&s).into_iter().filter(|f| f.check == "cap-added").collect();
    assert_eq!(f[0].severity, Severity::Medium, "IPC_LOCK is not an escape primitive");

    // --cap-add ALL --cap-drop SYS_RESOURCE: summarised, not listed one by one.
    let mut s = hardened(SourceKind::Docker);
    s.config.capabilities = apply_caps(default_capabilities(), &["ALL".into()], &["SYS_RESOURCE".into()]);
    let f: Vec<Finding> = findings(&s).into_iter().filter(|f| f.check == "cap-added").collect();
    assert!(f[0].evidence.contains("all but SYS_RESOURCE"), "{}", f[0].evidence);

    let kept =
        only(SourceKind::Docker, "cap-not-dropped", |s| s.config.capabilities = default_capabilities());
    assert_eq!(sev(&kept), Severity::Low);
    let k =
        only(SourceKind::Kubernetes, "cap-not-dropped", |s| s.config.capabilities = default_capabilities());
    assert!(k[0].remediation.contains("capabilities.drop: [\"ALL\"]"));
    // NET_BIND_SERVICE alone is what PSS restricted allows.
    let mut s = hardened(SourceKind::Kubernetes);
    s.config.capabilities = ["NET_BIND_SERVICE".to_string()].into_iter().collect();
    assert_eq!(findings(&s), vec![]);
    // Privileged containers are reported as such, not per capability.
    let mut s = hardened(SourceKind::Docker);
    s.config.privileged = true;
    s.config.capabilities = all_capabilities();
    assert!(!findings(&s).iter().any(|f| f.check.starts_with("cap-")));
}

#[test]
fn seccomp() {
    let f = only(SourceKind::Docker, "seccomp-unconfined", |s| s.config.seccomp = Seccomp::Unconfined);
    assert_eq!(sev(&f), Severity::High);
    assert!(f[0].evidence.contains("seccomp=unconfined"));
    let k = only(SourceKind::Kubernetes, "seccomp-unconfined", |s| s.config.seccomp = Seccomp::Unset);
    assert_eq!(sev(&k), Severity::Medium);
    assert!(k[0].remediation.contains("seccompProfile.type: RuntimeDefault"));
    let mut s = hardened(SourceKind::Oci);
    s.config.seccomp = Seccomp::Custom("x".into());
    assert_eq!(findings(&s), vec![]);
}

#[test]
fn lsm_profiles() {
    let f = only(SourceKind::Docker, "mac-disabled", |s| s.config.apparmor = MacProfile::Disabled);
    assert!(f[0].evidence.contains("AppArmor unconfined"));
    let f = only(SourceKind::Docker, "mac-disabled", |s| s.config.selinux = MacProfile::Disabled);
    assert!(f[0].evidence.contains("SELinux"));
    let f = only(SourceKind::Kubernetes, "mac-disabled", |s| {
        s.config.selinux = MacProfile::Named("spc_t".into());
        s.config.selinux_violation = Some("seLinuxOptions.type spc_t".into());
    });
    assert!(f[0].evidence.contains("spc_t"));
    let f = only(SourceKind::Docker, "no-mac-profile", |s| {
        s.config.apparmor = MacProfile::None;
        s.config.selinux = MacProfile::None;
    });
    assert_eq!(sev(&f), Severity::Low);
    let mut s = hardened(SourceKind::Docker);
    s.config.apparmor = MacProfile::None;
    s.config.selinux = MacProfile::Named("system_u:system_r:container_t:s0".into());
    assert_eq!(findings(&s), vec![]);
}

#[test]
fn no_new_privileges() {
    let f = only(SourceKind::Docker, "no-new-privileges", |s| s.config.no_new_privileges = false);
    assert!(f[0].remediation.contains("--security-opt no-new-privileges"));
    let k = only(SourceKind::Kubernetes, "no-new-privileges", |s| s.config.no_new_privileges = false);
    assert!(k[0].remediation.contains("allowPrivilegeEscalation: false"));
    let o = only(SourceKind::Oci, "no-new-privileges", |s| s.config.no_new_privileges = false);
    assert!(o[0].remediation.contains("process.noNewPrivileges: true"));
}

#[test]
fn run_as_root() {
    let f = only(SourceKind::Docker, "run-as-root", |s| {
        s.config.user = UserSpec::Uid(0);
        s.config.user_text = String::new();
    });
    assert_eq!(sev(&f), Severity::Medium);
    assert!(f[0].evidence.contains("image default") && f[0].remediation.contains("--user"));
    let k = only(SourceKind::Kubernetes, "run-as-root", |s| s.config.user = UserSpec::ImageDefault);
    assert!(k[0].remediation.contains("runAsNonRoot: true"));
    // runAsNonRoot without runAsUser: the kubelet refuses uid 0, fine.
    let mut s = hardened(SourceKind::Kubernetes);
    s.config.user = UserSpec::ImageDefault;
    s.config.run_as_non_root = true;
    assert_eq!(findings(&s), vec![]);
    let n = only(SourceKind::Docker, "run-as-root", |s| s.config.user = UserSpec::Name("app".into()));
    assert_eq!(sev(&n), Severity::Low, "unresolved names are a weaker finding");
    only(SourceKind::Docker, "run-as-root", |s| s.config.user = UserSpec::Name("root".into()));
}

#[test]
fn devices() {
    let f = only(SourceKind::Docker, "host-device", |s| {
        s.config.devices.push(DeviceSpec {
            host_path: "/dev/sda".into(),
            container_path: "/dev/sda".into(),
            permissions: "rwm".into(),
        })
    });
    assert_eq!(sev(&f), Severity::High);
    assert!(f[0].remediation.contains("--device /dev/sda"));
    let ro = only(SourceKind::Docker, "host-device", |s| {
        s.config.devices.push(DeviceSpec {
            host_path: "/dev/kmsg".into(),
            container_path: "/dev/kmsg".into(),
            permissions: "r".into(),
        })
    });
    assert_eq!(sev(&ro), Severity::Medium);
    let rule = only(SourceKind::Oci, "host-device", |s| s.config.device_rules.push("a *:* rwm".into()));
    assert!(rule[0].evidence.contains("a *:* rwm"));
}

#[test]
fn filesystem() {
    let f = only(SourceKind::Docker, "writable-rootfs", |s| s.config.read_only_rootfs = false);
    assert!(f[0].remediation.contains("--read-only"));
    let k = only(SourceKind::Kubernetes, "writable-rootfs", |s| s.config.read_only_rootfs = false);
    assert!(k[0].remediation.contains("readOnlyRootFilesystem: true"));
    let u = only(SourceKind::Docker, "unmasked-proc", |s| s.config.unmasked_paths = true);
    assert!(u[0].remediation.contains("systempaths=unconfined"));
}

#[test]
fn limits() {
    let m = only(SourceKind::Docker, "no-memory-limit", |s| s.config.resources.memory_bytes = None);
    assert!(m[0].remediation.contains("--memory"));
    let c = only(SourceKind::Docker, "no-cpu-limit", |s| s.config.resources.cpu = None);
    assert!(c[0].remediation.contains("--cpus"));
    let p = only(SourceKind::Docker, "no-pids-limit", |s| s.config.resources.pids = None);
    assert!(p[0].remediation.contains("--pids-limit"));
    let k = only(SourceKind::Kubernetes, "no-memory-limit", |s| s.config.resources.memory_bytes = None);
    assert!(k[0].remediation.contains("resources.limits.memory"));
    // A pod spec cannot set a PIDs limit: not reported there.
    let mut s = hardened(SourceKind::Kubernetes);
    s.config.resources.pids = None;
    assert_eq!(findings(&s), vec![]);
}

#[test]
fn ports() {
    let port = |ip: &str, hp: u16, cp: u16| PortSpec {
        host_ip: ip.into(),
        host_port: hp,
        container_port: cp,
        protocol: "tcp".into(),
    };
    let f =
        only(SourceKind::Docker, "port-all-interfaces", |s| s.config.ports.push(port("0.0.0.0", 8080, 8080)));
    assert!(f[0].remediation.contains("-p 127.0.0.1:8080:8080/tcp"), "{}", f[0].remediation);
    assert_eq!(f[0].key, "8080/tcp");
    let mut s = hardened(SourceKind::Docker);
    s.config.ports.push(port("", 80, 8080));
    let ids: Vec<&str> = findings(&s).iter().map(|f| f.check).collect();
    assert_eq!(ids, vec!["port-all-interfaces", "privileged-port"]);
    let p =
        only(SourceKind::Docker, "privileged-port", |s| s.config.ports.push(port("127.0.0.1", 443, 8443)));
    assert_eq!(sev(&p), Severity::Low);
    let mut s = hardened(SourceKind::Docker);
    s.config.ports.push(port("127.0.0.1", 8080, 8080));
    s.config.ports.push(port("::1", 0, 9000));
    assert_eq!(findings(&s), vec![]);
    let k = only(SourceKind::Kubernetes, "host-port", |s| {
        s.config.ports.push(port("127.0.0.1", 9100, 9100));
        s.config.host_ports_k8s = true;
    });
    assert!(k[0].remediation.contains("Service"));
}

#[test]
fn restart_and_health() {
    for (name, retries, bad) in [
        ("always", 0, true),
        ("unless-stopped", 0, true),
        ("on-failure", 0, true),
        ("on-failure", 10, true),
        ("on-failure", 5, false),
        ("no", 0, false),
    ] {
        let mut s = hardened(SourceKind::Docker);
        s.config.restart = Some(RestartPolicy { name: name.into(), max_retries: retries });
        let f = findings(&s);
        assert_eq!(f.iter().any(|f| f.check == "restart-policy"), bad, "{name}:{retries}");
        assert_eq!(f.len(), usize::from(bad));
    }
    let h = only(SourceKind::Docker, "no-healthcheck", |s| s.config.health_check = Some(false));
    assert!(h[0].remediation.contains("HEALTHCHECK"));
    let k = only(SourceKind::Kubernetes, "no-healthcheck", |s| s.config.health_check = Some(false));
    assert!(k[0].remediation.contains("livenessProbe"));
    let mut s = hardened(SourceKind::Oci);
    s.config.health_check = None;
    assert_eq!(findings(&s), vec![]);
}

#[test]
fn sysctls() {
    let f = only(SourceKind::Kubernetes, "unsafe-sysctl", |s| {
        s.config.sysctls =
            vec![("kernel.msgmax".into(), "1".into()), ("net.ipv4.tcp_syncookies".into(), "1".into())]
    });
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].key, "kernel.msgmax");
}

#[test]
fn image_findings_from_a_rootfs() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::create_dir_all(r.join("bin")).unwrap();
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::write(r.join("bin/sh"), b"x").unwrap();
    std::fs::write(r.join("bin/apk"), b"x").unwrap();
    std::fs::write(r.join("bin/su"), b"x").unwrap();
    std::fs::set_permissions(r.join("bin/su"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::create_dir_all(r.join("tmpbin")).unwrap();
    std::fs::set_permissions(r.join("tmpbin"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(r.join("etc/passwd"), "root:x:0:0::/:/bin/sh\nweb:x:101:101::/:/bin/false\n").unwrap();

    let mut s = hardened(SourceKind::Docker);
    s.rootfs = Some(r.to_path_buf());
    s.config.path_env = Some("/tmpbin:/bin".into());
    s.config.user = UserSpec::Name("web".into());
    let rep = audit(s.clone(), &Options::default(), None);
    let ids: Vec<&str> = rep.findings.iter().map(|f| f.check).collect();
    assert!(ids.contains(&"image-shell") && ids.contains(&"image-package-manager"), "{ids:?}");
    assert!(ids.contains(&"image-world-writable-path") && ids.contains(&"image-setuid"), "{ids:?}");
    assert!(!ids.contains(&"run-as-root"), "the name resolves to uid 101 through /etc/passwd");
    assert_eq!(rep.subject.config.user, UserSpec::Uid(101));
    let setuid = rep.findings.iter().find(|f| f.check == "image-setuid").unwrap();
    assert_eq!(setuid.severity, Severity::Low, "no-new-privileges makes setuid inert");
    assert!(setuid.evidence.contains("/bin/su (setuid"));

    // Without image checks, or without a rootfs, none of them.
    let rep = audit(s, &Options { image_checks: false, ..Default::default() }, None);
    assert!(!rep.findings.iter().any(|f| f.check.starts_with("image-")));
    let rep = audit(hardened(SourceKind::Docker), &Options::default(), None);
    assert!(rep.findings.is_empty());
    assert!(rep.notes[0].contains("not running"), "{:?}", rep.notes);
}

#[test]
fn runtime_alerts_mark_the_container() {
    let s = hardened(SourceKind::Docker);
    let id = s.id.clone().unwrap();
    let mut alerts = Alerts::default();
    alerts.add_line(&format!(
        r#"{{"time":"2026-11-28T12:00:00.000000001Z","rule":"Terminal shell in container","priority":"Notice","output":"x","output_fields":{{"container.id":"{}"}},"source":"syscall","hostname":"h"}}"#,
        &id[..12]
    ));
    alerts.add_line(&format!(
        r#"{{"time":"2026-11-28T12:00:01Z","rule":"Terminal shell in container","priority":"Notice","output":"x","container":{{"id":"{id}","name":"web"}}}}"#
    ));
    alerts.add_line(r#"{"time":"2026-11-28T12:00:02Z","rule":"Container escape","priority":"Critical","output":"x","output_fields":{"container.name":"web"}}"#);
    alerts.add_line(r#"{"time":"t","rule":"Other","priority":"Warning","output":"x","output_fields":{"container.id":"ffffffffffff"}}"#);
    alerts.add_line(r#"{"time":"t","rule":"Host","priority":"Warning","output":"x","output_fields":{"container.id":"host"}}"#);
    alerts.add_line("not json");
    assert_eq!((alerts.total, alerts.unreadable), (4, 1));
    let rep = audit(s, &Options::default(), Some(&alerts));
    assert_eq!(rep.alerts.len(), 2);
    assert_eq!(rep.alerts[0].rule, "Container escape");
    assert_eq!(rep.alerts[1].count, 2);
    assert_eq!(rep.alerts[1].last, "2026-11-28T12:00:01Z");
    let rt: Vec<&Finding> = rep.findings.iter().filter(|f| f.check == "runtime-alerts").collect();
    assert_eq!(rt.len(), 2);
    assert_eq!(rt[0].severity, Severity::Critical);
    assert_eq!(rt[1].severity, Severity::Low);
    assert_eq!(context::findings(&[]), vec![]);
}

#[test]
fn runtime_alerts_of_other_runtimes() {
    // containerd ids are any string: matched whole, not as a prefix.
    let mut s = hardened(SourceKind::Containerd);
    s.id = Some("web-1".into());
    let mut alerts = Alerts::default();
    for id in ["web-1", "web"] {
        alerts.add_line(&format!(
            r#"{{"time":"t","rule":"Shell in {id}","priority":"Warning","output":"x","output_fields":{{"container.id":"{id}"}}}}"#
        ));
    }
    let rep = audit(s, &Options::default(), Some(&alerts));
    let rules: Vec<&str> = rep.alerts.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(rules, vec!["Shell in web-1"]);
    // Files are not running containers: no alerts are theirs.
    let rep = audit(hardened(SourceKind::Oci), &Options::default(), Some(&alerts));
    assert!(rep.alerts.is_empty());
}

#[test]
fn report_baseline_and_fail_on() {
    let mut bad = hardened(SourceKind::Docker);
    bad.config.privileged = true;
    bad.config.read_only_rootfs = false;
    let mut report =
        Report { subjects: vec![audit(bad.clone(), &Options::default(), None)], ..Default::default() };
    assert_eq!(report.failing(Severity::Critical), 1);
    assert_eq!(report.failing(Severity::Low), 2);
    let baseline = report.to_baseline();
    assert_eq!(baseline.findings.len(), 2);
    // Accepting the current findings: nothing fails; a new one does.
    let mut again =
        Report { subjects: vec![audit(bad.clone(), &Options::default(), None)], ..Default::default() };
    assert_eq!(again.apply_baseline(&baseline), 2);
    assert_eq!(again.failing(Severity::Info), 0);
    bad.config.host_namespaces.pid = true;
    let mut newer =
        Report { subjects: vec![audit(bad.clone(), &Options::default(), None)], ..Default::default() };
    newer.apply_baseline(&baseline);
    assert_eq!(newer.failing(Severity::Info), 1);
    assert_eq!(newer.findings().find(|(_, f)| !f.baselined).unwrap().1.check, "host-pid");
    // The image tag does not change fingerprints; the container name does.
    bad.image = "registry.local/web:2.0".into();
    let mut retagged =
        Report { subjects: vec![audit(bad.clone(), &Options::default(), None)], ..Default::default() };
    assert_eq!(retagged.apply_baseline(&baseline), 2);
    bad.name = "other".into();
    let mut renamed = Report { subjects: vec![audit(bad, &Options::default(), None)], ..Default::default() };
    assert_eq!(renamed.apply_baseline(&baseline), 0);
    // Baseline round trip through its file format.
    let text = baseline.to_json();
    let back: Baseline = serde_json::from_str(&text).unwrap();
    assert_eq!(back, baseline);
    report.apply_baseline(&back);
    let table = report.to_table();
    assert!(table.contains("2 findings accepted by the baseline"), "{table}");
    assert!(table.contains("0 findings; 2 accepted by the baseline"), "{table}");
}
