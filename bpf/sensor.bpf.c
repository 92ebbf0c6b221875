// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * rampart sensor: one BPF object, sections per concern:
 *   process.h  sched_process_exec / fork / exit (tp_btf)
 *   syscalls.h tp_btf sys_enter / sys_exit, dispatched on a syscall table
 *              (file, net, priv; the recorder's syscall sets)
 *   cap_capable (tp_btf)
 *   hist.h     the log2 latency histograms of the two below
 *   syscall_latency.h  syscall latency per container (opt-in, no events)
 *   sched.h    run-queue latency per container (sched tp_btf, no events)
 * Every record is described by events.h.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

/* Unused globals: they force the ABI types into BTF so the skeleton generates
 * Rust types for them (the Rust side asserts their sizes). */
struct event_hdr _abi_event_hdr = {};
struct str_item _abi_str_item = {};
struct ev_exec _abi_ev_exec = {};
struct ev_fork _abi_ev_fork = {};
struct ev_exit _abi_ev_exit = {};
struct ev_capable _abi_ev_capable = {};
struct syscall_set _abi_syscall_set = {};
struct ev_sys _abi_ev_sys = {};
struct ev_net _abi_ev_net = {};
struct kill_key _abi_kill_key = {};
struct kill_val _abi_kill_val = {};
struct runq_hist _abi_runq_hist = {};
enum ev_type _abi_ev_type = EV_EXEC;
enum ev_flags _abi_ev_flags = EVF_HAS_RET;
enum str_id _abi_str_id = STR_ARG0;
enum str_kind _abi_str_kind = STR_KIND_RAW;
enum str_item_flags _abi_str_item_flags = STRF_TRUNC;
enum exec_flags _abi_exec_flags = EXECF_MEMFD;

#include "prefilter.h"
#include "kill.h"
#include "process.h"
#include "hist.h"
#include "syscall_latency.h"
#include "sched.h"
#include "syscalls.h"

/* ---- capabilities ---- */

/* One report per (process image, capability, result): an exec starts a new
 * image (runc's init execs the workload in the same process, and its own
 * checks must not hide the workload's). */
struct cap_key {
	__u64 start_time;
	__u32 tgid;
	__u32 exec_id;
	__u16 cap;
	__u16 granted;
	__s32 syscall_nr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct cap_key);
	__type(value, __u8);
} cap_seen SEC(".maps");

SEC("tp_btf/cap_capable")
int BPF_PROG(on_cap_capable, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	FLOOR_RETURN(0);
	/* No loaded rule reads capability checks: an exec alone makes several. */
	if (current_is_self() || type_skipped(EV_CAPABLE))
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	if (!task_reported(t))
		return 0;
	/* A check with overridden credentials is not the task's own privilege:
	 * overlayfs, for one, checks with its mounter's credentials (the runtime's,
	 * with every capability) while a container lists a directory. */
	if (cred != t->real_cred)
		return 0;

	struct cap_key key = {};
	key.start_time = BPF_CORE_READ(t, group_leader, start_time);
	key.tgid = t->tgid;
	key.exec_id = t->self_exec_id;
	/* The syscall in progress tells a probe (e.g. the overcommit check of
	 * CAP_SYS_ADMIN that every mmap makes) from a real use (mount). */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	key.syscall_nr = regs ? (__s32)regs->orig_ax : -1;
	key.cap = cap;
	key.granted = ret == 0;
	__u8 one = 1;
	if (bpf_map_update_elem(&cap_seen, &key, &one, BPF_NOEXIST) != 0)
		return 0; /* already reported for this process */

	struct scratch *s = get_scratch(SLOT_CAP);
	if (!s)
		return 0;
	rec_begin(s, t, EV_CAPABLE, sizeof(struct ev_capable));
	struct ev_capable *b = (void *)(s->buf + sizeof(struct event_hdr));
	b->cap = cap;
	b->granted = ret == 0;
	b->syscall_nr = key.syscall_nr;
	b->_pad = 0;
	submit(s);
	return 0;
}
