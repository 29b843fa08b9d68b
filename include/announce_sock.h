/*
 * The daemon's LAN listener for SPI announcements: a UDP socket on
 * announce.listen, the key file, IP_PKTINFO's interface check, the log
 * records and replies. The protocol's decisions are announce.c's.
 */
#ifndef IPSEC_MASQD_ANNOUNCE_SOCK_H
#define IPSEC_MASQD_ANNOUNCE_SOCK_H

#include <stddef.h>
#include <stdint.h>

#include "conffile.h"
#include "ctlproto.h"
#include "engine.h"

struct announce_sock;

/* Reads the key file, binds announce.listen:port (IP_FREEBIND: the
 * address may come later) and finds the interface that holds the address
 * (never the external one). NULL on failure, logged with the file (and
 * line) at fault. */
struct announce_sock *announce_open(const struct masqd_config *cfg);
int announce_fd(const struct announce_sock *as);

/* Every datagram waiting: checked, applied to eng at eng_now, logged,
 * counted, answered when authentic. */
void announce_receive(struct announce_sock *as, struct engine *eng,
		      uint64_t eng_now);

/* Reload: new keys and limits (an unreadable key file keeps the old keys,
 * logged); a new address or port needs a restart (the daemon closes the
 * listener itself when the announce group is gone). Returns 0 or -1. */
int announce_reload(struct announce_sock *as, const struct masqd_config *cfg);

/* The "announce" stats section: by outcome, then the edge's own. Returns
 * the number written (at most max). */
size_t announce_counters(const struct announce_sock *as,
			 struct ctl_counter *out, size_t max);

void announce_close(struct announce_sock *as);

#endif
