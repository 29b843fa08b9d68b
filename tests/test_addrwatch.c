/*
 * The external address from rtnetlink messages (src/addrwatch.c), fed
 * netlink messages built here, no socket. Issue 13: after an overrun the
 * daemon asked for a new dump while the old one still ran; the kernel's
 * EBUSY then read as "dump finished, no address" and address 0 was applied.
 * Here: an overrun never starts a second dump; a dump ended by an error
 * (EBUSY or other) or marked NLM_F_DUMP_INTR changes nothing and is asked
 * for again; a complete dump is applied, the loss of the address included.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include "addrwatch.h"

#define A1 0xc6336401u   /* 198.51.100.1 */
#define A2 0xc6336402u   /* 198.51.100.2 */
#define A9 0x0a000009u   /* 10.0.0.9 on another interface */

static struct addrwatch aw;
static uint32_t applied[16];
static unsigned n_applied;
static char buf[8192];
static size_t used;

static void on_apply(void *ctx, uint32_t addr)
{
	(void)ctx;
	ck_assert_uint_lt(n_applied, 16);
	applied[n_applied++] = addr;
}

static void setup(void)
{
	addrwatch_init(&aw, on_apply, NULL, 1000);
	n_applied = 0;
	used = 0;
}

/* Appends an address message (RTM_NEWADDR/RTM_DELADDR) to buf. */
static void put_addr(uint16_t type, uint32_t seq, uint16_t flags,
		     const char *label, uint32_t addr, bool secondary)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + used);
	struct ifaddrmsg *ifa;

	nlh->nlmsg_type = type;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_flags = flags;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = 24;
	ifa->ifa_flags = secondary ? IFA_F_SECONDARY : 0;
	ifa->ifa_index = 7;
	mnl_attr_put_u32(nlh, IFA_LOCAL, htonl(addr));
	mnl_attr_put_u32(nlh, IFA_ADDRESS, htonl(addr));
	mnl_attr_put_strz(nlh, IFA_LABEL, label);
	used += NLMSG_ALIGN(nlh->nlmsg_len);
}

/* Appends NLMSG_DONE or NLMSG_ERROR with error code err. */
static void put_end(uint16_t type, uint32_t seq, uint16_t flags, int err)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + used);

	nlh->nlmsg_type = type;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_flags = flags;
	if (type == NLMSG_ERROR) {
		struct nlmsgerr *e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));

		e->error = err;
		e->msg.nlmsg_seq = seq;
	} else {
		int *e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));

		*e = err;
	}
	used += NLMSG_ALIGN(nlh->nlmsg_len);
}

static void feed(void)
{
	addrwatch_feed(&aw, buf, used);
	used = 0;
}

/* Takes the request addrwatch wants now (fails the test if none). */
static uint32_t take(void)
{
	uint32_t seq = 0;

	ck_assert_msg(addrwatch_take_request(&aw, &seq), "no dump asked for");
	return seq;
}

/* A complete dump that lists addr (0: nothing) on wan0 and A9 on eth1. */
static void dump_complete(uint32_t addr)
{
	uint32_t seq = take();

	put_addr(RTM_NEWADDR, seq, NLM_F_MULTI, "eth1", A9, false);
	if (addr != 0)
		put_addr(RTM_NEWADDR, seq, NLM_F_MULTI, "wan0", addr, false);
	put_end(NLMSG_DONE, seq, NLM_F_MULTI, 0);
	feed();
}

/* wan0 watched, its address A1 known from a first dump. */
static void start_with_a1(void)
{
	addrwatch_set_interface(&aw, "wan0", 7);
	dump_complete(A1);
	ck_assert_uint_eq(aw.addr, A1);
	ck_assert_uint_eq(n_applied, 1);
	ck_assert_uint_eq(applied[0], A1);
}

START_TEST(first_dump_applies_the_primary_address)
{
	uint32_t seq;

	addrwatch_set_interface(&aw, "wan0", 7);
	seq = take();
	put_addr(RTM_NEWADDR, seq, NLM_F_MULTI, "wan0", A2, true);   /* secondary */
	put_addr(RTM_NEWADDR, seq, NLM_F_MULTI, "wan0:1", A1, false); /* alias */
	put_end(NLMSG_DONE, seq, NLM_F_MULTI, 0);
	feed();
	ck_assert_uint_eq(aw.addr, A1);
	ck_assert(!addrwatch_take_request(&aw, &seq));   /* nothing more */
}
END_TEST

/* The bug: an overrun while the dump runs. No second request may go out
 * while it runs; the running dump's end applies; one more dump follows. */
START_TEST(overrun_during_a_dump_waits_for_it)
{
	uint32_t seq, dummy;

	start_with_a1();
	addrwatch_want_dump(&aw);
	seq = take();
	addrwatch_overrun(&aw);
	ck_assert(!addrwatch_take_request(&aw, &dummy));   /* one at a time */
	put_addr(RTM_NEWADDR, seq, NLM_F_MULTI, "wan0", A1, false);
	put_end(NLMSG_DONE, seq, NLM_F_MULTI, 0);
	feed();
	ck_assert_uint_eq(aw.addr, A1);
	ck_assert_uint_eq(n_applied, 1);
	dump_complete(A1);   /* the one after the overrun */
	ck_assert_uint_eq(aw.addr, A1);
	ck_assert_uint_eq(n_applied, 1);
	ck_assert_uint_eq(aw.st.enobufs, 1);
}
END_TEST

/* The kernel says EBUSY to our request (a dump of the socket still runs):
 * the address stays; the request goes again once that dump has ended. */
START_TEST(ebusy_keeps_the_address_and_retries_after_the_other_dump)
{
	uint32_t seq, dummy;

	start_with_a1();
	addrwatch_overrun(&aw);
	seq = take();
	put_end(NLMSG_ERROR, seq, 0, -EBUSY);
	feed();
	ck_assert_uint_eq(aw.addr, A1);
	ck_assert_uint_eq(n_applied, 1);
	ck_assert(!addrwatch_take_request(&aw, &dummy));   /* still busy */
	/* the other dump's lines and its end (an older sequence number) */
	put_addr(RTM_NEWADDR, seq - 1, NLM_F_MULTI, "wan0", A2, false);
	put_end(NLMSG_DONE, seq - 1, NLM_F_MULTI, 0);
	feed();
	ck_assert_uint_eq(aw.addr, A1);   /* a stale dump's line is not news */
	dump_complete(A1);
	ck_assert_uint_eq(aw.addr, A1);
	ck_assert_uint_eq(n_applied, 1);
	ck_assert_uint_eq(aw.st.dumps_failed, 1);
}
END_TEST

/* Another error ends the dump: nothing applied, asked again at once. */
START_TEST(error_keeps_the_address_and_retries)
{
	uint32_t seq;

	start_with_a1();
	addrwatch_want_dump(&aw);
	seq = take();
	put_end(NLMSG_ERROR, seq, 0, -ENOMEM);
	feed();
	ck_assert_uint_eq(aw.addr, A1);
	dump_complete(A2);
	ck_assert_uint_eq(aw.addr, A2);
	ck_assert_uint_eq(n_applied, 2);
	ck_assert_uint_eq(applied[1], A2);
}
END_TEST

/* A dump that ends with an error in NLMSG_DONE is not applied either. */
START_TEST(done_with_error_keeps_the_address)
{
	uint32_t seq;

	start_with_a1();
	addrwatch_want_dump(&aw);
	seq = take();
	put_end(NLMSG_DONE, seq, NLM_F_MULTI, -EINTR);
	feed();
	ck_assert_uint_eq(aw.addr, A1);
	ck_assert_uint_eq(n_applied, 1);
	take();   /* asked again */
}
END_TEST

/* NLM_F_DUMP_INTR: the address list changed during the dump; what it
 * listed (here: nothing of ours) is not applied, and it is asked again. */
START_TEST(interrupted_dump_keeps_the_address)
{
	uint32_t seq;

	start_with_a1();
	addrwatch_want_dump(&aw);
	seq = take();
	put_addr(RTM_NEWADDR, seq, NLM_F_MULTI | NLM_F_DUMP_INTR, "eth1", A9, false);
	put_end(NLMSG_DONE, seq, NLM_F_MULTI | NLM_F_DUMP_INTR, 0);
	feed();
	ck_assert_uint_eq(aw.addr, A1);
	ck_assert_uint_eq(n_applied, 1);
	dump_complete(A2);
	ck_assert_uint_eq(aw.addr, A2);
}
END_TEST

/* A complete dump without our address: the loss is real and applied. */
START_TEST(complete_dump_without_the_address_applies_none)
{
	start_with_a1();
	addrwatch_want_dump(&aw);
	dump_complete(0);
	ck_assert_uint_eq(aw.addr, 0);
	ck_assert_uint_eq(n_applied, 2);
	ck_assert_uint_eq(applied[1], 0);
}
END_TEST

/* Notifications: a new address when none is known, a deleted one (then a
 * dump: another may be left). */
START_TEST(notifications)
{
	uint32_t dummy;

	addrwatch_set_interface(&aw, "wan0", 7);
	dump_complete(0);
	ck_assert_uint_eq(aw.addr, 0);
	put_addr(RTM_NEWADDR, 0, 0, "wan0", A2, false);
	feed();
	ck_assert_uint_eq(aw.addr, A2);
	put_addr(RTM_DELADDR, 0, 0, "eth1", A9, false);
	feed();
	ck_assert_uint_eq(aw.addr, A2);
	ck_assert(!addrwatch_take_request(&aw, &dummy));
	put_addr(RTM_DELADDR, 0, 0, "wan0", A2, false);
	feed();
	ck_assert_uint_eq(aw.addr, 0);
	dump_complete(A1);
	ck_assert_uint_eq(aw.addr, A1);
}
END_TEST

/* Failures in a row stop retrying at ADDRWATCH_RETRIES (no busy loop on a
 * socket that always fails); the next address message tries again. */
START_TEST(retries_are_bounded)
{
	uint32_t seq, dummy;

	start_with_a1();
	addrwatch_want_dump(&aw);
	for (int i = 0; i < ADDRWATCH_RETRIES; i++) {
		seq = take();
		put_end(NLMSG_ERROR, seq, 0, -ENOMEM);
		feed();
	}
	ck_assert(!addrwatch_take_request(&aw, &dummy));
	ck_assert_uint_eq(aw.addr, A1);
	put_addr(RTM_NEWADDR, 0, 0, "eth1", A9, false);
	feed();
	dump_complete(A1);
	ck_assert_uint_eq(aw.addr, A1);
	ck_assert_uint_eq(n_applied, 1);
}
END_TEST

static Suite *addrwatch_suite(void)
{
	Suite *s = suite_create("addrwatch");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, first_dump_applies_the_primary_address);
	tcase_add_test(tc, overrun_during_a_dump_waits_for_it);
	tcase_add_test(tc, ebusy_keeps_the_address_and_retries_after_the_other_dump);
	tcase_add_test(tc, error_keeps_the_address_and_retries);
	tcase_add_test(tc, done_with_error_keeps_the_address);
	tcase_add_test(tc, interrupted_dump_keeps_the_address);
	tcase_add_test(tc, complete_dump_without_the_address_applies_none);
	tcase_add_test(tc, notifications);
	tcase_add_test(tc, retries_are_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(addrwatch_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
