/*
 * The control socket's daemon side, driven by a test loop: a request is
 * answered whole, a 9th client is refused, an over-long line gets an error,
 * and a client that asks for a large answer and never reads it neither
 * blocks the loop nor stays past its timeout; the socket gets its mode and
 * is removed at close.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "control.h"
#include "log.h"
#include "pktbuild.h"

enum { TAG_LISTEN = 1, TAG_CLIENT0 = 0x100 };

static char dir[48], path[96];
static int epfd;
static struct engine *eng;
static struct control *ctl;
static uint64_t now = 1000;

static void fill_env(void *ctx, struct ctl_env *env)
{
	(void)ctx;
	env->eng = eng;
	env->now = now;
	env->started = 0;
}

static void setup(void)
{
	struct engine_config cfg;

	log_init("test_control", LOG_LEVEL_ERROR, LOG_BACKEND_STDERR);
	snprintf(dir, sizeof(dir), "/tmp/test_control.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sub/control", dir);  /* dir made */
	engine_config_defaults(&cfg);
	cfg.external_addr = pb_addr("198.51.100.1");
	cfg.internal[0].addr = pb_addr("192.168.0.0");
	cfg.internal[0].mask = 0xffff0000u;
	cfg.n_internal = 1;
	eng = engine_new(&cfg, 1, now, NULL, NULL);
	ck_assert_ptr_nonnull(eng);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	ck_assert_int_ge(epfd, 0);
	ctl = control_open(path, 0640, "", "", epfd, TAG_LISTEN, TAG_CLIENT0,
			   fill_env, NULL);
	ck_assert_ptr_nonnull(ctl);
}

static void teardown(void)
{
	char sub[64];

	control_close(ctl);
	close(epfd);
	engine_free(eng);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	rmdir(sub);
	rmdir(dir);
}

/* One round of the daemon's loop, without blocking. Returns the number of
 * events handled. */
static int pump(void)
{
	struct epoll_event evs[16];
	int n = epoll_wait(epfd, evs, 16, 0);

	for (int i = 0; i < n; i++) {
		if (evs[i].data.u32 == TAG_LISTEN)
			control_on_listen(ctl, now);
		else
			control_on_client(ctl, evs[i].data.u32 - TAG_CLIENT0,
					  evs[i].events, now);
	}
	return n;
}

static int client(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* Reads to EOF (pumping the loop between reads). */
static size_t read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	for (int round = 0; round < 10000; round++) {
		ssize_t n;

		pump();
		n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			len += (size_t)n;
		else
			ck_assert(errno == EAGAIN || errno == ECONNRESET);
		if (n < 0 && errno == ECONNRESET)
			break;
	}
	buf[len] = '\0';
	return len;
}

static const char *ask(int fd, const char *req)
{
	static char buf[65536];

	ck_assert_int_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	read_all(fd, buf, sizeof(buf));
	close(fd);
	return buf;
}

START_TEST(socket_mode_and_ping)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	ck_assert_str_eq(ask(client(), "v1 ping\n"), "ok\npong\n");
	ck_assert_str_eq(ask(client(), "v1 ping format=json\n"),
			 "ok\n{\"version\":1,\"pong\":1}\n");
	ck_assert_uint_eq(control_get_stats(ctl)->requests, 2);
	ck_assert_uint_eq(control_next_deadline(ctl), UINT64_MAX);
}
END_TEST

START_TEST(request_ended_by_shutdown)
{
	int fd = client();
	char buf[256];

	ck_assert_int_eq(send(fd, "v1 ping", 7, 0), 7);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	read_all(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_str_eq(buf, "ok\npong\n");
	fd = client();
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	read_all(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(live_socket_kept)
{
	struct control *second = control_open(path, 0600, "", "", epfd, 2,
					      0x200, fill_env, NULL);

	ck_assert_ptr_null(second);
	ck_assert_int_eq(errno, EADDRINUSE);
	ck_assert_str_eq(ask(client(), "v1 ping\n"), "ok\npong\n");
}
END_TEST

START_TEST(client_limit)
{
	int fds[CONTROL_MAX_CLIENTS], extra;
	char buf[256];

	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		fds[i] = client();
	pump();
	extra = client();
	read_all(extra, buf, sizeof(buf));
	ck_assert_str_eq(buf, "error busy too many control clients\n");
	close(extra);
	ck_assert_uint_eq(control_get_stats(ctl)->refused, 1);
	/* the idle ones are dropped at their deadline */
	ck_assert_uint_eq(control_next_deadline(ctl), now + CONTROL_TIMEOUT_MS);
	now += CONTROL_TIMEOUT_MS;
	control_run_timers(ctl, now);
	ck_assert_uint_eq(control_get_stats(ctl)->timeouts,
			  CONTROL_MAX_CLIENTS);
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		ck_assert_int_eq(recv(fds[i], buf, sizeof(buf), 0), 0);
		close(fds[i]);
	}
	ck_assert_str_eq(ask(client(), "v1 ping\n"), "ok\npong\n");
}
END_TEST

START_TEST(long_request)
{
	static char req[CTL_MAX_REQUEST + 100];
	char buf[256];
	int fd = client();
	ssize_t n;

	memset(req, 'x', sizeof(req));
	n = send(fd, req, sizeof(req), MSG_DONTWAIT);
	ck_assert_int_gt(n, CTL_MAX_REQUEST);
	read_all(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_str_eq(buf, "error protocol request longer than 4096 "
			 "bytes\n");
	ck_assert_uint_eq(control_get_stats(ctl)->bad_requests, 1);
}
END_TEST

START_TEST(slow_reader_dropped)
{
	int fd = client(), rcv = 4096;
	struct timespec t0, t1;
	char buf[4096];
	size_t got = 0;
	ssize_t n;

	for (uint32_t i = 0; i < 12000; i++)
		ck_assert_int_eq(engine_preload(eng, pb_addr("203.0.113.1") + i % 50,
						pb_addr("192.168.1.1") + i % 1000,
						0x10000 + i, 0, 0, now), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv,
				    sizeof(rcv)), 0);
	ck_assert_int_eq(send(fd, "v1 show format=json\n", 20, 0), 20);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 50; i++)
		pump();               /* never blocks on the full socket */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 3);
	/* some progress: the deadline moves with it */
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	ck_assert_int_gt(n, 0);
	got += (size_t)n;
	pump();
	ck_assert_uint_eq(control_next_deadline(ctl), now + CONTROL_TIMEOUT_MS);
	now += CONTROL_TIMEOUT_MS - 1;
	control_run_timers(ctl, now);
	ck_assert_uint_eq(control_get_stats(ctl)->timeouts, 0);
	now += 1;
	control_run_timers(ctl, now);
	ck_assert_uint_eq(control_get_stats(ctl)->timeouts, 1);
	/* what was queued can still be read, then the connection ends */
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		got += (size_t)n;
	ck_assert_uint_gt(got, 0);
	ck_assert_uint_lt(got, 12000 * 100);
	close(fd);
	ck_assert_str_eq(ask(client(), "v1 ping\n"), "ok\npong\n");
}
END_TEST

/* A large show reaches a reader whole, built in slices as it reads; the
 * daemon's buffer never holds more than a slice. */
START_TEST(large_show_in_slices)
{
	static char buf[8 << 20];
	int fd = client();
	size_t len, n = 0;
	const char *p;

	for (uint32_t i = 0; i < 30000; i++)
		ck_assert_int_eq(engine_preload(eng, pb_addr("203.0.113.1") + i % 50,
						pb_addr("192.168.1.1") + i % 1000,
						0x10000 + i, 0, 0, now), 0);
	ck_assert_int_eq(send(fd, "v1 show format=json\n", 20, 0), 20);
	len = read_all(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_uint_gt(len, 30000 * 150);
	ck_assert(strncmp(buf, "ok\n{\"version\":1,\"isakmp\":[],\"esp\":[{", 32) == 0);
	ck_assert_str_eq(buf + len - 17, "}],\"pending\":[]}\n");
	for (p = buf; (p = strstr(p, "\"state\":\"preloaded\"")) != NULL; p++)
		n++;
	ck_assert_uint_eq(n, 30000);
	ck_assert_uint_eq(control_get_stats(ctl)->timeouts, 0);
}
END_TEST

START_TEST(close_removes_socket)
{
	control_close(ctl);
	ctl = NULL;
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

static Suite *control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, socket_mode_and_ping);
	tcase_add_test(tc, request_ended_by_shutdown);
	tcase_add_test(tc, live_socket_kept);
	tcase_add_test(tc, client_limit);
	tcase_add_test(tc, long_request);
	tcase_add_test(tc, slow_reader_dropped);
	tcase_add_test(tc, large_show_in_slices);
	tcase_add_test(tc, close_removes_socket);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(control_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
