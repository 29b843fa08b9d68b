/* Internet checksum arithmetic (RFC 1071) and incremental update (RFC 1624). */
#ifndef IPSEC_MASQD_CSUM_H
#define IPSEC_MASQD_CSUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * One's-complement sum of len bytes at data, added to the 32-bit partial sum
 * `sum`; bytes are taken in network order (first byte high). Returns the
 * unfolded partial sum, to be chained or folded.
 */
uint32_t csum_partial(const void *data, size_t len, uint32_t sum);

/*
 * Whether 20 bytes (an IPv4 header without options, on every packet) sum
 * to -0, i.e. csum_fold(csum_partial(p, 20, 0)) == 0: the header checksum
 * verifies. Five 32-bit loads in the machine's byte order and no folding:
 * the one's complement sum is 0xffff exactly when the plain sum of the
 * words is a non-zero multiple of 0xffff (2^16 = 1 mod 0xffff), and
 * reading the words byte-swapped multiplies the sum by 2^8, which is
 * invertible mod 0xffff (RFC 1071 2.(B)), so byte order does not matter.
 */
static inline uint32_t csum_load32n(const uint8_t *p)
{
	uint32_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

static inline int csum_zero20(const uint8_t *p)
{
	uint64_t acc = (uint64_t)csum_load32n(p) + csum_load32n(p + 4) +
		       csum_load32n(p + 8) + csum_load32n(p + 12) +
		       csum_load32n(p + 16);

	return acc != 0 && acc % 0xffff == 0;
}

/* Folds a partial sum to 16 bits and complements it: the value for the wire,
 * in host order. Two folds suffice: the first leaves at most 0x1fffe, the
 * second at most 0xffff. */
static inline uint16_t csum_fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'): the checksum field `check` (host
 * order) after a 32-bit word it covers changed from old_word to new_word
 * (both host order), the word taken as two 16-bit halves. Unlike eqn. 2 it
 * gives 0x0000, as a full recomputation does, when the new sum is 0xffff.
 * It equals the full recomputation unless all covered data is zero (+0,
 * checksum 0xffff; eqn. 3 gives the equal -0, 0x0000), which no IPv4 header
 * or UDP pseudo-header can be. Returns the new field value, host order.
 * Inline: it runs twice per rewritten packet at most.
 */
static inline uint16_t csum_replace32(uint16_t check, uint32_t old_word,
				      uint32_t new_word)
{
	uint32_t nold = ~old_word;
	uint32_t sum = (uint16_t)~check;

	sum += (nold >> 16) + (nold & 0xffff);
	sum += (new_word >> 16) + (new_word & 0xffff);
	return csum_fold(sum);
}

#endif
