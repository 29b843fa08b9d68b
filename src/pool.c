/*
 * Fixed-size object pool. Chunks come from malloc while the tables grow and
 * stay until pool_destroy(); a freed object goes on a free list threaded
 * through its own first bytes, so steady-state get/put never allocates.
 */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

struct pool_chunk {
	struct pool_chunk *next;
	alignas(max_align_t) unsigned char objects[];
};

/* Object size rounded up so every object in a chunk is max-aligned and can
 * hold the free-list link. */
static size_t slot_size(size_t obj_size)
{
	size_t align = alignof(max_align_t);

	if (obj_size < sizeof(void *))
		obj_size = sizeof(void *);
	return (obj_size + align - 1) / align * align;
}

void pool_init(struct pool *pool, size_t obj_size, size_t per_chunk)
{
	memset(pool, 0, sizeof(*pool));
	pool->obj_size = slot_size(obj_size);
	pool->per_chunk = per_chunk ? per_chunk : 1;
}

void pool_destroy(struct pool *pool)
{
	struct pool_chunk *c = pool->chunks;

	while (c) {
		struct pool_chunk *next = c->next;

		free(c);
		c = next;
	}
	pool->chunks = NULL;
	pool->free_list = NULL;
	pool->in_use = pool->capacity = 0;
}

/* Add a chunk and thread its objects onto the free list. Returns 0, or -1
 * with errno = ENOMEM. */
static int pool_grow(struct pool *pool)
{
	size_t n = pool->per_chunk;
	struct pool_chunk *c;

	if (n > (SIZE_MAX - sizeof(*c)) / pool->obj_size) {
		errno = ENOMEM;
		return -1;
	}
	c = malloc(sizeof(*c) + n * pool->obj_size);
	if (!c) {
		errno = ENOMEM;
		return -1;
	}
	c->next = pool->chunks;
	pool->chunks = c;
	for (size_t i = n; i-- > 0;) {
		void *obj = c->objects + i * pool->obj_size;

		*(void **)obj = pool->free_list;
		pool->free_list = obj;
	}
	pool->capacity += n;
	return 0;
}

void *pool_get(struct pool *pool)
{
	void *obj;

	if (!pool->free_list && pool_grow(pool))
		return NULL;
	obj = pool->free_list;
	pool->free_list = *(void **)obj;
	memset(obj, 0, pool->obj_size);
	pool->in_use++;
	return obj;
}

void pool_put(struct pool *pool, void *obj)
{
	*(void **)obj = pool->free_list;
	pool->free_list = obj;
	pool->in_use--;
}
