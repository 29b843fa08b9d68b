/*
 * The masquerade rules, one test per rule, with an injected clock. Each test
 * drives the engine with packets built by tests/pktbuild.c and checks the
 * verdict, the rewritten addresses and checksums, and the logged decisions.
 */
#include <errno.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "pktbuild.h"

#define MAX_EVENTS 4096
#define SEC 1000ULL

struct recorded {
	struct engine_event ev;
	uint32_t hosts[ENGINE_MAX_GUESS];
};

static struct recorded events[MAX_EVENTS];
static size_t n_events;

static void record(void *ctx, const struct engine_event *ev)
{
	(void)ctx;
	if (n_events >= MAX_EVENTS)
		return;
	events[n_events].ev = *ev;
	for (unsigned i = 0; i < ev->n_hosts && i < ENGINE_MAX_GUESS; i++)
		events[n_events].hosts[i] = ev->hosts[i];
	n_events++;
}

/* How many recorded events are of `kind`. */
static size_t count_events(enum engine_event_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < n_events; i++)
		n += events[i].ev.kind == kind;
	return n;
}

/* The last recorded event of `kind`; fails the test when there is none. */
static const struct recorded *last_event(enum engine_event_kind kind)
{
	for (size_t i = n_events; i-- > 0;)
		if (events[i].ev.kind == kind)
			return &events[i];
	ck_abort_msg("no %s event", engine_event_name(kind));
	return NULL;
}

static uint32_t EXT, LAN_A, LAN_B, LAN_C, REMOTE, REMOTE2;
static struct engine_config cfg;
static struct engine *eng;

static void setup_cfg(void)
{
	engine_config_defaults(&cfg);
	EXT = pb_addr("198.51.100.1");
	LAN_A = pb_addr("192.168.1.10");
	LAN_B = pb_addr("192.168.1.11");
	LAN_C = pb_addr("192.168.1.12");
	REMOTE = pb_addr("203.0.113.20");
	REMOTE2 = pb_addr("203.0.113.30");
	cfg.external_addr = EXT;
	cfg.internal[0].addr = pb_addr("192.168.0.0");
	cfg.internal[0].mask = 0xffff0000u;
	cfg.n_internal = 1;
	n_events = 0;
}

/* (Re)start the engine with the current cfg; tests that change cfg call it
 * again after the fixture's start. */
static void start(void)
{
	engine_free(eng);
	n_events = 0;
	eng = engine_new(&cfg, 0x5eed, 0, record, NULL);
	ck_assert_ptr_nonnull(eng);
}

static void setup(void)
{
	setup_cfg();
	start();
}

static void teardown(void)
{
	engine_free(eng);
	eng = NULL;
}

/* One packet through the engine; the rewritten packet stays in pkt. */
struct sent {
	uint8_t pkt[2048];
	size_t len;
	struct engine_decision d;
};

static struct sent s;

static enum verdict run(enum direction dir, uint64_t now)
{
	engine_process(eng, s.pkt, s.len, dir, now, &s.d);
	return s.d.verdict;
}

static enum verdict esp_out(uint32_t host, uint32_t remote, uint32_t spi,
			    uint64_t now)
{
	s.len = pb_esp(s.pkt, sizeof(s.pkt), host, remote, spi, 1, 64);
	return run(DIR_OUTBOUND, now);
}

static enum verdict esp_in(uint32_t remote, uint32_t spi, uint64_t now)
{
	s.len = pb_esp(s.pkt, sizeof(s.pkt), remote, EXT, spi, 1, 64);
	return run(DIR_INBOUND, now);
}

static enum verdict ike_out(uint32_t host, uint32_t remote, uint64_t ci,
			    uint64_t cr, uint64_t now)
{
	s.len = pb_isakmp(s.pkt, sizeof(s.pkt), host, remote, ci, cr, 1, 40);
	return run(DIR_OUTBOUND, now);
}

static enum verdict ike_in(uint32_t remote, uint64_t ci, uint64_t cr,
			   uint64_t now)
{
	s.len = pb_isakmp(s.pkt, sizeof(s.pkt), remote, EXT, ci, cr, 1, 40);
	return run(DIR_INBOUND, now);
}

static uint32_t src_of(void)
{
	return pb_get32(s.pkt + 12);
}

static uint32_t dst_of(void)
{
	return pb_get32(s.pkt + 16);
}

/* The rewritten packet's checksums equal a full recomputation. */
static void assert_checksums(void)
{
	ck_assert_uint_eq(pb_get16(s.pkt + 10), pb_ip_csum(s.pkt));
	if (s.pkt[9] == 17 && pb_get16(s.pkt + 26) != 0)
		ck_assert_uint_eq(pb_get16(s.pkt + 26),
				  pb_udp_csum(s.pkt, s.len));
}

/* Outbound ESP from host is masqueraded. */
static void expect_out_ok(uint32_t host, uint32_t remote, uint32_t spi,
			  uint64_t now)
{
	ck_assert_int_eq(esp_out(host, remote, spi, now),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(src_of(), EXT);
	assert_checksums();
}

/* Inbound ESP is delivered to host. */
static void expect_in_to(uint32_t remote, uint32_t spi, uint64_t now,
			 uint32_t host)
{
	ck_assert_int_eq(esp_in(remote, spi, now), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), host);
	assert_checksums();
}

/* host and remote complete an ESP init: out-SPI out, in-SPI in. */
static void establish(uint32_t host, uint32_t remote, uint32_t out,
		      uint32_t in, uint64_t now)
{
	expect_out_ok(host, remote, out, now);
	expect_in_to(remote, in, now, host);
}

/* ---- ESP basics ------------------------------------------------------------ */

START_TEST(esp_outbound_init_rewrites_source_and_is_pending)
{
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	ck_assert_uint_eq(dst_of(), REMOTE);
	ck_assert_uint_eq(last_event(EV_CREATED)->ev.spi_out, 0x1000);
	ck_assert_uint_eq(last_event(EV_CREATED)->ev.host, LAN_A);
	ck_assert_uint_eq(engine_get_stats(eng)->pending, 1);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 1);
}
END_TEST

START_TEST(esp_first_inbound_spi_associates_with_pending_init)
{
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	expect_in_to(REMOTE, 0x2000, 5, LAN_A);
	ck_assert_uint_eq(last_event(EV_ASSOCIATED)->ev.spi_in, 0x2000);
	ck_assert_uint_eq(last_event(EV_ASSOCIATED)->ev.spi_out, 0x1000);
	ck_assert_uint_eq(engine_get_stats(eng)->pending, 0);
	/* known both ways from now on */
	expect_in_to(REMOTE, 0x2000, 6, LAN_A);
	expect_out_ok(LAN_A, REMOTE, 0x1000, 7);
	ck_assert_uint_eq(count_events(EV_CREATED), 1);
}
END_TEST

START_TEST(two_hosts_initialising_at_once_are_serialized)
{
	cfg.parallel_sessions = true;
	start();
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	ck_assert_int_eq(esp_out(LAN_B, REMOTE, 0x1100, 0), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_SERIALIZED);
	ck_assert_uint_eq(last_event(EV_SERIALIZED)->ev.host, LAN_B);
	ck_assert_uint_eq(last_event(EV_SERIALIZED)->hosts[0], LAN_A);
	/* the first unknown inbound SPI goes to A, the pending one */
	expect_in_to(REMOTE, 0x2000, 1, LAN_A);
	/* then B's init gets the slot and the next new SPI is B's */
	expect_out_ok(LAN_B, REMOTE, 0x1100, 2);
	expect_in_to(REMOTE, 0x2100, 3, LAN_B);
	expect_in_to(REMOTE, 0x2000, 4, LAN_A);
	expect_in_to(REMOTE, 0x2100, 4, LAN_B);
}
END_TEST

START_TEST(same_host_second_spi_is_serialized_too)
{
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	ck_assert_int_eq(esp_out(LAN_A, REMOTE, 0x1001, 0), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_SERIALIZED);
}
END_TEST

START_TEST(inits_with_different_remotes_do_not_serialize)
{
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	expect_out_ok(LAN_B, REMOTE2, 0x1100, 0);
	expect_in_to(REMOTE2, 0x2100, 1, LAN_B);
	expect_in_to(REMOTE, 0x2000, 1, LAN_A);
}
END_TEST

START_TEST(parallel_sessions_off_blocks_second_host_until_expiry)
{
	uint64_t life = cfg.esp_lifetime_ms;

	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	ck_assert_int_eq(esp_out(LAN_B, REMOTE, 0x1100, 10), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_BLOCKED);
	ck_assert_uint_eq(last_event(EV_BLOCKED)->ev.host, LAN_B);
	ck_assert_uint_eq(last_event(EV_BLOCKED)->hosts[0], LAN_A);
	/* still blocked one millisecond before A's entry dies */
	ck_assert_int_eq(esp_out(LAN_B, REMOTE, 0x1100, life - 1),
			 VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_BLOCKED);
	/* and through once it has */
	expect_out_ok(LAN_B, REMOTE, 0x1100, life);
	expect_in_to(REMOTE, 0x2100, life + 1, LAN_B);
}
END_TEST

START_TEST(parallel_sessions_on_lets_both_hosts_in)
{
	cfg.parallel_sessions = true;
	start();
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	establish(LAN_B, REMOTE, 0x1100, 0x2100, 10);
	expect_in_to(REMOTE, 0x2000, 20, LAN_A);
	expect_in_to(REMOTE, 0x2100, 20, LAN_B);
	ck_assert_uint_eq(count_events(EV_BLOCKED), 0);
}
END_TEST

START_TEST(reload_turns_parallel_sessions_on_for_live_tables)
{
	struct engine_config on;

	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	ck_assert_int_eq(esp_out(LAN_B, REMOTE, 0x1100, 1), VERDICT_DROP);
	on = cfg;
	on.parallel_sessions = true;
	ck_assert_int_eq(engine_reconfigure(eng, &on), 0);
	expect_out_ok(LAN_B, REMOTE, 0x1100, 2);
}
END_TEST

/* Parallel sessions on, A and B both hold REMOTE; a reload turns it off.
 * Each may still rekey (a new out-SPI) with REMOTE; a third host may not. */
START_TEST(reload_parallel_off_lets_holders_rekey)
{
	struct engine_config off;

	cfg.parallel_sessions = true;
	start();
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	establish(LAN_B, REMOTE, 0x1100, 0x2100, 10);
	off = cfg;
	off.parallel_sessions = false;
	ck_assert_int_eq(engine_reconfigure(eng, &off), 0);
	expect_out_ok(LAN_A, REMOTE, 0x1001, 100 * SEC);
	expect_in_to(REMOTE, 0x2001, 100 * SEC + 1, LAN_A);
	expect_out_ok(LAN_B, REMOTE, 0x1101, 100 * SEC + 2);
	expect_in_to(REMOTE, 0x2101, 100 * SEC + 3, LAN_B);
	ck_assert_uint_eq(count_events(EV_BLOCKED), 0);
	/* a host without an association is still blocked */
	ck_assert_int_eq(esp_out(LAN_C, REMOTE, 0x1200, 100 * SEC + 4),
			 VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_BLOCKED);
}
END_TEST

START_TEST(reload_shorter_lifetime_applies_to_existing_entries)
{
	struct engine_config shorter = cfg;

	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	shorter.esp_lifetime_ms = 60 * SEC;
	ck_assert_int_eq(engine_reconfigure(eng, &shorter), 0);
	ck_assert_uint_le(engine_next_timer(eng), 60 * SEC);
	engine_run_timers(eng, 60 * SEC - 1);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 1);
	engine_run_timers(eng, 60 * SEC);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 0);
}
END_TEST

/* Entries above a max_entries cut by a reload stay and keep routing until
 * they expire (nothing is evicted); no new entry is made until the count
 * is below the new limit. */
START_TEST(reload_max_entries_below_live_count)
{
	struct engine_config small;

	cfg.parallel_sessions = true;
	start();
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	establish(LAN_B, REMOTE, 0x1100, 0x2100, 10);
	establish(LAN_C, REMOTE2, 0x1200, 0x2200, 20);
	small = cfg;
	small.max_entries = 1;
	small.max_per_host = 1;
	ck_assert_int_eq(engine_reconfigure(eng, &small), 0);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 3);
	expect_in_to(REMOTE, 0x2000, 30, LAN_A);
	expect_in_to(REMOTE, 0x2100, 31, LAN_B);
	expect_in_to(REMOTE2, 0x2200, 32, LAN_C);
	expect_out_ok(LAN_C, REMOTE2, 0x1200, 33);
	/* a new init (A with REMOTE2) is refused: table full */
	ck_assert_int_eq(esp_out(LAN_A, REMOTE2, 0x1300, 40), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_TABLE_FULL);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 3);
	/* A and B expire (C was refreshed at 33); one left = the limit:
	 * still full; once C expires too, a new entry fits */
	engine_run_timers(eng, 31 + cfg.esp_lifetime_ms);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 1);
	ck_assert_int_eq(esp_out(LAN_A, REMOTE2, 0x1300, 32 + cfg.esp_lifetime_ms),
			 VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_TABLE_FULL);
	engine_run_timers(eng, 33 + cfg.esp_lifetime_ms);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 0);
	expect_out_ok(LAN_A, REMOTE2, 0x1300, 34 + cfg.esp_lifetime_ms);
}
END_TEST

/* A reload that changes the internal prefixes: a host of the new prefix is
 * masqueraded at once, one of the removed prefix no longer is and can no
 * longer be preloaded. Its packets still reach the queue while the rules
 * are older than the config (the iptables backend has no guard after the
 * queue): dropped as not_internal, never accepted unchanged with their LAN
 * source (issue 12, found in review). */
START_TEST(reload_changes_internal_prefixes)
{
	struct engine_config moved = cfg;
	const uint32_t LAN10 = pb_addr("10.1.2.3");

	ck_assert_int_eq(esp_out(LAN10, REMOTE, 0x1500, 0), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_NOT_INTERNAL);
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 1);
	moved.internal[0].addr = pb_addr("10.0.0.0");
	moved.internal[0].mask = 0xff000000u;
	ck_assert_int_eq(engine_reconfigure(eng, &moved), 0);
	ck_assert(engine_is_internal(eng, LAN10));
	ck_assert(!engine_is_internal(eng, LAN_A));
	ck_assert_int_eq(esp_out(LAN_A, REMOTE, 0x1000, 10), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_NOT_INTERNAL);
	s.len = pb_isakmp(s.pkt, sizeof(s.pkt), LAN_A, REMOTE, 0xabc, 0, 2,
			  10);
	ck_assert_int_eq(run(DIR_OUTBOUND, 10), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_NOT_INTERNAL);
	ck_assert_uint_eq(engine_get_stats(eng)->reasons[R_NOT_INTERNAL], 3);
	ck_assert_int_eq(engine_preload(eng, REMOTE2, LAN_A, 0x3000, 0, 0, 11),
			 -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(engine_preload(eng, REMOTE2, LAN10, 0x3000, 0, 0, 12),
			 0);
	expect_in_to(REMOTE2, 0x3000, 13, LAN10);
	expect_out_ok(LAN10, REMOTE2, 0x1500, 14);   /* joins its preload */
}
END_TEST

START_TEST(init_timeout_releases_the_remote)
{
	uint64_t t = cfg.esp_init_timeout_ms, hold = cfg.esp_init_min_age_ms;

	cfg.parallel_sessions = true;
	start();
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	/* nobody waits: A keeps the slot however often it retransmits */
	for (uint64_t at = SEC; at < t; at += SEC)
		expect_out_ok(LAN_A, REMOTE, 0x1000, at);
	ck_assert_uint_eq(count_events(EV_SQUELCHED), 0);
	engine_run_timers(eng, t);
	ck_assert_uint_eq(count_events(EV_INIT_TIMEOUT), 1);
	ck_assert_uint_eq(last_event(EV_INIT_TIMEOUT)->ev.host, LAN_A);
	ck_assert_uint_eq(engine_get_stats(eng)->pending, 0);
	expect_out_ok(LAN_B, REMOTE, 0x1100, t);
	/* past the round trip in which A's late answer could still come */
	expect_in_to(REMOTE, 0x2100, t + hold, LAN_B);
}
END_TEST

START_TEST(init_timeout_applies_without_timer_run)
{
	uint64_t t = cfg.esp_init_timeout_ms, hold = cfg.esp_init_min_age_ms;

	cfg.parallel_sessions = true;
	start();
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	/* no engine_run_timers: the rule holds on the packet path too */
	expect_out_ok(LAN_B, REMOTE, 0x1100, t);
	expect_in_to(REMOTE, 0x2100, t + hold, LAN_B);
}
END_TEST

START_TEST(timed_out_init_asks_again_on_next_outbound)
{
	uint64_t t = cfg.esp_init_timeout_ms;

	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	engine_run_timers(eng, t);
	ck_assert_uint_eq(engine_get_stats(eng)->pending, 0);
	/* a reply after the init expired is only guessed ... */
	ck_assert_int_eq(esp_in(REMOTE, 0x2000, t + 1),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_uint_eq(count_events(EV_GUESSED), 1);
	ck_assert_uint_eq(count_events(EV_ASSOCIATED), 0);
	/* ... until A answers and its init is pending again */
	expect_out_ok(LAN_A, REMOTE, 0x1000, t + 2);
	ck_assert_uint_eq(engine_get_stats(eng)->pending, 1);
	expect_in_to(REMOTE, 0x2000, t + 3, LAN_A);
	ck_assert_uint_eq(count_events(EV_ASSOCIATED), 1);
}
END_TEST

START_TEST(pending_init_is_squelched_after_retries)
{
	unsigned retries = cfg.esp_init_retries;
	uint64_t sq = cfg.esp_squelch_ms, hold = cfg.esp_init_min_age_ms;

	cfg.parallel_sessions = true;
	start();
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	/* however much B sends, A keeps the slot for its round trip */
	for (unsigned i = 0; i < 100; i++) {
		ck_assert_int_eq(esp_out(LAN_B, REMOTE, 0x1100, 1 + i),
				 VERDICT_DROP);
		ck_assert_int_eq(s.d.reason, R_ESP_SERIALIZED);
	}
	/* A's own unanswered retransmissions while B waits count; they
	 * squelch it only once it has held the slot for init_min_age */
	for (unsigned i = 1; i <= retries; i++)
		expect_out_ok(LAN_A, REMOTE, 0x1000, 100 * i);
	expect_out_ok(LAN_A, REMOTE, 0x1000, hold - 1);
	ck_assert_uint_eq(count_events(EV_SQUELCHED), 0);
	/* B asks at init_min_age: A has had its turn, B is first in line */
	expect_out_ok(LAN_B, REMOTE, 0x1100, hold);
	ck_assert_uint_eq(count_events(EV_SQUELCHED), 1);
	ck_assert_uint_eq(last_event(EV_SQUELCHED)->ev.host, LAN_A);
	/* A's packets are dropped while squelched */
	ck_assert_int_eq(esp_out(LAN_A, REMOTE, 0x1000, hold + 1),
			 VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_SQUELCHED);
	ck_assert_int_eq(esp_out(LAN_A, REMOTE, 0x1000, hold + sq - 1),
			 VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_SQUELCHED);
	/* B's answer, once A's could no longer be on its way, binds B */
	expect_in_to(REMOTE, 0x2100, 2 * hold, LAN_B);
	ck_assert_uint_eq(last_event(EV_ASSOCIATED)->ev.host, LAN_B);
	/* after the squelch A asks again and gets the free slot */
	expect_out_ok(LAN_A, REMOTE, 0x1000, hold + sq);
	expect_in_to(REMOTE, 0x2000, hold + sq + 1, LAN_A);
	ck_assert_uint_eq(last_event(EV_ASSOCIATED)->ev.host, LAN_A);
}
END_TEST

START_TEST(pending_init_without_waiters_is_never_squelched)
{
	uint64_t hold = cfg.esp_init_min_age_ms;

	cfg.parallel_sessions = true;
	start();
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	for (unsigned i = 1; i < 200; i++)
		expect_out_ok(LAN_A, REMOTE, 0x1000, hold * i / 10);
	ck_assert_uint_eq(count_events(EV_SQUELCHED), 0);
	ck_assert_uint_eq(engine_get_stats(eng)->pending, 1);
}
END_TEST

/* init_retries = 0 (the parser accepts it): once a pending init has held
 * the slot for init_min_age, a single unanswered retransmission of its own
 * while another host waits makes it step aside (with the default 5 it
 * keeps the slot). */
static void retries_run(unsigned retries)
{
	uint64_t hold;

	cfg.parallel_sessions = true;
	cfg.esp_init_retries = retries;
	start();
	hold = cfg.esp_init_min_age_ms;
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	ck_assert_int_eq(esp_out(LAN_B, REMOTE, 0x1100, 1), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_SERIALIZED);
	expect_out_ok(LAN_A, REMOTE, 0x1000, hold - 1);   /* not quiet */
	esp_out(LAN_B, REMOTE, 0x1100, hold);
}

START_TEST(init_retries_zero_squelches_at_first_collision)
{
	retries_run(5);
	ck_assert_int_eq(s.d.verdict, VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_SERIALIZED);
	ck_assert_uint_eq(count_events(EV_SQUELCHED), 0);
	retries_run(0);
	ck_assert_int_eq(s.d.verdict, VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(count_events(EV_SQUELCHED), 1);
	ck_assert_uint_eq(last_event(EV_SQUELCHED)->ev.host, LAN_A);
	ck_assert_int_eq(esp_out(LAN_A, REMOTE, 0x1000,
				 cfg.esp_init_min_age_ms + 1), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_SQUELCHED);
}
END_TEST

/* guess_burst = 0 (the parser accepts it): never guess, whatever the rate;
 * the unknown SPI is dropped as rate-limited, nothing is copied. */
START_TEST(guess_burst_zero_never_guesses)
{
	cfg.guess_burst = 0;
	cfg.guess_rate = 10000;
	start();
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x0102030405060708ULL, 0, 0),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(ike_out(LAN_B, REMOTE, 0x1102030405060708ULL, 0, 1),
			 VERDICT_ACCEPT_MODIFIED);
	for (uint64_t t = 10; t < 10 * SEC; t += SEC) {
		ck_assert_int_eq(esp_in(REMOTE, 0x7000 + (uint32_t)t, t),
				 VERDICT_DROP);
		ck_assert_int_eq(s.d.reason, R_GUESS_RATELIMITED);
		ck_assert_uint_eq(s.d.n_copies, 0);
	}
	ck_assert_uint_eq(count_events(EV_GUESSED), 0);
	ck_assert_uint_eq(engine_get_stats(eng)->copies, 0);
}
END_TEST

START_TEST(lan_host_rekey_gets_new_association)
{
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	expect_out_ok(LAN_A, REMOTE, 0x1001, 100 * SEC);
	expect_in_to(REMOTE, 0x2001, 100 * SEC + 1, LAN_A);
	ck_assert_uint_eq(count_events(EV_ASSOCIATED), 2);
	expect_in_to(REMOTE, 0x2000, 100 * SEC + 2, LAN_A);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 2);
}
END_TEST

START_TEST(remote_rekey_is_guessed_then_associated)
{
	cfg.parallel_sessions = true;
	start();
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0xa1, 0, 0),
			 VERDICT_ACCEPT_MODIFIED);
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 1);
	ck_assert_int_eq(ike_out(LAN_B, REMOTE, 0xb1, 0, 2),
			 VERDICT_ACCEPT_MODIFIED);
	establish(LAN_B, REMOTE, 0x1100, 0x2100, 3);
	/* the remote rekeys A's tunnel first: an unknown SPI, nothing pending */
	ck_assert_int_eq(ike_in(REMOTE, 0xa1, 0xe1, 10 * SEC),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_int_eq(esp_in(REMOTE, 0x2002, 10 * SEC + 1),
			 VERDICT_ACCEPT_MODIFIED);
	/* most recent ISAKMP talker first, one copy to the other */
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_uint_eq(s.d.n_copies, 1);
	ck_assert_uint_eq(s.d.copy_to[0], LAN_B);
	ck_assert_uint_eq(last_event(EV_GUESSED)->ev.spi_in, 0x2002);
	ck_assert_uint_eq(last_event(EV_GUESSED)->ev.n_hosts, 2);
	/* nothing was recorded: the next packet is guessed again */
	ck_assert_int_eq(esp_in(REMOTE, 0x2002, 10 * SEC + 2),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(count_events(EV_GUESSED), 2);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 2);
	/* A answers under its new out-SPI: a normal init, then association */
	expect_out_ok(LAN_A, REMOTE, 0x1002, 10 * SEC + 3);
	expect_in_to(REMOTE, 0x2002, 10 * SEC + 4, LAN_A);
	ck_assert_uint_eq(s.d.n_copies, 0);
	ck_assert_uint_eq(last_event(EV_ASSOCIATED)->ev.spi_out, 0x1002);
}
END_TEST

START_TEST(guess_reaches_at_most_guess_copies_hosts)
{
	cfg.parallel_sessions = true;
	cfg.guess_copies = 3;
	start();
	for (uint32_t i = 0; i < 6; i++)
		ck_assert_int_eq(ike_out(LAN_A + i, REMOTE, 0x100 + i, 0, i),
				 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(esp_in(REMOTE, 0x3000, 10), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A + 5);
	ck_assert_uint_eq(s.d.n_copies, 2);
	ck_assert_uint_eq(s.d.copy_to[0], LAN_A + 4);
	ck_assert_uint_eq(s.d.copy_to[1], LAN_A + 3);
}
END_TEST

START_TEST(guess_flood_is_rate_limited_and_allocates_nothing)
{
	size_t delivered = 0, entries;
	uint64_t t;

	cfg.parallel_sessions = true;
	start();
	for (uint32_t i = 0; i < 5; i++)
		ck_assert_int_eq(ike_out(LAN_A + i, REMOTE, 0x100 + i, 0, 0),
				 VERDICT_ACCEPT_MODIFIED);
	entries = engine_get_stats(eng)->isakmp_entries;
	/* 10000 spoofed unknown SPIs within one second */
	for (t = 0; t < 10000; t++) {
		if (esp_in(REMOTE, 0x10000 + (uint32_t)t, SEC + t / 10) ==
		    VERDICT_ACCEPT_MODIFIED)
			delivered += 1 + s.d.n_copies;
		else
			ck_assert_int_eq(s.d.reason, R_GUESS_RATELIMITED);
	}
	/* burst 20 plus 10 per second over the second of the flood */
	ck_assert_uint_le(delivered, cfg.guess_burst + cfg.guess_rate + 1);
	ck_assert_uint_ge(delivered, cfg.guess_burst);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_entries, entries);
	/* the budget refills */
	ck_assert_int_eq(esp_in(REMOTE, 0x5000, 100 * SEC),
			 VERDICT_ACCEPT_MODIFIED);
}
END_TEST

START_TEST(inbound_from_unknown_remote_is_not_ours)
{
	uint8_t before[2048];

	esp_in(REMOTE, 0x2000, 0);
	ck_assert_int_eq(s.d.verdict, VERDICT_ACCEPT);
	ck_assert_int_eq(s.d.reason, R_NOT_OURS);
	s.len = pb_esp(s.pkt, sizeof(s.pkt), REMOTE, EXT, 0x2000, 1, 64);
	memcpy(before, s.pkt, s.len);
	run(DIR_INBOUND, 0);
	ck_assert_mem_eq(before, s.pkt, s.len);
	ck_assert_uint_eq(engine_get_stats(eng)->remotes, 0);
}
END_TEST

START_TEST(inbound_to_another_address_is_not_ours)
{
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	s.len = pb_esp(s.pkt, sizeof(s.pkt), REMOTE, pb_addr("198.51.100.2"),
		       0x2000, 1, 64);
	ck_assert_int_eq(run(DIR_INBOUND, 1), VERDICT_ACCEPT);
	ck_assert_int_eq(s.d.reason, R_NOT_OURS);
}
END_TEST

START_TEST(esp_entry_expires_at_exactly_its_lifetime)
{
	uint64_t life = cfg.esp_lifetime_ms;

	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	ck_assert_uint_eq(engine_run_timers(eng, life - 1) > 0 &&
			  engine_get_stats(eng)->esp_entries == 0, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 1);
	ck_assert_uint_eq(count_events(EV_EXPIRED), 0);
	engine_run_timers(eng, life);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 0);
	ck_assert_uint_eq(count_events(EV_EXPIRED), 1);
	ck_assert_uint_eq(last_event(EV_EXPIRED)->ev.spi_in, 0x2000);
	ck_assert_uint_eq(engine_get_stats(eng)->remotes, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->hosts, 0);
}
END_TEST

START_TEST(traffic_refreshes_the_lifetime)
{
	uint64_t life = cfg.esp_lifetime_ms;

	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	expect_in_to(REMOTE, 0x2000, life - 1, LAN_A);
	engine_run_timers(eng, life + 10);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 1);
	/* on the packet path, without timers: alive at last+life-1 ... */
	expect_in_to(REMOTE, 0x2000, 2 * life - 2, LAN_A);
	/* ... and dead at exactly last+life */
	ck_assert_int_eq(esp_in(REMOTE, 0x2000, 3 * life - 2), VERDICT_ACCEPT);
	ck_assert_int_eq(s.d.reason, R_NOT_OURS);
	ck_assert_uint_eq(count_events(EV_EXPIRED), 1);
}
END_TEST

/* The kernel fast path's use, credited: counters grow, the lifetime is
 * renewed from the credit's time, an entry past its lifetime goes. */
START_TEST(credited_use_keeps_the_entry_alive)
{
	uint64_t life = cfg.esp_lifetime_ms;
	struct engine_esp_use use = { .pkts_out = 5, .bytes_out = 500,
				      .pkts_in = 7, .bytes_in = 700 };
	struct engine_esp_use idle = { 0 };
	struct engine_esp_info info;

	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	ck_assert_int_eq(engine_credit_esp(eng, REMOTE, 0x2000, &use,
					   life - 1), 0);
	engine_run_timers(eng, life + 10);
	ck_assert_int_eq(engine_get_esp(eng, REMOTE, 0x2000, &info), 0);
	ck_assert_uint_eq(info.pkts_out, 6);
	ck_assert_uint_eq(info.pkts_in, 8);
	ck_assert_uint_eq(info.bytes_in - 700, info.bytes_out - 500);
	ck_assert_uint_eq(info.last_seen, life - 1);
	ck_assert_uint_eq(info.expires, 2 * life - 1);
	/* no use: nothing renewed */
	ck_assert_int_eq(engine_credit_esp(eng, REMOTE, 0x2000, &idle,
					   2 * life - 2), 0);
	ck_assert_int_eq(engine_get_esp(eng, REMOTE, 0x2000, &info), 0);
	ck_assert_uint_eq(info.last_seen, life - 1);
	/* too late: the entry expires instead */
	errno = 0;
	ck_assert_int_eq(engine_credit_esp(eng, REMOTE, 0x2000, &use,
					   2 * life - 1), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_uint_eq(count_events(EV_EXPIRED), 1);
	ck_assert_int_eq(engine_get_esp(eng, REMOTE, 0x2000, &info), -1);
	ck_assert_int_eq(engine_credit_esp(eng, REMOTE, 0x9999, &use, 0), -1);
}
END_TEST

START_TEST(next_timer_tracks_the_earliest_deadline)
{
	ck_assert_uint_eq(engine_next_timer(eng), UINT64_MAX);
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	ck_assert_uint_le(engine_next_timer(eng), cfg.esp_init_timeout_ms);
	ck_assert_uint_eq(engine_run_timers(eng, cfg.esp_init_timeout_ms - 1),
			  0);
}
END_TEST

/* ---- ISAKMP ------------------------------------------------------------------ */

START_TEST(isakmp_outbound_keeps_port_500_and_replies_come_back)
{
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0xc001, 0, 0),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(src_of(), EXT);
	ck_assert_uint_eq(pb_get16(s.pkt + 20), 500);
	assert_checksums();
	ck_assert_int_eq(ike_in(REMOTE, 0xc001, 0xd001, 1),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_uint_eq(pb_get16(s.pkt + 22), 500);
	assert_checksums();
}
END_TEST

START_TEST(isakmp_two_hosts_one_remote_each_gets_its_replies)
{
	ike_out(LAN_A, REMOTE, 0xa0a0, 0, 0);
	ike_out(LAN_B, REMOTE, 0xb0b0, 0, 1);
	ck_assert_int_eq(ike_in(REMOTE, 0xb0b0, 0xbbbb, 2),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_B);
	ck_assert_int_eq(ike_in(REMOTE, 0xa0a0, 0xaaaa, 3),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_int_eq(ike_in(REMOTE, 0xb0b0, 0xbbbb, 4),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_B);
}
END_TEST

START_TEST(isakmp_ikev2_spis_route_like_cookies)
{
	s.len = pb_isakmp(s.pkt, sizeof(s.pkt), LAN_A, REMOTE, 0x1122334455667788ULL,
			  0, 2, 200);
	ck_assert_int_eq(run(DIR_OUTBOUND, 0), VERDICT_ACCEPT_MODIFIED);
	s.len = pb_isakmp(s.pkt, sizeof(s.pkt), LAN_B, REMOTE, 0x99, 0, 2, 200);
	ck_assert_int_eq(run(DIR_OUTBOUND, 0), VERDICT_ACCEPT_MODIFIED);
	s.len = pb_isakmp(s.pkt, sizeof(s.pkt), REMOTE, EXT, 0x1122334455667788ULL,
			  0x8877665544332211ULL, 2, 300);
	ck_assert_int_eq(run(DIR_INBOUND, 1), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	assert_checksums();
}
END_TEST

START_TEST(isakmp_cookie_collision_is_dropped_until_answered)
{
	ike_out(LAN_A, REMOTE, 0xc0c0, 0, 0);
	ck_assert_int_eq(ike_out(LAN_B, REMOTE, 0xc0c0, 0, 1), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ISAKMP_COLLISION);
	ck_assert_uint_eq(last_event(EV_COLLIDED)->ev.host, LAN_B);
	ck_assert_uint_eq(last_event(EV_COLLIDED)->hosts[0], LAN_A);
	/* A's exchange is answered: its responder cookie separates them */
	ck_assert_int_eq(ike_in(REMOTE, 0xc0c0, 0xaaaa, 2),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_int_eq(ike_out(LAN_B, REMOTE, 0xc0c0, 0, 3),
			 VERDICT_ACCEPT_MODIFIED);
	/* B's exchange is unanswered, but A's known pair still goes to A */
	ck_assert_int_eq(ike_in(REMOTE, 0xc0c0, 0xaaaa, 3),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_int_eq(ike_in(REMOTE, 0xc0c0, 0xbbbb, 4),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_B);
	ck_assert_int_eq(ike_in(REMOTE, 0xc0c0, 0xaaaa, 5),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	/* and a reuse of A's full cookie pair by B is a collision */
	ck_assert_int_eq(ike_out(LAN_B, REMOTE, 0xc0c0, 0xaaaa, 6),
			 VERDICT_DROP);
}
END_TEST

/* Found by tests/fuzz/fuzz_engine (restoring the walked state refused the
 * result): a host whose own exchange was unanswered took another host's
 * full cookie pair by sending it, and both held the pair. */
START_TEST(isakmp_unanswered_host_cannot_take_another_hosts_pair)
{
	ike_out(LAN_A, REMOTE, 0xc0c0, 0, 0);
	ck_assert_int_eq(ike_in(REMOTE, 0xc0c0, 0xaaaa, 1),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(ike_out(LAN_B, REMOTE, 0xc0c0, 0, 2),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(ike_out(LAN_B, REMOTE, 0xc0c0, 0xaaaa, 3),
			 VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ISAKMP_COLLISION);
	ck_assert_uint_eq(last_event(EV_COLLIDED)->hosts[0], LAN_A);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(ike_in(REMOTE, 0xc0c0, 0xaaaa, 4 + i),
				 VERDICT_ACCEPT_MODIFIED);
		ck_assert_uint_eq(dst_of(), LAN_A);
	}
	/* B's own answer still reaches B */
	ck_assert_int_eq(ike_in(REMOTE, 0xc0c0, 0xbbbb, 8),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_B);
}
END_TEST

START_TEST(isakmp_unknown_cookie_goes_to_most_recent_host)
{
	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);
	ike_out(LAN_B, REMOTE, 0xb1, 0, 1);
	ck_assert_int_eq(ike_in(REMOTE, 0xfeed, 0, 2), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_B);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_entries, 2);
	/* nobody ever talked to REMOTE2: the router's own */
	ck_assert_int_eq(ike_in(REMOTE2, 0xfeed, 0, 3), VERDICT_ACCEPT);
	ck_assert_int_eq(s.d.reason, R_NOT_OURS);
}
END_TEST

/* Two hosts share an initiator cookie (allowed once A's exchange was
 * answered); B's new exchange is unanswered. A reply without a responder
 * cookie is B's, even when A spoke last. */
START_TEST(isakmp_reply_without_responder_cookie_goes_to_unanswered)
{
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0xc0c0, 0, 0),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(ike_in(REMOTE, 0xc0c0, 0xaaaa, 1),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_int_eq(ike_out(LAN_B, REMOTE, 0xc0c0, 0, 2),
			 VERDICT_ACCEPT_MODIFIED);
	/* A is the most recent talker now */
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0xc0c0, 0xaaaa, 3),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(ike_in(REMOTE, 0xc0c0, 0, 4), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_B);
	/* and with no exchange unanswered, the most recent one takes it */
	ck_assert_int_eq(ike_in(REMOTE, 0xc0c0, 0xbbbb, 5),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_B);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0xc0c0, 0xaaaa, 6),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(ike_in(REMOTE, 0xc0c0, 0, 7), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
}
END_TEST

/* ---- exchanges the remote starts ------------------------------------------- */

/* An unknown initiator cookie from a remote the LAN talks to goes to a LAN
 * host within the remote's own token bucket: the burst at once, then the
 * rate; the rest is dropped and counted. Other remotes and the ESP guess
 * budget are untouched. */
START_TEST(isakmp_fallback_is_rate_limited_per_remote)
{
	unsigned burst = cfg.isakmp_fallback_burst, rate = cfg.isakmp_fallback_rate;
	const struct engine_stats *st;
	unsigned passed = 0;

	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);
	ike_out(LAN_A, REMOTE2, 0xa2, 0, 0);
	for (unsigned i = 0; i < burst + 30; i++) {
		enum verdict v = ike_in(REMOTE, 0x10000 + i, 0, 1);

		if (v == VERDICT_ACCEPT_MODIFIED) {
			ck_assert_uint_eq(dst_of(), LAN_A);
			passed++;
		} else {
			ck_assert_int_eq(v, VERDICT_DROP);
			ck_assert_int_eq(s.d.reason, R_ISAKMP_RATELIMITED);
		}
	}
	ck_assert_uint_eq(passed, burst);
	st = engine_get_stats(eng);
	ck_assert_uint_eq(st->reasons[R_ISAKMP_RATELIMITED], 30);
	ck_assert_uint_eq(last_event(EV_DROPPED)->ev.reason,
			  R_ISAKMP_RATELIMITED);
	ck_assert_int_eq(last_event(EV_DROPPED)->ev.table, TABLE_ISAKMP);
	ck_assert_uint_eq(last_event(EV_DROPPED)->ev.remote, REMOTE);
	/* nothing was recorded for the flood */
	ck_assert_uint_eq(st->isakmp_entries, 2);
	/* another remote has its own bucket */
	ck_assert_int_eq(ike_in(REMOTE2, 0x20000, 0, 1),
			 VERDICT_ACCEPT_MODIFIED);
	/* and the ESP guess budget of REMOTE is its own too */
	ck_assert_int_eq(esp_in(REMOTE, 0x7777, 1), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	/* one second later: `rate` more, not one more */
	passed = 0;
	for (unsigned i = 0; i < rate + 10; i++)
		passed += ike_in(REMOTE, 0x30000 + i, 0, 1 + SEC) ==
			  VERDICT_ACCEPT_MODIFIED;
	ck_assert_uint_eq(passed, rate);
}
END_TEST

/* The fallback picks hosts as the ESP guess does, ESP holders first: B
 * talked ISAKMP last, but A holds ESP with the remote. With copies, the
 * next host gets one, each copy paid from the bucket. */
START_TEST(isakmp_fallback_prefers_esp_holder_and_copies)
{
	cfg.parallel_sessions = true;
	cfg.isakmp_fallback_copies = 3;
	cfg.isakmp_fallback_burst = 4;
	start();
	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 1);
	ike_out(LAN_B, REMOTE, 0xb1, 0, 2);
	ck_assert_int_eq(ike_in(REMOTE, 0xfeed, 0, 3), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_uint_eq(s.d.n_copies, 1);
	ck_assert_uint_eq(s.d.copy_to[0], LAN_B);
	ck_assert_uint_eq(engine_get_stats(eng)->copies, 1);
	ck_assert_uint_eq(last_event(EV_GUESSED)->ev.table, TABLE_ISAKMP);
	ck_assert_uint_eq(last_event(EV_GUESSED)->ev.n_hosts, 2);
	ck_assert_uint_eq(last_event(EV_GUESSED)->hosts[0], LAN_A);
	ck_assert_uint_eq(last_event(EV_GUESSED)->hosts[1], LAN_B);
	/* 2 of 4 tokens left: one more full guess, then nothing */
	ck_assert_int_eq(ike_in(REMOTE, 0xfeee, 0, 3), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(s.d.n_copies, 1);
	ck_assert_int_eq(ike_in(REMOTE, 0xfeef, 0, 3), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ISAKMP_RATELIMITED);
	/* a partial budget sends fewer copies, never more */
	ck_assert_int_eq(ike_in(REMOTE, 0xfef0, 0, 3 + 100),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(s.d.n_copies, 0);
	ck_assert_uint_eq(dst_of(), LAN_A);
}
END_TEST

/* Entries made by a host's answers to remote-started exchanges are held
 * to the (host, remote) allowance, and never to max_per_host: a host whose
 * answers fill the allowance still has every slot for its own exchanges,
 * and the allowance is per remote. */
START_TEST(isakmp_answers_use_allowance_not_host_quota)
{
	cfg.max_per_host = 4;
	cfg.isakmp_answer_allowance = 3;
	start();
	for (unsigned i = 0; i < 3; i++)
		ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x100 + i, 0xa00 + i, 0),
				 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x103, 0xa03, 0), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ISAKMP_ANSWER_LIMIT);
	ck_assert_uint_eq(last_event(EV_REFUSED)->ev.reason,
			  R_ISAKMP_ANSWER_LIMIT);
	ck_assert_uint_eq(last_event(EV_REFUSED)->ev.host, LAN_A);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_answers, 3);
	/* the answered exchanges carry on */
	ck_assert_int_eq(ike_in(REMOTE, 0x101, 0xa01, 1), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x101, 0xa01, 1),
			 VERDICT_ACCEPT_MODIFIED);
	/* the host's own exchanges get all of max_per_host */
	for (unsigned i = 0; i < 4; i++)
		ck_assert_int_eq(ike_out(LAN_A, REMOTE2, 0x200 + i, 0, 2),
				 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE2, 0x204, 0, 2), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_HOST_FULL);
	/* answers to another remote have their own allowance */
	ck_assert_int_eq(ike_out(LAN_A, REMOTE2, 0x300, 0xb00, 3),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_answers, 4);
	ck_assert_uint_eq(engine_get_stats(eng)->hosts, 1);
	/* as they expire the allowance comes back, and the host goes with
	 * its last entry */
	engine_run_timers(eng, cfg.isakmp_lifetime_ms + 3);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_answers, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_entries, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->hosts, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->remotes, 0);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x103, 0xa03,
				 cfg.isakmp_lifetime_ms + 4),
			 VERDICT_ACCEPT_MODIFIED);
}
END_TEST

/* A spoofer of REMOTE's address fills A's answer allowance with exchanges
 * it never follows up (it cannot: A's responder cookie goes to the real
 * REMOTE). The real REMOTE's exchange is not kept out: once the spoofed
 * answers are ENGINE_ISAKMP_ANSWER_MIN_AGE_MS old, A's answer to it takes
 * the place of the oldest, REMOTE's next message (with A's responder
 * cookie) confirms it, and no later spoofed answer displaces it. Younger
 * ones are never displaced (the real remote's next message is a round trip
 * away), nor confirmed ones (issue 11, found in review). */
START_TEST(isakmp_spoofed_answers_give_way_to_a_real_exchange)
{
	const uint64_t age = ENGINE_ISAKMP_ANSWER_MIN_AGE_MS;
	uint64_t t;

	cfg.isakmp_answer_allowance = 3;
	start();
	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);        /* A talks to REMOTE */
	for (unsigned i = 0; i < 3; i++) {
		ck_assert_int_eq(ike_in(REMOTE, 0x500 + i, 0, 1),
				 VERDICT_ACCEPT_MODIFIED);
		ck_assert_uint_eq(dst_of(), LAN_A);
		ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x500 + i, 0xe00 + i, 1),
				 VERDICT_ACCEPT_MODIFIED);
	}
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_answers, 3);
	/* the spoofer retransmits a request (refreshing its entry) */
	ck_assert_int_eq(ike_in(REMOTE, 0x500, 0, age - 1),
			 VERDICT_ACCEPT_MODIFIED);
	/* too young to give way: the real exchange's answer is refused */
	ck_assert_int_eq(ike_in(REMOTE, 0x777, 0, age - 1),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x777, 0xf77, age - 1),
			 VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ISAKMP_ANSWER_LIMIT);
	/* REMOTE retransmits after the minimum age: A's answer gets in */
	t = age + 1;
	ck_assert_int_eq(ike_in(REMOTE, 0x777, 0, t), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x777, 0xf77, t),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_answers, 3);
	ck_assert_uint_eq(last_event(EV_EXPIRED)->ev.reason,
			  R_ISAKMP_ANSWER_LIMIT);
	ck_assert_uint_eq(last_event(EV_EXPIRED)->ev.cookie_i, 0x500);
	/* REMOTE's next message carries A's responder cookie */
	ck_assert_int_eq(ike_in(REMOTE, 0x777, 0xf77, t + 50),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	/* the flood goes on for a minute, A answering all that reaches it */
	for (t += 100; t < 60 * SEC; t += 100) {
		uint64_t ci = 0x90000 + t;

		if (ike_in(REMOTE, ci, 0, t) == VERDICT_ACCEPT_MODIFIED)
			ike_out(LAN_A, REMOTE, ci, 0xd0000 + t, t);
	}
	ck_assert_uint_ge(count_events(EV_EXPIRED), 5);
	/* the confirmed entry never gave way (a guess would still have taken
	 * REMOTE's next message to A, so the events say it) */
	for (size_t i = 0; i < n_events; i++)
		ck_assert(events[i].ev.kind != EV_EXPIRED ||
			  events[i].ev.cookie_i != 0x777);
	/* the real exchange is still A's, routed both ways */
	ck_assert_int_eq(ike_in(REMOTE, 0x777, 0xf77, t), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x777, 0xf77, t),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_answers, 3);
	/* with every answer confirmed, nothing gives way */
	cfg.isakmp_answer_allowance = 1;
	start();
	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);
	ike_in(REMOTE, 0x888, 0, 1);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x888, 0xf88, 1),
			 VERDICT_ACCEPT_MODIFIED);
	ike_in(REMOTE, 0x888, 0xf88, 2);
	ike_in(REMOTE, 0x889, 0, 10 * age);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x889, 0xf89, 10 * age),
			 VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ISAKMP_ANSWER_LIMIT);
}
END_TEST

/* answer_allowance 0: no remote-started exchange is answered through the
 * masquerade; the host's own still are. Answers count toward max_entries. */
START_TEST(isakmp_answer_allowance_zero_and_table_limit)
{
	cfg.isakmp_answer_allowance = 0;
	start();
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x100, 0xa00, 0), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ISAKMP_ANSWER_LIMIT);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x101, 0, 0),
			 VERDICT_ACCEPT_MODIFIED);
	cfg.isakmp_answer_allowance = 8;
	cfg.max_entries = 2;
	start();
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0x100, 0xa00, 0),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(ike_out(LAN_B, REMOTE, 0x101, 0xa01, 0),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(ike_out(LAN_C, REMOTE, 0x102, 0xa02, 0), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_TABLE_FULL);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_answers, 2);
	ck_assert_uint_eq(engine_get_stats(eng)->hosts, 2);
}
END_TEST

/* The attack, in the engine: a remote's address floods new
 * exchanges for 10 s; A answers every one that reaches it. Few reach it
 * (burst + rate * time), A's answers stay within the allowance, and A can
 * at once start its own IKE exchange and ESP tunnel with another remote,
 * with max_per_host small enough that the flood would have filled it. */
START_TEST(isakmp_flood_leaves_host_its_own_exchanges)
{
	unsigned delivered = 0, sent = 0;
	uint64_t t;

	cfg.max_per_host = 16;
	start();
	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);
	ike_in(REMOTE, 0xa1, 0xe1, 1);
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 2);
	for (t = 10; t < 10 + 10 * SEC; t += 10) {
		for (unsigned k = 0; k < 5; k++) {
			uint64_t ci = 0x5000000 + sent++;

			if (ike_in(REMOTE, ci, 0, t) != VERDICT_ACCEPT_MODIFIED)
				continue;
			ck_assert_uint_eq(dst_of(), LAN_A);
			delivered++;
			/* A's IKE daemon answers */
			ike_out(LAN_A, REMOTE, ci, 0x9000000 + ci, t);
		}
	}
	ck_assert_uint_eq(sent, 5000);
	ck_assert_uint_le(delivered, cfg.isakmp_fallback_burst +
				     cfg.isakmp_fallback_rate * 10);
	ck_assert_uint_ge(delivered, cfg.isakmp_fallback_rate * 10);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_answers,
			  cfg.isakmp_answer_allowance);
	ck_assert_uint_eq(engine_get_stats(eng)->reasons[R_HOST_FULL], 0);
	/* A's own exchange and tunnel with REMOTE2, at once */
	ck_assert_int_eq(ike_out(LAN_A, REMOTE2, 0xa2, 0, t),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(ike_in(REMOTE2, 0xa2, 0xe2, t), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	establish(LAN_A, REMOTE2, 0x1100, 0x2100, t);
	/* and its old tunnel with REMOTE lives on */
	expect_in_to(REMOTE, 0x2000, t, LAN_A);
}
END_TEST

/* A remote behind its own NAT starts IKE from port 1025 (issue 12): the
 * request goes to the host that last talked ISAKMP with it, and the host's
 * answer, from port 500 to 1025 (only the source port is 500), leaves from
 * the external address with both ports kept, its replies coming back. */
START_TEST(isakmp_answer_to_a_natted_remote_keeps_ports)
{
	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);
	s.len = pb_isakmp(s.pkt, sizeof(s.pkt), REMOTE, EXT, 0xbeef, 0, 2, 40);
	s.pkt[20] = 1025 >> 8;
	s.pkt[21] = 1025 & 0xff;
	pb_fix_checksums(s.pkt, s.len);
	ck_assert_int_eq(run(DIR_INBOUND, 1), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	ck_assert_uint_eq(pb_get16(s.pkt + 20), 1025);
	ck_assert_uint_eq(pb_get16(s.pkt + 22), 500);
	assert_checksums();
	/* the answer: 500 -> 1025 */
	s.len = pb_isakmp(s.pkt, sizeof(s.pkt), LAN_A, REMOTE, 0xbeef, 0xcafe, 2,
			  40);
	s.pkt[22] = 1025 >> 8;
	s.pkt[23] = 1025 & 0xff;
	pb_fix_checksums(s.pkt, s.len);
	ck_assert_int_eq(run(DIR_OUTBOUND, 2), VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(s.d.reason, R_PASS);
	ck_assert_uint_eq(src_of(), EXT);
	ck_assert_uint_eq(pb_get16(s.pkt + 20), 500);
	ck_assert_uint_eq(pb_get16(s.pkt + 22), 1025);
	assert_checksums();
	/* the exchange goes on, to A, by its cookie pair */
	ck_assert_int_eq(engine_get_stats(eng)->isakmp_entries, 2);
	s.len = pb_isakmp(s.pkt, sizeof(s.pkt), REMOTE, EXT, 0xbeef, 0xcafe, 2,
			  40);
	s.pkt[20] = 1025 >> 8;
	s.pkt[21] = 1025 & 0xff;
	pb_fix_checksums(s.pkt, s.len);
	ck_assert_int_eq(run(DIR_INBOUND, 3), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	assert_checksums();
}
END_TEST

START_TEST(isakmp_is_never_serialized)
{
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);   /* ESP init pending */
	ck_assert_int_eq(ike_out(LAN_B, REMOTE, 0xb1, 0, 1),
			 VERDICT_ACCEPT_MODIFIED);
}
END_TEST

START_TEST(isakmp_entry_expires_at_its_lifetime)
{
	uint64_t life = cfg.isakmp_lifetime_ms;

	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);
	engine_run_timers(eng, life - 1);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_entries, 1);
	engine_run_timers(eng, life);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_entries, 0);
	ck_assert_int_eq(last_event(EV_EXPIRED)->ev.table, TABLE_ISAKMP);
}
END_TEST

/* ---- what must never pass --------------------------------------------------- */

START_TEST(ah_from_lan_is_dropped_and_logged)
{
	s.len = pb_ah(s.pkt, sizeof(s.pkt), LAN_A, REMOTE, 0x4000);
	ck_assert_int_eq(run(DIR_OUTBOUND, 0), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_AH_OUTBOUND);
	ck_assert_int_eq(last_event(EV_DROPPED)->ev.reason, R_AH_OUTBOUND);
	s.len = pb_ah(s.pkt, sizeof(s.pkt), REMOTE, EXT, 0x4000);
	ck_assert_int_eq(run(DIR_INBOUND, 0), VERDICT_ACCEPT);
}
END_TEST

START_TEST(spi_zero_and_reserved_are_dropped_both_ways)
{
	static const uint32_t bad[] = { 0, 1, 255 };

	for (unsigned i = 0; i < 3; i++) {
		ck_assert_int_eq(esp_out(LAN_A, REMOTE, bad[i], 0),
				 VERDICT_DROP);
		ck_assert_int_eq(s.d.reason, bad[i] ? R_ESP_SPI_RESERVED
						    : R_ESP_SPI_ZERO);
		ck_assert_uint_eq(src_of(), LAN_A);   /* not rewritten */
		ck_assert_int_eq(esp_in(REMOTE, bad[i], 0), VERDICT_DROP);
	}
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->reasons[R_ESP_SPI_ZERO], 2);
	ck_assert_uint_eq(engine_get_stats(eng)->reasons[R_ESP_SPI_RESERVED],
			  4);
}
END_TEST

START_TEST(no_external_address_drops_outbound)
{
	engine_set_external(eng, 0);
	ck_assert_int_eq(esp_out(LAN_A, REMOTE, 0x1000, 0), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_NO_EXTERNAL_ADDR);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 1, 0, 0), VERDICT_DROP);
	engine_set_external(eng, EXT);
	expect_out_ok(LAN_A, REMOTE, 0x1000, 1);
}
END_TEST

START_TEST(unexpected_lan_traffic_is_dropped_not_leaked)
{
	s.len = pb_udp(s.pkt, sizeof(s.pkt), LAN_A, REMOTE, 4500, 4500, 20, 0);
	ck_assert_int_eq(run(DIR_OUTBOUND, 0), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_UNEXPECTED_PROTO);
}
END_TEST

/* Only the external address passes the outbound queue unchanged; any
 * other source that is not internal is dropped (not_internal): accepted,
 * it would leave untracked, un-NATed. */
START_TEST(non_lan_source_passes_unchanged)
{
	s.len = pb_esp(s.pkt, sizeof(s.pkt), EXT, REMOTE, 0x1000, 1, 10);
	ck_assert_int_eq(run(DIR_OUTBOUND, 0), VERDICT_ACCEPT);
	ck_assert_int_eq(s.d.reason, R_NOT_OURS);
	s.len = pb_esp(s.pkt, sizeof(s.pkt), pb_addr("172.16.0.9"), REMOTE,
		       0x1000, 1, 10);
	ck_assert_int_eq(run(DIR_OUTBOUND, 1), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_NOT_INTERNAL);
	ck_assert_uint_eq(count_events(EV_DROPPED), 1);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 0);
}
END_TEST

START_TEST(out_spi_of_another_host_is_refused)
{
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	ck_assert_int_eq(esp_out(LAN_B, REMOTE, 0x1000, 1), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_ESP_SPI_CONFLICT);
}
END_TEST

/* Each malformed packet is dropped with its own reason, counted, and left
 * exactly as it came, in both directions. */
START_TEST(every_malformed_reason_is_dropped_unchanged)
{
	uint8_t orig[2048];
	enum direction dirs[2] = { DIR_OUTBOUND, DIR_INBOUND };
	unsigned n = 0;

	for (unsigned d = 0; d < 2; d++) {
		uint32_t src = d ? REMOTE : LAN_A, dst = d ? EXT : REMOTE;
		struct { size_t len; enum reason why; } c[20];

		n = 0;
		/* build each bad packet into its own slot of a table */
		uint8_t pk[20][256];

		/* truncated IP */
		c[n].len = pb_esp(pk[n], 256, src, dst, 0x1000, 1, 8);
		c[n].len = 19; c[n++].why = R_IP_TRUNCATED;
		/* version 6 */
		c[n].len = pb_esp(pk[n], 256, src, dst, 0x1000, 1, 8);
		pk[n][0] = 0x65; pb_fix_checksums(pk[n], c[n].len);
		c[n++].why = R_IP_VERSION;
		/* IHL 4 */
		c[n].len = pb_esp(pk[n], 256, src, dst, 0x1000, 1, 8);
		pk[n][0] = 0x44; c[n++].why = R_IP_IHL_SHORT;
		/* IHL 15 > 36 bytes */
		c[n].len = pb_esp(pk[n], 256, src, dst, 0x1000, 1, 8);
		pk[n][0] = 0x4f; c[n++].why = R_IP_IHL_PAST_END;
		/* total length larger than the buffer */
		c[n].len = pb_esp(pk[n], 256, src, dst, 0x1000, 1, 8);
		pb_put16(pk[n] + 2, (uint16_t)(c[n].len + 4));
		pb_fix_checksums(pk[n], c[n].len);
		c[n++].why = R_IP_TOTLEN;
		/* bad header checksum */
		c[n].len = pb_esp(pk[n], 256, src, dst, 0x1000, 1, 8);
		pk[n][10] ^= 0x55; c[n++].why = R_IP_CHECKSUM;
		/* non-first fragment */
		c[n].len = pb_esp(pk[n], 256, src, dst, 0x1000, 1, 8);
		pb_put16(pk[n] + 6, 0x0010); pb_fix_checksums(pk[n], c[n].len);
		c[n++].why = R_IP_FRAGMENT;
		/* ESP header cut short: 4 bytes of it */
		c[n].len = pb_esp(pk[n], 256, src, dst, 0x1000, 1, 0);
		c[n].len -= 4; pb_put16(pk[n] + 2, (uint16_t)c[n].len);
		pb_fix_checksums(pk[n], c[n].len);
		c[n++].why = R_ESP_TRUNCATED;
		/* UDP header cut short */
		c[n].len = pb_udp(pk[n], 256, src, dst, 500, 500, 0, 0);
		c[n].len -= 2; pb_put16(pk[n] + 2, (uint16_t)c[n].len);
		pb_fix_checksums(pk[n], c[n].len);
		c[n++].why = R_UDP_TRUNCATED;
		/* UDP length lies */
		c[n].len = pb_isakmp(pk[n], 256, src, dst, 7, 0, 1, 0);
		pb_put16(pk[n] + 24, 200); c[n++].why = R_UDP_LENGTH;
		/* ISAKMP shorter than 28 bytes */
		c[n].len = pb_udp(pk[n], 256, src, dst, 500, 500, 27, 0);
		c[n++].why = R_ISAKMP_SHORT;
		/* ISAKMP length field past the payload */
		c[n].len = pb_isakmp(pk[n], 256, src, dst, 7, 0, 1, 0);
		pb_put32(pk[n] + 28 + 24, 29);
		pb_fix_checksums(pk[n], c[n].len);
		c[n++].why = R_ISAKMP_LENGTH;
		/* ISAKMP major version 3 */
		c[n].len = pb_isakmp(pk[n], 256, src, dst, 7, 0, 3, 0);
		c[n++].why = R_ISAKMP_VERSION;
		/* initiator cookie 0 */
		c[n].len = pb_isakmp(pk[n], 256, src, dst, 0, 0, 1, 0);
		c[n++].why = R_ISAKMP_COOKIE_ZERO;

		for (unsigned i = 0; i < n; i++) {
			uint64_t before =
				engine_get_stats(eng)->reasons[c[i].why];
			struct engine_decision dec;

			memcpy(orig, pk[i], c[i].len);
			engine_process(eng, pk[i], c[i].len, dirs[d], 0, &dec);
			ck_assert_msg(dec.verdict == VERDICT_DROP,
				      "case %u dir %u: verdict %d", i, d,
				      dec.verdict);
			ck_assert_msg(dec.reason == c[i].why,
				      "case %u dir %u: reason %s, want %s", i,
				      d, reason_name(dec.reason),
				      reason_name(c[i].why));
			ck_assert_mem_eq(orig, pk[i], c[i].len);
			ck_assert_uint_eq(
				engine_get_stats(eng)->reasons[c[i].why],
				before + 1);
		}
	}
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_entries, 0);
}
END_TEST

/* ---- limits -------------------------------------------------------------- */

START_TEST(table_full_refuses_new_entries_and_evicts_nothing)
{
	cfg.max_entries = 2;
	cfg.parallel_sessions = true;
	start();
	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 1);
	ck_assert_int_eq(esp_out(LAN_B, REMOTE2, 0x1100, 2), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_TABLE_FULL);
	ck_assert_int_eq(last_event(EV_REFUSED)->ev.reason, R_TABLE_FULL);
	ck_assert_int_eq(ike_out(LAN_B, REMOTE, 0xb1, 0, 2), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_TABLE_FULL);
	/* the old ones still work */
	expect_in_to(REMOTE, 0x2000, 3, LAN_A);
	ck_assert_int_eq(ike_in(REMOTE, 0xa1, 0xaa, 3), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 1);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_entries, 1);
}
END_TEST

START_TEST(max_per_host_limits_one_host_only)
{
	cfg.max_per_host = 2;
	start();
	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);
	ike_out(LAN_A, REMOTE, 0xa2, 0, 0);
	ck_assert_int_eq(ike_out(LAN_A, REMOTE, 0xa3, 0, 0), VERDICT_DROP);
	ck_assert_int_eq(s.d.reason, R_HOST_FULL);
	ck_assert_int_eq(ike_out(LAN_B, REMOTE, 0xb1, 0, 0),
			 VERDICT_ACCEPT_MODIFIED);
}
END_TEST

/* ---- preload ----------------------------------------------------------------- */

START_TEST(preload_routes_without_guessing)
{
	cfg.parallel_sessions = true;
	start();
	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);
	ike_out(LAN_B, REMOTE, 0xb1, 0, 1);    /* B is the most recent */
	/* control: without a preload the guess would pick B first */
	ck_assert_int_eq(esp_in(REMOTE, 0x7777, 2), VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_B);
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_A, 0x3000, 0, 0, 3),
			 0);
	ck_assert_uint_eq(last_event(EV_PRELOADED)->ev.spi_in, 0x3000);
	expect_in_to(REMOTE, 0x3000, 4, LAN_A);
	ck_assert_uint_eq(s.d.n_copies, 0);
	/* A's first outbound under a new out-SPI joins the preload */
	expect_out_ok(LAN_A, REMOTE, 0x1000, 5);
	ck_assert_uint_eq(count_events(EV_CREATED), 2);   /* the two ISAKMP */
	/* ... and says so: the fast path offloads the outbound side now */
	ck_assert_uint_eq(count_events(EV_LEARNT), 1);
	ck_assert_uint_eq(last_event(EV_LEARNT)->ev.spi_out, 0x1000);
	ck_assert_uint_eq(last_event(EV_LEARNT)->ev.spi_in, 0x3000);
	ck_assert_uint_eq(last_event(EV_LEARNT)->ev.host, LAN_A);
	ck_assert_uint_eq(engine_get_stats(eng)->pending, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 1);
}
END_TEST

START_TEST(preload_does_not_take_the_pending_slot)
{
	cfg.parallel_sessions = true;
	start();
	expect_out_ok(LAN_A, REMOTE, 0x1000, 0);
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_C, 0x3000, 0x1300, 0, 1),
			 0);
	expect_in_to(REMOTE, 0x3000, 2, LAN_C);
	expect_out_ok(LAN_C, REMOTE, 0x1300, 2);
	ck_assert_uint_eq(engine_get_stats(eng)->pending, 1);
	expect_in_to(REMOTE, 0x2000, 3, LAN_A);
}
END_TEST

START_TEST(preload_rejects_bad_and_conflicting_mappings)
{
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_A, 0, 0, 0, 0), -1);
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_A, 200, 0, 0, 0), -1);
	ck_assert_int_eq(engine_preload(eng, REMOTE, REMOTE2, 0x3000, 0, 0, 0),
			 -1);
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_A, 0x3000, 0, 0, 0), 0);
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_B, 0x3000, 0, 0, 0),
			 -1);
	/* same host again: an update, not a second entry */
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_A, 0x3000, 0, 0, 1), 0);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 1);
}
END_TEST

START_TEST(preload_ttl_bounds_its_life)
{
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_A, 0x3000, 0,
					10 * SEC, 0), 0);
	engine_run_timers(eng, 10 * SEC - 1);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 1);
	engine_run_timers(eng, 10 * SEC);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 0);
}
END_TEST

/* A preload without out-SPI past its TTL, its timer not run yet: the
 * host's first outbound packet starts a normal init instead of reviving
 * the preload (which would route the stale in-SPI to it for another
 * lifetime). */
START_TEST(expired_preload_is_not_revived_before_timers_run)
{
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_A, 0x3000, 0,
					10 * SEC, 0), 0);
	expect_out_ok(LAN_A, REMOTE, 0x1000, 10 * SEC);
	ck_assert_uint_eq(count_events(EV_EXPIRED), 1);
	ck_assert_uint_eq(last_event(EV_EXPIRED)->ev.spi_in, 0x3000);
	ck_assert_uint_eq(last_event(EV_CREATED)->ev.spi_out, 0x1000);
	ck_assert_uint_eq(engine_get_stats(eng)->pending, 1);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 1);
	/* one millisecond earlier it would have joined the preload */
	start();
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_A, 0x3000, 0,
					10 * SEC, 0), 0);
	expect_out_ok(LAN_A, REMOTE, 0x1000, 10 * SEC - 1);
	ck_assert_uint_eq(count_events(EV_CREATED), 0);
	ck_assert_uint_eq(engine_get_stats(eng)->pending, 0);
	expect_in_to(REMOTE, 0x3000, 10 * SEC, LAN_A);
}
END_TEST

/* Found by tests/fuzz/fuzz_engine: a preload naming both SPIs of an entry
 * that had expired (its timer not run yet) removed that entry twice. */
START_TEST(preload_over_expired_entry_with_both_spis)
{
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_A, 0x3000, 0x4000,
					10 * SEC, 0), 0);
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_A, 0x3000, 0x4000,
					0, 20 * SEC), 0);
	ck_assert_uint_eq(count_events(EV_EXPIRED), 1);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 1);
	ck_assert_uint_eq(engine_get_stats(eng)->remotes, 1);
	ck_assert_uint_eq(engine_get_stats(eng)->hosts, 1);
	ck_assert_uint_eq(esp_in(REMOTE, 0x3000, 21 * SEC),
			  VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(esp_out(LAN_A, REMOTE, 0x4000, 21 * SEC),
			  VERDICT_ACCEPT_MODIFIED);
}
END_TEST

START_TEST(del_and_flush_remove_entries)
{
	cfg.parallel_sessions = true;
	start();
	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	establish(LAN_B, REMOTE2, 0x1100, 0x2100, 0);
	ck_assert_int_eq(engine_del_esp(eng, REMOTE2, 0x2100), 0);
	ck_assert_int_eq(engine_del_esp(eng, REMOTE2, 0x2100), -1);
	ck_assert_uint_eq(engine_flush(eng, 0, LAN_B), 0);
	establish(LAN_B, REMOTE, 0x1200, 0x2200, 1);
	ck_assert_uint_eq(engine_flush(eng, REMOTE, LAN_A), 2);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 1);
	ck_assert_uint_eq(engine_flush(eng, 0, 0), 1);
	ck_assert_uint_eq(count_events(EV_REMOVED), 4);
	ck_assert_uint_eq(engine_get_stats(eng)->remotes, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->hosts, 0);
}
END_TEST

/* ---- walk and restore -------------------------------------------------------- */

static struct engine *restore_into;

static void restore_esp(void *ctx, const struct engine_esp_info *e)
{
	(void)ctx;
	if (e->state == ESP_ESTABLISHED || e->state == ESP_PROVISIONAL)
		ck_assert_int_eq(engine_restore_esp(restore_into, e), 0);
}

static void restore_ike(void *ctx, const struct engine_isakmp_info *e)
{
	(void)ctx;
	ck_assert_int_eq(engine_restore_isakmp(restore_into, e), 0);
}

/* ---- walks in slices (engine_cursor) ---- */

#define CUR_N 3000                     /* entries at the start: 12 chunks */
#define CUR_SPI(i) (0x10000u + (uint32_t)(i))

/* What a cursor saw, by entry number (spi_in - CUR_SPI(0), or the ISAKMP
 * cookie): how often, and whether it was gone when seen. */
static unsigned cur_seen[4 * CUR_N];
static bool cur_gone[4 * CUR_N];
static size_t cur_seen_gone;

static void cur_count(uint32_t i)
{
	ck_assert_uint_lt(i, 4 * CUR_N);
	cur_seen[i]++;
	cur_seen_gone += cur_gone[i];
}

static void cur_esp(void *ctx, const struct engine_esp_info *e)
{
	(void)ctx;
	cur_count(e->spi_in - CUR_SPI(0));
}

static void cur_isakmp(void *ctx, const struct engine_isakmp_info *e)
{
	(void)ctx;
	cur_count((uint32_t)e->cookie_i);
}

/* Entry i: remote 203.0.113.(i % 50 + 1), host 192.168.(i / 200).(i % 200
 * + 1), so chains, remotes and hosts are all shared. */
static uint32_t cur_remote(size_t i) { return pb_addr("203.0.113.1") + (uint32_t)(i % 50); }
static uint32_t cur_host(size_t i)
{
	return pb_addr("192.168.0.1") + (uint32_t)((i / 200) << 8) +
	       (uint32_t)(i % 200);
}

static void cur_preload(size_t i, uint64_t now)
{
	ck_assert_int_eq(engine_preload(eng, cur_remote(i), cur_host(i),
					CUR_SPI(i), 0, 0, now), 0);
}

START_TEST(cursor_visits_each_lasting_entry_once_while_tables_change)
{
	struct engine_cursor cur;
	size_t added = CUR_N, slices = 0;
	uint64_t now = 1000;
	uint32_t rnd = 12345;

	cfg.max_entries = 4 * CUR_N;
	cfg.max_per_host = 4 * CUR_N;
	start();
	memset(cur_seen, 0, sizeof(cur_seen));
	memset(cur_gone, 0, sizeof(cur_gone));
	cur_seen_gone = 0;
	for (size_t i = 0; i < CUR_N; i++)
		cur_preload(i, now);
	engine_cursor_start(eng, &cur, TABLE_ESP);
	while (!engine_cursor_next(eng, &cur, 37, cur_esp, NULL, NULL)) {
		ck_assert_uint_lt(++slices, 10 * CUR_N);
		now += 10;
		/* between slices: 7 entries removed (seen or not), 9 created
		 * (the pool grows new chunks), 20 used (moved to the front of
		 * their remote's list) */
		for (int k = 0; k < 7; k++) {
			size_t i;

			rnd = rnd * 1103515245u + 12345u;
			i = (rnd >> 8) % CUR_N;
			if (!cur_gone[i] && engine_del_esp(eng, cur_remote(i),
							   CUR_SPI(i)) == 0)
				cur_gone[i] = true;
		}
		for (int k = 0; k < 9 && added < 4 * CUR_N - 1; k++)
			cur_preload(added++, now);
		for (int k = 0; k < 20; k++) {
			size_t i;

			rnd = rnd * 1103515245u + 12345u;
			i = (rnd >> 8) % CUR_N;
			if (!cur_gone[i])
				(void)esp_in(cur_remote(i), CUR_SPI(i), now);
		}
	}
	ck_assert_uint_gt(slices, CUR_N / 37 - 1);
	for (size_t i = 0; i < CUR_N; i++) {
		if (cur_gone[i])
			ck_assert_uint_le(cur_seen[i], 1);
		else
			ck_assert_msg(cur_seen[i] == 1, "entry %zu seen %u times",
				      i, cur_seen[i]);
	}
	for (size_t i = CUR_N; i < added; i++)
		ck_assert_uint_le(cur_seen[i], 1);
	ck_assert_uint_eq(cur_seen_gone, 0);   /* never after its removal */
}
END_TEST

START_TEST(cursor_walks_isakmp_and_survives_an_emptied_table)
{
	struct engine_cursor cur;
	size_t calls = 0;

	cfg.max_entries = 4 * CUR_N;
	cfg.max_per_host = 4 * CUR_N;
	start();
	memset(cur_seen, 0, sizeof(cur_seen));
	memset(cur_gone, 0, sizeof(cur_gone));
	cur_seen_gone = 0;
	for (size_t i = 1; i <= 600; i++)
		ike_out(cur_host(i), cur_remote(i), i, 0, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_entries, 600);
	engine_cursor_start(eng, &cur, TABLE_ISAKMP);
	ck_assert(!engine_cursor_next(eng, &cur, 100, NULL, cur_isakmp, NULL));
	/* the first 100 seen; now every other host's entries go */
	for (size_t i = 1; i <= 600; i++)
		if (i % 2 == 0) {
			ck_assert_uint_eq(engine_flush(eng, cur_remote(i),
						       cur_host(i)), 1);
			cur_gone[i] = true;
		}
	while (!engine_cursor_next(eng, &cur, 100, NULL, cur_isakmp, NULL))
		ck_assert_uint_lt(++calls, 100);
	for (size_t i = 1; i <= 600; i++)
		if (!cur_gone[i])
			ck_assert_uint_eq(cur_seen[i], 1);
	ck_assert_uint_eq(cur_seen_gone, 0);

	/* all gone: a walk of the emptied pool looks at a bounded number of
	 * free slots a call (9 * max + 64), so it ends after several calls
	 * with nothing visited */
	ck_assert_uint_eq(engine_flush(eng, 0, 0), 300);
	memset(cur_seen, 0, sizeof(cur_seen));
	engine_cursor_start(eng, &cur, TABLE_ISAKMP);
	calls = 1;
	while (!engine_cursor_next(eng, &cur, 1, NULL, cur_isakmp, NULL))
		calls++;
	ck_assert_uint_ge(calls, 600 / 73);
	for (size_t i = 1; i <= 600; i++)
		ck_assert_uint_eq(cur_seen[i], 0);
}
END_TEST

START_TEST(cursor_flush_removes_in_slices_what_flush_removes_at_once)
{
	struct engine_cursor cur;
	size_t removed = 0, slices = 0;

	cfg.max_entries = 4 * CUR_N;
	cfg.max_per_host = 4 * CUR_N;
	start();
	for (size_t i = 0; i < CUR_N; i++)
		cur_preload(i, 0);
	/* a remote filter: 203.0.113.1 has entries 0, 50, 100, ...; a
	 * host filter: 192.168.0.2 has entry 1 only */
	engine_cursor_start(eng, &cur, TABLE_ESP);
	while (!engine_cursor_flush(eng, &cur, 100, cur_remote(0), 0,
				    &removed))
		slices++;
	ck_assert_uint_eq(removed, CUR_N / 50);
	engine_cursor_start(eng, &cur, TABLE_ESP);
	while (!engine_cursor_flush(eng, &cur, 100, 0, cur_host(1), &removed))
		slices++;
	ck_assert_uint_eq(removed, CUR_N / 50 + 1);
	ck_assert_uint_eq(count_events(EV_REMOVED), CUR_N / 50 + 1);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries,
			  CUR_N - CUR_N / 50 - 1);
	/* everything, 100 a slice: 30 slices or so, not one */
	removed = slices = 0;
	engine_cursor_start(eng, &cur, TABLE_ESP);
	while (!engine_cursor_flush(eng, &cur, 100, 0, 0, &removed)) {
		slices++;
		ck_assert_uint_le(removed, 100 * slices);
	}
	ck_assert_uint_eq(removed, CUR_N - CUR_N / 50 - 1);
	ck_assert_uint_ge(slices, (CUR_N - CUR_N / 50) / 100 - 1);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->remotes, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->hosts, 0);
}
END_TEST

START_TEST(walk_and_restore_keep_associations)
{
	cfg.parallel_sessions = true;
	start();
	ike_out(LAN_A, REMOTE, 0xa1, 0, 0);
	ike_in(REMOTE, 0xa1, 0xaa, 0);
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 0);
	establish(LAN_B, REMOTE, 0x1100, 0x2100, 10);
	restore_into = engine_new(&cfg, 99, 0, NULL, NULL);
	engine_walk_esp(eng, restore_esp, NULL);
	engine_walk_isakmp(eng, restore_ike, NULL);
	engine_free(eng);
	eng = restore_into;
	expect_in_to(REMOTE, 0x2100, 20, LAN_B);
	expect_in_to(REMOTE, 0x2000, 20, LAN_A);
	ck_assert_int_eq(ike_in(REMOTE, 0xa1, 0xaa, 20),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(dst_of(), LAN_A);
	/* and a restored entry still expires with its old last-seen time */
	engine_run_timers(eng, cfg.esp_lifetime_ms + 19);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 2);
}
END_TEST

/* The one ESP entry walked out of eng. */
static struct engine_esp_info walked;
static size_t n_walked;

static void walk_one(void *ctx, const struct engine_esp_info *e)
{
	(void)ctx;
	walked = *e;
	n_walked++;
}

static const struct engine_esp_info *walk_the_entry(void)
{
	n_walked = 0;
	engine_walk_esp(eng, walk_one, NULL);
	ck_assert_uint_eq(n_walked, 1);
	return &walked;
}

/* Packet counters are 48 bits wide in an entry: they carry past 32 bits
 * and stick at 2^48 - 1 instead of wrapping; byte counters are 64 bits. */
START_TEST(packet_counters_carry_past_32_bits_and_stick_at_48)
{
	const uint64_t max48 = (UINT64_C(1) << 48) - 1;
	struct engine_esp_info info = {
		.remote = REMOTE, .host = LAN_A, .spi_out = 0x1000,
		.spi_in = 0x2000, .state = ESP_ESTABLISHED,
		.pkts_out = 0xffffffffu, .pkts_in = max48 + 10,
		.bytes_out = UINT64_C(1) << 60, .bytes_in = 7,
		.last_seen = 5, .expires = 5 + cfg.esp_lifetime_ms, .since = 1,
	};
	const struct engine_esp_info *w;

	ck_assert_int_eq(engine_restore_esp(eng, &info), 0);
	w = walk_the_entry();
	ck_assert_uint_eq(w->pkts_out, 0xffffffffu);
	ck_assert_uint_eq(w->pkts_in, max48);
	expect_out_ok(LAN_A, REMOTE, 0x1000, 10);
	expect_in_to(REMOTE, 0x2000, 10, LAN_A);
	w = walk_the_entry();
	ck_assert_uint_eq(w->pkts_out, UINT64_C(1) << 32);
	ck_assert_uint_eq(w->pkts_in, max48);
	ck_assert_uint_eq(w->bytes_out, (UINT64_C(1) << 60) + s.len);
	ck_assert_uint_eq(w->bytes_in, 7 + s.len);
	ck_assert_uint_eq(w->since, 1);
	ck_assert_uint_eq(w->last_seen, 10);
}
END_TEST

/* An entry's own lifetime (a preload TTL, a restored one) is kept in 32
 * bits of ms: anything longer than 49.7 days is cut to that. Configured
 * lifetimes are not stored per entry and keep their full range. */
START_TEST(entry_lifetimes_are_capped_at_32_bits_of_ms)
{
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_A, 0x3000, 0,
					UINT64_C(1) << 40, 100), 0);
	ck_assert_uint_eq(walk_the_entry()->expires, 100 + (uint64_t)UINT32_MAX);
	ck_assert_int_eq(engine_del_esp(eng, REMOTE, 0x3000), 0);
	cfg.esp_lifetime_ms = UINT64_C(1) << 40;
	start();
	establish(LAN_A, REMOTE, 0x1000, 0x2000, 100);
	ck_assert_uint_eq(walk_the_entry()->expires, 100 + (UINT64_C(1) << 40));
}
END_TEST

/* ---- invariants on random traffic --------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

START_TEST(random_traffic_never_leaks_a_lan_source)
{
	uint64_t now = 0;

	cfg.max_entries = 64;
	cfg.parallel_sessions = _i & 1;
	start();
	for (unsigned i = 0; i < 50000; i++) {
		uint32_t host = LAN_A + rnd() % 8;
		uint32_t remote = REMOTE + rnd() % 3;
		uint32_t spi = 0x1000 + rnd() % 32;
		int out = rnd() & 1, corrupt;

		now += rnd() % (20 * SEC);
		if (rnd() % 4 == 0)
			s.len = pb_isakmp(s.pkt, sizeof(s.pkt), out ? host : remote,
					  out ? remote : EXT, 1 + rnd() % 8,
					  rnd() % 2 ? 0 : rnd() % 4, 1, rnd() % 64);
		else
			s.len = pb_esp(s.pkt, sizeof(s.pkt), out ? host : remote,
				       out ? remote : EXT, spi, i, rnd() % 64);
		corrupt = rnd() % 50 == 0;
		if (corrupt)
			s.pkt[rnd() % s.len] ^= (uint8_t)(1 + rnd() % 255);
		run(out ? DIR_OUTBOUND : DIR_INBOUND, now);
		if (out && s.d.verdict != VERDICT_DROP)
			ck_assert_msg(!engine_is_internal(eng, src_of()),
				      "LAN source let out at packet %u", i);
		/* a corrupted body keeps its (wrong) UDP checksum wrong: the
		 * rewrite is incremental, as the kernel's NAT is */
		if (s.d.verdict == VERDICT_ACCEPT_MODIFIED && !corrupt)
			assert_checksums();
		if (rnd() % 100 == 0)
			engine_run_timers(eng, now);
		ck_assert_uint_le(engine_get_stats(eng)->esp_entries +
				  engine_get_stats(eng)->isakmp_entries, 64);
	}
}
END_TEST

static Suite *engine_suite(void)
{
	Suite *suite = suite_create("engine");
	TCase *esp = tcase_create("esp");
	TCase *ike = tcase_create("isakmp");
	TCase *never = tcase_create("never");
	TCase *lim = tcase_create("limits");
	TCase *pre = tcase_create("preload");
	TCase *rnd_tc = tcase_create("random");

	tcase_add_checked_fixture(esp, setup, teardown);
	tcase_add_test(esp, esp_outbound_init_rewrites_source_and_is_pending);
	tcase_add_test(esp, esp_first_inbound_spi_associates_with_pending_init);
	tcase_add_test(esp, two_hosts_initialising_at_once_are_serialized);
	tcase_add_test(esp, same_host_second_spi_is_serialized_too);
	tcase_add_test(esp, inits_with_different_remotes_do_not_serialize);
	tcase_add_test(esp, parallel_sessions_off_blocks_second_host_until_expiry);
	tcase_add_test(esp, parallel_sessions_on_lets_both_hosts_in);
	tcase_add_test(esp, reload_turns_parallel_sessions_on_for_live_tables);
	tcase_add_test(esp, reload_parallel_off_lets_holders_rekey);
	tcase_add_test(esp, reload_shorter_lifetime_applies_to_existing_entries);
	tcase_add_test(esp, reload_max_entries_below_live_count);
	tcase_add_test(esp, reload_changes_internal_prefixes);
	tcase_add_test(esp, init_retries_zero_squelches_at_first_collision);
	tcase_add_test(esp, guess_burst_zero_never_guesses);
	tcase_add_test(esp, init_timeout_releases_the_remote);
	tcase_add_test(esp, init_timeout_applies_without_timer_run);
	tcase_add_test(esp, timed_out_init_asks_again_on_next_outbound);
	tcase_add_test(esp, pending_init_is_squelched_after_retries);
	tcase_add_test(esp, pending_init_without_waiters_is_never_squelched);
	tcase_add_test(esp, lan_host_rekey_gets_new_association);
	tcase_add_test(esp, remote_rekey_is_guessed_then_associated);
	tcase_add_test(esp, guess_reaches_at_most_guess_copies_hosts);
	tcase_add_test(esp, guess_flood_is_rate_limited_and_allocates_nothing);
	tcase_add_test(esp, inbound_from_unknown_remote_is_not_ours);
	tcase_add_test(esp, inbound_to_another_address_is_not_ours);
	tcase_add_test(esp, esp_entry_expires_at_exactly_its_lifetime);
	tcase_add_test(esp, traffic_refreshes_the_lifetime);
	tcase_add_test(esp, credited_use_keeps_the_entry_alive);
	tcase_add_test(esp, next_timer_tracks_the_earliest_deadline);
	suite_add_tcase(suite, esp);

	tcase_add_checked_fixture(ike, setup, teardown);
	tcase_add_test(ike, isakmp_outbound_keeps_port_500_and_replies_come_back);
	tcase_add_test(ike, isakmp_two_hosts_one_remote_each_gets_its_replies);
	tcase_add_test(ike, isakmp_ikev2_spis_route_like_cookies);
	tcase_add_test(ike, isakmp_cookie_collision_is_dropped_until_answered);
	tcase_add_test(ike, isakmp_unanswered_host_cannot_take_another_hosts_pair);
	tcase_add_test(ike, isakmp_answer_to_a_natted_remote_keeps_ports);
	tcase_add_test(ike, isakmp_unknown_cookie_goes_to_most_recent_host);
	tcase_add_test(ike, isakmp_reply_without_responder_cookie_goes_to_unanswered);
	tcase_add_test(ike, isakmp_fallback_is_rate_limited_per_remote);
	tcase_add_test(ike, isakmp_fallback_prefers_esp_holder_and_copies);
	tcase_add_test(ike, isakmp_answers_use_allowance_not_host_quota);
	tcase_add_test(ike, isakmp_spoofed_answers_give_way_to_a_real_exchange);
	tcase_add_test(ike, isakmp_answer_allowance_zero_and_table_limit);
	tcase_add_test(ike, isakmp_flood_leaves_host_its_own_exchanges);
	tcase_add_test(ike, isakmp_is_never_serialized);
	tcase_add_test(ike, isakmp_entry_expires_at_its_lifetime);
	suite_add_tcase(suite, ike);

	tcase_add_checked_fixture(never, setup, teardown);
	tcase_add_test(never, ah_from_lan_is_dropped_and_logged);
	tcase_add_test(never, spi_zero_and_reserved_are_dropped_both_ways);
	tcase_add_test(never, no_external_address_drops_outbound);
	tcase_add_test(never, unexpected_lan_traffic_is_dropped_not_leaked);
	tcase_add_test(never, non_lan_source_passes_unchanged);
	tcase_add_test(never, out_spi_of_another_host_is_refused);
	tcase_add_test(never, every_malformed_reason_is_dropped_unchanged);
	suite_add_tcase(suite, never);

	tcase_add_checked_fixture(lim, setup, teardown);
	tcase_add_test(lim, table_full_refuses_new_entries_and_evicts_nothing);
	tcase_add_test(lim, max_per_host_limits_one_host_only);
	suite_add_tcase(suite, lim);

	tcase_add_checked_fixture(pre, setup, teardown);
	tcase_add_test(pre, preload_routes_without_guessing);
	tcase_add_test(pre, preload_does_not_take_the_pending_slot);
	tcase_add_test(pre, preload_rejects_bad_and_conflicting_mappings);
	tcase_add_test(pre, preload_ttl_bounds_its_life);
	tcase_add_test(pre, expired_preload_is_not_revived_before_timers_run);
	tcase_add_test(pre, preload_over_expired_entry_with_both_spis);
	tcase_add_test(pre, del_and_flush_remove_entries);
	tcase_add_test(pre, walk_and_restore_keep_associations);
	tcase_add_test(pre, cursor_visits_each_lasting_entry_once_while_tables_change);
	tcase_add_test(pre, cursor_walks_isakmp_and_survives_an_emptied_table);
	tcase_add_test(pre, cursor_flush_removes_in_slices_what_flush_removes_at_once);
	tcase_add_test(pre, packet_counters_carry_past_32_bits_and_stick_at_48);
	tcase_add_test(pre, entry_lifetimes_are_capped_at_32_bits_of_ms);
	suite_add_tcase(suite, pre);

	tcase_add_checked_fixture(rnd_tc, setup, teardown);
	tcase_set_timeout(rnd_tc, 60);
	tcase_add_loop_test(rnd_tc, random_traffic_never_leaks_a_lan_source, 0, 2);
	suite_add_tcase(suite, rnd_tc);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(engine_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
