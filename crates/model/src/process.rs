//! A process as the process table knows it, and the lookup the rules engine
//! walks parents through. The table itself (fed from /proc and events) is in
//! `state`; the rules engine sees only [`ProcessLookup`], so it stays pure and
//! an offline replay can hand it a table built from the capture alone.

use std::sync::Arc;

/// Where an entry came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProcSource {
    /// Read from procfs (start-up scan or a lazy read).
    Proc,
    /// Built from events (fork, exec).
    #[default]
    Event,
}

/// A process's capability sets (bit masks, bit N = capability N).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    pub effective: u64,
    pub permitted: u64,
    /// `None` when not known (an exec record carries effective and permitted only).
    pub inheritable: Option<u64>,
}

/// One process (thread group) as the table knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub comm: crate::Comm,
    /// Executable path (as the process sees it: the container's view).
    pub exe: Arc<str>,
    /// argv, bounded in count and length.
    pub argv: Arc<[String]>,
    /// argv joined by spaces, bounded.
    pub cmdline: Arc<str>,
    pub cwd: Arc<str>,
    /// Start time, nanoseconds since the epoch (0 when unknown).
    pub start_time_ns: u64,
    /// When the process exited (event time), if it did.
    pub exited_at_ns: Option<u64>,
    pub source: ProcSource,
    /// Session id, host view; 0 when unknown. Read from /proc (scan, exec),
    /// inherited on fork; `setsid` is not captured, so a process that called
    /// it without exec'ing keeps its parent's session here.
    pub sid: u32,
    /// Process group id, host view; 0 when unknown (same sources as `sid`).
    pub pgid: u32,
    /// The last capability sets known: from /proc (scan), exec and capset
    /// events; inherited on fork.
    pub caps: Option<Caps>,
    /// The environment, when it was read (`None`: not read).
    pub env: Option<Arc<[String]>>,
    /// ctime and mtime of the executable's inode (ns since the epoch).
    pub exe_ctime_ns: Option<u64>,
    pub exe_mtime_ns: Option<u64>,
    /// Layer 4 protocol of the process's sockets by fd (`tcp`, `udp`, `raw`),
    /// from the socket and accept events that created them; at most
    /// [`MAX_SOCKET_FDS`], the oldest dropped first. Closes are not captured:
    /// an fd number reused for a socket is overwritten by its own socket event.
    pub sockets: Vec<(i32, &'static str)>,
    /// Controlling terminal's device number (0: none), `None` when unknown:
    /// from /proc (scan), the exec event; inherited on fork.
    pub tty: Option<u64>,
    /// Whether the executable lives in the container's writable overlay
    /// layer (not from its image), `None` when unknown: from the exec event;
    /// inherited on fork.
    pub exe_upper_layer: Option<bool>,
}

/// The device number (the kernel's `new_encode_dev`, as `/proc/<pid>/stat`
/// field 7 gives it) of a terminal by name: `pts/N`, `ttyN`; another
/// terminal gets a number that is still not 0 (0 means no terminal).
pub fn tty_nr(name: &str) -> u64 {
    // new_encode_dev(major, minor)
    fn enc(major: u64, minor: u64) -> u64 {
        (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
    }
    let name = name.trim_start_matches("/dev/");
    if let Some(n) = name.strip_prefix("pts/").or_else(|| name.strip_prefix("pts")) {
        if let Ok(n) = n.parse::<u64>() {
            return enc(136 + n / 256, n % 256);
        }
    }
    if let Some(n) = name.strip_prefix("tty") {
        if let Ok(n) = n.parse::<u64>() {
            return enc(4, n);
        }
    }
    // Some terminal we cannot number: still not 0.
    enc(5, 0)
}

/// Bound on [`ProcInfo::sockets`].
pub const MAX_SOCKET_FDS: usize = 64;

/// The layer 4 protocol of a socket by its `socket(2)` arguments, for inet
/// sockets: `tcp`, `udp`, `raw`.
pub fn l4proto(domain: u32, sock_type: u32) -> Option<&'static str> {
    const AF_INET: u32 = 2;
    const AF_INET6: u32 = 10;
    if domain != AF_INET && domain != AF_INET6 {
        return None;
    }
    // The low bits are the type; SOCK_NONBLOCK and SOCK_CLOEXEC are flags above.
    match sock_type & 0xf {
        1 => Some("tcp"),
        2 => Some("udp"),
        3 => Some("raw"),
        _ => None,
    }
}

impl ProcInfo {
    /// The protocol of socket `fd`, if the table saw it created.
    pub fn socket_proto(&self, fd: i64) -> Option<&'static str> {
        self.sockets.iter().rev().find(|(f, _)| i64::from(*f) == fd).map(|(_, p)| *p)
    }

    /// Remember that `fd` is a socket of protocol `proto` (replacing what the
    /// fd was before), keeping at most [`MAX_SOCKET_FDS`].
    pub fn set_socket(&mut self, fd: i32, proto: &'static str) {
        self.sockets.retain(|(f, _)| *f != fd);
        if self.sockets.len() >= MAX_SOCKET_FDS {
            self.sockets.remove(0);
        }
        self.sockets.push((fd, proto));
    }
}

impl ProcInfo {
    pub fn is_alive(&self) -> bool {
        self.exited_at_ns.is_none()
    }

    /// The basename of `exe`, or `comm` when the executable is unknown.
    pub fn name(&self) -> &str {
        if self.exe.is_empty() {
            &self.comm
        } else {
            self.exe.rsplit('/').next().unwrap_or(&self.exe)
        }
    }
}

/// Processes by pid: what parent and ancestor fields (`proc.pname`,
/// `proc.aname[N]`) are read from. Implementations must not block.
pub trait ProcessLookup: std::fmt::Debug {
    fn process(&self, pid: u32) -> Option<&ProcInfo>;

    /// The name a container (by cgroup id) resolved to `ip` through DNS and
    /// whose answer had not expired at `at_ns` (for `fd.sip.name` and
    /// friends); `None` when the lookup keeps no DNS answers.
    fn dns_name(&self, _cgroup_id: u64, _ip: std::net::IpAddr, _at_ns: u64) -> Option<&str> {
        None
    }

    /// A container's resource use over the last sampling window, by full
    /// container id (for `container.cpu_share` and friends); `None` when the
    /// lookup samples none (replay, a container not sampled yet).
    fn container_rates(&self, _container_id: &str) -> Option<crate::ContainerRates> {
        None
    }
}

impl ProcessLookup for std::collections::HashMap<u32, ProcInfo> {
    fn process(&self, pid: u32) -> Option<&ProcInfo> {
        self.get(&pid)
    }
}
