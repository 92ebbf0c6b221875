//! The socket runc's seccomp agent protocol talks to, and one thread per
//! listener fd.
//!
//! Bounds: a runtime message is at most 256 KiB and must arrive within a
//! second; at most [`MAX_LISTENERS`] listeners are served at once (beyond,
//! the fd is closed and that container's notified syscalls fail with ENOSYS:
//! refused, never allowed). One container cannot starve another: each
//! listener has its own thread, and a notification's work is a few bounded
//! reads of `/proc/<tid>`.

use super::sys::{self, Answer};
use super::{container_of, decide, event_for, DenyRules, ProcTarget};
use model::{Container, Event};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Listeners served at once.
pub const MAX_LISTENERS: u64 = 1024;

/// runtime-spec `ContainerProcessState`: what runc sends with the fds.
#[derive(Debug, Clone, Deserialize)]
pub struct ProcessState {
    #[serde(rename = "ociVersion", default)]
    pub oci_version: String,
    /// Names of the fds sent, in order; the listener is `seccompFd`.
    pub fds: Vec<String>,
    /// The process the filter was installed in.
    pub pid: i64,
    /// The profile's `listenerMetadata`.
    #[serde(default)]
    pub metadata: String,
    pub state: OciState,
}

/// runtime-spec `State`, the fields the agent uses.
#[derive(Debug, Clone, Deserialize)]
pub struct OciState {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub bundle: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// Parses a message and picks the listener among its fds (exactly one
/// `seccompFd`); the other fds are closed.
pub fn parse_message(data: &[u8], fds: Vec<OwnedFd>) -> Result<(ProcessState, OwnedFd), String> {
    let state: ProcessState =
        serde_json::from_slice(data).map_err(|e| format!("not a container process state: {e}"))?;
    let mut named = state.fds.iter().enumerate().filter(|(_, n)| *n == "seccompFd");
    let (Some((i, _)), None) = (named.next(), named.next()) else {
        return Err("the message must name exactly one seccompFd".into());
    };
    if state.fds.len() != fds.len() {
        return Err(format!("the message names {} fds but carries {}", state.fds.len(), fds.len()));
    }
    let fd = fds.into_iter().nth(i).expect("length checked");
    Ok((state, fd))
}

/// Counters, for the logs and metrics.
#[derive(Debug, Default)]
pub struct NotifyStats {
    pub listeners: AtomicU64,
    pub listeners_active: AtomicU64,
    pub refused: AtomicU64,
    pub notifications: AtomicU64,
    pub denied: AtomicU64,
    pub continued: AtomicU64,
    /// The path could not be read (bad pointer, thread gone): the kernel ran it.
    pub unreadable: AtomicU64,
    /// The notification was gone before the answer (thread killed).
    pub gone: AtomicU64,
}

/// A denial, for the alert.
pub struct Denial {
    pub rule: String,
    pub priority: model::Priority,
    pub errno: i32,
    pub event: Event,
}

/// Container metadata for the state runc sends with a listener (the
/// registry, or the runtime asked about a container being started).
pub type Lookup = Box<dyn Fn(&OciState) -> Option<Arc<Container>> + Send + Sync>;

/// What the agent is given.
pub struct NotifyConfig {
    pub socket: PathBuf,
    pub rules: DenyRules,
    /// Container metadata by id (the registry), when the agent has one.
    pub lookup: Option<Lookup>,
    /// Called on each denial (from a listener thread).
    pub on_deny: Box<dyn Fn(Denial) + Send + Sync>,
}

struct Shared {
    rules: RwLock<Arc<DenyRules>>,
    lookup: Option<Lookup>,
    on_deny: Box<dyn Fn(Denial) + Send + Sync>,
    stats: NotifyStats,
    stop: AtomicBool,
}

/// The running agent. Dropping it stops accepting and lets each listener
/// thread end within a second; the listener fds close with them, and the
/// containers' notified syscalls then fail with ENOSYS (docs/ARCHITECTURE.md).
pub struct NotifyAgent {
    shared: Arc<Shared>,
    socket: PathBuf,
    /// The socket file we bound (a newer agent may have replaced it).
    inode: u64,
}

impl NotifyAgent {
    /// Binds the socket (mode 0600 in a 0700 directory: only root's runc
    /// connects) and starts serving.
    pub fn start(cfg: NotifyConfig) -> io::Result<NotifyAgent> {
        // A directory we create is 0700; an existing one is left as it is.
        if let Some(dir) = cfg.socket.parent().filter(|d| !d.exists()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        match std::fs::remove_file(&cfg.socket) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(&cfg.socket)?;
        std::fs::set_permissions(&cfg.socket, std::fs::Permissions::from_mode(0o600))?;
        let inode = std::fs::metadata(&cfg.socket)?.ino();
        let shared = Arc::new(Shared {
            rules: RwLock::new(Arc::new(cfg.rules)),
            lookup: cfg.lookup,
            on_deny: cfg.on_deny,
            stats: NotifyStats::default(),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::Builder::new().name("notify-accept".into()).spawn(move || accept_loop(listener, s))?;
        Ok(NotifyAgent { shared, socket: cfg.socket, inode })
    }

    /// New rules (a reload): listeners use them from their next notification.
    pub fn set_rules(&self, rules: DenyRules) {
        *self.shared.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
    }

    pub fn stats(&self) -> &NotifyStats {
        &self.shared.stats
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for NotifyAgent {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if std::fs::metadata(&self.socket).is_ok_and(|m| m.ino() == self.inode) {
            // Wake the accept loop so that it sees the stop, then go.
            let _ = UnixStream::connect(&self.socket);
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(conn) = conn else { continue };
        if let Err(e) = take_listener(conn, &shared) {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "seccomp agent: connection refused");
            eprintln!("rampart: seccomp agent: connection refused: {e}");
        }
    }
}

fn take_listener(conn: UnixStream, shared: &Arc<Shared>) -> Result<(), String> {
    conn.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
    let (data, fds) = sys::recv_message(&conn).map_err(|e| format!("reading the message: {e}"))?;
    let (state, fd) = parse_message(&data, fds)?;
    if !sys::is_listener(fd.as_raw_fd()) {
        return Err(format!("container {}: the seccompFd is not a seccomp listener", state.state.id));
    }
    let active = shared.stats.listeners_active.fetch_add(1, Ordering::Relaxed);
    if active >= MAX_LISTENERS {
        shared.stats.listeners_active.fetch_sub(1, Ordering::Relaxed);
        return Err(format!(
            "container {}: {MAX_LISTENERS} listeners already served; its notified syscalls fail with ENOSYS",
            state.state.id
        ));
    }
    shared.stats.listeners.fetch_add(1, Ordering::Relaxed);
    let container = container_of(&state, shared.lookup.as_ref().and_then(|l| l(&state.state)));
    tracing::info!(container = %state.state.id, pid = state.pid, "seccomp agent: listener taken");
    let s = shared.clone();
    let spawned =
        std::thread::Builder::new().name("notify-listener".into()).stack_size(256 * 1024).spawn(move || {
            serve(fd, container, &s);
            s.stats.listeners_active.fetch_sub(1, Ordering::Relaxed);
        });
    if let Err(e) = spawned {
        shared.stats.listeners_active.fetch_sub(1, Ordering::Relaxed);
        return Err(format!("container {}: no thread for its listener: {e}", state.state.id));
    }
    Ok(())
}

/// One listener: until every task under the filter is gone (or the agent
/// stops), answer each notification.
fn serve(fd: OwnedFd, container: Arc<Container>, shared: &Shared) {
    let raw = fd.as_raw_fd();
    let stats = &shared.stats;
    while !shared.stop.load(Ordering::Relaxed) {
        match sys::wait(raw, 1000) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(_) => return,
        }
        let n = match sys::recv(raw) {
            Ok(n) => n,
            // The thread was killed between poll and recv.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => continue,
            Err(_) => return,
        };
        stats.notifications.fetch_add(1, Ordering::Relaxed);
        let rules = shared.rules.read().unwrap_or_else(|e| e.into_inner()).clone();
        let target = ProcTarget { tid: n.tid };
        let mut ev = event_for(&n, &target, Some(container.clone()));
        // What was read is the thread's only if it is still in that syscall
        // (its tid not reused).
        if !sys::id_valid(raw, n.id) {
            stats.gone.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if ev.is_none() {
            stats.unreadable.fetch_add(1, Ordering::Relaxed);
        }
        let (answer, rule) = decide(&rules, ev.as_mut(), &target);
        // The process was read after the check above: check again.
        if rule.is_some() && !sys::id_valid(raw, n.id) {
            stats.gone.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match sys::respond(raw, n.id, answer) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                stats.gone.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(_) => return,
        }
        match (answer, rule, ev) {
            (Answer::Deny(errno), Some((rule, priority)), Some(event)) => {
                stats.denied.fetch_add(1, Ordering::Relaxed);
                (shared.on_deny)(Denial { rule, priority, errno, event });
            }
            _ => {
                stats.continued.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
