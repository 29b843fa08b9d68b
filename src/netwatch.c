/*
 * rtnetlink address watch (design.md, "Dynamic WAN address"). A
 * dump gives the starting point and resynchronises after a lost address or
 * an overrun; notifications keep it current in between.
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
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include "log.h"
#include "netwatch.h"

struct netwatch {
	struct mnl_socket *nl;
	struct engine *eng;
	char ifname[IF_NAMESIZE];     /* "" = not watching */
	uint32_t addr;                /* host order, 0 = none */
	uint32_t seq;
	bool dumping;                 /* a dump is running */
	bool dump_again;              /* another one is wanted after it */
	bool dump_seen;               /* the dump listed addr */
	uint32_t dump_candidate;      /* first primary address in the dump */
	struct netwatch_stats st;
	char buf[32768];          /* a dump datagram (MNL_SOCKET_DUMP_SIZE) */
};

struct netwatch *netwatch_open(struct engine *eng)
{
	struct netwatch *nw = calloc(1, sizeof(*nw));
	int fd;

	if (nw == NULL)
		return NULL;
	nw->eng = eng;
	nw->seq = (uint32_t)time(NULL);
	nw->nl = mnl_socket_open(NETLINK_ROUTE);
	if (nw->nl == NULL || mnl_socket_bind(nw->nl, RTMGRP_IPV4_IFADDR,
					      MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	fd = mnl_socket_get_fd(nw->nl);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		goto fail;
	return nw;
fail:
	netwatch_close(nw);
	return NULL;
}

void netwatch_close(struct netwatch *nw)
{
	int saved = errno;

	if (nw == NULL)
		return;
	if (nw->nl != NULL)
		mnl_socket_close(nw->nl);
	free(nw);
	errno = saved;
}

int netwatch_fd(const struct netwatch *nw)
{
	return mnl_socket_get_fd(nw->nl);
}

uint32_t netwatch_address(const struct netwatch *nw)
{
	return nw->addr;
}

const struct netwatch_stats *netwatch_get_stats(const struct netwatch *nw)
{
	return &nw->st;
}

/* Applies a new address (0 = none) to the engine and logs the change. */
static void netwatch_apply(struct netwatch *nw, uint32_t addr)
{
	char text[INET_ADDRSTRLEN] = "";
	struct in_addr in = { .s_addr = htonl(addr) };
	/* journal fields: the interface, and the address once text has it */
	const struct log_kv kv[] = {
		{ "EXT_INTERFACE", nw->ifname }, { "EXT_ADDR", text },
	};

	if (addr == nw->addr)
		return;
	nw->addr = addr;
	nw->st.changes++;
	engine_set_external(nw->eng, addr);
	if (addr == 0) {
		log_msg_id(LOG_LEVEL_WARNING, LOG_ID_ADDR_LOST, kv, 1,
			   "external interface %s lost its address: outbound "
			   "IPsec is dropped until it has one", nw->ifname);
		return;
	}
	inet_ntop(AF_INET, &in, text, sizeof(text));
	log_msg_id(LOG_LEVEL_NOTICE, LOG_ID_ADDR_CHANGED, kv, 2,
		   "external address of %s is now %s", nw->ifname, text);
}

/*
 * Asks for all IPv4 addresses (one dump at a time per socket: a second
 * request waits for the first to end). Returns 0 or -1 with errno.
 */
static int netwatch_request_dump(struct netwatch *nw)
{
	char req[256];   /* one small request */
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;

	if (nw->dumping) {
		nw->dump_again = true;
		return 0;
	}
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++nw->seq;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	if (mnl_socket_sendto(nw->nl, nlh, nlh->nlmsg_len) < 0) {
		nw->st.errors++;
		return -1;
	}
	nw->st.resyncs++;
	nw->dumping = true;
	nw->dump_seen = false;
	nw->dump_candidate = 0;
	return 0;
}

int netwatch_set_interface(struct netwatch *nw, const char *ifname)
{
	if (strcmp(ifname, nw->ifname) != 0) {
		nw->addr = 0;   /* a new interface starts unknown */
		snprintf(nw->ifname, sizeof(nw->ifname), "%s", ifname);
	}
	if (nw->ifname[0] == '\0')
		return 0;
	return netwatch_request_dump(nw);
}

/* True when the address message belongs to the watched interface: its
 * label is the name or an alias of it ("wan0:1"), or its index has it. */
static bool netwatch_is_ours(const struct netwatch *nw,
			     const struct ifaddrmsg *ifa, struct nlattr **tb)
{
	char name[IF_NAMESIZE];
	size_t n = strlen(nw->ifname);

	if (nw->ifname[0] == '\0')
		return false;
	if (tb[IFA_LABEL] != NULL) {
		const char *label = mnl_attr_get_str(tb[IFA_LABEL]);

		return strncmp(label, nw->ifname, n) == 0 &&
		       (label[n] == '\0' || label[n] == ':');
	}
	return if_indextoname(ifa->ifa_index, name) != NULL &&
	       strcmp(name, nw->ifname) == 0;
}

/* Collects the IFA_* attributes we read; callback of mnl_attr_parse. */
static int netwatch_attr_cb(const struct nlattr *attr, void *data)
{
	struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, IFA_MAX) < 0)
		return MNL_CB_OK;
	if ((type == IFA_LOCAL || type == IFA_ADDRESS) &&
	    mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
		return MNL_CB_OK;
	if (type == IFA_LABEL && mnl_attr_validate(attr, MNL_TYPE_STRING) < 0)
		return MNL_CB_OK;
	tb[type] = (struct nlattr *)attr;
	return MNL_CB_OK;
}

/* One RTM_NEWADDR / RTM_DELADDR, from a dump or a notification. */
static void netwatch_handle_addr(struct netwatch *nw,
				 const struct nlmsghdr *nlh, bool in_dump)
{
	struct nlattr *tb[IFA_MAX + 1] = { NULL };
	const struct ifaddrmsg *ifa;
	const struct nlattr *a;
	uint32_t addr;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa)) {
		nw->st.errors++;
		return;
	}
	ifa = mnl_nlmsg_get_payload(nlh);
	nw->st.messages++;
	if (ifa->ifa_family != AF_INET ||
	    mnl_attr_parse(nlh, sizeof(*ifa), netwatch_attr_cb, tb) < 0 ||
	    !netwatch_is_ours(nw, ifa, tb))
		return;
	a = tb[IFA_LOCAL] != NULL ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (a == NULL)
		return;
	addr = ntohl(mnl_attr_get_u32(a));
	if (in_dump) {
		if (addr == nw->addr)
			nw->dump_seen = true;
		else if (nw->dump_candidate == 0 &&
			 !(ifa->ifa_flags & IFA_F_SECONDARY))
			nw->dump_candidate = addr;
	} else if (nlh->nlmsg_type == RTM_NEWADDR && nw->addr == 0) {
		netwatch_apply(nw, addr);
	} else if (nlh->nlmsg_type == RTM_DELADDR && addr == nw->addr) {
		netwatch_apply(nw, 0);
		(void)netwatch_request_dump(nw);   /* another one left? */
	}
}

/* The dump ended: keep the address if it was listed, else take the first
 * primary one (or none). Starts the dump that waited, if any. */
static void netwatch_dump_done(struct netwatch *nw)
{
	nw->dumping = false;
	if (!nw->dump_seen)
		netwatch_apply(nw, nw->dump_candidate);
	if (nw->dump_again) {
		nw->dump_again = false;
		(void)netwatch_request_dump(nw);
	}
}

/* Dispatches the messages of one datagram. */
static void netwatch_handle_buffer(struct netwatch *nw, size_t len)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)nw->buf;
	int left = (int)len;

	while (mnl_nlmsg_ok(nlh, left)) {
		bool in_dump = nw->dumping && nlh->nlmsg_seq == nw->seq;

		if (nlh->nlmsg_type == RTM_NEWADDR ||
		    nlh->nlmsg_type == RTM_DELADDR)
			netwatch_handle_addr(nw, nlh, in_dump);
		else if (nlh->nlmsg_type == NLMSG_DONE && in_dump)
			netwatch_dump_done(nw);
		else if (nlh->nlmsg_type == NLMSG_ERROR) {
			nw->st.errors++;
			if (in_dump)
				netwatch_dump_done(nw);
		}
		nlh = mnl_nlmsg_next(nlh, &left);
	}
}

int netwatch_receive(struct netwatch *nw)
{
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nw->nl, nw->buf,
						sizeof(nw->buf));

		if (n >= 0) {
			netwatch_handle_buffer(nw, (size_t)n);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == ENOBUFS) {
			/* Notifications were lost: ask for the whole truth. */
			nw->st.enobufs++;
			nw->dumping = false;
			if (nw->ifname[0] != '\0')
				(void)netwatch_request_dump(nw);
			continue;
		}
		nw->st.errors++;
		return -1;
	}
}

int netwatch_sync(struct netwatch *nw, int timeout_ms)
{
	struct pollfd pfd = { .fd = netwatch_fd(nw), .events = POLLIN };

	while (nw->dumping && timeout_ms > 0) {
		if (poll(&pfd, 1, 50) < 0 && errno != EINTR)
			return -1;
		timeout_ms -= 50;
		if (netwatch_receive(nw) < 0)
			return -1;
	}
	if (nw->dumping) {
		errno = ETIMEDOUT;
		return -1;
	}
	return 0;
}
