/*
 * The daemon's context and its single-threaded epoll loop: NFQUEUE socket,
 * signalfd (HUP reload, TERM/INT stop, USR1 dump), timerfd for the engine's
 * timers and the watchdog, rtnetlink address watch, raw copy socket.
 * Everything lives in struct masqd, passed explicitly.
 */
#ifndef IPSEC_MASQD_DAEMON_H
#define IPSEC_MASQD_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conffile.h"
#include "dump.h"
#include "engine.h"
#include "privilege.h"
#include "rawsock.h"

struct nfqueue;
struct netwatch;
struct fastpath;
struct control;
struct announce_sock;

struct masqd_stats {
	uint64_t bad_hook;        /* packet from a hook our rules do not use */
	uint64_t reloads;         /* SIGHUP reloads applied */
	uint64_t reload_errors;   /* SIGHUP reloads refused */
	uint64_t queue_errors;    /* nfqueue_receive() failures */
	uint64_t watch_errors;    /* netwatch_receive() failures */
	uint64_t timer_turns_cut; /* timer turns that hit the work budget */
};

/* A mass expiry in progress (over several loop turns): for its summary. */
struct masqd_expiry {
	uint64_t esp, isakmp;     /* entries gone so far */
	unsigned turns;           /* loop turns it took so far */
};

struct masqd {
	struct masqd_config *cfg;     /* owned; swapped whole on reload */
	bool force_debug;             /* -v: ignore log.level */
	struct engine *eng;
	struct nfqueue *nfq;
	struct netwatch *nw;
	struct control *ctl;          /* control socket; NULL if not open */
	struct fastpath *fp;          /* kernel fast path; NULL when off */
	uint32_t fp_ext;              /* external address in its rules */
	uint64_t next_fp_poll;        /* ms; UINT64_MAX when off */
	struct announce_sock *ann;    /* LAN announcements; NULL when off */
	struct rawsock raw;
	int epfd, sigfd, timerfd;
	bool running;
	uint64_t now;                 /* ms, engine clock (CLOCK_MONOTONIC plus
				       * headroom, state.h), per wakeup */
	uint64_t armed;               /* timerfd deadline set, ms */
	uint64_t watchdog_ms;         /* 0 = no watchdog */
	uint64_t next_watchdog;
	uint64_t next_status;
	uint64_t started;             /* ms, engine clock at start (uptime) */
	uint64_t next_state_save;     /* next state file write */
	uint64_t last_state_save;     /* ms, engine clock, of the last one */
	bool state_dirty;             /* an admin changed tables or config:
				       * save (coalesced) */
	struct masqd_expiry expiry;
	struct table_dump dump;       /* SIGUSR1 dump under way */
	bool config_error;            /* start-up failed on a config value */
	struct priv_user user;        /* who it runs as once set up */
	struct masqd_stats st;
};

/*
 * Starts everything from cfg (taken over; freed by masqd_fini): engine,
 * state file, preloads, sockets, signals; READY=1 at the end. Every failure
 * is logged. Returns 0, or -1 (the caller exits non-zero: 78 when
 * d->config_error says a config value cannot be applied).
 */
int masqd_init(struct masqd *d, struct masqd_config *cfg, bool force_debug);

/* Runs the loop until SIGTERM/SIGINT, then flushes verdicts and saves the
 * state. Returns the exit status (0). */
int masqd_run(struct masqd *d);

/* control.owner/control.group can be applied by this process (see
 * control_check_ids). Returns 0, or -1 with a message naming the key. */
int masqd_check_control_ids(const struct masqd_config *cfg, char *err,
			    size_t errlen);

/* Releases what masqd_init got (safe after a failed init). */
void masqd_fini(struct masqd *d);

/* "192.168.0.0/16 10.0.0.0/8": cfg's internal prefixes, space-separated,
 * into buf. Returns 0, or -1 with errno ENOSPC when cut. */
int masqd_format_internal(const struct masqd_config *cfg, char *buf,
			  size_t len);

#endif
