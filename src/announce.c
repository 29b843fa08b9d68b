/*
 * SPI announcements, protocol version 2 (announce.h has the layout): pure
 * code, the clock passed in. HMAC-SHA-256 is OpenSSL's libcrypto (HMAC()):
 * a library every router distribution keeps patched, rather than a copy
 * of SHA-256 of our own; the MAC comparison is CRYPTO_memcmp(), constant
 * time.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "announce.h"

static const uint8_t ann_magic[4] = { 'I', 'M', 'S', 'A' };

void ann_settings_defaults(struct ann_settings *s)
{
	s->max_skew_ms = 30000;
	s->rate = 10;
	s->burst = 20;
	s->max_entries = ANN_DEFAULT_MAX_ENTRIES;
}

static void copy_prefixes(struct ann_ctx *ctx, const struct engine_config *c)
{
	memcpy(ctx->internal, c->internal, sizeof(ctx->internal));
	ctx->n_internal = c->n_internal;
}

void ann_init(struct ann_ctx *ctx, const struct ann_settings *set,
	      const struct ann_keys *keys, const struct engine_config *cfg,
	      uint64_t now_ms, uint64_t seed,
	      const uint8_t secret[ANN_SECRET_LEN])
{
	memset(ctx, 0, sizeof(*ctx));
	memcpy(ctx->secret, secret, ANN_SECRET_LEN);
	ctx->set = *set;
	ctx->keys = *keys;
	copy_prefixes(ctx, cfg);
	ctx->not_before_ms = now_ms;
	sipkey_from_seed(&ctx->slot_key, seed, 0x616e6e6f756e6365ull);
}

void ann_reconfigure(struct ann_ctx *ctx, const struct ann_settings *set,
		     const struct ann_keys *keys,
		     const struct engine_config *cfg)
{
	ctx->set = *set;
	ctx->keys = *keys;
	copy_prefixes(ctx, cfg);
}

/* ---- keys ------------------------------------------------------------------ */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Exactly 64 hex digits into key. Returns 0 or -1. */
static int parse_key(const char *s, size_t len, uint8_t key[ANN_KEY_LEN])
{
	if (len != 2 * ANN_KEY_LEN)
		return -1;
	for (size_t i = 0; i < ANN_KEY_LEN; i++) {
		int hi = hexval((unsigned char)s[2 * i]);
		int lo = hexval((unsigned char)s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* "a.b.c.d" or "a.b.c.d/len" (no host bits) into pfx. Returns 0 or -1. */
static int parse_prefix(const char *s, struct prefix4 *pfx)
{
	unsigned a, b, c, d, len = 32;
	char tail;
	int n;

	n = sscanf(s, "%3u.%3u.%3u.%3u/%2u%c", &a, &b, &c, &d, &len, &tail);
	if (n != 4 && n != 5)
		return -1;
	if (a > 255 || b > 255 || c > 255 || d > 255 || len < 1 || len > 32)
		return -1;
	pfx->mask = 0xffffffffu << (32 - len);
	pfx->addr = (uint32_t)(a << 24 | b << 16 | c << 8 | d);
	return (pfx->addr & pfx->mask) == pfx->addr ? 0 : -1;
}

/* One non-empty line (no comment) into k. Returns 0 or -1 with err. */
static int parse_key_line(char *line, struct ann_key *k, const char **why)
{
	char *words[3];
	size_t n = 0;

	for (char *t = strtok(line, " \t\r"); t; t = strtok(NULL, " \t\r")) {
		if (n == 2) {
			*why = "too many fields (want: [ADDR[/LEN]] KEY)";
			return -1;
		}
		words[n++] = t;
	}
	memset(&k->prefix, 0, sizeof(k->prefix));
	if (n == 2 && parse_prefix(words[0], &k->prefix) < 0) {
		*why = "not an address or prefix (a.b.c.d or a.b.c.d/len, "
		       "no host bits)";
		return -1;
	}
	if (parse_key(words[n - 1], strlen(words[n - 1]), k->key) < 0) {
		*why = "a key is 64 hex digits (32 bytes; e.g. from "
		       "`openssl rand -hex 32`)";
		return -1;
	}
	return 0;
}

int ann_keys_parse(const char *text, struct ann_keys *keys, char *err,
		   size_t errlen)
{
	unsigned lineno = 0;
	const char *p = text;

	keys->n = 0;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		const char *why = NULL;
		char line[512], *hash;

		lineno++;
		if (len >= sizeof(line)) {
			snprintf(err, errlen, "line %u: too long", lineno);
			return -1;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (nl ? 1 : 0);
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		if (strspn(line, " \t\r") == strlen(line))
			continue;
		if (keys->n == ANN_MAX_KEYS) {
			snprintf(err, errlen, "line %u: more than %d keys",
				 lineno, ANN_MAX_KEYS);
			return -1;
		}
		if (parse_key_line(line, &keys->k[keys->n], &why) < 0) {
			snprintf(err, errlen, "line %u: %s", lineno, why);
			return -1;
		}
		keys->n++;
	}
	if (keys->n == 0) {
		snprintf(err, errlen, "no key in the file");
		return -1;
	}
	return 0;
}

const uint8_t *ann_key_for(const struct ann_keys *keys, uint32_t addr)
{
	const struct ann_key *best = NULL;

	for (size_t i = 0; i < keys->n; i++) {
		const struct ann_key *k = &keys->k[i];

		if ((addr & k->prefix.mask) != k->prefix.addr)
			continue;
		if (!best || k->prefix.mask > best->prefix.mask)
			best = k;
	}
	return best ? best->key : NULL;
}

/* ---- wire format --------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void mac_of(const uint8_t *body, const uint8_t key[ANN_KEY_LEN],
		   uint8_t mac[ANN_MAC_LEN])
{
	unsigned len = ANN_MAC_LEN;

	/* HMAC() cannot fail for SHA-256 with a fixed key and buffer; zero
	 * the MAC first so that a failure could never verify. */
	memset(mac, 0, ANN_MAC_LEN);
	if (!HMAC(EVP_sha256(), key, ANN_KEY_LEN, body, ANN_BODY_LEN, mac,
		  &len))
		memset(mac, 0xff, ANN_MAC_LEN);
}

void ann_encode(const struct ann_msg *msg, const uint8_t key[ANN_KEY_LEN],
		uint8_t out[ANN_MSG_LEN])
{
	memcpy(out, ann_magic, 4);
	out[4] = msg->version;
	out[5] = msg->type;
	out[6] = msg->status;
	out[7] = 0;
	put64(out + 8, msg->timestamp_ms);
	put64(out + 16, msg->seq);
	put32(out + 24, msg->host);
	put32(out + 28, msg->remote);
	put32(out + 32, msg->spi_in);
	put32(out + 36, msg->spi_out);
	put32(out + 40, msg->ttl_s);
	memcpy(out + ANN_COOKIE_OFF, msg->cookie, ANN_COOKIE_LEN);
	mac_of(out, key, out + ANN_BODY_LEN);
}

enum ann_status ann_parse(const uint8_t *buf, size_t len, struct ann_msg *msg)
{
	if (len < 5 || memcmp(buf, ann_magic, 4) != 0)
		return ANN_MALFORMED;
	if (buf[4] != ANN_VERSION)
		return ANN_BAD_VERSION;
	if (len != ANN_MSG_LEN || buf[7] != 0 || buf[5] < ANN_ANNOUNCE ||
	    buf[5] > ANN_REPLY)
		return ANN_MALFORMED;
	msg->version = buf[4];
	msg->type = buf[5];
	msg->status = buf[6];
	msg->timestamp_ms = get64(buf + 8);
	msg->seq = get64(buf + 16);
	msg->host = get32(buf + 24);
	msg->remote = get32(buf + 28);
	msg->spi_in = get32(buf + 32);
	msg->spi_out = get32(buf + 36);
	msg->ttl_s = get32(buf + 40);
	memcpy(msg->cookie, buf + ANN_COOKIE_OFF, ANN_COOKIE_LEN);
	return ANN_OK;
}

bool ann_mac_ok(const uint8_t *buf, const uint8_t key[ANN_KEY_LEN])
{
	uint8_t mac[ANN_MAC_LEN];

	mac_of(buf, key, mac);
	return CRYPTO_memcmp(mac, buf + ANN_BODY_LEN, ANN_MAC_LEN) == 0;
}

/* ---- the return-routability cookie ---------------------------------------- */

static void cookie_of(const struct ann_ctx *ctx, uint32_t addr,
		      uint64_t period, uint8_t out[ANN_COOKIE_LEN])
{
	uint8_t in[16] = { 'I', 'M', 'S', 'C' }, mac[ANN_MAC_LEN];
	unsigned len = sizeof(mac);

	put32(in + 4, addr);
	put64(in + 8, period);
	/* as in mac_of(): a failure must not give a usable cookie */
	if (!HMAC(EVP_sha256(), ctx->secret, ANN_SECRET_LEN, in, sizeof(in),
		  mac, &len))
		memset(mac, 0xff, sizeof(mac));
	memcpy(out, mac, ANN_COOKIE_LEN);
}

void ann_cookie(const struct ann_ctx *ctx, uint32_t addr, uint64_t now_ms,
		uint8_t out[ANN_COOKIE_LEN])
{
	cookie_of(ctx, addr, now_ms / ANN_COOKIE_PERIOD_MS, out);
}

static bool cookie_zero(const uint8_t c[ANN_COOKIE_LEN])
{
	uint8_t any = 0;

	for (size_t i = 0; i < ANN_COOKIE_LEN; i++)
		any |= c[i];
	return any == 0;
}

/* c is addr's cookie of this period or the one before, compared in
 * constant time. */
static bool cookie_ok(const struct ann_ctx *ctx, const uint8_t *c,
		      uint32_t addr, uint64_t now_ms)
{
	uint64_t period = now_ms / ANN_COOKIE_PERIOD_MS;
	uint8_t want[ANN_COOKIE_LEN];
	bool ok;

	cookie_of(ctx, addr, period, want);
	ok = CRYPTO_memcmp(want, c, ANN_COOKIE_LEN) == 0;
	if (period > 0) {
		cookie_of(ctx, addr, period - 1, want);
		ok |= CRYPTO_memcmp(want, c, ANN_COOKIE_LEN) == 0;
	}
	return ok;
}

/* ---- the router's checks ------------------------------------------------- */

static bool internal(const struct ann_ctx *ctx, uint32_t addr)
{
	for (size_t i = 0; i < ctx->n_internal; i++)
		if ((addr & ctx->internal[i].mask) == ctx->internal[i].addr)
			return true;
	return false;
}

/* A slot nobody needs any more: its last accepted message is older than
 * the timestamp window (a replay of it would be stale anyway) and its rate
 * bucket has refilled (forgetting it forgives nothing). */
static bool peer_idle(const struct ann_ctx *ctx, const struct ann_peer *p,
		      uint64_t now)
{
	uint64_t refill_ms = ctx->set.rate ?
		(uint64_t)ctx->set.burst * 1000 / ctx->set.rate + 1 : 0;

	return p->last_ts + ctx->set.max_skew_ms < now &&
	       p->refilled + refill_ms < now;
}

/* The sender's slot, made if needed among its ANN_PEER_PROBE candidates
 * (keyed hash, so a LAN host cannot aim many addresses at one run), NULL
 * when every candidate belongs to a live sender. */
static struct ann_peer *peer_get(struct ann_ctx *ctx, uint32_t addr,
				 uint64_t now)
{
	size_t start = (size_t)siphash13_word(&ctx->slot_key, addr);
	struct ann_peer *spare = NULL;

	for (size_t i = 0; i < ANN_PEER_PROBE; i++) {
		struct ann_peer *p = &ctx->peers[(start + i) % ANN_PEER_SLOTS];

		if (p->addr == addr)
			return p;
		if (!spare && (p->addr == 0 || peer_idle(ctx, p, now)))
			spare = p;
	}
	if (!spare)
		return NULL;
	memset(spare, 0, sizeof(*spare));
	spare->addr = addr;
	spare->tokens = (uint64_t)ctx->set.burst * 1000;
	spare->refilled = now;
	return spare;
}

/* Token bucket in thousandths of a message: true when one may pass. */
static bool peer_take(const struct ann_ctx *ctx, struct ann_peer *p,
		      uint64_t now)
{
	uint64_t cap = (uint64_t)ctx->set.burst * 1000;

	if (now > p->refilled) {
		p->tokens += (now - p->refilled) * ctx->set.rate;
		if (p->tokens > cap)
			p->tokens = cap;
	}
	p->refilled = now;    /* also when the clock stepped back */
	if (p->tokens < 1000)
		return false;
	p->tokens -= 1000;
	return true;
}

static bool spi_ok(uint32_t spi)
{
	return spi >= 256;
}

/* The values of an authenticated message make sense. */
static bool values_ok(const struct ann_msg *m)
{
	uint32_t top = m->remote >> 24;

	if (top == 0 || top == 127 || (m->remote >> 28) >= 14 ||
	    !spi_ok(m->spi_in))
		return false;
	if (m->type == ANN_WITHDRAW)
		return m->spi_out == 0 && m->ttl_s == 0;
	return (m->spi_out == 0 || spi_ok(m->spi_out)) && m->ttl_s >= 1 &&
	       m->ttl_s <= ANN_MAX_TTL_S;
}

/* The timestamp is inside the window and after our start. */
static bool fresh(const struct ann_ctx *ctx, uint64_t ts, uint64_t now)
{
	uint64_t skew = ctx->set.max_skew_ms;

	return ts >= ctx->not_before_ms && ts + skew >= now &&
	       ts <= now + skew;
}

enum ann_status ann_receive(struct ann_ctx *ctx, const uint8_t *buf,
			    size_t len, uint32_t src, bool lan_iface,
			    uint64_t now_ms, struct ann_msg *msg,
			    bool *authentic)
{
	const uint8_t *key;
	struct ann_peer *p;
	enum ann_status st;

	*authentic = false;
	if (!lan_iface)
		return ANN_WRONG_INTERFACE;
	if (!internal(ctx, src))
		return ANN_NOT_INTERNAL;
	p = peer_get(ctx, src, now_ms);
	if (!p)
		return ANN_BUSY;
	/* before the MAC: a flood costs at most `rate` MACs a second */
	if (!peer_take(ctx, p, now_ms))
		return ANN_RATE_LIMITED;
	st = ann_parse(buf, len, msg);
	if (st != ANN_OK)
		return st;
	if (msg->type == ANN_REPLY)
		return ANN_MALFORMED;
	key = ann_key_for(&ctx->keys, src);
	if (!key)
		return ANN_NO_KEY;
	if (!ann_mac_ok(buf, key))
		return ANN_BAD_MAC;
	*authentic = true;
	if (msg->host != src)
		return ANN_WRONG_SOURCE;
	if (!fresh(ctx, msg->timestamp_ms, now_ms))
		return ANN_STALE;
	/* the source address is forgeable on the LAN; receiving at it is
	 * what the cookie proves. Before the replay window moves. */
	if (cookie_zero(msg->cookie))
		return ANN_COOKIE_REQUIRED;
	if (!cookie_ok(ctx, msg->cookie, src, now_ms))
		return ANN_BAD_COOKIE;
	if (msg->seq <= p->last_seq)
		return ANN_REPLAYED;
	p->last_seq = msg->seq;
	/* the highest, not the last: a later message may carry an earlier
	 * stamp (within the window), and the slot must not be forgotten
	 * while any accepted message could still be replayed fresh */
	if (msg->timestamp_ms > p->last_ts)
		p->last_ts = msg->timestamp_ms;
	if (!values_ok(msg))
		return ANN_INVALID;
	return ANN_OK;
}

void ann_count(struct ann_ctx *ctx, enum ann_status st)
{
	ctx->stats.status[(unsigned)st < ANN_MAX ? st : ANN_MALFORMED]++;
}

/* Whether the announcement would make one announced entry more than
 * max_entries: a refresh of the host's own announced (remote, SPI) never
 * does. */
static bool over_cap(const struct ann_ctx *ctx, const struct engine *eng,
		     const struct ann_msg *msg)
{
	struct engine_esp_info info;

	if (engine_get_stats(eng)->announced < ctx->set.max_entries)
		return false;
	return engine_get_esp(eng, msg->remote, msg->spi_in, &info) < 0 ||
	       info.state != ESP_ANNOUNCED || info.host != msg->host;
}

enum ann_status ann_apply(struct ann_ctx *ctx, struct engine *eng,
			  const struct ann_msg *msg, uint64_t eng_now)
{
	enum ann_status st = ANN_OK;

	if (msg->type == ANN_ANNOUNCE && over_cap(ctx, eng, msg)) {
		st = ANN_ANNOUNCE_FULL;
	} else if (msg->type == ANN_ANNOUNCE) {
		if (engine_announce(eng, msg->remote, msg->host, msg->spi_in,
				    msg->spi_out, (uint64_t)msg->ttl_s * 1000,
				    eng_now) < 0)
			st = errno == EEXIST ? ANN_SPI_TAKEN :
			     errno == ENOSPC ? ANN_HOST_FULL : ANN_INVALID;
		else
			ctx->stats.announced++;
	} else {
		if (engine_withdraw(eng, msg->remote, msg->host, msg->spi_in,
				    eng_now) < 0)
			st = errno == EPERM ? ANN_SPI_TAKEN : ANN_UNKNOWN_SPI;
		else
			ctx->stats.withdrawn++;
	}
	ann_count(ctx, st);
	return st;
}

/* ---- the cap on a restored table ------------------------------------------- */

struct trim_list {
	struct engine_esp_info *e;
	size_t n, max;
};

static void collect_announced(void *ctx, const struct engine_esp_info *e)
{
	struct trim_list *l = ctx;

	if (e->state == ESP_ANNOUNCED && l->n < l->max)
		l->e[l->n++] = *e;
}

static int by_expiry(const void *a, const void *b)
{
	const struct engine_esp_info *x = a, *y = b;

	return x->expires < y->expires ? -1 : x->expires > y->expires;
}

long ann_trim(struct engine *eng, size_t max)
{
	size_t have = engine_get_stats(eng)->announced;
	struct trim_list l = { NULL, 0, have };
	long removed = 0;

	if (have <= max)
		return 0;
	l.e = calloc(have, sizeof(*l.e));
	if (l.e == NULL)
		return -1;
	engine_walk_esp(eng, collect_announced, &l);
	qsort(l.e, l.n, sizeof(*l.e), by_expiry);
	for (size_t i = 0; i + max < l.n; i++)
		removed += engine_del_esp(eng, l.e[i].remote, l.e[i].spi_in) == 0;
	free(l.e);
	return removed;
}

const char *ann_status_name(enum ann_status st)
{
	static const char *const names[ANN_MAX] = {
		[ANN_OK] = "accepted",
		[ANN_WRONG_INTERFACE] = "wrong_interface",
		[ANN_NOT_INTERNAL] = "not_internal",
		[ANN_BUSY] = "busy",
		[ANN_RATE_LIMITED] = "rate_limited",
		[ANN_MALFORMED] = "malformed",
		[ANN_BAD_VERSION] = "bad_version",
		[ANN_NO_KEY] = "no_key",
		[ANN_BAD_MAC] = "bad_mac",
		[ANN_WRONG_SOURCE] = "wrong_source",
		[ANN_STALE] = "stale",
		[ANN_REPLAYED] = "replayed",
		[ANN_INVALID] = "invalid",
		[ANN_SPI_TAKEN] = "spi_taken",
		[ANN_HOST_FULL] = "host_full",
		[ANN_UNKNOWN_SPI] = "unknown_spi",
		[ANN_ANNOUNCE_FULL] = "announce_full",
		[ANN_COOKIE_REQUIRED] = "cookie_required",
		[ANN_BAD_COOKIE] = "bad_cookie",
	};

	return (unsigned)st < ANN_MAX ? names[st] : "unknown";
}

const char *ann_type_name(uint8_t type)
{
	return type == ANN_ANNOUNCE ? "announce" :
	       type == ANN_WITHDRAW ? "withdraw" :
	       type == ANN_REPLY ? "reply" : "unknown";
}
