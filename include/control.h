/*
 * The control socket, daemon side: a non-blocking Unix stream socket in the
 * daemon's epoll loop. Each connection sends one request line (at most
 * CTL_MAX_REQUEST bytes), gets one response (at most CTL_MAX_RESPONSE
 * bytes, written without blocking) and is closed. At most
 * CONTROL_MAX_CLIENTS at once; a client that does not send its request or
 * read its response in time is dropped, so no client can stall the queue.
 */
#ifndef IPSEC_MASQD_CONTROL_H
#define IPSEC_MASQD_CONTROL_H

#include <stdint.h>
#include <sys/types.h>

#include "ctlproto.h"

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_TIMEOUT_MS 5000      /* request, and each write's progress */

/* Called per request to fill in what the request may see and do. */
typedef void (*control_env_fn)(void *ctx, struct ctl_env *env);

struct control_stats {
	uint64_t accepted;      /* connections taken */
	uint64_t refused;       /* closed at once: CONTROL_MAX_CLIENTS busy */
	uint64_t requests;      /* requests answered */
	uint64_t bad_requests;  /* protocol errors, over-long lines */
	uint64_t timeouts;      /* clients dropped for being slow */
	uint64_t errors;        /* accept/read/write failures */
};

struct control;

/*
 * Creates the socket at path (its directory too, if missing, mode 0755),
 * replacing a stale socket but not a live one (EADDRINUSE), with mode
 * `mode` and owner/group `owner`/`group` (names or numbers; "" keeps the
 * daemon's), and adds it to epfd under tag_listen; client i gets tag
 * tag_client0 + i. Returns the handle, or NULL with errno (logged).
 */
struct control *control_open(const char *path, unsigned mode,
			     const char *owner, const char *group, int epfd,
			     uint32_t tag_listen, uint32_t tag_client0,
			     control_env_fn env_fn, void *env_ctx);

/* The listening socket is readable: accept what waits. */
void control_on_listen(struct control *c, uint64_t now);

/* Client slot `slot` has events (EPOLLIN/OUT/HUP/ERR). */
void control_on_client(struct control *c, unsigned slot, uint32_t events,
		       uint64_t now);

/* The next deadline of a client (ms), UINT64_MAX if none. */
uint64_t control_next_deadline(const struct control *c);

/* Drops the clients whose deadline has passed. */
void control_run_timers(struct control *c, uint64_t now);

const struct control_stats *control_get_stats(const struct control *c);

/* Closes the clients and the socket and removes its path. Safe with NULL. */
void control_close(struct control *c);

#endif
