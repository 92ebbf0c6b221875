//! Small readers shared by every BPF object: per-CPU counters and ring
//! buffers whose records decode into a queue.

use std::cell::RefCell;
use std::rc::Rc;

use libbpf_rs::{MapCore, MapFlags, MapHandle, RingBuffer, RingBufferBuilder};

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
    // The ring before the queue its callback fills.
    ring: RingBuffer<'static>,
    queue: Rc<RefCell<Vec<T>>>,
    undecodable: Rc<RefCell<u64>>,
}

impl<T: 'static> RecordRing<T> {
    /// Reads the ring `map` (named `name` in errors), decoding with `decode`.
    pub fn new(map: &MapHandle, name: &str, decode: fn(&[u8]) -> Option<T>) -> Result<Self, SensorError> {
        let queue: Rc<RefCell<Vec<T>>> = Rc::default();
        let undecodable: Rc<RefCell<u64>> = Rc::default();
        let (q, bad) = (queue.clone(), undecodable.clone());
        let mut builder = RingBufferBuilder::new();
        builder
            .add(map, move |rec: &[u8]| {
                match decode(rec) {
                    Some(r) => q.borrow_mut().push(r),
                    None => *bad.borrow_mut() += 1,
                }
                0
            })
            .map_err(|source| SensorError::Map { map: name.into(), source })?;
        let ring = builder.build().map_err(|source| SensorError::Map { map: name.into(), source })?;
        Ok(RecordRing { ring, queue, undecodable })
    }

    /// Consumes at most `batch` records and returns those that decoded since
    /// the last call, oldest first (bounded: a flooded ring cannot hold the
    /// caller here).
    pub fn take(&mut self, batch: usize) -> Vec<T> {
        let _ = self.ring.consume_raw_n(batch);
        std::mem::take(&mut *self.queue.borrow_mut())
    }

    /// Records that did not decode since the last call.
    pub fn take_undecodable(&mut self) -> u64 {
        std::mem::take(&mut *self.undecodable.borrow_mut())
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
