//! DNS capture: the flow programs copy the first 512 bytes of every port-53
//! payload of a container socket to a ring buffer (bpf/dns.h); this module
//! decodes those records and parses the DNS message into `dns` events.
//!
//! The payload comes from inside containers, possibly compromised ones: the
//! parser reads a byte slice only, never allocates more than its bounds
//! (names of 255 wire bytes, [`MAX_QUESTIONS`] questions, [`MAX_ANSWERS`]
//! answers), follows a compression pointer only backwards (so a pointer loop
//! cannot exist) and at most [`MAX_JUMPS`] times, and escapes every label
//! byte outside printable ASCII as `\DDD` (RFC 1035 master file form), so
//! what it emits is safe text.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libbpf_rs::MapHandle;
use model::{DnsAnswer, Event, EventKind, ProcessCtx, SockAddr};

use crate::maps::RecordRing;
use crate::SensorError;

/// Bytes of payload the kernel copies (DNS_SNAP in bpf/dns.h).
pub const SNAP: usize = 512;
/// Questions read from one message (a query has one in practice).
pub const MAX_QUESTIONS: usize = 4;
/// Answer records kept from one message.
pub const MAX_ANSWERS: usize = 32;
/// Compression pointers followed while reading one name.
pub const MAX_JUMPS: usize = 32;
/// A name's wire length limit (RFC 1035 2.3.4).
const MAX_NAME_WIRE: usize = 255;
/// Records consumed from the ring per drain (the ring holds ~1800).
const RING_BATCH: usize = 4096;

const REC_HEADER: usize = 64;
pub(crate) const REC_LEN: usize = REC_HEADER + SNAP;

/// Why a message could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than the 12-byte header.
    Short,
    /// A name runs past the data, or is longer than 255 bytes.
    BadName,
    /// A compression pointer that does not point backwards, or too many.
    BadPointer,
    /// A label type other than a plain label or a pointer (0x40, 0x80).
    BadLabel,
    /// The first question is cut.
    Truncated,
}

/// One parsed DNS message (what rampart uses of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub response: bool,
    pub opcode: u8,
    pub rcode: u8,
    /// The first question's name (presentation form, escaped) and type.
    pub name: String,
    pub qtype: u16,
    pub answers: Vec<DnsAnswer>,
    /// Some records could not be read: the capture was cut at 512 bytes,
    /// the server set TC, or more than [`MAX_ANSWERS`] answers.
    pub incomplete: bool,
}

/// A DNS record type's name (`A`, `AAAA`, `CNAME`, ...) or `TYPEn`.
pub fn type_name(t: u16) -> String {
    let n = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        41 => "OPT",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        252 => "AXFR",
        255 => "ANY",
        _ => return format!("TYPE{t}"),
    };
    n.into()
}

/// A response code's name (`NOERROR`, `NXDOMAIN`, ...) or `RCODEn`.
pub fn rcode_name(r: u8) -> String {
    let n = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => return format!("RCODE{r}"),
    };
    n.into()
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Reads the name at `pos`; returns it (escaped, `.` for the root) and the
/// position after it in the message (after the first pointer, if any).
fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), ParseError> {
    let mut out = String::new();
    let mut wire = 0usize;
    let mut jumps = 0usize;
    let mut after: Option<usize> = None;
    loop {
        let len = *msg.get(pos).ok_or(ParseError::BadName)? as usize;
        match len & 0xc0 {
            0x00 => {}
            0xc0 => {
                let target = (u16_at(msg, pos).ok_or(ParseError::BadName)? & 0x3fff) as usize;
                // Only backwards: every jump lands strictly before the
                // pointer, so no loop is possible; the count bounds the work.
                jumps += 1;
                if target >= pos || jumps > MAX_JUMPS {
                    return Err(ParseError::BadPointer);
                }
                after.get_or_insert(pos + 2);
                pos = target;
                continue;
            }
            _ => return Err(ParseError::BadLabel),
        }
        wire += len + 1;
        if wire > MAX_NAME_WIRE {
            return Err(ParseError::BadName);
        }
        if len == 0 {
            if out.is_empty() {
                out.push('.');
            }
            return Ok((out, after.unwrap_or(pos + 1)));
        }
        let label = msg.get(pos + 1..pos + 1 + len).ok_or(ParseError::BadName)?;
        if !out.is_empty() {
            out.push('.');
        }
        for &c in label {
            match c {
                b'.' | b'\\' => {
                    out.push('\\');
                    out.push(c as char);
                }
                0x21..=0x7e => out.push(c as char),
                _ => out.push_str(&format!("\\{c:03}")),
            }
        }
        pos += 1 + len;
    }
}

/// Parses a DNS message (UDP payload, or a TCP one without its 2-byte length).
/// Records past the data (a cut capture) end the answer list with
/// `incomplete`; a bad first question is an error.
pub fn parse(msg: &[u8]) -> Result<Message, ParseError> {
    if msg.len() < 12 {
        return Err(ParseError::Short);
    }
    let h = |i| u16_at(msg, i).unwrap_or(0);
    let (id, flags, qd, an) = (h(0), h(2), h(4) as usize, h(6) as usize);
    let mut m = Message {
        id,
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        rcode: (flags & 0xf) as u8,
        name: String::new(),
        qtype: 0,
        answers: Vec::new(),
        incomplete: flags & 0x0200 != 0,
    };
    let mut pos = 12;
    for i in 0..qd.min(MAX_QUESTIONS) {
        let (name, next) = match read_name(msg, pos) {
            Ok(r) => r,
            Err(e) if i == 0 => return Err(e),
            Err(_) => {
                m.incomplete = true;
                return Ok(m);
            }
        };
        let qtype = u16_at(msg, next).ok_or(ParseError::Truncated)?;
        if next + 4 > msg.len() {
            return Err(ParseError::Truncated);
        }
        if i == 0 {
            (m.name, m.qtype) = (name, qtype);
        }
        pos = next + 4;
    }
    if qd > MAX_QUESTIONS {
        // The answers follow questions we did not read.
        m.incomplete = true;
        return Ok(m);
    }
    for _ in 0..an {
        if m.answers.len() == MAX_ANSWERS {
            m.incomplete = true;
            break;
        }
        match read_record(msg, pos) {
            Some((rec, next)) => {
                if let Some(rec) = rec {
                    m.answers.push(rec);
                }
                pos = next;
            }
            None => {
                m.incomplete = true;
                break;
            }
        }
    }
    Ok(m)
}

/// One resource record at `pos`: the record (A, AAAA, CNAME, PTR; `None` for
/// other types, which are skipped) and the position after it.
fn read_record(msg: &[u8], pos: usize) -> Option<(Option<DnsAnswer>, usize)> {
    let (name, p) = read_name(msg, pos).ok()?;
    let rtype = u16_at(msg, p)?;
    let ttl = u32::from_be_bytes(msg.get(p + 4..p + 8)?.try_into().ok()?);
    let rdlen = u16_at(msg, p + 8)? as usize;
    let start = p + 10;
    let rdata = msg.get(start..start + rdlen)?;
    let data = match (rtype, rdlen) {
        (1, 4) => Some(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]).to_string()),
        (28, 16) => Some(Ipv6Addr::from(<[u8; 16]>::try_from(rdata).ok()?).to_string()),
        // The target may point anywhere before it in the message.
        (5 | 12, _) => read_name(msg, start).ok().map(|(n, _)| n),
        _ => None,
    };
    let rec = data.map(|data| DnsAnswer { name, rtype: type_name(rtype), ttl, data });
    Some((rec, start + rdlen))
}

/// A record off the kernel's ring (`struct dns_rec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub ts_ns: u64,
    pub cgroup_id: u64,
    pub proto: u8,
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    /// The container sent it.
    pub egress: bool,
    /// The whole payload's length; `data` holds at most [`SNAP`] bytes.
    pub payload_len: u32,
    pub data: Vec<u8>,
}

impl DnsRecord {
    /// Decodes a `struct dns_rec` (bpf/dns.h).
    pub fn decode(b: &[u8]) -> Option<DnsRecord> {
        if b.len() < REC_LEN {
            return None;
        }
        // After the timestamp, the record has the fields of a flow key in its
        // layout (bpf/dns.h), with `egress` in the key's padding.
        let key = crate::flows::FlowKey::decode(&b[8..8 + crate::flows::KEY_LEN])?;
        let payload_len = u32::from_ne_bytes(b[56..60].try_into().ok()?);
        let n = (payload_len as usize).min(SNAP);
        Some(DnsRecord {
            ts_ns: u64::from_ne_bytes(b[0..8].try_into().ok()?),
            cgroup_id: key.cgroup_id,
            local: key.local,
            remote: key.remote,
            proto: key.proto,
            egress: b[54] != 0,
            payload_len,
            data: b[REC_HEADER..REC_HEADER + n].to_vec(),
        })
    }

    /// The DNS message in the payload: TCP carries a 2-byte length first.
    /// Only a segment that starts a message is parsed.
    pub fn message(&self) -> Result<Message, ParseError> {
        let mut m =
            if self.proto == 6 { parse(self.data.get(2..).unwrap_or(&[]))? } else { parse(&self.data)? };
        if self.payload_len as usize > SNAP {
            m.incomplete = true;
        }
        Ok(m)
    }

    /// The `dns` event of the record's cgroup (no process: pid 0), with the
    /// boot-clock time turned into wall-clock by `boot_to_wall_ns`.
    pub fn to_event(&self, m: Message, boot_to_wall_ns: i128) -> Event {
        let sock = |(ip, port): (IpAddr, u16)| match ip {
            IpAddr::V4(_) => SockAddr::Inet { ip, port },
            IpAddr::V6(_) => SockAddr::Inet6 { ip, port },
        };
        Event {
            ts_ns: (self.ts_ns as i128 + boot_to_wall_ns).clamp(0, u64::MAX as i128) as u64,
            process: ProcessCtx { cgroup_id: self.cgroup_id, ..Default::default() },
            container: None,
            ret: None,
            syscall: Some("dns".into()),
            kind: EventKind::Dns {
                proto: crate::flows::proto_name(self.proto),
                direction: if self.egress { "out" } else { "in" }.into(),
                local: sock(self.local),
                remote: sock(self.remote),
                id: m.id,
                response: m.response,
                name: m.name,
                qtype: type_name(m.qtype),
                rcode: m.response.then(|| rcode_name(m.rcode)),
                answers: m.answers,
                incomplete: m.incomplete,
            },
        }
    }
}

/// What the drain counted besides events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnsCounts {
    pub records: u64,
    /// Payloads that are not a DNS message rampart can read (counted, not
    /// reported one by one: a container controls them).
    pub undecodable: u64,
}

/// Reads the DNS ring of a [`crate::FlowTable`].
pub struct DnsReader {
    ring: RecordRing<DnsRecord>,
    boot_to_wall_ns: i128,
    pub counts: DnsCounts,
}

impl DnsReader {
    pub fn new(ring: &MapHandle, boot_to_wall_ns: i128) -> Result<DnsReader, SensorError> {
        let ring = RecordRing::new(ring, "dns_ring", DnsRecord::decode)?;
        Ok(DnsReader { ring, boot_to_wall_ns, counts: DnsCounts::default() })
    }

    /// Takes what the ring holds and appends the `dns` events to `out`.
    pub fn drain(&mut self, out: &mut Vec<Event>) {
        let records = self.ring.take(RING_BATCH);
        self.counts.undecodable += self.ring.take_undecodable();
        for r in records {
            self.counts.records += 1;
            match r.message() {
                Ok(m) => out.push(r.to_event(m, self.boot_to_wall_ns)),
                Err(e) => {
                    self.counts.undecodable += 1;
                    tracing::debug!(cgroup_id = r.cgroup_id, error = ?e, "undecodable DNS payload");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a message: header, questions as (name, type), then raw bytes.
    fn msg(id: u16, flags: u16, qd: u16, an: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        for v in [id, flags, qd, an, 0, 0] {
            m.extend_from_slice(&v.to_be_bytes());
        }
        m.extend_from_slice(body);
        m
    }

    fn wire_name(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for l in name.split('.').filter(|l| !l.is_empty()) {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
        }
        out.push(0);
        out
    }

    fn question(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = wire_name(name);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    fn rr(name: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut r = name.to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }

    #[test]
    fn query_and_response_with_cname_and_addresses() {
        let q = parse(&msg(0x1234, 0x0100, 1, 0, &question("www.example.test", 1))).unwrap();
        assert_eq!((q.id, q.response, q.name.as_str(), q.qtype), (0x1234, false, "www.example.test", 1));
        assert!(q.answers.is_empty() && !q.incomplete);

        // Answer names compressed to the question's name at offset 12.
        let mut body = question("www.example.test", 1);
        body.extend(rr(&[0xc0, 12], 5, 300, &[3, b'c', b'd', b'n', 0xc0, 16]));
        let cname_at = 12 + body.len() - 6;
        body.extend(rr(&[0xc0, cname_at as u8], 1, 60, &[10, 1, 2, 3]));
        body.extend(rr(&[0xc0, cname_at as u8], 28, 60, &"fd00::7".parse::<Ipv6Addr>().unwrap().octets()));
        body.extend(rr(&[0xc0, 12], 16, 60, b"\x05hello")); // TXT: skipped
        let r = parse(&msg(0x1234, 0x8180, 1, 4, &body)).unwrap();
        assert!(r.response);
        assert_eq!((r.rcode, rcode_name(r.rcode).as_str()), (0, "NOERROR"));
        let got: Vec<(&str, &str, &str, u32)> =
            r.answers.iter().map(|a| (a.name.as_str(), a.rtype.as_str(), a.data.as_str(), a.ttl)).collect();
        assert_eq!(
            got,
            [
                ("www.example.test", "CNAME", "cdn.example.test", 300),
                ("cdn.example.test", "A", "10.1.2.3", 60),
                ("cdn.example.test", "AAAA", "fd00::7", 60),
            ]
        );
        assert!(!r.incomplete);
    }

    #[test]
    fn nxdomain_and_names() {
        let r = parse(&msg(1, 0x8183, 1, 0, &question("nope.test", 28))).unwrap();
        assert_eq!((rcode_name(r.rcode).as_str(), type_name(r.qtype).as_str()), ("NXDOMAIN", "AAAA"));
        assert_eq!(type_name(4242), "TYPE4242");
        assert_eq!(rcode_name(9), "RCODE9");
        // The root name.
        let r = parse(&msg(1, 0, 1, 0, &[0, 0, 2, 0, 1])).unwrap();
        assert_eq!(r.name, ".");
    }

    #[test]
    fn hostile_label_bytes_are_escaped() {
        let body = [4, b'a', b'.', b'\\', 0x07, 3, 0xff, b' ', b'z', 0, 0, 1, 0, 1];
        let r = parse(&msg(1, 0, 1, 0, &body)).unwrap();
        assert_eq!(r.name, "a\\.\\\\\\007.\\255\\032z");
        assert!(r.name.chars().all(|c| c.is_ascii_graphic()));
    }

    #[test]
    fn compression_loops_and_forward_pointers_are_refused() {
        // A pointer to itself.
        assert_eq!(parse(&msg(1, 0, 1, 0, &[0xc0, 12, 0, 1, 0, 1])), Err(ParseError::BadPointer));
        // Forward pointer (to the label after it), which could start a loop.
        assert_eq!(parse(&msg(1, 0, 1, 0, &[0xc0, 14, 1, b'a', 0xc0, 12])), Err(ParseError::BadPointer));
        // Two labels pointing at each other through an answer: the answer's
        // name is a pointer forward into itself.
        let mut body = question("a.test", 1);
        let here = (12 + body.len()) as u8;
        body.extend([0xc0, here + 2, 0xc0, here]);
        let r = parse(&msg(1, 0x8000, 1, 1, &body)).unwrap();
        assert!(r.answers.is_empty() && r.incomplete);
        // A long backwards chain (each pointer to the one before) stops at
        // MAX_JUMPS.
        let mut body = vec![1, b'a', 0];
        for i in 0..40u16 {
            let target = if i == 0 { 12 } else { 15 + (i - 1) * 2 };
            body.extend((0xc000 | target).to_be_bytes());
        }
        let full = msg(1, 0, 0, 0, &body);
        assert_eq!(read_name(&full, 15 + 39 * 2), Err(ParseError::BadPointer));
        assert_eq!(read_name(&full, 15 + 10 * 2), Ok(("a".to_string(), 15 + 10 * 2 + 2)));
    }

    #[test]
    fn oversize_labels_and_names_are_refused() {
        // Label type 0x40 and 0x80 (extended/reserved).
        assert_eq!(parse(&msg(1, 0, 1, 0, &[0x41, b'a', 0, 0, 1, 0, 1])), Err(ParseError::BadLabel));
        assert_eq!(parse(&msg(1, 0, 1, 0, &[0x80, 0, 0, 1, 0, 1])), Err(ParseError::BadLabel));
        // Five labels of 63: 320 wire bytes > 255.
        let long = [&"x".repeat(63)[..]; 5].join(".");
        assert_eq!(parse(&msg(1, 0, 1, 0, &question(&long, 1))), Err(ParseError::BadName));
        // Four of 63 (256 bytes with the root): over by one.
        let long = [&"x".repeat(63)[..]; 4].join(".");
        assert_eq!(parse(&msg(1, 0, 1, 0, &question(&long, 1))), Err(ParseError::BadName));
        // 3 x 63 + 61: exactly 255.
        let ok = format!("{}.{}", [&"x".repeat(63)[..]; 3].join("."), "y".repeat(61));
        assert_eq!(parse(&msg(1, 0, 1, 0, &question(&ok, 1))).unwrap().name, ok);
    }

    #[test]
    fn truncated_input_never_panics_and_keeps_what_was_read() {
        assert_eq!(parse(&[0; 11]), Err(ParseError::Short));
        let mut body = question("cut.test", 1);
        body.extend(rr(&[0xc0, 12], 1, 5, &[10, 0, 0, 1]));
        body.extend(rr(&[0xc0, 12], 1, 5, &[10, 0, 0, 2]));
        let full = msg(7, 0x8180, 1, 2, &body);
        for n in 0..full.len() {
            let _ = parse(&full[..n]);
        }
        let r = parse(&full[..full.len() - 2]).unwrap();
        assert_eq!(r.answers.len(), 1);
        assert!(r.incomplete);
        // The question cut: an error.
        assert_eq!(parse(&full[..12 + 10]), Err(ParseError::Truncated));
        // Counts far beyond the data: bounded work, answers capped.
        let r = parse(&msg(7, 0x8180, 0, 0xffff, &rr(&[0], 1, 1, &[1, 1, 1, 1]).repeat(40))).unwrap();
        assert_eq!(r.answers.len(), MAX_ANSWERS);
        assert!(r.incomplete);
        let r = parse(&msg(7, 0, 0xffff, 0, &question("a", 1).repeat(8))).unwrap();
        assert_eq!(r.name, "a");
        assert!(r.incomplete);
    }

    #[test]
    fn random_bytes_never_panic() {
        // A small deterministic generator: no dependency for a smoke fuzz
        // (fuzz/ runs the real fuzzer on `parse`).
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 200) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if b.len() > 6 {
                b[4] = 0;
                b[5] = 1;
            }
            if let Ok(m) = parse(&b) {
                assert!(m.name.len() <= 4 * MAX_NAME_WIRE);
                assert!(m.answers.len() <= MAX_ANSWERS);
            }
        }
    }

    #[test]
    fn record_decodes_and_tcp_skips_the_length() {
        let payload = msg(9, 0x0100, 1, 0, &question("tcp.test", 1));
        let mut b = vec![0u8; REC_LEN];
        b[0..8].copy_from_slice(&5u64.to_ne_bytes());
        b[8..16].copy_from_slice(&77u64.to_ne_bytes());
        b[16..20].copy_from_slice(&[172, 18, 0, 3]);
        b[32..36].copy_from_slice(&[172, 18, 0, 2]);
        b[48..50].copy_from_slice(&40000u16.to_ne_bytes());
        b[50..52].copy_from_slice(&53u16.to_ne_bytes());
        b[52] = 6;
        b[53] = 4;
        b[54] = 1;
        let mut tcp = (payload.len() as u16).to_be_bytes().to_vec();
        tcp.extend_from_slice(&payload);
        b[56..60].copy_from_slice(&(tcp.len() as u32).to_ne_bytes());
        b[REC_HEADER..REC_HEADER + tcp.len()].copy_from_slice(&tcp);
        let r = DnsRecord::decode(&b).unwrap();
        assert_eq!((r.cgroup_id, r.egress, r.proto), (77, true, 6));
        assert_eq!(r.remote, ("172.18.0.2".parse().unwrap(), 53));
        let m = r.message().unwrap();
        assert_eq!(m.name, "tcp.test");
        let ev = r.to_event(m, 1000);
        assert_eq!(ev.ts_ns, 1005);
        assert_eq!(ev.event_type().as_str(), "dns");
        assert_eq!(ev.process.cgroup_id, 77);
        // A bad family and a short record are refused.
        b[53] = 9;
        assert!(DnsRecord::decode(&b).is_none());
        assert!(DnsRecord::decode(&b[..100]).is_none());
    }
}
