/*
 * IPv4 fragmentation in user space: see ipfrag.h. Pure.
 */
#include <string.h>

#include "csum.h"
#include "ipfrag.h"

#define IP_HDR 20
#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Payload bytes per fragment but the last: a multiple of 8. */
static size_t ipfrag_slice(size_t mtu)
{
	return (mtu - IP_HDR) & ~(size_t)7;
}

size_t ipfrag_count(const uint8_t *pkt, size_t len, size_t mtu)
{
	size_t slice;

	if (len < IP_HDR || (pkt[0] >> 4) != 4 || (pkt[0] & 0x0f) != 5 ||
	    get16(pkt + 2) != len)
		return 0;   /* only option-less, whole-length headers */
	if (len <= mtu)
		return 1;
	if ((get16(pkt + 6) & IP_DF) || mtu < IP_HDR + 8)
		return 0;
	slice = ipfrag_slice(mtu);
	return (len - IP_HDR + slice - 1) / slice;
}

size_t ipfrag_build(const uint8_t *pkt, size_t len, size_t mtu, size_t index,
		    uint8_t *out)
{
	size_t slice = ipfrag_slice(mtu), from = index * slice;
	size_t data = len - IP_HDR - from;
	uint16_t frag = get16(pkt + 6);
	uint16_t off = (uint16_t)((frag & IP_OFFMASK) + from / 8);
	uint16_t flags = frag & IP_MF;   /* the original's MF stays on its end */

	if (data > slice) {
		data = slice;
		flags = IP_MF;
	}
	memcpy(out, pkt, IP_HDR);
	memcpy(out + IP_HDR, pkt + IP_HDR + from, data);
	put16(out + 2, (uint16_t)(IP_HDR + data));
	put16(out + 6, (uint16_t)(flags | off));
	put16(out + 10, 0);
	put16(out + 10, csum_fold(csum_partial(out, IP_HDR, 0)));
	return IP_HDR + data;
}
