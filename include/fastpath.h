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
 * entry if the daemon dies. Per-element counters, read every poll
 * interval, tell the daemon what the kernel forwarded; an entry used
 * there is credited to the engine and its elements' timeouts renewed.
 *
 * Optionally (admit_rate) what still reaches the queue from the WAN (ESP
 * and UDP/500 to EXT that missed the map) is admitted at a bounded rate in
 * the same chain, the excess dropped in the kernel and counted.
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
	uint64_t pkts_out, bytes_out, pkts_in, bytes_in;  /* kernel-forwarded */
	uint64_t commits;        /* transactions sent */
	uint64_t errors;         /* operations the kernel refused */
	uint64_t polls;          /* counter reads */
	uint64_t poll_errors;
	uint64_t admit_dropped;  /* queued-bound packets over admit_rate */
	uint64_t admit_dropped_bytes;
	uint64_t last_poll_us;   /* duration of the last counter read */
	uint64_t last_commit_us; /* duration of the last transaction */
};

/* Admission in front of the queue: packets per second, burst; rate 0
 * means no limit. */
struct fastpath_admit {
	unsigned rate, burst;
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
 * left. Replaces what was offloaded under either SPI. Queued for the next
 * fastpath_commit(). Returns 0 or -1/ENOMEM.
 */
int fastpath_offload(struct fastpath *fp, uint32_t remote, uint32_t host,
		     uint32_t spi_out, uint32_t spi_in, uint64_t life_ms,
		     uint64_t remain_ms);

/* Removes association (remote, spi_in), if offloaded (queued). */
void fastpath_forget(struct fastpath *fp, uint32_t remote, uint32_t spi_in);

/* FASTPATH_IN | FASTPATH_OUT as offloaded, 0 when not. */
unsigned fastpath_offloaded(const struct fastpath *fp, uint32_t remote,
			    uint32_t spi_in);

/* Sends what is queued, in as few transactions as fit. Returns 0, or -1
 * when some operation failed (counted, logged). */
int fastpath_commit(struct fastpath *fp);

/*
 * Called per offloaded association after a counter read, with its use by
 * the kernel since the last read (zero when idle). It credits the engine
 * and returns 1 with the entry's lifetime and what is left of it (to renew
 * the elements of a used or lost association), or 0 when the engine has
 * no such entry of that host any more (the elements go).
 */
typedef int (*fastpath_use_fn)(void *ctx, uint32_t remote, uint32_t spi_in,
			       uint32_t host, const struct engine_esp_use *use,
			       uint64_t *life_ms, uint64_t *remain_ms);

/* Reads the kernel's per-element counters and the admission counter,
 * calls fn as above, queues the renewals. Returns 0 or -1. */
int fastpath_poll(struct fastpath *fp, fastpath_use_fn fn, void *ctx);

const struct fastpath_stats *fastpath_get_stats(const struct fastpath *fp);

#endif
