/*
 * The LAN listener for SPI announcements (announce_sock.h): the I/O around
 * announce.c. One non-blocking UDP socket bound to the router's LAN
 * address; IP_PKTINFO says which interface each datagram came in on, and
 * only the interface that holds the listen address counts as LAN (Linux
 * takes a datagram for any local address on any interface, so a WAN
 * sender could otherwise reach the socket with a forged LAN source).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "announce.h"
#include "announce_sock.h"
#include "log.h"

#define ANN_KEYFILE_MAX (64 * 1024)
#define ANN_RESOLVE_MS 10000     /* re-find the LAN interface at most so often */
#define ANN_RX_MAX 64            /* datagrams per wakeup */
#define ANN_LOG_BURST 10         /* refusal records per reason at once ... */
#define ANN_LOG_RATE_MS 1000     /* ... then one per this many ms */

/* Made once with uuid4; never change them (ipsec-masqd-announce(8)). */
#define ANN_ID_ACCEPTED "61d40d1b3cf24d238698ae029314882f"
#define ANN_ID_REFUSED "31329563957c44009eacb46c6b1db4ca"

struct log_bucket {
	uint64_t last_ms;
	unsigned tokens;
	uint64_t suppressed;
	int used;
};

struct announce_sock {
	int fd;
	uint32_t listen;
	unsigned port;
	int lan_ifindex;
	char lan_ifname[IF_NAMESIZE];
	char ext_ifname[IF_NAMESIZE];
	uint64_t resolved_ms;
	char key_file[4096];
	uint64_t replies, reply_errors, recv_errors;
	struct log_bucket rl[ANN_MAX];
	struct ann_ctx ctx;          /* large: the sender table */
};

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *ip4(uint32_t addr, char *buf)
{
	struct in_addr in = { .s_addr = htonl(addr) };

	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

/* The key file into keys. Returns 0, or -1 logged as "FILE:LINE: why". */
static int read_keys(const char *path, struct ann_keys *keys)
{
	char *text = calloc(1, ANN_KEYFILE_MAX + 1), err[256];
	struct stat st;
	ssize_t n;
	int fd, r = -1;

	if (text == NULL) {
		log_warn("announce key file %s", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_warn("announce key file %s: cannot read", path);
		goto out;
	}
	n = read(fd, text, ANN_KEYFILE_MAX + 1);
	if (n < 0 || n > ANN_KEYFILE_MAX) {
		log_msg(LOG_LEVEL_ERROR, "announce key file %s: %s", path,
			n < 0 ? strerror(errno) : "larger than 64 KiB");
		goto out;
	}
	if (ann_keys_parse(text, keys, err, sizeof(err)) < 0) {
		/* "line N: why" -> "FILE:N: why" */
		unsigned line;

		if (sscanf(err, "line %u:", &line) == 1)
			log_msg(LOG_LEVEL_ERROR, "%s:%u:%s", path, line,
				strchr(err, ':') + 1);
		else
			log_msg(LOG_LEVEL_ERROR, "%s: %s", path, err);
		goto out;
	}
	/* root:ipsec-masqd 0640 is the set-up under the unit (which runs as
	 * ipsec-masqd); anything for "others" is one reader too many */
	if (st.st_mode & 007)
		log_msg(LOG_LEVEL_WARNING, "announce key file %s is readable "
			"by others (mode %04o): anyone who reads it can "
			"announce SPIs", path, (unsigned)(st.st_mode & 07777));
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	return r;
}

/* The interface that holds the listen address: its index and name, 0 if
 * none has it now. */
static int find_lan_interface(struct announce_sock *as)
{
	struct ifaddrs *ifs, *i;
	int index = 0;

	if (getifaddrs(&ifs) < 0)
		return 0;
	for (i = ifs; i; i = i->ifa_next) {
		const struct sockaddr_in *a = (const void *)i->ifa_addr;

		if (a && a->sin_family == AF_INET &&
		    ntohl(a->sin_addr.s_addr) == as->listen) {
			index = (int)if_nametoindex(i->ifa_name);
			snprintf(as->lan_ifname, sizeof(as->lan_ifname), "%s",
				 i->ifa_name);
			break;
		}
	}
	freeifaddrs(ifs);
	return index;
}

static int open_socket(struct announce_sock *as)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)as->port),
		.sin_addr.s_addr = htonl(as->listen),
	};
	char a[INET_ADDRSTRLEN];
	int on = 1;

	as->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* IP_FREEBIND: the unit starts before the network is up, and a bind
	 * to a LAN address not there yet would fail the start until systemd
	 * gives up; datagrams arrive once the address does (the interface is
	 * looked up then, see on_lan()) */
	if (as->fd < 0 ||
	    setsockopt(as->fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on)) < 0 ||
	    setsockopt(as->fd, IPPROTO_IP, IP_FREEBIND, &on, sizeof(on)) < 0) {
		log_warn("announce socket");
		return -1;
	}
	if (bind(as->fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
		log_warn("announce: cannot listen on %s:%u",
			 ip4(as->listen, a), as->port);
		return -1;
	}
	return 0;
}

struct announce_sock *announce_open(const struct masqd_config *cfg)
{
	const struct announce_config *ac = &cfg->announce;
	struct announce_sock *as = calloc(1, sizeof(*as));
	struct ann_settings set = {
		.max_skew_ms = ac->max_skew_ms, .rate = ac->rate,
		.burst = ac->burst, .max_entries = ac->max_entries,
	};
	struct ann_keys *keys = calloc(1, sizeof(*keys));
	char a[INET_ADDRSTRLEN];
	uint8_t secret[ANN_SECRET_LEN];
	uint64_t seed = 0;

	if (as == NULL || keys == NULL) {
		log_warn("announce");
		goto fail;
	}
	as->fd = -1;
	as->listen = ac->listen;
	as->port = ac->port;
	snprintf(as->key_file, sizeof(as->key_file), "%s", ac->key_file);
	snprintf(as->ext_ifname, sizeof(as->ext_ifname), "%s",
		 cfg->ext_interface);
	if (read_keys(ac->key_file, keys) < 0 || open_socket(as) < 0)
		goto fail;
	as->lan_ifindex = find_lan_interface(as);
	as->resolved_ms = mono_ms();
	if (as->ext_ifname[0] && strcmp(as->lan_ifname, as->ext_ifname) == 0) {
		log_msg(LOG_LEVEL_ERROR, "%s: announce.listen %s is on the "
			"external interface %s: announcements come from the "
			"LAN", cfg->path, ip4(as->listen, a), as->ext_ifname);
		goto fail;
	}
	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		log_warn("announce: getrandom");
	/* a predictable secret would let a spoofer compute cookies */
	if (getrandom(secret, sizeof(secret), 0) != (ssize_t)sizeof(secret)) {
		log_warn("announce: getrandom for the cookie secret");
		goto fail;
	}
	ann_init(&as->ctx, &set, keys, &cfg->engine, wall_ms(), seed, secret);
	explicit_bzero(secret, sizeof(secret));
	free(keys);
	log_info("announce: listening on %s:%u (interface %s), %zu key%s "
		 "from %s", ip4(as->listen, a), as->port,
		 as->lan_ifindex ? as->lan_ifname : "none yet: the address "
		 "is not there; datagrams count once it is",
		 as->ctx.keys.n, as->ctx.keys.n == 1 ? "" : "s", as->key_file);
	return as;
fail:
	free(keys);
	announce_close(as);
	return NULL;
}

int announce_fd(const struct announce_sock *as)
{
	return as->fd;
}

void announce_close(struct announce_sock *as)
{
	if (as == NULL)
		return;
	if (as->fd >= 0)
		close(as->fd);
	free(as);
}

int announce_reload(struct announce_sock *as, const struct masqd_config *cfg)
{
	const struct announce_config *ac = &cfg->announce;
	struct ann_settings set = {
		.max_skew_ms = ac->max_skew_ms, .rate = ac->rate,
		.burst = ac->burst, .max_entries = ac->max_entries,
	};
	struct ann_keys *keys = calloc(1, sizeof(*keys));

	if (ac->listen != as->listen || ac->port != as->port)
		log_msg(LOG_LEVEL_WARNING, "announce: listener changes take "
			"effect at the next restart");
	if (keys == NULL || read_keys(ac->key_file, keys) < 0) {
		log_msg(LOG_LEVEL_WARNING, "announce: keeping the previous "
			"keys");
		free(keys);
		return -1;
	}
	ann_reconfigure(&as->ctx, &set, keys, &cfg->engine);
	snprintf(as->key_file, sizeof(as->key_file), "%s", ac->key_file);
	free(keys);
	return 0;
}

/* Whether the datagram came in on the LAN interface; the interface is
 * looked for again (rate-limited) when it may have been re-created. */
static bool on_lan(struct announce_sock *as, int ifindex)
{
	uint64_t now = mono_ms();

	if (ifindex == as->lan_ifindex && ifindex != 0)
		return true;
	if (now - as->resolved_ms < ANN_RESOLVE_MS)
		return false;
	as->resolved_ms = now;
	as->lan_ifindex = find_lan_interface(as);
	/* the address moved to the external interface: nothing is LAN until
	 * it is back (else the fast check above would pass WAN datagrams) */
	if (as->ext_ifname[0] && !strcmp(as->lan_ifname, as->ext_ifname))
		as->lan_ifindex = 0;
	return ifindex == as->lan_ifindex && ifindex != 0;
}

/* Refusals may come in floods: a bucket per reason, then a count. */
static bool log_allowed(struct announce_sock *as, enum ann_status st,
			uint64_t *suppressed)
{
	struct log_bucket *b = &as->rl[st];
	uint64_t now = mono_ms();

	*suppressed = 0;
	if (st == ANN_OK)
		return true;
	if (!b->used) {
		b->used = 1;
		b->tokens = ANN_LOG_BURST;
		b->last_ms = now;
	}
	while (b->tokens < ANN_LOG_BURST && now - b->last_ms >= ANN_LOG_RATE_MS) {
		b->tokens++;
		b->last_ms += ANN_LOG_RATE_MS;
	}
	if (b->tokens == ANN_LOG_BURST)
		b->last_ms = now;
	if (b->tokens == 0) {
		b->suppressed++;
		return false;
	}
	b->tokens--;
	*suppressed = b->suppressed;
	b->suppressed = 0;
	return true;
}

/* One journal field with its value's storage. */
struct ann_kv {
	const char *key;
	char val[64];
};

static void kv_set(struct ann_kv *kv, size_t *n, const char *key,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void kv_set(struct ann_kv *kv, size_t *n, const char *key,
		   const char *fmt, ...)
{
	va_list ap;

	kv[*n].key = key;
	va_start(ap, fmt);
	vsnprintf(kv[*n].val, sizeof(kv[*n].val), fmt, ap);
	va_end(ap);
	(*n)++;
}

/* One record per datagram: DECISION announce_accepted/announce_refused,
 * REASON, the sender and what it said (when it parsed). */
static void log_outcome(struct announce_sock *as, enum ann_status st,
			uint32_t src, const struct ann_msg *m, bool parsed)
{
	struct ann_kv kv[10];
	struct log_kv fields[10];
	char text[1024], a[INET_ADDRSTRLEN], r[INET_ADDRSTRLEN] = "";
	size_t used;
	uint64_t suppressed;
	size_t n = 0;

	if (!log_allowed(as, st, &suppressed))
		return;
	kv_set(kv, &n, "DECISION", "%s", st == ANN_OK ? "announce_accepted"
						      : "announce_refused");
	kv_set(kv, &n, "REASON", "%s", ann_status_name(st));
	kv_set(kv, &n, "LAN_ADDR", "%s", ip4(src, a));
	if (parsed) {
		kv_set(kv, &n, "ANNOUNCE_TYPE", "%s", ann_type_name(m->type));
		kv_set(kv, &n, "PEER_ADDR", "%s", ip4(m->remote, r));
		kv_set(kv, &n, "ESP_SPI_IN", "0x%08x", m->spi_in);
		if (m->spi_out)
			kv_set(kv, &n, "ESP_SPI_OUT", "0x%08x", m->spi_out);
		if (m->type == ANN_ANNOUNCE)
			kv_set(kv, &n, "TTL", "%u", m->ttl_s);
		kv_set(kv, &n, "SEQ", "%llu", (unsigned long long)m->seq);
	}
	if (suppressed)
		kv_set(kv, &n, "SUPPRESSED", "%llu",
		       (unsigned long long)suppressed);
	if (st == ANN_OK)
		snprintf(text, sizeof(text), "%s from %s accepted: inbound "
			 "SPI 0x%08x from %s %s %s", ann_type_name(m->type),
			 a, m->spi_in, r, m->type == ANN_ANNOUNCE ?
			 "goes to" : "no longer goes to", a);
	else
		snprintf(text, sizeof(text), "announcement from %s refused "
			 "(%s)", a, ann_status_name(st));
	/* the fields end the text too, so that a grep of a syslog file or
	 * of stderr finds them, as with the engine's decisions */
	used = strlen(text);
	for (size_t i = 0; i < n; i++) {
		fields[i] = (struct log_kv){ kv[i].key, kv[i].val };
		if (used < sizeof(text))
			used += (size_t)snprintf(text + used, sizeof(text) - used,
						 " %s=%s", kv[i].key, kv[i].val);
	}
	/* cookie_required is every sender's first step, not a warning */
	log_msg_id(st == ANN_OK || st == ANN_COOKIE_REQUIRED ? LOG_INFO :
		   LOG_WARNING,
		   st == ANN_OK ? ANN_ID_ACCEPTED : ANN_ID_REFUSED, fields, n,
		   "%s", text);
}

/* The outcome back to an authentic sender, under its own key, with the
 * cookie for its address. */
static void reply(struct announce_sock *as, const struct sockaddr_in *to,
		  const struct ann_msg *m, enum ann_status st)
{
	const uint8_t *key = ann_key_for(&as->ctx.keys, ntohl(to->sin_addr.s_addr));
	struct ann_msg r = *m;
	uint8_t buf[ANN_MSG_LEN];

	if (key == NULL)
		return;
	r.version = ANN_VERSION;
	r.type = ANN_REPLY;
	r.status = (uint8_t)st;
	r.timestamp_ms = wall_ms();
	/* only the sender's address gets its cookie: the return route */
	ann_cookie(&as->ctx, ntohl(to->sin_addr.s_addr), r.timestamp_ms,
		   r.cookie);
	ann_encode(&r, key, buf);
	if (sendto(as->fd, buf, sizeof(buf), MSG_DONTWAIT,
		   (const struct sockaddr *)to, sizeof(*to)) < 0)
		as->reply_errors++;
	else
		as->replies++;
}

/* The interface index of a received message from its IP_PKTINFO. */
static int pkt_ifindex(struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			return pi.ipi_ifindex;
		}
	return 0;
}

static void handle_one(struct announce_sock *as, struct engine *eng,
		       uint64_t eng_now, const uint8_t *buf, size_t len,
		       const struct sockaddr_in *from, int ifindex)
{
	uint32_t src = ntohl(from->sin_addr.s_addr);
	struct ann_msg m;
	bool authentic;
	enum ann_status st;

	memset(&m, 0, sizeof(m));
	st = ann_receive(&as->ctx, buf, len, src, on_lan(as, ifindex),
			 wall_ms(), &m, &authentic);
	if (st == ANN_OK)
		st = ann_apply(&as->ctx, eng, &m, eng_now);
	else
		ann_count(&as->ctx, st);
	/* what an unauthenticated datagram says is not worth a field */
	log_outcome(as, st, src, &m, authentic);
	if (authentic)
		reply(as, from, &m, st);
}

void announce_receive(struct announce_sock *as, struct engine *eng,
		      uint64_t eng_now)
{
	for (int i = 0; i < ANN_RX_MAX; i++) {
		uint8_t buf[ANN_MSG_LEN + 64];
		char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct sockaddr_in from;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = {
			.msg_name = &from, .msg_namelen = sizeof(from),
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		ssize_t n = recvmsg(as->fd, &mh, MSG_DONTWAIT);

		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				as->recv_errors++;
			return;
		}
		/* a cut datagram is malformed whatever it holds */
		handle_one(as, eng, eng_now, buf,
			   (mh.msg_flags & MSG_TRUNC) ? sizeof(buf) : (size_t)n,
			   &from, pkt_ifindex(&mh));
	}
}

size_t announce_counters(const struct announce_sock *as,
			 struct ctl_counter *out, size_t max)
{
	size_t n = 0;

	for (int s = 0; s < ANN_MAX && n < max; s++)
		out[n++] = (struct ctl_counter){
			ann_status_name((enum ann_status)s),
			as->ctx.stats.status[s] };
	if (n + 5 <= max) {
		out[n++] = (struct ctl_counter){ "announced",
						 as->ctx.stats.announced };
		out[n++] = (struct ctl_counter){ "withdrawn",
						 as->ctx.stats.withdrawn };
		out[n++] = (struct ctl_counter){ "replies", as->replies };
		out[n++] = (struct ctl_counter){ "reply_errors",
						 as->reply_errors };
		out[n++] = (struct ctl_counter){ "recv_errors",
						 as->recv_errors };
	}
	return n;
}
