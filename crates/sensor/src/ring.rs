//! The consumer side of a BPF ring buffer, with its data area mapped once.
//!
//! libbpf maps a ring's data pages twice in a row, so that a record that wraps
//! past the end reads as one slice. The kernel maps every page at `mmap`
//! time, so each ring counted twice its size in the agent's VmRSS from the
//! start (32 MiB for the 16 MiB event ring). This reader maps the data once
//! and copies the rare record that wraps into a buffer of its own.
//!
//! The layout and protocol are the kernel's (kernel/bpf/ringbuf.c): page 0
//! holds the consumer position (the only page user space may write), page 1
//! the producer position, the data follows. Each record starts, 8-byte
//! aligned, with a `u32` length whose top bits say "still being written"
//! (busy) and "discarded", then a `u32` the kernel keeps for itself.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
const HEADER: u64 = 8;

/// Why a ring could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("mapping the ring buffer: {0}")]
    Map(std::io::Error),
    #[error("ring buffer data size {0} is not a power of two of at least a page")]
    Size(u64),
    #[error("ring buffer record at position {pos} claims {len} bytes, more than the ring holds")]
    Corrupt { pos: u64, len: u64 },
}

/// One `mmap`ed region, unmapped on drop.
struct Mapping {
    base: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, offset: usize, prot: libc::c_int) -> Result<Mapping, RingError> {
        // SAFETY: a fresh shared mapping of the map's fd; the kernel checks
        // the offset, length and protection against the ring's own layout.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(RingError::Map(std::io::Error::last_os_error()));
        }
        Ok(Mapping { base, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// A ring's positions and data, wherever they live (the kernel's pages, or
/// a test's buffer).
struct Parts<'a> {
    consumer: &'a AtomicU64,
    producer: &'a AtomicU64,
    data: *const u8,
    size: u64,
}

impl Parts<'_> {
    /// Hands at most `max` records to `f`, oldest first, and gives their space
    /// back to the kernel after each; returns how many were handed over.
    /// Stops at a record still being written.
    /// `wrapped` holds a record that wraps past the end; `wraps` counts them.
    fn consume(
        &self,
        wrapped: &mut Vec<u8>,
        wraps: &mut u64,
        max: usize,
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, RingError> {
        let mut cons = self.consumer.load(Ordering::Acquire);
        let mut handed = 0;
        loop {
            let prod = self.producer.load(Ordering::Acquire);
            if cons >= prod || handed >= max {
                return Ok(handed);
            }
            while cons < prod && handed < max {
                let off = cons & (self.size - 1);
                // SAFETY: `off` is 8-aligned and below `size`, so the header
                // lies inside the data area; the kernel writes it atomically.
                let len =
                    unsafe { &*(self.data.add(off as usize) as *const AtomicU32) }.load(Ordering::Acquire);
                if len & BUSY != 0 {
                    return Ok(handed);
                }
                let body = u64::from(len & !(BUSY | DISCARD));
                let step = (body + HEADER + 7) & !7;
                if step > self.size {
                    return Err(RingError::Corrupt { pos: cons, len: body });
                }
                if len & DISCARD == 0 {
                    let start = (off + HEADER) & (self.size - 1);
                    let first = body.min(self.size - start) as usize;
                    // SAFETY: both pieces lie inside the data area (start <
                    // size, first <= size - start, body <= size); the kernel
                    // leaves them alone until the consumer position passes them.
                    let head = unsafe { std::slice::from_raw_parts(self.data.add(start as usize), first) };
                    if first as u64 == body {
                        f(head);
                    } else {
                        // SAFETY: the rest of the body, from the start of the
                        // data area (body - first < size).
                        let rest = unsafe { std::slice::from_raw_parts(self.data, body as usize - first) };
                        wrapped.clear();
                        wrapped.extend_from_slice(head);
                        wrapped.extend_from_slice(rest);
                        *wraps += 1;
                        f(wrapped);
                    }
                    handed += 1;
                }
                cons += step;
                self.consumer.store(cons, Ordering::Release);
            }
        }
    }

    fn pending(&self) -> u64 {
        let cons = self.consumer.load(Ordering::Acquire);
        self.producer.load(Ordering::Acquire).saturating_sub(cons)
    }
}

/// A BPF ring buffer map, read by one consumer.
pub struct RingReader {
    consumer: Mapping,
    shared: Mapping,
    page: usize,
    size: u64,
    /// A record that wraps past the end, put back together.
    wrapped: Vec<u8>,
    wrapped_records: u64,
}

impl RingReader {
    /// Maps the ring buffer map `fd` whose data area is `size` bytes (the
    /// map's max_entries).
    pub fn new(fd: BorrowedFd<'_>, size: u32) -> Result<RingReader, RingError> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let size = u64::from(size);
        if !size.is_power_of_two() || size < page as u64 {
            return Err(RingError::Size(size));
        }
        let consumer = Mapping::new(fd, page, 0, libc::PROT_READ | libc::PROT_WRITE)?;
        let shared = Mapping::new(fd, page + size as usize, page, libc::PROT_READ)?;
        Ok(RingReader { consumer, shared, page, size, wrapped: Vec::new(), wrapped_records: 0 })
    }

    fn parts(&self) -> Parts<'_> {
        // SAFETY: each position is a u64 at the start of its page (page 0 and
        // the first page of `shared`), shared with the kernel: atomics.
        unsafe {
            Parts {
                consumer: &*(self.consumer.base as *const AtomicU64),
                producer: &*(self.shared.base as *const AtomicU64),
                data: (self.shared.base as *const u8).add(self.page),
                size: self.size,
            }
        }
    }

    /// Hands at most `max` records to `f`, oldest first (see [`Parts::consume`]).
    pub fn consume(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> Result<usize, RingError> {
        let mut wrapped = std::mem::take(&mut self.wrapped);
        let mut wraps = 0;
        let r = self.parts().consume(&mut wrapped, &mut wraps, max, f);
        self.wrapped = wrapped;
        self.wrapped_records += wraps;
        r
    }

    /// Records so far that wrapped past the end of the data area.
    pub fn wrapped_records(&self) -> u64 {
        self.wrapped_records
    }

    /// Bytes written and not yet consumed (records and their headers).
    pub fn pending(&self) -> u64 {
        self.parts().pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring in memory, laid out as the kernel's: records written as a
    /// producer would.
    struct TestRing {
        consumer: AtomicU64,
        producer: AtomicU64,
        data: Vec<u64>,
        wraps: u64,
    }

    impl TestRing {
        fn new(size: usize) -> TestRing {
            TestRing {
                consumer: AtomicU64::new(0),
                producer: AtomicU64::new(0),
                data: vec![0; size / 8],
                wraps: 0,
            }
        }

        fn size(&self) -> u64 {
            self.data.len() as u64 * 8
        }

        fn bytes(&mut self) -> &mut [u8] {
            let n = self.data.len() * 8;
            // SAFETY: the u64 buffer seen as its bytes.
            unsafe { std::slice::from_raw_parts_mut(self.data.as_mut_ptr() as *mut u8, n) }
        }

        /// Writes a record at the producer position (its body may wrap).
        fn push(&mut self, body: &[u8], flags: u32) {
            let size = self.size();
            let pos = self.producer.load(Ordering::Relaxed);
            let off = (pos & (size - 1)) as usize;
            let len = body.len() as u32 | flags;
            self.bytes()[off..off + 4].copy_from_slice(&len.to_ne_bytes());
            for (i, b) in body.iter().enumerate() {
                let at = ((off as u64 + HEADER + i as u64) & (size - 1)) as usize;
                self.bytes()[at] = *b;
            }
            let step = (body.len() as u64 + HEADER + 7) & !7;
            self.producer.store(pos + step, Ordering::Release);
        }

        fn read(&mut self, max: usize) -> Result<Vec<Vec<u8>>, RingError> {
            let parts = Parts {
                consumer: &self.consumer,
                producer: &self.producer,
                data: self.data.as_ptr() as *const u8,
                size: self.size(),
            };
            let mut out = Vec::new();
            parts.consume(&mut Vec::new(), &mut self.wraps, max, &mut |r| out.push(r.to_vec()))?;
            Ok(out)
        }
    }

    #[test]
    fn records_come_back_in_order_and_free_their_space() {
        let mut r = TestRing::new(64);
        r.push(b"one", 0);
        r.push(b"twelve bytes", 0);
        assert_eq!(r.read(10).unwrap(), vec![b"one".to_vec(), b"twelve bytes".to_vec()]);
        // 8 + 3 rounds to 16, 8 + 12 to 24.
        assert_eq!(r.consumer.load(Ordering::Relaxed), 40);
        assert!(r.read(10).unwrap().is_empty());
    }

    #[test]
    fn a_record_that_wraps_reads_whole() {
        let mut r = TestRing::new(64);
        r.push(&[1; 40], 0); // 48 bytes: the next header is at 48
        assert_eq!(r.read(10).unwrap().len(), 1);
        let body: Vec<u8> = (0..20).collect(); // 8 bytes before the end, 12 after
        r.push(&body, 0);
        assert_eq!(r.read(10).unwrap(), vec![body]);
        assert_eq!(r.wraps, 1);
        // and a header at the very end of the area puts the body at 0
        let mut r = TestRing::new(64);
        r.push(&[2; 48], 0); // 56
        r.read(10).unwrap();
        r.push(b"abc", 0);
        assert_eq!(r.read(10).unwrap(), vec![b"abc".to_vec()]);
        assert_eq!(r.wraps, 0, "a body that starts at 0 is in one piece");
    }

    #[test]
    fn discarded_records_are_skipped_and_busy_ones_wait() {
        let mut r = TestRing::new(128);
        r.push(b"gone", DISCARD);
        r.push(b"kept", 0);
        r.push(b"later", BUSY);
        assert_eq!(r.read(10).unwrap(), vec![b"kept".to_vec()]);
        // stopped before the busy record: its space is not given back
        assert_eq!(r.consumer.load(Ordering::Relaxed), 32);
    }

    #[test]
    fn at_most_max_records_per_call() {
        let mut r = TestRing::new(256);
        for i in 0..5u8 {
            r.push(&[i], 0);
        }
        assert_eq!(r.read(2).unwrap().len(), 2);
        assert_eq!(r.read(10).unwrap().len(), 3);
    }

    #[test]
    fn a_length_past_the_ring_is_an_error_not_a_read_out_of_bounds() {
        let mut r = TestRing::new(64);
        r.bytes()[..4].copy_from_slice(&1000u32.to_ne_bytes());
        r.producer.store(1008, Ordering::Relaxed);
        assert!(matches!(r.read(10), Err(RingError::Corrupt { pos: 0, len: 1000 })));
    }
}
