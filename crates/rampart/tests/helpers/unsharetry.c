/* unsharetry: unshare(2) from one process that carries on whatever the answer.
 *
 *   unsharetry try NAME...   for each NAME (newuser, newuts, newns, fs, files):
 *                            unshare(that flag), printing "unshare NAME ok" or
 *                            "unshare NAME errno N"; then "alive"
 *   unsharetry loop COUNT    COUNT unshare(CLONE_FS) calls (allowed to anyone);
 *                            prints "ns_per_call X failed F"
 *
 * Built by deny.rs and scripts/bench-notify.sh (gcc -static), bind-mounted
 * into the test image's container. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int flag_of(const char *name)
{
	static const struct { const char *name; int flag; } flags[] = {
		{ "newuser", CLONE_NEWUSER }, { "newuts", CLONE_NEWUTS }, { "newns", CLONE_NEWNS },
		{ "fs", CLONE_FS }, { "files", CLONE_FILES },
	};
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
		if (!strcmp(flags[i].name, name))
			return flags[i].flag;
	return -1;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "try")) {
		for (int i = 2; i < argc; i++) {
			int flag = flag_of(argv[i]);
			if (flag < 0) {
				fprintf(stderr, "unknown flag %s\n", argv[i]);
				return 2;
			}
			if (unshare(flag) == 0)
				printf("unshare %s ok\n", argv[i]);
			else
				printf("unshare %s errno %d\n", argv[i], errno);
			fflush(stdout);
		}
		printf("alive\n");
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "loop")) {
		long count = atol(argv[2]), failed = 0;
		double start = now_ns();
		for (long i = 0; i < count; i++)
			if (unshare(CLONE_FS) != 0)
				failed++;
		printf("ns_per_call %.0f failed %ld\n", count > 0 ? (now_ns() - start) / count : 0.0, failed);
		return 0;
	}
	fprintf(stderr, "usage: unsharetry try NAME... | loop COUNT\n");
	return 2;
}
