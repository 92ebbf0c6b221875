//! Rule actions end to end (`actions:` on rules, under `rampart run`): a kill
//! that lands, a dry run that does nothing but says so, a freeze undone by
//! `rampart unfreeze`, the protected list keeping host processes safe, the
//! in-kernel kill (at open and at exec, in the same syscall), `deny` blocking
//! repeats of a connection, and `stop`.

mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rules_file(prefix: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("{}.yaml", unique(prefix)));
    std::fs::write(&p, text).expect("write rules");
    p
}

fn is_action(v: &Value, action: &str, outcome: &str) -> bool {
    alert_rule(v) == "Response action"
        && v["output_fields"]["action"] == action
        && v["output_fields"]["outcome"] == outcome
}

/// Kill shells of `rampart-it-kill*` containers that read /etc/shadow; and a
/// rule that matches a host process (by a marker in its command line).
const KILL_RULES: &str = r#"
- rule: Shadow read in test container
  desc: a process in a test container opened /etc/shadow
  condition: evt.type in (open, openat) and fd.name = /etc/shadow and container.name startswith rampart-it-kill
  output: "shadow read (proc=%proc.name container=%container.name)"
  priority: CRITICAL
  actions: [kill]
- rule: Shadow read on host by the test
  desc: a host process of this test opened /etc/shadow
  condition: evt.type in (open, openat) and fd.name = /etc/shadow and proc.cmdline contains rampart-host-marker
  output: "host shadow read (proc=%proc.name)"
  priority: CRITICAL
  actions: [kill]
"#;

const VICTIM: &str = "sleep 2; read x < /etc/shadow; sleep 6; echo survived";

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn kill_action_kills_the_process_and_protects_host_processes() {
    preflight();
    let rules = rules_file("kill-rules", KILL_RULES);
    let mut agent = Agent::start_run(&["--no-default-rules", "--host", "--rules", rules.to_str().unwrap()]);

    let victim = Container::sh("kill", &[], VICTIM);
    // A host process doing the same: the rule matches it, the action must not.
    let host = Command::new("/bin/sh")
        .args(["-c", "sleep 2; read x < /etc/shadow; sleep 3; echo alive # rampart-host-marker"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn host shell");

    let action = agent.expect("kill action done", |v| is_action(v, "kill", "done"));
    assert_eq!(action["output_fields"]["rule"], "Shadow read in test container", "{action:#}");
    assert_eq!(action["container"]["name"], victim.name.as_str(), "{action:#}");
    let code = victim.wait(Duration::from_secs(30));
    assert_eq!(code, 137, "killed by SIGKILL; logs:\n{}", victim.logs());
    assert!(!victim.logs().contains("survived"));

    let refused = agent.expect("host action refused", |v| is_action(v, "kill", "refused"));
    assert!(
        refused["output_fields"]["detail"].as_str().unwrap_or("").contains("not in a container"),
        "{refused:#}"
    );
    let out = host.wait_with_output().expect("host shell");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("alive"),
        "the host process was harmed"
    );
    agent.stop();
    let _ = std::fs::remove_file(rules);
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn dry_run_reports_and_does_nothing() {
    preflight();
    let rules = rules_file("dry-rules", KILL_RULES);
    let mut agent =
        Agent::start_run(&["--no-default-rules", "--dry-run", "--rules", rules.to_str().unwrap()]);
    let victim = Container::sh("kill", &[], VICTIM);
    let action = agent.expect("kill action in dry run", |v| is_action(v, "kill", "dry_run"));
    assert_eq!(action["container"]["name"], victim.name.as_str());
    assert!(victim.wait_ok(Duration::from_secs(30)).contains("survived"));
    agent.stop();
    let _ = std::fs::remove_file(rules);
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn freeze_action_stops_progress_until_unfreeze() {
    preflight();
    let rules = rules_file(
        "freeze-rules",
        r#"
- rule: Shadow read in freeze test container
  desc: a process in a test container opened /etc/shadow
  condition: evt.type in (open, openat) and fd.name = /etc/shadow and container.name startswith rampart-it-freeze
  output: "shadow read (container=%container.name)"
  priority: CRITICAL
  actions: [freeze]
"#,
    );
    let mut agent = Agent::start_run(&["--no-default-rules", "--rules", rules.to_str().unwrap()]);
    let c = Container::sh(
        "freeze",
        &[],
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/counter; if [ $i = 10 ]; then read x < /etc/shadow; fi; sleep 0.2; done",
    );
    let action = agent
        .expect_within("freeze action done", Duration::from_secs(30), |v| is_action(v, "freeze", "done"));
    assert!(action["output_fields"]["detail"].as_str().unwrap_or("").starts_with("frozen"), "{action:#}");
    let pid: u32 = docker_ok(&["inspect", "-f", "{{.State.Pid}}", &c.name]).parse().expect("pid");
    let frozen_at = counter(pid);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(counter(pid), frozen_at, "the frozen container kept counting");
    assert!((10..14).contains(&frozen_at), "frozen right after the match, at {frozen_at}");

    let out = rampart_output(&["unfreeze", "--container", &c.name], Duration::from_secs(60));
    assert!(out.status.success(), "unfreeze: {}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(pid) <= frozen_at {
        assert!(Instant::now() < deadline, "the container did not resume after unfreeze");
        std::thread::sleep(Duration::from_millis(200));
    }
    agent.stop();
    let _ = std::fs::remove_file(rules);
}

/// Waits until the agent says it armed the container's cgroup with kill
/// triggers (the in-kernel fast path).
fn wait_armed(agent: &Agent, c: &Container) {
    wait_kill_armed(agent, c, Duration::from_secs(20));
}

/// `docker exec` with its exit code and output.
fn exec_status(c: &Container, cmd: &[&str]) -> (i32, String, String) {
    let mut args = vec!["exec", c.name.as_str()];
    args.extend_from_slice(cmd);
    let o = docker(&args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn kernel_kill_at_open_lands_before_the_file_is_read() {
    preflight();
    // /etc/shadow of the container is a host file holding a marker, so the
    // test can tell whether `cat` got to print any of it.
    let marker = unique("shadow-marker");
    let shadow = std::env::temp_dir().join(format!("{}.shadow", unique("kk")));
    std::fs::write(&shadow, format!("{marker}\n")).expect("write marker file");
    let rules = rules_file(
        "kk-open-rules",
        r#"
- rule: Shadow open in kernel kill test
  desc: a process of a test container (or of the host) opened /etc/shadow
  condition: evt.type in (open, openat, openat2) and fd.name = /etc/shadow and (container.name startswith rampart-it-kkopen or container.id = host)
  output: "shadow opened (proc=%proc.name container=%container.name)"
  priority: CRITICAL
  actions: [kill]
"#,
    );
    let check = rampart_output(
        &["rules", "check", "--no-default-rules", rules.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let listing = String::from_utf8_lossy(&check.stdout);
    assert!(
        listing.contains("kill in kernel before the entrypoint with the OCI hook, else after container metadata: Shadow open in kernel kill test (open /etc/shadow; openat /etc/shadow; openat2 /etc/shadow)"),
        "rules check: {listing}"
    );
    let mut agent = Agent::start_run(&["--no-default-rules", "--host", "--rules", rules.to_str().unwrap()]);
    let mount = format!("{}:/etc/shadow:ro", shadow.display());
    let c = Container::run("kkopen", &["-v", &mount], &["sleep", "120"]);
    wait_armed(&agent, &c);
    // The file is readable (no rule on this path's other names).
    assert!(c.exec(&["sh", "-c", "echo ok"]).contains("ok"));

    let (code, out, err) = exec_status(&c, &["cat", "/etc/shadow"]);
    assert_eq!(code, 137, "cat should die of SIGKILL; stdout {out:?} stderr {err:?}");
    assert!(!out.contains(&marker) && !err.contains(&marker), "cat printed the file: {out:?}");
    let action = agent.expect("kernel kill reported", |v| {
        is_action(v, "kill", "done") && v["container"]["name"] == c.name.as_str()
    });
    let detail = action["output_fields"]["detail"].as_str().unwrap_or("");
    assert!(detail.starts_with("killed in the kernel at open"), "{action:#}");
    assert!(detail.contains("/etc/shadow"), "{action:#}");
    assert_eq!(action["output_fields"]["rule"], "Shadow open in kernel kill test");

    // The container lives on: only the offending process died, and other
    // files are read as usual.
    assert!(c.exec(&["sh", "-c", "echo alive"]).contains("alive"));
    assert!(c.exec(&["cat", "/etc/passwd"]).contains("root:"));

    // A host process opening the host's /etc/shadow matches the rule, but
    // the kernel never arms the host and userspace refuses it.
    let host = Command::new("/bin/cat").arg("/etc/shadow").stdout(Stdio::piped()).output().expect("host cat");
    assert!(host.status.success(), "the host's cat was harmed: {:?}", host.status);
    let refused = agent.expect("host kill refused", |v| is_action(v, "kill", "refused"));
    assert!(
        refused["output_fields"]["detail"].as_str().unwrap_or("").contains("not in a container"),
        "{refused:#}"
    );
    agent.stop();
    let _ = std::fs::remove_file(rules);
    let _ = std::fs::remove_file(shadow);
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn kernel_kill_at_exec_runs_no_instruction_of_the_program() {
    preflight();
    let marker = unique("exec-marker");
    let rules = rules_file(
        "kk-exec-rules",
        r#"
- macro: spawned_process
  condition: evt.type in (execve, execveat) and evt.dir = <
- rule: Forbidden binary in kernel kill test
  desc: a test container ran /tmp/forbidden
  condition: spawned_process and proc.exepath = /tmp/forbidden and container.name startswith rampart-it-kkexec
  output: "forbidden binary (proc=%proc.exepath container=%container.name)"
  priority: CRITICAL
  actions: [kill]
"#,
    );
    let mut agent = Agent::start_run(&["--no-default-rules", "--rules", rules.to_str().unwrap()]);
    let c = Container::run("kkexec", &[], &["sleep", "120"]);
    wait_armed(&agent, &c);
    // A copy of busybox under the forbidden path: copying opens it, which is
    // no trigger; running it is.
    let script = format!("cp /bin/busybox /tmp/forbidden && /tmp/forbidden echo {marker}; echo status=$?");
    let (code, out, err) = exec_status(&c, &["sh", "-c", &script]);
    assert_eq!(code, 0, "the shell itself survives: {out:?} {err:?}");
    assert!(!out.contains(&marker), "the forbidden program ran: {out:?}");
    assert_eq!(kv(&out, "status").as_deref(), Some("137"), "{out:?}");
    let action = agent.expect("kernel kill at exec reported", |v| {
        is_action(v, "kill", "done") && v["container"]["name"] == c.name.as_str()
    });
    let detail = action["output_fields"]["detail"].as_str().unwrap_or("");
    assert!(detail.starts_with("killed in the kernel at execve"), "{action:#}");
    // Other programs still run in that container.
    assert!(c.exec(&["sh", "-c", "/bin/busybox echo fine"]).contains("fine"));
    agent.stop();
    let _ = std::fs::remove_file(rules);
}

fn ip_of(c: &Container) -> String {
    let ip = docker_ok(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", &c.name]);
    assert!(!ip.is_empty(), "container {} has no bridge address", c.name);
    ip
}

/// `rtest tcp-connect IP PORT` in the container: its errno (0: connected).
fn connect_errno(c: &Container, ip: &str, port: &str) -> String {
    let (_, out, err) = exec_status(c, &[RTEST, "tcp-connect", ip, port]);
    kv(&out, "errno").unwrap_or_else(|| panic!("rtest printed no errno: {out:?} {err:?}"))
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn deny_action_blocks_repeats_of_the_connection() {
    preflight();
    // The test's own server container and client container.
    let server = Container::run("denysrv", &[], &[RTEST, "tcp-echo", "7000"]);
    let sip = ip_of(&server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while connect_errno(&server, &sip, "7000") != "0" {
        assert!(Instant::now() < deadline, "echo server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rules = rules_file(
        "deny-rules",
        r#"
- rule: Connect to port 7000 from deny test client
  desc: outbound connection to port 7000 from the test's client container
  condition: evt.type = connect and fd.sport = 7000 and container.name startswith rampart-it-denycli
  output: "connect (proc=%proc.name dest=%fd.name container=%container.name)"
  priority: WARNING
  actions: [deny]
"#,
    );
    let mut agent = Agent::start_run(&["--no-default-rules", "--rules", rules.to_str().unwrap()]);
    let client = Container::run("denycli", &[], &["sleep", "120"]);

    // The first connect is the one that matched: it happens, and is reported.
    assert_eq!(connect_errno(&client, &sip, "7000"), "0", "the first connect is not blocked");
    let alert = agent.expect("the connect alert", |v| {
        alert_rule(v) == "Connect to port 7000 from deny test client"
            && v["container"]["name"] == client.name.as_str()
    });
    assert!(alert["output"].as_str().unwrap_or("").contains(&format!("{sip}:7000")), "{alert:#}");
    let action = agent.expect("deny action done", |v| {
        is_action(v, "deny", "done") && v["container"]["name"] == client.name.as_str()
    });
    let detail = action["output_fields"]["detail"].as_str().unwrap_or("");
    assert_eq!(detail, format!("{sip} port 7000 denied in the kernel from now on"), "{action:#}");
    // Repeats fail with EPERM, in the kernel; other destinations are untouched.
    assert_eq!(connect_errno(&client, &sip, "7000"), "1", "a repeat connect must get EPERM");
    assert_eq!(connect_errno(&server, &sip, "7000"), "0", "the server's own connect is not denied");
    agent.stop();
    let _ = rampart_output(&["netpolicy", "remove", "--container", &client.name], Duration::from_secs(30));
    let _ = std::fs::remove_file(rules);
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn stop_action_stops_the_container() {
    preflight();
    let rules = rules_file(
        "stop-rules",
        r#"
- rule: Shadow read in stop test container
  desc: a process in a test container opened /etc/shadow
  condition: evt.type in (open, openat) and fd.name = /etc/shadow and container.name startswith rampart-it-stop
  output: "shadow read (container=%container.name)"
  priority: CRITICAL
  actions: [stop]
"#,
    );
    let mut agent = Agent::start_run(&["--no-default-rules", "--rules", rules.to_str().unwrap()]);
    let c = Container::sh("stop", &[], "sleep 2; read x < /etc/shadow; sleep 120");
    let action =
        agent.expect_within("stop action done", Duration::from_secs(40), |v| is_action(v, "stop", "done"));
    assert_eq!(action["container"]["name"], c.name.as_str(), "{action:#}");
    assert_eq!(action["output_fields"]["detail"], "stopped", "{action:#}");
    assert_eq!(docker_ok(&["inspect", "-f", "{{.State.Running}}", &c.name]), "false");
    agent.stop();
    let _ = std::fs::remove_file(rules);
}
