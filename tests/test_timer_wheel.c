/*
 * The timer wheel against a naive model: every armed node fires exactly
 * once, never before its expiry, and in the first tw_run() at or after it,
 * whatever the mix of arms, re-arms, cancels (from callbacks too) and clock
 * jumps; tw_next_run() is a close lower bound; the bitmaps stay exact.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timer_wheel.h"

#define N_NODES 4000
#define WHEEL_RANGE ((uint64_t)TW_BUCKETS << (3 * (TW_LEVELS - 1)))
#define HOUR (3600ULL * 1000)
#define DAY (24 * HOUR)

/* Check's ck_assert writes to a pipe even when it passes; the hot loops
 * below assert millions of times, so they only call Check on failure. */
#define EXPECT_MSG(expr, ...) \
	do { \
		if (!(expr)) \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)
#define EXPECT(expr) EXPECT_MSG(expr, "%s:%d: %s", __FILE__, __LINE__, #expr)

struct mnode {
	struct tw_node tw;
	int armed;              /* the model's view */
	uint64_t expires;
	unsigned fired;
	unsigned armed_in_run;  /* run number if a callback armed it */
};

struct model {
	struct timer_wheel wheel;
	struct mnode nodes[N_NODES];
	uint64_t rng;
	unsigned run;           /* number of the tw_run() in progress */
	int in_run;
	uint64_t run_now;
	int active;             /* callbacks arm and cancel at random */
	size_t arms, cancels;   /* unarmed -> armed, armed -> cancelled */
	size_t fired;
};

/* xorshift64: the tests' reproducible randomness. */
static uint64_t rnd(struct model *m)
{
	m->rng ^= m->rng << 13;
	m->rng ^= m->rng >> 7;
	m->rng ^= m->rng << 17;
	return m->rng;
}

/* A fresh model with its wheel at `now`; free() it. */
static struct model *model_new(uint64_t now, uint64_t seed)
{
	struct model *m = calloc(1, sizeof(*m));

	ck_assert_ptr_nonnull(m);
	m->rng = seed | 1;
	tw_init(&m->wheel, now);
	return m;
}

static struct mnode *of(struct tw_node *n)
{
	return (struct mnode *)(void *)((char *)n - offsetof(struct mnode, tw));
}

/* Arm a node in both the wheel and the model. */
static void model_arm(struct model *m, struct mnode *n, uint64_t expires)
{
	if (!n->armed)
		m->arms++;
	n->armed = 1;
	n->expires = expires;
	n->armed_in_run = m->in_run ? m->run : 0;
	tw_arm(&m->wheel, &n->tw, expires);
}

/* Cancel a node in both the wheel and the model. */
static void model_cancel(struct model *m, struct mnode *n)
{
	if (n->armed)
		m->cancels++;
	n->armed = 0;
	tw_cancel(&m->wheel, &n->tw);
}

/* Expiries around now: due, at level boundaries, far, beyond the range. */
static uint64_t random_expiry(struct model *m, uint64_t now)
{
	uint64_t edge = 64ULL << (3 * (rnd(m) % TW_LEVELS));

	switch (rnd(m) % 8) {
	case 0:
		return now + rnd(m) % 64;
	case 1:
		return now + rnd(m) % 100000;
	case 2:
		return now + rnd(m) % (4 * HOUR);
	case 3:
		return now + rnd(m) % (400 * DAY);
	case 4:
		return now + edge - 1 + rnd(m) % 3;
	case 5:
		return now;
	case 6:
		return now - rnd(m) % (now < 100 ? now + 1 : 100);
	default:
		return now + WHEEL_RANGE - 2 + rnd(m) % 4;
	}
}

static uint64_t random_step(struct model *m)
{
	switch (rnd(m) % 6) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return rnd(m) % 64;
	case 3:
		return rnd(m) % 60000;
	case 4:
		return rnd(m) % (6 * HOUR);
	default:
		return rnd(m) % (3 * DAY);
	}
}

/* The fire callback: checks the node against the model, then (when the
 * model is active) re-arms it, cancels or arms others. */
static void model_fire(void *ctx, struct tw_node *tw, uint64_t now)
{
	struct model *m = ctx;
	struct mnode *n = of(tw);

	EXPECT_MSG(n->armed, "node %td fired while not armed", n - m->nodes);
	EXPECT((now) == (m->run_now));
	EXPECT_MSG(now >= n->expires, "node %td fired early: %llu < %llu",
		      n - m->nodes, (unsigned long long)now,
		      (unsigned long long)n->expires);
	EXPECT_MSG(n->armed_in_run != m->run,
		      "node %td armed by a callback fired in the same run",
		      n - m->nodes);
	EXPECT(!tw_armed(tw));
	n->armed = 0;
	n->fired++;
	m->fired++;
	if (!m->active)
		return;
	if (rnd(m) % 3 == 0)
		model_arm(m, n, random_expiry(m, now));
	if (rnd(m) % 5 == 0)
		model_cancel(m, &m->nodes[rnd(m) % N_NODES]);
	if (rnd(m) % 5 == 0) {
		struct mnode *other = &m->nodes[rnd(m) % N_NODES];

		model_arm(m, other, random_expiry(m, now));
	}
}

/* tw_run through the model's bookkeeping. Returns what tw_run returns. */
static size_t model_run(struct model *m, uint64_t now)
{
	size_t before = m->fired, ret;

	m->run++;
	m->in_run = 1;
	m->run_now = now;
	ret = tw_run(&m->wheel, now, model_fire, m);
	m->in_run = 0;
	EXPECT((ret) == (m->fired - before));
	return ret;
}

/* White-box: a pending bit is set exactly when its bucket is non-empty,
 * every chain is well linked, and the chains hold `armed` nodes. */
static void assert_wheel_consistent(const struct timer_wheel *w)
{
	size_t count = 0;

	for (unsigned l = 0; l < TW_LEVELS; l++) {
		for (unsigned s = 0; s < TW_BUCKETS; s++) {
			struct tw_node *const *pp = &w->bucket[l][s];

			EXPECT((!!(w->pending[l] >> s & 1)) == (!!*pp));
			for (; *pp; pp = &(*pp)->next, count++)
				EXPECT(((*pp)->pprev) == (pp));
		}
	}
	for (struct tw_node *const *pp = &w->backlog; *pp;
	     pp = &(*pp)->next, count++)
		EXPECT(((*pp)->pprev) == (pp));
	EXPECT((count) == (w->armed));
}

/* After a run at `now`, no armed node may be overdue, except one a
 * callback of that run armed (it fires on the next run). */
static void assert_nothing_overdue(struct model *m, uint64_t now)
{
	size_t armed = 0;

	for (size_t i = 0; i < N_NODES; i++) {
		const struct mnode *n = &m->nodes[i];

		EXPECT((n->armed) == (tw_armed(&n->tw)));
		if (!n->armed)
			continue;
		armed++;
		EXPECT_MSG(n->expires > now || n->armed_in_run == m->run,
			      "node %zu due at %llu not fired by run at %llu",
			      i, (unsigned long long)n->expires,
			      (unsigned long long)now);
	}
	EXPECT((m->wheel.armed) == (armed));
	assert_wheel_consistent(&m->wheel);
}

/* tw_next_run() is a lower bound on every expiry (not before the clock),
 * UINT64_MAX exactly when empty. Returns it. */
static uint64_t assert_next_run_bound(struct model *m)
{
	uint64_t next = tw_next_run(&m->wheel), first = UINT64_MAX;

	for (size_t i = 0; i < N_NODES; i++)
		if (m->nodes[i].armed && m->nodes[i].expires < first)
			first = m->nodes[i].expires;
	if (first == UINT64_MAX) {
		EXPECT((next) == (UINT64_MAX));
		return next;
	}
	EXPECT((next) >= (m->wheel.now));
	EXPECT((next) <= (first > m->wheel.now ? first : m->wheel.now));
	return next;
}

static void random_ops(struct model *m, uint64_t now)
{
	unsigned ops = (unsigned)(rnd(m) % 100);

	for (unsigned k = 0; k < ops; k++) {
		struct mnode *n = &m->nodes[rnd(m) % N_NODES];

		if (rnd(m) % 4 == 0)
			model_cancel(m, n);
		else
			model_arm(m, n, random_expiry(m, now));
	}
}

/* _i: bit 0 callbacks active, bit 1 a clock start far from zero. */
START_TEST(matches_the_naive_model)
{
	uint64_t now = (_i & 2) ? (1ULL << 41) + 12345 : 1000;
	struct model *m = model_new(now, 0x2545f4914f6cdd1dULL + (uint64_t)_i);
	size_t in_wheel;

	m->active = _i & 1;
	for (unsigned round = 0; round < 3000; round++) {
		uint64_t next;

		random_ops(m, now);
		next = assert_next_run_bound(m);
		now += random_step(m);
		/* a run before tw_next_run() has nothing to fire */
		if (next != UINT64_MAX && next > m->wheel.now && rnd(m) % 2) {
			uint64_t early = next - 1 < now ? next - 1 : now;

			early -= rnd(m) % (early - m->wheel.now + 1);
			ck_assert_uint_eq(model_run(m, early), 0);
			assert_nothing_overdue(m, early);
		}
		model_run(m, now);
		assert_nothing_overdue(m, now);
	}
	/* drain: every arm not cancelled fired exactly once */
	m->active = 0;
	in_wheel = m->wheel.armed;
	ck_assert_uint_eq(model_run(m, now + 1000 * DAY), in_wheel);
	assert_nothing_overdue(m, now + 1000 * DAY);
	ck_assert_uint_eq(m->wheel.armed, 0);
	ck_assert_uint_eq(m->fired, m->arms - m->cancels);
	ck_assert_uint_eq(tw_next_run(&m->wheel), UINT64_MAX);
	free(m);
}
END_TEST

static const uint64_t boundary_delays[] = {
	1, 2, 7, 8, 63, 64, 65, 511, 512, 513, 4095, 4096, 4097, 32768,
	100000, 262143, 262144, 1800000, 7200000, WHEEL_RANGE - 1, WHEEL_RANGE,
	WHEEL_RANGE + 1, 3 * WHEEL_RANGE + 17, 400 * DAY,
};

/* Step towards the expiry in odd strides: nothing before, then exactly at
 * expires - 1 nothing and at expires one fire. _i picks the start time. */
START_TEST(fires_at_expiry_not_a_millisecond_before)
{
	static const uint64_t starts[] = { 0, 5000, 5003, 262143,
					   (1ULL << 40) + 77 };
	const size_t nd = sizeof(boundary_delays) / sizeof(boundary_delays[0]);

	for (size_t d = 0; d < nd; d++) {
		uint64_t t0 = starts[_i], exp = t0 + boundary_delays[d];
		struct model *m = model_new(t0, d + 1);

		model_arm(m, &m->nodes[0], exp);
		ck_assert_uint_eq(m->wheel.armed, 1);
		for (uint64_t t = t0; t < exp - 1; t += 1 + boundary_delays[d] / 7)
			ck_assert_uint_eq(model_run(m, t), 0);
		ck_assert_uint_eq(model_run(m, exp - 1), 0);
		ck_assert_uint_eq(m->wheel.armed, 1);
		ck_assert_uint_eq(model_run(m, exp), 1);
		ck_assert_uint_eq(m->nodes[0].fired, 1);
		ck_assert_uint_eq(m->wheel.armed, 0);
		ck_assert_uint_eq(model_run(m, exp + WHEEL_RANGE), 0);
		free(m);
	}
}
END_TEST

/* One jump from before to after the expiry fires it, whatever the level
 * it sits on, and only once. */
START_TEST(one_jump_past_the_expiry_fires)
{
	const size_t nd = sizeof(boundary_delays) / sizeof(boundary_delays[0]);

	for (size_t d = 0; d < nd; d++) {
		struct model *m = model_new(1234567, d + 1);
		uint64_t exp = 1234567 + boundary_delays[d];

		model_arm(m, &m->nodes[0], exp);
		ck_assert_uint_eq(model_run(m, exp + (uint64_t)_i * 999), 1);
		ck_assert_uint_eq(m->wheel.armed, 0);
		assert_wheel_consistent(&m->wheel);
		free(m);
	}
}
END_TEST

START_TEST(one_jump_past_many_expiries_fires_them_all_once)
{
	struct model *m = model_new(0, 7);

	for (size_t i = 0; i < N_NODES; i++)
		model_arm(m, &m->nodes[i], 1 + i * 997);
	ck_assert_uint_eq(model_run(m, 1 + (N_NODES - 1) * 997), N_NODES);
	for (size_t i = 0; i < N_NODES; i++)
		ck_assert_uint_eq(m->nodes[i].fired, 1);
	ck_assert_uint_eq(tw_next_run(&m->wheel), UINT64_MAX);
	assert_wheel_consistent(&m->wheel);
	free(m);
}
END_TEST

/* A work budget (issue 13): 4000 nodes due at once, at most 1500 a run;
 * the rest stays armed and due (tw_next_run says now), fires on the
 * following runs at the same time, each node once; nodes not yet due wait. */
START_TEST(budget_spreads_a_mass_expiry_over_runs)
{
	struct model *m = model_new(1000, 11);
	size_t later = 10, n;

	for (size_t i = 0; i < N_NODES; i++)
		model_arm(m, &m->nodes[i],
			  i < N_NODES - later ? 1000 + i * 13 : 9000000);
	m->run++;
	m->run_now = 1000 + (N_NODES - later) * 13;
	n = tw_run_max(&m->wheel, m->run_now, model_fire, m, 1500);
	ck_assert_uint_eq(n, 1500);
	ck_assert_uint_eq(m->fired, 1500);
	ck_assert_uint_eq(m->wheel.armed, N_NODES - 1500);
	ck_assert_uint_eq(tw_next_run(&m->wheel), m->run_now);
	assert_wheel_consistent(&m->wheel);
	m->run++;
	n = tw_run_max(&m->wheel, m->run_now, model_fire, m, 1500);
	ck_assert_uint_eq(n, 1500);
	m->run++;
	n = tw_run_max(&m->wheel, m->run_now, model_fire, m, 1500);
	ck_assert_uint_eq(n, N_NODES - later - 3000);
	ck_assert_uint_eq(m->wheel.armed, later);
	for (size_t i = 0; i < N_NODES; i++)
		ck_assert_uint_eq(m->nodes[i].fired, i < N_NODES - later ? 1 : 0);
	ck_assert_uint_eq(tw_next_run(&m->wheel) > m->run_now, 1);
	assert_wheel_consistent(&m->wheel);
	free(m);
}
END_TEST

/* Jumps of centuries and a million runs hours apart: if tw_run walked
 * the ticks in between this would not finish within the timeout. */
START_TEST(clock_jumps_cost_nothing)
{
	struct model *m = model_new(0, 9);
	uint64_t now = 0;

	for (size_t i = 0; i < N_NODES; i++)
		model_arm(m, &m->nodes[i], rnd(m) % (1ULL << 50));
	EXPECT(model_run(m, 1ULL << 50) == N_NODES);
	now = 1ULL << 50;
	for (size_t i = 0; i < 64; i++)
		model_arm(m, &m->nodes[i], now + rnd(m) % (1000 * DAY));
	for (unsigned k = 0; k < 1000000; k++) {
		now += 1 + rnd(m) % (5 * HOUR);
		model_run(m, now);
	}
	assert_nothing_overdue(m, now);
	EXPECT((m->fired) == (N_NODES + 64));
	free(m);
}
END_TEST

START_TEST(past_expiry_fires_on_next_run)
{
	struct model *m = model_new(10000, 3);

	model_arm(m, &m->nodes[0], 10);
	model_arm(m, &m->nodes[1], 10000);
	ck_assert_uint_eq(tw_next_run(&m->wheel), 10000);
	ck_assert_uint_eq(model_run(m, 10000), 2);
	ck_assert_uint_eq(tw_next_run(&m->wheel), UINT64_MAX);
	free(m);
}
END_TEST

START_TEST(rearm_moves_and_cancel_is_idempotent)
{
	struct model *m = model_new(0, 5);
	struct mnode *n = &m->nodes[0];

	tw_cancel(&m->wheel, &n->tw);           /* never armed: harmless */
	ck_assert_uint_eq(m->wheel.armed, 0);
	model_arm(m, n, 100);
	model_arm(m, n, 50000);
	model_arm(m, &m->nodes[1], 50000);
	ck_assert_uint_eq(m->wheel.armed, 2);
	assert_wheel_consistent(&m->wheel);
	ck_assert_uint_eq(model_run(m, 49999), 0);
	model_cancel(m, n);
	model_cancel(m, n);
	ck_assert_uint_eq(m->wheel.armed, 1);
	assert_wheel_consistent(&m->wheel);
	ck_assert_uint_eq(model_run(m, 60000), 1);
	ck_assert_uint_eq(n->fired, 0);
	ck_assert(!tw_armed(&n->tw));
	/* moving an armed node earlier works too */
	model_arm(m, n, 10 * DAY);
	model_arm(m, n, 60001);
	ck_assert_uint_eq(m->wheel.armed, 1);
	ck_assert_uint_eq(model_run(m, 60001), 1);
	ck_assert_uint_eq(m->wheel.armed, 0);
	assert_wheel_consistent(&m->wheel);
	free(m);
}
END_TEST

struct periodic {
	struct tw_node tw;
	struct timer_wheel *wheel;
	uint64_t period;
	uint64_t fired_at[8];
	unsigned count;
	int rearm_now;          /* re-arm at `now` instead */
};

/* Re-arms its own node from its callback. */
static void periodic_fire(void *ctx, struct tw_node *tw, uint64_t now)
{
	struct periodic *p = ctx;

	ck_assert_ptr_eq(tw, &p->tw);
	ck_assert(!tw_armed(tw));
	p->fired_at[p->count++] = now;
	if (p->count < 8)
		tw_arm(p->wheel, tw, p->rearm_now ? now : now + p->period);
}

START_TEST(callback_rearms_its_own_node)
{
	struct timer_wheel wheel;
	struct periodic p = { .wheel = &wheel, .period = 1000 };

	tw_init(&wheel, 0);
	tw_arm(&wheel, &p.tw, 1000);
	for (uint64_t t = 0; t <= 10000; t++)
		tw_run(&wheel, t, periodic_fire, &p);
	ck_assert_uint_eq(p.count, 8);
	for (unsigned i = 0; i < 8; i++)
		ck_assert_uint_eq(p.fired_at[i], 1000 * (i + 1));
	ck_assert_uint_eq(wheel.armed, 0);

	/* re-armed already due: fires on the next run, not in a loop */
	p = (struct periodic){ .wheel = &wheel, .rearm_now = 1 };
	tw_init(&wheel, 0);
	tw_arm(&wheel, &p.tw, 5);
	ck_assert_uint_eq(tw_run(&wheel, 5, periodic_fire, &p), 1);
	ck_assert_uint_eq(wheel.armed, 1);
	ck_assert_uint_eq(tw_next_run(&wheel), 5);
	ck_assert_uint_eq(tw_run(&wheel, 5, periodic_fire, &p), 1);
	ck_assert_uint_eq(tw_run(&wheel, 6, periodic_fire, &p), 1);
	ck_assert_uint_eq(p.count, 3);
}
END_TEST

struct pair {
	struct timer_wheel wheel;
	struct tw_node a, b;
	unsigned fired;
};

/* Whichever of a and b fires first cancels the other. */
static void cancel_sibling(void *ctx, struct tw_node *tw, uint64_t now)
{
	struct pair *p = ctx;

	(void)now;
	p->fired++;
	tw_cancel(&p->wheel, tw == &p->a ? &p->b : &p->a);
}

START_TEST(callback_cancels_a_node_due_in_the_same_run)
{
	struct pair p = { .fired = 0 };

	tw_init(&p.wheel, 0);
	tw_arm(&p.wheel, &p.a, 700);
	tw_arm(&p.wheel, &p.b, 700);
	ck_assert_uint_eq(tw_run(&p.wheel, 800, cancel_sibling, &p), 1);
	ck_assert_uint_eq(p.fired, 1);
	ck_assert_uint_eq(p.wheel.armed, 0);
	ck_assert(!tw_armed(&p.a) && !tw_armed(&p.b));
	assert_wheel_consistent(&p.wheel);
}
END_TEST

struct owner {
	char pad[24];
	struct tw_node tw;
};

/* Frees the node's owner: the wheel must not touch the node afterwards
 * (ASan and valgrind would say so). */
static void free_owner(void *ctx, struct tw_node *tw, uint64_t now)
{
	size_t *count = ctx;

	(void)now;
	(*count)++;
	free((char *)tw - offsetof(struct owner, tw));
}

START_TEST(callback_frees_the_owner)
{
	struct timer_wheel wheel;
	size_t count = 0;

	tw_init(&wheel, 0);
	for (unsigned i = 0; i < 500; i++) {
		struct owner *o = calloc(1, sizeof(*o));

		ck_assert_ptr_nonnull(o);
		tw_arm(&wheel, &o->tw, i % 7 * 1000 + i % 3);
	}
	ck_assert_uint_eq(tw_run(&wheel, 7000, free_owner, &count), 500);
	ck_assert_uint_eq(count, 500);
	ck_assert_uint_eq(wheel.armed, 0);
	assert_wheel_consistent(&wheel);
}
END_TEST

/* A single node: tw_next_run() is at or before the expiry, within 8/63 of
 * the delay (the placement bound), within 1/8 for the daemon's 30-minute
 * case; following it wakes at most once per level and fires exactly at
 * the expiry. */
START_TEST(next_run_is_a_close_lower_bound)
{
	struct model *m = model_new(0, 11);

	for (unsigned k = 0; k < 20000; k++) {
		uint64_t now = rnd(m) % (1ULL << 40);
		uint64_t delay = k == 0 ? 30 * 60 * 1000
				 : 1 + rnd(m) % (k % 2 ? 4 * HOUR
						   : WHEEL_RANGE - (1ULL << 21));
		uint64_t next, wakeups = 0;
		size_t fired = 0;

		tw_init(&m->wheel, now);
		m->nodes[0] = (struct mnode){ .armed = 0 };
		model_arm(m, &m->nodes[0], now + delay);
		next = tw_next_run(&m->wheel);
		EXPECT((next) <= (now + delay));
		EXPECT_MSG((now + delay - next) * 63 <= delay * 8,
			      "delay %llu: next run %llu ms early",
			      (unsigned long long)delay,
			      (unsigned long long)(now + delay - next));
		if (k == 0)
			EXPECT(((now + delay - next) * 8) <= (delay));
		while (!fired && wakeups <= TW_LEVELS) {
			next = tw_next_run(&m->wheel);
			EXPECT((next) <= (now + delay));
			fired = model_run(m, next);
			wakeups++;
		}
		EXPECT(fired == 1);
		EXPECT((m->wheel.now) == (now + delay));
		EXPECT((wakeups) <= (TW_LEVELS));
	}
	free(m);
}
END_TEST

/* Beyond the range a node comes back once per range, then goes finer. */
START_TEST(far_future_wakes_once_per_range)
{
	struct model *m = model_new(999, 13);
	uint64_t exp = 999 + 10 * WHEEL_RANGE + 4321, wakeups = 0;

	model_arm(m, &m->nodes[0], exp);
	while (m->wheel.armed && wakeups < 100) {
		uint64_t next = tw_next_run(&m->wheel);

		ck_assert_uint_le(next, exp);
		ck_assert_uint_eq(model_run(m, next), next == exp);
		wakeups++;
	}
	ck_assert_uint_eq(m->nodes[0].fired, 1);
	ck_assert_uint_le(wakeups, 10 + 1 + TW_LEVELS);
	free(m);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("timer_wheel");
	TCase *tc = tcase_create("wheel");
	SRunner *runner;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, matches_the_naive_model, 0, 4);
	tcase_add_loop_test(tc, fires_at_expiry_not_a_millisecond_before, 0, 5);
	tcase_add_loop_test(tc, one_jump_past_the_expiry_fires, 0, 2);
	tcase_add_test(tc, one_jump_past_many_expiries_fires_them_all_once);
	tcase_add_test(tc, budget_spreads_a_mass_expiry_over_runs);
	tcase_add_test(tc, clock_jumps_cost_nothing);
	tcase_add_test(tc, past_expiry_fires_on_next_run);
	tcase_add_test(tc, rearm_moves_and_cancel_is_idempotent);
	tcase_add_test(tc, callback_rearms_its_own_node);
	tcase_add_test(tc, callback_cancels_a_node_due_in_the_same_run);
	tcase_add_test(tc, callback_frees_the_owner);
	tcase_add_test(tc, next_run_is_a_close_lower_bound);
	tcase_add_test(tc, far_future_wakes_once_per_range);
	suite_add_tcase(suite, tc);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
