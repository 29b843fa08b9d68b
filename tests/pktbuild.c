#include "pktbuild.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t pb_addr(const char *dotted)
{
	struct in_addr in;

	if (inet_pton(AF_INET, dotted, &in) != 1) {
		fprintf(stderr, "pb_addr: bad literal %s\n", dotted);
		abort();
	}
	return ntohl(in.s_addr);
}

uint32_t pb_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

uint16_t pb_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

void pb_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void pb_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Straight RFC 1071 sum, written for clarity rather than speed. */
static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += pb_get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t pb_ip_csum(const uint8_t *buf)
{
	size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
	uint8_t hdr[60];

	memcpy(hdr, buf, ihl);
	hdr[10] = hdr[11] = 0;
	return fold(sum16(hdr, ihl, 0));
}

uint16_t pb_udp_csum(const uint8_t *buf, size_t len)
{
	size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
	size_t ulen = len - ihl;
	uint32_t sum = 0;
	uint16_t check;

	sum = sum16(buf + 12, 8, sum);          /* saddr, daddr */
	sum += 17;
	sum += (uint32_t)ulen;
	sum = sum16(buf + ihl, 6, sum);         /* ports, length */
	sum = sum16(buf + ihl + 8, ulen - 8, sum);
	check = fold(sum);
	return check ? check : 0xffff;
}

static size_t ip_header(uint8_t *buf, size_t cap, size_t l4_len, uint8_t proto,
			uint32_t src, uint32_t dst)
{
	size_t total = 20 + l4_len;

	if (total > cap || total > 0xffff)
		return 0;
	memset(buf, 0, 20);
	buf[0] = 0x45;
	pb_put16(buf + 2, (uint16_t)total);
	pb_put16(buf + 4, 0x1234);
	buf[8] = 64;
	buf[9] = proto;
	pb_put32(buf + 12, src);
	pb_put32(buf + 16, dst);
	pb_put16(buf + 10, pb_ip_csum(buf));
	return total;
}

static void pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31u + i * 7u);
}

size_t pb_esp(uint8_t *buf, size_t cap, uint32_t src, uint32_t dst,
	      uint32_t spi, uint32_t seq, size_t payload_len)
{
	size_t len = ip_header(buf, cap, 8 + payload_len, 50, src, dst);

	if (!len)
		return 0;
	pb_put32(buf + 20, spi);
	pb_put32(buf + 24, seq);
	pattern(buf + 28, payload_len, spi);
	return len;
}

size_t pb_ah(uint8_t *buf, size_t cap, uint32_t src, uint32_t dst,
	     uint32_t spi)
{
	size_t len = ip_header(buf, cap, 24, 51, src, dst);

	if (!len)
		return 0;
	buf[20] = 4;             /* next header: IPIP */
	buf[21] = 4;             /* payload length in 32-bit words - 2 */
	pb_put32(buf + 24, spi);
	pb_put32(buf + 28, 1);
	pattern(buf + 32, 12, spi);
	return len;
}

size_t pb_udp(uint8_t *buf, size_t cap, uint32_t src, uint32_t dst,
	      uint16_t sport, uint16_t dport, size_t payload_len, int no_csum)
{
	size_t len = ip_header(buf, cap, 8 + payload_len, 17, src, dst);

	if (!len)
		return 0;
	pb_put16(buf + 20, sport);
	pb_put16(buf + 22, dport);
	pb_put16(buf + 24, (uint16_t)(8 + payload_len));
	pb_put16(buf + 26, 0);
	pattern(buf + 28, payload_len, sport ^ dport);
	if (!no_csum)
		pb_put16(buf + 26, pb_udp_csum(buf, len));
	return len;
}

size_t pb_isakmp(uint8_t *buf, size_t cap, uint32_t src, uint32_t dst,
		 uint64_t cookie_i, uint64_t cookie_r, int version,
		 size_t extra)
{
	size_t len = pb_udp(buf, cap, src, dst, 500, 500, 28 + extra, 1);
	uint8_t *h = buf + 28;

	if (!len)
		return 0;
	pb_put32(h, (uint32_t)(cookie_i >> 32));
	pb_put32(h + 4, (uint32_t)cookie_i);
	pb_put32(h + 8, (uint32_t)(cookie_r >> 32));
	pb_put32(h + 12, (uint32_t)cookie_r);
	h[16] = 1;                                 /* next payload: SA */
	h[17] = (uint8_t)(version << 4);
	h[18] = version == 2 ? 34 : 2;             /* IKE_SA_INIT / ID prot */
	h[19] = version == 2 ? 0x08 : 0;           /* IKEv2 initiator flag */
	pb_put32(h + 20, 0);
	pb_put32(h + 24, (uint32_t)(28 + extra));
	pb_put16(buf + 26, pb_udp_csum(buf, len));
	return len;
}

void pb_fix_checksums(uint8_t *buf, size_t len)
{
	size_t ihl = (size_t)(buf[0] & 0x0f) * 4;

	pb_put16(buf + 10, pb_ip_csum(buf));
	if (buf[9] == 17 && len >= ihl + 8 && pb_get16(buf + ihl + 6) != 0) {
		pb_put16(buf + ihl + 6, 0);
		pb_put16(buf + ihl + 6, pb_udp_csum(buf, len));
	}
}
