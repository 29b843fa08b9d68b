/*
 * Why a packet got the verdict it got. Every reason has a counter in
 * struct engine_stats and a stable lower-case name for logs and `stats`.
 */
#ifndef IPSEC_MASQD_REASON_H
#define IPSEC_MASQD_REASON_H

enum reason {
	R_PASS = 0,                 /* parsed / handled normally */

	/* Malformed input: the packet is dropped, never rewritten. */
	R_IP_TRUNCATED,           /* shorter than a minimal IPv4 header */
	R_IP_VERSION,             /* version field is not 4 */
	R_IP_IHL_SHORT,           /* IHL < 5 */
	R_IP_IHL_PAST_END,        /* IHL points past the buffer or total length */
	R_IP_TOTLEN,              /* total length disagrees with the buffer */
	R_IP_CHECKSUM,            /* IPv4 header checksum is wrong */
	R_IP_FRAGMENT,            /* non-first fragment: no transport header */
	R_ESP_TRUNCATED,          /* fewer than 8 bytes of ESP header */
	R_ESP_SPI_ZERO,           /* SPI 0 is invalid (RFC 4303) */
	R_ESP_SPI_RESERVED,       /* SPI 1..255 is reserved by IANA */
	R_UDP_TRUNCATED,          /* fewer than 8 bytes of UDP header */
	R_UDP_LENGTH,             /* UDP length field lies */
	R_ISAKMP_SHORT,           /* UDP payload shorter than the 28-byte header */
	R_ISAKMP_LENGTH,          /* ISAKMP length field < 28 or past the payload */
	R_ISAKMP_VERSION,         /* major version neither 1 (IKEv1) nor 2 */
	R_ISAKMP_COOKIE_ZERO,     /* initiator cookie / IKE SPI of zero */

	/* Policy drops. */
	R_UNEXPECTED_PROTO,       /* LAN-source packet of a kind we do not handle */
	R_AH_OUTBOUND,            /* AH cannot be masqueraded */
	R_NO_EXTERNAL_ADDR,       /* external address not known yet */
	R_ESP_BLOCKED,            /* parallel sessions off, another host owns remote */
	R_ESP_SERIALIZED,         /* another init with that remote is pending */
	R_ESP_SQUELCHED,          /* this init collided too often; waits its turn */
	R_ESP_SPI_CONFLICT,       /* out-SPI already belongs to another LAN host */
	R_ISAKMP_COLLISION,       /* initiator cookie outstanding for another host */
	R_TABLE_FULL,             /* limits.max_entries reached */
	R_HOST_FULL,              /* limits.max_per_host reached */
	R_GUESS_RATELIMITED,      /* guess budget for that remote spent */

	/* Accepted unchanged. */
	R_NOT_OURS,               /* not masqueraded traffic (e.g. the router's own) */

	/* Policy drops added later: appended, so that earlier numbers stay. */
	R_ISAKMP_RATELIMITED,     /* unknown-cookie ISAKMP budget of that
				   * remote spent */
	R_ISAKMP_ANSWER_LIMIT,    /* host's answers to that remote's
				   * exchanges hold isakmp.answer_allowance */
	R_ESP_AMBIGUOUS,          /* unknown inbound SPI just after an init was
				   * released: guessed (copies), not bound */
	R_NOT_INTERNAL,           /* LAN -> WAN packet whose source is neither
				   * an internal prefix nor the external
				   * address (rules older than the config) */

	R_MAX
};

/* Stable lower-case name of a reason ("ip_truncated", ...); "unknown" for
 * out-of-range values. */
const char *reason_name(enum reason r);

/* Non-zero when r is a malformed-input reason. */
int reason_is_malformed(enum reason r);

#endif
