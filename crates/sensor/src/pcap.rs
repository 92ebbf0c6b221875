//! Packet capture of one container (bpf/pcap.bpf.c): cgroup skb programs on
//! the container's own cgroup copy each packet of its sockets, both
//! directions, from the IP header on, up to the snap length, to a ring
//! buffer; [`PacketCapture::poll`] hands them over. `rampart pcap` writes them
//! to a pcapng or pcap file.

use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::path::Path;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapHandle};

use crate::maps::RecordRing;
use crate::SensorError;

#[allow(clippy::all, clippy::undocumented_unsafe_blocks, warnings, unsafe_op_in_unsafe_fn, missing_docs)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/pcap.skel.rs"));
}

const OBJECT: &str = "pcap.bpf.o";
/// Largest snap length (PCAP_SNAP_MAX in bpf/pcap.h).
pub const SNAP_MAX: u32 = 2048;
const HEADER: usize = 24;
const REC_LEN: usize = HEADER + SNAP_MAX as usize;
const _: () = assert!(std::mem::size_of::<skel::types::pcap_rec>() == REC_LEN);
/// Records consumed per poll (the 4 MiB ring holds ~2000).
const BATCH: usize = 4096;

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Boot clock, ns.
    pub ts_ns: u64,
    /// The packet's length on the socket (a GSO/GRO packet is one record).
    pub len: u32,
    /// Sent by the container (else received).
    pub egress: bool,
    /// The first bytes, from the IP header on.
    pub data: Vec<u8>,
}

impl Packet {
    /// Decodes a `struct pcap_rec` (bpf/pcap.h).
    pub fn decode(b: &[u8]) -> Option<Packet> {
        if b.len() < REC_LEN {
            return None;
        }
        let u32_at = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let caplen = (u32_at(12) as usize).min(SNAP_MAX as usize);
        Some(Packet {
            ts_ns: u64::from_ne_bytes(b[0..8].try_into().ok()?),
            len: u32_at(8),
            egress: b[16] != 0,
            data: b[HEADER..HEADER + caplen].to_vec(),
        })
    }
}

/// A running capture: the programs stay attached while this lives.
pub struct PacketCapture {
    // Ring and links before the maps they use.
    ring: RecordRing<Packet>,
    _links: Vec<Link>,
    lost: MapHandle,
}

impl PacketCapture {
    /// Attaches to the cgroup v2 directory `cgroup_dir` (a container's) and
    /// captures the packets of sockets of the cgroup `cgroup_id`, `snaplen`
    /// bytes of each (1..=[`SNAP_MAX`]).
    pub fn start(cgroup_dir: &Path, cgroup_id: u64, snaplen: u32) -> Result<PacketCapture, SensorError> {
        if !(1..=SNAP_MAX).contains(&snaplen) {
            return Err(SensorError::Config(format!("snap length {snaplen}: it must be 1 to {SNAP_MAX}")));
        }
        let mut storage = MaybeUninit::uninit();
        let mut open = skel::PcapSkelBuilder::default()
            .open(&mut storage)
            .map_err(|source| SensorError::Open { object: OBJECT.into(), source })?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| SensorError::Config("pcap object has no mmapable .rodata".into()))?;
        ro.snaplen = snaplen;
        ro.cgroup_id = cgroup_id;
        let skel = open.load().map_err(|source| SensorError::Load {
            object: OBJECT.into(),
            program: "pcap".into(),
            source,
        })?;
        let dir = std::fs::File::open(cgroup_dir)
            .map_err(|source| SensorError::Io { path: cgroup_dir.into(), source })?;
        let attach_err =
            |what: &str, source| SensorError::Load { object: OBJECT.into(), program: what.into(), source };
        let links = vec![
            skel.progs.pc_ingress.attach_cgroup(dir.as_raw_fd()).map_err(|e| attach_err("pc_ingress", e))?,
            skel.progs.pc_egress.attach_cgroup(dir.as_raw_fd()).map_err(|e| attach_err("pc_egress", e))?,
        ];
        let handle = |m: &libbpf_rs::Map, name: &str| {
            MapHandle::try_from(m).map_err(|source| SensorError::Map { map: name.into(), source })
        };
        let ring = RecordRing::new(&handle(&skel.maps.pc_ring, "pc_ring")?, "pc_ring", Packet::decode)?;
        let lost = handle(&skel.maps.pc_lost, "pc_lost")?;
        Ok(PacketCapture { ring, _links: links, lost })
    }

    /// The packets captured since the last call, oldest first.
    pub fn poll(&mut self) -> Vec<Packet> {
        self.ring.take(BATCH)
    }

    /// Packets the kernel could not queue (the ring was full).
    pub fn lost(&self) -> u64 {
        crate::maps::percpu_sum(&self.lost, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_decodes_and_caplen_is_bounded() {
        let mut b = vec![0u8; REC_LEN];
        b[0..8].copy_from_slice(&9u64.to_ne_bytes());
        b[8..12].copy_from_slice(&1500u32.to_ne_bytes());
        b[12..16].copy_from_slice(&3u32.to_ne_bytes());
        b[16] = 1;
        b[HEADER..HEADER + 3].copy_from_slice(&[0x45, 0, 1]);
        let p = Packet::decode(&b).unwrap();
        assert_eq!((p.ts_ns, p.len, p.egress, p.data.as_slice()), (9, 1500, true, &[0x45, 0, 1][..]));
        b[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(Packet::decode(&b).unwrap().data.len(), SNAP_MAX as usize);
        assert!(Packet::decode(&b[..100]).is_none());
    }
}
