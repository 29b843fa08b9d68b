/*
 * ESP association rules (design.md, "Association rules"). Outbound ESP shows the
 * out-SPI; nothing shows the in-SPI, so inits are serialized per remote and
 * the first unknown inbound SPI from a remote goes to the pending init's
 * host. An unknown inbound SPI with no init pending is guessed: copies to
 * the hosts that most recently talked to that remote, rate-limited.
 */
#include <errno.h>
#include <string.h>

#include "engine_int.h"

static void index_out(struct engine *eng, struct esp_entry *e, uint32_t spi)
{
	e->spi_out = spi;
	shtab_insert(&eng->esp_out, &e->by_out,
		     spi_hash(eng, e->base.remote->addr, spi));
}

/* Known in-SPI: the entry goes into the in-SPI table (and its deadline
 * word becomes the chain link). */
static void index_in(struct engine *eng, struct esp_entry *e, uint32_t spi)
{
	e->spi_in = spi;
	shtab_insert(&eng->esp_in, &e->by_in,
		     spi_hash(eng, e->base.remote->addr, spi));
}

static void unindex_out(struct engine *eng, struct esp_entry *e)
{
	shtab_remove(&eng->esp_out, &e->by_out,
		     spi_hash(eng, e->base.remote->addr, e->spi_out));
}

static void unindex_in(struct engine *eng, struct esp_entry *e)
{
	shtab_remove(&eng->esp_in, &e->by_in,
		     spi_hash(eng, e->base.remote->addr, e->spi_in));
}

static uint32_t rehash_out(const struct snode *n, const void *ctx)
{
	const struct esp_entry *e = container_of(n, const struct esp_entry,
						 by_out);

	return spi_hash(ctx, e->base.remote->addr, e->spi_out);
}

static uint32_t rehash_in(const struct snode *n, const void *ctx)
{
	const struct esp_entry *e = container_of(n, const struct esp_entry,
						 by_in);

	return spi_hash(ctx, e->base.remote->addr, e->spi_in);
}

int esp_tables_resize(struct engine *eng, size_t n)
{
	if (shtab_resize(&eng->esp_out, n, rehash_out, eng) ||
	    shtab_resize(&eng->esp_in, n, rehash_in, eng))
		return -1;
	return 0;
}

/* The event an entry's decision is logged with. */
static struct engine_event esp_event(const struct esp_entry *e,
				     enum engine_event_kind kind)
{
	struct engine_event ev = {
		.kind = kind,
		.table = TABLE_ESP,
		.remote = e->base.remote->addr,
		.host = e->base.host,
		.spi_out = e->spi_out,
		.spi_in = e->spi_in,
	};

	return ev;
}

uint64_t esp_next_deadline(const struct engine *eng,
			   const struct esp_entry *e)
{
	uint64_t end = e->base.last_seen + esp_lifetime(eng, e);

	if ((e->base.state == ESP_PENDING || e->base.state == ESP_SQUELCHED) &&
	    e->deadline < end)
		return e->deadline;
	return end;
}

static void rearm(struct engine *eng, struct esp_entry *e)
{
	entry_arm(eng, &e->base, esp_next_deadline(eng, e));
}

void esp_remove(struct engine *eng, struct esp_entry *e,
		enum engine_event_kind why)
{
	struct remote *r = e->base.remote;
	struct engine_event ev = esp_event(e, why);

	if (e->spi_out)
		unindex_out(eng, e);
	if (e->spi_in)
		unindex_in(eng, e);
	if (r->pending == e) {
		r->pending = NULL;
		eng->stats.pending--;
	}
	dlist_del(&e->in_remote);
	eng->stats.esp_entries--;
	engine_emit(eng, &ev);
	entry_free(eng, &e->base);
}

/* The remote never answered this init: free the remote's slot. The entry
 * stays (WAITING); its next outbound packet asks for the slot again. */
static void init_timed_out(struct engine *eng, struct esp_entry *e)
{
	struct engine_event ev = esp_event(e, EV_INIT_TIMEOUT);

	e->base.state = ESP_WAITING;
	if (e->base.remote->pending == e) {
		e->base.remote->pending = NULL;
		eng->stats.pending--;
	}
	engine_emit(eng, &ev);
}

int esp_catch_up(struct engine *eng, struct esp_entry *e, uint64_t now)
{
	if (e->base.state == ESP_PENDING && now >= e->deadline)
		init_timed_out(eng, e);
	if (e->base.state == ESP_SQUELCHED && now >= e->deadline)
		e->base.state = ESP_WAITING;
	if (now >= e->base.last_seen + esp_lifetime(eng, e)) {
		esp_remove(eng, e, EV_EXPIRED);
		return 0;
	}
	return 1;
}

/* Take the remote's init slot: this entry's out-SPI is the one the next
 * unknown inbound SPI from the remote will be bound to. */
static void become_pending(struct engine *eng, struct esp_entry *e,
			   uint64_t now)
{
	e->base.state = ESP_PENDING;
	e->deadline = now + eng->cfg.esp_init_timeout_ms;
	e->base.collisions = 0;
	e->base.remote->pending = e;
	eng->stats.pending++;
	rearm(eng, e);
}

/* The pending init collided init_retries times: it steps aside for
 * `squelch` so that access goes round-robin and one silent remote cannot
 * block the LAN. */
static void squelch(struct engine *eng, struct esp_entry *p, uint64_t now)
{
	struct engine_event ev = esp_event(p, EV_SQUELCHED);

	p->base.state = ESP_SQUELCHED;
	p->deadline = now + eng->cfg.esp_squelch_ms;
	p->base.collisions = 0;
	p->base.remote->pending = NULL;
	eng->stats.pending--;
	rearm(eng, p);
	engine_emit(eng, &ev);
}

/* An init attempt refused because of `other`: log who was refused, for
 * whom, and who holds the remote. */
static void refuse_init(struct engine *eng, enum engine_event_kind kind,
			uint32_t remote, uint32_t host, uint32_t spi,
			const struct esp_entry *other, enum reason why,
			struct engine_decision *out)
{
	uint32_t holder = other->base.host;
	struct engine_event ev = {
		.kind = kind, .table = TABLE_ESP, .reason = why,
		.remote = remote, .host = host, .spi_out = spi,
		.hosts = &holder, .n_hosts = 1,
	};

	out->verdict = VERDICT_DROP;
	out->reason = why;
	engine_emit(eng, &ev);
}

/* Parallel sessions off: another host's association with the remote
 * blocks new inits for as long as it lives. A host that holds an
 * established one itself is never blocked: after a reload turned parallel sessions off, several
 * hosts may hold the remote, and each must still be able to rekey (else
 * two of them block each other until one tunnel dies). Returns the
 * blocking entry or NULL. */
static const struct esp_entry *find_blocker(struct engine *eng,
					    struct remote *r, uint32_t host,
					    uint64_t now)
{
	const struct esp_entry *blocker = NULL;
	struct dlist *l, *next;

	r->pinned = 1;
	for (l = r->esp_mru.next; l != &r->esp_mru; l = next) {
		struct esp_entry *e =
			container_of(l, struct esp_entry, in_remote);

		next = l->next;
		if (!esp_catch_up(eng, e, now) ||
		    (e->base.state != ESP_ESTABLISHED &&
		     !esp_state_given(e->base.state)))
			continue;
		if (e->base.host == host) {
			if (e->base.state == ESP_ESTABLISHED) {
				blocker = NULL;
				break;
			}
			continue;
		}
		if (!blocker)
			blocker = e;
	}
	r->pinned = 0;
	return blocker;
}

/*
 * May `host` start an init under out-SPI `spi` with remote r (self is its
 * existing WAITING entry, or NULL)? Returns 1, or 0 after deciding a drop:
 * blocked (parallel sessions off) or serialized behind the pending init,
 * which is squelched once it has collided init_retries times.
 */
static int init_allowed(struct engine *eng, struct remote *r, uint32_t host,
			uint32_t spi, const struct esp_entry *self,
			uint64_t now, struct engine_decision *out)
{
	const struct esp_entry *blocker;
	struct esp_entry *p;

	if (!eng->cfg.parallel_sessions) {
		blocker = find_blocker(eng, r, host, now);
		if (blocker) {
			refuse_init(eng, EV_BLOCKED, r->addr, host, spi,
				    blocker, R_ESP_BLOCKED, out);
			return 0;
		}
	}
	p = r->pending;
	if (p && p != self) {
		refuse_init(eng, EV_SERIALIZED, r->addr, host, spi, p,
			    R_ESP_SERIALIZED, out);
		/* the count saturates: retries past its range mean 65535 */
		if (p->base.collisions < UINT16_MAX)
			p->base.collisions++;
		if (p->base.collisions >= eng->cfg.esp_init_retries ||
		    p->base.collisions == UINT16_MAX)
			squelch(eng, p, now);
		return 0;
	}
	return 1;
}

/* Catch up the remote's pending init, which may time out or expire; the
 * remote stays (pinned) so the caller's pointer remains valid. */
static void catch_up_pending(struct engine *eng, struct remote *r,
			     uint64_t now)
{
	if (!r->pending)
		return;
	r->pinned = 1;
	esp_catch_up(eng, r->pending, now);
	r->pinned = 0;
}

/* A fresh entry of (remote, host), counted against the limits, linked into
 * the remote, not yet in any SPI index. NULL with *why on refusal. */
static struct esp_entry *esp_new(struct engine *eng, uint32_t remote,
				 uint32_t host, uint64_t now,
				 enum reason *why)
{
	struct entry *base = entry_new(eng, ENTRY_ESP, remote, host, now, why);
	struct esp_entry *e;

	if (!base)
		return NULL;
	e = container_of(base, struct esp_entry, base);
	e->since = now;
	e->base.state = ESP_WAITING;       /* no slot until become_pending() */
	dlist_push_front(&base->remote->esp_mru, &e->in_remote);
	eng->stats.esp_entries++;
	return e;
}

static void refused(struct engine *eng, uint32_t remote, uint32_t host,
		    uint32_t spi_out, uint32_t spi_in, enum reason why,
		    struct engine_decision *out)
{
	struct engine_event ev = {
		.kind = EV_REFUSED, .table = TABLE_ESP, .reason = why,
		.remote = remote, .host = host,
		.spi_out = spi_out, .spi_in = spi_in,
	};

	out->verdict = VERDICT_DROP;
	out->reason = why;
	engine_emit(eng, &ev);
}

/* A live preload for (r, host) still waiting for its out-SPI, or NULL.
 * Each candidate is caught up first: a preload past its TTL whose timer
 * has not run yet is removed here, never revived by this packet. */
static struct esp_entry *preload_without_out(struct engine *eng,
					     struct remote *r, uint32_t host,
					     uint64_t now)
{
	struct esp_entry *found = NULL;
	struct dlist *l, *next;

	r->pinned = 1;
	for (l = r->esp_mru.next; l != &r->esp_mru && !found; l = next) {
		struct esp_entry *e =
			container_of(l, struct esp_entry, in_remote);

		next = l->next;
		if (esp_state_given(e->base.state) && !e->spi_out &&
		    e->base.host == host && esp_catch_up(eng, e, now))
			found = e;
	}
	r->pinned = 0;
	return found;
}

/* First packet under a new out-SPI: attach it to a preload, or start an
 * init if the rules allow. */
static void new_outbound_spi(struct engine *eng, struct pkt_view *pkt,
			     uint64_t now, struct engine_decision *out)
{
	uint32_t remote = pkt->daddr, host = pkt->saddr, spi = pkt->esp.spi;
	struct remote *r = remote_find(eng, remote);
	struct esp_entry *e;
	enum reason why;

	if (r) {
		catch_up_pending(eng, r, now);
		e = preload_without_out(eng, r, host, now);
		if (e) {
			struct engine_event ev;

			index_out(eng, e, spi);
			pass_outbound(eng, e, pkt, now, out);
			ev = esp_event(e, EV_LEARNT);
			engine_emit(eng, &ev);
			return;
		}
		if (!init_allowed(eng, r, host, spi, NULL, now, out)) {
			remote_put_if_unused(eng, r);
			return;
		}
		remote_put_if_unused(eng, r);
	}
	e = esp_new(eng, remote, host, now, &why);
	if (!e) {
		refused(eng, remote, host, spi, 0, why, out);
		return;
	}
	index_out(eng, e, spi);
	become_pending(eng, e, now);
	{
		struct engine_event ev = esp_event(e, EV_CREATED);

		engine_emit(eng, &ev);
	}
	pass_outbound(eng, e, pkt, now, out);
}

/* Outbound ESP other than an established flow's, in the rules' order: the
 * entry e found for the out-SPI (or NULL) caught up, a new out-SPI, another
 * host's, a squelched init, an init asking for the remote again. */
void esp_outbound_slow(struct engine *eng, struct esp_entry *e,
		       struct pkt_view *pkt, uint64_t now,
		       struct engine_decision *out)
{
	if (e && !esp_catch_up(eng, e, now))
		e = NULL;
	if (!e) {
		new_outbound_spi(eng, pkt, now, out);
		return;
	}
	if (e->base.host != pkt->saddr) {
		struct engine_event ev = esp_event(e, EV_DROPPED);

		ev.reason = R_ESP_SPI_CONFLICT;
		ev.host = pkt->saddr;
		out->verdict = VERDICT_DROP;
		out->reason = R_ESP_SPI_CONFLICT;
		engine_emit(eng, &ev);
		return;
	}
	if (e->base.state == ESP_SQUELCHED) {
		out->verdict = VERDICT_DROP;
		out->reason = R_ESP_SQUELCHED;
		return;
	}
	if (e->base.state == ESP_WAITING) {
		struct remote *r = e->base.remote;

		catch_up_pending(eng, r, now);
		if (!init_allowed(eng, r, pkt->saddr, e->spi_out, e, now, out))
			return;
		become_pending(eng, e, now);
	}
	pass_outbound(eng, e, pkt, now, out);
}

/* Bind the first unknown inbound SPI to the pending init and release the
 * remote's slot. */
static void associate(struct engine *eng, struct esp_entry *p, uint32_t spi)
{
	struct engine_event ev;

	index_in(eng, p, spi);
	p->base.state = ESP_ESTABLISHED;
	p->base.collisions = 0;
	p->base.remote->pending = NULL;
	eng->stats.pending--;
	rearm(eng, p);
	ev = esp_event(p, EV_ASSOCIATED);
	engine_emit(eng, &ev);
}

/* Live (not past its lifetime) without removing anything: guesses only
 * read the tables. */
static int entry_live(const struct engine *eng, const struct entry *e,
		      uint64_t now)
{
	return now < e->last_seen + entry_lifetime(eng, e);
}

/* The hosts an unknown inbound SPI may belong to, most likely first: live
 * ISAKMP entries with the remote (a rekey follows IKE), then live ESP
 * entries, each most recent first. */
static unsigned guess_hosts(const struct engine *eng, const struct remote *r,
			    uint64_t now, uint32_t *hosts)
{
	unsigned max = eng->cfg.guess_copies, n = 0;
	const struct dlist *l;

	for (l = r->isakmp_mru.next; l != &r->isakmp_mru && n < max;
	     l = l->next) {
		const struct isakmp_entry *e =
			container_of(l, struct isakmp_entry, in_remote);

		if (entry_live(eng, &e->base, now))
			n = host_list_add(hosts, n, max, e->base.host);
	}
	for (l = r->esp_mru.next; l != &r->esp_mru && n < max; l = l->next) {
		const struct esp_entry *e =
			container_of(l, struct esp_entry, in_remote);

		if (entry_live(eng, &e->base, now))
			n = host_list_add(hosts, n, max, e->base.host);
	}
	return n;
}

/* The remote's guess budget (token bucket): returns how many of `wanted`
 * copies it allows now, and spends them. */
static unsigned guess_budget(const struct engine *eng, struct remote *r,
			     uint64_t now, unsigned wanted)
{
	return token_take(&r->guess_tokens, &r->guess_refilled,
			  eng->cfg.guess_rate, eng->cfg.guess_burst, now,
			  wanted);
}

/* Unknown SPI, no init pending: the remote rekeyed first. Send the packet
 * to the likely hosts; wrong ones drop it (bad ICV), the right one answers
 * and its answer starts a normal init. Nothing is recorded. */
static void guess(struct engine *eng, struct remote *r, struct pkt_view *pkt,
		  uint64_t now, struct engine_decision *out)
{
	uint32_t hosts[ENGINE_MAX_GUESS];
	unsigned n = guess_hosts(eng, r, now, hosts);
	struct engine_event ev = {
		.kind = EV_GUESSED, .table = TABLE_ESP, .remote = r->addr,
		.spi_in = pkt->esp.spi,
	};

	if (!n) {
		out->verdict = VERDICT_ACCEPT;
		out->reason = R_NOT_OURS;
		return;
	}
	n = guess_budget(eng, r, now, n);
	if (!n) {
		ev.kind = EV_DROPPED;
		ev.reason = R_GUESS_RATELIMITED;
		out->verdict = VERDICT_DROP;
		out->reason = R_GUESS_RATELIMITED;
		engine_emit(eng, &ev);
		return;
	}
	pkt_set_daddr(pkt, hosts[0]);
	out->n_copies = n - 1;
	memcpy(out->copy_to, hosts + 1, (n - 1) * sizeof(hosts[0]));
	out->verdict = VERDICT_ACCEPT_MODIFIED;
	out->reason = R_PASS;
	eng->stats.copies += n - 1;
	ev.host = hosts[0];
	ev.hosts = hosts;
	ev.n_hosts = n;
	engine_emit(eng, &ev);
}

/* Inbound ESP other than an established flow's: the entry e found for the
 * in-SPI (or NULL) caught up, else the pending init's association, else a
 * guess. */
void esp_inbound_slow(struct engine *eng, struct esp_entry *e,
		      struct pkt_view *pkt, uint64_t now,
		      struct engine_decision *out)
{
	struct remote *r;

	if (e && esp_catch_up(eng, e, now)) {
		pass_inbound(eng, e, pkt, now, out);
		return;
	}
	r = remote_find(eng, pkt->saddr);
	if (!r) {
		out->verdict = VERDICT_ACCEPT;
		out->reason = R_NOT_OURS;
		return;
	}
	catch_up_pending(eng, r, now);
	if (r->pending) {
		e = r->pending;
		associate(eng, e, pkt->esp.spi);
		pass_inbound(eng, e, pkt, now, out);
		return;
	}
	guess(eng, r, pkt, now, out);
	remote_put_if_unused(eng, r);
}

void esp_fill_info(const struct engine *eng, const struct esp_entry *e,
		   struct engine_esp_info *info)
{
	info->remote = e->base.remote->addr;
	info->host = e->base.host;
	info->spi_out = e->spi_out;
	info->spi_in = e->spi_in;
	info->state = e->base.state;
	info->pkts_out = count48_get(e->pkts_out_lo, e->pkts_out_hi);
	info->pkts_in = count48_get(e->pkts_in_lo, e->pkts_in_hi);
	info->bytes_out = e->bytes_out;
	info->bytes_in = e->bytes_in;
	info->last_seen = e->base.last_seen;
	info->expires = esp_next_deadline(eng, e);
	info->since = e->since;
}

/* ---- driven from outside: preload, delete, restore ------------------------ */

static int spi_valid(uint32_t spi)
{
	return spi >= 256;
}

/* Give an existing entry of the same host a preloaded in-SPI. */
static void preload_onto(struct engine *eng, struct esp_entry *e,
			 uint32_t spi_in, uint64_t ttl_ms, uint64_t now,
			 enum esp_state state)
{
	struct engine_event ev;

	if (e->spi_in != spi_in) {
		if (e->spi_in)
			unindex_in(eng, e);
		index_in(eng, e, spi_in);
	}
	if (e->base.state == ESP_PENDING) {
		e->base.remote->pending = NULL;
		eng->stats.pending--;
	}
	e->base.state = (uint8_t)state;
	e->life_ms = life_field(ttl_ms);
	e->base.last_seen = now;
	rearm(eng, e);
	ev = esp_event(e, EV_PRELOADED);
	engine_emit(eng, &ev);
}

/* The existing entry a preload of (remote, host, spi_in, spi_out) lands on,
 * NULL when a new one is needed; -1/EEXIST when another host owns either
 * SPI. */
static int preload_target(struct engine *eng, uint32_t remote, uint32_t host,
			  uint32_t spi_in, uint32_t spi_out, uint64_t now,
			  struct esp_entry **target)
{
	struct esp_entry *by_in = find_in(eng, remote, spi_in);
	struct esp_entry *by_out = spi_out ? find_out(eng, remote, spi_out)
					   : NULL;

	if (by_in && !esp_catch_up(eng, by_in, now)) {
		if (by_out == by_in)     /* gone: both named one entry */
			by_out = NULL;
		by_in = NULL;
	}
	if (by_out && by_out != by_in && !esp_catch_up(eng, by_out, now))
		by_out = NULL;
	if ((by_in && by_in->base.host != host) ||
	    (by_out && by_out->base.host != host) ||
	    (by_in && by_out && by_in != by_out)) {
		errno = EEXIST;
		return -1;
	}
	*target = by_in ? by_in : by_out;
	return 0;
}

/* engine_preload() and engine_announce(): the entry ends in `state`. */
static int preload_as(struct engine *eng, uint32_t remote, uint32_t host,
		      uint32_t spi_in, uint32_t spi_out, uint64_t ttl_ms,
		      uint64_t now, enum esp_state state)
{
	struct esp_entry *e;
	enum reason why;

	if (!remote || !spi_valid(spi_in) || (spi_out && !spi_valid(spi_out)) ||
	    !engine_is_internal(eng, host)) {
		errno = EINVAL;
		return -1;
	}
	if (preload_target(eng, remote, host, spi_in, spi_out, now, &e))
		return -1;
	if (!e) {
		e = esp_new(eng, remote, host, now, &why);
		if (!e) {
			errno = ENOSPC;
			return -1;
		}
	}
	if (spi_out && e->spi_out != spi_out) {
		if (e->spi_out)
			unindex_out(eng, e);
		index_out(eng, e, spi_out);
	}
	preload_onto(eng, e, spi_in, ttl_ms, now, state);
	return 0;
}

int engine_preload(struct engine *eng, uint32_t remote, uint32_t host,
		   uint32_t spi_in, uint32_t spi_out, uint64_t ttl_ms,
		   uint64_t now)
{
	return preload_as(eng, remote, host, spi_in, spi_out, ttl_ms, now,
			  ESP_PRELOADED);
}

int engine_announce(struct engine *eng, uint32_t remote, uint32_t host,
		    uint32_t spi_in, uint32_t spi_out, uint64_t ttl_ms,
		    uint64_t now)
{
	return preload_as(eng, remote, host, spi_in, spi_out, ttl_ms, now,
			  ESP_ANNOUNCED);
}

int engine_withdraw(struct engine *eng, uint32_t remote, uint32_t host,
		    uint32_t spi_in, uint64_t now)
{
	struct esp_entry *e = find_in(eng, remote, spi_in);

	if (!e || !esp_catch_up(eng, e, now)) {
		errno = ENOENT;
		return -1;
	}
	if (e->base.host != host) {
		errno = EPERM;
		return -1;
	}
	esp_remove(eng, e, EV_REMOVED);
	return 0;
}

int engine_del_esp(struct engine *eng, uint32_t remote, uint32_t spi_in)
{
	struct esp_entry *e = find_in(eng, remote, spi_in);

	if (!e) {
		errno = ENOENT;
		return -1;
	}
	esp_remove(eng, e, EV_REMOVED);
	return 0;
}

int engine_get_esp(const struct engine *eng, uint32_t remote, uint32_t spi_in,
		   struct engine_esp_info *info)
{
	const struct esp_entry *e = find_in(eng, remote, spi_in);

	if (!e) {
		errno = ENOENT;
		return -1;
	}
	esp_fill_info(eng, e, info);
	return 0;
}

/* Adds n to a 48-bit counter, sticking at its maximum. */
static void count48_add(uint32_t *lo, uint16_t *hi, uint64_t n)
{
	uint64_t v = count48_get(*lo, *hi);

	count48_set(lo, hi, n > COUNT48_MAX - v ? COUNT48_MAX : v + n);
}

int engine_credit_esp(struct engine *eng, uint32_t remote, uint32_t spi_in,
		      const struct engine_esp_use *use, uint64_t now)
{
	struct esp_entry *e = find_in(eng, remote, spi_in);

	if (!e || !esp_catch_up(eng, e, now)) {
		errno = ENOENT;
		return -1;
	}
	count48_add(&e->pkts_out_lo, &e->pkts_out_hi, use->pkts_out);
	count48_add(&e->pkts_in_lo, &e->pkts_in_hi, use->pkts_in);
	e->bytes_out += use->bytes_out;
	e->bytes_in += use->bytes_in;
	if (use->pkts_out || use->pkts_in) {
		e->base.last_seen = now;
		dlist_move_front(&e->base.remote->esp_mru, &e->in_remote);
		rearm(eng, e);
	}
	return 0;
}

int engine_restore_esp(struct engine *eng, const struct engine_esp_info *info)
{
	struct esp_entry *e;
	enum reason why;
	uint64_t life;

	if ((info->state != ESP_ESTABLISHED && !esp_state_given(info->state)) ||
	    !info->remote || !spi_valid(info->spi_in) ||
	    (info->spi_out && !spi_valid(info->spi_out)) ||
	    (info->state == ESP_ESTABLISHED && !info->spi_out) ||
	    !engine_is_internal(eng, info->host) ||
	    info->expires <= info->last_seen) {
		errno = EINVAL;
		return -1;
	}
	if (find_in(eng, info->remote, info->spi_in) ||
	    (info->spi_out && find_out(eng, info->remote, info->spi_out))) {
		errno = EEXIST;
		return -1;
	}
	e = esp_new(eng, info->remote, info->host, info->last_seen, &why);
	if (!e) {
		errno = ENOSPC;
		return -1;
	}
	if (info->spi_out)
		index_out(eng, e, info->spi_out);
	index_in(eng, e, info->spi_in);
	e->base.state = info->state;
	life = info->expires - info->last_seen;
	e->life_ms = life == eng->cfg.esp_lifetime_ms ? 0 : life_field(life);
	e->since = info->since;
	count48_set(&e->pkts_out_lo, &e->pkts_out_hi, info->pkts_out);
	count48_set(&e->pkts_in_lo, &e->pkts_in_hi, info->pkts_in);
	e->bytes_out = info->bytes_out;
	e->bytes_in = info->bytes_in;
	rearm(eng, e);
	return 0;
}
