//! Shared harness of rampart's integration tests: real agent, real containers.
//!
//! - [`preflight`] fails the test (never skips it) unless we are root and dockerd
//!   answers, and builds the test image `rampart-test:latest` once per test binary
//!   (through the shared `testkit` crate, which also holds the docker client,
//!   the containerd and podman image imports and the containerd cleanup).
//!   Tests that need it are `#[ignore = "privileged: needs root, ..."]`: plain
//!   `cargo test` lists them as ignored, `scripts/test.sh` runs them.
//! - [`Agent`] runs `rampart events --json ...` (or, with [`Agent::start_run`],
//!   the detection agent `rampart run --json ...`, whose lines are alerts), reads
//!   its stdout on a thread into a channel of JSON values, waits for
//!   `rampart: sensor ready` on stderr, and on [`Agent::stop`] sends SIGINT and
//!   parses the summary line.
//! - [`Container`] runs a uniquely named container of the test image and removes
//!   it on drop.
//! - [`net`]: a Docker network of the test's own, the network tool images
//!   and containers of them on it.
//! - [`Np`] gives a test its own network-policy store and BPF pin directory for
//!   the `netpolicy`, `isolate` and `freeze` commands.
#![allow(dead_code)]

pub mod ctr;
pub mod net;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// Re-exported for the test files (not every binary uses every one).
#[allow(unused_imports)]
pub use testkit::{docker_bin, docker_cmd, is_root, repo_root, IMAGE};
pub const RTEST: &str = "/usr/local/bin/rtest";
pub const READY_LINE: &str = "rampart: sensor ready";
/// How long the agent may take to load and attach its BPF programs.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default wait for an expected event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Preflight
// ---------------------------------------------------------------------------

/// The preflight of a test that runs the agent against Docker containers:
/// root and BPF, dockerd, and the test image built (once per test binary).
/// Panics with the reason when a need is not met: these tests never pass
/// vacuously. Every such test is `#[ignore = "privileged: ..."]` and calls this
/// (or [`preflight_containerd`], [`preflight_podman`]) first.
pub fn preflight() {
    testkit::require_bpf();
    testkit::require_dockerd();
    testkit::test_image();
}

/// [`preflight`], and containerd answering on its socket.
pub fn preflight_containerd() {
    preflight();
    testkit::require_containerd();
}

/// [`preflight`], podman's API service answering, and the test image loaded
/// into podman.
pub fn preflight_podman() {
    preflight();
    testkit::load_into_podman();
}

// ---------------------------------------------------------------------------
// Docker
// ---------------------------------------------------------------------------

/// Run `docker ARGS`; return its output whatever the exit status.
pub fn docker(args: &[&str]) -> Output {
    docker_cmd().args(args).output().unwrap_or_else(|e| panic!("running docker {args:?}: {e}"))
}

/// Run `docker ARGS`, panic unless it succeeds, return stdout trimmed.
pub fn docker_ok(args: &[&str]) -> String {
    let o = docker(args);
    assert!(
        o.status.success(),
        "docker {args:?} failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::AtomicUsize;
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("rampart-it-{prefix}-{}-{}-{:x}", std::process::id(), N.fetch_add(1, Ordering::SeqCst), nanos)
}

/// A container of the test image, named uniquely, removed (`rm -f`) on drop.
pub struct Container {
    pub name: String,
    /// Full id (64 hex) as `docker run -d` printed it.
    pub id: String,
}

impl Container {
    /// `docker run -d --name <unique> DOCKER_ARGS rampart-test:latest CMD...`.
    pub fn run(prefix: &str, docker_args: &[&str], cmd: &[&str]) -> Container {
        preflight();
        let name = unique(prefix);
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend_from_slice(docker_args);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        let id = docker_ok(&args);
        assert!(is_full_id(&id), "docker run printed {id:?}, not a 64-hex id");
        Container { name, id }
    }

    /// Run `sh -c SCRIPT` in a new container.
    pub fn sh(prefix: &str, docker_args: &[&str], script: &str) -> Container {
        Container::run(prefix, docker_args, &["/bin/sh", "-c", script])
    }

    /// Wait until the container exits; return its exit code. Panics on timeout.
    pub fn wait(&self, timeout: Duration) -> i64 {
        let mut child = docker_cmd()
            .args(["wait", &self.name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn docker wait");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("docker wait") {
                let out = child.wait_with_output().expect("docker wait output");
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    status.success(),
                    "docker wait {} failed: {}",
                    self.name,
                    String::from_utf8_lossy(&out.stderr)
                );
                return text.trim().parse().unwrap_or_else(|_| panic!("docker wait printed {text:?}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("container {} still runs after {timeout:?}; logs:\n{}", self.name, self.logs());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for exit and require exit code 0; return the logs.
    pub fn wait_ok(&self, timeout: Duration) -> String {
        let code = self.wait(timeout);
        let logs = self.logs();
        assert_eq!(code, 0, "container {} exited {code}; logs:\n{logs}", self.name);
        logs
    }

    /// stdout and stderr of the container so far.
    pub fn logs(&self) -> String {
        let o = docker(&["logs", &self.name]);
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    }

    /// `docker exec NAME CMD...`, panics unless it succeeds; returns stdout.
    pub fn exec(&self, cmd: &[&str]) -> String {
        let mut args = vec!["exec", self.name.as_str()];
        args.extend_from_slice(cmd);
        docker_ok(&args)
    }

    /// The id as `docker inspect` reports it.
    pub fn inspect_id(&self) -> String {
        docker_ok(&["inspect", "--format", "{{.Id}}", &self.name])
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ =
            docker_cmd().args(["rm", "-f", &self.name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The value of `key=value` in rtest's output (first occurrence).
pub fn kv(output: &str, key: &str) -> Option<String> {
    output.split_whitespace().find_map(|tok| tok.strip_prefix(key)?.strip_prefix('=').map(str::to_string))
}

/// The port of `key=127.0.0.1:PORT` in rtest's output.
pub fn kv_port(output: &str, key: &str) -> u16 {
    let v = kv(output, key).unwrap_or_else(|| panic!("no {key}= in rtest output:\n{output}"));
    v.rsplit(':').next().unwrap().parse().unwrap_or_else(|_| panic!("bad {key}={v}"))
}

// ---------------------------------------------------------------------------
// Event accessors
// ---------------------------------------------------------------------------

pub fn ev_type(ev: &Value) -> &str {
    ev["type"].as_str().unwrap_or("")
}

/// The event's container object, if any (absent or null for host processes).
pub fn container_of(ev: &Value) -> Option<&Value> {
    ev.get("container").filter(|c| !c.is_null())
}

pub fn container_id(ev: &Value) -> &str {
    container_of(ev).and_then(|c| c["id"].as_str()).unwrap_or("")
}

pub fn container_name(ev: &Value) -> &str {
    container_of(ev).and_then(|c| c["name"].as_str()).map(|n| n.trim_start_matches('/')).unwrap_or("")
}

pub fn in_container(ev: &Value, id: &str) -> bool {
    container_id(ev) == id
}

pub fn is_type(ev: &Value, ty: &str) -> bool {
    ev_type(ev) == ty
}

pub fn argv(ev: &Value) -> Vec<String> {
    ev["args"]["argv"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

/// An exec event whose argv contains `marker`.
pub fn is_exec_with(ev: &Value, marker: &str) -> bool {
    is_type(ev, "exec") && argv(ev).iter().any(|a| a == marker)
}

/// Any mention of `marker` in the event's argv or the process's command line.
pub fn mentions(ev: &Value, marker: &str) -> bool {
    argv(ev).iter().any(|a| a.contains(marker))
        || ev["process"]["cmdline"].as_str().is_some_and(|c| c.contains(marker))
}

pub fn ret(ev: &Value) -> Option<i64> {
    ev.get("ret").and_then(Value::as_i64)
}

pub fn arg_u64(ev: &Value, name: &str) -> Option<u64> {
    ev["args"][name].as_u64()
}

pub fn arg_str<'a>(ev: &'a Value, name: &str) -> &'a str {
    ev["args"][name].as_str().unwrap_or("")
}

/// One line describing an event, for failure messages.
pub fn brief(ev: &Value) -> String {
    let c = match container_of(ev) {
        Some(c) => format!(
            "{}({})",
            c["name"].as_str().unwrap_or("?"),
            &c["id"].as_str().unwrap_or("?")[..c["id"].as_str().map_or(1, |s| s.len().min(12))]
        ),
        None => "host".into(),
    };
    let ret = ev.get("ret").map(|r| format!(" ret={r}")).unwrap_or_default();
    format!(
        "{} {} pid={} comm={} args={}{}",
        ev_type(ev),
        c,
        ev["process"]["pid"],
        ev["process"]["comm"],
        ev["args"],
        ret
    )
}

// ---------------------------------------------------------------------------
// Agent
// ---------------------------------------------------------------------------

/// How the stdout reader treats lines.
#[derive(Clone)]
pub enum StdoutMode {
    /// Parse every line as JSON and deliver it.
    Parse,
    /// Count lines containing `needle` without parsing them (floods); parse and
    /// deliver the others.
    CountMatching(String),
}

/// The agent's closing summary: `rampart: N events seen, M dropped ...`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub seen: u64,
    pub dropped: u64,
    pub line: String,
}

pub struct Agent {
    child: Option<Child>,
    pub pid: u32,
    args: Vec<String>,
    rx: Receiver<Value>,
    /// Every delivered event so far, in arrival order.
    pub events: Vec<Value>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// Lines on stdout that were not JSON (first few).
    bad_lines: Arc<Mutex<Vec<String>>>,
    /// All stdout lines.
    pub lines: Arc<AtomicU64>,
    /// Lines counted under [`StdoutMode::CountMatching`].
    pub matching: Arc<AtomicU64>,
    stdout_done: Option<thread::JoinHandle<()>>,
}

impl Agent {
    /// `rampart events --json EXTRA...`, started and ready.
    pub fn start(extra: &[&str]) -> Agent {
        Agent::start_with(extra, StdoutMode::Parse)
    }

    pub fn start_with(extra: &[&str], mode: StdoutMode) -> Agent {
        let mut args: Vec<String> = vec!["events".into(), "--json".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Agent::spawn(args, mode)
    }

    /// `rampart run --json EXTRA...` (the detection agent: alerts on stdout),
    /// started and ready. Its stdout lines are alerts; see [`is_alert`].
    pub fn start_run(extra: &[&str]) -> Agent {
        let mut args: Vec<String> = vec!["run".into(), "--json".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Agent::spawn(args, StdoutMode::Parse)
    }

    /// Run `rampart ARGS...`, deliver its JSON stdout lines, wait for ready.
    pub fn spawn(args: Vec<String>, mode: StdoutMode) -> Agent {
        Agent::spawn_env(args, mode, &[])
    }

    /// [`Agent::spawn`] with extra environment variables.
    pub fn spawn_env(args: Vec<String>, mode: StdoutMode, env: &[(String, String)]) -> Agent {
        Agent::spawn_wrapped(&[], args, mode, env)
    }

    /// Like [`Agent::spawn_env`], started through `wrapper` (a command that
    /// execs its last argument with the rest, e.g. `setpriv ... --`).
    pub fn spawn_wrapped(
        wrapper: &[String],
        args: Vec<String>,
        mode: StdoutMode,
        env: &[(String, String)],
    ) -> Agent {
        preflight();
        let args = with_free_metrics_port(args);
        let bin = env!("CARGO_BIN_EXE_rampart");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = command
            .args(&args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rampart");
        let pid = child.id();

        let (tx, rx) = mpsc::channel();
        let bad_lines = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::new(AtomicU64::new(0));
        let matching = Arc::new(AtomicU64::new(0));
        let stdout = child.stdout.take().unwrap();
        let stdout_done = {
            let (bad_lines, lines, matching) = (bad_lines.clone(), lines.clone(), matching.clone());
            thread::spawn(move || {
                let mut r = BufReader::with_capacity(1 << 20, stdout);
                let mut line = String::new();
                loop {
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    lines.fetch_add(1, Ordering::Relaxed);
                    if let StdoutMode::CountMatching(needle) = &mode {
                        if line.contains(needle.as_str()) {
                            matching.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                    match serde_json::from_str::<Value>(line.trim_end()) {
                        Ok(v) => {
                            let _ = tx.send(v);
                        }
                        Err(e) => {
                            let mut b = bad_lines.lock().unwrap();
                            if b.len() < 10 {
                                b.push(format!("{e}: {}", line.trim_end()));
                            }
                        }
                    }
                }
            })
        };

        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        {
            let stderr_lines = stderr.clone();
            let child_stderr = child.stderr.take().unwrap();
            thread::spawn(move || {
                for line in BufReader::new(child_stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains(READY_LINE) {
                        let _ = ready_tx.send(true);
                    }
                    stderr_lines.lock().unwrap().push(line);
                }
                let _ = ready_tx.send(false);
            });
        }

        let mut agent = Agent {
            child: Some(child),
            pid,
            args,
            rx,
            events: Vec::new(),
            stderr,
            bad_lines,
            lines,
            matching,
            stdout_done: Some(stdout_done),
        };
        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(true) => {}
            Ok(false) => {
                let status = agent.child.as_mut().unwrap().wait().ok();
                panic!(
                    "rampart {:?} exited ({status:?}) before `{READY_LINE}`; stderr:\n{}",
                    agent.args,
                    agent.stderr_text()
                );
            }
            Err(_) => panic!(
                "rampart {:?} not ready after {READY_TIMEOUT:?}; stderr:\n{}",
                agent.args,
                agent.stderr_text()
            ),
        }
        agent
    }

    /// `/metrics` of `rampart run`, now.
    pub fn metrics_text(&self) -> String {
        use std::io::{Read, Write};
        let addr = self.metrics_address();
        let mut s = std::net::TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
    }

    /// Where `rampart run` serves /metrics (its stderr says so at start).
    pub fn metrics_address(&self) -> String {
        let line = self
            .stderr_text()
            .lines()
            .find_map(|l| l.strip_prefix("rampart: metrics on http://").map(str::to_string))
            .unwrap_or_else(|| panic!("no metrics address on stderr:\n{}", self.stderr_text()));
        line.split('/').next().unwrap().to_string()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Whether the agent process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Take what the reader delivered so far (without waiting).
    pub fn poll(&mut self) {
        while let Ok(v) = self.rx.try_recv() {
            self.events.push(v);
        }
    }

    /// Collect events for `dur`.
    pub fn collect_for(&mut self, dur: Duration) {
        let deadline = Instant::now() + dur;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(v) => self.events.push(v),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    thread::sleep(left);
                    break;
                }
            }
        }
    }

    /// The first event (already received or arriving within `timeout`) matching `pred`.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.poll();
        if let Some(v) = self.events.iter().find(|e| pred(e)) {
            return Some(v.clone());
        }
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(v) => {
                    let hit = pred(&v);
                    self.events.push(v);
                    if hit {
                        return self.events.last().cloned();
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        None
    }

    /// Like [`Agent::wait_for`] with [`EVENT_TIMEOUT`], panicking with a
    /// diagnosis (events seen, agent stderr) when nothing matches.
    pub fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.expect_within(what, EVENT_TIMEOUT, pred)
    }

    pub fn expect_within(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        match self.wait_for(timeout, pred) {
            Some(v) => v,
            None => panic!("no event {what} within {timeout:?}\n{}", self.diagnosis()),
        }
    }

    /// Events of one container, in arrival order.
    pub fn events_of(&mut self, id: &str) -> Vec<Value> {
        self.poll();
        self.events.iter().filter(|e| in_container(e, id)).cloned().collect()
    }

    /// What the agent showed so far, for failure messages: counts per container
    /// and type, the last events, its stderr; all events go to a file.
    pub fn diagnosis(&mut self) -> String {
        self.poll();
        let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
        for e in &self.events {
            let c = match container_of(e) {
                Some(_) if container_name(e).is_empty() => {
                    format!("id:{}", &container_id(e)[..container_id(e).len().min(12)])
                }
                Some(_) => container_name(e).to_string(),
                None => "host".into(),
            };
            *counts.entry((c, ev_type(e).to_string())).or_default() += 1;
        }
        let running = self.is_running();
        let mut s = format!(
            "agent {:?} (running: {running}), {} stdout lines, {} events delivered\nby (container, type): {:?}\n",
            self.args,
            self.lines.load(Ordering::Relaxed),
            self.events.len(),
            counts
        );
        let dump = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.jsonl", unique("events")));
        if let Ok(mut f) = std::fs::File::create(&dump) {
            for e in &self.events {
                let _ = writeln!(f, "{e}");
            }
            s += &format!("all events: {}\n", dump.display());
        }
        s += "last events:\n";
        for e in self.events.iter().rev().take(40).collect::<Vec<_>>().into_iter().rev() {
            s += &format!("  {}\n", brief(e));
        }
        let bad = self.bad_lines.lock().unwrap();
        if !bad.is_empty() {
            s += &format!("non-JSON stdout lines: {bad:#?}\n");
        }
        s += &format!("stderr:\n{}\n", self.stderr_text());
        s
    }

    /// Peak resident set size (VmHWM) of the agent, in KiB.
    pub fn vm_hwm_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// SIGINT the agent, wait for it to exit 0, parse its summary line.
    pub fn stop(self) -> Summary {
        self.stop_with_events().0
    }

    /// [`Agent::stop`], with every line delivered up to the exit (what the
    /// agent emits while stopping included).
    pub fn stop_with_events(mut self) -> (Summary, Vec<Value>) {
        let mut child = self.child.take().expect("agent already stopped");
        // SAFETY: kill with a pid we spawned and still own (not yet waited for).
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait rampart") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("rampart did not exit within 30 s of SIGINT; stderr:\n{}", self.stderr_text());
            }
            thread::sleep(Duration::from_millis(20));
        };
        if let Some(h) = self.stdout_done.take() {
            let _ = h.join();
        }
        // The stderr thread ends at EOF, right after the exit; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && parse_summary(&self.stderr_text()).is_none() {
            thread::sleep(Duration::from_millis(10));
        }
        self.poll();
        assert!(
            status.success(),
            "rampart exited with {status} after SIGINT; stderr:\n{}",
            self.stderr_text()
        );
        let bad = self.bad_lines.lock().unwrap().clone();
        assert!(bad.is_empty(), "rampart --json printed non-JSON lines on stdout: {bad:#?}");
        let summary = parse_summary(&self.stderr_text()).unwrap_or_else(|| {
            panic!("no `rampart: N events seen, M dropped` line on stderr:\n{}", self.stderr_text())
        });
        (summary, std::mem::take(&mut self.events))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Parse `rampart: 1234 events seen, 5 dropped ...` (the last such line).
pub fn parse_summary(stderr: &str) -> Option<Summary> {
    let line = stderr.lines().rev().find(|l| l.contains("events seen") && l.contains("dropped"))?;
    let words: Vec<&str> =
        line.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()).collect();
    let before = |word: &str| -> Option<u64> {
        let i = words.iter().position(|w| *w == word)?;
        words.get(i.checked_sub(1)?)?.parse().ok()
    };
    Some(Summary { seen: before("events")?, dropped: before("dropped")?, line: line.to_string() })
}

// ---------------------------------------------------------------------------
// Alerts (`rampart run --json`)
// ---------------------------------------------------------------------------

/// Priorities at or above WARNING, as Falco prints them.
pub const WARNING_OR_ABOVE: &[&str] = &["Emergency", "Alert", "Critical", "Error", "Warning"];

/// Whether a JSON line of `rampart run --json` is an alert (Falco's shape).
pub fn is_alert(v: &Value) -> bool {
    v["rule"].is_string() && v["priority"].is_string() && v["output"].is_string()
}

pub fn alert_rule(v: &Value) -> &str {
    v["rule"].as_str().unwrap_or("")
}

pub fn alert_priority(v: &Value) -> &str {
    v["priority"].as_str().unwrap_or("")
}

/// An alert of `rule` about the container named `name`.
pub fn is_alert_of(v: &Value, rule: &str, name: &str) -> bool {
    is_alert(v) && alert_rule(v) == rule && container_name(v) == name
}

/// One line describing an alert, for failure messages.
pub fn alert_brief(v: &Value) -> String {
    format!(
        "[{}] {} in {}: {}",
        alert_priority(v),
        alert_rule(v),
        if container_name(v).is_empty() { "?" } else { container_name(v) },
        v["output"].as_str().unwrap_or("")
    )
}

/// `rampart ARGS...` to completion (for `rules check` and refusals), with a timeout.
pub fn rampart_output(args: &[&str], timeout: Duration) -> Output {
    rampart_output_env(args, &[], timeout)
}

/// [`rampart_output`] with extra environment variables.
pub fn rampart_output_env(args: &[&str], env: &[(String, String)], timeout: Duration) -> Output {
    let args = with_free_metrics_port(args.iter().map(|a| a.to_string()).collect());
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(&args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rampart");
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().expect("wait rampart").is_some() {
            return child.wait_with_output().expect("rampart output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("rampart output");
            panic!(
                "rampart {args:?} still runs after {timeout:?}; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The default rule files shipped under `rules/`, sorted.
pub fn default_rule_files() -> Vec<PathBuf> {
    let dir = repo_root().join("rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

/// Names of the rules defined (`- rule: NAME`) in the default rule files.
pub fn default_rule_names() -> Vec<String> {
    let mut names = Vec::new();
    for f in default_rule_files() {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("- rule:") {
                names.push(name.trim().trim_matches('"').trim_matches('\'').to_string());
            }
        }
    }
    names
}

/// Run a command on the host and wait for it.
pub fn host_run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    assert!(st.success(), "{cmd} {args:?} failed: {st}");
}

/// `rampart record --container C --duration D -o DIR`, which must succeed;
/// returns the recording it wrote.
pub fn record_attached(container: &str, duration: &str, dir: &Path) -> Value {
    let out = rampart_output(
        &["record", "--container", container, "--duration", duration, "-o", dir.to_str().unwrap()],
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "rampart record: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(dir.join("recording.json")).expect("recording.json");
    serde_json::from_str(&text).expect("recording.json is JSON")
}

/// `bash scripts/NAME ACTION` (the daemon scripts' start/stop), which must succeed.
pub fn daemon_script(name: &str, action: &str) {
    let script = repo_root().join("scripts").join(name);
    let out = Command::new("bash").arg(&script).arg(action).output().expect("run a daemon script");
    assert!(
        out.status.success(),
        "scripts/{name} {action} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `scripts/NAME start` on drop, whatever happened in between, so a test
/// that stops a daemon leaves it running.
pub struct StartsOnDrop(pub &'static str);

impl Drop for StartsOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(repo_root().join("scripts").join(self.0)).arg("start").status();
    }
}

/// How long a one-shot rampart command (netpolicy, isolate, freeze) may take.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// A private policy store and pin directory, removed on drop (unpinning the
/// links detaches the programs). Every rampart a test starts through it gets
/// them (RAMPART_NETPOLICY_DIR / RAMPART_NETPOLICY_PIN), so tests run in
/// parallel without sharing kernel state or the denial ring.
pub struct Np {
    pub store: PathBuf,
    pub pin: PathBuf,
}

impl Np {
    pub fn new(tag: &str) -> Np {
        let name = unique(tag);
        let np = Np {
            store: std::env::temp_dir().join(format!("{name}-store")),
            pin: PathBuf::from(format!("/sys/fs/bpf/{name}")),
        };
        let _ = std::fs::remove_dir_all(&np.store);
        let _ = std::fs::remove_dir_all(&np.pin);
        np
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("RAMPART_NETPOLICY_DIR".into(), self.store.display().to_string()),
            ("RAMPART_NETPOLICY_PIN".into(), self.pin.display().to_string()),
        ]
    }

    /// `rampart ARGS` with this store; output whatever the status.
    pub fn cli(&self, args: &[&str]) -> Output {
        rampart_output_env(args, &self.env(), CLI_TIMEOUT)
    }

    /// `rampart ARGS`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "rampart {args:?} failed ({}):\nstdout:\n{out}\nstderr:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    /// `rampart events --json EXTRA...` with this store.
    pub fn events_agent(&self, extra: &[&str]) -> Agent {
        let mut args: Vec<String> = vec!["events".into(), "--json".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Agent::spawn_env(args, StdoutMode::Parse, &self.env())
    }

    /// `netpolicy show --json` of one container.
    pub fn show(&self, container: &str) -> Value {
        let out = self.ok(&["netpolicy", "show", "--container", container, "--json"]);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("show --json: {e}\n{out}"));
        v["containers"][0].clone()
    }

    pub fn write_policy(&self, name: &str, yaml: &str) -> PathBuf {
        std::fs::create_dir_all(&self.store).unwrap();
        let p = self.store.join(format!("{name}.policy.yaml"));
        std::fs::write(&p, yaml).unwrap();
        p
    }
}

impl Drop for Np {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.pin);
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// `GET path` on `addr` (HTTP/1.0): (status, body); status 0 when nothing
/// answered.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return (0, String::new()) };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// Wait until the agent's stderr contains `needle`; returns the stderr so far.
pub fn wait_stderr(agent: &Agent, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = agent.stderr_text();
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "no `{needle}` on stderr within {timeout:?}:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until the agent says it armed `c`'s cgroup for in-kernel kills. The
/// agent names a container by its short id when it arms it before the runtime
/// has told it the name, so either form counts.
pub fn wait_kill_armed(agent: &Agent, c: &Container, timeout: Duration) -> String {
    let by_name = format!("kernel kill armed for container {} ", c.name);
    let by_id = format!("kernel kill armed for container {} ", &c.id[..12]);
    let deadline = Instant::now() + timeout;
    loop {
        let text = agent.stderr_text();
        if text.contains(&by_name) || text.contains(&by_id) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} ({}) never armed within {timeout:?}:\n{text}",
            c.name,
            &c.id[..12]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Poll `f` until it holds (panics with `what` after `timeout`).
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// `rtest ARGS` through `exec`, a command that runs its trailing arguments in
/// a container (`docker exec NAME`, `podman exec NAME`, `ctr task exec ...`):
/// whether it succeeded, and what it printed.
pub fn rtest_through(mut exec: Command, args: &[&str]) -> (bool, String) {
    let o = exec.arg(RTEST).args(args).stdin(Stdio::null()).output().expect("run rtest in a container");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.success(), text)
}

/// Panics unless the rtest call `what` succeeded.
pub fn assert_rtest_ok(what: &str, (ok, out): (bool, String)) {
    assert!(ok, "rtest {what} should succeed: {out}");
}

/// Panics unless the rtest call `what` failed with EPERM (a policy's denial).
pub fn assert_rtest_eperm(what: &str, (ok, out): (bool, String)) {
    assert!(!ok && kv(&out, "errno").as_deref() == Some("1"), "rtest {what} should fail with EPERM: {out}");
}

/// The number a container's counter (`rtest count /tmp/counter`, or a shell
/// loop writing that file) last wrote, read from the host through /proc (a
/// frozen container cannot run an exec).
pub fn counter(pid: u32) -> u64 {
    let p = format!("/proc/{pid}/root/tmp/counter");
    std::fs::read_to_string(&p).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// The counter stands still for a second (frozen) or moves (running).
pub fn progresses(pid: u32) -> bool {
    let a = counter(pid);
    thread::sleep(Duration::from_secs(1));
    counter(pid) > a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_parses() {
        let s = parse_summary("x\nrampart: 1234 events seen, 5 dropped (1000 shown; lost in kernel per cpu [0, 5]; 0 undecodable)\n")
            .unwrap();
        assert_eq!((s.seen, s.dropped), (1234, 5));
        assert!(parse_summary("rampart: sensor ready").is_none());
    }

    #[test]
    fn kv_parses() {
        let out = "listening=127.0.0.1:4000\nconnected=127.0.0.1:4000 ret=0 port=4000\n";
        assert_eq!(kv_port(out, "connected"), 4000);
        assert_eq!(kv(out, "ret").as_deref(), Some("0"));
    }
}

/// `rampart run` serves metrics on a fixed localhost port by default; tests
/// run agents side by side, so each takes a free port unless the test chose.
pub fn with_free_metrics_port(mut args: Vec<String>) -> Vec<String> {
    if args.first().map(String::as_str) == Some("run")
        && !args.iter().any(|a| a.starts_with("--metrics-address"))
    {
        args.insert(1, "--metrics-address=127.0.0.1:0".into());
    }
    args
}
