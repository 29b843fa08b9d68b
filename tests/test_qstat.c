/*
 * The kernel's nfnetlink_queue table parser (src/qstat.c): the fields the
 * daemon reports as kernel-side drops come from the right columns, other
 * queues and cut or garbled text are not mistaken for ours.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* mkstemp */
#endif
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "qstat.h"

/* Two queues as Linux 6.1 prints them (seq_show: "%5u %6u %5u %1u %5u %5u
 * %5u %8u %2d"). */
static const char two_queues[] =
	"    0 123456     7 2 65535    11    22     4242  1\n"
	"    3   9876     0 2 65535     0     5       17  1\n";

START_TEST(fields_of_our_queue)
{
	struct qstat q = { 0 };

	ck_assert_int_eq(qstat_parse(two_queues, 3, &q), 0);
	ck_assert_uint_eq(q.portid, 9876);
	ck_assert_uint_eq(q.waiting, 0);
	ck_assert_uint_eq(q.queue_full, 0);
	ck_assert_uint_eq(q.socket_full, 5);
	ck_assert_uint_eq(q.id_sequence, 17);
	ck_assert_int_eq(qstat_parse(two_queues, 0, &q), 0);
	ck_assert_uint_eq(q.portid, 123456);
	ck_assert_uint_eq(q.waiting, 7);
	ck_assert_uint_eq(q.queue_full, 11);
	ck_assert_uint_eq(q.socket_full, 22);
	ck_assert_uint_eq(q.id_sequence, 4242);
}
END_TEST

START_TEST(queue_not_listed)
{
	struct qstat q = { 0 };

	ck_assert_int_eq(qstat_parse(two_queues, 1, &q), -1);
	ck_assert_int_eq(qstat_parse("", 0, &q), -1);
}
END_TEST

START_TEST(cut_or_garbled_text_refused)
{
	struct qstat q = { 0 };

	/* the last line without its newline: a read cut short */
	ck_assert_int_eq(qstat_parse("    0 1 2 2 65535 3 4", 0, &q), -1);
	ck_assert_int_eq(qstat_parse("    0 1 2 2 65535 3\n", 0, &q), -1);
	ck_assert_int_eq(qstat_parse("queue portid\n", 0, &q), -1);
	ck_assert_int_eq(
		qstat_parse("0 1 2 2 65535 99999999999 4 5 1\n", 0, &q), -1);
}
END_TEST

START_TEST(read_from_file)
{
	char path[] = "/tmp/test_qstat.XXXXXX";
	struct qstat q = { 0 };
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, two_queues, sizeof(two_queues) - 1),
			 (int)sizeof(two_queues) - 1);
	close(fd);
	ck_assert_int_eq(qstat_read(path, 0, &q), 0);
	ck_assert_uint_eq(q.queue_full, 11);
	ck_assert_int_eq(qstat_read(path, 2, &q), -1);
	unlink(path);
	ck_assert_int_eq(qstat_read(path, 0, &q), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qstat");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, fields_of_our_queue);
	tcase_add_test(tc, queue_not_listed);
	tcase_add_test(tc, cut_or_garbled_text_refused);
	tcase_add_test(tc, read_from_file);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
