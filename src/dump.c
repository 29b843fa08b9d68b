/*
 * The SIGUSR1 table dump (include/dump.h): the entries' log lines, walked
 * in slices with an engine cursor.
 */
#include <stdio.h>

#include "dump.h"
#include "log.h"

/* Dotted quad of a host-order address into buf (16 bytes). */
static const char *dump_ip(uint32_t a, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255,
		 (a >> 8) & 255, a & 255);
	return buf;
}

/* Walk callback: one log line per ESP entry. */
static void dump_esp(void *ctx, const struct engine_esp_info *e)
{
	struct table_dump *td = ctx;
	char r[16], h[16];

	td->pending = true;
	snprintf(td->line, sizeof(td->line), "esp remote=%s host=%s "
		 "spi_out=0x%08x spi_in=0x%08x state=%s pkts_out=%llu pkts_in=%llu idle_ms=%llu "
		 "expires_in_ms=%lld", dump_ip(e->remote, r),
		 dump_ip(e->host, h), e->spi_out, e->spi_in,
		 esp_state_name(e->state), (unsigned long long)e->pkts_out,
		 (unsigned long long)e->pkts_in,
		 (unsigned long long)(td->now - e->last_seen),
		 (long long)(e->expires - td->now));
}

/* Walk callback: one log line per ISAKMP entry. */
static void dump_isakmp(void *ctx, const struct engine_isakmp_info *e)
{
	struct table_dump *td = ctx;
	char r[16], h[16];

	td->pending = true;
	snprintf(td->line, sizeof(td->line), "isakmp remote=%s host=%s "
		 "cookie_i=%016llx cookie_r=%016llx idle_ms=%llu expires_in_ms=%lld", dump_ip(e->remote, r),
		 dump_ip(e->host, h), (unsigned long long)e->cookie_i,
		 (unsigned long long)e->cookie_r,
		 (unsigned long long)(td->now - e->last_seen),
		 (long long)(e->expires - td->now));
}

void table_dump_start(struct table_dump *td, const struct engine *eng)
{
	*td = (struct table_dump){ .active = true, .table = TABLE_ESP };
	engine_cursor_start(eng, &td->cur, TABLE_ESP);
}

bool table_dump_step(struct table_dump *td, const struct engine *eng,
		     uint64_t now, size_t max)
{
	size_t out = 0;

	if (!td->active)
		return true;
	td->now = now;
	td->turns++;
	td->log_full = false;
	/* one entry at a time: each is offered to the log before the next
	 * is read, and one the log cannot take now waits in td->line; the
	 * cursor looks at most 72 free slots a call, so the calls are
	 * bounded too */
	for (size_t calls = 0; out < max && calls < 2 * max + 2; calls++) {
		if (td->pending) {
			if (!log_offer(td->line)) {
				td->log_full = true;
				return false;
			}
			td->pending = false;
			td->lines++;
			out++;
		} else if (!td->table_done) {
			td->table_done = engine_cursor_next(eng, &td->cur, 1,
							    dump_esp,
							    dump_isakmp, td);
		} else if (td->table == TABLE_ESP) {
			td->table = TABLE_ISAKMP;
			td->table_done = false;
			engine_cursor_start(eng, &td->cur, TABLE_ISAKMP);
		} else {
			td->active = false;
			return true;
		}
	}
	return false;
}
