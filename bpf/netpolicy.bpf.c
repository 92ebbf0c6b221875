// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * rampart network policy: cgroup BPF programs attached to a container's cgroup
 * (v2) by crates/respond, with their maps pinned so enforcement outlives the
 * process that attached them. ABI: netpolicy.h.
 *
 *   cgroup/connect4|6   TCP connect, connected UDP       -> egress rules
 *   cgroup/sendmsg4|6   unconnected UDP sendto/sendmsg   -> egress rules
 *   cgroup/bind4|6      explicit bind                    -> bind rules
 *   cgroup_skb/egress   every packet sent: isolation, the rate limit; and the
 *                       egress rules for sockets the hooks above never see
 *                       (raw IP, ICMP, SCTP)
 *   cgroup_skb/ingress  every packet delivered: isolation, the rate limit
 *
 * A sock_addr program returning 0 makes the syscall fail with EPERM before
 * anything is sent; a cgroup_skb program returning 0 drops the packet.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "netpolicy.h"

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define SOCK_RAW_ 3
#define LOOPBACK_IFINDEX 1
/* Nested cgroups below a container's (docker-in-docker, systemd in a
 * container) are matched to the deepest ancestor with a policy. */
#define NP_MAX_DEPTH 16
/* Packet drops are reported at most this often per cgroup and direction. */
#define NP_PKT_REPORT_NS 1000000000ull

/* Unused globals: they force the ABI types into BTF so the skeleton generates
 * Rust types for them (the Rust side asserts their sizes). */
struct np_policy _abi_np_policy = {};
struct np_rules _abi_np_rules = {};
struct np_lpm_key _abi_np_lpm_key = {};
struct np_stats _abi_np_stats = {};
struct np_event _abi_np_event = {};
/* (No global np_bucket: a global holding a bpf_spin_lock makes .bss
 * unloadable; userspace never reads the buckets.) */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct np_policy);
} np_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct np_lpm_key);
	__type(value, struct np_rules);
} np_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct np_stats);
} np_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct np_bucket);
} np_bucket SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} np_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} np_lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} np_meta SEC(".maps");

struct verdict {
	__u8 reason;
	__u16 entry;
};

struct peer {
	__u8 addr[16];
	__u16 port;
	__u8 proto;
	__u8 family;
};

/* ---- policy lookup ---- */

static __always_inline struct np_policy *policy_of_current(__u64 *cgid)
{
	__u64 id = bpf_get_current_cgroup_id();
	struct np_policy *p = bpf_map_lookup_elem(&np_policy, &id);
	if (p) {
		*cgid = id;
		return p;
	}
	struct np_policy *found = NULL;
	for (int level = 1; level < NP_MAX_DEPTH; level++) {
		__u64 a = bpf_get_current_ancestor_cgroup_id(level);
		if (!a)
			break;
		p = bpf_map_lookup_elem(&np_policy, &a);
		if (p) {
			found = p;
			*cgid = a;
		}
	}
	return found;
}

static __always_inline struct np_policy *policy_of_skb(struct __sk_buff *skb, __u64 *cgid)
{
	__u64 id = bpf_skb_cgroup_id(skb);
	struct np_policy *p = bpf_map_lookup_elem(&np_policy, &id);
	if (p) {
		*cgid = id;
		return p;
	}
	struct np_policy *found = NULL;
	for (int level = 1; level < NP_MAX_DEPTH; level++) {
		__u64 a = bpf_skb_ancestor_cgroup_id(skb, level);
		if (!a)
			break;
		p = bpf_map_lookup_elem(&np_policy, &a);
		if (p) {
			found = p;
			*cgid = a;
		}
	}
	return found;
}

/* ---- addresses ---- */

static __always_inline void set_v4(struct peer *pe, __u32 ip_be)
{
	__builtin_memset(pe->addr, 0, 16);
	__builtin_memcpy(pe->addr, &ip_be, 4);
	pe->family = 4;
}

/* An IPv6 address; a v4-mapped one (::ffff:a.b.c.d, a dual-stack socket
 * talking IPv4) becomes the IPv4 address it stands for. */
static __always_inline void set_v6(struct peer *pe, const __u32 a[4])
{
	if (a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff)) {
		set_v4(pe, a[3]);
		return;
	}
	__builtin_memcpy(pe->addr, a, 16);
	pe->family = 6;
}

/* Loopback, or the unspecified address (a connect to 0.0.0.0 or :: reaches
 * the local host). */
static __always_inline int is_local_dest(const struct peer *pe)
{
	const __u8 *a = pe->addr;
	if (pe->family == 4)
		return a[0] == 127 || (!a[0] && !a[1] && !a[2] && !a[3]);
	for (int i = 0; i < 15; i++)
		if (a[i])
			return 0;
	return a[15] <= 1; /* ::1 or :: */
}

/* ---- decisions ---- */

static __always_inline int egress_allowed(struct np_policy *pol, __u64 cgid, struct peer *pe, int local,
					  struct verdict *v)
{
	__u32 flags = pol->flags;
	if (flags & NPF_ISOLATED) {
		if (local && (flags & NPF_LOOPBACK_PRIVATE))
			return 1;
		v->reason = NPR_ISOLATED;
		return 0;
	}
	if (local && (flags & NPF_LOOPBACK_ALLOW))
		return 1;
	struct np_lpm_key key = {};
	__u32 gen = pol->gen;
	key.prefixlen = NP_KEY_FIXED_BITS + (pe->family == 4 ? 32 : 128);
	__builtin_memcpy(&key.data[0], &cgid, 8);
	__builtin_memcpy(&key.data[8], &gen, 4);
	key.data[12] = pe->family;
	__builtin_memcpy(&key.data[13], pe->addr, 16);
	struct np_rules *rs = bpf_map_lookup_elem(&np_rules, &key);
	if (rs) {
		__u32 n = rs->count;
		for (int i = 0; i < NP_MAX_RULES; i++) {
			if (i >= n)
				break;
			struct np_rule *r = &rs->rules[i];
			if (r->proto && r->proto != pe->proto)
				continue;
			if (pe->port < r->port_lo || pe->port > r->port_hi)
				continue;
			if (r->action == NPA_DENY) {
				v->reason = NPR_DENY_ENTRY;
				v->entry = r->entry;
				return 0;
			}
			return 1;
		}
	}
	if (flags & NPF_EGRESS_DENY) {
		v->reason = NPR_DEFAULT;
		return 0;
	}
	return 1;
}

static __always_inline int bind_allowed(struct np_policy *pol, __u16 port, struct verdict *v)
{
	/* Port 0 asks for an ephemeral port: what every client socket does. */
	if (port == 0)
		return 1;
	__u32 n = pol->n_bind;
	for (int i = 0; i < NP_MAX_BIND; i++) {
		if (i >= n)
			break;
		struct np_rule *r = &pol->bind[i];
		if (port < r->port_lo || port > r->port_hi)
			continue;
		if (r->action == NPA_DENY) {
			v->reason = NPR_BIND_ENTRY;
			v->entry = r->entry;
			return 0;
		}
		return 1;
	}
	if (pol->flags & NPF_BIND_DENY) {
		v->reason = NPR_BIND_DEFAULT;
		return 0;
	}
	return 1;
}

/* ---- reporting ---- */

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&np_lost, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Count the denial; for packets (no process context) report at most once per
 * NP_PKT_REPORT_NS per cgroup and op. Returns the number of denials the
 * record to emit stands for, 0 when none is to be emitted. */
static __always_inline __u64 account(__u64 cgid, __u8 op, int rate_limited)
{
	struct np_stats *st = bpf_map_lookup_elem(&np_stats, &cgid);
	if (!st || op >= NP_OP_MAX)
		return 1;
	__sync_fetch_and_add(&st->denied[op], 1);
	if (!rate_limited)
		return 1;
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 last = st->last_report_ns[op];
	if (last && now - last < NP_PKT_REPORT_NS) {
		__sync_fetch_and_add(&st->unreported[op], 1);
		return 0;
	}
	st->last_report_ns[op] = now;
	/* Not atomic with concurrent increments: a drop counted meanwhile on
	 * another CPU may be folded into the next record instead. */
	__u64 pending = st->unreported[op];
	st->unreported[op] = 0;
	return pending + 1;
}

static __always_inline void emit(__u64 cgid, __u8 op, struct verdict *v, struct peer *pe, __u64 count,
				 int with_task)
{
	struct np_event *e = bpf_ringbuf_reserve(&np_events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return;
	}
	e->ts_boot_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = cgid;
	e->count = count;
	if (with_task) {
		__u64 pt = bpf_get_current_pid_tgid();
		__u64 ug = bpf_get_current_uid_gid();
		e->pid = pt >> 32;
		e->tid = (__u32)pt;
		e->uid = (__u32)ug;
		e->gid = ug >> 32;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	} else {
		e->pid = 0;
		e->tid = 0;
		e->uid = 0;
		e->gid = 0;
		__builtin_memset(e->comm, 0, sizeof(e->comm));
	}
	__builtin_memcpy(e->addr, pe->addr, 16);
	e->port = pe->port;
	e->entry = v->entry;
	e->op = op;
	e->reason = v->reason;
	e->proto = pe->proto;
	e->family = pe->family;
	/* The reader drains on a timer: no wakeup per record. */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

static __always_inline void deny_sock(__u64 cgid, __u8 op, struct verdict *v, struct peer *pe)
{
	account(cgid, op, 0);
	emit(cgid, op, v, pe, 1, 1);
}

/* ---- sock_addr programs ---- */

static __always_inline void peer_v4(struct bpf_sock_addr *ctx, struct peer *pe)
{
	set_v4(pe, ctx->user_ip4);
	pe->port = bpf_ntohs((__u16)ctx->user_port);
	pe->proto = (__u8)ctx->protocol;
}

static __always_inline void peer_v6(struct bpf_sock_addr *ctx, struct peer *pe)
{
	__u32 a[4];
	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	set_v6(pe, a);
	pe->port = bpf_ntohs((__u16)ctx->user_port);
	pe->proto = (__u8)ctx->protocol;
}

static __always_inline int check_egress(struct bpf_sock_addr *ctx, __u8 op, int v6)
{
	__u64 cgid = 0;
	struct np_policy *pol = policy_of_current(&cgid);
	if (!pol)
		return 1;
	struct peer pe = {};
	if (v6)
		peer_v6(ctx, &pe);
	else
		peer_v4(ctx, &pe);
	struct verdict v = {};
	if (egress_allowed(pol, cgid, &pe, is_local_dest(&pe), &v))
		return 1;
	deny_sock(cgid, op, &v, &pe);
	return 0;
}

static __always_inline int check_bind(struct bpf_sock_addr *ctx, int v6)
{
	__u64 cgid = 0;
	struct np_policy *pol = policy_of_current(&cgid);
	if (!pol)
		return 1;
	struct peer pe = {};
	if (v6)
		peer_v6(ctx, &pe);
	else
		peer_v4(ctx, &pe);
	struct verdict v = {};
	if (bind_allowed(pol, pe.port, &v))
		return 1;
	deny_sock(cgid, NP_OP_BIND, &v, &pe);
	return 0;
}

SEC("cgroup/connect4")
int np_connect4(struct bpf_sock_addr *ctx)
{
	return check_egress(ctx, NP_OP_CONNECT, 0);
}

SEC("cgroup/connect6")
int np_connect6(struct bpf_sock_addr *ctx)
{
	return check_egress(ctx, NP_OP_CONNECT, 1);
}

SEC("cgroup/sendmsg4")
int np_sendmsg4(struct bpf_sock_addr *ctx)
{
	return check_egress(ctx, NP_OP_SENDMSG, 0);
}

SEC("cgroup/sendmsg6")
int np_sendmsg6(struct bpf_sock_addr *ctx)
{
	return check_egress(ctx, NP_OP_SENDMSG, 1);
}

SEC("cgroup/bind4")
int np_bind4(struct bpf_sock_addr *ctx)
{
	return check_bind(ctx, 0);
}

SEC("cgroup/bind6")
int np_bind6(struct bpf_sock_addr *ctx)
{
	return check_bind(ctx, 1);
}

/* ---- cgroup_skb programs ---- */

#define NP_NS_PER_S 1000000000ull
#define NP_BURST_MIN_BYTES (256ull << 10)

/* Tokens bucket i holds now (refilled since its last packet); resets a bucket
 * whose limit changed. Called with the bucket locked. */
static __always_inline __u64 refill(struct np_bucket *b, int i, __u64 rate, __u64 cap, __u64 now)
{
	if (b->rate[i] != rate) {
		b->rate[i] = rate;
		b->tokens[i] = cap;
	} else {
		__u64 elapsed = now - b->last_ns[i];
		if (elapsed > NP_NS_PER_S)
			elapsed = NP_NS_PER_S;
		__u64 t = b->tokens[i] + elapsed * rate;
		b->tokens[i] = t > cap ? cap : t;
	}
	b->last_ns[i] = now;
	return b->tokens[i];
}

/* The policy's rate limit for this direction: 1 to pass the packet, 0 when
 * it is over (a token bucket per limit, packets and bytes; a packet must fit
 * both, and takes from both only when it does). */
static __always_inline int rate_allows(struct np_policy *pol, __u64 cgid, struct __sk_buff *skb, int egress)
{
	__u64 pps = pol->rate[egress ? NP_RATE_OUT_PPS : NP_RATE_IN_PPS];
	__u64 bps = pol->rate[egress ? NP_RATE_OUT_BYTES : NP_RATE_IN_BYTES];
	if (!pps && !bps)
		return 1;
	struct np_bucket *b = bpf_map_lookup_elem(&np_bucket, &cgid);
	if (!b) {
		struct np_bucket fresh = {};
		bpf_map_update_elem(&np_bucket, &cgid, &fresh, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&np_bucket, &cgid);
		if (!b)
			return 1; /* no room: the bucket map is as big as np_policy */
	}
	int ip = egress ? NP_RATE_OUT_PPS : NP_RATE_IN_PPS;
	int ib = egress ? NP_RATE_OUT_BYTES : NP_RATE_IN_BYTES;
	__u64 segs = skb->gso_segs ? skb->gso_segs : 1;
	__u64 cap_p = (pps / 10 ? pps / 10 : 1) * NP_NS_PER_S;
	__u64 cap_b = (bps / 10 > NP_BURST_MIN_BYTES ? bps / 10 : NP_BURST_MIN_BYTES) * NP_NS_PER_S;
	/* A packet bigger than a full bucket (a GSO super-packet) passes when the
	 * bucket is full rather than never. */
	__u64 cost_p = segs * NP_NS_PER_S;
	__u64 cost_b = (__u64)skb->len * NP_NS_PER_S;
	if (cost_p > cap_p)
		cost_p = cap_p;
	if (cost_b > cap_b)
		cost_b = cap_b;
	__u64 now = bpf_ktime_get_ns();
	int ok = 1;
	bpf_spin_lock(&b->lock);
	if (pps && refill(b, ip, pps, cap_p, now) < cost_p)
		ok = 0;
	if (bps && refill(b, ib, bps, cap_b, now) < cost_b)
		ok = 0;
	if (ok && pps)
		b->tokens[ip] -= cost_p;
	if (ok && bps)
		b->tokens[ib] -= cost_b;
	bpf_spin_unlock(&b->lock);
	return ok;
}

/* Packets of a private loopback are the container's own business. */
static __always_inline int own_loopback(struct __sk_buff *skb, struct np_policy *pol)
{
	return skb->ifindex == LOOPBACK_IFINDEX && (pol->flags & NPF_LOOPBACK_PRIVATE);
}

/* The packet's peer: destination for egress, source for ingress. Returns 0 on
 * success, -1 for packets that are not IP. */
static __always_inline int parse_skb(struct __sk_buff *skb, int egress, struct peer *pe)
{
	__u8 h[40];
	__u32 l4;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, 0, h, 20))
			return -1;
		__u32 ip;
		__builtin_memcpy(&ip, &h[egress ? 16 : 12], 4);
		set_v4(pe, ip);
		pe->proto = h[9];
		l4 = (h[0] & 0xf) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, 0, h, 40))
			return -1;
		__u32 a[4];
		__builtin_memcpy(a, &h[egress ? 24 : 8], 16);
		set_v6(pe, a);
		pe->proto = h[6]; /* extension headers are not walked */
		l4 = 40;
	} else {
		return -1;
	}
	pe->port = 0;
	if (pe->proto == IPPROTO_TCP_ || pe->proto == IPPROTO_UDP_) {
		__u16 ports[2];
		if (!bpf_skb_load_bytes(skb, l4, ports, 4))
			pe->port = bpf_ntohs(egress ? ports[1] : ports[0]);
	}
	return 0;
}

static __always_inline void deny_pkt(struct __sk_buff *skb, __u64 cgid, __u8 op, struct verdict *v,
				     struct peer *pe, int parsed)
{
	__u64 n = account(cgid, op, 1);
	if (!n)
		return;
	struct peer none = {};
	if (!parsed && parse_skb(skb, op == NP_OP_EGRESS, &none) == 0)
		pe = &none;
	emit(cgid, op, v, pe, n, 0);
}

SEC("cgroup_skb/ingress")
int np_ingress(struct __sk_buff *skb)
{
	__u64 cgid = 0;
	struct np_policy *pol = policy_of_skb(skb, &cgid);
	if (!pol || own_loopback(skb, pol))
		return 1;
	struct verdict v = {.reason = NPR_ISOLATED};
	struct peer pe = {};
	if (!(pol->flags & NPF_ISOLATED)) {
		if (rate_allows(pol, cgid, skb, 0))
			return 1;
		v.reason = NPR_RATE;
	}
	deny_pkt(skb, cgid, NP_OP_INGRESS, &v, &pe, 0);
	return 0;
}

SEC("cgroup_skb/egress")
int np_egress(struct __sk_buff *skb)
{
	__u64 cgid = 0;
	struct np_policy *pol = policy_of_skb(skb, &cgid);
	if (!pol)
		return 1;
	struct verdict v = {};
	struct peer pe = {};
	if (pol->flags & NPF_ISOLATED) {
		if (own_loopback(skb, pol))
			return 1;
		v.reason = NPR_ISOLATED;
		deny_pkt(skb, cgid, NP_OP_EGRESS, &v, &pe, 0);
		return 0;
	}
	if (!own_loopback(skb, pol) && !rate_allows(pol, cgid, skb, 1)) {
		v.reason = NPR_RATE;
		deny_pkt(skb, cgid, NP_OP_EGRESS, &v, &pe, 0);
		/* Drop with congestion notification: TCP backs off, and a UDP
		 * sender sees the drop as a full queue would be (no error), as
		 * under a qdisc's limit. */
		return 2;
	}
	/* TCP and UDP sockets were checked at connect/sendmsg; packets of other
	 * sockets (raw IP, ICMP ping sockets, SCTP) are checked here, one by one. */
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	if (sk->type != SOCK_RAW_ && (sk->protocol == IPPROTO_TCP_ || sk->protocol == IPPROTO_UDP_))
		return 1;
	if (parse_skb(skb, 1, &pe))
		return 1;
	int local = skb->ifindex == LOOPBACK_IFINDEX || is_local_dest(&pe);
	if (egress_allowed(pol, cgid, &pe, local, &v))
		return 1;
	deny_pkt(skb, cgid, NP_OP_EGRESS, &v, &pe, 1);
	return 0;
}
