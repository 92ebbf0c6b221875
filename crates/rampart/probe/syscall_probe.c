/* rampart's syscall probe: `syscall-probe NR` makes syscall NR with all-zero
 * arguments and exits with the errno it got (0 if it succeeded).
 *
 * `rampart profile verify` bind-mounts it into a container started under a
 * generated seccomp profile to show a syscall outside the profile failing with
 * EPERM. No libc: it must run in any image, and make no syscall but NR, exit
 * and the execve that starts it (all of which a generated profile allows). */

__asm__(".global _start\n"
	"_start:\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call probe_main\n"
	"	hlt\n");

static long raw_syscall(long nr, long a0)
{
	long ret;
	register long r10 __asm__("r10") = 0;
	register long r8 __asm__("r8") = 0;
	register long r9 __asm__("r9") = 0;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a0), "S"(0L), "d"(0L), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define SYS_EXIT 60

__attribute__((used)) void probe_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	if (argc < 2)
		raw_syscall(SYS_EXIT, 255);
	long nr = 0;
	for (char *p = argv[1]; *p; p++) {
		if (*p < '0' || *p > '9')
			raw_syscall(SYS_EXIT, 255);
		nr = nr * 10 + (*p - '0');
	}
	long ret = raw_syscall(nr, 0);
	raw_syscall(SYS_EXIT, ret < 0 && ret > -4096 ? -ret : 0);
	for (;;)
		;
}
