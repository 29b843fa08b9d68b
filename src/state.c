/*
 * The state file: the engine's live associations as text, one entry a line,
 * so that a restart (SIGTERM, upgrade) keeps the tunnels it routes.
 *
 *   ipsec-masqd-state 2
 *   esp remote=198.51.100.20 host=192.168.1.10 spi_out=0x0badf00d
 *       spi_in=0xc0ffee01 state=established since_wall=1764180000.125
 *       last_seen_wall=1764180100.500 expires_wall=1764181900.500
 *       pkts_out=12 pkts_in=10 bytes_out=1536 bytes_in=1280    (one line)
 *   isakmp remote=198.51.100.20 host=192.168.1.10
 *       cookie_i=0102030405060708 cookie_r=0000000000000000 answer=0
 *       last_seen_wall=1764180100.000 expires_wall=1764181900.000
 *
 * Times are wall-clock Unix seconds with milliseconds: the engine's clock
 * is monotonic and starts again at every boot, the wall clock does not. The
 * caller gives both clocks at one instant (now_mono, now_wall) and we
 * convert (both in ms: a restored entry keeps the time it had left to the
 * millisecond). Keys may come in any order; unknown keys, duplicates and missing
 * keys are errors (a new key means a new version).
 *
 * Versions: 2 added "answer" (0 or 1) to isakmp lines: whether the entry
 * was made by the host's answer to an exchange the remote started, and so
 * counts against isakmp.answer_allowance rather than limits.max_per_host.
 * Without it a restart turned every answer entry into one of the host's
 * own, charged to the quota its own inits need. Version 1 files (no
 * "answer") are still read, their isakmp entries as the host's own, which
 * is what the version 1 daemon that wrote them had saved; version 2 is
 * written. A version 1 daemon refuses a version 2 file by name.
 *
 * Which ESP entries are saved: only ESTABLISHED, PRELOADED and ANNOUNCED
 * ones, the entries that know both (or, preloaded or announced, the
 * inbound) SPI and so route inbound traffic. A PENDING init lives 120 s and holds the peer's init
 * slot; after a restart the host's next outbound packet starts the init
 * again, while a restored slot could bind the first unknown inbound SPI
 * to a host that has given up. WAITING and SQUELCHED entries know no
 * inbound SPI either: they only throttle, and a restart is a fair reset.
 * (engine_restore_esp accepts exactly these two states for the same
 * reasons.) ISAKMP entries are all saved: they route IKE replies and pick
 * the hosts of a guess after a remote-started rekey.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* POSIX declarations under -std=c11 */
#endif

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "engine.h"
#include "state.h"

#define STATE_MAGIC "ipsec-masqd-state"
#define STATE_VERSION 2           /* the version written */
#define STATE_VERSION_MIN 1       /* the oldest version read */
#define STATE_LINE_MAX 1024
#define STATE_MAX_TOKENS 16
#define WALL_SEC_MAX 100000000000LL   /* year 5138: bounds the ms arithmetic */

/* ---- errors --------------------------------------------------------------- */

/* printf into err (when non-NULL). Returns -1, for `return fail(...)`. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* ---- clocks --------------------------------------------------------------- */

/* Both clocks at one instant: the engine's (ms) and the wall clock (ms). */
struct clocks {
	uint64_t mono;
	int64_t wall_ms;
};

/* Wall-clock ms of engine time t; never before the epoch. */
static int64_t to_wall(const struct clocks *c, uint64_t t)
{
	int64_t w = c->wall_ms + ((int64_t)t - (int64_t)c->mono);

	return w < 0 ? 0 : w;
}

/* Engine time of wall-clock ms w, clamped into [0, UINT64_MAX). */
static uint64_t to_mono(const struct clocks *c, int64_t w)
{
	int64_t d = w - c->wall_ms;

	if (d < 0 && (uint64_t)-d > c->mono)
		return 0;
	return d < 0 ? c->mono - (uint64_t)-d : c->mono + (uint64_t)d;
}

/*
 * An entry's (last_seen, expires) in engine time from its wall times, with
 * expires_w > now. The idle lifetime (expires - last_seen) is kept exact,
 * since the engine compares it with the configured lifetime to tell a
 * default life from a preload's own TTL. A last_seen the engine clock
 * cannot express (shortly after a reboot, CLOCK_MONOTONIC is small) or one
 * in the future (the wall clock stepped back) is moved to the nearest
 * expressible time, shifting expires with it. The daemon's engine clock
 * has STATE_CLOCK_HEADROOM_MS of headroom, so that the first case does not
 * happen there: clamping would give an entry with 10 s left a whole new
 * lifetime.
 */
static void to_engine_times(const struct clocks *c, int64_t last_w,
			    int64_t expires_w, uint64_t *last, uint64_t *expires)
{
	uint64_t life = expires_w > last_w ? (uint64_t)(expires_w - last_w) : 0;
	uint64_t exp = to_mono(c, expires_w);

	*last = exp >= life ? exp - life : 0;
	if (*last > c->mono)
		*last = c->mono;
	*expires = *last + life;
}

/* ---- save ------------------------------------------------------------------ */

struct save_ctx {
	FILE *f;
	struct clocks clk;
	bool failed;            /* a write failed; errno says why */
	int err;
	state_skip_fn skip;     /* ESP entries left out, or NULL */
	void *skip_ctx;
};

/* Write "sec.mmm" of wall ms w. */
static void put_wall(struct save_ctx *s, const char *key, int64_t w)
{
	if (fprintf(s->f, " %s=%" PRId64 ".%03d", key, w / 1000,
		    (int)(w % 1000)) < 0 && !s->failed) {
		s->failed = true;
		s->err = errno;
	}
}

/* Dotted quad of host-order a into buf (INET_ADDRSTRLEN). */
static const char *addr_str(char *buf, uint32_t a)
{
	snprintf(buf, INET_ADDRSTRLEN, "%u.%u.%u.%u", a >> 24,
		 (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
	return buf;
}

/* Record a failed write (the first errno wins). */
static void check_io(struct save_ctx *s, int rc)
{
	if (rc < 0 && !s->failed) {
		s->failed = true;
		s->err = errno;
	}
}

/* One ESP entry as a line, when it is one we keep (see the file comment). */
static void save_esp(void *ctx, const struct engine_esp_info *e)
{
	struct save_ctx *s = ctx;
	char r[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN];

	if (e->state != ESP_ESTABLISHED && e->state != ESP_PRELOADED &&
	    e->state != ESP_ANNOUNCED && e->state != ESP_PROVISIONAL)
		return;
	if (s->skip && s->skip(s->skip_ctx, e))
		return;
	/* a provisional association (not yet used both ways) is kept as
	 * established: the file's states stay the ones it always had */
	check_io(s, fprintf(s->f, "esp remote=%s host=%s spi_out=0x%08" PRIx32
			    " spi_in=0x%08" PRIx32 " state=%s",
			    addr_str(r, e->remote), addr_str(h, e->host),
			    e->spi_out, e->spi_in,
			    esp_state_name(e->state == ESP_PROVISIONAL ?
					   ESP_ESTABLISHED : e->state)));
	put_wall(s, "since_wall", to_wall(&s->clk, e->since));
	put_wall(s, "last_seen_wall", to_wall(&s->clk, e->last_seen));
	put_wall(s, "expires_wall", to_wall(&s->clk, e->expires));
	check_io(s, fprintf(s->f, " pkts_out=%" PRIu64 " pkts_in=%" PRIu64
			    " bytes_out=%" PRIu64 " bytes_in=%" PRIu64 "\n",
			    e->pkts_out, e->pkts_in, e->bytes_out,
			    e->bytes_in));
}

/* One ISAKMP entry as a line. */
static void save_isakmp(void *ctx, const struct engine_isakmp_info *e)
{
	struct save_ctx *s = ctx;
	char r[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN];

	check_io(s, fprintf(s->f, "isakmp remote=%s host=%s cookie_i=%016"
			    PRIx64 " cookie_r=%016" PRIx64 " answer=%d",
			    addr_str(r, e->remote), addr_str(h, e->host),
			    e->cookie_i, e->cookie_r, e->answer ? 1 : 0));
	put_wall(s, "last_seen_wall", to_wall(&s->clk, e->last_seen));
	put_wall(s, "expires_wall", to_wall(&s->clk, e->expires));
	check_io(s, fputs("\n", s->f) == EOF ? -1 : 0);
}

/* The directory part of path into buf ("." when none). Returns buf, or
 * NULL when it does not fit. */
static char *dir_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 1;

	if (n >= len)
		return NULL;
	if (!slash)
		memcpy(buf, ".", 2);
	else if (n == 0)
		memcpy(buf, "/", 2);
	else {
		memcpy(buf, path, n);
		buf[n] = '\0';
	}
	return buf;
}

/* fsync the directory holding path, so the rename itself is durable.
 * Returns 0 or -1 with errno. */
static int sync_dir(const char *path)
{
	char dir[4096];
	int fd, rc, saved;

	if (!dir_of(path, dir, sizeof(dir))) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* Write the header and every entry to f, flush and fsync it. Returns 0,
 * or -1 with errno. */
static int write_entries(FILE *f, const struct engine *eng,
			 const struct clocks *clk, state_skip_fn skip,
			 void *skip_ctx)
{
	struct save_ctx s = { .f = f, .clk = *clk, .skip = skip,
			      .skip_ctx = skip_ctx };

	check_io(&s, fprintf(f, "%s %d\n", STATE_MAGIC, STATE_VERSION));
	engine_walk_esp(eng, save_esp, &s);
	engine_walk_isakmp(eng, save_isakmp, &s);
	check_io(&s, fflush(f) == EOF ? -1 : 0);
	check_io(&s, fsync(fileno(f)));
	if (s.failed) {
		errno = s.err ? s.err : EIO;
		return -1;
	}
	return 0;
}

/* Save: temp file beside path, write, fflush, fsync, rename, fsync the
 * directory. Returns 0, or -1 with a message (the old file intact). */
int state_save_except(const char *path, const struct engine *eng,
		      uint64_t now_mono, int64_t now_wall_ms,
		      state_skip_fn skip, void *skip_ctx, char *err,
		      size_t errlen)
{
	struct clocks clk = { now_mono, now_wall_ms };
	char tmp[4096 + 16];
	FILE *f;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s" STATE_TEMP_INFIX "XXXXXX", path) >=
	    (int)sizeof(tmp))
		return fail(err, errlen, "%s: path too long", path);
	fd = mkstemp(tmp);     /* same directory: rename stays atomic */
	if (fd < 0)
		return fail(err, errlen, "%s: cannot create a temporary file: "
			    "%s", path, strerror(errno));
	if (fchmod(fd, 0600) < 0 || !(f = fdopen(fd, "w"))) {
		int e = errno;

		close(fd);
		unlink(tmp);
		return fail(err, errlen, "%s: %s", tmp, strerror(e));
	}
	if (write_entries(f, eng, &clk, skip, skip_ctx) < 0) {
		int e = errno;

		fclose(f);
		unlink(tmp);
		return fail(err, errlen, "%s: write failed: %s", tmp,
			    strerror(e));
	}
	if (fclose(f) == EOF || rename(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		return fail(err, errlen, "%s: cannot replace: %s", path,
			    strerror(e));
	}
	if (sync_dir(path) < 0)
		return fail(err, errlen, "%s: saved, but syncing its directory "
			    "failed: %s", path, strerror(errno));
	return 0;
}

/* Whether name is base + STATE_TEMP_INFIX + six letters or digits (what
 * state_save's mkstemp makes); nothing else beside the file is touched, an
 * admin's "state.backup" say. */
static bool is_temp_of(const char *name, const char *base)
{
	size_t n = strlen(base), k = strlen(STATE_TEMP_INFIX);

	if (strncmp(name, base, n) || strncmp(name + n, STATE_TEMP_INFIX, k) ||
	    strlen(name) != n + k + 6)
		return false;
	for (size_t i = n + k; i < n + k + 6; i++)
		if (!isalnum((unsigned char)name[i]))
			return false;
	return true;
}

int state_save(const char *path, const struct engine *eng, uint64_t now_mono,
	       int64_t now_wall_ms, char *err, size_t errlen)
{
	return state_save_except(path, eng, now_mono, now_wall_ms, NULL, NULL,
				 err, errlen);
}

int state_remove_stale_temps(const char *path, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	char dir[4096];
	struct dirent *de;
	struct stat st;
	int removed = 0;
	DIR *d;

	if (!dir_of(path, dir, sizeof(dir)))
		return fail(err, errlen, "%s: path too long", path);
	d = opendir(dir);
	if (d == NULL)
		return fail(err, errlen, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (!is_temp_of(de->d_name, base) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

/* ---- load: values ------------------------------------------------------------ */

/* Parsed entry line; `seen` has a bit per key (enum key). */
struct rec {
	uint32_t remote, host, spi_out, spi_in;
	enum esp_state state;
	uint64_t cookie_i, cookie_r;
	int64_t since_w, last_w, expires_w;
	uint64_t pkts_out, pkts_in, bytes_out, bytes_in;
	bool answer;
	unsigned seen;
};

enum val_type { V_ADDR, V_SPI, V_HEX64, V_U64, V_WALL, V_STATE, V_BOOL };

struct key_def {
	const char *name;
	enum val_type type;
	size_t off;              /* offset of the value in struct rec */
};

/* Dotted quad to host order. Returns 0, or -1 when s is not one. */
static int parse_addr(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

/* Unsigned number of base 10 or 16, digits only (no sign, no blanks) of at
 * most maxdig digits. Returns 0, or -1. */
static int parse_uint(const char *s, int base, size_t maxdig, uint64_t *out)
{
	const char *digits = base == 16 ? "0123456789abcdefABCDEF"
					: "0123456789";
	size_t n = strspn(s, digits);

	if (n == 0 || s[n] != '\0' || n > maxdig)
		return -1;
	errno = 0;
	*out = strtoull(s, NULL, base);
	return errno ? -1 : 0;
}

/* "0x" and 1..8 hex digits. Returns 0, or -1. */
static int parse_spi(const char *s, uint32_t *out)
{
	uint64_t v;

	if (strncmp(s, "0x", 2) || parse_uint(s + 2, 16, 8, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Unix seconds with an optional ".mmm" (exactly 3 digits) into ms. Returns
 * 0, or -1. */
static int parse_wall(const char *s, int64_t *out)
{
	char sec[24];
	const char *dot = strchr(s, '.');
	size_t n = dot ? (size_t)(dot - s) : strlen(s);
	uint64_t v, ms = 0;

	if (n >= sizeof(sec))
		return -1;
	memcpy(sec, s, n);
	sec[n] = '\0';
	if (parse_uint(sec, 10, 20, &v) || v > (uint64_t)WALL_SEC_MAX)
		return -1;
	if (dot && (strlen(dot + 1) != 3 || parse_uint(dot + 1, 10, 3, &ms)))
		return -1;
	*out = (int64_t)v * 1000 + (int64_t)ms;
	return 0;
}

/* An ESP state by its esp_state_name(). Returns 0, or -1. */
static int parse_state(const char *s, enum esp_state *out)
{
	for (int st = ESP_PENDING; st <= ESP_ANNOUNCED; st++) {
		if (!strcmp(s, esp_state_name((enum esp_state)st))) {
			*out = (enum esp_state)st;
			return 0;
		}
	}
	return -1;
}

/* "0" or "1". Returns 0, or -1. */
static int parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "0") && strcmp(s, "1"))
		return -1;
	*out = s[0] == '1';
	return 0;
}

/* Parse s as a value of type t into the field of r at off. Returns 0 or
 * -1. */
static int parse_value(enum val_type t, const char *s, struct rec *r,
		       size_t off)
{
	char *p = (char *)r + off;

	switch (t) {
	case V_ADDR:
		return parse_addr(s, (uint32_t *)(void *)p);
	case V_SPI:
		return parse_spi(s, (uint32_t *)(void *)p);
	case V_HEX64:
		return parse_uint(s, 16, 16, (uint64_t *)(void *)p);
	case V_U64:
		return parse_uint(s, 10, 20, (uint64_t *)(void *)p);
	case V_WALL:
		return parse_wall(s, (int64_t *)(void *)p);
	case V_STATE:
		return parse_state(s, (enum esp_state *)(void *)p);
	case V_BOOL:
		return parse_bool(s, (bool *)(void *)p);
	}
	return -1;
}

#define KEY(n, t, f) { n, t, offsetof(struct rec, f) }

static const struct key_def esp_keys[] = {
	KEY("remote", V_ADDR, remote), KEY("host", V_ADDR, host),
	KEY("spi_out", V_SPI, spi_out), KEY("spi_in", V_SPI, spi_in),
	KEY("state", V_STATE, state), KEY("since_wall", V_WALL, since_w),
	KEY("last_seen_wall", V_WALL, last_w),
	KEY("expires_wall", V_WALL, expires_w),
	KEY("pkts_out", V_U64, pkts_out), KEY("pkts_in", V_U64, pkts_in),
	KEY("bytes_out", V_U64, bytes_out), KEY("bytes_in", V_U64, bytes_in),
};

/* Version 2; version 1 has all but the last ("answer"). */
static const struct key_def isakmp_keys[] = {
	KEY("remote", V_ADDR, remote), KEY("host", V_ADDR, host),
	KEY("cookie_i", V_HEX64, cookie_i), KEY("cookie_r", V_HEX64, cookie_r),
	KEY("last_seen_wall", V_WALL, last_w),
	KEY("expires_wall", V_WALL, expires_w),
	KEY("answer", V_BOOL, answer),
};

/* ---- load: lines -------------------------------------------------------------- */

struct loader {
	const char *path;
	unsigned line;
	struct engine *eng;
	struct clocks clk;
	struct state_counts *counts;
	unsigned version;        /* of the file, from its header */
	char *err;
	size_t errlen;
};

/* "FILE:LINE: what" into the loader's err. Returns -1. */
static int line_fail(struct loader *ld, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int line_fail(struct loader *ld, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return fail(ld->err, ld->errlen, "%s:%u: %s", ld->path, ld->line,
		    what);
}

/* Parse the key=value tokens tok[0..n) against keys[0..nkeys) into r; every
 * key exactly once. Returns 0, or -1 with the line's error. */
static int parse_pairs(struct loader *ld, char **tok, size_t n,
		       const struct key_def *keys, size_t nkeys, struct rec *r)
{
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(tok[i], '=');
		size_t k;

		if (!eq)
			return line_fail(ld, "expected key=value, got '%.64s'",
					 tok[i]);
		*eq = '\0';
		for (k = 0; k < nkeys && strcmp(keys[k].name, tok[i]); k++)
			;
		if (k == nkeys)
			return line_fail(ld, "unknown key '%.64s'", tok[i]);
		if (r->seen & (1u << k))
			return line_fail(ld, "duplicate key '%s'", keys[k].name);
		if (parse_value(keys[k].type, eq + 1, r, keys[k].off))
			return line_fail(ld, "bad value for %s: '%.64s'",
					 keys[k].name, eq + 1);
		r->seen |= 1u << k;
	}
	for (size_t k = 0; k < nkeys; k++)
		if (!(r->seen & (1u << k)))
			return line_fail(ld, "missing key '%s'", keys[k].name);
	return 0;
}

/* Whether the entry's life had ended at load time (then it is dropped and
 * counted as expired). */
static bool rec_expired(const struct loader *ld, const struct rec *r)
{
	return r->expires_w <= ld->clk.wall_ms;
}

/* Restore one parsed ESP line into the engine, or count why not. */
static void restore_esp(struct loader *ld, const struct rec *r)
{
	struct engine_esp_info info = {
		.remote = r->remote, .host = r->host, .spi_out = r->spi_out,
		.spi_in = r->spi_in, .state = r->state,
		.pkts_out = r->pkts_out, .pkts_in = r->pkts_in,
		.bytes_out = r->bytes_out, .bytes_in = r->bytes_in,
	};

	if (rec_expired(ld, r)) {
		ld->counts->expired++;
		return;
	}
	to_engine_times(&ld->clk, r->last_w, r->expires_w, &info.last_seen,
			&info.expires);
	info.since = to_mono(&ld->clk, r->since_w);
	if (info.since > info.last_seen)
		info.since = info.last_seen;
	if (engine_restore_esp(ld->eng, &info) < 0)
		ld->counts->rejected++;
	else
		ld->counts->esp_restored++;
}

/* Restore one parsed ISAKMP line into the engine, or count why not. */
static void restore_isakmp(struct loader *ld, const struct rec *r)
{
	struct engine_isakmp_info info = {
		.remote = r->remote, .host = r->host,
		.cookie_i = r->cookie_i, .cookie_r = r->cookie_r,
		.answer = r->answer,
	};

	if (rec_expired(ld, r)) {
		ld->counts->expired++;
		return;
	}
	to_engine_times(&ld->clk, r->last_w, r->expires_w, &info.last_seen,
			&info.expires);
	if (engine_restore_isakmp(ld->eng, &info) < 0)
		ld->counts->rejected++;
	else
		ld->counts->isakmp_restored++;
}

/* Split line at blanks into tok (at most max). Returns the count, or -1
 * when there are more. */
static int tokenize(char *line, char **tok, size_t max)
{
	size_t n = 0;

	for (char *t = strtok(line, " \t\r\n"); t; t = strtok(NULL, " \t\r\n")) {
		if (n == max)
			return -1;
		tok[n++] = t;
	}
	return (int)n;
}

/* One entry line (not the header). Blank lines and '#' comments are
 * skipped. Returns 0, or -1 with the line's error. */
static int load_line(struct loader *ld, char *line)
{
	char *tok[STATE_MAX_TOKENS];
	struct rec r = { .state = ESP_ESTABLISHED };
	int n = tokenize(line, tok, STATE_MAX_TOKENS);

	if (n < 0)
		return line_fail(ld, "too many fields");
	if (n == 0 || tok[0][0] == '#')
		return 0;
	if (!strcmp(tok[0], "esp")) {
		if (parse_pairs(ld, tok + 1, (size_t)n - 1, esp_keys,
				sizeof(esp_keys) / sizeof(esp_keys[0]), &r))
			return -1;
		restore_esp(ld, &r);
		return 0;
	}
	if (!strcmp(tok[0], "isakmp")) {
		size_t nkeys = sizeof(isakmp_keys) / sizeof(isakmp_keys[0]);

		if (ld->version < 2)
			nkeys--;   /* no "answer" */
		if (parse_pairs(ld, tok + 1, (size_t)n - 1, isakmp_keys, nkeys,
				&r))
			return -1;
		restore_isakmp(ld, &r);
		return 0;
	}
	return line_fail(ld, "unknown entry type '%.32s'", tok[0]);
}

/* The first line: magic and a version we read. Returns 0, or -1. */
static int check_header(struct loader *ld, char *line)
{
	char *tok[3];
	uint64_t v;
	int n = tokenize(line, tok, 3);

	if (n < 1 || strcmp(tok[0], STATE_MAGIC))
		return line_fail(ld, "not an ipsec-masqd state file");
	if (n != 2 || parse_uint(tok[1], 10, 9, &v))
		return line_fail(ld, "bad state file header");
	if (v < STATE_VERSION_MIN || v > STATE_VERSION)
		return line_fail(ld, "unsupported state file version %" PRIu64
				 " (this ipsec-masqd reads versions %d to %d)",
				 v, STATE_VERSION_MIN, STATE_VERSION);
	ld->version = (unsigned)v;
	return 0;
}

/* Read one line of f into buf. Returns 1, 0 at the end, or -1 with the
 * error set (too long, read error). */
static int read_line(struct loader *ld, FILE *f, char *buf, size_t len)
{
	size_t n;

	if (!fgets(buf, (int)len, f))
		return ferror(f) ? fail(ld->err, ld->errlen, "%s: %s", ld->path,
					strerror(errno))
				 : 0;
	ld->line++;
	n = strlen(buf);
	if (n == len - 1 && buf[n - 1] != '\n' && !feof(f))
		return line_fail(ld, "line too long");
	return 1;
}

/* Read the whole file. Returns 0, or -1 with err. */
static int load_file(struct loader *ld, FILE *f)
{
	char buf[STATE_LINE_MAX];
	int rc = read_line(ld, f, buf, sizeof(buf));

	if (rc <= 0)
		return rc < 0 ? -1 : fail(ld->err, ld->errlen,
					  "%s: empty state file", ld->path);
	if (check_header(ld, buf))
		return -1;
	while ((rc = read_line(ld, f, buf, sizeof(buf))) > 0)
		if (load_line(ld, buf))
			return -1;
	return rc;
}

/* Load: header, then entry lines restored one by one. Returns 0 (also
 * for a missing file), or -1 with "FILE:LINE: what". */
int state_load(const char *path, struct engine *eng, uint64_t now_mono,
	       int64_t now_wall_ms, struct state_counts *counts, char *err,
	       size_t errlen)
{
	struct state_counts dummy;
	struct loader ld = {
		.path = path, .eng = eng,
		.clk = { now_mono, now_wall_ms },
		.counts = counts ? counts : &dummy, .err = err,
		.errlen = errlen,
	};
	FILE *f;
	int rc;

	memset(ld.counts, 0, sizeof(*ld.counts));
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : fail(err, errlen, "%s: %s", path,
						  strerror(errno));
	rc = load_file(&ld, f);
	fclose(f);
	return rc;
}
