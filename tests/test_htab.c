/*
 * The intrusive hash table, its keyed hash, and the object pool.
 */
#include <check.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#include "htab.h"
#include "pool.h"

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

START_TEST(insert_lookup_remove_resize)
{
	enum { N = 20000 };
	struct item *items = calloc(N, sizeof(*items));
	struct htab tab;

	ck_assert_int_eq(htab_init(&tab, 1000), 0);
	ck_assert_uint_eq(tab.mask + 1, 1024);
	for (uint64_t i = 0; i < N; i++) {
		items[i].key = i * 7919;
		htab_insert(&tab, &items[i].node, htab_hash(1, items[i].key, 0));
	}
	ck_assert_uint_eq(tab.count, N);
	for (uint64_t i = 0; i < N; i += 2)
		htab_remove(&tab, &items[i].node);
	ck_assert_uint_eq(tab.count, N / 2);
	ck_assert_int_eq(htab_resize(&tab, 40000), 0);
	ck_assert_uint_eq(tab.mask + 1, 65536);
	for (uint64_t i = 0; i < N; i++) {
		struct item *found = lookup(&tab, 1, i * 7919);

		if (i % 2)
			ck_assert_ptr_eq(found, &items[i]);
		else
			ck_assert_ptr_null(found);
	}
	ck_assert_ptr_null(lookup(&tab, 1, 3));
	htab_destroy(&tab);
	free(items);
}
END_TEST

/* Sequential keys (SPIs often are) spread evenly; another seed gives
 * another layout. */
START_TEST(keyed_hash_spreads_sequential_keys)
{
	enum { N = 65536 };
	static unsigned short load[N];
	unsigned longest = 0, same = 0;

	for (uint64_t k = 0; k < N; k++) {
		uint32_t h = htab_hash(42, (uint64_t)0xcb007114 << 32 | k, 1);

		if (++load[h & (N - 1)] > longest)
			longest = load[h & (N - 1)];
		same += (h & (N - 1)) ==
			(htab_hash(43, (uint64_t)0xcb007114 << 32 | k, 1) & (N - 1));
	}
	ck_assert_uint_lt(longest, 16);
	ck_assert_uint_lt(same, 64);    /* about 1 expected by chance */
	ck_assert_uint_ne(htab_hash(1, 2, 3), htab_hash(1, 3, 2));
}
END_TEST

START_TEST(pool_reuses_and_aligns)
{
	struct pool pool;
	void *objs[1000];
	size_t cap;

	pool_init(&pool, 40, 64);
	for (int i = 0; i < 1000; i++) {
		objs[i] = pool_get(&pool);
		ck_assert_ptr_nonnull(objs[i]);
		ck_assert_uint_eq((uintptr_t)objs[i] % alignof(max_align_t), 0);
		for (int b = 0; b < 40; b++)
			ck_assert_uint_eq(((unsigned char *)objs[i])[b], 0);
		((unsigned char *)objs[i])[39] = 0xee;
	}
	ck_assert_uint_eq(pool.in_use, 1000);
	cap = pool.capacity;
	ck_assert_uint_ge(cap, 1000);
	/* steady state: a constant population allocates nothing more */
	for (int round = 0; round < 100000; round++) {
		int i = (round * 31) % 1000;

		pool_put(&pool, objs[i]);
		objs[i] = pool_get(&pool);
		ck_assert_uint_eq(((unsigned char *)objs[i])[39], 0);
	}
	ck_assert_uint_eq(pool.capacity, cap);
	for (int i = 0; i < 1000; i++)
		pool_put(&pool, objs[i]);
	ck_assert_uint_eq(pool.in_use, 0);
	pool_destroy(&pool);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("htab");
	TCase *tc = tcase_create("htab");
	SRunner *runner;
	int failed;

	tcase_add_test(tc, insert_lookup_remove_resize);
	tcase_add_test(tc, keyed_hash_spreads_sequential_keys);
	tcase_add_test(tc, pool_reuses_and_aligns);
	suite_add_tcase(suite, tc);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
