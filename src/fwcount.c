/*
 * Reading a named nftables counter (fwcount.h). The parser is apart from
 * the socket code so that it is tested on bytes, without a kernel.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

#include "fwcount.h"

struct parse_ctx {
	struct fwcount *out;
	int found;
};

static int counter_attr(const struct nlattr *a, void *data)
{
	struct parse_ctx *p = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type != NFTA_COUNTER_PACKETS && type != NFTA_COUNTER_BYTES)
		return MNL_CB_OK;
	if (mnl_attr_validate(a, MNL_TYPE_U64) < 0)
		return MNL_CB_ERROR;
	if (type == NFTA_COUNTER_PACKETS) {
		p->out->packets = be64toh(mnl_attr_get_u64(a));
		p->found |= 1;
	} else {
		p->out->bytes = be64toh(mnl_attr_get_u64(a));
		p->found |= 2;
	}
	return MNL_CB_OK;
}

static int obj_attr(const struct nlattr *a, void *data)
{
	struct parse_ctx *p = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type == NFTA_OBJ_TYPE) {
		if (mnl_attr_validate(a, MNL_TYPE_U32) < 0 ||
		    ntohl(mnl_attr_get_u32(a)) != NFT_OBJECT_COUNTER)
			return MNL_CB_ERROR;
		p->found |= 4;
	} else if (type == NFTA_OBJ_DATA) {
		if (mnl_attr_validate(a, MNL_TYPE_NESTED) < 0 ||
		    mnl_attr_parse_nested(a, counter_attr, p) < 0)
			return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

static int obj_msg(const struct nlmsghdr *nlh, void *data)
{
	if ((nlh->nlmsg_type & 0xff) != NFT_MSG_NEWOBJ ||
	    nlh->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES)
		return MNL_CB_ERROR;
	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), obj_attr, data) < 0)
		return MNL_CB_ERROR;
	return MNL_CB_OK;
}

int fwcount_parse(const void *buf, size_t len, uint32_t seq,
		  struct fwcount *out)
{
	struct fwcount c = { 0, 0 };
	struct parse_ctx p = { .out = &c, .found = 0 };
	int r;

	errno = 0;
	r = mnl_cb_run(buf, len, seq, 0, obj_msg, &p);
	if (r < 0) {
		/* mnl_cb_run sets errno from an NLMSG_ERROR (ENOENT, EPERM) */
		if (errno == 0 || errno == EPROTO || errno == ENOSPC)
			errno = EBADMSG;
		return -1;
	}
	if (p.found != 7) {
		errno = EBADMSG;
		return -1;
	}
	*out = c;
	return 0;
}

int fwcount_read(const char *table, const char *name, struct fwcount *out)
{
	char buf[8192];   /* one object: a few hundred bytes */
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	uint32_t seq = (uint32_t)time(NULL);
	ssize_t n;
	int r = -1, saved;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETOBJ;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = NFPROTO_INET;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	mnl_attr_put_strz(nlh, NFTA_OBJ_TABLE, table);
	mnl_attr_put_strz(nlh, NFTA_OBJ_NAME, name);
	mnl_attr_put_u32(nlh, NFTA_OBJ_TYPE, htonl(NFT_OBJECT_COUNTER));

	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (nl == NULL)
		return -1;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		goto out;
	/* the object, or an error */
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		goto out;
	r = fwcount_parse(buf, (size_t)n, seq, out);
out:
	saved = errno;
	mnl_socket_close(nl);
	errno = saved;
	return r;
}
