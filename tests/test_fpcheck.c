/*
 * The fast path's use checks (fpcheck.h), clock injected: the check queue
 * against a naive model, the lead before an expiry, and the decisions
 * that keep lifetimes exact (an association used only in the kernel stays,
 * an idle one goes on time, the kernel timeout never runs past the
 * engine's expiry nor longer than the lifetime).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "fpcheck.h"

#define N 3000

START_TEST(heap_against_model)
{
	static struct fpc_node nodes[N];
	static int queued[N];
	struct fpc_heap h = { 0 };
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < N; i++)
		nodes[i].idx = FPC_IDLE;
	for (unsigned step = 0; step < 200000; step++) {
		size_t i;
		unsigned op;

		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		i = (size_t)(rng % N);
		op = (unsigned)(rng >> 40) % 4;
		if (op < 2) {
			ck_assert_int_eq(fpc_heap_set(&h, &nodes[i],
						      (rng >> 20) % 100000), 0);
			queued[i] = 1;
		} else if (op == 2) {
			fpc_heap_remove(&h, &nodes[i]);
			queued[i] = 0;
		} else if (h.n) {
			/* the top is the earliest queued node */
			const struct fpc_node *top = fpc_heap_top(&h);
			uint64_t min = UINT64_MAX;

			for (size_t k = 0; k < N; k++)
				if (queued[k] && nodes[k].at < min)
					min = nodes[k].at;
			if (top->at != min)
				ck_abort_msg("top %llu, earliest %llu",
					     (unsigned long long)top->at,
					     (unsigned long long)min);
		}
	}
	{
		size_t count = 0;

		for (size_t k = 0; k < N; k++) {
			count += (size_t)queued[k];
			ck_assert_int_eq(queued[k], nodes[k].idx != FPC_IDLE);
		}
		ck_assert_uint_eq(count, h.n);
	}
	/* popping in order gives a sorted sequence */
	{
		uint64_t last = 0;

		while (h.n) {
			struct fpc_node *t = fpc_heap_top(&h);

			ck_assert_uint_ge(t->at, last);
			last = t->at;
			fpc_heap_remove(&h, t);
		}
	}
	fpc_heap_free(&h);
}
END_TEST

START_TEST(lead_bounds)
{
	/* small tables: FPC_LEAD_MS before the expiry */
	ck_assert_uint_eq(fpc_lead_ms(600000, 10, 3.0), FPC_LEAD_MS);
	/* a million at 3 us each: 6 s more, so that all of them expiring
	 * together are asked in time */
	ck_assert_uint_eq(fpc_lead_ms(1800000, 1000000, 3.0),
			  FPC_LEAD_MS + 6000);
	/* never more than a quarter of the lifetime */
	ck_assert_uint_eq(fpc_lead_ms(4000, 1000000, 3.0), 1000);
	ck_assert_uint_eq(fpc_lead_ms(2000, 0, 3.0), 500);
	/* never under FPC_LEAD_MIN_MS, unless the lifetime is shorter */
	ck_assert_uint_eq(fpc_lead_ms(40, 0, 3.0), FPC_LEAD_MIN_MS);
	ck_assert_uint_eq(fpc_lead_ms(10, 0, 3.0), 10);
	ck_assert_uint_eq(fpc_check_at(0, 5000, 4000, 0, 3.0), 4000);
	/* the lead is past: halfway to the expiry, never after it */
	ck_assert_uint_eq(fpc_check_at(0, 500, 4000, 0, 3.0), 250);
	ck_assert_uint_eq(fpc_check_at(4500, 5000, 4000, 0, 3.0), 4750);
	ck_assert_uint_eq(fpc_check_at(5000, 5000, 4000, 0, 3.0), 5000);
}
END_TEST

/* An association installed at t = 0 with lifetime 4 s: kernel and engine
 * expire at 4000; checked at 3000. */
static struct fpc_case at_check(void)
{
	return (struct fpc_case){ .now = 3000, .kexp = 4000, .found = true,
				  .alive = true, .expires = 4000,
				  .life_ms = 4000 };
}

START_TEST(decide_used_renews)
{
	struct fpc_case c = at_check();
	uint64_t k;

	/* used in the kernel: the caller credited the engine, which lives
	 * a lifetime from now; the kernel follows, exactly that far */
	c.used = true;
	c.expires = 3000 + 4000;
	ck_assert_int_eq(fpc_decide(&c, &k), FPC_RENEW);
	ck_assert_uint_eq(k, 7000);
}
END_TEST

START_TEST(decide_idle_expires)
{
	struct fpc_case c = at_check();
	uint64_t k = 0;

	/* idle: left alone, ends with the engine's timer at 4000 */
	ck_assert_int_eq(fpc_decide(&c, &k), FPC_EXPIRE);
	ck_assert_uint_eq(k, 4000);
}
END_TEST

START_TEST(decide_extended_by_queue)
{
	struct fpc_case c = at_check();
	uint64_t k;

	/* idle in the kernel but the engine saw packets (queued): the
	 * kernel follows the engine, never past it */
	c.expires = 5500;
	ck_assert_int_eq(fpc_decide(&c, &k), FPC_RENEW);
	ck_assert_uint_eq(k, 5500);
}
END_TEST

START_TEST(decide_never_longer_than_lifetime)
{
	struct fpc_case c = at_check();
	uint64_t k;

	/* an engine expiry further than a lifetime away (a lifetime cut by
	 * a reload) is capped at one lifetime from now */
	c.used = true;
	c.expires = 3000 + 9000;
	c.life_ms = 2000;
	ck_assert_int_eq(fpc_decide(&c, &k), FPC_RENEW);
	ck_assert_uint_eq(k, 5000);
}
END_TEST

START_TEST(decide_gone)
{
	struct fpc_case c = at_check();
	uint64_t k;

	c.alive = false;
	ck_assert_int_eq(fpc_decide(&c, &k), FPC_DROP);
	c = at_check();
	c.expires = 3000;   /* the engine's life ends now */
	ck_assert_int_eq(fpc_decide(&c, &k), FPC_DROP);
}
END_TEST

START_TEST(decide_lost_and_late)
{
	struct fpc_case c = at_check();
	uint64_t k;

	/* the kernel lost the elements before their time: back in */
	c.found = false;
	ck_assert_int_eq(fpc_decide(&c, &k), FPC_REINSTALL);
	ck_assert_uint_eq(k, 4000);
	/* asked after the kernel timed them out, the engine not extended:
	 * late, left to expire (counted by the caller) */
	c.now = 4000;
	c.expires = 4000;
	c.kexp = 4000;
	ck_assert_int_eq(fpc_decide(&c, &k), FPC_LATE);
	c.alive = false;
	ck_assert_int_eq(fpc_decide(&c, &k), FPC_LATE);
	c.alive = true;
	/* lost with less than FPC_LEAD_MIN_MS to live: not worth it */
	c.now = 3990;
	c.kexp = 4000;
	c.expires = 4000;
	ck_assert_int_eq(fpc_decide(&c, &k), FPC_EXPIRE);
	c.now = 4000;
	/* ... but the engine extended it through the queue: back in */
	c.expires = 6000;
	ck_assert_int_eq(fpc_decide(&c, &k), FPC_REINSTALL);
	ck_assert_uint_eq(k, 6000);
}
END_TEST

/*
 * A simulated association over 60 s, lifetime 4 s, checked as fastpath.c
 * does (at kexp - lead, decide, reschedule), the kernel's counter moving
 * only when the flow sends. Sending every 0.5 s for 20 s keeps it alive
 * throughout; after the last packet it ends within two lifetimes; never
 * sending, it ends at exactly 4 s.
 */
static uint64_t simulate(uint64_t send_until, uint64_t *last_sent)
{
	const uint64_t life = 4000;
	uint64_t kexp = life, expires = life, counter = 0, seen = 0;
	uint64_t check = fpc_check_at(0, kexp, life, 1, 3.0);

	*last_sent = 0;
	for (uint64_t t = 0; t < 60000; t++) {
		if (t >= expires)
			return t;   /* the engine's timer ends it */
		if (t < send_until && t % 500 == 0 && t < kexp) {
			counter++;
			*last_sent = t;
		}
		if (t == check) {
			struct fpc_case c = { .now = t, .kexp = kexp,
					      .found = t < kexp,
					      .used = counter != seen,
					      .alive = true,
					      .life_ms = life };
			enum fpc_action a;

			if (c.used)
				expires = t + life;   /* the credit */
			seen = counter;
			c.expires = expires;
			a = fpc_decide(&c, &kexp);
			ck_assert(kexp <= expires);
			ck_assert(kexp <= t + life);
			if (a == FPC_RENEW || a == FPC_REINSTALL)
				check = fpc_check_at(t, kexp, life, 1, 3.0);
		}
	}
	return UINT64_MAX;
}

START_TEST(lifetimes_simulated)
{
	uint64_t last, end;

	end = simulate(0, &last);
	ck_assert_uint_eq(end, 4000);          /* idle: on time */
	end = simulate(20000, &last);
	ck_assert_uint_ge(last, 19000);        /* it stayed alive to send */
	ck_assert_uint_ge(end, last + 4000 - FPC_LEAD_MS);
	ck_assert_uint_le(end, last + 2 * 4000);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("fpcheck");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, heap_against_model);
	tcase_add_test(tc, lead_bounds);
	tcase_add_test(tc, decide_used_renews);
	tcase_add_test(tc, decide_idle_expires);
	tcase_add_test(tc, decide_extended_by_queue);
	tcase_add_test(tc, decide_never_longer_than_lifetime);
	tcase_add_test(tc, decide_gone);
	tcase_add_test(tc, decide_lost_and_late);
	tcase_add_test(tc, lifetimes_simulated);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
