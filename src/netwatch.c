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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include "addrwatch.h"
#include "log.h"
#include "netwatch.h"

struct netwatch {
	struct mnl_socket *nl;
	struct engine *eng;
	struct addrwatch aw;          /* the address state (pure) */
	struct netwatch_stats st;     /* aw's counters, as netwatch.h has them */
	char buf[32768];          /* a dump datagram (MNL_SOCKET_DUMP_SIZE) */
};

static void netwatch_apply(void *ctx, uint32_t addr);

struct netwatch *netwatch_open(struct engine *eng)
{
	struct netwatch *nw = calloc(1, sizeof(*nw));
	int fd;

	if (nw == NULL)
		return NULL;
	nw->eng = eng;
	addrwatch_init(&nw->aw, netwatch_apply, nw, (uint32_t)time(NULL));
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
	return nw->aw.addr;
}

const struct netwatch_stats *netwatch_get_stats(const struct netwatch *nw)
{
	struct netwatch_stats *st = (struct netwatch_stats *)&nw->st;
	const struct addrwatch_stats *a = &nw->aw.st;

	st->messages = a->messages;
	st->changes = a->changes;
	st->resyncs = a->resyncs;
	st->enobufs = a->enobufs;
	st->errors = a->errors + a->dumps_failed;
	return st;
}

/* Applies a new address (0 = none) to the engine and logs the change;
 * addrwatch's callback. */
static void netwatch_apply(void *ctx, uint32_t addr)
{
	struct netwatch *nw = ctx;
	char text[INET_ADDRSTRLEN] = "";
	struct in_addr in = { .s_addr = htonl(addr) };
	/* journal fields: the interface, and the address once text has it */
	const struct log_kv kv[] = {
		{ "EXT_INTERFACE", nw->aw.ifname }, { "EXT_ADDR", text },
	};

	engine_set_external(nw->eng, addr);
	if (addr == 0) {
		log_msg_id(LOG_LEVEL_WARNING, LOG_ID_ADDR_LOST, kv, 1,
			   "external interface %s lost its address: outbound "
			   "IPsec is dropped until it has one", nw->aw.ifname);
		return;
	}
	inet_ntop(AF_INET, &in, text, sizeof(text));
	log_msg_id(LOG_LEVEL_NOTICE, LOG_ID_ADDR_CHANGED, kv, 2,
		   "external address of %s is now %s", nw->aw.ifname, text);
}

/*
 * Sends the dump request addrwatch wants now, if any (one dump at a time
 * per socket: addrwatch holds a request back while one runs). Returns 0 or
 * -1 with errno.
 */
static int netwatch_send_request(struct netwatch *nw)
{
	char req[256];   /* one small request */
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	uint32_t seq;

	if (!addrwatch_take_request(&nw->aw, &seq))
		return 0;
	/* the index, for messages without a label; it may have changed */
	nw->aw.ifindex = if_nametoindex(nw->aw.ifname);
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	if (mnl_socket_sendto(nw->nl, nlh, nlh->nlmsg_len) < 0) {
		addrwatch_send_failed(&nw->aw);
		return -1;
	}
	return 0;
}

int netwatch_set_interface(struct netwatch *nw, const char *ifname)
{
	addrwatch_set_interface(&nw->aw, ifname,
				ifname[0] ? if_nametoindex(ifname) : 0);
	return netwatch_send_request(nw);
}

int netwatch_receive(struct netwatch *nw)
{
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nw->nl, nw->buf,
						sizeof(nw->buf));

		if (n >= 0) {
			addrwatch_feed(&nw->aw, nw->buf, (size_t)n);
			(void)netwatch_send_request(nw);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == ENOBUFS) {
			/* Notifications were lost: ask for the whole truth,
			 * after the dump that may still run. */
			addrwatch_overrun(&nw->aw);
			(void)netwatch_send_request(nw);
			continue;
		}
		nw->aw.st.errors++;
		return -1;
	}
}

int netwatch_sync(struct netwatch *nw, int timeout_ms)
{
	struct pollfd pfd = { .fd = netwatch_fd(nw), .events = POLLIN };

	while ((nw->aw.dumping || nw->aw.want_dump) && timeout_ms > 0) {
		if (poll(&pfd, 1, 50) < 0 && errno != EINTR)
			return -1;
		timeout_ms -= 50;
		if (netwatch_receive(nw) < 0)
			return -1;
	}
	if (nw->aw.dumping || nw->aw.want_dump) {
		errno = ETIMEDOUT;
		return -1;
	}
	return 0;
}
