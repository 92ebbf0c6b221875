/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * netstat.h: THE kernel <-> user ABI of rampart's per-container traffic
 * counters for scan and flood detection (counted by bpf/flows.bpf.c's root
 * cgroup_skb programs and TCP state tracepoint; read by
 * crates/sensor/src/netstat.rs once a second).
 *
 *   fl_netstat  percpu hash  cgroup id -> struct ns_val
 *
 * Counters only grow (the agent turns them into rates over its window); the
 * two bitmap slots hold the distinct destinations of one epoch each (epoch =
 * boot ns >> NS_EPOCH_SHIFT, ~1.07 s; slot = epoch & 1), cleared by the first
 * packet of a new epoch on that CPU. Per CPU: no atomics, no lost updates
 * under a flood; the agent sums counters and ORs bitmaps over CPUs.
 */
#ifndef RAMPART_NETSTAT_H
#define RAMPART_NETSTAT_H

#define NS_EPOCH_SHIFT 30
#define NS_BM_BITS 1024
#define NS_BM_WORDS (NS_BM_BITS / 64)

/* ns_val.packets[dir][...] */
enum ns_proto {
	NS_TCP = 0,
	NS_UDP = 1,
	NS_ICMP = 2, /* ICMP and ICMPv6 */
	NS_OTHER = 3,
	NS_PROTO_MAX = 4,
};

/* dir: 0 = in (received by the container), 1 = out (sent) */
struct ns_val {
	__u64 packets[2][NS_PROTO_MAX]; /* segments on the wire */
	__u64 bytes[2];                 /* IP bytes on the wire (a GSO packet's headers once per segment) */
	__u64 syn[2];                   /* TCP SYN without ACK: connection attempts */
	__u64 rst[2];                   /* TCP RST */
	__u64 established[2];           /* handshakes completed: [0] accepted (SYN_RECV ->
	                                 * ESTABLISHED), [1] connected (SYN_SENT -> ESTABLISHED) */
	__u64 failed_connects;          /* SYN_SENT -> CLOSE (refused, reset, timed out) */
	__u64 epoch[2];                 /* epoch each bitmap slot holds */
	/* distinct destinations of connection attempts out (TCP SYN, UDP, ICMP
	 * echo): bit = hash(remote address, port, protocol) & (NS_BM_BITS - 1) */
	__u64 dst_bm[2][NS_BM_WORDS];
	/* ... and their distinct remote addresses */
	__u64 host_bm[2][NS_BM_WORDS];
	/* DNS over UDP (port 53): queries the container sent (QR = 0) and
	 * NXDOMAIN answers it received (QR = 1, RCODE 3) */
	__u64 dns_queries;
	__u64 dns_nxdomain;
};

#endif
