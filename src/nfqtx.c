/*
 * The NFQUEUE verdict buffer: see nfqtx.h. Pure: builds messages with
 * libnetfilter_queue's helpers, sends nothing.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <stdint.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "nfqtx.h"

size_t nfq_tx_capacity(size_t verdict_buffer)
{
	return verdict_buffer > NFQ_TX_VERDICT_MAX ? verdict_buffer
						   : NFQ_TX_VERDICT_MAX;
}

size_t nfq_tx_need(bool with_payload, size_t len)
{
	return NFQ_TX_OVERHEAD + (with_payload ? MNL_ALIGN(len) : 0);
}

bool nfq_tx_must_flush(const struct nfq_tx *tx, size_t need)
{
	if (tx->used == 0)
		return false;   /* alone it goes, however large */
	return tx->used + need > tx->limit || tx->used + need > tx->cap;
}

int nfq_tx_put(struct nfq_tx *tx, uint16_t queue, uint32_t id, int verdict,
	       const uint8_t *payload, size_t len)
{
	struct nlmsghdr *nlh;

	if ((payload != NULL && len > NFQ_TX_PAYLOAD_MAX) ||
	    tx->used + nfq_tx_need(payload != NULL, len) > tx->cap) {
		errno = EMSGSIZE;
		return -1;
	}
	nlh = nfq_nlmsg_put(tx->buf + tx->used, NFQNL_MSG_VERDICT, queue);
	nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
	if (payload != NULL)
		nfq_nlmsg_verdict_put_pkt(nlh, payload, (uint32_t)len);
	tx->used += NLMSG_ALIGN(nlh->nlmsg_len);
	tx->msgs++;
	return 0;
}

void nfq_tx_reset(struct nfq_tx *tx)
{
	tx->used = 0;
	tx->msgs = 0;
}
