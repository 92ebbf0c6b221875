/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * flows.h: THE kernel <-> user ABI of rampart's per-container flow accounting
 * (bpf/flows.bpf.c, crates/sensor/src/flows.rs).
 *
 *   fl_flows  hash    struct fl_key -> struct fl_val (one entry per flow and
 *                     cgroup; the agent takes entries out when they end)
 *   fl_stats  percpu  [FL_STAT_*] counters of what found no room in fl_flows
 *   fl_ended  ring    struct fl_end: a TCP flow's final counters, sent when its
 *                     socket reaches TCP_CLOSE; its fl_flows entry is then
 *                     removed by the kernel (the table holds open flows only)
 *
 * A flow is seen from the socket's side: "local" is the socket's own address,
 * "in" is what it received. Addresses are network order (IPv4 in the first 4
 * bytes, a v4-mapped IPv6 address is stored as IPv4), ports host order.
 */
#ifndef RAMPART_FLOWS_H
#define RAMPART_FLOWS_H

struct fl_key {
	__u64 cgroup_id;
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u16 local_port;
	__u16 remote_port;
	__u8 proto;  /* IP protocol: 6 tcp, 17 udp, 1 icmp, ... */
	__u8 family; /* 4 or 6 */
	__u8 _pad[2];
};

struct fl_val {
	__u64 first_ns;    /* boot clock of the first packet (tick precision) */
	__u64 last_ns;     /* ... of the latest packet */
	__u64 closed_ns;   /* TCP: when the socket reached TCP_CLOSE; 0 while open */
	__u64 bytes_in;    /* IP bytes (headers included, per segment) */
	__u64 bytes_out;
	__u64 payload_in;  /* payload bytes: what the applications exchanged (TCP:
	                    * new sequence space only, so without retransmissions;
	                    * UDP: datagram payload; others: beyond the IP header) */
	__u64 payload_out;
	__u64 packets_in;  /* segments: a GSO/GRO packet counts gso_segs */
	__u64 packets_out;
	__u32 retransmits; /* TCP segments retransmitted */
	__u8 tcp_state;    /* latest TCP state (TCP_ESTABLISHED = 1, ...) */
	__u8 state_changes;
	__u8 seq_seen;     /* bit 0: seq_in_next valid, bit 1: seq_out_next valid */
	__u8 _pad;
	/* TCP: the sequence number after the highest byte counted each way, so
	 * that payload counts new data only (not retransmissions) */
	__u32 seq_in_next;
	__u32 seq_out_next;
};

/* A record of fl_ended. When the ring is full the entry stays in fl_flows
 * with closed_ns set, and the agent takes it out at its next drain. */
struct fl_end {
	struct fl_key key;
	struct fl_val val;
};

/* fl_stats indexes: packets whose flow had no entry and could not get one
 * (the table was full). Their counts are here, not lost. */
enum fl_stat {
	FL_STAT_FAILED_INSERTS = 0,
	FL_STAT_LOST_BYTES = 1,
	FL_STAT_LOST_PACKETS = 2,
	FL_STAT_DNS_LOST = 3, /* DNS records that found dns_ring full (dns.h) */
	FL_STAT_MAX = 4,
};

#endif
