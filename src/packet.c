/*
 * IPv4 / ESP / AH / UDP / ISAKMP parsing into a bounds-checked view, and the
 * address rewrites with incremental checksum updates (RFC 1624). No I/O, no
 * allocation: every length is checked before the read it guards, and every
 * multi-byte load is a byte-shift or a memcpy (any alignment).
 */
#include "packet.h"

#include <string.h>

#include "csum.h"

#define IPV4_MIN_HDR 20
#define IP_OFF_CHECK 10
#define IP_OFF_SADDR 12
#define IP_OFF_DADDR 16
#define IP_FLAG_MF 0x2000
#define IP_FRAG_MASK 0x1fff
#define UDP_OFF_CHECK 6
#define ISAKMP_V1 1
#define ISAKMP_V2 2

/* Out of line: paths ESP, the bulk of the traffic, does not take. A hint
 * for GCC and clang. */
#ifdef __GNUC__
#define PKT_COLD __attribute__((noinline))
#else
#define PKT_COLD
#endif

/* Big-endian 16-bit load; the caller has checked the length. */
static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

/* Big-endian 32-bit load; the caller has checked the length. */
static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Big-endian 64-bit load (ISAKMP cookies); length checked by the caller. */
static inline uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* Big-endian 32-bit store. */
static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The header checksum of a header with options (rare: kept out of line, so
 * that parse_ip() needs no stack frame for it). Non-zero when it verifies. */
static PKT_COLD int options_csum_ok(const uint8_t *buf, size_t ihl)
{
	return csum_fold(csum_partial(buf, ihl, 0)) == 0;
}

/*
 * The IPv4 header, checked in the order the reasons are listed in reason.h
 * so that the first thing wrong names the drop. Fills addresses, protocol,
 * l4_off and more_fragments. Returns R_PASS or an R_IP_* reason.
 */
static enum reason parse_ip(const uint8_t *buf, size_t len,
			    struct pkt_view *v)
{
	size_t ihl = IPV4_MIN_HDR, totlen;
	uint16_t frag;

	if (len < IPV4_MIN_HDR)
		return R_IP_TRUNCATED;
	totlen = get16(buf + 2);
	/* version 4, no options, total length right: the four checks below
	 * would pass, so the common case skips them */
	if (buf[0] != 0x45 || totlen != len) {
		if (buf[0] >> 4 != 4)
			return R_IP_VERSION;
		ihl = (size_t)(buf[0] & 0x0f) * 4;
		if (ihl < IPV4_MIN_HDR)
			return R_IP_IHL_SHORT;
		if (ihl > len || ihl > totlen)
			return R_IP_IHL_PAST_END;
		if (totlen != len)
			return R_IP_TOTLEN;
	}
	/* a correct header sums to -0 (either zero, as the kernel accepts) */
	if (ihl == IPV4_MIN_HDR ? !csum_zero20(buf) : !options_csum_ok(buf, ihl))
		return R_IP_CHECKSUM;
	frag = get16(buf + 6);
	if (frag & IP_FRAG_MASK)
		return R_IP_FRAGMENT;
	v->more_fragments = (frag & IP_FLAG_MF) != 0;
	v->protocol = buf[9];
	v->saddr = get32(buf + IP_OFF_SADDR);
	v->daddr = get32(buf + IP_OFF_DADDR);
	v->l4_off = ihl;
	return R_PASS;
}

/* ESP (RFC 4303): SPI and sequence number. SPI 0 is invalid and 1..255 are
 * reserved. Returns R_PASS or an R_ESP_* reason. */
static enum reason parse_esp(const uint8_t *l4, size_t avail,
			     struct pkt_view *v)
{
	uint32_t spi;

	if (avail < ESP_HDR_LEN)
		return R_ESP_TRUNCATED;
	spi = get32(l4);
	if (spi == 0)
		return R_ESP_SPI_ZERO;
	if (spi <= 255)
		return R_ESP_SPI_RESERVED;
	v->kind = PKT_ESP;
	v->esp.spi = spi;
	v->esp.seq = get32(l4 + 4);
	return R_PASS;
}

/*
 * The ISAKMP / IKEv2 header (RFC 2408 3.1, RFC 7296 3.1): both share the
 * layout, IKEv2's IKE SA SPIs sitting where the cookies are. `avail` is the
 * UDP payload present, `declared` the one the UDP length claims (they are
 * equal unless the packet is a first fragment). Returns R_PASS or an
 * R_ISAKMP_* reason.
 */
static enum reason parse_isakmp(const uint8_t *h, size_t avail,
				size_t declared, struct pkt_view *v)
{
	struct isakmp_hdr_view *k = &v->isakmp;
	uint32_t hlen;
	uint8_t major;

	if (avail < ISAKMP_HDR_LEN)
		return R_ISAKMP_SHORT;
	hlen = get32(h + 24);
	if (hlen < ISAKMP_HDR_LEN || hlen > declared)
		return R_ISAKMP_LENGTH;
	major = h[17] >> 4;
	if (major != ISAKMP_V1 && major != ISAKMP_V2)
		return R_ISAKMP_VERSION;
	k->cookie_i = get64(h);
	if (k->cookie_i == 0)
		return R_ISAKMP_COOKIE_ZERO;
	k->cookie_r = get64(h + 8);
	k->next_payload = h[16];
	k->major_version = major;
	k->minor_version = h[17] & 0x0f;
	k->exchange_type = h[18];
	k->flags = h[19];
	k->message_id = get32(h + 20);
	k->length = hlen;
	v->kind = PKT_ISAKMP;
	return R_PASS;
}

/*
 * UDP (RFC 768), and ISAKMP when either port is 500. Unfragmented, the UDP
 * length must equal the bytes present. On a first fragment (MF) the datagram
 * continues in later fragments, so the length must exceed them. Returns R_PASS
 * or an R_UDP_* / R_ISAKMP_* reason.
 */
static PKT_COLD enum reason parse_udp(const uint8_t *l4, size_t avail,
				      struct pkt_view *v)
{
	size_t ulen;

	if (avail < UDP_HDR_LEN)
		return R_UDP_TRUNCATED;
	ulen = get16(l4 + 4);
	if (ulen < UDP_HDR_LEN)
		return R_UDP_LENGTH;
	if (v->more_fragments ? ulen <= avail : ulen != avail)
		return R_UDP_LENGTH;
	v->udp.sport = get16(l4);
	v->udp.dport = get16(l4 + 2);
	v->udp.length = (uint16_t)ulen;
	v->udp.check = get16(l4 + UDP_OFF_CHECK);
	if (v->udp.sport != ISAKMP_PORT && v->udp.dport != ISAKMP_PORT) {
		v->kind = PKT_UDP;
		return R_PASS;
	}
	return parse_isakmp(l4 + UDP_HDR_LEN, avail - UDP_HDR_LEN,
			    ulen - UDP_HDR_LEN, v);
}

/* Entry point; contract in packet.h. The view starts zeroed, so on an error
 * it holds whatever was parsed before the fault and kind PKT_OTHER. */
enum reason pkt_parse(uint8_t *buf, size_t len, struct pkt_view *view)
{
	enum reason r;
	size_t avail;

	*view = (struct pkt_view){ .buf = buf, .len = len, .kind = PKT_OTHER };
	r = parse_ip(buf, len, view);
	if (r != R_PASS)
		return r;
	avail = len - view->l4_off;
	switch (view->protocol) {
	case IPPROTO_ESP_NUM:
		return parse_esp(buf + view->l4_off, avail, view);
	case IPPROTO_AH_NUM:
		view->kind = PKT_AH;
		return R_PASS;
	case IPPROTO_UDP_NUM:
		return parse_udp(buf + view->l4_off, avail, view);
	default:
		return R_PASS;
	}
}

/* v in network byte order, as a word to store with memcpy (the compiler
 * makes it one byte swap on a little-endian machine). */
static inline uint32_t wire32(uint32_t v)
{
	uint8_t p[4];
	uint32_t w;

	put32(p, v);
	memcpy(&w, p, sizeof(w));
	return w;
}

/* The 16-bit field at p as stored (network order bits in a native word). */
static inline uint16_t raw16(const uint8_t *p)
{
	uint16_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

/*
 * Replaces the 32-bit address at buf+off, from old to new, fixing the IPv4
 * header checksum and, for UDP carrying one, the UDP checksum whose
 * pseudo-header covers the address. RFC 768: a UDP checksum of 0 means none
 * and stays 0; a computed 0 is sent as 0xffff.
 *
 * The arithmetic runs on the words as stored, without converting them to
 * host order and back: byte-swapping 16-bit words commutes with one's
 * complement addition and complement (RFC 1071 2.(B)), and keeps 0 and
 * 0xffff, so csum_replace32() of the stored words is the stored form of
 * csum_replace32() of the host-order ones, bit for bit.
 */
static inline void rewrite_addr(struct pkt_view *v, size_t off,
				uint32_t new_addr)
{
	uint8_t *b = v->buf;
	uint32_t old_w, new_w = wire32(new_addr);
	uint16_t c;

	memcpy(&old_w, b + off, sizeof(old_w));
	c = csum_replace32(raw16(b + IP_OFF_CHECK), old_w, new_w);
	memcpy(b + off, &new_w, sizeof(new_w));
	memcpy(b + IP_OFF_CHECK, &c, sizeof(c));
	if ((v->kind == PKT_UDP || v->kind == PKT_ISAKMP) && v->udp.check) {
		uint8_t *uc = b + v->l4_off + UDP_OFF_CHECK;

		c = csum_replace32(raw16(uc), old_w, new_w);
		if (c == 0)
			c = 0xffff;
		memcpy(uc, &c, sizeof(c));
		v->udp.check = get16(uc);
	}
}

/* New source address for a parsed packet (outbound masquerade). */
void pkt_set_saddr(struct pkt_view *view, uint32_t new_saddr)
{
	rewrite_addr(view, IP_OFF_SADDR, new_saddr);
	view->saddr = new_saddr;
}

/* New destination address for a parsed packet (inbound demasquerade). */
void pkt_set_daddr(struct pkt_view *view, uint32_t new_daddr)
{
	rewrite_addr(view, IP_OFF_DADDR, new_daddr);
	view->daddr = new_daddr;
}

/* Full IPv4 header checksum of buf[0..ihl_bytes), skipping the checksum
 * field itself: the value to store there, host order. */
uint16_t pkt_ip_checksum(const uint8_t *buf, size_t ihl_bytes)
{
	uint32_t sum;

	if (ihl_bytes <= IP_OFF_CHECK)
		return csum_fold(csum_partial(buf, ihl_bytes, 0));
	sum = csum_partial(buf, IP_OFF_CHECK, 0);
	if (ihl_bytes > IP_OFF_SADDR)
		sum = csum_partial(buf + IP_OFF_SADDR,
				   ihl_bytes - IP_OFF_SADDR, sum);
	return csum_fold(sum);
}

/*
 * Full UDP checksum of the datagram buf[l4_off..len) over the pseudo-header
 * (addresses, protocol, the UDP length taken as len - l4_off), skipping the
 * checksum field. Returns the value to store, 0 mapped to 0xffff. Needs a
 * whole datagram of at least 8 bytes; a first fragment cannot be summed.
 */
uint16_t pkt_udp_checksum(const uint8_t *buf, size_t len, size_t l4_off)
{
	size_t ulen;
	uint32_t sum;
	uint16_t c;

	if (len < l4_off + UDP_HDR_LEN)
		return 0xffff;
	ulen = len - l4_off;
	sum = csum_partial(buf + IP_OFF_SADDR, 8,
			   IPPROTO_UDP_NUM + (uint32_t)ulen);
	sum = csum_partial(buf + l4_off, UDP_OFF_CHECK, sum);
	sum = csum_partial(buf + l4_off + UDP_HDR_LEN, ulen - UDP_HDR_LEN,
			   sum);
	c = csum_fold(sum);
	return c ? c : 0xffff;
}
