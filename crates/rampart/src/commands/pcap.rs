//! `rampart pcap`: write one container's packets (both directions, loopback
//! included) to a pcapng file (or classic pcap when the name ends in `.pcap`)
//! that tcpdump, tshark and Wireshark read. The kernel side is
//! `sensor::pcap` (cgroup skb programs on the container's own cgroup).
//!
//! Packets start at the IP header (link type RAW, 101): a cgroup program sees
//! no link layer. A GSO/GRO packet is one record, as `tcpdump -i` on the
//! host would show it before segmentation.

use anyhow::{bail, Context, Result};
use clap::Args;
use respond::Target;
use sensor::pcap::{Packet, PacketCapture, SNAP_MAX};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct PcapArgs {
    /// The container (name or id prefix).
    #[arg(long, value_name = "NAME|ID")]
    container: String,
    /// The file to write: pcapng, or classic pcap when it ends in `.pcap`.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// Bytes of each packet to keep, from the IP header (at most 2048).
    #[arg(long, default_value_t = SNAP_MAX)]
    snaplen: u32,
    /// Stop after this long (e.g. 10s, 2m); default: until interrupted.
    #[arg(long, value_parser = super::record::parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many packets.
    #[arg(long)]
    count: Option<u64>,
    #[command(flatten)]
    runtime: super::RuntimeArgs,
}

/// pcapng link type for raw IPv4/IPv6 packets (LINKTYPE_RAW).
const LINKTYPE_RAW: u16 = 101;

/// The file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcapng,
    Pcap,
}

/// Writes packets as pcapng (one section, one interface, ns timestamps,
/// direction in `epb_flags`) or classic pcap (µs timestamps).
pub struct PcapWriter<W: Write> {
    out: W,
    format: Format,
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header (and, for pcapng, the interface description).
    pub fn new(mut out: W, format: Format, snaplen: u32, if_name: &str) -> std::io::Result<Self> {
        match format {
            Format::Pcap => {
                out.write_all(&0xa1b2c3d4u32.to_ne_bytes())?;
                out.write_all(&2u16.to_ne_bytes())?;
                out.write_all(&4u16.to_ne_bytes())?;
                out.write_all(&0i32.to_ne_bytes())?;
                out.write_all(&0u32.to_ne_bytes())?;
                out.write_all(&snaplen.to_ne_bytes())?;
                out.write_all(&u32::from(LINKTYPE_RAW).to_ne_bytes())?;
            }
            Format::Pcapng => {
                // Section Header Block: byte-order magic, version 1.0, length unknown.
                let mut shb = Vec::new();
                shb.extend(0x1a2b3c4du32.to_ne_bytes());
                shb.extend(1u16.to_ne_bytes());
                shb.extend(0u16.to_ne_bytes());
                shb.extend((-1i64).to_ne_bytes());
                write_block(&mut out, 0x0a0d0d0a, &shb)?;
                // Interface Description Block with if_name and if_tsresol = 9 (ns).
                let mut idb = Vec::new();
                idb.extend(LINKTYPE_RAW.to_ne_bytes());
                idb.extend(0u16.to_ne_bytes());
                idb.extend(snaplen.to_ne_bytes());
                push_option(&mut idb, 2, if_name.as_bytes());
                push_option(&mut idb, 9, &[9]);
                push_option(&mut idb, 0, &[]);
                write_block(&mut out, 1, &idb)?;
            }
        }
        Ok(PcapWriter { out, format })
    }

    /// Writes one packet taken at `wall_ns` (ns since the epoch).
    pub fn packet(&mut self, p: &Packet, wall_ns: u64) -> std::io::Result<()> {
        let caplen = p.data.len() as u32;
        match self.format {
            Format::Pcap => {
                let us = wall_ns / 1000;
                self.out.write_all(&((us / 1_000_000) as u32).to_ne_bytes())?;
                self.out.write_all(&((us % 1_000_000) as u32).to_ne_bytes())?;
                self.out.write_all(&caplen.to_ne_bytes())?;
                self.out.write_all(&p.len.max(caplen).to_ne_bytes())?;
                self.out.write_all(&p.data)
            }
            Format::Pcapng => {
                // Enhanced Packet Block: interface 0, ts high/low, lengths,
                // data padded to 4, then epb_flags (1 inbound, 2 outbound).
                let mut epb = Vec::with_capacity(32 + pad4(p.data.len()));
                epb.extend(0u32.to_ne_bytes());
                epb.extend(((wall_ns >> 32) as u32).to_ne_bytes());
                epb.extend((wall_ns as u32).to_ne_bytes());
                epb.extend(caplen.to_ne_bytes());
                epb.extend(p.len.max(caplen).to_ne_bytes());
                epb.extend(&p.data);
                epb.resize(epb.len() + pad4(p.data.len()) - p.data.len(), 0);
                push_option(&mut epb, 2, &(if p.egress { 2u32 } else { 1u32 }).to_ne_bytes());
                push_option(&mut epb, 0, &[]);
                write_block(&mut self.out, 6, &epb)
            }
        }
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// A pcapng option: code, length, value padded to 4.
fn push_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend(code.to_ne_bytes());
    buf.extend((value.len() as u16).to_ne_bytes());
    buf.extend(value);
    buf.resize(buf.len() + pad4(value.len()) - value.len(), 0);
}

/// A pcapng block: type, total length, body, total length again.
fn write_block(out: &mut impl Write, kind: u32, body: &[u8]) -> std::io::Result<()> {
    let total = (12 + body.len()) as u32;
    out.write_all(&kind.to_ne_bytes())?;
    out.write_all(&total.to_ne_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_ne_bytes())
}

pub async fn pcap(args: PcapArgs) -> Result<()> {
    if !(1..=SNAP_MAX).contains(&args.snaplen) {
        bail!("--snaplen {}: it must be 1 to {SNAP_MAX}", args.snaplen);
    }
    let t = Target::resolve(&runtime::Runtimes::from_endpoints(&args.runtime.endpoints()), &args.container)
        .await?;
    let cg = t.require_cgroup()?.clone();
    let format =
        if args.output.extension().is_some_and(|e| e == "pcap") { Format::Pcap } else { Format::Pcapng };
    // Packets carry the container's data: owner-only, like captures.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut w = PcapWriter::new(std::io::BufWriter::new(file), format, args.snaplen, &t.name)?;
    let mut cap = PacketCapture::start(&cg.dir, cg.id, args.snaplen)
        .with_context(|| format!("attaching the capture to {}", cg.dir.display()))?;
    w.flush()?;
    eprintln!("rampart: capturing {} ({}) to {}", t.label(), cg.path, args.output.display());

    let wall =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128)?;
    let boot_to_wall = wall - sensor::flows::boot_now_ns() as i128;
    let deadline = args.duration.map(|d| Instant::now() + d);
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let mut written = 0u64;
    'outer: loop {
        for p in cap.poll() {
            let ts = (p.ts_ns as i128 + boot_to_wall).max(0) as u64;
            w.packet(&p, ts)?;
            written += 1;
            if args.count.is_some_and(|c| written >= c) {
                break 'outer;
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // A last drain: what arrived before the deadline.
            for p in cap.poll() {
                if args.count.is_some_and(|c| written >= c) {
                    break;
                }
                w.packet(&p, (p.ts_ns as i128 + boot_to_wall).max(0) as u64)?;
                written += 1;
            }
            break;
        }
        tokio::select! {
            _ = &mut interrupted => break,
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    w.flush()?;
    eprintln!("rampart: {written} packets written, {} lost (capture ring full)", cap.lost());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(egress: bool) -> Packet {
        Packet { ts_ns: 0, len: 60, egress, data: vec![0x45, 0, 0, 60, 1, 2, 3] }
    }

    #[test]
    fn pcapng_blocks_are_well_formed() {
        let mut buf = Vec::new();
        let mut w = PcapWriter::new(&mut buf, Format::Pcapng, 2048, "web").unwrap();
        w.packet(&packet(true), 1_700_000_000_123_456_789).unwrap();
        w.packet(&packet(false), 1_700_000_000_123_456_790).unwrap();
        // Walk the blocks: each starts and ends with the same length, a
        // multiple of 4.
        let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
        let (mut pos, mut kinds) = (0, Vec::new());
        while pos < buf.len() {
            let (kind, len) = (u32_at(&buf, pos), u32_at(&buf, pos + 4) as usize);
            assert_eq!(len % 4, 0);
            assert_eq!(u32_at(&buf, pos + len - 4) as usize, len);
            kinds.push(kind);
            if kind == 6 {
                let ts = (u64::from(u32_at(&buf, pos + 12)) << 32) | u64::from(u32_at(&buf, pos + 16));
                assert!(ts == 1_700_000_000_123_456_789 || ts == 1_700_000_000_123_456_790);
                assert_eq!((u32_at(&buf, pos + 20), u32_at(&buf, pos + 24)), (7, 60));
                // epb_flags after the padded data
                let opt = pos + 28 + 8;
                assert_eq!(u32_at(&buf, opt), 2 | (4 << 16));
                let dir = u32_at(&buf, opt + 4);
                assert!(dir == 1 || dir == 2);
            }
            pos += len;
        }
        assert_eq!(kinds, [0x0a0d0d0a, 1, 6, 6]);
    }

    #[test]
    fn classic_pcap_header_and_record() {
        let mut buf = Vec::new();
        let mut w = PcapWriter::new(&mut buf, Format::Pcap, 96, "x").unwrap();
        w.packet(&packet(true), 2_000_000_123_000).unwrap();
        assert_eq!(buf.len(), 24 + 16 + 7);
        assert_eq!(u32::from_ne_bytes(buf[20..24].try_into().unwrap()), 101);
        assert_eq!(u32::from_ne_bytes(buf[24..28].try_into().unwrap()), 2000);
        assert_eq!(u32::from_ne_bytes(buf[28..32].try_into().unwrap()), 123);
    }
}
