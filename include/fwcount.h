/*
 * The egress guard's counter, read from the kernel: the named nftables
 * counter "guard" of our table "inet ipsec_masqd" (etc/ipsec-masqd.nft),
 * asked for with one NFT_MSG_GETOBJ over nfnetlink. The daemon keeps
 * CAP_NET_ADMIN, which nfnetlink requires, so no helper program and no
 * extra capability is involved. With the iptables backend there is no such
 * object and the read says so (ENOENT).
 */
#ifndef IPSEC_MASQD_FWCOUNT_H
#define IPSEC_MASQD_FWCOUNT_H

#include <stddef.h>
#include <stdint.h>

#define FWCOUNT_TABLE "ipsec_masqd"   /* family inet */
#define FWCOUNT_GUARD "guard"

struct fwcount {
	uint64_t packets;
	uint64_t bytes;
};

/*
 * Parses the kernel's answer (buf, len: what one recv returned) to the
 * request with sequence number seq. Returns 0 with *out filled, or -1 with
 * errno: the kernel's error (ENOENT: no such table or counter; EPERM), or
 * EBADMSG for an answer that is truncated, garbled or not a counter.
 */
int fwcount_parse(const void *buf, size_t len, uint32_t seq,
		  struct fwcount *out);

/* Asks the kernel for counter `name` of table inet `table`. Returns 0, or
 * -1 with errno. */
int fwcount_read(const char *table, const char *name, struct fwcount *out);

#endif
