/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * dns.h: DNS capture, included by flows.bpf.c (its cgroup_skb programs see
 * every packet of every container socket). The first DNS_SNAP bytes of the
 * payload of each UDP or TCP packet to or from port 53 go to the dns_ring ring
 * buffer with the flow's key; the agent parses them (crates/sensor/src/dns.rs).
 * Nothing is parsed here: the payload comes from inside containers and is
 * decoded, bounded, in userspace.
 *
 * ABI: struct dns_rec (the ring's records), mirrored in Rust with a size
 * assert.
 */
#ifndef RAMPART_DNS_H
#define RAMPART_DNS_H

#define DNS_SNAP 512
#define DNS_PORT 53

/* After ts_ns, the fields of struct fl_key in its layout, with egress in its
 * padding: the agent decodes them as a flow key. */
struct dns_rec {
	__u64 ts_ns;       /* bpf_ktime_get_boot_ns */
	__u64 cgroup_id;   /* the socket's cgroup (the container) */
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u16 local_port;
	__u16 remote_port;
	__u8 proto;        /* 6 tcp, 17 udp */
	__u8 family;       /* 4 or 6 */
	__u8 egress;       /* 1: the container sent it */
	__u8 _pad;
	__u32 payload_len; /* the whole payload; data holds min(payload_len, DNS_SNAP) */
	__u32 _pad2;
	__u8 data[DNS_SNAP];
};

#ifdef RAMPART_DNS_PROGRAM

/* Set by the loader (sensor.flows.dns). */
const volatile bool dns_capture = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024); /* ~1800 records: 0.5 s of 1000 lookups/s with the agent stalled */
} dns_ring SEC(".maps");

/* Forces the ABI type into BTF for the skeleton. */
struct dns_rec _abi_dns_rec = {};

/* Copies a port-53 packet's payload (at offset off of the skb) to dns_ring.
 * A full ring drops the record, counted in fl_stats[FL_STAT_DNS_LOST]. */
static __always_inline void dns_copy(struct __sk_buff *skb, const struct fl_key *key, __u32 off, int egress)
{
	if (!dns_capture || (key->proto != 6 && key->proto != 17))
		return;
	if (key->remote_port != DNS_PORT && key->local_port != DNS_PORT)
		return;
	if (skb->len <= off)
		return;
	__u32 len = skb->len - off;
	struct dns_rec *r = bpf_ringbuf_reserve(&dns_ring, sizeof(*r), 0);
	if (!r) {
		stat_add(FL_STAT_DNS_LOST, 1);
		return;
	}
	__u64 n = len < DNS_SNAP ? len : DNS_SNAP;
	/* Hide n from clang so that the bound is checked on the register the
	 * helper gets (the verifier needs 1..DNS_SNAP there); 64-bit, since a
	 * 32-bit value may be passed with its upper half unproven. */
	asm volatile("" : "+r"(n));
	if (n == 0 || n > DNS_SNAP || bpf_skb_load_bytes(skb, off, r->data, n)) {
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		return;
	}
	r->ts_ns = bpf_ktime_get_boot_ns();
	r->cgroup_id = key->cgroup_id;
	__builtin_memcpy(r->local_addr, key->local_addr, 16);
	__builtin_memcpy(r->remote_addr, key->remote_addr, 16);
	r->local_port = key->local_port;
	r->remote_port = key->remote_port;
	r->proto = key->proto;
	r->family = key->family;
	r->egress = egress;
	r->_pad = 0;
	r->payload_len = len;
	r->_pad2 = 0;
	/* The agent drains on a timer: no wakeup per record. */
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
}

#endif
#endif
