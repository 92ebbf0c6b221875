/* Opens for the deny tests (tests/deny.rs) and the notify benchmark.
 *
 *   openrace race SECRET DECOY SECONDS
 *       A second thread keeps swapping one buffer between DECOY and SECRET
 *       while this one opens the buffer: the seccomp agent may read DECOY and
 *       the kernel then open SECRET. Prints "LEAK <first line>" if SECRET's
 *       contents are read, then a summary line; exits 10 on a leak, else 0
 *       (the exit status reaches the test even when a short-lived
 *       container's output does not: ctr can lose it).
 *   openrace watch PATH COUNT MS
 *       COUNT opens of PATH, MS apart: "open ok" or "open errno N" each.
 *   openrace loop PATH COUNT
 *       COUNT open+close of PATH; prints "ns_per_open N failed M".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char buf[4096];
static const char *paths[2];
static atomic_int stop;

static void *swapper(void *arg)
{
	(void)arg;
	size_t i = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		const char *p = paths[i++ & 1];
		/* Byte by byte is fine: a torn path just fails to open. */
		memcpy(buf, p, strlen(p) + 1);
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int race(const char *secret, const char *decoy, double seconds)
{
	char secret_head[64] = { 0 };
	paths[0] = decoy;
	paths[1] = secret;
	strcpy(buf, decoy);
	pthread_t t;
	if (pthread_create(&t, NULL, swapper, NULL) != 0)
		return 2;
	long opens = 0, denied = 0, other = 0, decoys = 0;
	double end = now() + seconds;
	while (now() < end) {
		int fd = open(buf, O_RDONLY);
		opens++;
		if (fd < 0) {
			if (errno == EPERM)
				denied++;
			else
				other++;
			continue;
		}
		char got[64] = { 0 };
		ssize_t n = read(fd, got, sizeof(got) - 1);
		close(fd);
		if (n <= 0)
			continue;
		/* The secret's contents start with its marker, a decoy's do not. */
		if (strstr(got, "-marker")) {
			memcpy(secret_head, got, sizeof(secret_head) - 1);
			break;
		}
		decoys++;
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	if (secret_head[0]) {
		char *nl = strchr(secret_head, '\n');
		if (nl)
			*nl = 0;
		printf("LEAK %s\n", secret_head);
	}
	printf("opens %ld denied %ld decoys %ld other %ld\n", opens, denied, decoys, other);
	return secret_head[0] ? 10 : 0;
}

static int watch(const char *path, long count, long ms)
{
	for (long i = 0; i < count; i++) {
		int fd = open(path, O_RDONLY);
		if (fd >= 0) {
			close(fd);
			printf("open ok\n");
		} else {
			printf("open errno %d\n", errno);
		}
		fflush(stdout);
		usleep(ms * 1000);
	}
	return 0;
}

static int loop(const char *path, long count)
{
	long failed = 0;
	double t0 = now();
	for (long i = 0; i < count; i++) {
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			failed++;
		else
			close(fd);
	}
	double dt = now() - t0;
	printf("ns_per_open %.0f failed %ld\n", dt * 1e9 / count, failed);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[1], "race"))
		return race(argv[2], argv[3], atof(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "watch"))
		return watch(argv[2], atol(argv[3]), atol(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "loop"))
		return loop(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: openrace race SECRET DECOY SECONDS | watch PATH COUNT MS | loop PATH COUNT\n");
	return 2;
}
