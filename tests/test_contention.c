/*
 * The ESP association rules under contention and attack (issue 11), with an
 * injected clock: fair serialization (a pending init keeps the slot for
 * init_min_age whatever others send, only its own retransmissions count
 * toward a squelch, waiters get the slot in arrival order), no binding of
 * a released init's late answer, and re-association of a provisional
 * association bound to a spoofed SPI.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "pktbuild.h"

#define SEC 1000ULL
#define MAX_EVENTS 65536

struct recorded {
	struct engine_event ev;
	uint64_t at;
	uint32_t hosts[ENGINE_MAX_GUESS];
};

static struct recorded events[MAX_EVENTS];
static size_t n_events;
static uint64_t clock_now;

static void record(void *ctx, const struct engine_event *ev)
{
	(void)ctx;
	if (n_events >= MAX_EVENTS)
		return;
	events[n_events].ev = *ev;
	events[n_events].at = clock_now;
	for (unsigned i = 0; i < ev->n_hosts && i < ENGINE_MAX_GUESS; i++)
		events[n_events].hosts[i] = ev->hosts[i];
	n_events++;
}

static size_t count_events(enum engine_event_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < n_events; i++)
		n += events[i].ev.kind == kind;
	return n;
}

static const struct recorded *last_event(enum engine_event_kind kind)
{
	for (size_t i = n_events; i-- > 0;)
		if (events[i].ev.kind == kind)
			return &events[i];
	ck_abort_msg("no %s event", engine_event_name(kind));
	return NULL;
}

static uint32_t EXT, REMOTE;
static struct engine_config cfg;
static struct engine *eng;

static uint32_t lan(unsigned i)
{
	return pb_addr("192.168.1.10") + i;
}

static void setup(void)
{
	engine_config_defaults(&cfg);
	EXT = pb_addr("198.51.100.1");
	REMOTE = pb_addr("203.0.113.20");
	cfg.external_addr = EXT;
	cfg.internal[0].addr = pb_addr("192.168.0.0");
	cfg.internal[0].mask = 0xffff0000u;
	cfg.n_internal = 1;
	cfg.parallel_sessions = true;
	eng = NULL;
}

static void start(void)
{
	engine_free(eng);
	n_events = 0;
	eng = engine_new(&cfg, 0x5eed, 0, record, NULL);
	ck_assert_ptr_nonnull(eng);
}

static void teardown(void)
{
	engine_free(eng);
	eng = NULL;
}

static struct {
	uint8_t pkt[256];
	size_t len;
	struct engine_decision d;
} s;

static enum verdict esp_out(uint32_t host, uint32_t spi, uint64_t now)
{
	clock_now = now;
	s.len = pb_esp(s.pkt, sizeof(s.pkt), host, REMOTE, spi, 1, 64);
	engine_process(eng, s.pkt, s.len, DIR_OUTBOUND, now, &s.d);
	return s.d.verdict;
}

static enum verdict esp_in(uint32_t spi, uint64_t now)
{
	clock_now = now;
	s.len = pb_esp(s.pkt, sizeof(s.pkt), REMOTE, EXT, spi, 1, 64);
	engine_process(eng, s.pkt, s.len, DIR_INBOUND, now, &s.d);
	return s.d.verdict;
}

static uint32_t dst_of(void)
{
	return pb_get32(s.pkt + 16);
}

static void expect_out_ok(uint32_t host, uint32_t spi, uint64_t now)
{
	ck_assert_int_eq(esp_out(host, spi, now), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(pb_get32(s.pkt + 12), EXT);
}

static void expect_serialized(uint32_t host, uint32_t spi, uint64_t now)
{
	ck_assert_int_eq(esp_out(host, spi, now), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_SERIALIZED);
}

/* Inbound delivered to host through a bound entry (no guess, no copy). */
static void expect_bound_to(uint32_t spi, uint64_t now, uint32_t host)
{
	ck_assert_int_eq(esp_in(spi, now), VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(s.d.reason, R_PASS);
	ck_assert_uint_eq(s.d.n_copies, 0);
	ck_assert_uint_eq(dst_of(), host);
}

/* The entries, as walked. */
static struct engine_esp_info walked[256];
static size_t n_walked;

static void walk_one(void *ctx, const struct engine_esp_info *e)
{
	(void)ctx;
	if (n_walked < 256)
		walked[n_walked++] = *e;
}

static void walk(void)
{
	n_walked = 0;
	engine_walk_esp(eng, walk_one, NULL);
}

/* The walked entry with out-SPI spi_out, or NULL. */
static const struct engine_esp_info *entry_by_out(uint32_t spi_out)
{
	for (size_t i = 0; i < n_walked; i++)
		if (walked[i].spi_out == spi_out)
			return &walked[i];
	return NULL;
}

/* ---- ten hosts, one gateway --------------------------------------------- */

#define N_HOSTS 10
#define RTT 50                  /* the remote answers after 50 ms */
#define PERIOD 200              /* each host sends 5 packets a second */
#define MAX_FLIGHT 4096

/*
 * Ten LAN hosts open ESP to one remote at the same moment, parallel
 * sessions on, default retries and squelch; host i sends under out-SPI
 * 0x1000+i every 200 ms and the remote answers each packet that reaches it
 * 50 ms later under in-SPI 0x2000+i. Returns the time the last host's
 * association was made (UINT64_MAX if one never was), and counts answers
 * delivered through a bound entry to a host that did not own them.
 */
static uint64_t ten_hosts(uint64_t until, unsigned *misdelivered)
{
	struct { uint64_t at; unsigned host; } flight[MAX_FLIGHT];
	size_t head = 0, tail = 0;
	uint64_t up[N_HOSTS], last = 0;

	*misdelivered = 0;
	for (unsigned i = 0; i < N_HOSTS; i++)
		up[i] = UINT64_MAX;
	for (uint64_t t = 0; t <= until; t++) {
		while (head != tail && flight[head % MAX_FLIGHT].at == t) {
			unsigned h = flight[head++ % MAX_FLIGHT].host;

			if (esp_in(0x2000 + h, t) == VERDICT_ACCEPT_MODIFIED &&
			    s.d.reason == R_PASS && dst_of() != lan(h))
				(*misdelivered)++;
		}
		if (t % PERIOD == 0) {
			for (unsigned i = 0; i < N_HOSTS; i++) {
				if (esp_out(lan(i), 0x1000 + i, t) !=
				    VERDICT_ACCEPT_MODIFIED)
					continue;
				ck_assert_uint_lt(tail - head, MAX_FLIGHT);
				flight[tail % MAX_FLIGHT].at = t + RTT;
				flight[tail++ % MAX_FLIGHT].host = i;
			}
		}
		if (t % 10 == 0) {
			clock_now = t;
			engine_run_timers(eng, t);
		}
	}
	for (size_t k = 0; k < n_events; k++) {
		const struct engine_event *ev = &events[k].ev;

		if (ev->kind != EV_ASSOCIATED && ev->kind != EV_REASSOCIATED)
			continue;
		for (unsigned i = 0; i < N_HOSTS; i++)
			if (ev->host == lan(i) && ev->spi_in == 0x2000 + i &&
			    up[i] == UINT64_MAX)
				up[i] = events[k].at;
	}
	for (unsigned i = 0; i < N_HOSTS; i++)
		last = up[i] > last ? up[i] : last;
	return last;
}

START_TEST(ten_hosts_to_one_gateway_all_associate_within_10s)
{
	unsigned misdelivered, wrong = 0, right = 0;
	uint64_t last;

	start();
	last = ten_hosts(10 * SEC, &misdelivered);
	printf("ten hosts, one gateway: tenth association after %llu ms "
	       "(simulated), %zu squelches\n", (unsigned long long)last,
	       count_events(EV_SQUELCHED));
	ck_assert_uint_le(last, 10 * SEC);
	ck_assert_uint_eq(misdelivered, 0);
	walk();
	for (size_t i = 0; i < n_walked; i++) {
		const struct engine_esp_info *e = &walked[i];
		unsigned h = e->host - lan(0);

		if (!e->spi_in)
			continue;
		if (e->spi_in == 0x2000 + h && e->spi_out == 0x1000 + h)
			right++;
		else
			wrong++;
	}
	ck_assert_uint_eq(wrong, 0);
	ck_assert_uint_eq(right, N_HOSTS);
	/* every host sends and receives: all confirmed */
	for (size_t i = 0; i < n_walked; i++)
		ck_assert_int_eq(walked[i].state, ESP_ESTABLISHED);
}
END_TEST

START_TEST(burst_right_after_an_init_does_not_take_its_answer)
{
	start();
	expect_out_ok(lan(0), 0x1000, 0);
	/* B sends new-SA packets every millisecond while A's answer is on
	 * its way: dropped, A's slot untouched */
	for (uint64_t t = 1; t < RTT; t++)
		expect_serialized(lan(1), 0x1100, t);
	ck_assert_uint_eq(count_events(EV_SQUELCHED), 0);
	expect_bound_to(0x2000, RTT, lan(0));
	ck_assert_uint_eq(last_event(EV_ASSOCIATED)->ev.host, lan(0));
	ck_assert_uint_eq(last_event(EV_ASSOCIATED)->ev.spi_in, 0x2000);
	/* then B, first in line, gets the slot and its own answer */
	expect_out_ok(lan(1), 0x1100, RTT + 1);
	expect_bound_to(0x2100, 2 * RTT + 1, lan(1));
	ck_assert_uint_eq(last_event(EV_ASSOCIATED)->ev.host, lan(1));
}
END_TEST

START_TEST(waiters_get_the_slot_in_arrival_order)
{
	const unsigned order[3] = { 1, 2, 3 };   /* B, C, D asked in this order */

	start();
	expect_out_ok(lan(0), 0x1000, 0);
	for (unsigned k = 0; k < 3; k++)
		expect_serialized(lan(order[k]), 0x1000 + order[k], 10 + k);
	expect_bound_to(0x2000, RTT, lan(0));
	/* they ask again in reverse order each round: still B, C, D */
	for (unsigned round = 1; round <= 3; round++) {
		uint64_t t = round * 1000;
		unsigned want = order[round - 1];

		for (unsigned k = 3; k-- > 0;) {
			unsigned h = order[k];

			if (h == want)
				expect_out_ok(lan(h), 0x1000 + h, t + 3 - k);
			else if (h > want)
				expect_serialized(lan(h), 0x1000 + h, t + 3 - k);
		}
		expect_bound_to(0x2000 + want, t + RTT, lan(want));
		ck_assert_uint_eq(last_event(EV_ASSOCIATED)->ev.host,
				  lan(want));
	}
	ck_assert_uint_eq(count_events(EV_SQUELCHED), 0);
}
END_TEST

START_TEST(squelch_still_breaks_an_init_that_never_gets_an_answer)
{
	uint64_t hold = cfg.esp_init_min_age_ms;
	uint64_t t;

	start();
	expect_out_ok(lan(0), 0x1000, 0);
	/* A retransmits every 100 ms, never answered; B waits */
	for (t = 100; t < hold; t += 100) {
		expect_out_ok(lan(0), 0x1000, t);
		expect_serialized(lan(1), 0x1100, t + 1);
	}
	ck_assert_uint_eq(count_events(EV_SQUELCHED), 0);
	/* at init_min_age A's next retransmission is refused: its turn is
	 * over */
	ck_assert_int_eq(esp_out(lan(0), 0x1000, hold), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_SQUELCHED);
	ck_assert_uint_eq(count_events(EV_SQUELCHED), 1);
	ck_assert_uint_eq(last_event(EV_SQUELCHED)->ev.host, lan(0));
	expect_out_ok(lan(1), 0x1100, hold + 1);
}
END_TEST

START_TEST(a_quiet_pending_init_gives_way_after_its_round_trip)
{
	uint64_t hold = cfg.esp_init_min_age_ms;

	start();
	expect_out_ok(lan(0), 0x1000, 0);      /* then nothing more */
	for (uint64_t t = 100; t < hold; t += 100)
		expect_serialized(lan(1), 0x1100, t);
	expect_out_ok(lan(1), 0x1100, hold);
	ck_assert_uint_eq(last_event(EV_SQUELCHED)->ev.host, lan(0));
}
END_TEST

START_TEST(a_waiter_that_stopped_asking_leaves_the_line)
{
	start();
	expect_out_ok(lan(0), 0x1000, 0);
	expect_serialized(lan(1), 0x1100, 10);  /* B asks once, goes away */
	expect_bound_to(0x2000, RTT, lan(0));
	/* C, 9.9 s later, is behind B */
	expect_serialized(lan(2), 0x1200, 10 + 9900);
	/* 10 s after B's last packet B is out of line: C gets the slot */
	expect_out_ok(lan(2), 0x1200, 10 + 10 * SEC);
	expect_bound_to(0x2200, 10 + 10 * SEC + RTT, lan(2));
}
END_TEST

/* ---- released inits ------------------------------------------------------ */

START_TEST(late_answer_of_a_squelched_init_is_guessed_not_bound)
{
	uint64_t hold = cfg.esp_init_min_age_ms;
	uint64_t t;

	start();
	expect_out_ok(lan(0), 0x1000, 0);
	for (t = 100; t < hold; t += 100) {
		expect_out_ok(lan(0), 0x1000, t);
		expect_serialized(lan(1), 0x1100, t + 1);
	}
	expect_out_ok(lan(1), 0x1100, hold + 1);   /* A squelched, B's turn */
	ck_assert_uint_eq(last_event(EV_SQUELCHED)->ev.host, lan(0));
	/* A's answer arrives late: it may be A's or B's, so both get it,
	 * A (released most recently) first, and nothing is bound */
	ck_assert_int_eq(esp_in(0x2000, hold + 30), VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(s.d.reason, R_ESP_AMBIGUOUS);
	ck_assert_uint_eq(dst_of(), lan(0));
	ck_assert_uint_eq(s.d.n_copies, 1);
	ck_assert_uint_eq(s.d.copy_to[0], lan(1));
	ck_assert_uint_eq(last_event(EV_GUESSED)->ev.reason, R_ESP_AMBIGUOUS);
	ck_assert_uint_eq(count_events(EV_ASSOCIATED), 0);
	ck_assert_uint_eq(engine_get_stats(eng)->pending, 1);
	walk();
	ck_assert_ptr_nonnull(entry_by_out(0x1100));
	ck_assert_uint_eq(entry_by_out(0x1100)->spi_in, 0);
	ck_assert(entry_by_out(0x1100)->holds_slot);
	/* once A's answer can no longer be on its way, B's binds B */
	expect_bound_to(0x2100, 2 * hold + 1, lan(1));
	ck_assert_uint_eq(last_event(EV_ASSOCIATED)->ev.host, lan(1));
	ck_assert_uint_eq(last_event(EV_ASSOCIATED)->ev.spi_in, 0x2100);
}
END_TEST

START_TEST(late_answer_of_a_timed_out_init_is_guessed_not_bound)
{
	uint64_t t = cfg.esp_init_timeout_ms;

	start();
	expect_out_ok(lan(0), 0x1000, 0);
	clock_now = t;
	engine_run_timers(eng, t);
	ck_assert_uint_eq(count_events(EV_INIT_TIMEOUT), 1);
	expect_out_ok(lan(1), 0x1100, t + 10);
	ck_assert_int_eq(esp_in(0x2000, t + 20), VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(s.d.reason, R_ESP_AMBIGUOUS);
	ck_assert_uint_eq(count_events(EV_ASSOCIATED), 0);
	ck_assert_uint_eq(engine_get_stats(eng)->pending, 1);
	/* the same host asking again is not ambiguous with itself */
	cfg.parallel_sessions = true;
	start();
	expect_out_ok(lan(0), 0x1000, 0);
	clock_now = t;
	engine_run_timers(eng, t);
	expect_out_ok(lan(0), 0x1000, t + 10);
	expect_bound_to(0x2000, t + 20, lan(0));
}
END_TEST

/* ---- spoofed SPIs ---------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

/* A established with the remote (used both ways): 0x1000 / 0x2000. */
static void a_established(void)
{
	expect_out_ok(lan(0), 0x1000, 0);
	expect_bound_to(0x2000, RTT, lan(0));
	expect_out_ok(lan(0), 0x1000, 100);
	expect_bound_to(0x2000, 100 + RTT, lan(0));
	walk();
	ck_assert_int_eq(entry_by_out(0x1000)->state, ESP_ESTABLISHED);
}

START_TEST(random_spi_flood_during_a_rekey_does_not_kill_the_tunnel)
{
	const uint64_t rekey = 10 * SEC, end = rekey + 3 * SEC;
	size_t flood_in = 0;

	cfg.parallel_sessions = false;
	start();
	a_established();
	for (uint64_t t = rekey; t <= end; t++) {
		/* A sends under its new out-SPI every 100 ms; the remote
		 * answers 50 ms later under 0x2001 */
		if ((t - rekey) % 100 == 0)
			expect_out_ok(lan(0), 0x1001, t);
		if (t > rekey + RTT && (t - rekey) % 100 == RTT)
			(void)esp_in(0x2001, t);
		/* a blind spoofer: a random SPI from the remote's address
		 * every millisecond, the first right after A's rekey */
		if (t > rekey &&
		    esp_in(0x10000 | rnd(), t) == VERDICT_ACCEPT_MODIFIED)
			flood_in++;
	}
	walk();
	ck_assert_ptr_nonnull(entry_by_out(0x1001));
	ck_assert_uint_eq(entry_by_out(0x1001)->spi_in, 0x2001);
	ck_assert_uint_eq(entry_by_out(0x1001)->host, lan(0));
	ck_assert_uint_ge(count_events(EV_REASSOCIATED), 1);
	ck_assert_uint_eq(last_event(EV_REASSOCIATED)->ev.spi_in, 0x2001);
	/* the new SA works both ways, and so does the old one */
	expect_bound_to(0x2001, end + 1, lan(0));
	expect_out_ok(lan(0), 0x1001, end + 2);
	expect_bound_to(0x2001, end + 3, lan(0));
	walk();
	ck_assert_int_eq(entry_by_out(0x1001)->state, ESP_ESTABLISHED);
	expect_bound_to(0x2000, end + 4, lan(0));
	/* the flood made no entries, and got in only through the guess
	 * budget (burst + rate x time) plus the one bound at first */
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 2);
	ck_assert_uint_le(flood_in, cfg.guess_burst + 1 +
			  cfg.guess_rate * (end - rekey) / SEC);
}
END_TEST

START_TEST(a_confirmed_association_is_never_moved)
{
	start();
	a_established();
	for (unsigned i = 0; i < 20; i++) {
		expect_out_ok(lan(0), 0x1000, 1000 + 100 * i);
		(void)esp_in(0x7777, 1001 + 100 * i);
	}
	ck_assert_uint_eq(count_events(EV_REASSOCIATED), 0);
	expect_bound_to(0x2000, 5000, lan(0));
}
END_TEST

START_TEST(a_silent_host_keeps_its_provisional_association)
{
	start();
	expect_out_ok(lan(0), 0x1000, 0);
	expect_bound_to(0x9999, 10, lan(0));    /* a spoofed first SPI */
	/* the host sends nothing more: nothing shows the binding wrong */
	for (unsigned i = 0; i < 20; i++)
		(void)esp_in(0x2000, 11 + 100 * i);
	ck_assert_uint_eq(count_events(EV_REASSOCIATED), 0);
	/* it sends again: then an SPI that keeps arriving takes over */
	expect_out_ok(lan(0), 0x1000, 3000);
	for (unsigned i = 0; i < 3; i++)
		(void)esp_in(0x2000, 3001 + 100 * i);
	ck_assert_uint_eq(count_events(EV_REASSOCIATED), 1);
	ck_assert_uint_eq(last_event(EV_REASSOCIATED)->ev.host, lan(0));
	ck_assert_uint_eq(s.d.reason, R_PASS);
	ck_assert_uint_eq(dst_of(), lan(0));
}
END_TEST

/* ---- init_min_age at its bounds ------------------------------------------ */

START_TEST(min_age_bounds)
{
	struct engine *bad;

	/* equal to init_timeout: refused */
	cfg.esp_init_min_age_ms = cfg.esp_init_timeout_ms;
	bad = engine_new(&cfg, 1, 0, NULL, NULL);
	ck_assert_ptr_null(bad);
	ck_assert_int_eq(errno, EINVAL);

	/* the largest: the pending init keeps the slot until its timeout */
	cfg.esp_init_min_age_ms = cfg.esp_init_timeout_ms - 1;
	start();
	expect_out_ok(lan(0), 0x1000, 0);
	for (uint64_t t = 100; t < cfg.esp_init_timeout_ms - 1; t += 1000) {
		expect_out_ok(lan(0), 0x1000, t);
		expect_serialized(lan(1), 0x1100, t + 1);
	}
	ck_assert_uint_eq(count_events(EV_SQUELCHED), 0);

	/* the smallest (1 ms): own retransmissions squelch at once */
	cfg.esp_init_min_age_ms = 1;
	start();
	expect_out_ok(lan(0), 0x1000, 0);
	expect_out_ok(lan(0), 0x1000, 1);
	expect_serialized(lan(1), 0x1100, 1);
	for (unsigned i = 1; i < cfg.esp_init_retries; i++)
		expect_out_ok(lan(0), 0x1000, 1 + i);
	ck_assert_uint_eq(count_events(EV_SQUELCHED), 0);
	ck_assert_int_eq(esp_out(lan(0), 0x1000, 1 + cfg.esp_init_retries),
			 VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_SQUELCHED);
	expect_out_ok(lan(1), 0x1100, 2 + cfg.esp_init_retries);
}
END_TEST

static Suite *contention_suite(void)
{
	Suite *su = suite_create("contention");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ten_hosts_to_one_gateway_all_associate_within_10s);
	tcase_add_test(tc, burst_right_after_an_init_does_not_take_its_answer);
	tcase_add_test(tc, waiters_get_the_slot_in_arrival_order);
	tcase_add_test(tc, squelch_still_breaks_an_init_that_never_gets_an_answer);
	tcase_add_test(tc, a_quiet_pending_init_gives_way_after_its_round_trip);
	tcase_add_test(tc, a_waiter_that_stopped_asking_leaves_the_line);
	tcase_add_test(tc, late_answer_of_a_squelched_init_is_guessed_not_bound);
	tcase_add_test(tc, late_answer_of_a_timed_out_init_is_guessed_not_bound);
	tcase_add_test(tc, random_spi_flood_during_a_rekey_does_not_kill_the_tunnel);
	tcase_add_test(tc, a_confirmed_association_is_never_moved);
	tcase_add_test(tc, a_silent_host_keeps_its_provisional_association);
	tcase_add_test(tc, min_age_bounds);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(contention_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
