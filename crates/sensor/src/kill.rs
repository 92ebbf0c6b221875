//! In-kernel kill triggers (bpf/kill.h): the key encoding (pure, tested
//! without root) and [`KernelKills`], which tells userspace that the kernel
//! already killed the process of an event.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// `KILL_PATH_MAX` of bpf/events.h: the longest path, in walk form, a trigger
/// can hold.
pub const KILL_PATH_MAX: usize = 256;
const KEY_LEN: usize = 16 + KILL_PATH_MAX;

/// Which syscall a trigger acts in (the sensor's event type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KillPoint {
    /// `execve`/`execveat`: the new image's path, before it runs.
    Exec,
    Open,
    Openat,
    Openat2,
    Creat,
}

impl KillPoint {
    /// By Falco's `evt.type` name: every exec is reported as `execve`.
    pub fn from_evt_type(name: &str) -> Option<KillPoint> {
        Some(match name {
            "execve" => KillPoint::Exec,
            "open" => KillPoint::Open,
            "openat" => KillPoint::Openat,
            "openat2" => KillPoint::Openat2,
            "creat" => KillPoint::Creat,
            _ => return None,
        })
    }

    pub fn evt_type(self) -> &'static str {
        match self {
            KillPoint::Exec => "execve",
            KillPoint::Open => "open",
            KillPoint::Openat => "openat",
            KillPoint::Openat2 => "openat2",
            KillPoint::Creat => "creat",
        }
    }

    fn ev_type(self) -> u32 {
        use crate::abi::ev;
        match self {
            KillPoint::Exec => ev::EV_EXEC,
            KillPoint::Open => ev::EV_OPEN,
            KillPoint::Openat => ev::EV_OPENAT,
            KillPoint::Openat2 => ev::EV_OPENAT2,
            KillPoint::Creat => ev::EV_CREAT,
        }
    }
}

/// A path in the kernel's walk form (components leaf first, each followed by
/// a NUL), or why it cannot be a trigger: only absolute, normalised paths
/// (what the sensor reports for an opened fd or an executed image) can equal
/// a reported path.
pub fn walk_form(path: &str) -> Result<Vec<u8>, String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} is not an absolute path"));
    }
    if path.contains('\u{fffd}') {
        return Err(format!("{path:?} holds a replacement character"));
    }
    let comps: Vec<&str> = path[1..].split('/').collect();
    if path == "/" || comps.iter().any(|c| c.is_empty() || *c == "." || *c == "..") {
        return Err(format!("{path:?} is not a normalised path to a file"));
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    for c in comps.iter().rev() {
        out.extend_from_slice(c.as_bytes());
        out.push(0);
    }
    if out.len() > KILL_PATH_MAX {
        return Err(format!("{path:?} is longer than {KILL_PATH_MAX} bytes"));
    }
    Ok(out)
}

/// The `struct kill_key` bytes of a trigger.
pub(crate) fn key_bytes(cgroup_id: u64, point: KillPoint, walk: &[u8]) -> Vec<u8> {
    let mut k = vec![0u8; KEY_LEN];
    k[..8].copy_from_slice(&cgroup_id.to_ne_bytes());
    k[8..12].copy_from_slice(&point.ev_type().to_ne_bytes());
    k[12..16].copy_from_slice(&(walk.len() as u32).to_ne_bytes());
    k[16..16 + walk.len()].copy_from_slice(walk);
    k
}

/// One trigger: kill the process that opens (or executes) `path` with this
/// syscall in the armed cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KillTrigger {
    pub point: KillPoint,
    pub path: String,
    /// Reported back in events the kernel killed for (userspace's table).
    pub id: u32,
}

/// How many kernel kills to remember until their events are consumed.
const REMEMBERED: usize = 4096;

/// Events whose process the kernel killed in the syscall, by (tid, event
/// time): filled by the sensor as it decodes, read by the responder. Cheap
/// to clone and shared between threads.
#[derive(Debug, Clone, Default)]
pub struct KernelKills {
    inner: Arc<Mutex<KillsInner>>,
}

#[derive(Debug, Default)]
struct KillsInner {
    by_event: HashMap<(u32, u64), u32>,
    order: VecDeque<(u32, u64)>,
}

impl KernelKills {
    pub(crate) fn record(&self, tid: u32, ts_ns: u64, trigger: u32) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.by_event.insert((tid, ts_ns), trigger).is_none() {
            g.order.push_back((tid, ts_ns));
        }
        while g.order.len() > REMEMBERED {
            if let Some(old) = g.order.pop_front() {
                g.by_event.remove(&old);
            }
        }
    }

    /// The trigger the kernel killed the event's process for, if it did.
    pub fn get(&self, tid: u32, ts_ns: u64) -> Option<u32> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.by_event.get(&(tid, ts_ns)).copied()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.by_event.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_form_is_leaf_first_nul_terminated() {
        assert_eq!(walk_form("/etc/shadow").unwrap(), b"shadow\0etc\0");
        assert_eq!(walk_form("/x").unwrap(), b"x\0");
        for bad in ["etc/shadow", "/", "/etc//shadow", "/etc/./shadow", "/a/../b", "/etc/", ""] {
            assert!(walk_form(bad).is_err(), "{bad}");
        }
        let long = format!("/{}", "a".repeat(255));
        assert_eq!(walk_form(&long).unwrap().len(), 256);
        assert!(walk_form(&format!("/{}", "a".repeat(256))).is_err());
    }

    #[test]
    fn key_layout_matches_struct_kill_key() {
        let k = key_bytes(0x0102, KillPoint::Openat, b"shadow\0etc\0");
        assert_eq!(k.len(), std::mem::size_of::<crate::abi::kill_key>());
        assert_eq!(&k[..8], &0x0102u64.to_ne_bytes());
        assert_eq!(&k[8..12], &crate::abi::ev::EV_OPENAT.to_ne_bytes());
        assert_eq!(&k[12..16], &11u32.to_ne_bytes());
        assert_eq!(&k[16..27], b"shadow\0etc\0");
        assert!(k[27..].iter().all(|b| *b == 0));
    }

    #[test]
    fn kernel_kills_are_bounded() {
        let k = KernelKills::default();
        for i in 0..(REMEMBERED as u32 + 10) {
            k.record(i, 7, i);
        }
        assert_eq!(k.len(), REMEMBERED);
        assert_eq!(k.get(3, 7), None);
        assert_eq!(k.get(REMEMBERED as u32 + 9, 7), Some(REMEMBERED as u32 + 9));
    }
}
