/*
 * The fast path's use checks, the pure part (no system calls, clock
 * injected): when to ask the kernel whether an offloaded association was
 * used, and what to do with the answer. fastpath.c does the asking.
 *
 * The daemon does not read every element's counter on a timer (a dump of
 * a large set costs the kernel O(N^2): BENCHMARKS.md). Each offloaded
 * association is checked once, shortly before its kernel elements expire
 * (FPC_LEAD_MS ahead, more with many associations so that a whole table
 * expiring at once is still checked in time at the loop's budget):
 *   - used since the last check: the engine is credited (its lifetime runs
 *     again from now) and the elements' kernel timeouts renewed;
 *   - idle: nothing is done; the engine's timer removes the entry on time
 *     and its elements go with it (the kernel's own timeout ends them at
 *     the same moment);
 *   - the engine extended it meanwhile (packets came through the queue):
 *     the kernel timeouts follow;
 *   - the kernel no longer has an element the engine still wants: it is
 *     installed again.
 */
#ifndef IPSEC_MASQD_FPCHECK_H
#define IPSEC_MASQD_FPCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FPC_LEAD_MS 1000u        /* a check this long before the expiry */
#define FPC_LEAD_MIN_MS 20u      /* and never closer than this */

/* A node in the check queue (a binary min-heap on `at`). */
struct fpc_node {
	uint64_t at;             /* when to check, ms */
	size_t idx;              /* position in the heap; FPC_IDLE if none */
};
#define FPC_IDLE ((size_t)-1)

struct fpc_heap {
	struct fpc_node **v;
	size_t n, cap;
};

/* Queues n (or moves it) to be checked at `at`. Returns 0 or -1/ENOMEM. */
int fpc_heap_set(struct fpc_heap *h, struct fpc_node *n, uint64_t at);
/* Takes n out of the queue, if queued. */
void fpc_heap_remove(struct fpc_heap *h, struct fpc_node *n);
/* The earliest node, NULL when empty. */
struct fpc_node *fpc_heap_top(const struct fpc_heap *h);
void fpc_heap_free(struct fpc_heap *h);

/*
 * How long before its kernel expiry an association of lifetime life_ms is
 * checked, with n associations offloaded that take us_per_check each to
 * check: FPC_LEAD_MS plus twice the time to check all n (should they all
 * expire together), at most a quarter of the lifetime, at least
 * FPC_LEAD_MIN_MS (or the whole lifetime, when shorter).
 */
uint64_t fpc_lead_ms(uint64_t life_ms, size_t n, double us_per_check);

/* When to check an association whose kernel elements expire at kexp:
 * the lead before it, or halfway there when that is past. */
uint64_t fpc_check_at(uint64_t now, uint64_t kexp, uint64_t life_ms,
		      size_t n, double us_per_check);

/* What one check found. */
struct fpc_case {
	uint64_t now;
	uint64_t kexp;           /* when its kernel elements expire */
	bool found;              /* the kernel still has all its elements */
	bool used;               /* their counters moved since the last check */
	bool alive;              /* the engine still has the entry (credited) */
	uint64_t expires;        /* the engine's end of life, when alive */
	uint64_t life_ms;        /* the entry's lifetime, when alive */
};

enum fpc_action {
	FPC_DROP,      /* the engine has no such entry: remove the elements */
	FPC_RENEW,     /* kernel timeouts again, to the engine's expiry */
	FPC_REINSTALL, /* the elements again (the kernel lost them) */
	FPC_EXPIRE,    /* idle: leave it to expire on time */
	FPC_LATE,      /* idle as far as we can tell: the kernel had timed
			* the elements out before we asked (counted; then
			* as FPC_EXPIRE, or FPC_DROP when not alive) */
};

/* The decision; *kexp: the new kernel expiry for RENEW and REINSTALL
 * (never past the engine's expiry nor longer than the lifetime). */
enum fpc_action fpc_decide(const struct fpc_case *c, uint64_t *kexp);

#endif
