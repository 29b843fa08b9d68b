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

#endif
