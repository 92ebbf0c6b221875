//! The names each container resolved: address -> name from the DNS answers
//! that container received (`dns` events), for `fd.sip.name` and friends on
//! its later connects and accepts. One container's lookups never name another
//! container's connections.
//!
//! Bounded: [`MAX_ADDRS`] addresses per container (the oldest answer goes
//! first), [`MAX_CONTAINERS`] containers (the one whose last answer is oldest
//! goes first), an entry lives for its answer's TTL clamped to
//! [`MIN_TTL_S`]..[`MAX_TTL_S`]. Times are the events' own, so a replayed
//! capture gives the same names as the live agent did.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use model::{Event, EventKind};

/// Addresses remembered per container.
pub const MAX_ADDRS: usize = 256;
/// Containers remembered.
pub const MAX_CONTAINERS: usize = 1024;
/// Floor of an entry's life: resolvers answering from their own config
/// (dnsmasq's `--address`, /etc/hosts) give TTL 0, and the connect that
/// follows the lookup must still be named.
pub const MIN_TTL_S: u64 = 30;
/// Ceiling of an entry's life.
pub const MAX_TTL_S: u64 = 3600;

struct Entry {
    name: Arc<str>,
    expires_ns: u64,
    /// Insertion order within the container, for eviction.
    seq: u64,
}

#[derive(Default)]
struct Names {
    addrs: HashMap<IpAddr, Entry>,
    updated_ns: u64,
}

/// Per-container address -> name, from DNS answers.
#[derive(Default)]
pub struct DnsNames {
    by_cgroup: HashMap<u64, Names>,
    seq: u64,
}

impl DnsNames {
    /// Takes in a `dns` event: an answer the container received (direction
    /// `in`, NOERROR) maps each of its A/AAAA addresses to the question's
    /// name. Anything else is ignored.
    pub fn observe(&mut self, ev: &Event) {
        let EventKind::Dns { direction, response: true, name, rcode, answers, .. } = &ev.kind else { return };
        if direction != "in" || rcode.as_deref() != Some("NOERROR") || ev.process.cgroup_id == 0 {
            return;
        }
        let mut shared: Option<Arc<str>> = None;
        for a in answers.iter().filter(|a| a.rtype == "A" || a.rtype == "AAAA") {
            let Ok(ip) = a.data.parse::<IpAddr>() else { continue };
            let name = shared.get_or_insert_with(|| Arc::from(name.as_str())).clone();
            let ttl = u64::from(a.ttl).clamp(MIN_TTL_S, MAX_TTL_S);
            self.insert(
                ev.process.cgroup_id,
                ip,
                name,
                ev.ts_ns.saturating_add(ttl * 1_000_000_000),
                ev.ts_ns,
            );
        }
    }

    fn insert(&mut self, cgroup: u64, ip: IpAddr, name: Arc<str>, expires_ns: u64, now_ns: u64) {
        if !self.by_cgroup.contains_key(&cgroup) && self.by_cgroup.len() >= MAX_CONTAINERS {
            let oldest = self.by_cgroup.iter().min_by_key(|(_, n)| n.updated_ns).map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.by_cgroup.remove(&k);
            }
        }
        self.seq += 1;
        let names = self.by_cgroup.entry(cgroup).or_default();
        names.updated_ns = names.updated_ns.max(now_ns);
        if !names.addrs.contains_key(&ip) && names.addrs.len() >= MAX_ADDRS {
            names.addrs.retain(|_, e| e.expires_ns > now_ns);
            if names.addrs.len() >= MAX_ADDRS {
                let oldest = names.addrs.iter().min_by_key(|(_, e)| e.seq).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    names.addrs.remove(&k);
                }
            }
        }
        names.addrs.insert(ip, Entry { name, expires_ns, seq: self.seq });
    }

    /// The name the container resolved to `ip`, if that answer is still live
    /// at `at_ns`.
    pub fn lookup(&self, cgroup: u64, ip: IpAddr, at_ns: u64) -> Option<&str> {
        let e = self.by_cgroup.get(&cgroup)?.addrs.get(&ip)?;
        (e.expires_ns > at_ns).then_some(&*e.name)
    }

    /// Containers and addresses held.
    pub fn len(&self) -> (usize, usize) {
        (self.by_cgroup.len(), self.by_cgroup.values().map(|n| n.addrs.len()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{DnsAnswer, ProcessCtx, SockAddr};

    const S: u64 = 1_000_000_000;

    fn answer(cgroup: u64, ts: u64, name: &str, rcode: &str, direction: &str, ips: &[(&str, u32)]) -> Event {
        let a = |ip: &str| SockAddr::Inet { ip: ip.parse().unwrap(), port: 53 };
        Event {
            ts_ns: ts,
            process: ProcessCtx { cgroup_id: cgroup, ..Default::default() },
            container: None,
            ret: None,
            syscall: Some("dns".into()),
            kind: EventKind::Dns {
                proto: "udp".into(),
                direction: direction.into(),
                local: a("172.18.0.3"),
                remote: a("172.18.0.2"),
                id: 1,
                response: true,
                name: name.into(),
                qtype: "A".into(),
                rcode: Some(rcode.into()),
                answers: ips
                    .iter()
                    .map(|(ip, ttl)| DnsAnswer {
                        name: name.into(),
                        rtype: if ip.contains(':') { "AAAA" } else { "A" }.into(),
                        ttl: *ttl,
                        data: (*ip).into(),
                    })
                    .collect(),
                incomplete: false,
            },
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn names_are_per_container_and_expire() {
        let mut d = DnsNames::default();
        d.observe(&answer(
            7,
            10 * S,
            "www.example.test",
            "NOERROR",
            "in",
            &[("10.1.2.3", 300), ("fd00::1", 0)],
        ));
        assert_eq!(d.lookup(7, ip("10.1.2.3"), 11 * S), Some("www.example.test"));
        assert_eq!(d.lookup(7, ip("fd00::1"), 11 * S), Some("www.example.test"));
        // Another container did not resolve it.
        assert_eq!(d.lookup(8, ip("10.1.2.3"), 11 * S), None);
        // TTL 300 s; TTL 0 lives MIN_TTL_S.
        assert_eq!(d.lookup(7, ip("10.1.2.3"), 311 * S), None);
        assert_eq!(d.lookup(7, ip("fd00::1"), (10 + MIN_TTL_S - 1) * S), Some("www.example.test"));
        assert_eq!(d.lookup(7, ip("fd00::1"), (10 + MIN_TTL_S) * S), None);
        // A later answer for the same address renames it.
        d.observe(&answer(7, 20 * S, "other.test", "NOERROR", "in", &[("10.1.2.3", 60)]));
        assert_eq!(d.lookup(7, ip("10.1.2.3"), 21 * S), Some("other.test"));
    }

    #[test]
    fn only_answers_the_container_received_count() {
        let mut d = DnsNames::default();
        // A container serving DNS sends answers out: not its own lookups.
        d.observe(&answer(7, S, "served.test", "NOERROR", "out", &[("10.0.0.1", 60)]));
        d.observe(&answer(7, S, "missing.test", "NXDOMAIN", "in", &[("10.0.0.2", 60)]));
        d.observe(&answer(0, S, "host.test", "NOERROR", "in", &[("10.0.0.3", 60)]));
        assert_eq!(d.len(), (0, 0));
    }

    #[test]
    fn bounded_per_container_and_in_containers() {
        let mut d = DnsNames::default();
        for i in 0..(MAX_ADDRS as u32 + 10) {
            let addr = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            d.observe(&answer(1, S + u64::from(i), "n.test", "NOERROR", "in", &[(&addr, 600)]));
        }
        assert_eq!(d.len(), (1, MAX_ADDRS));
        // The oldest went first.
        assert_eq!(d.lookup(1, ip("10.0.0.0"), 2 * S), None);
        assert!(d.lookup(1, ip("10.0.1.9"), 2 * S).is_some());
        for c in 0..(MAX_CONTAINERS as u64 + 5) {
            d.observe(&answer(100 + c, 3 * S + c, "c.test", "NOERROR", "in", &[("10.9.9.9", 600)]));
        }
        assert_eq!(d.len().0, MAX_CONTAINERS);
        // Container 1 had the oldest answers: gone.
        assert_eq!(d.lookup(1, ip("10.0.1.9"), 4 * S), None);
    }
}
