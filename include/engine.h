/*
 * The masquerade engine: fed packets and a clock, it decides and rewrites.
 * No syscalls, no globals, no clock of its own: every call that depends on
 * time takes `now` (milliseconds of a monotonic clock), so tests inject it.
 * Decisions are reported through a logging callback with structured fields;
 * extra destinations of a guessed inbound packet are returned for the caller
 * to send.
 */
#ifndef IPSEC_MASQD_ENGINE_H
#define IPSEC_MASQD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "reason.h"

#define ENGINE_MAX_PREFIXES 32
#define ENGINE_MAX_GUESS 16
/* An ISAKMP entry made by a LAN host's answer to an exchange the remote
 * started, and not yet followed up by the remote (see engine_isakmp.c),
 * may give way to a new answer once this old (ms). */
#define ENGINE_ISAKMP_ANSWER_MIN_AGE_MS 5000

struct prefix4 {
	uint32_t addr;    /* host order, already masked */
	uint32_t mask;    /* host order */
};

struct engine_config {
	uint32_t external_addr;            /* host order; 0 = not known yet */
	struct prefix4 internal[ENGINE_MAX_PREFIXES];
	size_t n_internal;
	uint64_t esp_lifetime_ms;          /* idle life of an ESP entry: 1800 s */
	uint64_t esp_init_timeout_ms;      /* life of a pending init: 120 s */
	uint64_t esp_init_min_age_ms;      /* a pending init keeps the slot at
					    * least this long (one round trip)
					    * whatever others send: 2 s, below
					    * esp_init_timeout_ms */
	unsigned esp_init_retries;         /* the pending host's own unanswered
					    * retransmissions, once others wait,
					    * before a squelch: 5 (at most 65535
					    * count) */
	uint64_t esp_squelch_ms;           /* a squelched init waits: 30 s */
	bool parallel_sessions;            /* several hosts per remote: false */
	unsigned guess_copies;             /* hosts a guess reaches: 5 */
	unsigned guess_rate;               /* guesses per second per remote: 10 */
	unsigned guess_burst;              /* guess bucket depth: 20 */
	uint64_t isakmp_lifetime_ms;       /* idle life of an ISAKMP entry */
	unsigned isakmp_fallback_copies;   /* hosts an unknown-cookie ISAKMP
					    * packet reaches: 1 */
	unsigned isakmp_fallback_rate;     /* such packets per second per
					    * remote: 10 */
	unsigned isakmp_fallback_burst;    /* their bucket depth: 20 */
	unsigned isakmp_answer_allowance;  /* entries a host's answers to
					    * remote-started exchanges may
					    * hold per remote, outside
					    * max_per_host: 8 */
	size_t max_entries;                /* ESP + ISAKMP entries: 65536 */
	size_t max_per_host;               /* entries per LAN host: 1024 */
};

/* The original 2.2 code's values (design.md, "Association rules"). */
void engine_config_defaults(struct engine_config *cfg);

enum direction {
	DIR_OUTBOUND,   /* LAN -> WAN, queued in mangle POSTROUTING */
	DIR_INBOUND,    /* WAN -> external address, mangle PREROUTING */
};

enum verdict {
	VERDICT_ACCEPT,           /* unchanged */
	VERDICT_ACCEPT_MODIFIED,  /* the buffer was rewritten in place */
	VERDICT_DROP,
};

struct engine_decision {
	enum verdict verdict;
	enum reason reason;
	unsigned n_copies;                    /* extra copies to send ... */
	uint32_t copy_to[ENGINE_MAX_GUESS];   /* ... with these destinations */
};

enum engine_table { TABLE_NONE, TABLE_ESP, TABLE_ISAKMP };

enum engine_event_kind {
	EV_CREATED,       /* new entry (ESP init started, ISAKMP exchange) */
	EV_ASSOCIATED,    /* inbound SPI bound to the pending init's host */
	EV_BLOCKED,       /* parallel sessions off: another host has the remote */
	EV_SERIALIZED,    /* another init with the remote is pending */
	EV_SQUELCHED,     /* pending init collided init_retries times */
	EV_GUESSED,       /* unknown inbound SPI or cookie sent to likely
			   * hosts */
	EV_EXPIRED,       /* entry idle for its lifetime */
	EV_INIT_TIMEOUT,  /* pending init got no inbound SPI in time */
	EV_REFUSED,       /* limits reached, entry not created */
	EV_COLLIDED,      /* ISAKMP initiator cookie already outstanding */
	EV_PRELOADED,     /* mapping given from outside */
	EV_REMOVED,       /* flushed or deleted from outside */
	EV_DROPPED,       /* any other drop: malformed input, AH, rate limit */
	EV_LEARNT,        /* a preload learnt its out-SPI from the host */
	EV_REASSOCIATED,  /* a provisional association moved to another
			   * inbound SPI: its own stayed silent */
	EV_MAX
};

enum esp_state {
	ESP_PENDING,      /* holds the remote's init slot, in-SPI unknown */
	ESP_WAITING,      /* in-SPI unknown, slot lost (timed out/squelch over) */
	ESP_SQUELCHED,    /* outbound dropped until the squelch ends */
	ESP_ESTABLISHED,  /* both SPIs known */
	ESP_PRELOADED,    /* in-SPI given from outside */
	ESP_ANNOUNCED,    /* in-SPI announced by its LAN host (as PRELOADED) */
	ESP_QUEUED,       /* in-SPI unknown, in line for the remote's slot */
	ESP_PROVISIONAL,  /* in-SPI bound from a pending init; confirmed
			   * (ESTABLISHED) once the host has sent and received
			   * on it, re-associated if it stays silent */
};

struct engine_event {
	enum engine_event_kind kind;
	enum engine_table table;
	enum reason reason;
	uint32_t remote;        /* host order; 0 when unknown */
	uint32_t host;          /* LAN host, host order; 0 when unknown */
	uint32_t spi_out;       /* 0 when unknown / not ESP */
	uint32_t spi_in;
	uint64_t cookie_i;      /* ISAKMP only */
	uint64_t cookie_r;
	const uint32_t *hosts;  /* EV_GUESSED: the hosts, most recent first */
	unsigned n_hosts;
};

typedef void (*engine_log_fn)(void *ctx, const struct engine_event *ev);

struct engine_stats {
	uint64_t packets[2];            /* by enum direction */
	uint64_t verdicts[3];           /* by enum verdict */
	uint64_t reasons[R_MAX];        /* by enum reason, every packet */
	uint64_t events[EV_MAX];        /* by enum engine_event_kind */
	uint64_t copies;                /* extra guessed copies requested */
	size_t isakmp_answers;          /* ISAKMP entries made by answers */
	size_t esp_entries;
	size_t isakmp_entries;
	size_t hosts;                   /* LAN hosts with entries */
	size_t remotes;                 /* remotes with entries */
	size_t pending;                 /* remotes with an init pending */
	size_t queued;                  /* inits in line for a remote's slot */
	size_t announced;               /* ESP entries in ESP_ANNOUNCED */
};

/* One ESP entry, as walk/restore see it. Times are the engine's clock.
 * An entry keeps 48-bit packet counts (they stick at 2^48 - 1) and its own
 * lifetime (expires - last_seen, when not the configured one) to at most
 * 2^32 - 1 ms; restore caps larger values. */
struct engine_esp_info {
	uint32_t remote, host, spi_out, spi_in;
	enum esp_state state;
	uint64_t pkts_out, pkts_in, bytes_out, bytes_in;
	uint64_t last_seen;     /* ms */
	uint64_t expires;       /* ms: end of life (or of squelch/init) */
	uint64_t since;         /* ms: when the entry was created */
	bool holds_slot;        /* it is the remote's pending init */
};

struct engine_isakmp_info {
	uint32_t remote, host;
	uint64_t cookie_i, cookie_r;
	uint64_t last_seen, expires;
	bool answer;            /* made by the host's answer to an exchange the
				 * remote started (isakmp.answer_allowance) */
};

struct engine;

/*
 * A new engine with cfg (copied), hash seed `seed` (random in the daemon,
 * fixed in tests), clock origin `now`. log may be NULL. Returns NULL with
 * errno on allocation failure or EINVAL on a bad config.
 */
struct engine *engine_new(const struct engine_config *cfg, uint64_t seed,
			  uint64_t now, engine_log_fn log, void *log_ctx);
void engine_free(struct engine *eng);

/* Apply new settings to the live tables (lifetimes, parallel_sessions,
 * limits, prefixes, external address). Entries over new limits stay until
 * they expire; nothing is evicted. Returns 0, or -1 with errno (config
 * unchanged). */
int engine_reconfigure(struct engine *eng, const struct engine_config *cfg);
const struct engine_config *engine_get_config(const struct engine *eng);

/* The external address changed (rtnetlink); 0 = none: outbound then drops. */
void engine_set_external(struct engine *eng, uint32_t addr);

int engine_is_internal(const struct engine *eng, uint32_t addr);

/*
 * Decide one packet of buf[0..len) seen in direction dir at time now,
 * rewriting buf in place when the verdict is VERDICT_ACCEPT_MODIFIED. The
 * packet's length never changes.
 */
void engine_process(struct engine *eng, uint8_t *buf, size_t len,
		    enum direction dir, uint64_t now,
		    struct engine_decision *out);

/* Run the timers due at `now`: expiry, init timeout, squelch end. Returns
 * the number of timers that fired. */
size_t engine_run_timers(struct engine *eng, uint64_t now);

/* engine_run_timers() with a work budget: at most max timers handled; when
 * it returns max, more may be due (engine_next_timer() says now). */
size_t engine_run_timers_max(struct engine *eng, uint64_t now, size_t max);

/* When engine_run_timers() next has work (ms), UINT64_MAX if none. */
uint64_t engine_next_timer(const struct engine *eng);

/*
 * Preload (remote, spi_in) -> host, the fix the seed notes ask for: inbound
 * with that SPI goes to host without guessing or serialization; spi_out may
 * be 0 (learnt from the host's first outbound packet to remote). ttl_ms 0
 * means esp.lifetime; one over 2^32 - 1 ms (49.7 days) is cut to that.
 * Returns 0, or -1 with errno EINVAL (zero/reserved SPI, host not
 * internal), EEXIST (spi_in of that remote taken by another host), ENOSPC
 * (limits).
 */
int engine_preload(struct engine *eng, uint32_t remote, uint32_t host,
		   uint32_t spi_in, uint32_t spi_out, uint64_t ttl_ms,
		   uint64_t now);

/* engine_preload() for an SPI its LAN host announced itself: the same
 * rules, state ESP_ANNOUNCED. */
int engine_announce(struct engine *eng, uint32_t remote, uint32_t host,
		    uint32_t spi_in, uint32_t spi_out, uint64_t ttl_ms,
		    uint64_t now);

/* Remove the ESP entry of (remote, spi_in) for its host: 0, or -1 with
 * errno ENOENT (none live) or EPERM (another host's). */
int engine_withdraw(struct engine *eng, uint32_t remote, uint32_t host,
		    uint32_t spi_in, uint64_t now);

/* Remove the ESP entry of (remote, spi_in). Returns 0 or -1/ENOENT. */
int engine_del_esp(struct engine *eng, uint32_t remote, uint32_t spi_in);

/* Remove every entry matching remote and host (0 matches any). Returns the
 * number removed; each is logged as EV_REMOVED. */
size_t engine_flush(struct engine *eng, uint32_t remote, uint32_t host);

/* Re-create entries from saved state; `info` times are in this engine's
 * clock. Returns 0, or -1 with errno as engine_preload. */
int engine_restore_esp(struct engine *eng, const struct engine_esp_info *info);
int engine_restore_isakmp(struct engine *eng,
			  const struct engine_isakmp_info *info);

/* ESP entry (remote, spi_in), as engine_walk_esp() would show it. Returns 0,
 * or -1/ENOENT. Nothing is caught up: `expires` may lie in the past. */
int engine_get_esp(const struct engine *eng, uint32_t remote, uint32_t spi_in,
		   struct engine_esp_info *info);

/* Use seen outside the engine (the kernel fast path's counters): packets
 * and bytes each way since the last credit. */
struct engine_esp_use {
	uint64_t pkts_out, bytes_out, pkts_in, bytes_in;
};

/*
 * Credit use of ESP entry (remote, spi_in) at `now` as if its packets had
 * passed here: counters, last use, lifetime renewed. An entry already past
 * its lifetime is removed (EV_EXPIRED) instead. Returns 0 when the entry
 * lives, -1 with errno ENOENT when there is none (any more).
 */
int engine_credit_esp(struct engine *eng, uint32_t remote, uint32_t spi_in,
		      const struct engine_esp_use *use, uint64_t now);

typedef void (*engine_esp_walk_fn)(void *ctx, const struct engine_esp_info *e);
typedef void (*engine_isakmp_walk_fn)(void *ctx,
				      const struct engine_isakmp_info *e);
void engine_walk_esp(const struct engine *eng, engine_esp_walk_fn fn,
		     void *ctx);
void engine_walk_isakmp(const struct engine *eng, engine_isakmp_walk_fn fn,
			void *ctx);

/*
 * A walk of one table in slices, for answers and bulk work that must not
 * hold the packet loop (issue 13): each call visits a bounded number of
 * entries, and the tables may change in between. The walk follows the
 * entries' places in memory, which never move: an entry alive from the
 * start to the end of the walk is visited exactly once, one created
 * meanwhile may or may not be, one removed is not visited after its
 * removal. Nothing is copied or allocated. The engine must outlive it.
 */
struct engine_cursor {
	enum engine_table table;
	struct pool_pos pos;
};

/* Start a walk of table (TABLE_ESP or TABLE_ISAKMP). */
void engine_cursor_start(const struct engine *eng, struct engine_cursor *cur,
			 enum engine_table table);

/* Visit up to max more entries (esp_fn for the ESP table, isakmp_fn for
 * ISAKMP; fn must not change the tables), looking at no more than
 * 8 * max + 64 slots of free memory on the way. Returns true when the walk
 * is over, false when more may follow. */
bool engine_cursor_next(const struct engine *eng, struct engine_cursor *cur,
			size_t max, engine_esp_walk_fn esp_fn,
			engine_isakmp_walk_fn isakmp_fn, void *ctx);

/* Walk up to max more entries, removing those that match remote and host
 * (0 matches any), each logged as EV_REMOVED, as engine_flush() does at
 * once. *removed is increased by the number removed. Returns true when
 * the walk is over. */
bool engine_cursor_flush(struct engine *eng, struct engine_cursor *cur,
			 size_t max, uint32_t remote, uint32_t host,
			 size_t *removed);

const struct engine_stats *engine_get_stats(const struct engine *eng);

/* What the tables cost in memory, for sizing and the benchmark. */
struct engine_memory {
	size_t esp_entry_size;          /* one ESP entry's pool slot */
	size_t isakmp_entry_size;       /* one ISAKMP entry's pool slot */
	size_t pools;                   /* entries, hosts, remotes: all chunks */
	size_t tables;                  /* hash bucket arrays */
};

void engine_get_memory(const struct engine *eng, struct engine_memory *m);

const char *engine_event_name(enum engine_event_kind kind);
const char *esp_state_name(enum esp_state state);

#endif
