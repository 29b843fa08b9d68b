/*
 * Intrusive chained hash table: nodes live inside the entries, the caller
 * supplies the hash and walks the chain to compare keys, so one table type
 * serves every key. The bucket array is sized once (and on reload), never
 * per packet.
 */
#ifndef IPSEC_MASQD_HTAB_H
#define IPSEC_MASQD_HTAB_H

#include <stddef.h>
#include <stdint.h>

struct hnode {
	struct hnode *next;
	struct hnode **pprev;
	uint32_t hash;
};

struct htab {
	struct hnode **bucket;
	size_t mask;      /* bucket count - 1, a power of two */
	size_t count;
};

/* Buckets: the power of two >= min_buckets. Returns 0, or -1 with errno. */
int htab_init(struct htab *tab, size_t min_buckets);
void htab_destroy(struct htab *tab);

/* Rehash into the power of two >= min_buckets. -1/ENOMEM keeps the old. */
int htab_resize(struct htab *tab, size_t min_buckets);

void htab_insert(struct htab *tab, struct hnode *node, uint32_t hash);
void htab_remove(struct htab *tab, struct hnode *node);

/* First node of the chain that a key hashing to `hash` would be in. */
static inline struct hnode *htab_chain(const struct htab *tab, uint32_t hash)
{
	return tab->bucket[hash & tab->mask];
}

/*
 * The singly linked variant, for tables of many small entries (ESP): one
 * pointer per node and no stored hash. Removal walks the node's chain from
 * its bucket (chains are about one node long: the hash is keyed and the
 * buckets as many as the entries), and resizing asks the caller for each
 * node's hash.
 */
struct snode {
	struct snode *next;
};

struct shtab {
	struct snode **bucket;
	size_t mask;      /* bucket count - 1, a power of two */
	size_t count;
};

typedef uint32_t (*shtab_hash_fn)(const struct snode *node, const void *ctx);

/* As htab_init / htab_destroy. */
int shtab_init(struct shtab *tab, size_t min_buckets);
void shtab_destroy(struct shtab *tab);

/* Rehash into the power of two >= min_buckets, hash(node, ctx) giving each
 * node's hash. -1/ENOMEM keeps the old. */
int shtab_resize(struct shtab *tab, size_t min_buckets, shtab_hash_fn hash,
		 const void *ctx);

/* Link node under `hash` / unlink it (inserted under that hash). */
void shtab_insert(struct shtab *tab, struct snode *node, uint32_t hash);
void shtab_remove(struct shtab *tab, struct snode *node, uint32_t hash);

static inline struct snode *shtab_chain(const struct shtab *tab, uint32_t hash)
{
	return tab->bucket[hash & tab->mask];
}

/* Keyed hash of two 64-bit key words. The seed is random per engine so
 * that remote peers cannot aim chains. */
uint32_t htab_hash(uint64_t seed, uint64_t a, uint64_t b);

/* ---- SipHash-1-3 (htab.c says why this one) ---- */

static inline uint64_t htab_rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define HTAB_SIPROUND(v0, v1, v2, v3) do { \
	v0 += v1; v1 = htab_rotl(v1, 13); v1 ^= v0; v0 = htab_rotl(v0, 32); \
	v2 += v3; v3 = htab_rotl(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = htab_rotl(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = htab_rotl(v1, 17); v1 ^= v2; v2 = htab_rotl(v2, 32); \
} while (0)

/* A key set up once: SipHash's state after keying, copied by each hash. */
struct sipkey {
	uint64_t v0, v1, v2, v3;
};

/* The key state for (k0, k1). */
void sipkey_init(struct sipkey *key, uint64_t k0, uint64_t k1);

/* The key state for a per-engine seed and a per-table salt: k0 = seed ^
 * salt, k1 derived from the seed as htab_hash() derives it. */
void sipkey_from_seed(struct sipkey *key, uint64_t seed, uint64_t salt);

/*
 * SipHash-1-3 of one 64-bit word m (its 8 bytes, little-endian), the full
 * 64-bit result. For the hot lookups (ESP: remote and SPI in one word):
 * against htab_hash() it saves the key set-up and one compression round.
 */
static inline uint64_t siphash13_word(const struct sipkey *key, uint64_t m)
{
	uint64_t v0 = key->v0, v1 = key->v1, v2 = key->v2, v3 = key->v3;
	const uint64_t last = (uint64_t)8 << 56;

	v3 ^= m; HTAB_SIPROUND(v0, v1, v2, v3); v0 ^= m;
	v3 ^= last; HTAB_SIPROUND(v0, v1, v2, v3); v0 ^= last;
	v2 ^= 0xff;
	HTAB_SIPROUND(v0, v1, v2, v3);
	HTAB_SIPROUND(v0, v1, v2, v3);
	HTAB_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

#endif
