/*
 * rtest: one static multi-call helper for rampart's integration tests and
 * benchmark. Each command does one thing a test asserts on and prints what it
 * did on stdout, one `key=value` line per fact, so tests can parse it.
 *
 *   rtest nop [args...]                 exit 0 (args are ignored; use them as markers)
 *   rtest open-write PATH               open(PATH, O_WRONLY|O_CREAT|O_TRUNC), write, close
 *   rtest open-rel DIR REL              mkdir DIR, chdir(DIR), open(REL, O_WRONLY|O_CREAT)
 *   rtest open-dirfd DIR REL            mkdir DIR, dirfd = open(DIR), openat(dirfd, REL, O_WRONLY|O_CREAT)
 *   rtest connect-local                 listen on 127.0.0.1:0, connect to it, accept
 *   rtest connect-refused               connect to a closed 127.0.0.1 port (ECONNREFUSED)
 *   rtest chmod-suid PATH               create PATH, chmod(PATH, 04755)
 *   rtest chown PATH UID                create PATH, chown(PATH, UID, UID)  (CAP_CHOWN check)
 *   rtest ptrace [attach|seize]         fork a child, PTRACE_ATTACH (default) or PTRACE_SEIZE it
 *   rtest memfd-exec [MARK]             memfd_create, copy /proc/self/exe into it, fexecve
 *                                       it as `rtest nop memfd-child MARK`
 *   rtest unshare uts|ns|both           unshare(CLONE_NEWUTS / CLONE_NEWNS)
 *   rtest sethostname NAME              sethostname (EPERM without CAP_SYS_ADMIN)
 *   rtest flood N [PATH]                N x open(PATH)+close as fast as possible
 *   rtest bench-open N [PATH]           N x open/read/close; prints elapsed ns
 *   rtest bench-exec N [PATH]           N x fork+execve(PATH) (default /usr/local/bin/nop)
 *   rtest bench-connect N               N x loopback connect+accept+close
 *   rtest paced-open RATE SECS [WORKERS] [PATH]  open/close at RATE per second for SECS,
 *                                       shared by WORKERS processes
 *   rtest sleep-ms MS                   sleep
 *   rtest spawn PATH [ARGS...]          fork, execv(PATH, [PATH, ARGS...]), wait; exit with its status
 *                                       (a non-shell parent for the program it runs)
 *   rtest setuid UID                    setuid(UID) (EPERM without CAP_SETUID); exit 0 either way
 *   rtest capset-raise                  capset: clear the effective set, then raise it back to
 *                                       the permitted set (capabilities added by capset)
 *   rtest connect-port PORT             listen on 127.0.0.1:PORT, connect to it, accept
 *   rtest connect-unix PATH             listen on the unix socket PATH, connect to it, accept
 *   rtest module-load                   init_module(junk) and finit_module(/dev/null) (both fail:
 *                                       EPERM without CAP_SYS_MODULE; nothing can load)
 *   rtest bpf                           bpf(BPF_MAP_CREATE) of a tiny array map (EPERM without
 *                                       CAP_BPF/CAP_SYS_ADMIN); exit 0 either way
 *   rtest tcp-connect IP PORT           connect to IP:PORT (v4 or v6); exit 0 when connected
 *   rtest udp-send IP PORT              sendto one datagram to IP:PORT; exit 0 when sent
 *   rtest bind-port PORT                bind a TCP socket to 0.0.0.0:PORT; exit 0 when bound
 *   rtest tcp-echo PORT                 serve TCP on 0.0.0.0:PORT, echo every byte back (forever)
 *   rtest tcp-chat IP PORT              connect once, then forever: send 5 bytes, wait up to
 *                                       300 ms for the echo, print `ok N` or `stall N`
 *   rtest count PATH                    count as fast as possible, writing the counter to PATH
 *                                       every 100000 increments (forever)
 *
 * Build: gcc -static -O2 -o rtest rtest.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what) {
    printf("error=%s errno=%d (%s)\n", what, errno, strerror(errno));
    fflush(stdout);
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long parse_count(const char *s) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0) {
        fprintf(stderr, "rtest: bad number %s\n", s);
        exit(2);
    }
    return v;
}

static void ensure_file(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0) die("create");
    if (write(fd, "rampart\n", 8) != 8) die("write");
    close(fd);
}

static void ensure_dir(const char *dir) {
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) die("mkdir");
}

static void report(const char *op, long n, uint64_t ns) {
    printf("result op=%s n=%ld ns=%llu ns_per_op=%.1f\n", op, n, (unsigned long long)ns,
           n ? (double)ns / (double)n : 0.0);
}

static int cmd_open_write(int argc, char **argv) {
    if (argc < 1) return 2;
    int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open");
    if (write(fd, "x\n", 2) != 2) die("write");
    close(fd);
    printf("opened=%s fd=%d\n", argv[0], fd);
    return 0;
}

static int cmd_open_rel(int argc, char **argv) {
    if (argc < 2) return 2;
    ensure_dir(argv[0]);
    if (chdir(argv[0]) < 0) die("chdir");
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open");
    close(fd);
    printf("opened=%s/%s cwd=%s rel=%s fd=%d\n", argv[0], argv[1], argv[0], argv[1], fd);
    return 0;
}

static int cmd_open_dirfd(int argc, char **argv) {
    if (argc < 2) return 2;
    ensure_dir(argv[0]);
    int dfd = open(argv[0], O_RDONLY | O_DIRECTORY);
    if (dfd < 0) die("open dir");
    int fd = openat(dfd, argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("openat");
    close(fd);
    close(dfd);
    printf("opened=%s/%s dirfd=%d fd=%d\n", argv[0], argv[1], dfd, fd);
    return 0;
}

static int loopback_listener(int *port) {
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) die("socket");
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(ls, 4096) < 0) die("listen");
    socklen_t len = sizeof a;
    if (getsockname(ls, (struct sockaddr *)&a, &len) < 0) die("getsockname");
    *port = ntohs(a.sin_port);
    return ls;
}

static int cmd_connect_local(void) {
    int port;
    int ls = loopback_listener(&port);
    printf("listening=127.0.0.1:%d\n", port);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    if (r < 0) die("connect");
    int s = accept(ls, NULL, NULL);
    if (s < 0) die("accept");
    printf("connected=127.0.0.1:%d ret=%d port=%d\n", port, r, port);
    close(s);
    close(c);
    close(ls);
    return 0;
}

static int cmd_connect_refused(void) {
    /* Bind a socket to an ephemeral port without listening: nothing accepts
     * there while it is held, so a connect is refused. */
    int hold = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(hold, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    socklen_t len = sizeof a;
    getsockname(hold, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin_port);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    if (r == 0) {
        printf("error=connect-succeeded port=%d\n", port);
        return 1;
    }
    printf("refused=127.0.0.1:%d port=%d ret=%d errno=%d\n", port, port, r, e);
    close(c);
    close(hold);
    return e == ECONNREFUSED ? 0 : 1;
}

static int cmd_chmod_suid(int argc, char **argv) {
    if (argc < 1) return 2;
    ensure_file(argv[0]);
    if (chmod(argv[0], 04755) < 0) die("chmod");
    struct stat st;
    if (stat(argv[0], &st) < 0) die("stat");
    printf("chmod=%s mode=%o\n", argv[0], st.st_mode & 07777);
    return 0;
}

static int cmd_chown(int argc, char **argv) {
    if (argc < 2) return 2;
    ensure_file(argv[0]);
    uid_t uid = (uid_t)parse_count(argv[1]);
    int r = chown(argv[0], uid, uid);
    printf("chown=%s uid=%u ret=%d errno=%d\n", argv[0], uid, r, r < 0 ? errno : 0);
    return r < 0 ? 1 : 0;
}

static int cmd_ptrace(int argc, char **argv) {
    int seize = argc >= 1 && strcmp(argv[0], "seize") == 0;
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        for (;;) pause();
    }
    long r;
    if (seize) {
        r = ptrace(PTRACE_SEIZE, child, NULL, NULL);
    } else {
        r = ptrace(PTRACE_ATTACH, child, NULL, NULL);
    }
    int e = errno;
    if (r == 0) {
        int st;
        if (!seize) waitpid(child, &st, 0); /* the SIGSTOP of the attach */
        ptrace(PTRACE_DETACH, child, NULL, NULL);
    }
    printf("ptrace=%s target=%d request=%d ret=%ld errno=%d\n", seize ? "seize" : "attach", child,
           seize ? PTRACE_SEIZE : PTRACE_ATTACH, r, r ? e : 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return r == 0 ? 0 : 1;
}

static int cmd_memfd_exec(int argc, char **argv) {
    const char *mark = argc >= 1 ? argv[0] : "none";
    int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (src < 0) die("open /proc/self/exe");
    int mfd = memfd_create("rtest-memfd", MFD_CLOEXEC);
    if (mfd < 0) die("memfd_create");
    char buf[65536];
    ssize_t n;
    while ((n = read(src, buf, sizeof buf)) > 0) {
        if (write(mfd, buf, (size_t)n) != n) die("write memfd");
    }
    if (n < 0) die("read");
    close(src);
    printf("memfd=%d name=rtest-memfd mark=%s\n", mfd, mark);
    fflush(stdout);
    char *args[] = {"rtest", "nop", "memfd-child", (char *)mark, NULL};
    /* execveat(fd, "", ..., AT_EMPTY_PATH): what fexecve does on this glibc. */
    syscall(SYS_execveat, mfd, "", args, environ, AT_EMPTY_PATH);
    die("execveat");
    return 1;
}

static int cmd_unshare(int argc, char **argv) {
    int flags = CLONE_NEWUTS;
    if (argc >= 1 && strcmp(argv[0], "ns") == 0) flags = CLONE_NEWNS;
    if (argc >= 1 && strcmp(argv[0], "both") == 0) flags = CLONE_NEWNS | CLONE_NEWUTS;
    int r = unshare(flags);
    printf("unshare flags=0x%x ret=%d errno=%d\n", flags, r, r < 0 ? errno : 0);
    return r < 0 ? 1 : 0;
}

static int cmd_sethostname(int argc, char **argv) {
    const char *name = argc >= 1 ? argv[0] : "rtest";
    int r = sethostname(name, strlen(name));
    printf("sethostname=%s ret=%d errno=%d\n", name, r, r < 0 ? errno : 0);
    return 0; /* EPERM is the expected outcome in an unprivileged container */
}

static int cmd_flood(int argc, char **argv) {
    if (argc < 1) return 2;
    long n = parse_count(argv[0]);
    const char *path = argc >= 2 ? argv[1] : "/tmp/rtest-flood";
    ensure_file(path);
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0) close(fd);
    }
    report("flood", n, now_ns() - t0);
    return 0;
}

static int cmd_bench_open(int argc, char **argv) {
    if (argc < 1) return 2;
    long n = parse_count(argv[0]);
    const char *path = argc >= 2 ? argv[1] : "/tmp/rtest-bench";
    ensure_file(path);
    char buf[64];
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) die("open");
        if (read(fd, buf, sizeof buf) < 0) die("read");
        close(fd);
    }
    report("open", n, now_ns() - t0);
    return 0;
}

static int cmd_bench_exec(int argc, char **argv) {
    if (argc < 1) return 2;
    long n = parse_count(argv[0]);
    const char *path = argc >= 2 ? argv[1] : "/usr/local/bin/nop";
    char *args[] = {(char *)path, NULL};
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) {
            execve(path, args, environ);
            _exit(127);
        }
        int st;
        if (waitpid(p, &st, 0) < 0) die("waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            errno = 0;
            die("child failed");
        }
    }
    report("exec", n, now_ns() - t0);
    return 0;
}

static int cmd_bench_connect(int argc, char **argv) {
    if (argc < 1) return 2;
    long n = parse_count(argv[0]);
    int port;
    int ls = loopback_listener(&port);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* Close the client with RST (linger 0): no TIME_WAIT, so the ephemeral port
     * range is never exhausted however many iterations run. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0) die("socket");
        setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
        int s = accept(ls, NULL, NULL);
        if (s < 0) die("accept");
        close(c);
        close(s);
    }
    report("connect", n, now_ns() - t0);
    printf("port=%d\n", port);
    close(ls);
    return 0;
}

static long paced_worker(long rate, long secs, const char *path, long *late_out) {
    /* 1 ms slices: do rate/1000 operations, then sleep until the slice ends. */
    const uint64_t slice = 1000000ull;
    long per_slice = rate / 1000;
    long extra = rate % 1000; /* spread the remainder over the first slices of a second */
    uint64_t next = now_ns();
    long done = 0, slices = secs * 1000, late = 0;
    for (long s = 0; s < slices; s++) {
        long k = per_slice + ((s % 1000) < extra ? 1 : 0);
        for (long i = 0; i < k; i++) {
            int fd = open(path, O_RDONLY);
            if (fd >= 0) close(fd);
        }
        done += k;
        next += slice;
        uint64_t now = now_ns();
        if (now < next) {
            struct timespec ts = {.tv_sec = (time_t)(next / 1000000000ull),
                                  .tv_nsec = (long)(next % 1000000000ull)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        } else {
            late++;
        }
    }
    *late_out = late;
    return done;
}

/* paced-open RATE SECONDS [WORKERS] [PATH]: WORKERS processes share the rate. */
static int cmd_paced_open(int argc, char **argv) {
    if (argc < 2) return 2;
    long rate = parse_count(argv[0]);
    long secs = parse_count(argv[1]);
    long workers = argc >= 3 ? parse_count(argv[2]) : 1;
    const char *path = argc >= 4 ? argv[3] : "/tmp/rtest-paced";
    if (workers < 1) workers = 1;
    ensure_file(path);
    int fds[2];
    if (pipe(fds) < 0) die("pipe");
    uint64_t t0 = now_ns();
    for (long w = 0; w < workers; w++) {
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) {
            long late;
            long share = rate / workers + (w < rate % workers ? 1 : 0);
            long done = paced_worker(share, secs, path, &late);
            long msg[2] = {done, late};
            if (write(fds[1], msg, sizeof msg) != sizeof msg) _exit(1);
            _exit(0);
        }
    }
    close(fds[1]);
    long done = 0, late = 0, msg[2];
    while (read(fds[0], msg, sizeof msg) == sizeof msg) {
        done += msg[0];
        late += msg[1];
    }
    while (wait(NULL) > 0) {
    }
    uint64_t ns = now_ns() - t0;
    report("paced-open", done, ns);
    printf("target_rate=%ld achieved_rate=%.0f workers=%ld late_slices=%ld\n", rate,
           (double)done * 1e9 / (double)ns, workers, late);
    return 0;
}


static int cmd_spawn(int argc, char **argv) {
    if (argc < 1) return 2;
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    if (waitpid(p, &st, 0) < 0) die("waitpid");
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    printf("spawned=%s pid=%d status=%d\n", argv[0], p, code);
    return code;
}

static int cmd_setuid(int argc, char **argv) {
    if (argc < 1) return 2;
    uid_t uid = (uid_t)parse_count(argv[0]);
    uid_t before = getuid();
    int r = setuid(uid);
    printf("setuid=%u from=%u ret=%d errno=%d\n", uid, before, r, r < 0 ? errno : 0);
    return 0;
}

static int cmd_capset_raise(void) {
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) < 0) die("capget");
    struct __user_cap_data_struct dropped[2];
    memcpy(dropped, data, sizeof data);
    dropped[0].effective = 0;
    dropped[1].effective = 0;
    if (syscall(SYS_capset, &hdr, dropped) < 0) die("capset drop");
    /* Raise: effective back to the whole permitted set. */
    data[0].effective = data[0].permitted;
    data[1].effective = data[1].permitted;
    long r = syscall(SYS_capset, &hdr, data);
    printf("capset=raise effective=0x%llx ret=%ld errno=%d\n",
           ((unsigned long long)data[1].effective << 32) | data[0].effective, r, r < 0 ? errno : 0);
    return r < 0 ? 1 : 0;
}

static int cmd_connect_port(int argc, char **argv) {
    if (argc < 1) return 2;
    int port = (int)parse_count(argv[0]);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) die("socket");
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(ls, 16) < 0) die("listen");
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) die("socket");
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    if (r < 0) die("connect");
    int s = accept(ls, NULL, NULL);
    if (s < 0) die("accept");
    printf("connected=127.0.0.1:%d ret=%d port=%d\n", port, r, port);
    close(s);
    close(c);
    close(ls);
    return 0;
}

static int cmd_connect_unix(int argc, char **argv) {
    if (argc < 1) return 2;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(argv[0]) >= sizeof a.sun_path) return 2;
    strcpy(a.sun_path, argv[0]);
    unlink(argv[0]);
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) die("socket");
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(ls, 16) < 0) die("listen");
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) die("socket");
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    if (r < 0) die("connect");
    int s = accept(ls, NULL, NULL);
    if (s < 0) die("accept");
    printf("connected=unix:%s ret=%d\n", argv[0], r);
    close(s);
    close(c);
    close(ls);
    unlink(argv[0]);
    return 0;
}

static int cmd_module_load(void) {
    /* Not a module: even with CAP_SYS_MODULE the kernel refuses it. */
    static const char junk[64] = "rampart-test: not a kernel module";
    long r1 = syscall(SYS_init_module, junk, sizeof junk, "");
    int e1 = errno;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    long r2 = syscall(SYS_finit_module, fd, "", 0);
    int e2 = errno;
    printf("init_module ret=%ld errno=%d\nfinit_module ret=%ld errno=%d\n", r1, r1 < 0 ? e1 : 0, r2,
           r2 < 0 ? e2 : 0);
    if (fd >= 0) close(fd);
    return 0;
}

static int cmd_bpf(void) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    long r = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    int e = errno;
    printf("bpf=map_create ret=%ld errno=%d\n", r, r < 0 ? e : 0);
    if (r >= 0) close((int)r);
    return 0;
}

/* IP (v4 or v6) and port into a sockaddr; returns its length, 0 if not an IP. */
static socklen_t parse_addr(const char *ip, const char *port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    int p = (int)parse_count(port);
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(p);
        return sizeof *a4;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(p);
        return sizeof *a6;
    }
    return 0;
}

static int cmd_tcp_connect(int argc, char **argv) {
    if (argc < 2) return 2;
    struct sockaddr_storage ss;
    socklen_t len = parse_addr(argv[0], argv[1], &ss);
    if (!len) return 2;
    int c = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) die("socket");
    int r = connect(c, (struct sockaddr *)&ss, len);
    int e = errno;
    printf("tcp-connect=%s:%s ret=%d errno=%d (%s)\n", argv[0], argv[1], r, r < 0 ? e : 0,
           r < 0 ? strerror(e) : "ok");
    close(c);
    return r < 0 ? 1 : 0;
}

static int cmd_udp_send(int argc, char **argv) {
    if (argc < 2) return 2;
    struct sockaddr_storage ss;
    socklen_t len = parse_addr(argv[0], argv[1], &ss);
    if (!len) return 2;
    int c = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (c < 0) die("socket");
    ssize_t r = sendto(c, "rampart\n", 8, 0, (struct sockaddr *)&ss, len);
    int e = errno;
    printf("udp-send=%s:%s ret=%zd errno=%d (%s)\n", argv[0], argv[1], r, r < 0 ? e : 0,
           r < 0 ? strerror(e) : "ok");
    close(c);
    return r < 0 ? 1 : 0;
}

static int cmd_bind_port(int argc, char **argv) {
    if (argc < 1) return 2;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((int)parse_count(argv[0]))};
    int r = bind(s, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    printf("bind-port=%s ret=%d errno=%d (%s)\n", argv[0], r, r < 0 ? e : 0, r < 0 ? strerror(e) : "ok");
    close(s);
    return r < 0 ? 1 : 0;
}

static int cmd_tcp_echo(int argc, char **argv) {
    if (argc < 1) return 2;
    signal(SIGCHLD, SIG_IGN); /* no zombies */
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) die("socket");
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((int)parse_count(argv[0]))};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(ls, 64) < 0) die("listen");
    printf("echo-listening=0.0.0.0:%s\n", argv[0]);
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0) continue;
        if (fork() == 0) {
            char buf[4096];
            ssize_t n;
            while ((n = read(c, buf, sizeof buf)) > 0)
                if (write(c, buf, (size_t)n) != n) break;
            _exit(0);
        }
        close(c);
    }
}

static int cmd_tcp_chat(int argc, char **argv) {
    if (argc < 2) return 2;
    struct sockaddr_storage ss;
    socklen_t len = parse_addr(argv[0], argv[1], &ss);
    if (!len) return 2;
    int c = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) die("socket");
    if (connect(c, (struct sockaddr *)&ss, len) < 0) die("connect");
    struct timeval tv = {.tv_sec = 0, .tv_usec = 300000};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    printf("chat-connected=%s:%s\n", argv[0], argv[1]);
    char buf[4096];
    for (long i = 1;; i++) {
        if (send(c, "ping\n", 5, MSG_NOSIGNAL) < 0) die("send");
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n > 0)
            printf("ok %ld\n", i);
        else if (n == 0)
            die("peer closed");
        else
            printf("stall %ld\n", i);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100000000};
        nanosleep(&ts, NULL);
    }
}

static int cmd_count(int argc, char **argv) {
    if (argc < 1) return 2;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[0]);
    for (unsigned long i = 0;; i++) {
        if (i % 100000 == 0) {
            /* write then rename: a reader never sees a half-written counter */
            int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) die("open");
            char b[32];
            int n = snprintf(b, sizeof b, "%lu\n", i);
            if (write(fd, b, (size_t)n) != n) die("write");
            close(fd);
            if (rename(tmp, argv[0]) < 0) die("rename");
        }
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: rtest COMMAND [ARGS...] (see rtest.c)\n");
        return 2;
    }
    const char *cmd = argv[1];
    int n = argc - 2;
    char **a = argv + 2;
    if (!strcmp(cmd, "nop")) return 0;
    if (!strcmp(cmd, "open-write")) return cmd_open_write(n, a);
    if (!strcmp(cmd, "open-rel")) return cmd_open_rel(n, a);
    if (!strcmp(cmd, "open-dirfd")) return cmd_open_dirfd(n, a);
    if (!strcmp(cmd, "connect-local")) return cmd_connect_local();
    if (!strcmp(cmd, "connect-refused")) return cmd_connect_refused();
    if (!strcmp(cmd, "chmod-suid")) return cmd_chmod_suid(n, a);
    if (!strcmp(cmd, "chown")) return cmd_chown(n, a);
    if (!strcmp(cmd, "ptrace")) return cmd_ptrace(n, a);
    if (!strcmp(cmd, "memfd-exec")) return cmd_memfd_exec(n, a);
    if (!strcmp(cmd, "unshare")) return cmd_unshare(n, a);
    if (!strcmp(cmd, "sethostname")) return cmd_sethostname(n, a);
    if (!strcmp(cmd, "flood")) return cmd_flood(n, a);
    if (!strcmp(cmd, "bench-open")) return cmd_bench_open(n, a);
    if (!strcmp(cmd, "bench-exec")) return cmd_bench_exec(n, a);
    if (!strcmp(cmd, "bench-connect")) return cmd_bench_connect(n, a);
    if (!strcmp(cmd, "paced-open")) return cmd_paced_open(n, a);
    if (!strcmp(cmd, "spawn")) return cmd_spawn(n, a);
    if (!strcmp(cmd, "setuid")) return cmd_setuid(n, a);
    if (!strcmp(cmd, "capset-raise")) return cmd_capset_raise();
    if (!strcmp(cmd, "connect-port")) return cmd_connect_port(n, a);
    if (!strcmp(cmd, "connect-unix")) return cmd_connect_unix(n, a);
    if (!strcmp(cmd, "module-load")) return cmd_module_load();
    if (!strcmp(cmd, "bpf")) return cmd_bpf();
    if (!strcmp(cmd, "tcp-connect")) return cmd_tcp_connect(n, a);
    if (!strcmp(cmd, "udp-send")) return cmd_udp_send(n, a);
    if (!strcmp(cmd, "bind-port")) return cmd_bind_port(n, a);
    if (!strcmp(cmd, "tcp-echo")) return cmd_tcp_echo(n, a);
    if (!strcmp(cmd, "tcp-chat")) return cmd_tcp_chat(n, a);
    if (!strcmp(cmd, "count")) return cmd_count(n, a);
    if (!strcmp(cmd, "sleep-ms")) {
        if (n < 1) return 2;
        long ms = parse_count(a[0]);
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
        return 0;
    }
    fprintf(stderr, "rtest: unknown command %s\n", cmd);
    return 2;
}
