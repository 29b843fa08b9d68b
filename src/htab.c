/*
 * Intrusive chained hash table with caller-supplied hashing and comparison,
 * and its keyed hash. Chains are doubly linked (pprev) so removal is O(1).
 */
#include <errno.h>
#include <stdlib.h>

#include "htab.h"

/* The bucket count for a request: the power of two >= n (at least 1),
 * capped at 2^(bits-2) so the shift cannot overflow; an absurd request then
 * fails in calloc. */
static size_t pow2_at_least(size_t n)
{
	size_t p = 1;

	while (p < n && p < ((size_t)1 << (sizeof(size_t) * 8 - 2)))
		p <<= 1;
	return p;
}

/* Allocate an empty table. Returns 0, or -1 with errno = ENOMEM. */
int htab_init(struct htab *tab, size_t min_buckets)
{
	size_t n = pow2_at_least(min_buckets ? min_buckets : 1);

	*tab = (struct htab){ .bucket = calloc(n, sizeof(*tab->bucket)) };
	if (!tab->bucket) {
		errno = ENOMEM;
		return -1;   /* left empty: htab_destroy() is still safe */
	}
	tab->mask = n - 1;
	return 0;
}

/* Free the bucket array; the nodes belong to their entries. Safe to call
 * twice. */
void htab_destroy(struct htab *tab)
{
	free(tab->bucket);
	tab->bucket = NULL;
	tab->mask = 0;
	tab->count = 0;
}

/* Link node at the head of its chain; count is the caller's business. */
static void link_node(struct hnode **head, struct hnode *node)
{
	node->next = *head;
	if (node->next)
		node->next->pprev = &node->next;
	*head = node;
	node->pprev = head;
}

/* Add node under `hash`, kept in the node so resizing need not rehash
 * keys. O(1); duplicate keys are the caller's business. */
void htab_insert(struct htab *tab, struct hnode *node, uint32_t hash)
{
	node->hash = hash;
	link_node(&tab->bucket[hash & tab->mask], node);
	tab->count++;
}

/* Unlink an inserted node in O(1) through its pprev. */
void htab_remove(struct htab *tab, struct hnode *node)
{
	*node->pprev = node->next;
	if (node->next)
		node->next->pprev = node->pprev;
	node->next = NULL;
	node->pprev = NULL;
	tab->count--;
}

/* Move every node into a new bucket array using the stored hashes.
 * Returns 0, or -1 with errno = ENOMEM leaving the table as it was. */
int htab_resize(struct htab *tab, size_t min_buckets)
{
	size_t n = pow2_at_least(min_buckets ? min_buckets : 1);
	struct hnode **fresh = calloc(n, sizeof(*fresh));

	if (!fresh) {
		errno = ENOMEM;
		return -1;
	}
	for (size_t b = 0; b <= tab->mask; b++) {
		struct hnode *node = tab->bucket[b];

		while (node) {
			struct hnode *next = node->next;

			link_node(&fresh[node->hash & (n - 1)], node);
			node = next;
		}
	}
	free(tab->bucket);
	tab->bucket = fresh;
	tab->mask = n - 1;
	return 0;
}

/* ---- the singly linked variant --------------------------------------------- */

/* Allocate an empty table. Returns 0, or -1 with errno = ENOMEM. */
int shtab_init(struct shtab *tab, size_t min_buckets)
{
	size_t n = pow2_at_least(min_buckets ? min_buckets : 1);

	*tab = (struct shtab){ .bucket = calloc(n, sizeof(*tab->bucket)) };
	if (!tab->bucket) {
		errno = ENOMEM;
		return -1;   /* left empty: shtab_destroy() is still safe */
	}
	tab->mask = n - 1;
	return 0;
}

/* Free the bucket array; safe to call twice. */
void shtab_destroy(struct shtab *tab)
{
	free(tab->bucket);
	tab->bucket = NULL;
	tab->mask = 0;
	tab->count = 0;
}

/* Add node at the head of its chain. O(1). */
void shtab_insert(struct shtab *tab, struct snode *node, uint32_t hash)
{
	struct snode **head = &tab->bucket[hash & tab->mask];

	node->next = *head;
	*head = node;
	tab->count++;
}

/* Unlink node, found by walking the chain `hash` selects; a node that is
 * not there is left alone. O(chain). */
void shtab_remove(struct shtab *tab, struct snode *node, uint32_t hash)
{
	for (struct snode **pp = &tab->bucket[hash & tab->mask]; *pp;
	     pp = &(*pp)->next) {
		if (*pp == node) {
			*pp = node->next;
			node->next = NULL;
			tab->count--;
			return;
		}
	}
}

/* Move every node into a new bucket array, asking hash() for each.
 * Returns 0, or -1 with errno = ENOMEM leaving the table as it was. */
int shtab_resize(struct shtab *tab, size_t min_buckets, shtab_hash_fn hash,
		 const void *ctx)
{
	size_t n = pow2_at_least(min_buckets ? min_buckets : 1);
	struct snode **fresh = calloc(n, sizeof(*fresh));

	if (!fresh) {
		errno = ENOMEM;
		return -1;
	}
	for (size_t b = 0; b <= tab->mask; b++) {
		struct snode *node = tab->bucket[b];

		while (node) {
			struct snode *next = node->next;
			struct snode **head = &fresh[hash(node, ctx) & (n - 1)];

			node->next = *head;
			*head = node;
			node = next;
		}
	}
	free(tab->bucket);
	tab->bucket = fresh;
	tab->mask = n - 1;
	return 0;
}

/* ---- SipHash-1-3 over two 64-bit words ------------------------------------
 * Keys the table with a random per-engine seed so that a remote peer, which
 * chooses SPIs and cookies, cannot aim many keys at one chain. One
 * compression round and three finalisation rounds (the variant Rust and
 * Python use for hash tables) is plenty for a 16-byte input; a keyed
 * multiply-xorshift mix would be faster but has no analysis against an
 * adversary who sees timing, SipHash does. The core was checked against
 * Python 3.11's siphash13 (PYTHONHASHSEED=0, zero key). The header gives
 * a 64-bit seed: k1 is derived from it, so the key has 64 bits of secret,
 * ample for a per-engine random seed. */

#define rotl htab_rotl
#define SIPROUND HTAB_SIPROUND

/* SipHash-1-3 of the 16 bytes a, b (host order) keyed by seed, folded to
 * the low 32 bits. */
uint32_t htab_hash(uint64_t seed, uint64_t a, uint64_t b)
{
	uint64_t k0 = seed, k1 = rotl(seed, 29) ^ 0x9e3779b97f4a7c15ULL;
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k1 ^ 0x7465646279746573ULL;
	uint64_t last = (uint64_t)16 << 56;

	v3 ^= a; SIPROUND(v0, v1, v2, v3); v0 ^= a;
	v3 ^= b; SIPROUND(v0, v1, v2, v3); v0 ^= b;
	v3 ^= last; SIPROUND(v0, v1, v2, v3); v0 ^= last;
	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	return (uint32_t)(v0 ^ v1 ^ v2 ^ v3);
}

/* SipHash's initial state: the key xored into its constants. */
void sipkey_init(struct sipkey *key, uint64_t k0, uint64_t k1)
{
	key->v0 = k0 ^ 0x736f6d6570736575ULL;
	key->v1 = k1 ^ 0x646f72616e646f6dULL;
	key->v2 = k0 ^ 0x6c7967656e657261ULL;
	key->v3 = k1 ^ 0x7465646279746573ULL;
}

/* A table's key from the engine's seed (see htab.h). */
void sipkey_from_seed(struct sipkey *key, uint64_t seed, uint64_t salt)
{
	sipkey_init(key, seed ^ salt, rotl(seed, 29) ^ 0x9e3779b97f4a7c15ULL);
}
