/*
 * Follows the IPv4 address of the external interface over rtnetlink
 * (RTMGRP_IPV4_IFADDR) and hands every change to the engine, logging it.
 */
#ifndef IPSEC_MASQD_NETWATCH_H
#define IPSEC_MASQD_NETWATCH_H

#include <stdint.h>

#include "engine.h"

struct netwatch_stats {
	uint64_t messages;   /* address messages read */
	uint64_t changes;    /* external address changes applied */
	uint64_t resyncs;    /* dumps requested (start, loss, overrun) */
	uint64_t enobufs;    /* missed notifications (then resynced) */
	uint64_t errors;     /* other socket or netlink errors */
};

struct netwatch;

/* Opens the socket for eng, watching nothing yet. Returns the handle, or
 * NULL with errno. */
struct netwatch *netwatch_open(struct engine *eng);

/*
 * Watches ifname ("" = stop watching: the address is configured) and starts
 * a dump of its addresses; the result reaches the engine as events arrive.
 * A changed name starts from "no address". Returns 0, or -1 with errno.
 */
int netwatch_set_interface(struct netwatch *nw, const char *ifname);

/* Waits up to timeout_ms for the dump started by netwatch_set_interface()
 * to finish (used at start-up). Returns 0, or -1 with errno ETIMEDOUT. */
int netwatch_sync(struct netwatch *nw, int timeout_ms);

/* The socket to poll. */
int netwatch_fd(const struct netwatch *nw);

/* Reads what is waiting without blocking and applies it. Returns 0, or -1
 * with errno on a socket error (counted; the watch goes on). */
int netwatch_receive(struct netwatch *nw);

/* The current address of the watched interface (host order), 0 if none. */
uint32_t netwatch_address(const struct netwatch *nw);

const struct netwatch_stats *netwatch_get_stats(const struct netwatch *nw);

void netwatch_close(struct netwatch *nw);

#endif
