/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * In-kernel kill: rules whose whole condition the kernel can test are compiled
 * by userspace into kill_triggers keys (cgroup, event type, exact path); the
 * exec and open programs look up the path they already built and, on a hit,
 * send SIGKILL from the same syscall, with no round trip to userspace.
 * Only cgroups userspace armed (containers, never the host) are looked at, and
 * protected process names are never killed. Included by sensor.bpf.c.
 */
#ifndef RAMPART_KILL_H
#define RAMPART_KILL_H

#define SIGKILL 9

/* Armed cgroups (containers with at least one trigger): cgroup id -> count of
 * triggers. The cheap first test; an empty map costs one hash probe. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u32);
} kill_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct kill_key);
	__type(value, struct kill_val);
} kill_triggers SEC(".maps");

/* Process names (comm, zero-padded) never killed in the kernel: the runtimes,
 * rampart, and the names the response config protects. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[16]);
	__type(value, __u8);
} kill_protected SEC(".maps");

/* Room to build a key (272 bytes do not fit the stack next to the callers'). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kill_key);
} kill_keybuf SEC(".maps");

/* Kills (from the kernel) that were sent, per CPU; for `rampart status`. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} kill_count SEC(".maps");

/* The walk item written at offset `at` of the record (by append_walk) names a
 * trigger of this cgroup and event type: SIGKILL the current process and flag
 * the record. */
static __noinline void kill_check(struct scratch *s, __u32 at, __u32 ev_type)
{
	if (SOFF(s) <= at + sizeof(struct str_item))
		return; /* nothing was written */
	__u64 cg = bpf_get_current_cgroup_id();
	if (!bpf_map_lookup_elem(&kill_cgroups, &cg))
		return;
	struct str_item *it = (void *)(s->buf + masked(at));
	if ((it->kind_flags & 0xf) != STR_KIND_WALK || ((it->kind_flags >> 4) & STRF_TRUNC))
		return; /* a cut path never equals a trigger's */
	__u32 len = it->len;
	asm volatile("" : "+r"(len));
	if (len == 0 || len > KILL_PATH_MAX)
		return;
	__u32 zero = 0;
	struct kill_key *k = bpf_map_lookup_elem(&kill_keybuf, &zero);
	if (!k)
		return;
	__u64 *w = (__u64 *)k->path;
	for (int i = 0; i < KILL_PATH_MAX / 8; i++)
		w[i] = 0;
	k->cgroup_id = cg;
	k->ev_type = ev_type;
	k->len = len;
	/* len is 1..KILL_PATH_MAX: say so where the verifier looks (clang drops
	 * a mask it can prove redundant, hence the empty asm). */
	__u32 n = len - 1;
	asm volatile("" : "+r"(n));
	n = (n & (KILL_PATH_MAX - 1)) + 1;
	if (bpf_probe_read_kernel(k->path, n, s->buf + masked(at + sizeof(struct str_item))))
		return;
	struct kill_val *v = bpf_map_lookup_elem(&kill_triggers, k);
	if (!v)
		return;
	char comm[16] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] == 'r' && comm[1] == 'u' && comm[2] == 'n' && comm[3] == 'c' && comm[4] == ':')
		return; /* runc's init: the runtime, not the workload */
	if (bpf_map_lookup_elem(&kill_protected, comm))
		return;
	if (bpf_send_signal(SIGKILL) != 0)
		return;
	struct event_hdr *h = hdr_of(s);
	h->flags |= EVF_KILLED;
	h->kill_trigger = v->trigger_id;
	__u64 *count = bpf_map_lookup_elem(&kill_count, &zero);
	if (count)
		__sync_fetch_and_add(count, 1);
}

#endif /* RAMPART_KILL_H */
