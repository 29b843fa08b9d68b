/*
 * The parser of the kernel's answer to "get counter object" (src/fwcount.c):
 * the guard's packets and bytes come from the right attributes, the
 * kernel's errors come through as errno, and cut, garbled or foreign
 * answers are refused without a crash.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* htobe64, rand_r */
#endif
#include <check.h>
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

#include "fwcount.h"

#define SEQ 4242u

static char buf[4096];

/* A NEWOBJ answer as the kernel builds it (nf_tables_fill_obj_info):
 * table, name, type, data{bytes, packets}, use, handle. */
static size_t newobj(uint32_t type, uint64_t packets, uint64_t bytes,
		     int with_bytes)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;
	struct nlattr *nest;

	nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWOBJ;
	nlh->nlmsg_seq = SEQ;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = NFPROTO_INET;
	mnl_attr_put_strz(nlh, NFTA_OBJ_TABLE, "ipsec_masqd");
	mnl_attr_put_strz(nlh, NFTA_OBJ_NAME, "guard");
	mnl_attr_put_u32(nlh, NFTA_OBJ_TYPE, htonl(type));
	nest = mnl_attr_nest_start(nlh, NFTA_OBJ_DATA);
	if (with_bytes)
		mnl_attr_put_u64(nlh, NFTA_COUNTER_BYTES, htobe64(bytes));
	mnl_attr_put_u64(nlh, NFTA_COUNTER_PACKETS, htobe64(packets));
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_put_u32(nlh, NFTA_OBJ_USE, htonl(1));
	mnl_attr_put_u64(nlh, NFTA_OBJ_HANDLE, htobe64(7));
	return nlh->nlmsg_len;
}

static size_t error_msg(int err)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlmsgerr *e;

	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = SEQ;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = -err;
	return nlh->nlmsg_len;
}

START_TEST(counter_values)
{
	struct fwcount c = { 0, 0 };
	size_t n = newobj(NFT_OBJECT_COUNTER, 172, 0x123456789aULL, 1);

	ck_assert_int_eq(fwcount_parse(buf, n, SEQ, &c), 0);
	ck_assert_uint_eq(c.packets, 172);
	ck_assert_uint_eq(c.bytes, 0x123456789aULL);
}
END_TEST

START_TEST(kernel_errors_come_through)
{
	struct fwcount c = { 1, 1 };
	size_t n = error_msg(ENOENT);

	ck_assert_int_eq(fwcount_parse(buf, n, SEQ, &c), -1);
	ck_assert_int_eq(errno, ENOENT);
	n = error_msg(EPERM);
	ck_assert_int_eq(fwcount_parse(buf, n, SEQ, &c), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_uint_eq(c.packets, 1);   /* untouched on failure */
}
END_TEST

START_TEST(foreign_or_incomplete_answers_refused)
{
	struct fwcount c = { 0, 0 };
	size_t n;

	n = newobj(NFT_OBJECT_QUOTA, 1, 2, 1);          /* not a counter */
	ck_assert_int_eq(fwcount_parse(buf, n, SEQ, &c), -1);
	ck_assert_int_eq(errno, EBADMSG);
	n = newobj(NFT_OBJECT_COUNTER, 1, 2, 0);        /* no bytes */
	ck_assert_int_eq(fwcount_parse(buf, n, SEQ, &c), -1);
	ck_assert_int_eq(errno, EBADMSG);
	n = newobj(NFT_OBJECT_COUNTER, 1, 2, 1);        /* another request's */
	ck_assert_int_eq(fwcount_parse(buf, n, SEQ + 1, &c), -1);
	((struct nlmsghdr *)buf)->nlmsg_type =
		(NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE;
	ck_assert_int_eq(fwcount_parse(buf, n, SEQ, &c), -1);
	ck_assert_int_eq(errno, EBADMSG);
}
END_TEST

/* Every truncation and random bytes in place of attributes: refused or
 * parsed, never read past the buffer (ASan/valgrind in CI). */
START_TEST(cut_and_garbled_answers_do_not_crash)
{
	struct fwcount c;
	size_t n = newobj(NFT_OBJECT_COUNTER, 5, 6, 1), hdr;
	char copy[4096];
	unsigned seed = 1;

	for (size_t len = 0; len < n; len++) {
		char *cut = malloc(len ? len : 1);

		memcpy(cut, buf, len);
		ck_assert_int_eq(fwcount_parse(cut, len, SEQ, &c), -1);
		free(cut);
	}
	hdr = sizeof(struct nlmsghdr) + sizeof(struct nfgenmsg);
	memcpy(copy, buf, n);
	for (int round = 0; round < 20000; round++) {
		memcpy(buf, copy, n);
		for (int k = 0; k < 4; k++)
			buf[hdr + (size_t)rand_r(&seed) % (n - hdr)] =
				(char)rand_r(&seed);
		(void)fwcount_parse(buf, n, SEQ, &c);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fwcount");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, counter_values);
	tcase_add_test(tc, kernel_errors_come_through);
	tcase_add_test(tc, foreign_or_incomplete_answers_refused);
	tcase_add_test(tc, cut_and_garbled_answers_do_not_crash);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
