/*
 * The state file through a real engine: save -> load round trip (entries,
 * counters, times shifted between two engine clocks), expiry by the wall
 * clock, pending inits left out, bad versions and malformed lines with
 * their line numbers, rejected entries, and the atomic write (mode 0600, no
 * temporary file left behind, on success or failure); after a reboot
 * (the daemon's engine clock just started) an entry keeps exactly the
 * time it had left; stale temporary files are removed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* mkdtemp */
#endif
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "engine.h"
#include "pktbuild.h"
#include "state.h"

#define SEC 1000ULL
#define MONO0 5000000ULL         /* engine clock of the saving daemon */
#define WALL0 ((int64_t)1764180000 * 1000)   /* wall clock, Unix ms */
#define MONO1 90000000ULL        /* engine clock of the loading daemon */

static struct engine_config cfg;
static struct engine *src, *dst;
static char dir[64], path[128];
static char err[512];
static uint32_t LAN_A, LAN_B, LAN_C, REMOTE, REMOTE2, REMOTE3;

static struct engine *new_engine(uint64_t now)
{
	struct engine *e = engine_new(&cfg, 0x5eed, now, NULL, NULL);

	ck_assert_ptr_nonnull(e);
	return e;
}

static void setup(void)
{
	engine_config_defaults(&cfg);
	cfg.external_addr = pb_addr("198.51.100.1");
	cfg.internal[0].addr = pb_addr("192.168.0.0");
	cfg.internal[0].mask = 0xffff0000u;
	cfg.n_internal = 1;
	LAN_A = pb_addr("192.168.1.10");
	LAN_B = pb_addr("192.168.1.11");
	LAN_C = pb_addr("192.168.1.12");
	REMOTE = pb_addr("203.0.113.20");
	REMOTE2 = pb_addr("203.0.113.30");
	REMOTE3 = pb_addr("203.0.113.40");
	snprintf(dir, sizeof(dir), "/tmp/test_state.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state", dir);
	src = new_engine(MONO0);
	dst = new_engine(MONO1);
	err[0] = '\0';
}

/* Remove everything in dir, then dir. */
static void teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[512];

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (rmdir(p) < 0)
			unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
	engine_free(src);
	engine_free(dst);
	src = dst = NULL;
}

/* Number of entries in dir. */
static int dir_entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* One packet through eng at now; returns the verdict, packet in buf. */
static enum verdict send_pkt(struct engine *eng, uint8_t *buf, size_t len,
			     enum direction d, uint64_t now)
{
	struct engine_decision dec;

	ck_assert_uint_gt(len, 0);
	engine_process(eng, buf, len, d, now, &dec);
	return dec.verdict;
}

static enum verdict esp(struct engine *eng, uint32_t s, uint32_t d,
			uint32_t spi, enum direction dir_, uint64_t now,
			uint8_t *buf)
{
	size_t len = pb_esp(buf, 2048, s, d, spi, 1, 64);

	return send_pkt(eng, buf, len, dir_, now);
}

/*
 * The source engine: an association made by traffic (A with REMOTE), a
 * preload (B with REMOTE2), an ISAKMP exchange (A with REMOTE), and a
 * pending init (C with REMOTE3) that must not be saved.
 */
static void populate(void)
{
	uint8_t buf[2048];
	size_t len;

	ck_assert_int_eq(esp(src, LAN_A, REMOTE, 0x1001, DIR_OUTBOUND, MONO0,
			     buf), VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(esp(src, REMOTE, cfg.external_addr, 0x2001,
			     DIR_INBOUND, MONO0 + 100, buf),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(esp(src, LAN_A, REMOTE, 0x1001, DIR_OUTBOUND,
			     MONO0 + 200, buf), VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(engine_preload(src, REMOTE2, LAN_B, 0x3001, 0, 0,
					MONO0 + 300), 0);
	len = pb_isakmp(buf, sizeof(buf), LAN_A, REMOTE, 0x0102030405060708ULL,
			0, 2, 0);
	ck_assert_int_eq(send_pkt(src, buf, len, DIR_OUTBOUND, MONO0 + 400),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_int_eq(esp(src, LAN_C, REMOTE3, 0x4001, DIR_OUTBOUND,
			     MONO0 + 500, buf), VERDICT_ACCEPT_MODIFIED);
}

#define MAX_SEEN 16
struct seen {
	struct engine_esp_info esp[MAX_SEEN];
	struct engine_isakmp_info ike[MAX_SEEN];
	size_t n_esp, n_ike;
};

static void see_esp(void *ctx, const struct engine_esp_info *e)
{
	struct seen *s = ctx;

	if (s->n_esp < MAX_SEEN)
		s->esp[s->n_esp++] = *e;
}

static void see_ike(void *ctx, const struct engine_isakmp_info *e)
{
	struct seen *s = ctx;

	if (s->n_ike < MAX_SEEN)
		s->ike[s->n_ike++] = *e;
}

static void walk(const struct engine *eng, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	engine_walk_esp(eng, see_esp, s);
	engine_walk_isakmp(eng, see_ike, s);
}

static const struct engine_esp_info *find_esp(const struct seen *s,
					      uint32_t spi_in)
{
	for (size_t i = 0; i < s->n_esp; i++)
		if (s->esp[i].spi_in == spi_in)
			return &s->esp[i];
	return NULL;
}

START_TEST(round_trip_keeps_associations_and_shifts_times)
{
	const uint64_t at = MONO0 + 1000, at1 = MONO1 + 0;
	const int64_t shift = (int64_t)at1 - (int64_t)at - 60 * (int64_t)SEC;
	struct state_counts c;
	struct seen a, b;
	struct stat st;
	uint8_t buf[2048];

	populate();
	walk(src, &a);
	ck_assert_uint_eq(a.n_esp, 3);
	ck_assert_int_eq(state_save(path, src, at, WALL0, err, sizeof(err)), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(dir_entries(), 1);
	ck_assert_int_eq(state_load(path, dst, at1, WALL0 + 60 * SEC, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.esp_restored, 2);
	ck_assert_uint_eq(c.isakmp_restored, 1);
	ck_assert_uint_eq(c.expired, 0);
	ck_assert_uint_eq(c.rejected, 0);
	walk(dst, &b);
	ck_assert_uint_eq(b.n_esp, 2);
	ck_assert_uint_eq(b.n_ike, 1);
	for (uint32_t spi = 0x2001; spi <= 0x3001; spi += 0x1000) {
		const struct engine_esp_info *x = find_esp(&a, spi);
		const struct engine_esp_info *y = find_esp(&b, spi);

		ck_assert_ptr_nonnull(x);
		ck_assert_ptr_nonnull(y);
		ck_assert_uint_eq(x->remote, y->remote);
		ck_assert_uint_eq(x->host, y->host);
		ck_assert_uint_eq(x->spi_out, y->spi_out);
		/* a provisional association is saved as established */
		ck_assert_int_eq(x->state == ESP_PROVISIONAL ? ESP_ESTABLISHED
							     : x->state,
				 y->state);
		ck_assert_uint_eq(x->pkts_out, y->pkts_out);
		ck_assert_uint_eq(x->pkts_in, y->pkts_in);
		ck_assert_uint_eq(x->bytes_out, y->bytes_out);
		ck_assert_uint_eq(x->bytes_in, y->bytes_in);
		ck_assert_int_eq((int64_t)y->expires - (int64_t)x->expires,
				 shift);
		ck_assert_int_eq((int64_t)y->last_seen - (int64_t)x->last_seen,
				 shift);
		ck_assert_int_eq((int64_t)y->since - (int64_t)x->since, shift);
	}
	ck_assert_int_eq(find_esp(&b, 0x2001)->state, ESP_ESTABLISHED);
	ck_assert_int_eq(find_esp(&b, 0x3001)->state, ESP_PRELOADED);
	ck_assert_uint_eq(b.ike[0].cookie_i, 0x0102030405060708ULL);
	ck_assert_uint_eq(b.ike[0].host, LAN_A);
	ck_assert_int_eq((int64_t)b.ike[0].expires - (int64_t)a.ike[0].expires,
			 shift);
	/* and the restored association routes inbound ESP to its host */
	ck_assert_int_eq(esp(dst, REMOTE, cfg.external_addr, 0x2001,
			     DIR_INBOUND, at1 + 10, buf),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(pb_get32(buf + 16), LAN_A);
}
END_TEST

/* state_save_except's filter: the preload of 0x3001 is left out. */
static bool skip_3001(void *ctx, const struct engine_esp_info *e)
{
	(*(int *)ctx)++;
	return e->spi_in == 0x3001;
}

START_TEST(save_except_leaves_out_what_the_filter_names)
{
	struct state_counts c;
	struct seen b;
	int asked = 0;

	populate();
	ck_assert_int_eq(state_save_except(path, src, MONO0 + 1000, WALL0,
					   skip_3001, &asked, err,
					   sizeof(err)), 0);
	ck_assert_int_eq(asked, 2);   /* the two saved kinds of ESP entry */
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0 + 1 * SEC, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.esp_restored, 1);
	walk(dst, &b);
	ck_assert_uint_eq(b.n_esp, 1);
	ck_assert_uint_eq(b.esp[0].spi_in, 0x2001);
	ck_assert_uint_eq(b.n_ike, 1);   /* ISAKMP entries are all saved */
}
END_TEST

/* Wall-clock deltas survive to the millisecond: saved and loaded 1234 ms
 * apart (plus whole seconds), the entry has exactly that much less left. */
START_TEST(wall_clock_deltas_are_kept_to_the_millisecond)
{
	struct state_counts c;
	struct seen a, b;
	const uint64_t at = MONO0 + 1000;

	populate();
	walk(src, &a);
	ck_assert_int_eq(state_save(path, src, at, WALL0 + 567, err,
				    sizeof(err)), 0);
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0 + 567 + 61234, &c,
				    err, sizeof(err)), 0);
	walk(dst, &b);
	ck_assert_int_eq((int64_t)find_esp(&b, 0x2001)->expires - (int64_t)MONO1,
			 (int64_t)find_esp(&a, 0x2001)->expires - (int64_t)at -
				 61234);
}
END_TEST

START_TEST(file_is_versioned_text)
{
	char line[256];
	FILE *f;
	int esp_lines = 0, ike_lines = 0;

	populate();
	ck_assert_int_eq(state_save(path, src, MONO0 + 1000, WALL0, err,
				    sizeof(err)), 0);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert_str_eq(line, "ipsec-masqd-state 2\n");
	while (fgets(line, sizeof(line), f)) {
		esp_lines += !strncmp(line, "esp remote=", 11);
		ike_lines += !strncmp(line, "isakmp remote=", 14);
		if (!strncmp(line, "isakmp remote=", 14))
			ck_assert_ptr_nonnull(strstr(line, " answer=0 "));
		ck_assert_ptr_null(strstr(line, "state=pending"));
	}
	fclose(f);
	ck_assert_int_eq(esp_lines, 2);
	ck_assert_int_eq(ike_lines, 1);
}
END_TEST

START_TEST(wall_clock_expiry_drops_dead_entries)
{
	struct state_counts c;

	populate();
	ck_assert_int_eq(state_save(path, src, MONO0 + 1000, WALL0, err,
				    sizeof(err)), 0);
	/* everything was last seen within the second before the save and
	 * lives 1800 s: at +1801 s all of it is dead */
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0 + 1801 * SEC, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.expired, 3);
	ck_assert_uint_eq(c.esp_restored + c.isakmp_restored, 0);
	ck_assert_uint_eq(engine_get_stats(dst)->esp_entries, 0);
	ck_assert_uint_eq(engine_get_stats(dst)->isakmp_entries, 0);
}
END_TEST

START_TEST(expiry_is_per_entry)
{
	struct state_counts c;

	write_file("ipsec-masqd-state 1\n"
		   "isakmp remote=203.0.113.20 host=192.168.1.10 "
		   "cookie_i=0102030405060708 cookie_r=0000000000000000 "
		   "last_seen_wall=1764179000.000 expires_wall=1764180000.000\n"
		   "isakmp remote=203.0.113.30 host=192.168.1.10 "
		   "cookie_i=1102030405060708 cookie_r=0000000000000001 "
		   "last_seen_wall=1764179000 expires_wall=1764180000.001\n");
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.expired, 1);
	ck_assert_uint_eq(c.isakmp_restored, 1);
}
END_TEST

/* Entries in eng now. */
static size_t esp_count(const struct engine *eng)
{
	return engine_get_stats(eng)->esp_entries;
}

START_TEST(after_reboot_entry_keeps_time_left)
{
	/* the daemon's engine clock 20 s after a boot */
	const uint64_t now = state_engine_clock(20 * SEC);
	struct state_counts c;
	struct seen b;
	struct engine *young;

	/* saved at WALL0 - 600 with 1200 s left; loaded at WALL0: 1200 s
	 * left, not a whole new lifetime of 1800 s */
	write_file("ipsec-masqd-state 1\n"
		   "esp remote=203.0.113.20 host=192.168.1.10 spi_out=0x00001001 "
		   "spi_in=0x00002001 state=established since_wall=1764179000.000 "
		   "last_seen_wall=1764179400.000 expires_wall=1764181200.000 "
		   "pkts_out=1 pkts_in=1 bytes_out=72 bytes_in=72\n");
	young = new_engine(now);
	ck_assert_int_eq(state_load(path, young, now, WALL0, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.esp_restored, 1);
	walk(young, &b);
	ck_assert_uint_eq(b.n_esp, 1);
	ck_assert_uint_eq(b.esp[0].expires - b.esp[0].last_seen,
			  cfg.esp_lifetime_ms);
	ck_assert_uint_eq(b.esp[0].expires - now, 1200 * SEC);
	engine_run_timers(young, now + 1200 * SEC - 1);
	ck_assert_uint_eq(esp_count(young), 1);
	engine_run_timers(young, now + 1200 * SEC);
	ck_assert_uint_eq(esp_count(young), 0);
	engine_free(young);
}
END_TEST

START_TEST(after_reboot_long_preload_keeps_time_left)
{
	const uint64_t week = 7 * 86400 * SEC;
	const uint64_t now = state_engine_clock(3 * SEC);
	struct state_counts c;
	struct seen b;
	struct engine *young;

	/* a preload with a week's TTL, saved 60 s before its end, loaded
	 * 5 s later right after a boot: 55 s left, not a week */
	ck_assert_int_eq(engine_preload(src, REMOTE2, LAN_B, 0x3001, 0, week,
					MONO0), 0);
	ck_assert_int_eq(state_save(path, src, MONO0 + week - 60 * SEC, WALL0,
				    err, sizeof(err)), 0);
	young = new_engine(now);
	ck_assert_int_eq(state_load(path, young, now, WALL0 + 5 * SEC, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.esp_restored, 1);
	walk(young, &b);
	ck_assert_uint_eq(b.n_esp, 1);
	ck_assert_int_eq(b.esp[0].state, ESP_PRELOADED);
	ck_assert_uint_eq(b.esp[0].expires - now, 55 * SEC);
	engine_run_timers(young, now + 55 * SEC);
	ck_assert_uint_eq(esp_count(young), 0);
	engine_free(young);
	/* the same snapshot after the week is over restores nothing */
	young = new_engine(now);
	ck_assert_int_eq(state_load(path, young, now, WALL0 + 60 * SEC, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.esp_restored + c.isakmp_restored, 0);
	ck_assert_uint_eq(c.expired, 1);
	ck_assert_uint_eq(esp_count(young), 0);
	engine_free(young);
}
END_TEST

/* Entries a LAN host announced (ESP_ANNOUNCED) survive a restart as
 * announced, with host, both SPIs and the time left of their own TTL,
 * and count as announced again in the new engine (announce.max_entries
 * caps that count); one past its TTL is not restored. */
START_TEST(announced_entries_survive_a_restart)
{
	const struct engine_stats *es;
	const struct engine_esp_info *e;
	struct state_counts c;
	struct seen b;
	FILE *f;
	char line[512];
	bool found = false;

	ck_assert_int_eq(engine_announce(src, REMOTE, LAN_A, 0x5001, 0x6001,
					 600 * SEC, MONO0), 0);
	ck_assert_int_eq(engine_announce(src, REMOTE2, LAN_B, 0x5002, 0,
					 10 * SEC, MONO0), 0);
	ck_assert_uint_eq(engine_get_stats(src)->announced, 2);
	ck_assert_int_eq(state_save(path, src, MONO0 + 2 * SEC, WALL0, err,
				    sizeof(err)), 0);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		found |= strstr(line, "spi_in=0x00005001") != NULL &&
			 strstr(line, "state=announced") != NULL;
	fclose(f);
	ck_assert_msg(found, "no announced line for 0x5001 in the file");
	/* loaded 20 s later: 0x5002 (10 s TTL) is gone, 0x5001 has 578 s */
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0 + 20 * SEC, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.esp_restored, 1);
	ck_assert_uint_eq(c.expired, 1);
	walk(dst, &b);
	e = find_esp(&b, 0x5001);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->state, ESP_ANNOUNCED);
	ck_assert_uint_eq(e->host, LAN_A);
	ck_assert_uint_eq(e->remote, REMOTE);
	ck_assert_uint_eq(e->spi_out, 0x6001);
	ck_assert_uint_eq(e->expires - MONO1, 578 * SEC);
	ck_assert_ptr_null(find_esp(&b, 0x5002));
	es = engine_get_stats(dst);
	ck_assert_uint_eq(es->announced, 1);
	engine_run_timers(dst, MONO1 + 578 * SEC);
	ck_assert_uint_eq(es->announced, 0);
}
END_TEST

START_TEST(engine_clock_round_trips)
{
	/* the daemon arms its CLOCK_MONOTONIC timer from engine times */
	ck_assert_uint_ge(STATE_CLOCK_HEADROOM_MS, UINT64_C(0xffffffff));
	ck_assert_uint_eq(state_mono_clock(state_engine_clock(1234)), 1234);
	ck_assert_uint_eq(state_mono_clock(5), 0);
}
END_TEST

/* Creates dir/name as an empty file (or a directory). */
static void touch(const char *name, bool as_dir)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (as_dir) {
		ck_assert_int_eq(mkdir(p, 0700), 0);
		return;
	}
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
}

START_TEST(stale_temps_are_removed)
{
	char p[256];

	touch("state", false);
	touch("state.tmp.ab12CD", false);    /* what a crashed save leaves */
	touch("state.tmp.Zz0009", false);
	touch("state.tmp.ab12C", false);     /* not mkstemp's pattern: kept */
	touch("state.tmp.ab12CDE", false);
	touch("state.tmp.ab-2CD", false);
	touch("other.tmp.ab12CD", false);
	touch("state.backup", false);        /* an admin's copy: kept */
	touch("state.ab12CD", false);        /* no ".tmp.": kept */
	touch("state.tmp.dir123", true);     /* not a regular file: kept */
	ck_assert_int_eq(state_remove_stale_temps(path, err, sizeof(err)), 2);
	snprintf(p, sizeof(p), "%s/state.tmp.ab12CD", dir);
	ck_assert_int_ne(access(p, F_OK), 0);
	snprintf(p, sizeof(p), "%s/state", dir);
	ck_assert_int_eq(access(p, F_OK), 0);
	ck_assert_int_eq(dir_entries(), 8);
	ck_assert_int_eq(state_remove_stale_temps(path, err, sizeof(err)), 0);
	snprintf(p, sizeof(p), "%s/none/state", dir);
	ck_assert_int_eq(state_remove_stale_temps(p, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "none"));
}
END_TEST

START_TEST(missing_file_is_not_an_error)
{
	struct state_counts c = { 1, 1, 1, 1 };

	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.esp_restored + c.isakmp_restored + c.expired +
			  c.rejected, 0);
}
END_TEST

START_TEST(unknown_version_is_named)
{
	char want[320];

	write_file("ipsec-masqd-state 3\nesp whatever\n");
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0, NULL, err,
				    sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: unsupported state file version 3 "
		 "(this ipsec-masqd reads versions 1 to 2)", path);
	ck_assert_msg(!strncmp(err, want, strlen(want)), "%s", err);
	write_file("something else 1\n");
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0, NULL, err,
				    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":1: not an ipsec-masqd state file"));
	write_file("");
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0, NULL, err,
				    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
}
END_TEST

/* An entry made by a host's answer to an exchange the remote started is
 * saved as one (answer=1) and restored as one: still charged to the
 * (host, remote) answer allowance, not to max_per_host, so that after a
 * restart the host keeps every slot for its own exchanges (issue 11's
 * allowance; version 1 files lost the flag). */
START_TEST(answer_entries_survive_a_restart)
{
	struct state_counts c;
	struct seen b;
	uint8_t buf[2048];
	size_t len;

	cfg.max_per_host = 1;
	engine_free(src);
	engine_free(dst);
	src = new_engine(MONO0);
	dst = new_engine(MONO1);
	/* B answers REMOTE's exchange: responder cookie set, none of B's own */
	len = pb_isakmp(buf, sizeof(buf), LAN_B, REMOTE, 0x0a0a0a0aULL,
			0x0b0b0b0bULL, 2, 0);
	ck_assert_int_eq(send_pkt(src, buf, len, DIR_OUTBOUND, MONO0),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(engine_get_stats(src)->isakmp_answers, 1);
	ck_assert_int_eq(state_save(path, src, MONO0 + 10, WALL0, err,
				    sizeof(err)), 0);
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0 + 1 * SEC, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.isakmp_restored, 1);
	walk(dst, &b);
	ck_assert_uint_eq(b.n_ike, 1);
	ck_assert(b.ike[0].answer);
	ck_assert_uint_eq(engine_get_stats(dst)->isakmp_answers, 1);
	/* B's own exchange with another remote still has its one slot */
	len = pb_isakmp(buf, sizeof(buf), LAN_B, REMOTE2, 0x0c0c0c0cULL, 0, 2,
			0);
	ck_assert_int_eq(send_pkt(dst, buf, len, DIR_OUTBOUND, MONO1 + 10),
			 VERDICT_ACCEPT_MODIFIED);
	ck_assert_uint_eq(engine_get_stats(dst)->reasons[R_HOST_FULL], 0);
}
END_TEST

/* A version 1 file (no "answer" key) is still read, its ISAKMP entries as
 * the host's own; "answer" is a version 2 key, required there. */
START_TEST(version_1_file_is_still_read)
{
	struct state_counts c;
	struct seen b;
	char text[1024];

	snprintf(text, sizeof(text),
		 "ipsec-masqd-state 1\n"
		 "isakmp remote=203.0.113.20 host=192.168.1.10 "
		 "cookie_i=0102030405060708 cookie_r=0000000000000000 "
		 "last_seen_wall=%lld.000 expires_wall=%lld.000\n",
		 (long long)(WALL0 / SEC), (long long)(WALL0 / SEC) + 600);
	write_file(text);
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0 + 1 * SEC, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.isakmp_restored, 1);
	walk(dst, &b);
	ck_assert_uint_eq(b.n_ike, 1);
	ck_assert(!b.ike[0].answer);
	ck_assert_uint_eq(engine_get_stats(dst)->isakmp_answers, 0);
	/* version 1 knows no "answer" ... */
	snprintf(text, sizeof(text),
		 "ipsec-masqd-state 1\n"
		 "isakmp remote=203.0.113.20 host=192.168.1.10 "
		 "cookie_i=0102030405060709 cookie_r=0000000000000000 answer=1 "
		 "last_seen_wall=%lld.000 expires_wall=%lld.000\n",
		 (long long)(WALL0 / SEC), (long long)(WALL0 / SEC) + 600);
	write_file(text);
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0 + 1 * SEC, &c, err,
				    sizeof(err)), -1);
	ck_assert_msg(strstr(err, ":2: unknown key 'answer'"), "%s", err);
	/* ... version 2 needs it, 0 or 1 */
	snprintf(text, sizeof(text),
		 "ipsec-masqd-state 2\n"
		 "isakmp remote=203.0.113.20 host=192.168.1.10 "
		 "cookie_i=0102030405060709 cookie_r=0000000000000000 "
		 "last_seen_wall=%lld.000 expires_wall=%lld.000\n",
		 (long long)(WALL0 / SEC), (long long)(WALL0 / SEC) + 600);
	write_file(text);
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0 + 1 * SEC, &c, err,
				    sizeof(err)), -1);
	ck_assert_msg(strstr(err, ":2: missing key 'answer'"), "%s", err);
	snprintf(text, sizeof(text),
		 "ipsec-masqd-state 2\n"
		 "isakmp remote=203.0.113.20 host=192.168.1.10 "
		 "cookie_i=0102030405060709 cookie_r=0000000000000000 answer=2 "
		 "last_seen_wall=%lld.000 expires_wall=%lld.000\n",
		 (long long)(WALL0 / SEC), (long long)(WALL0 / SEC) + 600);
	write_file(text);
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0 + 1 * SEC, &c, err,
				    sizeof(err)), -1);
	ck_assert_msg(strstr(err, ":2: bad value for answer: '2'"), "%s", err);
}
END_TEST

static const char *const bad_lines[] = {
	"esp remote=203.0.113.20 host=192.168.1.x spi_out=0x1 spi_in=0x2",
	"isakmp remote=203.0.113.20 host=192.168.1.10 cookie_i=01 "
	"cookie_r=00 last_seen_wall=1 expires_wall=2 color=blue",
	"isakmp remote=203.0.113.20 host=192.168.1.10 cookie_i=01 "
	"cookie_r=00 last_seen_wall=1",
	"isakmp remote=203.0.113.20 remote=203.0.113.20 host=192.168.1.10",
	"isakmp remote=203.0.113.20 host=192.168.1.10 cookie_i=-1 "
	"cookie_r=00 last_seen_wall=1 expires_wall=2",
	"isakmp remote=203.0.113.20 host=192.168.1.10 cookie_i=01 "
	"cookie_r=00 last_seen_wall=1.5 expires_wall=2",
	"isakmp remote=203.0.113.20 host=192.168.1.10 cookie_i=00112233445566778 "
	"cookie_r=00 last_seen_wall=1 expires_wall=2",
	"esp remote=203.0.113.20 host=192.168.1.10 spi_out=1001 spi_in=0x2",
	"esp remote=203.0.113.20 host=192.168.1.10 spi_out=0x1 spi_in=0x2 "
	"state=sleepy",
	"ah remote=203.0.113.20",
	"isakmp remote",
};

START_TEST(malformed_line_names_file_and_line)
{
	struct state_counts c;
	char text[1024], want[200];

	snprintf(text, sizeof(text),
		 "ipsec-masqd-state 1\n"
		 "isakmp remote=203.0.113.20 host=192.168.1.10 "
		 "cookie_i=0102030405060708 cookie_r=0000000000000000 "
		 "last_seen_wall=1764180000.000 expires_wall=1764181800.000\n"
		 "\n%s\n", bad_lines[_i]);
	write_file(text);
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0, &c, err,
				    sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:4: ", path);
	ck_assert_msg(!strncmp(err, want, strlen(want)), "line %d: %s", _i,
		      err);
	/* the entry before the bad line was restored */
	ck_assert_uint_eq(c.isakmp_restored, 1);
}
END_TEST

START_TEST(overlong_line_is_an_error)
{
	static char text[4096];
	size_t n;

	n = (size_t)snprintf(text, sizeof(text), "ipsec-masqd-state 1\nesp ");
	memset(text + n, 'x', 2000);
	text[n + 2000] = '\n';
	write_file(text);
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0, NULL, err,
				    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":2: line too long"));
}
END_TEST

START_TEST(engine_refusals_are_counted_as_rejected)
{
	struct state_counts c;

	write_file("ipsec-masqd-state 1\n"
		   "# a comment\n"
		   /* host outside the internal prefixes */
		   "isakmp remote=203.0.113.20 host=10.0.0.1 "
		   "cookie_i=0102030405060708 cookie_r=0000000000000000 "
		   "last_seen_wall=1764180000.000 expires_wall=1764181800.000\n"
		   /* a pending init is never restored */
		   "esp remote=203.0.113.20 host=192.168.1.10 spi_out=0x00001001 "
		   "spi_in=0x00002001 state=pending since_wall=1764179000.000 "
		   "last_seen_wall=1764180000.000 expires_wall=1764181800.000 "
		   "pkts_out=1 pkts_in=0 bytes_out=72 bytes_in=0\n"
		   /* the same in-SPI twice: the second is refused */
		   "esp remote=203.0.113.20 host=192.168.1.10 spi_out=0x00001001 "
		   "spi_in=0x00002001 state=established since_wall=1764179000.000 "
		   "last_seen_wall=1764180000.000 expires_wall=1764181800.000 "
		   "pkts_out=1 pkts_in=1 bytes_out=72 bytes_in=72\n"
		   "esp remote=203.0.113.20 host=192.168.1.11 spi_out=0x00001002 "
		   "spi_in=0x00002001 state=established since_wall=1764179000.000 "
		   "last_seen_wall=1764180000.000 expires_wall=1764181800.000 "
		   "pkts_out=1 pkts_in=1 bytes_out=72 bytes_in=72\n");
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.rejected, 3);
	ck_assert_uint_eq(c.esp_restored, 1);
	ck_assert_uint_eq(c.isakmp_restored, 0);
}
END_TEST

START_TEST(save_replaces_atomically_and_leaves_no_temp)
{
	struct state_counts c;

	write_file("old contents\n");
	populate();
	ck_assert_int_eq(state_save(path, src, MONO0 + 1000, WALL0, err,
				    sizeof(err)), 0);
	ck_assert_int_eq(dir_entries(), 1);
	ck_assert_int_eq(state_save(path, src, MONO0 + 2000, WALL0 + 1 * SEC, err,
				    sizeof(err)), 0);
	ck_assert_int_eq(dir_entries(), 1);
	ck_assert_int_eq(state_load(path, dst, MONO1, WALL0 + 2 * SEC, &c, err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(c.esp_restored, 2);
}
END_TEST

START_TEST(failed_save_leaves_no_temp)
{
	char bad[160];

	populate();
	/* the target is a directory: rename fails after the temp is written */
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(state_save(path, src, MONO0, WALL0, err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_int_eq(dir_entries(), 1);
	/* no such directory: the temp cannot even be made */
	snprintf(bad, sizeof(bad), "%s/none/state", dir);
	ck_assert_int_eq(state_save(bad, src, MONO0, WALL0, err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "temporary"));
	ck_assert_int_eq(dir_entries(), 1);
}
END_TEST

static Suite *state_suite(void)
{
	Suite *suite = suite_create("state");
	TCase *tc = tcase_create("state");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, round_trip_keeps_associations_and_shifts_times);
	tcase_add_test(tc, file_is_versioned_text);
	tcase_add_test(tc, wall_clock_expiry_drops_dead_entries);
	tcase_add_test(tc, expiry_is_per_entry);
	tcase_add_test(tc, after_reboot_entry_keeps_time_left);
	tcase_add_test(tc, after_reboot_long_preload_keeps_time_left);
	tcase_add_test(tc, engine_clock_round_trips);
	tcase_add_test(tc, stale_temps_are_removed);
	tcase_add_test(tc, save_except_leaves_out_what_the_filter_names);
	tcase_add_test(tc, wall_clock_deltas_are_kept_to_the_millisecond);
	tcase_add_test(tc, missing_file_is_not_an_error);
	tcase_add_test(tc, unknown_version_is_named);
	tcase_add_test(tc, answer_entries_survive_a_restart);
	tcase_add_test(tc, version_1_file_is_still_read);
	tcase_add_loop_test(tc, malformed_line_names_file_and_line, 0,
			    (int)(sizeof(bad_lines) / sizeof(bad_lines[0])));
	tcase_add_test(tc, overlong_line_is_an_error);
	tcase_add_test(tc, engine_refusals_are_counted_as_rejected);
	tcase_add_test(tc, save_replaces_atomically_and_leaves_no_temp);
	tcase_add_test(tc, failed_save_leaves_no_temp);
	tcase_add_test(tc, announced_entries_survive_a_restart);
	suite_add_tcase(suite, tc);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(state_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
