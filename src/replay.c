/*
 * ipsec-masqd-replay: feeds packets through the engine alone and prints
 * every decision. Without arguments it plays the built-in story of two LAN
 * hosts and one remote gateway (the first demo); with -r it replays a pcap
 * capture (raw IPv4, Ethernet or Linux cooked), inferring the direction
 * from the addresses; -n repeats a capture to time the engine.
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "pcap_reader.h"
#include "scenario.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ipsec-masqd-replay [-q]\n"
		"       ipsec-masqd-replay -r FILE.pcap -e EXTERNAL -i PREFIX [-i PREFIX]... [-P] [-q] [-n REPEAT]\n"
		"       ipsec-masqd-replay -h|--help | -V|--version\n"
		"Feeds packets through the ipsec-masqd engine alone (no I/O) and prints\n"
		"every decision (see ipsec-masqd-replay(1)).\n"
		"  without -r: play the built-in two-hosts-one-remote scenario\n"
		"  -r FILE     replay a pcap capture (IPv4 raw, Ethernet, Linux SLL/SLL2)\n"
		"  -e ADDR     the router's external address\n"
		"  -i PREFIX   an internal (masqueraded) prefix, CIDR\n"
		"  -P          parallel sessions on\n"
		"  -q          print only the summary\n"
		"  -n REPEAT   replay the capture REPEAT times (timing; implies -q)\n"
		"  -V, --version  print the version\n"
		"  -h, --help     this help\n"
		"Exit status: 0 success; 1 the built-in story's outcomes differ from\n"
		"the rules' prediction, or the capture cannot be read; 2 usage error.\n");
}

static int parse_prefix(const char *text, struct prefix4 *p)
{
	char buf[32], *slash;
	struct in_addr in;
	long bits = 32;

	if (strlen(text) >= sizeof(buf))
		return -1;
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash) {
		char *end;

		*slash = '\0';
		errno = 0;
		bits = strtol(slash + 1, &end, 10);
		if (errno || *end || end == slash + 1 || bits < 0 || bits > 32)
			return -1;
	}
	if (inet_pton(AF_INET, buf, &in) != 1)
		return -1;
	p->mask = bits ? 0xffffffffu << (32 - bits) : 0;
	p->addr = ntohl(in.s_addr) & p->mask;
	return 0;
}

static int play_builtin(int quiet)
{
	const struct scenario_step *steps;
	size_t n = scenario_builtin(&steps), wrong;
	struct engine_config cfg;
	struct engine *eng;

	scenario_builtin_config(&cfg);
	eng = engine_new(&cfg, 1, 0, quiet ? NULL : scenario_print_event,
			 stdout);
	if (!eng) {
		perror("ipsec-masqd-replay: engine");
		return 1;
	}
	if (!quiet)
		printf("IPsec masquerade, replayed through the ipsec-masqd engine.\n"
		       "LAN hosts A=192.168.1.10 and B=192.168.1.11 behind 198.51.100.1;"
		       " remote gateway R=203.0.113.20.\n");
	wrong = scenario_run(eng, steps, n, quiet ? NULL : stdout);
	printf("\n%zu steps, %zu outcomes differ from the rules' prediction\n",
	       n, wrong);
	engine_free(eng);
	return wrong ? 1 : 0;
}

struct replay_opts {
	const char *file;
	struct engine_config cfg;
	int quiet;
	long repeat;
};

static void print_summary(const struct engine *eng)
{
	const struct engine_stats *st = engine_get_stats(eng);

	printf("packets: %llu out, %llu in; accepted %llu, rewritten %llu, "
	       "dropped %llu; copies %llu\n",
	       (unsigned long long)st->packets[DIR_OUTBOUND],
	       (unsigned long long)st->packets[DIR_INBOUND],
	       (unsigned long long)st->verdicts[VERDICT_ACCEPT],
	       (unsigned long long)st->verdicts[VERDICT_ACCEPT_MODIFIED],
	       (unsigned long long)st->verdicts[VERDICT_DROP],
	       (unsigned long long)st->copies);
	for (int r = 0; r < R_MAX; r++)
		if (st->reasons[r] && r != R_PASS)
			printf("  %-22s %llu\n", reason_name(r),
			       (unsigned long long)st->reasons[r]);
}

static int replay_pcap(struct replay_opts *o)
{
	struct pcap_capture cap;
	struct engine *eng;
	char err[256];
	struct timespec t0, t1;
	uint64_t n = 0;

	if (pcap_load(o->file, &cap, err, sizeof(err))) {
		fprintf(stderr, "ipsec-masqd-replay: %s\n", err);
		return 1;
	}
	eng = engine_new(&o->cfg, 1, 0, o->quiet ? NULL : scenario_print_event,
			 stdout);
	if (!eng) {
		perror("ipsec-masqd-replay: engine");
		pcap_free(&cap);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long rep = 0; rep < o->repeat; rep++)
		n += pcap_replay(&cap, eng, rep, o->quiet ? NULL : stdout);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_summary(eng);
	if (o->repeat > 1 && n)
		printf("%llu packets, %.1f ns per packet (wall clock, this run)\n",
		       (unsigned long long)n,
		       ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
			(double)(t1.tv_nsec - t0.tv_nsec)) / (double)n);
	engine_free(eng);
	pcap_free(&cap);
	return 0;
}

int main(int argc, char **argv)
{
	struct replay_opts o = { .repeat = 1 };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct in_addr ext;
	int c;

	engine_config_defaults(&o.cfg);
	while ((c = getopt_long(argc, argv, "r:e:i:Pqn:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o.file = optarg;
			break;
		case 'e':
			if (inet_pton(AF_INET, optarg, &ext) != 1) {
				fprintf(stderr, "ipsec-masqd-replay: bad address %s\n", optarg);
				return 2;
			}
			o.cfg.external_addr = ntohl(ext.s_addr);
			break;
		case 'i':
			if (o.cfg.n_internal == ENGINE_MAX_PREFIXES ||
			    parse_prefix(optarg, &o.cfg.internal[o.cfg.n_internal])) {
				fprintf(stderr, "ipsec-masqd-replay: bad prefix %s\n", optarg);
				return 2;
			}
			o.cfg.n_internal++;
			break;
		case 'P':
			o.cfg.parallel_sessions = true;
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 'n': {
			char *end;

			errno = 0;
			o.repeat = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || o.repeat < 1) {
				fprintf(stderr, "ipsec-masqd-replay: bad repeat %s\n", optarg);
				return 2;
			}
			o.quiet = 1;
			break;
		}
		case 'V':
			printf("ipsec-masqd-replay %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!o.file)
		return play_builtin(o.quiet);
	if (!o.cfg.external_addr || !o.cfg.n_internal) {
		fprintf(stderr, "ipsec-masqd-replay: -r needs -e and -i\n");
		return 2;
	}
	return replay_pcap(&o);
}
