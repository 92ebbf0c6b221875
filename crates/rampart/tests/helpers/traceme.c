/* traceme: asks to be traced by its parent (PTRACE_TRACEME), the anti-debugging
 * trick of malware (a process can have one tracer only: once it is its own
 * parent's tracee, no debugger or tracer can attach).
 *
 * Built by rules_default.rs (gcc -static) and bind-mounted into the test image's
 * container: the shared test image is left unchanged. */
#include <stdio.h>
#include <sys/ptrace.h>

int main(void) {
    long r = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
    printf("traceme ret=%ld\n", r);
    return r == 0 ? 0 : 1;
}
