/*
 * The engine's private structures, shared by engine.c (life cycle, dispatch,
 * timers, limits), engine_esp.c and engine_isakmp.c (the association rules).
 * Entries embed their hash, list and timer nodes; everything comes from
 * pools, so steady-state traffic allocates nothing.
 */
#ifndef IPSEC_MASQD_ENGINE_INT_H
#define IPSEC_MASQD_ENGINE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "htab.h"
#include "packet.h"
#include "pool.h"
#include "timer_wheel.h"

/* For the packet path: ENGINE_INLINE on the few small helpers every packet
 * runs through, ENGINE_COLD on the rarely taken rest, so that its register
 * saves and stack frame stay out of the common case. Hints only: other
 * compilers get plain functions. */
#ifdef __GNUC__
#define ENGINE_INLINE inline __attribute__((always_inline))
#define ENGINE_COLD __attribute__((cold, noinline))
#else
#define ENGINE_INLINE inline
#define ENGINE_COLD
#endif

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Circular doubly linked list; a head is a node pointing at itself. */
struct dlist {
	struct dlist *prev, *next;
};

static inline void dlist_init(struct dlist *head)
{
	head->prev = head->next = head;
}

static inline int dlist_empty(const struct dlist *head)
{
	return head->next == head;
}

static inline void dlist_del(struct dlist *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->prev = node->next = node;
}

static inline void dlist_push_front(struct dlist *head, struct dlist *node)
{
	node->next = head->next;
	node->prev = head;
	head->next->prev = node;
	head->next = node;
}

/* Most-recently-used first: unlink and re-insert at the front. */
static inline void dlist_move_front(struct dlist *head, struct dlist *node)
{
	if (head->next == node)
		return;
	dlist_del(node);
	dlist_push_front(head, node);
}

/* A LAN host with entries: the unit of max_per_host. Its answers to
 * remote-started ISAKMP exchanges are counted apart (n_answers), so that
 * they never use up the quota its own inits need; the struct lives while
 * either count is non-zero. */
struct host {
	struct hnode by_addr;
	uint32_t addr;
	unsigned n_entries;               /* charged to max_per_host */
	unsigned n_answers;               /* ISAKMP answer entries */
};

/* The answer entries one host holds with one remote, against
 * isakmp.answer_allowance; exists while n > 0. */
struct answer_pair {
	struct hnode by_key;
	uint32_t host, remote;
	unsigned n;
};

/* How many released inits a remote remembers (issue 11): an unknown
 * inbound SPI that arrives within esp_init_min_age of one of them may be
 * its late answer, so it is guessed rather than bound. */
#define ESP_RELEASED_MAX 4

/* An init that lost the slot without an answer (squelch, timeout, removal). */
struct released_init {
	uint32_t host, spi_out;
	uint64_t at;                      /* ms; 0 = empty */
};

/* A remote peer with entries: the unit of serialization and guessing. */
struct remote {
	struct hnode by_addr;
	uint32_t addr;
	struct dlist isakmp_mru;          /* isakmp_entry.in_remote */
	struct dlist esp_mru;             /* esp_entry.in_remote */
	struct esp_entry *pending;        /* the init holding the slot */
	uint64_t guess_tokens;            /* guess budget, in 1/1000 guesses */
	uint64_t guess_refilled;          /* ms */
	uint64_t ike_tokens;              /* unknown-cookie ISAKMP budget,
					   * in 1/1000 packets */
	uint64_t ike_refilled;            /* ms */
	uint64_t next_ticket;             /* the queue's next place */
	unsigned n_queued;                /* entries ESP_QUEUED */
	unsigned n_provisional;           /* entries ESP_PROVISIONAL */
	struct released_init released[ESP_RELEASED_MAX];
	int pinned;                       /* a walk holds it: do not free */
};

/* A host in line for a remote's slot that has sent nothing for this long
 * has given up: it leaves the line (and queues again when it asks). */
#define ESP_WAITER_STALE_MS 10000

/* Re-association (issue 11): an unknown SPI arriving this many times, with
 * gaps under ESP_REASSOC_GAP_MS, while a provisional association's in-SPI
 * is silent and its host sent within that gap, takes the association. At
 * most ESP_REASSOC_LOOK most recently used entries are searched for it. */
#define ESP_REASSOC_ARRIVALS 3
#define ESP_REASSOC_GAP_MS 10000
#define ESP_REASSOC_LOOK 16

/* Unknown inbound SPIs seen while a provisional association of their
 * remote is silent: a small table hashed by (remote, SPI), allocated with
 * the engine. An SPI that keeps arriving is the remote's real answer; a
 * spoofed random one is seen once. */
#define SPI_SEEN_SLOTS 1024

struct spi_seen {
	uint32_t remote, spi;
	uint32_t count;
	uint64_t at;                      /* ms, last arrival */
};

enum entry_table { ENTRY_ESP = 1, ENTRY_ISAKMP = 2 };

/* An ISAKMP entry made by a LAN host's answer to an exchange the remote
 * started (its first packet already has a responder cookie): charged to
 * the (host, remote) answer allowance, not to max_per_host. It is
 * confirmed once the remote sends the host's responder cookie back (the
 * exchange's next message): a blind spoofer of the remote's address never
 * sees the answer and cannot. An unconfirmed one ISAKMP_ANSWER_MIN_AGE_MS
 * old gives way to a new answer when the allowance is full. */
#define ISAKMP_ANSWER 1
#define ISAKMP_ANSWER_CONFIRMED 2
#define ISAKMP_ANSWER_MIN_AGE_MS ENGINE_ISAKMP_ANSWER_MIN_AGE_MS

/*
 * Common head of both entry kinds, so one timer callback serves both. The
 * LAN host is kept by address (the packet path needs nothing else; its
 * struct host, which counts entries, is looked up when the entry goes).
 * state and collisions belong to ESP entries: they sit here, in what would
 * otherwise be padding, so that an ESP entry fits 128 bytes.
 */
struct entry {
	struct remote *remote;
	uint64_t last_seen;               /* ms, either direction */
	uint32_t host;                    /* LAN host address */
	uint8_t table;                    /* enum entry_table */
	uint8_t state;                    /* ESP: enum esp_state; ISAKMP:
					   * ISAKMP_ANSWER or 0 */
	uint16_t collisions;              /* ESP PENDING: own retransmissions
					   * while others waited, saturating;
					   * PROVISIONAL: PROV_* flags */
	struct tw_node timer;
};

/* A provisional association's progress since it was bound. */
#define PROV_SENT 1u                      /* the host sent on it */
#define PROV_RECEIVED 2u                  /* its in-SPI received again */

/*
 * An ESP entry: two cache lines (the pool aligns them). The in-SPI chain
 * link and a time stamp share a word: the entry is in the (remote, spi_in)
 * table exactly when spi_in is known (ESTABLISHED, PROVISIONAL, PRELOADED),
 * and only entries without one use the stamp: PENDING the time it took the
 * slot, SQUELCHED the end of the squelch, QUEUED its place in line. Packet
 * counters are 48 bits (32 + 16) and stick at their maximum: years of a
 * million packets a second.
 */
struct esp_entry {
	struct entry base;
	struct snode by_out;              /* (remote, spi_out) when known */
	union {
		struct snode by_in;       /* spi_in != 0: (remote, spi_in) */
		uint64_t stamp;           /* spi_in == 0: see above */
	};
	struct dlist in_remote;
	uint32_t spi_out, spi_in;
	uint32_t life_ms;                 /* 0: esp.lifetime; capped */
	uint32_t pkts_out_lo, pkts_in_lo;
	uint16_t pkts_out_hi, pkts_in_hi;
	uint64_t since;                   /* ms: created */
	uint64_t bytes_out, bytes_in;
};

_Static_assert(sizeof(struct esp_entry) <= 128,
	       "an ESP entry fits two cache lines");

struct isakmp_entry {
	struct entry base;
	struct hnode by_cookie;           /* (remote, cookie_i) */
	struct dlist in_remote;
	uint64_t cookie_i, cookie_r;      /* cookie_r 0 until seen */
	uint64_t created;                 /* ms: an unconfirmed answer's age */
	uint32_t life_ms;                 /* 0: isakmp.lifetime; capped */
};

/* An explicit lifetime as stored in an entry: at most 2^32 - 1 ms (49.7
 * days; configured lifetimes and TTLs stop at 7 days). */
static inline uint32_t life_field(uint64_t ms)
{
	return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* 48-bit counter (32 + 16 bits) read, written and stepped; it sticks at
 * 2^48 - 1 rather than wrap. */
#define COUNT48_MAX ((UINT64_C(1) << 48) - 1)

static inline uint64_t count48_get(uint32_t lo, uint16_t hi)
{
	return (uint64_t)hi << 32 | lo;
}

static inline void count48_set(uint32_t *lo, uint16_t *hi, uint64_t v)
{
	if (v > COUNT48_MAX)
		v = COUNT48_MAX;
	*lo = (uint32_t)v;
	*hi = (uint16_t)(v >> 32);
}

static inline void count48_inc(uint32_t *lo, uint16_t *hi)
{
	if (++*lo == 0) {
		if (*hi != UINT16_MAX)
			++*hi;
		else
			*lo = UINT32_MAX;
	}
}

struct engine {
	struct engine_config cfg;
	uint64_t seed;
	engine_log_fn log;
	void *log_ctx;
	struct timer_wheel wheel;
	struct shtab esp_out, esp_in;     /* esp_entry.by_out, by_in */
	struct sipkey esp_key;            /* their hash of (remote, SPI) */
	struct htab isakmp, hosts, remotes, answer_pairs;
	struct pool esp_pool, isakmp_pool, host_pool, remote_pool, pair_pool;
	struct spi_seen *spi_seen;        /* SPI_SEEN_SLOTS */
	struct engine_stats stats;
};

/* engine.c: shared services for the rule files. */
void engine_emit(struct engine *eng, const struct engine_event *ev);
uint64_t entry_lifetime(const struct engine *eng, const struct entry *e);
struct remote *remote_find(const struct engine *eng, uint32_t addr);
struct remote *remote_get(struct engine *eng, uint32_t addr);
void remote_put_if_unused(struct engine *eng, struct remote *r);
/* The struct host of a LAN address with entries, or NULL. */
struct host *host_find(const struct engine *eng, uint32_t addr);
/* Reserve room for one entry of `host`: its struct host (created if
 * needed), or NULL with *why = R_TABLE_FULL / R_HOST_FULL / R_TABLE_FULL on
 * ENOMEM. Undo with entry_release_host(). */
struct host *entry_claim_host(struct engine *eng, uint32_t addr,
			      enum reason *why);
void entry_release_host(struct engine *eng, struct host *h);
/* As entry_new(), for an ISAKMP entry made by host's answer to an
 * exchange the remote started: counted against the (host, remote) answer
 * allowance (*why = R_ISAKMP_ANSWER_LIMIT) and max_entries, never against
 * max_per_host; marked ISAKMP_ANSWER. */
struct entry *entry_new_answer(struct engine *eng, uint32_t remote,
			       uint32_t host, uint64_t now, enum reason *why);
/* Whether host's answers to remote hold all of isakmp.answer_allowance. */
int answer_allowance_full(const struct engine *eng, uint32_t remote,
			  uint32_t host);
/* Whether e is an ISAKMP entry made by an answer (confirmed or not). */
int entry_is_answer(const struct entry *e);
/* Token bucket in thousandths: refill at rate a second up to burst, then
 * take up to `wanted` whole tokens. Returns how many were taken. */
unsigned token_take(uint64_t *tokens, uint64_t *refilled, unsigned rate,
		    unsigned burst, uint64_t now, unsigned wanted);
/* Append host to hosts[0..n) unless present or n == max; returns the new
 * n. */
static inline unsigned host_list_add(uint32_t *hosts, unsigned n,
				     unsigned max, uint32_t host)
{
	if (n >= max)
		return n;
	for (unsigned i = 0; i < n; i++)
		if (hosts[i] == host)
			return n;
	hosts[n] = host;
	return n + 1;
}
void entry_arm(struct engine *eng, struct entry *e, uint64_t when);
/* A zeroed entry of `table` for (remote, host), counted against the limits
 * and tied to its host and remote objects, not linked anywhere else yet.
 * NULL with *why on refusal. The caller embeds struct entry first. */
struct entry *entry_new(struct engine *eng, enum entry_table table,
			uint32_t remote, uint32_t host, uint64_t now,
			enum reason *why);
/* Give back what entry_new() took: timer, host count, memory, and the
 * remote when this was its last entry. Unlinking is the caller's. */
void entry_free(struct engine *eng, struct entry *e);
size_t engine_entries(const struct engine *eng);

/* engine_esp.c: the ESP rules. The packet path's part, an established
 * flow's packet, is inline below; esp_*_slow() take everything else, given
 * the entry the SPI named (or NULL). */
ENGINE_COLD void esp_outbound_slow(struct engine *eng, struct esp_entry *e,
				   struct pkt_view *pkt, uint64_t now,
				   struct engine_decision *out);
ENGINE_COLD void esp_inbound_slow(struct engine *eng, struct esp_entry *e,
				  struct pkt_view *pkt, uint64_t now,
				  struct engine_decision *out);
/* Apply the transitions due at now (init timeout, squelch end, expiry).
 * Returns 0 when the entry was removed, 1 when it lives on. */
int esp_catch_up(struct engine *eng, struct esp_entry *e, uint64_t now);
void esp_remove(struct engine *eng, struct esp_entry *e,
		enum engine_event_kind why);
uint64_t esp_next_deadline(const struct engine *eng,
			   const struct esp_entry *e);
/* Re-bucket both SPI tables into n buckets. Returns 0 or -1/ENOMEM (a
 * table that could not grow keeps its old size and still works). */
int esp_tables_resize(struct engine *eng, size_t n);
void esp_fill_info(const struct engine *eng, const struct esp_entry *e,
		   struct engine_esp_info *info);

/* engine_isakmp.c */
void isakmp_outbound(struct engine *eng, struct pkt_view *pkt, uint64_t now,
		     struct engine_decision *out);
void isakmp_inbound(struct engine *eng, struct pkt_view *pkt, uint64_t now,
		    struct engine_decision *out);
int isakmp_catch_up(struct engine *eng, struct isakmp_entry *e, uint64_t now);
void isakmp_remove(struct engine *eng, struct isakmp_entry *e,
		   enum engine_event_kind why);
struct isakmp_entry *isakmp_create(struct engine *eng, uint32_t remote,
				   uint32_t host, uint64_t cookie_i,
				   uint64_t cookie_r, int answer, uint64_t now,
				   enum reason *why);

/* ---- the ESP packet path (engine_esp.c has the rules around it) ---------- */

/* Both SPI tables hash (remote, SPI) as one word with the engine's key. */
static inline uint32_t spi_hash(const struct engine *eng, uint32_t remote,
				uint32_t spi)
{
	return (uint32_t)siphash13_word(&eng->esp_key,
					(uint64_t)remote << 32 | spi);
}

static ENGINE_INLINE struct esp_entry *find_out(const struct engine *eng,
						 uint32_t remote, uint32_t spi)
{
	uint32_t h = spi_hash(eng, remote, spi);

	for (struct snode *n = shtab_chain(&eng->esp_out, h); n; n = n->next) {
		struct esp_entry *e = container_of(n, struct esp_entry, by_out);

		if (e->spi_out == spi &&
		    e->base.remote->addr == remote)
			return e;
	}
	return NULL;
}

static ENGINE_INLINE struct esp_entry *find_in(const struct engine *eng,
						uint32_t remote, uint32_t spi)
{
	uint32_t h = spi_hash(eng, remote, spi);

	for (struct snode *n = shtab_chain(&eng->esp_in, h); n; n = n->next) {
		struct esp_entry *e = container_of(n, struct esp_entry, by_in);

		if (e->spi_in == spi &&
		    e->base.remote->addr == remote)
			return e;
	}
	return NULL;
}

/* entry_lifetime() for an ESP entry, inline for the packet path. */
static inline uint64_t esp_lifetime(const struct engine *eng,
				    const struct esp_entry *e)
{
	return e->life_ms ? e->life_ms : eng->cfg.esp_lifetime_ms;
}

/* An in-SPI given from outside: preloaded by the admin or announced by
 * the LAN host. The rules treat both alike. */
static inline int esp_state_given(unsigned state)
{
	return state == ESP_PRELOADED || state == ESP_ANNOUNCED;
}

/* The packet path's common case: an associated entry (ESTABLISHED,
 * PRELOADED or ANNOUNCED, so no init or squelch deadline) short of its lifetime, for
 * which esp_catch_up() would change nothing. */
static inline int esp_settled(const struct engine *eng,
			      const struct esp_entry *e, uint64_t now)
{
	return (e->base.state == ESP_ESTABLISHED ||
		esp_state_given(e->base.state)) &&
	       now < e->base.last_seen + esp_lifetime(eng, e);
}

static ENGINE_INLINE void pass_outbound(struct engine *eng,
					 struct esp_entry *e,
					 struct pkt_view *pkt, uint64_t now,
					 struct engine_decision *out)
{
	e->base.last_seen = now;
	count48_inc(&e->pkts_out_lo, &e->pkts_out_hi);
	e->bytes_out += pkt->len;
	dlist_move_front(&e->base.remote->esp_mru, &e->in_remote);
	pkt_set_saddr(pkt, eng->cfg.external_addr);
	out->verdict = VERDICT_ACCEPT_MODIFIED;
	out->reason = R_PASS;
}

static ENGINE_INLINE void pass_inbound(struct engine *eng,
					struct esp_entry *e,
					struct pkt_view *pkt, uint64_t now,
					struct engine_decision *out)
{
	(void)eng;
	e->base.last_seen = now;
	count48_inc(&e->pkts_in_lo, &e->pkts_in_hi);
	e->bytes_in += pkt->len;
	dlist_move_front(&e->base.remote->esp_mru, &e->in_remote);
	pkt_set_daddr(pkt, e->base.host);
	out->verdict = VERDICT_ACCEPT_MODIFIED;
	out->reason = R_PASS;
}

/* The packet path: an established flow of the sending host passes here
 * with nothing else to decide; the rest goes to esp_outbound_slow(), which
 * starts the rules over (the checks here change nothing). Inline: engine.c
 * runs it for every outbound ESP packet. */
static ENGINE_INLINE void esp_outbound(struct engine *eng,
					struct pkt_view *pkt, uint64_t now,
					struct engine_decision *out)
{
	struct esp_entry *e = find_out(eng, pkt->daddr, pkt->esp.spi);

	if (e && e->base.host == pkt->saddr && esp_settled(eng, e, now))
		pass_outbound(eng, e, pkt, now, out);
	else
		esp_outbound_slow(eng, e, pkt, now, out);
}

/* The packet path, as esp_outbound(). */
static ENGINE_INLINE void esp_inbound(struct engine *eng,
				       struct pkt_view *pkt, uint64_t now,
				       struct engine_decision *out)
{
	struct esp_entry *e = find_in(eng, pkt->saddr, pkt->esp.spi);

	if (e && esp_settled(eng, e, now))
		pass_inbound(eng, e, pkt, now, out);
	else
		esp_inbound_slow(eng, e, pkt, now, out);
}

#endif
