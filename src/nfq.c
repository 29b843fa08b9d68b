/*
 * NFQUEUE over libmnl + libnetfilter_queue (after the shape of
 * libnetfilter_queue's examples/nf-queue.c). One socket, one queue; the
 * per-packet path only parses attributes into a stack array, calls the
 * callback and appends a verdict to a buffer allocated at open.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "nfq.h"
#include "nfqtx.h"
#include "qstat.h"

_Static_assert(NFQUEUE_HOOK_PRE_ROUTING == NF_INET_PRE_ROUTING, "hooks");
_Static_assert(NFQUEUE_HOOK_POST_ROUTING == NF_INET_POST_ROUTING, "hooks");

#define NFQ_COPY_RANGE 0xffff
/*
 * One packet message: a whole 64 KiB packet plus its attributes. A batch
 * has one such slot per message; only the pages a message touches become
 * resident, so 64 slots of 1500-byte packets cost ~64 pages, not 6 MiB.
 */
#define NFQ_RXBUF_MIN (0xffff + MNL_SOCKET_BUFFER_SIZE / 2)
/* Slots are laid end to end: a multiple of 64 keeps each one aligned for
 * struct nlmsghdr (and on its own cache line). */
#define NFQ_RXBUF ((NFQ_RXBUF_MIN + 63) & ~(size_t)63)
#define NFQ_SEND_TRIES 3
#define NFQ_ACK_TIMEOUT_MS 3000
/* The drain at close: at most this long (see nfqueue_close). */
#define NFQ_CLOSE_DRAIN_MS 250

struct nfqueue {
	struct mnl_socket *nl;
	unsigned queue;
	uint32_t portid;
	nfqueue_packet_fn cb;
	void *ctx;
	struct nfqueue_params params;  /* in force, defaults filled in */
	char *rx;              /* rx_slots slots of NFQ_RXBUF */
	unsigned rx_slots;     /* allocated: >= params.batch */
	struct mmsghdr *rx_msgs;
	struct iovec *rx_iov;
	struct sockaddr_nl *rx_from;
	struct nfq_tx tx;      /* verdicts; limit <= params.verdict_buffer */
	struct nfq_retry retry;   /* verdicts a send lost: sent again */
	uint32_t cfg_seq;      /* first seq of the config exchange */
	unsigned acks_wanted;  /* config acks still expected */
	int ack_errno;         /* first config NACK */
	struct nfqueue_stats st;
};

/* Fills the zero fields of *p with the defaults and clamps the rest. */
static void nfqueue_params_fill(struct nfqueue_params *p)
{
	if (p->batch == 0)
		p->batch = NFQUEUE_BATCH;
	if (p->batch > NFQUEUE_BATCH_MAX)
		p->batch = NFQUEUE_BATCH_MAX;
	if (p->receive_buffer == 0)
		p->receive_buffer = NFQUEUE_RCVBUF;
	if (p->verdict_buffer == 0)
		p->verdict_buffer = NFQUEUE_TXBUF;
	if (p->verdict_buffer < NFQUEUE_TXBUF_MIN)
		p->verdict_buffer = NFQUEUE_TXBUF_MIN;
	if (p->verdict_buffer > NFQUEUE_TXBUF_MAX)
		p->verdict_buffer = NFQUEUE_TXBUF_MAX;
}

/*
 * Why: a burst of queued packets must not overflow the socket while the loop
 * is busy, and a batch of verdicts must go in one datagram, which netlink
 * refuses when larger than sk_sndbuf - 32. Root (CAP_NET_ADMIN) may pass
 * net.core.[rw]mem_max with SO_*BUFFORCE; otherwise take what SO_RCVBUF /
 * SO_SNDBUF allow. Returns 0 or -1.
 */
static int nfqueue_set_bufs(int fd, const struct nfqueue_params *p)
{
	int rcv = (int)p->receive_buffer;
	/* The kernel halves it; a maximal verdict going out alone must fit. */
	int snd = (int)(2 * nfq_tx_capacity(p->verdict_buffer));
	int r = 0;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)))
		r = -1;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd)) &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd)))
		r = -1;
	return r;
}

/* How many verdict bytes one send may carry: the configured buffer, or less
 * when the kernel granted a smaller send buffer. */
static size_t nfqueue_tx_limit(int fd, size_t want)
{
	int snd = 0;
	socklen_t len = sizeof(snd);

	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, &len) == 0 &&
	    snd > 4096 && (size_t)snd - 1024 < want)
		return (size_t)snd - 1024;
	return want;
}

/*
 * Makes room for `slots` receive slots (never shrinks). Returns 0, or -1
 * with errno (the old slots stay).
 */
static int nfqueue_rx_reserve(struct nfqueue *q, unsigned slots)
{
	struct mmsghdr *msgs;
	struct iovec *iov;
	struct sockaddr_nl *from;
	char *rx;

	if (slots <= q->rx_slots)
		return 0;
	rx = malloc((size_t)slots * NFQ_RXBUF);
	msgs = calloc(slots, sizeof(*msgs));
	iov = calloc(slots, sizeof(*iov));
	from = calloc(slots, sizeof(*from));
	if (rx == NULL || msgs == NULL || iov == NULL || from == NULL) {
		free(rx);
		free(msgs);
		free(iov);
		free(from);
		return -1;
	}
	for (unsigned i = 0; i < slots; i++) {
		iov[i].iov_base = rx + (size_t)i * NFQ_RXBUF;
		iov[i].iov_len = NFQ_RXBUF;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &from[i];
	}
	free(q->rx);
	free(q->rx_msgs);
	free(q->rx_iov);
	free(q->rx_from);
	q->rx = rx;
	q->rx_msgs = msgs;
	q->rx_iov = iov;
	q->rx_from = from;
	q->rx_slots = slots;
	return 0;
}

/* Makes the verdict buffer hold `verdict_buffer` bytes and one maximal
 * verdict at least; only between flushes. Returns 0, or -1 with errno (the
 * old buffer stays). */
static int nfqueue_tx_resize(struct nfqueue *q, size_t verdict_buffer)
{
	size_t cap = nfq_tx_capacity(verdict_buffer);
	char *tx = realloc(q->tx.buf, cap);

	if (tx == NULL)
		return -1;
	q->tx.buf = tx;
	q->tx.cap = cap;
	return 0;
}

/*
 * Opens and binds the netlink socket with the options the daemon relies on.
 * Returns 0, or -1 with errno.
 */
static int nfqueue_socket_setup(struct nfqueue *q)
{
	int fd, one = 1;

	q->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (q->nl == NULL)
		return -1;
	if (mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -1;
	q->portid = mnl_socket_get_portid(q->nl);
	fd = mnl_socket_get_fd(q->nl);
	(void)nfqueue_set_bufs(fd, &q->params);   /* best effort */
	/*
	 * When the receive buffer overflows, the kernel has already dropped the
	 * packets it could not deliver (we queue without bypass), and the
	 * ENOBUFS it would report next can neither bring them back nor tell us
	 * which they were: it would only abort a drain loop. So we ask it not
	 * to report; nfqueue_receive() still counts and survives one anyway.
	 */
	if (setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one,
		       sizeof(one)) < 0)
		return -1;
	return 0;
}

/*
 * Appends the BIND, PARAMS and flags messages (each asking for an ack) to
 * buf. Flags: FAIL_OPEN and GSO explicitly off (masked, value 0) - without
 * the daemon ESP must stop, and GSO would hand us unfinished UDP checksums.
 * Returns the bytes used.
 */
static size_t nfqueue_build_config(struct nfqueue *q, char *buf)
{
	struct nlmsghdr *nlh;
	size_t used = 0;
	unsigned n = 0;

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->queue);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = q->cfg_seq + n++;
	used += NLMSG_ALIGN(nlh->nlmsg_len);

	nlh = nfq_nlmsg_put(buf + used, NFQNL_MSG_CONFIG, q->queue);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, NFQ_COPY_RANGE);
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK,
			 htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO));
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(0));
	if (q->params.queue_maxlen != 0)
		nfq_nlmsg_cfg_put_qmaxlen(nlh, q->params.queue_maxlen);
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = q->cfg_seq + n++;
	used += NLMSG_ALIGN(nlh->nlmsg_len);

	q->acks_wanted = n;
	return used;
}

static void nfqueue_handle_buffer(struct nfqueue *q, const char *buf,
				  size_t len);

/*
 * Waits (blocking, bounded) until every config message is acknowledged;
 * packets that arrive meanwhile go through the normal path. Returns 0, or -1
 * with the kernel's errno (or ETIMEDOUT).
 */
static int nfqueue_wait_acks(struct nfqueue *q)
{
	struct pollfd pfd = { .fd = mnl_socket_get_fd(q->nl),
			      .events = POLLIN };
	int waited = 0;

	while (q->acks_wanted > 0 && q->ack_errno == 0) {
		int r = poll(&pfd, 1, 100);
		ssize_t n;

		if (r < 0 && errno != EINTR)
			return -1;
		if (r <= 0) {
			waited += 100;
			if (waited >= NFQ_ACK_TIMEOUT_MS) {
				errno = ETIMEDOUT;
				return -1;
			}
			continue;
		}
		n = mnl_socket_recvfrom(q->nl, q->rx, NFQ_RXBUF);   /* slot 0 */
		if (n < 0) {
			if (errno == EINTR || errno == ENOBUFS)
				continue;
			return -1;
		}
		nfqueue_handle_buffer(q, q->rx, (size_t)n);
	}
	(void)nfqueue_flush(q);
	if (q->ack_errno != 0) {
		errno = q->ack_errno;
		return -1;
	}
	return 0;
}

/*
 * Binds the queue and waits for the kernel to confirm. Returns 0, or -1
 * with errno.
 */
static int nfqueue_bind_queue(struct nfqueue *q)
{
	size_t len;

	q->cfg_seq = (uint32_t)time(NULL) | 1;
	len = nfqueue_build_config(q, q->tx.buf);
	if (mnl_socket_sendto(q->nl, q->tx.buf, len) < 0)
		return -1;
	return nfqueue_wait_acks(q);
}

/* Why: the loop must never block on the queue. Returns 0 or -1. */
static int nfqueue_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Frees whatever nfqueue_open got so far. */
static void nfqueue_destroy(struct nfqueue *q)
{
	int saved = errno;

	if (q->nl != NULL)
		mnl_socket_close(q->nl);
	free(q->rx);
	free(q->rx_msgs);
	free(q->rx_iov);
	free(q->rx_from);
	free(q->tx.buf);
	free(q);
	errno = saved;
}

struct nfqueue *nfqueue_open(unsigned queue_num,
			     const struct nfqueue_params *params,
			     nfqueue_packet_fn cb, void *ctx)
{
	struct nfqueue *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->queue = queue_num;
	q->cb = cb;
	q->ctx = ctx;
	if (params != NULL)
		q->params = *params;
	nfqueue_params_fill(&q->params);
	if (nfqueue_rx_reserve(q, q->params.batch) < 0 ||
	    nfqueue_tx_resize(q, q->params.verdict_buffer) < 0 ||
	    nfqueue_socket_setup(q) < 0) {
		nfqueue_destroy(q);
		return NULL;
	}
	q->tx.limit = nfqueue_tx_limit(mnl_socket_get_fd(q->nl),
				       q->params.verdict_buffer);
	if (nfqueue_bind_queue(q) < 0 ||
	    nfqueue_set_nonblock(mnl_socket_get_fd(q->nl)) < 0) {
		nfqueue_destroy(q);
		return NULL;
	}
	return q;
}

/* Sends the queue-length config message (no ack asked: a NACK would be
 * counted as a verdict error). Returns 0 or -1 with errno. */
static int nfqueue_send_maxlen(struct nfqueue *q, uint32_t maxlen)
{
	char buf[256];   /* one small config message */
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->queue);

	nfq_nlmsg_cfg_put_qmaxlen(nlh, maxlen);
	return mnl_socket_sendto(q->nl, buf, nlh->nlmsg_len) < 0 ? -1 : 0;
}

int nfqueue_tune(struct nfqueue *q, const struct nfqueue_params *params)
{
	struct nfqueue_params p = *params;
	int fd = mnl_socket_get_fd(q->nl), ret = 0, err = 0;

	nfqueue_params_fill(&p);
	(void)nfqueue_flush(q);   /* the verdict buffer may move */
	if (nfqueue_rx_reserve(q, p.batch) < 0) {
		err = errno;
		p.batch = q->params.batch;
	}
	if (nfqueue_tx_resize(q, p.verdict_buffer) < 0) {
		err = errno;
		p.verdict_buffer = q->params.verdict_buffer;
	}
	if (nfqueue_set_bufs(fd, &p) < 0)
		err = errno;
	q->tx.limit = nfqueue_tx_limit(fd, p.verdict_buffer);
	if (p.queue_maxlen != q->params.queue_maxlen &&
	    nfqueue_send_maxlen(q, p.queue_maxlen != 0 ? p.queue_maxlen
						      : 1024) < 0)
		err = errno;
	q->params = p;
	if (err != 0) {
		errno = err;
		ret = -1;
	}
	return ret;
}

int nfqueue_refresh_kernel_stats(struct nfqueue *q)
{
	struct qstat ks;

	if (qstat_read(NULL, q->queue, &ks) < 0)
		return -1;
	q->st.kernel_waiting = ks.waiting;
	q->st.kernel_queue_full = ks.queue_full;
	q->st.kernel_socket_full = ks.socket_full;
	return 0;
}

int nfqueue_fd(const struct nfqueue *q)
{
	return mnl_socket_get_fd(q->nl);
}

const struct nfqueue_stats *nfqueue_get_stats(const struct nfqueue *q)
{
	return &q->st;
}

/*
 * Sends tx[0..len) once, retrying transient failures. Returns 0 or -1 with
 * errno.
 */
static int nfqueue_send_raw(struct nfqueue *q, const char *buf, size_t len)
{
	for (int tries = 0; tries < NFQ_SEND_TRIES; tries++) {
		if (mnl_socket_sendto(q->nl, buf, len) >= 0)
			return 0;
		if (errno != EINTR && errno != EAGAIN && errno != ENOBUFS &&
		    errno != ENOMEM)
			return -1;
	}
	return -1;
}

/*
 * Why: when the whole batch cannot be sent, each verdict still deserves its
 * own attempt, so that one bad message does not strand the rest in the
 * kernel queue. Returns 0, or -1 when some verdict was lost (counted).
 */
static int nfqueue_send_each(struct nfqueue *q)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)q->tx.buf;
	int len = (int)q->tx.used, ret = 0;

	while (mnl_nlmsg_ok(nlh, len)) {
		if (nfqueue_send_raw(q, (const char *)nlh,
				     nlh->nlmsg_len) < 0) {
			q->st.verdict_errors++;
			/* again with the next flush (a bare verdict), so
			 * that its packet does not hold a queue slot */
			if (nfq_retry_add(&q->retry, nlh) == 0)
				q->st.verdicts_retried++;
			else
				q->st.verdicts_lost++;
			ret = -1;
		}
		nlh = mnl_nlmsg_next(nlh, &len);
	}
	return ret;
}

int nfqueue_flush(struct nfqueue *q)
{
	int ret = 0;

	if (q->retry.n > 0)
		(void)nfq_retry_put(&q->retry, &q->tx, (uint16_t)q->queue);
	if (q->tx.used == 0)
		return 0;
	q->st.flushes++;
	if (nfqueue_send_raw(q, q->tx.buf, q->tx.used) < 0) {
		int saved = errno;

		q->st.verdict_errors++;
		ret = nfqueue_send_each(q);
		errno = saved;
	}
	nfq_tx_reset(&q->tx);
	return ret;
}

/*
 * Appends the one verdict of packet `id` (with the rewritten payload when
 * modified), flushing first when it would pass the send limit: a verdict
 * larger than the limit goes out alone (the buffer always holds one, see
 * nfqtx.h). Counts it. Returns 0, or -1 when a flush lost verdicts.
 */
static int nfqueue_verdict(struct nfqueue *q, uint32_t id,
			   enum nfqueue_verdict v, const uint8_t *payload,
			   size_t len)
{
	bool modified = v == NFQUEUE_ACCEPT_MODIFIED;
	int ret = 0;

	if (nfq_tx_must_flush(&q->tx, nfq_tx_need(modified, len)))
		ret = nfqueue_flush(q);
	if (nfq_tx_put(&q->tx, (uint16_t)q->queue, id,
		       v == NFQUEUE_DROP ? NF_DROP : NF_ACCEPT,
		       modified ? payload : NULL, len) < 0) {
		/* Longer than any packet the kernel copies to us: it cannot
		 * go out rewritten, and unchanged it would leak. */
		q->st.bad_packet++;
		v = NFQUEUE_DROP;
		(void)nfq_tx_put(&q->tx, (uint16_t)q->queue, id, NF_DROP,
				 NULL, 0);
	}
	if (v == NFQUEUE_DROP) {
		q->st.dropped++;
	} else if (modified) {
		q->st.modified++;
	} else {
		q->st.accepted++;
	}
	return ret;
}

/*
 * One NFQNL_MSG_PACKET: parse, ask the callback, give the verdict. A packet
 * whose id we cannot read cannot get a verdict at all (counted); one without
 * a whole payload is dropped (fail closed).
 */
static void nfqueue_handle_packet(struct nfqueue *q, const struct nlmsghdr *nlh)
{
	struct nlattr *attr[NFQA_MAX + 1] = { NULL };
	const struct nfqnl_msg_packet_hdr *ph;
	uint8_t *payload;
	uint32_t id, plen;
	enum nfqueue_verdict v;

	if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL ||
	    mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(*ph)) {
		q->st.bad_message++;
		return;
	}
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	id = ntohl(ph->packet_id);
	q->st.received++;
	if (attr[NFQA_PAYLOAD] == NULL) {
		q->st.bad_packet++;
		(void)nfqueue_verdict(q, id, NFQUEUE_DROP, NULL, 0);
		return;
	}
	payload = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
	plen = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	if (attr[NFQA_CAP_LEN] != NULL &&
	    ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) > plen) {
		q->st.bad_packet++;   /* cut copy: a rewrite would cut it */
		(void)nfqueue_verdict(q, id, NFQUEUE_DROP, NULL, 0);
		return;
	}
	v = q->cb(q->ctx, id, ph->hook, payload, plen);
	(void)nfqueue_verdict(q, id, v, payload, plen);
}

/*
 * An NLMSG_ERROR: the ack or NACK of a config message, or the NACK of a
 * verdict (an id the kernel no longer holds, a bad payload): counted.
 */
static void nfqueue_handle_error(struct nfqueue *q, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *err;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*err)) {
		q->st.bad_message++;
		return;
	}
	err = mnl_nlmsg_get_payload(nlh);
	if (q->acks_wanted > 0 && nlh->nlmsg_seq - q->cfg_seq < 8) {
		q->acks_wanted--;
		if (err->error != 0 && q->ack_errno == 0)
			q->ack_errno = -err->error;
		return;
	}
	if (err->error != 0)
		q->st.verdict_errors++;
}

/* Dispatches every netlink message of one received datagram. */
static void nfqueue_handle_buffer(struct nfqueue *q, const char *buf,
				  size_t len)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	int left = (int)len;

	while (mnl_nlmsg_ok(nlh, left)) {
		if (nlh->nlmsg_type == NLMSG_ERROR)
			nfqueue_handle_error(q, nlh);
		else if (nlh->nlmsg_type ==
			 ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
			nfqueue_handle_packet(q, nlh);
		else if (nlh->nlmsg_type != NLMSG_NOOP &&
			 nlh->nlmsg_type != NLMSG_DONE)
			q->st.bad_message++;
		nlh = mnl_nlmsg_next(nlh, &left);
	}
	if (left > 0)
		q->st.bad_message++;
}

/*
 * One recvmmsg of up to `want` messages. Returns the number received, 0
 * when none was waiting, -1 with errno on an error that ends the receive
 * (ENOBUFS and EINTR are retried here, ENOBUFS counted).
 */
static int nfqueue_recv_batch(struct nfqueue *q, unsigned want)
{
	int fd = mnl_socket_get_fd(q->nl);

	for (unsigned i = 0; i < want; i++)   /* in/out: reset each call */
		q->rx_msgs[i].msg_hdr.msg_namelen = sizeof(q->rx_from[i]);
	for (;;) {
		int n = recvmmsg(fd, q->rx_msgs, want, MSG_DONTWAIT, NULL);

		if (n >= 0)
			return n;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == ENOBUFS)
			q->st.enobufs++;
		else if (errno != EINTR)
			return -1;
	}
}

/*
 * Hands every received message of the batch to the dispatcher. A message
 * that did not come from the kernel (port 0), or came cut, is skipped.
 */
static void nfqueue_handle_batch(struct nfqueue *q, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const struct msghdr *mh = &q->rx_msgs[i].msg_hdr;

		if ((mh->msg_flags & MSG_TRUNC) || q->rx_from[i].nl_pid != 0 ||
		    mh->msg_namelen != sizeof(q->rx_from[i])) {
			q->st.bad_message++;
			continue;
		}
		nfqueue_handle_buffer(q, q->rx_iov[i].iov_base,
				      q->rx_msgs[i].msg_len);
	}
}

int nfqueue_receive(struct nfqueue *q, unsigned max_msgs)
{
	unsigned handled = 0;
	int ret = 0;

	while (handled < max_msgs) {
		unsigned want = q->params.batch;
		int n;

		if (want > max_msgs - handled)
			want = max_msgs - handled;
		n = nfqueue_recv_batch(q, want);
		if (n < 0) {
			q->st.recv_errors++;
			ret = -1;
			break;
		}
		if (n == 0)
			break;
		q->st.batches++;
		if ((unsigned)n == q->params.batch)
			q->st.batches_full++;
		nfqueue_handle_batch(q, (unsigned)n);
		handled += (unsigned)n;
		if ((unsigned)n < want)
			break;   /* drained: save the EAGAIN round trip */
	}
	(void)nfqueue_flush(q);   /* lost verdicts are counted in there */
	return ret < 0 ? -1 : (int)handled;
}

/* Asks the kernel to forget the queue (its packets are then dropped). */
static void nfqueue_unbind(struct nfqueue *q)
{
	char buf[256];   /* one small config message */
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->queue);

	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
	(void)mnl_socket_sendto(q->nl, buf, nlh->nlmsg_len);
}

/* Milliseconds of CLOCK_MONOTONIC. */
static uint64_t nfqueue_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* How many packets the drain at close may answer: what the kernel held
 * when it began (the queue's waiting count), plus one batch. */
static uint64_t nfqueue_drain_budget(struct nfqueue *q)
{
	uint64_t waiting = q->params.queue_maxlen != 0 ? q->params.queue_maxlen
						       : NFQUEUE_MAXLEN;

	if (nfqueue_refresh_kernel_stats(q) == 0)
		waiting = q->st.kernel_waiting;
	return waiting + q->params.batch;
}

uint64_t nfqueue_drain(struct nfqueue *q, unsigned max_ms)
{
	uint64_t budget = nfqueue_drain_budget(q), done = 0;
	uint64_t end = nfqueue_now_ms() + max_ms;

	while (done < budget && nfqueue_now_ms() < end) {
		uint64_t left = budget - done;
		int n = nfqueue_receive(q, left < 64 ? (unsigned)left : 64);

		if (n <= 0)
			break;
		done += (uint64_t)n;
	}
	(void)nfqueue_flush(q);
	return done;
}

void nfqueue_close(struct nfqueue *q)
{
	if (q == NULL)
		return;
	/*
	 * Packets waiting when the stop began get verdicts, not a silent end;
	 * but under a flood faster than we serve the socket never empties, and
	 * draining it would never end (issue 13). So the drain is bounded, by
	 * count and by time; the unbind then makes the kernel drop whatever
	 * is still queued: fail closed.
	 */
	(void)nfqueue_drain(q, NFQ_CLOSE_DRAIN_MS);
	nfqueue_unbind(q);
	nfqueue_destroy(q);
}
