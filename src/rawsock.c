/*
 * Extra copies of a guessed inbound packet (design.md, "Guessed copies"):
 * the engine already rewrote the queued packet for the first host; each other
 * candidate gets its own copy through this socket.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "ipfrag.h"
#include "packet.h"
#include "rawsock.h"

#define RAWSOCK_MAX_PKT 0xffff

/* Sets the socket options the copies depend on. Returns 0 or -1. */
static int rawsock_setup(int fd)
{
	int one = 1;
	unsigned mark = RAWSOCK_MARK;

	if (setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one)) < 0)
		return -1;
	/* Without the mark our own copies would match the queue rules. */
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0)
		return -1;
	return 0;
}

int rawsock_open(struct rawsock *rs)
{
	memset(rs, 0, sizeof(*rs));
	rs->fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
			IPPROTO_RAW);
	if (rs->fd < 0)
		return -1;
	rs->scratch = malloc(RAWSOCK_MAX_PKT);
	if (rs->scratch == NULL || rawsock_setup(rs->fd) < 0) {
		int saved = errno;

		rawsock_close(rs);
		errno = saved;
		return -1;
	}
	return 0;
}

/*
 * The MTU of the route to dst (host order), from a UDP socket connected to
 * it (IP_MTU): only for a copy too large to send whole. Returns it, or 0.
 */
static size_t rawsock_route_mtu(uint32_t dst)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(9),
				   .sin_addr.s_addr = htonl(dst) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), mtu = 0;
	socklen_t len = sizeof(mtu);

	if (fd < 0)
		return 0;
	if (connect(fd, (const struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &len) < 0 || mtu < 0)
		mtu = 0;
	close(fd);
	return (size_t)mtu;
}

/*
 * Sends scratch[0..len) in fragments of the route's MTU: the kernel does not
 * fragment IP_HDRINCL sends (EMSGSIZE). A packet with DF set (or options)
 * is not fragmented: EMSGSIZE, counted as too big. Returns 0 or -1 with
 * errno.
 */
static int rawsock_send_fragments(struct rawsock *rs, size_t len,
				  const struct sockaddr_in *sin)
{
	size_t mtu = rawsock_route_mtu(ntohl(sin->sin_addr.s_addr)), n;
	uint8_t frag[RAWSOCK_MAX_FRAG];

	if (mtu > sizeof(frag))
		mtu = sizeof(frag);   /* smaller fragments are fine */
	n = mtu ? ipfrag_count(rs->scratch, len, mtu) : 0;
	if (n < 2) {
		rs->st.too_big++;
		errno = EMSGSIZE;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		size_t flen = ipfrag_build(rs->scratch, len, mtu, i, frag);

		if (sendto(rs->fd, frag, flen, MSG_DONTWAIT,
			   (const struct sockaddr *)sin, sizeof(*sin)) < 0)
			return -1;
	}
	rs->st.fragmented++;
	return 0;
}

/*
 * Sends one copy to dst: copies into the scratch buffer, rewrites the
 * destination (with checksums) and sends, in fragments when it is larger
 * than the route's MTU. Returns 0 or -1 with errno.
 */
static int rawsock_send_one(struct rawsock *rs, const uint8_t *pkt,
			    size_t len, uint32_t dst)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct pkt_view view;

	memcpy(rs->scratch, pkt, len);
	if (pkt_parse(rs->scratch, len, &view) != R_PASS) {
		errno = EINVAL;
		return -1;
	}
	pkt_set_daddr(&view, dst);
	sin.sin_addr.s_addr = htonl(dst);
	if (sendto(rs->fd, rs->scratch, len, MSG_DONTWAIT,
		   (const struct sockaddr *)&sin, sizeof(sin)) >= 0)
		return 0;
	if (errno == EMSGSIZE)
		return rawsock_send_fragments(rs, len, &sin);
	return -1;
}

unsigned rawsock_send_copies(struct rawsock *rs, const uint8_t *pkt,
			     size_t len, const uint32_t *dst, unsigned n)
{
	unsigned sent = 0;

	for (unsigned i = 0; i < n; i++) {
		if (rs->fd < 0 || len > RAWSOCK_MAX_PKT ||
		    rawsock_send_one(rs, pkt, len, dst[i]) < 0) {
			rs->st.failed++;
			continue;
		}
		rs->st.sent++;
		sent++;
	}
	return sent;
}

void rawsock_close(struct rawsock *rs)
{
	if (rs->fd >= 0)
		close(rs->fd);
	rs->fd = -1;
	free(rs->scratch);
	rs->scratch = NULL;
}
