//! Shared helpers of rampart's tests (a `[dev-dependencies]` crate only).
//!
//! # The convention for privileged tests
//!
//! A test that needs root, BPF or a real container runtime is marked
//!
//! ```text
//! #[test]
//! #[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
//! ```
//!
//! (saying what it needs), so a plain `cargo test` as any user runs everything
//! else and lists it as `ignored, privileged: ...`. `scripts/test.sh` (CI, as
//! root) runs the whole suite with `-- --include-ignored`.
//!
//! Such a test starts with the preflight of what it needs: [`require_root`],
//! [`require_bpf`], [`require_dockerd`], [`require_containerd`],
//! [`require_podman`]. Each PANICS with the reason when its need is not met:
//! a privileged test that runs never passes by skipping.
//!
//! The one test image is `rampart-test:latest` ([`IMAGE`]), built by
//! `tests/image/build.sh` once per test process ([`test_image`]), and imported
//! into a containerd namespace ([`import_into_containerd`]) or podman
//! ([`load_into_podman`]) from Docker.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The workspace's one test image, as Docker names it.
pub const IMAGE: &str = "rampart-test:latest";
/// The name `ctr images import` gives [`IMAGE`] saved from Docker.
pub const CTR_IMAGE: &str = "docker.io/library/rampart-test:latest";
/// The name `podman load` gives [`IMAGE`] saved from Docker.
pub const PODMAN_IMAGE: &str = "localhost/rampart-test:latest";
/// containerd's socket (a standalone containerd with its CRI plugin).
pub const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";
/// Rootful podman's API service.
pub const PODMAN_SOCKET: &str = "/run/podman/podman.sock";
/// Debian's dockerd 20.10 speaks API 1.41; the docker client is pinned to it
/// (as `scripts/docker-env.sh` does) unless `DOCKER_API_VERSION` is set.
pub const DOCKER_API_VERSION: &str = "1.41";

const HOW: &str = "privileged tests run as root through scripts/test.sh \
                   (or: sudo -E cargo test ... -- --include-ignored)";

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// Whether the effective user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A name no other test (or earlier run) uses: `PREFIX-PID-N-NANOS`.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{}-{nanos:x}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

// ---------------------------------------------------------------------------
// Preflight: each panics with the reason, never returns as a pass.
// ---------------------------------------------------------------------------

/// Panics unless the effective user is root.
pub fn require_root() {
    if !is_root() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        panic!("preflight: this privileged test needs root, and euid is {euid}; {HOW}");
    }
}

/// Panics unless we may load BPF programs: root, and the kernel's BTF (CO-RE).
pub fn require_bpf() {
    require_root();
    let btf = Path::new("/sys/kernel/btf/vmlinux");
    if !btf.exists() {
        panic!(
            "preflight: this test loads CO-RE BPF programs and the kernel has no BTF ({} is missing)",
            btf.display()
        );
    }
}

fn once_check(cell: &'static OnceLock<Result<(), String>>, check: fn() -> Result<(), String>) {
    if let Err(e) = cell.get_or_init(check) {
        panic!("preflight: {e}");
    }
}

/// Panics unless root and dockerd answers the docker client ([`docker_bin`]).
pub fn require_dockerd() {
    require_root();
    static DOCKERD: OnceLock<Result<(), String>> = OnceLock::new();
    once_check(&DOCKERD, || {
        let out = docker_cmd()
            .args(["info", "--format", "{{.ServerVersion}}"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                format!("cannot run the docker client {}: {e} (apt-get install docker.io)", docker_bin())
            })?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "dockerd is unreachable ({}): start it with `scripts/dockerd.sh start` (or scripts/setup.sh)",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    });
}

/// Panics unless root and containerd answers on [`CONTAINERD_SOCKET`] (`ctr version`).
pub fn require_containerd() {
    require_root();
    static CONTAINERD: OnceLock<Result<(), String>> = OnceLock::new();
    once_check(&CONTAINERD, || {
        ctr("default", &["version"]).map(drop).map_err(|e| {
            format!(
                "containerd does not answer on {CONTAINERD_SOCKET} ({e}); start it with `scripts/containerd.sh start`"
            )
        })
    });
}

/// Panics unless root and podman's API service answers on [`PODMAN_SOCKET`].
pub fn require_podman() {
    require_root();
    static PODMAN: OnceLock<Result<(), String>> = OnceLock::new();
    once_check(&PODMAN, || {
        podman_ping().map_err(|e| {
            format!("podman's API service does not answer on {PODMAN_SOCKET} ({e}); start it with `scripts/podman.sh start`")
        })
    });
}

/// `GET /v4.0.0/libpod/_ping` on podman's socket must answer `OK`.
fn podman_ping() -> Result<(), String> {
    let mut s = UnixStream::connect(PODMAN_SOCKET).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    s.write_all(b"GET /v4.0.0/libpod/_ping HTTP/1.0\r\nHost: d\r\n\r\n").map_err(|e| e.to_string())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    let status = reply.lines().next().unwrap_or("");
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or("");
    if status.contains(" 200") && body.trim() == "OK" {
        Ok(())
    } else {
        Err(format!("ping answered {status:?} {body:?}"))
    }
}

// ---------------------------------------------------------------------------
// Docker
// ---------------------------------------------------------------------------

/// The docker client: $DOCKER, else Debian's /usr/bin/docker (matches Debian's
/// dockerd 20.10), else `docker` from PATH.
pub fn docker_bin() -> String {
    if let Ok(d) = std::env::var("DOCKER") {
        if !d.is_empty() {
            return d;
        }
    }
    if Path::new("/usr/bin/docker").exists() {
        return "/usr/bin/docker".into();
    }
    "docker".into()
}

/// A `Command` of [`docker_bin`], pinned to [`DOCKER_API_VERSION`] unless the
/// environment says otherwise.
pub fn docker_cmd() -> Command {
    let mut c = Command::new(docker_bin());
    if std::env::var_os("DOCKER_API_VERSION").is_none() {
        c.env("DOCKER_API_VERSION", DOCKER_API_VERSION);
    }
    c
}

/// `docker ARGS`: its stdout trimmed, or an error naming the command and its stderr.
pub fn docker_stdout(args: &[&str]) -> Result<String, String> {
    stdout_of(docker_cmd().args(args), &format!("docker {}", args.join(" ")))
}

/// Build the test image [`IMAGE`] with `tests/image/build.sh` (which rebuilds
/// only when its sources changed), once per process; returns its name.
/// Panics (after [`require_dockerd`]) when the build fails.
pub fn test_image() -> &'static str {
    require_dockerd();
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    once_check(&BUILT, || {
        let build = repo_root().join("tests/image/build.sh");
        let out = Command::new("bash")
            .arg(&build)
            .env("DOCKER", docker_bin())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", build.display()))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{} failed:\n{}{}",
            build.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    });
    IMAGE
}

// ---------------------------------------------------------------------------
// containerd and podman
// ---------------------------------------------------------------------------

/// `ctr --address CONTAINERD_SOCKET -n NS ARGS`: stdout trimmed, or an error.
pub fn ctr(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut c = Command::new("ctr");
    c.args(["--address", CONTAINERD_SOCKET, "-n", ns]).args(args);
    stdout_of(&mut c, &format!("ctr -n {ns} {}", args.join(" ")))
}

/// `podman ARGS`: stdout trimmed, or an error.
pub fn podman(args: &[&str]) -> Result<String, String> {
    stdout_of(Command::new("podman").args(args), &format!("podman {}", args.join(" ")))
}

/// `docker save rampart-test:latest | ctr -n NS images import -`: the test
/// image (built first if needed) as [`CTR_IMAGE`] in containerd namespace `ns`.
/// Panics on failure (after [`require_containerd`]).
pub fn import_into_containerd(ns: &str) {
    require_containerd();
    let image = test_image();
    pipe_from_docker_save(
        image,
        &format!("ctr --address {CONTAINERD_SOCKET} -n {ns} images import - >/dev/null"),
        &format!("importing {image} into containerd namespace {ns}"),
    );
}

/// `docker save rampart-test:latest | podman load`, once per process: the test
/// image (built first if needed) as [`PODMAN_IMAGE`]. Panics on failure
/// (after [`require_podman`]).
pub fn load_into_podman() {
    require_podman();
    let image = test_image();
    static LOADED: OnceLock<()> = OnceLock::new();
    LOADED.get_or_init(|| {
        pipe_from_docker_save(image, "podman load -q >/dev/null", &format!("loading {image} into podman"))
    });
}

fn pipe_from_docker_save(image: &str, into: &str, what: &str) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; {} save {image} | {into}", docker_bin()))
        .env("DOCKER_API_VERSION", std::env::var("DOCKER_API_VERSION").unwrap_or(DOCKER_API_VERSION.into()))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: running bash: {e}"));
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
}

/// Remove containerd namespace `ns` and everything in it: kill and remove its
/// tasks and containers, its images, the parent cgroup runc leaves behind
/// (`/<ns>` in every hierarchy), then the namespace (retried: content is
/// collected asynchronously). Never panics (it runs in `Drop`); warns on stderr.
pub fn remove_containerd_namespace(ns: &str) {
    if let Ok(ids) = ctr(ns, &["containers", "ls", "-q"]) {
        for id in ids.lines() {
            let _ = ctr(ns, &["tasks", "kill", "-s", "SIGKILL", id]);
            for _ in 0..20 {
                match ctr(ns, &["tasks", "rm", "-f", id]) {
                    Ok(_) => break,
                    Err(e) if e.contains("not found") => break,
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
            let _ = ctr(ns, &["containers", "rm", id]);
        }
    }
    if let Ok(images) = ctr(ns, &["images", "ls", "-q"]) {
        for i in images.lines() {
            let _ = ctr(ns, &["images", "rm", "--sync", i]);
        }
    }
    let cgroup = Path::new("/sys/fs/cgroup");
    if let Ok(mounts) = std::fs::read_dir(cgroup) {
        for m in mounts.flatten() {
            let _ = std::fs::remove_dir(m.path().join(ns));
        }
    }
    let _ = std::fs::remove_dir(cgroup.join(ns));
    for _ in 0..20 {
        if ctr("default", &["namespaces", "rm", ns]).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("warning: containerd namespace {ns} was not removed");
}

fn stdout_of(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique("a"), unique("a"));
        assert!(unique("x").starts_with("x-"));
    }

    #[test]
    fn repo_root_holds_the_test_image() {
        assert!(repo_root().join("tests/image/build.sh").is_file());
    }

    #[test]
    fn require_root_panics_without_root() {
        if is_root() {
            require_root();
        } else {
            let e = std::panic::catch_unwind(require_root).unwrap_err();
            let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(msg.contains("needs root") && msg.contains("scripts/test.sh"), "{msg}");
        }
    }
}
