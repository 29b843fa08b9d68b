/*
 * SPI announcements from the LAN, protocol version 2, without the socket:
 * encoding, parsing, HMAC-SHA-256 verification, the return-routability
 * cookie, the per-sender replay window and rate limit, and applying an
 * accepted message to the engine. Pure: the clock (wall-clock
 * milliseconds, as the sender stamps its messages) is passed in, no I/O;
 * the daemon's edge is announce_sock.c, the sender is
 * ipsec-masqd-announce. ipsec-masqd-announce(8) documents the wire format
 * and the security model.
 *
 * A message is ANN_MSG_LEN bytes, network byte order:
 *    0  4  magic "IMSA"           4  1  version (2)
 *    5  1  type (1 announce, 2 withdraw, 3 reply)
 *    6  1  status (replies: enum ann_status; else 0)   7  1  reserved (0)
 *    8  8  timestamp, ms since the Unix epoch
 *   16  8  sequence number, strictly increasing per sender
 *   24  4  host (the announcing LAN address)     28  4  remote
 *   32  4  inbound SPI      36  4  outbound SPI (0: unknown)
 *   40  4  TTL in seconds (announce; 0 otherwise)
 *   44 16  cookie: in a reply, the router's cookie for the sender's
 *          address; in an announce or withdraw, that cookie echoed
 *   60 32  HMAC-SHA-256 over bytes 0..59 with the shared key
 *
 * Version 1 (76 bytes, no cookie) is refused as bad_version: with a key
 * for the whole network, any LAN host could act for another address by
 * forging its source. The cookie is only sent to the address it is for,
 * so a sender must receive there to act for it (return routability).
 */
#ifndef IPSEC_MASQD_ANNOUNCE_H
#define IPSEC_MASQD_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "htab.h"

#define ANN_VERSION 2
#define ANN_MSG_LEN 92
#define ANN_COOKIE_OFF 44
#define ANN_COOKIE_LEN 16
#define ANN_BODY_LEN 60             /* what the MAC covers */
#define ANN_MAC_LEN 32
#define ANN_SECRET_LEN 32           /* the router's cookie secret */
#define ANN_COOKIE_PERIOD_MS 60000  /* a cookie lives one to two of these */
#define ANN_KEY_LEN 32              /* bytes; 64 hex digits in a key file */
#define ANN_MAX_KEYS 256            /* lines of a key file */
#define ANN_PEER_SLOTS 4096         /* senders remembered at once */
#define ANN_PEER_PROBE 16           /* slots a sender may live in */
#define ANN_DEFAULT_PORT 4510
#define ANN_MAX_TTL_S 604800u       /* one week, as add esp */
#define ANN_DEFAULT_MAX_ENTRIES 4096 /* announced entries, all hosts */

enum ann_type { ANN_ANNOUNCE = 1, ANN_WITHDRAW = 2, ANN_REPLY = 3 };

/* Why a datagram was accepted or refused; the order is the order of the
 * checks. Names (ann_status_name) are the REASON= of the log and the keys
 * of the "announce" stats section. Never renumber: replies carry them. */
enum ann_status {
	ANN_OK = 0,              /* accepted and applied */
	ANN_WRONG_INTERFACE,     /* arrived on an interface that is not LAN */
	ANN_NOT_INTERNAL,        /* source address outside `internal` */
	ANN_BUSY,                /* sender table full of live senders */
	ANN_RATE_LIMITED,        /* sender over its rate */
	ANN_MALFORMED,           /* wrong length, magic or type */
	ANN_BAD_VERSION,         /* version this daemon does not speak */
	ANN_NO_KEY,              /* no key for the source address */
	ANN_BAD_MAC,             /* HMAC does not verify: forged or wrong key */
	ANN_WRONG_SOURCE,        /* message's host is not its source address */
	ANN_STALE,               /* timestamp outside the window */
	ANN_REPLAYED,            /* sequence number not above the last one */
	ANN_INVALID,             /* bad remote, SPI or TTL value */
	ANN_SPI_TAKEN,           /* (remote, SPI) belongs to another host */
	ANN_HOST_FULL,           /* host or table limits reached */
	ANN_UNKNOWN_SPI,         /* withdraw: no such (remote, SPI) */
	ANN_ANNOUNCE_FULL,       /* announce.max_entries announced already */
	ANN_COOKIE_REQUIRED,     /* no cookie: the reply carries one (checked
				  * after stale, before replayed) */
	ANN_BAD_COOKIE,          /* a cookie not the router's for this source
				  * now: spoofed source, or too old */
	ANN_MAX
};

struct ann_msg {
	uint8_t version, type, status;
	uint64_t timestamp_ms, seq;
	uint32_t host, remote, spi_in, spi_out;   /* host order */
	uint32_t ttl_s;
	uint8_t cookie[ANN_COOKIE_LEN];
};

/* One key: for the senders in prefix (0/0 = every LAN host). */
struct ann_key {
	struct prefix4 prefix;
	uint8_t key[ANN_KEY_LEN];
};

struct ann_keys {
	struct ann_key k[ANN_MAX_KEYS];
	size_t n;
};

/* What the router remembers of one sender: replay window and rate. */
struct ann_peer {
	uint32_t addr;               /* 0: free slot */
	uint64_t last_seq;           /* highest accepted sequence number */
	uint64_t last_ts;            /* highest accepted timestamp, ms */
	uint64_t tokens;             /* rate bucket, in 1/1000 messages */
	uint64_t refilled;           /* ms */
};

struct ann_settings {
	uint64_t max_skew_ms;        /* |timestamp - now| allowed: 30 s */
	unsigned rate;               /* messages a second per sender: 10 */
	unsigned burst;              /* bucket depth: 20 */
	size_t max_entries;          /* announced entries at once, all hosts:
				      * a LAN host that takes many addresses
				      * can fill this much, never the table */
};

struct ann_stats {
	uint64_t status[ANN_MAX];    /* every datagram, by outcome */
	uint64_t announced, withdrawn;
};

struct ann_ctx {
	struct ann_settings set;
	struct ann_keys keys;
	struct prefix4 internal[ENGINE_MAX_PREFIXES];
	size_t n_internal;
	uint64_t not_before_ms;      /* nothing stamped before the start */
	struct sipkey slot_key;      /* sender -> slot hash */
	uint8_t secret[ANN_SECRET_LEN]; /* cookies; random at each start */
	struct ann_peer peers[ANN_PEER_SLOTS];
	struct ann_stats stats;
};

void ann_settings_defaults(struct ann_settings *s);

/* A context for the LAN of cfg's internal prefixes, keys as parsed, the
 * start time now_ms (messages stamped earlier are stale: a replay of a
 * message the previous run accepted), a random seed for the sender
 * table's hash and a random secret for the cookies. */
void ann_init(struct ann_ctx *ctx, const struct ann_settings *set,
	      const struct ann_keys *keys, const struct engine_config *cfg,
	      uint64_t now_ms, uint64_t seed,
	      const uint8_t secret[ANN_SECRET_LEN]);

/* The router's cookie for sender addr at now_ms: HMAC-SHA-256 under the
 * secret of the address and now_ms / ANN_COOKIE_PERIOD_MS, cut to
 * ANN_COOKIE_LEN bytes. Accepted in this period and the next. */
void ann_cookie(const struct ann_ctx *ctx, uint32_t addr, uint64_t now_ms,
		uint8_t out[ANN_COOKIE_LEN]);

/* New keys, settings and prefixes (reload); sender state is kept. */
void ann_reconfigure(struct ann_ctx *ctx, const struct ann_settings *set,
		     const struct ann_keys *keys,
		     const struct engine_config *cfg);

/*
 * A key file's text: one key per line, "[ADDR[/LEN]] HEX64" (no address:
 * every LAN host), '#' comments, blank lines. The most specific prefix
 * covering a sender is its key. Returns 0, or -1 with "line N: why" in err.
 */
int ann_keys_parse(const char *text, struct ann_keys *keys, char *err,
		   size_t errlen);

/* The key for sender addr, or NULL. */
const uint8_t *ann_key_for(const struct ann_keys *keys, uint32_t addr);

/* msg (its version and type as given) with its MAC into out. */
void ann_encode(const struct ann_msg *msg, const uint8_t key[ANN_KEY_LEN],
		uint8_t out[ANN_MSG_LEN]);

/* The layout of buf[0..len) into *msg, without the MAC check: ANN_OK,
 * ANN_MALFORMED or ANN_BAD_VERSION. */
enum ann_status ann_parse(const uint8_t *buf, size_t len, struct ann_msg *msg);

/* Whether buf's MAC (ANN_MSG_LEN bytes, parsed) verifies under key, in
 * constant time. */
bool ann_mac_ok(const uint8_t *buf, const uint8_t key[ANN_KEY_LEN]);

/*
 * One datagram from src (host order) that arrived on a LAN interface
 * (lan_iface) at wall-clock now_ms: every check but the engine's, in the
 * order of enum ann_status (the cookie after stale). On ANN_OK *msg is an
 * authenticated announce or withdraw for src itself with src's cookie,
 * and the sender's replay window has moved past it (only a message with a
 * valid cookie moves it, so a spoofer cannot push another address's
 * window). *authentic says whether the MAC verified (a reply may be sent,
 * with src's cookie). The outcome is not counted yet: ann_apply() or
 * ann_count() does that.
 */
enum ann_status ann_receive(struct ann_ctx *ctx, const uint8_t *buf,
			    size_t len, uint32_t src, bool lan_iface,
			    uint64_t now_ms, struct ann_msg *msg,
			    bool *authentic);

/* An accepted message applied to the engine (clock eng_now): ANN_OK,
 * ANN_SPI_TAKEN, ANN_HOST_FULL, ANN_ANNOUNCE_FULL, ANN_UNKNOWN_SPI or
 * ANN_INVALID. Counted. */
enum ann_status ann_apply(struct ann_ctx *ctx, struct engine *eng,
			  const struct ann_msg *msg, uint64_t eng_now);

void ann_count(struct ann_ctx *ctx, enum ann_status st);

/* Announced entries over max (restored from a state file written before
 * the cap, or under a larger one) removed from eng, those with the least
 * time left first. Returns the number removed, or -1 (no memory: none). */
long ann_trim(struct engine *eng, size_t max);

const char *ann_status_name(enum ann_status st);
const char *ann_type_name(uint8_t type);

#endif
