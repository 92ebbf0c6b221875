/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Syscalls (file, network, privilege families), from their exit: the record
 * is built with the result, from the arguments in the task's saved registers
 * (sys_exit). setns and unshare also stash their arguments at enter, per
 * task. Attached as per-syscall tracepoints or two raw tracepoints (see
 * "attachments" below).
 * Included by sensor.bpf.c.
 */
#ifndef RAMPART_SYSCALLS_H
#define RAMPART_SYSCALLS_H

struct open_how_user {
	__u64 flags;
	__u64 mode;
	__u64 resolve;
};

struct cap_data_user {
	__u32 effective;
	__u32 permitted;
	__u32 inheritable;
};

static __always_inline bool is_net(__u32 type)
{
	return type >= EV_SOCKET && type <= EV_LISTEN;
}

/* setns and unshare move a task between namespaces: stash them for every task
 * so a host task entering or creating a namespace is seen at exit. */
static __always_inline bool stash_always(__u32 type)
{
	return type == EV_SETNS || type == EV_UNSHARE;
}

/* Stash the arguments of setns or unshare for their exit (the only syscalls
 * with an enter half; every other one reads its arguments at exit, see
 * sys_exit). The caller passes 0 for arguments past the syscall's own count. */
static __always_inline void sys_enter(struct task_struct *t, __u32 nr, __u32 type, __u64 a0, __u64 a1, __u64 a2,
				      __u64 a3, __u64 a4, __u64 a5)
{
	if (type_skipped(type) || agent_quiet())
		return;
	bool rep = task_reported(t);
	struct pending *pd = bpf_task_storage_get(&pending_map, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!pd) {
		count_lost();
		return;
	}
	pd->args[0] = a0;
	pd->args[1] = a1;
	pd->args[2] = a2;
	pd->args[3] = a3;
	pd->args[4] = a4;
	pd->args[5] = a5;
	pd->nr = nr;
	pd->reported_at_enter = rep;
	pd->valid = 1;
}

/* A path argument: the string as passed, plus (when relative) the base
 * directory: the dirfd's path, or the cwd for AT_FDCWD. */
static __noinline void emit_path(struct scratch *s, __u32 ids, __u64 dfd, __u64 uptr)
{
	__u32 off = SOFF(s);
	append_user_str(s, ids & 0xff, (const void *)uptr);
	if (SOFF(s) == off)
		return;
	if (s->buf[masked(off + sizeof(struct str_item))] == '/')
		return;
	struct task_struct *t = task_ro(bpf_get_current_task_btf());
	if ((int)dfd == AT_FDCWD)
		append_walk(s, ids >> 8, t, t->fs->pwd.dentry, t->fs->pwd.mnt);
	else
		append_walk_file(s, ids >> 8, t, fd_file(t, (int)dfd));
}

/* The socket of a file (from fd_file), or NULL. Untrusted BTF pointers
 * (see task_ro): plain loads, not a probe read (~150 ns here) per field. */
static __always_inline struct sock *file_sock(struct file *f)
{
	if (!f)
		return NULL;
	struct inode *inode = f->f_inode;
	if (!inode || (inode->i_mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *so = bpf_core_cast(f->private_data, struct socket);
	if (!so)
		return NULL;
	struct sock *sk = so->sk;
	return sk ? bpf_core_cast(sk, struct sock) : NULL;
}

static __always_inline void fill_skaddr(struct ev_skaddr *a, struct sock *sk, bool peer)
{
	if (!sk)
		return;
	const struct sock_common *c = &sk->__sk_common;
	__u16 fam = c->skc_family;
	a->family = fam;
	if (fam == AF_INET) {
		__u32 ip;
		if (peer) {
			a->port = bpf_ntohs(c->skc_dport);
			ip = c->skc_daddr;
		} else {
			a->port = c->skc_num;
			ip = c->skc_rcv_saddr;
		}
		__builtin_memcpy(a->addr, &ip, 4);
	} else if (fam == AF_INET6) {
		a->port = peer ? bpf_ntohs(c->skc_dport) : c->skc_num;
		if (peer)
			__builtin_memcpy(a->addr, &c->skc_v6_daddr, 16);
		else
			__builtin_memcpy(a->addr, &c->skc_v6_rcv_saddr, 16);
	}
}

static __always_inline void read_usockaddr(struct ev_usockaddr *u, __u64 uptr, __u64 ulen)
{
	if (!uptr)
		return;
	__u32 n = ulen > RAW_SOCKADDR_MAX ? RAW_SOCKADDR_MAX : (__u32)ulen;
	n &= 127;
	if (n > RAW_SOCKADDR_MAX)
		n = RAW_SOCKADDR_MAX;
	if (n && bpf_probe_read_user(u->data, n, (const void *)uptr) == 0)
		u->len = n;
}

/* The arguments of a syscall at its exit: the user's registers, which the
 * kernel saved at entry and no syscall of the table changes (a tracer
 * changes them at its syscall-entry stop, before the enter tracepoint, or at
 * its exit stop, after the exit one), so they are what the syscall ran
 * with. x86_64: di, si, dx, r10, r8, r9; 0 past the syscall's own count. */
static __always_inline bool exit_args(struct pending *a, struct pt_regs *regs, __u32 nargs)
{
	if (!regs)
		return false;
	a->args[0] = nargs > 0 ? regs->di : 0;
	a->args[1] = nargs > 1 ? regs->si : 0;
	a->args[2] = nargs > 2 ? regs->dx : 0;
	a->args[3] = nargs > 3 ? regs->r10 : 0;
	a->args[4] = nargs > 4 ? regs->r8 : 0;
	a->args[5] = nargs > 5 ? regs->r9 : 0;
	return true;
}

/* Build and emit a syscall's record at its exit. setns and unshare take the
 * arguments their enter stashed (a task may enter or leave a container
 * there); every other syscall reads them from the saved registers (`regs`
 * from the raw tracepoint, else bpf_task_pt_regs; exit_args), so it has no
 * enter program: one program run and no task storage per syscall. */
static __always_inline int sys_exit(struct task_struct *t, __u32 nr, long ret, __u32 type, struct pt_regs *regs,
				    __u32 nargs)
{
	struct pending a = {};
	if (stash_always(type)) {
		struct pending *pdp = bpf_task_storage_get(&pending_map, t, 0, 0);
		/* nr guards against a stash whose exit never came (e.g. a
		 * successful execve does not return) being taken for this
		 * syscall's. */
		if (!pdp || !pdp->valid || pdp->nr != nr)
			return 0;
		a = *pdp;
		pdp->valid = 0;
		if (!a.reported_at_enter && !task_reported(t))
			return 0;
	} else {
		if (type_skipped(type) || agent_quiet() || task_is_self(t) || !task_reported(t))
			return 0;
		/* The registers only now: a host task pays the tests above alone. */
		if (!regs)
			regs = (struct pt_regs *)bpf_task_pt_regs(t);
		if (!exit_args(&a, regs, nargs))
			return 0;
		a.nr = nr;
	}

	struct scratch *s = get_scratch(SLOT_SYS);
	if (!s)
		return 0;
	const __u32 body_len = is_net(type) ? sizeof(struct ev_net) : sizeof(struct ev_sys);
	struct event_hdr *h = rec_begin(s, t, type, body_len);
	h->ret = ret;
	h->flags |= EVF_HAS_RET;

	struct ev_sys *sys = (void *)(s->buf + sizeof(struct event_hdr));
	sys->args[0] = a.args[0];
	sys->args[1] = a.args[1];
	sys->args[2] = a.args[2];
	sys->args[3] = a.args[3];
	sys->args[4] = a.args[4];
	sys->args[5] = a.args[5];
	sys->extra[0] = 0;
	sys->extra[1] = 0;
	sys->extra[2] = 0;
	sys->nr = a.nr;
	sys->_pad = 0;

	if (is_net(type)) {
		struct ev_net *net = (void *)sys;
		__builtin_memset(&net->user, 0, sizeof(net->user));
		__builtin_memset(&net->local, 0, sizeof(net->local));
		__builtin_memset(&net->peer, 0, sizeof(net->peer));
		if (type == EV_CONNECT || type == EV_BIND) {
			read_usockaddr(&net->user, a.args[1], a.args[2]);
			fill_skaddr(&net->local, file_sock(fd_file(t, (int)a.args[0])), false);
		} else if (type == EV_ACCEPT || type == EV_ACCEPT4) {
			if (ret >= 0) {
				struct sock *sk = file_sock(fd_file(t, ret));
				fill_skaddr(&net->local, sk, false);
				fill_skaddr(&net->peer, sk, true);
			}
		} else if (type == EV_LISTEN) {
			fill_skaddr(&net->local, file_sock(fd_file(t, (int)a.args[0])), false);
		}
	} else if (type == EV_OPEN || type == EV_CREAT || type == EV_OPENAT || type == EV_OPENAT2) {
		__u64 dfd = AT_FDCWD, path = a.args[0];
		if (type == EV_OPENAT || type == EV_OPENAT2) {
			dfd = a.args[0];
			path = a.args[1];
		}
		if (type == EV_OPENAT2 && a.args[2]) {
			struct open_how_user how = {};
			if (bpf_probe_read_user(&how, sizeof(how), (const void *)a.args[2]) == 0) {
				sys->extra[0] = how.flags;
				sys->extra[1] = how.mode;
			}
		}
		if (ret >= 0) {
			__u32 at = SOFF(s);
			append_walk_file(s, STR_FDPATH, t, fd_file(t, ret));
			/* Killed here, the file is open but never read: the signal
			 * is taken on the way back to userspace. */
			kill_check(s, at, type);
			/* The path as passed (fd.nameraw), after the resolved one so
			 * that a long raw path can only lose itself, never fd.name;
			 * left out while no rule reads it, unless no path was walked. */
			if (SOFF(s) == at || !field_skipped(SKIPF_RAW_PATH))
				append_user_str(s, STR_ARG0, (const void *)path);
		} else
			emit_path(s, STR_ARG0 | (STR_BASE0 << 8), dfd, path);
	} else if (type == EV_UNLINK || type == EV_RMDIR || type == EV_MKDIR || type == EV_CHMOD ||
		   type == EV_CHOWN || type == EV_LCHOWN || type == EV_UMOUNT2) {
		emit_path(s, STR_ARG0 | (STR_BASE0 << 8), AT_FDCWD, a.args[0]);
	} else if (type == EV_UNLINKAT || type == EV_MKDIRAT || type == EV_FCHMODAT || type == EV_FCHMODAT2 ||
		   type == EV_FCHOWNAT) {
		emit_path(s, STR_ARG0 | (STR_BASE0 << 8), a.args[0], a.args[1]);
	} else if (type == EV_RENAME || type == EV_LINK) {
		emit_path(s, STR_ARG0 | (STR_BASE0 << 8), AT_FDCWD, a.args[0]);
		emit_path(s, STR_ARG1 | (STR_BASE1 << 8), AT_FDCWD, a.args[1]);
	} else if (type == EV_RENAMEAT || type == EV_RENAMEAT2 || type == EV_LINKAT) {
		emit_path(s, STR_ARG0 | (STR_BASE0 << 8), a.args[0], a.args[1]);
		emit_path(s, STR_ARG1 | (STR_BASE1 << 8), a.args[2], a.args[3]);
	} else if (type == EV_SYMLINK) {
		append_user_str(s, STR_EXTRA, (const void *)a.args[0]);
		emit_path(s, STR_ARG1 | (STR_BASE1 << 8), AT_FDCWD, a.args[1]);
	} else if (type == EV_SYMLINKAT) {
		append_user_str(s, STR_EXTRA, (const void *)a.args[0]);
		emit_path(s, STR_ARG1 | (STR_BASE1 << 8), a.args[1], a.args[2]);
	} else if (type == EV_FCHMOD || type == EV_FCHOWN || type == EV_FINIT_MODULE) {
		append_walk_file(s, STR_FDPATH, t, fd_file(t, (int)a.args[0]));
	} else if (type == EV_MOUNT) {
		append_user_str(s, STR_SOURCE, (const void *)a.args[0]);
		emit_path(s, STR_ARG0 | (STR_BASE0 << 8), AT_FDCWD, a.args[1]);
		append_user_str(s, STR_EXTRA, (const void *)a.args[2]);
	} else if (type == EV_MEMFD_CREATE) {
		append_user_str(s, STR_EXTRA, (const void *)a.args[0]);
	} else if (type == EV_CAPSET) {
		struct cap_data_user d[2] = {};
		if (a.args[1]) {
			if (bpf_probe_read_user(d, sizeof(d), (const void *)a.args[1]) != 0)
				bpf_probe_read_user(d, sizeof(d[0]), (const void *)a.args[1]);
			sys->extra[0] = (__u64)d[0].effective | ((__u64)d[1].effective << 32);
			sys->extra[1] = (__u64)d[0].permitted | ((__u64)d[1].permitted << 32);
			sys->extra[2] = (__u64)d[0].inheritable | ((__u64)d[1].inheritable << 32);
		}
	} else if (type == EV_SETNS) {
		struct file *f = fd_file(t, (int)a.args[0]);
		if (f) {
			struct inode *inode = BPF_CORE_READ(f, f_inode);
			unsigned long magic = BPF_CORE_READ(inode, i_sb, s_magic);
			if (magic == NSFS_MAGIC) {
				sys->extra[0] = BPF_CORE_READ(inode, i_ino);
				struct ns_common *ns = BPF_CORE_READ(inode, i_private);
				const char *name = BPF_CORE_READ(ns, ops, name);
				append_kernel_str(s, STR_EXTRA, name, 32);
			}
		}
	}

	submit(s);
	return 0;
}

/* ---- the syscalls the sensor reports ----
 *
 * X(x86_64 number, tracepoint name, name, event type, arguments read).
 * x86_64 numbers: the raw dispatch is x86_64 only (this table and the pt_regs
 * registers it reads). A test (crates/sensor/src/kernel.rs) checks each
 * number against the seccomp crate's x86_64 table. x86_64's umount2 is the
 * kernel's sys_umount. */
#define SYSCALLS(X) \
	/* file */ \
	X(2, open, open, EV_OPEN, 3) \
	X(257, openat, openat, EV_OPENAT, 4) \
	X(437, openat2, openat2, EV_OPENAT2, 4) \
	X(85, creat, creat, EV_CREAT, 2) \
	X(87, unlink, unlink, EV_UNLINK, 1) \
	X(263, unlinkat, unlinkat, EV_UNLINKAT, 3) \
	X(84, rmdir, rmdir, EV_RMDIR, 1) \
	X(82, rename, rename, EV_RENAME, 2) \
	X(264, renameat, renameat, EV_RENAMEAT, 4) \
	X(316, renameat2, renameat2, EV_RENAMEAT2, 5) \
	X(86, link, link, EV_LINK, 2) \
	X(265, linkat, linkat, EV_LINKAT, 5) \
	X(88, symlink, symlink, EV_SYMLINK, 2) \
	X(266, symlinkat, symlinkat, EV_SYMLINKAT, 3) \
	X(83, mkdir, mkdir, EV_MKDIR, 2) \
	X(258, mkdirat, mkdirat, EV_MKDIRAT, 3) \
	X(90, chmod, chmod, EV_CHMOD, 2) \
	X(91, fchmod, fchmod, EV_FCHMOD, 2) \
	X(268, fchmodat, fchmodat, EV_FCHMODAT, 3) \
	X(452, fchmodat2, fchmodat2, EV_FCHMODAT2, 4) \
	X(92, chown, chown, EV_CHOWN, 3) \
	X(94, lchown, lchown, EV_LCHOWN, 3) \
	X(93, fchown, fchown, EV_FCHOWN, 3) \
	X(260, fchownat, fchownat, EV_FCHOWNAT, 5) \
	X(165, mount, mount, EV_MOUNT, 5) \
	X(166, umount, umount2, EV_UMOUNT2, 2) \
	/* network */ \
	X(41, socket, socket, EV_SOCKET, 3) \
	X(42, connect, connect, EV_CONNECT, 3) \
	X(43, accept, accept, EV_ACCEPT, 3) \
	X(288, accept4, accept4, EV_ACCEPT4, 4) \
	X(49, bind, bind, EV_BIND, 3) \
	X(50, listen, listen, EV_LISTEN, 2) \
	/* privilege / kernel */ \
	X(105, setuid, setuid, EV_SETUID, 1) \
	X(106, setgid, setgid, EV_SETGID, 1) \
	X(113, setreuid, setreuid, EV_SETREUID, 2) \
	X(114, setregid, setregid, EV_SETREGID, 2) \
	X(117, setresuid, setresuid, EV_SETRESUID, 3) \
	X(119, setresgid, setresgid, EV_SETRESGID, 3) \
	X(122, setfsuid, setfsuid, EV_SETFSUID, 1) \
	X(123, setfsgid, setfsgid, EV_SETFSGID, 1) \
	X(126, capset, capset, EV_CAPSET, 2) \
	X(101, ptrace, ptrace, EV_PTRACE, 4) \
	X(175, init_module, init_module, EV_INIT_MODULE, 3) \
	X(313, finit_module, finit_module, EV_FINIT_MODULE, 3) \
	X(308, setns, setns, EV_SETNS, 2) \
	X(272, unshare, unshare, EV_UNSHARE, 1) \
	X(319, memfd_create, memfd_create, EV_MEMFD_CREATE, 2) \
	X(321, bpf, bpf, EV_BPF, 3)

struct sc_info {
	__u8 type;  /* enum ev_type; 0: not reported */
	__u8 nargs; /* arguments read (at exit; at enter for setns, unshare) */
};

#define SC_TABLE_SIZE 512
#define SC_ENTRY(nr, tp, name, TYPE, NARGS) [nr] = { TYPE, NARGS },

/* The raw dispatch's early exit: a syscall whose slot is empty costs one load. */
static const struct sc_info sc_table[SC_TABLE_SIZE] = { SYSCALLS(SC_ENTRY) };

#define TS_COMPAT 0x0002 /* arch/x86/include/asm/thread_info.h */

/* A 32-bit (i386) task's syscall: its numbers are another table's. The
 * per-syscall tracepoints never reported them either. */
static __always_inline bool in_compat_syscall(struct task_struct *t)
{
	return t->thread_info.status & TS_COMPAT;
}

/* ---- recorder: the set of syscalls each container uses ----
 *
 * On only while `rampart record` runs (record_syscalls, set before load; the
 * verifier drops the code otherwise). One bitmap per cgroup, set in place: no
 * event per syscall crosses to userspace. */
const volatile bool record_syscalls = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* cgroup v2 id */
	__type(value, struct syscall_set);
} syscall_sets SEC(".maps");

static __always_inline bool is_runc_init(struct task_struct *t)
{
	/* runc's init ("runc:[2:INIT]") runs in the container's cgroup until it
	 * execs the workload; its syscalls are the runtime's, not the workload's. */
	return t->comm[0] == 'r' && t->comm[1] == 'u' && t->comm[2] == 'n' && t->comm[3] == 'c' &&
	       t->comm[4] == ':';
}

/* ---- per-container syscall counts ----
 *
 * On only with sensor.syscall_counts (count_syscalls, set before load). This
 * runs on every syscall of every container, so the common case takes no
 * helper call: a per-CPU cache names the slot of the cgroup that counted
 * last on this CPU (the verifier turns both array lookups into address
 * arithmetic). A cache miss (another cgroup's task, a slot the agent freed)
 * finds the cgroup's slot among SYSCALL_COUNT_PROBES from its hash, or takes
 * a free one there; a cgroup that finds none is not counted
 * (syscall_counts_full). With 32 probes a new cgroup finds no free slot once
 * in 10,000 at three quarters full (where the agent frees the slots of gone
 * containers), once in 30 at 90%. */
const volatile bool count_syscalls = false;
/* Slots in syscall_counts (its max_entries, a power of two; set before load). */
const volatile __u32 count_slots = SYSCALL_COUNT_CGROUPS;

#define SYSCALL_COUNT_PROBES 32

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYSCALL_COUNT_CGROUPS); /* 1 when off (set by userspace) */
	__type(key, __u32);
	__type(value, struct syscall_counts);
} syscall_counts SEC(".maps");

struct sc_count_cache {
	__u64 cgroup;
	__u32 slot;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sc_count_cache);
} syscall_count_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} syscall_counts_full SEC(".maps");

/* The slot cgroup cg owns among its probes, or a free one it takes; NULL
 * when all are taken by others. A slot the agent frees while the cgroup
 * still runs (its container not yet known to the agent) can make the cgroup
 * take a second one later: the agent adds the two. */
static __always_inline struct syscall_counts *count_slot(__u64 cg, __u32 *slot)
{
	__u32 h = (__u32)(cg ^ (cg >> 32)) * 0x9e3779b1u;
	__u32 mask = count_slots - 1;
	for (__u32 k = 0; k < SYSCALL_COUNT_PROBES; k++) {
		__u32 i = (h + k) & mask;
		struct syscall_counts *c = bpf_map_lookup_elem(&syscall_counts, &i);
		if (c && c->cgroup == cg) {
			*slot = i;
			return c;
		}
	}
	for (__u32 k = 0; k < SYSCALL_COUNT_PROBES; k++) {
		__u32 i = (h + k) & mask;
		struct syscall_counts *c = bpf_map_lookup_elem(&syscall_counts, &i);
		if (!c)
			continue;
		/* another CPU may take it first, for this cgroup or another */
		__u64 owner = __sync_val_compare_and_swap(&c->cgroup, 0, cg);
		if (owner == 0 || owner == cg) {
			*slot = i;
			return c;
		}
	}
	return NULL;
}

static __always_inline void count_syscall(__u64 cg, __u32 id)
{
	__u32 zero = 0;
	struct sc_count_cache *cache = bpf_map_lookup_elem(&syscall_count_cache, &zero);
	if (!cache)
		return;
	struct syscall_counts *c = NULL;
	if (cache->cgroup == cg) {
		__u32 slot = cache->slot;
		c = bpf_map_lookup_elem(&syscall_counts, &slot);
		if (c && c->cgroup != cg)
			c = NULL; /* freed by the agent since */
	}
	if (!c) {
		__u32 slot = 0;
		c = count_slot(cg, &slot);
		if (!c) {
			__u64 *full = bpf_map_lookup_elem(&syscall_counts_full, &zero);
			if (full)
				*full += 1;
			return;
		}
		cache->cgroup = cg;
		cache->slot = slot;
	}
	__sync_fetch_and_add(&c->n[id & (SYSCALL_SET_BITS - 1)], 1);
}

/* The recorder's set, the counts and the latency stamp: the syscalls of
 * reported tasks (no runc init) other than the agent's, native and compat in
 * the set, native only in the counts and the latency. Inlined: it runs on
 * every syscall of the machine, where a call and its return cost as much as
 * the tests before the counter. */
static __always_inline void per_cgroup_syscall(struct task_struct *t, long id)
{
	if (task_is_self(t) || !task_reported(t) || is_runc_init(t))
		return;
	if (id < 0 || id >= SYSCALL_SET_BITS)
		return; /* x32 numbers (bit 30 set) are not recorded */
	__u64 cg = task_cgroup_id(t);
	bool compat = in_compat_syscall(t);
	if (count_syscalls && !compat)
		count_syscall(cg, (__u32)id);
	if (time_syscalls && !compat)
		latency_stamp(t, (__u32)id);
	if (!record_syscalls)
		return;
	struct syscall_set *set = bpf_map_lookup_elem(&syscall_sets, &cg);
	if (!set) {
		struct syscall_set empty = {};
		bpf_map_update_elem(&syscall_sets, &cg, &empty, BPF_NOEXIST);
		set = bpf_map_lookup_elem(&syscall_sets, &cg);
		if (!set)
			return;
	}
	__u32 word = ((__u32)id >> 6) & (SYSCALL_SET_BITS / 64 - 1);
	__u64 bit = 1ULL << (id & 63);
	__u64 *words = set->native;
	if (compat)
		words = set->compat; /* numbers from the i386 table */
	if (!(words[word] & bit))
		__sync_fetch_and_or(&words[word], bit);
}

/* ---- attachments: two ways, chosen at load (sensor.syscall_hooks) ----
 *
 * tracepoints (default): one perf-event tracepoint per reported syscall's
 *   exit (exit_X; enter_X for setns and unshare only). Only those syscalls
 *   pay anything, but the kernel formats every argument into a perf buffer
 *   before the program runs, and detaching ~50 perf events waits for RCU
 *   grace periods (seconds on a busy host).
 * raw: two BTF raw tracepoints on every syscall's entry and exit
 *   (enter_syscalls/exit_syscalls) dispatching on sc_table. Cheap per run and
 *   detached in milliseconds, but every syscall of every task, host included,
 *   runs both programs.
 * enter_syscalls also carries the recorder's sets, the syscall counts and the
 * latency stamp; with the tracepoints it is loaded only for them
 * (raw_dispatch false). exit_syscalls, when loaded, also times the syscall. */
const volatile bool raw_dispatch = false;

#define TP_ARG(nargs, i) (nargs > i ? ctx->args[i] : 0)

/* Only the tracepoint's own args are read: a context access past the event's
 * size makes the attach fail (EACCES). */
#define HOOK_ENTER(nr, tp, name, TYPE, NARGS)                                                    \
	SEC("tracepoint/syscalls/sys_enter_" #tp)                                                \
	int enter_##name(struct trace_event_raw_sys_enter *ctx)                                  \
	{                                                                                        \
		FLOOR_RETURN(0);                                                                 \
		if (current_is_self())                                                           \
			return 0;                                                                \
		sys_enter(bpf_get_current_task_btf(), (__u32)ctx->id, TYPE, TP_ARG(NARGS, 0),    \
			  TP_ARG(NARGS, 1), TP_ARG(NARGS, 2), TP_ARG(NARGS, 3), TP_ARG(NARGS, 4), \
			  TP_ARG(NARGS, 5));                                                     \
		return 0;                                                                        \
	}

/* No registers here: sys_exit reads them once the task is known reported. */
#define HOOK_EXIT(nr, tp, name, TYPE, NARGS)                                                     \
	SEC("tracepoint/syscalls/sys_exit_" #tp)                                                 \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                                    \
	{                                                                                        \
		FLOOR_RETURN(0);                                                                 \
		return sys_exit(bpf_get_current_task_btf(), (__u32)ctx->id, ctx->ret, TYPE, NULL, NARGS); \
	}

SYSCALLS(HOOK_EXIT)
/* setns and unshare: their enter halves (see sys_exit). */
HOOK_ENTER(308, setns, setns, EV_SETNS, 2)
HOOK_ENTER(272, unshare, unshare, EV_UNSHARE, 1)

#define REG_ARG(i, reg) (info.nargs > i ? regs->reg : 0)

SEC("tp_btf/sys_enter")
int BPF_PROG(enter_syscalls, struct pt_regs *regs, long id)
{
	FLOOR_RETURN(0);
	if (record_syscalls || count_syscalls || time_syscalls)
		per_cgroup_syscall(bpf_get_current_task_btf(), id);
	if (!raw_dispatch || (unsigned long)id >= SC_TABLE_SIZE)
		return 0;
	struct sc_info info = sc_table[id];
	if (!info.type || current_is_self())
		return 0;
	if (!stash_always(info.type))
		return 0; /* read at exit (sys_exit) */
	struct task_struct *t = bpf_get_current_task_btf();
	if (in_compat_syscall(t))
		return 0;
	/* x86_64 syscall arguments: di, si, dx, r10, r8, r9 */
	sys_enter(t, (__u32)id, info.type, REG_ARG(0, di), REG_ARG(1, si), REG_ARG(2, dx), REG_ARG(3, r10),
		  REG_ARG(4, r8), REG_ARG(5, r9));
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(exit_syscalls, struct pt_regs *regs, long ret)
{
	FLOOR_RETURN(0);
	if (time_syscalls)
		latency_exit();
	unsigned long id = regs->orig_ax;
	if (id >= SC_TABLE_SIZE)
		return 0;
	struct sc_info info = sc_table[id];
	if (!info.type)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	if (in_compat_syscall(t))
		return 0;
	return sys_exit(t, (__u32)id, ret, info.type, regs, info.nargs);
}

#endif /* RAMPART_SYSCALLS_H */
