/*
 * IPv4 fragmentation of one packet in user space (RFC 791), for the raw
 * socket's guessed copies: an IP_HDRINCL send larger than the route's MTU
 * fails with EMSGSIZE instead of being fragmented by the kernel. Pure.
 */
#ifndef IPSEC_MASQD_IPFRAG_H
#define IPSEC_MASQD_IPFRAG_H

#include <stddef.h>
#include <stdint.h>

/*
 * How many fragments of at most mtu bytes pkt[0..len) becomes: 1 when it
 * fits, 0 when it cannot be fragmented (DF set, IP options, an MTU too small
 * for 8 payload bytes, a malformed header).
 */
size_t ipfrag_count(const uint8_t *pkt, size_t len, size_t mtu);

/*
 * Writes fragment `index` (0-based, < ipfrag_count()) of pkt into out
 * (room for mtu bytes): the header with the fragment's offset, MF flag,
 * total length and checksum, then its slice of the payload (a multiple of
 * 8 bytes but in the last). Returns its length.
 */
size_t ipfrag_build(const uint8_t *pkt, size_t len, size_t mtu, size_t index,
		    uint8_t *out);

#endif
