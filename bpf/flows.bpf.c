// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * rampart flow accounting: bytes and packets of every flow of every container,
 * in the kernel, read by the agent from the fl_flows map (ABI: flows.h).
 *
 *   cgroup_skb/ingress|egress   attached once, with BPF_F_ALLOW_MULTI, to the
 *                               root of the cgroup v2 hierarchy: every socket of
 *                               every cgroup passes through them, from its first
 *                               packet, whatever else (network policy) is
 *                               attached below. They always return 1 (pass).
 *   tp_btf/inet_sock_set_state  TCP state of a flow; TCP_CLOSE ends it
 *   tp_btf/tcp_retransmit_skb   retransmitted segments
 *
 * The packet programs also copy DNS payloads (port 53) to a ring buffer
 * when dns_capture is set (dns.h).
 *
 * Only sockets outside the host's network namespace are counted (containers
 * with their own network), unless include_host is set. The same programs keep
 * the per-container counters of scan and flood detection and of each
 * container's traffic (netstat_count.h). The per-flow table is filled only
 * while fl_records says so: the agent turns it off while nothing reads flow
 * records (no loaded rule can match a flow event), which takes a hash lookup
 * or insert, four atomics and, for TCP, a delete and a ring record per
 * connection off every packet and state change.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "flows.h"
#include "floor.h"

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define AF_INET_ 2
#define AF_INET6_ 10
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define TCP_SYN_SENT_ 2
#define TCP_CLOSE_ 7
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_DEST 60
#define IPV6_MAX_EXT 3

const volatile bool include_host = false;
/* inode of the host's network namespace (the agent's own) */
const volatile __u32 host_net_ns = 0;

/* Forces the ABI types into BTF for the skeleton (sizes asserted in Rust). */
struct fl_key _abi_fl_key = {};
struct fl_val _abi_fl_val = {};
struct fl_end _abi_fl_end = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768); /* set by the loader (flows.max_entries) */
	__type(key, struct fl_key);
	__type(value, struct fl_val);
} fl_flows SEC(".maps");

/* Ended TCP flows, drained by the agent at every poll (a few ms): at 144
 * bytes a record, 1 MiB holds ~7,000 ends between two polls. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} fl_ended SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FL_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} fl_stats SEC(".maps");

/* One slot: 1 while the per-flow table is kept (fl_flows, fl_ended). Set to
 * 1 by the loader; the agent clears it while no consumer wants flow records. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8);
} fl_records SEC(".maps");

static __always_inline int records_on(void)
{
	__u32 zero = 0;
	__u8 *on = bpf_map_lookup_elem(&fl_records, &zero);
	return on && *on;
}

/* CLOCK_BOOTTIME - CLOCK_MONOTONIC, kept by the agent (it moves only when
 * the machine resumes from a suspend). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} fl_clock SEC(".maps");

/* The boot clock at tick precision (a few ms behind at most): a packet's
 * time without a clock-source read, which costs ~25 ns on these VMs and ran
 * on every packet. Flow times (first, last packet; idle timeouts of a minute)
 * need no more. */
static __always_inline __u64 coarse_boot_ns(void)
{
	__u32 zero = 0;
	__u64 *off = bpf_map_lookup_elem(&fl_clock, &zero);
	return bpf_ktime_get_coarse_ns() + (off ? *off : 0);
}

/* After the clock: the counters read it for the scan bitmaps' epoch. */
#include "netstat_count.h"

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&fl_stats, &idx);
	if (v)
		*v += n; /* per-CPU: no atomics needed */
}

#define RAMPART_DNS_PROGRAM
#include "dns.h"

static __always_inline int counted_netns(const struct sock *sk)
{
	if (include_host)
		return 1;
	return sk->__sk_common.skc_net.net->ns.inum != host_net_ns;
}

/* The flow's entry, created when missing; NULL (and counted) when the table
 * is full. */
static __always_inline struct fl_val *flow_entry(const struct fl_key *key, __u64 now, __u64 bytes,
						 __u64 packets)
{
	struct fl_val *v = bpf_map_lookup_elem(&fl_flows, key);
	if (v)
		return v;
	struct fl_val fresh = {.first_ns = now};
	int err = bpf_map_update_elem(&fl_flows, key, &fresh, BPF_NOEXIST);
	v = bpf_map_lookup_elem(&fl_flows, key); /* -EEXIST: another CPU made it */
	if (!v || (err && err != -17)) {
		stat_add(FL_STAT_FAILED_INSERTS, 1);
		stat_add(FL_STAT_LOST_BYTES, bytes);
		stat_add(FL_STAT_LOST_PACKETS, packets);
		return NULL;
	}
	return v;
}

/* ---- packets ---- */

/* How far a segment may end past the edge counted so far and still be taken
 * as data: segments overtaken by a later one on another CPU are at most a few
 * GSO packets behind. A segment further ahead is outside any window the
 * kernel will accept (e.g. spoofed from outside): it must not move the edge,
 * or the real data after it would count as already seen. */
#define TCP_REORDER_MAX (16u << 20)

/* How much of a TCP segment's payload is new: the sequence space it moves the
 * highest edge seen in that direction by, less its SYN and FIN (one number
 * each). A segment that overtakes earlier ones (two CPUs running this hook for
 * one socket at once) counts the gap too: the earlier segments, arriving
 * after, are behind the edge and count nothing. Retransmitted and duplicate
 * data count in bytes_* (they cross the wire) but not in payload_*. The edge
 * moves by compare-and-swap, so concurrent segments count once. */
static __always_inline __u64 tcp_new_payload(struct fl_val *v, const __u8 *t, __u64 payload, int egress)
{
	__u32 seq = ((__u32)t[4] << 24) | ((__u32)t[5] << 16) | ((__u32)t[6] << 8) | t[7];
	__u8 flags = t[13];
	__u32 marks = ((flags & 0x02) ? 1 : 0) + ((flags & 0x01) ? 1 : 0);
	__u32 end = seq + (__u32)payload + marks;
	__u8 bit = egress ? 2 : 1;
	__u32 *edge = egress ? &v->seq_out_next : &v->seq_in_next;
	if (!(v->seq_seen & bit)) {
		/* the flow's first segment this way: everything it carries */
		*edge = end;
		v->seq_seen |= bit;
		return payload;
	}
	for (int i = 0; i < 8; i++) {
		__u32 cur = *(volatile __u32 *)edge;
		__s32 ahead = (__s32)(end - cur);
		if (ahead <= 0 || (__u64)ahead > payload + marks + TCP_REORDER_MAX)
			return 0;
		if (__sync_val_compare_and_swap(edge, cur, end) == cur)
			return (__u32)ahead > marks ? (__u32)ahead - marks : 0;
	}
	return 0; /* the edge moved eight times under us: bounded, not exact, under such contention */
}

static __always_inline __u64 segs_of(const struct __sk_buff *skb)
{
	return skb->gso_segs ? skb->gso_segs : 1;
}

/* The IP bytes a packet is on the wire, its headers (hdrs: IP and L4) once
 * per segment: a GSO/GRO packet carries them once for gso_segs segments. A
 * BIG TCP super-packet (IPv6 over 64 KiB) carries a hop-by-hop jumbo header
 * (hbh bytes) that no segment on the wire has: not counted at all. */
static __always_inline __u64 wire_bytes(const struct __sk_buff *skb, __u32 hdrs, __u32 hbh)
{
	__u64 len = skb->len;
	__u64 jumbo = len > 65535 + 40 ? hbh : 0;
	return len - jumbo + (segs_of(skb) - 1) * (hdrs - jumbo);
}

static __always_inline int account_skb(struct __sk_buff *skb, int egress)
{
	struct bpf_sock *bsk = skb->sk;
	if (!bsk)
		return 1;
	bsk = bpf_sk_fullsock(bsk);
	if (!bsk)
		return 1;
	const struct sock *sk = bpf_core_cast(bsk, struct sock);
	if (!counted_netns(sk))
		return 1;

	/* The socket's cgroup, as bpf_skb_cgroup_id gives it for a full
	 * socket, by loads instead of a helper call. */
	struct cgroup *cg = sk->sk_cgrp_data.cgroup;
	if (!cg)
		return 1;
	struct fl_key key = {};
	key.cgroup_id = cg->kn->id;
	/* Headers are read in place when the linear data holds them (every
	 * packet a local socket sends, nearly every one it receives), by the
	 * helper otherwise: two helper calls fewer per packet. */
	const __u8 *data = (const __u8 *)(long)skb->data;
	const __u8 *data_end = (const __u8 *)(long)skb->data_end;
	__u8 h[40];
	__u32 l3, hbh = 0;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (data + 20 <= data_end)
			__builtin_memcpy(h, data, 20);
		else if (bpf_skb_load_bytes(skb, 0, h, 20))
			return 1;
		l3 = (h[0] & 0xf) * 4;
		key.proto = h[9];
		key.family = 4;
		__builtin_memcpy(key.local_addr, &h[egress ? 12 : 16], 4);
		__builtin_memcpy(key.remote_addr, &h[egress ? 16 : 12], 4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (data + 40 <= data_end)
			__builtin_memcpy(h, data, 40);
		else if (bpf_skb_load_bytes(skb, 0, h, 40))
			return 1;
		l3 = 40;
		key.proto = h[6];
		key.family = 6;
		/* Walk a few extension headers: BIG TCP's GSO packets carry a
		 * hop-by-hop jumbo header before TCP. */
		for (int i = 0; i < IPV6_MAX_EXT; i++) {
			if (key.proto != NEXTHDR_HOP && key.proto != NEXTHDR_ROUTING && key.proto != NEXTHDR_DEST)
				break;
			__u8 ext[2];
			if (bpf_skb_load_bytes(skb, l3, ext, 2))
				return 1;
			if (key.proto == NEXTHDR_HOP)
				hbh = (ext[1] + 1) * 8;
			key.proto = ext[0];
			l3 += (ext[1] + 1) * 8;
		}
		__builtin_memcpy(key.local_addr, &h[egress ? 8 : 24], 16);
		__builtin_memcpy(key.remote_addr, &h[egress ? 24 : 8], 16);
	} else {
		return 1;
	}
	__u32 l4 = 0;
	__u8 t[14] = {};
	if (key.proto == IPPROTO_TCP_ || key.proto == IPPROTO_UDP_) {
		__u32 need = key.proto == IPPROTO_TCP_ ? 14 : 4;
		/* l3 is at most 60 (IPv4) or 40 + 3 extension headers of at most
		 * 2 KiB each (IPv6): bounded for the verifier's packet range. */
		if (l3 <= 8192 && data + l3 + 14 <= data_end)
			__builtin_memcpy(t, data + l3, 14);
		else if (need == 14 ? bpf_skb_load_bytes(skb, l3, t, 14) : bpf_skb_load_bytes(skb, l3, t, 4))
			return 1;
		__u16 sport = (t[0] << 8) | t[1], dport = (t[2] << 8) | t[3];
		key.local_port = egress ? sport : dport;
		key.remote_port = egress ? dport : sport;
		l4 = key.proto == IPPROTO_TCP_ ? (t[12] >> 4) * 4 : 8;
		int udp_answer = key.proto == IPPROTO_UDP_ && ns_udp_answers(bsk, egress);
		ns_count(key.cgroup_id, egress, key.proto, key.proto == IPPROTO_TCP_ ? t[13] : 0, 0,
			 udp_answer, key.remote_addr, key.remote_port, wire_bytes(skb, l3 + l4, hbh), segs_of(skb));
		/* A query to Docker's embedded DNS leaves with its port NATed
		 * away from 53: the connected socket's own peer still says 53. */
		if (key.proto == IPPROTO_UDP_)
			ns_dns(skb, key.cgroup_id, egress,
			       egress ? dport == DNS_PORT || bpf_ntohs(bsk->dst_port) == DNS_PORT : sport == DNS_PORT,
			       l3 + 8);
		/* The packet must be the socket's own: a kernel control socket
		 * (TIME_WAIT acks, resets) shares the netns and cgroup but not the
		 * port, and would otherwise revive a finished flow. */
		if (bsk->src_port != key.local_port)
			return 1;
		/* Egress runs after the OUTPUT chain's DNAT (e.g. Docker's
		 * embedded DNS, 127.0.0.11:53 -> another port), ingress after
		 * the reply is un-NATed: key a connected socket's packets by the
		 * socket's own peer, as the application and ingress see it. */
		__u16 peer_port = bpf_ntohs(bsk->dst_port);
		if (egress && peer_port) {
			if (key.family == 4 && bsk->family == AF_INET_) {
				__u32 dst = bsk->dst_ip4;
				__builtin_memcpy(key.remote_addr, &dst, 4);
				key.remote_port = peer_port;
			} else if (key.family == 6 && bsk->family == AF_INET6_) {
				__u32 dst[4] = {bsk->dst_ip6[0], bsk->dst_ip6[1], bsk->dst_ip6[2], bsk->dst_ip6[3]};
				__builtin_memcpy(key.remote_addr, dst, 16);
				key.remote_port = peer_port;
			}
		}
	} else {
		__u8 icmp_type = 0;
		bpf_skb_load_bytes(skb, l3, &icmp_type, 1);
		ns_count(key.cgroup_id, egress, key.proto, 0, icmp_type, 0, key.remote_addr, 0,
			 wire_bytes(skb, l3, hbh), segs_of(skb));
	}
	dns_copy(skb, &key, l3 + l4, egress);
	if (!records_on())
		return 1;

	/* The clock only now: a packet the table does not keep reads it only
	 * for a connection attempt's epoch (ns_count). */
	__u64 now = coarse_boot_ns();
	__u64 segs = segs_of(skb);
	__u64 hdrs = l3 + l4;
	__u64 bytes = wire_bytes(skb, hdrs, hbh);
	__u64 payload = skb->len > hdrs ? skb->len - hdrs : 0;
	struct fl_val *v = flow_entry(&key, now, bytes, segs);
	if (!v)
		return 1;
	if (key.proto == IPPROTO_TCP_)
		payload = tcp_new_payload(v, t, payload, egress);
	if (egress) {
		__sync_fetch_and_add(&v->bytes_out, bytes);
		__sync_fetch_and_add(&v->payload_out, payload);
		__sync_fetch_and_add(&v->packets_out, segs);
	} else {
		__sync_fetch_and_add(&v->bytes_in, bytes);
		__sync_fetch_and_add(&v->payload_in, payload);
		__sync_fetch_and_add(&v->packets_in, segs);
	}
	v->last_ns = now;
	return 1;
}

SEC("cgroup_skb/ingress")
int fl_ingress(struct __sk_buff *skb)
{
	FLOOR_RETURN(1);
	return account_skb(skb, 0);
}

SEC("cgroup_skb/egress")
int fl_egress(struct __sk_buff *skb)
{
	FLOOR_RETURN(1);
	return account_skb(skb, 1);
}

/* ---- TCP socket events ---- */

/* The key of a TCP socket's flow, as its packets give it; 0 when the socket
 * is not counted. */
static __always_inline int tcp_key(const struct sock *sk, struct fl_key *key)
{
	if (sk->sk_protocol != IPPROTO_TCP_ || !counted_netns(sk))
		return 0;
	const struct sock_common *c = &sk->__sk_common;
	key->proto = IPPROTO_TCP_;
	/* inet_sport, not skc_num: the port is released (skc_num zeroed) before
	 * the transition to TCP_CLOSE is traced */
	key->local_port = bpf_ntohs(bpf_core_cast(sk, struct inet_sock)->inet_sport);
	key->remote_port = bpf_ntohs(c->skc_dport);
	__u16 family = c->skc_family;
	if (family == AF_INET_) {
		key->family = 4;
		__builtin_memcpy(key->local_addr, &c->skc_rcv_saddr, 4);
		__builtin_memcpy(key->remote_addr, &c->skc_daddr, 4);
	} else if (family == AF_INET6_) {
		__u32 l[4], r[4];
		__builtin_memcpy(l, &c->skc_v6_rcv_saddr, 16);
		__builtin_memcpy(r, &c->skc_v6_daddr, 16);
		/* a dual-stack socket talking IPv4: its packets are IPv4 */
		if (r[0] == 0 && r[1] == 0 && r[2] == bpf_htonl(0xffff)) {
			key->family = 4;
			__builtin_memcpy(key->local_addr, &l[3], 4);
			__builtin_memcpy(key->remote_addr, &r[3], 4);
		} else {
			key->family = 6;
			__builtin_memcpy(key->local_addr, l, 16);
			__builtin_memcpy(key->remote_addr, r, 16);
		}
	} else {
		return 0;
	}
	struct cgroup *cg = sk->sk_cgrp_data.cgroup;
	if (!cg)
		return 0;
	key->cgroup_id = cg->kn->id;
	return 1;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(fl_tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	FLOOR_RETURN(0);
	/* Only flows that carried packets have an entry, and a connect's move
	 * to SYN_SENT comes before its first packet: nothing to count (and no
	 * lookup that can only miss). */
	if (newstate == TCP_SYN_SENT_)
		return 0;
	if (sk->sk_protocol != IPPROTO_TCP_ || !counted_netns(sk))
		return 0;
	/* The per-container counters need the cgroup only: the flow's key
	 * (addresses, ports) only while the per-flow table is kept. */
	struct cgroup *cg = sk->sk_cgrp_data.cgroup;
	if (!cg)
		return 0;
	ns_tcp_state(cg->kn->id, oldstate, newstate);
	struct fl_key key = {};
	if (!records_on() || !tcp_key(sk, &key))
		return 0;
	struct fl_val *v = bpf_map_lookup_elem(&fl_flows, &key);
	if (!v)
		return 0;
	v->tcp_state = newstate;
	if (v->state_changes < 255)
		v->state_changes++;
	if (newstate != TCP_CLOSE_)
		return 0;
	v->closed_ns = bpf_ktime_get_boot_ns();
	/* The flow ended: its final counters go to the agent on fl_ended and
	 * the entry leaves the table, so that the table holds open flows only
	 * (short connections neither fill it nor lengthen the chains every
	 * packet's lookup walks). A packet of this socket that another CPU
	 * counts between the copy and the delete is not in the record. A full
	 * ring leaves the entry for the agent's drain. */
	struct fl_end *e = bpf_ringbuf_reserve(&fl_ended, sizeof(*e), 0);
	if (!e)
		return 0;
	__builtin_memcpy(&e->key, &key, sizeof(key));
	__builtin_memcpy(&e->val, v, sizeof(*v));
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	bpf_map_delete_elem(&fl_flows, &key);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(fl_tcp_retransmit, const struct sock *sk)
{
	FLOOR_RETURN(0);
	struct fl_key key = {};
	if (!records_on() || !tcp_key(sk, &key))
		return 0;
	struct fl_val *v = bpf_map_lookup_elem(&fl_flows, &key);
	if (v)
		__sync_fetch_and_add(&v->retransmits, 1);
	return 0;
}
