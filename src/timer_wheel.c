/*
 * Hierarchical timer wheel (see timer_wheel.h). Level L counts time in units
 * of 8^L ms; a node lives in the bucket of unit (expires >> 3L) on the
 * finest level where that unit is less than 64 units ahead of the wheel's
 * own unit, so a bucket comes up no later than its nodes expire. When it
 * comes up, due nodes fire and the others go back in, finer. A node moves
 * down at most TW_LEVELS times in its life; nothing cascades wholesale.
 */
#include <stdbool.h>

#include "timer_wheel.h"

#define LVL_SHIFT(level) (3 * (level))
#define PAST_DUE_LEVEL 0

static inline uint64_t unit_of(uint64_t t, unsigned level)
{
	return t >> LVL_SHIFT(level);
}

void tw_init(struct timer_wheel *wheel, uint64_t now)
{
	*wheel = (struct timer_wheel){ .now = now };
}

static void link_into(struct timer_wheel *wheel, unsigned level,
		      unsigned slot, struct tw_node *node)
{
	struct tw_node **head = &wheel->bucket[level][slot];

	node->next = *head;
	if (node->next)
		node->next->pprev = &node->next;
	*head = node;
	node->pprev = head;
	wheel->pending[level] |= 1ULL << slot;
}

/* The bucket for node->expires seen from wheel->now. Past expiries go to
 * the current unit's level-0 bucket, which tw_run always looks at. */
static void place(struct timer_wheel *wheel, struct tw_node *node)
{
	uint64_t exp = node->expires;

	if (exp <= wheel->now) {
		link_into(wheel, PAST_DUE_LEVEL,
			  (unsigned)(wheel->now & (TW_BUCKETS - 1)), node);
		return;
	}
	for (unsigned level = 0; level < TW_LEVELS; level++) {
		uint64_t u = unit_of(exp, level);

		if (u - unit_of(wheel->now, level) < TW_BUCKETS) {
			link_into(wheel, level, (unsigned)(u & (TW_BUCKETS - 1)),
				  node);
			return;
		}
	}
	/* Beyond the wheel: the farthest bucket, put back when it comes up. */
	link_into(wheel, TW_LEVELS - 1,
		  (unsigned)((unit_of(wheel->now, TW_LEVELS - 1) + TW_BUCKETS - 1) &
			     (TW_BUCKETS - 1)), node);
}

static void unlink_node(struct tw_node *node)
{
	*node->pprev = node->next;
	if (node->next)
		node->next->pprev = node->pprev;
	node->next = NULL;
	node->pprev = NULL;
}

void tw_arm(struct timer_wheel *wheel, struct tw_node *node, uint64_t expires)
{
	if (node->pprev)
		unlink_node(node);
	else
		wheel->armed++;
	node->expires = expires;
	place(wheel, node);
}

/* The pending bit of a bucket emptied by a cancel is left set and cleared
 * when the bucket is next looked at: a cancel need not know its bucket. */
void tw_cancel(struct timer_wheel *wheel, struct tw_node *node)
{
	if (!node->pprev)
		return;
	unlink_node(node);
	wheel->armed--;
}

/* Bits of the buckets that units (from, to] occupy at one level. */
static uint64_t slots_between(uint64_t from, uint64_t to)
{
	uint64_t count = to - from;
	unsigned start = (unsigned)((from + 1) & (TW_BUCKETS - 1));
	uint64_t run;

	if (count >= TW_BUCKETS)
		return ~0ULL;
	if (count == 0)
		return 0;
	run = (1ULL << count) - 1;
	return start ? (run << start) | (run >> (TW_BUCKETS - start)) : run;
}

/* Move every node of one bucket onto the due list (still counted armed:
 * a callback may cancel a node that waits there). */
static void collect_bucket(struct timer_wheel *wheel, unsigned level,
			   unsigned slot, struct tw_node **due)
{
	struct tw_node *node = wheel->bucket[level][slot];

	wheel->bucket[level][slot] = NULL;
	wheel->pending[level] &= ~(1ULL << slot);
	while (node) {
		struct tw_node *next = node->next;

		node->next = *due;
		if (node->next)
			node->next->pprev = &node->next;
		*due = node;
		node->pprev = due;
		node = next;
	}
}

/* Collect the buckets the clock passed going from `old` to wheel->now. */
static void collect_passed(struct timer_wheel *wheel, uint64_t old,
			   struct tw_node **due)
{
	for (unsigned level = 0; level < TW_LEVELS; level++) {
		uint64_t mask = slots_between(unit_of(old, level),
					      unit_of(wheel->now, level));

		if (level == PAST_DUE_LEVEL)
			mask |= 1ULL << (old & (TW_BUCKETS - 1));
		mask &= wheel->pending[level];
		while (mask) {
			unsigned slot = (unsigned)__builtin_ctzll(mask);

			mask &= mask - 1;
			collect_bucket(wheel, level, slot, due);
		}
	}
}

size_t tw_run(struct timer_wheel *wheel, uint64_t now, tw_fire_fn fire,
	      void *ctx)
{
	struct tw_node *due = NULL;
	size_t fired = 0;
	uint64_t old = wheel->now;

	if (now < old)
		now = old;
	wheel->now = now;
	collect_passed(wheel, old, &due);
	/* Re-place the not-yet-due first, so that the due list holds only
	 * nodes to fire; callbacks may then touch anything. */
	for (struct tw_node *node = due, *next; node; node = next) {
		next = node->next;
		if (node->expires > now) {
			unlink_node(node);
			place(wheel, node);
		}
	}
	while (due) {
		struct tw_node *node = due;

		unlink_node(node);
		wheel->armed--;
		fired++;
		fire(ctx, node, now);
	}
	return fired;
}

/* Start time of the first non-empty bucket at one level, UINT64_MAX if the
 * level is empty. Units ahead of the clock only, but for the past-due
 * bucket at level 0. */
static uint64_t level_next(const struct timer_wheel *wheel, unsigned level)
{
	uint64_t cur = unit_of(wheel->now, level);
	uint64_t best = UINT64_MAX;
	uint64_t mask = wheel->pending[level];

	while (mask) {
		unsigned slot = (unsigned)__builtin_ctzll(mask);
		uint64_t ahead = (slot - cur) & (TW_BUCKETS - 1);
		uint64_t start;

		mask &= mask - 1;
		if (!wheel->bucket[level][slot])
			continue;   /* a stale bit left by tw_cancel */
		if (ahead == 0 && level != PAST_DUE_LEVEL)
			ahead = TW_BUCKETS;
		start = (cur + ahead) << LVL_SHIFT(level);
		if (ahead == 0)
			start = wheel->now;
		if (start < best)
			best = start;
	}
	return best;
}

uint64_t tw_next_run(const struct timer_wheel *wheel)
{
	uint64_t best = UINT64_MAX;

	if (!wheel->armed)
		return UINT64_MAX;
	for (unsigned level = 0; level < TW_LEVELS; level++) {
		uint64_t t = level_next(wheel, level);

		if (t < best)
			best = t;
	}
	return best;
}
