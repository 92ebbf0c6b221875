//! Faults under a running agent: the agent itself killed with SIGKILL while it
//! enforces network policy and in-kernel kills, and every alert output failing
//! at once (a webhook answering 500, then never, then too late; a syslog
//! socket that goes away; the alerts file on a full filesystem). Real agent,
//! real dockerd, real containers; privileged.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn run_agent(np: &Np, extra: &[&str]) -> Agent {
    let mut args: Vec<String> = vec!["run".into(), "--json".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    Agent::spawn_env(args, StdoutMode::Parse, &np.env())
}

fn exec_write(c: &Container, path: &str) -> Option<i32> {
    docker(&["exec", &c.name, "sh", "-c", &format!("echo x > {path}; echo survived")]).status.code()
}

fn ip_of(c: &Container) -> String {
    docker_ok(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", &c.name])
}

fn tcp_connect(c: &Container, ip: &str, port: &str) -> (bool, String) {
    let mut exec = docker_cmd();
    exec.args(["exec", &c.name]);
    rtest_through(exec, &["tcp-connect", ip, port])
}

/// What lapses while the agent is down, and what the restarted agent restores:
/// the network policy (pinned cgroup programs) stays enforced throughout; the
/// in-kernel kill (the sensor's programs, owned by the agent's process) stops
/// with the agent and is armed again by the next one.
#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn agent_killed_keeps_network_policy_and_the_next_agent_rearms_kills() {
    preflight();
    let np = Np::new("fault-kill9");
    let c = Container::sh("fault-kill9", &[], "rtest tcp-echo 7001 & exec rtest tcp-echo 7000");
    let ip = ip_of(&c);
    wait_until("echo servers", Duration::from_secs(10), || tcp_connect(&c, &ip, "7001").0);
    let policy = np.write_policy(
        "one-port",
        "egress:\n  default: deny\n  allow:\n    - {cidr: 0.0.0.0/0, ports: [7000]}\n",
    );
    np.ok(&["netpolicy", "apply", "--container", &c.name, "-f", policy.to_str().unwrap()]);

    let dir = std::env::temp_dir().join(unique("fault-kill9-rules"));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("kill.yaml");
    std::fs::write(
        &rules,
        "- rule: fault_kill\n  desc: d\n  condition: evt.type in (open, openat, openat2) and fd.name = /tmp/fault-kill and container.id != host\n  output: \"fault_kill file=%fd.name\"\n  priority: WARNING\n  actions: [kill]\n",
    )
    .unwrap();
    let rules_arg = rules.to_str().unwrap();
    let agent = run_agent(&np, &["--no-default-rules", "--rules", rules_arg]);
    wait_kill_armed(&agent, &c, Duration::from_secs(20));
    assert_eq!(exec_write(&c, "/tmp/fault-kill"), Some(137), "the kill rule kills while the agent runs");

    // SIGKILL: no shutdown code runs.
    // SAFETY: kill with the pid of the agent this test spawned and still owns.
    assert_eq!(unsafe { libc::kill(agent.pid as libc::pid_t, libc::SIGKILL) }, 0);
    let pid = agent.pid;
    wait_until("the killed agent to exit", Duration::from_secs(10), || {
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    });
    drop(agent);

    // While it is down: the policy holds, the kernel kill has lapsed.
    assert_rtest_eperm("connect to a denied port with the agent down", tcp_connect(&c, &ip, "7001"));
    assert_rtest_ok("connect to the allowed port with the agent down", tcp_connect(&c, &ip, "7000"));
    let down = docker(&["exec", &c.name, "sh", "-c", "echo x > /tmp/fault-kill; echo survived"]);
    assert_eq!(
        down.status.code(),
        Some(0),
        "documented lapse: no in-kernel kill without the agent: {down:?}"
    );
    assert!(String::from_utf8_lossy(&down.stdout).contains("survived"));

    // The next agent reconciles the stored policy and arms the kill again.
    let restart = Instant::now();
    let mut next = run_agent(&np, &["--no-default-rules", "--rules", rules_arg]);
    let ready_in = restart.elapsed();
    wait_kill_armed(&next, &c, Duration::from_secs(20));
    eprintln!(
        "figures: policy enforced throughout; restarted agent ready in {ready_in:?}, kill re-armed {:?} after its start",
        restart.elapsed()
    );
    assert_eq!(exec_write(&c, "/tmp/fault-kill"), Some(137), "the restarted agent kills again");
    assert_rtest_eperm("connect to a denied port after the restart", tcp_connect(&c, &ip, "7001"));
    next.expect("the restarted agent alerts", |v| {
        alert_rule(v) == "fault_kill" && container_name(v) == c.name
    });
    next.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// How the test webhook treats a POST.
const HOOK_500: u8 = 0;
/// Reads the request and never answers.
const HOOK_SILENT: u8 = 1;
/// Answers 200, but only after the agent's timeout.
const HOOK_SLOW: u8 = 2;
const HOOK_HEALTHY: u8 = 3;

/// A webhook that behaves as `mode` says at the time of each POST; counts the
/// POSTs it accepted while healthy.
fn webhook_server(mode: Arc<AtomicU8>, accepted: Arc<AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mode = mode.clone();
            let accepted = accepted.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    let mut first = true;
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if first && !line.starts_with("POST") {
                            return;
                        }
                        first = false;
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0u8; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let now = mode.load(Ordering::SeqCst);
                    match now {
                        HOOK_SILENT => {
                            std::thread::sleep(Duration::from_secs(30));
                            return;
                        }
                        HOOK_SLOW => std::thread::sleep(Duration::from_millis(1500)),
                        _ => {}
                    }
                    let ok = now == HOOK_HEALTHY;
                    if ok {
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    let status = if ok { "200 OK" } else { "500 Internal Server Error" };
                    let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                    if conn.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A small tmpfs, filled up.
struct FullTmpfs {
    dir: std::path::PathBuf,
}

impl FullTmpfs {
    fn new() -> FullTmpfs {
        let dir = std::env::temp_dir().join(unique("fault-tmpfs"));
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs", dir.to_str().unwrap()])
            .status()
            .expect("mount");
        assert!(st.success(), "mounting a tmpfs on {}", dir.display());
        let t = FullTmpfs { dir };
        t.fill();
        t
    }

    fn fill(&self) {
        let mut f = std::fs::File::create(self.dir.join("filler")).unwrap();
        let chunk = vec![b'f'; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.join("filler")).unwrap();
    }
}

impl Drop for FullTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every output failing at once (the webhook answering 500, then silent, then
/// slow): the agent keeps detecting (stdout alerts keep
/// coming), loses no event, keeps its memory bounded, counts what the outputs
/// could not deliver, and delivers again once the sinks come back.
#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn failing_outputs_are_counted_and_recover() {
    preflight();
    let mode = Arc::new(AtomicU8::new(HOOK_500));
    let accepted = Arc::new(AtomicU64::new(0));
    let port = webhook_server(mode.clone(), accepted.clone());
    let tmpfs = FullTmpfs::new();
    let alerts_file = tmpfs.dir.join("alerts.json");
    let dir = std::env::temp_dir().join(unique("fault-outputs"));
    std::fs::create_dir_all(&dir).unwrap();
    // A syslog socket that answers at start (an unreachable one is a startup
    // error) and then goes away, like a restarting syslog daemon.
    let syslog_path = dir.join("syslog.sock");
    let syslog = UnixDatagram::bind(&syslog_path).unwrap();
    let rules = dir.join("out.yaml");
    std::fs::write(
        &rules,
        "- rule: fault_out\n  desc: d\n  condition: evt.type in (open, openat, openat2) and fd.name startswith /tmp/fault-out\n  output: \"fault_out file=%fd.name\"\n  priority: WARNING\n",
    )
    .unwrap();
    let config = dir.join("rampart.yaml");
    std::fs::write(
        &config,
        format!(
            "rules:\n  default_rules: false\n  paths: [{rules}]\nalerts:\n  rate_limit: {{enabled: false}}\n  outputs:\n    stdout: {{format: json}}\n    file: {{enabled: true, path: {file}, queue_size: 64}}\n    webhook: {{enabled: true, url: \"http://127.0.0.1:{port}/alerts\", timeout_ms: 500, retries: 1, backoff_initial_ms: 50, backoff_max_ms: 100, queue_size: 64}}\n    syslog: {{enabled: true, path: {syslog}, queue_size: 64}}\n",
            rules = rules.display(),
            file = alerts_file.display(),
            syslog = syslog_path.display(),
        ),
    )
    .unwrap();
    let mut agent =
        Agent::spawn(vec!["run".into(), "--config".into(), config.display().to_string()], StdoutMode::Parse);
    // About 100 alerts a second for as long as the test runs.
    let c = Container::sh(
        "fault-out",
        &[],
        "i=0; while true; do echo x > /tmp/fault-out-$i; i=$((i+1)); usleep 10000; done",
    );
    let is_ours = |v: &serde_json::Value| alert_rule(v) == "fault_out";
    agent.expect("a first alert on stdout", is_ours);
    drop(syslog);
    std::fs::remove_file(&syslog_path).unwrap();
    // The webhook answers 500, then never answers, then answers too late.
    agent.collect_for(Duration::from_secs(2));
    mode.store(HOOK_SILENT, Ordering::SeqCst);
    agent.collect_for(Duration::from_secs(2));
    mode.store(HOOK_SLOW, Ordering::SeqCst);
    agent.collect_for(Duration::from_secs(2));
    let during = agent.events.iter().filter(|v| is_ours(v)).count();
    assert!(during >= 100, "detection must go on while outputs fail: {during} alerts on stdout");
    assert!(agent.is_running(), "failing outputs must not stop the agent");
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "the webhook accepted nothing while failing");
    let in_file_before = std::fs::read_to_string(&alerts_file).map(|t| t.lines().count()).unwrap_or(0);

    // The sinks come back: the webhook answers 200 and the disk has room.
    let rss_failing = agent.vm_hwm_kib().unwrap_or(0);
    let back = Instant::now();
    mode.store(HOOK_HEALTHY, Ordering::SeqCst);
    tmpfs.free();
    let syslog = UnixDatagram::bind(&syslog_path).unwrap();
    syslog.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut datagram = [0u8; 8192];
    let n = syslog.recv(&mut datagram).expect("alerts reach the syslog socket again");
    assert!(String::from_utf8_lossy(&datagram[..n]).contains("fault_out"), "a syslog message of the rule");
    wait_until("alerts delivered to the webhook again", Duration::from_secs(20), || {
        accepted.load(Ordering::SeqCst) > 0
    });
    wait_until("alerts written to the file again", Duration::from_secs(20), || {
        std::fs::read_to_string(&alerts_file).map(|t| t.lines().count()).unwrap_or(0) > in_file_before
    });
    let recovered_in = back.elapsed();
    let hwm = agent.vm_hwm_kib().unwrap_or(0);
    drop(c);
    let summary = agent.stop();
    eprintln!(
        "figures: {during} alerts on stdout while failing; peak RSS {rss_failing} KiB while failing, {hwm} KiB at the end; \
         every sink delivering again {recovered_in:?} after it came back; {}",
        summary.line
    );
    assert_eq!(summary.dropped, 0, "no event may be lost to failing outputs: {}", summary.line);
    let line = summary.line.clone();
    // `..., N alerts (S suppressed, D dropped by outputs, F failed in outputs)`
    let count_before = |what: &str| -> u64 {
        let at = line.find(what).unwrap_or_else(|| panic!("no `{what}` in the summary: {line}"));
        line[..at].trim_end().rsplit([' ', '(']).next().and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    let failed = count_before("failed in outputs");
    let dropped = count_before("dropped by outputs");
    assert!(failed + dropped > 0, "what the outputs could not deliver is counted in the summary: {line}");
    assert!(hwm > 0 && hwm < 200 * 1024, "peak RSS {hwm} KiB must stay bounded");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A kill rule firing on an exec storm (a bounded fork bomb): the rate limit
/// holds the actions to `max_actions_per_minute` and reports the rest as
/// skipped, the agent keeps up, and `rampart status` answers meanwhile.
#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn kill_rule_on_an_exec_storm_is_rate_limited_and_the_agent_answers() {
    preflight();
    let dir = std::env::temp_dir().join(unique("fault-storm"));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("storm.yaml");
    std::fs::write(
        &rules,
        "- rule: fault_storm\n  desc: d\n  condition: evt.type in (execve, execveat) and proc.name = true and container.name contains fault-storm\n  output: \"fault_storm pid=%proc.pid\"\n  priority: WARNING\n  actions: [{kill: {in_kernel: false}}]\n",
    )
    .unwrap();
    let config = dir.join("rampart.yaml");
    std::fs::write(
        &config,
        format!(
            "rules:\n  default_rules: false\n  paths: [{}]\nresponse:\n  max_actions_per_minute: 20\nalerts:\n  rate_limit: {{enabled: false}}\n  outputs:\n    stdout: {{format: json, queue_size: 100000}}\n",
            rules.display()
        ),
    )
    .unwrap();
    let mut agent =
        Agent::spawn(vec!["run".into(), "--config".into(), config.display().to_string()], StdoutMode::Parse);
    // Eight parallel loops of short-lived processes, bounded by a pids limit.
    let c = Container::sh(
        "fault-storm",
        &["--pids-limit", "256"],
        "for j in 1 2 3 4 5 6 7 8; do (while :; do /bin/true; done) & done; wait",
    );
    let started = Instant::now();
    let status = rampart_output(&["status", "--json"], Duration::from_secs(60));
    assert!(status.status.success(), "status must answer during the storm: {status:?}");
    agent.collect_for(Duration::from_secs(8));
    let actions: Vec<&serde_json::Value> =
        agent.events.iter().filter(|v| alert_rule(v) == "Response action").collect();
    // Taken: a SIGKILL sent, or failed because the short-lived process had
    // already exited; either way it used a slot of the rate limit.
    let done = actions
        .iter()
        .filter(|v| v["output_fields"]["outcome"] == "done" || v["output_fields"]["outcome"] == "failed")
        .count();
    let limited = actions
        .iter()
        .filter(|v| {
            v["output_fields"]["outcome"] == "skipped"
                && v["output_fields"]["detail"].as_str().unwrap_or("").contains("rate limit")
        })
        .count();
    assert!(done > 0 && done <= 20, "at most max_actions_per_minute actions taken: {done}");
    assert!(limited > 0, "the rest is skipped by the rate limit and reported: {} actions", actions.len());
    let matches = agent.events.iter().filter(|v| alert_rule(v) == "fault_storm").count();
    assert!(matches > done, "the rule keeps matching ({matches}) beyond the actions taken ({done})");
    assert!(agent.is_running(), "the agent survives the storm");
    drop(c);
    let summary = agent.stop();
    eprintln!(
        "storm: {matches} matches, {done} kills, {limited} rate-limited in {:?}; {}",
        started.elapsed(),
        summary.line
    );
    let _ = std::fs::remove_dir_all(&dir);
}
