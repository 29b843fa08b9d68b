/*
 * tests/bench/fastpath_bench: the kernel fast path at scale (issue 14).
 * Run as root inside a scratch network namespace (tests/bench/fastpath.sh
 * makes one): creates table ip ipsec_masqd_fast with src/fastpath.c, then
 *
 *   fastpath_bench [-n ENTRIES] [-b PER_COMMIT]
 *
 * offloads ENTRIES associations (in and out elements each) in commits of
 * PER_COMMIT, as the daemon's loop would (one commit per loop pass), and
 * reports the install rate and each commit's duration (what the packet
 * loop waits while a batch goes in: median and max), one poll of the
 * kernel's counters with every element present, and the removal likewise.
 * Prints key=value lines.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fastpath.h"

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Every association alive, nothing used: the elements stay. */
static int use_fn(void *ctx, uint32_t remote, uint32_t spi_in, uint32_t host,
		  const struct engine_esp_use *use, uint64_t *life_ms,
		  uint64_t *remain_ms)
{
	(void)ctx; (void)remote; (void)spi_in; (void)host; (void)use;
	*life_ms = *remain_ms = 600000;
	return 1;
}

/* One phase: n operations in commits of per; prints rate and commit times. */
static int phase(struct fastpath *fp, const char *name, size_t n, size_t per,
		 int remove)
{
	size_t commits = (n + per - 1) / per, k = 0;
	uint64_t *t = calloc(commits ? commits : 1, sizeof(*t));
	uint64_t t0 = now_us(), total;

	if (!t)
		return -1;
	for (size_t i = 0; i < n; i += per, k++) {
		uint64_t c0;

		for (size_t j = i; j < n && j < i + per; j++) {
			uint32_t remote = 0x0a000000u | (uint32_t)(j >> 8);
			uint32_t host = 0xc0a80000u | (uint32_t)(j & 0xff) | 1;
			uint32_t spi = 0x10000000u + (uint32_t)j;

			if (remove)
				fastpath_forget(fp, remote, spi);
			else if (fastpath_offload(fp, remote, host, spi + 0x40000000u,
						  spi, 600000, 600000) < 0)
				return -1;
		}
		c0 = now_us();
		if (fastpath_commit(fp) < 0)
			fprintf(stderr, "fastpath_bench: a commit failed\n");
		t[k] = now_us() - c0;
	}
	total = now_us() - t0;
	qsort(t, k, sizeof(*t), cmp_u64);
	printf("%s entries=%zu per_commit=%zu seconds=%.3f rate_per_s=%.0f "
	       "commit_us_median=%llu commit_us_max=%llu\n", name, n, per,
	       total / 1e6, n / (total / 1e6), (unsigned long long)t[k / 2],
	       (unsigned long long)t[k - 1]);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	struct fastpath_admit a = { 0, 0 };
	size_t n = 100000, per = 10000;
	struct fastpath *fp;
	uint64_t t0;
	int o;

	while ((o = getopt(argc, argv, "n:b:")) != -1) {
		if (o == 'n')
			n = strtoul(optarg, NULL, 0);
		else if (o == 'b')
			per = strtoul(optarg, NULL, 0);
		else
			return 2;
	}
	if (!n || !per)
		return 2;
	fp = fastpath_open(0xc6336401u, &a);
	if (!fp)
		return 1;
	if (phase(fp, "install", n, per, 0) < 0)
		return 1;
	t0 = now_us();
	if (fastpath_poll(fp, use_fn, NULL) < 0)
		return 1;
	printf("poll entries=%zu us=%llu\n", n,
	       (unsigned long long)(now_us() - t0));
	if (phase(fp, "remove", n, per, 1) < 0)
		return 1;
	fastpath_close(fp, true);
	return 0;
}
