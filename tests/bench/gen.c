/*
 * tests/bench/gen.c: the network benchmark's traffic generator (issue 6).
 *
 * Sends ESP packets (IPv4 protocol 50, one SPI, ESP sequence numbers
 * counting up) out of an interface through an AF_PACKET socket with
 * sendmmsg(2), paced to an offered rate for a duration, and reports what it
 * offered. The frames are built once; per batch only the sequence numbers
 * and the send time in the payload marker (netbench.h) change. The IP
 * header never changes, so its checksum is computed once.
 *
 * Pacing: batch k is due at start + k * batch / rate; the generator sleeps
 * (clock_nanosleep, timer slack 1 ns) until a batch is due and sends it. It
 * never spins: on a core it shares with the daemon, spinning would steal
 * the daemon's time. A batch that is late goes at once, so a generator that
 * cannot keep up offers less than asked, and says so (rate= is what it
 * achieved, target= what it was asked). --rate 0: as fast as it can.
 *
 * --txstamp FILE: software transmit timestamps (SO_TIMESTAMPING), taken by
 * the LAN-side veth's transmit routine as the packet enters the router's
 * namespace, read back from the error queue after each batch and written
 * to FILE as one little-endian u64 (CLOCK_REALTIME ns, 0 = none) per
 * sequence number. With them a packet's one-way latency does not include
 * its wait behind the packets before it in the same batch, as the marker's
 * user-space time (one per batch) would.
 *
 * Output: one line of key=value on stdout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <getopt.h>
#include <time.h>
#include <linux/errqueue.h>
#include <linux/if_packet.h>
#include <linux/net_tstamp.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "netbench.h"

#define MAX_BATCH 256
#define ERRQ_BATCH 64

struct gen {
	int fd;
	int ifindex;
	uint8_t smac[6], dmac[6];
	uint32_t saddr, daddr, spi, run;        /* network order: addresses, spi */
	int size;                               /* ESP payload bytes */
	double rate, duration;
	int batch;
	int cpu;
	const char *txstamp;
	/* frames and messages */
	uint8_t frames[MAX_BATCH][NB_ETH_LEN + NB_IP_LEN + NB_ESP_LEN + NB_MAX_PAYLOAD];
	struct iovec iov[MAX_BATCH];
	struct mmsghdr msgs[MAX_BATCH];
	struct sockaddr_ll to;
	/* transmit timestamps, indexed by sequence number */
	uint64_t *tx;
	size_t tx_cap;
	uint64_t tx_got, tx_lost;
	/* counters */
	uint64_t sent, errors, enobufs;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: gen --dev IF --dmac MAC --src A --dst A [--spi N] [--size N]\n"
"           [--rate PPS] [--duration S] [--batch N] [--cpu N] [--run N]\n"
"           [--txstamp FILE]\n"
"  --size      ESP payload bytes after SPI and sequence number (%d..%d, 64)\n"
"  --rate      packets per second; 0 = as fast as possible (default 0)\n"
"  --duration  seconds (default 2)\n"
"  --batch     packets per sendmmsg call (1..%d, default 32)\n"
"  --cpu       pin to this CPU\n"
"  --run       run number put in every packet (default 1)\n"
"  --txstamp   write software transmit timestamps to FILE\n",
		NB_MIN_PAYLOAD, NB_MAX_PAYLOAD, MAX_BATCH);
}

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* RFC 1071 sum over an even-length header. */
static uint16_t ip_csum(const uint8_t *p, size_t len)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char c;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5], &c) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 0xff)
			return -1;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

/* The batch's frames, built once: addresses, SPI, size; the sequence
 * numbers and times are filled in per batch. */
static void build_frames(struct gen *g)
{
	size_t len = NB_ETH_LEN + NB_IP_LEN + NB_ESP_LEN + (size_t)g->size;

	for (int i = 0; i < g->batch; i++) {
		uint8_t *f = g->frames[i], *ip = f + NB_OFF_IP;
		uint16_t tot = htons((uint16_t)(len - NB_ETH_LEN)), sum;
		uint16_t eth_ip = htons(ETH_P_IP), id = htons(0x1a5e), df = htons(0x4000);

		memset(f, 0, len);
		memcpy(f, g->dmac, 6);
		memcpy(f + 6, g->smac, 6);
		memcpy(f + 12, &eth_ip, 2);
		ip[0] = 0x45;
		memcpy(ip + 2, &tot, 2);
		memcpy(ip + 4, &id, 2);
		memcpy(ip + 6, &df, 2);
		ip[8] = 64;
		ip[9] = 50;                     /* ESP */
		memcpy(ip + 12, &g->saddr, 4);
		memcpy(ip + 16, &g->daddr, 4);
		sum = htons(ip_csum(ip, NB_IP_LEN));
		memcpy(ip + 10, &sum, 2);
		memcpy(f + NB_OFF_SPI, &g->spi, 4);
		g->iov[i].iov_base = f;
		g->iov[i].iov_len = len;
		memset(&g->msgs[i], 0, sizeof(g->msgs[i]));
		g->msgs[i].msg_hdr.msg_name = &g->to;
		g->msgs[i].msg_hdr.msg_namelen = sizeof(g->to);
		g->msgs[i].msg_hdr.msg_iov = &g->iov[i];
		g->msgs[i].msg_hdr.msg_iovlen = 1;
	}
}

/* Sequence numbers seq.. and the send time into the first n frames. */
static void stamp_frames(struct gen *g, uint64_t seq, int n)
{
	struct nb_marker m = { .magic = NB_MAGIC, .run = g->run };

	m.tx_ns = now_ns(CLOCK_REALTIME);
	for (int i = 0; i < n; i++) {
		uint32_t esp_seq = htonl((uint32_t)(seq + (uint64_t)i + 1));

		m.seq = seq + (uint64_t)i;
		memcpy(g->frames[i] + NB_OFF_SPI + 4, &esp_seq, 4);
		memcpy(g->frames[i] + NB_OFF_MARKER, &m, sizeof(m));
	}
}

static int tx_store(struct gen *g, uint64_t seq, uint64_t ns)
{
	if (seq >= g->tx_cap) {
		size_t cap = g->tx_cap ? g->tx_cap : 1u << 16;
		uint64_t *p;

		while (cap <= seq)
			cap *= 2;
		p = realloc(g->tx, cap * sizeof(*p));
		if (!p)
			return -1;
		memset(p + g->tx_cap, 0, (cap - g->tx_cap) * sizeof(*p));
		g->tx = p;
		g->tx_cap = cap;
	}
	g->tx[seq] = ns;
	return 0;
}

/* Reads the transmit timestamps waiting in the error queue (without
 * blocking); returns how many were read. */
static int drain_errqueue(struct gen *g)
{
	static uint8_t data[ERRQ_BATCH][NB_OFF_MARKER + sizeof(struct nb_marker)];
	static char ctl[ERRQ_BATCH][256];
	struct mmsghdr m[ERRQ_BATCH];
	struct iovec iov[ERRQ_BATCH];
	int n, total = 0;

	do {
		for (int i = 0; i < ERRQ_BATCH; i++) {
			iov[i].iov_base = data[i];
			iov[i].iov_len = sizeof(data[i]);
			memset(&m[i], 0, sizeof(m[i]));
			m[i].msg_hdr.msg_iov = &iov[i];
			m[i].msg_hdr.msg_iovlen = 1;
			m[i].msg_hdr.msg_control = ctl[i];
			m[i].msg_hdr.msg_controllen = sizeof(ctl[i]);
		}
		n = recvmmsg(g->fd, m, ERRQ_BATCH, MSG_ERRQUEUE | MSG_DONTWAIT, NULL);
		for (int i = 0; i < n; i++) {
			struct msghdr *h = &m[i].msg_hdr;
			struct nb_marker mk;
			uint64_t ns = 0;

			for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
				if (c->cmsg_level == SOL_SOCKET &&
				    c->cmsg_type == SCM_TIMESTAMPING) {
					struct scm_timestamping ts;

					memcpy(&ts, CMSG_DATA(c), sizeof(ts));
					ns = (uint64_t)ts.ts[0].tv_sec * 1000000000u +
					     (uint64_t)ts.ts[0].tv_nsec;
				}
			}
			if (m[i].msg_len < sizeof(data[i]) || !ns) {
				g->tx_lost++;
				continue;
			}
			memcpy(&mk, data[i] + NB_OFF_MARKER, sizeof(mk));
			if (mk.magic != NB_MAGIC || mk.run != g->run ||
			    tx_store(g, mk.seq, ns) < 0) {
				g->tx_lost++;
				continue;
			}
			g->tx_got++;
		}
		if (n > 0)
			total += n;
	} while (n == ERRQ_BATCH);
	return total;
}

/* Sends the first n frames; a frame the kernel refuses (ENOBUFS: the
 * router's input backlog is full) counts as offered and lost, and the
 * rest of the batch still goes. */
static void send_batch(struct gen *g, int n)
{
	int off = 0;

	while (off < n) {
		int r = sendmmsg(g->fd, g->msgs + off, (unsigned)(n - off), 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS)
				g->enobufs++;
			g->errors++;
			off++;                  /* the failed frame */
			continue;
		}
		g->sent += (uint64_t)r;
		off += r;
	}
}

static int setup_socket(struct gen *g, const char *dev)
{
	struct ifreq ifr;
	struct sockaddr_ll sll;
	int one = 1;

	g->fd = socket(AF_PACKET, SOCK_RAW, 0);   /* protocol 0: never receives */
	if (g->fd < 0) {
		perror("gen: socket(AF_PACKET)");
		return -1;
	}
	g->ifindex = (int)if_nametoindex(dev);
	if (!g->ifindex) {
		fprintf(stderr, "gen: no interface %s\n", dev);
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (ioctl(g->fd, SIOCGIFHWADDR, &ifr) < 0) {
		perror("gen: SIOCGIFHWADDR");
		return -1;
	}
	memcpy(g->smac, ifr.ifr_hwaddr.sa_data, 6);
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = g->ifindex;
	if (bind(g->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		perror("gen: bind");
		return -1;
	}
	/* Straight to the driver: veth has no queue to speak of anyway. */
	if (setsockopt(g->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
		perror("gen: PACKET_QDISC_BYPASS (going on without)");
	memset(&g->to, 0, sizeof(g->to));
	g->to.sll_family = AF_PACKET;
	g->to.sll_protocol = htons(ETH_P_IP);
	g->to.sll_ifindex = g->ifindex;
	g->to.sll_halen = 6;
	memcpy(g->to.sll_addr, g->dmac, 6);
	if (g->txstamp) {
		int flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
		int buf = 64 << 20;

		if (setsockopt(g->fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags)) < 0) {
			perror("gen: SO_TIMESTAMPING");
			return -1;
		}
		/* the error queue is charged to the receive buffer */
		if (setsockopt(g->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
			setsockopt(g->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	}
	return 0;
}

static int write_txstamps(struct gen *g)
{
	FILE *f = fopen(g->txstamp, "wb");
	size_t n = g->sent + g->errors;

	if (!f) {
		perror(g->txstamp);
		return -1;
	}
	if (n > g->tx_cap && tx_store(g, n - 1, 0) < 0) {
		fclose(f);
		return -1;
	}
	if (fwrite(g->tx, sizeof(*g->tx), n, f) != n || fclose(f) != 0) {
		perror(g->txstamp);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct gen g;
	static const struct option lo[] = {
		{ "dev", required_argument, NULL, 'i' },
		{ "dmac", required_argument, NULL, 'm' },
		{ "src", required_argument, NULL, 's' },
		{ "dst", required_argument, NULL, 'd' },
		{ "spi", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 'l' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 't' },
		{ "batch", required_argument, NULL, 'b' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "run", required_argument, NULL, 'n' },
		{ "txstamp", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dev = NULL;
	struct in_addr a;
	double v;
	int o;
	bool have_dmac = false, have_src = false, have_dst = false;
	uint64_t t0, t_end, seq = 0, batches = 0, late = 0;

	g.spi = htonl(0xbe000001);
	g.size = 64;
	g.duration = 2;
	g.batch = 32;
	g.cpu = -1;
	g.run = 1;
	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (o) {
		case 'i': dev = optarg; break;
		case 'm':
			if (parse_mac(optarg, g.dmac) < 0)
				goto bad;
			have_dmac = true;
			break;
		case 's':
			if (inet_pton(AF_INET, optarg, &a) != 1)
				goto bad;
			g.saddr = a.s_addr;
			have_src = true;
			break;
		case 'd':
			if (inet_pton(AF_INET, optarg, &a) != 1)
				goto bad;
			g.daddr = a.s_addr;
			have_dst = true;
			break;
		case 'p':
			if (nb_parse_num(optarg, 256, 4294967295.0, &v) < 0)
				goto bad;
			g.spi = htonl((uint32_t)v);
			break;
		case 'l':
			if (nb_parse_num(optarg, NB_MIN_PAYLOAD, NB_MAX_PAYLOAD, &v) < 0)
				goto bad;
			g.size = (int)v;
			break;
		case 'r':
			if (nb_parse_num(optarg, 0, 1e8, &g.rate) < 0)
				goto bad;
			break;
		case 't':
			if (nb_parse_num(optarg, 0.01, 3600, &g.duration) < 0)
				goto bad;
			break;
		case 'b':
			if (nb_parse_num(optarg, 1, MAX_BATCH, &v) < 0)
				goto bad;
			g.batch = (int)v;
			break;
		case 'c':
			if (nb_parse_num(optarg, 0, CPU_SETSIZE - 1, &v) < 0)
				goto bad;
			g.cpu = (int)v;
			break;
		case 'n':
			if (nb_parse_num(optarg, 0, 4294967295.0, &v) < 0)
				goto bad;
			g.run = (uint32_t)v;
			break;
		case 'T': g.txstamp = optarg; break;
		case 'h': usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (optind != argc || !dev || !have_dmac || !have_src || !have_dst)
		goto bad;

	if (nb_pin_cpu("gen", g.cpu) < 0)
		return 1;
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (setup_socket(&g, dev) < 0)
		return 1;
	build_frames(&g);

	t0 = now_ns(CLOCK_MONOTONIC);
	t_end = t0 + (uint64_t)(g.duration * 1e9);
	while (!stop) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		int n = g.batch;

		if (g.rate > 0) {
			/* batch k is due at t0 + k * batch / rate */
			uint64_t due = t0 + (uint64_t)((double)batches * g.batch / g.rate * 1e9);

			if (due >= t_end || now >= t_end)
				break;
			if (due > now) {
				struct timespec ts = {
					.tv_sec = (time_t)(due / 1000000000u),
					.tv_nsec = (long)(due % 1000000000u),
				};

				if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL))
					continue;       /* EINTR: look at stop */
			} else if (now - due > 1000000) {
				late++;                 /* over 1 ms behind */
			}
		} else if (now >= t_end) {
			break;
		}
		stamp_frames(&g, seq, n);
		send_batch(&g, n);
		seq += (uint64_t)n;
		batches++;
		if (g.txstamp)
			drain_errqueue(&g);
	}
	{
		uint64_t el = now_ns(CLOCK_MONOTONIC) - t0;
		double secs = (double)el / 1e9, offered = (double)(g.sent + g.errors);

		/* paced: the schedule's length (the last batch went one interval
		 * before its end); a generator that fell behind stopped at the
		 * end all the same, with fewer packets */
		if (g.rate > 0 && !stop && secs < g.duration)
			secs = g.duration;

		if (g.txstamp) {
			/* the last stamps: wait for the error queue to go quiet */
			for (int quiet = 0; quiet < 3;) {
				struct pollfd p = { .fd = g.fd, .events = 0 };

				if (poll(&p, 1, 20) > 0 && drain_errqueue(&g) > 0)
					quiet = 0;
				else
					quiet++;
			}
			if (write_txstamps(&g) < 0)
				return 1;
		}
		printf("offered=%.0f sent=%llu send_errors=%llu enobufs=%llu "
		       "seconds=%.3f rate=%.0f target=%.0f batch=%d size=%d "
		       "batches=%llu late_batches=%llu txstamps=%llu txstamps_lost=%llu\n",
		       offered, (unsigned long long)g.sent,
		       (unsigned long long)g.errors, (unsigned long long)g.enobufs,
		       secs, offered / secs, g.rate, g.batch, g.size,
		       (unsigned long long)batches, (unsigned long long)late,
		       (unsigned long long)g.tx_got, (unsigned long long)g.tx_lost);
	}
	return 0;
bad:
	usage(stderr);
	return 2;
}
