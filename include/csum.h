/* Internet checksum arithmetic (RFC 1071) and incremental update (RFC 1624). */
#ifndef IPSEC_MASQD_CSUM_H
#define IPSEC_MASQD_CSUM_H

#include <stddef.h>
#include <stdint.h>

/*
 * One's-complement sum of len bytes at data, added to the 32-bit partial sum
 * `sum`; bytes are taken in network order (first byte high). Returns the
 * unfolded partial sum, to be chained or folded.
 */
uint32_t csum_partial(const void *data, size_t len, uint32_t sum);

/* Folds a partial sum to 16 bits and complements it: the value for the wire,
 * in host order. */
uint16_t csum_fold(uint32_t sum);

/*
 * RFC 1624 eqn. 3: the checksum field `check` (host order) after a 32-bit
 * word it covers changed from old_word to new_word (both host order).
 * Returns the new field value, host order.
 */
uint16_t csum_replace32(uint16_t check, uint32_t old_word, uint32_t new_word);

#endif
