/*
 * ISAKMP / IKE (UDP/500) rules (design.md, "Association rules"): outbound keeps source
 * port 500 and gets the external address; replies are routed by (remote,
 * initiator cookie), plus the responder cookie once seen, which separates
 * two hosts whose initiator cookies collide. IKEv2 puts its IKE SA SPIs
 * where ISAKMP has its cookies, so one rule serves both. ISAKMP is never
 * serialized.
 *
 * An exchange the remote starts (an unknown initiator cookie) has no entry
 * to follow: it goes to the hosts likely to own it, within a per-remote
 * budget, and the entry the host's answer makes is charged to a small
 * (host, remote) allowance instead of the host's max_per_host, so that a
 * spoofed flood of new exchanges cannot lock the host out of its own. Nor
 * can it keep the real remote's exchanges out of the allowance: an answer
 * the remote never followed up with the host's responder cookie (which a
 * blind spoofer never sees) gives way, once ISAKMP_ANSWER_MIN_AGE_MS old,
 * to a new answer; one it followed up is kept.
 */
#include <errno.h>
#include <string.h>

#include "engine_int.h"

#define SALT_COOKIE 5

static uint32_t cookie_hash(const struct engine *eng, uint32_t remote,
			    uint64_t cookie_i)
{
	return htab_hash(eng->seed, (uint64_t)remote << 8 | SALT_COOKIE,
			 cookie_i);
}

static struct engine_event isakmp_event(const struct isakmp_entry *e,
					enum engine_event_kind kind)
{
	struct engine_event ev = {
		.kind = kind,
		.table = TABLE_ISAKMP,
		.remote = e->base.remote->addr,
		.host = e->base.host,
		.cookie_i = e->cookie_i,
		.cookie_r = e->cookie_r,
	};

	return ev;
}

/* Unlink and free e, logging it as `why` (with `reason`). */
static void remove_entry(struct engine *eng, struct isakmp_entry *e,
			 enum engine_event_kind why, enum reason reason)
{
	struct engine_event ev = isakmp_event(e, why);

	ev.reason = reason;
	htab_remove(&eng->isakmp, &e->by_cookie);
	dlist_del(&e->in_remote);
	eng->stats.isakmp_entries--;
	engine_emit(eng, &ev);
	entry_free(eng, &e->base);
}

void isakmp_remove(struct engine *eng, struct isakmp_entry *e,
		   enum engine_event_kind why)
{
	remove_entry(eng, e, why, R_PASS);
}

/* Before host's answer to remote makes an entry: when its answers to
 * remote hold the whole allowance, the oldest one the remote never
 * followed up and that is at least ISAKMP_ANSWER_MIN_AGE_MS old goes
 * (logged as expired, isakmp_answer_limit). Younger ones stay, so that
 * the real remote's next message, a round trip away, finds its entry. */
static void answer_make_room(struct engine *eng, uint32_t remote,
			     uint32_t host, uint64_t now)
{
	struct remote *r = remote_find(eng, remote);
	struct isakmp_entry *victim = NULL;
	struct dlist *l;

	if (!r || !answer_allowance_full(eng, remote, host))
		return;
	for (l = r->isakmp_mru.next; l != &r->isakmp_mru; l = l->next) {
		struct isakmp_entry *e =
			container_of(l, struct isakmp_entry, in_remote);

		if (e->base.host != host || e->base.state != ISAKMP_ANSWER ||
		    now - e->created < ISAKMP_ANSWER_MIN_AGE_MS ||
		    now < e->created)
			continue;
		if (!victim || e->created < victim->created)
			victim = e;
	}
	if (victim)
		remove_entry(eng, victim, EV_EXPIRED, R_ISAKMP_ANSWER_LIMIT);
}

int isakmp_catch_up(struct engine *eng, struct isakmp_entry *e, uint64_t now)
{
	if (now < e->base.last_seen + entry_lifetime(eng, &e->base))
		return 1;
	isakmp_remove(eng, e, EV_EXPIRED);
	return 0;
}

struct isakmp_entry *isakmp_create(struct engine *eng, uint32_t remote,
				   uint32_t host, uint64_t cookie_i,
				   uint64_t cookie_r, int answer, uint64_t now,
				   enum reason *why)
{
	struct entry *base;
	struct isakmp_entry *e;

	if (answer)
		answer_make_room(eng, remote, host, now);
	base = answer ? entry_new_answer(eng, remote, host, now, why)
		      : entry_new(eng, ENTRY_ISAKMP, remote, host, now, why);
	if (!base)
		return NULL;
	e = container_of(base, struct isakmp_entry, base);
	e->created = now;
	e->cookie_i = cookie_i;
	e->cookie_r = cookie_r;
	htab_insert(&eng->isakmp, &e->by_cookie,
		    cookie_hash(eng, remote, cookie_i));
	dlist_push_front(&base->remote->isakmp_mru, &e->in_remote);
	eng->stats.isakmp_entries++;
	entry_arm(eng, &e->base, now + entry_lifetime(eng, &e->base));
	return e;
}

/* What the live entries of (remote, cookie_i) say about one packet. */
struct cookie_match {
	struct isakmp_entry *of_host;     /* outbound: the sender's own */
	struct isakmp_entry *exact;       /* responder cookie matches */
	struct isakmp_entry *unanswered;  /* responder cookie not seen yet */
	struct isakmp_entry *recent;      /* most recently used */
	struct isakmp_entry *conflict;    /* outbound: another host's, clashing */
};

/* Walk the chain of (remote, cookie_i), expiring dead entries on the way,
 * and classify the live ones for a packet from/to `host` (0 inbound) with
 * responder cookie cookie_r. Outbound, another host's entry conflicts when
 * the packet would be routed back ambiguously: a new exchange (no responder
 * cookie) while that host's is unanswered, or the very same cookie pair. */
static void match_cookies(struct engine *eng, uint32_t remote, uint32_t host,
			  uint64_t cookie_i, uint64_t cookie_r, uint64_t now,
			  struct cookie_match *m)
{
	uint32_t h = cookie_hash(eng, remote, cookie_i);
	struct hnode *n, *next;

	for (n = htab_chain(&eng->isakmp, h); n; n = next) {
		struct isakmp_entry *e =
			container_of(n, struct isakmp_entry, by_cookie);

		next = n->next;
		if (n->hash != h || e->cookie_i != cookie_i ||
		    e->base.remote->addr != remote ||
		    !isakmp_catch_up(eng, e, now))
			continue;
		if (host && e->base.host == host) {
			if (!e->cookie_r || !cookie_r || e->cookie_r == cookie_r)
				m->of_host = e;
		} else if (host && (cookie_r ? e->cookie_r == cookie_r
					     : !e->cookie_r)) {
			m->conflict = e;
		}
		if (cookie_r && e->cookie_r == cookie_r)
			m->exact = e;
		if (!e->cookie_r)
			m->unanswered = e;
		if (!m->recent || e->base.last_seen > m->recent->base.last_seen)
			m->recent = e;
	}
}

static void pass(struct engine *eng, struct isakmp_entry *e,
		 uint64_t cookie_r, uint64_t now, struct engine_decision *out)
{
	if (!e->cookie_r && cookie_r)
		e->cookie_r = cookie_r;
	e->base.last_seen = now;
	dlist_move_front(&e->base.remote->isakmp_mru, &e->in_remote);
	(void)eng;
	out->verdict = VERDICT_ACCEPT_MODIFIED;
	out->reason = R_PASS;
}

static void drop_event(struct engine *eng, enum engine_event_kind kind,
		       const struct pkt_view *pkt, enum reason why,
		       const uint32_t *holder, struct engine_decision *out)
{
	struct engine_event ev = {
		.kind = kind, .table = TABLE_ISAKMP, .reason = why,
		.remote = pkt->daddr, .host = pkt->saddr,
		.cookie_i = pkt->isakmp.cookie_i,
		.cookie_r = pkt->isakmp.cookie_r,
		.hosts = holder, .n_hosts = holder ? 1 : 0,
	};

	out->verdict = VERDICT_DROP;
	out->reason = why;
	engine_emit(eng, &ev);
}

void isakmp_outbound(struct engine *eng, struct pkt_view *pkt, uint64_t now,
		     struct engine_decision *out)
{
	const struct isakmp_hdr_view *ike = &pkt->isakmp;
	struct cookie_match m = { 0 };
	struct isakmp_entry *e;
	enum reason why;

	match_cookies(eng, pkt->daddr, pkt->saddr, ike->cookie_i,
		      ike->cookie_r, now, &m);
	e = m.of_host;
	/* a new entry, or the host's unanswered one learning a responder
	 * cookie, must not take a pair another host holds */
	if (m.conflict && (!e || (!e->cookie_r && ike->cookie_r))) {
		uint32_t holder = m.conflict->base.host;

		drop_event(eng, EV_COLLIDED, pkt, R_ISAKMP_COLLISION, &holder,
			   out);
		return;
	}
	if (!e) {
		/* a first packet that already carries a responder cookie is
		 * the host answering an exchange the remote started */
		e = isakmp_create(eng, pkt->daddr, pkt->saddr, ike->cookie_i,
				  ike->cookie_r, ike->cookie_r != 0, now, &why);
		if (!e) {
			drop_event(eng, EV_REFUSED, pkt, why, NULL, out);
			return;
		}
		struct engine_event ev = isakmp_event(e, EV_CREATED);

		engine_emit(eng, &ev);
	}
	pass(eng, e, ike->cookie_r, now, out);
	pkt_set_saddr(pkt, eng->cfg.external_addr);
}

static int entry_is_live(const struct engine *eng, const struct entry *e,
		       uint64_t now)
{
	return now < e->last_seen + entry_lifetime(eng, e);
}

/* The hosts an exchange the remote started may be for, most likely first:
 * those holding ESP with the remote (the IKE SA that keys it is theirs),
 * then those that talked ISAKMP with it, each most recent first. Reads the
 * tables only. */
static unsigned fallback_hosts(const struct engine *eng,
			       const struct remote *r, uint64_t now,
			       uint32_t *hosts)
{
	unsigned max = eng->cfg.isakmp_fallback_copies, n = 0;
	const struct dlist *l;

	for (l = r->esp_mru.next; l != &r->esp_mru && n < max; l = l->next) {
		const struct esp_entry *e =
			container_of(l, struct esp_entry, in_remote);

		if (entry_is_live(eng, &e->base, now))
			n = host_list_add(hosts, n, max, e->base.host);
	}
	for (l = r->isakmp_mru.next; l != &r->isakmp_mru && n < max;
	     l = l->next) {
		const struct isakmp_entry *e =
			container_of(l, struct isakmp_entry, in_remote);

		if (entry_is_live(eng, &e->base, now))
			n = host_list_add(hosts, n, max, e->base.host);
	}
	return n;
}

/* An exchange the table does not know (the remote starts one with a LAN
 * host): to the likely hosts, as many as the remote's budget allows now,
 * the first in place and the rest as copies. No entry is made: a host's
 * answer makes one, charged to its answer allowance. Nobody likely: the
 * router's own. */
static void fallback(struct engine *eng, struct pkt_view *pkt, uint64_t now,
		     struct engine_decision *out)
{
	struct remote *r = remote_find(eng, pkt->saddr);
	uint32_t hosts[ENGINE_MAX_GUESS];
	unsigned n = r ? fallback_hosts(eng, r, now, hosts) : 0;
	struct engine_event ev = {
		.kind = EV_GUESSED, .table = TABLE_ISAKMP,
		.remote = pkt->saddr,
		.cookie_i = pkt->isakmp.cookie_i,
		.cookie_r = pkt->isakmp.cookie_r,
	};

	if (!n) {
		out->verdict = VERDICT_ACCEPT;
		out->reason = R_NOT_OURS;
		return;
	}
	n = token_take(&r->ike_tokens, &r->ike_refilled,
		       eng->cfg.isakmp_fallback_rate,
		       eng->cfg.isakmp_fallback_burst, now, n);
	if (!n) {
		ev.kind = EV_DROPPED;
		ev.reason = R_ISAKMP_RATELIMITED;
		out->verdict = VERDICT_DROP;
		out->reason = R_ISAKMP_RATELIMITED;
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

void isakmp_inbound(struct engine *eng, struct pkt_view *pkt, uint64_t now,
		    struct engine_decision *out)
{
	const struct isakmp_hdr_view *ike = &pkt->isakmp;
	struct cookie_match m = { 0 };
	struct isakmp_entry *e;

	match_cookies(eng, pkt->saddr, 0, ike->cookie_i, ike->cookie_r, now,
		      &m);
	/* a reply without a responder cookie (an IKEv2 COOKIE or INVALID_KE
	 * notify, an IKEv1 retransmission) answers the exchange that has not
	 * been answered yet, not whichever host spoke last */
	if (ike->cookie_r)
		e = m.exact ? m.exact : m.unanswered;
	else
		e = m.unanswered ? m.unanswered : m.recent;
	if (e) {
		/* the remote has the host's answer: the exchange is real */
		if (e == m.exact && e->base.state == ISAKMP_ANSWER)
			e->base.state = ISAKMP_ANSWER_CONFIRMED;
		pass(eng, e, ike->cookie_r, now, out);
		pkt_set_daddr(pkt, e->base.host);
		return;
	}
	fallback(eng, pkt, now, out);
}

int engine_restore_isakmp(struct engine *eng,
			  const struct engine_isakmp_info *info)
{
	struct cookie_match m = { 0 };
	struct isakmp_entry *e;
	enum reason why;
	uint64_t life;

	if (!info->remote || !info->cookie_i ||
	    !engine_is_internal(eng, info->host) ||
	    info->expires <= info->last_seen) {
		errno = EINVAL;
		return -1;
	}
	match_cookies(eng, info->remote, info->host, info->cookie_i,
		      info->cookie_r, info->last_seen, &m);
	if (m.of_host || m.conflict) {
		errno = EEXIST;
		return -1;
	}
	e = isakmp_create(eng, info->remote, info->host, info->cookie_i,
			  info->cookie_r, info->answer, info->last_seen, &why);
	if (!e) {
		errno = ENOSPC;
		return -1;
	}
	life = info->expires - info->last_seen;
	e->life_ms = life == eng->cfg.isakmp_lifetime_ms ? 0 : life_field(life);
	entry_arm(eng, &e->base,
		  e->base.last_seen + entry_lifetime(eng, &e->base));
	return 0;
}
