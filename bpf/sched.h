/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Run-queue latency per container: the time a container's task waits between
 * becoming runnable (woken, or preempted while running) and getting a CPU, as
 * a log2 histogram per cgroup, read by the agent for /metrics and `top`. No
 * event crosses to userspace.
 *
 * The kernel stamps a task as it is queued (sched_info.last_queued, on the
 * run queue's clock; CONFIG_SCHED_INFO) and adds the wait to its
 * sched_info.run_delay (/proc/PID/schedstat) once the task has the CPU, just
 * after the sched_switch tracepoint. So the switch alone reads the wait, as
 * the kernel is about to count it: no wakeup hooks and no task storage of
 * our own (creating it on every new task's first wakeup cost ~0.8 us per
 * fork). The switch also moves a timed syscall's stamp with its task
 * (syscall_latency.h). Included by sensor.bpf.c after hist.h and
 * syscall_latency.h.
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

/* The wait that ends as `next` gets this CPU, into its cgroup's histogram:
 * what the kernel adds to next's run_delay right after this tracepoint, on
 * the clock of this CPU's run queue (updated by __schedule before the
 * tracepoint). The run queue is reached through next's CFS run queue, which
 * the kernel keeps on the task's CPU whatever its class (the per-CPU
 * `runqueues` symbol is not in kallsyms without CONFIG_KALLSYMS_ALL). A
 * kernel without sched_info or group scheduling has neither: nothing is
 * counted. */
static __always_inline void runq_account(struct task_struct *next)
{
	if (!bpf_core_field_exists(next->sched_info.last_queued) || !bpf_core_field_exists(next->se.cfs_rq) ||
	    !bpf_core_field_exists(struct cfs_rq, rq))
		return;
	struct task_struct *t = task_ro(next);
	__u64 queued = t->sched_info.last_queued;
	if (!queued || !task_reported(t))
		return;
	struct cfs_rq *cfs = t->se.cfs_rq;
	if (!cfs)
		return;
	__u64 now = cfs->rq->clock;
	__u64 waited = now > queued ? now - queued : 0;
	__u64 cg = task_cgroup_id(t);
	hist_add(&runq_latency, &cg, &runq_full, waited);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	FLOOR_RETURN(0);
	if (time_syscalls) {
		latency_park(prev);
		struct task_sched *st = bpf_task_storage_get(&task_sched, next, 0, 0);
		if (st)
			latency_resume(next, st);
	}
	runq_account(next);
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
