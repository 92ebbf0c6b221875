/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Syscall latency per container and syscall (opt-in: sensor.syscall_latency).
 * At sys_enter a container task's syscall number and start time go into its
 * task storage (one syscall in latency_sample); at sys_exit the time taken
 * goes into a log2 histogram keyed by (cgroup, syscall), filled in place
 * (same buckets as the run-queue's: struct runq_hist, microseconds). No event crosses to userspace; the agent
 * exports each container's most frequent syscalls.
 * No program of its own at entry: enter_syscalls (syscalls.h) stamps, after
 * the checks it makes anyway for the counts, so a timed syscall runs one
 * program at entry, not two. At exit, exit_syscalls times it with the raw
 * dispatch; with the per-syscall tracepoints, sc_latency_exit does.
 * Host tasks pay one task-storage probe at exit. Included by sensor.bpf.c,
 * after sched.h (hist_add), before syscalls.h.
 */
#ifndef RAMPART_SYSCALL_LATENCY_H
#define RAMPART_SYSCALL_LATENCY_H

#define SYSCALL_LATENCY_ENTRIES 16384

/* On only with sensor.syscall_latency (set before load). */
const volatile bool time_syscalls = false;
/* One syscall in latency_sample per task is timed (sensor.syscall_latency_sample),
 * 1 times them all. Which one is random, so that a loop whose period divides
 * the interval does not always time the same syscall: the gap to the next is
 * drawn uniformly from [1, 2N-1] (mean N). A syscall not timed costs the
 * task-storage probes at entry and exit, no clock read and no histogram. */
const volatile __u32 latency_sample = 1;

struct sc_latency_key {
	__u64 cgroup; /* cgroup v2 id */
	__u32 nr;     /* native syscall number */
	__u32 _pad;
};

struct sc_latency_start {
	__u64 ts; /* ns, 0: no syscall timed */
	__u32 nr;
	__u32 left; /* syscalls until the next timed one; 0: a new task */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sc_latency_start);
} sc_latency_start SEC(".maps");

/* Full: a new (cgroup, syscall) is not timed (syscall_latency_full). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SYSCALL_LATENCY_ENTRIES); /* 1 when off (set by userspace) */
	__type(key, struct sc_latency_key);
	__type(value, struct runq_hist);
} syscall_latency SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} syscall_latency_full SEC(".maps");

/* Entry of a native syscall (nr < SYSCALL_SET_BITS) of a reported task other
 * than runc's init: the caller (per_cgroup_syscall) has checked all that. */
static __always_inline void latency_stamp(struct task_struct *t, __u32 nr)
{
	struct sc_latency_start *s =
		bpf_task_storage_get(&sc_latency_start, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s)
		return;
	if (latency_sample > 1) {
		__u32 span = 2 * latency_sample - 1;
		__u32 left = s->left;
		if (!left) /* a new task starts at a random point */
			left = 1 + bpf_get_prandom_u32() % span;
		if (--left) {
			s->left = left;
			return;
		}
		s->left = 1 + bpf_get_prandom_u32() % span;
	}
	s->nr = nr;
	s->ts = bpf_ktime_get_ns();
}

static __always_inline void latency_exit(struct task_struct *t)
{
	struct sc_latency_start *s = bpf_task_storage_get(&sc_latency_start, t, 0, 0);
	if (!s || !s->ts)
		return;
	__u64 now = bpf_ktime_get_ns();
	__u64 took = now > s->ts ? now - s->ts : 0;
	struct sc_latency_key key = { .cgroup = bpf_get_current_cgroup_id(), .nr = s->nr };
	s->ts = 0;
	hist_add(&syscall_latency, &key, &syscall_latency_full, took);
}

/* The exit with the per-syscall tracepoints (exit_syscalls is not loaded). */
SEC("tp_btf/sys_exit")
int BPF_PROG(sc_latency_exit, struct pt_regs *regs, long ret)
{
	latency_exit(bpf_get_current_task_btf());
	return 0;
}

/* A removed cgroup's histograms go with it (as sched.h's run-queue ones):
 * from userspace, on the agent's scrape, since a hash cannot be searched by
 * half a key here. */

#endif /* RAMPART_SYSCALL_LATENCY_H */
