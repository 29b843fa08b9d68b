/*
 * tests/lib/fault_sendto.c: an LD_PRELOAD shim for the namespace tests.
 * While the file named by $FAULT_FILE exists, every NFQUEUE verdict sent
 * through sendto(2) fails with ENOBUFS, as a kernel short of memory would
 * make it; everything else passes through. Built by the test that uses it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

typedef ssize_t (*sendto_fn)(int, const void *, size_t, int,
			     const struct sockaddr *, socklen_t);

ssize_t sendto(int fd, const void *buf, size_t len, int flags,
	       const struct sockaddr *to, socklen_t tolen)
{
	static sendto_fn real;
	const char *f = getenv("FAULT_FILE");

	if (real == NULL)
		real = (sendto_fn)dlsym(RTLD_NEXT, "sendto");
	if (f != NULL && to != NULL && to->sa_family == AF_NETLINK &&
	    len >= sizeof(struct nlmsghdr) && access(f, F_OK) == 0) {
		const struct nlmsghdr *n = buf;

		if (n->nlmsg_type ==
		    ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT)) {
			errno = ENOBUFS;
			return -1;
		}
	}
	return real(fd, buf, len, flags, to, tolen);
}
