/*
 * The SIGUSR1 table dump: one log line per ESP and ISAKMP entry, written a
 * bounded number of entries a loop turn (issue 13), so that a dump of a
 * large table does not hold the packet loop, and at the pace the log takes
 * them, so that a busy journald loses none of them. Built on engine_cursor: an
 * entry alive throughout the dump is logged once; one created or removed
 * meanwhile may or may not be.
 */
#ifndef IPSEC_MASQD_DUMP_H
#define IPSEC_MASQD_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "log.h"

struct table_dump {
	bool active;                 /* between start and the last step */
	enum engine_table table;     /* being walked: ESP, then ISAKMP */
	bool table_done;             /* its walk is over */
	struct engine_cursor cur;
	uint64_t now;                /* engine clock of the current step */
	size_t lines;                /* entries logged */
	unsigned turns;              /* steps taken */
	bool log_full;               /* the last step stopped because the
				      * log would have blocked */
	bool pending;                /* line holds an entry not yet out */
	char line[LOG_LINE_MAX];
};

/* Start a dump of eng's tables (logs nothing yet). */
void table_dump_start(struct table_dump *td, const struct engine *eng);

/* Log up to max more entries at engine time now, at the pace the log
 * takes them: when it would block, the step ends (td->log_full) and the
 * entry goes out at a later one, so that no line of a dump is lost to a
 * busy journald. Returns true when the dump is over (td->active is then
 * false). */
bool table_dump_step(struct table_dump *td, const struct engine *eng,
		     uint64_t now, size_t max);

#endif
