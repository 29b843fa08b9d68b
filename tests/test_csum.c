/*
 * Checksum arithmetic against known answers (RFC 1071, RFC 1624, a textbook
 * IPv4 header) and against a naive 16-bit reference written here, on random
 * data of every alignment and odd length. Fixed-seed PRNG; the seed is
 * printed and can be overridden with TEST_SEED.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "pktbuild.h"

/* Check's ck_assert_* records a checkpoint on every success (I/O to the
 * parent process); hot loops use this, which costs only on failure. */
#define REQUIRE(cond, ...) do {				\
		if (!(cond))					\
			ck_abort_msg(__VA_ARGS__);		\
	} while (0)

static uint64_t rng_seed, rng_state;

/* Each test starts from the printed seed, forked or not (CK_FORK=no). */
static void rng_reset(void)
{
	rng_state = rng_seed;
}

/* splitmix64: small, good enough, and independent of libc's rand(). */
static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rng();
}

/* Naive reference: 16-bit words, odd byte padded, fold by loop. */
static uint16_t ref_csum(const uint8_t *p, size_t len)
{
	uint64_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0x2ddf0,
 * folds to 0xddf2, checksum 0x220d. */
START_TEST(rfc1071_example)
{
	static const uint8_t d[8] = { 0x00, 0x01, 0xf2, 0x03,
				      0xf4, 0xf5, 0xf6, 0xf7 };

	ck_assert_uint_eq(csum_fold(0x2ddf0), 0x220d);
	ck_assert_uint_eq(csum_fold(csum_partial(d, 8, 0)), 0x220d);
	ck_assert_uint_eq(ref_csum(d, 8), 0x220d);
	/* byte-swapped input gives the byte-swapped sum (RFC 1071 2.(B)) */
	{
		uint8_t s[8];

		for (int i = 0; i < 8; i += 2) {
			s[i] = d[i + 1];
			s[i + 1] = d[i];
		}
		ck_assert_uint_eq(csum_fold(csum_partial(s, 8, 0)), 0x0d22);
	}
	/* chained in two even halves, and with an initial sum */
	ck_assert_uint_eq(csum_fold(csum_partial(d + 4, 4,
						 csum_partial(d, 4, 0))),
			  0x220d);
	ck_assert_uint_eq(csum_fold(csum_partial(d + 2, 6, 0x0001)),
			  0x220d);
}
END_TEST

/* The textbook header 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7:
 * checksum 0xb861, and the whole header sums to -0. */
START_TEST(ipv4_header_known_answer)
{
	static const uint8_t h[20] = {
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	};
	uint8_t z[20];

	ck_assert_uint_eq(csum_fold(csum_partial(h, 20, 0)), 0);
	memcpy(z, h, 20);
	z[10] = z[11] = 0;
	ck_assert_uint_eq(csum_fold(csum_partial(z, 20, 0)), 0xb861);
	ck_assert_uint_eq(pb_ip_csum(h), 0xb861);
}
END_TEST

/* Edge values of csum_fold: zero, -0, carries out of both folds. */
START_TEST(fold_edges)
{
	ck_assert_uint_eq(csum_fold(0), 0xffff);
	ck_assert_uint_eq(csum_fold(0xffff), 0);
	ck_assert_uint_eq(csum_fold(0x10000), 0xfffe);
	ck_assert_uint_eq(csum_fold(0xffffffffu), 0);      /* 0xffff+0xffff */
	ck_assert_uint_eq(csum_fold(0x0001fffeu), 0);      /* -> 0xffff */
	ck_assert_uint_eq(csum_fold(0x12345678u), (uint16_t)~0x68ac);
	ck_assert_uint_eq(csum_fold(csum_partial(NULL, 0, 0)), 0xffff);
	/* odd length: trailing byte is the high byte of a padded word */
	{
		static const uint8_t one[1] = { 0xab };
		static const uint8_t three[3] = { 0x12, 0x34, 0xab };

		ck_assert_uint_eq(csum_fold(csum_partial(one, 1, 0)),
				  (uint16_t)~0xab00);
		ck_assert_uint_eq(csum_fold(csum_partial(three, 3, 0)),
				  (uint16_t)~(0x1234 + 0xab00));
	}
	/* a huge initial sum does not overflow */
	{
		static const uint8_t ff[8] = { 0xff, 0xff, 0xff, 0xff,
					       0xff, 0xff, 0xff, 0xff };

		ck_assert_uint_eq(csum_fold(csum_partial(ff, 8, 0xffffffffu)),
				  0);
	}
}
END_TEST

/* Every length 0..300 at every alignment 0..7, random data, against the
 * naive reference; and chaining at every even split point. */
START_TEST(partial_matches_reference)
{
	static uint8_t buf[320];

	for (int round = 0; round < 20; round++) {
		fill_random(buf, sizeof(buf));
		for (size_t off = 0; off < 8; off++) {
			for (size_t len = 0; len <= 300; len++) {
				uint16_t want = ref_csum(buf + off, len);
				uint16_t got = csum_fold(
					csum_partial(buf + off, len, 0));

				REQUIRE(got == want,
					      "off %zu len %zu: %04x != %04x",
					      off, len, got, want);
			}
		}
		for (size_t split = 0; split <= 300; split += 2) {
			uint32_t s = csum_partial(buf + 1, split, 0);

			s = csum_partial(buf + 1 + split, 301 - split, s);
			REQUIRE(csum_fold(s) == ref_csum(buf + 1, 301),
				"split %zu", split);
		}
	}
}
END_TEST

/* The 20-byte check agrees with folding csum_partial(): random bytes
 * (almost never -0), random headers given their right checksum, at every
 * alignment, one bit off, all ones (sums to -0), all zeros (+0: no). */
START_TEST(zero20_matches_partial)
{
	static uint8_t buf[32];
	unsigned valid = 0;

	for (int round = 0; round < 20000; round++) {
		uint8_t *h = buf + (size_t)round % 8;
		uint16_t c;

		fill_random(buf, sizeof(buf));
		if (round % 2) {
			h[10] = h[11] = 0;
			c = csum_fold(csum_partial(h, 20, 0));
			h[10] = (uint8_t)(c >> 8);
			h[11] = (uint8_t)c;
		}
		REQUIRE(csum_zero20(h) ==
				(csum_fold(csum_partial(h, 20, 0)) == 0),
			"round %d", round);
		valid += (unsigned)csum_zero20(h);
		h[round % 20] ^= (uint8_t)(1u << (round % 8));
		REQUIRE(csum_zero20(h) ==
				(csum_fold(csum_partial(h, 20, 0)) == 0),
			"round %d, one bit off", round);
	}
	ck_assert_uint_ge(valid, 10000);
	memset(buf, 0xff, sizeof(buf));
	ck_assert(csum_zero20(buf));
	ck_assert_uint_eq(csum_fold(csum_partial(buf, 20, 0)), 0);
	memset(buf, 0, sizeof(buf));
	ck_assert(!csum_zero20(buf));
	ck_assert_uint_eq(csum_fold(csum_partial(buf, 20, 0)), 0xffff);
}
END_TEST

/* All 0xff bytes, 64 KiB: the largest IPv4 datagram, worst-case carries. */
START_TEST(partial_large_all_ones)
{
	static uint8_t buf[65536];

	memset(buf, 0xff, sizeof(buf));
	ck_assert_uint_eq(csum_fold(csum_partial(buf, sizeof(buf), 0)),
			  ref_csum(buf, sizeof(buf)));
	{
		/* 0xfffffff0 == 0xffff + 0xfff0 (mod 0xffff) */
		uint32_t want = 0xffffu + 0xfff0u +
				(uint16_t)~ref_csum(buf, 65535);

		ck_assert_uint_eq(csum_fold(csum_partial(buf, 65535,
							 0xfffffff0u)),
				  csum_fold(want));
	}
	/* the partial sum comes back folded to 16 bits, so a caller may
	 * add small terms (pseudo-header fields) without overflow */
	ck_assert_uint_le(csum_partial(buf, sizeof(buf), 0xffffffffu), 0xffff);
	ck_assert_uint_eq(csum_fold(csum_partial(buf, sizeof(buf),
						 0xffffffffu) + 17 + 0xffff),
			  csum_fold(0xffff + 17));
	fill_random(buf, sizeof(buf));
	ck_assert_uint_eq(csum_fold(csum_partial(buf, 65535, 0)),
			  ref_csum(buf, 65535));
}
END_TEST

/* RFC 1624 section 4 example: HC 0xdd2f, m 0x5555 -> m' 0x3285; eqn. 3
 * gives 0x0000 (eqn. 2 would give the wrong 0xffff). */
START_TEST(rfc1624_example)
{
	ck_assert_uint_eq(csum_replace32(0xdd2f, 0x5555, 0x3285), 0x0000);
	ck_assert_uint_eq(csum_replace32(0xdd2f, 0x55550000u, 0x32850000u),
			  0x0000);
	/* no change, no change */
	ck_assert_uint_eq(csum_replace32(0x1234, 0xc0a80001u, 0xc0a80001u),
			  0x1234);
	ck_assert_uint_eq(csum_replace32(0x0000, 0x01020304u, 0x01020304u),
			  0x0000);
	/* the textbook header, source 192.168.0.1 -> 10.0.0.1 */
	{
		uint8_t h[20] = {
			0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00,
			0x40, 0x11, 0xb8, 0x61, 0x0a, 0x00, 0x00, 0x01,
			0xc0, 0xa8, 0x00, 0xc7,
		};

		ck_assert_uint_eq(csum_replace32(0xb861, 0xc0a80001u,
						 0x0a000001u),
				  pb_ip_csum(h));
	}
}
END_TEST

/*
 * Random buffers (even lengths 12..1500) with a correct checksum at a random
 * even offset; a random even-aligned 32-bit word not overlapping it is
 * replaced; the incremental result must equal the full recomputation.
 * Words are biased towards 0 and 0xffffffff to reach the -0 corner.
 */
static uint32_t biased_word(void)
{
	switch (rng() & 7) {
	case 0:
		return 0;
	case 1:
		return 0xffffffffu;
	case 2:
		return (uint32_t)rng() & 0xffff;
	case 3:
		return (uint32_t)rng() | 0xffff0000u;
	default:
		return (uint32_t)rng();
	}
}

/* True when buf[0..len) is zero apart from the 2 bytes at coff. */
static int all_zero_but(const uint8_t *buf, size_t len, size_t coff)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] && (i < coff || i >= coff + 2))
			return 0;
	return 1;
}

START_TEST(replace32_matches_full)
{
	static uint8_t buf[1500];
	unsigned zero_results = 0, all_zero = 0;

	for (int it = 0; it < 100000; it++) {
		size_t len = 12 + 2 * (size_t)(rng() % 745);
		size_t coff, woff;
		uint32_t oldw, neww;
		uint16_t inc, full;

		if (it % 4 == 0)
			memset(buf, 0, len);   /* sparse: sums near zero */
		else
			fill_random(buf, len);
		coff = 2 * (size_t)(rng() % (len / 2));
		do
			woff = 2 * (size_t)(rng() % ((len - 4) / 2 + 1));
		while (woff + 4 > coff && woff < coff + 2);
		oldw = biased_word();
		pb_put32(buf + woff, oldw);
		pb_put16(buf + coff, 0);
		pb_put16(buf + coff, ref_csum(buf, len));
		neww = biased_word();
		inc = csum_replace32(pb_get16(buf + coff), oldw, neww);
		pb_put32(buf + woff, neww);
		pb_put16(buf + coff, 0);
		full = ref_csum(buf, len);
		/* -0 vs +0: when all covered data is zero the full sum is
		 * +0 and its checksum 0xffff, but eqn. 3 cannot tell that
		 * from a sum of 0xffff and gives 0x0000, the same value in
		 * one's complement. Never happens in IPv4 or UDP: the
		 * version byte and the protocol 17 are never zero. */
		if (all_zero_but(buf, len, coff)) {
			REQUIRE(full == 0xffff && inc == 0x0000,
				"it %d: all-zero data: inc %04x full %04x", it,
				inc, full);
			all_zero++;
			continue;
		}
		REQUIRE(inc == full,
			      "it %d len %zu coff %zu woff %zu %08x->%08x: "
			      "inc %04x full %04x", it, len, coff, woff, oldw,
			      neww, inc, full);
		zero_results += full == 0;
	}
	fprintf(stderr, "replace32: %u results 0x0000, %u all-zero data\n",
		zero_results, all_zero);
	ck_assert_uint_gt(all_zero, 0);
	ck_assert_uint_gt(zero_results, 0);
}
END_TEST

static Suite *csum_suite(void)
{
	Suite *s = suite_create("csum");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, rng_reset, NULL);
	tcase_add_test(tc, rfc1071_example);
	tcase_add_test(tc, ipv4_header_known_answer);
	tcase_add_test(tc, fold_edges);
	tcase_add_test(tc, partial_matches_reference);
	tcase_add_test(tc, zero20_matches_partial);
	tcase_add_test(tc, partial_large_all_ones);
	tcase_add_test(tc, rfc1624_example);
	tcase_add_test(tc, replace32_matches_full);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *env = getenv("TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x1624c0ffeeull;
	SRunner *sr;
	int failed;

	rng_seed = seed;
	printf("test_csum: seed 0x%" PRIx64 " (set TEST_SEED to change)\n",
	       seed);
	fflush(stdout);
	sr = srunner_create(csum_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
