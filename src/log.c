/*
 * Logging: one API, three backends (journald, stderr, syslog), and the
 * engine's decisions as structured journal records with a MESSAGE_ID per
 * kind. The logger is the process's one true singleton: its state is the
 * file-static `lg` below and nothing else.
 *
 * Every message is formatted into a fixed buffer; overlong text is cut and
 * ends in "..." (LOG_MSG_MAX). Per-packet decisions are rate-limited per
 * (kind, reason): a burst of LOG_RL_BURST, then LOG_RL_RATE a second; when
 * one gets through again, a line first says how many were suppressed.
 * Entries created, expired and removed are rate-limited too (issue 13: a
 * mass expiry or a flood of inits would otherwise write one line per entry
 * from the packet loop), with a larger budget (LOG_RL_LIFE_*), as one
 * normally wants to see each of them.
 *
 * Nothing here may block the packet loop (issue 13): the journal gets our
 * own records of its native protocol on a non-blocking datagram socket
 * (libsystemd's sd_journal_sendv() blocks while journald does not read),
 * stderr is written only when it takes the line at once. A line that would
 * block is dropped and counted (log_dropped()); the next line that gets out
 * is preceded by one saying how many were lost.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* POSIX declarations under -std=c11 */
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"   /* autoconf's: HAVE_SYSTEMD (src/ has no config.h) */
#endif

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"
#include "reason.h"

#define LOG_MSG_MAX LOG_LINE_MAX   /* MESSAGE text, with the key=value pairs */
#define LOG_FIELD_MAX 288     /* one value: GUESS_HOSTS of 16 addresses */
#define LOG_MAX_FIELDS 12
#define LOG_IDENT_MAX 64
#define LOG_RL_BURST 10       /* messages per (kind, reason) at once ... */
#define LOG_RL_RATE 1         /* ... then this many a second */
#define LOG_RL_LIFE_BURST 100 /* created/expired/removed: at once ... */
#define LOG_RL_LIFE_RATE 20   /* ... then this many a second */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define JOURNAL_REC_MAX (LOG_MSG_MAX + LOG_MAX_FIELDS * (LOG_FIELD_MAX + 48) \
			 + 512)   /* one native-protocol record */
#define STDERR_LINE_MAX (LOG_MSG_MAX + LOG_IDENT_MAX + 8)
#define RL_UNIT 1000          /* a token, in milli-tokens (one per ms) */

/* Not a kind of decision: the "N similar messages suppressed" record. */
#define LOG_SUPPRESSED_ID "2856239537884781bd8a759f764213e5"
/* Nor this: "N log lines dropped: the log would have blocked". */
#define LOG_DROPPED_ID "1eb2a76c61ca48cd92f7d73392fa0b2b"

/* Token bucket of one (kind, reason) pair. */
struct rl_slot {
	uint64_t last_ms;       /* monotonic ms of the last refill */
	uint64_t tokens;        /* milli-tokens */
	uint64_t suppressed;    /* dropped since the last message let through */
	bool used;
};

/* One structured field of an engine event: KEY, value. */
struct log_field {
	const char *key;
	char val[LOG_FIELD_MAX];
};

struct log_fields {
	struct log_field f[LOG_MAX_FIELDS];
	size_t n;
};

/* A bounded string: appends never overflow, a cut is remembered. */
struct sbuf {
	char *buf;
	size_t cap, len;
	bool cut;
};

static struct {
	char ident[LOG_IDENT_MAX];
	int level;                       /* highest priority value shown */
	enum log_backend backend;        /* resolved, never AUTO */
	bool prefix;                     /* stderr is no tty: "<N>" prefixes */
	struct rl_slot rl[EV_MAX][R_MAX + 1];
	int journal_fd;                  /* non-blocking datagram socket, or -1 */
	uint64_t dropped;                /* lines dropped, since the start */
	uint64_t unsaid;                 /* ... not yet reported in a line */
	char tail[STDERR_LINE_MAX];      /* rest of a line stderr (a stream
					  * socket) took only part of */
	size_t tail_len;
} lg = {
	.ident = "ipsec-masqd",
	.level = LOG_LEVEL_INFO,
	.backend = LOG_BACKEND_STDERR,
	.journal_fd = -1,
};

/* What a backend did with a line. */
enum sent { SENT_OK, SENT_WOULD_BLOCK, SENT_FAILED };

/* ---- bounded strings ------------------------------------------------------ */

/* An empty sbuf over buf[0..cap); cap must be at least 4. */
static void sb_init(struct sbuf *sb, char *buf, size_t cap)
{
	sb->buf = buf;
	sb->cap = cap;
	sb->len = 0;
	sb->cut = false;
	buf[0] = '\0';
}

/* Append printf-style; on overflow keep what fits and end in "...".
 * Returns nothing: a cut sbuf silently ignores further appends. */
static void sb_vappend(struct sbuf *sb, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void sb_vappend(struct sbuf *sb, const char *fmt, va_list ap)
{
	size_t room = sb->cap - sb->len;
	int n;

	if (sb->cut)
		return;
	n = vsnprintf(sb->buf + sb->len, room, fmt, ap);
	if (n < 0) {
		sb->buf[sb->len] = '\0';
		return;
	}
	if ((size_t)n < room) {
		sb->len += (size_t)n;
		return;
	}
	sb->cut = true;
	sb->len = sb->cap - 1;
	memcpy(sb->buf + sb->len - 3, "...", 4);
}

static void sb_append(struct sbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Append printf-style (see sb_vappend). */
static void sb_append(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vappend(sb, fmt, ap);
	va_end(ap);
}

/* Dotted quad of a host-order address into buf (16 bytes); returns buf. */
static char *fmt_addr(char *buf, size_t len, uint32_t a)
{
	snprintf(buf, len, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff,
		 (a >> 8) & 0xff, a & 0xff);
	return buf;
}

/* ---- backends --------------------------------------------------------------- */

/* Whether errno says a non-blocking send found no room. */
static bool would_block(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS;
}

/* Writes buf[0..len) to fd without blocking: a socket (journald's stream
 * under systemd) with MSG_DONTWAIT, anything else only when poll says it
 * takes a write now (a line is shorter than PIPE_BUF, so a pipe then takes
 * it whole). Returns the bytes written (perhaps fewer than len, for a
 * stream socket), or -1 with errno. */
static ssize_t write_nowait(int fd, const char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	ssize_t n;

	for (;;) {
		n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n >= 0 || errno != ENOTSOCK)
		return n;
	if (poll(&p, 1, 0) < 0)
		return -1;
	if (!(p.revents & (POLLOUT | POLLERR | POLLHUP))) {
		errno = EAGAIN;
		return -1;
	}
	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

/* The rest of a line stderr took in part, before anything else: a stream
 * must not get half a line followed by another. Returns true when nothing
 * is left over. */
static bool stderr_flush_tail(void)
{
	while (lg.tail_len > 0) {
		ssize_t n = write_nowait(STDERR_FILENO, lg.tail, lg.tail_len);

		if (n <= 0) {
			if (n < 0 && !would_block(errno))
				lg.tail_len = 0;   /* stderr is gone: forget it */
			return lg.tail_len == 0;
		}
		memmove(lg.tail, lg.tail + n, lg.tail_len - (size_t)n);
		lg.tail_len -= (size_t)n;
	}
	return true;
}

/* One line on stderr: "<N>msg" for journald/systemd when stderr is not a
 * terminal, "ident: msg" on a terminal. Newlines in msg become spaces so an
 * event stays one line. */
static enum sent stderr_line(int prio, const char *msg)
{
	char line[STDERR_LINE_MAX];
	struct sbuf sb;
	ssize_t n;

	if (!stderr_flush_tail())
		return SENT_WOULD_BLOCK;
	sb_init(&sb, line, sizeof(line) - 1);   /* room for the '\n' */
	if (lg.prefix)
		sb_append(&sb, "<%d>%s", prio & LOG_PRIMASK, msg);
	else
		sb_append(&sb, "%s: %s", lg.ident, msg);
	for (size_t i = 0; i < sb.len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[sb.len++] = '\n';
	n = write_nowait(STDERR_FILENO, line, sb.len);
	if (n < 0)
		return would_block(errno) ? SENT_WOULD_BLOCK : SENT_FAILED;
	if ((size_t)n < sb.len) {   /* the rest goes out first next time */
		lg.tail_len = sb.len - (size_t)n;
		memcpy(lg.tail, line + n, lg.tail_len);
	}
	return SENT_OK;
}

/* ---- the journal's native protocol ----------------------------------------- */

/* Appends "KEY=value\n" to rec, or, when the value holds a newline, the
 * protocol's binary form "KEY\n" <64-bit little-endian length> value "\n".
 * Returns false when rec is full. */
static bool jrec_field(char *rec, size_t cap, size_t *len, const char *key,
		       const char *val)
{
	size_t k = strlen(key), v = strlen(val);
	bool binary = memchr(val, '\n', v) != NULL;
	size_t need = k + 1 + (binary ? 8 : 0) + v + 1;
	char *p = rec + *len;

	if (need > cap - *len)
		return false;
	memcpy(p, key, k);
	p += k;
	if (binary) {
		*p++ = '\n';
		for (int i = 0; i < 8; i++)
			*p++ = (char)(((uint64_t)v >> (8 * i)) & 0xff);
	} else {
		*p++ = '=';
	}
	memcpy(p, val, v);
	p[v] = '\n';
	*len += need;
	return true;
}

/* The journal socket's path: $IPSEC_MASQD_JOURNAL_SOCKET (tests point it at
 * a socket of their own), else journald's. */
static const char *journal_path(void)
{
	const char *env = getenv("IPSEC_MASQD_JOURNAL_SOCKET");

	return env && *env ? env : JOURNAL_SOCKET;
}

/* Sends rec[0..len) to journald without waiting. */
static enum sent journal_datagram(const char *rec, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	ssize_t n;

	if (lg.journal_fd < 0) {
		lg.journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC |
				       SOCK_NONBLOCK, 0);
		if (lg.journal_fd < 0)
			return SENT_FAILED;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", journal_path());
	do
		n = sendto(lg.journal_fd, rec, len,
			   MSG_DONTWAIT | MSG_NOSIGNAL,
			   (const struct sockaddr *)&sa, sizeof(sa));
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return SENT_OK;
	return would_block(errno) ? SENT_WOULD_BLOCK : SENT_FAILED;
}

/* Sends msg and the fields as one journal record. */
static enum sent journal_send(const struct log_fields *fl, const char *msg,
			      int prio, const char *id)
{
	static char rec[JOURNAL_REC_MAX];   /* static: 6 KB off the stack */
	char num[24];
	size_t len = 0;
	bool ok;

	snprintf(num, sizeof(num), "%d", prio & LOG_PRIMASK);
	ok = jrec_field(rec, sizeof(rec), &len, "MESSAGE", msg) &&
	     jrec_field(rec, sizeof(rec), &len, "PRIORITY", num) &&
	     jrec_field(rec, sizeof(rec), &len, "SYSLOG_IDENTIFIER", lg.ident);
	if (ok && id)
		ok = jrec_field(rec, sizeof(rec), &len, "MESSAGE_ID", id);
	for (size_t i = 0; ok && fl && i < fl->n && i < LOG_MAX_FIELDS; i++)
		ok = jrec_field(rec, sizeof(rec), &len, fl->f[i].key,
				fl->f[i].val);
	if (!ok)
		return SENT_FAILED;   /* cannot happen: rec has room for all */
	return journal_datagram(rec, len);
}

/* One message through the current backend; journald failing (not there,
 * being restarted) falls back to a stderr line. */
static enum sent backend_send(int prio, const char *msg, const char *id,
			      const struct log_fields *fl)
{
	if (lg.backend == LOG_BACKEND_SYSLOG) {
		/* syslog(3) may block on /dev/log; the daemon never picks
		 * this backend (log_init is given AUTO) */
		syslog(prio, "%s", msg);
		return SENT_OK;
	}
	if (lg.backend == LOG_BACKEND_JOURNAL) {
		enum sent r = journal_send(fl, msg, prio, id);

		if (r != SENT_FAILED)
			return r;
	}
	return stderr_line(prio, msg);
}

/* Says how many lines were dropped, before the line that got through. */
static enum sent emit_dropped_note(int prio)
{
	struct log_fields fl = { .n = 1 };
	char buf[128];
	enum sent r;

	fl.f[0].key = "DROPPED";
	snprintf(fl.f[0].val, sizeof(fl.f[0].val), "%llu",
		 (unsigned long long)lg.unsaid);
	snprintf(buf, sizeof(buf), "%llu log lines dropped: the log would "
		 "have blocked the daemon DROPPED=%llu",
		 (unsigned long long)lg.unsaid, (unsigned long long)lg.unsaid);
	r = backend_send(prio, buf, LOG_DROPPED_ID, &fl);
	if (r == SENT_OK)
		lg.unsaid = 0;
	return r;
}

/* Emit one formatted message with optional MESSAGE_ID and fields. A line
 * the backend cannot take now is dropped and counted, never waited for. */
static void emit(int prio, const char *msg, const char *id,
		 const struct log_fields *fl)
{
	enum sent r = SENT_OK;

	if (lg.unsaid > 0)
		r = emit_dropped_note(LOG_WARNING);
	if (r == SENT_OK)
		r = backend_send(prio, msg, id, fl);
	if (r != SENT_OK) {
		lg.dropped++;
		lg.unsaid++;
	}
}

bool log_offer(const char *msg)
{
	enum sent r = SENT_OK;

	if (LOG_INFO > lg.level)
		return true;
	if (lg.unsaid > 0)
		r = emit_dropped_note(LOG_WARNING);
	if (r == SENT_OK)
		r = backend_send(LOG_INFO, msg, NULL, NULL);
	if (r == SENT_WOULD_BLOCK)
		return false;
	if (r != SENT_OK) {
		lg.dropped++;
		lg.unsaid++;
	}
	return true;
}

/* Lines dropped because the log would have blocked (or was gone). */
uint64_t log_dropped(void)
{
	return lg.dropped;
}

/* ---- set-up ------------------------------------------------------------------ */

#ifdef HAVE_SYSTEMD
/* Whether JOURNAL_STREAM ("dev:ino") names the file stderr is: systemd sets
 * it when stderr is connected to the journal. Returns true or false. */
static bool stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (!env || !*env)
		return false;
	errno = 0;
	dev = strtoull(env, &end, 10);
	if (errno || end == env || *end != ':')
		return false;
	env = end + 1;
	ino = strtoull(env, &end, 10);
	if (errno || end == env || *end != '\0')
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

/* Whether journald's socket exists. libsystemd silently discards records
 * when it does not, so asking for the journal without one would lose every
 * message: we log to stderr instead. Returns true or false. */
static bool journal_running(void)
{
	struct stat st;

	return stat(journal_path(), &st) == 0 && S_ISSOCK(st.st_mode);
}
#endif

/* The backend to use for a requested one: AUTO resolved, the journal only
 * when built with libsystemd. Returns a concrete backend. */
static enum log_backend resolve_backend(enum log_backend want)
{
#ifdef HAVE_SYSTEMD
	if (want == LOG_BACKEND_AUTO)
		return stderr_is_journal() ? LOG_BACKEND_JOURNAL
					   : LOG_BACKEND_STDERR;
	if (want == LOG_BACKEND_JOURNAL && !journal_running())
		return LOG_BACKEND_STDERR;
	return want;
#else
	if (want == LOG_BACKEND_SYSLOG)
		return want;
	return LOG_BACKEND_STDERR;
#endif
}

/* (Re)start the logger: resolves the backend, resets the rate limiter;
 * errno is preserved. */
void log_init(const char *ident, enum log_level level,
	      enum log_backend backend)
{
	int saved = errno;

	if (lg.backend == LOG_BACKEND_SYSLOG)
		closelog();
	snprintf(lg.ident, sizeof(lg.ident), "%s",
		 ident && *ident ? ident : "ipsec-masqd");
	lg.level = level;
	lg.backend = resolve_backend(backend);
	lg.prefix = !isatty(STDERR_FILENO);
	memset(lg.rl, 0, sizeof(lg.rl));
	if (lg.journal_fd >= 0 && lg.backend != LOG_BACKEND_JOURNAL) {
		close(lg.journal_fd);
		lg.journal_fd = -1;
	}
	if (lg.backend == LOG_BACKEND_SYSLOG)
		openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	errno = saved;
}

/* Change the level at run time (reload, -v). */
void log_set_level(enum log_level level)
{
	lg.level = level;
}

/* The backend in use, AUTO resolved (for the daemon's start-up line and
 * tests). */
enum log_backend log_get_backend(void)
{
	return lg.backend;
}

/* ---- plain messages ------------------------------------------------------------ */

/* Format and emit at prio, with ": strerror(err)" when err is non-zero.
 * Does nothing when prio is below the level; errno is preserved. */
static void log_vmsg(int prio, int err, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void log_vmsg(int prio, int err, const char *fmt, va_list ap)
{
	char buf[LOG_MSG_MAX];
	struct sbuf sb;
	int saved = errno;

	if ((prio & LOG_PRIMASK) > lg.level)
		return;
	sb_init(&sb, buf, sizeof(buf));
	sb_vappend(&sb, fmt, ap);
	if (err)
		sb_append(&sb, ": %s", strerror(err));
	emit(prio, buf, NULL, NULL);
	errno = saved;
}

/* A message at an explicit syslog priority. */
void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(prio, 0, fmt, ap);
	va_end(ap);
}

/* A warning with ": strerror(errno)" appended; errno is preserved. */
void log_warn(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_WARNING, err, fmt, ap);
	va_end(ap);
	errno = err;
}

/* A warning without errno. */
void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_WARNING, 0, fmt, ap);
	va_end(ap);
}

/* An informational message. */
void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_INFO, 0, fmt, ap);
	va_end(ap);
}

/* A debug message (shown with -v). */
void log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_DEBUG, 0, fmt, ap);
	va_end(ap);
}

/* ---- engine decisions ---------------------------------------------------------- */

/* The MESSAGE_ID of a kind of decision, NULL for an unknown kind. */
const char *log_message_id(enum engine_event_kind kind)
{
	/* Made once each with `systemd-id128 new`; never change them:
	 * journalctl MESSAGE_ID= queries and the man page depend on them. */
	static const char *const ids[EV_MAX] = {
		[EV_CREATED] = "e4e3a2a0ce374d4ab8f6354c5f737923",
		[EV_ASSOCIATED] = "891497bc5a9249bc8c5db429451f5bd6",
		[EV_BLOCKED] = "fd8b982df41d42959ddb0992e46de73e",
		[EV_SERIALIZED] = "ba55ae6196f24649bfae317b28661e2f",
		[EV_SQUELCHED] = "b3a3bdc0f8bf4f47aea276c42d15122a",
		[EV_GUESSED] = "8d8d57dda20d4c498986660d596f2498",
		[EV_EXPIRED] = "35775ff3d599475fa177ca2dc34a8370",
		[EV_INIT_TIMEOUT] = "61c00e900a4846b5a49f12c4535ff714",
		[EV_REFUSED] = "05e72b3fc09f4867a02dbcf2a0bb6015",
		[EV_COLLIDED] = "fc7d9286d2e84556a4c1c370a81c490e",
		[EV_PRELOADED] = "4f09177e66874286aabd70a9bcc866a5",
		[EV_REMOVED] = "6b88a1d7f41442aa96b2b7e42c1f9602",
		[EV_DROPPED] = "33f27e0fb9824b2092e988b9b6ba8e96",
		[EV_LEARNT] = "cbb44a4ec8844704a1517ba56c4843ef",
		[EV_REASSOCIATED] = "e34f4e3e6d2245cca20f728fcce2f27b",
	};

	return (unsigned)kind < EV_MAX ? ids[kind] : NULL;
}

/*
 * The syslog priority of a decision. Normal life of an association is
 * info; `associated` is notice because it is the one decision that routes
 * a peer's inbound traffic to a LAN host, the line an admin looks for when
 * a tunnel goes to the wrong host. Refusals that cost availability are
 * notice, full tables and dropped packets (malformed input, AH) warning.
 */
static int event_priority(enum engine_event_kind kind)
{
	switch (kind) {
	case EV_ASSOCIATED:
	case EV_REASSOCIATED:
	case EV_BLOCKED:
	case EV_SERIALIZED:
	case EV_SQUELCHED:
	case EV_COLLIDED:
	case EV_GUESSED:
		return LOG_NOTICE;
	case EV_REFUSED:
	case EV_DROPPED:
		return LOG_WARNING;
	default:
		return LOG_INFO;
	}
}

/* Whether a kind happens per packet (and so can flood the log). */
static bool event_per_packet(enum engine_event_kind kind)
{
	return kind == EV_BLOCKED || kind == EV_SERIALIZED ||
	       kind == EV_DROPPED || kind == EV_REFUSED ||
	       kind == EV_COLLIDED || kind == EV_GUESSED ||
	       kind == EV_REASSOCIATED;
}

/* The monotonic clock in ms (the logger is an I/O edge: it may read it). */
static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether a kind is an entry's creation or end (rate-limited with the
 * larger budget). */
static bool event_lifecycle(enum engine_event_kind kind)
{
	return kind == EV_CREATED || kind == EV_EXPIRED || kind == EV_REMOVED;
}

/* Take a token from slot s at now, for a bucket of `burst` tokens filled
 * at `rate` a second. Returns true when the message may go out; false
 * counts it as suppressed. */
static bool rl_take(struct rl_slot *s, uint64_t now, unsigned burst,
		    unsigned rate)
{
	const uint64_t cap = (uint64_t)burst * RL_UNIT;

	if (!s->used) {
		s->used = true;
		s->tokens = cap;
	} else if (now > s->last_ms) {
		uint64_t add = (now - s->last_ms) * rate;

		s->tokens = s->tokens + add > cap ? cap : s->tokens + add;
	}
	s->last_ms = now;
	if (s->tokens < RL_UNIT) {
		s->suppressed++;
		return false;
	}
	s->tokens -= RL_UNIT;
	return true;
}

/* Add KEY=printf(...) to fl; extra fields beyond LOG_MAX_FIELDS are lost
 * (there are fewer keys than that). */
static void field_add(struct log_fields *fl, const char *key,
		      const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void field_add(struct log_fields *fl, const char *key,
		      const char *fmt, ...)
{
	struct sbuf sb;
	va_list ap;

	if (fl->n >= LOG_MAX_FIELDS)
		return;
	fl->f[fl->n].key = key;
	sb_init(&sb, fl->f[fl->n].val, sizeof(fl->f[fl->n].val));
	va_start(ap, fmt);
	sb_vappend(&sb, fmt, ap);
	va_end(ap);
	fl->n++;
}

/* The table name of an event, or NULL when none applies. */
static const char *table_name(enum engine_table t)
{
	return t == TABLE_ESP ? "esp" : t == TABLE_ISAKMP ? "isakmp" : NULL;
}

/* "a,b,c" of the event's host list into fl as key. */
static void field_hosts(struct log_fields *fl, const char *key,
			const struct engine_event *ev)
{
	char buf[LOG_FIELD_MAX], a[16];
	struct sbuf sb;

	sb_init(&sb, buf, sizeof(buf));
	for (unsigned i = 0; i < ev->n_hosts; i++)
		sb_append(&sb, "%s%s", i ? "," : "",
			  fmt_addr(a, sizeof(a), ev->hosts[i]));
	field_add(fl, key, "%s", buf);
}

/* The structured fields that apply to ev, in a fixed order: no address
 * that is 0, no SPI that is 0, no cookie outside ISAKMP, no reason R_PASS.
 * The hosts list is GUESS_HOSTS for a guess and HOLDER_ADDR (the LAN host
 * that holds the peer) for a refusal. */
static void event_fields(const struct engine_event *ev, struct log_fields *fl)
{
	const char *table = table_name(ev->table);
	char a[16];

	fl->n = 0;
	field_add(fl, "DECISION", "%s", engine_event_name(ev->kind));
	if (table)
		field_add(fl, "TABLE", "%s", table);
	if (ev->remote)
		field_add(fl, "PEER_ADDR", "%s",
			  fmt_addr(a, sizeof(a), ev->remote));
	if (ev->host)
		field_add(fl, "LAN_ADDR", "%s", fmt_addr(a, sizeof(a), ev->host));
	if (ev->table != TABLE_ISAKMP && ev->spi_out)
		field_add(fl, "ESP_SPI_OUT", "0x%08x", (unsigned)ev->spi_out);
	if (ev->table != TABLE_ISAKMP && ev->spi_in)
		field_add(fl, "ESP_SPI_IN", "0x%08x", (unsigned)ev->spi_in);
	if (ev->table == TABLE_ISAKMP && ev->cookie_i)
		field_add(fl, "IKE_SPI_I", "%016llx",
			  (unsigned long long)ev->cookie_i);
	if (ev->table == TABLE_ISAKMP && ev->cookie_r)
		field_add(fl, "IKE_SPI_R", "%016llx",
			  (unsigned long long)ev->cookie_r);
	if (ev->reason != R_PASS)
		field_add(fl, "REASON", "%s", reason_name(ev->reason));
	if (ev->hosts && ev->n_hosts)
		field_hosts(fl, ev->kind == EV_GUESSED ? "GUESS_HOSTS"
						       : "HOLDER_ADDR", ev);
}

/* What an ESP decision means, as the start of a sentence. */
static const char *esp_sentence(enum engine_event_kind kind)
{
	static const char *const s[EV_MAX] = {
		[EV_CREATED] = "ESP init from {host} to {peer} started, waiting for the inbound SPI",
		[EV_ASSOCIATED] = "ESP init with {peer} associated: inbound SPI bound to {host}",
		[EV_BLOCKED] = "ESP from {host} to {peer} blocked: another LAN host has a session with that peer",
		[EV_SERIALIZED] = "ESP init from {host} to {peer} temporarily blocked: another init with that peer is pending",
		[EV_SQUELCHED] = "ESP init from {host} to {peer} squelched: it had its turn without an answer while others waited, it waits its turn again",
		[EV_GUESSED] = "inbound ESP with an unknown SPI from {peer} copied to the LAN hosts that last rekeyed with it",
		[EV_EXPIRED] = "ESP entry of {host} with {peer} expired after its idle lifetime",
		[EV_INIT_TIMEOUT] = "ESP init from {host} to {peer} got no inbound SPI in time",
		[EV_REFUSED] = "ESP entry of {host} with {peer} refused: limits reached",
				[EV_PRELOADED] = "ESP mapping preloaded: inbound SPI from {peer} goes to {host}",
		[EV_REMOVED] = "ESP entry of {host} with {peer} removed",
		[EV_LEARNT] = "ESP mapping preloaded for {host} with {peer} learnt its outbound SPI",
		[EV_REASSOCIATED] = "ESP association of {host} with {peer} moved to another inbound SPI: the one it was bound to stayed silent while this one kept arriving",
	};

	return (unsigned)kind < EV_MAX ? s[kind] : NULL;
}

/* What an ISAKMP decision means, as the start of a sentence. */
static const char *isakmp_sentence(enum engine_event_kind kind)
{
	static const char *const s[EV_MAX] = {
		[EV_CREATED] = "ISAKMP exchange from {host} to {peer} created",
		[EV_GUESSED] = "ISAKMP exchange started by {peer} sent to {host}, the LAN host most likely to own it (holding ESP with it or the last to talk ISAKMP to it)",
		[EV_EXPIRED] = "ISAKMP entry of {host} with {peer} expired after its idle lifetime",
		[EV_REFUSED] = "ISAKMP exchange from {host} to {peer} refused: limits reached",
		[EV_COLLIDED] = "ISAKMP exchange from {host} to {peer} discarded: its initiator cookie is outstanding for another host",
		[EV_REMOVED] = "ISAKMP entry of {host} with {peer} removed",
	};

	return (unsigned)kind < EV_MAX ? s[kind] : NULL;
}

/* Append template t to sb with "{peer}" and "{host}" replaced by peer and
 * host. Templates are ours, not printf formats: nothing in them is
 * interpreted but those two words. */
static void sb_expand(struct sbuf *sb, const char *t, const char *peer,
		      const char *host)
{
	while (*t) {
		size_t n = strcspn(t, "{");

		sb_append(sb, "%.*s", (int)n, t);
		t += n;
		if (!strncmp(t, "{peer}", 6)) {
			sb_append(sb, "%s", peer);
			t += 6;
		} else if (!strncmp(t, "{host}", 6)) {
			sb_append(sb, "%s", host);
			t += 6;
		} else if (*t) {
			sb_append(sb, "{");
			t++;
		}
	}
}

/* The sentence of a drop: outbound ones know the LAN host, inbound ones
 * only the peer (and malformed ones perhaps not even that). */
static void drop_sentence(const struct engine_event *ev, struct sbuf *sb,
			  const char *peer, const char *host)
{
	int ah = ev->reason == R_AH_OUTBOUND;
	const char *what = ah ? "AH packet" :
			   ev->table == TABLE_ESP ? "ESP packet" :
			   ev->table == TABLE_ISAKMP ? "ISAKMP packet" : "packet";

	if (ev->host)
		sb_append(sb, "%s from %s to %s dropped", what, host, peer);
	else if (ev->remote)
		sb_append(sb, "%s from %s dropped", what, peer);
	else
		sb_append(sb, "%s dropped", what);
	if (ah)
		sb_append(sb, ": AH cannot be masqueraded");
}

/* The readable sentence of ev (without the key=value pairs) into sb. */
static void event_sentence(const struct engine_event *ev, struct sbuf *sb)
{
	const char *t = ev->table == TABLE_ISAKMP ? isakmp_sentence(ev->kind)
						  : esp_sentence(ev->kind);
	char r[16], h[16];

	if (ev->remote)
		fmt_addr(r, sizeof(r), ev->remote);
	else
		snprintf(r, sizeof(r), "unknown peer");
	if (ev->host)
		fmt_addr(h, sizeof(h), ev->host);
	else
		snprintf(h, sizeof(h), "unknown host");
	if (ev->kind == EV_DROPPED)
		drop_sentence(ev, sb, r, h);
	else if (t)
		sb_expand(sb, t, r, h);
	else
		sb_append(sb, "%s decision", engine_event_name(ev->kind));
	if (ev->reason != R_PASS)
		sb_append(sb, " (%s)", reason_name(ev->reason));
}

/* The MESSAGE text of ev: the sentence, then " KEY=value" for each field. */
static void event_text(const struct engine_event *ev,
		       const struct log_fields *fl, char *buf, size_t len)
{
	struct sbuf sb;

	sb_init(&sb, buf, len);
	event_sentence(ev, &sb);
	for (size_t i = 0; i < fl->n; i++)
		sb_append(&sb, " %s=%s", fl->f[i].key, fl->f[i].val);
}

/* Say that n messages of ev's kind and reason were suppressed, at prio. */
static void emit_suppressed(const struct engine_event *ev, int prio,
			    uint64_t n)
{
	struct log_fields fl = { .n = 0 };
	char buf[LOG_MSG_MAX];
	struct sbuf sb;

	field_add(&fl, "DECISION", "%s", engine_event_name(ev->kind));
	if (event_lifecycle(ev->kind))
		field_add(&fl, "TABLE", "%s", table_name(ev->table));
	else
		field_add(&fl, "REASON", "%s", reason_name(ev->reason));
	field_add(&fl, "SUPPRESSED", "%llu", (unsigned long long)n);
	sb_init(&sb, buf, sizeof(buf));
	sb_append(&sb, "%llu similar messages suppressed", (unsigned long long)n);
	for (size_t i = 0; i < fl.n; i++)
		sb_append(&sb, " %s=%s", fl.f[i].key, fl.f[i].val);
	emit(prio, buf, LOG_SUPPRESSED_ID, &fl);
}

/* Whether ev may be logged now under the rate limit; when it may and some
 * of its kind were suppressed before, says so first. */
static bool event_allowed(const struct engine_event *ev, int prio)
{
	unsigned r = (unsigned)ev->reason <= R_MAX ? (unsigned)ev->reason
						   : R_MAX;
	bool life = event_lifecycle(ev->kind);
	struct rl_slot *s;

	if (!event_per_packet(ev->kind) && !life)
		return true;
	if (life)   /* one bucket per table: ESP and ISAKMP apart */
		r = ev->table == TABLE_ESP ? 0 : 1;
	s = &lg.rl[ev->kind][r];
	if (!rl_take(s, mono_ms(), life ? LOG_RL_LIFE_BURST : LOG_RL_BURST,
		     life ? LOG_RL_LIFE_RATE : LOG_RL_RATE))
		return false;
	if (s->suppressed) {
		emit_suppressed(ev, prio, s->suppressed);
		s->suppressed = 0;
	}
	return true;
}

/* The engine's log callback: one record per decision, filtered by level
 * and rate limit; errno is preserved. */
void log_engine_event(void *ctx, const struct engine_event *ev)
{
	struct log_fields fl;
	char buf[LOG_MSG_MAX];
	int prio, saved = errno;

	(void)ctx;
	if ((unsigned)ev->kind >= EV_MAX)
		return;
	prio = event_priority(ev->kind);
	if (prio > lg.level || !event_allowed(ev, prio))
		return;
	event_fields(ev, &fl);
	event_text(ev, &fl, buf, sizeof(buf));
	emit(prio, buf, log_message_id(ev->kind), &fl);
	errno = saved;
}

/* ---- the daemon's own events ---------------------------------------------------- */

/* A message with a MESSAGE_ID and fields: the daemon's own events. */
void log_msg_id(int prio, const char *id, const struct log_kv *kv, size_t n,
		const char *fmt, ...)
{
	char buf[LOG_MSG_MAX];
	struct log_fields fl = { .n = 0 };
	struct sbuf sb;
	va_list ap;
	int saved = errno;

	if ((prio & LOG_PRIMASK) > lg.level)
		return;
	sb_init(&sb, buf, sizeof(buf));
	va_start(ap, fmt);
	sb_vappend(&sb, fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < n; i++)
		field_add(&fl, kv[i].key, "%s", kv[i].val);
	emit(prio, buf, id, &fl);
	errno = saved;
}
