/*
 * The config file: libconfig syntax, read whole into memory, parsed,
 * walked key by key against the known schema and validated into a struct
 * masqd_config. Every error is "FILE:LINE: what is wrong" naming the key
 * path; the first error stops the load.
 *
 * libconfig 1.5 silently truncates integer literals to 32 bits (and 64-bit
 * "L" literals to 64), so after a clean parse the text is scanned once more
 * for integer literals that do not fit: without that, queue = 4294967296
 * would load as queue 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>

#include "conffile.h"
#include "nfq.h"

#define CONF_MAX_BYTES (1024 * 1024)          /* a config is small */
#define DURATION_MIN_MS 1ULL                  /* 0.001 s */
#define DURATION_MAX_MS (7ULL * 86400 * 1000) /* 7 days */
#define QUEUE_MAX 65535
#define INIT_RETRIES_MAX 100
#define GUESS_RATE_MAX 10000
#define GUESS_BURST_MAX 10000
#define ANSWER_ALLOWANCE_MAX 1024
#define MAX_ENTRIES_MAX (4U * 1024 * 1024)
#define IO_RCVBUF_MIN (64U * 1024)
#define IO_RCVBUF_MAX (1024U * 1024 * 1024)
#define IO_QMAXLEN_MIN 16
#define IO_QMAXLEN_MAX (1024U * 1024)
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"   /* the build may pass $(runstatedir) */
#endif
#define DEFAULT_CONTROL_SOCKET RUNSTATEDIR "/ipsec-masqd/control"

/* One load: where errors go and what is being filled. */
struct load {
	const char *path;
	char *err;
	size_t errlen;
	struct masqd_config *cfg;
};

/* The keys each group accepts; NULL-terminated. */
static const char *const keys_root[] = {
	"queue", "external", "internal", "esp", "isakmp", "control", "state",
	"limits", "log", "preload", "io", "fastpath", "announce", "user",
	NULL
};
static const char *const keys_announce[] = {
	"listen", "port", "key_file", "max_skew", "rate", "burst",
	"max_entries", NULL
};
static const char *const keys_fastpath[] = {
	"enable", "poll", "admit_rate", "admit_burst", NULL
};
static const char *const keys_external[] = { "interface", "address", NULL };
static const char *const keys_esp[] = {
	"lifetime", "init_timeout", "init_min_age", "init_retries", "squelch",
	"parallel_sessions", "guess_copies", "guess_rate", "guess_burst", NULL
};
static const char *const keys_isakmp[] = {
	"lifetime", "fallback_copies", "fallback_rate", "fallback_burst",
	"answer_allowance", NULL
};
static const char *const keys_control[] = {
	"socket", "mode", "owner", "group", NULL
};
static const char *const keys_state[] = { "file", "interval", NULL };
static const char *const keys_limits[] = {
	"max_entries", "max_per_host", NULL
};
static const char *const keys_log[] = { "level", NULL };
static const char *const keys_io[] = {
	"batch", "receive_buffer", "verdict_buffer", "queue_maxlen", "cpu",
	NULL
};
static const char *const keys_preload[] = {
	"remote", "host", "spi_in", "spi_out", NULL
};

/* What an empty file would mean (header): the engine's defaults plus the
 * shell's. Returns nothing; *cfg is fully overwritten. */
void config_defaults(struct masqd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->queue = 0;
	cfg->io.batch = NFQUEUE_BATCH;
	cfg->io.receive_buffer = NFQUEUE_RCVBUF;
	cfg->io.verdict_buffer = NFQUEUE_TXBUF;
	cfg->io.queue_maxlen = NFQUEUE_MAXLEN;
	cfg->io.cpu = -1;
	cfg->fastpath.enable = FASTPATH_DEFAULT_ON;
	cfg->fastpath.poll_ms = 1000;
	engine_config_defaults(&cfg->engine);
	snprintf(cfg->control_socket, sizeof(cfg->control_socket), "%s",
		 DEFAULT_CONTROL_SOCKET);
	cfg->control_mode = 0660;
	snprintf(cfg->user, sizeof(cfg->user), "%s", CONFIG_DEFAULT_USER);
	cfg->user_source = CONFIG_DEFAULT;
	cfg->state_interval_ms = CONFIG_STATE_INTERVAL_MS;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->announce.port = 4510;
	cfg->announce.max_skew_ms = 30000;
	cfg->announce.rate = 10;
	cfg->announce.burst = 20;
	cfg->announce.max_entries = 0;     /* default: announce_max_entries() */
}

/* ---- error reporting ---------------------------------------------------- */

/* Formats "FILE:LINE: msg" (LINE 0: "FILE: msg") into the caller's buffer.
 * Returns -1, so callers can `return fail(...)`. */
__attribute__((format(printf, 4, 0)))
static int vfail_at(struct load *ld, const char *file, unsigned line,
		    const char *fmt, va_list ap)
{
	char msg[768];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (ld->errlen == 0)
		return -1;
	if (line > 0)
		snprintf(ld->err, ld->errlen, "%s:%u: %s", file, line, msg);
	else
		snprintf(ld->err, ld->errlen, "%s: %s", file, msg);
	return -1;
}

/* An error at a given file and line (0 = none). Returns -1. */
__attribute__((format(printf, 4, 5)))
static int fail_at(struct load *ld, const char *file, unsigned line,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(ld, file, line, fmt, ap);
	va_end(ap);
	return -1;
}

/* An error at setting s (its file and line; the top file when s is NULL
 * or libconfig knows no file for it). Returns -1. */
__attribute__((format(printf, 3, 4)))
static int fail(struct load *ld, const config_setting_t *s,
		const char *fmt, ...)
{
	const char *file = s ? config_setting_source_file(s) : NULL;
	unsigned line = s ? config_setting_source_line(s) : 0;
	va_list ap;

	va_start(ap, fmt);
	vfail_at(ld, file ? file : ld->path, line, fmt, ap);
	va_end(ap);
	return -1;
}

/* Writes s's key path ("esp.lifetime", "internal[2]", "preload[0].host")
 * into buf. Returns buf. */
static const char *key_path(const config_setting_t *s, char *buf, size_t len)
{
	const config_setting_t *parent = config_setting_parent(s);
	const char *name = config_setting_name(s);
	size_t used;

	buf[0] = '\0';
	if (parent == NULL)
		return buf;
	key_path(parent, buf, len);
	used = strlen(buf);
	if (name != NULL)
		snprintf(buf + used, len - used, "%s%s", used ? "." : "", name);
	else
		snprintf(buf + used, len - used, "[%d]",
			 config_setting_index(s));
	return buf;
}

/* The article and name of a libconfig type, for "must be X, got Y". */
static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_INT: return "an integer";
	case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a float";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	default: return "something else";
	}
}

/* "KEY must be WANT, got TYPE" at s. Returns -1. */
static int fail_type(struct load *ld, const config_setting_t *s,
		     const char *want)
{
	char p[256];

	return fail(ld, s, "%s must be %s, got %s", key_path(s, p, sizeof(p)),
		    want, type_name(config_setting_type(s)));
}

/* ---- reading and scanning the text -------------------------------------- */

/* Reads path whole (NUL-terminated) into *text. Returns its length, or -1
 * with "FILE: cannot read: ..." in the error buffer. */
static long read_text(struct load *ld, char **text)
{
	FILE *f = fopen(ld->path, "r");
	struct stat st;
	size_t n;
	char *buf;

	if (f == NULL)
		return fail_at(ld, ld->path, 0, "cannot read: %s",
			       strerror(errno));
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		return fail_at(ld, ld->path, 0, "cannot read: %s",
			       strerror(EISDIR));
	}
	buf = malloc(CONF_MAX_BYTES + 1);
	if (buf == NULL) {
		fclose(f);
		return fail_at(ld, ld->path, 0, "cannot read: %s",
			       strerror(ENOMEM));
	}
	n = fread(buf, 1, CONF_MAX_BYTES + 1, f);
	if (ferror(f)) {
		int e = errno;

		fclose(f);
		free(buf);
		return fail_at(ld, ld->path, 0, "cannot read: %s",
			       strerror(e));
	}
	fclose(f);
	if (n > CONF_MAX_BYTES) {
		free(buf);
		return fail_at(ld, ld->path, 0, "larger than %d bytes",
			       CONF_MAX_BYTES);
	}
	buf[n] = '\0';
	*text = buf;
	return (long)n;
}

/* Skips a "..." string starting at p (on the quote), counting newlines.
 * Returns the position after the closing quote (or the end). */
static const char *skip_string(const char *p, unsigned *line)
{
	for (p++; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		if (*p == '\n')
			(*line)++;
	}
	return *p == '"' ? p + 1 : p;
}

/* Skips a comment at p when there is one (#, //, slash-star). Returns the
 * position after it, or p itself when p starts no comment. */
static const char *skip_comment(const char *p, unsigned *line)
{
	if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
		while (*p != '\0' && *p != '\n')
			p++;
		return p;
	}
	if (p[0] == '/' && p[1] == '*') {
		for (p += 2; *p != '\0' && !(p[0] == '*' && p[1] == '/'); p++)
			if (*p == '\n')
				(*line)++;
		return *p != '\0' ? p + 2 : p;
	}
	return p;
}

/* Whether the literal tok[0..len) fits what libconfig stores for it:
 * 32 bits (hex: unsigned) without an L suffix, 64 with one. Floats always
 * fit. Returns true when it fits. */
static bool literal_fits(const char *tok, size_t len)
{
	char digits[64];
	bool neg = tok[0] == '-', hex, wide = false;
	unsigned long long v, max;
	size_t start = (tok[0] == '-' || tok[0] == '+') ? 1 : 0, n = len;

	hex = len > start + 1 && tok[start] == '0' &&
	      (tok[start + 1] == 'x' || tok[start + 1] == 'X');
	if (!hex && strcspn(tok, ".eE") < len)
		return true;                     /* a float */
	while (n > start && (tok[n - 1] == 'L' || tok[n - 1] == 'l')) {
		n--;
		wide = true;
	}
	if (n - start >= sizeof(digits))
		return false;
	memcpy(digits, tok + start, n - start);
	digits[n - start] = '\0';
	errno = 0;
	v = strtoull(digits, NULL, hex ? 16 : 10);
	if (errno == ERANGE)
		return false;
	if (hex)
		max = wide ? ULLONG_MAX : UINT32_MAX;
	else
		max = wide ? (unsigned long long)LLONG_MAX + neg
			   : (unsigned long long)INT32_MAX + neg;
	return v <= max;
}

/* Length of the number token at p: digits, letters (x, L, hex digits,
 * exponent), dots, and a sign right after an exponent. */
static size_t number_len(const char *p)
{
	size_t n = (*p == '-' || *p == '+') ? 1 : 0;

	for (;; n++) {
		unsigned char c = (unsigned char)p[n];

		if (isalnum(c) || c == '.')
			continue;
		if ((c == '-' || c == '+') && (p[n - 1] == 'e' ||
					       p[n - 1] == 'E'))
			continue;
		return n;
	}
}

/* Checks, before libconfig parses text, every integer literal for a value
 * libconfig would have truncated, and refuses @include (one file holds
 * the whole config, so this scan sees everything; scanned after the parse,
 * libconfig would already have opened and read the included file).
 * Returns 0 or -1. */
static int scan_literals(struct load *ld, const char *text)
{
	unsigned line = 1;
	const char *p = text;

	while (*p != '\0') {
		const char *q = skip_comment(p, &line);
		size_t n;

		if (q != p) {
			p = q;
		} else if (*p == '\n') {
			line++;
			p++;
		} else if (*p == '"') {
			p = skip_string(p, &line);
		} else if (*p == '@') {
			return fail_at(ld, ld->path, line, "@include is not "
				       "supported: keep the config in one file");
		} else if (isalpha((unsigned char)*p) || *p == '*') {
			while (isalnum((unsigned char)*p) || *p == '_' ||
			       *p == '-' || *p == '*')
				p++;             /* a name, true or false */
		} else if (isdigit((unsigned char)*p) || *p == '-' ||
			   *p == '+' || *p == '.') {
			n = number_len(p);
			if (n > 0 && !literal_fits(p, n))
				return fail_at(ld, ld->path, line, "integer "
					       "%.*s is out of range", (int)n,
					       p);
			p += n > 0 ? n : 1;
		} else {
			p++;
		}
	}
	return 0;
}

/* Scans text (scan_literals) and parses it with libconfig into *c.
 * Returns 0, or -1 with the first error (file, line, what is wrong). */
static int parse_text(struct load *ld, config_t *c, const char *text,
		      size_t len)
{
	const char *file;

	if (strlen(text) != len)
		return fail_at(ld, ld->path, 0, "contains a NUL byte");
	if (scan_literals(ld, text) < 0)
		return -1;
	if (config_read_string(c, text) == CONFIG_TRUE)
		return 0;
	file = config_error_file(c);
	return fail_at(ld, file ? file : ld->path,
		       (unsigned)config_error_line(c), "%s",
		       config_error_text(c));
}

/* ---- typed getters ------------------------------------------------------ */

/* Fails on any member of group whose name is not in known. Returns 0/-1. */
static int check_keys(struct load *ld, const config_setting_t *group,
		      const char *const *known)
{
	char p[256];
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group,
								     (unsigned)i);
		const char *name = config_setting_name(s);
		size_t k = 0;

		while (known[k] != NULL && strcmp(known[k], name) != 0)
			k++;
		if (known[k] == NULL)
			return fail(ld, s, "unknown key %s",
				    key_path(s, p, sizeof(p)));
	}
	return 0;
}

/* Looks up group `name` in parent: *out is NULL when absent. Returns 0, or
 * -1 when it is there but not a group or has unknown keys. */
static int get_group(struct load *ld, const config_setting_t *parent,
		     const char *name, const char *const *known,
		     config_setting_t **out)
{
	*out = config_setting_get_member(parent, name);
	if (*out == NULL)
		return 0;
	if (config_setting_type(*out) != CONFIG_TYPE_GROUP)
		return fail_type(ld, *out, "a group { ... }");
	return check_keys(ld, *out, known);
}

/* The integer value of s, which must be an integer (32 or 64 bit) in
 * [min, max]. A hex literal counts as unsigned 32 bit (libconfig stores
 * 0xffffffff as -1). Returns 0 or -1. */
static int int_value(struct load *ld, const config_setting_t *s,
		     long long min, long long max, long long *out)
{
	char p[256];
	long long v = 0;

	if (config_setting_type(s) == CONFIG_TYPE_INT) {
		v = config_setting_get_int(s);
		if (config_setting_get_format(s) == CONFIG_FORMAT_HEX)
			v = (uint32_t)config_setting_get_int(s);
	} else if (config_setting_type(s) == CONFIG_TYPE_INT64) {
		v = config_setting_get_int64(s);
	} else {
		return fail_type(ld, s, "an integer");
	}
	if (v < min || v > max)
		return fail(ld, s, "%s must be between %lld and %lld, got %lld",
			    key_path(s, p, sizeof(p)), min, max, v);
	*out = v;
	return 0;
}

/* Optional unsigned member `name` of group into *out (untouched when the
 * group or the key is absent). Returns 0 or -1. */
static int opt_unsigned(struct load *ld, const config_setting_t *group,
			const char *name, long long min, long long max,
			unsigned *out)
{
	config_setting_t *s = group ? config_setting_get_member(group, name)
				    : NULL;
	long long v = 0;

	if (s == NULL)
		return 0;
	if (int_value(ld, s, min, max, &v) < 0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Optional duration member `name` (seconds, integer or float, whole
 * milliseconds, DURATION_MIN_MS..DURATION_MAX_MS) into *ms. Returns 0/-1. */
static int opt_duration(struct load *ld, const config_setting_t *group,
			const char *name, uint64_t *ms)
{
	config_setting_t *s = group ? config_setting_get_member(group, name)
				    : NULL;
	char p[256];
	double v, m;

	if (s == NULL)
		return 0;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT: v = config_setting_get_int(s); break;
	case CONFIG_TYPE_INT64: v = (double)config_setting_get_int64(s); break;
	case CONFIG_TYPE_FLOAT: v = config_setting_get_float(s); break;
	default: return fail_type(ld, s, "a number of seconds");
	}
	key_path(s, p, sizeof(p));
	m = v * 1000.0;
	if (!(m >= DURATION_MIN_MS - 1e-6 && m <= DURATION_MAX_MS + 1e-6))
		return fail(ld, s, "%s must be between 0.001 and %llu seconds, "
			    "got %.10g", p, DURATION_MAX_MS / 1000, v);
	*ms = (uint64_t)(m + 0.5);   /* in range, so positive: rounds */
	m -= (double)*ms;            /* what rounding dropped, in ms */
	if (m > 1e-6 || m < -1e-6)
		return fail(ld, s, "%s must be a whole number of milliseconds, "
			    "got %.10g", p, v);
	return 0;
}

/* Optional boolean member `name` into *out. Returns 0 or -1. */
static int opt_bool(struct load *ld, const config_setting_t *group,
		    const char *name, bool *out)
{
	config_setting_t *s = group ? config_setting_get_member(group, name)
				    : NULL;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail_type(ld, s, "true or false");
	*out = config_setting_get_bool(s);
	return 0;
}

/* The string value of s into *out. Returns 0 or -1 (not a string). */
static int string_value(struct load *ld, const config_setting_t *s,
			const char **out)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail_type(ld, s, "a string");
	*out = config_setting_get_string(s);
	return 0;
}

/* An absolute path from s copied into buf[len]. Returns 0 or -1. */
static int path_value(struct load *ld, const config_setting_t *s, char *buf,
		      size_t len)
{
	const char *v = NULL;
	char p[256];

	if (string_value(ld, s, &v) < 0)
		return -1;
	key_path(s, p, sizeof(p));
	if (v[0] != '/')
		return fail(ld, s, "%s must be an absolute path, got \"%s\"", p,
			    v);
	if (strlen(v) >= len)
		return fail(ld, s, "%s is longer than %zu characters", p,
			    len - 1);
	memcpy(buf, v, strlen(v) + 1);
	return 0;
}

/* ---- addresses ---------------------------------------------------------- */

/* Strict dotted quad (inet_pton: four decimal parts, no leading zeros)
 * into *addr (host order). Returns 0 or -1. */
static int parse_addr(const char *s, uint32_t *addr)
{
	struct in_addr in;

	if (inet_pton(AF_INET, s, &in) != 1)
		return -1;
	*addr = ntohl(in.s_addr);
	return 0;
}

/* Whether addr can be a unicast peer or external address: not 0/8,
 * 127/8, multicast 224/4 or reserved/broadcast 240/4. */
static bool addr_unicast(uint32_t addr)
{
	return (addr >> 24) != 0 && (addr >> 24) != 127 && (addr >> 28) < 14;
}

/* The mask of a /len prefix (len 0..32). */
static uint32_t mask_of(unsigned len)
{
	return len == 0 ? 0 : 0xffffffffu << (32 - len);
}

/* Formats addr (host order) as a dotted quad into buf[16]. Returns buf. */
static const char *addr_str(uint32_t addr, char *buf)
{
	struct in_addr in = { .s_addr = htonl(addr) };

	inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
	return buf;
}

/* Parses "a.b.c.d/len", len 1..32 in plain decimal. Returns 0, -1 for
 * bad syntax, -2 when host bits are set (*pfx then holds the masked
 * prefix, for the suggestion). */
static int parse_cidr(const char *s, struct prefix4 *pfx)
{
	const char *slash = strchr(s, '/');
	char addr[INET_ADDRSTRLEN];
	unsigned len = 0;
	uint32_t a = 0;
	size_t i;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(addr) ||
	    slash[1] == '\0' || strlen(slash + 1) > 2 ||
	    (slash[1] == '0' && slash[2] != '\0'))
		return -1;
	for (i = 1; slash[i] != '\0'; i++) {
		if (!isdigit((unsigned char)slash[i]))
			return -1;
		len = len * 10 + (unsigned)(slash[i] - '0');
	}
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	if (len < 1 || len > 32 || parse_addr(addr, &a) < 0)
		return -1;
	pfx->mask = mask_of(len);
	pfx->addr = a & pfx->mask;
	return a == pfx->addr ? 0 : -2;
}

/* Whether addr lies inside one of cfg's internal prefixes. */
static bool is_internal(const struct engine_config *ec, uint32_t addr)
{
	for (size_t i = 0; i < ec->n_internal; i++)
		if ((addr & ec->internal[i].mask) == ec->internal[i].addr)
			return true;
	return false;
}

/* An address setting (strict dotted quad) into *addr. Returns 0 or -1. */
static int addr_value(struct load *ld, const config_setting_t *s,
		      uint32_t *addr)
{
	const char *v = NULL;
	char p[256];

	if (string_value(ld, s, &v) < 0)
		return -1;
	if (parse_addr(v, addr) < 0)
		return fail(ld, s, "%s: \"%s\" is not an IPv4 address "
			    "(a.b.c.d)", key_path(s, p, sizeof(p)), v);
	return 0;
}

/* ---- sections ----------------------------------------------------------- */

/* queue: the NFQUEUE number. Returns 0 or -1. */
static int load_queue(struct load *ld, const config_setting_t *root)
{
	return opt_unsigned(ld, root, "queue", 0, QUEUE_MAX, &ld->cfg->queue);
}

/* Whether name is a valid Linux interface name (dev_valid_name). */
static bool ifname_ok(const char *name)
{
	if (name[0] == '\0' || strlen(name) >= IF_NAMESIZE ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (const char *c = name; *c != '\0'; c++)
		if (*c == '/' || *c == ':' || isspace((unsigned char)*c) ||
		    !isprint((unsigned char)*c))
			return false;
	return true;
}

/* external.interface into cfg. Returns 0 or -1. */
static int load_ext_interface(struct load *ld, const config_setting_t *s)
{
	const char *v = NULL;
	char p[256];

	if (string_value(ld, s, &v) < 0)
		return -1;
	if (!ifname_ok(v))
		return fail(ld, s, "%s: \"%s\" is not an interface name (1 to "
			    "%d characters, no '/', ':' or spaces)",
			    key_path(s, p, sizeof(p)), v, IF_NAMESIZE - 1);
	memcpy(ld->cfg->ext_interface, v, strlen(v) + 1);
	ld->cfg->engine.external_addr = 0;
	return 0;
}

/* external.address into cfg. Returns 0 or -1. */
static int load_ext_address(struct load *ld, const config_setting_t *s)
{
	uint32_t a = 0;
	char p[256];

	if (addr_value(ld, s, &a) < 0)
		return -1;
	if (!addr_unicast(a))
		return fail(ld, s, "%s must be a unicast address (not 0/8, "
			    "127/8, 224/4 or 240/4), got %s",
			    key_path(s, p, sizeof(p)),
			    config_setting_get_string(s));
	ld->cfg->engine.external_addr = a;
	return 0;
}

/* external = { interface | address }: required, exactly one. Returns 0/-1. */
static int load_external(struct load *ld, const config_setting_t *root)
{
	config_setting_t *g, *ifn, *addr;

	if (get_group(ld, root, "external", keys_external, &g) < 0)
		return -1;
	if (g == NULL)
		return fail(ld, NULL, "external is required: external = { "
			    "interface = \"wan0\"; } or { address = "
			    "\"198.51.100.1\"; }");
	ifn = config_setting_get_member(g, "interface");
	addr = config_setting_get_member(g, "address");
	if (ifn != NULL && addr != NULL)
		return fail(ld, config_setting_source_line(addr) >=
				config_setting_source_line(ifn) ? addr : ifn,
			    "external: give either interface or address, "
			    "not both");
	if (ifn == NULL && addr == NULL)
		return fail(ld, g, "external needs interface or address");
	return ifn ? load_ext_interface(ld, ifn) : load_ext_address(ld, addr);
}

/* One internal[] element appended to the engine's prefixes, refusing
 * overlaps with the ones before it. Returns 0 or -1. */
static int load_prefix(struct load *ld, const config_setting_t *s)
{
	struct engine_config *ec = &ld->cfg->engine;
	struct prefix4 pfx;
	const char *v = NULL;
	char p[256], a[INET_ADDRSTRLEN];
	int r;

	if (string_value(ld, s, &v) < 0)
		return -1;
	key_path(s, p, sizeof(p));
	r = parse_cidr(v, &pfx);
	if (r == -1)
		return fail(ld, s, "%s: \"%s\" is not a CIDR prefix "
			    "(a.b.c.d/1..32)", p, v);
	if (r == -2)
		return fail(ld, s, "%s: \"%s\" has host bits set (did you mean "
			    "%s/%s?)", p, v, addr_str(pfx.addr, a),
			    strchr(v, '/') + 1);
	for (size_t i = 0; i < ec->n_internal; i++) {
		const struct prefix4 *o = &ec->internal[i];

		if ((pfx.addr & o->mask) == o->addr ||
		    (o->addr & pfx.mask) == pfx.addr)
			return fail(ld, s, "%s: \"%s\" overlaps internal[%zu]",
				    p, v, i);
	}
	ec->internal[ec->n_internal++] = pfx;
	return 0;
}

/* internal = [ "a.b.c.d/n", ... ]: required, 1..ENGINE_MAX_PREFIXES.
 * Returns 0 or -1. */
static int load_internal(struct load *ld, const config_setting_t *root)
{
	config_setting_t *s = config_setting_get_member(root, "internal");
	int n;

	if (s == NULL)
		return fail(ld, NULL, "internal is required: internal = "
			    "[ \"192.168.0.0/16\" ];");
	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST)
		return fail_type(ld, s, "an array of CIDR strings");
	n = config_setting_length(s);
	if (n == 0)
		return fail(ld, s, "internal must list at least one prefix");
	if (n > ENGINE_MAX_PREFIXES)
		return fail(ld, s, "internal has %d prefixes, at most %d are "
			    "allowed", n, ENGINE_MAX_PREFIXES);
	for (int i = 0; i < n; i++)
		if (load_prefix(ld, config_setting_get_elem(s, (unsigned)i)) < 0)
			return -1;
	return 0;
}

/* The external address must not be one of the masqueraded sources.
 * Returns 0 or -1. */
static int check_external(struct load *ld, const config_setting_t *root)
{
	const struct engine_config *ec = &ld->cfg->engine;
	config_setting_t *s;
	char a[INET_ADDRSTRLEN];

	if (ec->external_addr == 0 || !is_internal(ec, ec->external_addr))
		return 0;
	s = config_setting_get_member(config_setting_get_member(root,
				      "external"), "address");
	return fail(ld, s, "external.address %s is inside an internal prefix",
		    addr_str(ec->external_addr, a));
}

/* esp.init_min_age must be below esp.init_timeout. Left out, it is the
 * default (2 s), or half of init_timeout when that is not longer, so that
 * configurations written before the key existed keep working. Returns 0
 * or -1. */
static int check_min_age(struct load *ld, const config_setting_t *g)
{
	struct engine_config *ec = &ld->cfg->engine;
	config_setting_t *s = g ? config_setting_get_member(g, "init_min_age")
				: NULL;
	struct engine_config def;

	if (s == NULL) {
		engine_config_defaults(&def);
		ec->esp_init_min_age_ms = def.esp_init_min_age_ms;
		if (ec->esp_init_min_age_ms >= ec->esp_init_timeout_ms)
			ec->esp_init_min_age_ms = ec->esp_init_timeout_ms / 2;
		return 0;
	}
	if (ec->esp_init_min_age_ms < ec->esp_init_timeout_ms)
		return 0;
	return fail(ld, s, "esp.init_min_age (%.10g s) must be less than "
		    "esp.init_timeout (%.10g s)",
		    (double)ec->esp_init_min_age_ms / 1000,
		    (double)ec->esp_init_timeout_ms / 1000);
}

/* esp = { ... }. Returns 0 or -1. */
static int load_esp(struct load *ld, const config_setting_t *root)
{
	struct engine_config *ec = &ld->cfg->engine;
	config_setting_t *g;

	if (get_group(ld, root, "esp", keys_esp, &g) < 0 ||
	    opt_duration(ld, g, "lifetime", &ec->esp_lifetime_ms) < 0 ||
	    opt_duration(ld, g, "init_timeout", &ec->esp_init_timeout_ms) < 0 ||
	    opt_duration(ld, g, "init_min_age", &ec->esp_init_min_age_ms) < 0 ||
	    opt_unsigned(ld, g, "init_retries", 0, INIT_RETRIES_MAX,
			 &ec->esp_init_retries) < 0 ||
	    opt_duration(ld, g, "squelch", &ec->esp_squelch_ms) < 0 ||
	    opt_bool(ld, g, "parallel_sessions", &ec->parallel_sessions) < 0 ||
	    opt_unsigned(ld, g, "guess_copies", 1, ENGINE_MAX_GUESS,
			 &ec->guess_copies) < 0 ||
	    opt_unsigned(ld, g, "guess_rate", 0, GUESS_RATE_MAX,
			 &ec->guess_rate) < 0 ||
	    opt_unsigned(ld, g, "guess_burst", 0, GUESS_BURST_MAX,
			 &ec->guess_burst) < 0)
		return -1;
	if (ec->esp_init_timeout_ms >= ec->esp_lifetime_ms) {
		config_setting_t *s = g ? config_setting_get_member(g,
							"init_timeout") : NULL;

		if (s == NULL && g != NULL)
			s = config_setting_get_member(g, "lifetime");
		return fail(ld, s, "esp.init_timeout (%.10g s) must be less than "
			    "esp.lifetime (%.10g s)",
			    (double)ec->esp_init_timeout_ms / 1000,
			    (double)ec->esp_lifetime_ms / 1000);
	}
	return check_min_age(ld, g);
}

/* isakmp = { lifetime; fallback_copies; fallback_rate; fallback_burst;
 * answer_allowance }. Returns 0 or -1. */
static int load_isakmp(struct load *ld, const config_setting_t *root)
{
	struct engine_config *ec = &ld->cfg->engine;
	config_setting_t *g;

	if (get_group(ld, root, "isakmp", keys_isakmp, &g) < 0 ||
	    opt_duration(ld, g, "lifetime", &ec->isakmp_lifetime_ms) < 0 ||
	    opt_unsigned(ld, g, "fallback_copies", 1, ENGINE_MAX_GUESS,
			 &ec->isakmp_fallback_copies) < 0 ||
	    opt_unsigned(ld, g, "fallback_rate", 0, GUESS_RATE_MAX,
			 &ec->isakmp_fallback_rate) < 0 ||
	    opt_unsigned(ld, g, "fallback_burst", 0, GUESS_BURST_MAX,
			 &ec->isakmp_fallback_burst) < 0 ||
	    opt_unsigned(ld, g, "answer_allowance", 0, ANSWER_ALLOWANCE_MAX,
			 &ec->isakmp_answer_allowance) < 0)
		return -1;
	return 0;
}

/* control.mode: a string of three or four octal digits, at most "0777"
 * (libconfig has no octal integers). Returns 0 or -1. */
static int control_mode(struct load *ld, const config_setting_t *s)
{
	const char *v = NULL;
	unsigned mode = 0;
	size_t n;

	if (string_value(ld, s, &v) < 0)
		return -1;
	n = strlen(v);
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '7')
			n = 0;
		else
			mode = mode * 8 + (unsigned)(v[i] - '0');
	}
	if (n < 3 || n > 4 || mode > 0777)
		return fail(ld, s, "control.mode must be an octal mode from "
			    "\"000\" to \"0777\" (a string), got \"%s\"", v);
	ld->cfg->control_mode = mode;
	return 0;
}

/* A user or group name (letters, digits, '_', '-', '.', not starting
 * with '-') or a number, for key (named in the error) into buf; resolved
 * when the daemon uses it. Returns 0 or -1. */
static int id_value(struct load *ld, const config_setting_t *s,
		    const char *key, const char *kind, char *buf, size_t len)
{
	const char *v = NULL;
	size_t n;

	if (string_value(ld, s, &v) < 0)
		return -1;
	n = strlen(v);
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		      (ch == '-' && i > 0) || (ch == '$' && i + 1 == n)))
			n = 0;
	}
	if (n == 0 || n >= len)
		return fail(ld, s, "%s must be a %s name or number "
			    "(at most %zu characters), got \"%s\"", key, kind,
			    len - 1, v);
	memcpy(buf, v, n + 1);
	return 0;
}

/* control.owner / control.group (see id_value). Returns 0 or -1. */
static int control_id(struct load *ld, const config_setting_t *g,
		      const char *name, char *buf, size_t len)
{
	config_setting_t *s = config_setting_get_member(g, name);

	if (s == NULL)
		return 0;
	return id_value(ld, s, name[0] == 'o' ? "control.owner" :
			"control.group", name[0] == 'o' ? "user" : "group",
			buf, len);
}

/* user = "NAME": who the daemon runs as when started as root. Returns 0
 * or -1. */
static int load_user(struct load *ld, const config_setting_t *root)
{
	config_setting_t *s = config_setting_get_member(root, "user");

	if (s == NULL)
		return 0;
	if (id_value(ld, s, "user", "user", ld->cfg->user,
		     sizeof(ld->cfg->user)) < 0)
		return -1;
	ld->cfg->user_source = CONFIG_FILE;
	return 0;
}

/* control = { socket; mode; owner; group } and state = { file; interval }. Returns
 * 0 or -1. */
static int load_paths(struct load *ld, const config_setting_t *root)
{
	struct masqd_config *cfg = ld->cfg;
	config_setting_t *g, *s;

	if (get_group(ld, root, "control", keys_control, &g) < 0)
		return -1;
	s = g ? config_setting_get_member(g, "socket") : NULL;
	if (s && path_value(ld, s, cfg->control_socket,
			    sizeof(cfg->control_socket)) < 0)
		return -1;
	s = g ? config_setting_get_member(g, "mode") : NULL;
	if (s && control_mode(ld, s) < 0)
		return -1;
	if (g && (control_id(ld, g, "owner", cfg->control_owner,
			     sizeof(cfg->control_owner)) < 0 ||
		  control_id(ld, g, "group", cfg->control_group,
			     sizeof(cfg->control_group)) < 0))
		return -1;
	if (get_group(ld, root, "state", keys_state, &g) < 0)
		return -1;
	s = g ? config_setting_get_member(g, "file") : NULL;
	if (s && path_value(ld, s, cfg->state_file,
			    sizeof(cfg->state_file)) < 0)
		return -1;
	return opt_duration(ld, g, "interval", &cfg->state_interval_ms);
}

/* A size_t limit member `name` in [min, max] into *out. Returns 0/-1. */
static int opt_size(struct load *ld, const config_setting_t *group,
		    const char *name, long long min, long long max, size_t *out)
{
	unsigned v = (unsigned)*out;

	if (opt_unsigned(ld, group, name, min, max, &v) < 0)
		return -1;
	*out = v;
	return 0;
}

/* limits = { max_entries; max_per_host }. Returns 0 or -1. */
static int load_limits(struct load *ld, const config_setting_t *root)
{
	struct engine_config *ec = &ld->cfg->engine;
	config_setting_t *g, *s;

	if (get_group(ld, root, "limits", keys_limits, &g) < 0 ||
	    opt_size(ld, g, "max_entries", 1, MAX_ENTRIES_MAX,
		     &ec->max_entries) < 0 ||
	    opt_size(ld, g, "max_per_host", 1, MAX_ENTRIES_MAX,
		     &ec->max_per_host) < 0)
		return -1;
	if (ec->max_per_host <= ec->max_entries)
		return 0;
	s = g ? config_setting_get_member(g, "max_per_host") : NULL;
	if (s == NULL && g != NULL)
		s = config_setting_get_member(g, "max_entries");
	return fail(ld, s, "limits.max_per_host (%zu) must not exceed "
		    "limits.max_entries (%zu)", ec->max_per_host,
		    ec->max_entries);
}

/* io = { batch; receive_buffer; verdict_buffer; queue_maxlen; cpu }.
 * Returns 0 or -1. */
static int load_io(struct load *ld, const config_setting_t *root)
{
	struct io_config *io = &ld->cfg->io;
	config_setting_t *g, *s;
	long long cpu;

	if (get_group(ld, root, "io", keys_io, &g) < 0 ||
	    opt_unsigned(ld, g, "batch", 1, NFQUEUE_BATCH_MAX, &io->batch) < 0 ||
	    opt_unsigned(ld, g, "receive_buffer", IO_RCVBUF_MIN, IO_RCVBUF_MAX,
			 &io->receive_buffer) < 0 ||
	    opt_unsigned(ld, g, "verdict_buffer", NFQUEUE_TXBUF_MIN,
			 NFQUEUE_TXBUF_MAX, &io->verdict_buffer) < 0 ||
	    opt_unsigned(ld, g, "queue_maxlen", IO_QMAXLEN_MIN, IO_QMAXLEN_MAX,
			 &io->queue_maxlen) < 0)
		return -1;
	s = g ? config_setting_get_member(g, "cpu") : NULL;
	if (s == NULL)
		return 0;
	if (int_value(ld, s, -1, CPU_SETSIZE - 1, &cpu) < 0)
		return -1;
	io->cpu = (int)cpu;
	return 0;
}

/* fastpath = { enable; poll; admit_rate; admit_burst }. Returns 0 or -1. */
static int load_fastpath(struct load *ld, const config_setting_t *root)
{
	struct fastpath_config *fp = &ld->cfg->fastpath;
	config_setting_t *g, *s;
	char p[256];

	if (get_group(ld, root, "fastpath", keys_fastpath, &g) < 0 ||
	    opt_bool(ld, g, "enable", &fp->enable) < 0 ||
	    opt_duration(ld, g, "poll", &fp->poll_ms) < 0 ||
	    opt_unsigned(ld, g, "admit_rate", 0, FASTPATH_ADMIT_MAX,
			 &fp->admit_rate) < 0 ||
	    opt_unsigned(ld, g, "admit_burst", 0, FASTPATH_ADMIT_MAX,
			 &fp->admit_burst) < 0)
		return -1;
	s = g ? config_setting_get_member(g, "poll") : NULL;
	if (s && (fp->poll_ms < FASTPATH_POLL_MIN_MS ||
		  fp->poll_ms > FASTPATH_POLL_MAX_MS))
		return fail(ld, s, "%s must be between %.1f and %u seconds",
			    key_path(s, p, sizeof(p)),
			    FASTPATH_POLL_MIN_MS / 1000.0,
			    FASTPATH_POLL_MAX_MS / 1000);
	return 0;
}

/* log = { level }. Returns 0 or -1. */
static int load_log(struct load *ld, const config_setting_t *root)
{
	static const struct { const char *name; enum log_level level; } lv[] = {
		{ "debug", LOG_LEVEL_DEBUG }, { "info", LOG_LEVEL_INFO },
		{ "notice", LOG_LEVEL_NOTICE }, { "warning", LOG_LEVEL_WARNING },
		{ "error", LOG_LEVEL_ERROR },
	};
	config_setting_t *g, *s;
	const char *v = NULL;

	if (get_group(ld, root, "log", keys_log, &g) < 0)
		return -1;
	s = g ? config_setting_get_member(g, "level") : NULL;
	if (s == NULL)
		return 0;
	if (string_value(ld, s, &v) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(lv) / sizeof(lv[0]); i++) {
		if (strcmp(v, lv[i].name) == 0) {
			ld->cfg->log_level = lv[i].level;
			return 0;
		}
	}
	return fail(ld, s, "log.level must be debug, info, notice, warning or "
		    "error, got \"%s\"", v);
}

/* announce.listen: the router's own LAN address, inside `internal` (the
 * listener is for the LAN side) and not the external address. */
static int announce_listen(struct load *ld, const config_setting_t *g)
{
	struct announce_config *a = &ld->cfg->announce;
	config_setting_t *s = config_setting_get_member(g, "listen");
	char buf[INET_ADDRSTRLEN];

	if (s == NULL)
		return fail(ld, g, "announce.listen is required: the router's "
			    "LAN address to listen on");
	if (addr_value(ld, s, &a->listen) < 0)
		return -1;
	if (!addr_unicast(a->listen) ||
	    !is_internal(&ld->cfg->engine, a->listen))
		return fail(ld, s, "announce.listen %s must be a LAN address "
			    "of the router, inside internal",
			    addr_str(a->listen, buf));
	if (a->listen == ld->cfg->engine.external_addr)
		return fail(ld, s, "announce.listen %s is the external "
			    "address: announcements come from the LAN",
			    addr_str(a->listen, buf));
	return 0;
}

/* announce.max_entries: announced entries of all hosts at once, below
 * limits.max_entries so that announcements can never fill the table for
 * the hosts that do not announce. Unset: 4096, or half of
 * limits.max_entries when that is less. Returns 0 or -1. */
static int announce_max_entries(struct load *ld, const config_setting_t *g)
{
	struct announce_config *a = &ld->cfg->announce;
	size_t table = ld->cfg->engine.max_entries;
	config_setting_t *s = config_setting_get_member(g, "max_entries");

	if (s == NULL) {
		a->max_entries = table / 2 < ANNOUNCE_MAX_ENTRIES_DEFAULT ?
				 (table / 2 ? table / 2 : 1) :
				 ANNOUNCE_MAX_ENTRIES_DEFAULT;
		return 0;
	}
	if (opt_size(ld, g, "max_entries", 1, MAX_ENTRIES_MAX,
		     &a->max_entries) < 0)
		return -1;
	if (a->max_entries >= table)
		return fail(ld, s, "announce.max_entries (%zu) must be less "
			    "than limits.max_entries (%zu): announcements "
			    "must leave room for the hosts that do not "
			    "announce", a->max_entries, table);
	return 0;
}

/* announce = { listen; port; key_file; max_skew; rate; burst;
 * max_entries }. Returns 0 or -1. */
static int load_announce(struct load *ld, const config_setting_t *root)
{
	struct announce_config *a = &ld->cfg->announce;
	config_setting_t *g, *s;

	if (get_group(ld, root, "announce", keys_announce, &g) < 0)
		return -1;
	if (g == NULL)
		return 0;
	a->enabled = true;
	if (announce_listen(ld, g) < 0 ||
	    opt_unsigned(ld, g, "port", 1, 65535, &a->port) < 0 ||
	    opt_duration(ld, g, "max_skew", &a->max_skew_ms) < 0 ||
	    opt_unsigned(ld, g, "rate", 1, 1000, &a->rate) < 0 ||
	    opt_unsigned(ld, g, "burst", 1, 10000, &a->burst) < 0 ||
	    announce_max_entries(ld, g) < 0)
		return -1;
	if (a->max_skew_ms > 3600000) {
		s = config_setting_get_member(g, "max_skew");
		return fail(ld, s, "announce.max_skew must be at most 3600 "
			    "seconds");
	}
	s = config_setting_get_member(g, "key_file");
	if (s == NULL)
		return fail(ld, g, "announce.key_file is required: the keys "
			    "shared with the LAN hosts");
	return path_value(ld, s, a->key_file, sizeof(a->key_file));
}

/* A required member `name` of a preload entry. Returns it or NULL (error
 * written). */
static config_setting_t *preload_member(struct load *ld,
					const config_setting_t *e,
					const char *name)
{
	config_setting_t *s = config_setting_get_member(e, name);
	char p[256];

	if (s == NULL)
		fail(ld, e, "%s.%s is required", key_path(e, p, sizeof(p)),
		     name);
	return s;
}

/* The remote and host of a preload entry: a unicast remote outside the
 * LAN, a host inside it. Returns 0 or -1. */
static int preload_addrs(struct load *ld, const config_setting_t *e,
			 struct config_preload *pl)
{
	const struct engine_config *ec = &ld->cfg->engine;
	config_setting_t *r = preload_member(ld, e, "remote");
	config_setting_t *h = r ? preload_member(ld, e, "host") : NULL;
	char p[256];

	if (h == NULL || addr_value(ld, r, &pl->remote) < 0 ||
	    addr_value(ld, h, &pl->host) < 0)
		return -1;
	if (!addr_unicast(pl->remote) || is_internal(ec, pl->remote) ||
	    pl->remote == ec->external_addr)
		return fail(ld, r, "%s %s must be a unicast address outside the "
			    "internal prefixes and not the external address",
			    key_path(r, p, sizeof(p)),
			    config_setting_get_string(r));
	if (!is_internal(ec, pl->host))
		return fail(ld, h, "%s %s is not inside an internal prefix",
			    key_path(h, p, sizeof(p)),
			    config_setting_get_string(h));
	return 0;
}

/* The SPIs of a preload entry: spi_in required, spi_out optional, both
 * 256..0xffffffff (1..255 are reserved, 0 invalid). Returns 0 or -1. */
static int preload_spis(struct load *ld, const config_setting_t *e,
			struct config_preload *pl)
{
	config_setting_t *in = preload_member(ld, e, "spi_in");
	config_setting_t *out = config_setting_get_member(e, "spi_out");
	long long v = 0;

	if (in == NULL || int_value(ld, in, 256, UINT32_MAX, &v) < 0)
		return -1;
	pl->spi_in = (uint32_t)v;
	pl->spi_out = 0;
	if (out == NULL)
		return 0;
	if (int_value(ld, out, 256, UINT32_MAX, &v) < 0)
		return -1;
	pl->spi_out = (uint32_t)v;
	return 0;
}

/* One preload entry into cfg->preload, refusing a (remote, spi_in) given
 * twice. Returns 0 or -1. */
static int load_preload_entry(struct load *ld, const config_setting_t *e)
{
	struct masqd_config *cfg = ld->cfg;
	struct config_preload pl;
	char p[256];

	if (config_setting_type(e) != CONFIG_TYPE_GROUP)
		return fail_type(ld, e, "a group { remote; host; spi_in; }");
	if (check_keys(ld, e, keys_preload) < 0 ||
	    preload_addrs(ld, e, &pl) < 0 || preload_spis(ld, e, &pl) < 0)
		return -1;
	pl.line = (int)config_setting_source_line(e);
	for (size_t i = 0; i < cfg->n_preload; i++)
		if (cfg->preload[i].remote == pl.remote &&
		    cfg->preload[i].spi_in == pl.spi_in)
			return fail(ld, e, "%s repeats the remote and spi_in of "
				    "preload[%zu]", key_path(e, p, sizeof(p)),
				    i);
	cfg->preload[cfg->n_preload++] = pl;
	return 0;
}

/* preload = ( { ... }, ... ): optional, at most CONFIG_MAX_PRELOAD.
 * Returns 0 or -1. */
static int load_preload(struct load *ld, const config_setting_t *root)
{
	config_setting_t *s = config_setting_get_member(root, "preload");
	int n;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_LIST)
		return fail_type(ld, s, "a list ( { ... }, ... )");
	n = config_setting_length(s);
	if (n > CONFIG_MAX_PRELOAD)
		return fail(ld, s, "preload has %d entries, at most %d are "
			    "allowed", n, CONFIG_MAX_PRELOAD);
	for (int i = 0; i < n; i++)
		if (load_preload_entry(ld, config_setting_get_elem(s,
							(unsigned)i)) < 0)
			return -1;
	return 0;
}

/* Every section, in file order of importance; the first error stops.
 * Returns 0 or -1. */
static int load_root(struct load *ld, const config_setting_t *root)
{
	if (check_keys(ld, root, keys_root) < 0 || load_queue(ld, root) < 0 ||
	    load_internal(ld, root) < 0 || load_external(ld, root) < 0 ||
	    check_external(ld, root) < 0 || load_esp(ld, root) < 0 ||
	    load_isakmp(ld, root) < 0 || load_paths(ld, root) < 0 ||
	    load_limits(ld, root) < 0 || load_io(ld, root) < 0 ||
	    load_fastpath(ld, root) < 0 || load_log(ld, root) < 0 ||
	    load_announce(ld, root) < 0 || load_user(ld, root) < 0 ||
	    load_preload(ld, root) < 0)
		return -1;
	return 0;
}

/* Read, parse, scan and validate path into *cfg (header). Every path out
 * destroys the libconfig object and frees the text. Returns 0 or -1. */
int config_load(const char *path, struct masqd_config *cfg, char *err,
		size_t errlen)
{
	struct load ld = { path, err, errlen, cfg };
	char *text = NULL;
	config_t c;
	long len;
	int r;

	if (errlen > 0)
		err[0] = '\0';
	config_defaults(cfg);
	if (strlen(path) >= sizeof(cfg->path))
		return fail_at(&ld, path, 0, "path is too long");
	memcpy(cfg->path, path, strlen(path) + 1);
	len = read_text(&ld, &text);
	if (len < 0)
		return -1;
	config_init(&c);
	r = parse_text(&ld, &c, text, (size_t)len);
	if (r == 0)
		r = load_root(&ld, config_root_setting(&c));
	config_destroy(&c);
	free(text);
	return r;
}
