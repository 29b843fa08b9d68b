/*
 * tests/bench/sink.c: the network benchmark's counter at the far end
 * (issue 6).
 *
 * Reads the generator's ESP packets (netbench.h) off an interface through a
 * TPACKET_V3 ring on an AF_PACKET socket: a classic BPF filter keeps only
 * ESP with our SPI and copies only the first 128 bytes of each, so the
 * kernel does little per packet on the receiving core and no system call
 * is made per packet. Counts the packets of this run (by the marker's run
 * number), the distinct sequence numbers among them (duplicates and
 * foreign packets apart) and, with --latency, the one-way latency of each:
 * the ring's kernel receive time (CLOCK_REALTIME, taken as the packet
 * enters this namespace) minus its send time, which is the generator's
 * transmit timestamp from --txstamp FILE when given (gen.c), else the
 * marker's user-space send time.
 *
 * Runs until SIGINT or SIGTERM, then empties the ring and prints one line
 * of key=value on stdout. --ready FILE is created once the ring is bound.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <getopt.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "netbench.h"

#define BLOCK_SIZE      (1u << 20)
#define BLOCK_NR        32u
#define FRAME_SIZE      2048u
#define SNAPLEN         128u
#define RETIRE_MS       10u

struct sink {
	int fd;
	uint8_t *ring;
	unsigned next_block;
	uint32_t spi, run;                      /* spi in network order */
	bool latency;
	uint64_t lat_skip;                      /* first sequence numbers left out */
	/* per sequence number: seen bit, receive time, marker's send time */
	uint8_t *seen;
	uint64_t *rx_ns, *utx_ns;
	size_t cap;                             /* sequence numbers */
	uint64_t received, unique, dup, foreign, oom, seq_max, ooo, last_seq;
	bool any;
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
"usage: sink --dev IF [--spi N] [--run N] [--cpu N] [--latency]\n"
"            [--lat-skip N] [--txstamp FILE] [--ready FILE] [--dump FILE]\n"
"  --latency   record per-packet latency (receive minus send time)\n"
"  --lat-skip  leave the first N sequence numbers out of the latency\n"
"  --txstamp   the generator's transmit timestamps (gen --txstamp)\n"
"  --dump      write \"seq send_ns latency_ns\" per packet to FILE\n");
}

/* Makes room for sequence number seq; -1 when out of memory. */
static int grow(struct sink *s, uint64_t seq)
{
	size_t cap = s->cap ? s->cap : 1u << 18;
	uint8_t *seen;

	if (seq < s->cap)
		return 0;
	if (seq > (1ull << 32))
		return -1;              /* not ours: no run sends that many */
	while (cap <= seq)
		cap *= 2;
	seen = realloc(s->seen, cap / 8);
	if (!seen)
		return -1;
	memset(seen + s->cap / 8, 0, (cap - s->cap) / 8);
	s->seen = seen;
	if (s->latency) {
		uint64_t *rx = realloc(s->rx_ns, cap * sizeof(*rx));

		if (!rx)
			return -1;
		s->rx_ns = rx;
		rx = realloc(s->utx_ns, cap * sizeof(*rx));
		if (!rx)
			return -1;
		s->utx_ns = rx;
		memset(s->rx_ns + s->cap, 0, (cap - s->cap) * sizeof(*rx));
		memset(s->utx_ns + s->cap, 0, (cap - s->cap) * sizeof(*rx));
	}
	s->cap = cap;
	return 0;
}

static void count(struct sink *s, const uint8_t *frame, uint32_t len,
		  uint64_t rx_ns)
{
	struct nb_marker m;

	s->received++;
	if (len < NB_OFF_MARKER + sizeof(m)) {
		s->foreign++;
		return;
	}
	memcpy(&m, frame + NB_OFF_MARKER, sizeof(m));
	if (m.magic != NB_MAGIC || m.run != s->run ||
	    memcmp(frame + NB_OFF_SPI, &s->spi, 4) != 0) {
		s->foreign++;
		return;
	}
	if (grow(s, m.seq) < 0) {
		s->oom++;
		return;
	}
	if (s->seen[m.seq / 8] & (1u << (m.seq % 8))) {
		s->dup++;
		return;
	}
	s->seen[m.seq / 8] |= (uint8_t)(1u << (m.seq % 8));
	s->unique++;
	if (s->any && m.seq < s->last_seq)
		s->ooo++;
	s->last_seq = m.seq;
	if (!s->any || m.seq > s->seq_max)
		s->seq_max = m.seq;
	s->any = true;
	if (s->latency) {
		s->rx_ns[m.seq] = rx_ns;
		s->utx_ns[m.seq] = m.tx_ns;
	}
}

/* Walks the blocks the kernel has handed over, in ring order, and gives
 * them back. Returns the number of blocks read. */
static int walk(struct sink *s)
{
	int blocks = 0;

	for (;;) {
		struct tpacket_block_desc *bd = (struct tpacket_block_desc *)
			(s->ring + (size_t)s->next_block * BLOCK_SIZE);
		struct tpacket3_hdr *h;
		uint32_t n;

		if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) &
		      TP_STATUS_USER))
			break;
		n = bd->hdr.bh1.num_pkts;
		h = (struct tpacket3_hdr *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);
		for (uint32_t i = 0; i < n; i++) {
			count(s, (uint8_t *)h + h->tp_mac, h->tp_snaplen,
			      (uint64_t)h->tp_sec * 1000000000u + h->tp_nsec);
			h = (struct tpacket3_hdr *)((uint8_t *)h + h->tp_next_offset);
		}
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL,
				 __ATOMIC_RELEASE);
		s->next_block = (s->next_block + 1) % BLOCK_NR;
		blocks++;
	}
	return blocks;
}

static int setup(struct sink *s, const char *dev)
{
	/* ether type IPv4, protocol ESP, the SPI after the (variable) IP
	 * header: keep SNAPLEN bytes, else nothing */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 6),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 50, 0, 4),
		BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 14),
		BPF_STMT(BPF_LD | BPF_W | BPF_IND, 14),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohl(s->spi), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SNAPLEN),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
	struct tpacket_req3 req = {
		.tp_block_size = BLOCK_SIZE,
		.tp_block_nr = BLOCK_NR,
		.tp_frame_size = FRAME_SIZE,
		.tp_frame_nr = BLOCK_SIZE / FRAME_SIZE * BLOCK_NR,
		.tp_retire_blk_tov = RETIRE_MS,
	};
	int v = TPACKET_V3;
	struct sockaddr_ll sll;

	/* protocol 0 until the filter is on: nothing queued unfiltered */
	s->fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (s->fd < 0) {
		perror("sink: socket(AF_PACKET)");
		return -1;
	}
	if (setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ||
	    setsockopt(s->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0 ||
	    setsockopt(s->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0) {
		perror("sink: setsockopt");
		return -1;
	}
	s->ring = mmap(NULL, (size_t)BLOCK_SIZE * BLOCK_NR, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_LOCKED, s->fd, 0);
	if (s->ring == MAP_FAILED)
		s->ring = mmap(NULL, (size_t)BLOCK_SIZE * BLOCK_NR,
			       PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	if (s->ring == MAP_FAILED) {
		perror("sink: mmap");
		return -1;
	}
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	/* ETH_P_ALL: a tap, served before the ingress hooks (where the
	 * remote drops what it has counted); an ETH_P_IP socket would come
	 * after them */
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)if_nametoindex(dev);
	if (!sll.sll_ifindex) {
		fprintf(stderr, "sink: no interface %s\n", dev);
		return -1;
	}
	if (bind(s->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		perror("sink: bind");
		return -1;
	}
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[n], in microseconds. */
static double pct(const int64_t *v, size_t n, double p)
{
	size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

/* The latency part of the report line. */
static void report_latency(struct sink *s, const char *txfile, const char *dump)
{
	uint64_t *tx = NULL;
	size_t ntx = 0, n = 0, bad = 0;
	int64_t *lat;
	const char *src = "user";
	double sum = 0;
	FILE *df = NULL;

	if (txfile) {
		FILE *f = fopen(txfile, "rb");
		long sz;

		if (f && fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) > 0 &&
		    fseek(f, 0, SEEK_SET) == 0) {
			ntx = (size_t)sz / sizeof(*tx);
			tx = malloc(ntx * sizeof(*tx));
			if (!tx || fread(tx, sizeof(*tx), ntx, f) != ntx) {
				free(tx);
				tx = NULL;
				ntx = 0;
			}
		}
		if (f)
			fclose(f);
		if (tx)
			src = "txstamp";
		else
			fprintf(stderr, "sink: cannot read %s: user-space send times\n", txfile);
	}
	lat = malloc((s->unique ? s->unique : 1) * sizeof(*lat));
	if (!lat) {
		printf(" lat_n=0\n");
		free(tx);
		return;
	}
	if (dump && !(df = fopen(dump, "w")))
		perror(dump);
	for (uint64_t q = s->lat_skip; s->any && q <= s->seq_max; q++) {
		uint64_t t;

		if (!(s->seen[q / 8] & (1u << (q % 8))))
			continue;
		t = tx ? (q < ntx ? tx[q] : 0) : s->utx_ns[q];
		if (!t) {
			bad++;
			continue;
		}
		lat[n] = (int64_t)(s->rx_ns[q] - t);
		if (df)
			fprintf(df, "%llu %llu %lld\n", (unsigned long long)q,
				(unsigned long long)t, (long long)lat[n]);
		sum += (double)lat[n];
		n++;
	}
	if (df && fclose(df) != 0)
		perror(dump);
	qsort(lat, n, sizeof(*lat), cmp_i64);
	if (n)
		printf(" lat_src=%s lat_n=%zu lat_nostamp=%zu lat_min_us=%.1f lat_p50_us=%.1f"
		       " lat_p99_us=%.1f lat_p999_us=%.1f lat_max_us=%.1f lat_mean_us=%.1f\n",
		       src, n, bad, (double)lat[0] / 1000.0, pct(lat, n, 50),
		       pct(lat, n, 99), pct(lat, n, 99.9), (double)lat[n - 1] / 1000.0,
		       sum / (double)n / 1000.0);
	else
		printf(" lat_src=%s lat_n=0 lat_nostamp=%zu\n", src, bad);
	free(lat);
	free(tx);
}

int main(int argc, char **argv)
{
	static struct sink s;
	static const struct option lo[] = {
		{ "dev", required_argument, NULL, 'i' },
		{ "spi", required_argument, NULL, 'p' },
		{ "run", required_argument, NULL, 'n' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "latency", no_argument, NULL, 'L' },
		{ "lat-skip", required_argument, NULL, 'k' },
		{ "txstamp", required_argument, NULL, 'T' },
		{ "ready", required_argument, NULL, 'R' },
		{ "dump", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dev = NULL, *txfile = NULL, *ready = NULL, *dump = NULL;
	struct tpacket_stats_v3 st;
	socklen_t sl = sizeof(st);
	int o, cpu = -1;
	double v;

	s.spi = htonl(0xbe000001);
	s.run = 1;
	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (o) {
		case 'i': dev = optarg; break;
		case 'p':
			if (nb_parse_num(optarg, 256, 4294967295.0, &v) < 0)
				goto bad;
			s.spi = htonl((uint32_t)v);
			break;
		case 'n':
			if (nb_parse_num(optarg, 0, 4294967295.0, &v) < 0)
				goto bad;
			s.run = (uint32_t)v;
			break;
		case 'c':
			if (nb_parse_num(optarg, 0, CPU_SETSIZE - 1, &v) < 0)
				goto bad;
			cpu = (int)v;
			break;
		case 'L': s.latency = true; break;
		case 'k':
			if (nb_parse_num(optarg, 0, 1e12, &v) < 0)
				goto bad;
			s.lat_skip = (uint64_t)v;
			break;
		case 'T': txfile = optarg; break;
		case 'R': ready = optarg; break;
		case 'D': dump = optarg; break;
		case 'h': usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (optind != argc || !dev)
		goto bad;
	if (nb_pin_cpu("sink", cpu) < 0)
		return 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (setup(&s, dev) < 0 || grow(&s, 0) < 0)
		return 1;
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (!f || fputs("ready\n", f) < 0 || fclose(f) != 0) {
			perror(ready);
			return 1;
		}
	}
	while (!stop) {
		struct pollfd p = { .fd = s.fd, .events = POLLIN | POLLRDNORM };

		if (walk(&s) == 0)
			poll(&p, 1, 50);
	}
	/* a block still being filled is handed over after RETIRE_MS */
	for (int i = 0; i < 3; i++) {
		struct pollfd p = { .fd = s.fd, .events = POLLIN | POLLRDNORM };

		poll(&p, 1, (int)RETIRE_MS * 2);
		walk(&s);
	}
	memset(&st, 0, sizeof(st));
	getsockopt(s.fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl);
	printf("received=%llu unique=%llu dup=%llu foreign=%llu seq_max=%lld "
	       "out_of_order=%llu ring_drops=%u oom=%llu",
	       (unsigned long long)s.received, (unsigned long long)s.unique,
	       (unsigned long long)s.dup, (unsigned long long)s.foreign,
	       s.any ? (long long)s.seq_max : -1LL, (unsigned long long)s.ooo,
	       st.tp_drops, (unsigned long long)s.oom);
	if (s.latency)
		report_latency(&s, txfile, dump);
	else
		printf("\n");
	return 0;
bad:
	usage(stderr);
	return 2;
}
