/*
 * The engine's life cycle, packet dispatch, limits, timers, walks and the
 * operations driven from outside (preload, delete, flush, restore). The
 * association rules themselves live in engine_esp.c and engine_isakmp.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define POOL_CHUNK 256
#define ESP_KEY_SALT 0x6573702d73706973ULL   /* "esp-spis" */

void engine_config_defaults(struct engine_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->esp_lifetime_ms = 1800 * 1000;
	cfg->esp_init_timeout_ms = 120 * 1000;
	cfg->esp_init_min_age_ms = 2 * 1000;
	cfg->esp_init_retries = 5;
	cfg->esp_squelch_ms = 30 * 1000;
	cfg->parallel_sessions = false;
	cfg->guess_copies = 5;
	cfg->guess_rate = 10;
	cfg->guess_burst = 20;
	cfg->isakmp_lifetime_ms = 1800 * 1000;
	cfg->isakmp_fallback_copies = 1;
	cfg->isakmp_fallback_rate = 10;
	cfg->isakmp_fallback_burst = 20;
	cfg->isakmp_answer_allowance = 8;
	cfg->max_entries = 65536;
	cfg->max_per_host = 1024;
}

/* Non-zero when cfg can drive an engine; the config layer reports the
 * details to the admin, this only guards the engine's own assumptions. */
static int config_valid(const struct engine_config *cfg)
{
	return cfg->n_internal <= ENGINE_MAX_PREFIXES &&
	       cfg->esp_lifetime_ms > 0 && cfg->isakmp_lifetime_ms > 0 &&
	       cfg->esp_init_timeout_ms > 0 && cfg->esp_squelch_ms > 0 &&
	       cfg->esp_init_min_age_ms < cfg->esp_init_timeout_ms &&
	       cfg->guess_copies >= 1 && cfg->guess_copies <= ENGINE_MAX_GUESS &&
	       cfg->isakmp_fallback_copies >= 1 &&
	       cfg->isakmp_fallback_copies <= ENGINE_MAX_GUESS &&
	       cfg->max_entries >= 1 && cfg->max_per_host >= 1;
}

/* Buckets for a table that may hold `entries`: about one per entry. */
static size_t buckets_for(size_t entries)
{
	return entries < 64 ? 64 : entries;
}

static int tables_init(struct engine *eng)
{
	size_t n = buckets_for(eng->cfg.max_entries);

	if (shtab_init(&eng->esp_out, n) || shtab_init(&eng->esp_in, n) ||
	    htab_init(&eng->isakmp, n) || htab_init(&eng->hosts, n / 4) ||
	    htab_init(&eng->remotes, n / 4) ||
	    htab_init(&eng->answer_pairs, n / 4))
		return -1;
	return 0;
}

static void tables_destroy(struct engine *eng)
{
	shtab_destroy(&eng->esp_out);
	shtab_destroy(&eng->esp_in);
	htab_destroy(&eng->isakmp);
	htab_destroy(&eng->hosts);
	htab_destroy(&eng->remotes);
	htab_destroy(&eng->answer_pairs);
}

struct engine *engine_new(const struct engine_config *cfg, uint64_t seed,
			  uint64_t now, engine_log_fn log, void *log_ctx)
{
	struct engine *eng;

	if (!config_valid(cfg)) {
		errno = EINVAL;
		return NULL;
	}
	eng = calloc(1, sizeof(*eng));
	if (!eng)
		return NULL;
	eng->cfg = *cfg;
	eng->seed = seed;
	sipkey_from_seed(&eng->esp_key, seed, ESP_KEY_SALT);
	eng->log = log;
	eng->log_ctx = log_ctx;
	tw_init(&eng->wheel, now);
	pool_init(&eng->esp_pool, sizeof(struct esp_entry), POOL_CHUNK);
	pool_init(&eng->isakmp_pool, sizeof(struct isakmp_entry), POOL_CHUNK);
	pool_init(&eng->host_pool, sizeof(struct host), POOL_CHUNK);
	pool_init(&eng->remote_pool, sizeof(struct remote), POOL_CHUNK);
	pool_init(&eng->pair_pool, sizeof(struct answer_pair), POOL_CHUNK);
	eng->spi_seen = calloc(SPI_SEEN_SLOTS, sizeof(*eng->spi_seen));
	if (!eng->spi_seen || tables_init(eng)) {
		int saved = errno;

		engine_free(eng);
		errno = saved;
		return NULL;
	}
	return eng;
}

void engine_free(struct engine *eng)
{
	if (!eng)
		return;
	tables_destroy(eng);
	pool_destroy(&eng->esp_pool);
	pool_destroy(&eng->isakmp_pool);
	pool_destroy(&eng->host_pool);
	pool_destroy(&eng->remote_pool);
	pool_destroy(&eng->pair_pool);
	free(eng->spi_seen);
	free(eng);
}

/* Re-arm every entry from its current deadlines: after a reload changed
 * lifetimes, timers armed for the old ones would fire late. */
static void rearm_all(struct engine *eng);

int engine_reconfigure(struct engine *eng, const struct engine_config *cfg)
{
	size_t n = buckets_for(cfg->max_entries);

	if (!config_valid(cfg)) {
		errno = EINVAL;
		return -1;
	}
	if (n > eng->esp_out.mask + 1 &&
	    (esp_tables_resize(eng, n) || htab_resize(&eng->isakmp, n)))
		return -1;
	eng->cfg = *cfg;
	rearm_all(eng);
	return 0;
}

const struct engine_config *engine_get_config(const struct engine *eng)
{
	return &eng->cfg;
}

void engine_set_external(struct engine *eng, uint32_t addr)
{
	eng->cfg.external_addr = addr;
}

int engine_is_internal(const struct engine *eng, uint32_t addr)
{
	for (size_t i = 0; i < eng->cfg.n_internal; i++)
		if ((addr & eng->cfg.internal[i].mask) ==
		    eng->cfg.internal[i].addr)
			return 1;
	return 0;
}

const struct engine_stats *engine_get_stats(const struct engine *eng)
{
	return &eng->stats;
}

/* Allocated bytes (pool chunks, bucket arrays), not RSS: untouched bucket
 * pages cost nothing until used. */
void engine_get_memory(const struct engine *eng, struct engine_memory *m)
{
	m->esp_entry_size = eng->esp_pool.obj_size;
	m->isakmp_entry_size = eng->isakmp_pool.obj_size;
	m->pools = pool_bytes(&eng->esp_pool) + pool_bytes(&eng->isakmp_pool) +
		   pool_bytes(&eng->host_pool) + pool_bytes(&eng->remote_pool) +
		   pool_bytes(&eng->pair_pool);
	m->tables = (eng->esp_out.mask + 1 + eng->esp_in.mask + 1) *
			    sizeof(struct snode *) +
		    (eng->isakmp.mask + 1 + eng->hosts.mask + 1 +
		     eng->remotes.mask + 1 + eng->answer_pairs.mask + 1) *
			    sizeof(struct hnode *) +
		    SPI_SEEN_SLOTS * sizeof(*eng->spi_seen);
}

const char *engine_event_name(enum engine_event_kind kind)
{
	static const char *const names[EV_MAX] = {
		[EV_CREATED] = "created",
		[EV_ASSOCIATED] = "associated",
		[EV_BLOCKED] = "blocked",
		[EV_SERIALIZED] = "serialized",
		[EV_SQUELCHED] = "squelched",
		[EV_GUESSED] = "guessed",
		[EV_EXPIRED] = "expired",
		[EV_INIT_TIMEOUT] = "init_timeout",
		[EV_REFUSED] = "refused",
		[EV_COLLIDED] = "collided",
		[EV_PRELOADED] = "preloaded",
		[EV_REMOVED] = "removed",
		[EV_DROPPED] = "dropped",
		[EV_LEARNT] = "learnt",
		[EV_REASSOCIATED] = "reassociated",
	};

	return (unsigned)kind < EV_MAX ? names[kind] : "unknown";
}

const char *esp_state_name(enum esp_state state)
{
	static const char *const names[] = {
		[ESP_PENDING] = "pending",
		[ESP_WAITING] = "waiting",
		[ESP_SQUELCHED] = "squelched",
		[ESP_ESTABLISHED] = "established",
		[ESP_PRELOADED] = "preloaded",
		[ESP_ANNOUNCED] = "announced",
		[ESP_QUEUED] = "queued",
		[ESP_PROVISIONAL] = "provisional",
	};

	return (unsigned)state <= ESP_PROVISIONAL ? names[state] : "unknown";
}

void engine_emit(struct engine *eng, const struct engine_event *ev)
{
	eng->stats.events[ev->kind]++;
	if (eng->log)
		eng->log(eng->log_ctx, ev);
}

size_t engine_entries(const struct engine *eng)
{
	return eng->stats.esp_entries + eng->stats.isakmp_entries;
}

uint64_t entry_lifetime(const struct engine *eng, const struct entry *e)
{
	uint32_t life;

	if (e->table == ENTRY_ESP) {
		life = container_of(e, const struct esp_entry, base)->life_ms;
		return life ? life : eng->cfg.esp_lifetime_ms;
	}
	life = container_of(e, const struct isakmp_entry, base)->life_ms;
	return life ? life : eng->cfg.isakmp_lifetime_ms;
}

void entry_arm(struct engine *eng, struct entry *e, uint64_t when)
{
	tw_arm(&eng->wheel, &e->timer, when);
}

/* ---- hosts and remotes ---------------------------------------------------- */

static uint32_t addr_hash(const struct engine *eng, uint32_t addr,
			  uint64_t salt)
{
	return htab_hash(eng->seed, addr, salt);
}

struct host *host_find(const struct engine *eng, uint32_t addr)
{
	uint32_t h = addr_hash(eng, addr, 3);

	for (struct hnode *n = htab_chain(&eng->hosts, h); n; n = n->next) {
		struct host *host = container_of(n, struct host, by_addr);

		if (n->hash == h && host->addr == addr)
			return host;
	}
	return NULL;
}

/* Reserve room for one entry of LAN host addr: an answer entry (answer
 * != 0) is counted in n_answers and escapes max_per_host. */
static struct host *claim_host(struct engine *eng, uint32_t addr, int answer,
			       enum reason *why)
{
	struct host *h;

	if (engine_entries(eng) >= eng->cfg.max_entries) {
		*why = R_TABLE_FULL;
		return NULL;
	}
	h = host_find(eng, addr);
	if (h && !answer && h->n_entries >= eng->cfg.max_per_host) {
		*why = R_HOST_FULL;
		return NULL;
	}
	if (!h) {
		h = pool_get(&eng->host_pool);
		if (!h) {
			*why = R_TABLE_FULL;
			return NULL;
		}
		h->addr = addr;
		htab_insert(&eng->hosts, &h->by_addr, addr_hash(eng, addr, 3));
		eng->stats.hosts++;
	}
	if (answer)
		h->n_answers++;
	else
		h->n_entries++;
	return h;
}

struct host *entry_claim_host(struct engine *eng, uint32_t addr,
			      enum reason *why)
{
	return claim_host(eng, addr, 0, why);
}

static void release_host(struct engine *eng, struct host *h, int answer)
{
	if (answer)
		h->n_answers--;
	else
		h->n_entries--;
	if (h->n_entries || h->n_answers)
		return;
	htab_remove(&eng->hosts, &h->by_addr);
	pool_put(&eng->host_pool, h);
	eng->stats.hosts--;
}

void entry_release_host(struct engine *eng, struct host *h)
{
	release_host(eng, h, 0);
}

/* ---- answer allowance ------------------------------------------------------ */

static uint32_t pair_hash(const struct engine *eng, uint32_t remote,
			  uint32_t host)
{
	return htab_hash(eng->seed, (uint64_t)remote << 32 | host, 6);
}

static struct answer_pair *pair_find(const struct engine *eng,
				     uint32_t remote, uint32_t host)
{
	uint32_t h = pair_hash(eng, remote, host);

	for (struct hnode *n = htab_chain(&eng->answer_pairs, h); n;
	     n = n->next) {
		struct answer_pair *p =
			container_of(n, struct answer_pair, by_key);

		if (n->hash == h && p->remote == remote && p->host == host)
			return p;
	}
	return NULL;
}

/* One more answer entry of (host, remote) within the allowance: its pair,
 * or NULL with *why. */
static struct answer_pair *pair_claim(struct engine *eng, uint32_t remote,
				      uint32_t host, enum reason *why)
{
	struct answer_pair *p = pair_find(eng, remote, host);

	if (p && p->n >= eng->cfg.isakmp_answer_allowance) {
		*why = R_ISAKMP_ANSWER_LIMIT;
		return NULL;
	}
	if (!p) {
		if (!eng->cfg.isakmp_answer_allowance) {
			*why = R_ISAKMP_ANSWER_LIMIT;
			return NULL;
		}
		p = pool_get(&eng->pair_pool);
		if (!p) {
			*why = R_TABLE_FULL;
			return NULL;
		}
		p->remote = remote;
		p->host = host;
		htab_insert(&eng->answer_pairs, &p->by_key,
			    pair_hash(eng, remote, host));
	}
	p->n++;
	return p;
}

int answer_allowance_full(const struct engine *eng, uint32_t remote,
			  uint32_t host)
{
	const struct answer_pair *p = pair_find(eng, remote, host);

	return p && p->n >= eng->cfg.isakmp_answer_allowance;
}

static void pair_release(struct engine *eng, struct answer_pair *p)
{
	if (--p->n)
		return;
	htab_remove(&eng->answer_pairs, &p->by_key);
	pool_put(&eng->pair_pool, p);
}

unsigned token_take(uint64_t *tokens, uint64_t *refilled, unsigned rate,
		    unsigned burst, uint64_t now, unsigned wanted)
{
	uint64_t cap = (uint64_t)burst * 1000;
	unsigned allowed;

	if (now > *refilled) {
		*tokens += (now - *refilled) * rate;
		if (*tokens > cap)
			*tokens = cap;
	}
	*refilled = now;
	allowed = (unsigned)(*tokens / 1000);
	if (allowed > wanted)
		allowed = wanted;
	*tokens -= (uint64_t)allowed * 1000;
	return allowed;
}

static struct pool *entry_pool(struct engine *eng, enum entry_table table)
{
	return table == ENTRY_ESP ? &eng->esp_pool : &eng->isakmp_pool;
}

/* entry_new() and entry_new_answer(): the host's count (answer or not)
 * is taken first, then the remote and the pool slot; a failure gives back
 * what was taken. */
static struct entry *new_entry(struct engine *eng, enum entry_table table,
			       uint32_t remote, uint32_t host, int answer,
			       uint64_t now, enum reason *why)
{
	struct host *h = claim_host(eng, host, answer, why);
	struct entry *e;
	struct remote *r;

	if (!h)
		return NULL;
	r = remote_get(eng, remote);
	/* Both entry kinds start with their struct entry. */
	e = r ? pool_get(entry_pool(eng, table)) : NULL;
	if (!e) {
		if (r)
			remote_put_if_unused(eng, r);
		release_host(eng, h, answer);
		*why = R_TABLE_FULL;
		return NULL;
	}
	e->table = table;
	e->remote = r;
	e->host = h->addr;
	e->last_seen = now;
	return e;
}

struct entry *entry_new(struct engine *eng, enum entry_table table,
			uint32_t remote, uint32_t host, uint64_t now,
			enum reason *why)
{
	return new_entry(eng, table, remote, host, 0, now, why);
}

struct entry *entry_new_answer(struct engine *eng, uint32_t remote,
			       uint32_t host, uint64_t now, enum reason *why)
{
	struct answer_pair *p = pair_claim(eng, remote, host, why);
	struct entry *e;

	if (!p)
		return NULL;
	e = new_entry(eng, ENTRY_ISAKMP, remote, host, 1, now, why);
	if (!e) {
		pair_release(eng, p);
		return NULL;
	}
	e->state = ISAKMP_ANSWER;
	eng->stats.isakmp_answers++;
	return e;
}

int entry_is_answer(const struct entry *e)
{
	return e->table == ENTRY_ISAKMP && (e->state == ISAKMP_ANSWER ||
					    e->state == ISAKMP_ANSWER_CONFIRMED);
}

void entry_free(struct engine *eng, struct entry *e)
{
	struct remote *r = e->remote;
	int answer = entry_is_answer(e);

	tw_cancel(&eng->wheel, &e->timer);
	if (answer) {
		pair_release(eng, pair_find(eng, r->addr, e->host));
		eng->stats.isakmp_answers--;
	}
	release_host(eng, host_find(eng, e->host), answer);
	pool_put(entry_pool(eng, e->table), e);
	remote_put_if_unused(eng, r);
}

struct remote *remote_find(const struct engine *eng, uint32_t addr)
{
	uint32_t h = addr_hash(eng, addr, 4);

	for (struct hnode *n = htab_chain(&eng->remotes, h); n; n = n->next) {
		struct remote *r = container_of(n, struct remote, by_addr);

		if (n->hash == h && r->addr == addr)
			return r;
	}
	return NULL;
}

/* The remote for addr, created on the first entry with it; NULL on ENOMEM.
 * Remotes live exactly as long as they have entries, so their number is
 * bounded by max_entries. */
struct remote *remote_get(struct engine *eng, uint32_t addr)
{
	struct remote *r = remote_find(eng, addr);

	if (r)
		return r;
	r = pool_get(&eng->remote_pool);
	if (!r)
		return NULL;
	r->addr = addr;
	dlist_init(&r->isakmp_mru);
	dlist_init(&r->esp_mru);
	r->guess_tokens = (uint64_t)eng->cfg.guess_burst * 1000;
	r->ike_tokens = (uint64_t)eng->cfg.isakmp_fallback_burst * 1000;
	htab_insert(&eng->remotes, &r->by_addr, addr_hash(eng, addr, 4));
	eng->stats.remotes++;
	return r;
}

void remote_put_if_unused(struct engine *eng, struct remote *r)
{
	if (r->pinned || !dlist_empty(&r->isakmp_mru) ||
	    !dlist_empty(&r->esp_mru))
		return;
	htab_remove(&eng->remotes, &r->by_addr);
	pool_put(&eng->remote_pool, r);
	eng->stats.remotes--;
}

/* ---- packets --------------------------------------------------------------- */

static void decide(struct engine_decision *out, enum verdict v,
		   enum reason why)
{
	out->verdict = v;
	out->reason = why;
}

/* Log a drop that no association rule explains (malformed input, AH, a
 * protocol we do not handle), with what is known of the packet. */
static void drop_logged(struct engine *eng, const struct pkt_view *pkt,
			enum direction dir, enum reason why,
			struct engine_decision *out)
{
	struct engine_event ev = { .kind = EV_DROPPED, .reason = why };

	ev.remote = dir == DIR_OUTBOUND ? pkt->daddr : pkt->saddr;
	ev.host = dir == DIR_OUTBOUND ? pkt->saddr : 0;
	if (pkt->kind == PKT_ESP || pkt->kind == PKT_AH)
		ev.table = TABLE_ESP;
	decide(out, VERDICT_DROP, why);
	engine_emit(eng, &ev);
}

/* LAN -> WAN: only LAN sources are ours; nothing with a LAN source leaves
 * unchanged, so everything we cannot masquerade is dropped. A source that
 * is not internal (now) reached the outbound queue only through rules
 * older than our config (a reload took its prefix out of `internal`): it
 * is a LAN address all the same, and accepting it would send it out
 * unchanged, since a queued packet is untracked and skips MASQUERADE. Only
 * the external address, already what a masqueraded packet carries, passes. */
static void process_outbound(struct engine *eng, struct pkt_view *pkt,
			     uint64_t now, struct engine_decision *out)
{
	if (!engine_is_internal(eng, pkt->saddr)) {
		if (eng->cfg.external_addr &&
		    pkt->saddr == eng->cfg.external_addr)
			decide(out, VERDICT_ACCEPT, R_NOT_OURS);
		else
			drop_logged(eng, pkt, DIR_OUTBOUND, R_NOT_INTERNAL,
				    out);
		return;
	}
	if (!eng->cfg.external_addr) {
		drop_logged(eng, pkt, DIR_OUTBOUND, R_NO_EXTERNAL_ADDR, out);
		return;
	}
	switch (pkt->kind) {
	case PKT_ESP:
		esp_outbound(eng, pkt, now, out);
		break;
	case PKT_ISAKMP:
		isakmp_outbound(eng, pkt, now, out);
		break;
	case PKT_AH:
		drop_logged(eng, pkt, DIR_OUTBOUND, R_AH_OUTBOUND, out);
		break;
	default:
		drop_logged(eng, pkt, DIR_OUTBOUND, R_UNEXPECTED_PROTO, out);
		break;
	}
}

/* WAN -> external address: ESP and ISAKMP are routed to a LAN host when an
 * entry (or a guess) says whose they are; the rest is the router's own. */
static void process_inbound(struct engine *eng, struct pkt_view *pkt,
			    uint64_t now, struct engine_decision *out)
{
	if (!eng->cfg.external_addr || pkt->daddr != eng->cfg.external_addr) {
		decide(out, VERDICT_ACCEPT, R_NOT_OURS);
		return;
	}
	if (pkt->kind == PKT_ESP)
		esp_inbound(eng, pkt, now, out);
	else if (pkt->kind == PKT_ISAKMP)
		isakmp_inbound(eng, pkt, now, out);
	else
		decide(out, VERDICT_ACCEPT, R_NOT_OURS);
}

void engine_process(struct engine *eng, uint8_t *buf, size_t len,
		    enum direction dir, uint64_t now,
		    struct engine_decision *out)
{
	struct pkt_view pkt;
	enum reason why;

	/* pkt_parse() initialises all of pkt */
	out->n_copies = 0;
	eng->stats.packets[dir]++;
	why = pkt_parse(buf, len, &pkt);
	if (why != R_PASS)
		drop_logged(eng, &pkt, dir, why, out);
	else if (dir == DIR_OUTBOUND)
		process_outbound(eng, &pkt, now, out);
	else
		process_inbound(eng, &pkt, now, out);
	eng->stats.verdicts[out->verdict]++;
	eng->stats.reasons[out->reason]++;
}

/* ---- timers ---------------------------------------------------------------- */

/* The wheel fired an entry's timer: apply what is due, re-arm if it lives. */
static void entry_fired(void *ctx, struct tw_node *node, uint64_t now)
{
	struct engine *eng = ctx;
	struct entry *e = container_of(node, struct entry, timer);

	if (e->table == ENTRY_ESP) {
		struct esp_entry *esp = container_of(e, struct esp_entry, base);

		if (esp_catch_up(eng, esp, now))
			entry_arm(eng, e, esp_next_deadline(eng, esp));
	} else {
		struct isakmp_entry *ike =
			container_of(e, struct isakmp_entry, base);

		if (isakmp_catch_up(eng, ike, now))
			entry_arm(eng, e, e->last_seen + entry_lifetime(eng, e));
	}
}

size_t engine_run_timers(struct engine *eng, uint64_t now)
{
	return tw_run(&eng->wheel, now, entry_fired, eng);
}

size_t engine_run_timers_max(struct engine *eng, uint64_t now, size_t max)
{
	return tw_run_max(&eng->wheel, now, entry_fired, eng, max);
}

uint64_t engine_next_timer(const struct engine *eng)
{
	return tw_next_run(&eng->wheel);
}

/* ---- walks ----------------------------------------------------------------- */

/* Call fn for each remote; fn may remove entries but not the remote's
 * hash neighbours, so the next node is taken first. */
static void for_each_remote(struct engine *eng,
			    void (*fn)(struct engine *, struct remote *,
				       void *),
			    void *ctx)
{
	for (size_t b = 0; b <= eng->remotes.mask; b++) {
		struct hnode *n = eng->remotes.bucket[b];

		while (n) {
			struct hnode *next = n->next;

			fn(eng, container_of(n, struct remote, by_addr), ctx);
			n = next;
		}
	}
}

struct walk_ctx {
	engine_esp_walk_fn esp_fn;
	engine_isakmp_walk_fn isakmp_fn;
	void *ctx;
};

/* An ISAKMP entry as walks show it. */
static void isakmp_fill_info(const struct engine *eng,
			     const struct isakmp_entry *e,
			     struct engine_isakmp_info *info)
{
	*info = (struct engine_isakmp_info){
		.remote = e->base.remote->addr,
		.host = e->base.host,
		.cookie_i = e->cookie_i,
		.cookie_r = e->cookie_r,
		.last_seen = e->base.last_seen,
		.expires = e->base.last_seen + entry_lifetime(eng, &e->base),
		.answer = entry_is_answer(&e->base),
	};
}

static void walk_remote(struct engine *eng, struct remote *r, void *arg)
{
	struct walk_ctx *w = arg;
	struct dlist *l;

	if (w->esp_fn) {
		for (l = r->esp_mru.next; l != &r->esp_mru; l = l->next) {
			struct engine_esp_info info;

			esp_fill_info(eng, container_of(l, struct esp_entry,
							in_remote), &info);
			w->esp_fn(w->ctx, &info);
		}
	}
	if (w->isakmp_fn) {
		for (l = r->isakmp_mru.next; l != &r->isakmp_mru; l = l->next) {
			struct engine_isakmp_info info;

			isakmp_fill_info(eng, container_of(l,
					 struct isakmp_entry, in_remote), &info);
			w->isakmp_fn(w->ctx, &info);
		}
	}
}

void engine_walk_esp(const struct engine *eng, engine_esp_walk_fn fn,
		     void *ctx)
{
	struct walk_ctx w = { .esp_fn = fn, .ctx = ctx };

	/* The walk changes nothing; the cast only reuses the iterator. */
	for_each_remote((struct engine *)eng, walk_remote, &w);
}

void engine_walk_isakmp(const struct engine *eng, engine_isakmp_walk_fn fn,
			void *ctx)
{
	struct walk_ctx w = { .isakmp_fn = fn, .ctx = ctx };

	for_each_remote((struct engine *)eng, walk_remote, &w);
}

/* ---- walks in slices --------------------------------------------------------- */

/* The pool a cursor of table walks. */
static const struct pool *cursor_pool(const struct engine *eng,
				      enum engine_table table)
{
	return table == TABLE_ESP ? &eng->esp_pool : &eng->isakmp_pool;
}

/* Slots of free memory a call may look at besides max entries: a table
 * emptied by a mass expiry is mostly free slots. */
static size_t cursor_budget(size_t max)
{
	return max > (SIZE_MAX - 64) / 9 ? SIZE_MAX : 9 * max + 64;
}

void engine_cursor_start(const struct engine *eng, struct engine_cursor *cur,
			 enum engine_table table)
{
	cur->table = table == TABLE_ISAKMP ? TABLE_ISAKMP : TABLE_ESP;
	pool_pos_start(cursor_pool(eng, cur->table), &cur->pos);
}

bool engine_cursor_next(const struct engine *eng, struct engine_cursor *cur,
			size_t max, engine_esp_walk_fn esp_fn,
			engine_isakmp_walk_fn isakmp_fn, void *ctx)
{
	const struct pool *pool = cursor_pool(eng, cur->table);
	size_t budget = cursor_budget(max);

	for (size_t n = 0; n < max; n++) {
		void *obj = pool_next_used(pool, &cur->pos, &budget);

		if (obj == NULL)
			break;
		if (cur->table == TABLE_ESP) {
			struct engine_esp_info info;

			esp_fill_info(eng, obj, &info);
			if (esp_fn)
				esp_fn(ctx, &info);
		} else {
			struct engine_isakmp_info info;

			isakmp_fill_info(eng, obj, &info);
			if (isakmp_fn)
				isakmp_fn(ctx, &info);
		}
	}
	return cur->pos.chunk == NULL;
}

bool engine_cursor_flush(struct engine *eng, struct engine_cursor *cur,
			 size_t max, uint32_t remote, uint32_t host,
			 size_t *removed)
{
	const struct pool *pool = cursor_pool(eng, cur->table);
	size_t budget = cursor_budget(max);

	for (size_t n = 0; n < max; n++) {
		struct entry *e = pool_next_used(pool, &cur->pos, &budget);

		if (e == NULL)
			break;
		if ((remote && e->remote->addr != remote) ||
		    (host && e->host != host))
			continue;
		/* the walk is past e's slot: freeing it moves nothing */
		if (cur->table == TABLE_ESP)
			esp_remove(eng, (struct esp_entry *)(void *)e,
				   EV_REMOVED);
		else
			isakmp_remove(eng, (struct isakmp_entry *)(void *)e,
				      EV_REMOVED);
		(*removed)++;
	}
	return cur->pos.chunk == NULL;
}

static void rearm_remote(struct engine *eng, struct remote *r, void *arg)
{
	struct dlist *l;

	(void)arg;
	for (l = r->esp_mru.next; l != &r->esp_mru; l = l->next) {
		struct esp_entry *e =
			container_of(l, struct esp_entry, in_remote);

		entry_arm(eng, &e->base, esp_next_deadline(eng, e));
	}
	for (l = r->isakmp_mru.next; l != &r->isakmp_mru; l = l->next) {
		struct isakmp_entry *e =
			container_of(l, struct isakmp_entry, in_remote);

		entry_arm(eng, &e->base,
			  e->base.last_seen + entry_lifetime(eng, &e->base));
	}
}

static void rearm_all(struct engine *eng)
{
	for_each_remote(eng, rearm_remote, NULL);
}

/* ---- flush ----------------------------------------------------------------- */

struct flush_ctx {
	uint32_t host;
	size_t removed;
};

static void flush_remote(struct engine *eng, struct remote *r, void *arg)
{
	struct flush_ctx *f = arg;
	struct dlist *l, *next;

	r->pinned = 1;       /* keep r while its lists are walked */
	for (l = r->isakmp_mru.next; l != &r->isakmp_mru; l = next) {
		struct isakmp_entry *e =
			container_of(l, struct isakmp_entry, in_remote);

		next = l->next;
		if (!f->host || e->base.host == f->host) {
			isakmp_remove(eng, e, EV_REMOVED);
			f->removed++;
		}
	}
	for (l = r->esp_mru.next; l != &r->esp_mru; l = next) {
		struct esp_entry *e =
			container_of(l, struct esp_entry, in_remote);

		next = l->next;
		if (!f->host || e->base.host == f->host) {
			esp_remove(eng, e, EV_REMOVED);
			f->removed++;
		}
	}
	r->pinned = 0;
	remote_put_if_unused(eng, r);
}

size_t engine_flush(struct engine *eng, uint32_t remote, uint32_t host)
{
	struct flush_ctx f = { .host = host };

	if (remote) {
		struct remote *r = remote_find(eng, remote);

		if (r)
			flush_remote(eng, r, &f);
	} else {
		for_each_remote(eng, flush_remote, &f);
	}
	return f.removed;
}
