//! Raw ring-buffer record -> [`model::Event`]. Pure and total: any bytes give
//! either an event or a [`DecodeError`], never a panic; strings are bounded by
//! the record and decoded as lossy UTF-8.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use model::{Event, EventKind, OpenFlags, ProcessCtx, SockAddr};

use crate::abi::{self, ev, evf, execf, sid, HDR_LEN, ITEM_LEN};
use crate::paths::join_path;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than its {need}-byte header")]
    Short { len: usize, need: usize },
    #[error("record size field {size} does not fit the {len} bytes received")]
    BadSize { size: u32, len: usize },
    #[error("body of {body_len} bytes is too short for event type {event_type} (needs {need})")]
    ShortBody { event_type: u32, body_len: u32, need: usize },
    #[error("unknown event type {0}")]
    UnknownType(u32),
    #[error("string item at offset {offset} runs past the record end {end}")]
    BadString { offset: usize, end: usize },
}

const AT_REMOVEDIR: u64 = 0x200;
const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const O_CREAT_WRONLY_TRUNC: u32 = 0o1101;
/// String item ids are < 16 (enum str_id).
const MAX_ITEMS: usize = 16;

/// Converts kernel boot-time timestamps to wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    /// wall clock minus boot clock, in ns.
    boot_to_wall_ns: i128,
}

#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    kind: u8,
    flags: u8,
    bytes: &'a [u8],
}

impl Item<'_> {
    fn truncated(&self) -> bool {
        self.flags & abi::STRF_TRUNC != 0
    }

    /// The item as text: raw bytes up to the first NUL, or a walked path
    /// (components leaf first) turned into an absolute path.
    fn text(&self) -> String {
        if self.kind == abi::STR_KIND_WALK {
            // One allocation, the components written root first (this runs
            // for nearly every event).
            let mut out = String::with_capacity(self.bytes.len() + 4);
            if self.truncated() {
                // the walk hit its depth bound: the leading part is unknown, so
                // do not present it as an absolute path
                out.push_str("...");
            }
            let mut any = false;
            for c in self.bytes.split(|b| *b == 0).filter(|c| !c.is_empty()).rev() {
                out.push('/');
                out.push_str(&String::from_utf8_lossy(c));
                any = true;
            }
            if !any {
                out.push('/');
            }
            out
        } else {
            lossy_cstr(self.bytes)
        }
    }
}

struct Items<'a>([Option<Item<'a>>; MAX_ITEMS]);

impl<'a> Items<'a> {
    fn parse(area: &'a [u8], base_offset: usize) -> Result<Self, DecodeError> {
        let mut items = [None; MAX_ITEMS];
        let mut off = 0usize;
        while off < area.len() {
            let hdr: abi::str_item = abi::read(&area[off..])
                .ok_or(DecodeError::BadString { offset: base_offset + off, end: base_offset + area.len() })?;
            let start = off + ITEM_LEN;
            let end = start + hdr.len as usize;
            let bytes = area
                .get(start..end)
                .ok_or(DecodeError::BadString { offset: base_offset + off, end: base_offset + area.len() })?;
            if let Some(slot) = items.get_mut(hdr.id as usize) {
                *slot = Some(Item { kind: hdr.kind_flags & 0xf, flags: hdr.kind_flags >> 4, bytes });
            }
            off = end;
        }
        Ok(Items(items))
    }

    fn get(&self, id: u8) -> Option<&Item<'a>> {
        self.0.get(id as usize).and_then(|i| i.as_ref())
    }

    fn text(&self, id: u8) -> Option<String> {
        self.get(id).map(Item::text)
    }

    fn text_or_empty(&self, id: u8) -> String {
        self.text(id).unwrap_or_default()
    }

    /// A path argument joined with its base directory.
    fn path_arg(&self, arg: u8, base: u8) -> String {
        match self.text(arg) {
            Some(p) => join_path(self.text(base).as_deref(), &p),
            None => String::new(),
        }
    }
}

fn lossy_cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn comm_bytes(comm: &[i8; 16]) -> [u8; 16] {
    comm.map(|c| c as u8)
}

/// A task name from the kernel's 16 bytes: inline, no allocation.
fn comm(raw: &[i8; 16]) -> model::Comm {
    let bytes = comm_bytes(raw);
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    model::Comm::from_utf8_lossy(&bytes[..end])
}

/// A socket address read from a kernel `struct sock` (local or peer side).
fn skaddr(a: &abi::ev_skaddr) -> Option<SockAddr> {
    match a.family {
        0 | AF_UNIX => None,
        AF_INET => {
            let ip = Ipv4Addr::new(a.addr[0], a.addr[1], a.addr[2], a.addr[3]);
            Some(SockAddr::Inet { ip: IpAddr::V4(ip), port: a.port })
        }
        AF_INET6 => Some(SockAddr::Inet6 { ip: IpAddr::V6(Ipv6Addr::from(a.addr)), port: a.port }),
        f => Some(SockAddr::Other { number: f }),
    }
}

/// A sockaddr as the caller passed it (user memory, `len` valid bytes).
pub(crate) fn usockaddr(u: &abi::ev_usockaddr) -> Option<SockAddr> {
    let len = (u.len as usize).min(u.data.len());
    let d = &u.data[..len];
    if d.len() < 2 {
        return None;
    }
    let family = u16::from_ne_bytes([d[0], d[1]]);
    match family {
        AF_INET if d.len() >= 8 => Some(SockAddr::Inet {
            ip: IpAddr::V4(Ipv4Addr::new(d[4], d[5], d[6], d[7])),
            port: u16::from_be_bytes([d[2], d[3]]),
        }),
        AF_INET6 if d.len() >= 24 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&d[8..24]);
            Some(SockAddr::Inet6 {
                ip: IpAddr::V6(Ipv6Addr::from(ip)),
                port: u16::from_be_bytes([d[2], d[3]]),
            })
        }
        AF_UNIX => {
            let p = &d[2..];
            let path = match p.first() {
                None => String::new(),
                // abstract socket: leading NUL, shown as '@'
                Some(0) => {
                    let name = &p[1..];
                    let end = name.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                    format!("@{}", String::from_utf8_lossy(&name[..end]))
                }
                Some(_) => lossy_cstr(p),
            };
            Some(SockAddr::Unix { path })
        }
        f => Some(SockAddr::Other { number: f }),
    }
}

/// The `evt.type` name of a record type: its syscall's, by the name Falco
/// uses (`execve` for exec, `clone` for fork, `procexit` for exit), or
/// `capable` for capability checks; `None` for a number the ABI does not
/// define.
fn syscall_of(t: u32) -> Option<&'static str> {
    Some(match t {
        ev::EV_EXEC => "execve",
        ev::EV_FORK => "clone",
        ev::EV_EXIT => "procexit",
        ev::EV_OPEN => "open",
        ev::EV_OPENAT => "openat",
        ev::EV_OPENAT2 => "openat2",
        ev::EV_CREAT => "creat",
        ev::EV_UNLINK => "unlink",
        ev::EV_UNLINKAT => "unlinkat",
        ev::EV_RMDIR => "rmdir",
        ev::EV_RENAME => "rename",
        ev::EV_RENAMEAT => "renameat",
        ev::EV_RENAMEAT2 => "renameat2",
        ev::EV_LINK => "link",
        ev::EV_LINKAT => "linkat",
        ev::EV_SYMLINK => "symlink",
        ev::EV_SYMLINKAT => "symlinkat",
        ev::EV_MKDIR => "mkdir",
        ev::EV_MKDIRAT => "mkdirat",
        ev::EV_CHMOD => "chmod",
        ev::EV_FCHMOD => "fchmod",
        ev::EV_FCHMODAT => "fchmodat",
        ev::EV_FCHMODAT2 => "fchmodat2",
        ev::EV_CHOWN => "chown",
        ev::EV_LCHOWN => "lchown",
        ev::EV_FCHOWN => "fchown",
        ev::EV_FCHOWNAT => "fchownat",
        ev::EV_MOUNT => "mount",
        ev::EV_UMOUNT2 => "umount2",
        ev::EV_SOCKET => "socket",
        ev::EV_CONNECT => "connect",
        ev::EV_ACCEPT => "accept",
        ev::EV_ACCEPT4 => "accept4",
        ev::EV_BIND => "bind",
        ev::EV_LISTEN => "listen",
        ev::EV_SETUID => "setuid",
        ev::EV_SETGID => "setgid",
        ev::EV_SETREUID => "setreuid",
        ev::EV_SETREGID => "setregid",
        ev::EV_SETRESUID => "setresuid",
        ev::EV_SETRESGID => "setresgid",
        ev::EV_SETFSUID => "setfsuid",
        ev::EV_SETFSGID => "setfsgid",
        ev::EV_CAPSET => "capset",
        ev::EV_PTRACE => "ptrace",
        ev::EV_INIT_MODULE => "init_module",
        ev::EV_FINIT_MODULE => "finit_module",
        ev::EV_SETNS => "setns",
        ev::EV_UNSHARE => "unshare",
        ev::EV_MEMFD_CREATE => "memfd_create",
        ev::EV_BPF => "bpf",
        ev::EV_CAPABLE => "capable",
        _ => return None,
    })
}

/// The name of an event type the prefilter can skip: a syscall's (one the
/// syscall hooks report) or `capable` (capability checks); `None` for exec,
/// fork and exit, which the process table always reads.
pub(crate) fn syscall_event_name(t: u32) -> Option<&'static str> {
    match t {
        ev::EV_EXEC | ev::EV_FORK | ev::EV_EXIT => None,
        _ => syscall_of(t),
    }
}

/// A record type's name in metrics: its `evt.type` name, `unknown` for a
/// number the ABI does not define.
pub(crate) fn event_type_name(t: u32) -> &'static str {
    syscall_of(t).unwrap_or("unknown")
}

impl Decoder {
    /// A decoder for timestamps taken with `bpf_ktime_get_boot_ns`, given the
    /// offset wall clock minus boot clock (see [`Decoder::from_clocks`]).
    pub fn new(boot_to_wall_ns: i128) -> Self {
        Decoder { boot_to_wall_ns }
    }

    /// Reads CLOCK_REALTIME and CLOCK_BOOTTIME once to get the offset.
    pub fn from_clocks() -> Self {
        fn now(clock: libc::clockid_t) -> i128 {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: `ts` is a valid, writable timespec; clock_gettime only
            // writes to it.
            let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
            if rc != 0 {
                return 0;
            }
            ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
        }
        let boot = now(libc::CLOCK_BOOTTIME);
        let wall = now(libc::CLOCK_REALTIME);
        Decoder::new(wall - boot)
    }

    fn wall_ns(&self, boot_ns: u64) -> u64 {
        (boot_ns as i128 + self.boot_to_wall_ns).clamp(0, u64::MAX as i128) as u64
    }

    /// Decode one ring-buffer record.
    pub fn decode(&self, rec: &[u8]) -> Result<Event, DecodeError> {
        let h: abi::event_hdr = abi::read(rec).ok_or(DecodeError::Short { len: rec.len(), need: HDR_LEN })?;
        let size = h.size as usize;
        if size < HDR_LEN || size > rec.len() {
            return Err(DecodeError::BadSize { size: h.size, len: rec.len() });
        }
        let rec = &rec[..size];
        let body_end = HDR_LEN
            .checked_add(h.body_len as usize)
            .filter(|e| *e <= size)
            .ok_or(DecodeError::BadSize { size: h.size, len: rec.len() })?;
        let body = &rec[HDR_LEN..body_end];
        let items = Items::parse(&rec[body_end..], body_end)?;
        let ty = h.r#type;

        fn need<T: abi::Pod>(ty: u32, body: &[u8]) -> Result<T, DecodeError> {
            abi::read(body).ok_or(DecodeError::ShortBody {
                event_type: ty,
                body_len: body.len() as u32,
                need: std::mem::size_of::<T>(),
            })
        }

        let kind = match ty {
            ev::EV_EXEC => {
                let b: abi::ev_exec = need(ty, body)?;
                let (argv, argv_item_trunc) = match items.get(sid::STR_ARGV) {
                    Some(it) => {
                        let mut bytes = it.bytes;
                        if let Some(stripped) = bytes.strip_suffix(&[0]) {
                            bytes = stripped;
                        }
                        let argv: Vec<String> = if bytes.is_empty() {
                            Vec::new()
                        } else {
                            bytes
                                .split(|c| *c == 0)
                                .map(|a| String::from_utf8_lossy(a).into_owned())
                                .collect()
                        };
                        (argv, it.truncated())
                    }
                    None => (Vec::new(), false),
                };
                EventKind::Exec {
                    filename: items.text_or_empty(sid::STR_FILENAME),
                    exe: items.text_or_empty(sid::STR_EXE),
                    argv,
                    argv_truncated: b.flags & execf::ARGV_TRUNC != 0 || argv_item_trunc,
                    cwd: items.text_or_empty(sid::STR_CWD),
                    tty: items.text(sid::STR_TTY).filter(|t| !t.is_empty()),
                    cap_effective: b.cap_effective,
                    cap_permitted: b.cap_permitted,
                    exe_from_memfd: b.flags & execf::MEMFD != 0,
                    exe_upper_layer: (b.flags & execf::UPPER_KNOWN != 0)
                        .then_some(b.flags & execf::UPPER != 0),
                    details: Some(Box::new(exec_details(&b))),
                }
            }
            ev::EV_FORK => {
                let b: abi::ev_fork = need(ty, body)?;
                EventKind::Fork { child_pid: b.child_pid, child_tid: b.child_tid, thread: b.thread != 0 }
            }
            ev::EV_EXIT => {
                let b: abi::ev_exit = need(ty, body)?;
                let st = b.exit_code;
                EventKind::Exit { code: (st >> 8) & 0xff, signal: st & 0x7f, core_dumped: st & 0x80 != 0 }
            }
            ev::EV_CAPABLE => {
                let b: abi::ev_capable = need(ty, body)?;
                EventKind::Capable {
                    cap: b.cap,
                    cap_name: model::names::cap_name(b.cap),
                    granted: b.granted != 0,
                    syscall_nr: u32::try_from(b.syscall_nr).ok(),
                }
            }
            ev::EV_SOCKET..=ev::EV_LISTEN => {
                let n: abi::ev_net = need(ty, body)?;
                let a = n.sys.args;
                match ty {
                    ev::EV_SOCKET => EventKind::Socket {
                        domain: a[0] as u32,
                        sock_type: a[1] as u32,
                        protocol: a[2] as u32,
                    },
                    ev::EV_CONNECT => EventKind::Connect {
                        fd: a[0] as i32,
                        local: skaddr(&n.local),
                        remote: usockaddr(&n.user),
                    },
                    ev::EV_ACCEPT | ev::EV_ACCEPT4 => EventKind::Accept {
                        fd: a[0] as i32,
                        local: skaddr(&n.local),
                        remote: skaddr(&n.peer),
                    },
                    ev::EV_BIND => EventKind::Bind {
                        fd: a[0] as i32,
                        addr: usockaddr(&n.user).or_else(|| skaddr(&n.local)),
                    },
                    ev::EV_LISTEN => {
                        EventKind::Listen { fd: a[0] as i32, backlog: a[1] as i32, local: skaddr(&n.local) }
                    }
                    t => return Err(DecodeError::UnknownType(t)),
                }
            }
            _ => {
                let s: abi::ev_sys = need(ty, body)?;
                self.sys_kind(ty, &s, &items)?
            }
        };

        let process = ProcessCtx {
            pid: h.pid,
            tid: h.tid,
            ppid: h.ppid,
            vpid: h.vpid,
            uid: h.uid,
            gid: h.gid,
            euid: h.euid,
            egid: h.egid,
            auid: h.loginuid,
            comm: comm(&h.comm),
            cgroup_id: h.cgroup_id,
            pid_ns: h.pid_ns,
            mnt_ns: h.mnt_ns,
            exe: std::sync::Arc::default(),
            cmdline: std::sync::Arc::default(),
            users: None,
        };
        Ok(Event {
            ts_ns: self.wall_ns(h.ts_boot_ns),
            process,
            container: None,
            ret: (h.flags & evf::HAS_RET != 0).then_some(h.ret),
            syscall: syscall_of(ty).map(Cow::Borrowed),
            kind,
        })
    }

    fn sys_kind(&self, ty: u32, s: &abi::ev_sys, it: &Items<'_>) -> Result<EventKind, DecodeError> {
        let a = s.args;
        let arg0 = || it.path_arg(sid::STR_ARG0, sid::STR_BASE0);
        let arg1 = || it.path_arg(sid::STR_ARG1, sid::STR_BASE1);
        let fd_path = || it.text(sid::STR_FDPATH);
        Ok(match ty {
            ev::EV_OPEN | ev::EV_OPENAT | ev::EV_OPENAT2 | ev::EV_CREAT => {
                let (flags, mode) = match ty {
                    ev::EV_OPEN => (a[1], a[2]),
                    ev::EV_OPENAT => (a[2], a[3]),
                    ev::EV_OPENAT2 => (s.extra[0], s.extra[1]),
                    _ => (O_CREAT_WRONLY_TRUNC as u64, a[1]),
                };
                let path = fd_path().unwrap_or_else(arg0);
                // The path as passed (Falco's fd.nameraw); kept when it
                // differs from the resolved one.
                let raw_path = it.text(sid::STR_ARG0).filter(|r| *r != path);
                EventKind::Open {
                    path,
                    flags: OpenFlags::from_raw(flags as u32),
                    mode: mode as u32,
                    raw_path,
                }
            }
            ev::EV_UNLINK => EventKind::Unlink { path: arg0(), dir: false },
            ev::EV_RMDIR => EventKind::Unlink { path: arg0(), dir: true },
            ev::EV_UNLINKAT => EventKind::Unlink { path: arg0(), dir: a[2] & AT_REMOVEDIR != 0 },
            ev::EV_RENAME | ev::EV_RENAMEAT | ev::EV_RENAMEAT2 => {
                EventKind::Rename { old_path: arg0(), new_path: arg1() }
            }
            ev::EV_LINK | ev::EV_LINKAT => EventKind::Link { old_path: arg0(), new_path: arg1() },
            ev::EV_SYMLINK | ev::EV_SYMLINKAT => {
                EventKind::Symlink { target: it.text_or_empty(sid::STR_EXTRA), link_path: arg1() }
            }
            ev::EV_MKDIR => EventKind::Mkdir { path: arg0(), mode: a[1] as u32 },
            ev::EV_MKDIRAT => EventKind::Mkdir { path: arg0(), mode: a[2] as u32 },
            ev::EV_CHMOD => EventKind::Chmod { path: arg0(), mode: a[1] as u32 },
            ev::EV_FCHMOD => EventKind::Chmod { path: fd_path().unwrap_or_default(), mode: a[1] as u32 },
            ev::EV_FCHMODAT | ev::EV_FCHMODAT2 => EventKind::Chmod { path: arg0(), mode: a[2] as u32 },
            ev::EV_CHOWN | ev::EV_LCHOWN => {
                EventKind::Chown { path: arg0(), uid: a[1] as u32, gid: a[2] as u32 }
            }
            ev::EV_FCHOWN => {
                EventKind::Chown { path: fd_path().unwrap_or_default(), uid: a[1] as u32, gid: a[2] as u32 }
            }
            ev::EV_FCHOWNAT => EventKind::Chown { path: arg0(), uid: a[2] as u32, gid: a[3] as u32 },
            ev::EV_MOUNT => EventKind::Mount {
                source: it.text_or_empty(sid::STR_SOURCE),
                target: arg0(),
                fstype: it.text_or_empty(sid::STR_EXTRA),
                flags: a[3],
            },
            ev::EV_UMOUNT2 => EventKind::Umount { target: arg0(), flags: a[1] as u32 },
            ev::EV_SETUID | ev::EV_SETFSUID => {
                EventKind::Setuid { syscall: event_type_name(ty).into(), ids: vec![a[0] as u32] }
            }
            ev::EV_SETREUID => {
                EventKind::Setuid { syscall: event_type_name(ty).into(), ids: vec![a[0] as u32, a[1] as u32] }
            }
            ev::EV_SETRESUID => EventKind::Setuid {
                syscall: event_type_name(ty).into(),
                ids: vec![a[0] as u32, a[1] as u32, a[2] as u32],
            },
            ev::EV_SETGID | ev::EV_SETFSGID => {
                EventKind::Setgid { syscall: event_type_name(ty).into(), ids: vec![a[0] as u32] }
            }
            ev::EV_SETREGID => {
                EventKind::Setgid { syscall: event_type_name(ty).into(), ids: vec![a[0] as u32, a[1] as u32] }
            }
            ev::EV_SETRESGID => EventKind::Setgid {
                syscall: event_type_name(ty).into(),
                ids: vec![a[0] as u32, a[1] as u32, a[2] as u32],
            },
            ev::EV_CAPSET => {
                EventKind::Capset { effective: s.extra[0], permitted: s.extra[1], inheritable: s.extra[2] }
            }
            ev::EV_PTRACE => EventKind::Ptrace { request: a[0] as i64, target_pid: a[1] as u32 },
            ev::EV_INIT_MODULE => EventKind::ModuleLoad { syscall: event_type_name(ty).into(), path: None },
            ev::EV_FINIT_MODULE => {
                EventKind::ModuleLoad { syscall: event_type_name(ty).into(), path: fd_path() }
            }
            ev::EV_SETNS => EventKind::Setns {
                fd: a[0] as i32,
                ns_path: it
                    .text(sid::STR_EXTRA)
                    .filter(|n| !n.is_empty())
                    .map(|n| format!("{n}:[{}]", s.extra[0])),
                nstype: a[1] as u32,
            },
            ev::EV_UNSHARE => EventKind::Unshare { flags: a[0] },
            ev::EV_MEMFD_CREATE => {
                EventKind::MemfdCreate { name: it.text_or_empty(sid::STR_EXTRA), flags: a[1] as u32 }
            }
            ev::EV_BPF => EventKind::Bpf { cmd: a[0] as u32 },
            t => return Err(DecodeError::UnknownType(t)),
        })
    }
}

/// Whether the record was flagged as having lost string data (for counters).
pub fn record_truncated(rec: &[u8]) -> bool {
    abi::read::<abi::event_hdr>(rec).is_some_and(|h| h.flags & evf::STR_TRUNC != 0)
}

/// The kill trigger's id when the kernel killed the process in this record's
/// syscall (`EVF_KILLED`).
pub fn record_killed(rec: &[u8]) -> Option<u32> {
    abi::read::<abi::event_hdr>(rec).filter(|h| h.flags & evf::KILLED != 0).map(|h| h.kill_trigger)
}

/// What the exec record carries for Falco's process fields (session, group,
/// inheritable capabilities, the executable's inode times). The environment
/// is not in it: the agent reads that only when a rule needs it.
fn exec_details(b: &abi::ev_exec) -> model::ExecDetails {
    let times = b.flags & execf::EXE_TIMES != 0;
    model::ExecDetails {
        // 0: the leader is gone from the initial pid namespace's view
        sid: (b.sid != 0).then_some(b.sid),
        pgid: (b.pgid != 0).then_some(b.pgid),
        cap_inheritable: Some(b.cap_inheritable),
        env: None,
        exe_ctime_ns: (times && b.exe_ctime_ns != 0).then_some(b.exe_ctime_ns),
        exe_mtime_ns: (times && b.exe_mtime_ns != 0).then_some(b.exe_mtime_ns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{bytes_of, event_hdr, str_item, Pod};

    /// Replay shares the syscall names it knows instead of allocating them.
    #[test]
    fn every_syscall_name_is_one_the_model_shares() {
        for t in 0..=crate::abi::EV_TYPE_MAX {
            if let Some(name) = syscall_of(t) {
                assert!(
                    model::names::SYSCALL_NAMES.contains(&name),
                    "{name} missing from model::names::SYSCALL_NAMES"
                );
            }
        }
    }

    /// Builds records the way the BPF side does.
    struct Rec {
        hdr: event_hdr,
        body: Vec<u8>,
        strs: Vec<u8>,
    }

    impl Rec {
        fn new<B: Pod>(ty: u32, body: &B) -> Self {
            let mut hdr = event_hdr {
                r#type: ty,
                ts_boot_ns: 1_000,
                pid: 42,
                tid: 43,
                ppid: 1,
                vpid: 7,
                uid: 1000,
                euid: 0,
                loginuid: u32::MAX,
                cgroup_id: 99,
                pid_ns: 4026531836,
                mnt_ns: 4026532000,
                ..Default::default()
            };
            for (i, c) in b"sh".iter().enumerate() {
                hdr.comm[i] = *c as i8;
            }
            let body = bytes_of(body);
            hdr.body_len = body.len() as u32;
            Rec { hdr, body, strs: Vec::new() }
        }

        fn ret(mut self, r: i64) -> Self {
            self.hdr.ret = r;
            self.hdr.flags |= evf::HAS_RET;
            self
        }

        fn item(mut self, id: u8, kind: u8, flags: u8, bytes: &[u8]) -> Self {
            let it = str_item { len: bytes.len() as u16, id, kind_flags: kind | (flags << 4) };
            self.strs.extend(bytes_of(&it));
            self.strs.extend_from_slice(bytes);
            self
        }

        fn raw(self, id: u8, s: &str) -> Self {
            let mut b = s.as_bytes().to_vec();
            b.push(0);
            self.item(id, abi::STR_KIND_RAW, 0, &b)
        }

        /// `path` given root first; stored leaf first like the kernel walk.
        fn walk(self, id: u8, path: &str) -> Self {
            let mut b = Vec::new();
            for comp in path.split('/').filter(|c| !c.is_empty()).rev() {
                b.extend_from_slice(comp.as_bytes());
                b.push(0);
            }
            self.item(id, abi::STR_KIND_WALK, 0, &b)
        }

        fn bytes(mut self) -> Vec<u8> {
            self.hdr.size = (HDR_LEN + self.body.len() + self.strs.len()) as u32;
            let mut v = bytes_of(&self.hdr);
            v.extend(self.body);
            v.extend(self.strs);
            v
        }
    }

    fn sys(args: [u64; 6]) -> abi::ev_sys {
        abi::ev_sys { args, ..Default::default() }
    }

    fn dec() -> Decoder {
        Decoder::new(1_700_000_000_000_000_000)
    }

    #[test]
    fn header_fields_and_wall_clock() {
        let rec = Rec::new(ev::EV_UNSHARE, &sys([0x20000, 0, 0, 0, 0, 0])).ret(0).bytes();
        let e = dec().decode(&rec).unwrap();
        assert_eq!(e.ts_ns, 1_700_000_000_000_001_000);
        assert_eq!(e.process.pid, 42);
        assert_eq!(e.process.tid, 43);
        assert_eq!(e.process.vpid, 7);
        assert_eq!(e.process.uid, 1000);
        assert_eq!(e.process.auid, u32::MAX);
        assert_eq!(e.process.comm, "sh");
        assert_eq!(e.process.cgroup_id, 99);
        assert_eq!(e.process.mnt_ns, 4026532000);
        assert!(e.container.is_none());
        assert_eq!(e.ret, Some(0));
        assert_eq!(e.kind, EventKind::Unshare { flags: 0x20000 });
    }

    #[test]
    fn exec_event() {
        let b = abi::ev_exec {
            cap_effective: 0x1ff,
            cap_permitted: 0x3ff,
            cap_inheritable: 0x4,
            exe_ctime_ns: 1_700_000_000_000_000_001,
            exe_mtime_ns: 1_600_000_000_000_000_002,
            sid: 41,
            pgid: 42,
            flags: execf::UPPER_KNOWN | execf::UPPER | execf::EXE_TIMES,
            _pad: 0,
        };
        let rec = Rec::new(ev::EV_EXEC, &b)
            .raw(sid::STR_FILENAME, "./run.sh")
            .walk(sid::STR_EXE, "/usr/bin/dash")
            .item(sid::STR_ARGV, abi::STR_KIND_RAW, 0, b"sh\0-c\0echo hi\0")
            .walk(sid::STR_CWD, "/")
            .raw(sid::STR_TTY, "pts0")
            .bytes();
        let e = dec().decode(&rec).unwrap();
        assert_eq!(e.ret, None);
        match e.kind {
            EventKind::Exec {
                filename,
                exe,
                argv,
                argv_truncated,
                cwd,
                tty,
                cap_effective,
                exe_upper_layer,
                exe_from_memfd,
                details,
                ..
            } => {
                assert_eq!(filename, "./run.sh");
                assert_eq!(exe, "/usr/bin/dash");
                assert_eq!(argv, vec!["sh", "-c", "echo hi"]);
                assert!(!argv_truncated);
                assert_eq!(cwd, "/");
                assert_eq!(tty.as_deref(), Some("pts0"));
                assert_eq!(cap_effective, 0x1ff);
                assert_eq!(exe_upper_layer, Some(true));
                assert!(!exe_from_memfd);
                let d = details.expect("the record's process details");
                assert_eq!((d.sid, d.pgid, d.cap_inheritable), (Some(41), Some(42), Some(0x4)));
                assert_eq!(d.exe_ctime_ns, Some(1_700_000_000_000_000_001));
                assert_eq!(d.exe_mtime_ns, Some(1_600_000_000_000_000_002));
                assert_eq!(d.env, None);
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn exec_truncated_argv_and_unknown_layer() {
        let b =
            abi::ev_exec { flags: execf::ARGV_TRUNC | execf::MEMFD, exe_ctime_ns: 5, ..Default::default() };
        let rec = Rec::new(ev::EV_EXEC, &b)
            .item(sid::STR_ARGV, abi::STR_KIND_RAW, abi::STRF_TRUNC, b"a\0bb")
            .bytes();
        match dec().decode(&rec).unwrap().kind {
            EventKind::Exec {
                argv, argv_truncated, exe_upper_layer, exe_from_memfd, tty, details, ..
            } => {
                // times without EXECF_EXE_TIMES (an unknown inode layout): none
                assert_eq!(details.unwrap().exe_ctime_ns, None);
                assert_eq!(argv, vec!["a", "bb"]);
                assert!(argv_truncated);
                assert_eq!(exe_upper_layer, None);
                assert!(exe_from_memfd);
                assert_eq!(tty, None);
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn open_keeps_the_raw_path_when_it_differs() {
        let base = || {
            Rec::new(ev::EV_OPENAT, &sys([(-100i64) as u64, 0, 0, 0, 0, 0]))
                .ret(3)
                .walk(sid::STR_FDPATH, "/etc/hostname")
        };
        let e = dec().decode(&base().raw(sid::STR_ARG0, "../etc/./hostname").bytes()).unwrap();
        match e.kind {
            EventKind::Open { path, raw_path, .. } => {
                assert_eq!((path.as_str(), raw_path.as_deref()), ("/etc/hostname", Some("../etc/./hostname")))
            }
            k => panic!("{k:?}"),
        }
        let e = dec().decode(&base().raw(sid::STR_ARG0, "/etc/hostname").bytes()).unwrap();
        assert!(matches!(e.kind, EventKind::Open { raw_path: None, .. }), "same as the path: not repeated");
        let e = dec().decode(&base().bytes()).unwrap();
        assert!(
            matches!(e.kind, EventKind::Open { raw_path: None, ref path, .. } if path == "/etc/hostname")
        );
    }

    #[test]
    fn open_resolved_from_fd() {
        let rec = Rec::new(ev::EV_OPENAT, &sys([(-100i64) as u64, 0, 0o1101, 0o644, 0, 0]))
            .ret(3)
            .walk(sid::STR_FDPATH, "/tmp/x")
            .bytes();
        let e = dec().decode(&rec).unwrap();
        assert_eq!(e.ret, Some(3));
        match e.kind {
            EventKind::Open { path, flags, mode, .. } => {
                assert_eq!(path, "/tmp/x");
                assert!(flags.write && flags.create && flags.truncate);
                assert_eq!(mode, 0o644);
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn failed_open_joins_relative_path_with_cwd() {
        let rec = Rec::new(ev::EV_OPEN, &sys([0, 0, 0, 0, 0, 0]))
            .ret(-2)
            .raw(sid::STR_ARG0, "../etc/./shadow")
            .walk(sid::STR_BASE0, "/var/tmp")
            .bytes();
        let e = dec().decode(&rec).unwrap();
        assert!(e.failed());
        assert!(matches!(e.kind, EventKind::Open { ref path, .. } if path == "/var/etc/shadow"));
        assert!(
            matches!(e.kind, EventKind::Open { raw_path: Some(ref r), .. } if r == "../etc/./shadow"),
            "the path as passed is kept for fd.nameraw"
        );
    }

    #[test]
    fn creat_flags_and_openat2_how() {
        let rec =
            Rec::new(ev::EV_CREAT, &sys([0, 0o600, 0, 0, 0, 0])).ret(4).walk(sid::STR_FDPATH, "/a").bytes();
        match dec().decode(&rec).unwrap().kind {
            EventKind::Open { flags, mode, .. } => {
                assert!(flags.create && flags.write && flags.truncate);
                assert_eq!(mode, 0o600);
            }
            k => panic!("{k:?}"),
        }
        let mut s = sys([0; 6]);
        s.extra = [0o2 | 0o100, 0o755, 0];
        let rec = Rec::new(ev::EV_OPENAT2, &s).ret(5).walk(sid::STR_FDPATH, "/b").bytes();
        match dec().decode(&rec).unwrap().kind {
            EventKind::Open { flags, mode, .. } => {
                assert!(flags.read && flags.write && flags.create);
                assert_eq!(mode, 0o755);
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn rename_symlink_unlinkat_mount() {
        let rec = Rec::new(ev::EV_RENAMEAT2, &sys([5, 0, 6, 0, 0, 0]))
            .ret(0)
            .raw(sid::STR_ARG0, "a")
            .walk(sid::STR_BASE0, "/d1")
            .raw(sid::STR_ARG1, "/abs/b")
            .bytes();
        assert_eq!(
            dec().decode(&rec).unwrap().kind,
            EventKind::Rename { old_path: "/d1/a".into(), new_path: "/abs/b".into() }
        );

        let rec = Rec::new(ev::EV_SYMLINKAT, &sys([0; 6]))
            .ret(0)
            .raw(sid::STR_EXTRA, "../target")
            .raw(sid::STR_ARG1, "lnk")
            .walk(sid::STR_BASE1, "/w")
            .bytes();
        assert_eq!(
            dec().decode(&rec).unwrap().kind,
            EventKind::Symlink { target: "../target".into(), link_path: "/w/lnk".into() }
        );

        let rec =
            Rec::new(ev::EV_UNLINKAT, &sys([0, 0, 0x200, 0, 0, 0])).ret(0).raw(sid::STR_ARG0, "/x/y").bytes();
        assert_eq!(dec().decode(&rec).unwrap().kind, EventKind::Unlink { path: "/x/y".into(), dir: true });

        let rec = Rec::new(ev::EV_MOUNT, &sys([0, 0, 0, 0x1000, 0, 0]))
            .ret(0)
            .raw(sid::STR_SOURCE, "proc")
            .raw(sid::STR_ARG0, "/mnt/p")
            .raw(sid::STR_EXTRA, "proc")
            .bytes();
        assert_eq!(
            dec().decode(&rec).unwrap().kind,
            EventKind::Mount {
                source: "proc".into(),
                target: "/mnt/p".into(),
                fstype: "proc".into(),
                flags: 0x1000
            }
        );
    }

    #[test]
    fn chown_fd_and_setns_and_ids() {
        let rec = Rec::new(ev::EV_FCHOWN, &sys([3, 0, u32::MAX as u64, 0, 0, 0]))
            .ret(0)
            .walk(sid::STR_FDPATH, "/etc/x")
            .bytes();
        assert_eq!(
            dec().decode(&rec).unwrap().kind,
            EventKind::Chown { path: "/etc/x".into(), uid: 0, gid: u32::MAX }
        );

        let mut s = sys([7, 0x20000, 0, 0, 0, 0]);
        s.extra[0] = 4026531841;
        let rec = Rec::new(ev::EV_SETNS, &s).ret(0).raw(sid::STR_EXTRA, "mnt").bytes();
        assert_eq!(
            dec().decode(&rec).unwrap().kind,
            EventKind::Setns { fd: 7, ns_path: Some("mnt:[4026531841]".into()), nstype: 0x20000 }
        );

        let rec = Rec::new(ev::EV_SETRESUID, &sys([0, 0, u32::MAX as u64, 0, 0, 0])).ret(-1).bytes();
        assert_eq!(
            dec().decode(&rec).unwrap().kind,
            EventKind::Setuid { syscall: "setresuid".into(), ids: vec![0, 0, u32::MAX] }
        );

        let mut s = sys([0; 6]);
        s.extra = [0x1_0000_0001, 0x3, 0];
        let rec = Rec::new(ev::EV_CAPSET, &s).ret(0).bytes();
        assert_eq!(
            dec().decode(&rec).unwrap().kind,
            EventKind::Capset { effective: 0x1_0000_0001, permitted: 3, inheritable: 0 }
        );
    }

    fn net(args: [u64; 6]) -> abi::ev_net {
        abi::ev_net { sys: sys(args), ..Default::default() }
    }

    #[test]
    fn connect_inet_and_accept() {
        let mut n = net([3, 0, 16, 0, 0, 0]);
        n.user.len = 16;
        n.user.data[..8].copy_from_slice(&[2, 0, 0x1f, 0x90, 10, 0, 0, 1]);
        n.local = abi::ev_skaddr {
            family: 2,
            port: 40000,
            addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ..Default::default()
        };
        let rec = Rec::new(ev::EV_CONNECT, &n).ret(-115).bytes();
        let e = dec().decode(&rec).unwrap();
        assert_eq!(e.ret, Some(-115));
        assert_eq!(
            e.kind,
            EventKind::Connect {
                fd: 3,
                local: Some(SockAddr::Inet { ip: "127.0.0.1".parse().unwrap(), port: 40000 }),
                remote: Some(SockAddr::Inet { ip: "10.0.0.1".parse().unwrap(), port: 8080 }),
            }
        );

        let mut n = net([4, 0, 0, 0, 0, 0]);
        n.local = abi::ev_skaddr {
            family: 10,
            port: 443,
            addr: Ipv6Addr::LOCALHOST.octets(),
            ..Default::default()
        };
        n.peer = abi::ev_skaddr {
            family: 10,
            port: 5555,
            addr: Ipv6Addr::LOCALHOST.octets(),
            ..Default::default()
        };
        let rec = Rec::new(ev::EV_ACCEPT4, &n).ret(5).bytes();
        assert_eq!(
            dec().decode(&rec).unwrap().kind,
            EventKind::Accept {
                fd: 4,
                local: Some(SockAddr::Inet6 { ip: "::1".parse().unwrap(), port: 443 }),
                remote: Some(SockAddr::Inet6 { ip: "::1".parse().unwrap(), port: 5555 }),
            }
        );
    }

    #[test]
    fn unix_sockaddrs() {
        let mut u = abi::ev_usockaddr::default();
        let p = b"\x01\x00/run/docker.sock\x00";
        u.data[..p.len()].copy_from_slice(p);
        u.len = p.len() as u32;
        assert_eq!(usockaddr(&u), Some(SockAddr::Unix { path: "/run/docker.sock".into() }));
        let mut u = abi::ev_usockaddr::default();
        let p = b"\x01\x00\x00abstract";
        u.data[..p.len()].copy_from_slice(p);
        u.len = p.len() as u32;
        assert_eq!(usockaddr(&u), Some(SockAddr::Unix { path: "@abstract".into() }));
        u.len = 1;
        assert_eq!(usockaddr(&u), None);
        u.len = 10_000; // bigger than the buffer: clamped, no panic
        assert!(usockaddr(&u).is_some());
    }

    #[test]
    fn fork_exit_capable() {
        let rec =
            Rec::new(ev::EV_FORK, &abi::ev_fork { child_pid: 50, child_tid: 51, thread: 1, _pad: 0 }).bytes();
        assert_eq!(
            dec().decode(&rec).unwrap().kind,
            EventKind::Fork { child_pid: 50, child_tid: 51, thread: true }
        );
        // killed by SIGSEGV with core
        let rec = Rec::new(ev::EV_EXIT, &abi::ev_exit { exit_code: 0x8b, _pad: 0 }).bytes();
        assert_eq!(
            dec().decode(&rec).unwrap().kind,
            EventKind::Exit { code: 0, signal: 11, core_dumped: true }
        );
        let rec = Rec::new(ev::EV_EXIT, &abi::ev_exit { exit_code: 3 << 8, _pad: 0 }).bytes();
        assert_eq!(
            dec().decode(&rec).unwrap().kind,
            EventKind::Exit { code: 3, signal: 0, core_dumped: false }
        );
        let rec = Rec::new(ev::EV_CAPABLE, &abi::ev_capable { cap: 21, granted: 0, syscall_nr: 9, _pad: 0 })
            .bytes();
        assert_eq!(
            dec().decode(&rec).unwrap().kind,
            EventKind::Capable {
                cap: 21,
                cap_name: "CAP_SYS_ADMIN".into(),
                granted: false,
                syscall_nr: Some(9)
            }
        );
    }

    #[test]
    fn hostile_bytes_in_paths_are_lossy() {
        let rec = Rec::new(ev::EV_MKDIR, &sys([0, 0o700, 0, 0, 0, 0]))
            .ret(0)
            .item(sid::STR_ARG0, abi::STR_KIND_RAW, 0, b"/tmp/\xff\xfe\n")
            .bytes();
        match dec().decode(&rec).unwrap().kind {
            EventKind::Mkdir { path, mode } => {
                assert_eq!(path, "/tmp/\u{fffd}\u{fffd}\n");
                assert_eq!(mode, 0o700);
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn truncated_walk_is_not_absolute() {
        let rec = Rec::new(ev::EV_OPEN, &sys([0; 6]))
            .ret(3)
            .item(sid::STR_FDPATH, abi::STR_KIND_WALK, abi::STRF_TRUNC, b"leaf\0mid\0")
            .bytes();
        assert!(
            matches!(dec().decode(&rec).unwrap().kind, EventKind::Open { ref path, .. } if path == ".../mid/leaf")
        );
    }

    #[test]
    fn bad_records_are_errors() {
        let d = dec();
        assert!(matches!(d.decode(&[]), Err(DecodeError::Short { .. })));
        assert!(matches!(d.decode(&[0u8; 50]), Err(DecodeError::Short { .. })));
        let good = Rec::new(ev::EV_OPEN, &sys([0; 6])).ret(3).walk(sid::STR_FDPATH, "/a/b").bytes();
        // size field larger than the record
        let mut bad = good.clone();
        bad.truncate(good.len() - 1);
        assert!(matches!(d.decode(&bad), Err(DecodeError::BadSize { .. })));
        // item length runs past the end
        let mut bad = good.clone();
        let item_at = HDR_LEN + std::mem::size_of::<abi::ev_sys>();
        bad[item_at] = 0xff;
        assert!(matches!(d.decode(&bad), Err(DecodeError::BadString { .. })));
        // unknown type
        let rec = Rec::new(127, &sys([0; 6])).bytes();
        assert_eq!(d.decode(&rec), Err(DecodeError::UnknownType(127)));
        // body too short for the type
        let rec = Rec::new(ev::EV_CONNECT, &sys([0; 6])).bytes();
        assert!(matches!(d.decode(&rec), Err(DecodeError::ShortBody { .. })));
    }

    #[test]
    fn decode_is_total_on_garbage() {
        // A cheap deterministic fuzz: mutate a valid record byte by byte and
        // with a pseudo-random generator; decode must never panic.
        let good = Rec::new(ev::EV_RENAMEAT, &sys([1, 2, 3, 4, 5, 6]))
            .ret(0)
            .raw(sid::STR_ARG0, "a/b")
            .walk(sid::STR_BASE0, "/x/y")
            .raw(sid::STR_ARG1, "c")
            .bytes();
        let d = dec();
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        for round in 0..20_000usize {
            let mut r = good.clone();
            for _ in 0..(1 + round % 8) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % r.len();
                r[at] = (seed >> 32) as u8;
            }
            if round % 3 == 0 {
                r.truncate((seed as usize) % (r.len() + 1));
            }
            let _ = d.decode(&r);
        }
        for ty in 0..140u32 {
            let mut r = good.clone();
            r[24..28].copy_from_slice(&ty.to_ne_bytes());
            let _ = d.decode(&r);
        }
    }
}
