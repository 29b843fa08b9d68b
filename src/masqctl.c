/*
 * ipsec-masqctl: the control client. Checks its arguments (addresses and
 * SPIs strictly, as the daemon will), sends one protocol v1 request line
 * to the control socket, prints the body of the answer and exits with a
 * code that says what went wrong (see ipsec-masqctl(8)).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "ctlproto.h"

#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "(unknown version)"
#endif

enum exit_code {
	EX_OK = 0,
	EX_REFUSED = 1,     /* the daemon answered with an error */
	EX_USAGE_ = 2,      /* unknown command or option */
	EX_BADVALUE = 3,    /* malformed address, SPI or number */
	EX_NOTRUNNING = 4,  /* no socket, or nobody listening */
	EX_PERM = 5,        /* no permission on the socket */
	EX_COMM = 6,        /* timeout, truncated or unknown answer */
};

#define TIMEOUT_MS 10000
#define MAX_ANSWER ((size_t)256 << 20)   /* a show of 4 million entries */

static const char *prog = "ipsec-masqctl";

/* The command summary. */
static void usage(FILE *f)
{
	fprintf(f,
"usage: %s [-s SOCKET] COMMAND [ARGS]\n"
"       %s -h|--help | -V|--version\n"
"  show [--json] [--remote ADDR] [--host ADDR]\n"
"  stats [--json]\n"
"  flush [--remote ADDR] [--host ADDR] [--json]\n"
"  add esp --remote ADDR --host ADDR --spi-in SPI [--spi-out SPI] [--ttl S]\n"
"  del esp --remote ADDR --spi-in SPI\n"
"  reload | ping\n"
"socket: -s, $IPSEC_MASQCTL_SOCKET, or " RUNSTATEDIR "/ipsec-masqd/control\n"
"exit status: 0 success, 1 refused, 2 usage, 3 malformed address/SPI,\n"
"4 daemon not running, 5 no permission, 6 communication error\n",
		prog, prog);
}

/* Prints "ipsec-masqctl: message" (and the usage for EX_USAGE_) and exits
 * with code. */
static int die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

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

/* Appends " key=value" to the request. */
static void arg(char *req, size_t len, const char *key, const char *val)
{
	size_t used = strlen(req);

	if (snprintf(req + used, len - used, " %s=%s", key, val) >=
	    (int)(len - used))
		die(EX_USAGE_, "request too long");
}

/* Options of a command: which are allowed, then parsed into the request. */
enum { O_JSON = 1, O_REMOTE = 2, O_HOST = 4, O_SPI_IN = 8, O_SPI_OUT = 16,
       O_TTL = 32 };

/* Checks each option against `allowed` and its value strictly (exit 3 on
 * a malformed one) and appends it to the request. Returns the options seen. */
static unsigned parse_opts(int argc, char **argv, unsigned allowed,
			   char *req, size_t len)
{
	static const struct { const char *name; unsigned bit; const char *key; }
	opts[] = {
		{ "--json", O_JSON, NULL }, { "--remote", O_REMOTE, "remote" },
		{ "--host", O_HOST, "host" }, { "--spi-in", O_SPI_IN, "spi_in" },
		{ "--spi-out", O_SPI_OUT, "spi_out" }, { "--ttl", O_TTL, "ttl" },
	};
	unsigned seen = 0;

	for (int i = 0; i < argc; i++) {
		size_t k;
		const char *v;
		uint32_t u32;
		uint64_t u64;

		for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
			if (strcmp(argv[i], opts[k].name) == 0)
				break;
		if (k == sizeof(opts) / sizeof(opts[0]) ||
		    !(allowed & opts[k].bit))
			die(EX_USAGE_, "unexpected argument %s", argv[i]);
		if (seen & opts[k].bit)
			die(EX_USAGE_, "%s given twice", argv[i]);
		seen |= opts[k].bit;
		if (opts[k].bit == O_JSON) {
			arg(req, len, "format", "json");
			continue;
		}
		if (i + 1 >= argc)
			die(EX_USAGE_, "%s needs a value", argv[i]);
		v = argv[++i];
		switch (opts[k].bit) {
		case O_REMOTE:
		case O_HOST:
			if (ctl_parse_addr(v, &u32) < 0)
				die(EX_BADVALUE, "%s: not an IPv4 address: "
				    "\"%s\"", opts[k].name, v);
			break;
		case O_SPI_IN:
		case O_SPI_OUT:
			if (ctl_parse_spi(v, &u32) < 0)
				die(EX_BADVALUE, "%s: not a valid SPI (0x100 "
				    "to 0xffffffff, hex with 0x or decimal): "
				    "\"%s\"", opts[k].name, v);
			break;
		default:
			if (ctl_parse_seconds(v, CTL_MAX_TTL_S, &u64) < 0)
				die(EX_BADVALUE, "--ttl: not a number of "
				    "seconds from 1 to %u: \"%s\"",
				    CTL_MAX_TTL_S, v);
			break;
		}
		arg(req, len, opts[k].key, v);
	}
	return seen;
}

/* The request line for the command line. */
static void build_request(int argc, char **argv, char *req, size_t len)
{
	const char *cmd = argv[0];
	unsigned seen;

	if (strcmp(cmd, "show") == 0) {
		snprintf(req, len, "v1 show");
		parse_opts(argc - 1, argv + 1, O_JSON | O_REMOTE | O_HOST, req,
			   len);
	} else if (strcmp(cmd, "stats") == 0) {
		snprintf(req, len, "v1 stats");
		parse_opts(argc - 1, argv + 1, O_JSON, req, len);
	} else if (strcmp(cmd, "flush") == 0) {
		snprintf(req, len, "v1 flush");
		parse_opts(argc - 1, argv + 1, O_JSON | O_REMOTE | O_HOST, req,
			   len);
	} else if (strcmp(cmd, "add") == 0 || strcmp(cmd, "del") == 0) {
		bool add = cmd[0] == 'a';

		if (argc < 2 || strcmp(argv[1], "esp") != 0)
			die(EX_USAGE_, "%s takes \"esp\" first", cmd);
		snprintf(req, len, "v1 %s-esp", cmd);
		seen = parse_opts(argc - 2, argv + 2, add ?
				  O_JSON | O_REMOTE | O_HOST | O_SPI_IN |
				  O_SPI_OUT | O_TTL :
				  O_JSON | O_REMOTE | O_SPI_IN, req, len);
		if (!(seen & O_REMOTE) || !(seen & O_SPI_IN) ||
		    (add && !(seen & O_HOST)))
			die(EX_USAGE_, "%s esp needs --remote, --spi-in%s", cmd,
			    add ? " and --host" : "");
	} else if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "ping") == 0) {
		snprintf(req, len, "v1 %s", cmd);
		parse_opts(argc - 1, argv + 1, O_JSON, req, len);
	} else {
		die(EX_USAGE_, "unknown command %s", cmd);
	}
	if (strlen(req) + 2 > len)
		die(EX_USAGE_, "request too long");
	strcat(req, "\n");
}

/* Connects to path. Exits with the right code when it cannot. */
static int connect_socket(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		die(EX_USAGE_, "socket path too long: %s", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die(EX_COMM, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	switch (errno) {
	case ENOENT:
	case ECONNREFUSED:
	case ENOTDIR:
		die(EX_NOTRUNNING, "ipsec-masqd is not running (%s: %s)", path,
		    strerror(errno));
		break;
	case EACCES:
	case EPERM:
		die(EX_PERM, "no permission to use %s (%s): run as root or "
		    "as a member of the socket's group", path,
		    strerror(errno));
		break;
	default:
		die(EX_COMM, "connect %s: %s", path, strerror(errno));
	}
	return -1;
}

/* Milliseconds of CLOCK_MONOTONIC, for the answer's deadline. */
static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready for `events` until deadline. */
static void wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	long long left = deadline - ms_now();
	int r;

	do {
		r = poll(&p, 1, left > 0 ? (int)left : 0);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		die(EX_COMM, "no answer from the daemon in %d s",
		    TIMEOUT_MS / 1000);
	if (r < 0)
		die(EX_COMM, "poll: %s", strerror(errno));
}

/*
 * Whether the body of a show answer is whole. The daemon streams a large
 * table and closes the connection when it stops, so an answer cut short
 * looks like a normal end: JSON must end with the closing "]}", text must
 * have its three sections in order and end with the line CTL_SHOW_END.
 * (The rows of a section need not be as many as its header says: the
 * header counts the entries when the answer began, and a large table
 * changes while it is sent.)
 */
static bool show_complete(const char *body, size_t len, bool json)
{
	static const char *const heads[] = {
		"ISAKMP entries: ", "\nESP entries: ", "\nPending inits: ",
	};
	const size_t el = strlen(CTL_SHOW_END);
	const char *p = body, *end = body + len;

	if (json)
		return len >= 3 && memcmp(end - 3, "]}\n", 3) == 0;
	if (len < el + 1 || memcmp(end - el, CTL_SHOW_END, el) != 0 ||
	    *(end - el - 1) != '\n')
		return false;
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		size_t hl = strlen(heads[i]);
		const char *h = i == 0 ? (strncmp(p, heads[0], hl) ? NULL : p)
				       : memmem(p, (size_t)(end - p), heads[i],
						hl);

		if (h == NULL)
			return false;
		p = h + hl;
	}
	return true;
}

int main(int argc, char **argv)
{
	const char *path = getenv("IPSEC_MASQCTL_SOCKET");
	char req[CTL_MAX_REQUEST];
	size_t cap = 1 << 16, len = 0, off = 0, rlen;
	char *buf, *nl;
	long long deadline;
	bool is_show, show_json = false;
	int fd, i = 1;

	signal(SIGPIPE, SIG_IGN);
	if (path == NULL || path[0] == '\0')
		path = RUNSTATEDIR "/ipsec-masqd/control";
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 ||
			   strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return EX_OK;
		} else if (strcmp(argv[i], "-V") == 0 ||
			   strcmp(argv[i], "--version") == 0) {
			printf("ipsec-masqctl " PACKAGE_VERSION
			       " (protocol v%d)\n", CTL_VERSION);
			return EX_OK;
		} else {
			die(EX_USAGE_, "unknown option %s", argv[i]);
		}
	}
	if (i >= argc)
		die(EX_USAGE_, "no command");
	build_request(argc - i, argv + i, req, sizeof(req));
	is_show = strcmp(argv[i], "show") == 0;
	for (int j = i + 1; is_show && j < argc; j++)
		show_json |= strcmp(argv[j], "--json") == 0;

	fd = connect_socket(path);
	deadline = ms_now() + TIMEOUT_MS;
	rlen = strlen(req);
	while (off < rlen) {
		ssize_t n = send(fd, req + off, rlen - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			break;   /* refused at once ("busy"): read why */
		if (n < 0)
			die(EX_COMM, "send: %s", strerror(errno));
		off += (size_t)n;
	}
	buf = malloc(cap);
	if (buf == NULL)
		die(EX_COMM, "out of memory");
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			char *nb = cap > MAX_ANSWER ? NULL :
				   realloc(buf, cap * 2);

			if (nb == NULL)
				die(EX_COMM, "answer too large");
			buf = nb;
			cap *= 2;
		}
		wait_fd(fd, POLLIN, deadline);
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ECONNRESET && len > 0)
			break;   /* closed with our request unread: answer in */
		if (n < 0)
			die(EX_COMM, "receive: %s", strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	nl = strchr(buf, '\n');
	if (nl == NULL)
		die(EX_COMM, "truncated answer from the daemon");
	*nl = '\0';
	if (strcmp(buf, "ok") == 0) {
		size_t blen = len - (size_t)(nl + 1 - buf);

		if (is_show && !show_complete(nl + 1, blen, show_json))
			die(EX_COMM, "the daemon's answer was cut short after "
			    "%zu bytes (did it stop?): no table printed", blen);
		if (is_show && !show_json)
			blen -= strlen(CTL_SHOW_END);   /* not for the reader */
		fwrite(nl + 1, 1, blen, stdout);
		free(buf);
		return fflush(stdout) == 0 ? EX_OK : EX_COMM;
	}
	if (strncmp(buf, "error ", 6) == 0) {
		char *kind = buf + 6, *msg = strchr(kind, ' ');
		int rc;

		if (msg != NULL)
			*msg++ = '\0';
		rc = strcmp(kind, "protocol") == 0 ? EX_COMM : EX_REFUSED;
		fprintf(stderr, "%s: %s (%s)\n", prog, msg ? msg : kind, kind);
		free(buf);
		return rc;
	}
	die(EX_COMM, "unknown answer from the daemon: %.80s", buf);
	return EX_COMM;
}
