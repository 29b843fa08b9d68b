/*
 * The NFQUEUE verdict buffer: see nfqtx.h. Pure: builds messages with
 * libnetfilter_queue's helpers, sends nothing.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

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

/* Collects NFQA_VERDICT_HDR and NFQA_PAYLOAD; callback of mnl_attr_parse. */
static int nfq_retry_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type == NFQA_VERDICT_HDR || type == NFQA_PAYLOAD)
		tb[type] = attr;
	return MNL_CB_OK;
}

int nfq_retry_add(struct nfq_retry *r, const void *msg)
{
	const struct nlmsghdr *nlh = msg;
	const struct nlattr *tb[NFQA_MAX + 1] = { NULL };
	const struct nfqnl_msg_verdict_hdr *vh;

	if (nlh->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT) ||
	    mnl_attr_parse(nlh, sizeof(struct nfgenmsg), nfq_retry_attr_cb,
			   tb) < 0 ||
	    tb[NFQA_VERDICT_HDR] == NULL ||
	    mnl_attr_get_payload_len(tb[NFQA_VERDICT_HDR]) < sizeof(*vh) ||
	    r->n >= NFQ_RETRY_MAX)
		return -1;
	vh = mnl_attr_get_payload(tb[NFQA_VERDICT_HDR]);
	r->id[r->n] = ntohl(vh->id);
	/* without its rewritten payload, an accept would let the original
	 * (LAN source) out: drop it */
	r->verdict[r->n] = tb[NFQA_PAYLOAD] != NULL ||
			   ntohl(vh->verdict) != NF_ACCEPT ? NF_DROP : NF_ACCEPT;
	r->n++;
	return 0;
}

unsigned nfq_retry_put(struct nfq_retry *r, struct nfq_tx *tx,
		       uint16_t queue)
{
	unsigned done = 0;

	while (done < r->n &&
	       !nfq_tx_must_flush(tx, nfq_tx_need(false, 0)) &&
	       nfq_tx_put(tx, queue, r->id[done], r->verdict[done], NULL,
			  0) == 0)
		done++;
	memmove(r->id, r->id + done, (r->n - done) * sizeof(r->id[0]));
	memmove(r->verdict, r->verdict + done,
		(r->n - done) * sizeof(r->verdict[0]));
	r->n -= done;
	return done;
}
