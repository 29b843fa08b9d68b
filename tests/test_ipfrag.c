/*
 * IPv4 fragmentation of the guessed copies (src/ipfrag.c, issue 13): the
 * raw socket's IP_HDRINCL send of a copy larger than the route's MTU fails
 * with EMSGSIZE, so rawsock.c fragments it. Here: a 60 KB ESP datagram and
 * a 1.5 KB UDP one at several MTUs; every fragment fits the MTU, has a valid
 * header checksum, carries 8-byte-aligned offsets and MF on all but the
 * last; put back together they are the original payload. DF, IP options
 * and absurd MTUs are refused (0 fragments), a packet that fits is 1.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ipfrag.h"
#include "pktbuild.h"

static uint8_t pkt[65535], frag[9216], back[65535];

/* Fragments pkt[0..len) at mtu and puts the pieces back together; checks
 * every fragment. Returns the number of fragments. */
static size_t split_and_join(size_t len, size_t mtu)
{
	size_t n = ipfrag_count(pkt, len, mtu), got = 0;
	uint8_t seen[65535 / 8 + 1] = { 0 };

	ck_assert_uint_ge(n, 2);
	for (size_t i = 0; i < n; i++) {
		size_t flen = ipfrag_build(pkt, len, mtu, i, frag);
		uint16_t fo = pb_get16(frag + 6), off = (fo & 0x1fff) * 8;
		size_t data = flen - 20;

		ck_assert_uint_le(flen, mtu);
		ck_assert_uint_eq(pb_get16(frag + 2), flen);
		ck_assert_uint_eq(pb_ip_csum(frag), pb_get16(frag + 10));
		ck_assert_uint_eq(frag[9], pkt[9]);                  /* protocol */
		ck_assert(memcmp(frag + 12, pkt + 12, 8) == 0);      /* addrs */
		ck_assert_uint_eq(pb_get16(frag + 4), pb_get16(pkt + 4)); /* id */
		ck_assert_uint_eq((fo & 0x2000) != 0, i + 1 < n);    /* MF */
		if (i + 1 < n)
			ck_assert_uint_eq(data % 8, 0);
		ck_assert_uint_eq(seen[off / 8], 0);   /* no overlap */
		seen[off / 8] = 1;
		memcpy(back + off, frag + 20, data);
		got += data;
	}
	ck_assert_uint_eq(got, len - 20);
	ck_assert(memcmp(back, pkt + 20, len - 20) == 0);
	return n;
}

START_TEST(esp_60k_at_common_mtus)
{
	size_t len = pb_esp(pkt, sizeof(pkt), pb_addr("198.51.100.20"),
			    pb_addr("192.168.1.12"), 0x4c000011, 7, 60000);

	ck_assert_uint_gt(len, 60000);
	ck_assert_uint_eq(split_and_join(len, 1500), (len - 20 + 1479) / 1480);
	split_and_join(len, 1492);   /* PPPoE */
	split_and_join(len, 1280);
	split_and_join(len, 576);
	split_and_join(len, 28);     /* 8 bytes a fragment */
	split_and_join(len, 9000);
}
END_TEST

START_TEST(udp_just_over_the_mtu)
{
	size_t len = pb_udp(pkt, sizeof(pkt), pb_addr("198.51.100.20"),
			    pb_addr("192.168.1.12"), 500, 500, 1480, 0);

	ck_assert_uint_eq(len, 1508);
	ck_assert_uint_eq(split_and_join(len, 1500), 2);
}
END_TEST

START_TEST(refusals)
{
	size_t len = pb_esp(pkt, sizeof(pkt), pb_addr("198.51.100.20"),
			    pb_addr("192.168.1.12"), 0x4c000011, 7, 3000);

	ck_assert_uint_eq(ipfrag_count(pkt, len, 65535), 1);   /* fits */
	ck_assert_uint_eq(ipfrag_count(pkt, len, len), 1);
	ck_assert_uint_eq(ipfrag_count(pkt, len, 27), 0);      /* < 8 bytes */
	ck_assert_uint_eq(ipfrag_count(pkt, len - 1, 1500), 0); /* length */
	pkt[6] |= 0x40;                                         /* DF */
	pb_fix_checksums(pkt, len);
	ck_assert_uint_eq(ipfrag_count(pkt, len, 1500), 0);
	ck_assert_uint_eq(ipfrag_count(pkt, len, 65535), 1);
	pkt[6] &= (uint8_t)~0x40;
	pkt[0] = 0x46;                                          /* options */
	ck_assert_uint_eq(ipfrag_count(pkt, len, 1500), 0);
}
END_TEST

static Suite *ipfrag_suite(void)
{
	Suite *s = suite_create("ipfrag");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, esp_60k_at_common_mtus);
	tcase_add_test(tc, udp_just_over_the_mtu);
	tcase_add_test(tc, refusals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ipfrag_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
