/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Run-queue latency per container: the time a container's task waits between
 * becoming runnable (woken, or preempted while running) and getting a CPU, as
 * a log2 histogram per cgroup, read by the agent for /metrics and `top`. No
 * event crosses to userspace. Host tasks are never stamped, so the scheduler
 * hooks cost them one task-storage probe. Included by sensor.bpf.c.
 */
#ifndef RAMPART_SCHED_H
#define RAMPART_SCHED_H

/* When each runnable container task was queued (ns, boot clock), 0: not queued. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} runq_queued SEC(".maps");

/* cgroup v2 id -> histogram. Full: a new cgroup is not counted (runq_full). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RUNQ_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct runq_hist);
} runq_latency SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} runq_full SEC(".maps");

static __always_inline void runq_stamp(struct task_struct *p)
{
	if (!task_reported(p))
		return;
	__u64 *ts = bpf_task_storage_get(&runq_queued, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (ts)
		*ts = bpf_ktime_get_boot_ns();
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(on_sched_wakeup, struct task_struct *p)
{
	runq_stamp(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(on_sched_wakeup_new, struct task_struct *p)
{
	runq_stamp(p);
	return 0;
}

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

SEC("tp_btf/sched_switch")
int BPF_PROG(on_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	/* Preempted while running: back in the queue from now. */
	if (prev_state == 0)
		runq_stamp(prev);
	__u64 *ts = bpf_task_storage_get(&runq_queued, next, 0, 0);
	if (!ts || !*ts)
		return 0;
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 waited = now > *ts ? now - *ts : 0;
	*ts = 0;
	__u64 cg = BPF_CORE_READ(next, cgroups, dfl_cgrp, kn, id);
	hist_add(&runq_latency, &cg, &runq_full, waited);
	return 0;
}

/* A removed cgroup's histogram goes with it, so the table holds live cgroups
 * only: container churn would otherwise fill it and leave new containers
 * uncounted (the agent's own pruning runs only when /metrics is read). */
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(runq_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return 0; /* cgroup v1: not the ids the histograms are keyed by */
	__u64 id = BPF_CORE_READ(cgrp, kn, id);
	bpf_map_delete_elem(&runq_latency, &id);
	return 0;
}

#endif /* RAMPART_SCHED_H */
