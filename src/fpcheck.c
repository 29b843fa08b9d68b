/*
 * The fast path's use checks (fpcheck.h): the check queue and the
 * decisions, without system calls.
 */
#include <errno.h>
#include <stdlib.h>

#include "fpcheck.h"

static void put(struct fpc_heap *h, size_t i, struct fpc_node *n)
{
	h->v[i] = n;
	n->idx = i;
}

static void sift_up(struct fpc_heap *h, size_t i)
{
	struct fpc_node *n = h->v[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (h->v[p]->at <= n->at)
			break;
		put(h, i, h->v[p]);
		i = p;
	}
	put(h, i, n);
}

static void sift_down(struct fpc_heap *h, size_t i)
{
	struct fpc_node *n = h->v[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1]->at < h->v[c]->at)
			c++;
		if (n->at <= h->v[c]->at)
			break;
		put(h, i, h->v[c]);
		i = c;
	}
	put(h, i, n);
}

int fpc_heap_set(struct fpc_heap *h, struct fpc_node *n, uint64_t at)
{
	if (n->idx != FPC_IDLE) {
		uint64_t old = n->at;

		n->at = at;
		if (at < old)
			sift_up(h, n->idx);
		else
			sift_down(h, n->idx);
		return 0;
	}
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 256;
		struct fpc_node **v = realloc(h->v, cap * sizeof(*v));

		if (!v) {
			errno = ENOMEM;
			return -1;
		}
		h->v = v;
		h->cap = cap;
	}
	n->at = at;
	put(h, h->n++, n);
	sift_up(h, n->idx);
	return 0;
}

void fpc_heap_remove(struct fpc_heap *h, struct fpc_node *n)
{
	size_t i = n->idx;
	struct fpc_node *last;

	if (i == FPC_IDLE)
		return;
	n->idx = FPC_IDLE;
	last = h->v[--h->n];
	if (last == n)
		return;
	put(h, i, last);
	if (i > 0 && h->v[(i - 1) / 2]->at > last->at)
		sift_up(h, i);
	else
		sift_down(h, i);
}

struct fpc_node *fpc_heap_top(const struct fpc_heap *h)
{
	return h->n ? h->v[0] : NULL;
}

void fpc_heap_free(struct fpc_heap *h)
{
	free(h->v);
	*h = (struct fpc_heap){ 0 };
}

uint64_t fpc_lead_ms(uint64_t life_ms, size_t n, double us_per_check)
{
	/* all n due at once are checked at the loop's pace; twice that for
	 * a loop busy with packets too */
	uint64_t lead = FPC_LEAD_MS + (uint64_t)(2.0 * (double)n *
						 us_per_check / 1000.0);

	if (lead > life_ms / 4)
		lead = life_ms / 4;
	if (lead < FPC_LEAD_MIN_MS)
		lead = FPC_LEAD_MIN_MS < life_ms ? FPC_LEAD_MIN_MS : life_ms;
	return lead;
}

uint64_t fpc_check_at(uint64_t now, uint64_t kexp, uint64_t life_ms,
		      size_t n, double us_per_check)
{
	uint64_t lead = fpc_lead_ms(life_ms, n, us_per_check);

	if (kexp >= now + lead)
		return kexp - lead;
	return kexp > now ? now + (kexp - now) / 2 : now;
}

/* The kernel expiry that follows the engine's: its end of life, but no
 * more than one lifetime from now. */
static uint64_t follow(const struct fpc_case *c)
{
	uint64_t k = c->expires;

	if (k > c->now + c->life_ms)
		k = c->now + c->life_ms;
	return k;
}

enum fpc_action fpc_decide(const struct fpc_case *c, uint64_t *kexp)
{
	*kexp = c->kexp;
	/* the kernel timed them out as agreed and the engine did not extend
	 * the entry: asked too late to know of a last use */
	if (!c->found && c->now >= c->kexp &&
	    (!c->alive || c->expires <= c->kexp))
		return FPC_LATE;
	if (!c->alive || c->expires <= c->now)
		return FPC_DROP;
	/* the kernel follows the engine's expiry when it was used (the
	 * caller credited the engine, whose expiry moved on), extended by
	 * packets through the queue, or lost from the kernel -- unless too
	 * little is left to be worth an element (the queue serves it) */
	if (!c->found || c->used || c->expires > c->kexp) {
		if (follow(c) < c->now + FPC_LEAD_MIN_MS)
			return FPC_EXPIRE;
		*kexp = follow(c);
		return c->found ? FPC_RENEW : FPC_REINSTALL;
	}
	return FPC_EXPIRE;
}
