/*
 * The NFQUEUE socket: libmnl + libnetfilter_queue, one queue, copy mode
 * packet with range 0xffff, fail-closed (no fail-open, no GSO). Messages are
 * read in batches with recvmmsg(2); each packet is handed to a callback that
 * returns the verdict; verdicts are appended to one send buffer and flushed
 * when it is full and at the end of each batch, so every queued packet
 * leaves with exactly one verdict and a batch costs one or two sends.
 */
#ifndef IPSEC_MASQD_NFQ_H
#define IPSEC_MASQD_NFQ_H

#include <stddef.h>
#include <stdint.h>

enum nfqueue_verdict {
	NFQUEUE_ACCEPT,           /* unchanged */
	NFQUEUE_ACCEPT_MODIFIED,  /* payload rewritten in place, same length */
	NFQUEUE_DROP,
};

/* The hooks our rules queue from (linux/netfilter.h numbering). */
#define NFQUEUE_HOOK_PRE_ROUTING 0   /* NF_INET_PRE_ROUTING: inbound */
#define NFQUEUE_HOOK_POST_ROUTING 4  /* NF_INET_POST_ROUTING: outbound */

/*
 * Called once per queued packet with its id, its hook and its payload (an
 * IPv4 packet that the callback may rewrite in place, length unchanged).
 * Returns the verdict for the packet.
 */
typedef enum nfqueue_verdict (*nfqueue_packet_fn)(void *ctx, uint32_t id,
						  unsigned hook,
						  uint8_t *payload,
						  size_t len);

struct nfqueue_stats {
	uint64_t received;       /* packets handed to the callback or dropped */
	uint64_t accepted;       /* verdict NF_ACCEPT, payload unchanged */
	uint64_t modified;       /* verdict NF_ACCEPT with NFQA_PAYLOAD */
	uint64_t dropped;        /* verdict NF_DROP (callback or ours) */
	uint64_t bad_packet;     /* no payload / truncated copy: dropped */
	uint64_t bad_message;    /* unparseable netlink message: skipped */
	uint64_t verdict_errors; /* verdict sends that failed, kernel NACKs */
	uint64_t verdicts_retried; /* failed sends kept for another try */
	uint64_t verdicts_lost;  /* verdicts given up after retries */
	uint64_t enobufs;        /* ENOBUFS on receive: kernel dropped some */
	uint64_t recv_errors;    /* other receive errors */
	uint64_t flushes;        /* send buffers written */
	uint64_t batches;        /* recvmmsg calls that returned messages */
	uint64_t batches_full;   /* ... that filled the whole batch: backlog */
	/* The kernel's side, from /proc/self/net/netfilter/nfnetlink_queue at
	 * the last nfqueue_refresh_kernel_stats() (see qstat.h). */
	uint64_t kernel_waiting;      /* packets in the queue awaiting verdict */
	uint64_t kernel_queue_full;   /* dropped: queue at max_len */
	uint64_t kernel_socket_full;  /* dropped: our receive buffer full */
};

/* The socket's tunables (config io = { ... }); zero fields take defaults. */
struct nfqueue_params {
	unsigned batch;           /* messages per recvmmsg: NFQUEUE_BATCH */
	size_t receive_buffer;    /* SO_RCVBUF(FORCE) bytes: 8 MiB */
	size_t verdict_buffer;    /* verdict bytes per send: 128 KiB */
	uint32_t queue_maxlen;    /* kernel queue length: NFQUEUE_MAXLEN */
};

#define NFQUEUE_BATCH 64
#define NFQUEUE_BATCH_MAX 1024
#define NFQUEUE_RCVBUF (8u * 1024 * 1024)
#define NFQUEUE_TXBUF (128u * 1024)
#define NFQUEUE_TXBUF_MIN (16u * 1024)
#define NFQUEUE_TXBUF_MAX (4u * 1024 * 1024)
#define NFQUEUE_MAXLEN 4096

struct nfqueue;

/*
 * Opens the netlink socket, binds queue `queue_num` (copy mode packet, range
 * 0xffff, the params' kernel queue length), waits for the kernel's
 * acknowledgements and makes the socket non-blocking. Packets are given to
 * cb(ctx, ...). Returns the handle, or NULL with errno (EBUSY: the queue is
 * bound by another process; EPERM: no CAP_NET_ADMIN).
 */
struct nfqueue *nfqueue_open(unsigned queue_num,
			     const struct nfqueue_params *params,
			     nfqueue_packet_fn cb, void *ctx);

/*
 * Applies new params to an open queue (reload): batch and buffers at once,
 * the kernel queue length by a config message. Returns 0, or -1 with errno
 * when something could not be applied (the rest is).
 */
int nfqueue_tune(struct nfqueue *q, const struct nfqueue_params *params);

/* Reads the kernel's counters for our queue into the stats. Returns 0, or
 * -1 with errno (no /proc, queue not listed). */
int nfqueue_refresh_kernel_stats(struct nfqueue *q);

/* The socket to poll for input. */
int nfqueue_fd(const struct nfqueue *q);

/*
 * Receives and handles up to max_msgs messages without blocking, in
 * recvmmsg batches, then flushes the pending verdicts. Returns the number
 * of messages handled (0 when none was waiting), or -1 with errno on a
 * socket error other than EAGAIN/EINTR/ENOBUFS (ENOBUFS is counted and
 * survived).
 */
int nfqueue_receive(struct nfqueue *q, unsigned max_msgs);

/* Sends the batched verdicts now. Returns 0, or -1 with errno when some
 * verdict could not be delivered (counted). */
int nfqueue_flush(struct nfqueue *q);

const struct nfqueue_stats *nfqueue_get_stats(const struct nfqueue *q);

/*
 * Gives packets waiting in the queue their verdicts (through the callback)
 * and flushes, bounded: at most what the kernel held when it began (plus one
 * batch) and at most max_ms, so that a flood cannot keep it going. Returns
 * the number of messages handled.
 */
uint64_t nfqueue_drain(struct nfqueue *q, unsigned max_ms);

/* Stop: nfqueue_drain() for at most 250 ms, then unbinds the queue (the
 * kernel drops what is still queued: fail closed) and closes. Safe with
 * NULL. */
void nfqueue_close(struct nfqueue *q);

#endif
