/*
 * tests/bench/engine_bench.c: the engine alone, no I/O (issue 6).
 *
 * Makes N live established ESP entries through the real packet path (each a
 * distinct remote, host, out-SPI and in-SPI: the host's first outbound
 * packet starts an init, the remote's first inbound one associates it, one
 * more packet each way confirms the provisional association),
 * reports what they cost in memory (VmRSS before and after, and the bytes
 * the engine says it allocated), then times engine_process() on established
 * flows: outbound and inbound packets to entries drawn at random among the
 * N (so cache misses are those of a big table), and one hot flow (out and
 * in alternately), each repeated -r times.
 *
 * The default config is kept but for the table size (max_entries = N):
 * parallel sessions off, so all the entries of one remote belong to one
 * host; -s entries per remote (SA pairs, as after rekeys), hosts enough to
 * stay under max_per_host.
 *
 * Packets are prebuilt in a ring of 64-byte slots, one per random draw, so
 * the timed loop builds nothing: after each packet it only puts back the
 * address and checksum the engine rewrote. -c CASE -m COUNT runs COUNT
 * packets of one case once and nothing else: for callgrind, which
 * tests/bench/engine.sh runs with two counts and differences, so that the
 * set-up drops out. Under callgrind the set-up runs uninstrumented
 * (--instr-atstart=no) when valgrind's header was there at build time.
 *
 * Output: "key value..." lines (tests/bench/engine.sh parses them). Exit 1
 * when a packet did not get the verdict an established flow must get.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "pktbuild.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND_H 1
#endif
#endif
#ifdef HAVE_CALLGRIND_H
#define CALLGRIND_START "yes"
#else
#define CALLGRIND_START "no"
#define CALLGRIND_START_INSTRUMENTATION do { } while (0)
#endif

#define EXT_ADDR 0xc6336401u        /* 198.51.100.1 */
#define HOST_BASE 0x0a000001u       /* 10.0.0.1 */
#define REMOTE_BASE 0x40000001u     /* 64.0.0.1 */
#define PKT_LEN 52                  /* IPv4 20 + ESP 8 + 24 bytes */
#define IP_OFF_CHECK 10
#define IP_OFF_SADDR 12
#define IP_OFF_DADDR 16

enum bench_case { CASE_OUT, CASE_IN, CASE_HOT, CASE_MAX };

static const char *const case_names[CASE_MAX] = {
	"out_random", "in_random", "hot_flow",
};

/* One prebuilt packet and what to put back after the engine rewrote it. */
struct slot {
	uint8_t pkt[PKT_LEN];
	uint8_t orig_addr[4];           /* the address the engine replaces */
	uint8_t orig_check[2];
	uint8_t dir;                    /* enum direction */
	uint8_t addr_off;               /* IP_OFF_SADDR or IP_OFF_DADDR */
	uint8_t pad[4];
};

_Static_assert(sizeof(struct slot) == 64, "a slot is one cache line");

struct bench {
	struct engine *eng;
	uint64_t now;
	size_t n, per_remote, hosts;
	uint64_t rng;
	unsigned long bad;              /* packets with the wrong verdict */
};

/* xorshift64*: a fixed, fast sequence of draws. */
static uint64_t rnd(struct bench *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 0x2545f4914f6cdd1dULL;
}

/* Entry i: its remote, host and SPIs. All entries of a remote share its
 * host (parallel sessions are off); SPIs are unique per remote. */
static uint32_t remote_of(const struct bench *b, size_t i)
{
	return REMOTE_BASE + (uint32_t)(i / b->per_remote);
}

static uint32_t host_of(const struct bench *b, size_t i)
{
	return HOST_BASE + (uint32_t)(i / b->per_remote % b->hosts);
}

static uint32_t spi_out_of(size_t i)
{
	return 0x10000000u + (uint32_t)i;
}

static uint32_t spi_in_of(size_t i)
{
	return 0x80000000u + (uint32_t)i;
}

/* VmRSS of this process in KiB, from /proc/self/status; 0 if unknown. */
static long rss_kib(void)
{
	char line[256];
	long kib = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Fill a slot with entry i's packet in direction dir. */
static void slot_fill(const struct bench *b, struct slot *s, size_t i,
		      enum direction dir)
{
	size_t len;

	if (dir == DIR_OUTBOUND)
		len = pb_esp(s->pkt, sizeof(s->pkt), host_of(b, i),
			     remote_of(b, i), spi_out_of(i), 2, 24);
	else
		len = pb_esp(s->pkt, sizeof(s->pkt), remote_of(b, i), EXT_ADDR,
			     spi_in_of(i), 2, 24);
	if (len != PKT_LEN) {
		fprintf(stderr, "engine_bench: packet of %zu bytes\n", len);
		exit(1);
	}
	s->dir = (uint8_t)dir;
	s->addr_off = dir == DIR_OUTBOUND ? IP_OFF_SADDR : IP_OFF_DADDR;
	memcpy(s->orig_addr, s->pkt + s->addr_off, 4);
	memcpy(s->orig_check, s->pkt + IP_OFF_CHECK, 2);
}

/* One packet through the engine; it must be rewritten and passed. */
static void send_one(struct bench *b, struct slot *s)
{
	struct engine_decision d;

	engine_process(b->eng, s->pkt, PKT_LEN, (enum direction)s->dir, b->now,
		       &d);
	if (d.verdict != VERDICT_ACCEPT_MODIFIED || d.reason != R_PASS)
		b->bad++;
	memcpy(s->pkt + s->addr_off, s->orig_addr, 4);
	memcpy(s->pkt + IP_OFF_CHECK, s->orig_check, 2);
}

/* N established entries through the packet path: out (init), in
 * (associated, provisional), out and in again (established). Returns 0,
 * or -1 when one did not associate. */
static int populate(struct bench *b)
{
	struct slot s;

	for (size_t i = 0; i < b->n; i++) {
		for (int twice = 0; twice < 2; twice++) {
			slot_fill(b, &s, i, DIR_OUTBOUND);
			send_one(b, &s);
			slot_fill(b, &s, i, DIR_INBOUND);
			send_one(b, &s);
		}
		if (b->bad) {
			fprintf(stderr, "engine_bench: entry %zu not "
				"associated\n", i);
			return -1;
		}
	}
	return engine_get_stats(b->eng)->esp_entries == b->n ? 0 : -1;
}

/* The ring of a case: random entries in one direction, or the hot flow's
 * out/in pair. */
static struct slot *ring_new(struct bench *b, enum bench_case c,
			     size_t *len)
{
	size_t n = c == CASE_HOT ? 2 : *len;
	struct slot *ring = aligned_alloc(64, n * sizeof(*ring));

	if (!ring) {
		perror("engine_bench: ring");
		exit(1);
	}
	for (size_t k = 0; k < n; k++) {
		if (c == CASE_HOT)
			slot_fill(b, &ring[k], b->n / 2,
				  k ? DIR_INBOUND : DIR_OUTBOUND);
		else
			slot_fill(b, &ring[k], (size_t)(rnd(b) % b->n),
				  c == CASE_OUT ? DIR_OUTBOUND : DIR_INBOUND);
	}
	*len = n;
	return ring;
}

/* count packets from the ring, the clock moving 1 ms every 1024. Kept out
 * of line: callgrind's figure is the difference of two counts. */
__attribute__((noinline)) static void run_ring(struct bench *b,
						struct slot *ring, size_t len,
						size_t count)
{
	size_t k = 0;

	for (size_t i = 0; i < count; i++) {
		send_one(b, &ring[k]);
		if (++k == len)
			k = 0;
		if ((i & 1023) == 1023)
			b->now++;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: engine_bench [-n ENTRIES] [-s PER_REMOTE] [-p PACKETS] [-r REPS]\n"
		"                    [-R RING] [-S SEED] [-c CASE -m COUNT]\n"
		"  -n ENTRIES    live established ESP entries (1000)\n"
		"  -s N          entries per remote gateway (4)\n"
		"  -p PACKETS    packets per timed repetition (2000000)\n"
		"  -r REPS       repetitions of each case (3)\n"
		"  -R RING       prebuilt random packets (min(4 x ENTRIES, 1048576), >= 4096)\n"
		"  -S SEED       draws (1)\n"
		"  -c CASE -m COUNT  only run COUNT packets of CASE (out_random,\n"
		"                in_random, hot_flow) once, untimed: for callgrind\n");
}

static size_t parse_size(const char *arg, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || *end || end == arg || v == 0 || v > 100000000ULL) {
		fprintf(stderr, "engine_bench: bad %s %s\n", what, arg);
		exit(2);
	}
	return (size_t)v;
}

int main(int argc, char **argv)
{
	struct bench b = { .n = 1000, .per_remote = 4, .rng = 1, .now = 1000 };
	size_t packets = 2000000, reps = 3, ring_len = 0, count = 0;
	int only = -1, opt;
	struct engine_config cfg;
	struct engine_memory mem;
	long rss0, rss1;
	double t0, t1;

	while ((opt = getopt(argc, argv, "n:s:p:r:R:S:c:m:h")) != -1) {
		switch (opt) {
		case 'n': b.n = parse_size(optarg, "entries"); break;
		case 's': b.per_remote = parse_size(optarg, "per-remote"); break;
		case 'p': packets = parse_size(optarg, "packets"); break;
		case 'r': reps = parse_size(optarg, "repetitions"); break;
		case 'R': ring_len = parse_size(optarg, "ring"); break;
		case 'S': b.rng = parse_size(optarg, "seed"); break;
		case 'm': count = parse_size(optarg, "count"); break;
		case 'c':
			for (int c = 0; c < CASE_MAX; c++)
				if (strcmp(optarg, case_names[c]) == 0)
					only = c;
			if (only < 0) {
				fprintf(stderr, "engine_bench: no case %s\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (only >= 0) != (count > 0)) {
		usage(stderr);
		return 2;
	}
	if (!ring_len)
		ring_len = b.n * 4 < 4096 ? 4096 :
			   b.n * 4 > 1048576 ? 1048576 : b.n * 4;
	/* parallel sessions off: a host's entries stay under max_per_host */
	engine_config_defaults(&cfg);
	b.hosts = (b.n + cfg.max_per_host / 2 - 1) / (cfg.max_per_host / 2);
	if (b.hosts > (b.n + b.per_remote - 1) / b.per_remote)
		b.hosts = (b.n + b.per_remote - 1) / b.per_remote;
	cfg.external_addr = EXT_ADDR;
	cfg.internal[0].addr = 0x0a000000u;
	cfg.internal[0].mask = 0xff000000u;
	cfg.n_internal = 1;
	cfg.max_entries = b.n;

	rss0 = rss_kib();
	b.eng = engine_new(&cfg, 0x5eed, b.now, NULL, NULL);
	if (!b.eng) {
		perror("engine_bench: engine_new");
		return 1;
	}
	t0 = now_ns();
	if (populate(&b)) {
		fprintf(stderr, "engine_bench: set-up failed\n");
		return 1;
	}
	t1 = now_ns();
	rss1 = rss_kib();
	engine_get_memory(b.eng, &mem);
	printf("entries %zu\nremotes %zu\nhosts %zu\n", b.n,
	       engine_get_stats(b.eng)->remotes, engine_get_stats(b.eng)->hosts);
	printf("esp_entry_bytes %zu\n", mem.esp_entry_size);
	printf("rss_kib %ld %ld\n", rss0, rss1);
	printf("rss_bytes_per_entry %.1f\n",
	       (double)(rss1 - rss0) * 1024.0 / (double)b.n);
	printf("alloc_bytes_per_entry %.1f pools %zu tables %zu\n",
	       (double)(mem.pools + mem.tables) / (double)b.n, mem.pools,
	       mem.tables);
	printf("setup_ns_per_entry %.0f\n", (t1 - t0) / (double)b.n);
	/* engine.sh runs the set-up uninstrumented only if this can start
	 * the instrumentation */
	printf("callgrind_start %s\n", CALLGRIND_START);
	fflush(stdout);

	for (int c = 0; c < CASE_MAX; c++) {
		size_t len = ring_len;
		struct slot *ring;
		double ns[64];

		if (only >= 0 && c != only)
			continue;
		ring = ring_new(&b, (enum bench_case)c, &len);
		if (only >= 0) {
			CALLGRIND_START_INSTRUMENTATION;
			run_ring(&b, ring, len, count);
			printf("ran %s %zu\n", case_names[c], count);
			free(ring);
			continue;
		}
		run_ring(&b, ring, len, len < packets ? len : packets);
		if (reps > 64)
			reps = 64;
		for (size_t r = 0; r < reps; r++) {
			t0 = now_ns();
			run_ring(&b, ring, len, packets);
			t1 = now_ns();
			ns[r] = (t1 - t0) / (double)packets;
		}
		free(ring);
		qsort(ns, reps, sizeof(ns[0]), cmp_double);
		printf("ns_per_packet %s median %.1f min %.1f max %.1f reps %zu"
		       " packets %zu\n", case_names[c],
		       reps % 2 ? ns[reps / 2]
				: (ns[reps / 2 - 1] + ns[reps / 2]) / 2,
		       ns[0], ns[reps - 1], reps, packets);
		fflush(stdout);
	}
	if (b.bad) {
		fprintf(stderr, "engine_bench: %lu packets not passed as an "
			"established flow\n", b.bad);
		return 1;
	}
	engine_free(b.eng);
	return 0;
}
