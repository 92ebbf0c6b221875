//! Deny actions through the seccomp agent, for real: `rampart run` serves
//! the notify socket, `rampart seccomp notify-profile` writes the profile,
//! containerd (`ctr run --seccomp-profile`, which passes `listenerPath` to
//! runc) starts containers under it.
//!
//! - a denied open fails with EPERM and the container carries on; other
//!   opens work; the agent reports the denial;
//! - a second thread swapping the path after the agent's check wins the
//!   race when the backstop is off (the race is real) and is killed in the
//!   kernel when it is on;
//! - with the agent killed, the notified syscalls of running containers
//!   fail with ENOSYS and new containers under the profile do not start;
//! - Docker 20.10 drops `listenerPath`: runc refuses the container;
//! - a deny on a syscall decided from its registers alone (unshare of a
//!   user namespace): EPERM, the process carries on, the same syscall with
//!   other flags runs, and the profile notifies that syscall only.
//!
//! The denied file is the test's own (bind-mounted at the same path): the
//! backstop is a kill rule in force in every container of the machine while
//! the agent runs.

mod common;

use common::ctr::{hex_id, Namespace, SOCKET};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

const RULE: &str = "Deny the test secret";

/// The secret, a deny rule on it, the agent's socket and the profile.
struct Setup {
    secret: PathBuf,
    marker: String,
    rules: PathBuf,
    socket: PathBuf,
    profile: PathBuf,
    /// The helper mounted into the containers (tests/helpers/NAME.c).
    helper: &'static str,
}

impl Setup {
    fn new(prefix: &str, backstop: bool) -> Setup {
        Setup::with_rules(prefix, "openrace", |secret| {
            format!(
                r#"
- rule: {RULE}
  desc: a container process opens the test's secret
  condition: evt.type in (open, openat, openat2) and fd.name = {} and container.id != host
  output: "secret denied (proc=%proc.name file=%fd.name)"
  priority: WARNING
  actions: [{{deny: {{errno: EPERM, backstop: {backstop}}}}}]
"#,
                secret.display()
            )
        })
    }

    /// The rule file is `rules(secret)`; `helper` is mounted in containers.
    fn with_rules(prefix: &str, helper: &'static str, rules_of: impl Fn(&Path) -> String) -> Setup {
        let name = unique(prefix);
        let tmp = std::env::temp_dir();
        let marker = format!("{name}-marker");
        let secret = tmp.join(format!("{name}.secret"));
        std::fs::write(&secret, format!("{marker}\n")).unwrap();
        let rules = tmp.join(format!("{name}.yaml"));
        std::fs::write(&rules, rules_of(&secret)).unwrap();
        let socket = tmp.join(format!("{name}.sock"));
        let profile = tmp.join(format!("{name}.json"));
        let out = rampart_output(
            &[
                "seccomp",
                "notify-profile",
                "--no-default-rules",
                "--rules",
                rules.to_str().unwrap(),
                "--listener",
                socket.to_str().unwrap(),
                "-o",
                profile.to_str().unwrap(),
            ],
            Duration::from_secs(30),
        );
        assert!(out.status.success(), "notify-profile: {}", String::from_utf8_lossy(&out.stderr));
        Setup { secret, marker, rules, socket, profile, helper }
    }

    fn secret(&self) -> &str {
        self.secret.to_str().unwrap()
    }

    /// `rampart rules check` on the rules: asserts it says the seccomp agent
    /// denies `rule` (`types`: its event types as listed, when given).
    fn rules_check_says_the_agent_denies(&self, rule: &str, types: &str) -> String {
        let check = rampart_output(
            &["rules", "check", "--no-default-rules", self.rules.to_str().unwrap()],
            Duration::from_secs(30),
        );
        let listing = String::from_utf8_lossy(&check.stdout).into_owned();
        let expected = format!(
            "deny (errno 1) by the seccomp agent, in containers under the notify profile: {rule}{types}"
        );
        assert!(listing.contains(&expected), "{listing}");
        listing
    }

    /// `rampart run` with the rule: the agent on the socket, the backstop
    /// armed for every container.
    fn agent(&self, backstop: bool) -> Agent {
        let agent = Agent::start_run(&[
            "--no-default-rules",
            "--rules",
            self.rules.to_str().unwrap(),
            "--notify-socket",
            self.socket.to_str().unwrap(),
        ]);
        wait_stderr(&agent, "rampart: seccomp agent on", EVENT_TIMEOUT);
        if backstop {
            wait_stderr(&agent, "kernel kill armed for every container", EVENT_TIMEOUT);
        }
        agent
    }

    /// `ctr run --rm` under the notify profile, the secret and the helper
    /// mounted, running `cmd`.
    fn ctr_run(&self, ns: &Namespace, id: &str, cmd: &[&str]) -> Output {
        self.ctr_run_with(ns, id, &[], cmd)
    }

    /// [`Setup::ctr_run`] with `also` mounted too (other tests' secrets).
    fn ctr_run_with(&self, ns: &Namespace, id: &str, also: &[&str], cmd: &[&str]) -> Output {
        let helper_bin = helper(self.helper);
        let mounts: Vec<String> = [self.secret()]
            .iter()
            .chain(also)
            .flat_map(|p| ["--mount".to_string(), format!("type=bind,src={p},dst={p},options=rbind:ro")])
            .collect();
        Command::new("ctr")
            .args(["--address", SOCKET, "-n", &ns.name, "run", "--rm", "--seccomp", "--seccomp-profile"])
            .arg(&self.profile)
            .args(&mounts)
            .args([
                "--mount",
                &format!("type=bind,src={helper_bin},dst=/usr/local/bin/{},options=rbind:ro", self.helper),
            ])
            .args([common::ctr::CTR_IMAGE, id])
            .args(cmd)
            .stdin(Stdio::null())
            .output()
            .expect("ctr run")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        for p in [&self.secret, &self.rules, &self.profile] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Builds `tests/helpers/NAME.c` into a static binary once per test run.
fn helper(name: &str) -> String {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers").join(format!("{name}.c"));
    let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("helper-{name}"));
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|b| b == name) {
        let out = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-Wextra", "-pthread", "-o"])
            .arg(&bin)
            .arg(&src)
            .output()
            .expect("gcc (scripts/setup.sh installs it)");
        assert!(out.status.success(), "gcc {}: {}", src.display(), String::from_utf8_lossy(&out.stderr));
        built.push(name.to_string());
    }
    bin.display().to_string()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
#[ignore = "privileged: needs root, BPF and containerd (scripts/test.sh runs it)"]
fn denied_open_fails_with_eperm_and_the_container_carries_on() {
    preflight_containerd();
    let s = Setup::new("deny-open", true);
    let listing = s.rules_check_says_the_agent_denies(RULE, "");
    assert!(
        listing.contains(&format!("deny backstop: kill in kernel from cgroup creation: {RULE}")),
        "{listing}"
    );
    let profile = std::fs::read_to_string(&s.profile).unwrap();
    assert!(profile.contains("SCMP_ACT_NOTIFY") && profile.contains(s.socket.to_str().unwrap()), "{profile}");

    let mut agent = s.agent(true);
    let ns = Namespace::new("deny");
    let id = hex_id(&ns.name);
    let script = format!(
        "cat {0}; echo cat=$?; openrace watch {0} 1 0; head -c 5 /etc/passwd; echo; openrace watch /etc/passwd 1 0; echo alive",
        s.secret()
    );
    let out = s.ctr_run(&ns, &id, &["sh", "-c", &script]);
    let all = text(&out);
    assert!(out.status.success(), "container failed: {all}");
    assert!(!all.contains(&s.marker), "the secret leaked: {all}");
    assert!(all.contains("Operation not permitted") && all.contains("cat=1"), "{all}");
    assert!(all.contains("open errno 1\n"), "the helper's open was not denied with EPERM: {all}");
    assert!(all.contains("root:") && all.contains("open ok\n") && all.contains("alive"), "{all}");
    let alert = agent.expect("the agent's denial", |v| {
        alert_rule(v) == "Response action"
            && v["output_fields"]["action"] == "deny_syscall"
            && v["output_fields"]["rule"] == RULE
            && v["output_fields"]["outcome"] == "done"
    });
    let detail = alert["output_fields"]["detail"].as_str().unwrap_or("");
    assert_eq!(detail, "denied with errno 1 by the seccomp agent", "{alert:#}");
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF and containerd (scripts/test.sh runs it)"]
fn a_path_swapped_after_the_check_is_caught_by_the_backstop() {
    preflight_containerd();
    let ns = Namespace::new("race");
    // The race is real: without the backstop the second thread wins.
    let off = Setup::new("race-off", false);
    let agent = off.agent(false);
    let out = off.ctr_run(
        &ns,
        &hex_id(&format!("{}-off", ns.name)),
        &["openrace", "race", off.secret(), "/etc/passwd", "20"],
    );
    let all = text(&out);
    // Exit 10 is the helper's leak; its output alone is not enough (ctr
    // lost a short-lived container's output once in CI).
    assert_eq!(out.status.code(), Some(10), "the race was never won without the backstop: {all}");
    assert!(all.is_empty() || all.contains(&format!("LEAK {}", off.marker)), "{all}");
    agent.stop();
    // With it, the process that won is killed in the open, before its read.
    let on = Setup::new("race-on", true);
    let agent = on.agent(true);
    let out = on.ctr_run(
        &ns,
        &hex_id(&format!("{}-on", ns.name)),
        &["openrace", "race", on.secret(), "/etc/passwd", "20"],
    );
    let all = text(&out);
    assert!(!all.contains(&on.marker), "the secret leaked past the backstop: {all}");
    assert_eq!(out.status.code(), Some(137), "not killed: {all}");
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF and containerd (scripts/test.sh runs it)"]
fn with_the_agent_gone_notified_syscalls_fail_with_enosys() {
    preflight_containerd();
    let s = Setup::new("deny-gone", false);
    let agent = s.agent(false);
    let ns = Namespace::new("gone");
    // 60 opens of an allowed file, 100 ms apart; the agent dies after ~2 s.
    let helper = helper("openrace");
    let child = Command::new("ctr")
        .args(["--address", SOCKET, "-n", &ns.name, "run", "--rm", "--seccomp", "--seccomp-profile"])
        .arg(&s.profile)
        .args(["--mount", &format!("type=bind,src={helper},dst=/usr/local/bin/openrace,options=rbind:ro")])
        .args([common::ctr::CTR_IMAGE, &hex_id(&ns.name), "openrace", "watch", "/etc/passwd", "60", "100"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctr run");
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill with the pid of the agent this test spawned.
    assert_eq!(unsafe { libc::kill(agent.pid as i32, libc::SIGKILL) }, 0);
    let out = child.wait_with_output().expect("ctr run");
    let all = text(&out);
    let lines: Vec<&str> = all.lines().filter(|l| l.starts_with("open ")).collect();
    let first_enosys = lines.iter().position(|l| *l == format!("open errno {}", libc::ENOSYS));
    let first_enosys = first_enosys.unwrap_or_else(|| panic!("no ENOSYS after the agent died: {all}"));
    assert!(first_enosys > 0 && lines[..first_enosys].iter().all(|l| *l == "open ok"), "{all}");
    assert!(
        lines[first_enosys..].iter().all(|l| *l == "open errno 38"),
        "an open passed without the agent: {all}"
    );
    // New containers under the profile do not start.
    let out = s.ctr_run(&ns, &hex_id(&format!("{}-2", ns.name)), &["true"]);
    assert!(!out.status.success(), "started without the agent: {}", text(&out));
    assert!(text(&out).contains("failed to connect with seccomp agent"), "{}", text(&out));
    drop(agent);
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn docker_20_10_drops_listener_path_and_runc_refuses_the_container() {
    preflight();
    let version = docker_ok(&["version", "--format", "{{.Server.Version}}"]);
    let s = Setup::new("deny-docker", false);
    let agent = s.agent(false);
    let out = docker(&[
        "run",
        "--rm",
        "--security-opt",
        &format!("seccomp={}", s.profile.display()),
        IMAGE,
        "true",
    ]);
    if version.starts_with("20.10") {
        assert!(!out.status.success(), "docker {version} started the container: {}", text(&out));
        assert!(text(&out).contains("listenerPath is not set"), "{}", text(&out));
    } else {
        panic!(
            "docker {version}: this test knows only 20.10's behaviour; check whether it passes listenerPath"
        );
    }
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF and containerd (scripts/test.sh runs it)"]
fn a_reload_swaps_the_agents_deny_rules_all_or_nothing() {
    preflight_containerd();
    // The agent starts denying a's secret; its rule file then says b's.
    let a = Setup::new("reload-a", false);
    let b = Setup::new("reload-b", false);
    let mut agent = a.agent(false);
    let ns = Namespace::new("reload");
    let script = format!("cat {}; echo a=$?; cat {}; echo b=$?", a.secret(), b.secret());
    let run = |id: &str| {
        text(&a.ctr_run_with(
            &ns,
            &hex_id(&format!("{}-{id}", ns.name)),
            &[b.secret()],
            &["sh", "-c", &script],
        ))
    };
    let before = run("before");
    assert!(before.contains("a=1") && !before.contains(&a.marker), "a's secret not denied: {before}");
    assert!(before.contains("b=0") && before.contains(&b.marker), "b's secret denied early: {before}");
    // An editor's save (a new file renamed over), then SIGHUP.
    let replace = |text: &str| {
        let tmp = a.rules.with_extension("new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &a.rules).unwrap();
        // SAFETY: a signal to the agent this test spawned.
        assert_eq!(unsafe { libc::kill(agent.pid as i32, libc::SIGHUP) }, 0);
    };
    replace(&std::fs::read_to_string(&b.rules).unwrap());
    wait_stderr(&agent, "rampart: seccomp agent rules swapped", EVENT_TIMEOUT);
    let after = run("after");
    assert!(after.contains("a=0") && after.contains(&a.marker), "a's secret still denied: {after}");
    assert!(after.contains("b=1") && !after.contains(&b.marker), "b's secret not denied: {after}");
    // A broken file: the whole reload is refused, the agent keeps b's rule.
    replace("- rule: [broken\n");
    wait_stderr(&agent, "reload refused", EVENT_TIMEOUT);
    let kept = run("kept");
    assert!(kept.contains("a=0") && kept.contains("b=1") && !kept.contains(&b.marker), "{kept}");
    agent.expect("the denial under the reloaded rule", |v| {
        alert_rule(v) == "Response action"
            && v["output_fields"]["action"] == "deny_syscall"
            && v["output_fields"]["detail"] == "denied with errno 1 by the seccomp agent"
    });
    agent.stop();
}

const UNSHARE_RULE: &str = "Deny user namespaces in containers";

#[test]
#[ignore = "privileged: needs root, BPF and containerd (scripts/test.sh runs it)"]
fn denied_unshare_fails_with_eperm_and_the_process_carries_on() {
    preflight_containerd();
    let s = Setup::with_rules("deny-unshare", "unsharetry", |_| {
        format!(
            r#"
- rule: {UNSHARE_RULE}
  desc: a container process asks for a user namespace
  condition: evt.type = unshare and evt.arg.flags contains CLONE_NEWUSER and container.image.repository endswith /rampart-test
  output: "user namespace denied (proc=%proc.name flags=%evt.arg.flags image=%container.image)"
  priority: WARNING
  actions: [{{deny: {{errno: EPERM}}}}]
"#
        )
    });
    s.rules_check_says_the_agent_denies(UNSHARE_RULE, " (unshare)");
    // Only unshare goes to the agent.
    let profile: serde_json::Value = serde_json::from_slice(&std::fs::read(&s.profile).unwrap()).unwrap();
    let notified: Vec<&serde_json::Value> =
        profile["syscalls"].as_array().unwrap().iter().filter(|e| e["action"] == "SCMP_ACT_NOTIFY").collect();
    assert_eq!(notified.len(), 1, "{profile:#}");
    assert_eq!(notified[0]["names"], serde_json::json!(["unshare"]), "{profile:#}");

    let mut agent = s.agent(false);
    let ns = Namespace::new("unshare");
    // A user namespace is open to any process here (no capability needed):
    // the EPERM is the agent's. CLONE_FS is the same syscall, allowed. The
    // rule is scoped by image and the first unshare is the container's first
    // act: the agent knew the image when runc handed it the listener, before
    // the runtime reported the container.
    let out = s.ctr_run(&ns, &hex_id(&ns.name), &["unsharetry", "try", "newuser", "fs", "newuser", "fs"]);
    let all = text(&out);
    assert!(out.status.success(), "container failed: {all}");
    assert_eq!(
        all.lines().filter(|l| l.starts_with("unshare ") || *l == "alive").collect::<Vec<_>>(),
        ["unshare newuser errno 1", "unshare fs ok", "unshare newuser errno 1", "unshare fs ok", "alive"],
        "{all}"
    );
    let alert = agent.expect("the agent's denial", |v| {
        alert_rule(v) == "Response action"
            && v["output_fields"]["action"] == "deny_syscall"
            && v["output_fields"]["rule"] == UNSHARE_RULE
            && v["output_fields"]["outcome"] == "done"
    });
    assert_eq!(alert["output_fields"]["detail"], "denied with errno 1 by the seccomp agent", "{alert:#}");
    agent.stop();
}
