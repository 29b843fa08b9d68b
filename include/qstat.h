/*
 * The kernel's own view of an NFQUEUE queue, from
 * /proc/self/net/netfilter/nfnetlink_queue: one line per bound queue,
 *   queue portid waiting copy_mode copy_range queue_dropped user_dropped
 *   id_sequence 1
 * The drops there are the ones the daemon cannot see (the packet never
 * reached it): the queue was at its max_len, or our socket buffer was full.
 */
#ifndef IPSEC_MASQD_QSTAT_H
#define IPSEC_MASQD_QSTAT_H

#include <stddef.h>
#include <stdint.h>

#define QSTAT_PROC_PATH "/proc/self/net/netfilter/nfnetlink_queue"

struct qstat {
	uint32_t portid;        /* netlink port bound to the queue */
	uint32_t waiting;       /* packets queued, awaiting a verdict */
	uint32_t queue_full;    /* dropped at enqueue: queue at max_len */
	uint32_t socket_full;   /* dropped: the listener's rcvbuf was full */
	uint32_t id_sequence;   /* last packet id handed out */
};

/*
 * Finds queue `queue` in the file's text (NUL-terminated). Returns 0 and
 * fills *out, or -1 when the queue is not listed or its line is garbled.
 */
int qstat_parse(const char *text, unsigned queue, struct qstat *out);

/* Reads QSTAT_PROC_PATH (or `path` when not NULL) and parses it. Returns 0,
 * or -1 with errno (ENOENT also when the queue is not listed). */
int qstat_read(const char *path, unsigned queue, struct qstat *out);

#endif
