//! What a container was seen doing: the input of every profile generator.
//!
//! [`Recorder`] folds the enriched event stream of the selected containers into a
//! [`Recording`]; the syscall sets come separately, from the kernel's per-cgroup
//! bitmaps, and are added with [`Recording::add_syscalls`].

use model::{Event, EventKind, SockAddr};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Bumped when the file format changes incompatibly.
pub const RECORDING_VERSION: u32 = 1;

/// Distinct file paths kept; beyond this, accesses are only counted (a container
/// walking a huge tree must not grow the recorder without bound).
pub const MAX_FILES: usize = 20_000;

/// A recording, as written to `recording.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    pub version: u32,
    /// RFC 3339 times of the first and last moment observed.
    pub started: String,
    pub ended: String,
    /// The containers merged into this recording.
    pub containers: Vec<RecordedContainer>,
    /// The command `rampart record -- CMD` ran (e.g. `docker run ...`), which
    /// `rampart profile verify` replays.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// How the attached-to container was started, from its runtime, for
    /// `rampart profile verify` to start it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunSpec>,
    /// Exit code of the workload (the command, or the containers' main process)
    /// when it ended during the recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The kernel's native architecture (`uname -m`), which `syscalls` is of.
    pub arch: String,
    /// Syscalls entered by the workload, by name, native ABI.
    pub syscalls: BTreeSet<String>,
    /// Syscalls of 32-bit compat (i386) tasks, by i386 name.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub compat_syscalls: BTreeSet<String>,
    /// Syscall numbers the name table did not know.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub unknown_syscalls: BTreeSet<u32>,
    /// Capability checks by capability name (`CAP_NET_BIND_SERVICE`).
    pub capabilities: BTreeMap<String, CapabilityUse>,
    /// Files and directories by path (container view; `/proc/<pid>` folded into
    /// `/proc/[pid]`).
    pub files: BTreeMap<String, FileAccess>,
    /// Accesses not kept because [`MAX_FILES`] was reached.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub files_overflow: u64,
    /// Executables run (resolved paths).
    pub executables: BTreeSet<String>,
    pub network: NetworkUse,
    /// Events folded in, and events the sensor lost while recording: a recording
    /// with losses may miss behaviour.
    pub events: u64,
    pub events_lost: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A container's start configuration: enough to run the same workload again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSpec {
    pub image: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub workdir: String,
}

impl RunSpec {
    /// `docker run` arguments (after `run`) that start this workload, with
    /// `extra` options placed before the image.
    pub fn docker_run_args(&self, extra: &[String]) -> Vec<String> {
        // `--opt=value`: a recorded value is always that option's value, even
        // one that looks like an option itself (`--privileged`).
        let mut args: Vec<String> = extra.to_vec();
        if !self.user.is_empty() {
            args.push(format!("--user={}", self.user));
        }
        if !self.workdir.is_empty() {
            args.push(format!("--workdir={}", self.workdir));
        }
        for e in &self.env {
            args.push(format!("--env={e}"));
        }
        let mut entry = self.entrypoint.iter();
        if let Some(first) = entry.next() {
            args.push(format!("--entrypoint={first}"));
        }
        args.push(self.image.clone());
        args.extend(entry.cloned());
        args.extend(self.cmd.iter().cloned());
        args
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedContainer {
    pub id: String,
    /// The runtime the container ran under (`docker`, `podman`, `containerd`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<model::Runtime>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// How often a capability was checked, and with what result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityUse {
    /// Checks that succeeded: the workload exercised the capability. (The
    /// sensor reports each (process image, capability, syscall, result) once.)
    pub granted: u64,
    /// Checks that failed: the workload went on without it.
    pub denied: u64,
    /// The syscalls the granted checks happened in (`-` outside any syscall).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub granted_in: BTreeSet<String>,
}

/// Checks the kernel makes only to decide how generous to be, never to refuse:
/// the overcommit heuristic asks for CAP_SYS_ADMIN on every accountable memory
/// mapping (mmap, brk, mremap, fork, exec, stack growth on a fault). Granted
/// in these alone, the capability is not needed.
const PROBE_ONLY: &[(&str, &[&str])] = &[(
    "CAP_SYS_ADMIN",
    &[
        "mmap", "mprotect", "brk", "mremap", "execve", "execveat", "clone", "clone3", "fork", "vfork",
        "shmat", "shmget", "-",
    ],
)];

impl CapabilityUse {
    /// A capability the workload needs: it was checked and granted in a
    /// syscall where the check can refuse. A check that was only ever denied
    /// shows the workload copes without it.
    pub fn needed(&self, cap: &str) -> bool {
        if self.granted == 0 {
            return false;
        }
        let probes = PROBE_ONLY.iter().find(|(c, _)| *c == cap).map_or(&[][..], |(_, s)| *s);
        self.granted_in.is_empty() || self.granted_in.iter().any(|s| !probes.contains(&s.as_str()))
    }
}

/// Modes a path was used with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileAccess {
    #[serde(skip_serializing_if = "is_false")]
    pub read: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub write: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub create: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub exec: bool,
    /// Unlinked, removed or renamed away.
    #[serde(skip_serializing_if = "is_false")]
    pub delete: bool,
    /// chmod / chown.
    #[serde(skip_serializing_if = "is_false")]
    pub setattr: bool,
    /// A directory (opened as one, created with mkdir, or removed with rmdir).
    #[serde(skip_serializing_if = "is_false")]
    pub dir: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl FileAccess {
    fn merge(&mut self, o: FileAccess) {
        self.read |= o.read;
        self.write |= o.write;
        self.create |= o.create;
        self.exec |= o.exec;
        self.delete |= o.delete;
        self.setattr |= o.setattr;
        self.dir |= o.dir;
    }
}

/// Transport of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    /// Created before the recording started, or another type: unknown.
    Any,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Any => "any",
        }
    }
}

/// An IP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub protocol: Protocol,
    /// The address (`0.0.0.0`/`::` for a wildcard bind).
    pub address: String,
    pub port: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkUse {
    /// Outbound connections (TCP connect, or UDP connect) made.
    pub connect: BTreeSet<Endpoint>,
    /// Local addresses bound.
    pub bind: BTreeSet<Endpoint>,
    /// Local addresses listened on (TCP servers).
    pub listen: BTreeSet<Endpoint>,
    /// Unix socket paths connected to or bound.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub unix: BTreeSet<String>,
    /// Socket kinds created: `inet/stream`, `inet6/dgram`, `unix/stream`,
    /// `netlink/raw`, ...
    pub sockets: BTreeSet<String>,
}

/// Folds events of the selected containers into a [`Recording`].
#[derive(Debug, Default)]
pub struct Recorder {
    recording: Recording,
    /// Cgroup ids seen per container id: the kernel's syscall sets are keyed by
    /// cgroup, and a restarted container gets a new one.
    cgroups: HashMap<u64, String>,
    /// Socket type per (pid, fd), from socket() results seen while recording.
    socket_types: HashMap<(u32, i32), u32>,
}

const AF_UNIX: u32 = 1;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const AF_NETLINK: u32 = 16;
const AF_PACKET: u32 = 17;
const O_DIRECTORY: u32 = 0o200000;
const SOCK_STREAM: u32 = 1;
const SOCK_DGRAM: u32 = 2;
const SOCK_RAW: u32 = 3;
const SOCK_SEQPACKET: u32 = 5;
/// socket(2) type flags (SOCK_NONBLOCK | SOCK_CLOEXEC) mixed into the type.
const SOCK_TYPE_MASK: u32 = 0xf;

impl Recorder {
    pub fn new(arch: &str) -> Recorder {
        Recorder {
            recording: Recording { version: RECORDING_VERSION, arch: arch.to_string(), ..Default::default() },
            ..Default::default()
        }
    }

    /// Cgroup ids seen, with their container id.
    pub fn cgroups(&self) -> &HashMap<u64, String> {
        &self.cgroups
    }

    /// Folds one event of a selected container in (the caller selects).
    pub fn observe(&mut self, ev: &Event) {
        let Some(container) = ev.container.as_deref() else { return };
        self.recording.events += 1;
        if !self.recording.containers.iter().any(|c| c.id == container.id) {
            self.recording.containers.push(RecordedContainer {
                id: container.id.clone(),
                runtime: container.runtime,
                name: container.name.clone(),
                image: container.image.clone(),
                labels: container.labels.clone(),
            });
        }
        self.cgroups.entry(ev.process.cgroup_id).or_insert_with(|| container.id.clone());
        if is_runtime_init(&ev.process.comm) {
            return;
        }
        // Events without a return value (exec, capability checks) count as done.
        let ret = ev.ret.unwrap_or(0);
        let ok = ret >= 0;
        let pid = ev.process.pid;
        match &ev.kind {
            EventKind::Exec { exe, .. } if ok => {
                let exe = if exe.is_empty() { &*ev.process.exe } else { exe.as_str() };
                if !exe.is_empty() {
                    self.recording.executables.insert(exe.to_string());
                    self.file(exe, FileAccess { exec: true, read: true, ..Default::default() });
                }
            }
            EventKind::Open { path, flags, .. } if ok => {
                let access = FileAccess {
                    read: flags.read,
                    write: flags.write || flags.truncate,
                    create: flags.create,
                    dir: flags.raw & O_DIRECTORY != 0,
                    ..Default::default()
                };
                self.file(path, access);
            }
            EventKind::Unlink { path, dir } if ok => {
                self.file(path, FileAccess { delete: true, dir: *dir, ..Default::default() })
            }
            EventKind::Rename { old_path, new_path } if ok => {
                self.file(old_path, FileAccess { delete: true, ..Default::default() });
                self.file(new_path, FileAccess { create: true, write: true, ..Default::default() });
            }
            EventKind::Link { new_path, .. } | EventKind::Symlink { link_path: new_path, .. } if ok => {
                self.file(new_path, FileAccess { create: true, ..Default::default() })
            }
            EventKind::Mkdir { path, .. } if ok => {
                self.file(path, FileAccess { create: true, dir: true, ..Default::default() })
            }
            EventKind::Chmod { path, .. } | EventKind::Chown { path, .. } if ok => {
                self.file(path, FileAccess { setattr: true, ..Default::default() })
            }
            EventKind::Socket { domain, sock_type, .. } if ok => {
                let kind = socket_kind(*domain, *sock_type);
                self.recording.network.sockets.insert(kind);
                self.socket_types.insert((pid, ret as i32), *sock_type & SOCK_TYPE_MASK);
            }
            EventKind::Connect { fd, remote: Some(addr), .. } if ok || is_in_progress(ret) => {
                let protocol = self.protocol(pid, *fd);
                match endpoint(addr, protocol) {
                    Some(e) => {
                        self.recording.network.connect.insert(e);
                    }
                    None => self.unix(addr),
                }
            }
            EventKind::Bind { fd, addr: Some(addr) } if ok => {
                let protocol = self.protocol(pid, *fd);
                match endpoint(addr, protocol) {
                    Some(e) => {
                        self.recording.network.bind.insert(e);
                    }
                    None => self.unix(addr),
                }
            }
            EventKind::Listen { fd, local: Some(addr), .. } if ok => {
                // listen(2) is TCP (or SCTP); an unknown fd is still a stream.
                let protocol = match self.protocol(pid, *fd) {
                    Protocol::Any => Protocol::Tcp,
                    p => p,
                };
                if let Some(e) = endpoint(addr, protocol) {
                    self.recording.network.listen.insert(e);
                }
            }
            EventKind::Accept { fd, .. } if ok => {
                if let Some(t) = self.socket_types.get(&(pid, *fd)).copied() {
                    self.socket_types.insert((pid, ret as i32), t);
                }
            }
            EventKind::Capable { cap_name, granted, syscall_nr, .. } => {
                let name =
                    if cap_name.starts_with("CAP_") { cap_name.clone() } else { format!("CAP_{cap_name}") };
                let u = self.recording.capabilities.entry(name).or_default();
                if *granted {
                    u.granted += 1;
                    let arch = seccomp::Arch::native();
                    let syscall = match syscall_nr {
                        Some(nr) => {
                            seccomp::syscalls::name(arch, *nr).map_or_else(|| nr.to_string(), str::to_string)
                        }
                        None => "-".to_string(),
                    };
                    u.granted_in.insert(syscall);
                } else {
                    u.denied += 1;
                }
            }
            EventKind::Exit { .. } | EventKind::Fork { .. } => {
                if let EventKind::Exit { .. } = ev.kind {
                    self.socket_types.retain(|(p, _), _| *p != pid);
                }
            }
            _ => {}
        }
    }

    fn protocol(&self, pid: u32, fd: i32) -> Protocol {
        match self.socket_types.get(&(pid, fd)) {
            Some(&SOCK_STREAM) => Protocol::Tcp,
            Some(&SOCK_DGRAM) => Protocol::Udp,
            _ => Protocol::Any,
        }
    }

    fn unix(&mut self, addr: &SockAddr) {
        if let SockAddr::Unix { path } = addr {
            if !path.is_empty() {
                self.recording.network.unix.insert(path.clone());
            }
        }
    }

    fn file(&mut self, path: &str, access: FileAccess) {
        if path.is_empty() {
            return;
        }
        let path = fold_proc_pid(path);
        let files = &mut self.recording.files;
        let full = files.len() >= MAX_FILES;
        match files.get_mut(path.as_str()) {
            Some(a) => a.merge(access),
            None if !full => {
                files.insert(path, access);
            }
            None => self.recording.files_overflow += 1,
        }
    }

    /// The recording so far (syscalls are added by the caller from the kernel).
    pub fn finish(self) -> Recording {
        self.recording
    }
}

/// runc's init process (`runc:[2:INIT]`) sets the container up (mounts,
/// capabilities, /proc) in its cgroup before it execs the workload: what it
/// does is the runtime's, not the workload's. The kernel-side syscall recorder
/// skips it the same way.
pub fn is_runtime_init(comm: &str) -> bool {
    comm.starts_with("runc:")
}

/// EINPROGRESS: a non-blocking connect that is under way still names its peer.
fn is_in_progress(ret: i64) -> bool {
    ret == -115
}

fn endpoint(addr: &SockAddr, protocol: Protocol) -> Option<Endpoint> {
    match addr {
        SockAddr::Inet { ip, port } | SockAddr::Inet6 { ip, port } => {
            Some(Endpoint { protocol, address: ip.to_string(), port: *port })
        }
        _ => None,
    }
}

fn socket_kind(domain: u32, sock_type: u32) -> String {
    let family = match domain {
        AF_UNIX => "unix".to_string(),
        AF_INET => "inet".to_string(),
        AF_INET6 => "inet6".to_string(),
        AF_NETLINK => "netlink".to_string(),
        AF_PACKET => "packet".to_string(),
        n => format!("family{n}"),
    };
    let kind = match sock_type & SOCK_TYPE_MASK {
        SOCK_STREAM => "stream".to_string(),
        SOCK_DGRAM => "dgram".to_string(),
        SOCK_RAW => "raw".to_string(),
        SOCK_SEQPACKET => "seqpacket".to_string(),
        n => format!("type{n}"),
    };
    format!("{family}/{kind}")
}

/// `/proc/1234/status` -> `/proc/[pid]/status`: process ids differ between runs.
fn fold_proc_pid(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("/proc/") {
        let (first, tail) = rest.split_once('/').map_or((rest, ""), |(a, b)| (a, b));
        if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
            return if tail.is_empty() { "/proc/[pid]".to_string() } else { format!("/proc/[pid]/{tail}") };
        }
    }
    path.to_string()
}

impl Recording {
    /// Adds syscalls by name (native or compat), from the kernel's sets.
    pub fn add_syscalls(
        &mut self,
        native: impl IntoIterator<Item = String>,
        compat: impl IntoIterator<Item = String>,
    ) {
        self.syscalls.extend(native);
        self.compat_syscalls.extend(compat);
    }

    /// Merges another recording of the same workload (e.g. another replica).
    pub fn merge(&mut self, other: Recording) {
        if self.started.is_empty() || (!other.started.is_empty() && other.started < self.started) {
            self.started = other.started;
        }
        if other.ended > self.ended {
            self.ended = other.ended;
        }
        for c in other.containers {
            if !self.containers.iter().any(|m| m.id == c.id) {
                self.containers.push(c);
            }
        }
        self.syscalls.extend(other.syscalls);
        self.compat_syscalls.extend(other.compat_syscalls);
        self.unknown_syscalls.extend(other.unknown_syscalls);
        for (cap, u) in other.capabilities {
            let m = self.capabilities.entry(cap).or_default();
            m.granted += u.granted;
            m.denied += u.denied;
            m.granted_in.extend(u.granted_in);
        }
        for (path, a) in other.files {
            self.files.entry(path).or_default().merge(a);
        }
        self.files_overflow += other.files_overflow;
        self.executables.extend(other.executables);
        self.network.connect.extend(other.network.connect);
        self.network.bind.extend(other.network.bind);
        self.network.listen.extend(other.network.listen);
        self.network.unix.extend(other.network.unix);
        self.network.sockets.extend(other.network.sockets);
        self.events += other.events;
        self.events_lost += other.events_lost;
    }

    /// Capabilities the workload needs, by name, sorted.
    pub fn needed_capabilities(&self) -> Vec<String> {
        self.capabilities.iter().filter(|(c, u)| u.needed(c)).map(|(c, _)| c.clone()).collect()
    }
}
