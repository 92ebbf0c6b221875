//! Prevention from a container's first instruction.
//!
//! - A kill rule that needs no runtime metadata (`container.id != host`, an
//!   event type, an exact path) is in force in the kernel for every container
//!   from the moment its cgroup is created.
//! - A kill rule scoped by metadata (here the image) is in force before the
//!   entrypoint for containers started through the `rampart-runc` wrapper
//!   (`docker run --runtime=rampart`, `ctr run --runc-binary rampart-runc`),
//!   or by podman with rampart's hooks.d file: its OCI hook has the agent
//!   resolve and arm the container while runc waits.
//!
//! Either way an entrypoint that does the forbidden thing as its very first
//! action is killed before it can read anything, on Docker and on containerd,
//! and a host process doing the same is left alone.
//!
//! The forbidden file is one of the test's own (a marker file bind-mounted
//! into each container) rather than /etc/shadow: the rule holds in every
//! container of the machine while the agent runs, and other tests running
//! at the same time read /etc/shadow in theirs.
//!
//! `RAMPART_PREVENTION_RUNS` sets the number of new containers per runtime
//! (default 100).

mod common;

use common::ctr::{hex_id, Namespace, SOCKET};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The runtime wrapper dockerd's `rampart` runtime runs (scripts/dockerd.sh).
const WRAPPER: &str = "/usr/local/bin/rampart-runc";
/// The hook socket the wrapper's hooks connect to: one agent at a time.
static HOOK_SOCKET: Mutex<()> = Mutex::new(());
/// Rules for every container and only it: a scope of the image, as Docker
/// (`rampart-test`) and containerd (`docker.io/library/rampart-test`) name it.
const ANY_CONTAINER: &str = "container.id != host";
const IMAGE_SCOPE: &str = "container.image.repository in (rampart-test, docker.io/library/rampart-test)";

fn runs() -> usize {
    runs_or(100)
}

fn runs_or(default: usize) -> usize {
    std::env::var("RAMPART_PREVENTION_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A host file holding a marker, and the rule that kills any container
/// process that opens the same path (where each container sees the file
/// bind-mounted).
struct Secret {
    path: PathBuf,
    marker: String,
    rules: PathBuf,
}

const RULE_NAME: &str = "Secret open from the first instruction test";

impl Secret {
    /// The rule kills on an open of the secret in containers `scope` selects.
    fn new(prefix: &str, scope: &str) -> Secret {
        let name = unique(prefix);
        let marker = format!("{name}-marker");
        let path = std::env::temp_dir().join(format!("{name}.secret"));
        std::fs::write(&path, format!("{marker}\n")).expect("write the secret");
        let rules = std::env::temp_dir().join(format!("{name}.yaml"));
        std::fs::write(
            &rules,
            format!(
                r#"
- rule: {RULE_NAME}
  desc: a container process opened the test's secret
  condition: evt.type in (open, openat, openat2) and fd.name = {} and {scope}
  output: "secret opened (proc=%proc.name container=%container.id)"
  priority: CRITICAL
  actions: [kill]
"#,
                path.display()
            ),
        )
        .expect("write rules");
        Secret { path, marker, rules }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("utf-8 temp path")
    }

    /// `rampart rules check` says from when the rule holds (`when`), and
    /// the agent armed it for every container (nothing per container) or
    /// serves the OCI hook socket. `hook_socket`: where it serves it.
    fn start_agent(&self, when: &str, hook_socket: &Path) -> Agent {
        let check = rampart_output(
            &["rules", "check", "--no-default-rules", self.rules.to_str().unwrap()],
            Duration::from_secs(30),
        );
        let listing = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "rules check failed: {listing}");
        let expected = format!("kill in kernel {when}: {RULE_NAME} (open ");
        assert!(listing.contains(&expected), "rules check: {listing}");
        // --host: every task goes through the kernel's checks, host tasks too.
        let agent = Agent::start_run(&[
            "--no-default-rules",
            "--host",
            "--rules",
            self.rules.to_str().unwrap(),
            "--oci-hook-socket",
            hook_socket.to_str().unwrap(),
        ]);
        wait_stderr(&agent, "rampart: OCI hook socket on", EVENT_TIMEOUT);
        if when == "from cgroup creation" {
            wait_stderr(
                &agent,
                "kernel kill armed for every container from its cgroup's creation",
                EVENT_TIMEOUT,
            );
        }
        agent
    }

    /// Whether `out` (a run of `cat SECRET` as the entrypoint) shows the
    /// process died of SIGKILL having printed nothing of the file.
    fn killed_without_leak(&self, out: &Output) -> Result<(), String> {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stdout.contains(&self.marker) || stderr.contains(&self.marker) {
            return Err(format!("the file leaked: {stdout:?}"));
        }
        if out.status.code() != Some(137) || !stdout.is_empty() {
            return Err(format!("status {:?}, stdout {stdout:?}, stderr {stderr:?}", out.status.code()));
        }
        Ok(())
    }

    /// A host process opening the same path: in the host's mount namespace,
    /// and in a mount namespace of its own (still the host's cgroup), which
    /// the sensor reports like a container's task.
    fn host_is_not_killed(&self) {
        let plain = Command::new("/bin/cat").arg(self.path()).output().expect("host cat");
        assert!(plain.status.success(), "the host's cat was harmed: {:?}", plain.status);
        assert!(String::from_utf8_lossy(&plain.stdout).contains(&self.marker));
        let unshared =
            Command::new("unshare").args(["-m", "/bin/cat", self.path()]).output().expect("unshare -m cat");
        assert!(
            unshared.status.success(),
            "a host process in its own mount namespace was harmed: {:?} {}",
            unshared.status,
            String::from_utf8_lossy(&unshared.stderr)
        );
        assert!(String::from_utf8_lossy(&unshared.stdout).contains(&self.marker));
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.rules);
    }
}

/// Runs `one(i)` `runs()` times; panics listing the failures, if any.
fn repeat(what: &str, one: impl FnMut(usize) -> Result<(), String>) {
    repeat_n(what, runs(), one)
}

fn repeat_n(what: &str, n: usize, mut one: impl FnMut(usize) -> Result<(), String>) {
    let started = Instant::now();
    let mut failures = Vec::new();
    for i in 0..n {
        if let Err(e) = one(i) {
            failures.push(format!("run {i}: {e}"));
        }
    }
    eprintln!("{what}: killed {}/{n} in {:.1?}", n - failures.len(), started.elapsed());
    assert!(
        failures.is_empty(),
        "{what}: {} of {n} runs not killed cleanly:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn metadata_free_kill_holds_from_the_first_instruction_on_docker() {
    preflight();
    let secret = Secret::new("prev-docker", ANY_CONTAINER);
    let mut agent = secret.start_agent("from cgroup creation", &own_hook_socket(&secret));
    let mount = format!("{}:{}:ro", secret.path(), secret.path());
    repeat("docker run ... cat SECRET", |i| {
        let name = unique(&format!("prev{i}"));
        let out = docker(&["run", "--rm", "--name", &name, "-v", &mount, IMAGE, "cat", secret.path()]);
        secret.killed_without_leak(&out)
    });
    secret.host_is_not_killed();
    // The kills were the kernel's: userspace found each process already dead.
    let action = agent.expect("kernel kill reported", |v| {
        alert_rule(v) == "Response action"
            && v["output_fields"]["action"] == "kill"
            && v["output_fields"]["outcome"] == "done"
    });
    let detail = action["output_fields"]["detail"].as_str().unwrap_or("");
    assert!(detail.starts_with("killed in the kernel at open"), "{action:#}");
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and containerd (scripts/test.sh runs it)"]
fn metadata_free_kill_holds_from_the_first_instruction_on_containerd() {
    preflight_containerd();
    // A namespace the agent has never seen a container in: container ids of
    // 64 hex characters (as nerdctl gives) are containers in any namespace.
    let ns = Namespace::new("prev");
    let secret = Secret::new("prev-ctr", ANY_CONTAINER);
    let agent = secret.start_agent("from cgroup creation", &own_hook_socket(&secret));
    let mount = format!("type=bind,src={},dst={},options=rbind:ro", secret.path(), secret.path());
    repeat("ctr run --rm ... cat SECRET", |i| {
        let id = hex_id(&format!("{}-{i}", ns.name));
        let out = Command::new("ctr")
            .args(["--address", SOCKET, "-n", &ns.name, "run", "--rm", "--mount", &mount])
            .args([common::ctr::CTR_IMAGE, &id, "cat", secret.path()])
            .stdin(Stdio::null())
            .output()
            .expect("ctr run");
        secret.killed_without_leak(&out)
    });
    secret.host_is_not_killed();
    agent.stop();
}

/// A hook socket of the test's own: these agents leave the default one to
/// the tests that use it.
fn own_hook_socket(secret: &Secret) -> PathBuf {
    secret.rules.with_extension("hook.sock")
}

const WHEN_HOOKED: &str = "before the entrypoint with the OCI hook, else after container metadata";

/// The wrapper is this build's rampart (a link under the name that makes it
/// the runtime wrapper), and dockerd knows it as the `rampart` runtime.
fn wrapper_installed() {
    let bin = env!("CARGO_BIN_EXE_rampart");
    let tmp = format!("{WRAPPER}.{}", std::process::id());
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(bin, &tmp).expect("link rampart-runc");
    std::fs::rename(&tmp, WRAPPER).expect("install rampart-runc");
    let runtimes = docker_ok(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(
        runtimes.contains(WRAPPER),
        "dockerd has no `rampart` runtime at {WRAPPER} (scripts/dockerd.sh start adds it): {runtimes}"
    );
}

/// The agent said it armed the container through the hook, `n` times.
fn hook_armed(agent: &Agent, n: usize) {
    let armed = agent
        .stderr_text()
        .lines()
        .filter(|l| l.starts_with("rampart: OCI hook: container ") && l.contains("triggers armed in cgroup"))
        .count();
    assert_eq!(armed, n, "containers armed through the OCI hook: {}", agent.stderr_text());
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn image_scoped_kill_holds_from_the_first_instruction_on_docker_with_the_hook() {
    preflight();
    wrapper_installed();
    let _socket = HOOK_SOCKET.lock().unwrap_or_else(|e| e.into_inner());
    let secret = Secret::new("prev-docker-img", IMAGE_SCOPE);
    let agent = secret.start_agent(WHEN_HOOKED, Path::new(respond::ocihook::DEFAULT_SOCKET));
    let mount = format!("{}:{}:ro", secret.path(), secret.path());
    repeat("docker run --runtime=rampart ... cat SECRET (image-scoped rule)", |i| {
        let name = unique(&format!("previmg{i}"));
        let out = docker(&[
            "run",
            "--rm",
            "--runtime=rampart",
            "--name",
            &name,
            "-v",
            &mount,
            IMAGE,
            "cat",
            secret.path(),
        ]);
        secret.killed_without_leak(&out)
    });
    hook_armed(&agent, runs());
    secret.host_is_not_killed();
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and containerd (scripts/test.sh runs it)"]
fn image_scoped_kill_holds_from_the_first_instruction_on_containerd_with_the_hook() {
    preflight_containerd();
    wrapper_installed();
    let _socket = HOOK_SOCKET.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Namespace::new("previmg");
    let secret = Secret::new("prev-ctr-img", IMAGE_SCOPE);
    let agent = secret.start_agent(WHEN_HOOKED, Path::new(respond::ocihook::DEFAULT_SOCKET));
    let mount = format!("type=bind,src={},dst={},options=rbind:ro", secret.path(), secret.path());
    let ctr_run = |id: &str| {
        Command::new("ctr")
            .args(["--address", SOCKET, "-n", &ns.name, "run", "--rm", "--runc-binary", WRAPPER])
            .args(["--mount", &mount, common::ctr::CTR_IMAGE, id, "cat", secret.path()])
            .stdin(Stdio::null())
            .output()
            .expect("ctr run")
    };
    repeat("ctr run --runc-binary rampart-runc ... cat SECRET (image-scoped rule)", |i| {
        secret.killed_without_leak(&ctr_run(&format!("img-{i}")))
    });
    hook_armed(&agent, runs());
    agent.stop();
    // No agent: the hook lets the container start (fail open).
    let out = ctr_run("img-no-agent");
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && all.contains(&secret.marker), "without the agent: {all}");
}

/// podman runs the same hook from a hooks.d file (`rampart oci-hook
/// --hooks-d-json`), here in a directory of the test's own given with
/// `--hooks-dir`, so the host's podman configuration is untouched. podman's
/// API waits for the start's lock, so the agent reads the name and image from
/// podman's store on disk. 10 containers here (`RAMPART_PREVENTION_RUNS`
/// sets more; scripts/prevention-window.sh runs 100).
#[test]
#[ignore = "privileged: needs root, BPF, dockerd and podman (scripts/test.sh runs it)"]
fn image_scoped_kill_holds_from_the_first_instruction_on_podman_with_the_hooks_d_file() {
    preflight_podman();
    let secret = Secret::new("prev-podman-img", "container.image.repository = localhost/rampart-test");
    let socket = own_hook_socket(&secret);
    let hooks_dir = secret.rules.with_extension("hooks.d");
    std::fs::create_dir_all(&hooks_dir).expect("hooks dir");
    let hooks_d = rampart_output(
        &["oci-hook", "--socket", socket.to_str().unwrap(), "--hooks-d-json"],
        Duration::from_secs(10),
    );
    assert!(hooks_d.status.success(), "oci-hook --hooks-d-json: {hooks_d:?}");
    std::fs::write(hooks_dir.join("rampart.json"), &hooks_d.stdout).expect("write the hooks.d file");
    let agent = secret.start_agent(WHEN_HOOKED, &socket);
    let mount = format!("{}:{}:ro", secret.path(), secret.path());
    let podman_run = |name: &str| {
        Command::new("podman")
            .args(["--hooks-dir", hooks_dir.to_str().unwrap(), "run", "--rm", "--name", name, "-v", &mount])
            .args([testkit::PODMAN_IMAGE, "cat", secret.path()])
            .stdin(Stdio::null())
            .output()
            .expect("podman run")
    };
    let n = runs_or(10);
    repeat_n("podman --hooks-dir ... run ... cat SECRET (image-scoped rule)", n, |i| {
        secret.killed_without_leak(&podman_run(&unique(&format!("prevpod{i}"))))
    });
    hook_armed(&agent, n);
    // The agent named each container from podman's store.
    let text = agent.stderr_text();
    assert!(text.contains("rampart: OCI hook: container rampart-it-prevpod"), "{text}");
    secret.host_is_not_killed();
    agent.stop();
    // No agent: the hook lets the container start (fail open).
    let out = podman_run(&unique("prevpod-no-agent"));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && all.contains(&secret.marker), "without the agent: {all}");
    let _ = std::fs::remove_dir_all(&hooks_dir);
}
