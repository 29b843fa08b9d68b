/*
 * IPv4 / ESP / AH / UDP / ISAKMP parsing into a bounds-checked view, and the
 * address rewrites with incremental checksum updates (RFC 1624): the parts
 * off the ESP packet path (UDP, ISAKMP, IPv4 options, the UDP checksum of a
 * rewrite, full checksums); the rest is inline in packet.h. No I/O, no
 * allocation: every length is checked before the read it guards, and every
 * multi-byte load is a byte-shift or a memcpy (any alignment).
 */
#include "packet.h"

#include <string.h>

#include "csum.h"

#define UDP_OFF_CHECK 6
#define ISAKMP_V1 1
#define ISAKMP_V2 2

/* Big-endian 64-bit load (ISAKMP cookies); length checked by the caller. */
static inline uint64_t get64(const uint8_t *p)
{
	return (uint64_t)pkt_get32(p) << 32 | pkt_get32(p + 4);
}

/* The header checksum of a header with options (rare: kept out of line, so
 * that the inline parser needs no stack frame for it). Non-zero when it
 * verifies. */
int pkt_ip_options_csum_ok(const uint8_t *buf, size_t ihl)
{
	return csum_fold(csum_partial(buf, ihl, 0)) == 0;
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
	hlen = pkt_get32(h + 24);
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
	k->message_id = pkt_get32(h + 20);
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
enum reason pkt_parse_udp(const uint8_t *l4, size_t avail,
			  struct pkt_view *v)
{
	size_t ulen;

	if (avail < UDP_HDR_LEN)
		return R_UDP_TRUNCATED;
	ulen = pkt_get16(l4 + 4);
	if (ulen < UDP_HDR_LEN)
		return R_UDP_LENGTH;
	if (v->more_fragments ? ulen <= avail : ulen != avail)
		return R_UDP_LENGTH;
	v->udp.sport = pkt_get16(l4);
	v->udp.dport = pkt_get16(l4 + 2);
	v->udp.length = (uint16_t)ulen;
	v->udp.check = pkt_get16(l4 + UDP_OFF_CHECK);
	if (v->udp.sport != ISAKMP_PORT && v->udp.dport != ISAKMP_PORT) {
		v->kind = PKT_UDP;
		return R_PASS;
	}
	return parse_isakmp(l4 + UDP_HDR_LEN, avail - UDP_HDR_LEN,
			    ulen - UDP_HDR_LEN, v);
}

/* The UDP half of pkt_set_saddr()/pkt_set_daddr() (see packet.h): the
 * checksum over the pseudo-header, RFC 768's 0 kept (none) and a computed 0
 * sent as 0xffff, on the stored words as there. */
void pkt_fix_udp_check(struct pkt_view *v, uint32_t old_w, uint32_t new_w)
{
	uint8_t *uc = v->buf + v->l4_off + UDP_OFF_CHECK;
	uint16_t c;

	memcpy(&c, uc, sizeof(c));
	c = csum_replace32(c, old_w, new_w);
	if (c == 0)
		c = 0xffff;
	memcpy(uc, &c, sizeof(c));
	v->udp.check = pkt_get16(uc);
}

/* Full IPv4 header checksum of buf[0..ihl_bytes), skipping the checksum
 * field itself: the value to store there, host order. */
uint16_t pkt_ip_checksum(const uint8_t *buf, size_t ihl_bytes)
{
	uint32_t sum;

	if (ihl_bytes <= PKT_OFF_CHECK)
		return csum_fold(csum_partial(buf, ihl_bytes, 0));
	sum = csum_partial(buf, PKT_OFF_CHECK, 0);
	if (ihl_bytes > PKT_OFF_SADDR)
		sum = csum_partial(buf + PKT_OFF_SADDR,
				   ihl_bytes - PKT_OFF_SADDR, sum);
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
	sum = csum_partial(buf + PKT_OFF_SADDR, 8,
			   IPPROTO_UDP_NUM + (uint32_t)ulen);
	sum = csum_partial(buf + l4_off, UDP_OFF_CHECK, sum);
	sum = csum_partial(buf + l4_off + UDP_HDR_LEN, ulen - UDP_HDR_LEN,
			   sum);
	c = csum_fold(sum);
	return c ? c : 0xffff;
}
