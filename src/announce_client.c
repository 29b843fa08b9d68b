/*
 * ipsec-masqd-announce: what a LAN host runs to tell the router which SPIs
 * its IPsec SAs use (ipsec-masqd-announce(8)). One signed datagram to the
 * router's listener, then the router's signed answer; the first answer is
 * usually cookie_required with the router's cookie for this address, and
 * the message goes again with it. A lost datagram, or one refused as
 * replayed, is sent again with a new sequence number (a repeat of the same
 * one would be refused as replayed).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "announce.h"
#include "ctlproto.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "(unknown version)"
#endif

enum exit_code {
	EX_OK = 0,
	EX_REFUSED = 1,     /* the router answered with a refusal */
	EX_USAGE_ = 2,
	EX_BADVALUE = 3,    /* bad address, SPI, number or key file */
	EX_NOANSWER = 4,    /* no (authentic) answer */
	EX_SYSTEM = 5,      /* socket errors */
};

static const char *prog = "ipsec-masqd-announce";

static void usage(FILE *f)
{
	fprintf(f,
"usage: %s announce --router ADDR --key-file FILE --remote ADDR --spi-in SPI\n"
"                  [--spi-out SPI] [--ttl SECONDS] [--port PORT] [--tries N]\n"
"       %s withdraw --router ADDR --key-file FILE --remote ADDR --spi-in SPI\n"
"                  [--port PORT] [--tries N]\n"
"       %s -h | --help | -V | --version\n", prog, prog, prog);
}

static int die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
static int die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (code == EX_USAGE_)
		usage(stderr);
	exit(code);
}

struct opts {
	uint8_t type;
	uint32_t router, remote, spi_in, spi_out;
	unsigned port, tries;
	uint64_t ttl_s;
	const char *key_file;
};

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "router", required_argument, NULL, 'r' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "remote", required_argument, NULL, 'R' },
		{ "spi-in", required_argument, NULL, 'i' },
		{ "spi-out", required_argument, NULL, 'o' },
		{ "ttl", required_argument, NULL, 't' },
		{ "port", required_argument, NULL, 'p' },
		{ "tries", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_router = false, have_remote = false, have_spi = false;
	uint64_t v;
	int c;

	o->port = ANN_DEFAULT_PORT;
	o->tries = 3;
	o->ttl_s = 3600;
	/* -h and -V as the other programs take them, before a command */
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		exit(EX_OK);
	}
	if (argc > 1 && (!strcmp(argv[1], "--version") ||
			 !strcmp(argv[1], "-V"))) {
		printf("%s %s\n", prog, PACKAGE_VERSION);
		exit(EX_OK);
	}
	if (argc < 2)
		die(EX_USAGE_, "a command is needed");
	if (!strcmp(argv[1], "announce"))
		o->type = ANN_ANNOUNCE;
	else if (!strcmp(argv[1], "withdraw"))
		o->type = ANN_WITHDRAW;
	else
		die(EX_USAGE_, "unknown command %s", argv[1]);
	optind = 2;
	while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (ctl_parse_addr(optarg, &o->router) < 0)
				die(EX_BADVALUE, "--router %s: not an IPv4 address", optarg);
			have_router = true;
			break;
		case 'k':
			o->key_file = optarg;
			break;
		case 'R':
			if (ctl_parse_addr(optarg, &o->remote) < 0)
				die(EX_BADVALUE, "--remote %s: not an IPv4 address", optarg);
			have_remote = true;
			break;
		case 'i':
			if (ctl_parse_spi(optarg, &o->spi_in) < 0)
				die(EX_BADVALUE, "--spi-in %s: not an SPI (256 and up)", optarg);
			have_spi = true;
			break;
		case 'o':
			if (o->type != ANN_ANNOUNCE)
				die(EX_USAGE_, "--spi-out is for announce");
			if (ctl_parse_spi(optarg, &o->spi_out) < 0)
				die(EX_BADVALUE, "--spi-out %s: not an SPI (256 and up)", optarg);
			break;
		case 't':
			if (o->type != ANN_ANNOUNCE)
				die(EX_USAGE_, "--ttl is for announce");
			if (ctl_parse_seconds(optarg, ANN_MAX_TTL_S, &v) < 0 || v == 0)
				die(EX_BADVALUE, "--ttl %s: whole seconds, 1 to %u", optarg,
				    ANN_MAX_TTL_S);
			o->ttl_s = v;
			break;
		case 'p':
			if (ctl_parse_seconds(optarg, 65535, &v) < 0 || v == 0)
				die(EX_BADVALUE, "--port %s: 1 to 65535", optarg);
			o->port = (unsigned)v;
			break;
		case 'n':
			if (ctl_parse_seconds(optarg, 100, &v) < 0 || v == 0)
				die(EX_BADVALUE, "--tries %s: 1 to 100", optarg);
			o->tries = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			exit(EX_OK);
		case 'V':
			printf("%s %s\n", prog, PACKAGE_VERSION);
			exit(EX_OK);
		default:
			die(EX_USAGE_, "bad option");
		}
	}
	if (optind != argc)
		die(EX_USAGE_, "unexpected argument %s", argv[optind]);
	if (!have_router || !o->key_file || !have_remote || !have_spi)
		die(EX_USAGE_, "--router, --key-file, --remote and --spi-in are "
		    "required");
}

/* The key for our address from the key file. */
static void load_key(const char *path, uint32_t self, uint8_t key[ANN_KEY_LEN])
{
	static char text[64 * 1024 + 1];
	struct ann_keys *keys = calloc(1, sizeof(*keys));
	const uint8_t *k;
	char err[256];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die(EX_BADVALUE, "%s: %s", path, strerror(errno));
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0 || n >= (ssize_t)sizeof(text) - 1)
		die(EX_BADVALUE, "%s: cannot read (or larger than 64 KiB)", path);
	text[n] = '\0';
	if (keys == NULL)
		die(EX_SYSTEM, "out of memory");
	if (ann_keys_parse(text, keys, err, sizeof(err)) < 0)
		die(EX_BADVALUE, "%s: %s", path, err);
	k = ann_key_for(keys, self);
	if (k == NULL)
		die(EX_BADVALUE, "%s: no key for this host's address", path);
	memcpy(key, k, ANN_KEY_LEN);
	free(keys);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A socket connected to the router; *self is the address it leaves from,
 * which is the host the message speaks for. */
static int connect_router(const struct opts *o, uint32_t *self)
{
	struct sockaddr_in to = {
		.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port),
		.sin_addr.s_addr = htonl(o->router),
	}, me;
	socklen_t len = sizeof(me);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&me, &len) < 0)
		die(EX_SYSTEM, "cannot reach the router: %s", strerror(errno));
	*self = ntohl(me.sin_addr.s_addr);
	return fd;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits until the monotonic deadline (ms) for the signed answer to seq:
 * datagrams that are not it do not extend the wait. Returns its status
 * (the reply in *reply), or -1. */
static int await_reply(int fd, const uint8_t key[ANN_KEY_LEN], uint64_t seq,
		       uint64_t deadline, struct ann_msg *reply)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint8_t buf[ANN_MSG_LEN + 8];

	for (;;) {
		uint64_t now = mono_ms();
		ssize_t n;

		if (now >= deadline ||
		    poll(&p, 1, (int)(deadline - now)) != 1)
			return -1;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			return -1;   /* e.g. ECONNREFUSED: nobody listens */
		if (ann_parse(buf, (size_t)n, reply) == ANN_OK &&
		    reply->type == ANN_REPLY && ann_mac_ok(buf, key) &&
		    reply->seq == seq)
			return reply->status;
	}
}

/* The answers that call for the same message again at once, with a new
 * sequence number: the router's cookie (first contact, or an old one),
 * and a sequence number below one the router has seen (another run on
 * this host got in first). At most this many of each. */
#define ANN_RESENDS 3

/* One exchange: a message, and again after a lost one (o->tries in all)
 * or a cookie or replayed answer. Returns the final status or -1. */
static int exchange(int fd, const struct opts *o, uint32_t self,
		    const uint8_t key[ANN_KEY_LEN])
{
	uint8_t buf[ANN_MSG_LEN], cookie[ANN_COOKIE_LEN] = { 0 };
	unsigned lost = 0, cookies = 0, replays = 0;
	uint64_t last_seq = 0;

	for (;;) {
		uint64_t ns = realtime_ns();
		struct ann_msg m = {
			.version = ANN_VERSION, .type = o->type,
			.timestamp_ms = ns / 1000000u,
			/* strictly above the last, whatever the clock did */
			.seq = ns > last_seq ? ns : last_seq + 1,
			.host = self, .remote = o->remote, .spi_in = o->spi_in,
			.spi_out = o->spi_out,
			.ttl_s = o->type == ANN_ANNOUNCE ? (uint32_t)o->ttl_s : 0,
		}, r;
		int st;

		memcpy(m.cookie, cookie, sizeof(cookie));
		last_seq = m.seq;
		ann_encode(&m, key, buf);
		if (send(fd, buf, sizeof(buf), 0) < 0 && errno != ECONNREFUSED)
			die(EX_SYSTEM, "send: %s", strerror(errno));
		st = await_reply(fd, key, m.seq, mono_ms() + 1000, &r);
		if (st < 0) {
			if (++lost >= o->tries)
				return -1;
		} else if ((st == ANN_COOKIE_REQUIRED || st == ANN_BAD_COOKIE) &&
			   cookies++ < ANN_RESENDS) {
			memcpy(cookie, r.cookie, sizeof(cookie));
		} else if (st == ANN_REPLAYED && replays++ < ANN_RESENDS) {
			continue;
		} else {
			return st;
		}
	}
}

int main(int argc, char **argv)
{
	uint8_t key[ANN_KEY_LEN];
	struct opts o = { 0 };
	char r[INET_ADDRSTRLEN];
	struct in_addr in;
	uint32_t self;
	int fd, st;

	parse_args(argc, argv, &o);
	fd = connect_router(&o, &self);
	load_key(o.key_file, self, key);
	st = exchange(fd, &o, self, key);
	close(fd);
	in.s_addr = htonl(o.remote);
	inet_ntop(AF_INET, &in, r, sizeof(r));
	if (st < 0)
		die(EX_NOANSWER, "no answer from the router after %u tries",
		    o.tries);
	if (st != ANN_OK)
		die(EX_REFUSED, "%s of SPI 0x%08x with %s refused: %s",
		    ann_type_name(o.type), o.spi_in, r,
		    ann_status_name((enum ann_status)st));
	printf("%s SPI 0x%08x with %s: accepted\n", o.type == ANN_ANNOUNCE ?
	       "announced" : "withdrew", o.spi_in, r);
	return EX_OK;
}
