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

/* Cgroups known to be containers', for triggers armed for every container
 * (cgroup id KILL_ANY_CONTAINER in kill_triggers): marked in the kernel as the
 * cgroup is created (kill_cgroup_mkdir, before any process can be in it) when
 * its name is one only a container runtime gives, and by userspace for every
 * container it resolved; unmarked when the cgroup is removed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} kill_containers SEC(".maps");

/* Top-level cgroup names whose children are containers (userspace fills it
 * from the same table its cgroup path parser uses): /docker/<64 hex>, and
 * /<containerd namespace>/<id>. Names are zero-padded, at most 62 bytes. */
#define KILL_NAME_KEY 64
#define KILL_PARENT_HEX64 1 /* children named by 64 hex characters */
#define KILL_PARENT_NAMED 2 /* children named by a containerd id */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[KILL_NAME_KEY]);
	__type(value, __u8);
} kill_parent_names SEC(".maps");

/* What is armed, in one slot: `any`, how many triggers are armed for every
 * container (while 0, no container lookup is made); `cgroups`, how many
 * cgroups are armed one by one. While both are 0 (no kill action loaded, the
 * default) an open or exec pays one load here and nothing else. */
#define KILL_ANY_CONTAINER 0
struct kill_armed {
	__u32 any;
	__u32 cgroups;
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kill_armed);
} kill_any SEC(".maps");

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
static __noinline void kill_check_armed(struct scratch *s, __u32 at, __u32 ev_type, __u32 any, __u32 cgroups)
{
	if (SOFF(s) <= at + sizeof(struct str_item))
		return; /* nothing was written */
	if (agent_quiet())
		return; /* the agent stopped: no more kills */
	__u64 cg = bpf_get_current_cgroup_id();
	bool armed = cgroups && bpf_map_lookup_elem(&kill_cgroups, &cg) != NULL;
	__u32 zero = 0;
	/* The extra probe only while triggers for every container exist. */
	bool container = any && bpf_map_lookup_elem(&kill_containers, &cg);
	if (!armed && !container)
		return;
	struct str_item *it = (void *)(s->buf + masked(at));
	if ((it->kind_flags & 0xf) != STR_KIND_WALK || ((it->kind_flags >> 4) & STRF_TRUNC))
		return; /* a cut path never equals a trigger's */
	__u32 len = it->len;
	asm volatile("" : "+r"(len));
	if (len == 0 || len > KILL_PATH_MAX)
		return;
	struct kill_key *k = bpf_map_lookup_elem(&kill_keybuf, &zero);
	if (!k)
		return;
	__u64 *w = (__u64 *)k->path;
	for (int i = 0; i < KILL_PATH_MAX / 8; i++)
		w[i] = 0;
	k->cgroup_id = armed ? cg : KILL_ANY_CONTAINER;
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
	if (!v && armed && container) {
		k->cgroup_id = KILL_ANY_CONTAINER;
		v = bpf_map_lookup_elem(&kill_triggers, k);
	}
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

/* The hot path's test: nothing armed (no kill action loaded) is one load. */
static __always_inline void kill_check(struct scratch *s, __u32 at, __u32 ev_type)
{
	__u32 zero = 0;
	struct kill_armed *ka = bpf_map_lookup_elem(&kill_any, &zero);
	if (!ka || (!ka->any && !ka->cgroups))
		return;
	kill_check_armed(s, at, ev_type, ka->any, ka->cgroups);
}

/* ---- which cgroups are containers', decided as they are created ---- */

struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/* A cgroup name, read once; 128 bytes hold the longest name a container
 * gets ("cri-containerd-<64 hex>.scope" is 85). Both sizes are powers of 2:
 * indexes are masked for the verifier. */
#define KILL_NAME_BUF 128
struct kill_names {
	char own[KILL_NAME_BUF];
	char parent[KILL_NAME_KEY];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kill_names);
} kill_namebuf SEC(".maps");

static __always_inline bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* name[i] of a buffer of `cap` bytes, a power of 2 (0 past it); the mask
 * is what the verifier sees (clang may test a copy of i). */
static __always_inline char char_at(const char *name, __u32 i, __u32 cap)
{
	if (i >= cap)
		return 0;
	asm volatile("" : "+r"(i));
	return name[i & (cap - 1)];
}

/* The `len` bytes of a name of a `cap`-byte buffer end with `suffix`. */
static __always_inline bool suffix_is(const char *name, __u32 cap, __u32 len, const char *suffix, __u32 slen)
{
	if (len < slen || len > cap)
		return false;
	for (__u32 i = 0; i < slen && i < 16; i++)
		if (char_at(name, len - slen + i, cap) != suffix[i])
			return false;
	return true;
}

/* 64 hex characters at name[from..from+64). */
static __noinline bool hex64_at(const char *name, __u32 from)
{
	if (from > KILL_NAME_BUF - 64)
		return false;
	for (__u32 i = 0; i < 64; i++) {
		__u32 at = from + i;
		if (!is_hex(char_at(name, at, KILL_NAME_BUF)))
			return false;
	}
	return true;
}

static __always_inline bool prefix_is(const char *name, const char *prefix, __u32 plen)
{
	for (__u32 i = 0; i < plen && i < 16; i++)
		if (name[i] != prefix[i])
			return false;
	return true;
}

/* A containerd id: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 76 bytes, not a
 * systemd scope (cgroup.rs is_named_id). */
static __noinline bool named_id(const char *name, __u32 len)
{
	if (len == 0 || len > 76)
		return false;
	for (__u32 i = 0; i < 76; i++) {
		if (i >= len)
			break;
		char c = name[i];
		bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
		if (!alnum && (i == 0 || (c != '.' && c != '-' && c != '_')))
			return false;
	}
	return !suffix_is(name, KILL_NAME_BUF, len, ".scope", 6);
}

/* A top-level name that may be a containerd namespace rather than a systemd
 * unit or another runtime's parent (cgroup.rs is_namespace_like). */
static __noinline bool namespace_like(const char *name, __u32 len)
{
	if (len == 0 || len >= KILL_NAME_KEY)
		return false;
	for (__u32 i = 0; i < KILL_NAME_KEY; i++) {
		if (i >= len)
			break;
		char c = name[i];
		bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  c == '.' || c == '-' || c == '_';
		if (!ok)
			return false;
	}
	if (suffix_is(name, KILL_NAME_KEY, len, ".slice", 6) || suffix_is(name, KILL_NAME_KEY, len, ".scope", 6) ||
	    suffix_is(name, KILL_NAME_KEY, len, ".service", 8) || suffix_is(name, KILL_NAME_KEY, len, ".mount", 6) ||
	    suffix_is(name, KILL_NAME_KEY, len, ".socket", 7) || suffix_is(name, KILL_NAME_KEY, len, ".swap", 5))
		return false;
	if (prefix_is(name, "kubepods", 8))
		return false;
	if (len == 13 && prefix_is(name, "libpod_parent", 13))
		return false;
	return true;
}

/* Whether a cgroup named `own` (len bytes) at `level` is a container's by its
 * name alone: a subset of what userspace's cgroup path parser (runtime::cgroup)
 * calls a container, so that the kernel never takes a host cgroup for one. */
static __noinline bool container_name(struct kill_names *n, __u32 len, int level, __u8 parent_kind,
				      bool parent_namespace_like)
{
	/* <runtime>-<64 hex>.scope, at any depth (systemd driver) */
	if (len > 70 && suffix_is(n->own, KILL_NAME_BUF, len, ".scope", 6)) {
		__u32 plen = len - 70;
		if ((plen == 7 && prefix_is(n->own, "docker-", 7)) ||
		    (plen == 15 && prefix_is(n->own, "cri-containerd-", 15)) ||
		    (plen == 5 && prefix_is(n->own, "crio-", 5)) || (plen == 7 && prefix_is(n->own, "libpod-", 7)))
			return hex64_at(n->own, plen);
		return false;
	}
	/* libpod-<64 hex> below a parent (podman, cgroupfs driver) */
	if (len == 71 && level >= 2 && prefix_is(n->own, "libpod-", 7))
		return hex64_at(n->own, 7);
	/* /docker/<64 hex>, /<containerd namespace>/<id> */
	if (level == 2 && parent_kind == KILL_PARENT_HEX64)
		return len == 64 && hex64_at(n->own, 0);
	if (level == 2 && parent_kind == KILL_PARENT_NAMED)
		return (len == 64 && hex64_at(n->own, 0)) || named_id(n->own, len);
	/* /<any containerd namespace>/<64 hex> (nerdctl's ids, in any namespace) */
	if (level == 2 && parent_namespace_like)
		return len == 64 && hex64_at(n->own, 0);
	return false;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(kill_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return 0; /* a cgroup v1 hierarchy: ids there are not cgroup v2 ids */
	struct kernfs_node *kn = BPF_CORE_READ(cgrp, kn);
	struct kernfs_node *pkn = kn_parent(kn);
	if (!kn || !pkn)
		return 0;
	__u64 id = BPF_CORE_READ(kn, id);
	__u64 parent_id = BPF_CORE_READ(pkn, id);
	__u8 one = 1;
	/* A child of a container's cgroup is the container's (systemd in a
	 * container, nested runtimes): the deepest container wins in userspace. */
	if (bpf_map_lookup_elem(&kill_containers, &parent_id))
		goto mark;
	__u32 zero = 0;
	struct kill_names *n = bpf_map_lookup_elem(&kill_namebuf, &zero);
	if (!n)
		return 0;
	__builtin_memset(n, 0, sizeof(*n));
	long len = bpf_probe_read_kernel_str(n->own, sizeof(n->own), BPF_CORE_READ(kn, name));
	if (len <= 1 || len >= KILL_NAME_BUF)
		return 0; /* empty, or longer than any container's name */
	int level = BPF_CORE_READ(cgrp, level);
	__u8 parent_kind = 0;
	bool parent_namespace_like = false;
	if (level == 2) {
		long plen = bpf_probe_read_kernel_str(n->parent, sizeof(n->parent), BPF_CORE_READ(pkn, name));
		/* Keys are at most 62 bytes: a name cut at 63 never matches. */
		if (plen > 1 && plen < KILL_NAME_KEY) {
			__u8 *kind = bpf_map_lookup_elem(&kill_parent_names, n->parent);
			if (kind)
				parent_kind = *kind;
			parent_namespace_like = namespace_like(n->parent, (__u32)plen - 1);
		}
	}
	if (!container_name(n, (__u32)len - 1, level, parent_kind, parent_namespace_like))
		return 0;
mark:
	bpf_map_update_elem(&kill_containers, &id, &one, BPF_ANY);
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(kill_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return 0;
	__u64 id = BPF_CORE_READ(cgrp, kn, id);
	bpf_map_delete_elem(&kill_containers, &id);
	return 0;
}

#endif /* RAMPART_KILL_H */
