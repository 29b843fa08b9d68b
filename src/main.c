/*
 * ipsec-masqd: command line. -t checks the config, -P prints it for the
 * firewall helper, otherwise the daemon runs in the foreground (it never
 * forks: the service manager supervises it).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon.h"
#include "log.h"
#include "privilege.h"
#include "rawsock.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "(unknown version)"
#endif

#define EXIT_USAGE 2     /* bad command line, as getopt tools do */
#define EXIT_CONFIG 78   /* EX_CONFIG: systemd's RestartPreventExitStatus */

enum mode { MODE_RUN, MODE_TEST, MODE_PRINT };

struct options {
	const char *path;
	const char *user;        /* -u: over the file's user key; NULL: none */
	enum mode mode;
	bool debug;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ipsec-masqd [-c FILE] [-u USER] [-t] [-P] [-v]\n"
		"       ipsec-masqd -h|--help | -V|--version\n"
		"IPsec (ESP, IKE on UDP/500) masquerade daemon over NFQUEUE; runs in\n"
		"the foreground (see ipsec-masqd(8)).\n"
		"  -c FILE  config file (default %s)\n"
		"  -u USER  started as root, run as USER once set up (over the\n"
		"           file's user key; default ipsec-masqd if it exists;\n"
		"           -u root stays root)\n"
		"  -t       check the config file and exit\n"
		"  -P       print the config as shell variables for the "
		"firewall helper\n"
		"  -v       debug logging\n"
		"  -V, --version  print the version\n"
		"  -h, --help     this help\n"
		"Exit status: 0 normal exit; 1 run-time failure, or -t/-P found an\n"
		"error; 2 usage error; 78 bad config at start.\n",
		SYSCONFDIR "/ipsec-masqd.conf");
}

/* Parses argv into *o; exits for -V, -h and bad usage. */
static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->path = SYSCONFDIR "/ipsec-masqd.conf";
	o->user = NULL;
	o->mode = MODE_RUN;
	o->debug = false;
	while ((c = getopt_long(argc, argv, "c:u:tPvVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->path = optarg; break;
		case 'u': o->user = optarg; break;
		case 't': o->mode = MODE_TEST; break;
		case 'P': o->mode = MODE_PRINT; break;
		case 'v': o->debug = true; break;
		case 'V': printf("ipsec-masqd %s\n", PACKAGE_VERSION); exit(0);
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(EXIT_USAGE);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(EXIT_USAGE);
	}
}

/* Prints NAME='value' with value safe for sh (single quotes; an embedded
 * ' becomes '\''). */
static void print_shell_var(const char *name, const char *value)
{
	printf("%s='", name);
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*p);
	}
	fputs("'\n", stdout);
}

/* -P: the values the firewall helper fills into the rules. Returns the
 * exit status. */
static int print_config(const struct masqd_config *cfg)
{
	char addr[INET_ADDRSTRLEN] = "", internal[ENGINE_MAX_PREFIXES * 20];
	struct in_addr in = { .s_addr = htonl(cfg->engine.external_addr) };

	if (masqd_format_internal(cfg, internal, sizeof(internal)) < 0) {
		fprintf(stderr, "%s: internal prefixes do not fit\n",
			cfg->path);
		return 1;
	}
	if (cfg->ext_interface[0] == '\0')
		inet_ntop(AF_INET, &in, addr, sizeof(addr));
	printf("QUEUE=%u\n", cfg->queue);
	print_shell_var("EXT_INTERFACE", cfg->ext_interface);
	print_shell_var("EXT_ADDRESS", addr);
	print_shell_var("INTERNAL", internal);
	printf("MARK=0x%x\n", RAWSOCK_MARK);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* -u over the file's user key. Returns 0, or -1 (told on stderr) when
 * USER is not a user name or number or too long. */
static int apply_user_option(const struct options *o,
			     struct masqd_config *cfg)
{
	size_t n;

	if (o->user == NULL)
		return 0;
	n = strlen(o->user);
	if (n == 0 || n >= sizeof(cfg->user) || o->user[0] == '-' ||
	    strspn(o->user, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789_.-$") != n) {
		fprintf(stderr, "ipsec-masqd: -u %s: not a user name or "
			"number\n", o->user);
		return -1;
	}
	memcpy(cfg->user, o->user, n + 1);
	cfg->user_source = CONFIG_CMDLINE;
	return 0;
}

/* A user asked for (user key, -u) must exist, whoever runs -t. */
static int check_user(const struct masqd_config *cfg)
{
	struct priv_user u;

	if (cfg->user_source == CONFIG_DEFAULT ||
	    privilege_choose_user(cfg->user, true, 0, &u) != PRIV_USER_ERROR)
		return 0;
	fprintf(stderr, "%s: %s \"%s\": no such user\n", cfg->path,
		cfg->user_source == CONFIG_CMDLINE ? "-u" : "user =",
		cfg->user);
	return -1;
}

/* -t and -P: load, report, exit status 0 or 1. */
static int check_config(const struct options *o, struct masqd_config *cfg)
{
	char err[1024];

	if (config_load(o->path, cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (apply_user_option(o, cfg) < 0)
		return 1;
	if (o->mode == MODE_PRINT)
		return print_config(cfg);
	/* what can be told without binding: control.owner/group (a running
	 * daemon's reload does not apply them, a restart does) */
	if (masqd_check_control_ids(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", o->path, err);
		return 1;
	}
	if (check_user(cfg) < 0)
		return 1;
	printf("%s: OK\n", o->path);
	return 0;
}

/* The daemon: config, start-up, loop. Returns the exit status. */
static int run(const struct options *o, struct masqd_config *cfg)
{
	struct masqd d;
	char err[1024];
	int status;

	log_init("ipsec-masqd", o->debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
		 LOG_BACKEND_AUTO);
	if (config_load(o->path, cfg, err, sizeof(err)) < 0) {
		const struct log_kv file = { "CONFIG_FILE", o->path };

		log_msg_id(LOG_LEVEL_ERROR, LOG_ID_CONFIG_INVALID, &file, 1,
			   "config file %s has errors: %s", o->path, err);
		free(cfg);
		return EXIT_CONFIG;
	}
	if (apply_user_option(o, cfg) < 0) {
		free(cfg);
		return EXIT_USAGE;
	}
	if (!o->debug)
		log_set_level(cfg->log_level);
	if (masqd_init(&d, cfg, o->debug) < 0) {
		const struct log_kv file = { "CONFIG_FILE", o->path };

		log_msg_id(LOG_LEVEL_ERROR, LOG_ID_START_FAILED, &file, 1,
			   "start-up failed, exiting");
		status = d.config_error ? EXIT_CONFIG : 1;
		masqd_fini(&d);
		return status;
	}
	status = masqd_run(&d);
	masqd_fini(&d);
	return status;
}

int main(int argc, char **argv)
{
	struct options o;
	struct masqd_config *cfg;
	int status;

	parse_args(argc, argv, &o);
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL) {
		perror("ipsec-masqd");
		return 1;
	}
	if (o.mode == MODE_RUN)
		return run(&o, cfg);   /* cfg passes to the daemon */
	status = check_config(&o, cfg);
	free(cfg);
	return status;
}
