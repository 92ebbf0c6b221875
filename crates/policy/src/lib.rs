//! rampart's network policy as data: THE file format ([`NetPolicy`], YAML),
//! its limits, and its compilation to the rule tables the kernel's maps hold
//! ([`Compiled`]). Pure: no I/O; callers read the file and hand over its text.
//! `respond` encodes the tables into map bytes and enforces them; `profile`
//! writes policies from recordings.
//!
//! ```yaml
//! egress:
//!   default: deny          # allow (the default) or deny
//!   allow:
//!     - {cidr: 172.17.0.0/16, ports: [80, "8000-8100"], protocol: tcp}
//!   deny:
//!     - {cidr: 10.0.0.0/8, comment: "no internal networks"}
//! ingress:
//!   bind: {default: allow, allow_ports: [8080], deny_ports: [22]}
//! loopback: allow          # allow (the default) or policy
//! rate:                    # per-second limits in the kernel (none by default)
//!   egress_pps: 10000
//!   ingress_bytes_per_sec: 50000000
//! ```
//!
//! Semantics (see docs/ARCHITECTURE.md):
//! * egress (connect, UDP sendto, and packets of raw/ICMP sockets): a deny
//!   entry matching the destination (address in its CIDR, port in its ports,
//!   protocol) denies; else an allow entry matching it allows; else `default`.
//!   Deny wins over allow, whatever the prefix lengths.
//! * `ports` empty means every port; `protocol` is `tcp`, `udp` or `any` (the
//!   default). A rule with ports never matches portless protocols (ICMP).
//! * ingress: `bind` restricts which ports the container may explicitly bind
//!   (deny_ports first, then allow_ports, then default). Binding port 0 (an
//!   ephemeral port, what clients do) is always allowed.
//! * loopback: `allow` lets the container reach its own loopback whatever the
//!   egress rules, when it has a network namespace of its own; with the host's
//!   network (`--network host`) loopback is the host's and always goes through
//!   the rules. `policy` sends loopback through the rules too.
//! * rate: token buckets on every packet the container sends (`egress_*`) or
//!   receives (`ingress_*`), in packets or bytes per second (1 to 10^9; a
//!   burst of 100 ms of the rate). Packets over the limit are dropped (sent
//!   ones with a congestion notification, so TCP backs off). A private
//!   loopback is not limited.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Entries per list (egress allow, egress deny).
pub const MAX_ENTRIES: usize = 1024;
/// Port ranges per entry.
pub const MAX_PORT_RANGES: usize = MAX_RULES;
/// Rules per destination prefix (`struct np_rules` in bpf/netpolicy.h; respond's
/// ABI asserts the C struct's size from this).
pub const MAX_RULES: usize = 32;
/// Bind port rules per policy (`struct np_policy`).
pub const MAX_BIND: usize = 32;

/// `enum np_flags` of bpf/netpolicy.h.
pub mod flags {
    pub const ISOLATED: u32 = 1 << 0;
    pub const EGRESS_DENY: u32 = 1 << 1;
    pub const BIND_DENY: u32 = 1 << 2;
    pub const LOOPBACK_ALLOW: u32 = 1 << 3;
    pub const LOOPBACK_PRIVATE: u32 = 1 << 4;
}

/// `enum np_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RuleAction {
    Allow = 1,
    Deny = 2,
}

/// `struct np_rule`: ports inclusive, host order; proto 0 = any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub port_lo: u16,
    pub port_hi: u16,
    pub proto: u8,
    pub action: RuleAction,
    /// Index of the entry in its policy list (`egress.deny[entry]`, ...).
    pub entry: u16,
}

/// A container's network policy: THE format of `rampart netpolicy apply -f`
/// and of the allow-lists the profile recorder writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetPolicy {
    #[serde(default, skip_serializing_if = "Egress::is_default")]
    pub egress: Egress,
    #[serde(default, skip_serializing_if = "Ingress::is_default")]
    pub ingress: Ingress,
    #[serde(default, skip_serializing_if = "Loopback::is_default")]
    pub loopback: Loopback,
    #[serde(default, skip_serializing_if = "Rate::is_none")]
    pub rate: Rate,
}

/// Rate limits, per second; `None` = no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_pps: Option<RateValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_pps: Option<RateValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_bytes_per_sec: Option<RateValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_bytes_per_sec: Option<RateValue>,
}

impl Rate {
    pub fn is_none(&self) -> bool {
        *self == Rate::default()
    }

    /// The kernel's `rate[]` (`enum np_rate`: in pps, out pps, in bytes, out
    /// bytes; 0 = none).
    pub fn kernel(&self) -> [u64; 4] {
        let v = |r: Option<RateValue>| r.map_or(0, |r| r.0);
        [v(self.ingress_pps), v(self.egress_pps), v(self.ingress_bytes_per_sec), v(self.egress_bytes_per_sec)]
    }

    /// These limits over `base`: each limit set here replaces base's.
    pub fn over(&self, base: &Rate) -> Rate {
        Rate {
            egress_pps: self.egress_pps.or(base.egress_pps),
            ingress_pps: self.ingress_pps.or(base.ingress_pps),
            egress_bytes_per_sec: self.egress_bytes_per_sec.or(base.egress_bytes_per_sec),
            ingress_bytes_per_sec: self.ingress_bytes_per_sec.or(base.ingress_bytes_per_sec),
        }
    }

    /// `egress_pps=1000 ingress_bytes_per_sec=...`, for reports.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (name, v) in [
            ("egress_pps", self.egress_pps),
            ("ingress_pps", self.ingress_pps),
            ("egress_bytes_per_sec", self.egress_bytes_per_sec),
            ("ingress_bytes_per_sec", self.ingress_bytes_per_sec),
        ] {
            if let Some(v) = v {
                parts.push(format!("{name}={}", v.0));
            }
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(" ")
        }
    }
}

/// Largest rate limit (`NP_RATE_LIMIT_MAX`).
pub const MAX_RATE: u64 = 1_000_000_000;

/// A per-second limit, 1 to [`MAX_RATE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RateValue(pub u64);

impl RateValue {
    pub fn new(v: u64) -> Result<RateValue, String> {
        if (1..=MAX_RATE).contains(&v) {
            Ok(RateValue(v))
        } else {
            Err(format!("rate {v} out of range: a limit per second is 1..={MAX_RATE}"))
        }
    }
}

impl<'de> Deserialize<'de> for RateValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RateValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a whole number per second, 1..={MAX_RATE}")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RateValue, E> {
                RateValue::new(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RateValue, E> {
                Err(E::custom(format!("rate {v} out of range: a limit per second is 1..={MAX_RATE}")))
            }
        }
        d.deserialize_u64(V)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    /// What happens to destinations no entry matches.
    #[serde(default)]
    pub default: Action,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<Entry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<Entry>,
}

impl Egress {
    fn is_default(&self) -> bool {
        *self == Egress::default()
    }
}

/// One egress entry: destinations in `cidr`, on `ports` (all when empty), by
/// `protocol`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub cidr: Cidr,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
    #[serde(default, skip_serializing_if = "Protocol::is_any")]
    pub protocol: Protocol,
    /// Free text (why the entry exists; the recorder says what it saw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Entry {
    /// `10.0.0.0/8 ports 22,80-90 tcp`, for denial reports and `show`.
    pub fn describe(&self) -> String {
        let mut s = self.cidr.to_string();
        if !self.ports.is_empty() {
            let ports: Vec<String> = self.ports.iter().map(PortRange::to_string).collect();
            s.push_str(" ports ");
            s.push_str(&ports.join(","));
        }
        if !self.protocol.is_any() {
            s.push(' ');
            s.push_str(self.protocol.as_str());
        }
        s
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingress {
    #[serde(default, skip_serializing_if = "BindPolicy::is_default")]
    pub bind: BindPolicy,
}

impl Ingress {
    fn is_default(&self) -> bool {
        *self == Ingress::default()
    }
}

/// Which ports the container may bind explicitly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindPolicy {
    #[serde(default)]
    pub default: Action,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_ports: Vec<PortRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_ports: Vec<PortRange>,
}

impl BindPolicy {
    fn is_default(&self) -> bool {
        *self == BindPolicy::default()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Any,
    Tcp,
    Udp,
}

impl Protocol {
    fn is_any(&self) -> bool {
        *self == Protocol::Any
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Any => "any",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// IP protocol number; 0 = any.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Any => 0,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loopback {
    /// The container's own loopback is always reachable (own netns only).
    #[default]
    Allow,
    /// Loopback goes through the egress rules like any destination.
    Policy,
}

impl Loopback {
    fn is_default(&self) -> bool {
        *self == Loopback::Allow
    }
}

/// An IPv4 or IPv6 network: `10.0.0.0/8`, `fd00::/8`; a bare address is a
/// single host. Host bits must be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    fn max_len(addr: &IpAddr) -> u8 {
        if addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    fn bits(addr: &IpAddr) -> u128 {
        match addr {
            IpAddr::V4(a) => u128::from(u32::from(*a)) << 96,
            IpAddr::V6(a) => u128::from(*a),
        }
    }

    fn mask(len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        }
    }

    /// Whether every address of `other` is in `self`.
    pub fn contains(&self, other: &Cidr) -> bool {
        self.addr.is_ipv4() == other.addr.is_ipv4()
            && self.len <= other.len
            && (Self::bits(&self.addr) ^ Self::bits(&other.addr)) & Self::mask(self.len) == 0
    }

    /// Whether `ip` is in this network.
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        self.contains(&Cidr { addr: ip, len: Self::max_len(&ip) })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr_s, len_s) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr =
            addr_s.parse().map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let max = Self::max_len(&addr);
        let len = match len_s {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: prefix length must be 0..={max}")),
            },
        };
        let c = Cidr { addr, len };
        if Self::bits(&addr) & !Self::mask(len) & (u128::MAX << (128 - u32::from(max))) != 0 {
            let net = Cidr::masked(addr, len);
            return Err(format!("{s:?} has host bits set (the network is {net})"));
        }
        Ok(c)
    }
}

impl Cidr {
    fn masked(addr: IpAddr, len: u8) -> Cidr {
        let bits = Self::bits(&addr) & Self::mask(len);
        let addr = match addr {
            IpAddr::V4(_) => IpAddr::from(((bits >> 96) as u32).to_be_bytes()),
            IpAddr::V6(_) => IpAddr::from(bits.to_be_bytes()),
        };
        Cidr { addr, len }
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.len == Self::max_len(&self.addr) {
            s.collect_str(&self.addr)
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Cidr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a CIDR network such as 10.0.0.0/8 or fd00::/8, or an IP address")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Cidr, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A port or an inclusive port range: `80`, `"80"`, `"8000-8100"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn single(port: u16) -> Self {
        PortRange { lo: port, hi: port }
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

fn port_number(s: &str, whole: &str) -> Result<u16, String> {
    match s.trim().parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(format!("{whole:?}: a port is a number 1..=65535")),
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let r = match s.split_once('-') {
            Some((lo, hi)) => PortRange { lo: port_number(lo, s)?, hi: port_number(hi, s)? },
            None => PortRange::single(port_number(s, s)?),
        };
        if r.lo > r.hi {
            return Err(format!("{s:?}: the range is empty (first port above the last)"));
        }
        Ok(r)
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.lo == self.hi {
            s.serialize_u16(self.lo)
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port (80) or a port range (\"8000-8100\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRange, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRange, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortRange, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A policy file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}{}: {message}", location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct PolicyError {
    /// The file (or `<input>`).
    pub source_name: String,
    /// Line and column, 1-based, when the YAML parser knows them.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

impl NetPolicy {
    /// Parse and validate a policy; errors carry `name:line:column`.
    pub fn from_yaml(text: &str, name: &str) -> Result<NetPolicy, PolicyError> {
        let err =
            |location, message: String| PolicyError { source_name: name.to_string(), location, message };
        if text.trim().is_empty() {
            return Err(err(None, "the policy is empty (write `{}` to allow everything)".into()));
        }
        // Bound nesting and alias expansion before serde_yaml_ng builds anything.
        yamlguard::check_bounds(text, &yamlguard::Limits::default())
            .map_err(|e| err(Some((e.line, e.col)), e.message))?;
        let policy: NetPolicy = serde_yaml_ng::from_str(text).map_err(|e| {
            let loc = e.location().map(|l| (l.line(), l.column()));
            // The location is already in our prefix; serde_yaml_ng appends it too.
            let msg = e.to_string();
            let msg = match msg.rfind(" at line ") {
                Some(i) if loc.is_some() => msg[..i].to_string(),
                _ => msg,
            };
            err(loc, msg)
        })?;
        policy.compile().map_err(|m| err(None, m))?;
        Ok(policy)
    }

    /// The policy as YAML (the format [`NetPolicy::from_yaml`] reads).
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).unwrap_or_else(|e| format!("# cannot serialize: {e}\n"))
    }

    /// Check limits and build the kernel tables; the error names the entry.
    pub fn compile(&self) -> Result<Compiled, String> {
        compile(self)
    }

    /// The policy entry a kernel denial names, as `(path, description)`:
    /// `("egress.deny[2]", Some("10.0.0.0/8"))`, `("egress.default", None)`.
    pub fn entry_for(&self, reason: DenyReason, index: u16) -> (String, Option<String>) {
        let i = usize::from(index);
        match reason {
            DenyReason::DenyEntry => {
                (format!("egress.deny[{i}]"), self.egress.deny.get(i).map(Entry::describe))
            }
            DenyReason::Default => ("egress.default".into(), Some("deny".into())),
            DenyReason::Isolated => ("isolated".into(), None),
            DenyReason::BindEntry => (
                format!("ingress.bind.deny_ports[{i}]"),
                self.ingress.bind.deny_ports.get(i).map(PortRange::to_string),
            ),
            DenyReason::BindDefault => ("ingress.bind.default".into(), Some("deny".into())),
            DenyReason::Rate => ("rate".into(), Some(self.rate.describe())),
        }
    }
}

/// Why the kernel denied (`enum np_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    DenyEntry,
    Default,
    Isolated,
    BindEntry,
    BindDefault,
    /// Over the policy's `rate:` (packets only).
    Rate,
}

impl DenyReason {
    pub fn from_raw(v: u8) -> Option<Self> {
        Some(match v {
            1 => DenyReason::DenyEntry,
            2 => DenyReason::Default,
            3 => DenyReason::Isolated,
            4 => DenyReason::BindEntry,
            5 => DenyReason::BindDefault,
            6 => DenyReason::Rate,
            _ => return None,
        })
    }

    /// The entry path when no policy text is at hand.
    pub fn path(self, index: u16) -> String {
        NetPolicy::default().entry_for(self, index).0
    }
}

/// A policy compiled to what the kernel maps hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// `EGRESS_DENY`, `BIND_DENY`, `LOOPBACK_ALLOW` as the policy says; the
    /// isolation and namespace flags are added when it is applied.
    pub flags: u32,
    pub bind: Vec<Rule>,
    /// Every distinct prefix of the egress entries, with the rules of every
    /// entry containing it (deny entries first).
    pub prefixes: Vec<(Cidr, Vec<Rule>)>,
    /// `struct np_policy.rate` ([`Rate::kernel`]).
    pub rate: [u64; 4],
}

fn entry_rules(e: &Entry, action: RuleAction, index: usize) -> Vec<Rule> {
    let proto = e.protocol.number();
    let entry = index as u16;
    if e.ports.is_empty() {
        return vec![Rule { port_lo: 0, port_hi: u16::MAX, proto, action, entry }];
    }
    e.ports.iter().map(|p| Rule { port_lo: p.lo, port_hi: p.hi, proto, action, entry }).collect()
}

fn compile(p: &NetPolicy) -> Result<Compiled, String> {
    let mut flags = 0;
    if p.egress.default == Action::Deny {
        flags |= flags::EGRESS_DENY;
    }
    if p.ingress.bind.default == Action::Deny {
        flags |= flags::BIND_DENY;
    }
    if p.loopback == Loopback::Allow {
        flags |= flags::LOOPBACK_ALLOW;
    }
    for (list, entries) in [("allow", &p.egress.allow), ("deny", &p.egress.deny)] {
        if entries.len() > MAX_ENTRIES {
            return Err(format!("egress.{list}: {} entries, at most {MAX_ENTRIES}", entries.len()));
        }
        for (i, e) in entries.iter().enumerate() {
            if e.ports.len() > MAX_PORT_RANGES {
                return Err(format!(
                    "egress.{list}[{i}] ({}): {} port ranges, at most {MAX_PORT_RANGES}",
                    e.cidr,
                    e.ports.len()
                ));
            }
        }
    }
    let b = &p.ingress.bind;
    if b.allow_ports.len() + b.deny_ports.len() > MAX_BIND {
        return Err(format!(
            "ingress.bind: {} port ranges in allow_ports and deny_ports, at most {}",
            b.allow_ports.len() + b.deny_ports.len(),
            MAX_BIND
        ));
    }
    let mut bind = Vec::new();
    for (i, r) in b.deny_ports.iter().enumerate() {
        bind.push(Rule { port_lo: r.lo, port_hi: r.hi, proto: 0, action: RuleAction::Deny, entry: i as u16 });
    }
    for (i, r) in b.allow_ports.iter().enumerate() {
        bind.push(Rule {
            port_lo: r.lo,
            port_hi: r.hi,
            proto: 0,
            action: RuleAction::Allow,
            entry: i as u16,
        });
    }

    // Deny entries first: the kernel takes the first rule that matches.
    let mut entries: Vec<(&str, usize, &Entry, RuleAction)> = Vec::new();
    entries.extend(p.egress.deny.iter().enumerate().map(|(i, e)| ("deny", i, e, RuleAction::Deny)));
    entries.extend(p.egress.allow.iter().enumerate().map(|(i, e)| ("allow", i, e, RuleAction::Allow)));
    let distinct: BTreeSet<Cidr> = entries.iter().map(|(_, _, e, _)| e.cidr).collect();
    let mut prefixes = Vec::with_capacity(distinct.len());
    for prefix in distinct {
        let mut rules = Vec::new();
        let mut from = Vec::new();
        for (list, i, e, action) in &entries {
            if e.cidr.contains(&prefix) {
                rules.extend(entry_rules(e, *action, *i));
                from.push(format!("egress.{list}[{i}]"));
            }
        }
        if rules.len() > MAX_RULES {
            return Err(format!(
                "destinations in {prefix} match {} port rules (from {}), at most {}: merge port ranges or entries",
                rules.len(),
                from.join(", "),
                MAX_RULES
            ));
        }
        prefixes.push((prefix, rules));
    }
    Ok(Compiled { flags, bind, prefixes, rate: p.rate.kernel() })
}

impl Compiled {
    /// What the kernel decides for a destination, by the same algorithm as
    /// `egress_allowed` in bpf/netpolicy.bpf.c (without isolation and
    /// loopback): `Ok(())` allowed, `Err(reason, index)` denied. For tests and
    /// `rampart netpolicy check`-style explanations.
    pub fn egress_verdict(&self, ip: IpAddr, port: u16, proto: u8) -> Result<(), (DenyReason, u16)> {
        let best = self.prefixes.iter().filter(|(c, _)| c.contains_ip(ip)).max_by_key(|(c, _)| c.len);
        if let Some((_, rules)) = best {
            for r in rules {
                if r.proto != 0 && r.proto != proto {
                    continue;
                }
                if port < r.port_lo || port > r.port_hi {
                    continue;
                }
                return match r.action {
                    RuleAction::Deny => Err((DenyReason::DenyEntry, r.entry)),
                    RuleAction::Allow => Ok(()),
                };
            }
        }
        if self.flags & flags::EGRESS_DENY != 0 {
            Err((DenyReason::Default, 0))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
egress:
  default: deny
  allow:
    - {cidr: 172.17.0.0/16, ports: [80, \"8000-8100\"], protocol: tcp}
    - cidr: 10.1.0.0/16
      ports: [53]
  deny:
    - {cidr: 10.0.0.0/8, comment: no internal networks}
ingress:
  bind: {default: allow, allow_ports: [8080], deny_ports: [\"20-23\"]}
";

    #[test]
    fn documented_example_parses() {
        let p = NetPolicy::from_yaml(EXAMPLE, "p.yaml").unwrap();
        assert_eq!(p.egress.default, Action::Deny);
        assert_eq!(p.egress.allow.len(), 2);
        assert_eq!(p.egress.allow[0].ports, vec![PortRange::single(80), PortRange { lo: 8000, hi: 8100 }]);
        assert_eq!(p.egress.allow[0].protocol, Protocol::Tcp);
        assert_eq!(p.egress.allow[1].protocol, Protocol::Any);
        assert_eq!(p.egress.deny[0].comment.as_deref(), Some("no internal networks"));
        assert_eq!(p.ingress.bind.deny_ports, vec![PortRange { lo: 20, hi: 23 }]);
        assert_eq!(p.loopback, Loopback::Allow);
        // the module documentation's example too
        let doc = include_str!("lib.rs");
        let start = doc.find("//! ```yaml\n").unwrap() + 12;
        let end = start + doc[start..].find("//! ```\n").unwrap();
        let text: String = doc[start..end].lines().map(|l| format!("{}\n", &l[4.min(l.len())..])).collect();
        NetPolicy::from_yaml(&text, "doc").unwrap();
    }

    #[test]
    fn round_trips_through_yaml_and_json() {
        let p = NetPolicy::from_yaml(EXAMPLE, "p.yaml").unwrap();
        let yaml = p.to_yaml();
        assert_eq!(NetPolicy::from_yaml(&yaml, "again").unwrap(), p, "{yaml}");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<NetPolicy>(&json).unwrap(), p);
        assert!(yaml.contains("8000-8100") && yaml.contains("- 80"), "{yaml}");
        // an empty policy serializes to an empty mapping and back
        let empty = NetPolicy::default();
        assert_eq!(NetPolicy::from_yaml(&empty.to_yaml(), "e").unwrap(), empty);
    }

    fn err_of(text: &str) -> PolicyError {
        NetPolicy::from_yaml(text, "bad.yaml").unwrap_err()
    }

    #[test]
    fn unknown_keys_are_refused_with_position() {
        let e = err_of("egress:\n  default: deny\n  alow:\n    - {cidr: 10.0.0.0/8}\n");
        assert_eq!(e.location, Some((3, 3)), "{e}");
        assert!(e.to_string().starts_with("bad.yaml:3:3: "), "{e}");
        assert!(e.message.contains("alow"), "{e}");
        let e = err_of("egress:\n  allow:\n    - {cidr: 10.0.0.0/8, port: [80]}\n");
        assert!(e.message.contains("port"), "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(3), "{e}");
        let e = err_of("egres: {}\n");
        assert_eq!(e.location, Some((1, 1)), "{e}");
    }

    #[test]
    fn bad_values_are_refused_with_position() {
        let e = err_of("egress:\n  allow:\n    - cidr: 10.0.0.1/8\n");
        assert_eq!(e.location.map(|l| l.0), Some(3), "{e}");
        assert!(e.message.contains("host bits") && e.message.contains("10.0.0.0/8"), "{e}");
        let e = err_of("egress:\n  deny:\n    - cidr: 10.0.0.0/33\n");
        assert!(e.message.contains("0..=32"), "{e}");
        let e = err_of("egress:\n  deny:\n    - cidr: nonsense\n");
        assert!(e.message.contains("not an IP"), "{e}");
        let e = err_of("egress:\n  deny:\n    - {cidr: 10.0.0.0/8, ports: [0]}\n");
        assert_eq!(e.location.map(|l| l.0), Some(3), "{e}");
        assert!(e.message.contains("1..=65535"), "{e}");
        let e = err_of("egress:\n  deny:\n    - {cidr: 10.0.0.0/8, ports: [\"90-80\"]}\n");
        assert!(e.message.contains("empty"), "{e}");
        let e = err_of("egress:\n  deny:\n    - {cidr: 10.0.0.0/8, ports: [70000]}\n");
        assert!(e.message.contains("1..=65535"), "{e}");
        let e = err_of("egress:\n  default: block\n");
        assert_eq!(e.location.map(|l| l.0), Some(2), "{e}");
        assert!(e.message.contains("block"), "{e}");
        let e = err_of("egress:\n  deny:\n    - {cidr: 10.0.0.0/8, protocol: icmp}\n");
        assert!(e.message.contains("icmp"), "{e}");
        let e = err_of("egress: [1, 2]\n");
        assert!(e.location.is_some(), "{e}");
        let e = err_of("egress:\n  deny:\n   - {cidr: 10.0.0.0/8\n");
        assert!(e.location.is_some(), "syntax errors are located: {e}");
        let e = err_of("  \n");
        assert!(e.message.contains("empty"), "{e}");
        NetPolicy::from_yaml("{}", "ok").unwrap();
    }

    #[test]
    fn rate_limits_parse_and_bad_ones_are_located() {
        let p = NetPolicy::from_yaml("rate:\n  egress_pps: 1000\n  ingress_bytes_per_sec: 5000000\n", "r")
            .unwrap();
        assert_eq!(p.rate.kernel(), [0, 1000, 5_000_000, 0]);
        assert_eq!(p.compile().unwrap().rate, [0, 1000, 5_000_000, 0]);
        assert_eq!(NetPolicy::from_yaml(&p.to_yaml(), "again").unwrap(), p);
        assert_eq!(p.rate.describe(), "egress_pps=1000 ingress_bytes_per_sec=5000000");
        for (text, want) in [
            ("rate:\n  egress_pps: 0\n", "out of range"),
            ("rate:\n  egress_pps: -5\n", "whole number"),
            ("rate:\n  egress_pps: 2000000000\n", "out of range"),
            ("rate:\n  egress_pps: fast\n", "whole number"),
            ("rate:\n  egress_pps: 1.5\n", "whole number"),
            ("rate:\n  egres_pps: 10\n", "egres_pps"),
        ] {
            let e = err_of(text);
            assert_eq!(e.location.map(|l| l.0), Some(2), "{text:?}: {e}");
            assert!(e.to_string().starts_with("bad.yaml:2:"), "{e}");
            assert!(e.message.contains(want), "{text:?}: {e}");
        }
        let e = err_of("rate: 100\n");
        assert_eq!(e.location.map(|l| l.0), Some(1), "{e}");
    }

    #[test]
    fn limits_name_the_entry() {
        let ports: Vec<String> = (1..=33).map(|p| p.to_string()).collect();
        let text = format!("egress:\n  allow:\n    - {{cidr: 10.0.0.0/8, ports: [{}]}}\n", ports.join(", "));
        let e = err_of(&text);
        assert!(e.message.contains("egress.allow[0]") && e.message.contains("33 port ranges"), "{e}");
        // flattened: a /24 inside three /8..16 entries with 11 rules each
        let eleven = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]";
        let text = format!(
            "egress:\n  allow:\n    - {{cidr: 10.0.0.0/8, ports: {eleven}}}\n    - {{cidr: 10.1.0.0/16, ports: {eleven}}}\n  deny:\n    - {{cidr: 10.1.2.0/24, ports: {eleven}}}\n"
        );
        let e = err_of(&text);
        assert!(e.message.contains("10.1.2.0/24") && e.message.contains("33 port rules"), "{e}");
        assert!(e.message.contains("egress.deny[0]") && e.message.contains("egress.allow[1]"), "{e}");
        let binds: Vec<String> = (1..=33).map(|p| p.to_string()).collect();
        let e = err_of(&format!("ingress:\n  bind:\n    allow_ports: [{}]\n", binds.join(",")));
        assert!(e.message.contains("ingress.bind"), "{e}");
    }

    #[test]
    fn cidr_parsing_and_containment() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains_ip("10.255.0.1".parse().unwrap()));
        assert!(!c.contains_ip("11.0.0.1".parse().unwrap()));
        assert!(!c.contains_ip("::ffff:10.0.0.1".parse().unwrap()), "families never mix");
        let host: Cidr = "192.168.1.5".parse().unwrap();
        assert_eq!(host.len, 32);
        assert_eq!(serde_json::to_string(&host).unwrap(), "\"192.168.1.5\"");
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(&c) && !c.contains(&all));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains_ip("fd12::1".parse().unwrap()));
        assert!(!v6.contains_ip("fe80::1".parse().unwrap()));
        assert!("fd00::1/8".parse::<Cidr>().unwrap_err().contains("fd00::/8"));
        let any6: Cidr = "::/0".parse().unwrap();
        assert!(!any6.contains_ip("1.2.3.4".parse().unwrap()));
        assert_eq!("::1".parse::<Cidr>().unwrap().len, 128);
    }

    #[test]
    fn deny_wins_and_longest_prefix_carries_containing_rules() {
        let p = NetPolicy::from_yaml(
            "egress:\n  default: deny\n  allow:\n    - {cidr: 10.0.0.0/8, ports: [80]}\n    - {cidr: 10.1.0.0/16}\n  deny:\n    - {cidr: 10.1.2.0/24, ports: [22]}\n    - {cidr: 0.0.0.0/0, ports: [25], protocol: tcp}\n",
            "p",
        )
        .unwrap();
        let c = p.compile().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // 10.1.2.3:22 -> the /24 deny, though /16 allows every port
        assert_eq!(c.egress_verdict(ip("10.1.2.3"), 22, 6), Err((DenyReason::DenyEntry, 0)));
        // 10.1.2.3:80 -> allowed by the /16 (carried into the /24's rules)
        assert_eq!(c.egress_verdict(ip("10.1.2.3"), 80, 6), Ok(()));
        // smtp denied everywhere, even inside allowed networks (deny wins)
        assert_eq!(c.egress_verdict(ip("10.1.9.9"), 25, 6), Err((DenyReason::DenyEntry, 1)));
        assert_eq!(c.egress_verdict(ip("10.1.9.9"), 25, 17), Ok(()), "the deny is tcp only");
        // 10.9.0.1: only the /8 allow on port 80
        assert_eq!(c.egress_verdict(ip("10.9.0.1"), 80, 17), Ok(()));
        assert_eq!(c.egress_verdict(ip("10.9.0.1"), 81, 6), Err((DenyReason::Default, 0)));
        assert_eq!(c.egress_verdict(ip("8.8.8.8"), 53, 17), Err((DenyReason::Default, 0)));
        // the /24's table holds: its deny, the /0 deny, then the /8 and /16 allows
        let (_, rules) = c.prefixes.iter().find(|(c, _)| c.to_string() == "10.1.2.0/24").unwrap();
        let actions: Vec<(RuleAction, u16)> = rules.iter().map(|r| (r.action, r.entry)).collect();
        assert_eq!(
            actions,
            vec![
                (RuleAction::Deny, 0),
                (RuleAction::Deny, 1),
                (RuleAction::Allow, 0),
                (RuleAction::Allow, 1)
            ]
        );
        assert_eq!(c.flags & flags::EGRESS_DENY, flags::EGRESS_DENY);
        assert_eq!(c.flags & flags::LOOPBACK_ALLOW, flags::LOOPBACK_ALLOW);
    }

    #[test]
    fn bind_rules_deny_first() {
        let p = NetPolicy::from_yaml(
            "ingress:\n  bind: {default: deny, allow_ports: [\"8000-8100\"], deny_ports: [8080]}\nloopback: policy\n",
            "p",
        )
        .unwrap();
        let c = p.compile().unwrap();
        assert_eq!(c.bind[0].action, RuleAction::Deny);
        assert_eq!((c.bind[0].port_lo, c.bind[0].port_hi), (8080, 8080));
        assert_eq!(c.bind[1].action, RuleAction::Allow);
        assert_eq!(c.flags & flags::BIND_DENY, flags::BIND_DENY);
        assert_eq!(c.flags & flags::LOOPBACK_ALLOW, 0);
        assert_eq!(
            p.entry_for(DenyReason::BindEntry, 0),
            ("ingress.bind.deny_ports[0]".to_string(), Some("8080".to_string()))
        );
    }

    #[test]
    fn entries_are_described() {
        let p = NetPolicy::from_yaml(EXAMPLE, "p").unwrap();
        assert_eq!(
            p.entry_for(DenyReason::DenyEntry, 0),
            ("egress.deny[0]".to_string(), Some("10.0.0.0/8".to_string()))
        );
        assert_eq!(p.egress.allow[0].describe(), "172.17.0.0/16 ports 80,8000-8100 tcp");
        assert_eq!(p.entry_for(DenyReason::DenyEntry, 9).1, None);
        assert_eq!(DenyReason::from_raw(3).unwrap().path(0), "isolated");
        assert_eq!(DenyReason::from_raw(2).unwrap().path(0), "egress.default");
        assert!(DenyReason::from_raw(0).is_none());
    }

    #[test]
    fn hostile_yaml_is_refused_with_position() {
        let e = NetPolicy::from_yaml(&yamlguard::hostile::alias_bomb("x", 5000), "p.yaml").unwrap_err();
        assert!(e.message.contains("expands to more than"), "{e}");
        assert!(e.location.is_some(), "{e}");
        let e = NetPolicy::from_yaml(&yamlguard::hostile::deep("egress", 10_000), "p.yaml").unwrap_err();
        assert!(e.message.contains("nesting deeper"), "{e}");
        assert!(e.to_string().starts_with("p.yaml:1:"), "{e}");
    }
}
