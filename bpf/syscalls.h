/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Per-syscall tracepoints (file, network, privilege families).
 * Pattern: sys_enter_X stashes the args per tid (reported tasks only), sys_exit_X
 * looks them up, builds the record with the result, deletes the entry.
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

/* Only the tracepoint's own args are read: a context access past the event's
 * size makes the attach fail (EACCES). */
static __always_inline int sys_enter(struct trace_event_raw_sys_enter *ctx, const __u32 type, const int nargs)
{
	if (current_is_self())
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	bool rep = task_reported(t);
	if (!rep && !stash_always(type))
		return 0;
	struct pending *pd = bpf_task_storage_get(&pending_map, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!pd) {
		count_lost();
		return 0;
	}
	pd->args[0] = nargs > 0 ? ctx->args[0] : 0;
	pd->args[1] = nargs > 1 ? ctx->args[1] : 0;
	pd->args[2] = nargs > 2 ? ctx->args[2] : 0;
	pd->args[3] = nargs > 3 ? ctx->args[3] : 0;
	pd->args[4] = nargs > 4 ? ctx->args[4] : 0;
	pd->args[5] = nargs > 5 ? ctx->args[5] : 0;
	pd->nr = (__u32)ctx->id;
	pd->reported_at_enter = rep;
	pd->valid = 1;
	return 0;
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
		append_walk(s, ids >> 8, t->fs->pwd.dentry, t->fs->pwd.mnt);
	else
		append_walk_file(s, ids >> 8, fd_file(t, (int)dfd));
}

static __always_inline struct sock *file_sock(struct file *f)
{
	if (!f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *so = BPF_CORE_READ(f, private_data);
	if (!so)
		return NULL;
	return BPF_CORE_READ(so, sk);
}

static __always_inline void fill_skaddr(struct ev_skaddr *a, struct sock *sk, bool peer)
{
	if (!sk)
		return;
	__u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
	a->family = fam;
	if (fam == AF_INET) {
		__u32 ip;
		if (peer) {
			a->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
			ip = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		} else {
			a->port = BPF_CORE_READ(sk, __sk_common.skc_num);
			ip = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		}
		__builtin_memcpy(a->addr, &ip, 4);
	} else if (fam == AF_INET6) {
		if (peer) {
			a->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
			BPF_CORE_READ_INTO(&a->addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		} else {
			a->port = BPF_CORE_READ(sk, __sk_common.skc_num);
			BPF_CORE_READ_INTO(&a->addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		}
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

static __always_inline int sys_exit(struct trace_event_raw_sys_exit *ctx, const __u32 type)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pending *pdp = bpf_task_storage_get(&pending_map, t, 0, 0);
	/* nr guards against a stash whose exit never came (e.g. a successful
	 * execve does not return) being taken for this syscall's. */
	if (!pdp || !pdp->valid || pdp->nr != (__u32)ctx->id)
		return 0;
	struct pending a = *pdp;
	pdp->valid = 0;
	if (stash_always(type) && !a.reported_at_enter && !task_reported(t))
		return 0;

	struct scratch *s = get_scratch(SLOT_SYS);
	if (!s)
		return 0;
	const __u32 body_len = is_net(type) ? sizeof(struct ev_net) : sizeof(struct ev_sys);
	struct event_hdr *h = rec_begin(s, t, type, body_len);
	long ret = ctx->ret;
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
			append_walk_file(s, STR_FDPATH, fd_file(t, ret));
			/* Killed here, the file is open but never read: the signal
			 * is taken on the way back to userspace. */
			kill_check(s, at, type);
			/* The path as passed (fd.nameraw), after the resolved one so
			 * that a long raw path can only lose itself, never fd.name. */
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
		append_walk_file(s, STR_FDPATH, fd_file(t, (int)a.args[0]));
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

#define HOOK_TP(tp, name, TYPE, NARGS)                                                          \
	SEC("tracepoint/syscalls/sys_enter_" #tp)                                        \
	int enter_##name(struct trace_event_raw_sys_enter *ctx)                          \
	{                                                                                \
		return sys_enter(ctx, TYPE, NARGS);                                             \
	}                                                                                \
	SEC("tracepoint/syscalls/sys_exit_" #tp)                                         \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                            \
	{                                                                                \
		return sys_exit(ctx, TYPE);                                              \
	}

#define HOOK(name, TYPE, NARGS) HOOK_TP(name, name, TYPE, NARGS)

/* file */
HOOK(open, EV_OPEN, 3)
HOOK(openat, EV_OPENAT, 4)
HOOK(openat2, EV_OPENAT2, 4)
HOOK(creat, EV_CREAT, 2)
HOOK(unlink, EV_UNLINK, 1)
HOOK(unlinkat, EV_UNLINKAT, 3)
HOOK(rmdir, EV_RMDIR, 1)
HOOK(rename, EV_RENAME, 2)
HOOK(renameat, EV_RENAMEAT, 4)
HOOK(renameat2, EV_RENAMEAT2, 5)
HOOK(link, EV_LINK, 2)
HOOK(linkat, EV_LINKAT, 5)
HOOK(symlink, EV_SYMLINK, 2)
HOOK(symlinkat, EV_SYMLINKAT, 3)
HOOK(mkdir, EV_MKDIR, 2)
HOOK(mkdirat, EV_MKDIRAT, 3)
HOOK(chmod, EV_CHMOD, 2)
HOOK(fchmod, EV_FCHMOD, 2)
HOOK(fchmodat, EV_FCHMODAT, 3)
HOOK(fchmodat2, EV_FCHMODAT2, 4)
HOOK(chown, EV_CHOWN, 3)
HOOK(lchown, EV_LCHOWN, 3)
HOOK(fchown, EV_FCHOWN, 3)
HOOK(fchownat, EV_FCHOWNAT, 5)
HOOK(mount, EV_MOUNT, 5)
/* x86_64's umount2 is the kernel's sys_umount */
HOOK_TP(umount, umount2, EV_UMOUNT2, 2)

/* network */
HOOK(socket, EV_SOCKET, 3)
HOOK(connect, EV_CONNECT, 3)
HOOK(accept, EV_ACCEPT, 3)
HOOK(accept4, EV_ACCEPT4, 4)
HOOK(bind, EV_BIND, 3)
HOOK(listen, EV_LISTEN, 2)

/* privilege / kernel */
HOOK(setuid, EV_SETUID, 1)
HOOK(setgid, EV_SETGID, 1)
HOOK(setreuid, EV_SETREUID, 2)
HOOK(setregid, EV_SETREGID, 2)
HOOK(setresuid, EV_SETRESUID, 3)
HOOK(setresgid, EV_SETRESGID, 3)
HOOK(setfsuid, EV_SETFSUID, 1)
HOOK(setfsgid, EV_SETFSGID, 1)
HOOK(capset, EV_CAPSET, 2)
HOOK(ptrace, EV_PTRACE, 4)
HOOK(init_module, EV_INIT_MODULE, 3)
HOOK(finit_module, EV_FINIT_MODULE, 3)
HOOK(setns, EV_SETNS, 2)
HOOK(unshare, EV_UNSHARE, 1)
HOOK(memfd_create, EV_MEMFD_CREATE, 2)
HOOK(bpf, EV_BPF, 3)

#endif /* RAMPART_SYSCALLS_H */
