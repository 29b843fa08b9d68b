/*
 * The SIGUSR1 table dump: one log line per ESP and ISAKMP entry, written a
 * bounded number of entries a loop turn (issue 13), so that a dump of a
 * large table does not hold the packet loop. Built on engine_cursor: an
 * entry alive throughout the dump is logged once; one created or removed
 * meanwhile may or may not be.
 */
#ifndef IPSEC_MASQD_DUMP_H
#define IPSEC_MASQD_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

struct table_dump {
	bool active;                 /* between start and the last step */
	enum engine_table table;     /* being walked: ESP, then ISAKMP */
	struct engine_cursor cur;
	uint64_t now;                /* engine clock of the current step */
	size_t lines;                /* entries logged */
	unsigned turns;              /* steps taken */
};

/* Start a dump of eng's tables (logs nothing yet). */
void table_dump_start(struct table_dump *td, const struct engine *eng);

/* Log up to max more entries at engine time now. Returns true when the
 * dump is over (td->active is then false). */
bool table_dump_step(struct table_dump *td, const struct engine *eng,
		     uint64_t now, size_t max);

#endif
