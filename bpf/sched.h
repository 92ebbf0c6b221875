/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Run-queue latency per container: the time a container's task waits between
 * becoming runnable (woken, or preempted while running) and getting a CPU, as
 * a log2 histogram per cgroup, read by the agent for /metrics and `top`. No
 * event crosses to userspace. Host tasks are never stamped, so the scheduler
 * hooks cost them one task-storage probe (common.h's task_sched). The switch
 * also moves a timed syscall's stamp with its task (syscall_latency.h).
 * Included by sensor.bpf.c after hist.h and syscall_latency.h.
 */
#ifndef RAMPART_SCHED_H
#define RAMPART_SCHED_H

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
	struct task_sched *st = bpf_task_storage_get(&task_sched, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (st)
		st->queued = bpf_ktime_get_boot_ns();
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

SEC("tp_btf/sched_switch")
int BPF_PROG(on_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	/* Preempted while running: back in the queue from now. */
	if (prev_state == 0)
		runq_stamp(prev);
	if (time_syscalls)
		latency_park(prev);
	struct task_sched *st = bpf_task_storage_get(&task_sched, next, 0, 0);
	if (!st)
		return 0;
	if (time_syscalls)
		latency_resume(next, st);
	if (!st->queued)
		return 0;
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 waited = now > st->queued ? now - st->queued : 0;
	st->queued = 0;
	__u64 cg = task_cgroup_id(next);
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
