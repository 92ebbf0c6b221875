/*
 * The pod sandbox ("pause") process of rampart's CRI tests: holds the pod's
 * namespaces open and does nothing until asked to stop. Built static by
 * tests/image/pause.sh into the image rampart.local/pause:latest, the sandbox
 * image scripts/containerd.sh configures, so pods never need a registry.
 *
 * It is pid 1 of its pid namespace: it reaps children (none expected) and
 * exits 0 on SIGTERM or SIGINT, as the kubelet's pause does.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Exit from the handler itself: a flag checked around pause() would lose a
 * signal arriving between the check and the call. */
static void on_stop(int sig) {
    (void)sig;
    _exit(0);
}

static void on_child(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

static int handle(int sig, void (*fn)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: pause (no arguments)\n");
        return 2;
    }
    if (handle(SIGTERM, on_stop) || handle(SIGINT, on_stop) || handle(SIGCHLD, on_child)) {
        perror("pause: sigaction");
        return 1;
    }
    for (;;) {
        pause();
    }
}
