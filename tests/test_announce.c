/*
 * The announcement protocol (src/announce.c) with an injected clock and a
 * real engine: good, forged, replayed, old, wrong-source, foreign-SPI,
 * flood, malformed and wrong-version messages, the key file, and what an
 * announced SPI does to the ESP rules (first inbound packet to its host,
 * outbound init without serialization).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "announce.h"
#include "engine.h"
#include "pktbuild.h"

#define T0 1700000000000ull        /* wall clock, ms */

static struct engine_config cfg;
static struct engine *eng;
static struct ann_ctx *ctx;
static struct ann_settings set;
static struct ann_keys keys;
static uint8_t key_net[ANN_KEY_LEN], key_b[ANN_KEY_LEN];
static uint32_t LAN_A, LAN_B, LAN_C, REMOTE, EXT, OUTSIDE;
static uint64_t seq;
static uint8_t secret[ANN_SECRET_LEN];

static void setup(void)
{
	char err[128];
	char text[512];

	engine_config_defaults(&cfg);
	LAN_A = pb_addr("192.168.1.10");
	LAN_B = pb_addr("192.168.1.11");
	LAN_C = pb_addr("192.168.1.12");
	REMOTE = pb_addr("203.0.113.20");
	EXT = pb_addr("198.51.100.1");
	OUTSIDE = pb_addr("10.9.9.9");
	cfg.external_addr = EXT;
	cfg.internal[0].addr = pb_addr("192.168.0.0");
	cfg.internal[0].mask = 0xffff0000u;
	cfg.n_internal = 1;
	cfg.parallel_sessions = true;
	eng = engine_new(&cfg, 7, 0, NULL, NULL);
	ck_assert_ptr_nonnull(eng);
	memset(key_net, 0x11, sizeof(key_net));
	memset(key_b, 0x22, sizeof(key_b));
	/* one key for the network, its own for .11 */
	snprintf(text, sizeof(text),
		 "# network key\n%s\n192.168.1.11 %s  # host key\n\n",
		 "1111111111111111111111111111111111111111111111111111111111111111",
		 "2222222222222222222222222222222222222222222222222222222222222222");
	ck_assert_int_eq(ann_keys_parse(text, &keys, err, sizeof(err)), 0);
	ck_assert_uint_eq(keys.n, 2);
	ann_settings_defaults(&set);
	ctx = calloc(1, sizeof(*ctx));
	ck_assert_ptr_nonnull(ctx);
	memset(secret, 0x5e, sizeof(secret));
	ann_init(ctx, &set, &keys, &cfg, T0, 42, secret);
	seq = 1000;
}

static void teardown(void)
{
	engine_free(eng);
	free(ctx);
}

/* An announcement by host with the key, stamped ts, the next sequence,
 * with the router's cookie for host at ts (as a host that asked for it
 * has). */
static struct ann_msg msg_of(uint8_t type, uint32_t host, uint32_t spi_in,
			     uint32_t spi_out, uint64_t ts)
{
	struct ann_msg m = {
		.version = ANN_VERSION, .type = type, .timestamp_ms = ts,
		.seq = ++seq, .host = host, .remote = REMOTE,
		.spi_in = spi_in, .spi_out = spi_out,
		.ttl_s = type == ANN_ANNOUNCE ? 3600 : 0,
	};

	ann_cookie(ctx, host, ts, m.cookie);
	return m;
}

/* The whole router side for one datagram from src at now: checks, then
 * the engine. Returns the outcome. */
static enum ann_status deliver(const uint8_t *buf, size_t len, uint32_t src,
			       uint64_t now)
{
	struct ann_msg m;
	bool authentic;
	enum ann_status st = ann_receive(ctx, buf, len, src, true, now, &m,
					 &authentic);

	if (st != ANN_OK) {
		ann_count(ctx, st);
		return st;
	}
	return ann_apply(ctx, eng, &m, 1000);
}

static enum ann_status send_msg(const struct ann_msg *m, const uint8_t *key,
				uint32_t src, uint64_t now)
{
	uint8_t buf[ANN_MSG_LEN];

	ann_encode(m, key, buf);
	return deliver(buf, sizeof(buf), src, now);
}

static void announce_ok(uint32_t host, const uint8_t *key, uint32_t spi_in,
			uint32_t spi_out)
{
	struct ann_msg m = msg_of(ANN_ANNOUNCE, host, spi_in, spi_out, T0 + 10);

	ck_assert_int_eq(send_msg(&m, key, host, T0 + 20), ANN_OK);
}

/* The state of (REMOTE, spi_in) in the engine, -1 if none; its host. */
struct find { uint32_t spi_in, host; int state; };

static void find_cb(void *c, const struct engine_esp_info *e)
{
	struct find *f = c;

	if (e->remote == REMOTE && e->spi_in == f->spi_in) {
		f->state = (int)e->state;
		f->host = e->host;
	}
}

static int state_of(uint32_t spi_in, uint32_t *host)
{
	struct find f = { .spi_in = spi_in, .state = -1 };

	engine_walk_esp(eng, find_cb, &f);
	if (host)
		*host = f.host;
	return f.state;
}

START_TEST(good_announce_is_an_announced_preload)
{
	uint32_t host;

	announce_ok(LAN_A, key_net, 0x1000, 0x2000);
	ck_assert_int_eq(state_of(0x1000, &host), ESP_ANNOUNCED);
	ck_assert_uint_eq(host, LAN_A);
	ck_assert_str_eq(esp_state_name(ESP_ANNOUNCED), "announced");
	ck_assert_uint_eq(ctx->stats.status[ANN_OK], 1);
	ck_assert_uint_eq(ctx->stats.announced, 1);
	/* the per-host key of .11 */
	announce_ok(LAN_B, key_b, 0x1001, 0);
	ck_assert_int_eq(state_of(0x1001, &host), ESP_ANNOUNCED);
	ck_assert_uint_eq(host, LAN_B);
}
END_TEST

START_TEST(withdraw_removes_only_its_own)
{
	struct ann_msg m;

	announce_ok(LAN_A, key_net, 0x1000, 0);
	/* .12 (network key) withdraws .10's SPI: refused, entry stays */
	m = msg_of(ANN_WITHDRAW, LAN_C, 0x1000, 0, T0 + 10);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_C, T0 + 20), ANN_SPI_TAKEN);
	ck_assert_int_eq(state_of(0x1000, NULL), ESP_ANNOUNCED);
	m = msg_of(ANN_WITHDRAW, LAN_A, 0x1000, 0, T0 + 10);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 20), ANN_OK);
	ck_assert_int_eq(state_of(0x1000, NULL), -1);
	ck_assert_uint_eq(ctx->stats.withdrawn, 1);
	m = msg_of(ANN_WITHDRAW, LAN_A, 0x1000, 0, T0 + 10);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 20),
			 ANN_UNKNOWN_SPI);
}
END_TEST

START_TEST(forged_mac_refused)
{
	struct ann_msg m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0);
	uint8_t buf[ANN_MSG_LEN], wrong[ANN_KEY_LEN];

	memset(wrong, 0x33, sizeof(wrong));
	ck_assert_int_eq(send_msg(&m, wrong, LAN_A, T0), ANN_BAD_MAC);
	/* a right MAC, then one field changed */
	ann_encode(&m, key_net, buf);
	buf[35] ^= 1;
	ck_assert_int_eq(deliver(buf, sizeof(buf), LAN_A, T0), ANN_BAD_MAC);
	/* a flipped MAC bit */
	ann_encode(&m, key_net, buf);
	buf[ANN_MSG_LEN - 1] ^= 0x80;
	ck_assert_int_eq(deliver(buf, sizeof(buf), LAN_A, T0), ANN_BAD_MAC);
	/* .11 has its own key: the network key does not do for it */
	m = msg_of(ANN_ANNOUNCE, LAN_B, 0x1000, 0, T0);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_B, T0), ANN_BAD_MAC);
	ck_assert_int_eq(state_of(0x1000, NULL), -1);
	ck_assert_uint_eq(ctx->stats.status[ANN_BAD_MAC], 4);
}
END_TEST

START_TEST(replayed_refused)
{
	struct ann_msg m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0);
	struct ann_msg w = msg_of(ANN_WITHDRAW, LAN_A, 0x1000, 0, T0);
	uint8_t a[ANN_MSG_LEN], b[ANN_MSG_LEN];

	ann_encode(&m, key_net, a);
	ann_encode(&w, key_net, b);
	ck_assert_int_eq(deliver(a, sizeof(a), LAN_A, T0 + 5), ANN_OK);
	ck_assert_int_eq(deliver(b, sizeof(b), LAN_A, T0 + 6), ANN_OK);
	/* the announcement again, to bring the withdrawn SPI back */
	ck_assert_int_eq(deliver(a, sizeof(a), LAN_A, T0 + 7), ANN_REPLAYED);
	ck_assert_int_eq(deliver(b, sizeof(b), LAN_A, T0 + 8), ANN_REPLAYED);
	ck_assert_int_eq(state_of(0x1000, NULL), -1);
	/* a lower sequence number, freshly signed, is a replay too */
	m.seq = 5;
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 9), ANN_REPLAYED);
	ck_assert_uint_eq(ctx->stats.status[ANN_REPLAYED], 3);
}
END_TEST

START_TEST(old_or_future_timestamp_refused)
{
	struct ann_msg m;

	/* window 30 s either way */
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0 + 100000);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 130001), ANN_STALE);
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0 + 200000);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 169999), ANN_STALE);
	/* stamped before the daemon started: a replay from its last run */
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0 - 1);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 10), ANN_STALE);
	ck_assert_int_eq(state_of(0x1000, NULL), -1);
	/* the edges of the window are in it */
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0 + 100000);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 130000), ANN_OK);
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1001, 0, T0 + 200000);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 170000), ANN_OK);
}
END_TEST

START_TEST(wrong_source_refused)
{
	/* .12 (same network key) announces for .10, from its own address */
	struct ann_msg m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0);
	uint8_t buf[ANN_MSG_LEN];
	bool authentic;

	ck_assert_int_eq(send_msg(&m, key_net, LAN_C, T0), ANN_WRONG_SOURCE);
	ck_assert_int_eq(state_of(0x1000, NULL), -1);
	/* from outside the LAN, or on a non-LAN interface: refused before
	 * anything else, whatever the MAC */
	m = msg_of(ANN_ANNOUNCE, OUTSIDE, 0x1000, 0, T0);
	ck_assert_int_eq(send_msg(&m, key_net, OUTSIDE, T0), ANN_NOT_INTERNAL);
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0);
	ann_encode(&m, key_net, buf);
	ck_assert_int_eq(ann_receive(ctx, buf, sizeof(buf), LAN_A, false, T0,
				     &m, &authentic), ANN_WRONG_INTERFACE);
	ck_assert(!authentic);
	ck_assert_int_eq(state_of(0x1000, NULL), -1);
	ck_assert_uint_eq(ctx->stats.status[ANN_WRONG_SOURCE], 1);
	ck_assert_uint_eq(ctx->stats.status[ANN_NOT_INTERNAL], 1);
}
END_TEST

START_TEST(foreign_spi_never_taken_over)
{
	uint8_t pkt[256];
	struct engine_decision d;
	uint32_t host;
	struct ann_msg m;
	size_t n;

	/* .10 established with REMOTE the old way: out 0x3000, in 0x4000 */
	n = pb_esp(pkt, sizeof(pkt), LAN_A, REMOTE, 0x3000, 1, 32);
	engine_process(eng, pkt, n, DIR_OUTBOUND, 10, &d);
	n = pb_esp(pkt, sizeof(pkt), REMOTE, EXT, 0x4000, 1, 32);
	engine_process(eng, pkt, n, DIR_INBOUND, 11, &d);
	ck_assert_int_eq(state_of(0x4000, &host), ESP_PROVISIONAL);
	/* used both ways since the binding: confirmed */
	n = pb_esp(pkt, sizeof(pkt), LAN_A, REMOTE, 0x3000, 2, 32);
	engine_process(eng, pkt, n, DIR_OUTBOUND, 12, &d);
	n = pb_esp(pkt, sizeof(pkt), REMOTE, EXT, 0x4000, 2, 32);
	engine_process(eng, pkt, n, DIR_INBOUND, 13, &d);
	ck_assert_int_eq(state_of(0x4000, &host), ESP_ESTABLISHED);
	/* .12 claims the in-SPI, then the out-SPI, of .10's tunnel */
	m = msg_of(ANN_ANNOUNCE, LAN_C, 0x4000, 0, T0);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_C, T0), ANN_SPI_TAKEN);
	m = msg_of(ANN_ANNOUNCE, LAN_C, 0x5000, 0x3000, T0);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_C, T0), ANN_SPI_TAKEN);
	ck_assert_int_eq(state_of(0x4000, &host), ESP_ESTABLISHED);
	ck_assert_uint_eq(host, LAN_A);
	ck_assert_int_eq(state_of(0x5000, NULL), -1);
	/* and another host's announced SPI */
	announce_ok(LAN_A, key_net, 0x6000, 0);
	m = msg_of(ANN_ANNOUNCE, LAN_C, 0x6000, 0, T0);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_C, T0), ANN_SPI_TAKEN);
	ck_assert_int_eq(state_of(0x6000, &host), ESP_ANNOUNCED);
	ck_assert_uint_eq(host, LAN_A);
	ck_assert_uint_eq(ctx->stats.status[ANN_SPI_TAKEN], 3);
}
END_TEST

/* The router's reply is what carries a cookie, and only to the source:
 * here the "network" gives the reply's cookie to the sender that asked. */
static void fetch_cookie(struct ann_msg *m, uint32_t src, uint64_t now)
{
	struct ann_msg ask = *m;
	uint8_t buf[ANN_MSG_LEN];
	struct ann_msg got;
	bool authentic;

	memset(ask.cookie, 0, sizeof(ask.cookie));
	ask.seq = ++seq;
	ann_encode(&ask, key_net, buf);
	ck_assert_int_eq(ann_receive(ctx, buf, sizeof(buf), src, true, now,
				     &got, &authentic), ANN_COOKIE_REQUIRED);
	ck_assert(authentic);
	ann_cookie(ctx, src, now, m->cookie);
}

/* Return routability: a message without a cookie is answered with one and
 * changes nothing; the cookie echoed is accepted; a cookie made for
 * another address, a made-up one or one two periods old is refused. */
START_TEST(cookie_required_then_accepted)
{
	struct ann_msg m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0 + 10);
	uint8_t c_a[ANN_COOKIE_LEN], c_c[ANN_COOKIE_LEN];

	memset(m.cookie, 0, sizeof(m.cookie));
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 20),
			 ANN_COOKIE_REQUIRED);
	ck_assert_int_eq(state_of(0x1000, NULL), -1);
	/* cookies differ by address and by period, and depend on the secret */
	ann_cookie(ctx, LAN_A, T0 + 20, c_a);
	ann_cookie(ctx, LAN_C, T0 + 20, c_c);
	ck_assert(memcmp(c_a, c_c, sizeof(c_a)) != 0);
	ann_cookie(ctx, LAN_A, T0 + 20 + ANN_COOKIE_PERIOD_MS, c_c);
	ck_assert(memcmp(c_a, c_c, sizeof(c_a)) != 0);
	/* LAN_C's cookie does not do for LAN_A */
	m.seq = ++seq;
	ann_cookie(ctx, LAN_C, T0 + 20, m.cookie);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 20), ANN_BAD_COOKIE);
	m.seq = ++seq;
	memset(m.cookie, 0xa5, sizeof(m.cookie));
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 20), ANN_BAD_COOKIE);
	ck_assert_int_eq(state_of(0x1000, NULL), -1);
	/* its own, echoed: accepted; still in the next period */
	m.seq = ++seq;
	memcpy(m.cookie, c_a, sizeof(c_a));
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 20), ANN_OK);
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1001, 0, T0 + 50000);
	memcpy(m.cookie, c_a, sizeof(c_a));
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 50000), ANN_OK);
	/* two periods on it is refused (the timestamp is fresh) */
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1002, 0, T0 + 2 * ANN_COOKIE_PERIOD_MS);
	memcpy(m.cookie, c_a, sizeof(c_a));
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A,
				  T0 + 2 * ANN_COOKIE_PERIOD_MS), ANN_BAD_COOKIE);
	ck_assert_int_eq(state_of(0x1002, NULL), -1);
	/* another daemon secret (a restart): the old cookie is worthless */
	secret[0] ^= 1;
	ann_init(ctx, &set, &keys, &cfg, T0, 42, secret);
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1003, 0, T0 + 30);
	memcpy(m.cookie, c_a, sizeof(c_a));
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 30), ANN_BAD_COOKIE);
	ck_assert_str_eq(ann_status_name(ANN_COOKIE_REQUIRED), "cookie_required");
	ck_assert_str_eq(ann_status_name(ANN_BAD_COOKIE), "bad_cookie");
}
END_TEST

/* The reviewer's attack: a holder of the network key on the LAN forges
 * host A's source address to withdraw A's announced in-SPI and announce
 * it as its own (then A's inbound ESP would go to it). Without A's cookie
 * (the router sends it only to A's address) every step is refused and
 * A keeps its SPI; the spoofer cannot push A's replay window either. */
START_TEST(spoofed_source_cannot_act_for_another_host)
{
	struct ann_msg m;
	uint32_t host;

	announce_ok(LAN_A, key_net, 0x1000, 0);
	/* the spoofer's own cookie (it can receive at LAN_C) */
	m = msg_of(ANN_WITHDRAW, LAN_A, 0x1000, 0, T0 + 30);
	ann_cookie(ctx, LAN_C, T0 + 30, m.cookie);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 30), ANN_BAD_COOKIE);
	/* none at all: it gets an answer, but at A's address */
	m.seq = ++seq;
	memset(m.cookie, 0, sizeof(m.cookie));
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 30),
			 ANN_COOKIE_REQUIRED);
	ck_assert_int_eq(state_of(0x1000, &host), ESP_ANNOUNCED);
	ck_assert_uint_eq(host, LAN_A);
	/* the highest sequence number, without a cookie, does not move A's
	 * window: A's next message still passes */
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1001, 0, T0 + 30);
	m.seq = UINT64_MAX;
	memset(m.cookie, 0, sizeof(m.cookie));
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 30),
			 ANN_COOKIE_REQUIRED);
	announce_ok(LAN_A, key_net, 0x1002, 0);
	/* claiming A's SPI from its own address: spi_taken, as before */
	m = msg_of(ANN_ANNOUNCE, LAN_C, 0x1000, 0, T0 + 30);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_C, T0 + 30), ANN_SPI_TAKEN);
	ck_assert_int_eq(state_of(0x1000, &host), ESP_ANNOUNCED);
	ck_assert_uint_eq(host, LAN_A);
	/* a host that does receive at its address gets and uses its cookie */
	m = msg_of(ANN_ANNOUNCE, LAN_C, 0x2000, 0, T0 + 40);
	memset(m.cookie, 0, sizeof(m.cookie));
	fetch_cookie(&m, LAN_C, T0 + 40);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_C, T0 + 40), ANN_OK);
}
END_TEST

/* The addresses in 192.168.0.0/16 but `except` whose slot probe starts
 * at `slot`. */
static size_t addrs_at_slot(size_t slot, uint32_t except, uint32_t *out,
			    size_t max)
{
	size_t n = 0;

	for (uint32_t a = pb_addr("192.168.0.1"); a < pb_addr("192.168.255.255") &&
	     n < max; a++)
		if (a != except && (size_t)siphash13_word(&ctx->slot_key, a) %
				   ANN_PEER_SLOTS == slot)
			out[n++] = a;
	return n;
}

static size_t slot_of(uint32_t addr)
{
	for (size_t i = 0; i < ANN_PEER_SLOTS; i++)
		if (ctx->peers[i].addr == addr)
			return i;
	ck_abort_msg("no slot for the sender");
	return 0;
}

/* The sender table: when every slot a sender may live in holds a live
 * sender it is refused (busy) before its MAC is checked; a slot whose
 * sender went idle (timestamps out of the window, bucket refilled) is
 * taken over. */
START_TEST(sender_table_busy_and_eviction)
{
	uint32_t x[1];
	struct ann_msg m;
	size_t start;

	ck_assert_uint_eq(addrs_at_slot(100, 0, x, 1), 1);
	start = 100;
	/* 16 live senders in the probe window of x */
	for (size_t i = 0; i < ANN_PEER_PROBE; i++) {
		struct ann_peer *p = &ctx->peers[(start + i) % ANN_PEER_SLOTS];

		p->addr = pb_addr("192.168.7.0") + (uint32_t)i;
		p->last_ts = T0 + 10;
		p->refilled = T0 + 10;
		p->tokens = set.burst * 1000ull;
	}
	m = msg_of(ANN_ANNOUNCE, x[0], 0x1000, 0, T0 + 20);
	ck_assert_int_eq(send_msg(&m, key_net, x[0], T0 + 20), ANN_BUSY);
	ck_assert_uint_eq(ctx->stats.status[ANN_BUSY], 1);
	ck_assert_int_eq(state_of(0x1000, NULL), -1);
	/* the window's 6th sender has been quiet: its stamp is out of the
	 * window and its bucket full again, so x takes its slot */
	ctx->peers[(start + 5) % ANN_PEER_SLOTS].last_ts = T0 - 40000;
	ctx->peers[(start + 5) % ANN_PEER_SLOTS].refilled = T0 - 40000;
	m = msg_of(ANN_ANNOUNCE, x[0], 0x1000, 0, T0 + 20);
	ck_assert_int_eq(send_msg(&m, key_net, x[0], T0 + 20), ANN_OK);
	ck_assert_uint_eq(slot_of(x[0]), (start + 5) % ANN_PEER_SLOTS);
	/* a live one is never evicted: the others are all still there */
	for (size_t i = 0; i < ANN_PEER_PROBE; i++)
		if (i != 5)
			ck_assert_uint_eq(
				ctx->peers[(start + i) % ANN_PEER_SLOTS].addr,
				pb_addr("192.168.7.0") + (uint32_t)i);
}
END_TEST

/* A sender's slot lives as long as its highest accepted timestamp is in
 * the window: A's message stamped 25 s ahead, then one stamped now (the
 * last). 26 s on, a sender starting at A's slot must not take it over;
 * if it did, A's replay window would be forgotten and the first message,
 * still fresh, accepted again. */
START_TEST(sender_slot_kept_for_the_highest_timestamp)
{
	struct ann_msg first, second, w, m;
	uint32_t b[1];
	uint8_t buf[ANN_MSG_LEN];
	size_t slot;

	first = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0 + 25000);
	ck_assert_int_eq(send_msg(&first, key_net, LAN_A, T0 + 10), ANN_OK);
	second = msg_of(ANN_ANNOUNCE, LAN_A, 0x1001, 0, T0 + 10);
	ck_assert_int_eq(send_msg(&second, key_net, LAN_A, T0 + 10), ANN_OK);
	w = msg_of(ANN_WITHDRAW, LAN_A, 0x1000, 0, T0 + 20);
	ck_assert_int_eq(send_msg(&w, key_net, LAN_A, T0 + 20), ANN_OK);
	slot = slot_of(LAN_A);
	ck_assert_uint_eq(addrs_at_slot(slot, LAN_A, b, 1), 1);
	/* 26 s on: the last stamp (T0 + 20) is out of the 30 s window at
	 * T0 + 50021, the highest (T0 + 25000) is not */
	m = msg_of(ANN_ANNOUNCE, b[0], 0x2000, 0, T0 + 50021);
	ck_assert_int_eq(send_msg(&m, key_net, b[0], T0 + 50021), ANN_OK);
	ck_assert_uint_eq(ctx->peers[slot].addr, LAN_A);
	/* the first message again, byte for byte: still a replay */
	ann_encode(&first, key_net, buf);
	ck_assert_int_eq(deliver(buf, sizeof(buf), LAN_A, T0 + 50022),
			 ANN_REPLAYED);
	ck_assert_int_eq(state_of(0x1000, NULL), -1);
}
END_TEST

/* A table restored with more announced entries than the cap (a state
 * file from before it): ann_trim() removes the excess, the entries with
 * the least time left first, and leaves the others and admin preloads. */
START_TEST(trim_restored_announced_entries)
{
	const struct engine_stats *es = engine_get_stats(eng);
	uint32_t host;

	for (uint32_t i = 0; i < 10; i++)
		ck_assert_int_eq(engine_announce(eng, REMOTE, LAN_A, 0x1000 + i,
						 0, (100 + i) * 1000ull, 1000),
				 0);
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_C, 0x9000, 0, 0, 1000),
			 0);
	ck_assert_uint_eq(es->announced, 10);
	ck_assert_int_eq(ann_trim(eng, 10), 0);
	ck_assert_int_eq(ann_trim(eng, 4), 6);
	ck_assert_uint_eq(es->announced, 4);
	for (uint32_t i = 0; i < 10; i++)
		ck_assert_int_eq(state_of(0x1000 + i, NULL),
				 i < 6 ? -1 : ESP_ANNOUNCED);
	ck_assert_int_eq(state_of(0x9000, &host), ESP_PRELOADED);
	ck_assert_uint_eq(host, LAN_C);
}
END_TEST

START_TEST(host_limit_kept)
{
	struct ann_msg m;

	engine_free(eng);
	cfg.max_per_host = 2;
	eng = engine_new(&cfg, 7, 0, NULL, NULL);
	announce_ok(LAN_A, key_net, 0x1000, 0);
	announce_ok(LAN_A, key_net, 0x1001, 0);
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1002, 0, T0 + 10);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 20), ANN_HOST_FULL);
	ck_assert_int_eq(state_of(0x1002, NULL), -1);
	/* another host is not affected */
	announce_ok(LAN_C, key_net, 0x1002, 0);
}
END_TEST

/* announce.max_entries caps the announced entries of all hosts together:
 * the next is refused (announce_full) and not in the table, a refresh of
 * an entry of one's own still passes, a withdraw or an expiry makes room;
 * admin preloads do not count. */
START_TEST(announced_entries_capped)
{
	const struct engine_stats *es = engine_get_stats(eng);
	uint32_t lan_d = pb_addr("192.168.1.13");
	struct ann_msg m;

	set.max_entries = 3;
	ann_reconfigure(ctx, &set, &keys, &cfg);
	ck_assert_int_eq(engine_preload(eng, REMOTE, LAN_A, 0x9000, 0, 0, 1000),
			 0);
	announce_ok(LAN_A, key_net, 0x1000, 0);
	announce_ok(LAN_C, key_net, 0x1001, 0);
	announce_ok(lan_d, key_net, 0x1002, 0);
	ck_assert_uint_eq(es->announced, 3);
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1003, 0, T0 + 10);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 20),
			 ANN_ANNOUNCE_FULL);
	ck_assert_int_eq(state_of(0x1003, NULL), -1);
	ck_assert_uint_eq(ctx->stats.status[ANN_ANNOUNCE_FULL], 1);
	/* a refresh of its own is no new entry */
	announce_ok(LAN_A, key_net, 0x1000, 0);
	/* another host's SPI is still spi_taken, not a refresh */
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1001, 0, T0 + 10);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 20),
			 ANN_ANNOUNCE_FULL);
	m = msg_of(ANN_WITHDRAW, LAN_C, 0x1001, 0, T0 + 10);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_C, T0 + 20), ANN_OK);
	ck_assert_uint_eq(es->announced, 2);
	announce_ok(LAN_A, key_net, 0x1003, 0);
	ck_assert_uint_eq(es->announced, 3);
	/* every announced entry expires (TTL 3600 s): the count follows */
	engine_run_timers(eng, 1000 + 3601 * 1000ull);
	ck_assert_uint_eq(es->announced, 0);
	ck_assert_str_eq(ann_status_name(ANN_ANNOUNCE_FULL), "announce_full");
}
END_TEST

/* The reviewer's attack on the table: one key holder announces from 300
 * LAN addresses (spoofed or taken). With the table at 64 entries and the
 * cap at 32, 32 are announced, the rest refused, and a host that never
 * announced still opens ESP to a new remote (no table_full). */
START_TEST(many_sources_cannot_fill_the_table)
{
	const struct engine_stats *es = engine_get_stats(eng);
	struct engine_decision d;
	unsigned ok = 0, full = 0;
	uint8_t pkt[256];
	struct ann_msg m;
	size_t n;

	engine_free(eng);
	cfg.max_entries = 64;
	cfg.max_per_host = 8;
	eng = engine_new(&cfg, 7, 0, NULL, NULL);
	es = engine_get_stats(eng);
	set.max_entries = 32;
	ann_reconfigure(ctx, &set, &keys, &cfg);
	for (uint32_t i = 0; i < 300; i++) {
		uint32_t src = pb_addr("192.168.2.0") + i;
		enum ann_status st;

		m = msg_of(ANN_ANNOUNCE, src, 0x1000 + i, 0, T0 + 10);
		st = send_msg(&m, key_net, src, T0 + 20);
		ok += st == ANN_OK;
		full += st == ANN_ANNOUNCE_FULL;
	}
	ck_assert_uint_eq(ok, 32);
	ck_assert_uint_eq(full, 300 - 32);
	ck_assert_uint_eq(es->announced, 32);
	ck_assert_uint_eq(es->esp_entries, 32);
	n = pb_esp(pkt, sizeof(pkt), LAN_A, pb_addr("203.0.113.99"), 0xb000, 1,
		   32);
	engine_process(eng, pkt, n, DIR_OUTBOUND, 2000, &d);
	ck_assert_int_eq(d.verdict, VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(d.reason, R_PASS);
	ck_assert_uint_eq(es->esp_entries, 33);
}
END_TEST

START_TEST(flood_rate_limited_per_host)
{
	struct ann_msg m;
	unsigned ok = 0, limited = 0;

	/* 100 good announcements from .10 in one millisecond: the burst
	 * (20) passes, the rest is refused before the MAC */
	for (unsigned i = 0; i < 100; i++) {
		m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000 + i, 0, T0);
		enum ann_status st = send_msg(&m, key_net, LAN_A, T0 + 1);

		ok += st == ANN_OK;
		limited += st == ANN_RATE_LIMITED;
	}
	ck_assert_uint_eq(ok, set.burst);
	ck_assert_uint_eq(limited, 100 - set.burst);
	/* forged ones count against the bucket too */
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x2000, 0, T0);
	ck_assert_int_eq(send_msg(&m, key_b, LAN_A, T0 + 1), ANN_RATE_LIMITED);
	/* .12 is not limited by .10's flood */
	announce_ok(LAN_C, key_net, 0x3000, 0);
	/* one second later, `rate` (10) more for .10 */
	ok = 0;
	for (unsigned i = 0; i < 30; i++) {
		m = msg_of(ANN_ANNOUNCE, LAN_A, 0x4000 + i, 0, T0 + 1000);
		ok += send_msg(&m, key_net, LAN_A, T0 + 1001) == ANN_OK;
	}
	ck_assert_uint_eq(ok, set.rate);
}
END_TEST

START_TEST(malformed_and_truncated_refused)
{
	struct ann_msg m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0);
	uint8_t buf[ANN_MSG_LEN + 8];

	ann_encode(&m, key_net, buf);
	for (size_t len = 0; len < ANN_MSG_LEN; len++)
		ck_assert_int_eq(deliver(buf, len, LAN_A, T0 + len * 1000),
				 ANN_MALFORMED);
	ck_assert_int_eq(deliver(buf, ANN_MSG_LEN + 1, LAN_A, T0 + 80000),
			 ANN_MALFORMED);
	ann_encode(&m, key_net, buf);
	buf[0] = 'X';
	ck_assert_int_eq(deliver(buf, ANN_MSG_LEN, LAN_A, T0 + 81000),
			 ANN_MALFORMED);
	/* unknown type, a reply sent to the router, reserved byte set: all
	 * properly signed */
	m.type = 7;
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 82000),
			 ANN_MALFORMED);
	m.type = ANN_REPLY;
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 83000),
			 ANN_MALFORMED);
	/* authentic but nonsense values */
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x10, 0, T0 + 84000);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 84000), ANN_INVALID);
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0 + 85000);
	m.ttl_s = 0;
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 85000), ANN_INVALID);
	m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0 + 86000);
	m.remote = 0;
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0 + 86000), ANN_INVALID);
	ck_assert_int_eq(state_of(0x1000, NULL), -1);
	ck_assert_uint_eq(ctx->stats.status[ANN_OK], 0);
}
END_TEST

START_TEST(wrong_version_refused)
{
	struct ann_msg m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0);
	uint8_t buf[ANN_MSG_LEN];

	m.version = 3;
	ann_encode(&m, key_net, buf);
	ck_assert_int_eq(deliver(buf, sizeof(buf), LAN_A, T0), ANN_BAD_VERSION);
	/* a longer v3 message too: the version is read before the length */
	ck_assert_int_eq(deliver(buf, 40, LAN_A, T0), ANN_BAD_VERSION);
	/* version 1 (76 bytes, no cookie) is no longer spoken: it let any
	 * holder of a network key act for another address */
	m.version = 1;
	ann_encode(&m, key_net, buf);
	ck_assert_int_eq(deliver(buf, 76, LAN_A, T0), ANN_BAD_VERSION);
	ck_assert_int_eq(state_of(0x1000, NULL), -1);
	ck_assert_uint_eq(ctx->stats.status[ANN_BAD_VERSION], 3);
}
END_TEST

START_TEST(key_file_errors)
{
	struct ann_keys k;
	char err[128];

	ck_assert_int_eq(ann_keys_parse("# nothing\n\n", &k, err, sizeof(err)),
			 -1);
	ck_assert_int_eq(ann_keys_parse("\n\nabcd\n", &k, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "line 3: a key is 64 hex digits (32 bytes; e.g. "
			 "from `openssl rand -hex 32`)");
	ck_assert_int_eq(ann_keys_parse("192.168.1.1/24 "
		"1111111111111111111111111111111111111111111111111111111111111111",
		&k, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "line 1: not an address"));
	ck_assert_int_eq(ann_keys_parse("192.168.1.0/24 "
		"1111111111111111111111111111111111111111111111111111111111111111 x",
		&k, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "too many fields"));
	/* most specific wins; nothing covers an outside address */
	ck_assert_ptr_eq(ann_key_for(&keys, LAN_B), keys.k[1].key);
	ck_assert_ptr_eq(ann_key_for(&keys, LAN_A), keys.k[0].key);
	ck_assert_int_eq(ann_keys_parse("192.168.1.0/24 "
		"1111111111111111111111111111111111111111111111111111111111111111",
		&k, err, sizeof(err)), 0);
	ck_assert_ptr_null(ann_key_for(&k, pb_addr("192.168.2.1")));
}
END_TEST

START_TEST(no_key_for_sender_refused)
{
	struct ann_msg m = msg_of(ANN_ANNOUNCE, LAN_A, 0x1000, 0, T0);
	char err[128];

	ck_assert_int_eq(ann_keys_parse("192.168.1.11 "
		"2222222222222222222222222222222222222222222222222222222222222222",
		&keys, err, sizeof(err)), 0);
	ann_reconfigure(ctx, &set, &keys, &cfg);
	ck_assert_int_eq(send_msg(&m, key_net, LAN_A, T0), ANN_NO_KEY);
}
END_TEST

/* Three hosts announce their pairs with one remote, then all start at once
 * with parallel sessions on: no init is pending, nothing serialized or
 * guessed, each remote's first packet goes to its host. */
START_TEST(announced_pairs_skip_serialization)
{
	uint32_t hosts[3] = { LAN_A, LAN_B, LAN_C };
	const struct engine_stats *es = engine_get_stats(eng);
	struct engine_decision d;
	uint8_t pkt[256];
	size_t n;

	for (unsigned i = 0; i < 3; i++)
		announce_ok(hosts[i], hosts[i] == LAN_B ? key_b : key_net,
			    0xa000 + i, 0xb000 + i);
	for (unsigned i = 0; i < 3; i++) {
		n = pb_esp(pkt, sizeof(pkt), hosts[i], REMOTE, 0xb000 + i, 1, 32);
		engine_process(eng, pkt, n, DIR_OUTBOUND, 2000, &d);
		ck_assert_int_eq(d.verdict, VERDICT_ACCEPT_MODIFIED);
		ck_assert_int_eq(d.reason, R_PASS);
	}
	for (unsigned i = 0; i < 3; i++) {
		n = pb_esp(pkt, sizeof(pkt), REMOTE, EXT, 0xa000 + i, 1, 32);
		engine_process(eng, pkt, n, DIR_INBOUND, 2001, &d);
		ck_assert_int_eq(d.verdict, VERDICT_ACCEPT_MODIFIED);
		ck_assert_uint_eq(d.n_copies, 0);
		ck_assert_uint_eq(pb_get32(pkt + 16), hosts[i]);
	}
	ck_assert_uint_eq(es->events[EV_SERIALIZED], 0);
	ck_assert_uint_eq(es->events[EV_BLOCKED], 0);
	ck_assert_uint_eq(es->events[EV_GUESSED], 0);
	ck_assert_uint_eq(es->events[EV_CREATED], 0);
	ck_assert_uint_eq(es->pending, 0);
	ck_assert_uint_eq(es->copies, 0);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_int_eq(state_of(0xa000 + i, NULL), ESP_ANNOUNCED);
}
END_TEST

/* Without the announcement the same start serializes: the rule above is
 * the announcement's doing. A host that announced only its inbound SPI
 * gets its out-SPI attached on its first packet. */
START_TEST(unannounced_hosts_keep_todays_rules)
{
	const struct engine_stats *es = engine_get_stats(eng);
	struct engine_decision d;
	uint8_t pkt[256];
	size_t n;

	n = pb_esp(pkt, sizeof(pkt), LAN_A, REMOTE, 0xb000, 1, 32);
	engine_process(eng, pkt, n, DIR_OUTBOUND, 2000, &d);
	ck_assert_int_eq(d.reason, R_PASS);
	n = pb_esp(pkt, sizeof(pkt), LAN_B, REMOTE, 0xb001, 1, 32);
	engine_process(eng, pkt, n, DIR_OUTBOUND, 2000, &d);
	ck_assert_int_eq(d.verdict, VERDICT_DROP);
	ck_assert_int_eq(d.reason, R_ESP_SERIALIZED);
	ck_assert_uint_eq(es->events[EV_SERIALIZED], 1);
	/* .12 announced its in-SPI only: passes while .10's init is pending */
	announce_ok(LAN_C, key_net, 0xa002, 0);
	n = pb_esp(pkt, sizeof(pkt), LAN_C, REMOTE, 0xb002, 1, 32);
	engine_process(eng, pkt, n, DIR_OUTBOUND, 2001, &d);
	ck_assert_int_eq(d.reason, R_PASS);
	ck_assert_uint_eq(es->events[EV_SERIALIZED], 1);
	/* .12's SPI goes to .12 although .10's init is pending */
	n = pb_esp(pkt, sizeof(pkt), REMOTE, EXT, 0xa002, 1, 32);
	engine_process(eng, pkt, n, DIR_INBOUND, 2002, &d);
	ck_assert_uint_eq(pb_get32(pkt + 16), LAN_C);
	ck_assert_uint_eq(es->pending, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("announce");
	TCase *tc = tcase_create("protocol");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, good_announce_is_an_announced_preload);
	tcase_add_test(tc, withdraw_removes_only_its_own);
	tcase_add_test(tc, forged_mac_refused);
	tcase_add_test(tc, replayed_refused);
	tcase_add_test(tc, old_or_future_timestamp_refused);
	tcase_add_test(tc, wrong_source_refused);
	tcase_add_test(tc, foreign_spi_never_taken_over);
	tcase_add_test(tc, cookie_required_then_accepted);
	tcase_add_test(tc, spoofed_source_cannot_act_for_another_host);
	tcase_add_test(tc, sender_table_busy_and_eviction);
	tcase_add_test(tc, sender_slot_kept_for_the_highest_timestamp);
	tcase_add_test(tc, trim_restored_announced_entries);
	tcase_add_test(tc, host_limit_kept);
	tcase_add_test(tc, announced_entries_capped);
	tcase_add_test(tc, many_sources_cannot_fill_the_table);
	tcase_add_test(tc, flood_rate_limited_per_host);
	tcase_add_test(tc, malformed_and_truncated_refused);
	tcase_add_test(tc, wrong_version_refused);
	tcase_add_test(tc, key_file_errors);
	tcase_add_test(tc, no_key_for_sender_refused);
	tcase_add_test(tc, announced_pairs_skip_serialization);
	tcase_add_test(tc, unannounced_hosts_keep_todays_rules);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
