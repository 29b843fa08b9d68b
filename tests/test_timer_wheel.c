/*
 * The timer wheel against a naive model: every armed node fires exactly
 * once, never before its expiry, and in the first tw_run() at or after it,
 * whatever the mix of arms, re-arms, cancels and clock jumps.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timer_wheel.h"

#define N_NODES 2000

struct model_node {
	struct tw_node tw;
	int armed;              /* the model's view */
	uint64_t expires;
	unsigned fired;
};

static struct model_node nodes[N_NODES];
static struct timer_wheel wheel;
static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static struct model_node *of(struct tw_node *n)
{
	return (struct model_node *)(void *)((char *)n -
					     offsetof(struct model_node, tw));
}

struct fire_ctx {
	int rearm_from_callback;
};

static void fired(void *ctx, struct tw_node *n, uint64_t now)
{
	struct fire_ctx *fc = ctx;
	struct model_node *m = of(n);

	ck_assert_msg(m->armed, "node %td fired while not armed", m - nodes);
	ck_assert_msg(now >= m->expires, "node %td fired early: %llu < %llu",
		      m - nodes, (unsigned long long)now,
		      (unsigned long long)m->expires);
	ck_assert(!tw_armed(n));
	m->armed = 0;
	m->fired++;
	if (fc && fc->rearm_from_callback && rnd() % 3 == 0) {
		/* in the future: a past expiry armed now waits for the next
		 * run, which the model below does not expect */
		m->expires = now + 1 + rnd() % 100000;
		m->armed = 1;
		tw_arm(&wheel, n, m->expires);
	}
	if (fc && fc->rearm_from_callback && rnd() % 5 == 0) {
		struct model_node *other = &nodes[rnd() % N_NODES];

		tw_cancel(&wheel, &other->tw);
		other->armed = 0;
	}
}

static uint64_t random_expiry(uint64_t now)
{
	switch (rnd() % 5) {
	case 0:
		return now + rnd() % 64;                  /* level 0 */
	case 1:
		return now + rnd() % 100000;              /* minutes */
	case 2:
		return now + rnd() % (4ULL * 3600 * 1000);  /* hours */
	case 3:
		return now + rnd() % (400ULL * 24 * 3600 * 1000); /* past range */
	default:
		return now > 100 ? now - rnd() % 100 : now; /* already due */
	}
}

static uint64_t random_step(void)
{
	switch (rnd() % 4) {
	case 0:
		return 1;
	case 1:
		return rnd() % 64;
	case 2:
		return rnd() % 60000;
	default:
		return rnd() % (6ULL * 3600 * 1000);
	}
}

/* After a run at `now`, no armed node may be overdue in the model. */
static void assert_nothing_overdue(uint64_t now)
{
	size_t armed = 0;

	for (size_t i = 0; i < N_NODES; i++) {
		if (!nodes[i].armed)
			continue;
		armed++;
		ck_assert_msg(nodes[i].expires > now,
			      "node %zu due at %llu not fired by run at %llu", i,
			      (unsigned long long)nodes[i].expires,
			      (unsigned long long)now);
	}
	ck_assert_uint_eq(wheel.armed, armed);
}

static void random_ops(uint64_t now, int from_callback)
{
	(void)from_callback;
	for (unsigned k = 0; k < 50; k++) {
		struct model_node *m = &nodes[rnd() % N_NODES];

		if (rnd() % 4 == 0) {
			tw_cancel(&wheel, &m->tw);
			m->armed = 0;
		} else {
			m->expires = random_expiry(now);
			m->armed = 1;
			tw_arm(&wheel, &m->tw, m->expires);
		}
	}
}

START_TEST(matches_the_naive_model)
{
	struct fire_ctx fc = { .rearm_from_callback = _i };
	uint64_t now = 1000 + (uint64_t)_i * 12345;

	memset(nodes, 0, sizeof(nodes));
	tw_init(&wheel, now);
	for (unsigned round = 0; round < 1500; round++) {
		uint64_t next;

		random_ops(now, 0);
		next = tw_next_run(&wheel);
		now += random_step();
		/* a run before tw_next_run() has nothing to fire */
		if (next != UINT64_MAX && next > wheel.now + 1 && rnd() % 2) {
			uint64_t early = next - 1 < now ? next - 1 : now;

			ck_assert_uint_eq(tw_run(&wheel, early, fired, &fc), 0);
		}
		tw_run(&wheel, now, fired, &fc);
		assert_nothing_overdue(now);
	}
}
END_TEST

START_TEST(fires_at_expiry_not_a_millisecond_before)
{
	static const uint64_t delays[] = { 1, 63, 64, 65, 511, 512, 513, 4095,
					   4096, 100000, 1800000, 7200000 };

	for (size_t d = 0; d < sizeof(delays) / sizeof(delays[0]); d++) {
		struct model_node m = { .armed = 1 };

		memset(nodes, 0, sizeof(nodes));
		tw_init(&wheel, 5000);
		m.expires = 5000 + delays[d];
		nodes[0] = m;
		tw_arm(&wheel, &nodes[0].tw, nodes[0].expires);
		/* step through in odd strides up to expires - 1 */
		for (uint64_t t = 5000; t < nodes[0].expires - 1;
		     t += 1 + delays[d] / 7)
			ck_assert_uint_eq(tw_run(&wheel, t, fired, NULL), 0);
		ck_assert_uint_eq(tw_run(&wheel, nodes[0].expires - 1, fired,
					 NULL), 0);
		ck_assert_uint_eq(tw_run(&wheel, nodes[0].expires, fired, NULL),
				  1);
		ck_assert_uint_eq(nodes[0].fired, 1);
		ck_assert_uint_eq(wheel.armed, 0);
	}
}
END_TEST

START_TEST(one_jump_past_many_expiries_fires_them_all_once)
{
	memset(nodes, 0, sizeof(nodes));
	tw_init(&wheel, 0);
	for (size_t i = 0; i < N_NODES; i++) {
		nodes[i].armed = 1;
		nodes[i].expires = 1 + i * 997;
		tw_arm(&wheel, &nodes[i].tw, nodes[i].expires);
	}
	ck_assert_uint_eq(tw_run(&wheel, 1 + (N_NODES - 1) * 997, fired, NULL),
			  N_NODES);
	for (size_t i = 0; i < N_NODES; i++)
		ck_assert_uint_eq(nodes[i].fired, 1);
	ck_assert_uint_eq(tw_next_run(&wheel), UINT64_MAX);
}
END_TEST

START_TEST(past_expiry_fires_on_next_run)
{
	memset(nodes, 0, sizeof(nodes));
	tw_init(&wheel, 10000);
	nodes[0].armed = 1;
	nodes[0].expires = 10;
	tw_arm(&wheel, &nodes[0].tw, 10);
	ck_assert_uint_eq(tw_next_run(&wheel), 10000);
	ck_assert_uint_eq(tw_run(&wheel, 10000, fired, NULL), 1);
}
END_TEST

START_TEST(rearm_moves_and_cancel_is_idempotent)
{
	memset(nodes, 0, sizeof(nodes));
	tw_init(&wheel, 0);
	nodes[0].armed = 1;
	nodes[0].expires = 100;
	tw_arm(&wheel, &nodes[0].tw, 100);
	nodes[0].expires = 50000;
	tw_arm(&wheel, &nodes[0].tw, 50000);
	ck_assert_uint_eq(wheel.armed, 1);
	ck_assert_uint_eq(tw_run(&wheel, 49999, fired, NULL), 0);
	tw_cancel(&wheel, &nodes[0].tw);
	tw_cancel(&wheel, &nodes[0].tw);
	nodes[0].armed = 0;
	ck_assert_uint_eq(wheel.armed, 0);
	ck_assert_uint_eq(tw_run(&wheel, 60000, fired, NULL), 0);
	ck_assert(!tw_armed(&nodes[0].tw));
}
END_TEST

START_TEST(next_run_is_a_close_lower_bound)
{
	static const uint64_t delays[] = { 5, 100, 5000, 60000, 1800000,
					   7200000, 86400000 };

	for (size_t d = 0; d < sizeof(delays) / sizeof(delays[0]); d++) {
		uint64_t now = 123456, next;

		memset(nodes, 0, sizeof(nodes));
		tw_init(&wheel, now);
		tw_arm(&wheel, &nodes[0].tw, now + delays[d]);
		next = tw_next_run(&wheel);
		ck_assert_uint_le(next, now + delays[d]);
		/* within 1/7 of the delay: the daemon's timerfd must not spin */
		ck_assert_msg(now + delays[d] - next <= delays[d] / 7,
			      "delay %llu: next run %llu ms early",
			      (unsigned long long)delays[d],
			      (unsigned long long)(now + delays[d] - next));
	}
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("timer_wheel");
	TCase *tc = tcase_create("wheel");
	SRunner *runner;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, matches_the_naive_model, 0, 2);
	tcase_add_test(tc, fires_at_expiry_not_a_millisecond_before);
	tcase_add_test(tc, one_jump_past_many_expiries_fires_them_all_once);
	tcase_add_test(tc, past_expiry_fires_on_next_run);
	tcase_add_test(tc, rearm_moves_and_cancel_is_idempotent);
	tcase_add_test(tc, next_run_is_a_close_lower_bound);
	suite_add_tcase(suite, tc);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
