/*
 * The control socket, daemon side: a non-blocking Unix stream socket in the
 * daemon's epoll loop. Each connection sends one request line (at most
 * CTL_MAX_REQUEST bytes), gets one response (at most CTL_MAX_RESPONSE
 * bytes, written without blocking) and is closed. At most
 * CONTROL_MAX_CLIENTS at once; a client that does not send its request or
 * read its whole response in time is dropped, so no client can stall the
 * queue or keep a slot.
 */
#ifndef IPSEC_MASQD_CONTROL_H
#define IPSEC_MASQD_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctlproto.h"

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_TIMEOUT_MS 5000      /* the request line */
/* The whole answer, from the request on; partial reads do not extend it,
 * so slow readers cannot hold the CONTROL_MAX_CLIENTS slots for ever. A
 * show of a million entries reaches a reader that keeps up in a few
 * seconds. */
#define CONTROL_ANSWER_MS 30000

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
 * tag_client0 + i. chown is called only when the owner or group changes.
 * Returns the handle, or NULL with errno (logged); *config_error (when
 * not NULL) is then true when owner/group was the cause (unknown, or the
 * chown refused), so that the daemon exits with 78 instead of being
 * restarted over and over.
 */
struct control *control_open(const char *path, unsigned mode,
			     const char *owner, const char *group, int epfd,
			     uint32_t tag_listen, uint32_t tag_client0,
			     control_env_fn env_fn, void *env_ctx,
			     bool *config_error);

/*
 * What can be told before binding (ipsec-masqd -t, and start-up): owner
 * and group exist, and the socket can be given to them: another owner
 * needs cap_chown; a group that is not one of the process's needs
 * cap_chown; any change needs chown_allowed (no system call filter
 * refusing chown). Returns 0, or -1 with a message naming the key.
 */
int control_check_ids(const char *owner, const char *group, bool cap_chown,
		      bool chown_allowed, char *err, size_t errlen);

/* Whether chown(2) gets past any system call filter (an fchown of a pipe
 * that changes nothing: EPERM means the filter refused it). */
bool control_chown_allowed(void);

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

/* Finishes at once the work answers have under way (a flush in slices),
 * before the state is saved at a stop. Safe with NULL. */
void control_finish_work(struct control *c);

/* Closes the clients and the socket and removes its path. Safe with NULL. */
void control_close(struct control *c);

#endif
