/*
 * Control protocol v1: request parsing (good lines, each kind of bad one),
 * JSON escaping, and the answers of a real engine fed with real packets:
 * show as JSON and as a table, whole and in slices, add/del/flush, the size
 * limit. Then the daemon side of the socket (src/control.c), driven by a
 * test loop: limits, over-long and shut-down requests, a slow reader, a
 * large answer in slices, a live socket kept.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* accept4 in control.c, included below */
#endif

#include <check.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "ctlproto.h"
#include "json.h"
#include "pktbuild.h"

/* control.c is compiled into this test (it is not in libengine.a, and the
 * build links each test from a fixed source list); the daemon's logger is
 * replaced by these stubs, which keep the last message. */
#include "../src/control.c"

#include <stddef.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static char last_log[512];

static void keep_log(const char *fmt, va_list ap)
	__attribute__((format(printf, 1, 0)));

static void keep_log(const char *fmt, va_list ap)
{
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	(void)prio;
	va_start(ap, fmt);
	keep_log(fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	keep_log(fmt, ap);
	va_end(ap);
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	keep_log(fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	keep_log(fmt, ap);
	va_end(ap);
}

static struct engine *eng;
static struct jbuf out;
static struct ctl_env env;
static char notes[1024];
static int reloads;

static void record_note(void *ctx, const char *what)
{
	(void)ctx;
	snprintf(notes + strlen(notes), sizeof(notes) - strlen(notes), "%s\n",
		 what);
}

static int fake_reload(void *ctx)
{
	(void)ctx;
	return reloads++ == 0 ? 0 : -1;
}

static void setup(void)
{
	struct engine_config cfg;

	engine_config_defaults(&cfg);
	cfg.external_addr = pb_addr("198.51.100.1");
	cfg.internal[0].addr = pb_addr("192.168.1.0");
	cfg.internal[0].mask = 0xffffff00u;
	cfg.n_internal = 1;
	cfg.parallel_sessions = true;
	eng = engine_new(&cfg, 7, 1000, NULL, NULL);
	ck_assert_ptr_nonnull(eng);
	jbuf_init(&out, CTL_MAX_RESPONSE);
	memset(&env, 0, sizeof(env));
	env.eng = eng;
	env.now = 1000;
	env.started = 1000;
	env.note = record_note;
	env.reload = fake_reload;
	notes[0] = '\0';
	reloads = 0;
}

static void teardown(void)
{
	jbuf_free(&out);
	engine_free(eng);
}

/* Sends one ESP packet through the engine at env.now. */
static void esp(const char *src, const char *dst, uint32_t spi, int inbound)
{
	uint8_t pkt[256];
	size_t len = pb_esp(pkt, sizeof(pkt), pb_addr(src), pb_addr(dst), spi,
			    1, 32);
	struct engine_decision dec;

	engine_process(eng, pkt, len, inbound ? DIR_INBOUND : DIR_OUTBOUND,
		       env.now, &dec);
	ck_assert_int_ne(dec.verdict, VERDICT_DROP);
}

static const char *ask(const char *line)
{
	ctl_handle_line(line, &env, &out, NULL);
	ck_assert(!out.overflow);
	return out.p;
}

START_TEST(parse_good)
{
	struct ctl_request r;
	char err[128];

	ck_assert_int_eq(ctl_parse("v1 ping\n", &r, err, sizeof(err)), 0);
	ck_assert_int_eq(r.cmd, CTL_PING);
	ck_assert(!r.json);
	ck_assert_int_eq(ctl_parse("v1 show format=json remote=198.51.100.20 "
				   "host=192.168.1.10", &r, err, sizeof(err)), 0);
	ck_assert_int_eq(r.cmd, CTL_SHOW);
	ck_assert(r.json && r.has_remote && r.has_host);
	ck_assert_uint_eq(r.remote, pb_addr("198.51.100.20"));
	ck_assert_uint_eq(r.host, pb_addr("192.168.1.10"));
	ck_assert_int_eq(ctl_parse("v1 add-esp remote=198.51.100.20 "
				   "host=192.168.1.11 spi_in=0x5000 "
				   "spi_out=4096 ttl=60\r\n", &r, err,
				   sizeof(err)), 0);
	ck_assert_int_eq(r.cmd, CTL_ADD_ESP);
	ck_assert_uint_eq(r.spi_in, 0x5000);
	ck_assert_uint_eq(r.spi_out, 4096);
	ck_assert_uint_eq(r.ttl_ms, 60000);
	ck_assert_int_eq(ctl_parse("v1 del-esp remote=1.2.3.4 spi_in=0xFFFFFFFF",
				   &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.spi_in, 0xffffffffu);
}
END_TEST

START_TEST(parse_bad)
{
	static const struct { const char *line, *err; } cases[] = {
		{ "", "protocol version" },
		{ "v2 ping", "protocol version" },
		{ "ping", "protocol version" },
		{ "v1", "protocol unknown command (none)" },
		{ "v1 frob", "protocol unknown command frob" },
		{ "v1 show remote", "protocol argument without '='" },
		{ "v1 show colour=red", "protocol unknown key colour" },
		{ "v1 show remote=1.2.3", "invalid remote: 1.2.3" },
		{ "v1 show host=192.168.001.1", "invalid host" },
		{ "v1 show format=xml", "invalid format" },
		{ "v1 ping host=1.2.3.4", "protocol argument not taken by ping" },
		{ "v1 show spi_in=0x1000", "protocol argument not taken" },
		{ "v1 del-esp remote=1.2.3.4 spi_in=0x1000 host=1.2.3.5",
		  "protocol argument not taken by del-esp" },
		{ "v1 add-esp remote=1.2.3.4 spi_in=0x1000",
		  "protocol add-esp needs remote=, spi_in= and host=" },
		{ "v1 del-esp remote=1.2.3.4", "protocol del-esp needs" },
		{ "v1 del-esp remote=1.2.3.4 spi_in=0", "invalid spi_in: 0" },
		{ "v1 del-esp remote=1.2.3.4 spi_in=255", "invalid spi_in" },
		{ "v1 del-esp remote=1.2.3.4 spi_in=0x100000000", "invalid" },
		{ "v1 del-esp remote=1.2.3.4 spi_in=0x", "invalid" },
		{ "v1 del-esp remote=1.2.3.4 spi_in=-5", "invalid" },
		{ "v1 del-esp remote=1.2.3.4 spi_in=0x12g4", "invalid" },
		{ "v1 add-esp remote=1.2.3.4 host=1.2.3.5 spi_in=0x1000 ttl=0",
		  "invalid ttl" },
		{ "v1 add-esp remote=1.2.3.4 host=1.2.3.5 spi_in=0x1000 "
		  "ttl=604801", "invalid ttl" },
	};
	struct ctl_request r;
	char err[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_msg(ctl_parse(cases[i].line, &r, err,
					sizeof(err)) < 0, "%s", cases[i].line);
		ck_assert_msg(strncmp(err, cases[i].err,
				      strlen(cases[i].err)) == 0,
			      "%s: got \"%s\"", cases[i].line, err);
	}
}
END_TEST

START_TEST(parse_too_long)
{
	char line[CTL_MAX_REQUEST + 16];
	struct ctl_request r;
	char err[128];

	memset(line, ' ', sizeof(line) - 1);
	memcpy(line, "v1 ping", 7);
	line[sizeof(line) - 1] = '\0';
	ck_assert_int_lt(ctl_parse(line, &r, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "protocol request too long");
	ck_assert_str_eq(ask(line), "error protocol request too long\n");
}
END_TEST

START_TEST(json_escapes)
{
	struct jbuf b;

	jbuf_init(&b, 1024);
	json_obj_begin(&b);
	json_kv_str(&b, "q\"k", "a\"b\\c\n\t\x01\x7f\xc3\xa9");
	json_key(&b, "list");
	json_arr_begin(&b);
	json_uint(&b, 1);
	json_null(&b);
	json_bool(&b, true);
	json_int(&b, -3);
	json_obj_begin(&b);
	json_obj_end(&b);
	json_arr_end(&b);
	json_kv_str(&b, "none", NULL);
	json_obj_end(&b);
	ck_assert(!b.overflow);
	ck_assert_str_eq(b.p, "{\"q\\\"k\":\"a\\\"b\\\\c\\n\\t\\u0001\\u007f"
			 "\xc3\xa9\",\"list\":[1,null,true,-3,{}],"
			 "\"none\":null}");
	jbuf_free(&b);

	jbuf_init(&b, 8);
	jbuf_puts(&b, "1234567");
	ck_assert(!b.overflow);
	jbuf_puts(&b, "8");
	ck_assert(b.overflow);
	jbuf_free(&b);
}
END_TEST

START_TEST(ping_and_reload)
{
	ck_assert_str_eq(ask("v1 ping"), "ok\npong\n");
	ck_assert_str_eq(ask("v1 ping format=json"),
			 "ok\n{\"version\":1,\"pong\":1}\n");
	ck_assert_str_eq(ask("v1 reload"), "ok\nreloaded\n");
	ck_assert_str_eq(ask("v1 reload"),
			 "error failed reload refused: see the daemon's log\n");
	ck_assert_str_eq(ask("v2 ping"), "error protocol version not "
			 "supported (this daemon speaks v1)\n");
}
END_TEST

START_TEST(show_json_from_traffic)
{
	esp("192.168.1.10", "198.51.100.20", 0x1000, 0);
	env.now = 2000;
	esp("198.51.100.20", "198.51.100.1", 0x2000, 1);
	env.now = 5500;
	esp("192.168.1.11", "198.51.100.20", 0x3000, 0);   /* pending */
	env.now = 7000;
	/* bound by its first inbound packet, not used both ways since */
	ck_assert_str_eq(ask("v1 show format=json host=192.168.1.10"),
		"ok\n{\"version\":1,\"isakmp\":[],\"esp\":[{"
		"\"remote\":\"198.51.100.20\",\"host\":\"192.168.1.10\","
		"\"spi_out\":\"0x00001000\",\"spi_in\":\"0x00002000\","
		"\"state\":\"provisional\",\"pkts_out\":1,\"pkts_in\":1,"
		"\"bytes_out\":60,\"bytes_in\":60,\"idle\":5,\"ttl\":1795,"
		"\"age\":6,\"fastpath\":\"-\"}],\"pending\":[]}\n");
	ck_assert_str_eq(ask("v1 show format=json host=192.168.1.11"),
		"ok\n{\"version\":1,\"isakmp\":[],\"esp\":[{"
		"\"remote\":\"198.51.100.20\",\"host\":\"192.168.1.11\","
		"\"spi_out\":\"0x00003000\",\"spi_in\":null,"
		"\"state\":\"pending\",\"pkts_out\":1,\"pkts_in\":0,"
		"\"bytes_out\":60,\"bytes_in\":0,\"idle\":1,\"ttl\":119,"
		"\"age\":1,\"fastpath\":\"-\"}],\"pending\":[{\"remote\":\"198.51.100.20\","
		"\"host\":\"192.168.1.11\",\"spi_out\":\"0x00003000\","
		"\"since\":1,\"ttl\":119}]}\n");
	ck_assert_str_eq(ask("v1 show format=json remote=203.0.113.1"),
		"ok\n{\"version\":1,\"isakmp\":[],\"esp\":[],\"pending\":[]}\n");
}
END_TEST

/* The fast path's answer per entry (the daemon's fastpath_offloaded()). */
static unsigned offloaded_stub(void *ctx, uint32_t remote, uint32_t spi_in)
{
	(void)ctx;
	(void)remote;
	return spi_in == 0x2000 ? 3u : 0u;
}

START_TEST(show_says_offloaded)
{
	const char *t;

	esp("192.168.1.10", "198.51.100.20", 0x1000, 0);
	esp("198.51.100.20", "198.51.100.1", 0x2000, 1);
	env.offloaded = offloaded_stub;
	ck_assert_ptr_nonnull(strstr(ask("v1 show format=json"),
				     "\"age\":0,\"fastpath\":\"in+out\"}"));
	t = ask("v1 show");
	ck_assert_ptr_nonnull(strstr(t, "TTL    FASTPATH\n"));
	ck_assert_ptr_nonnull(strstr(t, "1800s  in+out\n"));
	env.offloaded = NULL;
}
END_TEST

START_TEST(show_isakmp_json_and_table)
{
	uint8_t pkt[256];
	struct engine_decision dec;
	size_t len = pb_isakmp(pkt, sizeof(pkt), pb_addr("192.168.1.10"),
			       pb_addr("198.51.100.20"),
			       0x1122334455667788ull, 0, 1, 0);
	const char *t;

	engine_process(eng, pkt, len, DIR_OUTBOUND, env.now, &dec);
	ck_assert_int_ne(dec.verdict, VERDICT_DROP);
	esp("192.168.1.10", "198.51.100.20", 0x1000, 0);
	env.now += 3000;
	ck_assert_ptr_nonnull(strstr(ask("v1 show format=json"),
		"\"isakmp\":[{\"remote\":\"198.51.100.20\",\"host\":"
		"\"192.168.1.10\",\"cookie_i\":\"1122334455667788\","
		"\"cookie_r\":null,\"idle\":3,\"ttl\":1797}]"));
	t = ask("v1 show");
	ck_assert_ptr_nonnull(strstr(t, "ok\nISAKMP entries: 1\n"
		"REMOTE         HOST          COOKIE_I          COOKIE_R  "
		"IDLE  TTL\n198.51.100.20  192.168.1.10  1122334455667788  "
		"-         3s    1797s\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nESP entries: 1\nREMOTE         "
		"HOST          SPI_OUT     SPI_IN   STATE    PKTS_OUT  "));
	ck_assert_ptr_nonnull(strstr(t, "0x00001000  pending  pending  1 "));
	ck_assert_ptr_nonnull(strstr(t, "\nPending inits: 1\n"));
}
END_TEST

START_TEST(add_del_flush)
{
	const char *r;

	ck_assert_str_eq(ask("v1 add-esp remote=198.51.100.20 "
			     "host=192.168.1.10 spi_in=0x5000 ttl=60"),
			 "ok\n");
	ck_assert_ptr_nonnull(strstr(notes, "control: add-esp "
		"remote=198.51.100.20 spi_in=0x00005000 host=192.168.1.10 "
		"spi_out=0x00000000 ttl=60s"));
	r = ask("v1 show format=json");
	ck_assert_ptr_nonnull(strstr(r, "\"spi_out\":null,\"spi_in\":"
				     "\"0x00005000\",\"state\":\"preloaded\""));
	ck_assert_ptr_nonnull(strstr(r, "\"ttl\":60,"));
	/* the same SPI for another host: refused */
	ck_assert_str_eq(ask("v1 add-esp remote=198.51.100.20 "
			     "host=192.168.1.11 spi_in=0x5000"),
			 "error exists remote 198.51.100.20 SPI 0x00005000 to "
			 "192.168.1.11: the SPI belongs to another host\n");
	ck_assert_str_eq(ask("v1 add-esp remote=198.51.100.20 "
			     "host=10.9.9.9 spi_in=0x6000"),
			 "error invalid remote 198.51.100.20 SPI 0x00006000 to "
			 "10.9.9.9: host is not internal\n");
	ck_assert_str_eq(ask("v1 del-esp remote=198.51.100.20 spi_in=0x5000 "
			     "format=json"),
			 "ok\n{\"version\":1,\"removed\":1}\n");
	ck_assert_str_eq(ask("v1 del-esp remote=198.51.100.20 spi_in=0x5000"),
			 "error notfound no ESP entry of remote 198.51.100.20 "
			 "with SPI 0x00005000\n");
	esp("192.168.1.10", "198.51.100.20", 0x1000, 0);
	esp("192.168.1.11", "198.51.100.21", 0x1001, 0);
	ck_assert_str_eq(ask("v1 flush host=192.168.1.11"),
			 "ok\n1 entries removed\n");
	ck_assert_ptr_nonnull(strstr(notes, "control: flush remote=any "
				     "host=192.168.1.11: 1 entries removed"));
	ck_assert_str_eq(ask("v1 flush format=json"),
			 "ok\n{\"version\":1,\"removed\":1}\n");
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 0);
}
END_TEST

START_TEST(stats_shapes)
{
	const char *r;

	esp("192.168.1.10", "198.51.100.20", 0x1000, 0);
	env.now = 62000;
	env.daemon[0] = (struct ctl_counter){ "copies_sent", 4 };
	env.n_daemon = 1;
	r = ask("v1 stats format=json");
	ck_assert_ptr_nonnull(strstr(r, "ok\n{\"version\":1,\"uptime\":61,"
		"\"packets\":{\"inbound\":0,\"outbound\":1},\"verdicts\":{"
		"\"accept\":0,\"accept_modified\":1,\"drop\":0},"
		"\"reasons\":{\"ok\":1,"));
	ck_assert_ptr_nonnull(strstr(r, "\"malformed\":{\"ip_truncated\":0,"));
	ck_assert_ptr_nonnull(strstr(r, "\"decisions\":{\"created\":1,"));
	ck_assert_ptr_nonnull(strstr(r, "\"tables\":{\"esp\":1,\"isakmp\":0,"
		"\"isakmp_answers\":0,\"hosts\":1,\"remotes\":1,\"pending\":1,\"max_entries\":65536,"
		"\"max_per_host\":1024},\"daemon\":{\"copies_sent\":4}}\n"));
	r = ask("v1 stats");
	ck_assert_ptr_nonnull(strstr(r, "ok\nuptime 61s\npackets.inbound"));
	/* aligned: every value starts in the same column */
	r = strstr(r, "\ndaemon.copies_sent ");
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(strspn(r + 19, " "), 28 + 2 - 18);
	ck_assert(strncmp(r + 19 + 12, "4\n", 2) == 0);
	ck_assert_ptr_nonnull(strstr(out.p, "\nmalformed.isakmp_cookie_zero  0\n"));
}
END_TEST

START_TEST(response_limit)
{
	jbuf_free(&out);
	jbuf_init(&out, 200);
	for (uint32_t i = 0; i < 20; i++)
		ck_assert_int_eq(engine_preload(eng, pb_addr("198.51.100.20"),
						pb_addr("192.168.1.10"),
						0x1000 + i, 0, 0, env.now), 0);
	ctl_handle_line("v1 show format=json", &env, &out, NULL);
	ck_assert_str_eq(out.p, "error toolarge response larger than 200 "
			 "bytes: narrow it with --remote or --host\n");
}
END_TEST

/* The answer built in slices, as the control socket does, is the answer
 * built whole, byte for byte, in both formats. */
START_TEST(show_in_slices)
{
	static const char *const reqs[] = { "v1 show format=json", "v1 show" };
	struct ctl_cont *k;
	char *whole;

	for (uint32_t i = 0; i < 1000; i++)
		ck_assert_int_eq(engine_preload(eng, pb_addr("203.0.113.1") + i % 7,
						pb_addr("192.168.1.1") + i % 200,
						0x1000 + i, i % 3 ? 0x9000 + i : 0,
						0, env.now), 0);
	esp("192.168.1.210", "198.51.100.20", 0x77777, 0);   /* pending */
	env.now += 12345;
	for (size_t r = 0; r < 2; r++) {
		struct jbuf acc;
		size_t slices = 0;

		whole = strdup(ask(reqs[r]));
		ck_assert_ptr_nonnull(whole);
		ck_assert_uint_gt(strlen(whole), 100000);
		jbuf_init(&acc, 1u << 24);
		ctl_handle_line(reqs[r], &env, &out, &k);
		ck_assert_ptr_nonnull(k);
		jbuf_puts(&acc, out.p);
		for (;;) {
			int done;

			jbuf_consume(&out);
			done = ctl_continue(k, &out, 7);
			ck_assert(!out.overflow);
			jbuf_puts(&acc, out.p);
			slices++;
			if (done)
				break;
		}
		ctl_cont_free(k);
		ck_assert_uint_ge(slices, (1000 - CTL_SHOW_SLICE) / 7);
		ck_assert_str_eq(acc.p, whole);
		jbuf_free(&acc);
		free(whole);
	}
	/* a filtered answer walks the whole table too, in slices; its
	 * rows are the matching ones */
	{
		struct jbuf acc;
		size_t slices = 0;

		jbuf_init(&acc, 1u << 24);
		ctl_handle_line("v1 show remote=198.51.100.20", &env, &out,
				&k);
		jbuf_puts(&acc, out.p);
		while (k != NULL) {
			jbuf_consume(&out);
			if (ctl_continue(k, &out, CTL_SHOW_SLICE)) {
				ctl_cont_free(k);
				k = NULL;
			}
			jbuf_puts(&acc, out.p);
			slices++;
		}
		ck_assert_uint_ge(slices, 1);
		ck_assert_ptr_nonnull(strstr(acc.p, "\nPending inits: 1\n"));
		ck_assert_ptr_nonnull(strstr(acc.p, "\nESP entries: 1\n"));
		ck_assert_str_eq(acc.p + strlen(acc.p) - strlen(CTL_SHOW_END),
				 CTL_SHOW_END);
		jbuf_free(&acc);
	}
	/* a small table is complete at once */
	ck_assert_uint_eq(engine_flush(eng, 0, 0), 1001);
	esp("192.168.1.210", "198.51.100.20", 0x77777, 0);   /* pending */
	ctl_handle_line("v1 show", &env, &out, &k);
	ck_assert_ptr_null(k);
	ck_assert_ptr_nonnull(strstr(out.p, "\nPending inits: 1\n"));
}
END_TEST

/* A flush of 30000 entries answered in slices, as the control socket
 * does: no answer and no log line before the last slice (a client that
 * reads "ok" finds every entry gone), each slice a bounded part of the
 * table, entries created meanwhile by traffic left to live or go, the
 * count and the note at the end. Without slices (the old flush) all went
 * in the one call. */
START_TEST(flush_in_slices_answers_when_done)
{
	struct ctl_cont *k = NULL;
	size_t slices = 0, left = 30000;

	for (uint32_t i = 0; i < 30000; i++)
		ck_assert_int_eq(engine_preload(eng, pb_addr("203.0.113.1") + i % 50,
						pb_addr("192.168.1.1") + i % 200,
						0x10000 + i, 0, 0, env.now), 0);
	env.who = "uid=0 pid=42";
	ctl_handle_line("v1 flush", &env, &out, &k);
	ck_assert_ptr_nonnull(k);
	while (k != NULL) {
		size_t now_left;

		ck_assert_uint_eq(out.len, 0);     /* nothing acknowledged */
		ck_assert_str_eq(notes, "");       /* nor logged */
		now_left = engine_get_stats(eng)->esp_entries;
		ck_assert_uint_lt(now_left, left);           /* progress */
		ck_assert_uint_le(left - now_left,
				  2 * CTL_FLUSH_FACTOR * CTL_SHOW_SLICE);
		left = now_left;
		/* a new entry meanwhile: created after the flush was asked,
		 * it may stay or go */
		ck_assert_int_eq(engine_preload(eng, pb_addr("198.51.100.99"),
						pb_addr("192.168.1.99"),
						0x90000 + (uint32_t)slices, 0,
						0, env.now), 0);
		jbuf_consume(&out);
		if (ctl_continue(k, &out, CTL_SHOW_SLICE)) {
			ctl_cont_free(k);
			k = NULL;
		}
		slices++;
	}
	ck_assert_uint_ge(slices, 30000 / (2 * CTL_FLUSH_FACTOR * CTL_SHOW_SLICE));
	ck_assert(strncmp(out.p, "ok\n", 3) == 0);
	/* every one of the 30000 went; of the new ones, some may be counted */
	ck_assert_uint_le(engine_get_stats(eng)->esp_entries, slices);
	ck_assert_uint_eq(strtoull(out.p + 3, NULL, 10) +
			  engine_get_stats(eng)->esp_entries, 30000 + slices);
	ck_assert_ptr_nonnull(strstr(notes, "control: flush remote=any "
				     "host=any: "));
	ck_assert_ptr_nonnull(strstr(notes, "(by uid=0 pid=42)\n"));
	ck_assert_ptr_null(strchr(strchr(notes, '\n') + 1, '\n'));
}
END_TEST

/* A flush whose client goes away after the first slice is finished at
 * once (ctl_cont_finish, as drop() does), logged, never left half done;
 * a filtered flush leaves the other entries alone. */
START_TEST(abandoned_flush_is_finished)
{
	struct ctl_cont *k = NULL;

	for (uint32_t i = 0; i < 30000; i++)
		ck_assert_int_eq(engine_preload(eng, pb_addr("203.0.113.1") + i % 50,
						pb_addr("192.168.1.1") + i % 200,
						0x10000 + i, 0, 0, env.now), 0);
	ctl_handle_line("v1 flush remote=203.0.113.1", &env, &out, &k);
	ck_assert_ptr_nonnull(k);
	ck_assert_uint_gt(engine_get_stats(eng)->esp_entries, 30000 - 600);
	ctl_cont_finish(k);
	ctl_cont_free(k);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 30000 - 600);
	ck_assert_ptr_nonnull(strstr(notes, "control: flush remote=203.0.113.1 "
				     "host=any: 600 entries removed\n"));
	/* a host filter walks the whole table too, in slices */
	k = NULL;
	ctl_handle_line("v1 flush host=192.168.1.2", &env, &out, &k);
	while (k != NULL) {
		jbuf_consume(&out);
		if (ctl_continue(k, &out, CTL_SHOW_SLICE)) {
			ctl_cont_free(k);
			k = NULL;
		}
	}
	ck_assert_str_eq(out.p, "ok\n150 entries removed\n");
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 30000 - 750);
}
END_TEST

/* Heap bytes in use, mmapped blocks included (glibc's count; 0 where
 * malloc is replaced, as under ASan or valgrind, where the check below
 * then proves nothing). */
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* A show of 60000 entries, both formats, as the control socket streams
 * it: whole (every entry once, the end marker), and the heap never grows
 * by more than a slice's worth while it is answered. The show before
 * issue 13's item 7 copied every entry first: 60000 x 88 bytes, 5 MB. */
START_TEST(large_show_streams_in_bounded_memory)
{
	static const char *const reqs[] = { "v1 show format=json", "v1 show" };
	static const char *const marks[] = { "\"state\":\"preloaded\"",
					     " preloaded " };

	for (uint32_t i = 0; i < 60000; i++)
		ck_assert_int_eq(engine_preload(eng, pb_addr("203.0.113.1") + i % 500,
						pb_addr("192.168.1.1") + i % 200,
						0x10000 + i, 0, 0, env.now), 0);
	for (size_t r = 0; r < 2; r++) {
		struct ctl_cont *k;
		struct jbuf acc;
		size_t base, peak = 0, slices = 0, n = 0;
		const char *p;

		jbuf_init(&acc, 64u << 20);
		jbuf_free(&out);
		jbuf_init(&out, CTL_MAX_RESPONSE);
		base = heap_in_use();
		ctl_handle_line(reqs[r], &env, &out, &k);
		for (;;) {
			size_t used = heap_in_use();

			/* acc grows; out and the show's state are what count */
			if (used > base + acc.cap && used - base - acc.cap > peak)
				peak = used - base - acc.cap;
			jbuf_puts(&acc, out.p);
			if (k == NULL)
				break;
			jbuf_consume(&out);
			if (ctl_continue(k, &out, CTL_SHOW_SLICE)) {
				ctl_cont_free(k);
				k = NULL;
			}
			ck_assert(!out.overflow);
			slices++;
		}
		for (p = acc.p; (p = strstr(p, marks[r])) != NULL; p++)
			n++;
		ck_assert_uint_eq(n, 60000);
		ck_assert_uint_ge(slices, 60000 / CTL_SHOW_SLICE);
		if (r == 0)
			ck_assert_str_eq(acc.p + acc.len - 17,
					 "}],\"pending\":[]}\n");
		else
			ck_assert_str_eq(acc.p + acc.len - strlen(CTL_SHOW_END),
					 CTL_SHOW_END);
		printf("show %s of 60000 entries: %zu slices, heap peak +%zu "
		       "bytes\n", r ? "text" : "json", slices, peak);
		ck_assert_uint_lt(peak, 512u << 10);
		jbuf_free(&acc);
	}
}
END_TEST

/* ---- the socket ---------------------------------------------------------- */

enum { TAG_LISTEN = 1, TAG_CLIENT0 = 0x100 };

static char dir[48], path[96];
static int epfd;
static struct control *ctl;
static uint64_t now;

static void fill_env(void *ctx, struct ctl_env *e)
{
	(void)ctx;
	e->eng = eng;
	e->now = now;
	e->started = 0;
	e->note = record_note;
	e->reload = fake_reload;
}

static void sock_setup(void)
{
	setup();
	now = 1000;
	snprintf(dir, sizeof(dir), "/tmp/test_control.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sub/control", dir);  /* dir made */
	epfd = epoll_create1(EPOLL_CLOEXEC);
	ck_assert_int_ge(epfd, 0);
	ctl = control_open(path, 0640, "", "", epfd, TAG_LISTEN, TAG_CLIENT0,
			   fill_env, NULL, NULL);
	ck_assert_ptr_nonnull(ctl);
}

static void sock_teardown(void)
{
	char sub[64];

	control_close(ctl);
	close(epfd);
	teardown();
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	rmdir(sub);
	rmdir(dir);
}

/* One round of the daemon's loop, without blocking. Returns the number of
 * events handled. */
static int pump(void)
{
	struct epoll_event evs[16];
	int n = epoll_wait(epfd, evs, 16, 0);

	for (int i = 0; i < n; i++) {
		if (evs[i].data.u32 == TAG_LISTEN)
			control_on_listen(ctl, now);
		else
			control_on_client(ctl, evs[i].data.u32 - TAG_CLIENT0,
					  evs[i].events, now);
	}
	return n;
}

static int client(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* Reads to EOF (pumping the loop between reads). */
static size_t read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	for (int round = 0; round < 10000; round++) {
		ssize_t n;

		pump();
		n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			len += (size_t)n;
		else
			ck_assert(errno == EAGAIN || errno == ECONNRESET);
		if (n < 0 && errno == ECONNRESET)
			break;
	}
	buf[len] = '\0';
	return len;
}

static const char *sock_ask(int fd, const char *req)
{
	static char buf[65536];

	ck_assert_int_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	read_all(fd, buf, sizeof(buf));
	close(fd);
	return buf;
}

START_TEST(socket_mode_and_ping)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	ck_assert_str_eq(sock_ask(client(), "v1 ping\n"), "ok\npong\n");
	ck_assert_str_eq(sock_ask(client(), "v1 ping format=json\n"),
			 "ok\n{\"version\":1,\"pong\":1}\n");
	ck_assert_uint_eq(control_get_stats(ctl)->requests, 2);
	ck_assert_uint_eq(control_next_deadline(ctl), UINT64_MAX);
}
END_TEST

START_TEST(request_ended_by_shutdown)
{
	int fd = client();
	char buf[256];

	ck_assert_int_eq(send(fd, "v1 ping", 7, 0), 7);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	read_all(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_str_eq(buf, "ok\npong\n");
	fd = client();
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	read_all(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(changes_name_the_peer)
{
	char who[64], want[256];

	snprintf(who, sizeof(who), "(by uid=%u pid=%d)", (unsigned)geteuid(),
		 (int)getpid());
	ck_assert(!strncmp(sock_ask(client(), "v1 add-esp remote=203.0.113.1 "
				    "host=192.168.1.10 spi_in=0x1234\n"), "ok\n", 3));
	ck_assert(!strncmp(sock_ask(client(), "v1 del-esp remote=203.0.113.1 "
				    "spi_in=0x1234\n"), "ok\n", 3));
	(void)sock_ask(client(), "v1 flush\n");
	(void)sock_ask(client(), "v1 reload\n");
	snprintf(want, sizeof(want), "control: add-esp remote=203.0.113.1 "
		 "spi_in=0x00001234 host=192.168.1.10 spi_out=0x00000000 "
		 "ttl=0s %s\n", who);
	ck_assert_msg(strstr(notes, want) != NULL, "%s", notes);
	snprintf(want, sizeof(want), "control: del-esp remote=203.0.113.1 "
		 "spi_in=0x00001234 %s\n", who);
	ck_assert_msg(strstr(notes, want) != NULL, "%s", notes);
	snprintf(want, sizeof(want), "control: flush remote=any host=any: 0 "
		 "entries removed %s\n", who);
	ck_assert_msg(strstr(notes, want) != NULL, "%s", notes);
	snprintf(want, sizeof(want), "control: reload requested %s\n", who);
	ck_assert_msg(strstr(notes, want) != NULL, "%s", notes);
}
END_TEST

START_TEST(live_socket_kept)
{
	struct control *second = control_open(path, 0600, "", "", epfd, 2,
					      0x200, fill_env, NULL, NULL);

	ck_assert_ptr_null(second);
	ck_assert_int_eq(errno, EADDRINUSE);
	ck_assert_str_eq(sock_ask(client(), "v1 ping\n"), "ok\npong\n");
}
END_TEST

START_TEST(client_limit)
{
	int fds[CONTROL_MAX_CLIENTS], extra;
	char buf[256];

	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		fds[i] = client();
	pump();
	extra = client();
	read_all(extra, buf, sizeof(buf));
	ck_assert_str_eq(buf, "error busy too many control clients\n");
	close(extra);
	ck_assert_uint_eq(control_get_stats(ctl)->refused, 1);
	/* the idle ones are dropped at their deadline */
	ck_assert_uint_eq(control_next_deadline(ctl), now + CONTROL_TIMEOUT_MS);
	now += CONTROL_TIMEOUT_MS;
	control_run_timers(ctl, now);
	ck_assert_uint_eq(control_get_stats(ctl)->timeouts,
			  CONTROL_MAX_CLIENTS);
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		ck_assert_int_eq(recv(fds[i], buf, sizeof(buf), 0), 0);
		close(fds[i]);
	}
	ck_assert_str_eq(sock_ask(client(), "v1 ping\n"), "ok\npong\n");
}
END_TEST

START_TEST(long_request)
{
	static char req[CTL_MAX_REQUEST + 100];
	char buf[256];
	int fd = client();
	ssize_t n;

	memset(req, 'x', sizeof(req));
	n = send(fd, req, sizeof(req), MSG_DONTWAIT);
	ck_assert_int_gt(n, CTL_MAX_REQUEST);
	read_all(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_str_eq(buf, "error protocol request longer than 4096 "
			 "bytes\n");
	ck_assert_uint_eq(control_get_stats(ctl)->bad_requests, 1);
}
END_TEST

START_TEST(slow_reader_dropped)
{
	int fd = client(), rcv = 4096;
	struct timespec t0, t1;
	char buf[4096];
	size_t got = 0;
	ssize_t n;

	for (uint32_t i = 0; i < 12000; i++)
		ck_assert_int_eq(engine_preload(eng, pb_addr("203.0.113.1") + i % 50,
						pb_addr("192.168.1.1") + i % 200,
						0x10000 + i, 0, 0, now), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv,
				    sizeof(rcv)), 0);
	ck_assert_int_eq(send(fd, "v1 show format=json\n", 20, 0), 20);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 50; i++)
		pump();               /* never blocks on the full socket */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 3);
	/* a little progress every second does not extend the deadline,
	 * which runs from the request */
	ck_assert_uint_eq(control_next_deadline(ctl), now + CONTROL_ANSWER_MS);
	for (uint64_t t = 0; t + 1000 < CONTROL_ANSWER_MS; t += 1000) {
		now += 1000;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
		pump();
		control_run_timers(ctl, now);
		ck_assert_uint_eq(control_get_stats(ctl)->timeouts, 0);
	}
	now = 1000 + CONTROL_ANSWER_MS;
	control_run_timers(ctl, now);
	ck_assert_uint_eq(control_get_stats(ctl)->timeouts, 1);
	ck_assert_msg(!strncmp(last_log, "control client dropped: answer not "
			       "read in 30000 ms by uid=", 49), "%s", last_log);
	/* what was queued can still be read, then the connection ends */
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		got += (size_t)n;
	ck_assert_uint_gt(got, 0);
	ck_assert_uint_lt(got, 12000 * 100);
	close(fd);
	ck_assert_str_eq(sock_ask(client(), "v1 ping\n"), "ok\npong\n");
}
END_TEST

/* A large show reaches a reader whole, built in slices as it reads; the
 * daemon's buffer never holds more than a slice. */
START_TEST(large_show_in_slices)
{
	static char buf[8 << 20];
	int fd = client();
	size_t len, n = 0;
	const char *p;

	for (uint32_t i = 0; i < 30000; i++)
		ck_assert_int_eq(engine_preload(eng, pb_addr("203.0.113.1") + i % 50,
						pb_addr("192.168.1.1") + i % 200,
						0x10000 + i, 0, 0, now), 0);
	ck_assert_int_eq(send(fd, "v1 show format=json\n", 20, 0), 20);
	len = read_all(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_uint_gt(len, 30000 * 150);
	ck_assert(strncmp(buf, "ok\n{\"version\":1,\"isakmp\":[],\"esp\":[{", 32) == 0);
	ck_assert_str_eq(buf + len - 17, "}],\"pending\":[]}\n");
	for (p = buf; (p = strstr(p, "\"state\":\"preloaded\"")) != NULL; p++)
		n++;
	ck_assert_uint_eq(n, 30000);
	ck_assert_uint_eq(control_get_stats(ctl)->timeouts, 0);
}
END_TEST

/* ---- control.owner / control.group -------------------------------------- */

/* Installs a filter that refuses every chown system call with EPERM, as
 * the packaged unit's SystemCallFilter=~@privileged does. */
static void refuse_chown(void)
{
	static const int nrs[] = {
#ifdef __NR_chown
		__NR_chown,
#endif
#ifdef __NR_lchown
		__NR_lchown,
#endif
		__NR_fchown, __NR_fchownat,
	};
	enum { N = sizeof(nrs) / sizeof(nrs[0]) };
	struct sock_filter f[N + 3];
	struct sock_fprog prog = { .len = N + 3, .filter = f };

	f[0] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					    offsetof(struct seccomp_data, nr));
	for (unsigned i = 0; i < N; i++)   /* match: jump to the refusal */
		f[1 + i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ |
							BPF_K, (unsigned)nrs[i],
							(unsigned char)(N - i), 0);
	f[N + 1] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						SECCOMP_RET_ALLOW);
	f[N + 2] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						SECCOMP_RET_ERRNO | EPERM);
	ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

/*
 * control_open of a fresh socket with owner/group in a child under the
 * chown filter. Returns 0 when it opened, 1 when it failed on the config
 * (config_error), 2 otherwise; last_log is copied to log_out.
 */
static int open_filtered(const char *owner, const char *group, char *log_out,
			 size_t len)
{
	char sock[128];
	int pipefd[2], st;
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/ids", dir);
	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct control *c;
		bool cfg_err = false;
		int code;

		close(pipefd[0]);
		refuse_chown();
		c = control_open(sock, 0660, owner, group, epfd, 3, 0x300,
				 fill_env, NULL, &cfg_err);
		code = c ? 0 : cfg_err ? 1 : 2;
		if (write(pipefd[1], last_log, strlen(last_log)) < 0)
			code = 3;
		control_close(c);
		_exit(code);
	}
	close(pipefd[1]);
	memset(log_out, 0, len);
	for (size_t got = 0, n = 1; n > 0 && got < len - 1; got += n) {
		ssize_t r = read(pipefd[0], log_out + got, len - 1 - got);

		n = r > 0 ? (size_t)r : 0;
	}
	close(pipefd[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	unlink(sock);
	return WEXITSTATUS(st);
}

START_TEST(ids_unchanged_need_no_chown)
{
	char own_uid[16], own_gid[16], log_text[512];

	/* the unit's case: group = the service's own group, which the
	 * socket has anyway: no chown, so the filter does not matter */
	snprintf(own_uid, sizeof(own_uid), "%u", (unsigned)geteuid());
	snprintf(own_gid, sizeof(own_gid), "%u", (unsigned)getegid());
	ck_assert_int_eq(open_filtered("", own_gid, log_text,
				       sizeof(log_text)), 0);
	ck_assert_int_eq(open_filtered(own_uid, own_gid, log_text,
				       sizeof(log_text)), 0);
}
END_TEST

START_TEST(refused_chown_names_the_key)
{
	char other_gid[16], log_text[512];

	snprintf(other_gid, sizeof(other_gid), "%u", (unsigned)getegid() + 1);
	ck_assert_int_eq(open_filtered("", other_gid, log_text,
				       sizeof(log_text)), 1);
	ck_assert_msg(strstr(log_text, "control.group = \"") != NULL &&
		      strstr(log_text, "cannot chown") != NULL, "%s", log_text);
	ck_assert_int_eq(open_filtered("no-such-user-here", "", log_text,
				       sizeof(log_text)), 1);
	ck_assert_msg(strstr(log_text, "control.owner = \"no-such-user-here\": "
			     "no such user") != NULL, "%s", log_text);
}
END_TEST

START_TEST(check_ids_before_binding)
{
	char own_gid[16], other_uid[16], other_gid[16], err_text[512];

	snprintf(own_gid, sizeof(own_gid), "%u", (unsigned)getegid());
	snprintf(other_uid, sizeof(other_uid), "%u", (unsigned)geteuid() + 1);
	snprintf(other_gid, sizeof(other_gid), "%u", (unsigned)getegid() + 1);
	/* nothing to change: fine without CAP_CHOWN and under the filter */
	ck_assert_int_eq(control_check_ids("", "", false, false, err_text,
					   sizeof(err_text)), 0);
	ck_assert_int_eq(control_check_ids("", own_gid, false, false, err_text,
					   sizeof(err_text)), 0);
	/* another owner needs CAP_CHOWN */
	ck_assert_int_eq(control_check_ids(other_uid, "", false, true,
					   err_text, sizeof(err_text)), -1);
	ck_assert_msg(!strncmp(err_text, "control.owner = ", 16) &&
		      strstr(err_text, "CAP_CHOWN"), "%s", err_text);
	ck_assert_int_eq(control_check_ids(other_uid, "", true, true,
					   err_text, sizeof(err_text)), 0);
	/* a group we are not in needs CAP_CHOWN (the test may run as a
	 * member of egid + 1: then only the filter case applies) */
	if (!in_groups((gid_t)getegid() + 1)) {
		ck_assert_int_eq(control_check_ids("", other_gid, false, true,
						   err_text, sizeof(err_text)),
				 -1);
		ck_assert_msg(!strncmp(err_text, "control.group = ", 16) &&
			      strstr(err_text, "SupplementaryGroups="), "%s",
			      err_text);
	}
	/* any change under a filter that refuses chown */
	ck_assert_int_eq(control_check_ids("", other_gid, true, false,
					   err_text, sizeof(err_text)), -1);
	ck_assert_msg(strstr(err_text, "system call filter") != NULL, "%s",
		      err_text);
	ck_assert_int_eq(control_check_ids("", "no-such-group-here", true,
					   true, err_text, sizeof(err_text)),
			 -1);
	ck_assert_str_eq(err_text, "control.group = \"no-such-group-here\": "
			 "no such group");
}
END_TEST

START_TEST(chown_probe_sees_the_filter)
{
	pid_t pid;
	int st;

	ck_assert(control_chown_allowed());
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		refuse_chown();
		_exit(control_chown_allowed() ? 1 : 0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

START_TEST(close_removes_socket)
{
	control_close(ctl);
	ctl = NULL;
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

static Suite *ctlproto_suite(void)
{
	Suite *s = suite_create("ctlproto");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, parse_good);
	tcase_add_test(tc, parse_bad);
	tcase_add_test(tc, parse_too_long);
	tcase_add_test(tc, json_escapes);
	tcase_add_test(tc, ping_and_reload);
	tcase_add_test(tc, show_json_from_traffic);
	tcase_add_test(tc, show_says_offloaded);
	tcase_add_test(tc, show_isakmp_json_and_table);
	tcase_add_test(tc, add_del_flush);
	tcase_add_test(tc, stats_shapes);
	tcase_add_test(tc, response_limit);
	tcase_add_test(tc, show_in_slices);
	tcase_add_test(tc, large_show_streams_in_bounded_memory);
	tcase_add_test(tc, flush_in_slices_answers_when_done);
	tcase_add_test(tc, abandoned_flush_is_finished);
	suite_add_tcase(s, tc);

	tc = tcase_create("socket");
	tcase_add_checked_fixture(tc, sock_setup, sock_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, socket_mode_and_ping);
	tcase_add_test(tc, request_ended_by_shutdown);
	tcase_add_test(tc, changes_name_the_peer);
	tcase_add_test(tc, live_socket_kept);
	tcase_add_test(tc, client_limit);
	tcase_add_test(tc, long_request);
	tcase_add_test(tc, slow_reader_dropped);
	tcase_add_test(tc, large_show_in_slices);
	tcase_add_test(tc, close_removes_socket);
	tcase_add_test(tc, ids_unchanged_need_no_chown);
	tcase_add_test(tc, refused_chown_names_the_key);
	tcase_add_test(tc, check_ids_before_binding);
	tcase_add_test(tc, chown_probe_sees_the_filter);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(ctlproto_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
