/*
 * tests/bench/netbench.h: what the network benchmark's generator (gen.c)
 * and counter (sink.c) agree on: the frame layout and the marker each ESP
 * packet carries in its payload.
 *
 * A frame is Ethernet (14) + IPv4 without options (20) + ESP header (SPI,
 * sequence number: 8) + the payload, whose first bytes are struct
 * nb_marker: a magic, the run (one per trial, so that a late packet of the
 * previous trial is not counted), the generator's sequence number (0, 1,
 * ...) and its CLOCK_REALTIME send time. The rest of the payload is zero.
 * The ESP sequence number is the generator's plus one (ESP's starts at 1).
 */
#ifndef NETBENCH_H
#define NETBENCH_H

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NB_MAGIC        0x494d424eu     /* "IMBN" */
#define NB_ETH_LEN      14
#define NB_IP_LEN       20
#define NB_ESP_LEN      8
#define NB_OFF_IP       NB_ETH_LEN
#define NB_OFF_SPI      (NB_ETH_LEN + NB_IP_LEN)
#define NB_OFF_MARKER   (NB_ETH_LEN + NB_IP_LEN + NB_ESP_LEN)
#define NB_MAX_PAYLOAD  1472            /* an IP packet of at most 1500 */

/* In host byte order: both ends run on the same machine. */
struct nb_marker {
	uint32_t magic;
	uint32_t run;
	uint64_t seq;
	uint64_t tx_ns;         /* CLOCK_REALTIME, just before the send call */
};

#define NB_MIN_PAYLOAD  ((int)sizeof(struct nb_marker))

/* Parses a number with strtod; returns -1 unless it is all number and
 * within [lo, hi]. */
static inline int nb_parse_num(const char *s, double lo, double hi,
			       double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Pins the calling process to `cpu` (none when negative). Returns 0, or -1
 * after printing why, prefixed with `who`. (Needs _GNU_SOURCE.) */
static inline int nb_pin_cpu(const char *who, int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		fprintf(stderr, "%s: sched_setaffinity: %s\n", who,
			strerror(errno));
		return -1;
	}
	return 0;
}

#endif
