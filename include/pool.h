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

/*
 * A place in a walk of the objects in use, which may go on over many calls
 * while objects come and go: objects never move and chunks stay until
 * pool_destroy(), so the place stays valid. An object in use from the
 * walk's start to its end is met exactly once; one taken after the start
 * may or may not be; one given back is not met after that. The walk tells
 * an object in use from a free one by its first word, whose lowest bit a
 * free object has set (the free-list link is tagged): a pool walked so
 * must keep that bit clear in objects in use (a pointer or a zero first).
 */
struct pool_pos {
	const struct pool_chunk *chunk;   /* NULL: the walk is over */
	size_t idx;                       /* next slot in chunk */
};

/* The start of a walk: the chunks as they are now (chunks added later,
 * which go in front, are not walked). */
void pool_pos_start(const struct pool *pool, struct pool_pos *pos);

/* The next object in use from *pos on, looking at no more than *budget
 * slots (*budget is decreased by those looked at); *pos moves past it.
 * NULL when the walk is over (pos->chunk NULL) or the budget ran out. */
void *pool_next_used(const struct pool *pool, struct pool_pos *pos,
		     size_t *budget);

#endif
