/*
 * The kernel fast path: established ESP associations rewritten by nftables
 * in a table the daemon owns (table ip ipsec_masqd_fast), so that their
 * packets are never queued. The daemon stays the control plane: the
 * engine decides, and this module mirrors its established entries into
 * two kernel sets, through nf_tables netlink (libnftnl + libmnl, batched
 * transactions, no nft process):
 *
 *   set out: host . remote . out-SPI            (postrouting, priority -160:
 *            ip saddr set EXT)                   before mangle's queue rule)
 *   map in:  remote . in-SPI : host              (prerouting, priority -160:
 *            ip daddr set the host, when the     before mangle's queue rule)
 *            destination is EXT)
 *
 * A rewritten packet no longer matches the queue rules (-s LAN outbound,
 * -d EXT inbound), so it is not queued; the IP header checksum follows
 * (ESP has no L4 checksum). Every element carries a kernel timeout no
 * longer than its entry's remaining lifetime, so nothing outlives its
 * entry if the daemon dies. Per-element counters tell the daemon what the
 * kernel forwarded: each association's are asked for (GETSETELEM of its
 * keys, batched) shortly before its elements expire (fpcheck.h); one used
 * there is credited to the engine and its elements' timeouts renewed, an
 * idle one expires on time. Nothing reads a whole set: a dump costs the
 * kernel O(N^2). The totals come from two named counters in the rules
 * (fast_out, fast_in), read every fastpath.poll.
 *
 * Optionally (admit_rate) what still reaches the queue from the WAN (ESP
 * and UDP/500 to EXT that missed the map) is admitted at a bounded rate in
 * the same chain, the excess dropped in the kernel and counted; so is what
 * the LAN hosts send that would be queued (ESP, AH and UDP from or to port
 * 500 from an internal prefix to outside them, that missed the out set),
 * in a bucket of its own (postrouting, ahead of the queue rule).
 */
#ifndef IPSEC_MASQD_FASTPATH_H
#define IPSEC_MASQD_FASTPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define FASTPATH_TABLE "ipsec_masqd_fast"
#define FASTPATH_PRIORITY (-160)    /* after conntrack, before mangle */

/* What fastpath_offloaded() says of an association. */
#define FASTPATH_IN 1u
#define FASTPATH_OUT 2u

struct fastpath_stats {
	uint64_t entries;        /* associations offloaded now */
	uint64_t installed;      /* offloads requested */
	uint64_t removed;        /* removals requested */
	uint64_t refreshed;      /* element timeouts renewed after use */
	uint64_t reinstalled;    /* elements the kernel had dropped, put back */
	uint64_t pkts_out, bytes_out, pkts_in, bytes_in;  /* kernel-forwarded,
				  * as of the last read of the totals */
	uint64_t commits;        /* transactions sent */
	uint64_t errors;         /* operations the kernel refused */
	uint64_t checks;         /* elements whose counters were asked for */
	uint64_t check_requests; /* sendmsg()s that asked */
	uint64_t check_errors;   /* checks the kernel did not answer */
	uint64_t checks_idle;    /* associations found idle, left to expire */
	uint64_t checks_late;    /* asked after the kernel timed them out */
	uint64_t expired_unchecked;  /* the engine expired one not yet asked */
	uint64_t reads;          /* reads of the totals */
	uint64_t read_errors;
	uint64_t admit_dropped;  /* queued-bound packets over admit_rate */
	uint64_t admit_dropped_bytes;
	uint64_t admit_lan_dropped;  /* the same from the LAN side */
	uint64_t last_check_us;  /* duration of the last slice of checks */
	uint64_t last_commit_us; /* duration of the last transaction */
};

/* Admission in front of the queue: packets per second, burst; rate 0
 * means no limit. The same rate applies, in a bucket of its own, to what
 * the LAN hosts (the internal prefixes) send to the queue. */
struct fastpath_admit {
	unsigned rate, burst;
	const struct prefix4 *lan;   /* the internal prefixes */
	size_t n_lan;
};

struct fastpath;

/*
 * Opens the nf_tables socket and creates the table afresh in one
 * transaction (a table left by an earlier run, with its elements, is
 * replaced), with rules for external address ext (0: none yet, nothing is
 * rewritten). Returns the handle, or NULL with errno (logged).
 */
struct fastpath *fastpath_open(uint32_t ext, const struct fastpath_admit *a);

/* Deletes the table (clean stop) when remove_table, closes the socket.
 * Safe with NULL. */
void fastpath_close(struct fastpath *fp, bool remove_table);

/* The rules again for a new external address or admission setting, in one
 * transaction. Returns 0 or -1. */
int fastpath_set_rules(struct fastpath *fp, uint32_t ext,
		       const struct fastpath_admit *a);

/*
 * Mirrors association (remote, spi_in) -> host, with out-SPI spi_out (0:
 * not known yet, inbound only), whose lifetime is life_ms with remain_ms
 * left at now (ms, the engine's clock). Replaces what was offloaded under
 * either SPI. Queued for the next fastpath_commit(). Returns 0 or
 * -1/ENOMEM.
 */
int fastpath_offload(struct fastpath *fp, uint32_t remote, uint32_t host,
		     uint32_t spi_out, uint32_t spi_in, uint64_t now,
		     uint64_t life_ms, uint64_t remain_ms);

/* Removes association (remote, spi_in), if offloaded (queued); expired:
 * because the engine's timer ended it (counted when its check had not
 * come yet). */
void fastpath_forget(struct fastpath *fp, uint32_t remote, uint32_t spi_in,
		     bool expired);

/* Association (remote, spi_in) checked at most within_ms after each check
 * from now on (0: only near its expiry, the default): a provisional one,
 * which its use in the kernel confirms. */
void fastpath_recheck(struct fastpath *fp, uint32_t remote, uint32_t spi_in,
		      uint64_t now, uint32_t within_ms);

/* FASTPATH_IN | FASTPATH_OUT as offloaded, 0 when not. */
unsigned fastpath_offloaded(const struct fastpath *fp, uint32_t remote,
			    uint32_t spi_in);

/* Sends what is queued, in as few transactions as fit. Returns 0, or -1
 * when some operation failed (counted, logged). */
int fastpath_commit(struct fastpath *fp);

/* Sends at most max of the queued element changes, oldest first (a
 * million offloads at once would otherwise hold the loop for seconds).
 * Returns how many are still queued. */
size_t fastpath_commit_max(struct fastpath *fp, size_t max);

/* Element changes queued and not yet sent. */
size_t fastpath_pending(const struct fastpath *fp);

/*
 * Called per checked association with its use by the kernel since the
 * last check (zero when idle). It credits the engine and returns 1 with
 * the entry's lifetime and what is left of it at the check's time, or 0
 * when the engine has no such entry of that host any more (the elements
 * go). It may end the entry it is called for, no other.
 */
typedef int (*fastpath_use_fn)(void *ctx, uint32_t remote, uint32_t spi_in,
			       uint32_t host, const struct engine_esp_use *use,
			       uint64_t *life_ms, uint64_t *remain_ms);

/*
 * Checks up to budget associations whose check time is at or before now
 * (every association, earliest first, when all): asks the kernel for
 * their elements' counters, calls fn for each, queues and commits the
 * renewals. Returns the number checked (the loop calls again while
 * fastpath_next_check() <= now).
 */
size_t fastpath_check(struct fastpath *fp, uint64_t now, size_t budget,
		      bool all, fastpath_use_fn fn, void *ctx);

/* When the next check is due (ms), UINT64_MAX when none. */
uint64_t fastpath_next_check(const struct fastpath *fp);

/* Reads the totals (fast_out, fast_in) and the admission counter into the
 * stats: three small requests, whatever the number of elements. */
int fastpath_read_totals(struct fastpath *fp);

const struct fastpath_stats *fastpath_get_stats(const struct fastpath *fp);

#endif
