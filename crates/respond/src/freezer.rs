//! Freezing a container: every process of it stops being scheduled, in place,
//! with its memory, files and sockets intact for forensics; thawing resumes it.
//!
//! Mechanisms, in the order `auto` tries them:
//! 1. cgroup v2 `cgroup.freeze` on the container's unified cgroup (kernel 5.2+;
//!    works on hybrid hosts too, and is independent of the runtime's own pause
//!    state, so a `docker pause`/`unpause` cycle cannot thaw it behind our back);
//! 2. the cgroup v1 freezer (`freezer.state`), where the container sits in a v1
//!    freezer hierarchy and the v2 file is missing (older kernels, v1 hosts);
//! 3. the runtime's pause (`docker pause`), when no cgroup file is writable;
//!    Docker containers only. Containers of the other runtimes (containerd,
//!    CRI, podman) are frozen with the cgroup freezer, which is what those
//!    runtimes' own pause does too.
//!
//! A freeze waits until the kernel reports the cgroup frozen (`cgroup.events`
//! `frozen 1`, `freezer.state` `FROZEN`); on timeout it thaws again and fails,
//! so a half-frozen container is never reported as frozen.

use crate::docker::DockerActions;
use crate::target::Target;
use crate::Error;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    CgroupV2,
    CgroupV1,
    Runtime,
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [Mechanism::CgroupV2, Mechanism::CgroupV1, Mechanism::Runtime];

    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::CgroupV2 => "cgroup-v2",
            Mechanism::CgroupV1 => "cgroup-v1",
            Mechanism::Runtime => "runtime",
        }
    }

    /// What it is, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Mechanism::CgroupV2 => "cgroup v2 freezer (cgroup.freeze)",
            Mechanism::CgroupV1 => "cgroup v1 freezer (freezer.state)",
            Mechanism::Runtime => "runtime pause (docker pause)",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mechanism {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown freezer mechanism {s:?} (cgroup-v2, cgroup-v1, runtime)"))
    }
}

/// How to freeze.
#[derive(Debug, Clone)]
pub struct FreezeOptions {
    /// Force a mechanism; `None` tries them in order.
    pub mechanism: Option<Mechanism>,
    /// How long to wait for the kernel (or runtime) to report frozen.
    pub timeout: Duration,
    /// Docker Engine API socket (for the runtime mechanism).
    pub docker_socket: PathBuf,
}

impl Default for FreezeOptions {
    fn default() -> Self {
        FreezeOptions {
            mechanism: None,
            timeout: Duration::from_secs(5),
            docker_socket: PathBuf::from(runtime::DEFAULT_DOCKER_SOCKET),
        }
    }
}

/// The freezer state as each mechanism sees it (`None`: not applicable).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FreezerState {
    /// `cgroup.events` says `frozen 1`.
    pub cgroup_v2_frozen: Option<bool>,
    /// `freezer.state`: THAWED, FREEZING or FROZEN.
    pub cgroup_v1_state: Option<String>,
    /// Docker's own paused flag.
    pub runtime_paused: Option<bool>,
}

impl FreezerState {
    pub fn frozen(&self) -> bool {
        self.cgroup_v2_frozen == Some(true)
            || self.cgroup_v1_state.as_deref() == Some("FROZEN")
            || self.runtime_paused == Some(true)
    }
}

fn io_err(what: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io { what, path: path.to_path_buf(), source }
}

fn read_trim(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| io_err("reading", path, e))
}

fn write(path: &Path, v: &str) -> Result<(), Error> {
    std::fs::write(path, v).map_err(|e| io_err("writing", path, e))
}

/// `frozen` from a `cgroup.events` text.
pub fn events_frozen(text: &str) -> Option<bool> {
    text.lines().find_map(|l| l.strip_prefix("frozen ")).map(|v| v.trim() == "1")
}

/// The v1 freezer cgroup path of a process, from `/proc/<pid>/cgroup` text
/// (`6:freezer:/docker/<id>`).
pub fn v1_freezer_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrl.split(',').any(|c| c == "freezer").then_some(path)
    })
}

/// The mount point of the v1 freezer hierarchy, from `/proc/self/mountinfo`
/// text.
pub fn v1_freezer_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut r = right.split_whitespace();
        if r.next()? != "cgroup" {
            return None;
        }
        let opts = r.nth(1)?;
        if !opts.split(',').any(|o| o == "freezer") {
            return None;
        }
        let fields: Vec<&str> = left.split_whitespace().collect();
        if fields.get(3) != Some(&"/") {
            return None;
        }
        fields.get(4).map(PathBuf::from)
    })
}

/// Where each cgroup mechanism's control file is for this target.
struct Files {
    v2_freeze: Option<PathBuf>,
    v2_events: Option<PathBuf>,
    v1_state: Option<PathBuf>,
    /// Why a mechanism does not apply.
    missing: Vec<String>,
}

fn files(t: &Target) -> Result<Files, Error> {
    let cg = t.require_cgroup()?;
    let mut f = Files { v2_freeze: None, v2_events: None, v1_state: None, missing: Vec::new() };
    let freeze = cg.dir.join("cgroup.freeze");
    if freeze.exists() {
        f.v2_freeze = Some(freeze);
        f.v2_events = Some(cg.dir.join("cgroup.events"));
    } else {
        f.missing.push(format!("cgroup-v2: no {}", freeze.display()));
    }
    let pid = t.pid.or_else(|| cg.any_pid());
    let v1 = pid.and_then(|pid| {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let rel = v1_freezer_path(&text)?.trim_start_matches('/').to_string();
        if rel.is_empty() {
            return None; // the root freezer cgroup: not the container's own
        }
        let mount = v1_freezer_mount(&std::fs::read_to_string("/proc/self/mountinfo").ok()?)?;
        Some(mount.join(rel).join("freezer.state"))
    });
    match v1 {
        Some(p) if p.exists() => f.v1_state = Some(p),
        _ => f.missing.push("cgroup-v1: the container is in no v1 freezer cgroup".into()),
    }
    Ok(f)
}

async fn wait_until(timeout: Duration, mut done: impl FnMut() -> Result<bool, Error>) -> Result<bool, Error> {
    let deadline = Instant::now() + timeout;
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn freeze_v2(t: &Target, freeze: &Path, events: &Path, timeout: Duration) -> Result<(), Error> {
    write(freeze, "1")?;
    let ok = wait_until(timeout, || Ok(events_frozen(&read_trim(events)?) == Some(true))).await?;
    if !ok {
        let state = read_trim(events).unwrap_or_default().replace('\n', ", ");
        let _ = write(freeze, "0");
        return Err(Error::FreezeTimeout { id: t.id.clone(), mechanism: "cgroup-v2", timeout, state });
    }
    Ok(())
}

async fn freeze_v1(t: &Target, state: &Path, timeout: Duration) -> Result<(), Error> {
    write(state, "FROZEN")?;
    let ok = wait_until(timeout, || {
        let s = read_trim(state)?;
        if s == "FREEZING" {
            // The v1 freezer may need a nudge to finish (what runc does too).
            write(state, "FROZEN")?;
        }
        Ok(s == "FROZEN")
    })
    .await?;
    if !ok {
        let s = read_trim(state).unwrap_or_default();
        let _ = write(state, "THAWED");
        return Err(Error::FreezeTimeout { id: t.id.clone(), mechanism: "cgroup-v1", timeout, state: s });
    }
    Ok(())
}

/// Freeze every process of a running container; returns the mechanism used.
pub async fn freeze(t: &Target, opts: &FreezeOptions) -> Result<Mechanism, Error> {
    let f = files(t)?;
    let order: Vec<Mechanism> = match opts.mechanism {
        Some(m) => vec![m],
        None => Mechanism::ALL.to_vec(),
    };
    let mut reasons = f.missing.clone();
    for m in order {
        let r = match m {
            Mechanism::CgroupV2 => match (&f.v2_freeze, &f.v2_events) {
                (Some(fr), Some(ev)) => freeze_v2(t, fr, ev, opts.timeout).await,
                _ => continue,
            },
            Mechanism::CgroupV1 => match &f.v1_state {
                Some(st) => freeze_v1(t, st, opts.timeout).await,
                None => continue,
            },
            Mechanism::Runtime if !docker_pausable(t) => {
                let runtime = t.runtime.map(|r| r.as_str()).unwrap_or("?");
                reasons.push(format!(
                    "runtime: the runtime pause is Docker's; {runtime} containers use the cgroup freezer"
                ));
                continue;
            }
            Mechanism::Runtime => match DockerActions::connect(&opts.docker_socket, opts.timeout).await {
                Ok(d) => d.pause(&t.id).await,
                Err(e) => Err(e),
            },
        };
        match r {
            Ok(()) => {
                tracing::info!(container = %t.label(), mechanism = %m, "container frozen");
                return Ok(m);
            }
            // A timeout thawed again: trying another mechanism would not do better.
            Err(e @ Error::FreezeTimeout { .. }) => return Err(e),
            Err(e) => reasons.push(format!("{m}: {e}")),
        }
    }
    Err(Error::NoFreezer { id: t.id.clone(), reasons: reasons.join("; ") })
}

/// Whether the runtime mechanism (Docker's pause) applies: a Docker container,
/// or one whose runtime is not known.
fn docker_pausable(t: &Target) -> bool {
    matches!(t.runtime, None | Some(model::Runtime::Docker))
}

/// The state each mechanism reports.
pub async fn state(t: &Target, opts: &FreezeOptions) -> Result<FreezerState, Error> {
    let f = files(t)?;
    let mut s = FreezerState::default();
    if let Some(ev) = &f.v2_events {
        s.cgroup_v2_frozen = events_frozen(&read_trim(ev)?);
    }
    if let Some(st) = &f.v1_state {
        s.cgroup_v1_state = Some(read_trim(st)?);
    }
    if docker_pausable(t) {
        if let Ok(d) = DockerActions::connect(&opts.docker_socket, opts.timeout).await {
            s.runtime_paused = d.is_paused(&t.id).await.ok();
        }
    }
    Ok(s)
}

/// Thaw a container whichever way it was frozen (every mechanism that has it
/// frozen); returns the mechanisms that thawed something (empty: it was not
/// frozen). The runtime goes first: its pause sits on a cgroup freezer too,
/// and it refuses to resume a container whose freezer was thawed under it.
pub async fn thaw(t: &Target, opts: &FreezeOptions) -> Result<Vec<Mechanism>, Error> {
    let f = files(t)?;
    let mut done = Vec::new();
    let mut errors = Vec::new();
    let docker = if docker_pausable(t) {
        Some(DockerActions::connect(&opts.docker_socket, opts.timeout).await)
    } else {
        None
    };
    match docker {
        None => {}
        Some(Ok(d)) => match d.is_paused(&t.id).await {
            Ok(true) => match d.unpause(&t.id).await {
                Ok(()) => done.push(Mechanism::Runtime),
                Err(e) => errors.push(format!("runtime: {e}")),
            },
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "docker does not know the container"),
        },
        Some(Err(e)) => tracing::debug!(error = %e, "docker unreachable while thawing"),
    }
    if let (Some(fr), Some(ev)) = (&f.v2_freeze, &f.v2_events) {
        if read_trim(fr)? == "1" {
            write(fr, "0")?;
            if wait_until(opts.timeout, || Ok(events_frozen(&read_trim(ev)?) != Some(true))).await? {
                done.push(Mechanism::CgroupV2);
            } else {
                errors.push(format!("cgroup-v2: still frozen after {:?}", opts.timeout));
            }
        }
    }
    if let Some(st) = &f.v1_state {
        if read_trim(st)? != "THAWED" {
            write(st, "THAWED")?;
            if wait_until(opts.timeout, || Ok(read_trim(st)? == "THAWED")).await? {
                done.push(Mechanism::CgroupV1);
            } else {
                errors.push(format!("cgroup-v1: not thawed after {:?}", opts.timeout));
            }
        }
    }
    if !errors.is_empty() {
        return Err(Error::Thaw { id: t.id.clone(), reasons: errors.join("; ") });
    }
    if !done.is_empty() {
        tracing::info!(container = %t.label(), mechanisms = ?done, "container thawed");
    }
    Ok(done)
}

/// Stop a container through its runtime (`docker stop -t GRACE`).
pub async fn stop(t: &Target, grace: Duration, docker_socket: &Path) -> Result<(), Error> {
    let d = DockerActions::connect(docker_socket, grace + Duration::from_secs(10)).await?;
    d.stop(&t.id, grace).await?;
    tracing::info!(container = %t.label(), "container stopped");
    Ok(())
}

/// Stop a container without its runtime's API, as every runtime's stop does
/// underneath: SIGTERM to each of its processes, SIGKILL (`cgroup.kill`, or
/// each process) to what is left after `grace`. The runtime sees its init exit
/// and marks the container stopped. Used for the runtimes whose clients rampart
/// has no stop call for (containerd, CRI, podman).
pub async fn stop_by_signals(t: &Target, grace: Duration) -> Result<(), Error> {
    let cg = t.require_cgroup()?;
    let deadline = tokio::time::Instant::now() + grace;
    signal_cgroup(&cg.dir, libc::SIGTERM);
    while tokio::time::Instant::now() < deadline {
        if cgroup_pids(&cg.dir).is_empty() {
            tracing::info!(container = %t.label(), "container stopped (SIGTERM)");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // cgroup.kill (kernel 5.14+) also kills processes forked meanwhile.
    if std::fs::write(cg.dir.join("cgroup.kill"), "1").is_err() {
        signal_cgroup(&cg.dir, libc::SIGKILL);
    }
    for _ in 0..50 {
        if cgroup_pids(&cg.dir).is_empty() {
            tracing::info!(container = %t.label(), "container stopped (SIGKILL after {grace:?})");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::Io {
        what: "stopping container: processes survive SIGKILL in",
        path: cg.dir.clone(),
        source: std::io::Error::other(format!("{} processes left", cgroup_pids(&cg.dir).len())),
    })
}

/// Every process of a cgroup and its sub-cgroups.
fn cgroup_pids(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(cgroup_pids(&e.path()));
            }
        }
    }
    pids
}

fn signal_cgroup(dir: &Path, sig: i32) {
    for pid in cgroup_pids(dir) {
        if pid > 1 {
            // SAFETY: kill(2) with a pid read from the container's cgroup; no memory is shared.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cgroup_files() {
        assert_eq!(events_frozen("populated 1\nfrozen 1\n"), Some(true));
        assert_eq!(events_frozen("populated 1\nfrozen 0"), Some(false));
        assert_eq!(events_frozen("populated 1"), None);
        let proc_cg =
            "9:name=systemd:/docker/abc\n6:freezer:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/docker/abc\n";
        assert_eq!(v1_freezer_path(proc_cg), Some("/docker/abc"));
        assert_eq!(v1_freezer_path("0::/docker/abc\n"), None);
        assert_eq!(v1_freezer_path("3:cpuset,freezer:/x\n"), Some("/x"));
        let mi = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                  36 31 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n\
                  41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(v1_freezer_mount(mi), Some(PathBuf::from("/sys/fs/cgroup/freezer")));
        assert_eq!(v1_freezer_mount("41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"), None);
        assert_eq!("cgroup-v1".parse::<Mechanism>(), Ok(Mechanism::CgroupV1));
        assert!("pause".parse::<Mechanism>().is_err());
        let st = FreezerState { cgroup_v1_state: Some("FREEZING".into()), ..Default::default() };
        assert!(!st.frozen());
    }
}
