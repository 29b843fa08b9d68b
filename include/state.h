/*
 * The state file: live associations saved at shutdown, restored at start.
 * Written atomically (temp file, fsync, rename), versioned, with wall-clock
 * expiry so that a restart keeps live entries and drops dead ones.
 */
#ifndef IPSEC_MASQD_STATE_H
#define IPSEC_MASQD_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "engine.h"

/*
 * The daemon's engine clock is CLOCK_MONOTONIC (ms) plus this headroom.
 * Right after a boot CLOCK_MONOTONIC is small, yet a restored entry's
 * last_seen lies up to its idle lifetime in the past (at most 2^32 - 1 ms,
 * see engine.h): with 2^33 ms (99 days) of headroom it is expressible, so
 * the entry keeps both its lifetime and the time it had left, exactly.
 */
#define STATE_CLOCK_HEADROOM_MS (UINT64_C(1) << 33)

/* Engine time of CLOCK_MONOTONIC ms `mono`, and back (never below 0). */
static inline uint64_t state_engine_clock(uint64_t mono)
{
	return mono + STATE_CLOCK_HEADROOM_MS;
}

static inline uint64_t state_mono_clock(uint64_t engine_ms)
{
	return engine_ms > STATE_CLOCK_HEADROOM_MS
		       ? engine_ms - STATE_CLOCK_HEADROOM_MS : 0;
}

struct state_counts {
	size_t esp_restored, isakmp_restored, expired, rejected;
};

/* Save eng's tables; now_mono is the engine clock (ms), now_wall the
 * wall-clock time at the same instant. Returns 0, or -1 with a message. */
int state_save(const char *path, const struct engine *eng, uint64_t now_mono,
	       time_t now_wall, char *err, size_t errlen);

/* Load into eng. A missing file is not an error (counts all zero). Returns
 * 0, or -1 with a message naming the file and line (the engine may then hold
 * the entries read before the error). */
int state_load(const char *path, struct engine *eng, uint64_t now_mono,
	       time_t now_wall, struct state_counts *counts, char *err,
	       size_t errlen);

/* Removes the temporary files a save interrupted by a crash left beside
 * path ("<path>.XXXXXX", mkstemp's pattern). Returns how many were
 * removed, or -1 with a message when the directory cannot be read. */
int state_remove_stale_temps(const char *path, char *err, size_t errlen);

#endif
