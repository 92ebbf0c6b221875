//! Small readers shared by every BPF object: per-CPU counters and ring
//! buffers whose records decode into a queue.

use std::os::fd::AsFd;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::ring::RingReader;
use crate::SensorError;

/// The sum over CPUs of the `u64` at index `idx` of a per-CPU array; 0 when
/// it cannot be read (a counter that reads 0 is harmless, an error here is
/// not actionable).
pub fn percpu_sum(map: &impl MapCore, idx: u32) -> u64 {
    map.lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
        .ok()
        .flatten()
        .map(|cpus| sum_cpus(&cpus))
        .unwrap_or(0)
}

/// The sum of the leading `u64` of each CPU's value.
pub fn sum_cpus(cpus: &[Vec<u8>]) -> u64 {
    cpus.iter().filter_map(|b| b.get(..8)?.try_into().ok()).map(u64::from_ne_bytes).sum()
}

/// The cgroup id a map key starts with (maps keyed by cgroup v2 id).
pub fn cgroup_key(key: &[u8]) -> Option<u64> {
    key.get(..8)?.try_into().ok().map(u64::from_ne_bytes)
}

/// A BPF ring buffer whose records are decoded as they are consumed; records
/// that do not decode are counted, not kept.
pub struct RecordRing<T> {
    ring: RingReader,
    name: String,
    decode: fn(&[u8]) -> Option<T>,
    undecodable: u64,
}

impl<T> RecordRing<T> {
    /// Reads the ring `map` (named `name` in errors), decoding with `decode`.
    pub fn new(map: &MapHandle, name: &str, decode: fn(&[u8]) -> Option<T>) -> Result<Self, SensorError> {
        let ring = RingReader::new(map.as_fd(), map.max_entries())
            .map_err(|source| SensorError::RingBuffer { map: name.into(), source })?;
        Ok(RecordRing { ring, name: name.into(), decode, undecodable: 0 })
    }

    /// Consumes at most `batch` records and returns those that decoded,
    /// oldest first (bounded: a flooded ring cannot hold the caller here).
    pub fn take(&mut self, batch: usize) -> Vec<T> {
        let (decode, bad) = (self.decode, &mut self.undecodable);
        let mut out = Vec::new();
        let read = self.ring.consume(batch, &mut |rec| match decode(rec) {
            Some(r) => out.push(r),
            None => *bad += 1,
        });
        if let Err(e) = read {
            tracing::warn!(ring = %self.name, error = %e, "ring buffer unreadable");
        }
        out
    }

    /// Records that did not decode since the last call.
    pub fn take_undecodable(&mut self) -> u64 {
        std::mem::take(&mut self.undecodable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_values_sum_and_short_values_are_skipped() {
        let cpus = vec![5u64.to_ne_bytes().to_vec(), vec![1, 2, 3], [7u64.to_ne_bytes(), [0; 8]].concat()];
        assert_eq!(sum_cpus(&cpus), 12);
        assert_eq!(sum_cpus(&[]), 0);
    }

    #[test]
    fn cgroup_keys_need_eight_bytes() {
        assert_eq!(cgroup_key(&42u64.to_ne_bytes()), Some(42));
        assert_eq!(cgroup_key(&[1, 2]), None);
    }
}
