// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * rampart sensor: one BPF object, sections per concern:
 *   process.h  sched_process_exec / fork / exit (tp_btf)
 *   syscalls.h per-syscall sys_enter_X / sys_exit_X tracepoints (file, net, priv)
 *   cap_capable (tp_btf)
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
struct ev_sys _abi_ev_sys = {};
struct ev_net _abi_ev_net = {};
enum ev_type _abi_ev_type = EV_EXEC;
enum ev_flags _abi_ev_flags = EVF_HAS_RET;
enum str_id _abi_str_id = STR_ARG0;
enum str_kind _abi_str_kind = STR_KIND_RAW;
enum str_item_flags _abi_str_item_flags = STRF_TRUNC;
enum exec_flags _abi_exec_flags = EXECF_MEMFD;

#include "process.h"
#include "syscalls.h"

/* ---- capabilities ---- */

struct cap_key {
	__u64 start_time;
	__u32 tgid;
	__u16 cap;
	__u16 granted;
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
	if (current_is_self())
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	if (!task_reported(t))
		return 0;

	struct cap_key key = {};
	key.start_time = BPF_CORE_READ(t, group_leader, start_time);
	key.tgid = t->tgid;
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
	submit(s);
	return 0;
}
