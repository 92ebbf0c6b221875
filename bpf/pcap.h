/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * pcap.h: THE kernel <-> user ABI of `rampart pcap` (bpf/pcap.bpf.c,
 * crates/sensor/src/pcap.rs): one record per packet of the captured cgroup,
 * both directions, from its IP header on (no link layer).
 */
#ifndef RAMPART_PCAP_H
#define RAMPART_PCAP_H

/* Largest snap length (bytes of each packet copied). */
#define PCAP_SNAP_MAX 2048

struct pcap_rec {
	__u64 ts_ns;   /* bpf_ktime_get_boot_ns */
	__u32 len;     /* the packet's length (skb->len; a GSO packet is one record) */
	__u32 caplen;  /* bytes in data: min(len, snaplen) */
	__u8 egress;   /* 1: sent by the cgroup's socket */
	__u8 _pad[7];
	__u8 data[PCAP_SNAP_MAX];
};

#endif
