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

int main(int argc, char **argv)
{
	size_t n = 1000000, budget = 20000, turns = 0, fired, total = 0;
	const char *out = "/dev/null";
	struct engine_config cfg;
	struct engine *eng;
	uint64_t now = 1000;
	double t0, t1, worst = 0, start;
	int opt, fd;

	while ((opt = getopt(argc, argv, "n:b:o:")) != -1) {
		switch (opt) {
		case 'n': n = strtoull(optarg, NULL, 0); break;
		case 'b': budget = strtoull(optarg, NULL, 0); break;
		case 'o': out = optarg; break;
		default:
			fprintf(stderr, "usage: expiry_bench [-n ENTRIES] "
				"[-b BUDGET, 0 = none] [-o LOGFILE]\n");
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
	/* only the expiry's lines count */
	if (lseek(fd, 0, SEEK_SET) < 0 || ftruncate(fd, 0) < 0) {
		printf("truncating the log: %s\n", strerror(errno));
		return 1;
	}
	now += 60000 + 1000;
	start = now_ms();
	do {
		t0 = now_ms();
		fired = budget ? engine_run_timers_max(eng, now, budget)
			       : engine_run_timers(eng, now);
		t1 = now_ms();
		if (t1 - t0 > worst)
			worst = t1 - t0;
		total += fired;
		turns++;
	} while (budget && fired >= budget);
	t1 = now_ms();
	printf("entries=%zu budget=%zu turns=%zu timers=%zu longest_turn_ms=%.1f "
	       "total_ms=%.1f left=%zu log_lines=%zu\n", n, budget, turns,
	       total, worst, t1 - start, engine_get_stats(eng)->esp_entries,
	       strcmp(out, "/dev/null") ? count_lines(out) : 0);
	engine_free(eng);
	return 0;
}
