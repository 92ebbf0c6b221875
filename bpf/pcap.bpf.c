// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * rampart pcap: copies the packets of one cgroup's sockets (a container) to
 * a ring buffer, both directions (ABI: pcap.h).
 *
 *   cgroup_skb/ingress|egress   attached, with BPF_F_ALLOW_MULTI, to the
 *                               container's own cgroup: only its sockets pay.
 *                               They always return 1 (pass): capture never drops.
 *
 * The copy is bounded by snaplen (at most PCAP_SNAP_MAX); a full ring loses
 * the packet and counts it in pc_lost.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "pcap.h"

char LICENSE[] SEC("license") = "GPL";

/* Bytes to copy of each packet (set by the loader, 1..PCAP_SNAP_MAX). */
const volatile __u32 snaplen = PCAP_SNAP_MAX;
/* Only this cgroup's own sockets (0: any below the attach point). */
const volatile __u64 cgroup_id = 0;

struct pcap_rec _abi_pcap_rec = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} pc_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pc_lost SEC(".maps");

static __always_inline int capture(struct __sk_buff *skb, int egress)
{
	if (cgroup_id && bpf_skb_cgroup_id(skb) != cgroup_id)
		return 1;
	__u32 len = skb->len;
	/* 64-bit: the register checked is the one passed (a 32-bit value may be
	 * passed with its upper half unproven) */
	__u64 n = len < snaplen ? len : snaplen;
	if (n > PCAP_SNAP_MAX)
		n = PCAP_SNAP_MAX;
	if (n == 0)
		return 1;
	struct pcap_rec *r = bpf_ringbuf_reserve(&pc_ring, sizeof(*r), 0);
	if (!r) {
		__u32 k = 0;
		__u64 *lost = bpf_map_lookup_elem(&pc_lost, &k);
		if (lost)
			*lost += 1;
		return 1;
	}
	/* Hide n from clang so that the bound is checked on the register the
	 * helper gets (the verifier needs 1..PCAP_SNAP_MAX there). */
	asm volatile("" : "+r"(n));
	if (n == 0 || n > PCAP_SNAP_MAX || bpf_skb_load_bytes(skb, 0, r->data, n)) {
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		return 1;
	}
	r->ts_ns = bpf_ktime_get_boot_ns();
	r->len = len;
	r->caplen = n;
	r->egress = egress;
	/* The reader drains on a timer: no wakeup per packet. */
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	return 1;
}

SEC("cgroup_skb/ingress")
int pc_ingress(struct __sk_buff *skb)
{
	return capture(skb, 0);
}

SEC("cgroup_skb/egress")
int pc_egress(struct __sk_buff *skb)
{
	return capture(skb, 1);
}
