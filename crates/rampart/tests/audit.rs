//! `rampart audit` against real containers under the real dockerd: one
//! container per bad setting, one hardened container; JSON and SARIF outputs,
//! `--fail-on` exit codes, baselines, runtime context from an alerts file. And
//! the default rule that raises a terminal shell in a container with host
//! control to CRITICAL, replayed from a capture (`--privileged` does not work
//! on these machines, so privileged=true comes from a synthetic event; the
//! live privileged check is covered by crates/audit from a captured inspect).
//!
//! Needs root and dockerd (scripts/setup.sh); fails, never skips, without them.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// The bad settings, each in its own container, and the check it must fail.
const BAD: &[(&str, &[&str], &str)] = &[
    ("powerful", &["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE"], "cap-added"),
    ("hostpid", &["--pid", "host"], "host-pid"),
    ("sock", &["-v", "/var/run/docker.sock:/var/run/docker.sock"], "runtime-socket-mount"),
    ("sysadmin", &["--cap-add", "SYS_ADMIN"], "cap-added"),
    ("unconfined", &["--security-opt", "seccomp=unconfined"], "seccomp-unconfined"),
    ("nolimits", &[], "no-memory-limit"),
];

const HARDENED: &[&str] = &[
    "--user",
    "1000:1000",
    "--read-only",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--memory",
    "64m",
    "--cpus",
    "0.5",
    "--pids-limit",
    "64",
];

/// What the default (no flags) container also fails: root, no limits.
const DEFAULTS_FAIL: &[&str] = &[
    "run-as-root",
    "no-memory-limit",
    "no-cpu-limit",
    "no-pids-limit",
    "no-new-privileges",
    "writable-rootfs",
    "cap-not-dropped",
];

/// The checks the hardened container must pass.
const HARDENED_PASSES: &[&str] = &[
    "privileged",
    "cap-added",
    "cap-not-dropped",
    "host-pid",
    "host-network",
    "runtime-socket-mount",
    "sensitive-mount",
    "seccomp-unconfined",
    "mac-disabled",
    "no-new-privileges",
    "run-as-root",
    "writable-rootfs",
    "no-memory-limit",
    "no-cpu-limit",
    "no-pids-limit",
];

/// `rampart audit ARGS`, reading stdout and stderr while it runs (reports can
/// be larger than a pipe buffer), killed after TIMEOUT.
fn audit_cmd(args: &[&str]) -> Output {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("audit")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn rampart");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = std::time::Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait rampart") {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rampart audit {args:?} still runs after {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() }
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_of(o: &Output) -> Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

/// `--container NAME` for each container.
fn select(cs: &[&Container]) -> Vec<String> {
    cs.iter().flat_map(|c| ["--container".to_string(), c.name.clone()]).collect()
}

fn args_with<'a>(sel: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = extra.to_vec();
    v.extend(sel.iter().map(String::as_str));
    v
}

/// check id -> severities, per container name.
fn findings_by_container(report: &Value) -> BTreeMap<String, Vec<(String, String)>> {
    report["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| {
            let f = c["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (f["check"].as_str().unwrap().to_string(), f["severity"].as_str().unwrap().to_string())
                })
                .collect();
            (c["name"].as_str().unwrap().to_string(), f)
        })
        .collect()
}

fn has(f: &[(String, String)], check: &str) -> bool {
    f.iter().any(|(c, _)| c == check)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("audit"));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
#[ignore = "privileged: needs root and dockerd (scripts/test.sh runs it)"]
fn audit_live_containers() {
    preflight();
    let bad: Vec<(Container, &str)> =
        BAD.iter().map(|(p, a, check)| (Container::run(p, a, &["sleep", "600"]), *check)).collect();
    let hardened = Container::run("hardened", HARDENED, &["sleep", "600"]);
    let mut all: Vec<&Container> = bad.iter().map(|(c, _)| c).collect();
    all.push(&hardened);
    let sel = select(&all);

    // ---- JSON: each bad setting yields its finding with the right id.
    let report = json_of(&audit_cmd(&args_with(&sel, &["--format", "json"])));
    let by = findings_by_container(&report);
    assert_eq!(by.len(), all.len(), "{by:#?}");
    for (c, check) in &bad {
        let f = by.get(&c.name).unwrap_or_else(|| panic!("{} not audited", c.name));
        assert!(has(f, check), "{}: no {check} in {f:?}", c.name);
        for d in DEFAULTS_FAIL {
            assert!(has(f, d), "{}: no {d} in {f:?}", c.name);
        }
        // No container here is privileged: --privileged fails on this host.
        assert!(!has(f, "privileged"), "{}: {f:?}", c.name);
    }
    let find = |name: &str, check: &str| -> Value {
        let c = report["containers"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
        c["findings"].as_array().unwrap().iter().find(|f| f["check"] == check).cloned().unwrap()
    };
    let caps = find(&bad[0].0.name, "cap-added");
    assert_eq!(caps["severity"], "high");
    assert!(caps["evidence"].as_str().unwrap().contains("all but SYS_RESOURCE"), "{caps}");
    assert_eq!(caps["cis"], serde_json::json!(["5.4"]));
    let sysadmin = find(&bad[3].0.name, "cap-added");
    assert!(sysadmin["evidence"].as_str().unwrap().contains("dangerous: SYS_ADMIN"), "{sysadmin}");
    assert!(sysadmin["remediation"].as_str().unwrap().contains("--cap-add SYS_ADMIN"), "{sysadmin}");
    let sock = find(&bad[2].0.name, "runtime-socket-mount");
    assert_eq!(sock["severity"], "critical");
    assert_eq!(sock["cis"], serde_json::json!(["5.32"]));
    assert_eq!(find(&bad[1].0.name, "host-pid")["cis"], serde_json::json!(["5.16"]));
    assert_eq!(find(&bad[4].0.name, "seccomp-unconfined")["cis"], serde_json::json!(["5.22"]));

    // The hardened container passes those checks.
    let h = &by[&hardened.name];
    for check in HARDENED_PASSES {
        assert!(!has(h, check), "hardened fails {check}: {h:?}");
    }
    // Image content was read through /proc/<pid>/root: the busybox image ships shells.
    assert!(has(h, "image-shell"), "{h:?}");
    let hc = report["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == hardened.name.as_str())
        .unwrap();
    assert_eq!(hc["id"], hardened.id.as_str());
    assert_eq!(hc["config"]["user"], serde_json::json!({"kind": "uid", "value": 1000}));

    // ---- Table: grouped by container, readable.
    let table = audit_cmd(&sel.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(table.status.success(), "{}", text(&table));
    let t = String::from_utf8_lossy(&table.stdout);
    for c in &all {
        assert!(t.contains(&format!("{} [docker] id {}", c.name, &c.id[..12])), "{t}");
    }
    assert!(t.contains("CRITICAL  runtime-socket-mount"), "{t}");
    assert!(t.contains("fix: "), "{t}");

    // ---- SARIF 2.1.0 shape.
    let sarif_path = tmp("audit.sarif");
    let sarif_arg = sarif_path.display().to_string();
    let o = audit_cmd(&args_with(&sel, &["--format", "sarif", "--output", &sarif_arg]));
    assert!(o.status.success(), "{}", text(&o));
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&sarif_path).unwrap()).unwrap();
    check_sarif(&sarif, &report);

    // ---- --fail-on: exit 3 at or above, 0 below, 2 for a bad severity.
    let o = audit_cmd(&args_with(&select(&[&bad[2].0]), &["--fail-on", "critical", "--format", "json"]));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at or above critical"), "{}", text(&o));
    serde_json::from_slice::<Value>(&o.stdout).expect("the report is still written");
    let o = audit_cmd(&args_with(&select(&[&hardened]), &["--fail-on", "medium"]));
    assert_eq!(o.status.code(), Some(0), "hardened fails at medium: {}", text(&o));
    let o = audit_cmd(&args_with(&select(&[&hardened]), &["--fail-on", "low"]));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = audit_cmd(&["--fail-on", "severe", "--container", &hardened.name]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = audit_cmd(&["--container", "rampart-it-no-such-container"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no container"), "{}", text(&o));

    // ---- Baseline: accept today's findings; only new ones fail.
    let base_path = tmp("baseline.json");
    let base_arg = base_path.display().to_string();
    let bad_sel = select(&bad.iter().map(|(c, _)| c).collect::<Vec<_>>());
    let o = audit_cmd(&args_with(&bad_sel, &["--write-baseline", &base_arg, "--fail-on", "info"]));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let b: Value = serde_json::from_str(&std::fs::read_to_string(&base_path).unwrap()).unwrap();
    let n = b["findings"].as_array().unwrap().len();
    assert!(n >= bad.len() * DEFAULTS_FAIL.len(), "{b}");
    let o =
        audit_cmd(&args_with(&bad_sel, &["--baseline", &base_arg, "--fail-on", "info", "--format", "json"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["summary"]["baselined"], n);
    // A new misconfigured container is not in the baseline.
    let newcomer = Container::run("newcomer", &["--ipc", "host"], &["sleep", "600"]);
    let mut with_new = bad_sel.clone();
    with_new.extend(["--container".to_string(), newcomer.name.clone()]);
    let o = audit_cmd(&args_with(
        &with_new,
        &["--baseline", &base_arg, "--fail-on", "medium", "--format", "sarif"],
    ));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    let results = s["runs"][0]["results"].as_array().unwrap();
    let new: BTreeSet<&str> = results
        .iter()
        .filter(|r| r["baselineState"] == "new")
        .map(|r| r["properties"]["container"].as_str().unwrap())
        .collect();
    assert_eq!(new, BTreeSet::from([newcomer.name.as_str()]), "only the newcomer's findings are new");
    assert!(results.iter().any(|r| r["baselineState"] == "new" && r["ruleId"] == "host-ipc"));
    assert!(results
        .iter()
        .filter(|r| r["baselineState"] == "unchanged")
        .all(|r| r["suppressions"][0]["kind"] == "external"));
    let bad_base = tmp("bad-baseline.json");
    std::fs::write(&bad_base, "{\"version\": 1, \"findings\": [{\"fingerprint\": \"xyz\"}]}").unwrap();
    let o = audit_cmd(&["--baseline", &bad_base.display().to_string(), "--container", &hardened.name]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not 16 hex digits"), "{}", text(&o));

    // ---- Runtime context: alerts of `rampart run`'s file output mark the container.
    let alerts_path = tmp("alerts.jsonl");
    let sock_c = &bad[2].0;
    let ctr = std::sync::Arc::new(model::Container {
        id: sock_c.id.clone(),
        name: sock_c.name.clone(),
        ..Default::default()
    });
    let mut lines = String::new();
    for (rule, prio) in [
        ("Terminal shell in privileged container", model::Priority::Critical),
        ("Launch suspicious tool", model::Priority::Warning),
    ] {
        let a =
            alerts::Alert::new(1_800_000_000_000_000_000, rule, prio, "x").with_container(Some(ctr.clone()));
        lines.push_str(&a.to_json());
        lines.push('\n');
    }
    lines.push_str("garbage\n");
    std::fs::write(&alerts_path, lines).unwrap();
    let o = audit_cmd(&[
        "--alerts",
        &alerts_path.display().to_string(),
        "--format",
        "json",
        "--container",
        &sock_c.name,
        "--container",
        &hardened.name,
    ]);
    let r = json_of(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 lines are not alerts"), "{}", text(&o));
    let cs = r["containers"].as_array().unwrap();
    let marked = cs.iter().find(|c| c["name"] == sock_c.name.as_str()).unwrap();
    assert_eq!(marked["alerts"].as_array().unwrap().len(), 2, "{marked}");
    assert_eq!(marked["alerts"][0]["rule"], "Terminal shell in privileged container");
    let rt: Vec<&Value> =
        marked["findings"].as_array().unwrap().iter().filter(|f| f["check"] == "runtime-alerts").collect();
    assert_eq!(rt.len(), 2);
    assert_eq!(rt[0]["severity"], "critical");
    let clean = cs.iter().find(|c| c["name"] == hardened.name.as_str()).unwrap();
    assert!(clean["alerts"].as_array().unwrap().is_empty());
}

/// The SARIF 2.1.0 structure code scanning needs.
fn check_sarif(sarif: &Value, report: &Value) {
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = sarif["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "rampart");
    let rules = driver["rules"].as_array().unwrap();
    let ids: BTreeSet<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), rules.len(), "rule ids unique");
    for r in rules {
        assert!(r["shortDescription"]["text"].is_string() && r["help"]["text"].is_string(), "{r}");
        assert!(["error", "warning", "note"].contains(&r["defaultConfiguration"]["level"].as_str().unwrap()));
        assert!(r["properties"]["security-severity"].as_str().unwrap().parse::<f64>().is_ok());
    }
    let results = runs[0]["results"].as_array().unwrap();
    let total: usize = report["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["findings"].as_array().unwrap().len())
        .sum();
    assert_eq!(results.len(), total);
    let mut fps = BTreeSet::new();
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"], "{r}");
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()), "{r}");
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let loc = &r["locations"][0]["logicalLocations"][0];
        assert!(loc["name"].as_str().unwrap().starts_with("rampart-it-"), "{r}");
        let fp = r["partialFingerprints"]["rampartFinding/v1"].as_str().unwrap();
        assert!(fps.insert(fp.to_string()), "duplicate fingerprint {fp}");
    }
}

#[test]
fn audit_files_without_docker_access() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../audit/tests/fixtures");
    let k8s = fixtures.join("k8s-workloads.yaml").display().to_string();
    let oci = fixtures.join("oci-misconfigured.json").display().to_string();
    // A socket that does not exist: files alone must not need dockerd.
    let o = audit_cmd(&[
        "--k8s",
        &k8s,
        "--oci",
        &oci,
        "--format",
        "json",
        "--docker-socket",
        "/nonexistent.sock",
    ]);
    let r = json_of(&o);
    let names: Vec<&str> =
        r["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"shop/Deployment/web/web")
            && names.iter().any(|n| n.contains("oci-misconfigured.json")),
        "{names:?}"
    );
    let bad = fixtures.join("k8s-malformed-unknown.yaml").display().to_string();
    let o = audit_cmd(&["--k8s", &bad]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{bad}:10:")) && err.contains("unknown field `runAsNonroot`"), "{err}");
}

/// An exec of an interactive shell in a container, as `rampart capture` writes it.
fn shell_event(container: model::Container, pid: u32) -> String {
    let ev = model::Event {
        ts_ns: 1_800_000_000_000_000_000 + u64::from(pid),
        process: model::ProcessCtx {
            pid,
            tid: pid,
            comm: "sh".into(),
            exe: "/bin/sh".into(),
            cmdline: "sh -i".into(),
            ..Default::default()
        },
        container: Some(std::sync::Arc::new(container)),
        ret: Some(0),
        syscall: Some("execve".into()),
        kind: model::EventKind::Exec {
            filename: "/bin/sh".into(),
            exe: "/bin/sh".into(),
            argv: vec!["sh".into(), "-i".into()],
            argv_truncated: false,
            cwd: "/".into(),
            tty: Some("pts0".into()),
            cap_effective: 0,
            cap_permitted: 0,
            exe_from_memfd: false,
            exe_upper_layer: Some(false),
            details: None,
        },
    };
    serde_json::to_string(&ev).unwrap()
}

#[test]
fn shell_in_container_with_host_control_is_critical() {
    let base = |name: &str| model::Container {
        id: format!("{:0>64}", name.len()),
        name: name.into(),
        runtime: Some(model::Runtime::Docker),
        image: IMAGE.into(),
        ..Default::default()
    };
    let plain = base("plain");
    let privileged = model::Container { privileged: true, id: "a".repeat(64), ..base("privileged") };
    let socket = model::Container {
        id: "b".repeat(64),
        mounts: vec![model::Mount {
            source: "/var/run/docker.sock".into(),
            destination: "/var/run/docker.sock".into(),
            read_only: false,
            propagation: "rprivate".into(),
            mode: String::new(),
        }],
        ..base("socket")
    };
    let hostpid = model::Container { host_pid: true, id: "c".repeat(64), ..base("hostpid") };
    let capture = tmp("shells.jsonl");
    let lines: Vec<String> = [plain, privileged, socket, hostpid]
        .into_iter()
        .enumerate()
        .map(|(i, c)| shell_event(c, 100 + i as u32))
        .collect();
    std::fs::write(&capture, lines.join("\n") + "\n").unwrap();
    let o = rampart_output(&["replay", &capture.display().to_string(), "--json"], TIMEOUT);
    assert!(o.status.success(), "{}", text(&o));
    let alerts: Vec<Value> =
        String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let of = |name: &str| -> Vec<(String, String)> {
        alerts
            .iter()
            .filter(|a| container_name(a) == name)
            .map(|a| (alert_rule(a).to_string(), alert_priority(a).to_string()))
            .collect()
    };
    assert_eq!(
        of("plain"),
        vec![("Terminal shell in container".to_string(), "Notice".to_string())],
        "{alerts:#?}"
    );
    for name in ["privileged", "socket", "hostpid"] {
        assert_eq!(
            of(name),
            vec![("Terminal shell in privileged container".to_string(), "Critical".to_string())],
            "{name}: {alerts:#?}"
        );
    }
}
