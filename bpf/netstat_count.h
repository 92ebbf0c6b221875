/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The counting side of netstat.h, included by flows.bpf.c: called for every
 * packet of a counted socket *before* the flow table's own filters, so that
 * raw-socket traffic (nmap's SYN scan, hping3) and the kernel's resets count
 * too. Counting is per CPU and per cgroup: a flood costs one map lookup and a
 * few increments per packet, and the ring buffer is not involved, so a flood
 * cannot hide itself by filling it.
 */
#ifndef RAMPART_NETSTAT_COUNT_H
#define RAMPART_NETSTAT_COUNT_H

#include "netstat.h"

#define NS_TCP_FIN 0x01
#define NS_TCP_SYN 0x02
#define NS_TCP_RST 0x04
#define NS_TCP_ACK 0x10

/* Forces the ABI type into BTF for the skeleton; also the zero value new
 * entries start from (too big for the stack). Never written. */
struct ns_val _abi_ns_val = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096); /* containers (cgroups) at once */
	__type(key, __u64);
	__type(value, struct ns_val);
} fl_netstat SEC(".maps");

/* Per UDP socket: which way its first packet went (1 out, 2 in). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u8);
} fl_udp_first SEC(".maps");

/* Whether a UDP socket received before it first sent: a server's socket
 * (a resolver, a syslog or game server), whose packets out answer clients
 * from their many ports, and are no connection attempts; counted as such,
 * a busy resolver looked like a port scan. Raw sockets (nmap -sU, hping3)
 * send first. */
static __always_inline int ns_udp_answers(struct bpf_sock *sk, int egress)
{
	__u8 *first = bpf_sk_storage_get(&fl_udp_first, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!first)
		return 0;
	if (!*first)
		*first = egress ? 1 : 2;
	return *first == 2;
}

/* The murmur3 finaliser: spreads a few input bits over the bitmap. */
static __always_inline __u32 ns_mix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static __always_inline void ns_set_bit(__u64 *bm, __u32 h)
{
	__u32 bit = h & (NS_BM_BITS - 1);
	bm[bit >> 6] |= 1ull << (bit & 63);
}

/* One packet of cgroup `cgid`: proto (IP protocol), tcp_flags (TCP only),
 * icmp_type (ICMP only), udp_answer (UDP only: ns_udp_answers), remote
 * address (16 bytes, IPv4 in the first 4) and port as the packet header
 * gives them. The boot clock (coarse_boot_ns, flows.bpf.c) is read only for
 * a connection attempt, whose epoch picks the bitmaps' slot. */
static __always_inline void ns_count(__u64 cgid, int egress, __u8 proto, __u8 tcp_flags, __u8 icmp_type,
				     int udp_answer, const __u8 *remote, __u16 remote_port, __u64 bytes,
				     __u64 segs)
{
	struct ns_val *v = bpf_map_lookup_elem(&fl_netstat, &cgid);
	if (!v) {
		/* Full table: this container is not counted (the agent reports
		 * the table's size in rampart_netstat_entries). */
		bpf_map_update_elem(&fl_netstat, &cgid, &_abi_ns_val, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&fl_netstat, &cgid);
		if (!v)
			return;
	}
	int dir = egress ? 1 : 0;
	int p = proto == 6 ? NS_TCP : proto == 17 ? NS_UDP : (proto == 1 || proto == 58) ? NS_ICMP : NS_OTHER;
	v->packets[dir][p & 3] += segs;
	v->bytes[dir] += bytes;
	int attempt = 0;
	if (p == NS_TCP) {
		if ((tcp_flags & (NS_TCP_SYN | NS_TCP_ACK)) == NS_TCP_SYN) {
			v->syn[dir]++;
			attempt = 1;
		}
		if (tcp_flags & NS_TCP_RST)
			v->rst[dir]++;
	} else if (p == NS_UDP) {
		attempt = !udp_answer;
	} else if (p == NS_ICMP) {
		attempt = icmp_type == 8 || icmp_type == 128; /* echo request (v4, v6) */
	}
	if (!egress || !attempt)
		return;
	__u32 a[4];
	__builtin_memcpy(a, remote, 16);
	__u32 host = ns_mix(a[0] ^ ns_mix(a[1] ^ ns_mix(a[2] ^ ns_mix(a[3]))));
	__u32 dst = ns_mix(host ^ ((__u32)remote_port << 8) ^ proto);
	__u64 epoch = coarse_boot_ns() >> NS_EPOCH_SHIFT;
	int slot = epoch & 1;
	if (v->epoch[slot] != epoch) {
		__builtin_memset(v->dst_bm[slot], 0, sizeof(v->dst_bm[slot]));
		__builtin_memset(v->host_bm[slot], 0, sizeof(v->host_bm[slot]));
		v->epoch[slot] = epoch;
	}
	ns_set_bit(v->dst_bm[slot], dst);
	ns_set_bit(v->host_bm[slot], host);
}

/* A UDP packet of cgroup `cgid` to or from a DNS server (`dns`: port 53 on
 * the remote side), whose payload starts at `off`: counts the queries the
 * container sends and the NXDOMAIN answers it receives. Two header bytes are
 * read; nothing else of the payload (it comes from the container). Counted
 * here and not from the DNS ring, so that a query flood cannot hide by
 * filling that ring. */
static __always_inline void ns_dns(struct __sk_buff *skb, __u64 cgid, int egress, int dns, __u32 off)
{
	__u8 flags[2];
	if (!dns || bpf_skb_load_bytes(skb, off + 2, flags, 2))
		return;
	struct ns_val *v = bpf_map_lookup_elem(&fl_netstat, &cgid);
	if (!v)
		return;
	int response = flags[0] >> 7;
	if (egress && !response)
		v->dns_queries++;
	else if (!egress && response && (flags[1] & 0x0f) == 3)
		v->dns_nxdomain++;
}

/* A TCP state change of a socket of cgroup `cgid` (inet_sock_set_state). */
static __always_inline void ns_tcp_state(__u64 cgid, int oldstate, int newstate)
{
	/* include/net/tcp_states.h */
	const int established = 1, syn_sent = 2, syn_recv = 3, close = 7;
	int which;
	/* The transition first: most (FIN_WAIT1, CLOSE_WAIT, ...) count
	 * nothing, and skip the map lookup. */
	if (newstate == established && oldstate == syn_recv)
		which = 0;
	else if (newstate == established && oldstate == syn_sent)
		which = 1;
	else if (newstate == close && oldstate == syn_sent)
		which = 2;
	else
		return;
	struct ns_val *v = bpf_map_lookup_elem(&fl_netstat, &cgid);
	if (!v)
		return;
	if (which == 2)
		v->failed_connects++;
	else
		v->established[which & 1]++;
}

#endif
