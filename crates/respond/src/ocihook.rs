//! Kill rules scoped by container metadata in force before a container's
//! first instruction, through an OCI runtime hook.
//!
//! ```text
//!  dockerd / containerd shim ─▶ rampart-runc (a link to rampart) create --bundle B ID
//!      adds a createRuntime hook to B/config.json ─▶ exec runc (same arguments)
//!  runc create: cgroup made, init moved in ─▶ hook `rampart oci-hook` (state on stdin:
//!      id, pid, bundle) ─▶ agent socket ─▶ metadata (runtime's record, Docker's
//!      container list or podman's store on disk, + B/config.json) ─▶ registry
//!      ─▶ arming pass ─▶ "armed" ─▶ exit 0
//!  podman / CRI-O run the same hook from a hooks.d file (`rampart oci-hook --hooks-d-json`).
//!  runc waits for the hook; the entrypoint runs only after `runc start`.
//! ```
//!
//! Bounds: a hook message is at most [`MAX_STATE`] and must arrive within
//! [`READ_TIMEOUT`]; the spec read from the bundle at most [`MAX_SPEC`]; at
//! most [`MAX_CONNECTIONS`] hooks are served at once; the agent answers
//! within [`ANSWER_TIMEOUT`] and the hook gives up after [`HOOK_TIMEOUT`].
//! With no agent, the hook lets the container start (fail open, said on
//! stderr) unless it runs with `--fail-closed`.

use crate::actions::kernel::cgroup_id;
use crate::actions::ArmNow;
use model::Runtime;
use runtime::ContainerRegistry;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where `rampart run` listens and the hook connects, unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/rampart/oci-hook.sock";
/// The name under which the rampart binary acts as the OCI runtime wrapper.
pub const WRAPPER_NAME: &str = "rampart-runc";
/// The runtime state runc gives a hook (a few hundred bytes in practice).
pub const MAX_STATE: usize = 64 * 1024;
/// An OCI bundle's config.json (Docker's are ~10-30 KiB).
pub const MAX_SPEC: u64 = 4 * 1024 * 1024;
pub const MAX_CONNECTIONS: usize = 256;
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(4);
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(6);
/// runc's own limit on the hook (it fails the container past it).
const RUNC_HOOK_TIMEOUT_SECS: u64 = 10;

/// runtime-spec `State`, the fields the hook needs.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HookState {
    pub id: String,
    pub pid: u32,
    #[serde(default)]
    pub bundle: String,
}

impl HookState {
    /// Parses and checks what runc sent (ids are the runtime's: letters,
    /// digits, `_.-`, at most 256).
    pub fn parse(data: &[u8]) -> Result<HookState, String> {
        let s: HookState = serde_json::from_slice(data).map_err(|e| format!("not an OCI state: {e}"))?;
        let id_ok = !s.id.is_empty()
            && s.id.len() <= 256
            && s.id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !id_ok {
            return Err(format!("bad container id {:?}", s.id.chars().take(80).collect::<String>()));
        }
        if s.pid <= 1 {
            return Err(format!("bad pid {}", s.pid));
        }
        if !s.bundle.is_empty() && !s.bundle.starts_with('/') {
            return Err("the bundle path is not absolute".into());
        }
        Ok(s)
    }
}

/// The agent's answer, one JSON line.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct HookAnswer {
    pub ok: bool,
    pub detail: String,
}

// ---------------------------------------------------------------------------
// The agent's side
// ---------------------------------------------------------------------------

/// The socket `rampart run` serves; dropping it stops serving and removes the
/// socket file if it is still ours.
pub struct HookServer {
    task: tokio::task::JoinHandle<()>,
    socket: PathBuf,
    inode: u64,
}

impl Drop for HookServer {
    fn drop(&mut self) {
        self.task.abort();
        if std::fs::metadata(&self.socket).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

impl HookServer {
    /// Binds `socket` (mode 0600 in a 0700 directory: only root's runtime
    /// connects) and serves hooks on the current tokio runtime.
    pub fn start(socket: &Path, containers: ContainerRegistry, arm: ArmNow) -> std::io::Result<HookServer> {
        if let Some(dir) = socket.parent().filter(|d| !d.exists()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        match std::fs::remove_file(socket) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = tokio::net::UnixListener::bind(socket)?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
        let inode = std::fs::metadata(socket)?.ino();
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                // Beyond the bound the connection is closed unanswered: the
                // hook then fails open or closed as configured.
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!("OCI hook connections over {MAX_CONNECTIONS}: one refused");
                    continue;
                };
                let (c, a) = (containers.clone(), arm.clone());
                tokio::spawn(async move {
                    serve_one(stream, &c, &a).await;
                    drop(permit);
                });
            }
        });
        Ok(HookServer { task, socket: socket.to_path_buf(), inode })
    }
}

async fn serve_one(mut stream: tokio::net::UnixStream, containers: &ContainerRegistry, arm: &ArmNow) {
    let mut data = Vec::new();
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            if data.len() + n > MAX_STATE {
                return Err(std::io::Error::other("message over 64 KiB"));
            }
            data.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let answer = match read {
        Err(_) => HookAnswer { ok: false, detail: "no complete message within 2 s".into() },
        Ok(Err(e)) => HookAnswer { ok: false, detail: e.to_string() },
        Ok(Ok(())) => match HookState::parse(&data) {
            Err(e) => HookAnswer { ok: false, detail: e },
            Ok(state) => arm_starting(&state, containers, arm).await,
        },
    };
    let mut line = serde_json::to_vec(&answer).unwrap_or_default();
    line.push(b'\n');
    let _ = tokio::time::timeout(READ_TIMEOUT, stream.write_all(&line)).await;
}

/// Puts the starting container in the registry with what its runtime says
/// now, and waits for an arming pass that sees it.
async fn arm_starting(state: &HookState, containers: &ContainerRegistry, arm: &ArmNow) -> HookAnswer {
    let fail = |detail: String| {
        eprintln!("rampart: OCI hook for container {}: {detail}", state.id);
        HookAnswer { ok: false, detail }
    };
    let started = Instant::now();
    let c = match tokio::time::timeout(ANSWER_TIMEOUT, starting_metadata(state, containers)).await {
        Err(_) => return fail("no runtime answered in time".into()),
        Ok(Err(e)) => return fail(e),
        Ok(Ok(c)) => c,
    };
    let Some(cg) = cgroup_id(&c) else {
        return fail(format!("no cgroup for pid {}", state.pid));
    };
    let left = ANSWER_TIMEOUT.saturating_sub(started.elapsed());
    let Some(armed) = arm.request(left).await else {
        return fail("the in-kernel kill is not running".into());
    };
    let label = if c.name.is_empty() { c.short_id().to_string() } else { c.name.clone() };
    let detail = match armed.get(&cg) {
        Some(n) => format!("{n} triggers armed in cgroup {cg} before the entrypoint"),
        None => format!("no kill rule scoped to it (cgroup {cg})"),
    };
    eprintln!(
        "rampart: OCI hook: container {label} ({}): {detail} ({:.1?})",
        c.short_id(),
        started.elapsed()
    );
    HookAnswer { ok: true, detail }
}

/// The metadata of a container being started (runc waits meanwhile), put
/// into the registry: from the runtime's record, Docker's container list or
/// podman's store on disk (their APIs wait for the lock the start holds),
/// plus the bundle's config.json. Used by the hook and by the seccomp agent
/// when runc hands it a new container's listener.
pub async fn starting_metadata(
    state: &HookState,
    containers: &ContainerRegistry,
) -> Result<Arc<model::Container>, String> {
    let spec = (!state.bundle.is_empty()).then(|| read_spec(Path::new(&state.bundle)));
    let from_podman = matches!(&spec, Some(Ok(s)) if runtime::podman::is_podman_spec(s));
    let mut d = if from_podman {
        runtime::podman::starting_from_store(&state.id, Path::new(&state.bundle))
            .map_err(|e| format!("metadata: {e}"))?
    } else {
        containers.runtimes().starting(&state.id).await.map_err(|e| format!("metadata: {e}"))?
    };
    // Docker's list and podman's store have no privileges, user or
    // namespaces: the spec runc applies has them (containerd's record
    // carries the same spec).
    if matches!(d.container.runtime, Some(Runtime::Docker | Runtime::Podman)) {
        let applied = match &spec {
            Some(Ok(spec)) => runtime::containerd::apply_spec_json(&mut d.container, spec),
            Some(Err(e)) => Err(e.to_string()),
            None => Ok(()),
        };
        applied.map_err(|e| format!("{}/config.json: {e}", state.bundle))?;
    }
    d.pid = Some(state.pid);
    Ok(containers.upsert(d))
}

/// `BUNDLE/config.json`, bounded: a regular file only, opened without
/// blocking (a FIFO or a device there must not hold a hook thread).
fn read_spec(bundle: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(bundle.join("config.json"))?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut data = Vec::new();
    file.take(MAX_SPEC + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_SPEC {
        return Err(std::io::Error::other("over 4 MiB"));
    }
    Ok(data)
}

// ---------------------------------------------------------------------------
// The hook (`rampart oci-hook`, run by runc)
// ---------------------------------------------------------------------------

/// Sends runc's state to the agent and waits for its answer. `Ok` with the
/// agent's detail when it armed; `Err` with why not.
pub fn run_hook(state: &[u8], socket: &Path) -> Result<String, String> {
    let parsed = HookState::parse(state)?;
    let deadline = Instant::now() + HOOK_TIMEOUT;
    let mut s =
        StdUnixStream::connect(socket).map_err(|e| format!("agent socket {}: {e}", socket.display()))?;
    s.set_write_timeout(Some(READ_TIMEOUT)).map_err(|e| e.to_string())?;
    let msg = serde_json::to_vec(&parsed).map_err(|e| e.to_string())?;
    s.write_all(&msg).map_err(|e| format!("sending to the agent: {e}"))?;
    s.shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no answer from the agent within {HOOK_TIMEOUT:?}"));
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if reply.len() + n <= 4096 => reply.extend_from_slice(&buf[..n]),
            Ok(_) => return Err("the agent's answer is over 4 KiB".into()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the agent's answer: {e}")),
        }
    }
    let answer: HookAnswer =
        serde_json::from_slice(&reply).map_err(|e| format!("the agent's answer is not one: {e}"))?;
    if answer.ok {
        Ok(answer.detail)
    } else {
        Err(answer.detail)
    }
}

// ---------------------------------------------------------------------------
// The runtime wrapper (`rampart-runc`)
// ---------------------------------------------------------------------------

/// runc's global options that take a value (`--root DIR`).
const RUNC_VALUE_OPTIONS: &[&str] = &["--root", "--log", "--log-format", "--criu", "--rootless"];

/// The bundle directory of a `create` or `run` command line, `None` for
/// every other command (they pass through untouched).
pub fn bundle_of(args: &[String]) -> Option<PathBuf> {
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        i += if RUNC_VALUE_OPTIONS.contains(&args[i].as_str()) { 2 } else { 1 };
    }
    if !matches!(args.get(i).map(String::as_str), Some("create" | "run")) {
        return None;
    }
    let rest = &args[i + 1..];
    for (j, a) in rest.iter().enumerate() {
        if a == "--bundle" || a == "-b" {
            return rest.get(j + 1).map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--bundle=").or_else(|| a.strip_prefix("-b=")) {
            return Some(PathBuf::from(v));
        }
    }
    // runc's default bundle: the current directory.
    Some(PathBuf::from("."))
}

/// Adds rampart's createRuntime hook (`hook_args` run as `hook_path`) to
/// an OCI spec, once.
pub fn add_hook(spec: &[u8], hook_path: &str, hook_args: &[String]) -> Result<Vec<u8>, String> {
    let mut v: serde_json::Value = serde_json::from_slice(spec).map_err(|e| format!("not JSON: {e}"))?;
    let root = v.as_object_mut().ok_or("the spec is not a JSON object")?;
    let hooks = root.entry("hooks").or_insert_with(|| serde_json::json!({}));
    let hooks = hooks.as_object_mut().ok_or("`hooks` is not an object")?;
    let list = hooks.entry("createRuntime").or_insert_with(|| serde_json::json!([]));
    let list = list.as_array_mut().ok_or("`hooks.createRuntime` is not a list")?;
    let entry =
        serde_json::json!({ "path": hook_path, "args": hook_args, "timeout": RUNC_HOOK_TIMEOUT_SECS });
    if !list.contains(&entry) {
        list.push(entry);
    }
    serde_json::to_vec(&v).map_err(|e| e.to_string())
}

/// A hooks.d file (podman's and CRI-O's `oci-hooks(5)`, version 1.0.0)
/// that has them run `hook_args` as `hook_path` at createRuntime for every
/// container.
pub fn hooks_d_json(hook_path: &str, hook_args: &[String]) -> String {
    let v = serde_json::json!({
        "version": "1.0.0",
        "hook": { "path": hook_path, "args": hook_args, "timeout": RUNC_HOOK_TIMEOUT_SECS },
        "when": { "always": true },
        "stages": ["createRuntime"],
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// Rewrites `bundle/config.json` with the hook (a new file renamed over the
/// old, same mode).
pub fn hook_bundle(bundle: &Path, hook_path: &str, hook_args: &[String]) -> Result<(), String> {
    let path = bundle.join("config.json");
    let spec = read_spec(bundle).map_err(|e| format!("{}: {e}", path.display()))?;
    let new = add_hook(&spec, hook_path, hook_args).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = std::fs::metadata(&path).map(|m| m.mode() & 0o7777).unwrap_or(0o644);
    let tmp = bundle.join(".config.json.rampart");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(&new)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_that_is_not_a_regular_file_is_refused_at_once() {
        let dir = std::env::temp_dir().join(format!("rampart-spec-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = std::ffi::CString::new(dir.join("config.json").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let err = read_spec(&dir).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn finds_the_bundle_of_create_and_run_only() {
        let shim = "--root /run/containerd/runc/default --log /x/log.json --log-format json create --bundle /b/c --pid-file /b/pid abc";
        assert_eq!(bundle_of(&args(shim)), Some(PathBuf::from("/b/c")));
        assert_eq!(bundle_of(&args("--systemd-cgroup run -b=/b x")), Some(PathBuf::from("/b")));
        assert_eq!(bundle_of(&args("create x")), Some(PathBuf::from(".")));
        assert_eq!(bundle_of(&args("--root /r start abc")), None);
        assert_eq!(bundle_of(&args("--root create state abc")), None, "create is --root's value");
        assert_eq!(bundle_of(&args("--version")), None);
    }

    #[test]
    fn adds_the_hook_once_and_keeps_the_rest() {
        let spec = br#"{"ociVersion":"1.0.2","process":{"args":["sh"]},"hooks":{"createRuntime":[{"path":"/other"}]}}"#;
        let a = vec!["rampart".to_string(), "oci-hook".to_string()];
        let once = add_hook(spec, "/usr/bin/rampart", &a).unwrap();
        let twice = add_hook(&once, "/usr/bin/rampart", &a).unwrap();
        assert_eq!(once, twice);
        let v: serde_json::Value = serde_json::from_slice(&once).unwrap();
        let hooks = v["hooks"]["createRuntime"].as_array().unwrap();
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[1]["path"], "/usr/bin/rampart");
        assert_eq!(hooks[1]["args"][1], "oci-hook");
        assert_eq!(v["process"]["args"][0], "sh");
        let bare = add_hook(br#"{"ociVersion":"1.0.2"}"#, "/r", &a).unwrap();
        assert!(String::from_utf8(bare).unwrap().contains("createRuntime"));
    }

    #[test]
    fn the_shipped_hooks_d_file_is_the_default_one() {
        let shipped = include_str!("../../../deploy/oci-hooks.d/rampart.json");
        let args = vec!["rampart".to_string(), "oci-hook".into()];
        assert_eq!(shipped, hooks_d_json("/usr/local/bin/rampart", &args));
        let v: serde_json::Value = serde_json::from_str(shipped).unwrap();
        assert_eq!(v["stages"][0], "createRuntime");
        assert_eq!(v["when"]["always"], true);
    }

    #[test]
    fn refuses_specs_it_cannot_extend() {
        for bad in [&b"[]"[..], b"{\"hooks\":[]}", b"{\"hooks\":{\"createRuntime\":{}}}", b"not json"] {
            assert!(add_hook(bad, "/r", &[]).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn checks_the_state() {
        let ok = HookState::parse(
            br#"{"ociVersion":"1.0.2","id":"abc-1","status":"creating","pid":42,"bundle":"/b"}"#,
        )
        .unwrap();
        assert_eq!((ok.id.as_str(), ok.pid), ("abc-1", 42));
        for bad in [
            &br#"{"id":"../x","pid":42}"#[..],
            br#"{"id":"","pid":42}"#,
            br#"{"id":"a","pid":1}"#,
            br#"{"id":"a","pid":42,"bundle":"rel"}"#,
            br#"{"id":"a"}"#,
        ] {
            assert!(HookState::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn hook_without_agent_says_so() {
        let sock = std::env::temp_dir().join(format!("rampart-no-agent-{}.sock", std::process::id()));
        let e = run_hook(br#"{"id":"a","pid":42}"#, &sock).unwrap_err();
        assert!(e.contains("agent socket"), "{e}");
    }
}
