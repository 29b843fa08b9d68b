/*
 * The intrusive hash table, its keyed hash, and the object pool.
 */
#include <check.h>
#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "pool.h"

/* The ENOMEM tests ask for absurd sizes; let ASan return NULL as libc
 * does instead of aborting. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

/* Check's ck_assert writes to a pipe even when it passes; loops over many
 * keys only call Check on failure. */
#define EXPECT(expr) \
	do { \
		if (!(expr)) \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #expr); \
	} while (0)

struct item {
	struct hnode node;
	uint64_t key;
};

static struct item *lookup(const struct htab *tab, uint64_t seed, uint64_t key)
{
	uint32_t h = htab_hash(seed, key, 0);

	for (struct hnode *n = htab_chain(tab, h); n; n = n->next) {
		struct item *it = (struct item *)(void *)n;

		if (n->hash == h && it->key == key)
			return it;
	}
	return NULL;
}

/* Every chain is well linked, in the bucket its hash selects, and the
 * chains hold tab->count nodes. */
static void assert_table_consistent(const struct htab *tab)
{
	size_t count = 0;

	for (size_t b = 0; b <= tab->mask; b++) {
		struct hnode *const *pp = &tab->bucket[b];

		for (; *pp; pp = &(*pp)->next, count++) {
			EXPECT((*pp)->pprev == pp);
			EXPECT(((*pp)->hash & tab->mask) == b);
		}
	}
	EXPECT(count == tab->count);
}

START_TEST(bucket_counts_are_powers_of_two)
{
	/* request, buckets, buckets after a resize to 3 * request */
	static const size_t want[][3] = { { 0, 1, 1 }, { 1, 1, 4 },
					  { 2, 2, 8 }, { 3, 4, 16 },
					  { 1000, 1024, 4096 },
					  { 1024, 1024, 4096 },
					  { 1025, 2048, 4096 } };
	struct htab tab;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ck_assert_int_eq(htab_init(&tab, want[i][0]), 0);
		ck_assert_uint_eq(tab.mask + 1, want[i][1]);
		ck_assert_uint_eq(tab.count, 0);
		ck_assert_int_eq(htab_resize(&tab, want[i][0] * 3), 0);
		ck_assert_uint_eq(tab.mask + 1, want[i][2]);
		htab_destroy(&tab);
		htab_destroy(&tab);     /* twice is harmless */
	}
}
END_TEST

START_TEST(insert_lookup_remove_resize)
{
	enum { N = 20000 };
	struct item *items = calloc(N, sizeof(*items));
	struct htab tab;

	ck_assert_ptr_nonnull(items);
	ck_assert_int_eq(htab_init(&tab, 1000), 0);
	for (uint64_t i = 0; i < N; i++) {
		items[i].key = i * 7919;
		htab_insert(&tab, &items[i].node, htab_hash(1, items[i].key, 0));
	}
	ck_assert_uint_eq(tab.count, N);
	assert_table_consistent(&tab);
	for (uint64_t i = 0; i < N; i += 2)
		htab_remove(&tab, &items[i].node);
	ck_assert_uint_eq(tab.count, N / 2);
	assert_table_consistent(&tab);
	ck_assert_int_eq(htab_resize(&tab, 40000), 0);
	ck_assert_uint_eq(tab.mask + 1, 65536);
	ck_assert_uint_eq(tab.count, N / 2);
	assert_table_consistent(&tab);
	for (uint64_t i = 0; i < N; i++)
		EXPECT(lookup(&tab, 1, i * 7919) == (i % 2 ? &items[i] : NULL));
	ck_assert_ptr_null(lookup(&tab, 1, 3));
	/* shrinking keeps everything too */
	ck_assert_int_eq(htab_resize(&tab, 16), 0);
	ck_assert_uint_eq(tab.mask + 1, 16);
	assert_table_consistent(&tab);
	for (uint64_t i = 1; i < N; i += 2)
		EXPECT(lookup(&tab, 1, i * 7919) == &items[i]);
	for (uint64_t i = 1; i < N; i += 2)
		htab_remove(&tab, &items[i].node);
	ck_assert_uint_eq(tab.count, 0);
	for (size_t b = 0; b <= tab.mask; b++)
		ck_assert_ptr_null(tab.bucket[b]);
	htab_destroy(&tab);
	free(items);
}
END_TEST

/* One bucket, one chain: removing its head, middle and tail keeps the
 * links right. */
START_TEST(remove_anywhere_in_a_chain)
{
	struct item items[5];
	struct htab tab;
	static const int order[] = { 2, 0, 4, 1, 3 };   /* middle, tail, head */

	ck_assert_int_eq(htab_init(&tab, 1), 0);
	for (int i = 0; i < 5; i++) {
		items[i].key = (uint64_t)i;
		htab_insert(&tab, &items[i].node, (uint32_t)i * 0x10001u);
	}
	assert_table_consistent(&tab);
	for (int k = 0; k < 5; k++) {
		htab_remove(&tab, &items[order[k]].node);
		ck_assert_ptr_null(items[order[k]].node.pprev);
		ck_assert_uint_eq(tab.count, 4 - (size_t)k);
		assert_table_consistent(&tab);
	}
	ck_assert_ptr_null(tab.bucket[0]);
	htab_destroy(&tab);
}
END_TEST

START_TEST(failed_resize_keeps_the_table)
{
	struct item it = { .key = 9 };
	struct htab tab;
	struct hnode **old;

	ck_assert_int_eq(htab_init(&tab, 8), 0);
	htab_insert(&tab, &it.node, htab_hash(5, 9, 0));
	old = tab.bucket;
	errno = 0;
	ck_assert_int_eq(htab_resize(&tab, SIZE_MAX / 2), -1);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_ptr_eq(tab.bucket, old);
	ck_assert_uint_eq(tab.mask + 1, 8);
	ck_assert_uint_eq(tab.count, 1);
	ck_assert_ptr_eq(lookup(&tab, 5, 9), &it);
	htab_destroy(&tab);
	ck_assert_int_eq(htab_init(&tab, SIZE_MAX / 2), -1);
	ck_assert_int_eq(errno, ENOMEM);
	htab_destroy(&tab);
}
END_TEST

/* ---- the singly linked variant ---- */

struct sitem {
	struct snode node;
	uint64_t key;
};

static uint32_t sitem_hash(const struct snode *n, const void *ctx)
{
	const struct sitem *it = (const struct sitem *)(const void *)n;

	return htab_hash(*(const uint64_t *)ctx, it->key, 0);
}

static struct sitem *slookup(const struct shtab *tab, uint64_t seed,
			     uint64_t key)
{
	for (struct snode *n = shtab_chain(tab, htab_hash(seed, key, 0)); n;
	     n = n->next) {
		struct sitem *it = (struct sitem *)(void *)n;

		if (it->key == key)
			return it;
	}
	return NULL;
}

/* Every node is in the bucket its hash selects, and the chains hold
 * tab->count nodes. */
static void assert_stable_consistent(const struct shtab *tab, uint64_t seed)
{
	size_t count = 0;

	for (size_t b = 0; b <= tab->mask; b++)
		for (struct snode *n = tab->bucket[b]; n; n = n->next, count++)
			EXPECT((sitem_hash(n, &seed) & tab->mask) == b);
	EXPECT(count == tab->count);
}

START_TEST(shtab_insert_lookup_remove_resize)
{
	enum { N = 20000 };
	struct sitem *items = calloc(N, sizeof(*items));
	uint64_t seed = 3;
	struct shtab tab;

	ck_assert_ptr_nonnull(items);
	ck_assert_int_eq(shtab_init(&tab, 1000), 0);
	ck_assert_uint_eq(tab.mask + 1, 1024);
	for (uint64_t i = 0; i < N; i++) {
		items[i].key = i * 7919;
		shtab_insert(&tab, &items[i].node,
			     sitem_hash(&items[i].node, &seed));
	}
	ck_assert_uint_eq(tab.count, N);
	assert_stable_consistent(&tab, seed);
	for (uint64_t i = 0; i < N; i += 2)
		shtab_remove(&tab, &items[i].node,
			     sitem_hash(&items[i].node, &seed));
	ck_assert_uint_eq(tab.count, N / 2);
	/* removing what is not there changes nothing */
	shtab_remove(&tab, &items[0].node, sitem_hash(&items[0].node, &seed));
	ck_assert_uint_eq(tab.count, N / 2);
	assert_stable_consistent(&tab, seed);
	ck_assert_int_eq(shtab_resize(&tab, 40000, sitem_hash, &seed), 0);
	ck_assert_uint_eq(tab.mask + 1, 65536);
	ck_assert_uint_eq(tab.count, N / 2);
	assert_stable_consistent(&tab, seed);
	for (uint64_t i = 0; i < N; i++)
		EXPECT(slookup(&tab, seed, i * 7919) ==
		       (i % 2 ? &items[i] : NULL));
	ck_assert_int_eq(shtab_resize(&tab, 16, sitem_hash, &seed), 0);
	ck_assert_uint_eq(tab.mask + 1, 16);
	assert_stable_consistent(&tab, seed);
	for (uint64_t i = 1; i < N; i += 2)
		shtab_remove(&tab, &items[i].node,
			     sitem_hash(&items[i].node, &seed));
	ck_assert_uint_eq(tab.count, 0);
	for (size_t b = 0; b <= tab.mask; b++)
		ck_assert_ptr_null(tab.bucket[b]);
	errno = 0;
	ck_assert_int_eq(shtab_resize(&tab, SIZE_MAX / 2, sitem_hash, &seed),
			 -1);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(tab.mask + 1, 16);
	shtab_destroy(&tab);
	shtab_destroy(&tab);
	free(items);
}
END_TEST

/* One bucket, one chain: head, middle and tail removals keep the chain. */
START_TEST(shtab_remove_anywhere_in_a_chain)
{
	struct sitem items[5];
	struct shtab tab;
	static const int order[] = { 2, 0, 4, 1, 3 };

	ck_assert_int_eq(shtab_init(&tab, 1), 0);
	for (int i = 0; i < 5; i++) {
		items[i].key = (uint64_t)i;
		shtab_insert(&tab, &items[i].node, (uint32_t)i);
	}
	for (int k = 0; k < 5; k++) {
		shtab_remove(&tab, &items[order[k]].node, (uint32_t)order[k]);
		ck_assert_uint_eq(tab.count, 4 - (size_t)k);
		for (int j = k + 1; j < 5; j++) {
			struct snode *n = tab.bucket[0];

			while (n && n != &items[order[j]].node)
				n = n->next;
			ck_assert_ptr_nonnull(n);
		}
	}
	ck_assert_ptr_null(tab.bucket[0]);
	shtab_destroy(&tab);
}
END_TEST

/* Sequential keys (SPIs often are) spread evenly; another seed gives
 * another layout. */
START_TEST(keyed_hash_spreads_sequential_keys)
{
	enum { N = 65536 };
	static unsigned short load[N], load_b[N];
	unsigned longest = 0, longest_b = 0, same = 0;

	for (uint64_t k = 0; k < N; k++) {
		uint32_t h = htab_hash(42, (uint64_t)0xcb007114 << 32 | k, 1);
		uint32_t g = htab_hash(42, 0x0a000001, k);

		if (++load[h & (N - 1)] > longest)
			longest = load[h & (N - 1)];
		if (++load_b[g & (N - 1)] > longest_b)
			longest_b = load_b[g & (N - 1)];
		same += (h & (N - 1)) ==
			(htab_hash(43, (uint64_t)0xcb007114 << 32 | k, 1) & (N - 1));
	}
	/* a balls-into-bins maximum is about 8 here */
	ck_assert_uint_lt(longest, 16);
	ck_assert_uint_lt(longest_b, 16);
	ck_assert_uint_lt(same, 64);    /* about 1 expected by chance */
	ck_assert_uint_ne(htab_hash(1, 2, 3), htab_hash(1, 3, 2));
}
END_TEST

/* Every seed bit and every key bit changes about half the output bits. */
START_TEST(keyed_hash_avalanches)
{
	unsigned flips = 0, trials = 0;

	for (unsigned bit = 0; bit < 64; bit++) {
		uint64_t s = 0x5eed5eed5eed5eedULL, a = 0xc0a80001, b = 0x1234;
		uint32_t h = htab_hash(s, a, b);

		flips += (unsigned)__builtin_popcount(
			h ^ htab_hash(s ^ 1ULL << bit, a, b));
		flips += (unsigned)__builtin_popcount(
			h ^ htab_hash(s, a ^ 1ULL << bit, b));
		flips += (unsigned)__builtin_popcount(
			h ^ htab_hash(s, a, b ^ 1ULL << bit));
		trials += 3;
	}
	/* 192 trials of 32 bits: mean 16, 3072 in all, sd about 28 */
	ck_assert_uint_gt(flips, 16 * trials - 300);
	ck_assert_uint_lt(flips, 16 * trials + 300);
}
END_TEST

/* Regression values of SipHash-1-3 with this seed expansion (the core was
 * checked against Python's siphash13). Changing them changes every
 * table layout, which is harmless but should be deliberate. */
START_TEST(keyed_hash_known_answers)
{
	ck_assert_uint_eq(htab_hash(0, 0, 0), 0xb0a1384bu);
	ck_assert_uint_eq(htab_hash(0x0123456789abcdefULL, 1, 2), 0x66d67193u);
	ck_assert_uint_eq(htab_hash(~0ULL, 0xdeadbeefULL << 32 | 0xc0ffee, 500),
			  0xb806f256u);
}
END_TEST

/* SipHash-1-3 of one word against Python 3.11's siphash13, which hashes
 * bytes with a zero key under PYTHONHASHSEED=0:
 *   PYTHONHASHSEED=0 python3 -c 'print(hex(hash(bytes.fromhex("0102030405060708")) % 2**64))'
 * and the seeded key differs from the zero key and with the salt. */
START_TEST(siphash13_word_known_answers)
{
	struct sipkey zero, a, b;

	sipkey_init(&zero, 0, 0);
	ck_assert_uint_eq(siphash13_word(&zero, 0x0807060504030201ULL),
			  0x884ccc87cb0e5fb0ULL);
	ck_assert_uint_eq(siphash13_word(&zero, 0), 0xbd60acb658c79e45ULL);
	ck_assert_uint_eq(siphash13_word(&zero, 0x0123456789abcdefULL),
			  0x8662046e52264db8ULL);
	sipkey_from_seed(&a, 42, 1);
	sipkey_from_seed(&b, 42, 2);
	ck_assert_uint_ne(siphash13_word(&a, 7), siphash13_word(&b, 7));
	ck_assert_uint_ne(siphash13_word(&a, 7), siphash13_word(&zero, 7));
}
END_TEST

/* Sequential SPIs of one remote spread over the buckets. */
START_TEST(siphash13_word_spreads_sequential_keys)
{
	enum { N = 65536 };
	static unsigned short load[N];
	unsigned longest = 0;
	struct sipkey k;

	sipkey_from_seed(&k, 0x5eed, 9);
	for (uint64_t i = 0; i < N; i++) {
		uint32_t h = (uint32_t)siphash13_word(&k, (uint64_t)0xcb007114 << 32 | i);

		if (++load[h & (N - 1)] > longest)
			longest = load[h & (N - 1)];
	}
	ck_assert_uint_lt(longest, 16);
}
END_TEST

START_TEST(pool_reuses_and_aligns)
{
	struct pool pool;
	void *objs[1000];
	size_t cap;

	pool_init(&pool, 40, 64);
	ck_assert_uint_eq(pool.capacity, 0);
	for (int i = 0; i < 1000; i++) {
		objs[i] = pool_get(&pool);
		ck_assert_ptr_nonnull(objs[i]);
		EXPECT((uintptr_t)objs[i] % alignof(max_align_t) == 0);
		for (int b = 0; b < 40; b++)
			EXPECT(((unsigned char *)objs[i])[b] == 0);
		memset(objs[i], 0xee, 40);
	}
	ck_assert_uint_eq(pool.in_use, 1000);
	cap = pool.capacity;
	ck_assert_uint_eq(cap, 1024);
	/* steady state: a constant population allocates nothing more */
	for (int round = 0; round < 100000; round++) {
		int i = (round * 31) % 1000;

		pool_put(&pool, objs[i]);
		objs[i] = pool_get(&pool);
		for (int b = 0; b < 40; b++)
			EXPECT(((unsigned char *)objs[i])[b] == 0);
		memset(objs[i], 0xee, 40);
	}
	ck_assert_uint_eq(pool.capacity, cap);
	ck_assert_uint_eq(pool.in_use, 1000);
	for (int i = 0; i < 1000; i++)
		pool_put(&pool, objs[i]);
	pool_put(&pool, NULL);
	ck_assert_uint_eq(pool.in_use, 0);
	ck_assert_uint_eq(pool.capacity, cap);
	pool_destroy(&pool);
	ck_assert_uint_eq(pool.capacity, 0);
}
END_TEST

/* Any object size, down to one byte and chunks of one object: distinct,
 * non-overlapping, max-aligned, zeroed objects. */
START_TEST(pool_any_size)
{
	static const size_t sizes[] = { 1, 7, 8, 15, 16, 17, 24, 100, 4096 };
	struct pool pool;
	unsigned char *objs[200];

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		pool_init(&pool, sizes[s], (size_t)_i);
		for (int i = 0; i < 200; i++) {
			objs[i] = pool_get(&pool);
			ck_assert_ptr_nonnull(objs[i]);
			EXPECT((uintptr_t)objs[i] % alignof(max_align_t) == 0);
			for (size_t b = 0; b < sizes[s]; b++)
				EXPECT(objs[i][b] == 0);
			memset(objs[i], i + 1, sizes[s]);
		}
		for (int i = 0; i < 200; i++)
			for (size_t b = 0; b < sizes[s]; b++)
				EXPECT(objs[i][b] == (unsigned char)(i + 1));
		ck_assert_uint_eq(pool.in_use, 200);
		ck_assert_uint_ge(pool.capacity, 200);
		/* destroy with objects still out: no leak (valgrind, ASan) */
		pool_destroy(&pool);
	}
}
END_TEST

/* Objects whose size is a multiple of a cache line start on one, so they
 * never straddle a line more than they must (ESP entries are 128 bytes). */
START_TEST(pool_line_sized_objects_are_line_aligned)
{
	struct pool pool;

	pool_init(&pool, 128, 256);
	for (int i = 0; i < 600; i++) {
		void *obj = pool_get(&pool);

		ck_assert_ptr_nonnull(obj);
		EXPECT((uintptr_t)obj % 64 == 0);
	}
	ck_assert_uint_ge(pool_bytes(&pool), pool.capacity * 128);
	ck_assert_uint_lt(pool_bytes(&pool), pool.capacity * 128 + 3 * 128);
	pool_destroy(&pool);
}
END_TEST

START_TEST(pool_reports_enomem)
{
	struct pool pool;

	pool_init(&pool, SIZE_MAX / 4, 8);
	errno = 0;
	ck_assert_ptr_null(pool_get(&pool));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(pool.in_use, 0);
	ck_assert_uint_eq(pool.capacity, 0);
	pool_destroy(&pool);
	pool_init(&pool, SIZE_MAX, 1);
	ck_assert_ptr_null(pool_get(&pool));
	ck_assert_int_eq(errno, ENOMEM);
	pool_destroy(&pool);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("htab");
	TCase *tc = tcase_create("htab");
	TCase *tp = tcase_create("pool");
	SRunner *runner;
	int failed;

	tcase_add_test(tc, bucket_counts_are_powers_of_two);
	tcase_add_test(tc, insert_lookup_remove_resize);
	tcase_add_test(tc, remove_anywhere_in_a_chain);
	tcase_add_test(tc, failed_resize_keeps_the_table);
	tcase_add_test(tc, shtab_insert_lookup_remove_resize);
	tcase_add_test(tc, shtab_remove_anywhere_in_a_chain);
	tcase_add_test(tc, keyed_hash_spreads_sequential_keys);
	tcase_add_test(tc, keyed_hash_avalanches);
	tcase_add_test(tc, keyed_hash_known_answers);
	tcase_add_test(tc, siphash13_word_known_answers);
	tcase_add_test(tc, siphash13_word_spreads_sequential_keys);
	suite_add_tcase(suite, tc);
	tcase_add_test(tp, pool_reuses_and_aligns);
	tcase_add_loop_test(tp, pool_any_size, 0, 3);
	tcase_add_test(tp, pool_reports_enomem);
	tcase_add_test(tp, pool_line_sized_objects_are_line_aligned);
	suite_add_tcase(suite, tp);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
