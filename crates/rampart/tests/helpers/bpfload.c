/* bpfload: asks the kernel to load an eBPF program (bpf(BPF_PROG_LOAD)), the
 * first step of a BPF rootkit. The program is the smallest socket filter there
 * is ("return 0"); without CAP_BPF the kernel refuses it (EPERM): the attempt
 * is what the rules detect. Nothing is attached either way.
 *
 * Built by rules_default.rs (gcc -static) and bind-mounted into the test image's
 * container: the shared test image is left unchanged. */
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    struct bpf_insn prog[2];
    memset(prog, 0, sizeof prog);
    prog[0].code = BPF_ALU64 | BPF_MOV | BPF_K; /* r0 = 0 */
    prog[0].dst_reg = BPF_REG_0;
    prog[1].code = BPF_JMP | BPF_EXIT;
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = (unsigned long)prog;
    attr.insn_cnt = 2;
    attr.license = (unsigned long)"GPL";
    long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    int e = errno;
    printf("bpf=prog_load ret=%ld errno=%d\n", fd, fd < 0 ? e : 0);
    if (fd >= 0)
        close((int)fd);
    return 0;
}
