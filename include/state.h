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

#endif
