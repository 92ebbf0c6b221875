/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/* Shared maps, config, filter and record-building helpers of the sensor. */
#ifndef RAMPART_COMMON_H
#define RAMPART_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "floor.h"

#define AT_FDCWD -100
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define NSFS_MAGIC 0x6e736673

/* ---- configuration (set by userspace before load) ---- */
const volatile bool include_host = false;
const volatile __u32 self_tgid = 0;
const volatile __u32 host_mnt_ns = 0;

/* ---- maps ---- */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 * 1024 * 1024); /* userspace sets the real size */
} events SEC(".maps");

/* Records that could not be output (ring full, or scratch busy), per CPU:
 * key 0 counts them all, key T (enum ev_type) those of type T once the type
 * is known. The agent reads key 0 on every drain, the others when it moved. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EV_TYPE_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

struct scratch {
	__u32 busy;
	__u32 off; /* write cursor into buf */
	__u8 buf[SCRATCH_SIZE];
};

/* Slot 0: syscall programs, 1: sched tp_btf, 2: cap_capable. Separate slots so a
 * preempted syscall program and a sched program on the same CPU do not share. */
#define SLOT_SYS 0
#define SLOT_SCHED 1
#define SLOT_CAP 2

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

struct pending {
	__u64 args[6];
	__u32 nr;
	__u8 reported_at_enter;
	__u8 valid;
	__u16 _pad;
};

/* Syscall arguments from enter to exit, per task. Task storage rather than a
 * hash keyed by tid: the lookup is a pointer chase (a hash update cost ~300 ns
 * per syscall here), and entries die with their task, so nothing leaks. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending);
} pending_map SEC(".maps");

/* A container task's timed syscall while it is off the CPU
 * (syscall_latency.h), moved by the context switch (sched.h). */
struct task_sched {
	__u64 sc_ts;  /* ns: start of a timed syscall parked off-CPU; 0: none */
	__u32 sc_nr;  /* that syscall's number */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_sched);
} task_sched SEC(".maps");

static __always_inline void count_lost_type(__u32 type)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&lost, &key);
	if (v)
		*v += 1;
	if (type == 0 || type >= EV_TYPE_MAX)
		return;
	key = type;
	v = bpf_map_lookup_elem(&lost, &key);
	if (v)
		*v += 1;
}

static __always_inline void count_lost(void)
{
	count_lost_type(0);
}

/* ---- filter ---- */

/* The task as an untrusted pointer, for reading only. Each pointer loaded
 * through a trusted task pointer makes the verifier search the kernel's whole
 * BTF by name (btf_nested_type_is_trusted), at every load of every path it
 * explores: that search was 60% of the sensor's load time. */
static __always_inline struct task_struct *task_ro(struct task_struct *t)
{
	return bpf_core_cast(t, struct task_struct);
}

static __always_inline __u32 task_mnt_ns(struct task_struct *t)
{
	return task_ro(t)->nsproxy->mnt_ns->ns.inum;
}

/* Whether events of this task are reported.  The agent's own tgid is checked by
 * the caller first (it is the cheapest test). */
static __always_inline bool task_reported(struct task_struct *t)
{
	if (include_host)
		return true;
	__u32 mnt = task_mnt_ns(t);
	return mnt != 0 && mnt != host_mnt_ns;
}

static __always_inline bool current_is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

/* current_is_self for a task at hand: a load instead of a helper call. */
static __always_inline bool task_is_self(struct task_struct *t)
{
	return task_ro(t)->tgid == self_tgid;
}

/* What bpf_get_current_cgroup_id gives (the id of the task's cgroup v2),
 * in four loads instead of a helper call. */
static __always_inline __u64 task_cgroup_id(struct task_struct *t)
{
	return task_ro(t)->cgroups->dfl_cgrp->kn->id;
}

/* ---- scratch ---- */
static __always_inline struct scratch *get_scratch(__u32 slot)
{
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &slot);
	if (!s)
		return NULL;
	if (s->busy) {
		count_lost();
		return NULL;
	}
	s->busy = 1;
	return s;
}

static __always_inline void put_scratch(struct scratch *s)
{
	s->busy = 0;
}

/* ---- header ---- */
static __always_inline void fill_hdr(struct event_hdr *h, struct task_struct *task, __u32 type, __u32 body_len)
{
	struct task_struct *t = task_ro(task);
	h->ts_boot_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = task_cgroup_id(t);
	h->ret = 0;
	h->type = type;
	h->flags = 0;
	h->size = 0;
	h->body_len = body_len;
	h->pid = t->tgid;
	h->tid = t->pid;
	h->ppid = t->real_parent->tgid;

	const struct cred *cred = t->cred;
	h->uid = cred->uid.val;
	h->gid = cred->gid.val;
	h->euid = cred->euid.val;
	h->egid = cred->egid.val;
	h->loginuid = t->loginuid.val;

	/* The pid as its own namespace sees it: numbers[level] of the leader's pid. */
	struct pid *p = t->group_leader->thread_pid;
	__u32 level = p->level;
	struct upid *up = bpf_core_cast((void *)p + bpf_core_field_offset(struct pid, numbers) +
						(level & 31) * bpf_core_type_size(struct upid),
					struct upid);
	h->vpid = up->nr;
	h->pid_ns = up->ns->ns.inum;
	h->mnt_ns = task_mnt_ns(t);
	h->kill_trigger = 0;
	/* Two plain loads: the kernel pads comm with zeros (strscpy_pad), so
	 * this is what the string helper would give, without a helper call. */
	__u64 *comm = (__u64 *)t->comm;
	((__u64 *)h->comm)[0] = comm[0];
	((__u64 *)h->comm)[1] = comm[1];
}

/* ---- string area ----
 *
 * The write cursor lives in the scratch map value (s->off), read and written
 * through volatile accesses: a value loaded from a map is an unknown scalar to
 * the verifier, so loop iterations look alike and prune, and every write is at
 * a masked offset the verifier can bound. */
#define SOFF(s) (*(volatile __u32 *)&(s)->off)

/* The empty asm hides the value from clang, which would otherwise drop the mask
 * as redundant after an earlier range check. */
static __always_inline __u32 masked(__u32 x)
{
	asm volatile("" : "+r"(x));
	return x & REC_MASK;
}

static __always_inline struct event_hdr *hdr_of(struct scratch *s)
{
	return (void *)s->buf;
}

static __always_inline void item_end(struct scratch *s, __u32 at, __u32 id, __u32 kind, __u32 flags, __u32 len)
{
	struct str_item *it = (void *)(s->buf + masked(at));
	it->len = len;
	it->id = id;
	it->kind_flags = (kind & 0xf) | ((flags & 0xf) << 4);
}

/* Whether an item can start at the cursor; flags the record when not. */
static __always_inline bool has_room(struct scratch *s, __u32 off)
{
	if (off >= REC_STR_LIMIT) {
		hdr_of(s)->flags |= EVF_STR_TRUNC;
		return false;
	}
	return true;
}

static __noinline void append_user_str(struct scratch *s, __u32 id, const void *uptr)
{
	__u32 off = SOFF(s);
	if (!uptr || !has_room(s, off))
		return;
	long n = bpf_probe_read_user_str(s->buf + masked(off + sizeof(struct str_item)), MAX_USER_STR, uptr);
	if (n < 0)
		return;
	__u32 len = n & (2 * MAX_USER_STR - 1);
	/* n counts the NUL; a full buffer means the string may have been cut */
	item_end(s, off, id, STR_KIND_RAW, len >= MAX_USER_STR ? STRF_TRUNC : 0, len);
	SOFF(s) = off + sizeof(struct str_item) + len;
}

static __always_inline void append_kernel_str(struct scratch *s, __u32 id, const void *kptr, __u32 max)
{
	__u32 off = SOFF(s);
	if (!kptr || !has_room(s, off))
		return;
	long n = bpf_probe_read_kernel_str(s->buf + masked(off + sizeof(struct str_item)), max, kptr);
	if (n < 0)
		return;
	__u32 len = n & (2 * MAX_USER_STR - 1);
	item_end(s, off, id, STR_KIND_RAW, 0, len);
	SOFF(s) = off + sizeof(struct str_item) + len;
}

/* One walk's state, shared with the bpf_loop callback. */
struct walk_ctx {
	struct scratch *s;
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 fl;
};

/* A name short enough to live inside its dentry (d_shortname, most names),
 * copied with five plain loads and its NUL written after it: a string helper
 * call per component cost more than the rest of the step. Returns the bytes
 * written, NUL included, or 0 when the name is elsewhere (or the kernel has
 * no d_shortname): the caller copies it with the helper. A rename racing
 * with the walk can mix two names, as the helper's copy can. */
static __always_inline long copy_short_name(struct scratch *s, __u32 p, struct dentry *dentry)
{
	if (!bpf_core_field_exists(dentry->d_shortname))
		return 0;
	const unsigned char *name = dentry->d_name.name;
	__u32 len = dentry->d_name.len;
	if (name != dentry->d_shortname.string || len >= sizeof(dentry->d_shortname))
		return 0;
	__u64 *dst = (__u64 *)(s->buf + masked(p));
	dst[0] = dentry->d_shortname.words[0];
	dst[1] = dentry->d_shortname.words[1];
	dst[2] = dentry->d_shortname.words[2];
	dst[3] = dentry->d_shortname.words[3];
	dst[4] = dentry->d_shortname.words[4];
	s->buf[masked(p + len)] = 0;
	return len + 1;
}

/* One step up: a component written, a mount crossed, or the end (returns 1). */
static __always_inline long walk_step(struct walk_ctx *w)
{
	struct scratch *s = w->s;
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	if (dentry == w->root_dentry && vfsmnt == w->root_mnt) {
		w->fl = 0;
		return 1;
	}
	/* Untrusted BTF pointers (see task_ro): plain loads, which the kernel
	 * guards, rather than a helper call per field. */
	struct mount *mnt = w->mnt;
	struct dentry *mnt_root = vfsmnt->mnt_root;
	struct dentry *parent = dentry->d_parent;
	if (dentry == mnt_root || dentry == parent) {
		struct mount *mparent = mnt->mnt_parent;
		if (dentry != mnt_root || mparent == mnt || !mparent) {
			/* the root of the namespace (or a detached/pseudo mount) */
			w->fl = 0;
			return 1;
		}
		w->dentry = mnt->mnt_mountpoint;
		w->mnt = mparent;
		w->vfsmnt = &mparent->mnt;
		return 0;
	}
	__u32 p = SOFF(s);
	if (!has_room(s, p))
		return 1;
	long n = copy_short_name(s, p, dentry);
	if (n == 0)
		n = bpf_probe_read_kernel_str(s->buf + masked(p), MAX_NAME_LEN, dentry->d_name.name);
	if (n <= 0)
		return 1;
	SOFF(s) = p + (n & (2 * MAX_NAME_LEN - 1));
	w->dentry = parent;
	return 0;
}

/* bpf_loop's callback: WALK_STEPS steps. Several per call, because a call
 * and its return cost more than a step on kernels that protect returns
 * (x86's return thunks): most paths are walked in one call. */
#define WALK_STEPS 2
_Static_assert(MAX_PATH_DEPTH % WALK_STEPS == 0, "whole calls");

static long walk_steps(__u32 i, struct walk_ctx *w)
{
#pragma unroll
	for (int k = 0; k < WALK_STEPS; k++)
		if (walk_step(w))
			return 1;
	return 0;
}

/* Walk a (dentry, vfsmount) up to the root of task t (the current task),
 * crossing mounts; components leaf first, each NUL-terminated. The steps run
 * in bpf_loop: the verifier checks one call's steps instead of
 * MAX_PATH_DEPTH unrolled ones at every call site, which made loading the
 * sensor take ~2 s. */
static __noinline void append_walk(struct scratch *s, __u32 id, struct task_struct *t, struct dentry *dentry,
				   struct vfsmount *vfsmnt)
{
	__u32 start = SOFF(s);
	if (!t || !dentry || !vfsmnt || !has_room(s, start))
		return;
	SOFF(s) = start + sizeof(struct str_item);
	t = task_ro(t);
	struct walk_ctx w = {
		.s = s,
		.dentry = dentry,
		.vfsmnt = vfsmnt,
		.mnt = bpf_core_cast((void *)vfsmnt - bpf_core_field_offset(struct mount, mnt), struct mount),
		.root_dentry = t->fs->root.dentry,
		.root_mnt = t->fs->root.mnt,
		.fl = STRF_TRUNC,
	};
	bpf_loop(MAX_PATH_DEPTH / WALK_STEPS, walk_steps, &w, 0);
	__u32 end = SOFF(s);
	item_end(s, start, id, STR_KIND_WALK, w.fl, (end - start - sizeof(struct str_item)) & REC_MASK);
}

static __always_inline struct file *fd_file(struct task_struct *t, __s64 fd)
{
	if (fd < 0)
		return NULL;
	struct fdtable *fdt = task_ro(t)->files->fdt;
	if (!fdt)
		return NULL;
	__u32 max = fdt->max_fds;
	if ((__u64)fd >= max)
		return NULL;
	void *slot = (void *)fdt->fd + fd * sizeof(struct file *);
	/* The slot read by a plain load rather than a helper call: the verifier
	 * types a load only through a struct, so the slot is viewed as a kiocb,
	 * whose first member is a struct file *, as the slot is (checked at
	 * load: the helper where it is not). */
	if (bpf_core_field_offset(struct kiocb, ki_filp) == 0)
		return bpf_core_cast(slot, struct kiocb)->ki_filp;
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), slot);
	return f ? bpf_core_cast(f, struct file) : NULL;
}

static __always_inline void append_walk_file(struct scratch *s, __u32 id, struct task_struct *t, struct file *f)
{
	if (!f)
		return;
	append_walk(s, id, t, f->f_path.dentry, f->f_path.mnt);
}

/* Start a record: header plus body_len bytes of body; the cursor goes after. */
static __always_inline struct event_hdr *rec_begin(struct scratch *s, struct task_struct *t, __u32 type, __u32 body_len)
{
	struct event_hdr *h = hdr_of(s);
	fill_hdr(h, t, type, body_len);
	SOFF(s) = sizeof(struct event_hdr) + body_len;
	return h;
}

/* Output the finished record (size = cursor), counting failures; releases s. */
static __always_inline void submit(struct scratch *s)
{
	__u32 size = SOFF(s);
	asm volatile("" : "+r"(size));
	size &= 2 * REC_MAX - 1;
	if (size > REC_MAX) {
		count_lost_type(hdr_of(s)->type);
	} else {
		hdr_of(s)->size = size;
		if (bpf_ringbuf_output(&events, s->buf, size, BPF_RB_NO_WAKEUP))
			count_lost_type(hdr_of(s)->type);
	}
	put_scratch(s);
}

#endif /* RAMPART_COMMON_H */
