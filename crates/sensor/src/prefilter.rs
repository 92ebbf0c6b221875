//! In-kernel prefilter (bpf/prefilter.h): the syscall event types the agent
//! does not consume are dropped in the kernel before any work, so they
//! never reach the ring buffer; capability checks likewise. Fields no rule
//! reads are left out of the records that carry them (`skip_fields`).

use std::collections::BTreeSet;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::SensorError;

/// The syscall event types the kernel can skip, by the name `evt.type` uses,
/// with their record type numbers (enum ev_type).
pub fn syscall_event_types() -> impl Iterator<Item = (u32, &'static str)> {
    (0..crate::abi::ev::EV_TYPE_MAX)
        .filter_map(|t| crate::decode::syscall_event_name(t).map(|name| (t, name)))
}

/// Which syscall event types to skip: those not in `wanted` (`None`: keep
/// every type). Names not of a syscall event (`execve`, `flow`) are ignored.
pub fn skipped_types(wanted: Option<&BTreeSet<String>>) -> Vec<(u32, &'static str)> {
    match wanted {
        None => Vec::new(),
        Some(w) => syscall_event_types().filter(|(_, name)| !w.contains(*name)).collect(),
    }
}

/// `SKIPF_RAW_PATH` of bpf/prefilter.h: an open's path as passed.
const SKIPF_RAW_PATH: u32 = 1;

/// Handle on the prefilter maps. `Send + Sync`; valid while the sensor runs.
#[derive(Debug)]
pub struct Prefilter {
    skip: MapHandle,
    fields: MapHandle,
}

impl Prefilter {
    pub(crate) fn new(skip: MapHandle, fields: MapHandle) -> Prefilter {
        Prefilter { skip, fields }
    }

    /// Whether opens carry the path as passed (`fd.nameraw`) besides the
    /// resolved one: a copy from user memory on every open, which only a
    /// rule reading `fd.nameraw` needs. On by default.
    pub fn keep_raw_paths(&self, keep: bool) -> Result<(), SensorError> {
        let bits = if keep { 0 } else { SKIPF_RAW_PATH };
        self.fields
            .update(&0u32.to_ne_bytes(), &bits.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| SensorError::Map { map: "skip_fields".into(), source })
    }

    /// Whether opens carry the path as passed (read back from the kernel).
    pub fn raw_paths_kept(&self) -> bool {
        match self.fields.lookup(&0u32.to_ne_bytes(), MapFlags::ANY) {
            Ok(Some(v)) if v.len() >= 4 => u32::from_ne_bytes([v[0], v[1], v[2], v[3]]) & SKIPF_RAW_PATH == 0,
            _ => true,
        }
    }

    /// Lets through exactly the syscall event types in `wanted` (`None`:
    /// every type). Widening takes effect for syscalls entered after the call.
    /// Returns the names of the types now skipped.
    pub fn keep_only(&self, wanted: Option<&BTreeSet<String>>) -> Result<Vec<&'static str>, SensorError> {
        let skipped = skipped_types(wanted);
        // Widen first, then narrow: a type wanted by the new set is never off
        // in between.
        for (t, name) in syscall_event_types() {
            if !skipped.iter().any(|(s, _)| *s == t) {
                self.set(t, name, false)?;
            }
        }
        for &(t, name) in &skipped {
            self.set(t, name, true)?;
        }
        Ok(skipped.into_iter().map(|(_, n)| n).collect())
    }

    /// The types skipped now (read back from the kernel).
    pub fn skipped(&self) -> Vec<&'static str> {
        syscall_event_types()
            .filter(|(t, _)| matches!(self.skip.lookup(&t.to_ne_bytes(), MapFlags::ANY), Ok(Some(v)) if v.first() == Some(&1)))
            .map(|(_, n)| n)
            .collect()
    }

    fn set(&self, t: u32, name: &str, skip: bool) -> Result<(), SensorError> {
        self.skip
            .update(&t.to_ne_bytes(), &[u8::from(skip)], MapFlags::ANY)
            .map_err(|source| SensorError::Map { map: format!("skip_types ({name})"), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_syscall_type_is_listed_once() {
        let types: Vec<_> = syscall_event_types().collect();
        assert!(types.len() > 40, "{types:?}");
        assert!(types.contains(&(crate::abi::ev::EV_OPENAT, "openat")));
        // process records are never skipped; capability checks can be
        assert!(!types.iter().any(|(_, n)| ["execve", "clone", "procexit"].contains(n)));
        assert!(types.contains(&(crate::abi::ev::EV_CAPABLE, "capable")));
        let names: BTreeSet<_> = types.iter().map(|(_, n)| *n).collect();
        assert_eq!(names.len(), types.len());
    }

    #[test]
    fn skipped_is_the_complement_of_wanted() {
        assert!(skipped_types(None).is_empty());
        let wanted: BTreeSet<String> =
            ["openat", "connect", "execve", "flow"].iter().map(|s| s.to_string()).collect();
        let skipped: Vec<&str> = skipped_types(Some(&wanted)).into_iter().map(|(_, n)| n).collect();
        assert!(!skipped.contains(&"openat") && !skipped.contains(&"connect"));
        assert!(skipped.contains(&"open") && skipped.contains(&"ptrace") && skipped.contains(&"bpf"));
        assert_eq!(skipped.len(), syscall_event_types().count() - 2);
        let none = BTreeSet::new();
        assert_eq!(skipped_types(Some(&none)).len(), syscall_event_types().count());
    }
}
