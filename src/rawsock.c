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
 * Sends one copy to dst: copies into the scratch buffer, rewrites the
 * destination (with checksums) and sends. Returns 0 or -1 with errno.
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
		   (const struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -1;
	return 0;
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
