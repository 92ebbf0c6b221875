/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * events.h: THE kernel <-> user ABI of rampart's sensor.
 *
 * Every record in the ring buffer is:
 *
 *   struct event_hdr            (fixed; hdr.type says what follows)
 *   body                        (hdr.body_len bytes: one of the ev_* structs below)
 *   string area                 (items up to hdr.size)
 *
 * A string item is `struct str_item` followed by `len` bytes.  Item ids
 * (STR_*) have a per-event-type meaning.  Kinds:
 *   STR_KIND_RAW   bytes as copied (may end with a NUL that userspace trims)
 *   STR_KIND_WALK  a kernel dentry walk: path components leaf first, each
 *                  followed by a NUL; userspace reverses and joins with '/'.
 *                  No component at all means "/".
 *
 * The Rust side uses the skeleton-generated types for these structs (forced
 * into BTF by the unused globals in sensor.bpf.c) and asserts their sizes.
 */
#ifndef RAMPART_EVENTS_H
#define RAMPART_EVENTS_H

/* Event types (hdr.type).  Syscall events carry struct ev_sys. */
enum ev_type {
	EV_EXEC = 1,
	EV_FORK = 2,
	EV_EXIT = 3,
	EV_CAPABLE = 4,

	EV_OPEN = 10,
	EV_OPENAT = 11,
	EV_OPENAT2 = 12,
	EV_CREAT = 13,
	EV_UNLINK = 14,
	EV_UNLINKAT = 15,
	EV_RMDIR = 16,
	EV_RENAME = 17,
	EV_RENAMEAT = 18,
	EV_RENAMEAT2 = 19,
	EV_LINK = 20,
	EV_LINKAT = 21,
	EV_SYMLINK = 22,
	EV_SYMLINKAT = 23,
	EV_MKDIR = 24,
	EV_MKDIRAT = 25,
	EV_CHMOD = 26,
	EV_FCHMOD = 27,
	EV_FCHMODAT = 28,
	EV_FCHMODAT2 = 29,
	EV_CHOWN = 30,
	EV_LCHOWN = 31,
	EV_FCHOWN = 32,
	EV_FCHOWNAT = 33,
	EV_MOUNT = 34,
	EV_UMOUNT2 = 35,

	EV_SOCKET = 50,
	EV_CONNECT = 51,
	EV_ACCEPT = 52,
	EV_ACCEPT4 = 53,
	EV_BIND = 54,
	EV_LISTEN = 55,

	EV_SETUID = 70,
	EV_SETGID = 71,
	EV_SETREUID = 72,
	EV_SETREGID = 73,
	EV_SETRESUID = 74,
	EV_SETRESGID = 75,
	EV_SETFSUID = 76,
	EV_SETFSGID = 77,
	EV_CAPSET = 78,
	EV_PTRACE = 79,
	EV_INIT_MODULE = 80,
	EV_FINIT_MODULE = 81,
	EV_SETNS = 82,
	EV_UNSHARE = 83,
	EV_MEMFD_CREATE = 84,
	EV_BPF = 85,

	EV_TYPE_MAX = 128,
};

/* hdr.flags */
enum ev_flags {
	EVF_HAS_RET = 1,      /* hdr.ret is a syscall result */
	EVF_STR_TRUNC = 2,    /* the string area ran out of room: some item is cut or missing */
	EVF_KILLED = 4,       /* the kernel sent SIGKILL in this syscall (kill trigger hdr.kill_trigger) */
};

/* String item ids. */
enum str_id {
	/* syscall events */
	STR_ARG0 = 0,         /* first path argument as passed */
	STR_BASE0 = 1,        /* base directory (dirfd or cwd) for a relative STR_ARG0 */
	STR_ARG1 = 2,         /* second path argument as passed */
	STR_BASE1 = 3,        /* base directory for a relative STR_ARG1 */
	STR_EXTRA = 4,        /* mount fstype, memfd name, symlink target, nsfs ns name */
	STR_FDPATH = 5,       /* path resolved from an fd (open result, fchmod, finit_module, setns) */
	STR_SOURCE = 6,       /* mount source */
	/* exec */
	STR_FILENAME = 8,
	STR_EXE = 9,
	STR_ARGV = 10,
	STR_CWD = 11,
	STR_TTY = 12,
};

enum str_kind {
	STR_KIND_RAW = 0,
	STR_KIND_WALK = 1,
};

/* str_item.flags */
enum str_item_flags {
	STRF_TRUNC = 1,       /* cut at a bound (argv length, walk depth, name length) */
};

struct str_item {
	__u16 len;
	__u8 id;
	__u8 kind_flags;      /* low nibble: kind, high nibble: flags */
};

struct event_hdr {
	__u64 ts_boot_ns;     /* bpf_ktime_get_boot_ns */
	__u64 cgroup_id;
	__s64 ret;
	__u32 type;           /* enum ev_type */
	__u32 flags;          /* enum ev_flags */
	__u32 size;           /* total record size, header included */
	__u32 body_len;       /* bytes of the body after the header */
	__u32 pid;            /* tgid */
	__u32 tid;
	__u32 ppid;           /* real_parent->tgid */
	__u32 vpid;           /* tgid in its own pid namespace */
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 egid;
	__u32 loginuid;
	__u32 pid_ns;
	__u32 mnt_ns;
	__u32 kill_trigger;   /* with EVF_KILLED: the trigger's id (struct kill_val) */
	char comm[16];
};

/* exec flags */
enum exec_flags {
	EXECF_MEMFD = 1,
	EXECF_UPPER_KNOWN = 2,
	EXECF_UPPER = 4,
	EXECF_ARGV_TRUNC = 8,
	/* exe_ctime_ns/exe_mtime_ns were read (the kernel's inode layout known). */
	EXECF_EXE_TIMES = 16,
};

/* What Falco's process fields need beyond the path and argv, read here rather
 * than from /proc by the agent: with those reads the exec loop ran at 1.20x. */
struct ev_exec {
	__u64 cap_effective;
	__u64 cap_permitted;
	__u64 cap_inheritable;
	__u64 exe_ctime_ns;   /* of the executable's inode, ns since the epoch */
	__u64 exe_mtime_ns;
	__u32 sid;            /* session id, host view */
	__u32 pgid;           /* process group id, host view */
	__u32 flags;          /* enum exec_flags */
	__u32 _pad;
};

struct ev_fork {
	__u32 child_pid;
	__u32 child_tid;
	__u32 thread;
	__u32 _pad;
};

struct ev_exit {
	__s32 exit_code;      /* raw task->exit_code (wait status) */
	__u32 _pad;
};

struct ev_capable {
	__u32 cap;
	__u32 granted;
	/* The syscall the check happened in (-1: none, e.g. a page fault). */
	__s32 syscall_nr;
	__u32 _pad;
};

/* The recorder's per-cgroup syscall bitmap (map syscall_sets, not the ring):
 * bit n of `native` = syscall n of the kernel's own ABI (x86_64) was entered;
 * `compat` the same for 32-bit (i386) tasks. */
#define SYSCALL_SET_BITS 512
struct syscall_set {
	__u64 native[SYSCALL_SET_BITS / 64];
	__u64 compat[SYSCALL_SET_BITS / 64];
};

/* Per-container syscall counts (opt-in, sensor.syscall_counts): one counter
 * per native syscall number, per cgroup, in the slots of an array (cgroup:
 * the slot's owner, 0 while free); read in place by the agent, which frees
 * the slots of gone containers. A cgroup may own two slots (see
 * count_slot): the agent adds them up. */
#define SYSCALL_COUNT_CGROUPS 1024 /* a power of two */
struct syscall_counts {
	__u64 cgroup;
	__u64 n[SYSCALL_SET_BITS];
};

/* A socket address read from a kernel struct sock. */
struct ev_skaddr {
	__u16 family;         /* 0: none */
	__u16 port;           /* host byte order */
	__u32 _pad;
	__u8 addr[16];        /* AF_INET: first 4 bytes */
};

#define RAW_SOCKADDR_MAX 112

/* A sockaddr as the syscall's caller passed it (user memory). */
struct ev_usockaddr {
	__u32 len;            /* bytes valid in data (0: none) */
	__u32 _pad;
	__u8 data[RAW_SOCKADDR_MAX];
};

/* Body of every syscall event. */
struct ev_sys {
	__u64 args[6];
	__u64 extra[3];       /* capset: effective, permitted, inheritable; setns: ns inode; openat2: how.flags, how.mode */
	__u32 nr;             /* syscall number */
	__u32 _pad;
};

/* Body of the network syscall events: ev_sys then addresses. */
struct ev_net {
	struct ev_sys sys;
	struct ev_usockaddr user;  /* connect, bind */
	struct ev_skaddr local;    /* from the fd's socket */
	struct ev_skaddr peer;     /* accept */
};

/* In-kernel kill triggers (maps kill_cgroups, kill_triggers): userspace
 * compiles rules whose whole condition the kernel can test (a container, an
 * event type, an exact path) into keys; the sensor looks up the path it already
 * built (the new fd's path at open exit, the new image's path at exec) and on a hit
 * sends SIGKILL in the same syscall.
 *
 * path: the path in walk form (components leaf first, each followed by a
 * NUL, exactly as a STR_KIND_WALK item), zero-padded; len: its length. */
#define KILL_PATH_MAX 256
struct kill_key {
	__u64 cgroup_id;
	__u32 ev_type;        /* EV_EXEC, EV_OPEN, EV_OPENAT, EV_OPENAT2, EV_CREAT */
	__u32 len;
	__u8 path[KILL_PATH_MAX];
};

struct kill_val {
	__u32 trigger_id;
	__u32 _pad;
};

/* Kernel-side capture bounds. */
#define MAX_PATH_DEPTH 48
#define MAX_NAME_LEN 256
#define MAX_ARGV_LEN 4096
#define MAX_USER_STR 4096

/* Record bounds: the string area is written at offsets masked with REC_MASK. */
#define REC_MAX 16384
#define REC_MASK (REC_MAX - 1)
/* Stop appending strings past this offset so every append stays below REC_MAX. */
#define REC_STR_LIMIT (REC_MAX - MAX_USER_STR - 8)
/* Scratch buffer: a full record plus room for the widest masked write. */
#define SCRATCH_SIZE (REC_MAX + MAX_USER_STR + 64)

/* The Rust side asserts the same sizes against the skeleton's types. */
/* Run-queue latency histogram of one cgroup (bpf/sched.h). */
#define RUNQ_SLOTS 32
#define RUNQ_MAX_CGROUPS 4096
struct runq_hist {
	__u64 slots[RUNQ_SLOTS]; /* slot i >= 1: waits of [2^i, 2^(i+1)) us; slot 0: under 2 us */
	__u64 count; /* not written: the count is the slots' sum */
	__u64 sum_ns;
};

_Static_assert(sizeof(struct event_hdr) == 104, "event_hdr size");
_Static_assert(sizeof(struct str_item) == 4, "str_item size");
_Static_assert(sizeof(struct ev_exec) == 56, "ev_exec size");
_Static_assert(sizeof(struct runq_hist) == 272, "runq_hist size");
_Static_assert(sizeof(struct ev_fork) == 16, "ev_fork size");
_Static_assert(sizeof(struct ev_exit) == 8, "ev_exit size");
_Static_assert(sizeof(struct ev_capable) == 16, "ev_capable size");
_Static_assert(sizeof(struct syscall_set) == 128, "syscall_set size");
_Static_assert(sizeof(struct ev_skaddr) == 24, "ev_skaddr size");
_Static_assert(sizeof(struct ev_usockaddr) == 120, "ev_usockaddr size");
_Static_assert(sizeof(struct ev_sys) == 80, "ev_sys size");
_Static_assert(sizeof(struct ev_net) == 248, "ev_net size");
_Static_assert(sizeof(struct kill_key) == 272, "kill_key size");
_Static_assert(sizeof(struct kill_val) == 8, "kill_val size");

#endif /* RAMPART_EVENTS_H */
