/*
 * The daemon proper: start-up, the epoll loop and the signal actions. One
 * thread; the engine is called from the NFQUEUE callback and the timerfd,
 * never concurrently. Nothing here allocates per packet.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "announce.h"
#include "announce_sock.h"
#include "control.h"
#include "daemon.h"
#include "fastpath.h"
#include "fwcount.h"
#include "log.h"
#include "netwatch.h"
#include "nfq.h"
#include "notify.h"
#include "privilege.h"
#include "state.h"

enum { EV_TAG_NFQ = 1, EV_TAG_SIGNAL, EV_TAG_TIMER, EV_TAG_NETWATCH,
       EV_TAG_CONTROL, EV_TAG_ANNOUNCE, EV_TAG_CONTROL_CLIENT = 0x100 };

#define MASQD_RX_ROUNDS 4            /* recvmmsg batches per wakeup */
/* Engine timers handled per loop turn: a mass expiry (a large table whose
 * entries all go at once) is spread over turns, so that the queue is
 * served in between (about 10 ms of work a turn, with its log lines). */
#define MASQD_TIMER_BUDGET 20000
#define MASQD_FP_CHECK_BUDGET 1024   /* fast path use checks per turn */
#define MASQD_FP_OPS_BUDGET 4096     /* fast path element changes per turn */
/* SIGUSR1 dump: entries logged a loop turn (BENCHMARKS.md) */
#define MASQD_DUMP_BUDGET 2000
/* The dump's wait for a log that could not take more of it (journald's
 * socket queue holds only a few datagrams; it reads them in well under
 * this). */
#define MASQD_DUMP_LOG_WAIT_MS 5
/* Entries gone in one expiry above which it gets a summary line (the
 * per-entry lines are then rate-limited: log.c). */
#define MASQD_EXPIRY_SUMMARY 100
#define MASQD_STATUS_MS 30000        /* STATUS= with table sizes */
/* Saves the admin's changes cause (add, del, flush, reload) are at most
 * this far apart: a script of a thousand `add`s makes a few saves, not a
 * thousand (each a full, fsynced write of the tables), and a crash loses
 * at most this much of what an admin changed. */
#define MASQD_STATE_COALESCE_MS 1000
#define MASQD_NETWATCH_SYNC_MS 2000  /* first address dump at start */

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "(unknown version)"
#endif

/* Milliseconds of CLOCK_MONOTONIC. */
static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds of the wall clock (Unix time), for the state file. */
static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The engine's clock: CLOCK_MONOTONIC with headroom (state.h), so that
 * entries restored right after a boot keep the time they had left. */
static uint64_t engine_now(void)
{
	return state_engine_clock(mono_ms());
}

/* Dotted quad of a host-order address into buf (INET_ADDRSTRLEN). */
static const char *ip4_str(uint32_t addr, char *buf)
{
	struct in_addr in = { .s_addr = htonl(addr) };

	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

/* Prefix length of a contiguous host-order mask. */
static unsigned mask_len(uint32_t mask)
{
	unsigned n = 0;

	while (mask & 0x80000000u) {
		n++;
		mask <<= 1;
	}
	return n;
}

int masqd_format_internal(const struct masqd_config *cfg, char *buf,
			  size_t len)
{
	const struct engine_config *ec = &cfg->engine;
	char a[INET_ADDRSTRLEN];
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ec->n_internal; i++) {
		int n = snprintf(buf + used, len - used, "%s%s/%u",
				 i ? " " : "", ip4_str(ec->internal[i].addr, a),
				 mask_len(ec->internal[i].mask));

		if (n < 0 || (size_t)n >= len - used) {
			errno = ENOSPC;
			return -1;
		}
		used += (size_t)n;
	}
	return 0;
}

/*
 * The NFQUEUE callback: direction from the hook, the engine's decision,
 * the extra copies of a guessed packet. Returns the verdict.
 */
static enum nfqueue_verdict masqd_packet(void *ctx, uint32_t id,
					 unsigned hook, uint8_t *pkt,
					 size_t len)
{
	struct masqd *d = ctx;
	struct engine_decision dec;
	enum direction dir;

	(void)id;
	if (hook == NFQUEUE_HOOK_PRE_ROUTING) {
		dir = DIR_INBOUND;
	} else if (hook == NFQUEUE_HOOK_POST_ROUTING) {
		dir = DIR_OUTBOUND;
	} else {
		d->st.bad_hook++;   /* a rule we did not write: fail closed */
		return NFQUEUE_DROP;
	}
	engine_process(d->eng, pkt, len, dir, d->now, &dec);
	if (dec.verdict == VERDICT_DROP)
		return NFQUEUE_DROP;
	if (dec.n_copies > 0)
		(void)rawsock_send_copies(&d->raw, pkt, len, dec.copy_to,
					  dec.n_copies);
	return dec.verdict == VERDICT_ACCEPT_MODIFIED ? NFQUEUE_ACCEPT_MODIFIED
						       : NFQUEUE_ACCEPT;
}

/*
 * Applies cfg's static preloads at start. The config is what the admin
 * wants now: an entry restored from the state file for the same remote and
 * in-SPI (an `ipsec-masqctl add` of the last run, or a file an older
 * version wrote with the config's own preloads in it) gives way to it, or
 * a preload moved to another host in the file would keep routing to the
 * old one for the rest of its life. A preload the engine refuses even so
 * is logged with its line and skipped. Returns the number applied.
 */
static size_t masqd_preload(struct masqd *d, const struct masqd_config *cfg)
{
	size_t ok = 0;

	for (size_t i = 0; i < cfg->n_preload; i++) {
		const struct config_preload *p = &cfg->preload[i];
		char r[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN];
		int rc;

		rc = engine_preload(d->eng, p->remote, p->host, p->spi_in,
				    p->spi_out, 0, d->now);
		if (rc < 0 &&
		    engine_del_esp(d->eng, p->remote, p->spi_in) == 0) {
			log_info("%s:%d: preload of remote %s SPI 0x%08x to %s "
				 "replaces the restored entry of that SPI",
				 cfg->path, p->line, ip4_str(p->remote, r),
				 p->spi_in, ip4_str(p->host, h));
			rc = engine_preload(d->eng, p->remote, p->host,
					    p->spi_in, p->spi_out, 0, d->now);
		}
		if (rc == 0) {
			ok++;
			continue;
		}
		log_warn("%s:%d: preload of remote %s SPI 0x%08x to %s refused",
			 cfg->path, p->line, ip4_str(p->remote, r), p->spi_in,
			 ip4_str(p->host, h));
	}
	return ok;
}

/* Whether a and b map the same (remote, in-SPI) to the same host and
 * out-SPI. */
static bool preload_same(const struct config_preload *a,
			 const struct config_preload *b)
{
	return a->remote == b->remote && a->spi_in == b->spi_in &&
	       a->host == b->host && a->spi_out == b->spi_out;
}

/* Index of a preload of cfg equal to p, or -1. */
static long preload_find(const struct masqd_config *cfg,
			 const struct config_preload *p)
{
	for (size_t i = 0; i < cfg->n_preload; i++)
		if (preload_same(&cfg->preload[i], p))
			return (long)i;
	return -1;
}

/* Walker of masqd_preload_reload: marks the preloads of cfg whose entry is
 * in the tables (same remote, in-SPI and host). */
struct preload_seen {
	const struct masqd_config *cfg;
	bool *live;
};

static void preload_mark(void *ctx, const struct engine_esp_info *e)
{
	struct preload_seen *ps = ctx;

	for (size_t i = 0; i < ps->cfg->n_preload; i++) {
		const struct config_preload *p = &ps->cfg->preload[i];

		if (p->remote == e->remote && p->spi_in == e->spi_in &&
		    p->host == e->host)
			ps->live[i] = true;
	}
}

/*
 * Reload: the preloads of next against those of old. One that left the
 * config is removed from the tables (it would otherwise route until it
 * expired); a new or changed one is applied; an unchanged one is left
 * alone (not refreshed, not logged again) unless its entry is gone
 * (expired, deleted), when it is applied again. Returns the number
 * applied.
 */
static size_t masqd_preload_reload(struct masqd *d,
				   const struct masqd_config *old,
				   const struct masqd_config *next)
{
	bool live[CONFIG_MAX_PRELOAD] = { false };
	struct preload_seen ps = { next, live };
	size_t ok = 0;

	for (size_t i = 0; i < old->n_preload; i++) {
		const struct config_preload *p = &old->preload[i];
		char r[INET_ADDRSTRLEN];

		if (preload_find(next, p) >= 0)
			continue;
		if (engine_del_esp(d->eng, p->remote, p->spi_in) == 0)
			log_info("%s:%d: preload of remote %s SPI 0x%08x left "
				 "the config: removed", old->path, p->line,
				 ip4_str(p->remote, r), p->spi_in);
	}
	if (next->n_preload > 0)
		engine_walk_esp(d->eng, preload_mark, &ps);
	for (size_t i = 0; i < next->n_preload; i++) {
		const struct config_preload *p = &next->preload[i];
		char r[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN];

		if (preload_find(old, p) >= 0 && live[i])
			continue;
		if (engine_preload(d->eng, p->remote, p->host, p->spi_in,
				   p->spi_out, 0, d->now) == 0) {
			ok++;
			continue;
		}
		log_warn("%s:%d: preload of remote %s SPI 0x%08x to %s refused",
			 next->path, p->line, ip4_str(p->remote, r), p->spi_in,
			 ip4_str(p->host, h));
	}
	return ok;
}

/* Reads the state file when one is configured; a bad file is logged and
 * start-up goes on without (or with part of) it. What a save cut short by
 * a crash left beside it goes first. */
static void masqd_load_state(struct masqd *d)
{
	struct state_counts c = { 0 };
	char err[512];
	int stale;

	if (d->cfg->state_file[0] == '\0')
		return;
	stale = state_remove_stale_temps(d->cfg->state_file, err, sizeof(err));
	if (stale > 0)
		log_info("removed %d stale temporary state file%s beside %s",
			 stale, stale == 1 ? "" : "s", d->cfg->state_file);
	else if (stale < 0)
		log_warnx("stale temporary state files: %s", err);
	if (state_load(d->cfg->state_file, d->eng, d->now, wall_ms(), &c,
		       err, sizeof(err)) < 0) {
		log_msg(LOG_LEVEL_ERROR, "state file not fully restored: %s",
			err);
		return;
	}
	log_info("restored state from %s: %zu ESP and %zu ISAKMP entries "
		 "(%zu expired, %zu rejected)", d->cfg->state_file,
		 c.esp_restored, c.isakmp_restored, c.expired, c.rejected);
}

/* state_save_except's filter: the config file's own preloads (same
 * remote, in-SPI and host, whatever the engine has learnt since) are not
 * saved; every start applies them from the config, so one the admin
 * removed from the file while the daemon was down stays removed. */
static bool is_config_preload(void *ctx, const struct engine_esp_info *e)
{
	const struct masqd_config *cfg = ctx;

	for (size_t i = 0; i < cfg->n_preload; i++) {
		const struct config_preload *p = &cfg->preload[i];

		if (p->remote == e->remote && p->spi_in == e->spi_in &&
		    p->host == e->host)
			return true;
	}
	return false;
}

/*
 * Writes the state file when one is configured: at stop, every
 * state.interval, and after an admin changed the tables or the config
 * (control add/del/flush/reload, SIGHUP), coalesced (masqd_state_changed),
 * so that a crash cannot bring back what `del`, `flush` or a reload
 * removed. `why` goes into the log line; the periodic save logs at debug
 * level only.
 */
static void masqd_save_state(struct masqd *d, const char *why)
{
	const struct engine_stats *es = engine_get_stats(d->eng);
	char err[512];

	d->state_dirty = false;
	d->last_state_save = d->now;
	d->next_state_save = d->now + d->cfg->state_interval_ms;
	if (d->cfg->state_file[0] == '\0')
		return;
	if (state_save_except(d->cfg->state_file, d->eng, engine_now(),
			      wall_ms(), is_config_preload, d->cfg, err,
			      sizeof(err)) < 0) {
		log_msg(LOG_LEVEL_ERROR, "state not saved: %s", err);
		return;
	}
	log_msg(strcmp(why, "periodic") ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG,
		"saved state to %s (%s): %zu ESP and %zu ISAKMP entries",
		d->cfg->state_file, why, es->esp_entries, es->isakmp_entries);
}

/* An admin changed the tables or the config: save now, or, when the last
 * save is less than MASQD_STATE_COALESCE_MS old, at that mark (the timer
 * wakes the loop for it). */
static void masqd_state_changed(struct masqd *d)
{
	uint64_t due = d->last_state_save + MASQD_STATE_COALESCE_MS;

	if (d->now >= due) {
		masqd_save_state(d, "tables or config changed by an admin");
		return;
	}
	if (d->next_state_save > due)
		d->next_state_save = due;
}

/* ---- the kernel fast path (fastpath.h) ------------------------------------ */

/* Whether an ESP entry in this state is associated, so offloaded:
 * established, provisional (its use, credited back by the checks, confirms
 * it), preloaded by the config or control, announced by its LAN host. */
static bool masqd_fp_offloadable(enum esp_state state)
{
	return state == ESP_ESTABLISHED || state == ESP_PROVISIONAL ||
	       state == ESP_PRELOADED || state == ESP_ANNOUNCED;
}

/* A provisional association is confirmed by its use both ways, which the
 * kernel now sees: checked every fastpath.poll until it is (not only near
 * its expiry), so that it is confirmed about as soon as without the fast
 * path. */
static void masqd_fp_recheck(struct masqd *d, uint32_t remote,
			     uint32_t spi_in, enum esp_state state)
{
	uint64_t p = d->cfg->fastpath.poll_ms;

	fastpath_recheck(d->fp, remote, spi_in, d->now,
			 state == ESP_PROVISIONAL ? (uint32_t)p : 0);
}

/* Offloads ESP entry (remote, spi_in) as the engine has it now, if it is
 * associated. */
static void masqd_fp_offload(struct masqd *d, uint32_t remote, uint32_t spi_in)
{
	struct engine_esp_info e;

	if (engine_get_esp(d->eng, remote, spi_in, &e) < 0 ||
	    !masqd_fp_offloadable(e.state) || e.expires <= d->now)
		return;
	if (fastpath_offload(d->fp, remote, e.host, e.spi_out, spi_in, d->now,
			     e.expires - e.last_seen, e.expires - d->now) < 0) {
		log_warn("fastpath: cannot offload an entry");
		return;
	}
	masqd_fp_recheck(d, remote, spi_in, e.state);
}

/* The engine's decisions: logged, and mirrored into the fast path. */
static void masqd_engine_event(void *ctx, const struct engine_event *ev)
{
	struct masqd *d = ctx;

	log_engine_event(NULL, ev);
	if (d->fp == NULL || ev->table != TABLE_ESP || ev->spi_in == 0)
		return;
	switch (ev->kind) {
	case EV_ASSOCIATED:
	case EV_REASSOCIATED:   /* the old in-SPI goes at its check */
	case EV_PRELOADED:
	case EV_LEARNT:
		masqd_fp_offload(d, ev->remote, ev->spi_in);
		break;
	case EV_EXPIRED:
	case EV_REMOVED:
		fastpath_forget(d->fp, ev->remote, ev->spi_in,
				ev->kind == EV_EXPIRED);
		break;
	default:
		break;
	}
}

/* Check callback: the kernel's use of an offloaded entry credited to the
 * engine (which renews its lifetime); 0 when the entry is gone. */
static int masqd_fp_use(void *ctx, uint32_t remote, uint32_t spi_in,
			uint32_t host, const struct engine_esp_use *use,
			uint64_t *life_ms, uint64_t *remain_ms)
{
	struct masqd *d = ctx;
	struct engine_esp_info e;

	if ((use->pkts_out || use->pkts_in) &&
	    engine_credit_esp(d->eng, remote, spi_in, use, d->now) < 0)
		return 0;
	if (engine_get_esp(d->eng, remote, spi_in, &e) < 0 ||
	    e.host != host || e.expires <= d->now ||
	    !masqd_fp_offloadable(e.state))
		return 0;
	*life_ms = e.expires - e.last_seen;
	*remain_ms = e.expires - d->now;
	masqd_fp_recheck(d, remote, spi_in, e.state);
	return 1;
}

/* How often the fast path's totals (and the admission counter) are read:
 * fastpath.poll; three small requests whatever the number of entries. The
 * entries' own use is checked when each is about to expire (fpcheck.h). */
static uint64_t masqd_fp_interval(const struct masqd_config *cfg)
{
	return cfg->fastpath.poll_ms;
}

static void masqd_fp_admit(const struct masqd_config *cfg,
			   struct fastpath_admit *a)
{
	a->rate = cfg->fastpath.admit_rate;
	a->burst = cfg->fastpath.admit_burst;
	a->lan = cfg->engine.internal;
	a->n_lan = cfg->engine.n_internal;
}

/* Offloads every associated entry (start, or the fast path turned on). */
static void masqd_fp_walk(void *ctx, const struct engine_esp_info *e)
{
	struct masqd *d = ctx;

	if (e->spi_in)
		masqd_fp_offload(d, e->remote, e->spi_in);
}

/* fastpath.enable: the table afresh (stale elements of an earlier run go),
 * the restored and preloaded entries in it. Failure leaves the fast path
 * off: everything is queued as without it. */
static void masqd_start_fastpath(struct masqd *d)
{
	struct fastpath_admit a;

	d->next_fp_poll = UINT64_MAX;
	if (!d->cfg->fastpath.enable)
		return;
	masqd_fp_admit(d->cfg, &a);
	d->fp_ext = engine_get_config(d->eng)->external_addr;
	d->fp = fastpath_open(d->fp_ext, &a);
	if (d->fp == NULL) {
		log_msg(LOG_LEVEL_WARNING, "fastpath: off (see above); every "
			"packet is queued");
		return;
	}
	/* sent by the loop, a slice a turn (a restored million would
	 * otherwise hold the start for seconds) */
	engine_walk_esp(d->eng, masqd_fp_walk, d);
	d->next_fp_poll = d->now + masqd_fp_interval(d->cfg);
	log_info("fastpath: table ip " FASTPATH_TABLE " loaded, %llu "
		 "entries offloaded",
		 (unsigned long long)fastpath_get_stats(d->fp)->entries);
}

/* Clean stop or fast path turned off: every entry's last use credited
 * (all checked at once: the loop is over), then the table and every
 * element in it removed. */
static void masqd_stop_fastpath(struct masqd *d)
{
	if (d->fp == NULL)
		return;
	(void)fastpath_check(d->fp, d->now, SIZE_MAX, true, masqd_fp_use, d);
	fastpath_close(d->fp, true);
	d->fp = NULL;
	d->next_fp_poll = UINT64_MAX;
}

/* The external address in the rules follows the engine's. */
static void masqd_fp_follow_external(struct masqd *d)
{
	uint32_t ext = engine_get_config(d->eng)->external_addr;
	struct fastpath_admit a;

	if (d->fp == NULL || ext == d->fp_ext)
		return;
	masqd_fp_admit(d->cfg, &a);
	if (fastpath_set_rules(d->fp, ext, &a) == 0)
		d->fp_ext = ext;
}

/* Reload: turned on or off, new admission settings. */
static void masqd_apply_fastpath(struct masqd *d,
				 const struct masqd_config *next)
{
	const struct fastpath_config *o = &d->cfg->fastpath,
				     *n = &next->fastpath;
	struct fastpath_admit a;

	if (!n->enable) {
		masqd_stop_fastpath(d);
		return;
	}
	if (d->fp == NULL)
		return;   /* started after the swap (masqd_reload) */
	if (o->admit_rate != n->admit_rate || o->admit_burst != n->admit_burst ||
	    d->cfg->engine.n_internal != next->engine.n_internal ||
	    memcmp(d->cfg->engine.internal, next->engine.internal,
		   next->engine.n_internal * sizeof(next->engine.internal[0]))) {
		masqd_fp_admit(next, &a);
		(void)fastpath_set_rules(d->fp, d->fp_ext, &a);
	}
	/* lifetimes may have changed: every element's timeout again, so that
	 * none outlives its entry's new lifetime */
	engine_walk_esp(d->eng, masqd_fp_walk, d);
	d->next_fp_poll = d->now + masqd_fp_interval(next);
}

/* The engine with a random hash seed (so that remote peers cannot aim at a
 * hash chain). Returns 0 or -1, logged. */
static int masqd_start_engine(struct masqd *d)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		log_warn("getrandom");
		return -1;
	}
	d->eng = engine_new(&d->cfg->engine, seed, d->now, masqd_engine_event,
			    d);
	if (d->eng == NULL) {
		log_warn("cannot start the engine");
		return -1;
	}
	return 0;
}

/* Blocks the signals we handle and opens their signalfd. Returns 0 or -1. */
static int masqd_start_signals(struct masqd *d)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
		log_warn("sigprocmask");
		return -1;
	}
	d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0) {
		log_warn("signalfd");
		return -1;
	}
	return 0;
}

/* Starts following the external interface, if one is configured, and
 * waits briefly for its first address. Returns 0 or -1, logged. */
static int masqd_start_netwatch(struct masqd *d)
{
	d->nw = netwatch_open(d->eng);
	if (d->nw == NULL) {
		log_warn("rtnetlink socket");
		return -1;
	}
	if (d->cfg->ext_interface[0] == '\0')
		return 0;
	if (netwatch_set_interface(d->nw, d->cfg->ext_interface) < 0 ||
	    netwatch_sync(d->nw, MASQD_NETWATCH_SYNC_MS) < 0)
		log_warn("address of %s not known yet", d->cfg->ext_interface);
	if (netwatch_address(d->nw) == 0)
		log_msg(LOG_LEVEL_WARNING, "external interface %s has no IPv4 "
			"address yet: outbound IPsec is dropped until it has "
			"one", d->cfg->ext_interface);
	return 0;
}

/* Adds fd to the epoll set under tag. Returns 0 or -1, logged. */
static int masqd_watch(struct masqd *d, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_warn("epoll_ctl");
		return -1;
	}
	return 0;
}

/* The queue socket's tunables from io = { ... }. */
static void masqd_io_params(const struct io_config *io,
			    struct nfqueue_params *p)
{
	p->batch = io->batch;
	p->receive_buffer = io->receive_buffer;
	p->verdict_buffer = io->verdict_buffer;
	p->queue_maxlen = io->queue_maxlen;
}

/*
 * io.cpu: pin the loop to one CPU (or unpin with -1), so the admin can keep
 * it off the core that takes the receive softirq. Under the unit the
 * system call filter refuses this: CPUAffinity= does it there.
 */
static void masqd_set_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (cpu < 0) {
		for (int i = 0; i < CPU_SETSIZE; i++)
			CPU_SET(i, &set);
	} else {
		CPU_SET(cpu, &set);
	}
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		if (cpu >= 0)
			log_warn("io.cpu: cannot pin to CPU %d%s", cpu,
				 errno == EPERM ? " (under systemd, use "
				 "CPUAffinity= in the unit)" : "");
		return;
	}
	if (cpu >= 0)
		log_info("pinned to CPU %d", cpu);
}

/* The sockets: raw copies first (READY=1 needs both), then the queue. */
static int masqd_start_io(struct masqd *d)
{
	struct nfqueue_params qp;

	if (rawsock_open(&d->raw) < 0) {
		log_warn("raw socket (needs CAP_NET_RAW and CAP_NET_ADMIN)");
		return -1;
	}
	if (d->cfg->io.cpu >= 0)
		masqd_set_cpu(d->cfg->io.cpu);
	masqd_io_params(&d->cfg->io, &qp);
	d->nfq = nfqueue_open(d->cfg->queue, &qp, masqd_packet, d);
	if (d->nfq == NULL) {
		log_warn("cannot bind NFQUEUE %u%s", d->cfg->queue,
			 errno == EBUSY ? " (another process has it)" : "");
		return -1;
	}
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->timerfd = timerfd_create(CLOCK_MONOTONIC,
				    TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->epfd < 0 || d->timerfd < 0) {
		log_warn("epoll/timerfd");
		return -1;
	}
	if (masqd_watch(d, nfqueue_fd(d->nfq), EV_TAG_NFQ) < 0 ||
	    masqd_watch(d, d->sigfd, EV_TAG_SIGNAL) < 0 ||
	    masqd_watch(d, d->timerfd, EV_TAG_TIMER) < 0 ||
	    masqd_watch(d, netwatch_fd(d->nw), EV_TAG_NETWATCH) < 0)
		return -1;
	return 0;
}

static int masqd_reload(struct masqd *d);

/* Control request: reload like SIGHUP. Returns 0 or -1. */
static int masqd_ctl_reload(void *ctx)
{
	struct masqd *d = ctx;

	return masqd_reload(d);   /* the request is logged by masqd_ctl_note */
}

/* Control request: a change (flush, add, del, reload) for the log, with
 * the peer's uid and pid; the state file is rewritten once the loop turn
 * is over. */
static void masqd_ctl_note(void *ctx, const char *what)
{
	struct masqd *d = ctx;

	log_info("%s", what);
	d->state_dirty = true;
}

static unsigned masqd_ctl_offloaded(void *ctx, uint32_t remote,
				    uint32_t spi_in)
{
	const struct masqd *d = ctx;

	return fastpath_offloaded(d->fp, remote, spi_in);
}

/* The "fastpath" section of stats and show's column, when it is on. */
static void masqd_ctl_fastpath(struct masqd *d, struct ctl_env *env)
{
	const struct fastpath_stats *f;

	if (d->fp == NULL)
		return;
	/* the totals as of now (three small requests); per entry, the
	 * kernel's packets as of its last check */
	(void)fastpath_read_totals(d->fp);
	f = fastpath_get_stats(d->fp);
	{
		const struct ctl_counter c[] = {
			{ "entries", f->entries },
			{ "packets_out", f->pkts_out },
			{ "bytes_out", f->bytes_out },
			{ "packets_in", f->pkts_in },
			{ "bytes_in", f->bytes_in },
			{ "installed", f->installed },
			{ "removed", f->removed },
			{ "refreshed", f->refreshed },
			{ "reinstalled", f->reinstalled },
			{ "commits", f->commits },
			{ "errors", f->errors },
			{ "checks", f->checks },
			{ "check_requests", f->check_requests },
			{ "check_errors", f->check_errors },
			{ "checks_idle", f->checks_idle },
			{ "checks_late", f->checks_late },
			{ "expired_unchecked", f->expired_unchecked },
			{ "reads", f->reads },
			{ "read_errors", f->read_errors },
			{ "admit_dropped", f->admit_dropped },
			{ "admit_dropped_bytes", f->admit_dropped_bytes },
			{ "admit_lan_dropped", f->admit_lan_dropped },
			{ "last_check_us", f->last_check_us },
			{ "last_commit_us", f->last_commit_us },
		};

		_Static_assert(sizeof(c) / sizeof(c[0]) <= CTL_MAX_COUNTERS,
			       "fastpath counters fit");
		memcpy(env->fastpath, c, sizeof(c));
		env->n_fastpath = sizeof(c) / sizeof(c[0]);
	}
	env->offloaded = masqd_ctl_offloaded;
}

/* The egress guard's counter, from our nftables table in the kernel: a
 * leak the rules stopped shows in `ipsec-masqctl stats`. One nfnetlink
 * request per control request (CAP_NET_ADMIN, which the daemon keeps). */
static void masqd_read_guard(struct ctl_env *env)
{
	struct fwcount g;

	env->has_firewall = true;
	env->guard_read = fwcount_read(FWCOUNT_TABLE, FWCOUNT_GUARD, &g) == 0;
	env->guard_errno = env->guard_read ? 0 : errno;
	env->guard_packets = env->guard_read ? g.packets : 0;
	env->guard_bytes = env->guard_read ? g.bytes : 0;
}

/* What a control request sees: the engine, the clock, the counters. */
static void masqd_ctl_env(void *ctx, struct ctl_env *env)
{
	struct masqd *d = ctx;
	const struct netwatch_stats *w = netwatch_get_stats(d->nw);
	const struct ctl_counter c[] = {
		{ "copies_sent", d->raw.st.sent },
		{ "copies_failed", d->raw.st.failed },
		{ "copies_fragmented", d->raw.st.fragmented },
		{ "copies_too_big", d->raw.st.too_big },
		{ "bad_hook", d->st.bad_hook },
		{ "reloads", d->st.reloads },
		{ "reload_errors", d->st.reload_errors },
		{ "queue_errors", d->st.queue_errors },
		{ "watch_errors", d->st.watch_errors },
		{ "timer_turns_cut", d->st.timer_turns_cut },
		{ "log_dropped", log_dropped() },
		{ "address_changes", w->changes },
		{ "netwatch_errors", w->errors + w->enobufs },
	};

	_Static_assert(sizeof(c) / sizeof(c[0]) + 6 <= CTL_MAX_COUNTERS,
		       "control.c adds 6 counters of its own");
	env->eng = d->eng;
	env->now = d->now;
	env->started = d->started;
	if (d->nfq != NULL)
		(void)nfqueue_refresh_kernel_stats(d->nfq);
	env->queue = d->nfq ? nfqueue_get_stats(d->nfq) : NULL;
	masqd_read_guard(env);
	memcpy(env->daemon, c, sizeof(c));
	env->n_daemon = sizeof(c) / sizeof(c[0]);
	masqd_ctl_fastpath(d, env);
	env->n_announce = d->ann ? announce_counters(d->ann, env->announce,
						     CTL_MAX_COUNTERS) : 0;
	env->reload = masqd_ctl_reload;
	env->note = masqd_ctl_note;
	env->ctx = d;
}

int masqd_check_control_ids(const struct masqd_config *cfg, char *err,
			    size_t errlen)
{
	struct priv_caps caps;
	bool cap_chown = true;   /* unknown: let the chown tell */

	if (cfg->control_owner[0] == '\0' && cfg->control_group[0] == '\0')
		return 0;
	if (privilege_read(&caps) == 0)
		cap_chown = (caps.eff & PRIV_BIT(CAP_CHOWN)) != 0;
	return control_check_ids(cfg->control_owner, cfg->control_group,
				 cap_chown, control_chown_allowed(), err,
				 errlen);
}

/* The control socket from control.* (after the epoll set exists). Returns
 * 0 or -1, logged. */
static int masqd_start_control(struct masqd *d)
{
	const struct masqd_config *c = d->cfg;
	char err[512];

	if (masqd_check_control_ids(c, err, sizeof(err)) < 0) {
		log_msg(LOG_LEVEL_ERROR, "%s: %s", c->path, err);
		d->config_error = true;
		return -1;
	}
	d->ctl = control_open(c->control_socket, c->control_mode,
			      c->control_owner, c->control_group, d->epfd,
			      EV_TAG_CONTROL, EV_TAG_CONTROL_CLIENT,
			      masqd_ctl_env, d, &d->config_error);
	return d->ctl ? 0 : -1;
}

/*
 * Who to run as once set up (user, -u), decided before anything is made:
 * the directories made for that user and the socket's owner depend on it.
 * Returns 0, or -1 (a config error, logged) when a user asked for does not
 * exist.
 */
static int masqd_choose_user(struct masqd *d)
{
	const struct masqd_config *c = d->cfg;
	const char *how = c->user_source == CONFIG_CMDLINE ? "-u" : "user =";

	switch (privilege_choose_user(c->user, c->user_source != CONFIG_DEFAULT,
				      geteuid(), &d->user)) {
	case PRIV_USER_SWITCH:
	case PRIV_USER_NOT_ROOT:
		return 0;
	case PRIV_USER_STAY_ROOT:
		log_info("%s \"%s\": staying root (with only cap_net_admin,"
			 "cap_net_raw once set up)", how, c->user);
		return 0;
	case PRIV_USER_MISSING:
		log_info("no user %s: staying root (with only cap_net_admin,"
			 "cap_net_raw once set up); create it (sysusers.d or "
			 "useradd --system) to run as it, or set user = "
			 "\"root\" to keep this", c->user);
		return 0;
	case PRIV_USER_ERROR:
	default:
		break;
	}
	log_msg(LOG_LEVEL_ERROR, "%s: %s \"%s\": no such user", c->path, how,
		c->user);
	d->config_error = true;
	return -1;
}

/* The directories the daemon writes to after the switch, made for the
 * user when missing: the socket's (removed at stop) and the state file's
 * (written beside itself). */
static void masqd_prepare_dirs(struct masqd *d)
{
	(void)privilege_prepare_dir(d->cfg->control_socket, 0755, &d->user);
	(void)privilege_prepare_dir(d->cfg->state_file, 0755, &d->user);
}

/* After the switch the socket belongs to the user, as under the unit (its
 * RuntimeDirectory= and User=), unless control.owner/group say otherwise:
 * the user's group may then use it. Logged when refused, never fatal. */
static void masqd_give_socket(struct masqd *d)
{
	const struct masqd_config *c = d->cfg;
	uid_t uid = c->control_owner[0] == '\0' ? d->user.uid : (uid_t)-1;
	gid_t gid = c->control_group[0] == '\0' ? d->user.gid : (gid_t)-1;

	if (!d->user.change || (uid == (uid_t)-1 && gid == (gid_t)-1))
		return;
	if (chown(c->control_socket, uid, gid) < 0)
		log_warn("chown %s to user %s", c->control_socket,
			 d->user.name);
}

/* The LAN listener for SPI announcements, when configured. Returns 0 or
 * -1, logged. A state file may hold more announced entries than
 * announce.max_entries (written before the cap, or under a larger one):
 * the excess goes, so that the table is not full from the start. */
static int masqd_start_announce(struct masqd *d)
{
	long trimmed;

	if (!d->cfg->announce.enabled)
		return 0;
	trimmed = ann_trim(d->eng, d->cfg->announce.max_entries);
	if (trimmed < 0)
		log_warn("announce: restored announced entries over "
			 "announce.max_entries left in place");
	else if (trimmed > 0)
		log_msg(LOG_LEVEL_WARNING, "announce: %ld restored announced "
			"entr%s over announce.max_entries (%zu) removed, the "
			"ones with the least time left", trimmed,
			trimmed == 1 ? "y" : "ies",
			d->cfg->announce.max_entries);
	d->ann = announce_open(d->cfg);
	if (d->ann == NULL)
		return -1;
	return masqd_watch(d, announce_fd(d->ann), EV_TAG_ANNOUNCE);
}

/* One line saying what runs, for the log and STATUS=. */
static void masqd_describe(const struct masqd *d, char *buf, size_t len)
{
	char ext[INET_ADDRSTRLEN], in[512];

	if (masqd_format_internal(d->cfg, in, sizeof(in)) < 0)
		snprintf(in, sizeof(in), "(%zu prefixes)",
			 d->cfg->engine.n_internal);
	if (d->cfg->ext_interface[0] != '\0')
		snprintf(buf, len, "queue %u, external interface %s, "
			 "internal %s", d->cfg->queue, d->cfg->ext_interface,
			 in);
	else
		snprintf(buf, len, "queue %u, external address %s, "
			 "internal %s", d->cfg->queue,
			 ip4_str(d->cfg->engine.external_addr, ext), in);
}

int masqd_init(struct masqd *d, struct masqd_config *cfg, bool force_debug)
{
	char what[768];

	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	d->next_fp_poll = UINT64_MAX;
	d->force_debug = force_debug;
	d->epfd = d->sigfd = d->timerfd = d->raw.fd = -1;
	d->now = engine_now();
	d->started = d->now;
	if (masqd_choose_user(d) < 0 || masqd_start_engine(d) < 0)
		return -1;
	masqd_load_state(d);
	masqd_preload(d, d->cfg);
	masqd_prepare_dirs(d);
	if (masqd_start_signals(d) < 0 || masqd_start_netwatch(d) < 0 ||
	    masqd_start_io(d) < 0 || masqd_start_control(d) < 0 ||
	    masqd_start_announce(d) < 0)
		return -1;
	masqd_give_socket(d);
	masqd_start_fastpath(d);
	/* Every socket is open: keep only NET_ADMIN and NET_RAW, as the user
	 * chosen above (logged). */
	(void)privilege_drop(&d->user, d->cfg->path, d->cfg->state_file);
	(void)privilege_check_socket_dir(d->cfg->control_socket);
	d->watchdog_ms = notify_watchdog_usec() / 2000u;
	d->next_watchdog = d->watchdog_ms ? d->now : UINT64_MAX;
	d->next_status = d->now + MASQD_STATUS_MS;
	d->next_state_save = d->now + d->cfg->state_interval_ms;
	d->running = true;
	masqd_describe(d, what, sizeof(what));
	log_info("ipsec-masqd " PACKAGE_VERSION " started: %s", what);
	notify_ready(what);
	return 0;
}

void masqd_fini(struct masqd *d)
{
	fastpath_close(d->fp, true);
	d->fp = NULL;
	control_close(d->ctl);
	d->ctl = NULL;
	announce_close(d->ann);
	d->ann = NULL;
	nfqueue_close(d->nfq);   /* verdicts for what is still queued */
	d->nfq = NULL;
	netwatch_close(d->nw);
	d->nw = NULL;
	if (d->raw.fd >= 0 || d->raw.scratch != NULL)
		rawsock_close(&d->raw);
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->sigfd >= 0)
		close(d->sigfd);
	if (d->timerfd >= 0)
		close(d->timerfd);
	d->epfd = d->sigfd = d->timerfd = -1;
	if (d->eng != NULL)
		engine_free(d->eng);
	d->eng = NULL;
	free(d->cfg);
	d->cfg = NULL;
}

/*
 * Carries over what the engine must not lose on reload: while the same
 * interface is followed, its known address stays (the file says 0).
 */
static void masqd_carry_external(struct masqd *d, struct masqd_config *next)
{
	if (next->ext_interface[0] != '\0' &&
	    strcmp(next->ext_interface, d->cfg->ext_interface) == 0)
		next->engine.external_addr = netwatch_address(d->nw);
}

/* Applies the settings of next that need more than the engine (log level,
 * external interface, queue number). */
/* Reload: the io settings that changed, applied to the live socket. */
static void masqd_apply_io(struct masqd *d, const struct io_config *io)
{
	struct nfqueue_params qp;

	if (io->cpu != d->cfg->io.cpu)
		masqd_set_cpu(io->cpu);
	if (memcmp(io, &d->cfg->io, sizeof(*io)) == 0)
		return;
	masqd_io_params(io, &qp);
	if (nfqueue_tune(d->nfq, &qp) < 0)
		log_warn("io: not every queue setting could be applied");
}

static void masqd_apply_shell(struct masqd *d, struct masqd_config *next)
{
	if (!d->force_debug)
		log_set_level(next->log_level);
	if (strcmp(next->ext_interface, d->cfg->ext_interface) != 0 &&
	    netwatch_set_interface(d->nw, next->ext_interface) < 0)
		log_warn("cannot watch %s", next->ext_interface);
	if (next->queue != d->cfg->queue) {
		log_msg(LOG_LEVEL_WARNING, "queue %u -> %u needs a restart; "
			"still on queue %u", d->cfg->queue, next->queue,
			d->cfg->queue);
		next->queue = d->cfg->queue;
	}
	masqd_apply_io(d, &next->io);
	if (d->ann != NULL && !next->announce.enabled) {
		/* no group, no listener: the old keys must not stay in use
		 * (entries already announced live on until they expire) */
		announce_close(d->ann);
		d->ann = NULL;
		log_info("announce: listener closed (no announce group in "
			 "the config any more)");
	} else if (d->ann != NULL)
		(void)announce_reload(d->ann, next);
	else if (next->announce.enabled)
		log_msg(LOG_LEVEL_WARNING, "announce: the listener starts at "
			"the next restart");
}

/* Reload: the user is chosen once, at start (-u over the file); a
 * changed user key is only noted, and the start's choice carried over. */
static void masqd_carry_user(const struct masqd *d, struct masqd_config *next)
{
	if (d->cfg->user_source != CONFIG_CMDLINE &&
	    strcmp(next->user, d->cfg->user) != 0)
		log_msg(LOG_LEVEL_WARNING, "user = \"%s\" takes effect at the "
			"next restart; still as started (user \"%s\")",
			next->user, d->cfg->user);
	memcpy(next->user, d->cfg->user, sizeof(next->user));
	next->user_source = d->cfg->user_source;
}

/*
 * SIGHUP: parse into a new struct; only when it is valid and the engine
 * takes it, swap it in. Otherwise the old config keeps running. READY=1
 * follows either way, with a STATUS= saying which. Returns 0 or -1.
 */
static int masqd_reload(struct masqd *d)
{
	struct masqd_config *next = calloc(1, sizeof(*next));
	const char *path = d->cfg->path;
	char err[1024], what[768];
	const struct log_kv file = { "CONFIG_FILE", path };

	notify_reloading();
	if (next == NULL) {
		log_msg_id(LOG_LEVEL_ERROR, LOG_ID_RELOAD_FAILED, &file, 1,
			   "reload of %s: %s", path, strerror(errno));
		goto fail;
	}
	if (config_load(path, next, err, sizeof(err)) < 0) {
		log_msg_id(LOG_LEVEL_ERROR, LOG_ID_RELOAD_FAILED, &file, 1,
			   "config file %s has errors, not reloading: %s",
			   path, err);
		goto fail;
	}
	masqd_carry_external(d, next);
	if (engine_reconfigure(d->eng, &next->engine) < 0) {
		log_msg_id(LOG_LEVEL_ERROR, LOG_ID_RELOAD_FAILED, &file, 1,
			   "config file %s not applied, not reloading: %s",
			   path, strerror(errno));
		goto fail;
	}
	masqd_apply_shell(d, next);
	masqd_apply_fastpath(d, next);
	if (strcmp(next->control_socket, d->cfg->control_socket) != 0 ||
	    next->control_mode != d->cfg->control_mode ||
	    strcmp(next->control_owner, d->cfg->control_owner) != 0 ||
	    strcmp(next->control_group, d->cfg->control_group) != 0)
		log_msg(LOG_LEVEL_WARNING, "control socket settings take "
			"effect at the next restart");
	masqd_carry_user(d, next);
	masqd_preload_reload(d, d->cfg, next);
	free(d->cfg);
	d->cfg = next;   /* same path: `path` now reads next's copy */
	path = d->cfg->path;
	if (d->fp == NULL && d->cfg->fastpath.enable)
		masqd_start_fastpath(d);
	masqd_fp_follow_external(d);
	/* what the reload changed (preloads removed or moved, limits) goes
	 * to the file soon, with the new interval from then on */
	d->state_dirty = true;
	d->st.reloads++;
	masqd_describe(d, what, sizeof(what));
	log_info("reloaded config file %s: %s", path, what);
	notify_ready("reloaded config");
	return 0;
fail:
	free(next);
	d->st.reload_errors++;
	notify_ready("reload failed, running with the previous config");
	return -1;
}

/* The counters of every module, one log line each. */
static void masqd_log_counters(const struct masqd *d)
{
	const struct engine_stats *es = engine_get_stats(d->eng);
	const struct nfqueue_stats *q;
	const struct netwatch_stats *w = netwatch_get_stats(d->nw);

	(void)nfqueue_refresh_kernel_stats(d->nfq);
	q = nfqueue_get_stats(d->nfq);

	log_info("tables: esp=%zu isakmp=%zu hosts=%zu remotes=%zu "
		 "pending=%zu copies=%llu", es->esp_entries,
		 es->isakmp_entries, es->hosts, es->remotes, es->pending,
		 (unsigned long long)es->copies);
	log_info("queue: received=%llu accepted=%llu modified=%llu "
		 "dropped=%llu bad_packet=%llu bad_message=%llu "
		 "verdict_errors=%llu verdicts_lost=%llu "
		 "verdicts_retried=%llu enobufs=%llu "
		 "recv_errors=%llu flushes=%llu batches=%llu "
		 "batches_full=%llu kernel_waiting=%llu "
		 "kernel_queue_full=%llu kernel_socket_full=%llu",
		 (unsigned long long)q->received,
		 (unsigned long long)q->accepted,
		 (unsigned long long)q->modified,
		 (unsigned long long)q->dropped,
		 (unsigned long long)q->bad_packet,
		 (unsigned long long)q->bad_message,
		 (unsigned long long)q->verdict_errors,
		 (unsigned long long)q->verdicts_lost,
		 (unsigned long long)q->verdicts_retried,
		 (unsigned long long)q->enobufs,
		 (unsigned long long)q->recv_errors,
		 (unsigned long long)q->flushes,
		 (unsigned long long)q->batches,
		 (unsigned long long)q->batches_full,
		 (unsigned long long)q->kernel_waiting,
		 (unsigned long long)q->kernel_queue_full,
		 (unsigned long long)q->kernel_socket_full);
	log_info("daemon: copies_sent=%llu copies_failed=%llu "
		 "copies_fragmented=%llu copies_too_big=%llu bad_hook=%llu "
		 "reloads=%llu reload_errors=%llu address_changes=%llu "
		 "netwatch_errors=%llu log_dropped=%llu",
		 (unsigned long long)d->raw.st.sent,
		 (unsigned long long)d->raw.st.failed,
		 (unsigned long long)d->raw.st.fragmented,
		 (unsigned long long)d->raw.st.too_big,
		 (unsigned long long)d->st.bad_hook,
		 (unsigned long long)d->st.reloads,
		 (unsigned long long)d->st.reload_errors,
		 (unsigned long long)w->changes,
		 (unsigned long long)(w->errors + w->enobufs),
		 (unsigned long long)log_dropped());
}

/* SIGUSR1: the tables and counters to the log, the tables a slice of
 * MASQD_DUMP_BUDGET entries a loop turn (masqd_dump_step). */
static void masqd_dump(struct masqd *d)
{
	if (d->dump.active) {
		log_info("table dump already under way (%zu entries so far): "
			 "signal ignored", d->dump.lines);
		return;
	}
	log_info("table dump begins");
	table_dump_start(&d->dump, d->eng);
}

/* How long the loop may sleep without events: not at all while bulk work
 * is under way, MASQD_DUMP_LOG_WAIT_MS when only a dump remains and the log
 * was full at its last step, else until an event or the timer. */
static int masqd_bulk_wait_ms(const struct masqd *d)
{
	if (fastpath_pending(d->fp))
		return 0;
	if (d->dump.active)
		return d->dump.log_full ? MASQD_DUMP_LOG_WAIT_MS : 0;
	return -1;
}

/* The next slice of a dump under way; its end with the counters. */
static void masqd_dump_step(struct masqd *d)
{
	if (!table_dump_step(&d->dump, d->eng, d->now, MASQD_DUMP_BUDGET))
		return;
	masqd_log_counters(d);
	log_info("table dump ends (%zu entries over %u loop turns)",
		 d->dump.lines, d->dump.turns);
}

/* Reads every pending signal and acts on it. */
static void masqd_on_signal(struct masqd *d)
{
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			(void)masqd_reload(d);
			break;
		case SIGTERM:
		case SIGINT:
			log_info("signal %u: stopping", si.ssi_signo);
			d->running = false;
			break;
		case SIGUSR1:
			masqd_dump(d);
			break;
		default:
			break;
		}
	}
}

/*
 * The engine's timers, at most MASQD_TIMER_BUDGET a turn (the rest stays
 * due: the timerfd fires again at once, after the queue had its turn). An
 * expiry of more than MASQD_EXPIRY_SUMMARY entries ends with one summary
 * line ("1200000 ESP entries expired").
 */
static void masqd_run_engine_timers(struct masqd *d)
{
	const struct engine_stats *es = engine_get_stats(d->eng);
	size_t esp0 = es->esp_entries, ike0 = es->isakmp_entries, fired;
	struct masqd_expiry *x = &d->expiry;

	fired = engine_run_timers_max(d->eng, d->now, MASQD_TIMER_BUDGET);
	es = engine_get_stats(d->eng);
	x->esp += esp0 > es->esp_entries ? esp0 - es->esp_entries : 0;
	x->isakmp += ike0 > es->isakmp_entries ? ike0 - es->isakmp_entries : 0;
	x->turns++;
	if (fired >= MASQD_TIMER_BUDGET) {
		d->st.timer_turns_cut++;
		return;   /* more due: summed up when it is done */
	}
	if (x->esp + x->isakmp > MASQD_EXPIRY_SUMMARY)
		log_info("%llu ESP entries and %llu ISAKMP entries expired "
			 "(over %u loop turns)", (unsigned long long)x->esp,
			 (unsigned long long)x->isakmp, x->turns);
	*x = (struct masqd_expiry){ 0 };
}

/* Timer wakeup: the engine's timers, the watchdog, the status line. */
static void masqd_on_timer(struct masqd *d)
{
	const struct engine_stats *es;
	uint64_t expirations;

	/* The count is not needed (the timers run on d->now); the read only
	 * clears the readiness. EAGAIN after a spurious wake-up is harmless. */
	if (read(d->timerfd, &expirations, sizeof(expirations)) < 0 &&
	    errno != EAGAIN && errno != EINTR)
		log_warn("timerfd read");
	d->armed = 0;
	if (d->fp != NULL) {
		/* before the engine's timers: an entry the kernel used must
		 * not expire for want of the credit; a slice a turn */
		(void)fastpath_check(d->fp, d->now, MASQD_FP_CHECK_BUDGET,
				     false, masqd_fp_use, d);
		if (d->now >= d->next_fp_poll) {
			if (fastpath_read_totals(d->fp) < 0)
				log_warn("fastpath: cannot read the counters "
					 "of table ip " FASTPATH_TABLE);
			d->next_fp_poll = d->now + masqd_fp_interval(d->cfg);
		}
	}
	masqd_run_engine_timers(d);
	control_run_timers(d->ctl, d->now);
	if (d->now >= d->next_watchdog) {
		notify_watchdog();   /* from the loop itself: it is alive */
		d->next_watchdog = d->now + d->watchdog_ms;
	}
	if (d->now >= d->next_status) {
		es = engine_get_stats(d->eng);
		notify_status("%zu ESP and %zu ISAKMP entries, %zu inits "
			      "pending, %llu packets", es->esp_entries,
			      es->isakmp_entries, es->pending,
			      (unsigned long long)nfqueue_get_stats(d->nfq)
				      ->received);
		d->next_status = d->now + MASQD_STATUS_MS;
	}
	if (d->now >= d->next_state_save)
		masqd_save_state(d, d->state_dirty ? "tables or config changed "
				 "by an admin" : "periodic");
}

/* Sets the timerfd to the earliest of engine, watchdog and status
 * deadlines (absolute CLOCK_MONOTONIC), unless already set there. */
static void masqd_arm_timer(struct masqd *d)
{
	uint64_t when = engine_next_timer(d->eng), mono;
	struct itimerspec its = { 0 };

	if (d->next_watchdog < when)
		when = d->next_watchdog;
	if (d->next_status < when)
		when = d->next_status;
	if (d->next_fp_poll < when)
		when = d->next_fp_poll;
	if (fastpath_next_check(d->fp) < when)
		when = fastpath_next_check(d->fp);
	if (control_next_deadline(d->ctl) < when)
		when = control_next_deadline(d->ctl);
	if (d->next_state_save < when)
		when = d->next_state_save;
	if (when == d->armed)
		return;
	mono = state_mono_clock(when);   /* the timerfd runs on the raw clock */
	if (mono == 0)
		mono = 1;   /* an it_value of zero would disarm */
	its.it_value.tv_sec = (time_t)(mono / 1000u);
	its.it_value.tv_nsec = (long)(mono % 1000u) * 1000000L;
	if (timerfd_settime(d->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		log_warn("timerfd_settime");
		return;
	}
	d->armed = when;
}

/* One ready descriptor. */
static void masqd_dispatch(struct masqd *d, uint32_t tag, uint32_t events)
{
	if (tag >= EV_TAG_CONTROL_CLIENT) {
		control_on_client(d->ctl, tag - EV_TAG_CONTROL_CLIENT, events,
				  d->now);
		return;
	}
	switch (tag) {
	case EV_TAG_NFQ:
		if (nfqueue_receive(d->nfq, MASQD_RX_ROUNDS *
				    d->cfg->io.batch) < 0) {
			d->st.queue_errors++;
			log_warn("queue receive");
		}
		break;
	case EV_TAG_SIGNAL:
		masqd_on_signal(d);
		break;
	case EV_TAG_TIMER:
		masqd_on_timer(d);
		break;
	case EV_TAG_CONTROL:
		control_on_listen(d->ctl, d->now);
		break;
	case EV_TAG_ANNOUNCE:
		if (d->ann != NULL)   /* a reload earlier in the batch closed it */
			announce_receive(d->ann, d->eng, d->now);
		break;
	case EV_TAG_NETWATCH:
		if (netwatch_receive(d->nw) < 0) {
			d->st.watch_errors++;
			log_warn("rtnetlink receive");
		}
		masqd_fp_follow_external(d);
		break;
	default:
		break;
	}
}

int masqd_run(struct masqd *d)
{
	struct epoll_event evs[8];

	while (d->running) {
		int n;

		masqd_arm_timer(d);
		/* the loop's element changes before the verdicts: a flow's
		 * next packet, sent once its answer got through, finds them */
		/* (a slice of them: the rest at the next turns, which do not
		 * wait for events while some remain) */
		(void)fastpath_commit_max(d->fp, MASQD_FP_OPS_BUDGET);
		(void)nfqueue_flush(d->nfq);   /* before sleeping */
		/* bulk work under way (fast path changes, a dump): poll,
		 * then a slice of it; a dump the log could not take more
		 * of waits a little for journald to read */
		n = epoll_wait(d->epfd, evs, 8, masqd_bulk_wait_ms(d));
		if (n < 0) {
			if (errno != EINTR)
				log_warn("epoll_wait");
			continue;
		}
		d->now = engine_now();
		for (int i = 0; i < n; i++)
			masqd_dispatch(d, evs[i].data.u32, evs[i].events);
		if (d->dump.active)
			masqd_dump_step(d);
		if (d->state_dirty)
			masqd_state_changed(d);
	}
	notify_stopping();
	d->now = engine_now();
	masqd_stop_fastpath(d);  /* counters credited before the save */
	nfqueue_close(d->nfq);   /* last verdicts, then the queue goes */
	d->nfq = NULL;
	control_finish_work(d->ctl);   /* a flush under way ends first */
	masqd_save_state(d, "stop");
	log_info("stopped");
	return 0;
}
