/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * netpolicy.h: THE kernel <-> user ABI of rampart's per-container network
 * policy (bpf/netpolicy.bpf.c, crates/respond). Every map is pinned under
 * /sys/fs/bpf/rampart/netpolicy and shared by all containers; entries are keyed
 * by the container's cgroup v2 id.
 *
 *   np_policy  hash   cgroup id -> struct np_policy (flags, generation, bind rules)
 *   np_rules   lpm    struct np_lpm_key -> struct np_rules (egress rules of the
 *                     longest matching prefix, flattened with every containing
 *                     prefix's rules by userspace: deny rules first)
 *   np_stats   hash   cgroup id -> struct np_stats (denial counters)
 *   np_events  ring   struct np_event records of denials
 *   np_lost    percpu records that did not fit in the ring
 *   np_meta    array  [0] = hash of the object that created the pins
 *   np_bucket  hash   cgroup id -> struct np_bucket (rate limit token buckets)
 *
 * The Rust side mirrors these structs by hand (crates/respond/src/abi.rs) and
 * asserts the sizes against the skeleton's generated types.
 */
#ifndef RAMPART_NETPOLICY_H
#define RAMPART_NETPOLICY_H

/* Rules per longest-match prefix (after flattening) and bind rules per policy. */
#define NP_MAX_RULES 32
#define NP_MAX_BIND 32

/* np_policy.flags */
enum np_flags {
	NPF_ISOLATED = 1 << 0,        /* drop everything (but private loopback) */
	NPF_EGRESS_DENY = 1 << 1,     /* egress default: deny */
	NPF_BIND_DENY = 1 << 2,       /* bind default: deny */
	NPF_LOOPBACK_ALLOW = 1 << 3,  /* loopback destinations skip the egress rules */
	NPF_LOOPBACK_PRIVATE = 1 << 4,/* the container has its own netns: its loopback
	                               * is its own, and stays open when isolated */
};

/* np_rule.action */
enum np_action {
	NPA_ALLOW = 1,
	NPA_DENY = 2,
};

/* Operations (np_event.op, index into np_stats.denied). */
enum np_op {
	NP_OP_CONNECT = 0,
	NP_OP_SENDMSG = 1,
	NP_OP_BIND = 2,
	NP_OP_INGRESS = 3,
	NP_OP_EGRESS = 4,
	NP_OP_MAX = 5,
};

/* Why it was denied (np_event.reason). */
enum np_reason {
	NPR_DENY_ENTRY = 1,   /* egress.deny[entry] */
	NPR_DEFAULT = 2,      /* egress.default: deny */
	NPR_ISOLATED = 3,     /* the container is isolated */
	NPR_BIND_ENTRY = 4,   /* ingress.bind.deny_ports[entry] */
	NPR_BIND_DEFAULT = 5, /* ingress.bind.default: deny */
	NPR_RATE = 6,         /* over the policy's rate: limit (packets only) */
};

/* np_policy.rate indexes: limits per second; 0 = none. */
enum np_rate {
	NP_RATE_IN_PPS = 0,
	NP_RATE_OUT_PPS = 1,
	NP_RATE_IN_BYTES = 2,
	NP_RATE_OUT_BYTES = 3,
	NP_RATE_MAX = 4,
};
/* Largest limit (keeps the token arithmetic within 64 bits). */
#define NP_RATE_LIMIT_MAX 1000000000ull

/* One port/protocol rule. Ports are host order, inclusive; proto 0 = any. */
struct np_rule {
	__u16 port_lo;
	__u16 port_hi;
	__u8 proto;
	__u8 action;  /* enum np_action */
	__u16 entry;  /* index of the policy entry (in its list) */
};

struct np_rules {
	__u32 count;
	__u32 _pad;
	struct np_rule rules[NP_MAX_RULES];
};

struct np_policy {
	__u32 flags;  /* enum np_flags */
	__u32 gen;    /* generation of the np_rules entries in force */
	__u32 n_bind;
	__u32 _pad;
	struct np_rule bind[NP_MAX_BIND];
	__u64 rate[NP_RATE_MAX]; /* enum np_rate */
};

/* Token buckets of one cgroup, one per np_rate. Tokens are in billionths
 * (a packet or byte costs 1e9, a nanosecond adds `rate`); a bucket holds
 * 100 ms of its rate (at least one packet, or 256 KiB). `rate` is the limit
 * the bucket was filled for: a changed limit starts a full bucket. */
struct np_bucket {
	struct bpf_spin_lock lock;
	__u32 _pad;
	__u64 rate[NP_RATE_MAX];
	__u64 tokens[NP_RATE_MAX];
	__u64 last_ns[NP_RATE_MAX];
};

/* LPM key: prefixlen counts bits of data, which is cgroup id (8 bytes, native
 * order), generation (4 bytes, native), family (1 byte: 4 or 6), address (16
 * bytes, network order; IPv4 in the first 4), 3 bytes of zero padding. Id,
 * generation and family are always matched in full: prefixlen = 104 + the
 * address prefix length. IPv4 and IPv6 rules never match each other's
 * addresses (a v4-mapped IPv6 destination is looked up as IPv4). */
#define NP_KEY_FIXED_BITS 104
struct np_lpm_key {
	__u32 prefixlen;
	__u8 data[32];
};

struct np_stats {
	__u64 denied[NP_OP_MAX];
	/* denials not reported in the ring (packet drops are reported at most once
	 * per second per direction; the next record carries the count) */
	__u64 unreported[NP_OP_MAX];
	__u64 last_report_ns[NP_OP_MAX];
};

struct np_event {
	__u64 ts_boot_ns;
	__u64 cgroup_id;
	__u64 count;     /* denials this record stands for (>1 after rate limiting) */
	__u32 pid;       /* tgid; 0 for packets (no process context) */
	__u32 tid;
	__u32 uid;
	__u32 gid;
	__u8 comm[16];
	__u8 addr[16];   /* peer / bind address, network order; IPv4 in the first 4 */
	__u16 port;      /* host order */
	__u16 entry;     /* policy entry index for NPR_*_ENTRY */
	__u8 op;         /* enum np_op */
	__u8 reason;     /* enum np_reason */
	__u8 proto;      /* IP protocol (6 tcp, 17 udp, ...) */
	__u8 family;     /* 4 or 6 */
};

#endif
