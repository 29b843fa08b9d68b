/*
 * The NFQUEUE verdict buffer (src/nfqtx.c) with real netlink messages and
 * no socket: the loop of nfq.c (flush when nfq_tx_must_flush says so, then
 * nfq_tx_put) over verdicts of every size with the smallest and the default
 * io.verdict_buffer. The buffer sits in a larger allocation whose tail is a
 * guard pattern: a write past the capacity (issue 13: a 40 KB rewritten
 * payload with a 16 KiB buffer) breaks the guard even without ASan. Every
 * flushed chunk must parse as whole verdicts, carry each payload unchanged,
 * and pass the send limit only when it holds one verdict alone.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "nfq.h"
#include "nfqtx.h"

#define GUARD 80000   /* more than one maximal verdict past the capacity */
#define GUARD_BYTE 0xa5

struct sim {
	struct nfq_tx tx;
	char *mem;             /* cap + GUARD */
	unsigned flushes, sent_msgs;
	uint32_t next_check;   /* id of the next verdict expected in a chunk */
	size_t len_of[64];     /* payload length by id (0: no payload) */
};

static void sim_open(struct sim *s, size_t verdict_buffer, size_t limit)
{
	memset(s, 0, sizeof(*s));
	s->tx.cap = nfq_tx_capacity(verdict_buffer);
	s->tx.limit = limit;
	s->mem = malloc(s->tx.cap + GUARD);
	ck_assert_ptr_nonnull(s->mem);
	memset(s->mem, 0, s->tx.cap);
	memset(s->mem + s->tx.cap, GUARD_BYTE, GUARD);
	s->tx.buf = s->mem;
}

static void sim_check_guard(const struct sim *s)
{
	size_t i = 0;

	while (i < GUARD && (unsigned char)s->mem[s->tx.cap + i] == GUARD_BYTE)
		i++;
	ck_assert_msg(i == GUARD, "write past the verdict buffer (cap %zu, "
		      "byte +%zu)", s->tx.cap, i);
}

/* The attributes of a verdict message (nfq_nlmsg_parse knows the packet
 * message's attributes only). */
static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, NFQA_MAX) > 0)
		tb[type] = a;
	return MNL_CB_OK;
}

/* The payload byte of packet id at offset i. */
static uint8_t pat(uint32_t id, size_t i)
{
	return (uint8_t)(id * 31u + i * 7u);
}

/* A flush: the chunk parses as whole verdicts in id order, each with its
 * payload; it passes the limit only with one message. */
static void sim_flush(struct sim *s)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)s->tx.buf;
	int left = (int)s->tx.used;
	unsigned n = 0;

	if (s->tx.used == 0)
		return;
	ck_assert_uint_le(s->tx.used, s->tx.cap);
	while (mnl_nlmsg_ok(nlh, left)) {
		struct nlattr *attr[NFQA_MAX + 1] = { NULL };
		const struct nfqnl_msg_verdict_hdr *vh;
		uint32_t id;

		ck_assert_uint_eq(nlh->nlmsg_type,
				  (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT);
		ck_assert_int_ge(mnl_attr_parse(nlh, sizeof(struct nfgenmsg),
						attr_cb, attr), 0);
		ck_assert_ptr_nonnull(attr[NFQA_VERDICT_HDR]);
		vh = mnl_attr_get_payload(attr[NFQA_VERDICT_HDR]);
		id = ntohl(vh->id);
		ck_assert_uint_eq(id, s->next_check);
		if (s->len_of[id] == 0) {
			ck_assert_ptr_null(attr[NFQA_PAYLOAD]);
		} else {
			const uint8_t *p;

			ck_assert_ptr_nonnull(attr[NFQA_PAYLOAD]);
			ck_assert_uint_eq(mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]),
					  s->len_of[id]);
			p = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
			size_t i = 0;
			while (i < s->len_of[id] && p[i] == pat(id, i))
				i++;
			ck_assert_uint_eq(i, s->len_of[id]);
		}
		s->next_check++;
		n++;
		nlh = mnl_nlmsg_next(nlh, &left);
	}
	ck_assert_int_eq(left, 0);
	ck_assert_uint_eq(n, s->tx.msgs);
	if (s->tx.used > s->tx.limit)
		ck_assert_uint_eq(n, 1);   /* over the limit only alone */
	s->flushes++;
	s->sent_msgs += n;
	nfq_tx_reset(&s->tx);
}

/* nfq.c's nfqueue_verdict: flush if told to, then append. */
static void sim_verdict(struct sim *s, uint32_t id, size_t len)
{
	static uint8_t payload[NFQ_TX_PAYLOAD_MAX];

	ck_assert_uint_lt(id, 64);
	for (size_t i = 0; i < len; i++)
		payload[i] = pat(id, i);
	s->len_of[id] = len;
	if (nfq_tx_must_flush(&s->tx, nfq_tx_need(len > 0, len)))
		sim_flush(s);
	ck_assert_int_eq(nfq_tx_put(&s->tx, 0, id, NF_ACCEPT,
				    len ? payload : NULL, len), 0);
	ck_assert_uint_le(s->tx.used, s->tx.cap);
	sim_check_guard(s);
}

static void sim_close(struct sim *s)
{
	sim_flush(s);
	sim_check_guard(s);
	free(s->mem);
}

/* The sizes of issue 13: a 40 KB and 60 KB datagram, the largest payload,
 * mixed with bare verdicts and MTU-sized rewrites. */
static const size_t sizes[] = {
	0, 1400, 40000, 0, 60000, NFQ_TX_PAYLOAD_MAX, NFQ_TX_PAYLOAD_MAX, 1400,
	0, NFQ_TX_PAYLOAD_MAX, 20, 16000, 16384, 0, 60000
};

static void run_sizes(size_t verdict_buffer, size_t limit)
{
	struct sim s;
	uint32_t id = 0;

	sim_open(&s, verdict_buffer, limit);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		sim_verdict(&s, id++, sizes[i]);
	sim_close(&s);
	ck_assert_uint_eq(s.sent_msgs, id);   /* each exactly once, in order */
}

START_TEST(smallest_buffer_takes_largest_verdicts)
{
	run_sizes(NFQUEUE_TXBUF_MIN, NFQUEUE_TXBUF_MIN);
}
END_TEST

START_TEST(default_buffer_takes_largest_verdicts)
{
	run_sizes(NFQUEUE_TXBUF, NFQUEUE_TXBUF);
}
END_TEST

/* The kernel granted less send buffer than configured: the limit is below
 * the configured size, the capacity is not. */
START_TEST(small_limit_sends_alone)
{
	run_sizes(NFQUEUE_TXBUF_MIN, 4096);
}
END_TEST

START_TEST(capacity_holds_one_maximal_verdict)
{
	ck_assert_uint_ge(nfq_tx_capacity(NFQUEUE_TXBUF_MIN), NFQ_TX_VERDICT_MAX);
	ck_assert_uint_ge(nfq_tx_capacity(0), NFQ_TX_VERDICT_MAX);
	ck_assert_uint_eq(nfq_tx_capacity(NFQUEUE_TXBUF_MAX), NFQUEUE_TXBUF_MAX);
	ck_assert_uint_ge(NFQ_TX_VERDICT_MAX,
			  nfq_tx_need(true, NFQ_TX_PAYLOAD_MAX));
}
END_TEST

/* Small verdicts batch up to the limit: a few sends, none over it. */
START_TEST(small_verdicts_batch_to_the_limit)
{
	struct sim s;

	sim_open(&s, NFQUEUE_TXBUF_MIN, NFQUEUE_TXBUF_MIN);
	for (uint32_t id = 0; id < 64; id++)
		sim_verdict(&s, id, 1400);
	sim_close(&s);
	ck_assert_uint_eq(s.sent_msgs, 64);
	/* 64 x ~1.44 KB = ~92 KB over 16 KiB sends: at least 6, each full */
	ck_assert_uint_ge(s.flushes, 6);
	ck_assert_uint_le(s.flushes, 8);
}
END_TEST

/* Nothing longer than the copy range is written, and a full buffer refuses
 * rather than overflows. */
START_TEST(refuses_what_does_not_fit)
{
	static uint8_t big[NFQ_TX_PAYLOAD_MAX + 2];
	struct sim s;

	sim_open(&s, NFQUEUE_TXBUF_MIN, NFQUEUE_TXBUF_MIN);
	errno = 0;
	ck_assert_int_eq(nfq_tx_put(&s.tx, 0, 1, NF_ACCEPT, big,
				    NFQ_TX_PAYLOAD_MAX + 1), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(s.tx.used, 0);
	/* fill, then a maximal verdict without a flush */
	ck_assert_int_eq(nfq_tx_put(&s.tx, 0, 2, NF_ACCEPT, big, 60000), 0);
	ck_assert(nfq_tx_must_flush(&s.tx, nfq_tx_need(true, 60000)));
	ck_assert_int_eq(nfq_tx_put(&s.tx, 0, 3, NF_ACCEPT, big, 60000), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(s.tx.msgs, 1);
	sim_check_guard(&s);
	free(s.mem);
}
END_TEST

/* Verdicts a send lost are kept (bare) and appended at the next flush: a
 * rewritten packet's accept becomes a drop (its payload is not kept, and
 * the original must not leave), a bare accept stays an accept, a drop a
 * drop; a full list refuses; what does not fit the limit waits. */
START_TEST(retry_keeps_bare_verdicts_and_drops_rewritten_ones)
{
	static uint8_t payload[1400];
	static struct nfq_retry r;
	struct sim s;
	const struct nlmsghdr *nlh;
	int left;
	uint32_t want_v[3] = { NF_DROP, NF_ACCEPT, NF_DROP };
	unsigned i = 0;

	memset(&r, 0, sizeof(r));
	sim_open(&s, NFQUEUE_TXBUF_MIN, NFQUEUE_TXBUF_MIN);
	ck_assert_int_eq(nfq_tx_put(&s.tx, 0, 7, NF_ACCEPT, payload, 1400), 0);
	ck_assert_int_eq(nfq_tx_put(&s.tx, 0, 8, NF_ACCEPT, NULL, 0), 0);
	ck_assert_int_eq(nfq_tx_put(&s.tx, 0, 9, NF_DROP, NULL, 0), 0);
	/* the send failed: each message is remembered */
	nlh = (const struct nlmsghdr *)s.tx.buf;
	left = (int)s.tx.used;
	while (mnl_nlmsg_ok(nlh, left)) {
		ck_assert_int_eq(nfq_retry_add(&r, nlh), 0);
		nlh = mnl_nlmsg_next(nlh, &left);
	}
	ck_assert_uint_eq(r.n, 3);
	nfq_tx_reset(&s.tx);
	ck_assert_uint_eq(nfq_retry_put(&r, &s.tx, 0), 3);
	ck_assert_uint_eq(r.n, 0);
	nlh = (const struct nlmsghdr *)s.tx.buf;
	left = (int)s.tx.used;
	while (mnl_nlmsg_ok(nlh, left)) {
		struct nlattr *attr[NFQA_MAX + 1] = { NULL };
		const struct nfqnl_msg_verdict_hdr *vh;

		ck_assert_int_ge(mnl_attr_parse(nlh, sizeof(struct nfgenmsg),
						attr_cb, attr), 0);
		ck_assert_ptr_null(attr[NFQA_PAYLOAD]);
		vh = mnl_attr_get_payload(attr[NFQA_VERDICT_HDR]);
		ck_assert_uint_eq(ntohl(vh->id), 7 + i);
		ck_assert_uint_eq(ntohl(vh->verdict), want_v[i]);
		i++;
		nlh = mnl_nlmsg_next(nlh, &left);
	}
	ck_assert_uint_eq(i, 3);
	/* full: refused; a limit: the rest waits */
	nfq_tx_reset(&s.tx);
	for (unsigned k = 0; k < NFQ_RETRY_MAX; k++) {
		r.id[k] = k;
		r.verdict[k] = NF_DROP;
	}
	r.n = NFQ_RETRY_MAX;
	ck_assert_int_eq(nfq_tx_put(&s.tx, 0, 1, NF_DROP, NULL, 0), 0);
	ck_assert_int_eq(nfq_retry_add(&r, s.tx.buf), -1);
	nfq_tx_reset(&s.tx);
	s.tx.limit = 10 * nfq_tx_need(false, 0);
	i = nfq_retry_put(&r, &s.tx, 0);
	ck_assert_uint_ge(i, 10);
	ck_assert_uint_lt(i, NFQ_RETRY_MAX);
	ck_assert_uint_le(s.tx.used, s.tx.limit);
	ck_assert_uint_eq(s.tx.msgs, i);
	ck_assert_uint_eq(r.n, NFQ_RETRY_MAX - i);
	ck_assert_uint_eq(r.id[0], i);
	sim_check_guard(&s);
	free(s.mem);
}
END_TEST

static Suite *nfqtx_suite(void)
{
	Suite *s = suite_create("nfqtx");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, smallest_buffer_takes_largest_verdicts);
	tcase_add_test(tc, default_buffer_takes_largest_verdicts);
	tcase_add_test(tc, small_limit_sends_alone);
	tcase_add_test(tc, capacity_holds_one_maximal_verdict);
	tcase_add_test(tc, small_verdicts_batch_to_the_limit);
	tcase_add_test(tc, refuses_what_does_not_fit);
	tcase_add_test(tc, retry_keeps_bare_verdicts_and_drops_rewritten_ones);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(nfqtx_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
