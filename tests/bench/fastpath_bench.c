/*
 * tests/bench/fastpath_bench: the kernel fast path at scale (issue 14).
 * Run as root inside a scratch network namespace (see BENCHMARKS.md):
 * creates table ip ipsec_masqd_fast with src/fastpath.c, then
 *
 *   fastpath_bench [-n ENTRIES] [-b OPS_PER_TURN] [-c CHECKS_PER_TURN]
 *                  [-k K] [-a ADMIT_RATE]
 *
 * 1. install: offloads ENTRIES associations (an in and an out element
 *    each) at once and sends them as the daemon's loop does, at most
 *    OPS_PER_TURN element changes a turn (daemon.c: MASQD_FP_OPS_BUDGET):
 *    the rate, and how long each turn blocks the loop (median, p99, max);
 * 2. check, idle: the clock moved to just before the elements' expiry, so
 *    that every association is due, checked CHECKS_PER_TURN a turn
 *    (MASQD_FP_CHECK_BUDGET) as the daemon does: one GETSETELEM per key
 *    group, each found idle (left to expire): associations checked per
 *    second and each turn's duration;
 * 3. check, renewing: the same with the engine's expiry moved on, so that
 *    each check also renews both elements' timeouts (a used association
 *    costs this);
 * 4. remove: all of them, at the same budget.
 * -k K: then every K-th association's in element is deleted behind the
 * daemon's back (nft -f) and all are checked at once, so that the kernel
 * answers ENOENT in the middle of messages: those must come back
 * reinstalled, the rest found idle (printed as check_lost).
 * The clock given to fastpath.c is injected (ms); the kernel's is real.
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

#define LIFE_MS 600000u

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

struct clockctx {
	uint64_t now, expires;     /* the engine's clock and every expiry */
	size_t calls, used;
};

/* The engine as the bench sees it: every association alive until
 * ctx->expires. */
static int use_fn(void *ctx, uint32_t remote, uint32_t spi_in, uint32_t host,
		  const struct engine_esp_use *use, uint64_t *life_ms,
		  uint64_t *remain_ms)
{
	struct clockctx *c = ctx;

	(void)remote; (void)spi_in; (void)host;
	c->calls++;
	c->used += use->pkts_in || use->pkts_out;
	*life_ms = LIFE_MS;
	*remain_ms = c->expires > c->now ? c->expires - c->now : 0;
	return 1;
}

static void assoc(size_t j, uint32_t *remote, uint32_t *host, uint32_t *spi)
{
	*remote = 0x0a000000u | (uint32_t)(j >> 8);
	*host = 0xc0a80000u | (uint32_t)(j & 0xff) | 1;
	*spi = 0x10000000u + (uint32_t)j;
}

/* Prints one phase's rate and per-turn durations t[0, k). */
static void report(const char *name, size_t n, uint64_t total_us,
		   uint64_t *t, size_t k, const char *extra)
{
	qsort(t, k, sizeof(*t), cmp_u64);
	printf("%s entries=%zu turns=%zu seconds=%.3f rate_per_s=%.0f "
	       "turn_us_median=%llu turn_us_p99=%llu turn_us_max=%llu%s\n",
	       name, n, k, total_us / 1e6, n / (total_us / 1e6),
	       (unsigned long long)(k ? t[k / 2] : 0),
	       (unsigned long long)(k ? t[k * 99 / 100] : 0),
	       (unsigned long long)(k ? t[k - 1] : 0), extra);
}

/* Sends what is queued, ops a turn; returns the number of turns. */
static size_t drain(struct fastpath *fp, size_t ops, uint64_t *t, size_t cap)
{
	size_t k = 0;

	while (fastpath_pending(fp)) {
		uint64_t c0 = now_us();

		(void)fastpath_commit_max(fp, ops);
		if (k < cap)
			t[k++] = now_us() - c0;
	}
	return k;
}

static int phase_install(struct fastpath *fp, size_t n, size_t ops,
			 uint64_t *t, size_t cap, int remove)
{
	uint64_t t0 = now_us(), queue_us;
	char extra[64];
	size_t k;

	for (size_t j = 0; j < n; j++) {
		uint32_t remote, host, spi;

		assoc(j, &remote, &host, &spi);
		if (remove)
			fastpath_forget(fp, remote, spi, false);
		else if (fastpath_offload(fp, remote, host, spi + 0x40000000u,
					  spi, 0, LIFE_MS, LIFE_MS) < 0)
			return -1;
	}
	queue_us = now_us() - t0;
	k = drain(fp, ops, t, cap);
	snprintf(extra, sizeof(extra), " queue_us=%llu errors=%llu",
		 (unsigned long long)queue_us,
		 (unsigned long long)fastpath_get_stats(fp)->errors);
	report(remove ? "remove" : "install", n, now_us() - t0, t, k, extra);
	return 0;
}

static void phase_check(struct fastpath *fp, const char *name, size_t n,
			size_t per, struct clockctx *c, uint64_t *t,
			size_t cap, size_t ops)
{
	const struct fastpath_stats *st = fastpath_get_stats(fp);
	uint64_t idle0 = st->checks_idle, ref0 = st->refreshed;
	uint64_t late0 = st->checks_late, re0 = st->reinstalled;
	uint64_t t0 = now_us();
	size_t k = 0, done = 0;
	char extra[200];

	c->calls = c->used = 0;
	while (fastpath_next_check(fp) <= c->now) {
		uint64_t c0 = now_us();
		size_t m = fastpath_check(fp, c->now, per, false, use_fn, c);

		/* the renewals go out as the loop sends them */
		(void)fastpath_commit_max(fp, ops);
		if (k < cap)
			t[k++] = now_us() - c0;
		done += m;
		if (m == 0)
			break;
	}
	k += drain(fp, ops, t + k, cap - k);
	snprintf(extra, sizeof(extra), " checked=%zu idle=%llu renewed=%llu "
		 "late=%llu reinstalled=%llu check_errors=%llu",
		 done, (unsigned long long)(st->checks_idle - idle0),
		 (unsigned long long)(st->refreshed - ref0),
		 (unsigned long long)(st->checks_late - late0),
		 (unsigned long long)(st->reinstalled - re0),
		 (unsigned long long)st->check_errors);
	report(name, n, now_us() - t0, t, k, extra);
}

/* Deletes the in element of every k-th association with nft. */
static int lose(size_t n, size_t k)
{
	FILE *f = popen("nft -f -", "w");

	if (!f)
		return -1;
	for (size_t j = 0; j < n; j += k) {
		uint32_t remote, host, spi;

		assoc(j, &remote, &host, &spi);
		fprintf(f, "delete element ip ipsec_masqd_fast in { "
			"%u.%u.%u.%u . %u.%u.%u.%u }\n", remote >> 24,
			remote >> 16 & 255, remote >> 8 & 255, remote & 255,
			spi >> 24, spi >> 16 & 255, spi >> 8 & 255, spi & 255);
	}
	return pclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct fastpath_admit a = { 0, 0, NULL, 0 };
	size_t n = 100000, ops = 4096, per = 1024, cap, k = 0;
	struct clockctx c = { 0 };
	struct fastpath *fp;
	uint64_t *t;
	int o;

	static const struct prefix4 lan = { 0xc0a80000u, 0xffff0000u };

	while ((o = getopt(argc, argv, "n:b:c:k:a:")) != -1) {
		if (o == 'n')
			n = strtoul(optarg, NULL, 0);
		else if (o == 'b')
			ops = strtoul(optarg, NULL, 0);
		else if (o == 'c')
			per = strtoul(optarg, NULL, 0);
		else if (o == 'k')
			k = strtoul(optarg, NULL, 0);
		else if (o == 'a') {   /* admission on, LAN 192.168.0.0/16 */
			a.rate = (unsigned)strtoul(optarg, NULL, 0);
			a.lan = &lan;
			a.n_lan = 1;
		}
		else
			return 2;
	}
	if (!n || !ops || !per)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	cap = 4 * n / (per < ops ? per : ops) + 16;
	t = calloc(cap, sizeof(*t));
	fp = fastpath_open(0xc6336401u, &a);
	if (!t || !fp)
		return 1;
	if (phase_install(fp, n, ops, t, cap, 0) < 0)
		return 1;
	/* just before the expiry: every association due, still in the
	 * kernel (the elements were given 600 s of real time) */
	c.now = LIFE_MS - 1;
	c.expires = LIFE_MS;
	phase_check(fp, "check_idle", n, per, &c, t, cap, ops);
	/* the idle ones come back at their expiry (only the engine asked):
	 * move on, the engine now keeping them a lifetime more */
	c.now = LIFE_MS + 100;
	c.expires = c.now + LIFE_MS;
	(void)fastpath_check(fp, c.now, SIZE_MAX, false, use_fn, &c);
	(void)drain(fp, ops, t, cap);
	/* they were reinstalled: now renew each at its check */
	c.now = c.now + LIFE_MS - 1;
	c.expires = c.now + LIFE_MS;
	phase_check(fp, "check_renew", n, per, &c, t, cap, ops);
	if (k) {
		const struct fastpath_stats *st = fastpath_get_stats(fp);
		uint64_t re0 = st->reinstalled, idle0 = st->checks_idle;

		if (lose(n, k) < 0)
			return 1;
		c.now += 1;
		(void)fastpath_check(fp, c.now, SIZE_MAX, true, use_fn, &c);
		(void)drain(fp, ops, t, cap);
		printf("check_lost entries=%zu lost=%zu reinstalled=%llu "
		       "idle=%llu check_errors=%llu\n", n, (n + k - 1) / k,
		       (unsigned long long)(st->reinstalled - re0),
		       (unsigned long long)(st->checks_idle - idle0),
		       (unsigned long long)st->check_errors);
	}
	if (phase_install(fp, n, ops, t, cap, 1) < 0)
		return 1;
	fastpath_close(fp, true);
	free(t);
	return 0;
}
