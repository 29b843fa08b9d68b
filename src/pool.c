/*
 * Fixed-size object pool. Chunks come from malloc while the tables grow and
 * stay until pool_destroy(); a freed object goes on a free list threaded
 * through its own first bytes, so steady-state get/put never allocates.
 * Under AddressSanitizer free objects are poisoned, so a use after
 * pool_put() is reported like a use after free().
 */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

/* GCC says __SANITIZE_ADDRESS__, clang (before 16) only __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif

#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Chunks and their first object start on a cache line, so objects whose
 * size is a multiple of it (ESP entries: 128 bytes) never straddle one. */
#define POOL_LINE 64

struct pool_chunk {
	struct pool_chunk *next;
	alignas(POOL_LINE) unsigned char objects[];
};

/* Bytes of one chunk: header and objects, rounded up to whole lines as
 * aligned_alloc() wants. Callers have checked that it cannot overflow. */
static size_t chunk_size(const struct pool *pool)
{
	size_t n = sizeof(struct pool_chunk) + pool->per_chunk * pool->obj_size;

	return (n + POOL_LINE - 1) / POOL_LINE * POOL_LINE;
}

/* Object size rounded up so every object in a chunk is max-aligned and can
 * hold the free-list link. Saturates instead of wrapping; such a size then
 * fails in pool_grow(). */
static size_t slot_size(size_t obj_size)
{
	size_t align = alignof(max_align_t);

	if (obj_size < sizeof(void *))
		obj_size = sizeof(void *);
	if (obj_size > SIZE_MAX - (align - 1))
		return SIZE_MAX & ~(align - 1);
	return (obj_size + align - 1) / align * align;
}

/* Set up an empty pool; nothing is allocated before the first get.
 * pool->obj_size becomes the rounded slot size. */
void pool_init(struct pool *pool, size_t obj_size, size_t per_chunk)
{
	memset(pool, 0, sizeof(*pool));
	pool->obj_size = slot_size(obj_size);
	pool->per_chunk = per_chunk ? per_chunk : 1;
}

/* Free every chunk, objects still out included: the owner is going away.
 * Leaves an empty pool that can be used again. */
void pool_destroy(struct pool *pool)
{
	struct pool_chunk *c = pool->chunks;

	while (c) {
		struct pool_chunk *next = c->next;

		UNPOISON(c, chunk_size(pool));
		free(c);
		c = next;
	}
	pool->chunks = NULL;
	pool->free_list = NULL;
	pool->in_use = pool->capacity = 0;
}

/* The free-list link of a free object is tagged with its lowest bit set
 * (objects are max-aligned, so a real link never has it), which is how
 * pool_next_used() tells a free slot from one in use. */
#define FREE_TAG ((uintptr_t)1)

/* Push an object on the free list and poison it. */
static void push_free(struct pool *pool, void *obj)
{
	*(uintptr_t *)obj = (uintptr_t)pool->free_list | FREE_TAG;
	pool->free_list = obj;
	POISON(obj, pool->obj_size);
}

/* Add a chunk and thread its objects onto the free list. Returns 0, or -1
 * with errno = ENOMEM. */
static int pool_grow(struct pool *pool)
{
	size_t n = pool->per_chunk;
	struct pool_chunk *c;

	if (n > (SIZE_MAX - sizeof(*c) - POOL_LINE) / pool->obj_size) {
		errno = ENOMEM;
		return -1;
	}
	c = aligned_alloc(POOL_LINE, chunk_size(pool));
	if (!c) {
		errno = ENOMEM;
		return -1;
	}
	c->next = pool->chunks;
	pool->chunks = c;
	for (size_t i = n; i-- > 0;)
		push_free(pool, c->objects + i * pool->obj_size);
	pool->capacity += n;
	return 0;
}

/* A zeroed, max-aligned object: from the free list, or from a new chunk
 * when it is empty. Returns NULL with errno = ENOMEM on failure. */
void *pool_get(struct pool *pool)
{
	void *obj;

	if (!pool->free_list && pool_grow(pool))
		return NULL;
	obj = pool->free_list;
	UNPOISON(obj, pool->obj_size);
	pool->free_list = (void *)(*(uintptr_t *)obj & ~FREE_TAG);
	memset(obj, 0, pool->obj_size);
	pool->in_use++;
	return obj;
}

/* Give an object back for reuse; NULL is ignored, like free(NULL). */
void pool_put(struct pool *pool, void *obj)
{
	if (!obj)
		return;
	push_free(pool, obj);
	pool->in_use--;
}

/* What the chunks cost: every chunk is per_chunk slots plus its header. */
size_t pool_bytes(const struct pool *pool)
{
	return pool->capacity / pool->per_chunk * chunk_size(pool);
}

void pool_pos_start(const struct pool *pool, struct pool_pos *pos)
{
	pos->chunk = pool->chunks;
	pos->idx = 0;
}

/* Whether the slot at obj holds an object in use. Under ASan a free one is
 * poisoned, so it is asked rather than read. */
static int slot_used(const unsigned char *obj)
{
#ifdef POOL_ASAN
	if (__asan_address_is_poisoned(obj))
		return 0;
#endif
	return !(*(const uintptr_t *)(const void *)obj & FREE_TAG);
}

void *pool_next_used(const struct pool *pool, struct pool_pos *pos,
		     size_t *budget)
{
	while (pos->chunk != NULL && *budget > 0) {
		const struct pool_chunk *c = pos->chunk;

		if (pos->idx >= pool->per_chunk) {
			pos->chunk = c->next;
			pos->idx = 0;
			continue;
		}
		(*budget)--;
		{
			unsigned char *obj = (unsigned char *)c->objects +
					     pos->idx++ * pool->obj_size;

			if (slot_used(obj))
				return obj;
		}
	}
	return NULL;
}
