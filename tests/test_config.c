/*
 * The config file: defaults; every good config under tests/data/conf/good
 * loads with its values asserted one by one; every bad config under
 * tests/data/conf/bad fails with the line and text its first line expects
 * ("# expect: LINE: TEXT", LINE "-" for an error without a line); the
 * shipped sample etc/ipsec-masqd.conf loads and means the defaults; and
 * the file-level errors (missing, directory, NUL byte, too large, long
 * path, small error buffers). Data is found through $top_srcdir (".").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* mkdtemp */
#endif
#include <arpa/inet.h>
#include <check.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "conffile.h"

#define SEC 1000ULL
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"   /* as src/conffile.c */
#endif

static struct masqd_config *cfg;
static char err[1024];
static char tmpdir[64];

/* $top_srcdir/rel into buf. Returns buf. */
static const char *data_path(char *buf, size_t len, const char *rel)
{
	const char *top = getenv("top_srcdir");

	snprintf(buf, len, "%s/%s", top && *top ? top : ".", rel);
	return buf;
}

/* Host-order address of a dotted quad (test input, always valid). */
static uint32_t ip(const char *s)
{
	struct in_addr in;

	ck_assert_int_eq(inet_pton(AF_INET, s, &in), 1);
	return ntohl(in.s_addr);
}

/* Loads tests/data/conf/<rel> and asserts it loaded cleanly. */
static void load_ok(const char *rel)
{
	char path[4096], full[256];

	snprintf(full, sizeof(full), "tests/data/conf/%s", rel);
	data_path(path, sizeof(path), full);
	ck_assert_msg(config_load(path, cfg, err, sizeof(err)) == 0,
		      "%s: %s", path, err);
	ck_assert_str_eq(err, "");
	ck_assert_str_eq(cfg->path, path);
}

static void setup(void)
{
	cfg = malloc(sizeof(*cfg));
	ck_assert_ptr_nonnull(cfg);
	memset(cfg, 0xa5, sizeof(*cfg));   /* nothing may rely on zeroes */
	err[0] = '\0';
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[128];

	free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Writes len bytes of text to tmpdir/name; returns the path (static). */
static const char *write_tmp(const char *name, const char *text, size_t len)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

/* The engine defaults and the shell's, as config_defaults() gives them. */
static void assert_defaults_but_required(const struct masqd_config *c)
{
	const struct engine_config *e = &c->engine;

	ck_assert_uint_eq(c->queue, 0);
	ck_assert_uint_eq(e->esp_lifetime_ms, 1800 * SEC);
	ck_assert_uint_eq(e->esp_init_timeout_ms, 120 * SEC);
	ck_assert_uint_eq(e->esp_init_min_age_ms, 2 * SEC);
	ck_assert_uint_eq(e->esp_init_retries, 5);
	ck_assert_uint_eq(e->esp_squelch_ms, 30 * SEC);
	ck_assert(!e->parallel_sessions);
	ck_assert_uint_eq(e->guess_copies, 5);
	ck_assert_uint_eq(e->guess_rate, 10);
	ck_assert_uint_eq(e->guess_burst, 20);
	ck_assert_uint_eq(e->isakmp_lifetime_ms, 1800 * SEC);
	ck_assert_uint_eq(e->isakmp_fallback_copies, 1);
	ck_assert_uint_eq(e->isakmp_fallback_rate, 10);
	ck_assert_uint_eq(e->isakmp_fallback_burst, 20);
	ck_assert_uint_eq(e->isakmp_answer_allowance, 8);
	ck_assert_uint_eq(e->max_entries, 65536);
	ck_assert_uint_eq(e->max_per_host, 1024);
	ck_assert_str_eq(c->control_socket,
			 RUNSTATEDIR "/ipsec-masqd/control");
	ck_assert_uint_eq(c->control_mode, 0660);
	ck_assert_str_eq(c->control_owner, "");
	ck_assert_str_eq(c->control_group, "");
	ck_assert_str_eq(c->user, "ipsec-masqd");
	ck_assert_int_eq(c->user_source, CONFIG_DEFAULT);
	ck_assert_str_eq(c->state_file, "");
	ck_assert_uint_eq(c->state_interval_ms, 300 * SEC);
	ck_assert_int_eq(c->log_level, LOG_LEVEL_INFO);
	ck_assert_uint_eq(c->n_preload, 0);
	ck_assert_uint_eq(c->io.batch, 64);
	ck_assert_uint_eq(c->io.receive_buffer, 8u << 20);
	ck_assert_uint_eq(c->io.verdict_buffer, 128u << 10);
	ck_assert_uint_eq(c->io.queue_maxlen, 4096);
	ck_assert_int_eq(c->io.cpu, -1);
	ck_assert(c->fastpath.enable == FASTPATH_DEFAULT_ON);
	ck_assert_uint_eq(c->fastpath.poll_ms, 1000);
	ck_assert_uint_eq(c->fastpath.admit_rate, 0);
}

START_TEST(defaults)
{
	config_defaults(cfg);
	assert_defaults_but_required(cfg);
	ck_assert_str_eq(cfg->path, "");
	ck_assert_str_eq(cfg->ext_interface, "");
	ck_assert_uint_eq(cfg->engine.external_addr, 0);
	ck_assert_uint_eq(cfg->engine.n_internal, 0);
}
END_TEST

START_TEST(good_minimal_interface)
{
	load_ok("good/minimal-interface.conf");
	assert_defaults_but_required(cfg);
	ck_assert_str_eq(cfg->ext_interface, "wan0");
	ck_assert_uint_eq(cfg->engine.external_addr, 0);
	ck_assert_uint_eq(cfg->engine.n_internal, 1);
	ck_assert_uint_eq(cfg->engine.internal[0].addr, ip("192.168.0.0"));
	ck_assert_uint_eq(cfg->engine.internal[0].mask, 0xffff0000u);
}
END_TEST

START_TEST(good_minimal_address)
{
	load_ok("good/minimal-address.conf");
	assert_defaults_but_required(cfg);
	ck_assert_str_eq(cfg->ext_interface, "");
	ck_assert_uint_eq(cfg->engine.external_addr, ip("198.51.100.1"));
	ck_assert_uint_eq(cfg->engine.n_internal, 1);
	ck_assert_uint_eq(cfg->engine.internal[0].addr, ip("10.0.0.0"));
	ck_assert_uint_eq(cfg->engine.internal[0].mask, 0xff000000u);
}
END_TEST

START_TEST(good_full)
{
	const struct engine_config *e = &cfg->engine;

	load_ok("good/full.conf");
	ck_assert_uint_eq(cfg->queue, 7);
	ck_assert_str_eq(cfg->ext_interface, "");
	ck_assert_uint_eq(e->external_addr, ip("203.0.113.9"));
	ck_assert_uint_eq(e->n_internal, 3);
	ck_assert_uint_eq(e->internal[0].addr, ip("192.168.1.0"));
	ck_assert_uint_eq(e->internal[0].mask, 0xffffff00u);
	ck_assert_uint_eq(e->internal[1].addr, ip("10.20.0.0"));
	ck_assert_uint_eq(e->internal[1].mask, 0xffff0000u);
	ck_assert_uint_eq(e->internal[2].addr, ip("172.16.5.4"));
	ck_assert_uint_eq(e->internal[2].mask, 0xffffffffu);
	ck_assert_uint_eq(e->esp_lifetime_ms, 3600 * SEC);
	ck_assert_uint_eq(e->esp_init_timeout_ms, 90 * SEC);
	ck_assert_uint_eq(e->esp_init_min_age_ms, 1);
	ck_assert_uint_eq(e->esp_init_retries, 0);
	ck_assert_uint_eq(e->esp_squelch_ms, 45 * SEC);
	ck_assert(e->parallel_sessions);
	ck_assert_uint_eq(e->guess_copies, 16);
	ck_assert_uint_eq(e->guess_rate, 0);
	ck_assert_uint_eq(e->guess_burst, 0);
	ck_assert_uint_eq(e->isakmp_lifetime_ms, 7200 * SEC);
	ck_assert_uint_eq(e->isakmp_fallback_copies, 3);
	ck_assert_uint_eq(e->isakmp_fallback_rate, 2);
	ck_assert_uint_eq(e->isakmp_fallback_burst, 4);
	ck_assert_uint_eq(e->isakmp_answer_allowance, 0);
	ck_assert_str_eq(cfg->control_socket, "/run/masq/ctl.sock");
	ck_assert_uint_eq(cfg->control_mode, 0640);
	ck_assert_str_eq(cfg->control_owner, "root");
	ck_assert_str_eq(cfg->control_group, "ipsec-masqd");
	ck_assert_str_eq(cfg->state_file, "/var/lib/masq/state");
	ck_assert_uint_eq(cfg->state_interval_ms, 60500);
	ck_assert_uint_eq(e->max_entries, 1000);
	ck_assert_uint_eq(e->max_per_host, 1000);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
	ck_assert_uint_eq(cfg->n_preload, 0);
	ck_assert_uint_eq(cfg->io.batch, 128);
	ck_assert_uint_eq(cfg->io.receive_buffer, 16u << 20);
	ck_assert_uint_eq(cfg->io.verdict_buffer, 256u << 10);
	ck_assert_uint_eq(cfg->io.queue_maxlen, 8192);
	ck_assert_int_eq(cfg->io.cpu, 1);
	ck_assert(cfg->fastpath.enable);
	ck_assert_uint_eq(cfg->fastpath.poll_ms, 250);
	ck_assert_uint_eq(cfg->fastpath.admit_rate, 20000);
	ck_assert_uint_eq(cfg->fastpath.admit_burst, 500);
}
END_TEST

START_TEST(good_fractional)
{
	const struct engine_config *e = &cfg->engine;

	load_ok("good/fractional.conf");
	ck_assert_str_eq(cfg->ext_interface, "eth0.100");
	ck_assert_uint_eq(e->n_internal, 1);
	ck_assert_uint_eq(e->internal[0].addr, ip("192.168.0.0"));
	ck_assert_uint_eq(e->internal[0].mask, 0xffffff00u);
	ck_assert_uint_eq(e->esp_lifetime_ms, 1800500);
	ck_assert_uint_eq(e->esp_init_timeout_ms, 250);
	/* init_min_age left out, init_timeout below its default: half */
	ck_assert_uint_eq(e->esp_init_min_age_ms, 125);
	ck_assert_uint_eq(e->esp_squelch_ms, 1);
	ck_assert_uint_eq(e->isakmp_lifetime_ms, 604800 * SEC);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_WARNING);
	ck_assert_uint_eq(e->esp_init_retries, 5);   /* untouched keys */
}
END_TEST

START_TEST(good_preload)
{
	const struct config_preload *p = cfg->preload;

	load_ok("good/preload.conf");
	ck_assert_uint_eq(cfg->n_preload, 3);
	ck_assert_uint_eq(p[0].remote, ip("198.51.100.20"));
	ck_assert_uint_eq(p[0].host, ip("192.168.1.10"));
	ck_assert_uint_eq(p[0].spi_in, 0xc0ffee01u);
	ck_assert_uint_eq(p[0].spi_out, 0x1234);
	ck_assert_int_eq(p[0].line, 5);
	ck_assert_uint_eq(p[1].remote, ip("198.51.100.20"));
	ck_assert_uint_eq(p[1].host, ip("192.168.1.11"));
	ck_assert_uint_eq(p[1].spi_in, 256);
	ck_assert_uint_eq(p[1].spi_out, 0);
	ck_assert_int_eq(p[1].line, 6);
	ck_assert_uint_eq(p[2].remote, ip("203.0.113.7"));
	ck_assert_uint_eq(p[2].host, ip("192.168.2.1"));
	ck_assert_uint_eq(p[2].spi_in, 0xffffffffu);
	ck_assert_uint_eq(p[2].spi_out, 0xffffffffu);
	ck_assert_int_eq(p[2].line, 7);
}
END_TEST

START_TEST(good_announce)
{
	const struct announce_config *a = &cfg->announce;

	load_ok("good/minimal-interface.conf");
	ck_assert(!a->enabled);       /* off by default */
	ck_assert_uint_eq(a->port, 4510);
	ck_assert_uint_eq(a->max_skew_ms, 30000);
	ck_assert_uint_eq(a->rate, 10);
	ck_assert_uint_eq(a->burst, 20);
	load_ok("good/announce-limits.conf");   /* unset: half the table */
	ck_assert_uint_eq(a->max_entries, 500);
	load_ok("good/announce-default.conf");
	ck_assert_uint_eq(a->max_entries, 4096);
	load_ok("good/announce.conf");
	ck_assert(a->enabled);
	ck_assert_uint_eq(a->listen, ip("192.168.1.1"));
	ck_assert_uint_eq(a->port, 4600);
	ck_assert_str_eq(a->key_file, "/etc/ipsec-masqd/announce.keys");
	ck_assert_uint_eq(a->max_skew_ms, 10000);
	ck_assert_uint_eq(a->rate, 1);
	ck_assert_uint_eq(a->burst, 10000);
	ck_assert_uint_eq(a->max_entries, 100);
}
END_TEST

START_TEST(good_control_numeric)
{
	load_ok("good/control-numeric.conf");
	ck_assert_uint_eq(cfg->control_mode, 0600);
	ck_assert_str_eq(cfg->control_owner, "0");
	ck_assert_str_eq(cfg->control_group, "65534");
	ck_assert_str_eq(cfg->control_socket,
			 RUNSTATEDIR "/ipsec-masqd/control");
}
END_TEST

START_TEST(good_user)
{
	load_ok("good/user.conf");
	ck_assert_str_eq(cfg->user, "root");
	ck_assert_int_eq(cfg->user_source, CONFIG_FILE);
}
END_TEST

START_TEST(good_limits_edge)
{
	const struct engine_config *e = &cfg->engine;

	load_ok("good/limits-edge.conf");
	ck_assert_uint_eq(cfg->queue, 65535);
	ck_assert_str_eq(cfg->ext_interface, "a23456789012345");
	ck_assert_uint_eq(e->internal[0].addr, ip("192.168.7.1"));
	ck_assert_uint_eq(e->internal[0].mask, 0xffffffffu);
	ck_assert_uint_eq(e->esp_lifetime_ms, 604800 * SEC);
	ck_assert_uint_eq(e->esp_init_timeout_ms, 604799999);
	ck_assert_uint_eq(e->esp_init_min_age_ms, 604799998);  /* largest */
	ck_assert_uint_eq(e->esp_init_retries, 100);
	ck_assert_uint_eq(e->guess_copies, 1);
	ck_assert_uint_eq(e->guess_rate, 10000);
	ck_assert_uint_eq(e->guess_burst, 10000);
	ck_assert_uint_eq(e->isakmp_fallback_copies, 16);
	ck_assert_uint_eq(e->isakmp_fallback_rate, 10000);
	ck_assert_uint_eq(e->isakmp_fallback_burst, 10000);
	ck_assert_uint_eq(e->isakmp_answer_allowance, 1024);
	ck_assert_uint_eq(e->max_entries, 4194304);
	ck_assert_uint_eq(e->max_per_host, 1);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_ERROR);
}
END_TEST

/* The shipped sample loads, and means the defaults but for its required
 * keys. */
START_TEST(sample_loads_with_defaults)
{
	char path[4096];

	data_path(path, sizeof(path), "etc/ipsec-masqd.conf");
	ck_assert_msg(config_load(path, cfg, err, sizeof(err)) == 0, "%s", err);
	assert_defaults_but_required(cfg);
	ck_assert_str_eq(cfg->ext_interface, "wan0");
	ck_assert_uint_eq(cfg->engine.n_internal, 1);
	ck_assert_uint_eq(cfg->engine.internal[0].addr, ip("192.168.0.0"));
	ck_assert_uint_eq(cfg->engine.internal[0].mask, 0xffff0000u);
}
END_TEST

/* Every good file has a test above and loads; a new file without its own
 * assertions fails here until it gets one. */
START_TEST(every_good_file_loads)
{
	static const char *const known[] = {
		"fractional.conf", "full.conf", "limits-edge.conf",
		"minimal-address.conf", "minimal-interface.conf",
		"preload.conf", "control-numeric.conf", "announce.conf",
		"announce-limits.conf", "announce-default.conf",
		"user.conf", NULL
	};
	char pattern[4096];
	glob_t g;

	data_path(pattern, sizeof(pattern), "tests/data/conf/good/*.conf");
	ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *base = strrchr(g.gl_pathv[i], '/') + 1;
		size_t k = 0;

		while (known[k] && strcmp(known[k], base) != 0)
			k++;
		ck_assert_msg(known[k] != NULL, "%s has no test of its values",
			      g.gl_pathv[i]);
		ck_assert_msg(config_load(g.gl_pathv[i], cfg, err,
					  sizeof(err)) == 0, "%s", err);
	}
	ck_assert_uint_eq(g.gl_pathc, sizeof(known) / sizeof(known[0]) - 1);
	globfree(&g);
}
END_TEST

/* Reads the "# expect: LINE: TEXT" first line of path into line (LINE as
 * written) and text. Returns 0 or -1 when there is none. */
static int read_expect(const char *path, char *line, size_t llen, char *text,
		       size_t tlen)
{
	char buf[1024], *colon, *nl;
	FILE *f = fopen(path, "r");
	int ok;

	if (f == NULL)
		return -1;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok || strncmp(buf, "# expect: ", 10) != 0)
		return -1;
	colon = strstr(buf + 10, ": ");
	if (colon == NULL || (size_t)(colon - (buf + 10)) >= llen)
		return -1;
	memcpy(line, buf + 10, (size_t)(colon - (buf + 10)));
	line[colon - (buf + 10)] = '\0';
	if ((nl = strchr(colon + 2, '\n')) != NULL)
		*nl = '\0';
	snprintf(text, tlen, "%s", colon + 2);
	return text[0] != '\0' ? 0 : -1;
}

/* Checks one bad file: it fails, the message starts "PATH:LINE: " (or
 * "PATH: " for LINE "-") and contains the expected text. Returns 0, or -1
 * after printing what differed. */
static int check_bad(const char *path)
{
	char line[16], text[512], prefix[4200];
	size_t plen;

	if (read_expect(path, line, sizeof(line), text, sizeof(text)) < 0) {
		fprintf(stderr, "%s: no '# expect: LINE: TEXT' first line\n",
			path);
		return -1;
	}
	if (config_load(path, cfg, err, sizeof(err)) == 0) {
		fprintf(stderr, "%s: loaded, expected an error\n", path);
		return -1;
	}
	if (strcmp(line, "-") == 0)
		snprintf(prefix, sizeof(prefix), "%s: ", path);
	else
		snprintf(prefix, sizeof(prefix), "%s:%s: ", path, line);
	plen = strlen(prefix);
	if (strncmp(err, prefix, plen) != 0 || strstr(err, text) == NULL ||
	    (line[0] == '-' && err[plen] >= '0' && err[plen] <= '9')) {
		fprintf(stderr, "%s:\n  got      %s\n  expected %s...%s\n",
			path, err, prefix, text);
		return -1;
	}
	return 0;
}

START_TEST(every_bad_file_fails_on_its_line)
{
	char pattern[4096];
	unsigned failed = 0;
	glob_t g;

	data_path(pattern, sizeof(pattern), "tests/data/conf/bad/*.conf");
	ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
	ck_assert_uint_ge(g.gl_pathc, 70);
	for (size_t i = 0; i < g.gl_pathc; i++)
		failed += check_bad(g.gl_pathv[i]) < 0;
	ck_assert_msg(failed == 0, "%u of %zu bad configs wrong (see above)",
		      failed, g.gl_pathc);
	globfree(&g);
}
END_TEST

START_TEST(missing_file)
{
	char expect[256];

	snprintf(expect, sizeof(expect), "%s/nope.conf", tmpdir);
	ck_assert_int_eq(config_load(expect, cfg, err, sizeof(err)), -1);
	strcat(expect, ": cannot read: No such file or directory");
	ck_assert_str_eq(err, expect);
}
END_TEST

START_TEST(directory)
{
	char expect[256];

	ck_assert_int_eq(config_load(tmpdir, cfg, err, sizeof(err)), -1);
	snprintf(expect, sizeof(expect), "%s: cannot read: Is a directory",
		 tmpdir);
	ck_assert_str_eq(err, expect);
}
END_TEST

START_TEST(nul_byte)
{
	static const char text[] = "external = { interface = \"wan0\"; };\0"
				   "internal = [ \"10.0.0.0/8\" ];\n";
	const char *path = write_tmp("nul.conf", text, sizeof(text) - 1);
	char expect[256];

	ck_assert_int_eq(config_load(path, cfg, err, sizeof(err)), -1);
	snprintf(expect, sizeof(expect), "%s: contains a NUL byte", path);
	ck_assert_str_eq(err, expect);
}
END_TEST

START_TEST(too_large)
{
	size_t len = 1024 * 1024 + 1;
	char *text = malloc(len);
	const char *path;

	ck_assert_ptr_nonnull(text);
	memset(text, '\n', len);
	text[0] = '#';
	path = write_tmp("big.conf", text, len);
	free(text);
	ck_assert_int_eq(config_load(path, cfg, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ": larger than 1048576 bytes"));
}
END_TEST

START_TEST(path_too_long)
{
	char path[5000], big[6000];

	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	ck_assert_int_eq(config_load(path, cfg, big, sizeof(big)), -1);
	ck_assert(strncmp(big, path, strlen(path)) == 0);
	ck_assert_str_eq(big + strlen(path), ": path is too long");
}
END_TEST

/* A small buffer gets a truncated, terminated message; errlen 0 is left
 * alone. */
START_TEST(small_error_buffers)
{
	char small[10], none[1] = { 'x' };
	const char *path = write_tmp("bad.conf", "queue = 1.5;\n", 13);

	ck_assert_int_eq(config_load(path, cfg, small, sizeof(small)), -1);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert(strncmp(small, path, sizeof(small) - 1) == 0);
	ck_assert_int_eq(config_load(path, cfg, none, 0), -1);
	ck_assert_int_eq(none[0], 'x');
}
END_TEST

/* A load starts from the defaults: nothing of an earlier load stays. */
START_TEST(reload_starts_from_defaults)
{
	load_ok("good/full.conf");
	load_ok("good/minimal-interface.conf");
	assert_defaults_but_required(cfg);
	ck_assert_uint_eq(cfg->engine.external_addr, 0);
	ck_assert_uint_eq(cfg->engine.n_internal, 1);
}
END_TEST

/* Hex literals are unsigned 32 bit; decimal literals that libconfig would
 * wrap are refused; digits in comments, strings and names are not
 * literals. */
START_TEST(integer_literals)
{
	static const char ok[] =
		"external = { interface = \"wan0\"; };\n"
		"internal = [ \"10.0.0.0/8\" ];\n"
		"# 99999999999999999999 in a comment is fine\n"
		"log = { level = \"info\"; }; /* 4294967296 */ // 0x1ffffffff\n"
		"control = { socket = \"/run/x-4294967296\"; };\n"
		"esp = { lifetime = 3600; init_timeout = 1e3; };\n";
	static const char bad[] =
		"external = { interface = \"wan0\"; };\n"
		"internal = [ \"10.0.0.0/8\" ];\n"
		"esp = {\n  lifetime = 1;\n  init_retries = -2147483649; };\n";
	const char *path = write_tmp("ok.conf", ok, sizeof(ok) - 1);

	ck_assert_msg(config_load(path, cfg, err, sizeof(err)) == 0, "%s",
		      err);
	ck_assert_uint_eq(cfg->engine.esp_init_timeout_ms, 1000 * SEC);
	path = write_tmp("bad.conf", bad, sizeof(bad) - 1);
	ck_assert_int_eq(config_load(path, cfg, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":5: integer -2147483649 is out of "
				     "range"));
}
END_TEST

static Suite *config_suite(void)
{
	Suite *suite = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, good_minimal_interface);
	tcase_add_test(tc, good_minimal_address);
	tcase_add_test(tc, good_full);
	tcase_add_test(tc, good_fractional);
	tcase_add_test(tc, good_preload);
	tcase_add_test(tc, good_announce);
	tcase_add_test(tc, good_limits_edge);
	tcase_add_test(tc, good_control_numeric);
	tcase_add_test(tc, good_user);
	tcase_add_test(tc, sample_loads_with_defaults);
	tcase_add_test(tc, every_good_file_loads);
	tcase_add_test(tc, every_bad_file_fails_on_its_line);
	tcase_add_test(tc, missing_file);
	tcase_add_test(tc, directory);
	tcase_add_test(tc, nul_byte);
	tcase_add_test(tc, too_large);
	tcase_add_test(tc, path_too_long);
	tcase_add_test(tc, small_error_buffers);
	tcase_add_test(tc, reload_starts_from_defaults);
	tcase_add_test(tc, integer_literals);
	suite_add_tcase(suite, tc);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(config_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
