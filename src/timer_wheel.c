/*
 * Hierarchical timer wheel (see timer_wheel.h). Level L counts time in units
 * of 8^L ms; a node lives in the bucket of unit (expires >> 3L) on the
 * finest level where that unit is less than 64 units ahead of the wheel's
 * own unit, so a bucket comes up no later than its nodes expire (placement
 * rounds down, where Linux rounds up and fires late). When a bucket comes
 * up, due nodes fire and the others go back in, strictly finer: a node
 * moves at most TW_LEVELS times (plus once per wheel range when it expires
 * beyond the range), and nothing cascades wholesale.
 *
 * Invariant between calls, with cur(L) = wheel->now >> 3L: every node at
 * level L sits in the bucket of a unit in (cur(L), cur(L) + 63], except
 * nodes already due when armed, which sit in the level-0 bucket of cur(0)
 * and fire on the next tw_run(). A pending bit is set exactly when its
 * bucket is non-empty.
 */
#include <stdbool.h>

#include "timer_wheel.h"

#define LVL_SHIFT(level) (3 * (level))
#define SLOT_MASK ((uint64_t)TW_BUCKETS - 1)
#define PAST_DUE_LEVEL 0

/* Units of level `level` that have elapsed by time t. */
static inline uint64_t unit_of(uint64_t t, unsigned level)
{
	return t >> LVL_SHIFT(level);
}

/* The bucket slot of a unit: its position on the 64-bucket ring. */
static inline unsigned slot_of(uint64_t unit)
{
	return (unsigned)(unit & SLOT_MASK);
}

/* Rotate a bucket bitmap right so that bit 0 becomes slot `by`. */
static inline uint64_t ror64(uint64_t x, unsigned by)
{
	by &= 63;
	return by ? (x >> by) | (x << (64 - by)) : x;
}

/* Start an empty wheel whose clock reads `now`. Returns nothing. */
void tw_init(struct timer_wheel *wheel, uint64_t now)
{
	*wheel = (struct timer_wheel){ .now = now };
}

/* Push node at the head of a bucket and mark the bucket pending. */
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

/* Flat index (level * 64 + slot) of the bucket head `pprev` points at, or
 * -1 when it points into a chain or the due list instead. A node does not
 * record its bucket, so this is how an unlink finds the bit to clear. The
 * addresses are compared as integers: no relational operators on pointers
 * into different objects. */
static long bucket_index(const struct timer_wheel *wheel,
			 struct tw_node *const *pprev)
{
	uintptr_t first = (uintptr_t)&wheel->bucket[0][0];
	uintptr_t p = (uintptr_t)pprev;
	uintptr_t span = sizeof(wheel->bucket);

	if (p < first || p - first >= span)
		return -1;
	return (long)((p - first) / sizeof(wheel->bucket[0][0]));
}

/* Take node out of whatever list it is in (bucket or due list), clearing
 * the bucket's pending bit when it becomes empty. Leaves node unarmed. */
static void unlink_node(struct timer_wheel *wheel, struct tw_node *node)
{
	long idx;

	*node->pprev = node->next;
	if (node->next) {
		node->next->pprev = node->pprev;
	} else if (!*node->pprev &&
		   (idx = bucket_index(wheel, node->pprev)) >= 0) {
		wheel->pending[idx / TW_BUCKETS] &=
			~(1ULL << (idx % TW_BUCKETS));
	}
	node->next = NULL;
	node->pprev = NULL;
}

/* Put node into the bucket that comes up no later than node->expires, as
 * seen from wheel->now. Past expiries go to the level-0 bucket of the
 * current unit, which the next tw_run() always looks at. */
static void place(struct timer_wheel *wheel, struct tw_node *node)
{
	uint64_t exp = node->expires;

	if (exp <= wheel->now) {
		link_into(wheel, PAST_DUE_LEVEL,
			  slot_of(unit_of(wheel->now, 0)), node);
		return;
	}
	for (unsigned level = 0; level < TW_LEVELS; level++) {
		uint64_t u = unit_of(exp, level);

		if (u - unit_of(wheel->now, level) < TW_BUCKETS) {
			link_into(wheel, level, slot_of(u), node);
			return;
		}
	}
	/* Beyond the wheel: the farthest bucket, put back when it comes up. */
	link_into(wheel, TW_LEVELS - 1,
		  slot_of(unit_of(wheel->now, TW_LEVELS - 1) + TW_BUCKETS - 1),
		  node);
}

/* Arm node for `expires`, moving it if armed (including off the due list
 * of a tw_run() in progress). Returns nothing. */
void tw_arm(struct timer_wheel *wheel, struct tw_node *node, uint64_t expires)
{
	if (node->pprev)
		unlink_node(wheel, node);
	else
		wheel->armed++;
	node->expires = expires;
	place(wheel, node);
}

/* Disarm node wherever it waits; a no-op on an unarmed node. */
void tw_cancel(struct timer_wheel *wheel, struct tw_node *node)
{
	if (!node->pprev)
		return;
	unlink_node(wheel, node);
	wheel->armed--;
}

/* Bits of the buckets that units (from, to] occupy at one level: all of
 * them once the clock has moved 64 units or more. */
static uint64_t slots_between(uint64_t from, uint64_t to)
{
	uint64_t count = to - from;
	unsigned start = slot_of(from + 1);
	uint64_t run;

	if (count >= TW_BUCKETS)
		return ~0ULL;
	if (count == 0)
		return 0;
	run = (1ULL << count) - 1;
	return start ? (run << start) | (run >> (TW_BUCKETS - start)) : run;
}

/* Move every node of one bucket onto the due list. They stay counted as
 * armed there: a callback may cancel or move a node that still waits. */
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

/* Collect the buckets the clock passed going from `old` to wheel->now, and
 * the past-due bucket of `old`. Cost: the set bits, not the time gap. */
static void collect_passed(struct timer_wheel *wheel, uint64_t old,
			   struct tw_node **due)
{
	for (unsigned level = 0; level < TW_LEVELS; level++) {
		uint64_t mask = slots_between(unit_of(old, level),
					      unit_of(wheel->now, level));

		if (level == PAST_DUE_LEVEL)
			mask |= 1ULL << slot_of(unit_of(old, 0));
		mask &= wheel->pending[level];
		while (mask) {
			unsigned slot = (unsigned)__builtin_ctzll(mask);

			mask &= mask - 1;
			collect_bucket(wheel, level, slot, due);
		}
	}
}

/* Put the collected nodes that are not yet due back into the wheel, finer,
 * so that the due list holds only nodes to fire. */
static void replace_not_due(struct timer_wheel *wheel, struct tw_node *due)
{
	for (struct tw_node *node = due, *next; node; node = next) {
		next = node->next;
		if (node->expires > wheel->now) {
			unlink_node(wheel, node);
			place(wheel, node);
		}
	}
}

/* Advance the clock to `now` and fire every node due by then. Callbacks
 * may arm, move or cancel any node, the fired one included; a node they
 * arm already due fires on the next call, so a callback re-arming itself
 * "now" cannot loop. Not re-entrant. Returns how many fired. */
size_t tw_run(struct timer_wheel *wheel, uint64_t now, tw_fire_fn fire,
	      void *ctx)
{
	return tw_run_max(wheel, now, fire, ctx, SIZE_MAX);
}

/* Fires nodes from the head of *list until it is empty or `max` fired.
 * Returns how many fired. */
static size_t fire_list(struct timer_wheel *wheel, struct tw_node **list,
			uint64_t now, tw_fire_fn fire, void *ctx, size_t max)
{
	size_t fired = 0;

	while (*list && fired < max) {
		struct tw_node *node = *list;

		unlink_node(wheel, node);
		wheel->armed--;
		fired++;
		fire(ctx, node, now);
	}
	return fired;
}

/* Puts the due nodes left in list in front of the backlog, which the next
 * run fires first: without a walk when the backlog is empty, else one walk
 * of the list (never of the backlog). */
static void to_backlog(struct timer_wheel *wheel, struct tw_node *list)
{
	struct tw_node *tail = list;

	if (list == NULL)
		return;
	if (wheel->backlog == NULL) {   /* the usual case: no walk */
		wheel->backlog = list;
		list->pprev = &wheel->backlog;
		return;
	}
	while (tail->next)
		tail = tail->next;
	tail->next = wheel->backlog;
	if (wheel->backlog)
		wheel->backlog->pprev = &tail->next;
	wheel->backlog = list;
	list->pprev = &wheel->backlog;
}

size_t tw_run_max(struct timer_wheel *wheel, uint64_t now, tw_fire_fn fire,
		  void *ctx, size_t max)
{
	struct tw_node *due = NULL;
	size_t fired;
	uint64_t old = wheel->now;

	if (now < old)
		now = old;
	wheel->now = now;
	collect_passed(wheel, old, &due);
	replace_not_due(wheel, due);
	/* What an earlier run left over first, then what came due since. */
	fired = fire_list(wheel, &wheel->backlog, now, fire, ctx, max);
	fired += fire_list(wheel, &due, now, fire, ctx, max - fired);
	to_backlog(wheel, due);   /* over budget: the next run's */
	return fired;
}

/* Start time of the first non-empty bucket of one level, UINT64_MAX when
 * the level is empty. Every node there expires at or after it. */
static uint64_t level_next(const struct timer_wheel *wheel, unsigned level)
{
	uint64_t cur = unit_of(wheel->now, level);
	uint64_t ahead;

	if (!wheel->pending[level])
		return UINT64_MAX;
	if (level == PAST_DUE_LEVEL && wheel->bucket[0][slot_of(cur)])
		return wheel->now;
	/* bit i of the rotated map is the bucket of unit cur + 1 + i */
	ahead = 1 + (uint64_t)__builtin_ctzll(ror64(wheel->pending[level],
						    slot_of(cur + 1)));
	return (cur + ahead) << LVL_SHIFT(level);
}

/* When the daemon should next call tw_run(): a lower bound on every armed
 * node's expiry (but not before wheel->now), UINT64_MAX when empty. For a
 * node placed at level L >= 1 it is less than 8^L early, and the node was
 * more than 63 * 8^(L-1) ms away when placed: within 8/63 of the delay
 * (about 1/8), and each wake-up moves the node strictly finer. */
uint64_t tw_next_run(const struct timer_wheel *wheel)
{
	uint64_t best = UINT64_MAX;

	if (wheel->backlog)
		return wheel->now;   /* due already */
	for (unsigned level = 0; level < TW_LEVELS; level++) {
		uint64_t t = level_next(wheel, level);

		if (t < best)
			best = t;
	}
	return best;
}
