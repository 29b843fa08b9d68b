/*
 * The raw IPv4 socket (IP_HDRINCL) that sends the extra copies of a guessed
 * inbound packet to the other candidate LAN hosts. Its packets carry
 * RAWSOCK_MARK so that no rule queues them again.
 */
#ifndef IPSEC_MASQD_RAWSOCK_H
#define IPSEC_MASQD_RAWSOCK_H

#include <stddef.h>
#include <stdint.h>

#define RAWSOCK_MARK 0x1a5ec

struct rawsock_stats {
	uint64_t sent;        /* copies handed to the kernel */
	uint64_t failed;      /* copies not sent: sendto error or unparseable */
	uint64_t fragmented;  /* ... sent in fragments (larger than the MTU) */
	uint64_t too_big;     /* ... not sent: larger than the MTU, DF set */
};

/* The largest MTU a copy is fragmented for (a fragment on the stack). */
#define RAWSOCK_MAX_FRAG 9216

struct rawsock {
	int fd;
	uint8_t *scratch;  /* one 64 KiB packet, allocated at open */
	struct rawsock_stats st;
};

/* Opens the socket (needs CAP_NET_RAW, and CAP_NET_ADMIN for SO_MARK).
 * Returns 0, or -1 with errno. */
int rawsock_open(struct rawsock *rs);

/*
 * Sends one copy of pkt[0..len) (already rewritten for its first host) to
 * each of dst[0..n) (host order), rewriting the destination address and
 * checksums of the copy only. Returns the number sent; failures are counted.
 */
unsigned rawsock_send_copies(struct rawsock *rs, const uint8_t *pkt,
			     size_t len, const uint32_t *dst, unsigned n);

void rawsock_close(struct rawsock *rs);

#endif
