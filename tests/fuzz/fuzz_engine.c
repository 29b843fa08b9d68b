/*
 * libFuzzer target: the whole engine fed a sequence of steps decoded from
 * the input. Each step advances the clock and then sends a packet in either
 * direction (mostly ESP / ISAKMP / AH built from a few input bytes over
 * small pools of LAN hosts, remotes, SPIs and cookies, so that associations
 * form and the limits are hit; sometimes raw bytes), or runs the timers,
 * preloads, flushes, deletes, reconfigures or changes the external address.
 * After every step the invariants of design.md ("Association rules") hold:
 *  - no outbound packet that is not dropped carries a LAN source address;
 *  - a rewritten packet differs from its input in one address and the
 *    checksums only, and its checksums equal full recomputation when the
 *    input's did (tests/fuzz/fuzz_check.h);
 *  - ESP + ISAKMP entries <= max_entries, entries per host <= max_per_host,
 *    the stats agree with the walks;
 *  - an ESP entry knows an inbound SPI only after a preload of it or an
 *    association made while that host's init with the remote was pending
 *    (tracked here from what the engine accepted, not from its state);
 *    a re-association only moves an SPI to a host that sent ESP to that
 *    remote, and no inbound SPI is bound (established or provisional) to
 *    a host that has not;
 *  - the serialization slot is held only by a pending init (never by a
 *    squelched, waiting or queued one), by at most one per remote, and the
 *    pending and queued counts agree with the walk;
 *  - every entry is on the timer wheel, and none outlives its deadline once
 *    the timers have run.
 * A step may also restart the engine from its walked state (the state
 * file's restore path). engine_free() at the end lets LeakSanitizer see
 * anything left behind.
 *
 * Input layout: 8 bytes of config and hash seed, then steps of
 * [op][clock step][operands...]; missing bytes read as 0.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "fuzz_check.h"
#include "packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FUZZ_TRACE=1 in the environment prints every step (for reproducers). */
static int trace = -1;
#define TRACE(...)                                                       \
	do {                                                             \
		if (trace)                                               \
			fprintf(stderr, __VA_ARGS__);                    \
	} while (0)

#define MAX_STEPS 256
#define MAX_ENTRIES 64
#define MAX_PER_HOST 8
#define SEC 1000ULL

/* ---- input reader --------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct rd *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static uint16_t u16(struct rd *r)
{
	return (uint16_t)(u8(r) << 8 | u8(r));
}

static uint32_t u32(struct rd *r)
{
	return (uint32_t)u16(r) << 16 | u16(r);
}

/* ---- pools ------------------------------------------------------------------ */

#define A(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | \
		       (uint32_t)(c) << 8 | (uint32_t)(d))

static const uint32_t lan[8] = {
	A(192, 168, 1, 1), A(192, 168, 1, 2), A(192, 168, 1, 3),
	A(192, 168, 1, 4), A(192, 168, 1, 5), A(192, 168, 1, 6),
	A(10, 0, 0, 1), A(10, 200, 3, 4),
};
/* sources that are not ours: another network, the external addresses */
static const uint32_t foreign[4] = {
	A(172, 16, 0, 1), A(198, 51, 100, 1), A(198, 51, 100, 2), 0,
};
/* the last remote looks like a LAN address: a peer reached over the WAN */
static const uint32_t remotes[6] = {
	A(203, 0, 113, 1), A(203, 0, 113, 2), A(203, 0, 113, 3),
	A(198, 18, 0, 1), A(198, 18, 0, 2), A(10, 9, 9, 9),
};
static const uint32_t externals[4] = {
	A(198, 51, 100, 1), A(198, 51, 100, 2), 0, A(198, 51, 100, 1),
};
static const uint64_t lifetimes[8] = {
	1800 * SEC, 600 * SEC, 60 * SEC, 10 * SEC, 2 * SEC, 500, 50, 1,
};
static const uint64_t timeouts[4] = { 120 * SEC, 10 * SEC, 1 * SEC, 20 };
static const uint64_t min_ages[4] = { 2 * SEC, 50, 1, 0 };

static uint32_t spi_of(struct rd *r)
{
	uint8_t b = u8(r);

	if (b < 0xf0)
		return 0x1000 + (b & 7);
	if (b < 0xf8)
		return b & 7 ? b : 0;      /* reserved and zero */
	return u32(r);
}

static uint64_t cookie_of(uint8_t b)
{
	return (b & 7) == 7 ? 0 : 0x0101010101010101ULL * ((b & 7) + 1);
}

/* ---- harness state ---------------------------------------------------------- */

#define MAX_TRACK 1024

struct init_rec {            /* latest deadline an accepted init could hold */
	uint32_t host, remote;
	uint64_t deadline;
};

struct map_rec {             /* (remote, spi_in) -> host given or associated */
	uint32_t remote, spi_in, host;
};

static struct {
	struct engine *eng;
	struct engine_config cfg;
	uint64_t now;
	uint64_t last_run;       /* clock of the last engine_run_timers() */
	bool parallel_ever;      /* parallel sessions allowed at some point */
	unsigned allowance_max;  /* largest isakmp.answer_allowance so far */
	struct init_rec inits[MAX_TRACK];
	size_t n_inits;
	struct map_rec maps[MAX_TRACK];
	size_t n_maps;
	/* the packet being processed, for the log callback */
	bool in_packet;
	enum direction dir;
	uint32_t pkt_saddr;
	uint32_t pkt_spi;
	bool pkt_esp;
} H;

static int internal(uint32_t a)
{
	for (size_t i = 0; i < H.cfg.n_internal; i++)
		if ((a & H.cfg.internal[i].mask) == H.cfg.internal[i].addr)
			return 1;
	return 0;
}

static void note_init(uint32_t host, uint32_t remote, uint64_t deadline)
{
	for (size_t i = 0; i < H.n_inits; i++) {
		if (H.inits[i].host == host && H.inits[i].remote == remote) {
			if (deadline > H.inits[i].deadline)
				H.inits[i].deadline = deadline;
			return;
		}
	}
	FUZZ_ASSERT(H.n_inits < MAX_TRACK, "init track full");
	H.inits[H.n_inits++] = (struct init_rec){ host, remote, deadline };
}

static uint64_t init_deadline(uint32_t host, uint32_t remote)
{
	for (size_t i = 0; i < H.n_inits; i++)
		if (H.inits[i].host == host && H.inits[i].remote == remote)
			return H.inits[i].deadline;
	return 0;
}

static void note_map(uint32_t remote, uint32_t spi_in, uint32_t host)
{
	for (size_t i = 0; i < H.n_maps; i++)
		if (H.maps[i].remote == remote && H.maps[i].spi_in == spi_in &&
		    H.maps[i].host == host)
			return;
	FUZZ_ASSERT(H.n_maps < MAX_TRACK, "map track full");
	H.maps[H.n_maps++] = (struct map_rec){ remote, spi_in, host };
}

static bool known_map(uint32_t remote, uint32_t spi_in, uint32_t host)
{
	for (size_t i = 0; i < H.n_maps; i++)
		if (H.maps[i].remote == remote && H.maps[i].spi_in == spi_in &&
		    H.maps[i].host == host)
			return true;
	return false;
}

/* The engine's log: events are well formed; an association binds the SPI
 * of the inbound ESP packet being processed to a host whose init with its
 * source was accepted recently enough to still be pending. */
static void on_event(void *ctx, const struct engine_event *ev)
{
	volatile uint32_t sink = 0;

	(void)ctx;
	FUZZ_ASSERT((unsigned)ev->kind < EV_MAX, "event kind %d",
		    (int)ev->kind);
	FUZZ_ASSERT((unsigned)ev->reason < R_MAX, "event reason %d",
		    (int)ev->reason);
	FUZZ_ASSERT(ev->n_hosts <= ENGINE_MAX_GUESS, "n_hosts %u",
		    ev->n_hosts);
	FUZZ_ASSERT(ev->n_hosts == 0 || ev->hosts != NULL, "hosts NULL");
	for (unsigned i = 0; i < ev->n_hosts; i++)
		sink += ev->hosts[i];        /* ASan: the array is readable */
	(void)sink;
	TRACE("    event %s table %d reason %s remote %08x host %08x spi "
	      "%08x/%08x cookies %016llx/%016llx n_hosts %u\n",
	      engine_event_name(ev->kind), (int)ev->table,
	      reason_name(ev->reason), ev->remote, ev->host, ev->spi_out,
	      ev->spi_in, (unsigned long long)ev->cookie_i,
	      (unsigned long long)ev->cookie_r, ev->n_hosts);
	if (ev->kind == EV_REASSOCIATED) {
		FUZZ_ASSERT(H.in_packet && H.dir == DIR_INBOUND && H.pkt_esp &&
				    ev->remote == H.pkt_saddr &&
				    ev->spi_in == H.pkt_spi,
			    "re-association outside its inbound ESP packet");
		FUZZ_ASSERT(init_deadline(ev->host, ev->remote) != 0,
			    "SPI %08x from %08x re-associated to %08x, which "
			    "never sent ESP to it", ev->spi_in, ev->remote,
			    ev->host);
		note_map(ev->remote, ev->spi_in, ev->host);
		return;
	}
	if (ev->kind != EV_ASSOCIATED)
		return;
	FUZZ_ASSERT(H.in_packet && H.dir == DIR_INBOUND && H.pkt_esp,
		    "association outside an inbound ESP packet");
	FUZZ_ASSERT(ev->remote == H.pkt_saddr && ev->spi_in == H.pkt_spi,
		    "association of remote %08x SPI %08x, packet from %08x SPI "
		    "%08x", ev->remote, ev->spi_in, H.pkt_saddr, H.pkt_spi);
	FUZZ_ASSERT(H.now < init_deadline(ev->host, ev->remote),
		    "SPI %08x from %08x associated to %08x with no pending "
		    "init (deadline %llu, now %llu)", ev->spi_in, ev->remote,
		    ev->host,
		    (unsigned long long)init_deadline(ev->host, ev->remote),
		    (unsigned long long)H.now);
	note_map(ev->remote, ev->spi_in, ev->host);
}

/* ---- packets ---------------------------------------------------------------- */

/* An IPv4 header with `opt` 4-byte words of options (NOPs), protocol,
 * addresses; the L4 bytes follow at the returned offset. */
static size_t ip_hdr(uint8_t *b, size_t total, unsigned opt, uint8_t proto,
		     uint32_t src, uint32_t dst, uint16_t frag)
{
	size_t ihl = 20 + 4 * (size_t)opt;

	b[0] = (uint8_t)(0x40 | (ihl / 4));
	b[1] = 0;
	fz_put16(b + 2, (uint16_t)total);
	fz_put16(b + 4, 0x4242);
	fz_put16(b + 6, frag);
	b[8] = 64;
	b[9] = proto;
	fz_put16(b + 10, 0);
	fz_put32(b + 12, src);
	fz_put32(b + 16, dst);
	memset(b + 20, 1, ihl - 20);
	return ihl;
}

static void fix_ip(uint8_t *b, size_t len)
{
	size_t ihl = (size_t)(b[0] & 0x0f) * 4;

	if (len < 20 || ihl < 20 || ihl > len)
		return;
	fz_put16(b + 10, 0);
	fz_put16(b + 10, pkt_ip_checksum(b, ihl));
}

static void fix_udp(uint8_t *b, size_t len, size_t l4, bool none)
{
	if (len < l4 + 8)
		return;
	fz_put16(b + l4 + 6, 0);
	if (!none)
		fz_put16(b + l4 + 6, pkt_udp_checksum(b, len, l4));
}

/*
 * Builds the step's packet into a heap buffer of exactly its length (ASan
 * catches reads past it). kind: 0 ESP, 1 ISAKMP, 2 AH, 3 other UDP, 4 other
 * protocol, 5 raw. Returns the buffer, *len and *dir.
 */
static uint8_t *build(struct rd *r, uint8_t sel, size_t *len,
		      enum direction *dir)
{
	uint8_t flags = u8(r), who = u8(r);
	unsigned kind = sel % 6;
	bool inbound = (sel >> 3) & 1;
	uint32_t host = (who & 0x80) ? foreign[who & 3] : lan[who & 7];
	uint32_t remote = remotes[(who >> 3) % 6];
	uint32_t ext = (flags & 0x80) ? externals[(who >> 5) & 3]
				      : H.cfg.external_addr;
	uint32_t src = inbound ? remote : host, dst = inbound ? ext : remote;
	unsigned opt = (flags & 0x40) ? 1 + (flags & 1) : 0;
	uint16_t frag = (flags & 0x20) ? 0x2000 : 0;   /* first fragment */
	size_t pay = (flags >> 1) & 0x0f, ihl, l4, total;
	uint8_t *b;

	*dir = inbound ? DIR_INBOUND : DIR_OUTBOUND;
	if (kind == 5) {                 /* raw: length, bytes, fixups */
		size_t n = u8(r);

		b = malloc(n ? n : 1);
		FUZZ_ASSERT(b != NULL, "malloc");
		for (size_t i = 0; i < n; i++)
			b[i] = u8(r);
		if ((flags & 0x10) && n >= 20) {
			b[0] = (uint8_t)(0x40 | (b[0] & 0x0f));
			fz_put16(b + 2, (uint16_t)n);
			if (flags & 0x08) {
				fz_put32(b + 12, src);
				fz_put32(b + 16, dst);
			}
			fix_ip(b, n);
		}
		*len = n;
		return b;
	}
	switch (kind) {
	case 0:
		total = 20 + 4 * opt + 8 + pay;
		break;
	case 1:
		total = 20 + 4 * opt + 8 + 28 + pay;
		break;
	case 2:
		total = 20 + 4 * opt + 12 + pay;
		break;
	default:
		total = 20 + 4 * opt + 8 + pay;
		break;
	}
	b = malloc(total);
	FUZZ_ASSERT(b != NULL, "malloc");
	memset(b, 0xa5, total);
	ihl = ip_hdr(b, total, opt,
		     kind == 0 ? 50 : kind == 2 ? 51 : kind == 4 ? u8(r) : 17,
		     src, dst, frag);
	l4 = ihl;
	if (kind == 0) {
		fz_put32(b + l4, spi_of(r));
		fz_put32(b + l4 + 4, u8(r));
	} else if (kind == 2) {
		b[l4] = 50;
		fz_put32(b + l4 + 4, spi_of(r));
	} else if (kind == 1 || kind == 3) {
		uint8_t c = u8(r);
		size_t ulen = total - l4 + (frag ? 100 : 0);

		fz_put16(b + l4, kind == 1 ? 500 : (uint16_t)(4500 + (c & 3)));
		fz_put16(b + l4 + 2, kind == 1 && (c & 0x40) ? 1234 : 500);
		if (kind == 3)
			fz_put16(b + l4 + 2, 4500);
		fz_put16(b + l4 + 4, (uint16_t)ulen);
		if (kind == 1) {
			uint8_t *k = b + l4 + 8;
			uint64_t ci = cookie_of(c);      /* 0: invalid */
			uint64_t cr = (c & 0x08) ? cookie_of(c >> 4) : 0;

			fz_put32(k, (uint32_t)(ci >> 32));
			fz_put32(k + 4, (uint32_t)ci);
			fz_put32(k + 8, (uint32_t)(cr >> 32));
			fz_put32(k + 12, (uint32_t)cr);
			k[16] = 1;
			k[17] = (c & 0x80) ? 0x20 : 0x10;
			k[18] = (c & 0x80) ? 34 : 2;
			k[19] = 0;
			fz_put32(k + 20, 0);
			fz_put32(k + 24, (uint32_t)(28 + pay));
		}
		fix_udp(b, total, l4, (flags & 0x10) != 0 || frag);
		if (frag && !(flags & 0x10))   /* a fragment's sum is of the */
			fz_put16(b + l4 + 6, 0x1234); /* whole: any value */
	}
	fix_ip(b, total);
	if (flags & 0x01 && !opt) {        /* damage one byte, maybe refix */
		uint8_t at = u8(r), x = u8(r);

		b[at % total] ^= x ? x : 1;
		if (at & 0x80)
			fix_ip(b, total);
	}
	*len = total;
	return b;
}

/* ---- invariants ---------------------------------------------------------- */

struct answers_of {
	uint32_t remote, host;
	unsigned n;
};

struct tally {
	uint32_t host[2 * MAX_ENTRIES + 8];
	unsigned count[2 * MAX_ENTRIES + 8];    /* charged to max_per_host */
	size_t n_hosts;
	struct answers_of answers[MAX_ENTRIES];
	size_t n_pairs, n_answers;
	size_t esp, isakmp;
	size_t pending, queued;
	uint64_t min_expires;
	struct engine_esp_info esp_e[2 * MAX_ENTRIES];
	size_t n_esp_e;
};

/* One more entry of host; charged: against max_per_host. */
static void count_host(struct tally *t, uint32_t host, bool charged)
{
	size_t i;

	for (i = 0; i < t->n_hosts; i++)
		if (t->host[i] == host)
			break;
	if (i == t->n_hosts) {
		FUZZ_ASSERT(t->n_hosts < 2 * MAX_ENTRIES + 8, "hosts");
		t->host[t->n_hosts] = host;
		t->count[t->n_hosts++] = 0;
	}
	t->count[i] += charged;
}

/* One more answer entry of (remote, host). */
static void count_answer(struct tally *t, uint32_t remote, uint32_t host)
{
	size_t i;

	for (i = 0; i < t->n_pairs; i++)
		if (t->answers[i].remote == remote && t->answers[i].host == host)
			break;
	if (i == t->n_pairs) {
		FUZZ_ASSERT(t->n_pairs < MAX_ENTRIES, "answer pairs");
		t->answers[i] = (struct answers_of){ remote, host, 0 };
		t->n_pairs++;
	}
	t->answers[i].n++;
	t->n_answers++;
}

static void walk_esp(void *ctx, const struct engine_esp_info *e)
{
	struct tally *t = ctx;

	t->esp++;
	FUZZ_ASSERT(t->esp <= 2 * MAX_ENTRIES, "ESP walk runs away");
	count_host(t, e->host, true);
	if (e->expires < t->min_expires)
		t->min_expires = e->expires;
	t->esp_e[t->n_esp_e++] = *e;
	FUZZ_ASSERT(internal(e->host), "ESP entry for non-LAN host %08x",
		    e->host);
	FUZZ_ASSERT((unsigned)e->state <= ESP_PROVISIONAL, "state %d",
		    (int)e->state);
	FUZZ_ASSERT(e->holds_slot == (e->state == ESP_PENDING),
		    "%s entry %08x/%08x %s the slot", esp_state_name(e->state),
		    e->remote, e->host, e->holds_slot ? "holds" : "lacks");
	t->pending += e->holds_slot;
	t->queued += e->state == ESP_QUEUED;
	if (e->state == ESP_ESTABLISHED || e->state == ESP_PROVISIONAL)
		FUZZ_ASSERT(init_deadline(e->host, e->remote) != 0,
			    "SPI %08x from %08x bound to %08x, which never "
			    "sent ESP to it", e->spi_in, e->remote, e->host);
	FUZZ_ASSERT(e->spi_out == 0 || e->spi_out >= 256, "spi_out %08x",
		    e->spi_out);
	FUZZ_ASSERT(e->spi_in == 0 || e->spi_in >= 256, "spi_in %08x",
		    e->spi_in);
	FUZZ_ASSERT((e->state == ESP_ESTABLISHED ||
		     e->state == ESP_PRELOADED ||
		     e->state == ESP_ANNOUNCED ||
		     e->state == ESP_PROVISIONAL) == (e->spi_in != 0),
		    "state %s with spi_in %08x", esp_state_name(e->state),
		    e->spi_in);
	if (e->spi_in)
		FUZZ_ASSERT(known_map(e->remote, e->spi_in, e->host),
			    "remote %08x SPI %08x -> host %08x (%s) without a "
			    "pending init or preload", e->remote, e->spi_in,
			    e->host, esp_state_name(e->state));
	FUZZ_ASSERT(e->since <= e->last_seen && e->last_seen <= H.now,
		    "times since %llu last %llu now %llu",
		    (unsigned long long)e->since,
		    (unsigned long long)e->last_seen,
		    (unsigned long long)H.now);
}

static void walk_isakmp(void *ctx, const struct engine_isakmp_info *e)
{
	struct tally *t = ctx;

	t->isakmp++;
	FUZZ_ASSERT(t->isakmp <= 2 * MAX_ENTRIES, "ISAKMP walk runs away");
	count_host(t, e->host, !e->answer);
	if (e->answer)
		count_answer(t, e->remote, e->host);
	if (e->expires < t->min_expires)
		t->min_expires = e->expires;
	FUZZ_ASSERT(internal(e->host), "ISAKMP entry for non-LAN host %08x",
		    e->host);
	FUZZ_ASSERT(e->cookie_i != 0, "ISAKMP entry with cookie 0");
	FUZZ_ASSERT(e->last_seen <= H.now, "last_seen in the future");
}

static void check_tables(bool timers_ran)
{
	static struct tally t;
	const struct engine_stats *st = engine_get_stats(H.eng);
	uint64_t next = engine_next_timer(H.eng);

	memset(&t, 0, sizeof(t));
	t.min_expires = UINT64_MAX;
	engine_walk_esp(H.eng, walk_esp, &t);
	engine_walk_isakmp(H.eng, walk_isakmp, &t);
	FUZZ_ASSERT(t.esp + t.isakmp <= MAX_ENTRIES, "%zu + %zu entries",
		    t.esp, t.isakmp);
	for (size_t i = 0; i < t.n_hosts; i++)
		FUZZ_ASSERT(t.count[i] <= MAX_PER_HOST,
			    "host %08x has %u entries", t.host[i], t.count[i]);
	/* a host's answers to remote-started exchanges stay within the
	 * (host, remote) allowance (the largest one configured: a reload
	 * that lowers it evicts nothing) and out of its max_per_host */
	for (size_t i = 0; i < t.n_pairs; i++)
		FUZZ_ASSERT(t.answers[i].n <= H.allowance_max,
			    "host %08x holds %u answers with %08x (allowance "
			    "%u)", t.answers[i].host, t.answers[i].n,
			    t.answers[i].remote, H.allowance_max);
	FUZZ_ASSERT(st->isakmp_answers == t.n_answers,
		    "stats %zu answers, walked %zu", st->isakmp_answers,
		    t.n_answers);
	FUZZ_ASSERT(st->esp_entries == t.esp && st->isakmp_entries == t.isakmp,
		    "stats %zu/%zu, walked %zu/%zu", st->esp_entries,
		    st->isakmp_entries, t.esp, t.isakmp);
	FUZZ_ASSERT(st->hosts == t.n_hosts, "stats hosts %zu, walked %zu",
		    st->hosts, t.n_hosts);
	FUZZ_ASSERT(st->pending == t.pending && st->queued == t.queued,
		    "stats pending/queued %zu/%zu, walked %zu/%zu",
		    st->pending, st->queued, t.pending, t.queued);
	TRACE("  tables: %zu esp, %zu isakmp, next timer %llu, earliest "
	      "deadline %llu\n", t.esp, t.isakmp, (unsigned long long)next,
	      (unsigned long long)t.min_expires);
	/* a deadline already past (lifetimes shrank) is due at the next
	 * run, which cannot be before the last one */
	if (t.esp + t.isakmp)
		FUZZ_ASSERT(next <= t.min_expires || next <= H.last_run,
			    "next timer %llu after the earliest deadline %llu "
			    "(last run %llu)", (unsigned long long)next,
			    (unsigned long long)t.min_expires,
			    (unsigned long long)H.last_run);
	if (timers_ran)
		FUZZ_ASSERT(t.min_expires > H.now,
			    "deadline %llu passed at %llu, timers ran",
			    (unsigned long long)t.min_expires,
			    (unsigned long long)H.now);
	/* one entry per (remote, SPI) in each direction */
	for (size_t i = 0; i < t.n_esp_e; i++) {
		for (size_t j = i + 1; j < t.n_esp_e; j++) {
			const struct engine_esp_info *a = &t.esp_e[i],
						     *b = &t.esp_e[j];

			if (a->remote != b->remote)
				continue;
			FUZZ_ASSERT(!a->spi_in || a->spi_in != b->spi_in,
				    "two entries for SPI in %08x", a->spi_in);
			FUZZ_ASSERT(!a->spi_out || a->spi_out != b->spi_out,
				    "two entries for SPI out %08x",
				    a->spi_out);
			FUZZ_ASSERT(!a->holds_slot || !b->holds_slot,
				    "two inits hold the slot of %08x",
				    a->remote);
		}
	}
	/* Parallel sessions never allowed: one host per remote among the
	 * live associations the engine made itself (preloads may add
	 * others, and a dead entry blocks nothing). */
	if (!H.parallel_ever) {
		for (size_t i = 0; i < t.n_esp_e; i++) {
			const struct engine_esp_info *a = &t.esp_e[i];

			if ((a->state != ESP_ESTABLISHED &&
			     a->state != ESP_PROVISIONAL) ||
			    a->expires <= H.now)
				continue;
			for (size_t j = i + 1; j < t.n_esp_e; j++) {
				const struct engine_esp_info *b = &t.esp_e[j];

				if ((b->state != ESP_ESTABLISHED &&
				     b->state != ESP_PROVISIONAL) ||
				    b->expires <= H.now ||
				    b->remote != a->remote)
					continue;
				FUZZ_ASSERT(a->host == b->host,
					    "hosts %08x and %08x both "
					    "associated with %08x", a->host,
					    b->host, a->remote);
			}
		}
	}
}

/* One packet through the engine, with the per-packet invariants. */
static void packet_step(struct rd *r, uint8_t sel)
{
	size_t len;
	enum direction dir;
	uint8_t *b = build(r, sel, &len, &dir);
	uint8_t *before = malloc(len ? len : 1);
	struct engine_decision d;
	struct pkt_view v;
	enum reason parsed;
	struct fz_facts f;

	FUZZ_ASSERT(before != NULL, "malloc");
	if (len)
		memcpy(before, b, len);
	memset(&v, 0, sizeof(v));
	parsed = pkt_parse(before, len, &v);
	if (parsed == R_PASS)
		fz_facts(before, len, &v, &f);
	H.in_packet = true;
	H.dir = dir;
	H.pkt_esp = parsed == R_PASS && v.kind == PKT_ESP;
	H.pkt_saddr = v.saddr;
	H.pkt_spi = H.pkt_esp ? v.esp.spi : 0;
	memset(&d, 0x5a, sizeof(d));
	TRACE("  %s len %zu: %s %08x -> %08x kind %d spi %08x\n",
	      dir == DIR_OUTBOUND ? "out" : "in", len, reason_name(parsed),
	      v.saddr, v.daddr, (int)v.kind, H.pkt_spi);
	engine_process(H.eng, b, len, dir, H.now, &d);
	H.in_packet = false;
	TRACE("  -> verdict %d reason %s copies %u\n", (int)d.verdict,
	      reason_name(d.reason), d.n_copies);

	FUZZ_ASSERT(d.verdict <= VERDICT_DROP && d.reason < R_MAX, "decision");
	FUZZ_ASSERT(d.n_copies < ENGINE_MAX_GUESS &&
			    d.n_copies < (parsed == R_PASS &&
						  v.kind == PKT_ISAKMP
					  ? H.cfg.isakmp_fallback_copies
					  : H.cfg.guess_copies),
		    "%u copies", d.n_copies);
	if (d.verdict != VERDICT_ACCEPT_MODIFIED)
		FUZZ_ASSERT(len == 0 || memcmp(b, before, len) == 0,
			    "verdict %d but the packet changed", d.verdict);
	if (d.verdict != VERDICT_DROP)
		FUZZ_ASSERT(parsed == R_PASS || d.verdict == VERDICT_ACCEPT,
			    "malformed packet (%s) rewritten",
			    reason_name(parsed));
	if (dir == DIR_OUTBOUND) {
		FUZZ_ASSERT(d.n_copies == 0, "copies of an outbound packet");
		if (d.verdict != VERDICT_DROP && len >= 20)
			FUZZ_ASSERT(!internal(fz_get32(b + 12)),
				    "LAN source %08x leaves (verdict %d, "
				    "reason %s)", fz_get32(b + 12), d.verdict,
				    reason_name(d.reason));
		if (d.verdict != VERDICT_DROP && parsed != R_PASS)
			FUZZ_ASSERT(len < 20 || !internal(fz_get32(b + 12)),
				    "malformed LAN packet accepted");
	}
	if (d.verdict == VERDICT_ACCEPT_MODIFIED) {
		FUZZ_ASSERT(parsed == R_PASS, "rewrote a malformed packet");
		if (dir == DIR_OUTBOUND) {
			FUZZ_ASSERT(fz_get32(b + 12) == H.cfg.external_addr &&
					    H.cfg.external_addr != 0,
				    "outbound source %08x, external %08x",
				    fz_get32(b + 12), H.cfg.external_addr);
			fz_check_rewrite(before, b, len, &f, 12);
			if (v.kind == PKT_ESP)
				note_init(v.saddr, v.daddr,
					  H.now + H.cfg.esp_init_timeout_ms);
		} else {
			FUZZ_ASSERT(internal(fz_get32(b + 16)),
				    "inbound rewritten to non-LAN %08x",
				    fz_get32(b + 16));
			fz_check_rewrite(before, b, len, &f, 16);
			for (unsigned i = 0; i < d.n_copies; i++) {
				FUZZ_ASSERT(internal(d.copy_to[i]),
					    "copy to non-LAN %08x",
					    d.copy_to[i]);
				FUZZ_ASSERT(d.copy_to[i] != fz_get32(b + 16),
					    "copy to the packet's own host");
				for (unsigned j = 0; j < i; j++)
					FUZZ_ASSERT(d.copy_to[j] !=
							    d.copy_to[i],
						    "two copies to one host");
			}
		}
	} else {
		FUZZ_ASSERT(d.n_copies == 0, "copies of an unmodified packet");
	}
	free(b);
	free(before);
}

/* After a flush of (remote, host) or a delete of (remote, spi_in): nothing
 * that matches is left (0 matches any). */
struct gone {
	uint32_t remote, host, spi_in;
};

static void gone_esp(void *ctx, const struct engine_esp_info *e)
{
	const struct gone *g = ctx;

	FUZZ_ASSERT((g->remote && e->remote != g->remote) ||
			    (g->host && e->host != g->host) ||
			    (g->spi_in && e->spi_in != g->spi_in),
		    "ESP entry %08x/%08x SPI %08x survived its removal",
		    e->remote, e->host, e->spi_in);
}

static void gone_isakmp(void *ctx, const struct engine_isakmp_info *e)
{
	const struct gone *g = ctx;

	FUZZ_ASSERT((g->remote && e->remote != g->remote) ||
			    (g->host && e->host != g->host),
		    "ISAKMP entry %08x/%08x survived a flush", e->remote,
		    e->host);
}

static void new_config(struct rd *r, struct engine_config *c, bool first)
{
	uint8_t a = u8(r), b = u8(r), g = u8(r), k = u8(r);

	if (first) {
		engine_config_defaults(c);
		c->external_addr = externals[0];
		c->internal[0] = (struct prefix4){ A(192, 168, 1, 0),
						   0xffffff00u };
		c->internal[1] = (struct prefix4){ A(10, 0, 0, 0),
						   0xff000000u };
		c->n_internal = 2;
		c->max_entries = MAX_ENTRIES;
		c->max_per_host = MAX_PER_HOST;
	}
	c->parallel_sessions = a & 1;
	c->esp_lifetime_ms = lifetimes[(a >> 1) & 7];
	c->isakmp_lifetime_ms = lifetimes[(a >> 4) & 7];
	c->esp_init_timeout_ms = timeouts[b & 3];
	c->esp_squelch_ms = timeouts[(b >> 2) & 3];
	c->esp_init_retries = (b >> 4) & 7;
	c->esp_init_min_age_ms = min_ages[(a >> 7) | ((b >> 7) << 1)];
	if (c->esp_init_min_age_ms >= c->esp_init_timeout_ms)
		c->esp_init_min_age_ms = c->esp_init_timeout_ms / 2;
	c->guess_copies = 1 + (g & 15);
	c->guess_rate = (unsigned)((g >> 4) & 3) * 7;
	c->guess_burst = (unsigned)((g >> 6) & 3) * 5;
	c->isakmp_fallback_copies = 1 + (k & 3);
	c->isakmp_fallback_rate = (unsigned)((k >> 2) & 3) * 7;
	c->isakmp_fallback_burst = (unsigned)((k >> 4) & 3) * 5;
	c->isakmp_answer_allowance = (unsigned)((k >> 6) & 3) * 2;
	if (c->isakmp_answer_allowance > H.allowance_max)
		H.allowance_max = c->isakmp_answer_allowance;
	if (c->parallel_sessions)
		H.parallel_ever = true;
}

/* A daemon restart with its state file: the associations (established
 * and preloaded ESP, ISAKMP) walked out of the engine and restored into a
 * fresh one, which takes over. Every live one must restore (the state file
 * drops those past their end, src/state.c). */
struct restore {
	struct engine *to;
	size_t esp, isakmp;
};

static void restore_esp(void *ctx, const struct engine_esp_info *e)
{
	struct restore *rs = ctx;

	if ((e->state != ESP_ESTABLISHED && e->state != ESP_PRELOADED &&
	     e->state != ESP_ANNOUNCED && e->state != ESP_PROVISIONAL) ||
	    e->expires <= H.now)
		return;
	FUZZ_ASSERT(engine_restore_esp(rs->to, e) == 0,
		    "restore of %s %08x/%08x SPIs %08x/%08x: %s",
		    esp_state_name(e->state), e->remote, e->host, e->spi_out,
		    e->spi_in, strerror(errno));
	rs->esp++;
}

static void restore_isakmp(void *ctx, const struct engine_isakmp_info *e)
{
	struct restore *rs = ctx;
	/* answers made under a larger allowance than today's need not all
	 * come back */
	bool may_fail = e->answer &&
			H.cfg.isakmp_answer_allowance < H.allowance_max;

	if (e->expires <= H.now)
		return;
	if (engine_restore_isakmp(rs->to, e) < 0) {
		FUZZ_ASSERT(may_fail && errno == ENOSPC,
			    "restore of ISAKMP %08x/%08x cookies "
			    "%016llx/%016llx%s: %s", e->remote, e->host,
			    (unsigned long long)e->cookie_i,
			    (unsigned long long)e->cookie_r,
			    e->answer ? " (answer)" : "", strerror(errno));
		return;
	}
	rs->isakmp++;
}

static void restart(uint64_t seed)
{
	struct restore rs = { 0 };
	const struct engine_stats *st;

	rs.to = engine_new(&H.cfg, seed, H.now, on_event, NULL);
	FUZZ_ASSERT(rs.to != NULL, "engine_new");
	engine_walk_esp(H.eng, restore_esp, &rs);
	engine_walk_isakmp(H.eng, restore_isakmp, &rs);
	st = engine_get_stats(rs.to);
	FUZZ_ASSERT(st->esp_entries == rs.esp &&
			    st->isakmp_entries == rs.isakmp,
		    "restored %zu/%zu, stats say %zu/%zu", rs.esp, rs.isakmp,
		    st->esp_entries, st->isakmp_entries);
	TRACE("  restart: %zu esp, %zu isakmp restored\n", rs.esp,
	      rs.isakmp);
	engine_free(H.eng);
	H.eng = rs.to;
	H.last_run = H.now;
}

/* Milliseconds to advance: mostly small, sometimes past every lifetime. */
static uint64_t clock_step(uint8_t b)
{
	static const unsigned shift[4] = { 0, 4, 10, 16 };

	return (uint64_t)(b & 0x3f) << shift[b >> 6];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rd r = { data, size };
	uint64_t seed;

	if (trace < 0)
		trace = getenv("FUZZ_TRACE") != NULL;
	memset(&H, 0, sizeof(H));
	new_config(&r, &H.cfg, true);
	seed = u32(&r);
	H.now = 1000000 + u8(&r);
	H.last_run = H.now;
	H.eng = engine_new(&H.cfg, seed, H.now, on_event, NULL);
	FUZZ_ASSERT(H.eng != NULL, "engine_new");

	for (int step = 0; step < MAX_STEPS && r.n; step++) {
		uint8_t op = u8(&r);
		bool timers_ran = false;

		H.now += clock_step(u8(&r));
		TRACE("step %d op %u at %llu\n", step, op >> 4,
		      (unsigned long long)H.now);
		switch (op >> 4) {
		default:                             /* 0..10: packets */
			packet_step(&r, op);
			break;
		case 11:
			engine_run_timers(H.eng, H.now);
			H.last_run = H.now;
			timers_ran = true;
			break;
		case 12: {
			uint8_t w = u8(&r), t = u8(&r);
			uint32_t remote = remotes[(w & 7) % 6];
			uint32_t host = (t & 0x80) ? foreign[w >> 6]
						   : lan[(w >> 3) & 7];
			uint32_t in = spi_of(&r);
			uint32_t out = (t & 1) ? spi_of(&r) : 0;
			uint64_t ttl = (t & 2) ? lifetimes[(t >> 2) & 7] : 0;

			int rc = engine_preload(H.eng, remote, host, in, out,
						ttl, H.now);

			TRACE("  preload %08x %08x in %08x out %08x ttl %llu: "
			      "%d\n", remote, host, in, out,
			      (unsigned long long)ttl, rc);
			if (rc == 0) {
				FUZZ_ASSERT(internal(host) && in >= 256,
					    "bad preload accepted");
				note_map(remote, in, host);
			}
			break;
		}
		case 13: {
			uint8_t w = u8(&r);
			uint32_t remote = (w & 8) ? 0 : remotes[(w & 7) % 6];
			uint32_t host = (w & 0x80) ? 0 : lan[(w >> 4) & 7];

			if (w & 0x40) {
				struct gone g = { remotes[(w & 7) % 6], 0,
						  spi_of(&r) };

				if (engine_del_esp(H.eng, g.remote,
						   g.spi_in) == 0)
					engine_walk_esp(H.eng, gone_esp, &g);
			} else {
				struct gone g = { remote, host, 0 };

				(void)engine_flush(H.eng, remote, host);
				engine_walk_esp(H.eng, gone_esp, &g);
				engine_walk_isakmp(H.eng, gone_isakmp, &g);
			}
			break;
		}
		case 14: {
			struct engine_config c = H.cfg;

			new_config(&r, &c, false);
			TRACE("  reconfigure parallel %d esp %llu isakmp %llu "
			      "init %llu squelch %llu retries %u guess %u/%u/%u"
			      "\n", c.parallel_sessions,
			      (unsigned long long)c.esp_lifetime_ms,
			      (unsigned long long)c.isakmp_lifetime_ms,
			      (unsigned long long)c.esp_init_timeout_ms,
			      (unsigned long long)c.esp_squelch_ms,
			      c.esp_init_retries, c.guess_copies, c.guess_rate,
			      c.guess_burst);
			FUZZ_ASSERT(engine_reconfigure(H.eng, &c) == 0,
				    "reconfigure");
			/* a pending init ends init_timeout after it took the
			 * slot, under the timeout of the day */
			if (c.esp_init_timeout_ms > H.cfg.esp_init_timeout_ms)
				for (size_t i = 0; i < H.n_inits; i++)
					H.inits[i].deadline +=
						c.esp_init_timeout_ms -
						H.cfg.esp_init_timeout_ms;
			H.cfg = c;
			break;
		}
		case 15: {
			uint8_t w = u8(&r);

			if (w & 0x80) {
				restart(seed ^ w);
				break;
			}
			H.cfg.external_addr = externals[w & 3];
			engine_set_external(H.eng, H.cfg.external_addr);
			break;
		}
		}
		check_tables(timers_ran);
	}
	engine_free(H.eng);
	H.eng = NULL;
	return 0;
}
