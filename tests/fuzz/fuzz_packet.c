/*
 * libFuzzer target: pkt_parse() on arbitrary bytes, then, for what it
 * accepts, the view checked against the bytes and every address rewrite
 * checked against full checksum recomputation (tests/fuzz/fuzz_check.h).
 * The packet is copied into a buffer of exactly its size so that ASan sees
 * any read past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FNV-1a of the input: new addresses that vary with it, without taking
 * bytes away from the packet (the seeds are plain packets). */
static uint32_t fnv(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* The view agrees with the bytes it came from. */
static void check_view(const uint8_t *b, size_t len, const struct pkt_view *v)
{
	FUZZ_ASSERT(v->len == len, "len %zu vs %zu", v->len, len);
	FUZZ_ASSERT(v->l4_off >= 20 && v->l4_off <= 60 && v->l4_off <= len,
		    "l4_off %zu", v->l4_off);
	FUZZ_ASSERT(v->l4_off == (size_t)(b[0] & 0x0f) * 4, "l4_off vs IHL");
	FUZZ_ASSERT(fz_get16(b + 2) == len, "total length");
	FUZZ_ASSERT(v->saddr == fz_get32(b + 12) && v->daddr == fz_get32(b + 16),
		    "addresses");
	FUZZ_ASSERT(v->protocol == b[9], "protocol");
	FUZZ_ASSERT((fz_get16(b + 6) & 0x1fff) == 0, "non-first fragment "
		    "accepted");
	switch (v->kind) {
	case PKT_ESP:
		FUZZ_ASSERT(v->protocol == 50, "ESP kind, protocol %u",
			    v->protocol);
		FUZZ_ASSERT(v->l4_off + 8 <= len, "ESP past the end");
		FUZZ_ASSERT(v->esp.spi == fz_get32(b + v->l4_off) &&
				    v->esp.spi >= 256,
			    "SPI 0x%08x", v->esp.spi);
		break;
	case PKT_AH:
		FUZZ_ASSERT(v->protocol == 51, "AH kind");
		break;
	case PKT_UDP:
	case PKT_ISAKMP:
		FUZZ_ASSERT(v->protocol == 17, "UDP kind");
		FUZZ_ASSERT(v->l4_off + 8 <= len, "UDP past the end");
		FUZZ_ASSERT(v->udp.sport == fz_get16(b + v->l4_off) &&
				    v->udp.dport == fz_get16(b + v->l4_off + 2) &&
				    v->udp.check == fz_get16(b + v->l4_off + 6),
			    "UDP fields");
		FUZZ_ASSERT(v->udp.length >= 8, "UDP length");
		if (v->more_fragments)
			FUZZ_ASSERT(v->udp.length > len - v->l4_off,
				    "first fragment's UDP length");
		else
			FUZZ_ASSERT(v->udp.length == len - v->l4_off,
				    "UDP length %u, %zu present",
				    v->udp.length, len - v->l4_off);
		if (v->kind == PKT_UDP) {
			FUZZ_ASSERT(v->udp.sport != 500 && v->udp.dport != 500,
				    "port 500 as plain UDP");
			break;
		}
		FUZZ_ASSERT(v->udp.sport == 500 || v->udp.dport == 500,
			    "ISAKMP without port 500");
		FUZZ_ASSERT(v->l4_off + 8 + 28 <= len, "ISAKMP past the end");
		FUZZ_ASSERT(v->isakmp.cookie_i != 0, "cookie 0");
		FUZZ_ASSERT(v->isakmp.major_version == 1 ||
				    v->isakmp.major_version == 2,
			    "version");
		FUZZ_ASSERT(v->isakmp.length >= 28 &&
				    v->isakmp.length <= v->udp.length - 8u,
			    "ISAKMP length %u", v->isakmp.length);
		break;
	default:
		FUZZ_ASSERT(v->protocol != 50 && v->protocol != 51 &&
				    v->protocol != 17,
			    "protocol %u parsed as OTHER", v->protocol);
		break;
	}
}

/* One rewrite of the address at off (12 source, 16 destination) on a
 * fresh parse of buf, checked against the bytes before it. */
static void rewrite(uint8_t *buf, size_t len, size_t off, uint32_t addr)
{
	uint8_t *before = malloc(len);
	struct pkt_view v;
	struct fz_facts f;

	FUZZ_ASSERT(before != NULL, "malloc");
	memcpy(before, buf, len);
	FUZZ_ASSERT(pkt_parse(buf, len, &v) == R_PASS, "reparse failed");
	fz_facts(buf, len, &v, &f);
	if (off == 12) {
		pkt_set_saddr(&v, addr);
		FUZZ_ASSERT(v.saddr == addr, "view saddr");
	} else {
		pkt_set_daddr(&v, addr);
		FUZZ_ASSERT(v.daddr == addr, "view daddr");
	}
	FUZZ_ASSERT(fz_get32(buf + off) == addr, "address not written");
	fz_check_rewrite(before, buf, len, &f, off);
	if (f.udp)
		FUZZ_ASSERT(v.udp.check == fz_get16(buf + v.l4_off + 6),
			    "view UDP checksum");
	/* the rewritten packet still parses: its IP checksum stays valid */
	FUZZ_ASSERT(pkt_parse(buf, len, &v) == R_PASS,
		    "rewritten packet does not parse");
	free(before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	uint8_t *orig = malloc(size ? size : 1);
	struct pkt_view v, v2;
	struct fz_facts f;
	enum reason r;
	uint32_t h = fnv(data, size);
	uint32_t addrs[4] = { h, ~h, 0, 0xffffffffu };

	FUZZ_ASSERT(buf && orig, "malloc");
	if (size)
		memcpy(buf, data, size);
	r = pkt_parse(buf, size, &v);
	FUZZ_ASSERT(r < R_MAX, "reason %d", (int)r);
	FUZZ_ASSERT(size == 0 || memcmp(buf, data, size) == 0,
		    "pkt_parse wrote to the packet");
	FUZZ_ASSERT(pkt_parse(buf, size, &v2) == r, "not deterministic");
	if (r != R_PASS) {
		free(buf);
		free(orig);
		return 0;
	}
	check_view(buf, size, &v);
	memcpy(orig, buf, size);
	fz_facts(buf, size, &v, &f);

	rewrite(buf, size, 12, addrs[h & 3]);
	rewrite(buf, size, 16, addrs[(h >> 2) & 3]);
	rewrite(buf, size, 12, h ^ 0x5a5a5a5a);
	/* back to the original addresses: with right checksums the packet is
	 * the original again, byte for byte */
	rewrite(buf, size, 12, v.saddr);
	rewrite(buf, size, 16, v.daddr);
	if (f.ip_right && (!f.udp || f.udp_check == 0 || f.udp_right))
		FUZZ_ASSERT(memcmp(buf, orig, size) == 0,
			    "round trip changed the packet");
	free(buf);
	free(orig);
	return 0;
}
