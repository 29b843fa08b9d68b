/*
 * The kernel fast path (fastpath.h): the daemon's nftables table, its
 * rules and the elements that mirror established ESP entries, spoken over
 * nf_tables netlink with libnftnl and libmnl. Changes are queued as
 * operations and sent as batched transactions from the loop; a failed
 * transaction (an element the kernel already timed out, say) is replayed
 * one operation at a time so one stale element cannot hold up the rest.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "fastpath.h"
#include "fpcheck.h"
#include "log.h"

#define SET_OUT "out"
#define MAP_IN "in"
#define CHAIN_PRE "prerouting"
#define CHAIN_POST "postrouting"
#define OBJ_ADMIT "admit"               /* limit object */
#define OBJ_ADMIT_DROP "admit_dropped"  /* counter object */
#define OBJ_ADMIT_LAN "admit_lan"       /* limit object, LAN side */
#define OBJ_ADMIT_LAN_DROP "admit_lan_dropped"  /* counter object */
#define OBJ_FAST_OUT "fast_out"         /* counter: rewritten outbound */
#define OBJ_FAST_IN "fast_in"           /* counter: rewritten inbound */

#define BATCH_BYTES (4u << 20)          /* one transaction's buffer */
#define MSG_ELEMS 256                   /* elements per netlink message */
#define MSG_MAX (64u << 10)             /* room kept for one message */
#define RECV_BYTES 32768                /* one read of answers or a dump */
#define RCV_BYTES (4 << 20)             /* receive buffer: the answers
					 * to ASK_PER_SEND keys fit */
#define IPPROTO_ESP_NUM 50
#define IPPROTO_UDP_NUM 17
#define IPPROTO_AH_NUM 51
#define IKE_PORT 500

/* Key types as nft numbers its datatypes (a concatenation shifts each
 * part by 6 bits), so that `nft list` can print our sets. An SPI is typed
 * as an IPv4 address: 4 bytes in network order that nft can sort and
 * print (as a dotted quad, 0x2b000003 as 43.0.0.3); its plain integer type
 * has no size without the typeof annotations nft writes itself. */
#define NFT_TYPE_IPADDR 7
#define NFT_TYPE_SPI NFT_TYPE_IPADDR
#define NFT_TYPE_BITS 6

/* One offloaded association. */
struct fp_item {
	struct fp_item *next_in, *next_out;   /* hash chains */
	uint32_t remote, host, spi_out, spi_in;
	bool out_on;                          /* out element installed */
	bool after_exp;                       /* checked idle: next, only
					       * whether the engine let it go */
	uint8_t answered, missing;            /* this check: 1 << dir */
	uint32_t recheck_ms;                  /* 0, or check at most this
					       * long after each check */
	uint64_t kexp;                        /* its elements' kernel expiry */
	struct fpc_node check;                /* in fp->due */
	uint64_t k_pkts[2], k_bytes[2];       /* kernel counters: [0] out,
					       * [1] in, at the last check */
	uint64_t g_pkts[2], g_bytes[2];       /* this check's reading */
};

enum fp_op_kind { OP_ADD_IN, OP_ADD_OUT, OP_DEL_IN, OP_DEL_OUT };

struct fp_op {
	uint8_t kind;
	uint32_t remote, host, spi;           /* spi: in- or out-SPI */
	uint64_t life_ms, remain_ms;
};

struct fastpath {
	struct mnl_socket *nl;
	uint32_t portid, seq;
	struct fp_item **by_in, **by_out;
	size_t mask, n;
	struct fp_op *ops;
	size_t head, n_ops, cap_ops;            /* ops[head, n_ops) to send */
	char *buf;                             /* BATCH_BYTES */
	size_t len;                            /* bytes built in buf */
	bool admit_on;                         /* the limit object exists */
	struct fpc_heap due;                   /* items by check time */
	double us_per_check;                   /* measured, per association */
	struct fastpath_stats st;
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the association table -------------------------------------------- */

static size_t key_hash(uint32_t remote, uint32_t spi)
{
	uint64_t k = ((uint64_t)remote << 32 | spi) * 0x9e3779b97f4a7c15ull;

	return (size_t)(k >> 32);
}

static struct fp_item **slot_in(const struct fastpath *fp, uint32_t remote,
				uint32_t spi)
{
	return &fp->by_in[key_hash(remote, spi) & fp->mask];
}

static struct fp_item **slot_out(const struct fastpath *fp, uint32_t remote,
				 uint32_t spi)
{
	return &fp->by_out[key_hash(remote, spi) & fp->mask];
}

static struct fp_item *find_in(const struct fastpath *fp, uint32_t remote,
			       uint32_t spi)
{
	struct fp_item *it = *slot_in(fp, remote, spi);

	while (it && !(it->remote == remote && it->spi_in == spi))
		it = it->next_in;
	return it;
}

static struct fp_item *find_out(const struct fastpath *fp, uint32_t remote,
				uint32_t spi)
{
	struct fp_item *it = *slot_out(fp, remote, spi);

	while (it && !(it->remote == remote && it->spi_out == spi))
		it = it->next_out;
	return it;
}

static void link_out(struct fastpath *fp, struct fp_item *it)
{
	struct fp_item **s = slot_out(fp, it->remote, it->spi_out);

	it->next_out = *s;
	*s = it;
}

static void unlink_out(struct fastpath *fp, struct fp_item *it)
{
	struct fp_item **s = slot_out(fp, it->remote, it->spi_out);

	while (*s && *s != it)
		s = &(*s)->next_out;
	if (*s)
		*s = it->next_out;
}

static void unlink_in(struct fastpath *fp, struct fp_item *it)
{
	struct fp_item **s = slot_in(fp, it->remote, it->spi_in);

	while (*s && *s != it)
		s = &(*s)->next_in;
	if (*s)
		*s = it->next_in;
}

/* Doubles the buckets when the table is fuller than one per bucket.
 * A failed resize keeps the old (longer chains, still correct). */
static void maybe_grow(struct fastpath *fp)
{
	size_t n = (fp->mask + 1) * 2;
	struct fp_item **in, **out;

	if (fp->n <= fp->mask + 1)
		return;
	in = calloc(n, sizeof(*in));
	out = calloc(n, sizeof(*out));
	if (!in || !out) {
		free(in);
		free(out);
		return;
	}
	for (size_t b = 0; b <= fp->mask; b++) {
		struct fp_item *it = fp->by_in[b], *next;

		for (; it; it = next) {
			size_t h = key_hash(it->remote, it->spi_in) & (n - 1);

			next = it->next_in;
			it->next_in = in[h];
			in[h] = it;
		}
		for (it = fp->by_out[b]; it; it = next) {
			size_t h = key_hash(it->remote, it->spi_out) & (n - 1);

			next = it->next_out;
			it->next_out = out[h];
			out[h] = it;
		}
	}
	free(fp->by_in);
	free(fp->by_out);
	fp->by_in = in;
	fp->by_out = out;
	fp->mask = n - 1;
}

/* ---- operations, batches, transactions --------------------------------- */

static int push_op(struct fastpath *fp, enum fp_op_kind kind, uint32_t remote,
		   uint32_t host, uint32_t spi, uint64_t life_ms,
		   uint64_t remain_ms)
{
	if (fp->n_ops == fp->cap_ops) {
		size_t nc = fp->cap_ops ? fp->cap_ops * 2 : 256;
		struct fp_op *a = realloc(fp->ops, nc * sizeof(*a));

		if (!a)
			return -1;
		fp->ops = a;
		fp->cap_ops = nc;
	}
	fp->ops[fp->n_ops++] = (struct fp_op){
		.kind = (uint8_t)kind, .remote = remote, .host = host,
		.spi = spi, .life_ms = life_ms, .remain_ms = remain_ms,
	};
	return 0;
}

static struct nlmsghdr *msg_begin(struct fastpath *fp, uint16_t type,
				  uint16_t flags)
{
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(fp->buf + fp->len, type,
						     NFPROTO_IPV4, flags,
						     fp->seq++);

	return nlh;
}

static void msg_end(struct fastpath *fp, struct nlmsghdr *nlh)
{
	fp->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

static void batch_begin(struct fastpath *fp)
{
	fp->len = 0;
	nftnl_batch_begin(fp->buf, fp->seq++);
	fp->len += NLMSG_ALIGN(((struct nlmsghdr *)(void *)fp->buf)->nlmsg_len);
}

static void batch_end(struct fastpath *fp)
{
	struct nlmsghdr *nlh = (void *)(fp->buf + fp->len);

	nftnl_batch_end(fp->buf + fp->len, fp->seq++);
	fp->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

/* Reads what the kernel answered to a transaction without waiting: it
 * processes a batch inside sendmsg(), so every error is queued by now.
 * Returns 0, or the first error's errno. */
static int read_errors(struct fastpath *fp)
{
	char rbuf[RECV_BYTES];
	int first = 0;
	ssize_t n;

	while ((n = recv(mnl_socket_get_fd(fp->nl), rbuf, sizeof(rbuf),
			 MSG_DONTWAIT)) > 0) {
		const struct nlmsghdr *nlh = (const void *)rbuf;
		int left = (int)n;

		for (; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *e;

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			if (e->error != 0 && first == 0)
				first = -e->error;
		}
	}
	return first;
}

/* Sends the transaction in buf. Returns 0, or -1 with errno (the kernel's
 * answer). */
static int batch_send(struct fastpath *fp)
{
	uint64_t t0 = now_us();
	int err;

	(void)read_errors(fp);   /* nothing stale may be taken for ours */
	if (mnl_socket_sendto(fp->nl, fp->buf, fp->len) < 0)
		return -1;
	fp->st.commits++;
	err = read_errors(fp);
	fp->st.last_commit_us = now_us() - t0;
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

/* One element of set `set` for op. */
static struct nftnl_set_elem *op_elem(const struct fp_op *op)
{
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();
	uint32_t key[3], data;

	if (!e)
		return NULL;
	if (op->kind == OP_ADD_IN || op->kind == OP_DEL_IN) {
		key[0] = htonl(op->remote);
		key[1] = htonl(op->spi);
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, 8);
		if (op->kind == OP_ADD_IN) {
			data = htonl(op->host);
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, &data, 4);
		}
	} else {
		key[0] = htonl(op->host);
		key[1] = htonl(op->remote);
		key[2] = htonl(op->spi);
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, 12);
	}
	if (op->kind == OP_ADD_IN || op->kind == OP_ADD_OUT) {
		uint64_t life = op->life_ms ? op->life_ms : 1;
		uint64_t remain = op->remain_ms ? op->remain_ms : 1;

		nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, life);
		/* the kernel takes an expiration up to the timeout; renewing
		 * an element's expiration needs Linux 6.10 (older kernels keep
		 * the first one, and the poll puts back what they drop) */
		nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_EXPIRATION,
				       remain < life ? remain : life);
	}
	return e;
}

static const char *op_set(const struct fp_op *op)
{
	return op->kind == OP_ADD_IN || op->kind == OP_DEL_IN ? MAP_IN
							       : SET_OUT;
}

static bool op_is_add(const struct fp_op *op)
{
	return op->kind == OP_ADD_IN || op->kind == OP_ADD_OUT;
}

/* Appends ops[i..j) (same set, same add/delete) as one message. */
static int build_elems(struct fastpath *fp, const struct fp_op *ops,
		       size_t n)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;
	bool add = op_is_add(&ops[0]);

	if (!s)
		return -1;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, FASTPATH_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, op_set(&ops[0]));
	for (size_t i = 0; i < n; i++) {
		struct nftnl_set_elem *e = op_elem(&ops[i]);

		if (!e) {
			nftnl_set_free(s);
			return -1;
		}
		nftnl_set_elem_add(s, e);
	}
	nlh = msg_begin(fp, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
			add ? NLM_F_CREATE : 0);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	msg_end(fp, nlh);
	nftnl_set_free(s);
	return 0;
}

static bool same_group(const struct fp_op *a, const struct fp_op *b)
{
	return a->kind == b->kind;
}

/* Sends ops[0..n) as transactions of at most BATCH_BYTES, consecutive ops
 * of one kind grouped per message. Returns 0, or -1 when a transaction
 * failed (*failed_from: the index its ops start at). */
static int send_ops(struct fastpath *fp, const struct fp_op *ops, size_t n,
		    size_t *failed_from, size_t *failed_to)
{
	size_t i = 0;

	while (i < n) {
		size_t start = i;

		batch_begin(fp);
		while (i < n && fp->len + MSG_MAX < BATCH_BYTES) {
			size_t j = i + 1;

			while (j < n && j - i < MSG_ELEMS &&
			       same_group(&ops[i], &ops[j]))
				j++;
			if (build_elems(fp, ops + i, j - i) < 0)
				return -1;
			i = j;
		}
		batch_end(fp);
		if (batch_send(fp) < 0) {
			*failed_from = start;
			*failed_to = i;
			return -1;
		}
	}
	return 0;
}

/* A transaction failed: each of its ops alone. A delete of what the kernel
 * no longer has is not an error; an add over an element with other data
 * deletes it first. Returns the number still failing. */
static size_t replay_ops(struct fastpath *fp, const struct fp_op *ops,
			 size_t n)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++) {
		size_t f, t;

		if (send_ops(fp, ops + i, 1, &f, &t) == 0)
			continue;
		if (!op_is_add(&ops[i]) && errno == ENOENT)
			continue;
		if (op_is_add(&ops[i]) && errno == EEXIST) {
			struct fp_op pair[2] = { ops[i], ops[i] };

			pair[0].kind = ops[i].kind == OP_ADD_IN ? OP_DEL_IN
								: OP_DEL_OUT;
			batch_begin(fp);
			if (build_elems(fp, &pair[0], 1) == 0 &&
			    build_elems(fp, &pair[1], 1) == 0) {
				batch_end(fp);
				if (batch_send(fp) == 0)
					continue;
			}
		}
		bad++;
	}
	return bad;
}

size_t fastpath_commit_max(struct fastpath *fp, size_t max)
{
	size_t end, bad = 0;

	if (!fp || fp->head == fp->n_ops)
		return 0;
	end = fp->n_ops - fp->head > max ? fp->head + max : fp->n_ops;
	while (fp->head < end) {
		size_t f = 0, t = 0;

		if (send_ops(fp, fp->ops + fp->head, end - fp->head, &f,
			     &t) == 0) {
			fp->head = end;
			break;
		}
		bad += replay_ops(fp, fp->ops + fp->head + f, t - f);
		fp->head += t;
	}
	if (fp->head == fp->n_ops)
		fp->head = fp->n_ops = 0;
	if (bad) {
		fp->st.errors += bad;
		log_msg(LOG_LEVEL_WARNING, "fastpath: the kernel refused %zu "
			"element change%s (those flows stay on the queue)",
			bad, bad == 1 ? "" : "s");
	}
	return fp->n_ops - fp->head;
}

int fastpath_commit(struct fastpath *fp)
{
	uint64_t errors = fp ? fp->st.errors : 0;

	(void)fastpath_commit_max(fp, SIZE_MAX);
	return fp && fp->st.errors != errors ? -1 : 0;
}

size_t fastpath_pending(const struct fastpath *fp)
{
	return fp ? fp->n_ops - fp->head : 0;
}

/* ---- table, sets, chains, rules ---------------------------------------- */

static void put_table(struct fastpath *fp, uint16_t type, uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	nftnl_table_set_str(t, NFTNL_TABLE_NAME, FASTPATH_TABLE);
	nlh = msg_begin(fp, type, flags);
	nftnl_table_nlmsg_build_payload(nlh, t);
	msg_end(fp, nlh);
	nftnl_table_free(t);
}

static void put_set(struct fastpath *fp, const char *name, uint32_t id,
		    bool map)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_expr *ctr = nftnl_expr_alloc("counter");
	struct nlmsghdr *nlh;
	uint32_t t = NFT_TYPE_IPADDR;

	nftnl_set_set_str(s, NFTNL_SET_TABLE, FASTPATH_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_IPV4);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_TIMEOUT |
			  (map ? NFT_SET_MAP : 0));
	if (map) {
		/* remote . in-SPI : host */
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE,
				  t << NFT_TYPE_BITS | NFT_TYPE_SPI);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 8);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_TYPE_IPADDR);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 4);
	} else {
		/* host . remote . out-SPI */
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE,
				  (t << NFT_TYPE_BITS | t) << NFT_TYPE_BITS |
				  NFT_TYPE_SPI);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 12);
	}
	/* every element gets its own packet and byte counter */
	nftnl_set_add_expr(s, ctr);
	nlh = msg_begin(fp, NFT_MSG_NEWSET, NLM_F_CREATE);
	nftnl_set_nlmsg_build_payload(nlh, s);
	msg_end(fp, nlh);
	nftnl_set_free(s);
}

static void put_chain(struct fastpath *fp, const char *name, uint32_t hook)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, FASTPATH_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, FASTPATH_PRIORITY);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nlh = msg_begin(fp, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	msg_end(fp, nlh);
	nftnl_chain_free(c);
}

/* A named counter (NEWOBJ of an existing one keeps it and its values). */
static void put_counter(struct fastpath *fp, const char *name)
{
	struct nftnl_obj *ctr = nftnl_obj_alloc();
	struct nlmsghdr *nlh;

	nftnl_obj_set_str(ctr, NFTNL_OBJ_TABLE, FASTPATH_TABLE);
	nftnl_obj_set_str(ctr, NFTNL_OBJ_NAME, name);
	nftnl_obj_set_u32(ctr, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nlh = msg_begin(fp, NFT_MSG_NEWOBJ, NLM_F_CREATE);
	nftnl_obj_nlmsg_build_payload(nlh, ctr);
	msg_end(fp, nlh);
	nftnl_obj_free(ctr);
}

/* One limit object (rate over: it matches the excess), only while
 * admission is on (the kernel refuses rate 0). A limit cannot be changed
 * in place: it is deleted and made again (its rules were flushed before,
 * in the same transaction). */
static void put_limit(struct fastpath *fp, const char *name,
		      const struct fastpath_admit *a)
{
	struct nftnl_obj *lim = nftnl_obj_alloc();
	unsigned burst = a->burst ? a->burst : (a->rate / 10 ? a->rate / 10
							      : 1);
	struct nlmsghdr *nlh;

	nftnl_obj_set_str(lim, NFTNL_OBJ_TABLE, FASTPATH_TABLE);
	nftnl_obj_set_str(lim, NFTNL_OBJ_NAME, name);
	nftnl_obj_set_u32(lim, NFTNL_OBJ_TYPE, NFT_OBJECT_LIMIT);
	if (fp->admit_on) {
		nlh = msg_begin(fp, NFT_MSG_DELOBJ, 0);
		nftnl_obj_nlmsg_build_payload(nlh, lim);
		msg_end(fp, nlh);
	}
	if (a->rate) {
		nftnl_obj_set_u64(lim, NFTNL_OBJ_LIMIT_RATE, a->rate);
		nftnl_obj_set_u64(lim, NFTNL_OBJ_LIMIT_UNIT, 1);
		nftnl_obj_set_u32(lim, NFTNL_OBJ_LIMIT_BURST, burst);
		nftnl_obj_set_u32(lim, NFTNL_OBJ_LIMIT_TYPE, NFT_LIMIT_PKTS);
		nftnl_obj_set_u32(lim, NFTNL_OBJ_LIMIT_FLAGS, NFT_LIMIT_F_INV);
		nlh = msg_begin(fp, NFT_MSG_NEWOBJ, NLM_F_CREATE);
		nftnl_obj_nlmsg_build_payload(nlh, lim);
		msg_end(fp, nlh);
	}
	nftnl_obj_free(lim);
}

/* The admission objects: a limit for each side, and the counters of what
 * they dropped. */
static void put_admit_objs(struct fastpath *fp, const struct fastpath_admit *a)
{
	put_limit(fp, OBJ_ADMIT, a);
	put_limit(fp, OBJ_ADMIT_LAN, a);
	put_counter(fp, OBJ_ADMIT_DROP);
	put_counter(fp, OBJ_ADMIT_LAN_DROP);
}

/* Expression helpers: each adds one expression to r. */
static void x_load(struct nftnl_rule *r, uint32_t base, uint32_t off,
		   uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

static void x_cmp_eq(struct nftnl_rule *r, uint32_t sreg, const void *data,
		     uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	nftnl_rule_add_expr(r, e);
}

/* ip protocol == proto */
static void x_proto(struct nftnl_rule *r, uint8_t proto)
{
	x_load(r, NFT_PAYLOAD_NETWORK_HEADER, 9, 1, NFT_REG_1);
	x_cmp_eq(r, NFT_REG_1, &proto, 1);
}

/* ip daddr == ext (network order) */
static void x_daddr_is(struct nftnl_rule *r, uint32_t ext_be)
{
	x_load(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG_1);
	x_cmp_eq(r, NFT_REG_1, &ext_be, 4);
}

static void x_lookup(struct nftnl_rule *r, const char *set, uint32_t id,
		     bool map)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	if (map)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, id);
	nftnl_rule_add_expr(r, e);
}

/* Writes reg 1 (4 bytes) at network header offset off, fixing the IP
 * header checksum (ESP carries no checksum of its own). */
static void x_write(struct nftnl_rule *r, uint32_t off)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE,
			   NFT_PAYLOAD_NETWORK_HEADER);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, 4);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_CSUM_TYPE,
			   NFT_PAYLOAD_CSUM_INET);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_CSUM_OFFSET, 10);
	nftnl_rule_add_expr(r, e);
}

/* (reg 1 & mask) == net: reg 1 holds an address loaded before */
static void x_masked_eq(struct nftnl_rule *r, uint32_t net, uint32_t mask)
{
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
	uint32_t m = htonl(mask), x = 0, n = htonl(net);

	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &m, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &x, 4);
	nftnl_rule_add_expr(r, e);
	x_cmp_eq(r, NFT_REG_1, &n, 4);
}

static void x_verdict(struct nftnl_rule *r, int verdict)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	nftnl_rule_add_expr(r, e);
}

static void x_objref(struct nftnl_rule *r, uint32_t type, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc("objref");

	nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, type);
	nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, name);
	nftnl_rule_add_expr(r, e);
}

static struct nftnl_rule *rule_new(const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, FASTPATH_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_IPV4);
	return r;
}

static void rule_put(struct fastpath *fp, struct nftnl_rule *r)
{
	struct nlmsghdr *nlh = msg_begin(fp, NFT_MSG_NEWRULE,
					 NLM_F_CREATE | NLM_F_APPEND);

	nftnl_rule_nlmsg_build_payload(nlh, r);
	msg_end(fp, nlh);
	nftnl_rule_free(r);
}

/* Deletes every rule of chain (the message names no rule). */
static void chain_flush(struct fastpath *fp, const char *chain)
{
	struct nftnl_rule *r = rule_new(chain);
	struct nlmsghdr *nlh = msg_begin(fp, NFT_MSG_DELRULE, 0);

	nftnl_rule_nlmsg_build_payload(nlh, r);
	msg_end(fp, nlh);
	nftnl_rule_free(r);
}

/*
 * LAN-side admission, postrouting, after the out set (an established flow
 * never reaches it): per internal prefix LAN,
 *   ip daddr & MASK == LAN return       (LAN to LAN: never queued)
 *   ip saddr & MASK == LAN ip protocol esp  limit name admit_lan counter name admit_lan_dropped drop
 *   ... ip protocol ah ..., udp dport 500 ..., udp sport 500 ...
 * which is what the queue rule takes from the LAN (its daemon-sent copies
 * leave from the external address or go to the LAN, never matching).
 */
static void put_lan_rules(struct fastpath *fp, const struct fastpath_admit *a)
{
	static const struct { uint8_t proto; uint8_t port_off; } kinds[] = {
		{ IPPROTO_ESP_NUM, 0 }, { IPPROTO_AH_NUM, 0 },
		{ IPPROTO_UDP_NUM, 2 }, { IPPROTO_UDP_NUM, 1 },
	};
	uint16_t ike = htons(IKE_PORT);

	for (size_t i = 0; i < a->n_lan; i++) {
		struct nftnl_rule *r = rule_new(CHAIN_POST);

		x_load(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG_1);
		x_masked_eq(r, a->lan[i].addr, a->lan[i].mask);
		x_verdict(r, NFT_RETURN);
		rule_put(fp, r);
	}
	for (size_t i = 0; i < a->n_lan; i++) {
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			struct nftnl_rule *r = rule_new(CHAIN_POST);

			x_load(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1);
			x_masked_eq(r, a->lan[i].addr, a->lan[i].mask);
			x_proto(r, kinds[k].proto);
			if (kinds[k].port_off) {
				/* port_off 2: destination port, 1: source */
				x_load(r, NFT_PAYLOAD_TRANSPORT_HEADER,
				       kinds[k].port_off == 2 ? 2 : 0, 2,
				       NFT_REG_1);
				x_cmp_eq(r, NFT_REG_1, &ike, 2);
			}
			x_objref(r, NFT_OBJECT_LIMIT, OBJ_ADMIT_LAN);
			x_objref(r, NFT_OBJECT_COUNTER, OBJ_ADMIT_LAN_DROP);
			x_verdict(r, NF_DROP);
			rule_put(fp, r);
		}
	}
}

/*
 * prerouting:
 *   ip protocol esp ip daddr EXT ip daddr set ip saddr . esp spi map @in counter name fast_in accept
 *   [admission] ip protocol esp ip daddr EXT limit name admit counter name admit_dropped drop
 *   [admission] ip protocol udp ip daddr EXT udp dport 500 limit ... drop
 * postrouting:
 *   ip protocol esp ip saddr . ip daddr . esp spi @out counter name fast_out ip saddr set EXT accept
 * The set lookups load the key into registers 1, 9 and 10 (4-byte parts of
 * one concatenation), as nft itself does.
 */
static void put_rules(struct fastpath *fp, uint32_t ext,
		      const struct fastpath_admit *a)
{
	uint32_t ext_be = htonl(ext);
	uint16_t ike = htons(IKE_PORT);
	struct nftnl_rule *r;
	struct nftnl_expr *imm;

	if (ext == 0) {   /* nothing to rewrite to: everything is queued */
		if (a->rate)
			put_lan_rules(fp, a);
		return;
	}
	r = rule_new(CHAIN_PRE);
	x_proto(r, IPPROTO_ESP_NUM);
	x_daddr_is(r, ext_be);
	x_load(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1);
	x_load(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 4, NFT_REG32_01);
	x_lookup(r, MAP_IN, 2, true);
	x_objref(r, NFT_OBJECT_COUNTER, OBJ_FAST_IN);
	x_write(r, 16);
	x_verdict(r, NF_ACCEPT);
	rule_put(fp, r);
	if (a->rate) {
		r = rule_new(CHAIN_PRE);
		x_proto(r, IPPROTO_ESP_NUM);
		x_daddr_is(r, ext_be);
		x_objref(r, NFT_OBJECT_LIMIT, OBJ_ADMIT);
		x_objref(r, NFT_OBJECT_COUNTER, OBJ_ADMIT_DROP);
		x_verdict(r, NF_DROP);
		rule_put(fp, r);
		r = rule_new(CHAIN_PRE);
		x_proto(r, IPPROTO_UDP_NUM);
		x_daddr_is(r, ext_be);
		x_load(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
		x_cmp_eq(r, NFT_REG_1, &ike, 2);
		x_objref(r, NFT_OBJECT_LIMIT, OBJ_ADMIT);
		x_objref(r, NFT_OBJECT_COUNTER, OBJ_ADMIT_DROP);
		x_verdict(r, NF_DROP);
		rule_put(fp, r);
	}
	r = rule_new(CHAIN_POST);
	x_proto(r, IPPROTO_ESP_NUM);
	x_load(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1);
	x_load(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG32_01);
	x_load(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 4, NFT_REG32_02);
	x_lookup(r, SET_OUT, 1, false);
	x_objref(r, NFT_OBJECT_COUNTER, OBJ_FAST_OUT);
	imm = nftnl_expr_alloc("immediate");
	nftnl_expr_set_u32(imm, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(imm, NFTNL_EXPR_IMM_DATA, &ext_be, 4);
	nftnl_rule_add_expr(r, imm);
	x_write(r, 12);
	x_verdict(r, NF_ACCEPT);
	rule_put(fp, r);
	if (a->rate)
		put_lan_rules(fp, a);
}

int fastpath_set_rules(struct fastpath *fp, uint32_t ext,
		       const struct fastpath_admit *a)
{
	batch_begin(fp);
	chain_flush(fp, CHAIN_PRE);
	chain_flush(fp, CHAIN_POST);
	put_admit_objs(fp, a);
	put_counter(fp, OBJ_FAST_OUT);
	put_counter(fp, OBJ_FAST_IN);
	put_rules(fp, ext, a);
	batch_end(fp);
	if (batch_send(fp) < 0) {
		log_warn("fastpath: cannot load the rules of table ip "
			 FASTPATH_TABLE);
		fp->st.errors++;
		return -1;
	}
	fp->admit_on = a->rate != 0;
	return 0;
}

/* table ip ipsec_masqd_fast afresh: created (if missing), deleted with
 * whatever an earlier run left in it, created again with our sets, chains
 * and rules, in one transaction. */
static int create_table(struct fastpath *fp, uint32_t ext,
			const struct fastpath_admit *a)
{
	batch_begin(fp);
	put_table(fp, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	put_table(fp, NFT_MSG_DELTABLE, 0);
	put_table(fp, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	put_set(fp, SET_OUT, 1, false);
	put_set(fp, MAP_IN, 2, true);
	put_chain(fp, CHAIN_PRE, NF_INET_PRE_ROUTING);
	put_chain(fp, CHAIN_POST, NF_INET_POST_ROUTING);
	fp->admit_on = false;   /* the fresh table has none */
	put_admit_objs(fp, a);
	put_counter(fp, OBJ_FAST_OUT);
	put_counter(fp, OBJ_FAST_IN);
	put_rules(fp, ext, a);
	batch_end(fp);
	if (batch_send(fp) < 0)
		return -1;
	fp->admit_on = a->rate != 0;
	return 0;
}

struct fastpath *fastpath_open(uint32_t ext, const struct fastpath_admit *a)
{
	struct fastpath *fp = calloc(1, sizeof(*fp));
	int sndbuf = (int)BATCH_BYTES * 2;

	if (!fp)
		return NULL;
	fp->mask = 255;
	fp->us_per_check = 5.0;   /* until measured (BENCHMARKS.md: ~2-4) */
	fp->by_in = calloc(fp->mask + 1, sizeof(*fp->by_in));
	fp->by_out = calloc(fp->mask + 1, sizeof(*fp->by_out));
	fp->buf = malloc(BATCH_BYTES);
	fp->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!fp->by_in || !fp->by_out || !fp->buf || !fp->nl ||
	    mnl_socket_bind(fp->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		log_warn("fastpath: nf_tables netlink socket");
		goto fail;
	}
	/* a transaction of BATCH_BYTES must fit the send buffer; force it
	 * past wmem_max (we hold CAP_NET_ADMIN) */
	if (setsockopt(mnl_socket_get_fd(fp->nl), SOL_SOCKET, SO_SNDBUFFORCE,
		       &sndbuf, sizeof(sndbuf)) < 0)
		(void)setsockopt(mnl_socket_get_fd(fp->nl), SOL_SOCKET,
				 SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	{
		int rcv = RCV_BYTES;

		if (setsockopt(mnl_socket_get_fd(fp->nl), SOL_SOCKET,
			       SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
			(void)setsockopt(mnl_socket_get_fd(fp->nl), SOL_SOCKET,
					 SO_RCVBUF, &rcv, sizeof(rcv));
	}
	fp->portid = mnl_socket_get_portid(fp->nl);
	fp->seq = (uint32_t)time(NULL);
	if (create_table(fp, ext, a) < 0) {
		log_warn("fastpath: cannot create table ip " FASTPATH_TABLE);
		goto fail;
	}
	return fp;
fail:
	fastpath_close(fp, false);
	return NULL;
}

static void free_items(struct fastpath *fp)
{
	for (size_t b = 0; fp->by_in && b <= fp->mask; b++) {
		struct fp_item *it = fp->by_in[b], *next;

		for (; it; it = next) {
			next = it->next_in;
			free(it);
		}
	}
}

void fastpath_close(struct fastpath *fp, bool remove_table)
{
	if (!fp)
		return;
	if (remove_table && fp->nl) {
		batch_begin(fp);
		put_table(fp, NFT_MSG_DELTABLE, 0);
		batch_end(fp);
		if (batch_send(fp) < 0)
			log_warn("fastpath: cannot delete table ip "
				 FASTPATH_TABLE);
	}
	if (fp->nl)
		mnl_socket_close(fp->nl);
	free_items(fp);
	fpc_heap_free(&fp->due);
	free(fp->by_in);
	free(fp->by_out);
	free(fp->ops);
	free(fp->buf);
	free(fp);
}

/* ---- associations -------------------------------------------------------- */

/* Queues the removal of it's elements and frees it. */
static void drop_item(struct fastpath *fp, struct fp_item *it)
{
	(void)push_op(fp, OP_DEL_IN, it->remote, it->host, it->spi_in, 0, 0);
	if (it->out_on) {
		(void)push_op(fp, OP_DEL_OUT, it->remote, it->host,
			      it->spi_out, 0, 0);
		unlink_out(fp, it);
	}
	unlink_in(fp, it);
	fpc_heap_remove(&fp->due, &it->check);
	fp->n--;
	fp->st.entries = fp->n;
	fp->st.removed++;
	free(it);
}

/* An association asked to be checked sooner (a provisional one, whose
 * use in the kernel confirms it): at most recheck_ms from now, unless its
 * expiry comes first. */
static void apply_recheck(struct fastpath *fp, struct fp_item *it,
			  uint64_t now)
{
	uint64_t at = now + it->recheck_ms;

	if (it->recheck_ms == 0 || at >= it->kexp)
		return;
	if (it->check.idx == FPC_IDLE || it->after_exp || it->check.at > at) {
		it->after_exp = false;
		(void)fpc_heap_set(&fp->due, &it->check, at);
	}
}

/* Queues it's elements with kernel expiry kexp (timeout life_ms) and
 * schedules its next check. */
static int queue_adds(struct fastpath *fp, struct fp_item *it,
		      uint64_t now, uint64_t life_ms, uint64_t kexp)
{
	uint64_t remain = kexp > now ? kexp - now : 1;

	it->kexp = now + remain;
	it->after_exp = false;
	if (fpc_heap_set(&fp->due, &it->check,
			 fpc_check_at(now, it->kexp, life_ms, fp->n,
				      fp->us_per_check)) < 0)
		return -1;
	apply_recheck(fp, it, now);
	if (push_op(fp, OP_ADD_IN, it->remote, it->host, it->spi_in, life_ms,
		    remain) < 0)
		return -1;
	if (it->out_on && push_op(fp, OP_ADD_OUT, it->remote, it->host,
				  it->spi_out, life_ms, remain) < 0)
		return -1;
	return 0;
}

static struct fp_item *new_item(struct fastpath *fp, uint32_t remote,
				uint32_t host, uint32_t spi_in)
{
	struct fp_item *it = calloc(1, sizeof(*it));
	struct fp_item **s;

	if (!it)
		return NULL;
	it->remote = remote;
	it->host = host;
	it->spi_in = spi_in;
	it->check.idx = FPC_IDLE;
	s = slot_in(fp, remote, spi_in);
	it->next_in = *s;
	*s = it;
	fp->n++;
	fp->st.entries = fp->n;
	return it;
}

int fastpath_offload(struct fastpath *fp, uint32_t remote, uint32_t host,
		     uint32_t spi_out, uint32_t spi_in, uint64_t now,
		     uint64_t life_ms, uint64_t remain_ms)
{
	struct fp_item *it = find_in(fp, remote, spi_in);
	struct fp_item *other = spi_out ? find_out(fp, remote, spi_out)
					: NULL;

	/* what was offloaded under either SPI for another association */
	if (other && other != it)
		drop_item(fp, other);
	if (it && it->host != host) {
		drop_item(fp, it);
		it = NULL;
	}
	if (it && it->out_on && it->spi_out != spi_out) {
		(void)push_op(fp, OP_DEL_OUT, it->remote, it->host,
			      it->spi_out, 0, 0);
		unlink_out(fp, it);
		it->out_on = false;
	}
	if (!it && !(it = new_item(fp, remote, host, spi_in)))
		return -1;
	if (spi_out && !it->out_on) {
		it->spi_out = spi_out;
		it->out_on = true;
		it->k_pkts[0] = it->k_bytes[0] = 0;
		link_out(fp, it);
	}
	fp->st.installed++;
	maybe_grow(fp);
	if (life_ms == 0)
		life_ms = 1;
	return queue_adds(fp, it, now, life_ms,
			  now + (remain_ms < life_ms ? remain_ms : life_ms));
}

void fastpath_forget(struct fastpath *fp, uint32_t remote, uint32_t spi_in,
		     bool expired)
{
	struct fp_item *it = find_in(fp, remote, spi_in);

	if (!it)
		return;
	/* the engine's timer went before this association's use was asked:
	 * a use in the kernel may have gone uncredited (BENCHMARKS.md) */
	if (expired && it->check.idx != FPC_IDLE && !it->after_exp)
		fp->st.expired_unchecked++;
	drop_item(fp, it);
}

void fastpath_recheck(struct fastpath *fp, uint32_t remote, uint32_t spi_in,
		      uint64_t now, uint32_t within_ms)
{
	struct fp_item *it = fp ? find_in(fp, remote, spi_in) : NULL;

	if (!it)
		return;
	it->recheck_ms = within_ms;
	apply_recheck(fp, it, now);
}

unsigned fastpath_offloaded(const struct fastpath *fp, uint32_t remote,
			    uint32_t spi_in)
{
	const struct fp_item *it = fp ? find_in(fp, remote, spi_in) : NULL;

	if (!it)
		return 0;
	return FASTPATH_IN | (it->out_on ? FASTPATH_OUT : 0);
}

const struct fastpath_stats *fastpath_get_stats(const struct fastpath *fp)
{
	return &fp->st;
}

static int obj_cb(const struct nlmsghdr *nlh, void *data)
{
	uint64_t *pb = data;
	struct nftnl_obj *o = nftnl_obj_alloc();

	if (!o)
		return MNL_CB_ERROR;
	if (nftnl_obj_nlmsg_parse(nlh, o) == 0) {
		pb[0] = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS);
		pb[1] = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES);
	}
	nftnl_obj_free(o);
	return MNL_CB_OK;
}

/* Named counter `name` into pb[0] (packets), pb[1] (bytes). 0 or -1. */
static int read_counter(struct fastpath *fp, const char *name, uint64_t *pb)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	char rbuf[RECV_BYTES];
	struct nlmsghdr *nlh;
	uint32_t seq;
	ssize_t n;
	int r;

	if (!o)
		return -1;
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, FASTPATH_TABLE);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, name);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	fp->len = 0;
	seq = fp->seq;
	nlh = msg_begin(fp, NFT_MSG_GETOBJ, NLM_F_ACK);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	(void)read_errors(fp);
	if (mnl_socket_sendto(fp->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	do {
		n = mnl_socket_recvfrom(fp->nl, rbuf, sizeof(rbuf));
		if (n < 0)
			return -1;
		r = mnl_cb_run(rbuf, (size_t)n, seq, fp->portid, obj_cb, pb);
	} while (r > MNL_CB_STOP);
	return r < 0 ? -1 : 0;
}

int fastpath_read_totals(struct fastpath *fp)
{
	uint64_t out[2] = { 0, 0 }, in[2] = { 0, 0 }, drop[2] = { 0, 0 };
	uint64_t lan[2] = { 0, 0 };

	fp->st.reads++;
	if (read_counter(fp, OBJ_FAST_OUT, out) < 0 ||
	    read_counter(fp, OBJ_FAST_IN, in) < 0 ||
	    read_counter(fp, OBJ_ADMIT_DROP, drop) < 0 ||
	    read_counter(fp, OBJ_ADMIT_LAN_DROP, lan) < 0) {
		fp->st.read_errors++;
		return -1;
	}
	fp->st.pkts_out = out[0];
	fp->st.bytes_out = out[1];
	fp->st.pkts_in = in[0];
	fp->st.bytes_in = in[1];
	fp->st.admit_dropped = drop[0];
	fp->st.admit_dropped_bytes = drop[1];
	fp->st.admit_lan_dropped = lan[0];
	return 0;
}

uint64_t fastpath_next_check(const struct fastpath *fp)
{
	const struct fpc_node *n = fp ? fpc_heap_top(&fp->due) : NULL;

	return n ? n->at : UINT64_MAX;
}

/* ---- asking the kernel for the counters of given elements -------------- */

#define GET_KEYS 64             /* keys per GETSETELEM message */
#define ASK_PER_SEND 512        /* keys per sendmsg() */

/* One element asked: item and direction ([0] out, [1] in). */
struct ask {
	struct fp_item *it;
	uint8_t dir;
};

/* One GETSETELEM message: asks[from, from + n), its answer so far. */
struct ask_msg {
	uint32_t seq;
	size_t from, n;
	int err;                    /* its ack: 0, -errno, 1 while none */
};

struct round {
	struct fastpath *fp;
	struct ask_msg *msgs;
	size_t n_msgs;
};

static int elem_counter(struct nftnl_expr *e, void *data)
{
	uint64_t *pb = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (name && strcmp(name, "counter") == 0) {
		pb[0] = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		pb[1] = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
	}
	return 0;
}

/* One answered element: its reading on the item. */
static int got_elem(struct nftnl_set_elem *e, void *data)
{
	struct fastpath *fp = data;
	const uint32_t *key;
	struct fp_item *it;
	uint32_t klen = 0;
	uint64_t pb[2] = { 0, 0 };
	int dir;

	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
	if (!key || (klen != 8 && klen != 12))
		return 0;
	dir = klen == 8;
	if (dir)
		it = find_in(fp, ntohl(key[0]), ntohl(key[1]));
	else
		it = find_out(fp, ntohl(key[1]), ntohl(key[2]));
	if (!it || (!dir && (!it->out_on || it->host != ntohl(key[0]))))
		return 0;
	nftnl_set_elem_expr_foreach(e, elem_counter, pb);
	it->g_pkts[dir] = pb[0];
	it->g_bytes[dir] = pb[1];
	it->answered |= (uint8_t)(1u << dir);
	return 0;
}

static struct ask_msg *msg_of(struct round *r, uint32_t seq)
{
	for (size_t i = 0; i < r->n_msgs; i++)
		if (r->msgs[i].seq == seq)
			return &r->msgs[i];
	return NULL;
}

/* Every message of an answer: elements and acks. */
static void read_answer(struct round *r, const char *buf, size_t len)
{
	const struct nlmsghdr *nlh = (const void *)buf;
	int left = (int)len;

	for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
		struct ask_msg *m = msg_of(r, nlh->nlmsg_seq);

		if (nlh->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

			if (m)
				m->err = e->error;
		} else if (m && (nlh->nlmsg_type & 0xff) ==
					NFT_MSG_NEWSETELEM) {
			struct nftnl_set *s = nftnl_set_alloc();

			if (s && nftnl_set_elems_nlmsg_parse(nlh, s) == 0)
				nftnl_set_elem_foreach(s, got_elem, r->fp);
			nftnl_set_free(s);
		}
	}
}

/* Builds one GETSETELEM for asks[from, from + n) (one set) at fp->buf. */
static int build_get(struct fastpath *fp, const struct ask *asks, size_t from,
		     size_t n, struct ask_msg *m)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;

	if (!s)
		return -1;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, FASTPATH_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, asks[from].dir ? MAP_IN : SET_OUT);
	for (size_t i = from; i < from + n; i++) {
		struct nftnl_set_elem *e = nftnl_set_elem_alloc();
		const struct fp_item *it = asks[i].it;
		uint32_t key[3];

		if (!e) {
			nftnl_set_free(s);
			return -1;
		}
		if (asks[i].dir) {
			key[0] = htonl(it->remote);
			key[1] = htonl(it->spi_in);
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, 8);
		} else {
			key[0] = htonl(it->host);
			key[1] = htonl(it->remote);
			key[2] = htonl(it->spi_out);
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, 12);
		}
		nftnl_set_elem_add(s, e);
	}
	*m = (struct ask_msg){ .seq = fp->seq, .from = from, .n = n, .err = 1 };
	nlh = msg_begin(fp, NFT_MSG_GETSETELEM, NLM_F_ACK);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	msg_end(fp, nlh);
	nftnl_set_free(s);
	return 0;
}

/*
 * Asks the kernel for asks[0, n) (grouped by set), in as many rounds as
 * missing elements need: the kernel answers a message's keys in order and
 * stops at the first it does not have (ENOENT), so that one is marked
 * missing and the rest asked again. Returns 0, or -1 (not all answered).
 */
static int ask_some(struct fastpath *fp, struct ask *asks, size_t n)
{
	size_t cap = n / GET_KEYS + 3;
	struct ask_msg *msgs = malloc(cap * sizeof(*msgs));
	struct round r = { .fp = fp, .msgs = msgs };
	char rbuf[RECV_BYTES];
	int rc = 0;

	if (!msgs)
		return -1;
	while (n > 0 && rc == 0) {
		size_t i = 0, again = 0;
		ssize_t got;

		fp->len = 0;
		r.n_msgs = 0;
		while (i < n) {
			size_t j = i + 1;

			while (j < n && j - i < GET_KEYS &&
			       asks[j].dir == asks[i].dir)
				j++;
			if (r.n_msgs == cap ||
			    build_get(fp, asks, i, j - i, &msgs[r.n_msgs]) < 0) {
				rc = -1;
				break;
			}
			r.n_msgs++;
			i = j;
		}
		if (rc < 0)
			break;
		(void)read_errors(fp);
		fp->st.check_requests++;
		if (mnl_socket_sendto(fp->nl, fp->buf, fp->len) < 0) {
			rc = -1;
			break;
		}
		/* the kernel answers inside sendmsg(): all is queued now */
		while ((got = recv(mnl_socket_get_fd(fp->nl), rbuf,
				   sizeof(rbuf), MSG_DONTWAIT)) > 0)
			read_answer(&r, rbuf, (size_t)got);
		for (size_t k = 0; k < r.n_msgs; k++) {
			const struct ask_msg *m = &msgs[k];
			bool first = true;

			if (m->err == 0)
				continue;
			if (m->err != -ENOENT) {
				rc = -1;   /* no answer, or another error */
				continue;
			}
			for (size_t a = m->from; a < m->from + m->n; a++) {
				uint8_t bit = (uint8_t)(1u << asks[a].dir);

				if (asks[a].it->answered & bit)
					continue;
				if (first) {
					asks[a].it->missing |= bit;
					first = false;
				} else {
					asks[again++] = asks[a];
				}
			}
		}
		n = again;
	}
	free(msgs);
	return rc;
}

/* asks[0, n) in sendmsg()s of at most ASK_PER_SEND keys: the kernel
 * queues every answer before we read, and they must fit the receive
 * buffer (RCV_BYTES). */
static int ask_kernel(struct fastpath *fp, struct ask *asks, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n; i += ASK_PER_SEND) {
		size_t k = n - i < ASK_PER_SEND ? n - i : ASK_PER_SEND;

		if (ask_some(fp, asks + i, k) < 0)
			rc = -1;
	}
	return rc;
}

/* ---- the checks ------------------------------------------------------------ */

static uint64_t since(uint64_t now, uint64_t last)
{
	/* a counter below the last reading belongs to an element created
	 * again since: all of it is new */
	return now >= last ? now - last : now;
}

/* The answer for it: the engine credited with the kernel's use, then
 * renewed, reinstalled, left to expire or dropped. */
static void settle(struct fastpath *fp, struct fp_item *it, uint64_t now,
		   fastpath_use_fn fn, void *ctx)
{
	struct engine_esp_use use = { 0 };
	struct fpc_case c = { .now = now, .kexp = it->kexp };
	uint8_t want = (uint8_t)(2u | (it->out_on ? 1u : 0u));
	uint64_t kexp, life = 0, remain = 0;
	uint32_t remote = it->remote, spi_in = it->spi_in;

	c.found = (it->answered & want) == want;
	if (it->answered & 1u) {
		use.pkts_out = since(it->g_pkts[0], it->k_pkts[0]);
		use.bytes_out = since(it->g_bytes[0], it->k_bytes[0]);
		it->k_pkts[0] = it->g_pkts[0];
		it->k_bytes[0] = it->g_bytes[0];
	}
	if (it->answered & 2u) {
		use.pkts_in = since(it->g_pkts[1], it->k_pkts[1]);
		use.bytes_in = since(it->g_bytes[1], it->k_bytes[1]);
		it->k_pkts[1] = it->g_pkts[1];
		it->k_bytes[1] = it->g_bytes[1];
	}
	if (!c.found) {   /* a new element starts counting from zero */
		if (!(it->answered & 1u))
			it->k_pkts[0] = it->k_bytes[0] = 0;
		if (!(it->answered & 2u))
			it->k_pkts[1] = it->k_bytes[1] = 0;
	}
	it->answered = it->missing = 0;
	c.used = use.pkts_out || use.pkts_in;
	c.alive = fn(ctx, it->remote, it->spi_in, it->host, &use, &life,
		     &remain) != 0;
	/* the callback may have changed the tables (a credit can end an
	 * entry): look the item up again */
	it = find_in(fp, remote, spi_in);
	if (!it)
		return;
	c.life_ms = life ? life : 1;
	c.expires = now + remain;
	switch (fpc_decide(&c, &kexp)) {
	case FPC_DROP:
		drop_item(fp, it);
		return;
	case FPC_RENEW:
		fp->st.refreshed++;
		(void)queue_adds(fp, it, now, c.life_ms, kexp);
		return;
	case FPC_REINSTALL:
		fp->st.reinstalled++;
		(void)queue_adds(fp, it, now, c.life_ms, kexp);
		return;
	case FPC_LATE:
		fp->st.checks_late++;
		if (!c.alive || c.expires <= now) {
			drop_item(fp, it);
			return;
		}
		break;
	case FPC_EXPIRE:
		fp->st.checks_idle++;
		break;
	}
	/* idle: the engine's timer ends it at c.expires; should the engine
	 * keep it past that (packets through the queue), look again then */
	it->after_exp = true;
	(void)fpc_heap_set(&fp->due, &it->check,
			   (c.expires > it->kexp ? c.expires : it->kexp) +
			   FPC_LEAD_MIN_MS);
	apply_recheck(fp, it, now);
}

/* An idle association past its expiry that the engine still has: its
 * elements again (no kernel question: they timed out). */
static void settle_after_exp(struct fastpath *fp, struct fp_item *it,
			     uint64_t now, fastpath_use_fn fn, void *ctx)
{
	struct engine_esp_use none = { 0 };
	uint64_t life = 0, remain = 0;
	uint32_t remote = it->remote, spi_in = it->spi_in;

	if (!fn(ctx, remote, spi_in, it->host, &none, &life, &remain)) {
		if ((it = find_in(fp, remote, spi_in)) != NULL)
			drop_item(fp, it);
		return;
	}
	if ((it = find_in(fp, remote, spi_in)) == NULL)
		return;
	fp->st.reinstalled++;
	it->k_pkts[0] = it->k_bytes[0] = it->k_pkts[1] = it->k_bytes[1] = 0;
	if (life == 0)
		life = 1;
	(void)queue_adds(fp, it, now, life,
			 now + (remain < life ? remain : life));
}

size_t fastpath_check(struct fastpath *fp, uint64_t now, size_t budget,
		      bool all, fastpath_use_fn fn, void *ctx)
{
	struct fp_item **items;
	struct ask *asks;
	size_t n = 0, n_asks = 0, done = 0;
	uint64_t t0 = now_us();
	int rc;

	if (!fp || fp->due.n == 0 || budget == 0)
		return 0;
	if (budget > fp->due.n)
		budget = fp->due.n;
	items = malloc(budget * sizeof(*items));
	asks = malloc(2 * budget * sizeof(*asks));
	if (!items || !asks) {
		free(items);
		free(asks);
		return 0;
	}
	if (all)   /* (the loop is over: what it queued goes first) */
		(void)fastpath_commit(fp);
	/* the due ones, earliest first, taken out of the queue */
	while (n < budget) {
		struct fpc_node *top = fpc_heap_top(&fp->due);
		struct fp_item *it;

		if (!top || (!all && top->at > now))
			break;
		it = (struct fp_item *)(void *)((char *)top -
						offsetof(struct fp_item, check));
		fpc_heap_remove(&fp->due, top);
		items[n++] = it;
		it->answered = it->missing = 0;
	}
	/* the in elements, then the out elements (fewer messages) */
	for (size_t i = 0; i < n; i++)
		if (!items[i]->after_exp)
			asks[n_asks++] = (struct ask){ items[i], 1 };
	for (size_t i = 0; i < n; i++)
		if (!items[i]->after_exp && items[i]->out_on)
			asks[n_asks++] = (struct ask){ items[i], 0 };
	fp->st.checks += n_asks;
	rc = n_asks ? ask_kernel(fp, asks, n_asks) : 0;
	if (rc < 0) {
		/* the kernel did not answer all: asked again shortly,
		 * nothing decided on a partial answer */
		fp->st.check_errors++;
		log_warn("fastpath: cannot read the kernel's counters");
		for (size_t i = 0; i < n; i++) {
			items[i]->answered = items[i]->missing = 0;
			(void)fpc_heap_set(&fp->due, &items[i]->check,
					   now + FPC_LEAD_MIN_MS);
		}
		n = 0;
	}
	/* a callback may end the item it is called for (its engine entry
	 * expiring), never another: settle() looks it up again */
	for (size_t i = 0; i < n; i++) {
		struct fp_item *it = items[i];

		if (it->after_exp)
			settle_after_exp(fp, it, now, fn, ctx);
		else
			settle(fp, it, now, fn, ctx);
		done++;
	}
	free(items);
	free(asks);
	if (all)
		(void)fastpath_commit(fp);
	fp->st.last_check_us = now_us() - t0;
	if (done) {
		double per = (double)fp->st.last_check_us / (double)done;

		fp->us_per_check = fp->us_per_check > 0
					   ? 0.875 * fp->us_per_check +
						     0.125 * per
					   : per;
	}
	return done;
}
