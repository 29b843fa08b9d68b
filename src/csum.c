/*
 * Internet checksum arithmetic (RFC 1071) and its incremental update
 * (RFC 1624). The sum is taken 32 bits at a time into a 64-bit accumulator:
 * since 2^16 == 1 (mod 0xffff), a big-endian 32-bit word adds the same as its
 * two 16-bit halves, and folding 64 -> 32 -> 16 bits keeps the residue.
 * Loads are byte shifts, so any alignment is fine (no casts, UBSan-clean).
 */
#include "csum.h"

/* Big-endian 32-bit load at any alignment; the compiler makes it one load. */
static inline uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* End-around-carry fold of a 64-bit accumulator to at most 0xffff,
 * congruent to acc modulo 0xffff and non-zero when acc is: callers may add
 * small terms to the result without overflowing 32 bits. */
static inline uint32_t fold64(uint64_t acc)
{
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	return (uint32_t)acc;
}

/* The RFC 1071 sum: why and what it returns are in csum.h. An odd trailing
 * byte counts as the high byte of a zero-padded word, so chained calls must
 * all have even lengths except the last. */
uint32_t csum_partial(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;
	uint64_t acc = sum;

	while (len >= 8) {
		acc += (uint64_t)load_be32(p) + load_be32(p + 4);
		p += 8;
		len -= 8;
	}
	if (len >= 4) {
		acc += load_be32(p);
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		acc += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		acc += (uint32_t)p[0] << 8;
	return fold64(acc);
}

/* csum_fold() and csum_replace32() are inline, in csum.h. */
