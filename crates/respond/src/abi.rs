//! The kernel <-> user ABI of the network policy (bpf/netpolicy.h): byte
//! encodings of map keys and values, and the ring buffer record. Pure code,
//! tested without root; the sizes are asserted against the skeleton's types,
//! which clang generated from the C header.

#[allow(clippy::all, clippy::undocumented_unsafe_blocks, warnings, unsafe_op_in_unsafe_fn, missing_docs)]
pub(crate) mod skel {
    include!(concat!(env!("OUT_DIR"), "/netpolicy.skel.rs"));
}

use std::mem::size_of;
use std::net::IpAddr;

pub use policy::{flags, Rule, RuleAction, MAX_BIND, MAX_RULES};
/// Bits of an LPM key before the address: cgroup id, generation, family.
pub const KEY_FIXED_BITS: u32 = 104;

pub const RULE_LEN: usize = 8;
pub const RULES_LEN: usize = 8 + MAX_RULES * RULE_LEN;
pub const POLICY_LEN: usize = 16 + MAX_BIND * RULE_LEN + 4 * 8;
pub const KEY_LEN: usize = 36;
pub const OP_MAX: usize = 5;
pub const STATS_LEN: usize = 3 * OP_MAX * 8;
pub const EVENT_LEN: usize = 80;

const _: () = assert!(size_of::<skel::types::np_rule>() == RULE_LEN);
const _: () = assert!(size_of::<skel::types::np_rules>() == RULES_LEN);
const _: () = assert!(size_of::<skel::types::np_policy>() == POLICY_LEN);
const _: () = assert!(size_of::<skel::types::np_lpm_key>() == KEY_LEN);
const _: () = assert!(size_of::<skel::types::np_stats>() == STATS_LEN);
const _: () = assert!(size_of::<skel::types::np_event>() == EVENT_LEN);

/// `struct np_rule` bytes.
fn write_rule(r: &Rule, out: &mut [u8]) {
    out[0..2].copy_from_slice(&r.port_lo.to_ne_bytes());
    out[2..4].copy_from_slice(&r.port_hi.to_ne_bytes());
    out[4] = r.proto;
    out[5] = r.action as u8;
    out[6..8].copy_from_slice(&r.entry.to_ne_bytes());
}

/// `struct np_rules`, the value of an LPM entry.
pub fn encode_rules(rules: &[Rule]) -> [u8; RULES_LEN] {
    assert!(rules.len() <= MAX_RULES, "at most {MAX_RULES} rules per prefix");
    let mut out = [0u8; RULES_LEN];
    out[0..4].copy_from_slice(&(rules.len() as u32).to_ne_bytes());
    for (i, r) in rules.iter().enumerate() {
        write_rule(r, &mut out[8 + i * RULE_LEN..8 + (i + 1) * RULE_LEN]);
    }
    out
}

/// `struct np_policy`; `rate` is `enum np_rate`-indexed (0 = no limit).
pub fn encode_policy(flags: u32, gen: u32, bind: &[Rule], rate: [u64; 4]) -> [u8; POLICY_LEN] {
    assert!(bind.len() <= MAX_BIND, "at most {MAX_BIND} bind rules");
    let mut out = [0u8; POLICY_LEN];
    out[0..4].copy_from_slice(&flags.to_ne_bytes());
    out[4..8].copy_from_slice(&gen.to_ne_bytes());
    out[8..12].copy_from_slice(&(bind.len() as u32).to_ne_bytes());
    for (i, r) in bind.iter().enumerate() {
        write_rule(r, &mut out[16 + i * RULE_LEN..16 + (i + 1) * RULE_LEN]);
    }
    let at = 16 + MAX_BIND * RULE_LEN;
    for (i, r) in rate.iter().enumerate() {
        out[at + i * 8..at + i * 8 + 8].copy_from_slice(&r.to_ne_bytes());
    }
    out
}

/// Flags and generation of an encoded `struct np_policy`.
pub fn decode_policy_head(v: &[u8]) -> Option<(u32, u32)> {
    if v.len() < POLICY_LEN {
        return None;
    }
    Some((u32_at(v, 0), u32_at(v, 4)))
}

/// `struct np_lpm_key` for the prefix `addr/len` of a cgroup's generation.
pub fn encode_key(cgroup_id: u64, gen: u32, addr: IpAddr, len: u8) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    let (family, max) = match addr {
        IpAddr::V4(a) => {
            out[17..21].copy_from_slice(&a.octets());
            (4u8, 32u8)
        }
        IpAddr::V6(a) => {
            out[17..33].copy_from_slice(&a.octets());
            (6u8, 128u8)
        }
    };
    let len = len.min(max);
    out[0..4].copy_from_slice(&(KEY_FIXED_BITS + u32::from(len)).to_ne_bytes());
    out[4..12].copy_from_slice(&cgroup_id.to_ne_bytes());
    out[12..16].copy_from_slice(&gen.to_ne_bytes());
    out[16] = family;
    out
}

/// Cgroup id and generation of an encoded LPM key.
pub fn decode_key_owner(k: &[u8]) -> Option<(u64, u32)> {
    if k.len() < KEY_LEN {
        return None;
    }
    Some((u64_at(k, 4), u32_at(k, 12)))
}

/// `struct np_stats`: denials per op, and those not (yet) reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub denied: [u64; OP_MAX],
    pub unreported: [u64; OP_MAX],
}

pub fn decode_stats(v: &[u8]) -> Option<Stats> {
    if v.len() < STATS_LEN {
        return None;
    }
    let mut s = Stats::default();
    for i in 0..OP_MAX {
        s.denied[i] = u64_at(v, i * 8);
        s.unreported[i] = u64_at(v, (OP_MAX + i) * 8);
    }
    Some(s)
}

/// `struct np_event` as read from the ring buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    pub ts_boot_ns: u64,
    pub cgroup_id: u64,
    pub count: u64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    pub addr: Option<IpAddr>,
    pub port: u16,
    pub entry: u16,
    pub op: u8,
    pub reason: u8,
    pub proto: u8,
}

pub fn decode_event(rec: &[u8]) -> Option<RawEvent> {
    if rec.len() < EVENT_LEN {
        return None;
    }
    let comm = &rec[40..56];
    let comm_len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    let a = &rec[56..72];
    let addr = match rec[79] {
        4 => Some(IpAddr::from([a[0], a[1], a[2], a[3]])),
        6 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(a);
            Some(IpAddr::from(b))
        }
        _ => None,
    };
    Some(RawEvent {
        ts_boot_ns: u64_at(rec, 0),
        cgroup_id: u64_at(rec, 8),
        count: u64_at(rec, 16),
        pid: u32_at(rec, 24),
        tid: u32_at(rec, 28),
        uid: u32_at(rec, 32),
        gid: u32_at(rec, 36),
        comm: String::from_utf8_lossy(&comm[..comm_len]).into_owned(),
        addr,
        port: u16_at(rec, 72),
        entry: u16_at(rec, 74),
        op: rec[76],
        reason: rec[77],
        proto: rec[78],
    })
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        let k = encode_key(0x0102_0304_0506_0708, 9, "10.1.0.0".parse().unwrap(), 16);
        assert_eq!(u32::from_ne_bytes(k[0..4].try_into().unwrap()), KEY_FIXED_BITS + 16);
        assert_eq!(u64::from_ne_bytes(k[4..12].try_into().unwrap()), 0x0102_0304_0506_0708);
        assert_eq!(u32::from_ne_bytes(k[12..16].try_into().unwrap()), 9);
        assert_eq!(k[16], 4);
        assert_eq!(&k[17..21], &[10, 1, 0, 0]);
        assert!(k[21..].iter().all(|&b| b == 0));
        assert_eq!(decode_key_owner(&k), Some((0x0102_0304_0506_0708, 9)));
        let k6 = encode_key(1, 2, "fd00::".parse().unwrap(), 8);
        assert_eq!(u32::from_ne_bytes(k6[0..4].try_into().unwrap()), KEY_FIXED_BITS + 8);
        assert_eq!(k6[16], 6);
        assert_eq!(k6[17], 0xfd);
        // a /0 still matches id, generation and family in full
        let k0 = encode_key(1, 2, "0.0.0.0".parse().unwrap(), 0);
        assert_eq!(u32::from_ne_bytes(k0[0..4].try_into().unwrap()), KEY_FIXED_BITS);
        // lengths beyond the family's are clamped
        let kc = encode_key(1, 2, "1.2.3.4".parse().unwrap(), 99);
        assert_eq!(u32::from_ne_bytes(kc[0..4].try_into().unwrap()), KEY_FIXED_BITS + 32);
    }

    #[test]
    fn value_layouts() {
        let r = Rule { port_lo: 80, port_hi: 90, proto: 6, action: RuleAction::Deny, entry: 3 };
        let v = encode_rules(&[r, Rule { action: RuleAction::Allow, entry: 0, ..r }]);
        assert_eq!(v.len(), RULES_LEN);
        assert_eq!(u32::from_ne_bytes(v[0..4].try_into().unwrap()), 2);
        assert_eq!(u16::from_ne_bytes(v[8..10].try_into().unwrap()), 80);
        assert_eq!(u16::from_ne_bytes(v[10..12].try_into().unwrap()), 90);
        assert_eq!((v[12], v[13]), (6, 2));
        assert_eq!(u16::from_ne_bytes(v[14..16].try_into().unwrap()), 3);
        assert_eq!(v[21], 1, "second rule allows");
        let p = encode_policy(flags::ISOLATED | flags::EGRESS_DENY, 5, &[r], [0, 1000, 0, 7]);
        assert_eq!(p.len(), POLICY_LEN);
        let rate_at = 16 + MAX_BIND * RULE_LEN;
        assert_eq!(u64::from_ne_bytes(p[rate_at + 8..rate_at + 16].try_into().unwrap()), 1000);
        assert_eq!(u64::from_ne_bytes(p[rate_at + 24..rate_at + 32].try_into().unwrap()), 7);
        assert_eq!(decode_policy_head(&p), Some((flags::ISOLATED | flags::EGRESS_DENY, 5)));
        assert_eq!(u32::from_ne_bytes(p[8..12].try_into().unwrap()), 1);
        assert_eq!(u16::from_ne_bytes(p[16..18].try_into().unwrap()), 80);
        let mut s = vec![0u8; STATS_LEN];
        s[8..16].copy_from_slice(&7u64.to_ne_bytes());
        s[(OP_MAX + 4) * 8..(OP_MAX + 5) * 8].copy_from_slice(&3u64.to_ne_bytes());
        let st = decode_stats(&s).unwrap();
        assert_eq!(st.denied[1], 7);
        assert_eq!(st.unreported[4], 3);
        assert!(decode_stats(&s[..10]).is_none());
    }
}
