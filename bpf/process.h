/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/* Process lifecycle: exec, fork, exit (sched tp_btf). Included by sensor.bpf.c. */
#ifndef RAMPART_PROCESS_H
#define RAMPART_PROCESS_H

/* The inode's times before 6.11 (timespec64 fields; `__i_ctime` from 6.6):
 * CO-RE flavours so one object reads whichever layout the kernel has. */
struct inode___ts {
	struct timespec64 i_mtime;
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

struct inode___ts_6_6 {
	struct timespec64 i_mtime;
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

#define NSEC_PER_SEC 1000000000ULL

static __always_inline __u64 ns_of(__s64 sec, __u64 nsec)
{
	return sec < 0 ? 0 : (__u64)sec * NSEC_PER_SEC + nsec;
}

/* The executable's ctime and mtime; false when the layout is none we know. */
static __always_inline bool inode_times(struct inode *inode, __u64 *ctime, __u64 *mtime)
{
	if (bpf_core_field_exists(inode->i_ctime_sec)) {
		*ctime = ns_of(BPF_CORE_READ(inode, i_ctime_sec), BPF_CORE_READ(inode, i_ctime_nsec));
		*mtime = ns_of(BPF_CORE_READ(inode, i_mtime_sec), BPF_CORE_READ(inode, i_mtime_nsec));
		return true;
	}
	struct inode___ts_6_6 *mid = (void *)inode;
	if (bpf_core_field_exists(mid->__i_ctime)) {
		*ctime = ns_of(BPF_CORE_READ(mid, __i_ctime.tv_sec), BPF_CORE_READ(mid, __i_ctime.tv_nsec));
		*mtime = ns_of(BPF_CORE_READ(mid, i_mtime.tv_sec), BPF_CORE_READ(mid, i_mtime.tv_nsec));
		return true;
	}
	struct inode___ts *old = (void *)inode;
	if (bpf_core_field_exists(old->i_ctime)) {
		*ctime = ns_of(BPF_CORE_READ(old, i_ctime.tv_sec), BPF_CORE_READ(old, i_ctime.tv_nsec));
		*mtime = ns_of(BPF_CORE_READ(old, i_mtime.tv_sec), BPF_CORE_READ(old, i_mtime.tv_nsec));
		return true;
	}
	return false;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	FLOOR_RETURN(0);
	if (current_is_self())
		return 0;
	if (!task_reported(p))
		return 0;
	struct scratch *s = get_scratch(SLOT_SCHED);
	if (!s)
		return 0;
	rec_begin(s, p, EV_EXEC, sizeof(struct ev_exec));
	struct ev_exec *b = (void *)(s->buf + sizeof(struct event_hdr));

	const struct cred *cred = BPF_CORE_READ(p, cred);
	b->cap_effective = BPF_CORE_READ(cred, cap_effective.val);
	b->cap_permitted = BPF_CORE_READ(cred, cap_permitted.val);
	b->cap_inheritable = BPF_CORE_READ(cred, cap_inheritable.val);
	/* numbers[0]: the id in the initial pid namespace (the host's view). */
	b->sid = BPF_CORE_READ(p, signal, pids[PIDTYPE_SID], numbers[0].nr);
	b->pgid = BPF_CORE_READ(p, signal, pids[PIDTYPE_PGID], numbers[0].nr);
	b->exe_ctime_ns = 0;
	b->exe_mtime_ns = 0;
	b->flags = 0;
	b->_pad = 0;

	struct file *file = bprm->file;
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	char prefix[6] = {};
	bpf_probe_read_kernel(prefix, sizeof(prefix), BPF_CORE_READ(dentry, d_name.name));
	if (prefix[0] == 'm' && prefix[1] == 'e' && prefix[2] == 'm' && prefix[3] == 'f' && prefix[4] == 'd' &&
	    prefix[5] == ':')
		b->flags |= EXECF_MEMFD;

	struct inode *inode = BPF_CORE_READ(file, f_inode);
	if (inode_times(inode, &b->exe_ctime_ns, &b->exe_mtime_ns))
		b->flags |= EXECF_EXE_TIMES;
	unsigned long magic = BPF_CORE_READ(inode, i_sb, s_magic);
	if (magic == OVERLAYFS_SUPER_MAGIC && bpf_core_type_exists(struct ovl_inode)) {
		struct ovl_inode *oi = (void *)inode - bpf_core_field_offset(struct ovl_inode, vfs_inode);
		struct dentry *upper = BPF_CORE_READ(oi, __upperdentry);
		b->flags |= EXECF_UPPER_KNOWN;
		if (upper)
			b->flags |= EXECF_UPPER;
	}

	append_kernel_str(s, STR_FILENAME, BPF_CORE_READ(bprm, filename), MAX_USER_STR);
	__u32 exe_at = SOFF(s);
	append_walk_file(s, STR_EXE, p, file);
	/* Killed here, the new image never runs an instruction. */
	kill_check(s, exe_at, EV_EXEC);

	/* argv from the new mm (resident: exec just copied it there) */
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	unsigned long arg_start = BPF_CORE_READ(mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(mm, arg_end);
	__u32 off = SOFF(s);
	if (arg_end > arg_start && has_room(s, off)) {
		__u64 len = arg_end - arg_start;
		__u32 fl = 0;
		if (len > MAX_ARGV_LEN) {
			len = MAX_ARGV_LEN;
			fl = STRF_TRUNC;
			b->flags |= EXECF_ARGV_TRUNC;
		}
		if (bpf_probe_read_user(s->buf + masked(off + sizeof(struct str_item)), len, (void *)arg_start) == 0) {
			item_end(s, off, STR_ARGV, STR_KIND_RAW, fl, len);
			SOFF(s) = off + sizeof(struct str_item) + len;
		}
	}

	append_walk(s, STR_CWD, p, p->fs->pwd.dentry, p->fs->pwd.mnt);

	struct tty_struct *tty = BPF_CORE_READ(p, signal, tty);
	if (tty)
		append_kernel_str(s, STR_TTY, __builtin_preserve_access_index(&tty->name), 64);

	submit(s);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	FLOOR_RETURN(0);
	if (current_is_self())
		return 0;
	if (!task_reported(parent) && !task_reported(child))
		return 0;
	struct scratch *s = get_scratch(SLOT_SCHED);
	if (!s)
		return 0;
	rec_begin(s, parent, EV_FORK, sizeof(struct ev_fork));
	struct ev_fork *b = (void *)(s->buf + sizeof(struct event_hdr));
	b->child_pid = BPF_CORE_READ(child, tgid);
	b->child_tid = BPF_CORE_READ(child, pid);
	b->thread = b->child_pid == BPF_CORE_READ(parent, tgid);
	b->_pad = 0;
	submit(s);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task, bool group_dead)
{
	FLOOR_RETURN(0);
	if (!group_dead)
		return 0;
	if (current_is_self())
		return 0;
	if (!task_reported(task))
		return 0;
	struct scratch *s = get_scratch(SLOT_SCHED);
	if (!s)
		return 0;
	rec_begin(s, task, EV_EXIT, sizeof(struct ev_exit));
	struct ev_exit *b = (void *)(s->buf + sizeof(struct event_hdr));
	b->exit_code = BPF_CORE_READ(task, exit_code);
	b->_pad = 0;
	submit(s);
	return 0;
}

#endif /* RAMPART_PROCESS_H */
