/*
 * The logger: the stderr backend's line for every kind of decision, the
 * "<N>" priority prefix, levels, log_warn's strerror, the rate limiter and
 * its suppressed-count line, truncation of overlong text, the MESSAGE_IDs,
 * the AUTO backend's JOURNAL_STREAM check, and (as root, in a private mount
 * namespace with a fake journal socket) the journald record's fields.
 * stderr is captured by pointing fd 2 at a temporary file; it is restored
 * after every test, so the tests also run with CK_FORK=no.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* posix_openpt, unshare */
#endif
#include <config.h>   /* HAVE_SYSTEMD, as log.c sees it */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "dump.h"
#include "engine.h"
#include "log.h"
#include "pktbuild.h"
#include "reason.h"

#define PEER 0xc6336414u       /* 198.51.100.20 */
#define LAN 0xc0a8010au        /* 192.168.1.10 */
#define LAN2 0xc0a8010bu       /* 192.168.1.11 */
#define LAN3 0xc0a8010cu       /* 192.168.1.12 */

static int saved_fd2 = -1;
static int cap_fd = -1;
static char out[1 << 20];   /* the dump test logs 800 KB */

/* Point fd 2 at a fresh temporary file and start the logger on it. */
static void capture_start(enum log_level level)
{
	char path[] = "/tmp/test_log.XXXXXX";

	cap_fd = mkstemp(path);
	ck_assert_int_ge(cap_fd, 0);
	unlink(path);
	saved_fd2 = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_fd2, 0);
	ck_assert_int_eq(dup2(cap_fd, STDERR_FILENO), STDERR_FILENO);
	log_init("ipsec-masqd", level, LOG_BACKEND_STDERR);
}

/* Restore fd 2 and return what was written to it (NUL-terminated). */
static const char *capture_end(void)
{
	ssize_t n;

	ck_assert_int_eq(dup2(saved_fd2, STDERR_FILENO), STDERR_FILENO);
	close(saved_fd2);
	n = pread(cap_fd, out, sizeof(out) - 1, 0);
	ck_assert_int_ge(n, 0);
	out[n] = '\0';
	close(cap_fd);
	cap_fd = -1;
	return out;
}

/* Number of lines in s. */
static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Number of occurrences of needle in s. */
static int count_str(const char *s, const char *needle)
{
	int n = 0;

	while ((s = strstr(s, needle))) {
		n++;
		s += strlen(needle);
	}
	return n;
}

/* A full ESP event of kind with both SPIs. */
static struct engine_event esp_event(enum engine_event_kind kind)
{
	struct engine_event ev = {
		.kind = kind, .table = TABLE_ESP, .remote = PEER, .host = LAN,
		.spi_out = 0x12345678, .spi_in = 0x9abcdef0,
	};

	return ev;
}

/* The priority each kind is documented to log at. */
static int expected_prio(enum engine_event_kind k)
{
	switch (k) {
	case EV_ASSOCIATED: case EV_BLOCKED: case EV_SERIALIZED:
	case EV_SQUELCHED: case EV_COLLIDED: case EV_GUESSED:
	case EV_REASSOCIATED:
		return LOG_NOTICE;
	case EV_REFUSED: case EV_DROPPED:
		return LOG_WARNING;
	default:
		return LOG_INFO;
	}
}

START_TEST(associated_line_is_sentence_then_fields)
{
	struct engine_event ev = esp_event(EV_ASSOCIATED);

	capture_start(LOG_LEVEL_DEBUG);
	log_engine_event(NULL, &ev);
	ck_assert_str_eq(capture_end(),
		"<5>ESP init with 198.51.100.20 associated: inbound SPI bound "
		"to 192.168.1.10 DECISION=associated TABLE=esp "
		"PEER_ADDR=198.51.100.20 LAN_ADDR=192.168.1.10 "
		"ESP_SPI_OUT=0x12345678 ESP_SPI_IN=0x9abcdef0\n");
}
END_TEST

START_TEST(every_kind_logs_one_line_with_its_priority)
{
	enum engine_event_kind k = (enum engine_event_kind)_i;
	struct engine_event ev = esp_event(k);
	char want[64];
	const char *s;

	ev.reason = k == EV_DROPPED ? R_ESP_TRUNCATED : R_PASS;
	capture_start(LOG_LEVEL_DEBUG);
	log_engine_event(NULL, &ev);
	s = capture_end();
	ck_assert_int_eq(count_lines(s), 1);
	snprintf(want, sizeof(want), "<%d>", expected_prio(k));
	ck_assert_msg(!strncmp(s, want, strlen(want)), "%s: %s", want, s);
	snprintf(want, sizeof(want), " DECISION=%s ", engine_event_name(k));
	ck_assert_msg(strstr(s, want), "no %s in %s", want, s);
	ck_assert_ptr_nonnull(strstr(s, " PEER_ADDR=198.51.100.20"));
	ck_assert_ptr_nonnull(strstr(s, " LAN_ADDR=192.168.1.10"));
	ck_assert_ptr_nonnull(strstr(s, " TABLE=esp"));
	ck_assert_ptr_null(strstr(s, "IKE_SPI"));
	ck_assert_ptr_null(strstr(s, "{peer}"));
	ck_assert_ptr_null(strstr(s, "{host}"));
	ck_assert_int_eq(!!strstr(s, " REASON="), k == EV_DROPPED);
}
END_TEST

START_TEST(isakmp_fields_have_cookies_not_spis)
{
	struct engine_event ev = {
		.kind = EV_CREATED, .table = TABLE_ISAKMP, .remote = PEER,
		.host = LAN, .spi_out = 0x1234, .cookie_i = 0x0102030405060708ULL,
	};
	const char *s;

	capture_start(LOG_LEVEL_DEBUG);
	log_engine_event(NULL, &ev);
	ev.cookie_r = 0xa1b2c3d4e5f60718ULL;
	ev.kind = EV_EXPIRED;
	log_engine_event(NULL, &ev);
	s = capture_end();
	ck_assert_int_eq(count_lines(s), 2);
	ck_assert_ptr_nonnull(strstr(s, "<6>ISAKMP exchange from 192.168.1.10 "
					"to 198.51.100.20 created DECISION=created "
					"TABLE=isakmp"));
	ck_assert_int_eq(count_str(s, " IKE_SPI_I=0102030405060708"), 2);
	ck_assert_int_eq(count_str(s, " IKE_SPI_R=a1b2c3d4e5f60718\n"), 1);
	ck_assert_ptr_null(strstr(s, "ESP_SPI"));
}
END_TEST

START_TEST(fields_that_do_not_apply_are_left_out)
{
	struct engine_event ev = {
		.kind = EV_DROPPED, .reason = R_AH_OUTBOUND,
	};
	const char *s;

	capture_start(LOG_LEVEL_DEBUG);
	log_engine_event(NULL, &ev);
	ev.remote = PEER;
	ev.table = TABLE_ESP;
	ev.reason = R_ESP_TRUNCATED;
	log_engine_event(NULL, &ev);
	s = capture_end();
	ck_assert_str_eq(s,
		"<4>AH packet dropped: AH cannot be masqueraded (ah_outbound) "
		"DECISION=dropped "
		"REASON=ah_outbound\n"
		"<4>ESP packet from 198.51.100.20 dropped (esp_truncated) "
		"DECISION=dropped TABLE=esp PEER_ADDR=198.51.100.20 "
		"REASON=esp_truncated\n");
}
END_TEST

/* The engine's own AH drop, logged through the real callback: named AH,
 * never "ESP packet". */
START_TEST(ah_drop_is_logged_as_ah)
{
	struct engine_config cfg;
	struct engine_decision d;
	struct engine *eng;
	uint8_t pkt[256];
	size_t len;
	const char *s;

	engine_config_defaults(&cfg);
	cfg.external_addr = pb_addr("203.0.113.1");
	cfg.internal[0].addr = pb_addr("192.168.0.0");
	cfg.internal[0].mask = 0xffff0000u;
	cfg.n_internal = 1;
	eng = engine_new(&cfg, 1, 0, log_engine_event, NULL);
	ck_assert_ptr_nonnull(eng);
	len = pb_ah(pkt, sizeof(pkt), LAN, PEER, 0x4000);
	capture_start(LOG_LEVEL_DEBUG);
	engine_process(eng, pkt, len, DIR_OUTBOUND, 0, &d);
	s = capture_end();
	engine_free(eng);
	ck_assert_int_eq(d.reason, R_AH_OUTBOUND);
	ck_assert_msg(strncmp(s, "<4>AH packet from 192.168.1.10 to "
				 "198.51.100.20 dropped: AH cannot be "
				 "masqueraded (ah_outbound) DECISION=dropped",
			      strlen("<4>AH packet from 192.168.1.10 to "
				     "198.51.100.20 dropped: AH cannot be "
				     "masqueraded (ah_outbound) "
				     "DECISION=dropped")) == 0,
		      "got: %s", s);
	ck_assert_ptr_null(strstr(s, "ESP packet"));
}
END_TEST

START_TEST(guess_lists_hosts_and_refusal_names_holder)
{
	uint32_t hosts[] = { LAN, LAN2, LAN3 };
	struct engine_event ev = {
		.kind = EV_GUESSED, .table = TABLE_ESP, .remote = PEER,
		.host = LAN, .spi_in = 0xdeadbeef, .hosts = hosts, .n_hosts = 3,
	};
	const char *s;

	capture_start(LOG_LEVEL_DEBUG);
	log_engine_event(NULL, &ev);
	ev = esp_event(EV_SERIALIZED);
	ev.host = LAN2;
	ev.spi_in = 0;
	ev.reason = R_ESP_SERIALIZED;
	ev.hosts = hosts;
	ev.n_hosts = 1;
	log_engine_event(NULL, &ev);
	s = capture_end();
	ck_assert_int_eq(count_lines(s), 2);
	ck_assert_ptr_nonnull(strstr(s, " ESP_SPI_IN=0xdeadbeef GUESS_HOSTS="
					"192.168.1.10,192.168.1.11,192.168.1.12\n"));
	ck_assert_ptr_nonnull(strstr(s, "<5>ESP init from 192.168.1.11 to "
					"198.51.100.20 temporarily blocked"));
	ck_assert_ptr_nonnull(strstr(s, " ESP_SPI_OUT=0x12345678 "
					"REASON=esp_serialized "
					"HOLDER_ADDR=192.168.1.10\n"));
	ck_assert_int_eq(count_str(s, "ESP_SPI_IN="), 1);
}
END_TEST

START_TEST(level_filters_messages_and_events)
{
	struct engine_event ev = esp_event(EV_CREATED);
	const char *s;

	capture_start(LOG_LEVEL_NOTICE);
	log_engine_event(NULL, &ev);         /* info: filtered */
	log_info("info %d", 1);
	log_debug("debug %d", 2);
	log_msg(LOG_NOTICE, "notice %d", 3);
	log_warnx("warning %d", 4);
	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("debug %d", 5);
	s = capture_end();
	ck_assert_str_eq(s, "<5>notice 3\n<4>warning 4\n<7>debug 5\n");
}
END_TEST

START_TEST(warn_appends_strerror_and_keeps_errno)
{
	const char *s;

	capture_start(LOG_LEVEL_INFO);
	errno = ENOENT;
	log_warn("open %s", "/nonexistent");
	ck_assert_int_eq(errno, ENOENT);
	log_warnx("no errno here");
	ck_assert_int_eq(errno, ENOENT);
	s = capture_end();
	ck_assert_str_eq(s, "<4>open /nonexistent: No such file or directory\n"
			    "<4>no errno here\n");
}
END_TEST

START_TEST(message_newlines_stay_one_line)
{
	capture_start(LOG_LEVEL_INFO);
	log_info("two\nlines");
	ck_assert_str_eq(capture_end(), "<6>two lines\n");
}
END_TEST

START_TEST(terminal_gets_no_priority_prefix)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY), slave, saved;
	char buf[256];
	ssize_t n;

	ck_assert_int_ge(master, 0);
	ck_assert_int_eq(grantpt(master), 0);
	ck_assert_int_eq(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	ck_assert_int_ge(slave, 0);
	saved = dup(STDERR_FILENO);
	dup2(slave, STDERR_FILENO);
	log_init("masqtest", LOG_LEVEL_INFO, LOG_BACKEND_STDERR);
	log_warnx("hello %s", "tty");
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = read(master, buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_msg(!strncmp(buf, "masqtest: hello tty", 19), "%s", buf);
	close(slave);
	close(master);
}
END_TEST

/* Sleep ms milliseconds. */
static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

START_TEST(rate_limit_passes_burst_then_counts_suppressed)
{
	struct engine_event ev = esp_event(EV_BLOCKED);
	struct engine_event other = esp_event(EV_BLOCKED);
	const char *s;

	ev.reason = R_ESP_BLOCKED;
	other.reason = R_TABLE_FULL;
	capture_start(LOG_LEVEL_DEBUG);
	for (int i = 0; i < 25; i++)
		log_engine_event(NULL, &ev);
	log_engine_event(NULL, &other);      /* its own (kind, reason) */
	sleep_ms(1200);
	log_engine_event(NULL, &ev);
	log_engine_event(NULL, &ev);         /* the one token is spent */
	s = capture_end();
	ck_assert_int_eq(count_str(s, "REASON=esp_blocked"), 10 + 2);
	ck_assert_int_eq(count_str(s, "REASON=table_full"), 1);
	ck_assert_int_eq(count_lines(s), 10 + 1 + 2);
	ck_assert_ptr_nonnull(strstr(s, "<5>15 similar messages suppressed "
					"DECISION=blocked REASON=esp_blocked "
					"SUPPRESSED=15\n<5>ESP from"));
}
END_TEST

/* Created, expired and removed entries (issue 13): one line each while
 * few, but a mass expiry or a flood of inits is cut to a burst of 100 per
 * (kind, table), then 20 a second, and the rest counted in one line. */
START_TEST(rate_limit_lifecycle_events_with_a_larger_budget)
{
	struct engine_event ev = esp_event(EV_CREATED);
	struct engine_event ike = esp_event(EV_CREATED);
	struct engine_event gone = esp_event(EV_EXPIRED);
	const char *s;

	ike.table = TABLE_ISAKMP;
	capture_start(LOG_LEVEL_DEBUG);
	for (int i = 0; i < 40; i++)
		log_engine_event(NULL, &ev);
	s = capture_end();
	ck_assert_int_eq(count_lines(s), 40);   /* a few: every one */
	ck_assert_ptr_null(strstr(s, "suppressed"));

	capture_start(LOG_LEVEL_DEBUG);
	for (int i = 0; i < 250; i++)
		log_engine_event(NULL, &ev);
	for (int i = 0; i < 5; i++)
		log_engine_event(NULL, &ike);    /* ISAKMP: a bucket of its own */
	for (int i = 0; i < 150; i++)
		log_engine_event(NULL, &gone);   /* expired: one of its own */
	sleep_ms(200);                           /* 4 tokens at 20/s */
	log_engine_event(NULL, &ev);
	s = capture_end();
	/* the burst, the one after the pause, and the suppressed-count line */
	ck_assert_int_eq(count_str(s, "DECISION=created TABLE=esp"), 100 + 1 + 1);
	ck_assert_int_eq(count_str(s, "DECISION=created TABLE=isakmp"), 5);
	ck_assert_int_eq(count_str(s, "DECISION=expired TABLE=esp"), 100);
	ck_assert_ptr_nonnull(strstr(s, "150 similar messages suppressed "
					"DECISION=created TABLE=esp "
					"SUPPRESSED=150\n"));
	ck_assert_int_eq(count_lines(s), 100 + 5 + 100 + 1 + 1);
}
END_TEST

START_TEST(log_init_resets_the_limiter)
{
	struct engine_event ev = esp_event(EV_DROPPED);
	const char *s;

	ev.reason = R_ESP_TRUNCATED;
	capture_start(LOG_LEVEL_DEBUG);
	for (int i = 0; i < 15; i++)
		log_engine_event(NULL, &ev);
	log_init("ipsec-masqd", LOG_LEVEL_DEBUG, LOG_BACKEND_STDERR);
	for (int i = 0; i < 5; i++)
		log_engine_event(NULL, &ev);
	s = capture_end();
	ck_assert_int_eq(count_lines(s), 15);
}
END_TEST

START_TEST(overlong_message_is_cut_with_ellipsis)
{
	static char big[8000];
	const char *s;
	size_t len;

	memset(big, 'x', sizeof(big) - 1);
	capture_start(LOG_LEVEL_INFO);
	log_info("%s", big);
	s = capture_end();
	len = strlen(s);
	ck_assert_int_eq(count_lines(s), 1);
	ck_assert_uint_le(len, 1024 + 8);
	ck_assert_uint_gt(len, 900);
	ck_assert_str_eq(s + len - 5, "x...\n");
	ck_assert(!strncmp(s, "<6>xxxx", 7));
}
END_TEST

START_TEST(overlong_event_fields_are_cut_safely)
{
	uint32_t hosts[200];
	struct engine_event ev = esp_event(EV_GUESSED);
	const char *s;
	size_t len;

	for (unsigned i = 0; i < 200; i++)
		hosts[i] = 0xc0a80000u + 100 + i;
	ev.hosts = hosts;
	ev.n_hosts = 200;                    /* more than the engine ever sends */
	capture_start(LOG_LEVEL_DEBUG);
	log_engine_event(NULL, &ev);
	s = capture_end();
	len = strlen(s);
	ck_assert_int_eq(count_lines(s), 1);
	ck_assert_uint_le(len, 1024 + 8);
	ck_assert_str_eq(s + len - 4, "...\n");
	ck_assert_ptr_nonnull(strstr(s, "GUESS_HOSTS=192.168.0.100,"));
}
END_TEST

START_TEST(message_ids_are_unique_hex)
{
	for (int k = 0; k < EV_MAX; k++) {
		const char *id = log_message_id((enum engine_event_kind)k);

		ck_assert_ptr_nonnull(id);
		ck_assert_uint_eq(strlen(id), 32);
		ck_assert_uint_eq(strspn(id, "0123456789abcdef"), 32);
		for (int j = 0; j < k; j++)
			ck_assert_str_ne(id, log_message_id(
						(enum engine_event_kind)j));
	}
	ck_assert_ptr_null(log_message_id(EV_MAX));
}
END_TEST

/* The daemon's own events' MESSAGE_IDs: hex, distinct from each other and
 * from every decision's. */
START_TEST(daemon_message_ids_are_unique_hex)
{
	static const char *const ids[] = {
		LOG_ID_CONFIG_INVALID, LOG_ID_START_FAILED,
		LOG_ID_RELOAD_FAILED, LOG_ID_ADDR_CHANGED, LOG_ID_ADDR_LOST,
	};
	size_t n = sizeof(ids) / sizeof(ids[0]);

	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(strlen(ids[i]), 32);
		ck_assert_uint_eq(strspn(ids[i], "0123456789abcdef"), 32);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(ids[i], ids[j]);
		for (int k = 0; k < EV_MAX; k++)
			ck_assert_str_ne(ids[i], log_message_id(
						 (enum engine_event_kind)k));
	}
}
END_TEST

/* log_msg_id outside the journal: the text only, filtered by level. */
START_TEST(message_with_id_is_one_line_and_filtered)
{
	const struct log_kv kv[] = { { "EXT_INTERFACE", "wan0" } };
	const char *s;

	capture_start(LOG_LEVEL_NOTICE);
	log_msg_id(LOG_LEVEL_INFO, LOG_ID_ADDR_LOST, kv, 1, "filtered out");
	log_msg_id(LOG_LEVEL_WARNING, LOG_ID_ADDR_LOST, kv, 1,
		   "external interface %s lost its address", "wan0");
	s = capture_end();
	ck_assert_str_eq(s, "<4>external interface wan0 lost its address\n");
}
END_TEST

/* log_init with AUTO after setting JOURNAL_STREAM to env; returns the
 * backend chosen. fd 2 is the capture file. */
static enum log_backend auto_with(const char *env)
{
	if (env)
		setenv("JOURNAL_STREAM", env, 1);
	else
		unsetenv("JOURNAL_STREAM");
	log_init("ipsec-masqd", LOG_LEVEL_INFO, LOG_BACKEND_AUTO);
	return log_get_backend();
}

START_TEST(auto_picks_journal_only_when_stream_matches)
{
	struct stat st;
	char env[64];
	enum log_backend match, other, garbage, none, empty;

	capture_start(LOG_LEVEL_INFO);
	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	match = auto_with(env);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	other = auto_with(env);
	garbage = auto_with("12:34x");
	empty = auto_with("");
	none = auto_with(NULL);
	capture_end();
#ifdef HAVE_SYSTEMD
	ck_assert_int_eq(match, LOG_BACKEND_JOURNAL);
#else
	ck_assert_int_eq(match, LOG_BACKEND_STDERR);
#endif
	ck_assert_int_eq(other, LOG_BACKEND_STDERR);
	ck_assert_int_eq(garbage, LOG_BACKEND_STDERR);
	ck_assert_int_eq(empty, LOG_BACKEND_STDERR);
	ck_assert_int_eq(none, LOG_BACKEND_STDERR);
}
END_TEST

START_TEST(journal_without_journald_falls_back_to_stderr)
{
	struct engine_event ev = esp_event(EV_ASSOCIATED);
	const char *s;

	if (access("/run/systemd/journal/socket", F_OK) == 0)
		return;      /* a real journald would take the record */
	capture_start(LOG_LEVEL_INFO);
	log_init("ipsec-masqd", LOG_LEVEL_INFO, LOG_BACKEND_JOURNAL);
	ck_assert_int_eq(log_get_backend(), LOG_BACKEND_STDERR);
	log_engine_event(NULL, &ev);
	s = capture_end();
	ck_assert_int_eq(count_lines(s), 1);
	ck_assert_ptr_nonnull(strstr(s, "DECISION=associated"));
}
END_TEST

/* stderr a pipe nobody reads (a daemon run by hand under `| less`
 * stopped): 3000 lines of 100 bytes cannot all fit its 64 KiB, yet every
 * call returns; what did not fit is counted, and each line that got in is
 * whole. In a child, killed by the alarm if a write blocks. */
static int stalled_stderr_child(void)
{
	static char buf[1 << 20];
	int p[2];
	ssize_t n;
	size_t len = 0;
	uint64_t lines = 0;

	if (pipe(p) < 0 || dup2(p[1], STDERR_FILENO) < 0)
		return printf("pipe\n"), 1;
	log_init("ipsec-masqd", LOG_LEVEL_INFO, LOG_BACKEND_STDERR);
	alarm(20);
	for (int i = 0; i < 3000; i++)
		log_info("line %04d %s", i, "................................"
			 "...................................................");
	alarm(0);
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0)
		return printf("fcntl\n"), 1;
	while ((n = read(p[0], buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)n;
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	if (len == 0 || buf[len - 1] != '\n' || log_dropped() == 0 ||
	    lines + log_dropped() != 3000)
		return printf("%llu lines in the pipe, %llu dropped\n",
			      (unsigned long long)lines,
			      (unsigned long long)log_dropped()), 1;
	return 0;
}

START_TEST(stalled_stderr_drops_and_counts_never_blocks)
{
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int rc = stalled_stderr_child();

		fflush(stdout);
		_exit(rc);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st), "killed by signal %d",
		      WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

#ifdef HAVE_SYSTEMD
/* In a private mount namespace, a datagram socket where journald's would
 * be. Returns its fd, or -1 when this process may not do that (not root,
 * no user namespaces): the caller then skips. */
static int fake_journal(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0 ||
	    mkdir("/run/systemd", 0755) < 0 ||
	    mkdir("/run/systemd/journal", 0755) < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path),
		 "/run/systemd/journal/socket");
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	return fd;
}

/* Whether the journal datagram rec has the line "field\n" (exact). */
static int has_field(const char *rec, const char *field)
{
	size_t n = strlen(field);

	for (const char *p = rec; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (!strncmp(p, field, n) && (p[n] == '\n' || p[n] == '\0'))
			return 1;
	return 0;
}

/* The child's half of the journal test: exit status 0 passed, 2 skipped,
 * 1 + a message on stdout failed. */
static int journal_child(void)
{
	struct engine_event ev = esp_event(EV_ASSOCIATED);
	char rec[4096];
	ssize_t n;
	int fd = fake_journal();

	if (fd < 0)
		return 2;
	log_init("masqtest", LOG_LEVEL_INFO, LOG_BACKEND_JOURNAL);
	if (log_get_backend() != LOG_BACKEND_JOURNAL)
		return printf("journal backend not chosen\n"), 1;
	log_engine_event(NULL, &ev);
	n = recv(fd, rec, sizeof(rec) - 1, MSG_DONTWAIT);
	if (n <= 0)
		return printf("no journal record\n"), 1;
	rec[n] = '\0';
	if (!has_field(rec, "MESSAGE_ID=891497bc5a9249bc8c5db429451f5bd6") ||
	    !has_field(rec, "PRIORITY=5") ||
	    !has_field(rec, "SYSLOG_IDENTIFIER=masqtest") ||
	    !has_field(rec, "DECISION=associated") ||
	    !has_field(rec, "TABLE=esp") ||
	    !has_field(rec, "PEER_ADDR=198.51.100.20") ||
	    !has_field(rec, "LAN_ADDR=192.168.1.10") ||
	    !has_field(rec, "ESP_SPI_OUT=0x12345678") ||
	    !has_field(rec, "ESP_SPI_IN=0x9abcdef0") ||
	    !has_field(rec, "MESSAGE=ESP init with 198.51.100.20 associated: "
		      "inbound SPI bound to 192.168.1.10 DECISION=associated "
		      "TABLE=esp PEER_ADDR=198.51.100.20 LAN_ADDR=192.168.1.10 "
		      "ESP_SPI_OUT=0x12345678 ESP_SPI_IN=0x9abcdef0") ||
	    strstr(rec, "REASON=") || strstr(rec, "CODE_FILE="))
		return printf("bad record:\n%s\n", rec), 1;
	{
		const struct log_kv kv[] = {
			{ "EXT_INTERFACE", "wan0" },
			{ "EXT_ADDR", "198.51.100.1" },
		};

		log_msg_id(LOG_LEVEL_NOTICE, LOG_ID_ADDR_CHANGED, kv, 2,
			   "external address of %s is now %s", "wan0",
			   "198.51.100.1");
	}
	n = recv(fd, rec, sizeof(rec) - 1, MSG_DONTWAIT);
	if (n <= 0)
		return printf("no journal record for log_msg_id\n"), 1;
	rec[n] = '\0';
	if (!has_field(rec, "MESSAGE_ID=" LOG_ID_ADDR_CHANGED) ||
	    !has_field(rec, "PRIORITY=5") ||
	    !has_field(rec, "EXT_INTERFACE=wan0") ||
	    !has_field(rec, "EXT_ADDR=198.51.100.1") ||
	    !has_field(rec, "MESSAGE=external address of wan0 is now 198.51.100.1"))
		return printf("bad log_msg_id record:\n%s\n", rec), 1;
	return 0;
}

/* The child's half of the stalled-journal test: journald (our fake) does
 * not read; 3000 decisions must all return at once (the old
 * sd_journal_sendv() blocked on the full socket: Check's timeout), the
 * lines that did not fit are counted in log_dropped(), and once the
 * journal reads again the next record is preceded by one saying how many
 * were dropped. Exit status as journal_child's. */
static int stalled_journal_child(void)
{
	static char rec[8192];
	struct engine_event ev = esp_event(EV_ASSOCIATED);
	uint64_t dropped, got = 0;
	char want[64];
	ssize_t n;
	int fd = fake_journal();

	if (fd < 0)
		return 2;
	log_init("masqtest", LOG_LEVEL_INFO, LOG_BACKEND_JOURNAL);
	if (log_get_backend() != LOG_BACKEND_JOURNAL)
		return printf("journal backend not chosen\n"), 1;
	alarm(20);   /* blocked in a send: fail rather than hang */
	for (int i = 0; i < 3000; i++)
		log_msg_id(LOG_LEVEL_NOTICE, NULL, NULL, 0, "line %d", i);
	alarm(0);
	dropped = log_dropped();
	while (recv(fd, rec, sizeof(rec) - 1, MSG_DONTWAIT) > 0)
		got++;
	if (dropped == 0 || got == 0 || got + dropped != 3000)
		return printf("sent %llu, dropped %llu of 3000\n",
			      (unsigned long long)got,
			      (unsigned long long)dropped), 1;
	log_engine_event(NULL, &ev);
	n = recv(fd, rec, sizeof(rec) - 1, MSG_DONTWAIT);
	if (n <= 0)
		return printf("no record after the journal read again\n"), 1;
	rec[n] = '\0';
	snprintf(want, sizeof(want), "DROPPED=%llu",
		 (unsigned long long)dropped);
	if (!has_field(rec, want) || !has_field(rec, "PRIORITY=4"))
		return printf("no dropped count first:\n%s\n", rec), 1;
	n = recv(fd, rec, sizeof(rec) - 1, MSG_DONTWAIT);
	if (n <= 0)
		return printf("the decision itself was lost\n"), 1;
	rec[n] = '\0';
	if (!has_field(rec, "DECISION=associated") ||
	    log_dropped() != dropped)
		return printf("bad record after the note:\n%s\n", rec), 1;
	return 0;
}

/* Runs child() in a forked process; skips when it exits 2. */
static void run_journal_child(int (*child)(void), const char *name)
{
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int rc = child();

		fflush(stdout);
		_exit(rc);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st), "%s: killed by signal %d", name,
		      WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	if (WEXITSTATUS(st) == 2)
		fprintf(stdout, "%s: skipped (no private mount namespace)\n",
			name);
	else
		ck_assert_int_eq(WEXITSTATUS(st), 0);
}

START_TEST(stalled_journal_drops_and_counts_never_blocks)
{
	run_journal_child(stalled_journal_child,
			  "stalled_journal_drops_and_counts_never_blocks");
}
END_TEST

/* The SIGUSR1 dump against a journal that reads only between steps: each
 * step stops when the socket is full (log_full), nothing is dropped, and
 * once the journal has read everything every entry arrived exactly once.
 * Logging the dump with plain lines (dropped when the log would block)
 * loses most of them and fails. */
static int paced_dump_child(void)
{
	static char rec[8192];
	struct engine_config cfg;
	struct engine *eng;
	struct table_dump td;
	unsigned long got = 0, full = 0, steps = 0;
	int fd = fake_journal();

	if (fd < 0)
		return 2;
	log_init("masqtest", LOG_LEVEL_INFO, LOG_BACKEND_JOURNAL);
	if (log_get_backend() != LOG_BACKEND_JOURNAL)
		return printf("journal backend not chosen\n"), 1;
	engine_config_defaults(&cfg);
	cfg.external_addr = pb_addr("198.51.100.1");
	cfg.internal[0].addr = pb_addr("192.168.0.0");
	cfg.internal[0].mask = 0xffff0000u;
	cfg.n_internal = 1;
	cfg.max_per_host = 10000;
	eng = engine_new(&cfg, 7, 1000, NULL, NULL);
	if (!eng)
		return printf("no engine\n"), 1;
	for (uint32_t i = 0; i < 3000; i++)
		if (engine_preload(eng, PEER + i % 40, LAN + i % 30,
				   0x10000 + i, 0, 0, 1000) < 0)
			return printf("preload %u refused\n", i), 1;
	alarm(60);
	table_dump_start(&td, eng);
	while (!table_dump_step(&td, eng, 2000, 2000)) {
		ssize_t n;

		full += td.log_full;
		if (++steps > 100000)
			return printf("the dump does not end\n"), 1;
		while ((n = recv(fd, rec, sizeof(rec) - 1, MSG_DONTWAIT)) > 0) {
			rec[n] = '\0';
			got += strstr(rec, "MESSAGE=esp remote=") != NULL;
		}
	}
	for (ssize_t n; (n = recv(fd, rec, sizeof(rec) - 1, MSG_DONTWAIT)) > 0;) {
		rec[n] = '\0';
		got += strstr(rec, "MESSAGE=esp remote=") != NULL;
	}
	alarm(0);
	engine_free(eng);
	if (got != 3000 || td.lines != 3000 || log_dropped() != 0 ||
	    full == 0)
		return printf("got %lu of 3000 (td.lines %zu), dropped %llu, "
			      "%lu steps stopped by a full log\n", got,
			      td.lines, (unsigned long long)log_dropped(),
			      full), 1;
	return 0;
}

START_TEST(dump_waits_for_a_full_journal_and_loses_nothing)
{
	run_journal_child(paced_dump_child,
			  "dump_waits_for_a_full_journal_and_loses_nothing");
}
END_TEST

START_TEST(journal_record_has_the_fields)
{
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int rc = journal_child();

		fflush(stdout);
		_exit(rc);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	if (WEXITSTATUS(st) == 2)
		fprintf(stdout, "journal_record_has_the_fields: skipped "
				"(no private mount namespace)\n");
	else
		ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST
#endif

/* The SIGUSR1 dump (src/dump.c) in slices: 5000 ESP and 300 ISAKMP
 * entries, 2000 a step: each step logs at most 2000 lines, every entry is
 * logged once (one removed between steps, before its turn, is not), and
 * the dump ends inactive. A dump without the budget (one walk) fails the
 * per-step bound. */
START_TEST(dump_logs_in_slices_each_entry_once)
{
	struct engine_config cfg;
	struct engine *eng;
	struct table_dump td;
	const char *s;
	size_t steps = 0, prev = 0;
	int n_esp = 0, n_isa = 0;

	engine_config_defaults(&cfg);
	cfg.external_addr = pb_addr("198.51.100.1");
	cfg.internal[0].addr = pb_addr("192.168.0.0");
	cfg.internal[0].mask = 0xffff0000u;
	cfg.n_internal = 1;
	cfg.max_per_host = 10000;
	eng = engine_new(&cfg, 7, 1000, NULL, NULL);
	ck_assert_ptr_nonnull(eng);
	for (uint32_t i = 0; i < 5001; i++)
		ck_assert_int_eq(engine_preload(eng, PEER + i % 40, LAN + i % 30,
						0x10000 + i, 0, 0, 1000), 0);
	for (uint32_t i = 0; i < 300; i++) {
		uint8_t pkt[256];
		size_t len = pb_isakmp(pkt, sizeof(pkt), LAN, PEER + i,
				       0x1000 + i, 0, 1, 0);
		struct engine_decision d;

		ck_assert_uint_gt(len, 0);
		engine_process(eng, pkt, len, DIR_OUTBOUND, 1000, &d);
	}
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_entries, 300);
	capture_start(LOG_LEVEL_INFO);
	table_dump_start(&td, eng);
	while (!table_dump_step(&td, eng, 2000, 2000)) {
		ck_assert_uint_le(td.lines - prev, 2000);
		prev = td.lines;
		if (steps++ == 0)   /* the first entry made: in the oldest
				     * chunk, walked last, not yet logged */
			ck_assert_int_eq(engine_del_esp(eng, PEER, 0x10000),
					 0);
		ck_assert_uint_lt(steps, 100);
	}
	ck_assert(!td.active);
	s = capture_end();
	for (const char *p = s; (p = strstr(p, "esp remote=")) != NULL; p++)
		n_esp++;
	for (const char *p = s; (p = strstr(p, "isakmp remote=")) != NULL; p++)
		n_isa++;
	ck_assert_int_eq(n_esp, 5000);
	ck_assert_int_eq(n_isa, 300);
	ck_assert_uint_eq(td.lines, 5300);
	ck_assert_uint_ge(steps, 5300 / 2000);
	ck_assert_ptr_null(strstr(s, "spi_in=0x00010000 "));   /* deleted */
	engine_free(eng);
}
END_TEST

static Suite *log_suite(void)
{
	Suite *suite = suite_create("log");
	TCase *lines = tcase_create("lines");
	TCase *rl = tcase_create("ratelimit");
	TCase *backend = tcase_create("backend");

	tcase_add_test(lines, associated_line_is_sentence_then_fields);
	tcase_add_loop_test(lines, every_kind_logs_one_line_with_its_priority,
			    0, EV_MAX);
	tcase_add_test(lines, isakmp_fields_have_cookies_not_spis);
	tcase_add_test(lines, fields_that_do_not_apply_are_left_out);
	tcase_add_test(lines, ah_drop_is_logged_as_ah);
	tcase_add_test(lines, guess_lists_hosts_and_refusal_names_holder);
	tcase_add_test(lines, level_filters_messages_and_events);
	tcase_add_test(lines, warn_appends_strerror_and_keeps_errno);
	tcase_add_test(lines, message_newlines_stay_one_line);
	tcase_add_test(lines, terminal_gets_no_priority_prefix);
	tcase_add_test(lines, overlong_message_is_cut_with_ellipsis);
	tcase_add_test(lines, overlong_event_fields_are_cut_safely);
	tcase_add_test(lines, message_ids_are_unique_hex);
	tcase_add_test(lines, daemon_message_ids_are_unique_hex);
	tcase_add_test(lines, message_with_id_is_one_line_and_filtered);
	tcase_add_test(lines, dump_logs_in_slices_each_entry_once);
	suite_add_tcase(suite, lines);

	tcase_add_test(rl, rate_limit_passes_burst_then_counts_suppressed);
	tcase_add_test(rl, rate_limit_lifecycle_events_with_a_larger_budget);
	tcase_add_test(rl, log_init_resets_the_limiter);
	suite_add_tcase(suite, rl);

	tcase_add_test(backend, auto_picks_journal_only_when_stream_matches);
	tcase_add_test(backend, journal_without_journald_falls_back_to_stderr);
	tcase_add_test(backend, stalled_stderr_drops_and_counts_never_blocks);
#ifdef HAVE_SYSTEMD
	tcase_add_test(backend, journal_record_has_the_fields);
	tcase_add_test(backend, stalled_journal_drops_and_counts_never_blocks);
	tcase_add_test(backend, dump_waits_for_a_full_journal_and_loses_nothing);
#endif
	suite_add_tcase(suite, backend);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(log_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
