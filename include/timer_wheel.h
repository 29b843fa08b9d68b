/*
 * Hierarchical timer wheel in the manner of Linux kernel/time/timer.c:
 * TW_LEVELS levels of 64 buckets, each level 8 times coarser than the one
 * below, a bitmap of non-empty buckets per level, no cascading. Time is in
 * milliseconds of a caller-supplied monotonic clock: the wheel never reads a
 * clock itself.
 *
 * A node is placed in the bucket that comes up no later than its expiry; when
 * the bucket comes up and the expiry is still in the future the node is put
 * back, finer, so callbacks fire exactly when now >= expiry and never early.
 * Most timeouts are refreshed before they fire; callers refresh by keeping
 * their own "last seen" and re-arming from the callback, never by touching
 * the wheel per packet.
 */
#ifndef IPSEC_MASQD_TIMER_WHEEL_H
#define IPSEC_MASQD_TIMER_WHEEL_H

#include <stddef.h>
#include <stdint.h>

#define TW_LEVELS 8
#define TW_BUCKETS 64

/* Embedded in the owner; zero-initialised means "not armed". */
struct tw_node {
	struct tw_node *next;
	struct tw_node **pprev;   /* NULL when not armed */
	uint64_t expires;         /* ms */
};

struct timer_wheel {
	uint64_t now;                             /* ms, last tw_run() time */
	uint64_t pending[TW_LEVELS];              /* bit i: bucket i non-empty */
	struct tw_node *bucket[TW_LEVELS][TW_BUCKETS];
	size_t armed;                             /* nodes in the wheel */
	struct tw_node *backlog;   /* due, not fired yet: over tw_run_max's budget */
};

/* The callback owns the node again when called (it is unlinked); it may
 * re-arm it, free its owner, or arm and cancel other nodes. */
typedef void (*tw_fire_fn)(void *ctx, struct tw_node *node, uint64_t now);

void tw_init(struct timer_wheel *wheel, uint64_t now);

/* Arm (or move) node to fire at `expires`; an expiry in the past fires on
 * the next tw_run(). */
void tw_arm(struct timer_wheel *wheel, struct tw_node *node, uint64_t expires);

/* Disarm node; harmless when not armed. */
void tw_cancel(struct timer_wheel *wheel, struct tw_node *node);

static inline int tw_armed(const struct tw_node *node)
{
	return node->pprev != NULL;
}

/* Advance the wheel to `now` (monotonic, never backwards) and call fire()
 * for every node with expires <= now. Returns how many fired. */
size_t tw_run(struct timer_wheel *wheel, uint64_t now, tw_fire_fn fire,
	      void *ctx);

/* tw_run() that fires at most max nodes: the others due stay armed and
 * due, for the next call (tw_next_run() says now). So that a mass expiry
 * is spread over several turns of the daemon's loop. */
size_t tw_run_max(struct timer_wheel *wheel, uint64_t now, tw_fire_fn fire,
		  void *ctx, size_t max);

/* The earliest time the next tw_run() can have something to do: a lower
 * bound on the earliest expiry (a bucket boundary on coarse levels).
 * UINT64_MAX when the wheel is empty. For the daemon's timerfd. */
uint64_t tw_next_run(const struct timer_wheel *wheel);

#endif
