//! Denial records: the pinned ring buffer the policy programs write, read by
//! the agent and turned into [`model::Event`]s (`evt.type = netdeny`).
//!
//! A BPF ring buffer has one consumer position: run one reader per host (the
//! agent). The per-cgroup counters (`rampart netpolicy show`) are exact
//! whatever happens to the records.

pub mod feed;

use crate::abi::{self, RawEvent};
use crate::policy::{DenyReason, NetPolicy};
use crate::Error;
use libbpf_rs::{MapCore, MapHandle};
use model::{Event, EventKind, ProcessCtx, SockAddr};
use sensor::ring::RingReader;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Records consumed per drain pass.
const BATCH: usize = 4096;

/// Reads the pinned `np_events` ring buffer. Owned by one thread.
pub struct DenyReader {
    // Field order is drop order: the ring buffer before the map it reads.
    ring: RingReader,
    map: MapHandle,
    undecodable: u64,
    path: PathBuf,
    map_id: u32,
}

impl std::fmt::Debug for DenyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenyReader").field("path", &self.path).field("map_id", &self.map_id).finish()
    }
}

fn map_id(m: &MapHandle) -> u32 {
    m.info().map(|i| i.info.id).unwrap_or(0)
}

impl DenyReader {
    /// Open the ring buffer pinned in `pin_dir`; `None` when there is none
    /// (no policy was ever applied on this host).
    pub fn open(pin_dir: &Path) -> Result<Option<DenyReader>, Error> {
        let path = pin_dir.join("np_events");
        if !path.exists() {
            return Ok(None);
        }
        let map = MapHandle::from_pinned_path(&path).map_err(|e| Error::Bpf {
            op: "opening".into(),
            target: path.display().to_string(),
            message: format!("{e:#}"),
        })?;
        let ring = RingReader::new(map.as_fd(), map.max_entries()).map_err(|e| Error::Bpf {
            op: "reading ring buffer".into(),
            target: path.display().to_string(),
            message: e.to_string(),
        })?;
        let map_id = map_id(&map);
        Ok(Some(DenyReader { ring, map, undecodable: 0, path, map_id }))
    }

    /// Everything in the ring now (no blocking).
    pub fn drain(&mut self) -> Result<Vec<RawEvent>, Error> {
        let mut out = Vec::new();
        let bad = &mut self.undecodable;
        loop {
            let n = self
                .ring
                .consume(BATCH, &mut |rec| match abi::decode_event(rec) {
                    Some(ev) => out.push(ev),
                    None => *bad += 1,
                })
                .map_err(|e| Error::Bpf {
                    op: "draining".into(),
                    target: self.path.display().to_string(),
                    message: e.to_string(),
                })?;
            if n < BATCH {
                return Ok(out);
            }
        }
    }

    /// Records that were too short to decode.
    pub fn undecodable(&self) -> u64 {
        self.undecodable
    }

    /// Whether the pin still names the map we read (it changes when the pins
    /// are recreated: reopen then).
    pub fn is_current(&self) -> bool {
        let _ = &self.map;
        MapHandle::from_pinned_path(&self.path).map(|m| map_id(&m) == self.map_id).unwrap_or(false)
    }
}

/// `np_op` names.
pub fn op_name(op: u8) -> &'static str {
    crate::store::OPS.get(usize::from(op)).copied().unwrap_or("unknown")
}

pub use sensor::flows::proto_name;

/// Converts boot-clock timestamps (`bpf_ktime_get_boot_ns`) to wall-clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    boot_to_wall_ns: i128,
}

impl Clock {
    pub fn new(boot_to_wall_ns: i128) -> Self {
        Clock { boot_to_wall_ns }
    }

    /// The offset between the machine's clocks now.
    pub fn now() -> Self {
        let read = |id| {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: clock_gettime writes into a valid timespec.
            unsafe { libc::clock_gettime(id, &mut ts) };
            i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
        };
        let wall = read(libc::CLOCK_REALTIME);
        let boot = read(libc::CLOCK_BOOTTIME);
        Clock::new(wall - boot)
    }

    pub fn wall_ns(&self, boot_ns: u64) -> u64 {
        (i128::from(boot_ns) + self.boot_to_wall_ns).clamp(0, i128::from(u64::MAX)) as u64
    }
}

/// The event of a denial record. `policy` is the container's stored policy
/// (to describe the entry that decided), when known.
pub fn to_event(raw: &RawEvent, clock: &Clock, policy: Option<&NetPolicy>) -> Event {
    let op = op_name(raw.op);
    let (entry, entry_detail) = match DenyReason::from_raw(raw.reason) {
        Some(r) => match policy {
            Some(p) => p.entry_for(r, raw.entry),
            None => (r.path(raw.entry), None),
        },
        None => (format!("reason {}", raw.reason), None),
    };
    let addr = raw.addr.map(|ip| match ip {
        IpAddr::V4(_) => SockAddr::Inet { ip, port: raw.port },
        IpAddr::V6(_) => SockAddr::Inet6 { ip, port: raw.port },
    });
    // A syscall was refused with EPERM; packets were dropped (no syscall).
    let is_syscall = matches!(op, "connect" | "sendmsg" | "bind");
    Event {
        ts_ns: clock.wall_ns(raw.ts_boot_ns),
        process: ProcessCtx {
            pid: raw.pid,
            tid: raw.tid,
            uid: raw.uid,
            gid: raw.gid,
            euid: raw.uid,
            egid: raw.gid,
            auid: u32::MAX,
            comm: raw.comm.as_str().into(),
            cgroup_id: raw.cgroup_id,
            ..Default::default()
        },
        container: None,
        ret: is_syscall.then_some(-i64::from(libc::EPERM)),
        syscall: Some("netdeny".into()),
        kind: EventKind::NetDeny {
            op: op.to_string(),
            proto: proto_name(raw.proto),
            addr,
            entry,
            entry_detail,
            count: raw.count.max(1),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawEvent {
        RawEvent {
            ts_boot_ns: 1_000,
            cgroup_id: 77,
            count: 1,
            pid: 10,
            tid: 11,
            uid: 1000,
            gid: 1001,
            comm: "curl".into(),
            addr: Some("10.1.2.3".parse().unwrap()),
            port: 22,
            entry: 0,
            op: 0,
            reason: 1,
            proto: 6,
        }
    }

    #[test]
    fn denial_becomes_a_netdeny_event() {
        let p =
            NetPolicy::from_yaml("egress:\n  deny:\n    - {cidr: 10.0.0.0/8, ports: [22]}\n", "t").unwrap();
        let ev = to_event(&raw(), &Clock::new(5_000), Some(&p));
        assert_eq!(ev.ts_ns, 6_000);
        assert_eq!(ev.syscall.as_deref(), Some("netdeny"));
        assert_eq!(ev.ret, Some(-1));
        assert_eq!(ev.process.pid, 10);
        assert_eq!(ev.process.comm, "curl");
        assert_eq!(ev.process.cgroup_id, 77);
        match &ev.kind {
            EventKind::NetDeny { op, proto, addr, entry, entry_detail, count } => {
                assert_eq!(op, "connect");
                assert_eq!(proto, "tcp");
                assert_eq!(addr.as_ref().unwrap().to_string(), "10.1.2.3:22");
                assert_eq!(entry, "egress.deny[0]");
                assert_eq!(entry_detail.as_deref(), Some("10.0.0.0/8 ports 22"));
                assert_eq!(*count, 1);
            }
            k => panic!("{k:?}"),
        }
        // packets: no syscall result; isolated; v6 peer
        let mut r = raw();
        r.op = 3;
        r.reason = 3;
        r.count = 12;
        r.proto = 58;
        r.addr = Some("fd00::1".parse().unwrap());
        r.port = 0;
        let ev = to_event(&r, &Clock::new(0), None);
        assert_eq!(ev.ret, None);
        match &ev.kind {
            EventKind::NetDeny { op, proto, addr, entry, count, .. } => {
                assert_eq!(
                    (op.as_str(), proto.as_str(), entry.as_str(), *count),
                    ("ingress", "icmpv6", "isolated", 12)
                );
                assert_eq!(addr.as_ref().unwrap().to_string(), "[fd00::1]:0");
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn record_bytes_decode() {
        let mut rec = vec![0u8; abi::EVENT_LEN];
        rec[0..8].copy_from_slice(&123u64.to_ne_bytes());
        rec[8..16].copy_from_slice(&77u64.to_ne_bytes());
        rec[16..24].copy_from_slice(&2u64.to_ne_bytes());
        rec[24..28].copy_from_slice(&10u32.to_ne_bytes());
        rec[40..44].copy_from_slice(b"nc\0\0");
        rec[56..60].copy_from_slice(&[192, 168, 1, 9]);
        rec[72..74].copy_from_slice(&53u16.to_ne_bytes());
        rec[74..76].copy_from_slice(&4u16.to_ne_bytes());
        rec[76] = 1;
        rec[77] = 2;
        rec[78] = 17;
        rec[79] = 4;
        let r = abi::decode_event(&rec).unwrap();
        assert_eq!((r.ts_boot_ns, r.cgroup_id, r.count, r.pid), (123, 77, 2, 10));
        assert_eq!(r.comm, "nc");
        assert_eq!(r.addr, Some("192.168.1.9".parse().unwrap()));
        assert_eq!((r.port, r.entry, r.op, r.reason, r.proto), (53, 4, 1, 2, 17));
        rec[79] = 0;
        assert_eq!(abi::decode_event(&rec).unwrap().addr, None);
        assert!(abi::decode_event(&rec[..79]).is_none());
        assert_eq!(op_name(9), "unknown");
    }
}
