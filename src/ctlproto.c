/*
 * Control protocol v1 (include/ctlproto.h): request parsing and the
 * answers. Show collects the matching entries first (walk), then writes
 * them as JSON or as aligned tables; times are seconds relative to now.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ctlproto.h"
#include "reason.h"

/* ---- parsing ------------------------------------------------------------ */

int ctl_parse_addr(const char *s, uint32_t *addr)
{
	struct in_addr in;

	if (inet_pton(AF_INET, s, &in) != 1)
		return -1;
	*addr = ntohl(in.s_addr);
	return 0;
}

int ctl_parse_spi(const char *s, uint32_t *spi)
{
	unsigned long long v = 0;
	const char *p = s;
	unsigned base = 10, digits = 0;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	for (; *p != '\0'; p++, digits++) {
		unsigned d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A' + 10);
		else
			return -1;
		v = v * base + d;
		if (v > 0xffffffffull || digits > 10)
			return -1;
	}
	if (digits == 0 || v < 256)   /* 0 invalid, 1..255 reserved */
		return -1;
	*spi = (uint32_t)v;
	return 0;
}

int ctl_parse_seconds(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p == '\0')
		return -1;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || p - s > 12)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v == 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

static const char *const cmd_names[] = {
	[CTL_PING] = "ping", [CTL_SHOW] = "show", [CTL_STATS] = "stats",
	[CTL_FLUSH] = "flush", [CTL_ADD_ESP] = "add-esp",
	[CTL_DEL_ESP] = "del-esp", [CTL_RELOAD] = "reload",
};

/* One key=value argument into req. Returns 0 or -1 (err written). */
static int parse_arg(char *arg, struct ctl_request *req, char *err,
		     size_t errlen)
{
	char *v = strchr(arg, '=');
	uint64_t ttl;

	if (v == NULL) {
		snprintf(err, errlen, "protocol argument without '=': %.64s",
			 arg);
		return -1;
	}
	*v++ = '\0';
	if (strcmp(arg, "remote") == 0 || strcmp(arg, "host") == 0) {
		bool r = arg[0] == 'r';

		if (ctl_parse_addr(v, r ? &req->remote : &req->host) < 0)
			goto bad;
		*(r ? &req->has_remote : &req->has_host) = true;
	} else if (strcmp(arg, "spi_in") == 0) {
		if (ctl_parse_spi(v, &req->spi_in) < 0)
			goto bad;
		req->has_spi_in = true;
	} else if (strcmp(arg, "spi_out") == 0) {
		if (ctl_parse_spi(v, &req->spi_out) < 0)
			goto bad;
		req->has_spi_out = true;
	} else if (strcmp(arg, "ttl") == 0) {
		if (ctl_parse_seconds(v, CTL_MAX_TTL_S, &ttl) < 0)
			goto bad;
		req->ttl_ms = ttl * 1000u;
	} else if (strcmp(arg, "format") == 0) {
		if (strcmp(v, "json") == 0)
			req->json = true;
		else if (strcmp(v, "text") == 0)
			req->json = false;
		else
			goto bad;
	} else {
		snprintf(err, errlen, "protocol unknown key %.64s", arg);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "invalid %s: %.64s", arg, v);
	return -1;
}

/* Which keys each command takes and needs. */
static int check_args(const struct ctl_request *req, char *err,
		      size_t errlen)
{
	bool filt = req->cmd == CTL_SHOW || req->cmd == CTL_FLUSH;
	bool esp = req->cmd == CTL_ADD_ESP || req->cmd == CTL_DEL_ESP;

	if ((req->has_remote || req->has_host) && !filt && !esp)
		goto extra;
	if (req->has_spi_in && !esp)
		goto extra;
	if ((req->has_spi_out || req->ttl_ms) && req->cmd != CTL_ADD_ESP)
		goto extra;
	if (req->has_host && req->cmd == CTL_DEL_ESP)
		goto extra;
	if (esp && (!req->has_remote || !req->has_spi_in ||
		    (req->cmd == CTL_ADD_ESP && !req->has_host))) {
		snprintf(err, errlen, "protocol %s needs remote=, spi_in=%s",
			 cmd_names[req->cmd],
			 req->cmd == CTL_ADD_ESP ? " and host=" : "");
		return -1;
	}
	return 0;
extra:
	snprintf(err, errlen, "protocol argument not taken by %s",
		 cmd_names[req->cmd]);
	return -1;
}

int ctl_parse(const char *line, struct ctl_request *req, char *err,
	      size_t errlen)
{
	char buf[CTL_MAX_REQUEST + 1], *save = NULL, *tok;
	size_t len = strlen(line);
	size_t i;

	memset(req, 0, sizeof(*req));
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len >= sizeof(buf) - 1) {
		snprintf(err, errlen, "protocol request too long");
		return -1;
	}
	memcpy(buf, line, len);
	buf[len] = '\0';
	tok = strtok_r(buf, " \t", &save);
	if (tok == NULL || strcmp(tok, "v1") != 0) {
		snprintf(err, errlen, "protocol version not supported "
			 "(this daemon speaks v%d)", CTL_VERSION);
		return -1;
	}
	tok = strtok_r(NULL, " \t", &save);
	for (i = 0; tok && i < sizeof(cmd_names) / sizeof(cmd_names[0]); i++)
		if (strcmp(tok, cmd_names[i]) == 0)
			break;
	if (tok == NULL || i == sizeof(cmd_names) / sizeof(cmd_names[0])) {
		snprintf(err, errlen, "protocol unknown command %.32s",
			 tok ? tok : "(none)");
		return -1;
	}
	req->cmd = (enum ctl_cmd)i;
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL)
		if (parse_arg(tok, req, err, errlen) < 0)
			return -1;
	return check_args(req, err, errlen);
}

/* ---- helpers -------------------------------------------------------------- */

static const char *ip4(uint32_t addr, char *buf)
{
	struct in_addr in = { .s_addr = htonl(addr) };

	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

/* Whole seconds from `then` to `now` (0 when then is later). */
static uint64_t secs_since(uint64_t now, uint64_t then)
{
	return now > then ? (now - then) / 1000u : 0;
}

/* Whole seconds left until `when`, rounded up (0 when past). */
static uint64_t secs_until(uint64_t now, uint64_t when)
{
	return when > now ? (when - now + 999u) / 1000u : 0;
}

/* Replaces whatever out holds by "error KIND MSG". */
static void error_reply(struct jbuf *out, const char *kind, const char *msg)
{
	jbuf_reset(out);
	jbuf_printf(out, "error %s %s\n", kind, msg);
}

/* ---- show ------------------------------------------------------------------ */

/* A show being answered: where the walk of the engine's tables has got
 * to (nothing is copied: the rows are formatted from the live entries as
 * the client reads, issue 13) and, for text, the counts and column widths
 * measured by a first walk. */
struct ctl_cont {
	struct ctl_request req;
	uint64_t now;                              /* of the request */
	struct engine *eng;
	bool flush;                                /* a flush, not a show */
	size_t removed;                            /* flush: so far */
	struct ctl_env env;                        /* flush: for its note */
	char who[64];                              /* flush: env.who's text */
	unsigned (*offloaded)(void *ctx, uint32_t remote, uint32_t spi_in);
	void *ctx;
	int stage;
	struct engine_cursor cur;
	struct jbuf *out;                          /* during ctl_continue */
	size_t n_esp, n_isa, n_pend;               /* text: as measured */
	unsigned w_isa[6], w_esp[12], w_pend[5];   /* text column widths */
};

/* The stages of a show: text measures first (the headers count the rows,
 * the columns are aligned), then each section is one walk. */
enum {
	SHOW_MEASURE_ISAKMP, SHOW_MEASURE_ESP, SHOW_ISAKMP, SHOW_ESP,
	SHOW_PENDING, SHOW_DONE
};

/* Entries a measuring call walks, per entry a formatting call may write
 * (measuring is a few comparisons an entry). */
#define SHOW_MEASURE_FACTOR 16

static const char *const hdr_isa[6] = {
	"REMOTE", "HOST", "COOKIE_I", "COOKIE_R", "IDLE", "TTL"
};
static const char *const hdr_esp[12] = {
	"REMOTE", "HOST", "SPI_OUT", "SPI_IN", "STATE", "PKTS_OUT", "PKTS_IN",
	"BYTES_OUT", "BYTES_IN", "IDLE", "TTL", "FASTPATH"
};
static const char *const hdr_pend[5] = {
	"REMOTE", "HOST", "SPI_OUT", "SINCE", "TTL"
};

/* What the fast path does with an entry (fastpath.h's bits). */
static const char *fastpath_text(unsigned f)
{
	static const char *const t[4] = { "-", "in", "out", "in+out" };

	return t[f & 3];
}

/* Whether an entry passes the request's remote/host filters. */
static bool matches(const struct ctl_request *req, uint32_t remote,
		    uint32_t host)
{
	return (!req->has_remote || req->remote == remote) &&
	       (!req->has_host || req->host == host);
}

void ctl_cont_free(struct ctl_cont *k)
{
	free(k);
}

/* key: "0x%08x", or null for an unknown (0) SPI. */
static void spi_json(struct jbuf *out, const char *key, uint32_t spi)
{
	json_key(out, key);
	if (spi == 0)
		json_null(out);
	else
		json_rawf(out, "\"0x%08x\"", spi);
}

/* One ISAKMP entry as a JSON object. */
static void isa_json(const struct engine_isakmp_info *e, uint64_t now,
		     struct jbuf *out)
{
	char a[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN];

	json_obj_begin(out);
	json_kv_str(out, "remote", ip4(e->remote, a));
	json_kv_str(out, "host", ip4(e->host, h));
	json_key(out, "cookie_i");
	json_rawf(out, "\"%016llx\"", (unsigned long long)e->cookie_i);
	json_key(out, "cookie_r");
	if (e->cookie_r == 0)
		json_null(out);
	else
		json_rawf(out, "\"%016llx\"", (unsigned long long)e->cookie_r);
	json_kv_uint(out, "idle", secs_since(now, e->last_seen));
	json_kv_uint(out, "ttl", secs_until(now, e->expires));
	json_obj_end(out);
}

/* One ESP entry as a JSON object. */
static void esp_json(const struct engine_esp_info *e, uint64_t now,
		     unsigned fpf, struct jbuf *out)
{
	char a[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN];

	json_obj_begin(out);
	json_kv_str(out, "remote", ip4(e->remote, a));
	json_kv_str(out, "host", ip4(e->host, h));
	spi_json(out, "spi_out", e->spi_out);
	spi_json(out, "spi_in", e->spi_in);
	json_kv_str(out, "state", esp_state_name(e->state));
	json_kv_uint(out, "pkts_out", e->pkts_out);
	json_kv_uint(out, "pkts_in", e->pkts_in);
	json_kv_uint(out, "bytes_out", e->bytes_out);
	json_kv_uint(out, "bytes_in", e->bytes_in);
	json_kv_uint(out, "idle", secs_since(now, e->last_seen));
	json_kv_uint(out, "ttl", secs_until(now, e->expires));
	json_kv_uint(out, "age", secs_since(now, e->since));
	json_kv_str(out, "fastpath", fastpath_text(fpf));
	json_obj_end(out);
}

/* One pending init as a JSON object. */
static void pend_json(const struct engine_esp_info *e, uint64_t now,
		      struct jbuf *out)
{
	char a[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN];

	json_obj_begin(out);
	json_kv_str(out, "remote", ip4(e->remote, a));
	json_kv_str(out, "host", ip4(e->host, h));
	spi_json(out, "spi_out", e->spi_out);
	json_kv_uint(out, "since", secs_since(now, e->since));
	json_kv_uint(out, "ttl", secs_until(now, e->expires));
	json_obj_end(out);
}

/* Decimal digits of v. */
static unsigned digits(uint64_t v)
{
	unsigned n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Characters of a dotted quad. */
static unsigned ip_width(uint32_t a)
{
	return digits(a >> 24) + digits((a >> 16) & 255) +
	       digits((a >> 8) & 255) + digits(a & 255) + 3;
}

static void widen(unsigned *w, unsigned v)
{
	if (v > *w)
		*w = v;
}

/* The header cells' widths, before measuring the rows. */
static void text_widths_init(struct ctl_cont *k)
{
	for (size_t i = 0; i < 6; i++)
		k->w_isa[i] = (unsigned)strlen(hdr_isa[i]);
	for (size_t i = 0; i < 12; i++)
		k->w_esp[i] = (unsigned)strlen(hdr_esp[i]);
	for (size_t i = 0; i < 5; i++)
		k->w_pend[i] = (unsigned)strlen(hdr_pend[i]);
}

/* Measuring walk: counts a matching ISAKMP entry and widens the columns
 * to its values, without formatting them. */
static void measure_isakmp(void *ctx, const struct engine_isakmp_info *e)
{
	struct ctl_cont *k = ctx;

	if (!matches(&k->req, e->remote, e->host))
		return;
	k->n_isa++;
	widen(&k->w_isa[0], ip_width(e->remote));
	widen(&k->w_isa[1], ip_width(e->host));
	widen(&k->w_isa[2], 16);
	widen(&k->w_isa[3], e->cookie_r ? 16 : 1);
	widen(&k->w_isa[4], digits(secs_since(k->now, e->last_seen)) + 1);
}

/* Measuring walk: as measure_isakmp, for an ESP entry (and the pending
 * section when it is a pending init). */
static void measure_esp(void *ctx, const struct engine_esp_info *e)
{
	struct ctl_cont *k = ctx;
	unsigned *w = k->w_esp;

	if (!matches(&k->req, e->remote, e->host))
		return;
	k->n_esp++;
	widen(&w[0], ip_width(e->remote));
	widen(&w[1], ip_width(e->host));
	widen(&w[2], e->spi_out ? 10 : 1);
	widen(&w[3], e->spi_in ? 10 : 7);
	widen(&w[4], (unsigned)strlen(esp_state_name(e->state)));
	widen(&w[5], digits(e->pkts_out));
	widen(&w[6], digits(e->pkts_in));
	widen(&w[7], digits(e->bytes_out));
	widen(&w[8], digits(e->bytes_in));
	widen(&w[9], digits(secs_since(k->now, e->last_seen)) + 1);
	widen(&w[10], digits(secs_until(k->now, e->expires)) + 1);
	if (e->state != ESP_PENDING)
		return;
	k->n_pend++;
	w = k->w_pend;
	widen(&w[0], ip_width(e->remote));
	widen(&w[1], ip_width(e->host));
	widen(&w[2], e->spi_out ? 10 : 1);
	widen(&w[3], digits(secs_since(k->now, e->since)) + 1);
}

/* One text row: every cell but the last padded to its column's width. */
static void text_row(struct jbuf *out, const unsigned *w, size_t n,
		     const char *const *cells)
{
	for (size_t i = 0; i + 1 < n; i++)
		jbuf_printf(out, "%-*s  ", (int)w[i], cells[i]);
	jbuf_printf(out, "%s\n", cells[n - 1]);
}

/* "0x%08x" into buf (11 bytes), or `none` for SPI 0. */
static const char *spi_text(uint32_t spi, const char *none, char *buf)
{
	if (spi == 0)
		return none;
	snprintf(buf, 11, "0x%08x", spi);
	return buf;
}

/* One ISAKMP entry as a text row. */
static void isa_text(const struct ctl_cont *k,
		     const struct engine_isakmp_info *e, struct jbuf *out)
{
	char a[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN], ci[17], cr[17], idle[24],
	     ttl[24];
	const char *cells[6] = { ip4(e->remote, a), ip4(e->host, h), ci, cr,
				 idle, ttl };

	snprintf(ci, sizeof(ci), "%016llx", (unsigned long long)e->cookie_i);
	snprintf(cr, sizeof(cr), "%016llx", (unsigned long long)e->cookie_r);
	if (e->cookie_r == 0)
		cells[3] = "-";
	snprintf(idle, sizeof(idle), "%llus", (unsigned long long)
		 secs_since(k->now, e->last_seen));
	snprintf(ttl, sizeof(ttl), "%llus", (unsigned long long)
		 secs_until(k->now, e->expires));
	text_row(out, k->w_isa, 6, cells);
}

/* One ESP entry as a text row. */
static void esp_text(const struct ctl_cont *k,
		     const struct engine_esp_info *e, struct jbuf *out)
{
	char a[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN], so[11], si[11];
	char n[4][24], idle[24], ttl[24];
	const char *cells[12] = {
		ip4(e->remote, a), ip4(e->host, h),
		spi_text(e->spi_out, "-", so),
		spi_text(e->spi_in, "pending", si),
		esp_state_name(e->state), n[0], n[1], n[2], n[3], idle, ttl,
		fastpath_text(k->offloaded ? k->offloaded(k->ctx, e->remote,
							  e->spi_in) : 0)
	};

	snprintf(n[0], sizeof(n[0]), "%llu", (unsigned long long)e->pkts_out);
	snprintf(n[1], sizeof(n[1]), "%llu", (unsigned long long)e->pkts_in);
	snprintf(n[2], sizeof(n[2]), "%llu", (unsigned long long)e->bytes_out);
	snprintf(n[3], sizeof(n[3]), "%llu", (unsigned long long)e->bytes_in);
	snprintf(idle, sizeof(idle), "%llus", (unsigned long long)
		 secs_since(k->now, e->last_seen));
	snprintf(ttl, sizeof(ttl), "%llus", (unsigned long long)
		 secs_until(k->now, e->expires));
	text_row(out, k->w_esp, 12, cells);
}

/* One pending init as a text row. */
static void pend_text(const struct ctl_cont *k,
		      const struct engine_esp_info *e, struct jbuf *out)
{
	char a[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN], so[11], since[24],
	     ttl[24];
	const char *cells[5] = { ip4(e->remote, a), ip4(e->host, h),
				 spi_text(e->spi_out, "-", so), since, ttl };

	snprintf(since, sizeof(since), "%llus", (unsigned long long)
		 secs_since(k->now, e->since));
	snprintf(ttl, sizeof(ttl), "%llus", (unsigned long long)
		 secs_until(k->now, e->expires));
	text_row(out, k->w_pend, 5, cells);
}

/* Opens the section `stage` (its JSON array or its text title and
 * header), closing the one before; after the last, the end: "]}" in JSON,
 * the line "(end)" in text (a client tells a whole answer by it: the
 * counts of a large table may change while it is sent). */
static void show_section(struct ctl_cont *k, struct jbuf *out)
{
	static const char *const keys[] = { "isakmp", "esp", "pending" };

	if (k->req.json) {
		if (k->stage != SHOW_ISAKMP)
			json_arr_end(out);
		if (k->stage == SHOW_DONE) {
			json_obj_end(out);
			jbuf_puts(out, "\n");
			return;
		}
		json_key(out, keys[k->stage - SHOW_ISAKMP]);
		json_arr_begin(out);
		return;
	}
	switch (k->stage) {
	case SHOW_ISAKMP:
		jbuf_printf(out, "ISAKMP entries: %zu\n", k->n_isa);
		text_row(out, k->w_isa, 6, hdr_isa);
		break;
	case SHOW_ESP:
		jbuf_printf(out, "\nESP entries: %zu\n", k->n_esp);
		text_row(out, k->w_esp, 12, hdr_esp);
		break;
	case SHOW_PENDING:
		jbuf_printf(out, "\nPending inits: %zu\n", k->n_pend);
		text_row(out, k->w_pend, 5, hdr_pend);
		break;
	case SHOW_DONE:
		jbuf_puts(out, CTL_SHOW_END);
		break;
	default:
		break;
	}
}

/* Walk callback of the ISAKMP section: one row. */
static void row_isakmp(void *ctx, const struct engine_isakmp_info *e)
{
	struct ctl_cont *k = ctx;

	if (!matches(&k->req, e->remote, e->host))
		return;
	if (k->req.json)
		isa_json(e, k->now, k->out);
	else
		isa_text(k, e, k->out);
}

/* Walk callback of the ESP and pending sections: one row. */
static void row_esp(void *ctx, const struct engine_esp_info *e)
{
	struct ctl_cont *k = ctx;

	if (!matches(&k->req, e->remote, e->host))
		return;
	if (k->stage == SHOW_PENDING) {
		if (e->state != ESP_PENDING)
			return;
		if (k->req.json)
			pend_json(e, k->now, k->out);
		else
			pend_text(k, e, k->out);
	} else if (k->req.json) {
		esp_json(e, k->now, k->offloaded ? k->offloaded(k->ctx,
			 e->remote, e->spi_in) : 0, k->out);
	} else {
		esp_text(k, e, k->out);
	}
}

/* The table a stage walks. */
static enum engine_table stage_table(int stage)
{
	return stage == SHOW_MEASURE_ISAKMP || stage == SHOW_ISAKMP ?
	       TABLE_ISAKMP : TABLE_ESP;
}

/* The next stage: its walk started, its section opened. */
static void next_stage(struct ctl_cont *k, struct jbuf *out)
{
	k->stage++;
	if (k->stage != SHOW_DONE)
		engine_cursor_start(k->eng, &k->cur, stage_table(k->stage));
	if (k->stage >= SHOW_ISAKMP)
		show_section(k, out);
}

static int flush_continue(struct ctl_cont *k, struct jbuf *out, size_t max);

int ctl_continue(struct ctl_cont *k, struct jbuf *out, size_t max)
{
	size_t walked = 0;

	if (k->flush)
		return flush_continue(k, out, max);

	k->out = out;
	while (k->stage != SHOW_DONE && walked < max && !out->overflow) {
		size_t n = max - walked;
		bool over;

		if (k->stage < SHOW_ISAKMP) {
			/* measuring: cheap, in larger steps; one a call */
			n = max > SIZE_MAX / SHOW_MEASURE_FACTOR ? SIZE_MAX :
			    max * SHOW_MEASURE_FACTOR;
			over = engine_cursor_next(k->eng, &k->cur, n,
						  measure_esp, measure_isakmp,
						  k);
			if (!over && max != SIZE_MAX)
				walked = max;
		} else {
			over = engine_cursor_next(k->eng, &k->cur, n, row_esp,
						  row_isakmp, k);
			if (!over)
				walked += n;
		}
		/* a walk that ended leaves the rest of the budget to the next
		 * stage: a call does at most 3 walks' worth of max */
		if (over)
			next_stage(k, out);
	}
	k->out = NULL;
	return k->stage == SHOW_DONE;
}

/* Lower bounds of an entry's size in the answer (all numbers 0). */
#define SHOW_MIN_JSON_ESP 150
#define SHOW_MIN_JSON_ISAKMP 100
#define SHOW_MIN_TEXT_ESP 70
#define SHOW_MIN_TEXT_ISAKMP 60

/* show: with cont, the status line and the first slice, the rest left in
 * *cont for ctl_continue (nothing copied: the entries are walked in the
 * engine as the client reads); without, the whole answer at once. */
static void do_show(const struct ctl_request *req, struct ctl_env *env,
		    struct jbuf *out, struct ctl_cont **cont)
{
	const struct engine_stats *es = engine_get_stats(env->eng);
	struct ctl_cont *k = calloc(1, sizeof(*k));

	if (k == NULL) {
		error_reply(out, "failed", "out of memory");
		return;
	}
	k->req = *req;
	k->now = env->now;
	k->eng = env->eng;
	k->offloaded = env->offloaded;
	k->ctx = env->ctx;
	jbuf_puts(out, "ok\n");
	if (req->json) {
		json_obj_begin(out);
		json_kv_uint(out, "version", CTL_VERSION);
		k->stage = SHOW_ISAKMP - 1;
	} else {
		text_widths_init(k);
		k->stage = SHOW_MEASURE_ISAKMP - 1;
	}
	next_stage(k, out);
	if (cont != NULL) {
		if (!ctl_continue(k, out, CTL_SHOW_SLICE)) {
			*cont = k;
			return;
		}
		ctl_cont_free(k);
		return;
	}
	/* Whole: an answer bound to pass the limit is refused before the
	 * formatting, the costly part (no packet work meanwhile). */
	if (es->esp_entries * (req->json ? SHOW_MIN_JSON_ESP :
			       SHOW_MIN_TEXT_ESP) +
	    es->isakmp_entries * (req->json ? SHOW_MIN_JSON_ISAKMP :
				  SHOW_MIN_TEXT_ISAKMP) >= out->limit &&
	    !req->has_remote && !req->has_host)
		out->overflow = true;
	else
		(void)ctl_continue(k, out, SIZE_MAX);
	ctl_cont_free(k);
}

/* An aligned text table for stats: cells of at most CELL-1 characters. */
#define CELL 40
struct table {
	size_t ncols, nrows, cap;
	char (*cell)[CELL];
};

/* A table of ncols columns for a header and `rows` rows. Returns 0/-1. */
static int table_init(struct table *t, size_t ncols, size_t rows)
{
	t->ncols = ncols;
	t->nrows = 0;
	t->cap = rows + 1;
	t->cell = calloc(t->cap * ncols, CELL);
	return t->cell ? 0 : -1;
}

/* Sets cell col of the current last row (row added by table_row). */
static void table_set(struct table *t, size_t col, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void table_set(struct table *t, size_t col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->cell[(t->nrows - 1) * t->ncols + col], CELL, fmt, ap);
	va_end(ap);
}

/* Starts the next row (ignored past the capacity). */
static void table_row(struct table *t)
{
	if (t->nrows < t->cap)
		t->nrows++;
}

/* Writes the table with each column padded to its widest cell, then
 * frees it. */
static void table_print(struct table *t, struct jbuf *out)
{
	size_t w[16] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols && c < 16; c++) {
			size_t l = strlen(t->cell[r * t->ncols + c]);

			if (l > w[c])
				w[c] = l;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols && c < 16; c++) {
			if (c + 1 == t->ncols)
				jbuf_printf(out, "%s", t->cell[r * t->ncols + c]);
			else
				jbuf_printf(out, "%-*s  ", (int)w[c],
					    t->cell[r * t->ncols + c]);
		}
		jbuf_puts(out, "\n");
	}
	free(t->cell);
	t->cell = NULL;
}

/* ---- stats ------------------------------------------------------------------ */

/* The counters as (section, name, value) triples, written as JSON objects
 * per section or as "section.name value" lines. */
struct statw {
	struct jbuf *out;
	bool json;
	const char *section;
	struct table t;
};

/* Closes the current stats section and opens `name` (NULL: none). */
static void st_section(struct statw *w, const char *name)
{
	if (w->json) {
		if (w->section != NULL)
			json_obj_end(w->out);
		if (name != NULL) {
			json_key(w->out, name);
			json_obj_begin(w->out);
		}
	}
	w->section = name;
}

/* One counter of the current section. */
static void st_val(struct statw *w, const char *name, uint64_t v)
{
	if (w->json) {
		json_kv_uint(w->out, name, v);
		return;
	}
	table_row(&w->t);
	table_set(&w->t, 0, "%s.%s", w->section, name);
	table_set(&w->t, 1, "%llu", (unsigned long long)v);
}

/* stats: every counter, by section. */
static void do_stats(const struct ctl_request *req, struct ctl_env *env,
		     struct jbuf *out)
{
	static const char *const verdicts[] = { "accept", "accept_modified",
						"drop" };
	const struct engine_stats *es = engine_get_stats(env->eng);
	const struct engine_config *ec = engine_get_config(env->eng);
	const struct nfqueue_stats *q = env->queue;
	struct statw w = { .out = out, .json = req->json };

	if (!w.json && table_init(&w.t, 2, 128 + R_MAX + EV_MAX) < 0) {
		error_reply(out, "failed", "out of memory");
		return;
	}
	jbuf_puts(out, "ok\n");
	if (w.json) {
		json_obj_begin(out);
		json_kv_uint(out, "version", CTL_VERSION);
		json_kv_uint(out, "uptime", secs_since(env->now, env->started));
	} else {
		jbuf_printf(out, "uptime %llus\n", (unsigned long long)
			    secs_since(env->now, env->started));
	}
	st_section(&w, "packets");
	st_val(&w, "inbound", es->packets[DIR_INBOUND]);
	st_val(&w, "outbound", es->packets[DIR_OUTBOUND]);
	st_section(&w, "verdicts");
	for (size_t i = 0; i < 3; i++)
		st_val(&w, verdicts[i], es->verdicts[i]);
	st_section(&w, "reasons");
	for (int r = 0; r < R_MAX; r++)
		if (!reason_is_malformed((enum reason)r))
			st_val(&w, reason_name((enum reason)r), es->reasons[r]);
	st_section(&w, "malformed");
	for (int r = 0; r < R_MAX; r++)
		if (reason_is_malformed((enum reason)r))
			st_val(&w, reason_name((enum reason)r), es->reasons[r]);
	st_section(&w, "decisions");
	for (int k = 0; k < EV_MAX; k++)
		st_val(&w, engine_event_name((enum engine_event_kind)k),
		       es->events[k]);
	st_val(&w, "copies", es->copies);
	st_section(&w, "tables");
	st_val(&w, "esp", es->esp_entries);
	st_val(&w, "isakmp", es->isakmp_entries);
	st_val(&w, "isakmp_answers", es->isakmp_answers);
	st_val(&w, "hosts", es->hosts);
	st_val(&w, "remotes", es->remotes);
	st_val(&w, "pending", es->pending);
	st_val(&w, "max_entries", ec->max_entries);
	st_val(&w, "max_per_host", ec->max_per_host);
	if (q != NULL) {
		st_section(&w, "queue");
		st_val(&w, "received", q->received);
		st_val(&w, "accepted", q->accepted);
		st_val(&w, "modified", q->modified);
		st_val(&w, "dropped", q->dropped);
		st_val(&w, "bad_packet", q->bad_packet);
		st_val(&w, "bad_message", q->bad_message);
		st_val(&w, "verdict_errors", q->verdict_errors);
		st_val(&w, "verdicts_lost", q->verdicts_lost);
		st_val(&w, "verdicts_retried", q->verdicts_retried);
		st_val(&w, "enobufs", q->enobufs);
		st_val(&w, "recv_errors", q->recv_errors);
		st_val(&w, "flushes", q->flushes);
		st_val(&w, "batches", q->batches);
		st_val(&w, "batches_full", q->batches_full);
		st_val(&w, "kernel_waiting", q->kernel_waiting);
		st_val(&w, "kernel_queue_full", q->kernel_queue_full);
		st_val(&w, "kernel_socket_full", q->kernel_socket_full);
	}
	if (env->has_firewall) {
		st_section(&w, "firewall");
		st_val(&w, "guard_read", env->guard_read);
		if (env->guard_read) {
			st_val(&w, "guard_packets", env->guard_packets);
			st_val(&w, "guard_bytes", env->guard_bytes);
		} else {
			st_val(&w, "guard_errno", (uint64_t)env->guard_errno);
		}
	}
	if (env->n_daemon > 0) {
		st_section(&w, "daemon");
		for (size_t i = 0; i < env->n_daemon; i++)
			st_val(&w, env->daemon[i].name, env->daemon[i].value);
	}
	if (env->n_fastpath > 0) {
		st_section(&w, "fastpath");
		for (size_t i = 0; i < env->n_fastpath; i++)
			st_val(&w, env->fastpath[i].name,
			       env->fastpath[i].value);
	}
	if (env->n_announce > 0) {
		st_section(&w, "announce");
		for (size_t i = 0; i < env->n_announce; i++)
			st_val(&w, env->announce[i].name,
			       env->announce[i].value);
	}
	st_section(&w, NULL);
	if (w.json) {
		json_obj_end(out);
		jbuf_puts(out, "\n");
	} else {
		table_print(&w.t, out);
	}
}

/* ---- changes ------------------------------------------------------------------ */

static void note(struct ctl_env *env, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(struct ctl_env *env, const char *fmt, ...)
{
	char msg[320];
	va_list ap;
	size_t n;

	if (env->note == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	if (env->who != NULL && n < sizeof(msg))   /* who changed it */
		snprintf(msg + n, sizeof(msg) - n, " (by %s)", env->who);
	env->note(env->ctx, msg);
}

/* "ok" and a one-key JSON object or a sentence. */
static void ok_count(struct jbuf *out, bool json, const char *key,
		     uint64_t n, const char *text)
{
	jbuf_puts(out, "ok\n");
	if (json) {
		json_obj_begin(out);
		json_kv_uint(out, "version", CTL_VERSION);
		json_kv_uint(out, key, n);
		json_obj_end(out);
		jbuf_puts(out, "\n");
	} else if (text != NULL) {
		jbuf_printf(out, "%s\n", text);
	}
}

/* The end of a flush: logged, answered. */
static void flush_done(const struct ctl_request *req, struct ctl_env *env,
		       size_t n, struct jbuf *out)
{
	char a[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN], text[64];

	note(env, "control: flush remote=%s host=%s: %zu entries removed",
	     req->has_remote ? ip4(req->remote, a) : "any",
	     req->has_host ? ip4(req->host, h) : "any", n);
	snprintf(text, sizeof(text), "%zu entries removed", n);
	ok_count(out, req->json, "removed", n, text);
}

/* A flush's next slice: up to CTL_FLUSH_FACTOR x max entries walked and
 * the matching ones removed (ISAKMP, then ESP); at the end the note and
 * the answer. Nothing is answered before: when the client reads "ok",
 * every entry that was there when it asked is gone. */
static int flush_continue(struct ctl_cont *k, struct jbuf *out, size_t max)
{
	size_t n = max > SIZE_MAX / CTL_FLUSH_FACTOR ? SIZE_MAX :
		   max * CTL_FLUSH_FACTOR;

	for (;;) {
		if (!engine_cursor_flush(k->eng, &k->cur, n,
					 k->req.has_remote ? k->req.remote : 0,
					 k->req.has_host ? k->req.host : 0,
					 &k->removed))
			return 0;
		if (k->cur.table == TABLE_ESP)
			break;
		/* the rest of the budget for the ESP table: a call walks at
		 * most two budgets' worth */
		engine_cursor_start(k->eng, &k->cur, TABLE_ESP);
	}
	flush_done(&k->req, &k->env, k->removed, out);
	k->flush = false;   /* done: a second call adds nothing */
	k->stage = SHOW_DONE;
	return 1;
}

void ctl_cont_finish(struct ctl_cont *k)
{
	struct jbuf scratch;

	if (k == NULL || !k->flush)
		return;
	jbuf_init(&scratch, 4096);
	(void)flush_continue(k, &scratch, SIZE_MAX);
	jbuf_free(&scratch);
}

/* flush: with cont, in slices (flush_continue); without, engine_flush at
 * once. Logged, answered with the count, when done. */
static void do_flush(const struct ctl_request *req, struct ctl_env *env,
		     struct jbuf *out, struct ctl_cont **cont)
{
	struct ctl_cont *k;

	if (cont == NULL || (k = calloc(1, sizeof(*k))) == NULL) {
		flush_done(req, env, engine_flush(env->eng,
			   req->has_remote ? req->remote : 0,
			   req->has_host ? req->host : 0), out);
		return;
	}
	k->req = *req;
	k->eng = env->eng;
	k->flush = true;
	k->env = *env;
	if (env->who != NULL) {
		snprintf(k->who, sizeof(k->who), "%s", env->who);
		k->env.who = k->who;
	}
	engine_cursor_start(k->eng, &k->cur, TABLE_ISAKMP);
	if (flush_continue(k, out, CTL_SHOW_SLICE)) {
		ctl_cont_free(k);
		return;
	}
	*cont = k;
}

/* add-esp: engine_preload; a refusal is logged and answered with why. */
static void do_add(const struct ctl_request *req, struct ctl_env *env,
		   struct jbuf *out)
{
	char a[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN], msg[160];

	ip4(req->remote, a);
	ip4(req->host, h);
	if (engine_preload(env->eng, req->remote, req->host, req->spi_in,
			   req->has_spi_out ? req->spi_out : 0, req->ttl_ms,
			   env->now) < 0) {
		int e = errno;

		snprintf(msg, sizeof(msg), "remote %s SPI 0x%08x to %s: %s", a,
			 req->spi_in, h,
			 e == EEXIST ? "the SPI belongs to another host" :
			 e == ENOSPC ? "table limits reached" :
			 e == EINVAL ? "host is not internal" : strerror(e));
		note(env, "control: add-esp refused: %s", msg);
		error_reply(out, e == EEXIST ? "exists" : e == ENOSPC ?
			    "nospace" : "invalid", msg);
		return;
	}
	note(env, "control: add-esp remote=%s spi_in=0x%08x host=%s "
	     "spi_out=0x%08x ttl=%llus", a, req->spi_in, h,
	     req->has_spi_out ? req->spi_out : 0,
	     (unsigned long long)(req->ttl_ms / 1000u));
	ok_count(out, req->json, "added", 1, NULL);
}

/* del-esp: engine_del_esp, logged. */
static void do_del(const struct ctl_request *req, struct ctl_env *env,
		   struct jbuf *out)
{
	char a[INET_ADDRSTRLEN], msg[96];

	ip4(req->remote, a);
	if (engine_del_esp(env->eng, req->remote, req->spi_in) < 0) {
		snprintf(msg, sizeof(msg), "no ESP entry of remote %s with "
			 "SPI 0x%08x", a, req->spi_in);
		error_reply(out, "notfound", msg);
		return;
	}
	note(env, "control: del-esp remote=%s spi_in=0x%08x", a, req->spi_in);
	ok_count(out, req->json, "removed", 1, NULL);
}

void ctl_execute(const struct ctl_request *req, struct ctl_env *env,
		 struct jbuf *out, struct ctl_cont **cont)
{
	if (cont != NULL)
		*cont = NULL;
	jbuf_reset(out);
	switch (req->cmd) {
	case CTL_PING:
		ok_count(out, req->json, "pong", 1, "pong");
		break;
	case CTL_SHOW:
		do_show(req, env, out, cont);
		break;
	case CTL_STATS:
		do_stats(req, env, out);
		break;
	case CTL_FLUSH:
		do_flush(req, env, out, cont);
		break;
	case CTL_ADD_ESP:
		do_add(req, env, out);
		break;
	case CTL_DEL_ESP:
		do_del(req, env, out);
		break;
	case CTL_RELOAD:
		note(env, "control: reload requested");
		if (env->reload == NULL || env->reload(env->ctx) < 0)
			error_reply(out, "failed", "reload refused: see the "
				    "daemon's log");
		else
			ok_count(out, req->json, "reloaded", 1, "reloaded");
		break;
	}
	if (out->overflow) {
		size_t limit = out->limit;
		char msg[128];

		if (cont != NULL) {
			ctl_cont_free(*cont);
			*cont = NULL;
		}
		out->overflow = false;
		jbuf_reset(out);
		snprintf(msg, sizeof(msg), "response larger than %zu bytes: "
			 "narrow it with --remote or --host", limit);
		error_reply(out, "toolarge", msg);
	}
}

void ctl_handle_line(const char *line, struct ctl_env *env, struct jbuf *out,
		     struct ctl_cont **cont)
{
	struct ctl_request req;
	char err[160];

	if (ctl_parse(line, &req, err, sizeof(err)) < 0) {
		char *sp = strchr(err, ' ');

		jbuf_reset(out);
		if (sp != NULL)
			*sp++ = '\0';
		error_reply(out, err, sp ? sp : "");
		if (cont != NULL)
			*cont = NULL;
		return;
	}
	ctl_execute(&req, env, out, cont);
}
