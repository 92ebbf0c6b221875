//! The three sources from files written for the purpose (tests/fixtures/):
//! captured Docker inspect answers, OCI bundle configs and Kubernetes
//! manifests, misconfigured, hardened and malformed.

use audit::config::{MacProfile, Seccomp, UserSpec};
use audit::{audit, Options, Report, Severity, Subject, SubjectReport};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn no_image() -> Options {
    Options { image_checks: false, ..Default::default() }
}

fn docker(name: &str) -> SubjectReport {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let resp: bollard::models::ContainerInspectResponse = serde_json::from_str(&text).unwrap();
    let mut s = audit::docker::subject_from_inspect(&resp);
    s.rootfs = None; // the captured pid is long gone
    audit(s, &no_image(), None)
}

fn ids(r: &SubjectReport) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.check).collect()
}

fn severity_of(r: &SubjectReport, check: &str) -> Severity {
    r.findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no {check} in {:?}", ids(r)))
        .severity
}

/// The checks the misconfigured containers fail (one per bad setting).
const BAD_SETTINGS: &[&str] = &[
    "cap-added",
    "host-pid",
    "runtime-socket-mount",
    "sensitive-mount",
    "seccomp-unconfined",
    "mac-disabled",
    "unmasked-proc",
    "host-device",
    "port-all-interfaces",
    "privileged-port",
    "restart-policy",
    "unsafe-sysctl",
    "run-as-root",
    "no-memory-limit",
    "no-cpu-limit",
    "no-pids-limit",
    "no-new-privileges",
    "writable-rootfs",
    "no-healthcheck",
];

#[test]
fn docker_misconfigured_capture() {
    let r = docker("docker-misconfigured.json");
    let found = ids(&r);
    for id in BAD_SETTINGS {
        assert!(found.contains(id), "missing {id} in {found:?}");
    }
    assert!(!found.contains(&"privileged"));
    assert_eq!(severity_of(&r, "cap-added"), Severity::High);
    assert_eq!(severity_of(&r, "runtime-socket-mount"), Severity::Critical);
    assert_eq!(severity_of(&r, "sensitive-mount"), Severity::Medium, "/etc is mounted read-only");
    // -p 80:8080 on 0.0.0.0 and :: is one finding; 127.0.0.1:9000 is none.
    let ports: Vec<&str> =
        r.findings.iter().filter(|f| f.check == "port-all-interfaces").map(|f| f.key.as_str()).collect();
    assert_eq!(ports, vec!["8080/tcp"]);
    let c = &r.subject.config;
    assert_eq!(c.user, UserSpec::Uid(0));
    assert!(c.capabilities.contains("SYS_ADMIN") && !c.capabilities.contains("SYS_RESOURCE"));
    assert_eq!(c.seccomp, Seccomp::Unconfined);
    assert_eq!(c.apparmor, MacProfile::Disabled);
    assert_eq!(r.subject.name, "web-bad");
}

#[test]
fn docker_hardened_capture() {
    let r = docker("docker-hardened.json");
    let found = ids(&r);
    for id in BAD_SETTINGS.iter().chain(&["privileged", "cap-not-dropped"]) {
        assert!(!found.contains(id), "{id} in {found:?}");
    }
    // What is left is the host's doing: no AppArmor here, cgroup v1's host cgroupns.
    for f in &r.findings {
        assert!(f.severity <= Severity::Low, "{f:?}");
    }
    let c = &r.subject.config;
    assert_eq!(c.user, UserSpec::Uid(1000));
    assert!(c.capabilities.is_empty() && c.no_new_privileges && c.read_only_rootfs);
    assert_eq!(c.resources.memory_bytes, Some(64 << 20));
    assert_eq!(c.resources.pids, Some(64));
    assert_eq!(c.resources.cpu.as_deref(), Some("0.5 cpus"));
}

#[test]
fn docker_privileged_capture() {
    let r = docker("docker-privileged.json");
    assert_eq!(severity_of(&r, "privileged"), Severity::Critical);
    let found = ids(&r);
    // Privileged implies these; they are not repeated.
    for id in ["cap-added", "cap-not-dropped", "seccomp-unconfined", "mac-disabled", "unmasked-proc"] {
        assert!(!found.contains(&id), "{id} in {found:?}");
    }
    assert!(found.contains(&"run-as-root"));
}

fn oci(name: &str) -> Result<Subject, audit::Error> {
    audit::oci::load(&fixture(name))
}

#[test]
fn oci_misconfigured_bundle() {
    let r = audit(oci("oci-misconfigured.json").unwrap(), &no_image(), None);
    let found = ids(&r);
    for id in [
        "run-as-root",
        "cap-added",
        "no-new-privileges",
        "mac-disabled",
        "seccomp-unconfined",
        "host-pid",
        "host-ipc",
        "runtime-socket-mount",
        "sensitive-mount",
        "shared-propagation",
        "host-device",
        "unmasked-proc",
        "writable-rootfs",
        "no-memory-limit",
        "no-cpu-limit",
        "no-pids-limit",
        "unsafe-sysctl",
    ] {
        assert!(found.contains(&id), "missing {id} in {found:?}");
    }
    for id in ["host-network", "host-uts", "privileged", "restart-policy", "no-healthcheck"] {
        assert!(!found.contains(&id), "{id} in {found:?}");
    }
    assert_eq!(severity_of(&r, "sensitive-mount"), Severity::Critical, "/ mounted");
    let devs: Vec<&str> =
        r.findings.iter().filter(|f| f.check == "host-device").map(|f| f.key.as_str()).collect();
    assert_eq!(devs, vec!["/dev/sda", "a *:* rwm"]);
    let cap = r.findings.iter().find(|f| f.check == "cap-added").unwrap();
    assert!(cap.evidence.contains("SYS_ADMIN, SYS_PTRACE"), "{}", cap.evidence);
    assert!(cap.remediation.contains("CAP_SYS_ADMIN"), "{}", cap.remediation);
    assert!(r.subject.name.contains("bad-bundle"));
}

#[test]
fn oci_hardened_bundle() {
    let s = oci("oci-hardened.json").unwrap();
    let r = audit(s, &no_image(), None);
    assert_eq!(r.findings, vec![], "{:#?}", r.findings);
    assert_eq!(
        r.subject.config.seccomp,
        Seccomp::Custom("defaultAction SCMP_ACT_ERRNO, 1 syscall rules".into())
    );
}

#[test]
fn oci_bundle_rootfs_is_scanned() {
    let t = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("oci-hardened.json")).unwrap();
    std::fs::write(t.path().join("config.json"), text).unwrap();
    std::fs::create_dir_all(t.path().join("rootfs/bin")).unwrap();
    std::fs::write(t.path().join("rootfs/bin/sh"), b"x").unwrap();
    let s = audit::oci::load(&t.path().join("config.json")).unwrap();
    assert_eq!(s.rootfs.as_deref(), Some(t.path().join("rootfs").as_path()));
    let r = audit(s, &Options::default(), None);
    assert_eq!(ids(&r), vec!["image-shell"]);
}

/// The error text of a malformed file: it names the file, the field and the position.
fn err(e: audit::Error) -> String {
    e.to_string()
}

#[test]
fn oci_malformed_files() {
    let e = err(oci("oci-malformed-type.json").unwrap_err());
    assert!(e.starts_with(&format!("{}:6:", fixture("oci-malformed-type.json").display())), "{e}");
    assert!(e.contains("process.noNewPrivileges: invalid type: string \"yes\", expected a boolean"), "{e}");

    let e = err(oci("oci-malformed-unknown.json").unwrap_err());
    assert!(e.contains("oci-malformed-unknown.json:6:"), "{e}");
    assert!(e.contains("unknown field `noNewPrivilege`"), "{e}");
    assert!(e.contains("process"), "{e}");

    let e = err(oci("oci-malformed-syntax.json").unwrap_err());
    assert!(e.contains("oci-malformed-syntax.json:6:"), "{e}");

    let e = err(oci("oci-no-process.json").unwrap_err());
    assert!(e.contains("oci-no-process.json: no process section"), "{e}");

    let e = err(oci("does-not-exist.json").unwrap_err());
    assert!(e.contains("does-not-exist.json: No such file"), "{e}");
}

fn k8s() -> Vec<SubjectReport> {
    audit::k8s::load(&fixture("k8s-workloads.yaml"))
        .unwrap()
        .into_iter()
        .map(|s| audit(s, &no_image(), None))
        .collect()
}

fn by_name<'a>(all: &'a [SubjectReport], name: &str) -> &'a SubjectReport {
    all.iter().find(|r| r.subject.name == name).unwrap_or_else(|| {
        panic!("no {name} in {:?}", all.iter().map(|r| &r.subject.name).collect::<Vec<_>>())
    })
}

/// 1-based line of the first line equal to `line` (trimmed) in a fixture.
fn line_of(file: &str, line: &str, nth: usize) -> usize {
    let text = std::fs::read_to_string(fixture(file)).unwrap();
    text.lines().enumerate().filter(|(_, l)| l.trim() == line).nth(nth).map(|(i, _)| i + 1).unwrap()
}

#[test]
fn k8s_workloads() {
    let all = k8s();
    let names: Vec<&str> = all.iter().map(|r| r.subject.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "shop/Deployment/web/web",
            "shop/Deployment/web/setup",
            "Pod/hardened/app",
            "CronJob/report/report",
            "DaemonSet/agent/agent",
        ]
    );

    let web = by_name(&all, "shop/Deployment/web/web");
    let found = ids(web);
    for id in [
        "host-pid",
        "host-network",
        "run-as-root",
        "seccomp-unconfined",
        "mac-disabled",
        "cap-added",
        "unmasked-proc",
        "runtime-socket-mount",
        "sensitive-mount",
        "host-path-mount",
        "shared-propagation",
        "port-all-interfaces",
        "privileged-port",
        "unsafe-sysctl",
        "no-new-privileges",
        "writable-rootfs",
        "no-memory-limit",
        "no-cpu-limit",
        "no-healthcheck",
    ] {
        assert!(found.contains(&id), "missing {id} in {found:?}");
    }
    assert!(!found.contains(&"no-pids-limit") && !found.contains(&"privileged"));
    assert_eq!(severity_of(web, "seccomp-unconfined"), Severity::High);
    let fix = &web.findings.iter().find(|f| f.check == "cap-added").unwrap().remediation;
    assert!(fix.contains("containers[name=web].securityContext.capabilities.add"), "{fix}");
    // Pod-level runAsUser 0 applies to the container.
    assert_eq!(web.subject.config.user, UserSpec::Uid(0));
    assert_eq!(web.subject.image, "registry.local/shop/web:2.1");
    let loc = web.subject.location.as_ref().unwrap();
    assert_eq!(loc.line, Some(line_of("k8s-workloads.yaml", "- name: web", 0)));

    let setup = by_name(&all, "shop/Deployment/web/setup");
    assert!(ids(setup).contains(&"privileged"));
    assert!(!ids(setup).contains(&"no-healthcheck"), "init containers have no probes");
    let fix = &setup.findings.iter().find(|f| f.check == "privileged").unwrap().remediation;
    assert!(fix.contains("initContainers[name=setup].securityContext.privileged: false"), "{fix}");

    // Pod-level securityContext merged: runAsNonRoot, runAsUser, seccompProfile.
    let app = by_name(&all, "Pod/hardened/app");
    assert_eq!(app.findings, vec![], "{:#?}", app.findings);
    assert_eq!(app.subject.config.resources.memory_bytes, Some(128 << 20));

    let report = by_name(&all, "CronJob/report/report");
    let found = ids(report);
    for id in ["host-ipc", "mac-disabled", "seccomp-unconfined", "cap-not-dropped", "no-new-privileges"] {
        assert!(found.contains(&id), "missing {id} in {found:?}");
    }
    assert!(!found.contains(&"run-as-root"));
    assert_eq!(severity_of(report, "seccomp-unconfined"), Severity::Medium, "unset, not Unconfined");

    let agent = by_name(&all, "DaemonSet/agent/agent");
    let found = ids(agent);
    assert!(found.contains(&"runtime-socket-mount") && found.contains(&"host-port"), "{found:?}");
    assert!(!found.contains(&"port-all-interfaces") && !found.contains(&"host-path-mount"), "{found:?}");
    assert!(found.contains(&"run-as-root"), "no runAsUser, no runAsNonRoot");
}

#[test]
fn k8s_malformed_files() {
    let load = |n: &str| audit::k8s::load(&fixture(n)).unwrap_err().to_string();
    let e = load("k8s-malformed-unknown.yaml");
    assert!(e.starts_with(&format!("{}:10:", fixture("k8s-malformed-unknown.yaml").display())), "{e}");
    assert!(e.contains("spec.containers[0].securityContext: unknown field `runAsNonroot`"), "{e}");

    let e = load("k8s-malformed-type.yaml");
    assert!(e.contains("k8s-malformed-type.yaml:19:"), "{e}");
    assert!(e.contains("spec.template.spec.containers[0].securityContext.privileged: invalid type"), "{e}");

    let e = load("k8s-malformed-syntax.yaml");
    assert!(
        e.contains("k8s-malformed-syntax.yaml:9:6: did not find expected '-' indicator, while parsing"),
        "{e}"
    );

    let e = load("k8s-no-workloads.yaml");
    assert!(e.contains("no Pod, Deployment") && e.contains("kinds found: ConfigMap"), "{e}");
}

#[test]
fn outputs_of_a_mixed_report() {
    let mut subjects = k8s();
    subjects.push(docker("docker-misconfigured.json"));
    let report = Report { subjects, ..Default::default() };

    let json = report.to_json();
    assert_eq!(json["containers"].as_array().unwrap().len(), 6);
    let first = &json["containers"][0]["findings"][0];
    for key in ["check", "severity", "cis", "pss", "evidence", "remediation", "fingerprint"] {
        assert!(!first[key].is_null(), "{key} missing in {first}");
    }

    let sarif = report.to_sarif("0.1.0");
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), report.findings().count());
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert_eq!(r["partialFingerprints"]["rampartFinding/v1"].as_str().unwrap().len(), 16);
    }
    let k8s_result = results.iter().find(|r| r["properties"]["source"] == "kubernetes").unwrap();
    let phys = &k8s_result["locations"][0]["physicalLocation"];
    assert!(phys["artifactLocation"]["uri"].as_str().unwrap().ends_with("k8s-workloads.yaml"));
    assert!(phys["region"]["startLine"].as_u64().unwrap() > 1);
    let docker_result = results.iter().find(|r| r["properties"]["source"] == "docker").unwrap();
    assert_eq!(docker_result["locations"][0]["logicalLocations"][0]["name"], "web-bad");

    let table = report.to_table();
    assert!(table.contains("web-bad [docker]"), "{table}");
    assert!(table.contains("CRITICAL  runtime-socket-mount"), "{table}");
    assert!(table.contains("CIS Docker Benchmark v1.6.0"));
}
