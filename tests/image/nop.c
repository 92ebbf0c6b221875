/*
 * nop: the smallest static program, exits 0 at once. The exec benchmark's
 * target, so that its cost is fork+exec and not the loading of a large binary.
 *
 * Build: gcc -static -nostdlib -O2 -o nop nop.c
 */
void _start(void) {
    __asm__ volatile("mov $60, %%eax\n\t" /* SYS_exit */
                     "xor %%edi, %%edi\n\t"
                     "syscall"
                     :
                     :
                     : "rax", "rdi", "memory");
    __builtin_unreachable();
}
