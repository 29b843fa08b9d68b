/*
 * A bounds-checked view of one IPv4 packet carrying ESP, AH, UDP or ISAKMP,
 * and the address rewrites the masquerade performs on it. No I/O, no
 * allocation: parsing only reads the caller's buffer and fills the view.
 */
#ifndef IPSEC_MASQD_PACKET_H
#define IPSEC_MASQD_PACKET_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "csum.h"
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

/* ---- parsing and rewriting, inline: they run on every packet, and the
 * view they fill and read then stays in the caller's registers (issue 6:
 * about 40 instructions a packet). The rare parts are in packet.c. */

#define PKT_IPV4_MIN_HDR 20
#define PKT_OFF_CHECK 10
#define PKT_OFF_SADDR 12
#define PKT_OFF_DADDR 16
#define PKT_IP_FLAG_MF 0x2000
#define PKT_IP_FRAG_MASK 0x1fff

/* Big-endian 16-bit load; the caller has checked the length. */
static inline uint16_t pkt_get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

/* Big-endian 32-bit load; the caller has checked the length. */
static inline uint32_t pkt_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The header checksum of a header with options: non-zero when it
 * verifies. */
int pkt_ip_options_csum_ok(const uint8_t *buf, size_t ihl);

/* UDP and, on port 500, ISAKMP: the part of pkt_parse() after the IPv4
 * header of a UDP packet. */
enum reason pkt_parse_udp(const uint8_t *l4, size_t avail,
			  struct pkt_view *v);

/*
 * The IPv4 header, checked in the order the reasons are listed in reason.h
 * so that the first thing wrong names the drop. Fills addresses, protocol,
 * l4_off and more_fragments. Returns R_PASS or an R_IP_* reason.
 */
static inline enum reason pkt_parse_ip(const uint8_t *buf, size_t len,
					 struct pkt_view *v)
{
	size_t ihl = PKT_IPV4_MIN_HDR, totlen;
	uint16_t frag;

	if (len < PKT_IPV4_MIN_HDR)
		return R_IP_TRUNCATED;
	totlen = pkt_get16(buf + 2);
	/* version 4, no options, total length right: the four checks below
	 * would pass, so the common case skips them */
	if (buf[0] != 0x45 || totlen != len) {
		if (buf[0] >> 4 != 4)
			return R_IP_VERSION;
		ihl = (size_t)(buf[0] & 0x0f) * 4;
		if (ihl < PKT_IPV4_MIN_HDR)
			return R_IP_IHL_SHORT;
		if (ihl > len || ihl > totlen)
			return R_IP_IHL_PAST_END;
		if (totlen != len)
			return R_IP_TOTLEN;
	}
	/* a correct header sums to -0 (either zero, as the kernel accepts) */
	if (ihl == PKT_IPV4_MIN_HDR ? !csum_zero20(buf)
				    : !pkt_ip_options_csum_ok(buf, ihl))
		return R_IP_CHECKSUM;
	frag = pkt_get16(buf + 6);
	if (frag & PKT_IP_FRAG_MASK)
		return R_IP_FRAGMENT;
	v->more_fragments = (frag & PKT_IP_FLAG_MF) != 0;
	v->protocol = buf[9];
	v->saddr = pkt_get32(buf + PKT_OFF_SADDR);
	v->daddr = pkt_get32(buf + PKT_OFF_DADDR);
	v->l4_off = ihl;
	return R_PASS;
}

/* ESP (RFC 4303): SPI and sequence number. SPI 0 is invalid and 1..255 are
 * reserved. Returns R_PASS or an R_ESP_* reason. */
static inline enum reason pkt_parse_esp(const uint8_t *l4, size_t avail,
					  struct pkt_view *v)
{
	uint32_t spi;

	if (avail < ESP_HDR_LEN)
		return R_ESP_TRUNCATED;
	spi = pkt_get32(l4);
	if (spi == 0)
		return R_ESP_SPI_ZERO;
	if (spi <= 255)
		return R_ESP_SPI_RESERVED;
	v->kind = PKT_ESP;
	v->esp.spi = spi;
	v->esp.seq = pkt_get32(l4 + 4);
	return R_PASS;
}

/*
 * Parses buf[0..len) into *view. Returns R_PASS, or the malformed-input reason
 * that names the first thing wrong; on error *view is only partly filled and
 * must not be rewritten. AH is recognised but its body is not checked. The
 * view starts zeroed, so on an error it holds whatever was parsed before the
 * fault and kind PKT_OTHER.
 */
static inline enum reason pkt_parse(uint8_t *buf, size_t len,
				    struct pkt_view *view)
{
	enum reason r;
	size_t avail;

	*view = (struct pkt_view){ .buf = buf, .len = len, .kind = PKT_OTHER };
	r = pkt_parse_ip(buf, len, view);
	if (r != R_PASS)
		return r;
	avail = len - view->l4_off;
	switch (view->protocol) {
	case IPPROTO_ESP_NUM:
		return pkt_parse_esp(buf + view->l4_off, avail, view);
	case IPPROTO_AH_NUM:
		view->kind = PKT_AH;
		return R_PASS;
	case IPPROTO_UDP_NUM:
		return pkt_parse_udp(buf + view->l4_off, avail, view);
	default:
		return R_PASS;
	}
}

/* The UDP part of a rewrite, out of line: see pkt_rewrite_addr(). */
void pkt_fix_udp_check(struct pkt_view *v, uint32_t old_w, uint32_t new_w);

/*
 * Replaces the 32-bit address at buf+off with new_addr (host order), fixing
 * the IPv4 header checksum and, for UDP carrying one, the UDP checksum
 * whose pseudo-header covers the address (RFC 1624).
 *
 * The arithmetic runs on the words as stored, without converting them to
 * host order and back: byte-swapping 16-bit words commutes with one's
 * complement addition and complement (RFC 1071 2.(B)), and keeps 0 and
 * 0xffff, so csum_replace32() of the stored words is the stored form of
 * csum_replace32() of the host-order ones, bit for bit.
 */
static inline void pkt_rewrite_addr(struct pkt_view *v, size_t off,
				    uint32_t new_addr)
{
	uint8_t *b = v->buf, wire[4] = {
		(uint8_t)(new_addr >> 24), (uint8_t)(new_addr >> 16),
		(uint8_t)(new_addr >> 8), (uint8_t)new_addr,
	};
	uint32_t old_w, new_w;
	uint16_t c;

	memcpy(&new_w, wire, sizeof(new_w));
	memcpy(&old_w, b + off, sizeof(old_w));
	memcpy(&c, b + PKT_OFF_CHECK, sizeof(c));
	c = csum_replace32(c, old_w, new_w);
	memcpy(b + off, &new_w, sizeof(new_w));
	memcpy(b + PKT_OFF_CHECK, &c, sizeof(c));
	if ((v->kind == PKT_UDP || v->kind == PKT_ISAKMP) && v->udp.check)
		pkt_fix_udp_check(v, old_w, new_w);
}

/*
 * Replace the source (resp. destination) address of a parsed packet, updating
 * the IPv4 header checksum and, for UDP, the checksum over the pseudo-header
 * incrementally (RFC 1624). A UDP checksum of 0 (none) stays 0. The view is
 * updated too.
 */
static inline void pkt_set_saddr(struct pkt_view *view, uint32_t new_saddr)
{
	pkt_rewrite_addr(view, PKT_OFF_SADDR, new_saddr);
	view->saddr = new_saddr;
}

static inline void pkt_set_daddr(struct pkt_view *view, uint32_t new_daddr)
{
	pkt_rewrite_addr(view, PKT_OFF_DADDR, new_daddr);
	view->daddr = new_daddr;
}

/* Full recomputation, for tests and for building packets: the IPv4 header
 * checksum of buf, and the UDP checksum of a packet whose UDP header starts
 * at l4_off (0 stays "none" only if the caller wants it; this always returns
 * the computed value, with 0 mapped to 0xffff as RFC 768 asks). */
uint16_t pkt_ip_checksum(const uint8_t *buf, size_t ihl_bytes);
uint16_t pkt_udp_checksum(const uint8_t *buf, size_t len, size_t l4_off);

#endif
