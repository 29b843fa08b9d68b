/*
 * The NFQUEUE verdict buffer (nfq.c's send side), without the socket:
 * verdict messages are appended to one buffer that is sent when full and at
 * the end of each batch. Why a module of its own: its bound is a safety rule
 * (a rewritten payload may be 64 KiB, whatever io.verdict_buffer says) that
 * the unit tests check with real messages and no netlink socket.
 *
 * The rule: the buffer holds `cap` bytes, never less than one maximal
 * verdict (NFQ_TX_VERDICT_MAX); a send should carry at most `limit` bytes
 * (io.verdict_buffer, or what the kernel's send buffer allows). Before each
 * verdict the caller asks nfq_tx_must_flush(): it flushes when the verdict
 * would pass the limit, so a verdict larger than the limit goes out alone,
 * and nfq_tx_put() never writes past cap.
 */
#ifndef IPSEC_MASQD_NFQTX_H
#define IPSEC_MASQD_NFQTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Worst case of one verdict message besides its payload. */
#define NFQ_TX_OVERHEAD 128
/* The largest payload: one netlink attribute (16-bit length with its 4-byte
 * header) holds it; the kernel's copy range stops there too
 * (NFQNL_MAX_COPY_RANGE), so a longer packet reaches us cut and is dropped.
 * A longer payload would not fit the attribute: libnetfilter_queue would
 * leave it out and the verdict would accept the packet unchanged. */
#define NFQ_TX_PAYLOAD_MAX (0xffffu - 4u)
/* One verdict with the largest payload. */
#define NFQ_TX_VERDICT_MAX (NFQ_TX_OVERHEAD + ((NFQ_TX_PAYLOAD_MAX + 3u) & ~3u))

struct nfq_tx {
	char *buf;       /* cap bytes */
	size_t cap;      /* allocated: nfq_tx_capacity(verdict_buffer) */
	size_t limit;    /* bytes one send should carry */
	size_t used;     /* bytes of whole messages in buf */
	unsigned msgs;   /* messages in buf */
};

/* Bytes to allocate for a configured verdict buffer: at least one maximal
 * verdict. */
size_t nfq_tx_capacity(size_t verdict_buffer);

/* Bytes a verdict may take: with the payload of len bytes or without. */
size_t nfq_tx_need(bool with_payload, size_t len);

/* True when the buffer must be flushed before a verdict of `need` bytes:
 * it would pass the limit (or the capacity) and the buffer is not empty. */
bool nfq_tx_must_flush(const struct nfq_tx *tx, size_t need);

/*
 * Appends the verdict of packet `id` (NF_ACCEPT / NF_DROP), with payload
 * when payload != NULL. Returns 0, or -1 with errno EMSGSIZE when it does
 * not fit into what is left of cap (nothing written): flush first, and a
 * payload longer than NFQ_TX_PAYLOAD_MAX never fits.
 */
int nfq_tx_put(struct nfq_tx *tx, uint16_t queue, uint32_t id, int verdict,
	       const uint8_t *payload, size_t len);

/* Empties the buffer (after a send). */
void nfq_tx_reset(struct nfq_tx *tx);

/*
 * Verdicts that could not be sent (the kernel refused the send after the
 * retries: ENOBUFS, ENOMEM, EMSGSIZE...), to be sent again with the next
 * flush instead of leaving their packets in the kernel queue until the
 * queue is unbound. Only the packet id and a bare verdict are kept: a
 * rewritten payload is not, so such a packet is dropped (fail closed).
 */
#define NFQ_RETRY_MAX 1024

struct nfq_retry {
	uint32_t id[NFQ_RETRY_MAX];
	uint8_t verdict[NFQ_RETRY_MAX];   /* NF_ACCEPT or NF_DROP */
	unsigned n;
};

/* Remembers the verdict message nlh (one of nfq_tx_put's): its id, its
 * verdict, NF_DROP when it carried a payload. Returns 0, or -1 when the
 * message is not a verdict or the list is full (the verdict is lost). */
int nfq_retry_add(struct nfq_retry *r, const void *nlh);

/* Appends the remembered verdicts to tx (those that fit) and forgets them.
 * Returns how many. */
unsigned nfq_retry_put(struct nfq_retry *r, struct nfq_tx *tx,
		       uint16_t queue);

#endif
