/*
 * One logging API, three backends: journald (structured fields, one
 * MESSAGE_ID per kind of decision) when stderr is the journal's stream,
 * stderr lines with <N> priority prefixes otherwise, syslog(3) on request.
 * The logger is a true process-wide singleton, so its state is file-static.
 */
#ifndef IPSEC_MASQD_LOG_H
#define IPSEC_MASQD_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "conffile.h"
#include "engine.h"

enum log_backend {
	LOG_BACKEND_AUTO = -1,    /* journal if JOURNAL_STREAM matches stderr */
	LOG_BACKEND_STDERR = 0,
	LOG_BACKEND_JOURNAL,
	LOG_BACKEND_SYSLOG,
};

/* Start logging as `ident` at `level` through `backend`. */
void log_init(const char *ident, enum log_level level,
	      enum log_backend backend);
void log_set_level(enum log_level level);
enum log_backend log_get_backend(void);

/* Lines dropped since the start because writing them would have blocked
 * the caller (journald or stderr not reading) or the log was gone; the next
 * line that gets out is preceded by one saying how many. */
uint64_t log_dropped(void);

/* Longest message text a line carries (longer ones are cut with "..."). */
#define LOG_LINE_MAX 1024

/* One INFO line that may wait rather than be dropped: true when it went
 * out (or the log is gone for good, counted as dropped), false when the
 * log would block now; then nothing is counted and the caller offers the
 * same line again later. A line below the level counts as out. For bulk
 * output an admin asked for (the SIGUSR1 dump): it goes at the pace the
 * log takes it instead of overrunning it. */
bool log_offer(const char *msg);

/* printf-style, at syslog priority prio. log_warn appends ": strerror(errno)". */
void log_msg(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * An engine decision, as an engine_log_fn (ctx unused, may be NULL): journal
 * fields DECISION=, PEER_ADDR=, LAN_ADDR=, ESP_SPI_OUT=, ESP_SPI_IN=,
 * IKE_SPI_I=, IKE_SPI_R=, REASON=, GUESS_HOSTS=, the MESSAGE_ID of its kind,
 * and the same key=value pairs at the end of the MESSAGE text. Per-packet
 * kinds (blocked, serialized, dropped, refused, collided, guessed) are
 * rate-limited per kind and reason with a count of what was suppressed.
 */
void log_engine_event(void *ctx, const struct engine_event *ev);

/* The MESSAGE_ID (32 hex digits) for a decision kind, for docs and tests. */
const char *log_message_id(enum engine_event_kind kind);

/*
 * MESSAGE_IDs of the daemon's own events, outside the engine's decisions.
 * Made once each with `systemd-id128 new`; never change them. The journal
 * catalog (systemd/ipsec-masqd.catalog) explains every MESSAGE_ID.
 */
#define LOG_ID_CONFIG_INVALID "206945a87a684077854fac56301eac39"  /* at start: exit 78 */
#define LOG_ID_START_FAILED   "15f6287d58414269b72f69cd150f1d01"  /* set-up failed: exit 1 */
#define LOG_ID_RELOAD_FAILED  "5e63c13dc8b44b1498c1ddcf630b2be4"  /* old config kept */
#define LOG_ID_ADDR_CHANGED   "f7a0c4e052da41e3bda698fe623cd31d"  /* external address */
#define LOG_ID_ADDR_LOST      "1e09a5393cbe49cf968f165620108b17"  /* interface has none */

struct log_kv {
	const char *key, *val;
};

/* printf-style at syslog priority prio, with MESSAGE_ID id and the n
 * journal fields kv (KEY=value pairs; outside the journal only the text). */
void log_msg_id(int prio, const char *id, const struct log_kv *kv, size_t n,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
