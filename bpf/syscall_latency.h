/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Syscall latency per container and syscall (opt-in: sensor.syscall_latency).
 * At sys_enter a container task's syscall number and start time go into its
 * task storage; at sys_exit the time taken goes into a log2 histogram keyed by
 * (cgroup, syscall), filled in place (same buckets as the run-queue's:
 * struct runq_hist, microseconds). No event crosses to userspace; the agent
 * exports each container's most frequent syscalls. Its own two programs, apart
 * from the syscall dispatch in syscalls.h, loaded only when asked for.
 * Host tasks pay one task-storage probe at exit. Included by sensor.bpf.c,
 * after sched.h (hist_add) and syscalls.h (in_compat_syscall, is_runc_init).
 */
#ifndef RAMPART_SYSCALL_LATENCY_H
#define RAMPART_SYSCALL_LATENCY_H

#define SYSCALL_LATENCY_ENTRIES 16384

struct sc_latency_key {
	__u64 cgroup; /* cgroup v2 id */
	__u32 nr;     /* native syscall number */
	__u32 _pad;
};

struct sc_latency_start {
	__u64 ts; /* ns, 0: no syscall timed */
	__u32 nr;
	__u32 _pad;
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

SEC("tp_btf/sys_enter")
int BPF_PROG(sc_latency_enter, struct pt_regs *regs, long id)
{
	if (id < 0 || id >= SYSCALL_SET_BITS || current_is_self())
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	if (!task_reported(t) || is_runc_init(t) || in_compat_syscall(t))
		return 0;
	struct sc_latency_start *s =
		bpf_task_storage_get(&sc_latency_start, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s)
		return 0;
	s->nr = (__u32)id;
	s->ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sc_latency_exit, struct pt_regs *regs, long ret)
{
	struct sc_latency_start *s = bpf_task_storage_get(&sc_latency_start, bpf_get_current_task_btf(), 0, 0);
	if (!s || !s->ts)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 took = now > s->ts ? now - s->ts : 0;
	struct sc_latency_key key = { .cgroup = bpf_get_current_cgroup_id(), .nr = s->nr };
	s->ts = 0;
	hist_add(&syscall_latency, &key, &syscall_latency_full, took);
	return 0;
}

/* A removed cgroup's histograms go with it (as sched.h's run-queue ones):
 * from userspace, on the agent's scrape, since a hash cannot be searched by
 * half a key here. */

#endif /* RAMPART_SYSCALL_LATENCY_H */
