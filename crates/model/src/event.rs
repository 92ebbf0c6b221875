use crate::{Container, SockAddr};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A task name (`comm`): short strings inline, so an event's costs no
/// allocation.
pub type Comm = compact_str::CompactString;

/// One thing that happened, attributed to a process and (when it ran in one) a
/// container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    pub process: ProcessCtx,
    /// The container the process runs in; `None` for host processes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container: Option<Arc<Container>>,
    /// The syscall's return value where the event is a syscall (negative errno on
    /// failure).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ret: Option<i64>,
    /// The syscall, by Falco's `evt.type` name (`openat`, `execve`, `clone` for
    /// fork, `procexit` for exit); `None` for events that are not syscalls.
    #[serde(skip_serializing_if = "Option::is_none", default, deserialize_with = "crate::names::de_syscall")]
    pub syscall: Option<Cow<'static, str>>,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    pub fn event_type(&self) -> EventType {
        self.kind.event_type()
    }

    /// Whether the syscall failed (a negative return value).
    pub fn failed(&self) -> bool {
        matches!(self.ret, Some(r) if r < 0)
    }
}

/// Who did it: the task's identity at the time of the event, read in the kernel,
/// plus what the process table adds (executable and command line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessCtx {
    /// Thread-group id (the "process id" as user space knows it), host view.
    pub pid: u32,
    /// Thread id, host view.
    pub tid: u32,
    /// Parent's thread-group id, host view.
    pub ppid: u32,
    /// Process id as seen inside its own pid namespace.
    pub vpid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// Login uid (`loginuid`); u32::MAX when unset.
    pub auid: u32,
    /// The task's name (at most 15 bytes from the kernel): stored inline,
    /// no allocation per event.
    pub comm: Comm,
    pub cgroup_id: u64,
    pub pid_ns: u32,
    pub mnt_ns: u32,
    /// Executable path, from the process table (shared with it: no copy per
    /// event).
    #[serde(skip_serializing_if = "str_is_empty", default)]
    pub exe: Arc<str>,
    /// Command line (argv joined by spaces), from the process table.
    #[serde(skip_serializing_if = "str_is_empty", default)]
    pub cmdline: Arc<str>,
    /// Names of the event's ids, resolved by the agent from the process's own
    /// `/etc/passwd` and `/etc/group` (the container's, not the host's). The
    /// container wrote those files: the names are untrusted text.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    /// Shared: one set per (container, uid, gid, login uid), not per event.
    pub users: Option<Arc<UserNames>>,
}

/// The names of a process's ids as its own (container's) passwd and group
/// files give them; `None` where the file has no entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNames {
    /// Name of the effective uid.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// Home directory of the effective uid.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub homedir: Option<String>,
    /// Shell of the effective uid.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shell: Option<String>,
    /// Name of the effective gid.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group: Option<String>,
    /// Name of the login uid.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub loginname: Option<String>,
}

/// What the agent reads about a process when it execs, besides the kernel's
/// record: carried on the exec event so that the process table (live, or
/// rebuilt by `replay` from a capture) keeps it for the process's later events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecDetails {
    /// Session id, host view (`/proc/<pid>/status` NSsid).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<u32>,
    /// Process group id, host view (NSpgid).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pgid: Option<u32>,
    /// Inheritable capabilities (CapInh).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cap_inheritable: Option<u64>,
    /// The environment (`/proc/<pid>/environ`, bounded), read only when a
    /// loaded rule uses `proc.env`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub env: Option<Vec<String>>,
    /// ctime of the executable's inode, ns since the epoch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exe_ctime_ns: Option<u64>,
    /// mtime of the executable's inode, ns since the epoch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exe_mtime_ns: Option<u64>,
}

/// Decoded `open` flags; the raw value is kept too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFlags {
    pub raw: u32,
    pub read: bool,
    pub write: bool,
    pub create: bool,
    pub truncate: bool,
}

impl OpenFlags {
    pub fn from_raw(raw: u32) -> Self {
        const O_ACCMODE: u32 = 0o3;
        const O_WRONLY: u32 = 0o1;
        const O_RDWR: u32 = 0o2;
        const O_CREAT: u32 = 0o100;
        const O_TRUNC: u32 = 0o1000;
        const O_TMPFILE: u32 = 0o20000000;
        let acc = raw & O_ACCMODE;
        OpenFlags {
            raw,
            read: acc != O_WRONLY,
            write: acc == O_WRONLY || acc == O_RDWR,
            // O_TMPFILE creates an unnamed file.
            create: raw & O_CREAT != 0 || raw & O_TMPFILE == O_TMPFILE,
            truncate: raw & O_TRUNC != 0,
        }
    }
}

/// What happened, with the arguments of that kind of event.
///
/// Paths are absolute as the process sees them (its own root, i.e. the container
/// view), resolved in the kernel where the syscall produced or used an fd, and
/// otherwise joined from the process's cwd or the dirfd's path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "args", rename_all = "snake_case")]
pub enum EventKind {
    Exec {
        /// The path passed to execve, as given.
        filename: String,
        /// The executable actually run, resolved from the opened file.
        exe: String,
        argv: Vec<String>,
        /// argv was longer than the capture bound and was cut.
        argv_truncated: bool,
        cwd: String,
        /// Controlling terminal name (e.g. `pts0`), if any.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        tty: Option<String>,
        cap_effective: u64,
        cap_permitted: u64,
        /// The executable was a memfd (fileless execution).
        exe_from_memfd: bool,
        /// The executable lives in the overlay upper (writable) layer; `None`
        /// when the filesystem cannot tell.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        exe_upper_layer: Option<bool>,
        /// What the agent read from `/proc` at exec (session, environment,
        /// executable times); `None` when it was not read.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        details: Option<Box<ExecDetails>>,
    },
    Fork {
        child_pid: u32,
        child_tid: u32,
        /// A new thread rather than a new process.
        thread: bool,
    },
    Exit {
        code: i32,
        /// Terminating signal number, 0 when the process exited normally.
        signal: i32,
        core_dumped: bool,
    },
    Open {
        path: String,
        flags: OpenFlags,
        mode: u32,
        /// The path as the process passed it (relative, `..` and all), when
        /// it differs from `path`.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        raw_path: Option<String>,
    },
    Unlink {
        path: String,
        /// AT_REMOVEDIR for rmdir-like calls.
        dir: bool,
    },
    Rename {
        old_path: String,
        new_path: String,
    },
    Link {
        old_path: String,
        new_path: String,
    },
    Symlink {
        target: String,
        link_path: String,
    },
    Mkdir {
        path: String,
        mode: u32,
    },
    Chmod {
        path: String,
        mode: u32,
    },
    Chown {
        path: String,
        /// u32::MAX (-1) means unchanged.
        uid: u32,
        gid: u32,
    },
    Mount {
        source: String,
        target: String,
        fstype: String,
        flags: u64,
    },
    Umount {
        target: String,
        flags: u32,
    },
    Socket {
        domain: u32,
        sock_type: u32,
        protocol: u32,
    },
    Connect {
        fd: i32,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        local: Option<SockAddr>,
        /// `None` when the address could not be read from the caller's memory.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        remote: Option<SockAddr>,
    },
    Accept {
        /// The listening socket; the accepted connection's fd is the event's `ret`.
        fd: i32,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        local: Option<SockAddr>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        remote: Option<SockAddr>,
    },
    Bind {
        fd: i32,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        addr: Option<SockAddr>,
    },
    Listen {
        fd: i32,
        backlog: i32,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        local: Option<SockAddr>,
    },
    /// setuid, setreuid, setresuid, setfsuid: the syscall and its id arguments
    /// (u32::MAX = unchanged).
    Setuid {
        syscall: String,
        ids: Vec<u32>,
    },
    Setgid {
        syscall: String,
        ids: Vec<u32>,
    },
    Capset {
        effective: u64,
        permitted: u64,
        inheritable: u64,
    },
    Ptrace {
        request: i64,
        target_pid: u32,
    },
    /// init_module or finit_module.
    ModuleLoad {
        syscall: String,
        /// The module file for finit_module.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        path: Option<String>,
    },
    Setns {
        fd: i32,
        /// The namespace file the fd refers to (e.g. `mnt:[4026531841]`).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        ns_path: Option<String>,
        nstype: u32,
    },
    Unshare {
        flags: u64,
    },
    MemfdCreate {
        name: String,
        flags: u32,
    },
    Bpf {
        cmd: u32,
    },
    /// A capability check (tracepoint capability/cap_capable).
    Capable {
        cap: u32,
        cap_name: String,
        granted: bool,
        /// The syscall (native number) the check happened in; `None` outside
        /// a syscall (e.g. a page fault).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        syscall_nr: Option<u32>,
    },
    /// The container's network policy (`rampart netpolicy`, isolation) denied
    /// something in the kernel: a connect or UDP send (the caller got EPERM, so
    /// the event's `ret` is -1), a bind, or packets (`ingress`/`egress`, no
    /// process context: pid 0). `evt.type` is `netdeny`.
    #[serde(rename = "netdeny")]
    NetDeny {
        /// connect, sendmsg, bind, ingress or egress.
        op: String,
        /// tcp, udp, icmp, ... or the IP protocol number.
        proto: String,
        /// The destination (connect, sendmsg, egress), the bind address, or the
        /// packet's source (ingress).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        addr: Option<SockAddr>,
        /// The policy entry that decided: `egress.deny[2]`, `egress.default`,
        /// `ingress.bind.deny_ports[0]`, `ingress.bind.default`, `isolated`.
        entry: String,
        /// The entry as written (`10.0.0.0/8 ports 22 tcp`), when known.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        entry_detail: Option<String>,
        /// Denials this event stands for: packet drops are reported at most once
        /// a second per container and direction, with the count since.
        count: u64,
    },
    /// A network flow of the container (see [`FlowRecord`]). `evt.type` is
    /// `flow`.
    Flow(FlowRecord),
    /// A DNS message a container sent or received (UDP or TCP port 53),
    /// copied in the kernel (first 512 bytes) and parsed, bounded, by the
    /// agent. No process context (pid 0). `evt.type` is `dns`. Names are in
    /// presentation form with every byte outside printable ASCII, `.` and
    /// `\` inside a label escaped (`\DDD`, `\.`): they come from the
    /// container and are untrusted text.
    Dns {
        /// udp or tcp.
        proto: String,
        /// out: the container sent it; in: it received it.
        direction: String,
        local: SockAddr,
        remote: SockAddr,
        /// The message id.
        id: u16,
        /// A response (QR set) rather than a query.
        response: bool,
        /// The (first) question's name.
        name: String,
        /// The question's type: A, AAAA, CNAME, TXT, ... or TYPEn.
        qtype: String,
        /// Responses: NOERROR, NXDOMAIN, SERVFAIL, ... or RCODEn.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        rcode: Option<String>,
        /// Answer records of the types rampart reads (A, AAAA, CNAME, PTR).
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        answers: Vec<DnsAnswer>,
        /// Not every record was read: the capture was cut at 512 bytes, the
        /// server set TC, or there were more than 32 answers.
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        incomplete: bool,
    },
    /// A container's traffic over the detection window (see [`NetWindow`]).
    Netstat(NetWindow),
}

/// A network flow of a container, counted in the kernel (bytes and packets
/// each way), seen from the container's own socket: `local` is the
/// container's end. No process context (pid 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// start, update (periodic, while it carries traffic) or end.
    pub phase: FlowPhase,
    /// tcp, udp, icmp, ... or the IP protocol number.
    pub proto: String,
    pub local: SockAddr,
    pub remote: SockAddr,
    /// IP bytes received and sent (IP and transport headers included).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Payload bytes received and sent: what the applications exchanged
    /// (TCP: new sequence space only, without retransmissions; UDP: the
    /// datagrams' payload).
    pub payload_in: u64,
    pub payload_out: u64,
    /// Packets (segments on the wire) received and sent.
    pub packets_in: u64,
    pub packets_out: u64,
    /// First packet, ns since the epoch.
    pub first_ns: u64,
    /// From the first to the latest packet, ns.
    pub duration_ns: u64,
    /// TCP: the socket's latest state (established, close, ...).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tcp_state: Option<String>,
    /// TCP segments retransmitted.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub retransmits: u32,
    /// Why an `end`: closed (TCP reached CLOSE) or idle.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub end_reason: Option<String>,
}

/// One answer record of a `dns` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsAnswer {
    /// The record's owner name (escaped like the question's).
    pub name: String,
    /// A, AAAA, CNAME or PTR.
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    /// The address (A, AAAA) or the target name (CNAME, PTR).
    pub data: String,
}

/// A container's traffic over the detection window (counted per container in
/// the kernel), reported when it crosses one of the agent's thresholds. No
/// process context (pid 0). `evt.type` is `netstat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetWindow {
    /// The window, s.
    pub window_s: u64,
    /// The detections whose thresholds this window crossed (port_scan,
    /// host_sweep, connect_failures, syn_flood_in, syn_flood_out, conn_flood,
    /// udp_flood_in, udp_flood_out, icmp_flood_in, icmp_flood_out,
    /// egress_volume, dns_query_flood, nxdomain).
    pub over: Vec<String>,
    /// Packets per second received and sent, all protocols, then by protocol.
    pub pps_in: u64,
    pub pps_out: u64,
    pub tcp_pps_in: u64,
    pub tcp_pps_out: u64,
    pub udp_pps_in: u64,
    pub udp_pps_out: u64,
    pub icmp_pps_in: u64,
    pub icmp_pps_out: u64,
    /// IP bytes per second received and sent.
    pub bytes_ps_in: u64,
    pub bytes_ps_out: u64,
    /// TCP SYNs (without ACK) per second received and sent.
    pub syn_ps_in: u64,
    pub syn_ps_out: u64,
    /// TCP resets per second sent (the answer to probes of closed ports).
    pub rst_ps_out: u64,
    /// Connections accepted per second (handshakes the container completed).
    pub accepted_ps: u64,
    /// SYNs received in the window minus handshakes completed: connections
    /// left half-open (or answered with a reset) by their initiator.
    pub half_open: u64,
    /// Connects that failed in the window (refused, reset, timed out).
    pub failed_connects: u64,
    /// Distinct destinations (remote address, port, protocol) and distinct
    /// remote hosts of connection attempts (TCP SYN, UDP, ICMP echo) in the
    /// window; estimates (linear counting over 1024 bits: ±3% below ~2000).
    pub dsts: u64,
    pub hosts: u64,
    /// DNS queries (UDP, to port 53) sent per second, and NXDOMAIN answers
    /// received in the window.
    #[serde(default)]
    pub dns_qps: u64,
    #[serde(default)]
    pub nxdomain: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where a flow event stands in the flow's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowPhase {
    Start,
    Update,
    End,
}

impl FlowPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowPhase::Start => "start",
            FlowPhase::Update => "update",
            FlowPhase::End => "end",
        }
    }
}

macro_rules! event_types {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// The kind of an event without its arguments: for filters and counters.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum EventType { $(#[serde(rename = $name)] $variant),* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),* }
            }
        }

        impl EventKind {
            pub fn event_type(&self) -> EventType {
                match self { $(EventKind::$variant { .. } => EventType::$variant),* }
            }
        }
    };
}

event_types! {
    Exec => "exec", Fork => "fork", Exit => "exit", Open => "open", Unlink => "unlink",
    Rename => "rename", Link => "link", Symlink => "symlink", Mkdir => "mkdir",
    Chmod => "chmod", Chown => "chown", Mount => "mount", Umount => "umount",
    Socket => "socket", Connect => "connect", Accept => "accept", Bind => "bind",
    Listen => "listen", Setuid => "setuid", Setgid => "setgid", Capset => "capset",
    Ptrace => "ptrace", ModuleLoad => "module_load", Setns => "setns",
    Unshare => "unshare", MemfdCreate => "memfd_create", Bpf => "bpf",
    Capable => "capable", NetDeny => "netdeny", Flow => "flow", Dns => "dns",
    Netstat => "netstat",
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEventType(pub String);

impl fmt::Display for UnknownEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        write!(f, "unknown event type {:?} (known: {})", self.0, known.join(", "))
    }
}

impl std::error::Error for UnknownEventType {}

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_decode() {
        let f = OpenFlags::from_raw(0o1 | 0o100 | 0o1000);
        assert!(f.write && f.create && f.truncate && !f.read);
        let f = OpenFlags::from_raw(0);
        assert!(f.read && !f.write && !f.create);
        let f = OpenFlags::from_raw(0o2);
        assert!(f.read && f.write);
    }

    #[test]
    fn event_type_round_trip() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), *t);
        }
        assert!("nope".parse::<EventType>().is_err());
    }

    #[test]
    fn event_type_serde_names_are_the_type_names() {
        for t in EventType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }

    #[test]
    fn netdeny_json_shape() {
        let ev = Event {
            ts_ns: 1,
            process: ProcessCtx { pid: 7, comm: "curl".into(), ..Default::default() },
            container: None,
            ret: Some(-1),
            syscall: Some("netdeny".into()),
            kind: EventKind::NetDeny {
                op: "connect".into(),
                proto: "tcp".into(),
                addr: Some(SockAddr::Inet { ip: "10.1.2.3".parse().unwrap(), port: 22 }),
                entry: "egress.deny[0]".into(),
                entry_detail: Some("10.0.0.0/8".into()),
                count: 1,
            },
        };
        assert_eq!(ev.event_type().as_str(), "netdeny");
        let v: serde_json::Value = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["type"], "netdeny");
        assert_eq!(v["args"]["op"], "connect");
        assert_eq!(v["args"]["addr"]["port"], 22);
        assert_eq!(v["args"]["entry"], "egress.deny[0]");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn json_shape_is_flat_with_type_and_args() {
        let ev = Event {
            ts_ns: 1,
            process: ProcessCtx { pid: 7, comm: "sh".into(), ..Default::default() },
            container: None,
            ret: Some(3),
            syscall: Some("openat".into()),
            kind: EventKind::Open {
                path: "/etc/passwd".into(),
                flags: OpenFlags::from_raw(0),
                mode: 0,
                raw_path: None,
            },
        };
        let v: serde_json::Value = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["type"], "open");
        assert_eq!(v["args"]["path"], "/etc/passwd");
        assert_eq!(v["process"]["pid"], 7);
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, ev);
    }
}

fn str_is_empty(s: &Arc<str>) -> bool {
    s.is_empty()
}
