/*
 * Fixed-size object pool: chunks are allocated as the tables grow (warm-up)
 * and kept; freed objects go to a free list, so steady-state traffic
 * allocates nothing.
 */
#ifndef IPSEC_MASQD_POOL_H
#define IPSEC_MASQD_POOL_H

#include <stddef.h>

struct pool_chunk;

struct pool {
	size_t obj_size;
	size_t per_chunk;
	void *free_list;
	struct pool_chunk *chunks;
	size_t in_use;
	size_t capacity;         /* objects in all chunks */
};

void pool_init(struct pool *pool, size_t obj_size, size_t per_chunk);
void pool_destroy(struct pool *pool);

/* A zeroed object, or NULL with errno = ENOMEM. */
void *pool_get(struct pool *pool);
void pool_put(struct pool *pool, void *obj);

/* Bytes the pool holds from malloc: its chunks, headers included. */
size_t pool_bytes(const struct pool *pool);

#endif
