/*
 * A bounds-checked view of one IPv4 packet carrying ESP, AH, UDP or ISAKMP,
 * and the address rewrites the masquerade performs on it. No I/O, no
 * allocation: parsing only reads the caller's buffer and fills the view.
 */
#ifndef IPSEC_MASQD_PACKET_H
#define IPSEC_MASQD_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "reason.h"

#define IPPROTO_ESP_NUM 50
#define IPPROTO_AH_NUM 51
#define IPPROTO_UDP_NUM 17
#define ISAKMP_PORT 500
#define ISAKMP_HDR_LEN 28
#define ESP_HDR_LEN 8
#define UDP_HDR_LEN 8

enum pkt_kind {
	PKT_OTHER = 0,  /* valid IPv4, protocol/port we do not interpret */
	PKT_ESP,
	PKT_AH,
	PKT_UDP,        /* UDP, neither port 500 */
	PKT_ISAKMP,     /* UDP with source or destination port 500 */
};

struct isakmp_hdr_view {
	uint64_t cookie_i;      /* IKEv1 initiator cookie / IKEv2 initiator SPI */
	uint64_t cookie_r;      /* responder cookie / SPI; 0 until the reply */
	uint8_t next_payload;
	uint8_t major_version;  /* 1 = IKEv1, 2 = IKEv2 */
	uint8_t minor_version;
	uint8_t exchange_type;
	uint8_t flags;
	uint32_t message_id;
	uint32_t length;        /* header length field */
};

/*
 * All integers in host byte order. Addresses are IPv4 in host order so that
 * prefix tests are plain masks.
 */
struct pkt_view {
	uint8_t *buf;           /* the packet; rewrites write here */
	size_t len;             /* == IPv4 total length once parsed */
	size_t l4_off;          /* offset of the transport header (after options) */
	uint32_t saddr;
	uint32_t daddr;
	uint8_t protocol;
	uint8_t more_fragments; /* MF set on a first fragment */
	enum pkt_kind kind;
	union {
		struct {
			uint32_t spi;
			uint32_t seq;
		} esp;
		struct {
			uint16_t sport;
			uint16_t dport;
			uint16_t length;
			uint16_t check;
		} udp;
	};
	struct isakmp_hdr_view isakmp;  /* valid when kind == PKT_ISAKMP */
};

/*
 * Parses buf[0..len) into *view. Returns R_PASS, or the malformed-input reason
 * that names the first thing wrong; on error *view is only partly filled and
 * must not be rewritten. AH is recognised but its body is not checked.
 */
enum reason pkt_parse(uint8_t *buf, size_t len, struct pkt_view *view);

/*
 * Replace the source (resp. destination) address of a parsed packet, updating
 * the IPv4 header checksum and, for UDP, the checksum over the pseudo-header
 * incrementally (RFC 1624). A UDP checksum of 0 (none) stays 0. The view is
 * updated too.
 */
void pkt_set_saddr(struct pkt_view *view, uint32_t new_saddr);
void pkt_set_daddr(struct pkt_view *view, uint32_t new_daddr);

/* Full recomputation, for tests and for building packets: the IPv4 header
 * checksum of buf, and the UDP checksum of a packet whose UDP header starts
 * at l4_off (0 stays "none" only if the caller wants it; this always returns
 * the computed value, with 0 mapped to 0xffff as RFC 768 asks). */
uint16_t pkt_ip_checksum(const uint8_t *buf, size_t ihl_bytes);
uint16_t pkt_udp_checksum(const uint8_t *buf, size_t len, size_t l4_off);

#endif
