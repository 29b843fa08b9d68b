/*
 * src/privilege.c: the plan (what is dropped, and that nothing is done
 * when the process already has no more than CAP_NET_ADMIN and CAP_NET_RAW,
 * as under the unit), the names for the log, reading our own sets, and, as
 * root, the drop itself in a child process: the sets afterwards, and the
 * file checks with the reduced privileges. The logger is stubbed.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "log.h"
#include "privilege.h"

#define ALL_CAPS ((UINT64_C(1) << 41) - 1)   /* 0..40: Linux 5.9 and on */

static char last_log[512];

static void keep_log(const char *fmt, va_list ap)
	__attribute__((format(printf, 1, 0)));

static void keep_log(const char *fmt, va_list ap)
{
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	(void)prio;
	va_start(ap, fmt);
	keep_log(fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	keep_log(fmt, ap);
	va_end(ap);
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	keep_log(fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	keep_log(fmt, ap);
	va_end(ap);
}

START_TEST(plan_root_drops_everything_else)
{
	struct priv_caps c = { .eff = ALL_CAPS, .prm = ALL_CAPS,
			       .bnd = ALL_CAPS, .last_cap = 40 };
	struct priv_plan p;

	privilege_plan(&c, PRIV_KEEP, &p);
	ck_assert(p.act);
	ck_assert(!p.clear_amb);
	ck_assert_uint_eq(p.bnd_drop, ALL_CAPS & ~UINT64_C(0x3000));
	ck_assert_uint_eq(p.eff, 0x3000);
	ck_assert_uint_eq(p.prm, 0x3000);
	ck_assert_uint_eq(p.inh, 0);
}
END_TEST

START_TEST(plan_root_with_ambient_and_inheritable)
{
	struct priv_caps c = { .eff = ALL_CAPS, .prm = ALL_CAPS,
			       .inh = PRIV_BIT(CAP_CHOWN) | 0x3000,
			       .amb = PRIV_BIT(CAP_CHOWN),
			       .bnd = ALL_CAPS, .last_cap = 40 };
	struct priv_plan p;

	privilege_plan(&c, PRIV_KEEP, &p);
	ck_assert(p.act);
	ck_assert(p.clear_amb);
	ck_assert_uint_eq(p.inh, 0);
	ck_assert_uint_eq(p.prm, 0x3000);
}
END_TEST

/* The unit: User= with AmbientCapabilities= and CapabilityBoundingSet=.
 * capset is refused by the filter there: the plan must not call it. */
START_TEST(plan_unit_changes_nothing)
{
	struct priv_caps c = { .eff = 0x3000, .prm = 0x3000, .inh = 0x3000,
			       .amb = 0x3000, .bnd = 0x3000, .last_cap = 40 };
	struct priv_plan p;

	privilege_plan(&c, PRIV_KEEP, &p);
	ck_assert(!p.act);
	ck_assert_uint_eq(p.bnd_drop, 0);
	ck_assert(p.clear_amb);   /* unprivileged, allowed by the filter */
}
END_TEST

/* A file-capability binary started by a user: permitted is already the
 * pair, the bounding set full, no CAP_SETPCAP to drop from it. */
START_TEST(plan_file_caps_leave_bounding)
{
	struct priv_caps c = { .eff = 0x3000, .prm = 0x3000,
			       .bnd = ALL_CAPS, .last_cap = 40 };
	struct priv_plan p;

	privilege_plan(&c, PRIV_KEEP, &p);
	ck_assert(!p.act);
	ck_assert_uint_eq(p.bnd_drop, 0);
	ck_assert(!p.clear_amb);
}
END_TEST

START_TEST(plan_unprivileged_and_partial)
{
	struct priv_caps none = { .bnd = ALL_CAPS, .last_cap = 40 };
	struct priv_caps part = { .eff = PRIV_BIT(CAP_NET_ADMIN),
				  .prm = PRIV_BIT(CAP_NET_ADMIN) |
					 PRIV_BIT(CAP_CHOWN),
				  .bnd = 0x3000 | PRIV_BIT(CAP_CHOWN),
				  .last_cap = 40 };
	struct priv_plan p;

	privilege_plan(&none, PRIV_KEEP, &p);
	ck_assert(!p.act);
	/* capset can only lower: NET_RAW is not raised from nowhere, and
	 * NET_ADMIN is made effective. */
	privilege_plan(&part, PRIV_KEEP, &p);
	ck_assert(p.act);
	ck_assert_uint_eq(p.prm, PRIV_BIT(CAP_NET_ADMIN));
	ck_assert_uint_eq(p.eff, PRIV_BIT(CAP_NET_ADMIN));
	ck_assert_uint_eq(p.bnd_drop, PRIV_BIT(CAP_CHOWN));
}
END_TEST

START_TEST(format_names)
{
	char buf[64], tiny[8];

	ck_assert_int_eq(privilege_format(PRIV_KEEP, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "cap_net_admin,cap_net_raw");
	ck_assert_int_eq(privilege_format(0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "none");
	ck_assert_int_eq(privilege_format(PRIV_BIT(CAP_CHOWN) |
					  PRIV_BIT(40) | PRIV_BIT(63),
					  buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "cap_chown,cap_checkpoint_restore,cap_63");
	errno = 0;
	ck_assert_int_eq(privilege_format(PRIV_KEEP, tiny, sizeof(tiny)), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(privilege_format(0, tiny, 0), -1);
}
END_TEST

START_TEST(read_own_sets)
{
	struct priv_caps c;

	ck_assert_int_eq(privilege_read(&c), 0);
	ck_assert_uint_ge(c.last_cap, CAP_NET_RAW);
	ck_assert_uint_lt(c.last_cap, 64);
	ck_assert_uint_eq(c.eff & ~c.prm, 0);
	ck_assert_uint_eq(c.amb & ~c.prm, 0);
	ck_assert_uint_eq(c.bnd >> c.last_cap >> 1, 0);
}
END_TEST

/*
 * Child side of drop_as_root: drop, then report through the exit status
 * which check failed (0: all passed). The test process itself keeps its
 * privileges (CK_FORK=no runs every test in one process).
 */
static int child_drop(const char *conf, const char *good_state,
		      const char *bad_state)
{
	struct priv_caps c;

	if (privilege_drop(NULL, conf, good_state) != 0)
		return 1;
	if (strstr(last_log, "capabilities reduced to CAPS=cap_net_admin,"
		   "cap_net_raw ") == NULL)
		return 2;
	if (privilege_read(&c) < 0)
		return 3;
	if (c.eff != PRIV_KEEP || c.prm != PRIV_KEEP || c.bnd != PRIV_KEEP ||
	    c.inh != 0 || c.amb != 0)
		return 4;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 0UL) != 1)
		return 5;
	if (privilege_check_files(conf, good_state) != 0)
		return 6;
	/* Another user's directory: root no longer writes there. */
	if (privilege_check_files(conf, bad_state) != 1 ||
	    strstr(last_log, "will not be saved") == NULL)
		return 7;
	/* A second call finds nothing more to do and changes nothing. */
	if (privilege_drop(NULL, conf, good_state) != 0 ||
	    strstr(last_log, "already limited") == NULL)
		return 8;
	return 0;
}

START_TEST(drop_as_root)
{
	char dir[] = "/tmp/test_caps.XXXXXX";
	char conf[64], other[64], good[80], bad[80];
	struct priv_caps c;
	int status;
	pid_t pid;
	FILE *f;

	ck_assert_int_eq(privilege_read(&c), 0);
	if (geteuid() != 0 || !(c.eff & PRIV_BIT(CAP_SETPCAP)) ||
	    (c.prm & PRIV_KEEP) != PRIV_KEEP) {
		fprintf(stderr, "drop_as_root: not root with CAP_SETPCAP, "
			"skipped\n");
		return;
	}
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/conf", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	snprintf(good, sizeof(good), "%s/state", dir);
	snprintf(bad, sizeof(bad), "%s/state", other);
	f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(mkdir(other, 0755), 0);
	ck_assert_int_eq(chown(other, 65534, 65534), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child_drop(conf, good, bad));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	unlink(conf);
	rmdir(other);
	rmdir(dir);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* The choice of user: root stays root, the unit (not root) changes
 * nothing, a missing default user means staying root, a missing user
 * asked for is an error, numbers are uids. */
START_TEST(choose_user)
{
	struct priv_user u;

	ck_assert_int_eq(privilege_choose_user("root", true, 0, &u),
			 PRIV_USER_STAY_ROOT);
	ck_assert(!u.change);
	ck_assert_int_eq(privilege_choose_user("0", false, 0, &u),
			 PRIV_USER_STAY_ROOT);
	ck_assert_int_eq(privilege_choose_user("nobody", false, 0, &u),
			 PRIV_USER_SWITCH);
	ck_assert(u.change);
	ck_assert_uint_eq(u.uid, 65534);
	ck_assert_str_eq(u.name, "nobody");
	ck_assert_int_eq(privilege_choose_user("65534", true, 0, &u),
			 PRIV_USER_SWITCH);
	ck_assert_uint_eq(u.uid, 65534);
	ck_assert_str_eq(u.name, "nobody");
	/* under the unit (User=): never a switch, whatever the file says */
	ck_assert_int_eq(privilege_choose_user("nobody", true, 998, &u),
			 PRIV_USER_NOT_ROOT);
	ck_assert(!u.change);
	ck_assert_uint_eq(u.uid, 998);
	ck_assert_int_eq(privilege_choose_user("no-such-user-imtest", false,
					       0, &u), PRIV_USER_MISSING);
	ck_assert(!u.change);
	ck_assert_int_eq(privilege_choose_user("no-such-user-imtest", true,
					       0, &u), PRIV_USER_ERROR);
	ck_assert_int_eq(privilege_choose_user("4000000", true, 0, &u),
			 PRIV_USER_ERROR);
}
END_TEST

/*
 * Child side of switch_as_root: become nobody with the two capabilities;
 * the directory made for it beforehand is its own and writable. The exit
 * status says which check failed (0: all passed).
 */
static int child_switch(const char *conf, const char *state)
{
	struct priv_user u;
	struct priv_caps c;
	struct stat st;
	char tmp[128];
	int fd;

	if (privilege_choose_user("nobody", true, geteuid(), &u) !=
	    PRIV_USER_SWITCH)
		return 1;
	if (privilege_prepare_dir(state, 0755, &u) != 1 ||
	    privilege_prepare_dir(state, 0755, &u) != 0)
		return 2;
	if (privilege_drop(&u, conf, state) != 0)
		return 3;
	if (getuid() != 65534 || geteuid() != 65534 || getgid() != u.gid ||
	    getegid() != u.gid)
		return 4;
	if (privilege_read(&c) < 0 || c.eff != PRIV_KEEP ||
	    c.prm != PRIV_KEEP || c.bnd != PRIV_KEEP || c.inh != 0 ||
	    c.amb != 0)
		return 5;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 0UL) != 1 ||
	    prctl(PR_GET_KEEPCAPS, 0UL, 0UL, 0UL, 0UL) != 0)
		return 6;
	/* the state directory: its own, written as the state file is */
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", state);
	fd = mkstemp(tmp);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != 65534)
		return 7;
	close(fd);
	if (rename(tmp, state) < 0)
		return 8;
	if (privilege_check_files(conf, state) != 0)
		return 9;
	/* root's own files are out of reach now (no CAP_DAC_OVERRIDE) */
	if (access("/root", W_OK) == 0)
		return 10;
	return 0;
}

START_TEST(switch_as_root)
{
	char dir[] = "/tmp/test_caps.XXXXXX";
	char conf[64], sub[64], state[80];
	struct priv_caps c;
	struct stat st;
	int status;
	pid_t pid;
	FILE *f;

	ck_assert_int_eq(privilege_read(&c), 0);
	if (geteuid() != 0 || !(c.eff & PRIV_BIT(CAP_SETPCAP)) ||
	    !(c.eff & PRIV_BIT(CAP_SETUID)) || getpwnam("nobody") == NULL) {
		fprintf(stderr, "switch_as_root: not root with CAP_SETPCAP "
			"and CAP_SETUID, or no user nobody: skipped\n");
		return;
	}
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(conf, sizeof(conf), "%s/conf", dir);
	snprintf(sub, sizeof(sub), "%s/state", dir);
	snprintf(state, sizeof(state), "%s/masqd.state", sub);
	f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(chmod(conf, 0644), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child_switch(conf, state));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(stat(sub, &st), 0);
	unlink(state);
	unlink(conf);
	rmdir(sub);
	rmdir(dir);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	/* made by root for nobody, with the mode asked for */
	ck_assert_uint_eq(st.st_uid, 65534);
	ck_assert_uint_eq(st.st_mode & 07777, 0755);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("privilege");
	TCase *tc = tcase_create("caps");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, plan_root_drops_everything_else);
	tcase_add_test(tc, plan_root_with_ambient_and_inheritable);
	tcase_add_test(tc, plan_unit_changes_nothing);
	tcase_add_test(tc, plan_file_caps_leave_bounding);
	tcase_add_test(tc, plan_unprivileged_and_partial);
	tcase_add_test(tc, format_names);
	tcase_add_test(tc, read_own_sets);
	tcase_add_test(tc, drop_as_root);
	tcase_add_test(tc, choose_user);
	tcase_add_test(tc, switch_as_root);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
