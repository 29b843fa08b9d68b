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

	td->lines++;
	log_info("esp remote=%s host=%s spi_out=0x%08x spi_in=0x%08x "
		 "state=%s pkts_out=%llu pkts_in=%llu idle_ms=%llu "
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

	td->lines++;
	log_info("isakmp remote=%s host=%s cookie_i=%016llx cookie_r=%016llx "
		 "idle_ms=%llu expires_in_ms=%lld", dump_ip(e->remote, r),
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
	if (!td->active)
		return true;
	td->now = now;
	td->turns++;
	if (engine_cursor_next(eng, &td->cur, max, dump_esp, dump_isakmp,
			       td)) {
		if (td->table == TABLE_ISAKMP) {
			td->active = false;
			return true;
		}
		td->table = TABLE_ISAKMP;
		engine_cursor_start(eng, &td->cur, TABLE_ISAKMP);
	}
	return false;
}
