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

/* Known in-SPI: the entry goes into the in-SPI table (and its stamp word
 * becomes the chain link). */
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

/* Change an entry's state, keeping the remote's counts of queued and
 * provisional entries (they spare the packet path walks when zero) and the
 * count of announced ones (announce.max_entries caps it). */
static void set_state(struct engine *eng, struct esp_entry *e,
		      enum esp_state state)
{
	struct remote *r = e->base.remote;

	if (e->base.state == ESP_QUEUED) {
		r->n_queued--;
		eng->stats.queued--;
	} else if (e->base.state == ESP_PROVISIONAL) {
		r->n_provisional--;
	} else if (e->base.state == ESP_ANNOUNCED) {
		eng->stats.announced--;
	}
	if (state == ESP_QUEUED) {
		r->n_queued++;
		eng->stats.queued++;
	} else if (state == ESP_PROVISIONAL) {
		r->n_provisional++;
	} else if (state == ESP_ANNOUNCED) {
		eng->stats.announced++;
	}
	e->base.state = state;
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

/* When the pending init e ends without an answer. */
static uint64_t init_end(const struct engine *eng, const struct esp_entry *e)
{
	return e->stamp + eng->cfg.esp_init_timeout_ms;
}

uint64_t esp_next_deadline(const struct engine *eng,
			   const struct esp_entry *e)
{
	uint64_t end = e->base.last_seen + esp_lifetime(eng, e);

	if (e->base.state == ESP_PENDING && init_end(eng, e) < end)
		return init_end(eng, e);
	if (e->base.state == ESP_SQUELCHED && e->stamp < end)
		return e->stamp;
	return end;
}

static void rearm(struct engine *eng, struct esp_entry *e)
{
	entry_arm(eng, &e->base, esp_next_deadline(eng, e));
}

/* The pending init p leaves the slot without an answer: remember it for
 * esp_init_min_age, since its answer may still be on its way and must not
 * be bound to the next init (the oldest memory makes room). */
static void release_unanswered(struct engine *eng, struct esp_entry *p,
			       uint64_t now)
{
	struct remote *r = p->base.remote;
	struct released_init *slot = &r->released[0];

	for (unsigned i = 1; i < ESP_RELEASED_MAX; i++)
		if (r->released[i].at < slot->at)
			slot = &r->released[i];
	slot->host = p->base.host;
	slot->spi_out = p->spi_out;
	slot->at = now ? now : 1;
	r->pending = NULL;
	eng->stats.pending--;
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
	if (r->pending == e)
		release_unanswered(eng, e, e->base.last_seen);
	set_state(eng, e, ESP_WAITING);
	dlist_del(&e->in_remote);
	eng->stats.esp_entries--;
	engine_emit(eng, &ev);
	entry_free(eng, &e->base);
}

/* The remote never answered this init: free the remote's slot. The entry
 * stays (WAITING); its next outbound packet asks for the slot again. */
static void init_timed_out(struct engine *eng, struct esp_entry *e,
			   uint64_t now)
{
	struct engine_event ev = esp_event(e, EV_INIT_TIMEOUT);

	if (e->base.remote->pending == e)
		release_unanswered(eng, e, now);
	set_state(eng, e, ESP_WAITING);
	engine_emit(eng, &ev);
}

int esp_catch_up(struct engine *eng, struct esp_entry *e, uint64_t now)
{
	if (e->base.state == ESP_PENDING && now >= init_end(eng, e))
		init_timed_out(eng, e, now);
	if (e->base.state == ESP_SQUELCHED && now >= e->stamp)
		set_state(eng, e, ESP_WAITING);
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
	set_state(eng, e, ESP_PENDING);
	e->stamp = now;
	e->base.collisions = 0;
	e->base.remote->pending = e;
	eng->stats.pending++;
	rearm(eng, e);
}

/* The pending init overstayed (see init_overstayed()): it steps aside for
 * `squelch` so that access goes round-robin and one silent remote cannot
 * block the LAN. */
static void squelch(struct engine *eng, struct esp_entry *p, uint64_t now)
{
	struct engine_event ev = esp_event(p, EV_SQUELCHED);

	release_unanswered(eng, p, now);
	set_state(eng, p, ESP_SQUELCHED);
	p->stamp = now + eng->cfg.esp_squelch_ms;
	p->base.collisions = 0;
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
	uint32_t holder = other ? other->base.host : 0;
	struct engine_event ev = {
		.kind = kind, .table = TABLE_ESP, .reason = why,
		.remote = remote, .host = host, .spi_out = spi,
		.hosts = &holder, .n_hosts = other ? 1 : 0,
	};

	out->verdict = VERDICT_DROP;
	out->reason = why;
	engine_emit(eng, &ev);
}

/* Parallel sessions off: another host's association with the remote
 * blocks new inits for as long as it lives. A host that holds an
 * association of its own (established or provisional) is never blocked:
 * after a reload turned parallel sessions off, several
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
		     e->base.state != ESP_PROVISIONAL &&
		     !esp_state_given(e->base.state)))
			continue;
		if (e->base.host == host) {
			if (e->base.state == ESP_ESTABLISHED ||
			    e->base.state == ESP_PROVISIONAL) {
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

/* Live (not past its lifetime) without removing anything: guesses and the
 * queue only read the tables. */
static int entry_live(const struct engine *eng, const struct entry *e,
		      uint64_t now)
{
	return now < e->last_seen + entry_lifetime(eng, e);
}

/*
 * The first in line for r's slot: the QUEUED entry with the lowest ticket
 * among those still asking (a packet within ESP_WAITER_STALE_MS). One that
 * stopped asking leaves the line (WAITING; it queues again at the back
 * when it asks). NULL when nobody waits.
 */
static struct esp_entry *queue_head(struct engine *eng, struct remote *r,
				    uint64_t now)
{
	struct esp_entry *head = NULL;

	if (!r->n_queued)
		return NULL;
	for (struct dlist *l = r->esp_mru.next; l != &r->esp_mru;
	     l = l->next) {
		struct esp_entry *e =
			container_of(l, struct esp_entry, in_remote);

		if (e->base.state != ESP_QUEUED)
			continue;
		if (now - e->base.last_seen >= ESP_WAITER_STALE_MS) {
			set_state(eng, e, ESP_WAITING);
			continue;
		}
		if (entry_live(eng, &e->base, now) &&
		    (!head || e->stamp < head->stamp))
			head = e;
	}
	return head;
}

/*
 * Whether the pending init p has had its turn while others wait: it keeps
 * the slot for esp_init_min_age (one round trip, whatever others send);
 * after that it steps aside once its own host retransmitted init_retries
 * times without an answer while others waited, or went quiet for a round
 * trip (an answer to its last packet would have come).
 */
static int init_overstayed(struct engine *eng, struct remote *r,
			   struct esp_entry *p, uint64_t now)
{
	uint64_t hold = eng->cfg.esp_init_min_age_ms;

	if (now - p->stamp < hold || !queue_head(eng, r, now))
		return 0;
	return p->base.collisions >= eng->cfg.esp_init_retries ||
	       p->base.collisions == UINT16_MAX ||
	       now - p->base.last_seen >= hold;
}

/*
 * e (WAITING or QUEUED, its host sending under its out-SPI) asks for the
 * remote's slot: it gets it when the slot is free and e is first in line;
 * otherwise it keeps (or takes) its place in line and the packet is
 * dropped, as serialized. Returns 1 when e now holds the slot.
 */
static int ask_for_slot(struct engine *eng, struct esp_entry *e,
			uint64_t now, struct engine_decision *out)
{
	struct remote *r = e->base.remote;
	struct esp_entry *head;

	if (e->base.state != ESP_QUEUED) {
		set_state(eng, e, ESP_QUEUED);
		e->stamp = r->next_ticket++;
	}
	e->base.last_seen = now;
	if (r->pending && init_overstayed(eng, r, r->pending, now))
		squelch(eng, r->pending, now);
	head = r->pending ? NULL : queue_head(eng, r, now);
	if (head == e) {
		become_pending(eng, e, now);
		return 1;
	}
	refuse_init(eng, EV_SERIALIZED, r->addr, e->base.host, e->spi_out,
		    r->pending ? r->pending : head, R_ESP_SERIALIZED, out);
	return 0;
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

/* Parallel sessions off and another host associated with r: the packet is
 * dropped as blocked, and e (if any) leaves the line, where it would only
 * hold up the others. Returns 1 when blocked. */
static int blocked(struct engine *eng, struct remote *r, uint32_t host,
		   uint32_t spi, struct esp_entry *e, uint64_t now,
		   struct engine_decision *out)
{
	const struct esp_entry *blocker;

	if (eng->cfg.parallel_sessions)
		return 0;
	blocker = find_blocker(eng, r, host, now);
	if (!blocker)
		return 0;
	if (e && e->base.state == ESP_QUEUED)
		set_state(eng, e, ESP_WAITING);
	refuse_init(eng, EV_BLOCKED, r->addr, host, spi, blocker,
		    R_ESP_BLOCKED, out);
	return 1;
}

/* First packet under a new out-SPI: attach it to a preload, or make an
 * entry that takes the slot or a place in line, if the rules allow. */
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
		if (blocked(eng, r, host, spi, NULL, now, out)) {
			remote_put_if_unused(eng, r);
			return;
		}
	}
	e = esp_new(eng, remote, host, now, &why);
	if (!e) {
		/* no room to wait in line: refused as before, serialized
		 * when the slot is taken */
		if (r && r->pending)
			refuse_init(eng, EV_SERIALIZED, remote, host, spi,
				    r->pending, R_ESP_SERIALIZED, out);
		else
			refused(eng, remote, host, spi, 0, why, out);
		if (r)
			remote_put_if_unused(eng, r);
		return;
	}
	index_out(eng, e, spi);
	rearm(eng, e);
	if (!ask_for_slot(eng, e, now, out))
		return;
	{
		struct engine_event ev = esp_event(e, EV_CREATED);

		engine_emit(eng, &ev);
	}
	pass_outbound(eng, e, pkt, now, out);
}

/* The pending host sends again: a retransmission, counted when others are
 * in line. Returns 0 when it has overstayed and was squelched (the packet
 * is dropped). */
static int pending_sends(struct engine *eng, struct esp_entry *e,
			 uint64_t now, struct engine_decision *out)
{
	struct remote *r = e->base.remote;

	if (r->n_queued && e->base.collisions < UINT16_MAX)
		e->base.collisions++;
	e->base.last_seen = now;        /* it is not quiet: it is sending */
	if (!init_overstayed(eng, r, e, now))
		return 1;
	squelch(eng, e, now);
	out->verdict = VERDICT_DROP;
	out->reason = R_ESP_SQUELCHED;
	return 0;
}

/* A provisional association has been used both ways since it was bound:
 * it is confirmed. */
static void provisional_used(struct engine *eng, struct esp_entry *e,
			     unsigned flag)
{
	e->base.collisions |= (uint16_t)flag;
	if (e->base.collisions == (PROV_SENT | PROV_RECEIVED)) {
		set_state(eng, e, ESP_ESTABLISHED);
		e->base.collisions = 0;
	}
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
	switch (e->base.state) {
	case ESP_SQUELCHED:
		out->verdict = VERDICT_DROP;
		out->reason = R_ESP_SQUELCHED;
		return;
	case ESP_WAITING:
	case ESP_QUEUED: {
		struct remote *r = e->base.remote;

		catch_up_pending(eng, r, now);
		if (blocked(eng, r, pkt->saddr, e->spi_out, e, now, out) ||
		    !ask_for_slot(eng, e, now, out))
			return;
		break;
	}
	case ESP_PENDING:
		if (!pending_sends(eng, e, now, out))
			return;
		break;
	case ESP_PROVISIONAL:
		provisional_used(eng, e, PROV_SENT);
		break;
	default:
		break;
	}
	pass_outbound(eng, e, pkt, now, out);
}

/* Bind the first unknown inbound SPI to the pending init and release the
 * remote's slot. The association is provisional until used both ways. */
static void associate(struct engine *eng, struct esp_entry *p, uint32_t spi)
{
	struct engine_event ev;

	p->base.remote->pending = NULL;
	eng->stats.pending--;
	index_in(eng, p, spi);
	set_state(eng, p, ESP_PROVISIONAL);
	p->base.collisions = 0;
	rearm(eng, p);
	ev = esp_event(p, EV_ASSOCIATED);
	engine_emit(eng, &ev);
}

/* Whether released init x of r is recent enough that its answer may
 * still arrive. */
static int release_recent(const struct engine *eng,
			  const struct released_init *x, uint64_t now)
{
	return x->at && now - x->at < eng->cfg.esp_init_min_age_ms;
}

/* An unknown inbound SPI from r now is ambiguous when an init of another
 * host lost r's slot unanswered within esp_init_min_age: it may be that
 * init's late answer as well as the pending one's. */
static int answer_ambiguous(const struct engine *eng, const struct remote *r,
			    const struct esp_entry *p, uint64_t now)
{
	for (unsigned i = 0; i < ESP_RELEASED_MAX; i++)
		if (release_recent(eng, &r->released[i], now) &&
		    r->released[i].host != p->base.host)
			return 1;
	return 0;
}

/* The hosts an unknown inbound SPI may belong to, most likely first:
 * recently released inits (most recent first) and the pending one, whose
 * answer it may be, then live ISAKMP entries with the remote (a rekey
 * follows IKE), then live ESP entries, each most recent first. */
static unsigned guess_hosts(const struct engine *eng, const struct remote *r,
			    uint64_t now, uint32_t *hosts)
{
	unsigned max = eng->cfg.guess_copies, n = 0;
	const struct dlist *l;
	uint64_t after = UINT64_MAX;

	for (;;) {      /* released inits, newest first */
		const struct released_init *best = NULL;

		for (unsigned i = 0; i < ESP_RELEASED_MAX; i++) {
			const struct released_init *x = &r->released[i];

			if (release_recent(eng, x, now) && x->at < after &&
			    (!best || x->at > best->at))
				best = x;
		}
		if (!best)
			break;
		n = host_list_add(hosts, n, max, best->host);
		after = best->at;
	}
	if (n && r->pending)
		n = host_list_add(hosts, n, max, r->pending->base.host);
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

/* Unknown SPI that binds nothing: the remote rekeyed first, or the answer
 * is ambiguous (reason R_ESP_AMBIGUOUS). Send the packet to the likely
 * hosts; wrong ones drop it (bad ICV), the right one answers and its
 * answer starts a normal init. Nothing is recorded. */
static void guess(struct engine *eng, struct remote *r, struct pkt_view *pkt,
		  uint64_t now, enum reason why, struct engine_decision *out)
{
	uint32_t hosts[ENGINE_MAX_GUESS];
	unsigned n = guess_hosts(eng, r, now, hosts);
	struct engine_event ev = {
		.kind = EV_GUESSED, .table = TABLE_ESP, .remote = r->addr,
		.spi_in = pkt->esp.spi, .reason = why,
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
	out->reason = why;
	eng->stats.copies += n - 1;
	ev.host = hosts[0];
	ev.hosts = hosts;
	ev.n_hosts = n;
	engine_emit(eng, &ev);
}

/* A provisional association of r whose in-SPI has been silent since it was
 * bound while its host kept sending: bound, perhaps, to a spoofed SPI.
 * Only the most recently used few entries are looked at (the sending host
 * is among them), so that a flood costs little. */
static struct esp_entry *silent_provisional(const struct remote *r,
					    uint64_t now)
{
	unsigned looked = 0;

	if (!r->n_provisional)
		return NULL;
	for (struct dlist *l = r->esp_mru.next;
	     l != &r->esp_mru && looked < ESP_REASSOC_LOOK; l = l->next) {
		struct esp_entry *e =
			container_of(l, struct esp_entry, in_remote);

		looked++;
		if (e->base.state == ESP_PROVISIONAL &&
		    e->base.collisions == PROV_SENT &&
		    now - e->base.last_seen < ESP_REASSOC_GAP_MS)
			return e;
	}
	return NULL;
}

/* Count an arrival of unknown SPI spi from remote; returns how many times
 * it arrived with gaps under ESP_REASSOC_GAP_MS (a different SPI hashed to
 * the same slot starts over: the table forgets, never confuses). */
static uint32_t spi_arrivals(struct engine *eng, uint32_t remote,
			     uint32_t spi, uint64_t now)
{
	struct spi_seen *s =
		&eng->spi_seen[spi_hash(eng, remote, spi) % SPI_SEEN_SLOTS];

	if (s->remote == remote && s->spi == spi && s->count &&
	    now - s->at < ESP_REASSOC_GAP_MS) {
		if (s->count < UINT32_MAX)
			s->count++;
	} else {
		s->remote = remote;
		s->spi = spi;
		s->count = 1;
	}
	s->at = now;
	return s->count;
}

/* Spoof resistance: an unknown SPI that keeps arriving from r while a
 * provisional association's own in-SPI stays silent and its host keeps
 * sending is that association's real answer: move the association to it.
 * Returns 1 when it did (the packet goes to the host). */
static int reassociate(struct engine *eng, struct remote *r,
		       struct pkt_view *pkt, uint64_t now,
		       struct engine_decision *out)
{
	struct esp_entry *e = silent_provisional(r, now);
	struct engine_event ev;

	if (!e || spi_arrivals(eng, r->addr, pkt->esp.spi, now) <
			  ESP_REASSOC_ARRIVALS)
		return 0;
	unindex_in(eng, e);
	index_in(eng, e, pkt->esp.spi);
	e->base.collisions = 0;         /* provisional again, from here */
	ev = esp_event(e, EV_REASSOCIATED);
	engine_emit(eng, &ev);
	pass_inbound(eng, e, pkt, now, out);
	return 1;
}

/* Inbound ESP other than an established flow's: the entry e found for the
 * in-SPI (or NULL) caught up, else the pending init's association (unless
 * ambiguous), else a re-association, else a guess. */
void esp_inbound_slow(struct engine *eng, struct esp_entry *e,
		      struct pkt_view *pkt, uint64_t now,
		      struct engine_decision *out)
{
	struct remote *r;
	enum reason why = R_PASS;

	if (e && esp_catch_up(eng, e, now)) {
		if (e->base.state == ESP_PROVISIONAL)
			provisional_used(eng, e, PROV_RECEIVED);
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
		if (!answer_ambiguous(eng, r, e, now)) {
			associate(eng, e, pkt->esp.spi);
			pass_inbound(eng, e, pkt, now, out);
			return;
		}
		why = R_ESP_AMBIGUOUS;
	}
	if (reassociate(eng, r, pkt, now, out))
		return;
	guess(eng, r, pkt, now, why, out);
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
	info->holds_slot = e->base.remote->pending == e;
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
	set_state(eng, e, state);
	e->base.collisions = 0;
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
	/* the kernel carried a provisional association's packets: they
	 * count toward its confirmation as the engine's own would */
	if (e->base.state == ESP_PROVISIONAL && use->pkts_out)
		provisional_used(eng, e, PROV_SENT);
	if (e->base.state == ESP_PROVISIONAL && use->pkts_in)
		provisional_used(eng, e, PROV_RECEIVED);
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

	if ((info->state != ESP_ESTABLISHED && info->state != ESP_PROVISIONAL &&
	     !esp_state_given(info->state)) ||
	    !info->remote || !spi_valid(info->spi_in) ||
	    (info->spi_out && !spi_valid(info->spi_out)) ||
	    (!esp_state_given(info->state) && !info->spi_out) ||
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
	set_state(eng, e, info->state);
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
