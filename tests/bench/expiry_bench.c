/*
 * tests/bench/expiry_bench.c: a mass expiry and the daemon's loop (issue 13).
 *
 * N ESP entries (preloaded, all with the same lifetime) expire at once.
 * The engine's timers run as the daemon runs them: engine_run_timers_max()
 * with a budget per loop turn (-b; 0 = no budget, everything in one turn,
 * as before issue 13), with the daemon's logger (log.c, stderr backend, to
 * the file -o or /dev/null), which rate-limits the per-entry lines. Reports
 * the turns, the longest turn (how long the packet loop would not serve the
 * queue) and the total, in ms, and the log lines written.
 *
 *   expiry_bench -n 1000000 -b 20000 -o /tmp/expiry.log
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dump.h"
#include "engine.h"
#include "log.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int c;

	if (f == NULL)
		return 0;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* One turn of the bulk work of mode m with budget b (0: none); *done set
 * when it is over. Returns the entries it handled (timers fired, entries
 * walked). */
static size_t bulk_turn(struct engine *eng, const char *m, size_t b,
			uint64_t now, struct engine_cursor *cur,
			struct table_dump *td, size_t *removed, int *done)
{
	size_t fired;

	if (!strcmp(m, "flush")) {
		if (b == 0) {
			*removed += engine_flush(eng, 0, 0);
			*done = 1;
			return *removed;
		}
		if (engine_cursor_flush(eng, cur, b, 0, 0, removed)) {
			if (cur->table == TABLE_ESP)
				*done = 1;
			else
				engine_cursor_start(eng, cur, TABLE_ESP);
		}
		return b;
	}
	if (!strcmp(m, "dump")) {
		*done = table_dump_step(td, eng, now, b ? b : SIZE_MAX) &&
			!td->active;
		return b;
	}
	fired = b ? engine_run_timers_max(eng, now, b)
		  : engine_run_timers(eng, now);
	*done = !b || fired < b;
	return fired;
}

int main(int argc, char **argv)
{
	size_t n = 1000000, budget = 20000, turns = 0, fired, total = 0;
	const char *out = "/dev/null", *mode = "expiry";
	struct engine_cursor cur;
	struct table_dump td;
	size_t removed = 0;
	int done = 0;
	struct engine_config cfg;
	struct engine *eng;
	uint64_t now = 1000;
	double t0, t1, worst = 0, start;
	int opt, fd;

	while ((opt = getopt(argc, argv, "m:n:b:o:")) != -1) {
		switch (opt) {
		case 'm': mode = optarg; break;
		case 'n': n = strtoull(optarg, NULL, 0); break;
		case 'b': budget = strtoull(optarg, NULL, 0); break;
		case 'o': out = optarg; break;
		default:
			fprintf(stderr, "usage: expiry_bench [-m expiry|"
				"flush|dump] [-n ENTRIES] [-b BUDGET, 0 = none] "
				"[-o LOGFILE]\n");
			return 2;
		}
	}
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
		perror(out);
		return 1;
	}
	log_init("expiry_bench", LOG_LEVEL_INFO, LOG_BACKEND_STDERR);
	engine_config_defaults(&cfg);
	cfg.external_addr = 0xc6336401u;
	cfg.internal[0].addr = 0x0a000000u;
	cfg.internal[0].mask = 0xff000000u;
	cfg.n_internal = 1;
	cfg.max_entries = n;
	cfg.max_per_host = 1000;
	eng = engine_new(&cfg, 0x5eed, now, log_engine_event, NULL);
	if (eng == NULL) {
		printf("engine_new failed\n");
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t remote = 0xcb000000u + (uint32_t)(i % 50000) + 1;
		uint32_t host = 0x0a000000u + (uint32_t)(i / 1000) + 1;

		if (engine_preload(eng, remote, host, 0x1000u + (uint32_t)i,
				   0x80000000u + (uint32_t)i, 60000, now) < 0) {
			printf("preload %zu: %s\n", i, strerror(errno));
			return 1;
		}
	}
	/* only the bulk work's lines count */
	if (lseek(fd, 0, SEEK_SET) < 0 || ftruncate(fd, 0) < 0) {
		printf("truncating the log: %s\n", strerror(errno));
		return 1;
	}
	if (!strcmp(mode, "expiry"))
		now += 60000 + 1000;
	else
		now += 1000;   /* flush and dump: all entries alive */
	engine_cursor_start(eng, &cur, TABLE_ISAKMP);
	table_dump_start(&td, eng);
	start = now_ms();
	do {
		t0 = now_ms();
		fired = bulk_turn(eng, mode, budget, now, &cur, &td, &removed,
				  &done);
		t1 = now_ms();
		if (t1 - t0 > worst)
			worst = t1 - t0;
		total += fired;
		turns++;
	} while (!done);
	t1 = now_ms();
	printf("mode=%s entries=%zu budget=%zu turns=%zu handled=%zu "
	       "longest_turn_ms=%.1f total_ms=%.1f left=%zu removed=%zu "
	       "dumped=%zu log_lines=%zu\n",
	       mode, n, budget, turns, total, worst, t1 - start,
	       engine_get_stats(eng)->esp_entries, removed, td.lines,
	       strcmp(out, "/dev/null") ? count_lines(out) : 0);
	engine_free(eng);
	return 0;
}
