/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Log2 latency histograms (struct runq_hist, events.h) filled in place in a
 * hash map: the run-queue's (sched.h) and the syscalls' (syscall_latency.h).
 * Included by sensor.bpf.c before both.
 */
#ifndef RAMPART_HIST_H
#define RAMPART_HIST_H

/* floor(log2(x)) for x > 0 */
static __always_inline __u32 log2_u64(__u64 x)
{
	__u32 r = 0;
	if (x >> 32) { x >>= 32; r += 32; }
	if (x >> 16) { x >>= 16; r += 16; }
	if (x >> 8) { x >>= 8; r += 8; }
	if (x >> 4) { x >>= 4; r += 4; }
	if (x >> 2) { x >>= 2; r += 2; }
	if (x >> 1) { r += 1; }
	return r;
}

/* Slot i holds waits of [2^i, 2^(i+1)) microseconds (slot 0: under 2 us),
 * from nanoseconds without a division (a 64-bit divide is tens of cycles, on
 * every timed syscall): with m = log2(ns), log2(ns / 1000) is m - 10 or
 * m - 9, and it is m - 9 when ns >= 1000 << (m - 9). */
static __always_inline __u32 ns_slot(__u64 ns)
{
	if (ns < 2000)
		return 0;
	__u32 m = log2_u64(ns); /* >= 10 here */
	__u32 r = m - 10 + (ns >= (1000ULL << ((m - 9) & 63)));
	return r < RUNQ_SLOTS ? r : RUNQ_SLOTS - 1;
}

/* Adds one duration of ns to the histogram at key in map (a hash of struct
 * runq_hist), creating it; when the map is full, counts the miss in
 * full[0] instead. Shared by the run-queue and syscall latency tables. Two
 * atomic adds: the count is the slots' sum (the reader adds them up). */
static __always_inline void hist_add(void *map, const void *key, void *full, __u64 ns)
{
	struct runq_hist *h = bpf_map_lookup_elem(map, key);
	if (!h) {
		struct runq_hist empty = {};
		if (bpf_map_update_elem(map, key, &empty, BPF_NOEXIST) != 0 && !bpf_map_lookup_elem(map, key)) {
			__u32 zero = 0;
			__u64 *missed = bpf_map_lookup_elem(full, &zero);
			if (missed)
				*missed += 1;
			return;
		}
		h = bpf_map_lookup_elem(map, key);
		if (!h)
			return;
	}
	__sync_fetch_and_add(&h->slots[ns_slot(ns) & (RUNQ_SLOTS - 1)], 1);
	__sync_fetch_and_add(&h->sum_ns, ns);
}

#endif /* RAMPART_HIST_H */
