/*
 * The state file: live associations saved at shutdown, restored at start.
 * Written atomically (temp file, fsync, rename), versioned, with wall-clock
 * expiry so that a restart keeps live entries and drops dead ones.
 */
#ifndef IPSEC_MASQD_STATE_H
#define IPSEC_MASQD_STATE_H

#include <stdbool.h>
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

/* What state_save names its temporary file: path + this + six characters. */
#define STATE_TEMP_INFIX ".tmp."

/* Save eng's tables; now_mono is the engine clock (ms), now_wall_ms the
 * wall-clock time (Unix ms) at the same instant. Returns 0, or -1 with a
 * message. */
int state_save(const char *path, const struct engine *eng, uint64_t now_mono,
	       int64_t now_wall_ms, char *err, size_t errlen);

/* True for an ESP entry the save leaves out. */
typedef bool (*state_skip_fn)(void *ctx, const struct engine_esp_info *e);

/* state_save, leaving out the ESP entries skip(skip_ctx, e) names (the
 * daemon: the config file's own preloads, which it applies from the config
 * at every start, so that one removed from the file while the daemon was
 * down does not come back from the state file). */
int state_save_except(const char *path, const struct engine *eng,
		      uint64_t now_mono, int64_t now_wall_ms,
		      state_skip_fn skip, void *skip_ctx, char *err,
		      size_t errlen);

/* Load into eng. A missing file is not an error (counts all zero). Returns
 * 0, or -1 with a message naming the file and line (the engine may then hold
 * the entries read before the error). */
int state_load(const char *path, struct engine *eng, uint64_t now_mono,
	       int64_t now_wall_ms, struct state_counts *counts, char *err,
	       size_t errlen);

/* Removes the temporary files a save interrupted by a crash left beside
 * path ("<path>.tmp.XXXXXX", mkstemp's pattern), and nothing else. Returns how many were
 * removed, or -1 with a message when the directory cannot be read. */
int state_remove_stale_temps(const char *path, char *err, size_t errlen);

#endif
