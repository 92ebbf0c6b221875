/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Syscall latency per container and syscall (opt-in: sensor.syscall_latency).
 * At sys_enter, one container syscall in latency_sample is stamped (its
 * number and start time); at sys_exit the time taken goes into a log2
 * histogram keyed by (cgroup, syscall), filled in place (hist.h, microseconds).
 * No event crosses to userspace; the agent exports each container's most
 * frequent syscalls.
 *
 * Where the stamp lives: in a per-CPU slot while its task runs, and in the
 * task's storage (common.h's task_sched) while it is off the CPU. The context
 * switch (sched.h) parks the running task's stamp and resumes the next
 * task's, with the task-storage probe it makes anyway for the run queue. So
 * the syscalls that are not timed (15 in 16 by default) never probe a task
 * storage: the entry counts down a per-CPU counter, the exit compares the
 * slot's task with the current one. A syscall that sleeps and wakes up on
 * another CPU is still timed, wall clock from entry to exit.
 *
 * No program of its own at entry: enter_syscalls (syscalls.h) stamps, after
 * the checks it makes anyway for the counts. At exit, exit_syscalls times it
 * with the raw dispatch; with the per-syscall tracepoints, sc_latency_exit
 * does. Included by sensor.bpf.c after hist.h, before sched.h and syscalls.h.
 */
#ifndef RAMPART_SYSCALL_LATENCY_H
#define RAMPART_SYSCALL_LATENCY_H

#define SYSCALL_LATENCY_ENTRIES 16384

/* On only with sensor.syscall_latency (set before load). */
const volatile bool time_syscalls = false;
/* One container syscall in latency_sample is timed (sensor.syscall_latency_sample),
 * 1 times them all. Which one is random, so that a loop whose period divides
 * the interval does not always time the same syscall: the gap to the next is
 * drawn uniformly from [1, 2N-1] (mean N), per CPU. */
const volatile __u32 latency_sample = 1;

struct sc_latency_key {
	__u64 cgroup; /* cgroup v2 id */
	__u32 nr;     /* native syscall number */
	__u32 _pad;
};

/* The running task's timed syscall, per CPU. task is written last when a
 * stamp is set and cleared first when it is taken, so that a preemption in
 * between never parks half a stamp. */
struct sc_latency_slot {
	__u64 task; /* the task_struct in a timed syscall on this CPU; 0: none */
	__u64 ts;   /* ns at its entry */
	__u32 nr;
	__u32 left; /* container syscalls until the next timed one; 0: not drawn yet */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sc_latency_slot);
} sc_latency_slot SEC(".maps");

static __always_inline struct sc_latency_slot *latency_slot(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&sc_latency_slot, &zero);
}

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
	struct sc_latency_slot *c = latency_slot();
	if (!c)
		return;
	if (latency_sample > 1) {
		__u32 span = 2 * latency_sample - 1;
		__u32 left = c->left;
		if (!left) /* each CPU starts at a random point */
			left = 1 + bpf_get_prandom_u32() % span;
		if (--left) {
			c->left = left;
			return;
		}
		c->left = 1 + bpf_get_prandom_u32() % span;
	}
	c->task = 0;
	c->nr = nr;
	c->ts = bpf_ktime_get_ns();
	barrier();
	c->task = (__u64)t;
}

static __always_inline void latency_exit(void)
{
	struct sc_latency_slot *c = latency_slot();
	if (!c || c->task != bpf_get_current_task())
		return;
	__u64 ts = c->ts;
	__u32 nr = c->nr;
	barrier();
	c->task = 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 took = now > ts ? now - ts : 0;
	struct sc_latency_key key = { .cgroup = bpf_get_current_cgroup_id(), .nr = nr };
	hist_add(&syscall_latency, &key, &syscall_latency_full, took);
}

/* Context switch, prev leaving this CPU: a timed syscall in flight waits in
 * its task storage. */
static __always_inline void latency_park(struct task_struct *prev)
{
	struct sc_latency_slot *c = latency_slot();
	if (!c || c->task != (__u64)prev)
		return;
	__u64 ts = c->ts;
	__u32 nr = c->nr;
	barrier();
	c->task = 0;
	struct task_sched *st = bpf_task_storage_get(&task_sched, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st)
		return; /* this one sample is lost */
	st->sc_nr = nr;
	st->sc_ts = ts;
}

/* Context switch, next (whose storage st is) taking this CPU: its parked
 * syscall, if any, is timed here from now on. The slot is free: prev's was
 * parked just before. */
static __always_inline void latency_resume(struct task_struct *next, struct task_sched *st)
{
	if (!st->sc_ts)
		return;
	struct sc_latency_slot *c = latency_slot();
	if (!c)
		return;
	c->nr = st->sc_nr;
	c->ts = st->sc_ts;
	st->sc_ts = 0;
	barrier();
	c->task = (__u64)next;
}

/* The exit with the per-syscall tracepoints (exit_syscalls is not loaded). */
SEC("tp_btf/sys_exit")
int BPF_PROG(sc_latency_exit, struct pt_regs *regs, long ret)
{
	FLOOR_RETURN(0);
	latency_exit();
	return 0;
}

/* A removed cgroup's histograms go with it (as sched.h's run-queue ones):
 * from userspace, on the agent's scrape, since a hash cannot be searched by
 * half a key here. */

#endif /* RAMPART_SYSCALL_LATENCY_H */
