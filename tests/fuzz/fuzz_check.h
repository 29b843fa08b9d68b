/*
 * Shared by the fuzz targets: a failed invariant aborts with a message (the
 * fuzzer saves the input), and the checks every address rewrite must pass
 * against full recomputation (pkt_ip_checksum / pkt_udp_checksum) and
 * against a plain ones'-complement residual that holds for packets whose
 * checksums were wrong to begin with.
 */
#ifndef IPSEC_MASQD_FUZZ_CHECK_H
#define IPSEC_MASQD_FUZZ_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"

#define FUZZ_ASSERT(cond, ...)                                              \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "%s:%d: invariant failed: %s: ",    \
				__FILE__, __LINE__, #cond);                 \
			fprintf(stderr, __VA_ARGS__);                       \
			fputc('\n', stderr);                                \
			abort();                                            \
		}                                                           \
	} while (0)

static inline uint16_t fz_get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t fz_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline void fz_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void fz_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Ones'-complement sum of big-endian words, reduced mod 0xffff (so -0 and
 * +0 are the same residue): written independently of src/csum.c. */
static inline uint64_t fz_sum(const uint8_t *p, size_t n)
{
	uint64_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += fz_get16(p + i);
	if (n & 1)
		s += (uint64_t)p[n - 1] << 8;
	return s;
}

/*
 * What a rewrite must preserve, taken from a packet that pkt_parse()
 * accepted: the IPv4 header's residual (mod 0xffff); for UDP with a
 * checksum, the residual of addresses + checksum field (the only pseudo-
 * header words that change), which an incremental update keeps even for a
 * first fragment or a wrong checksum; and whether each checksum equalled
 * full recomputation.
 */
struct fz_facts {
	size_t ihl, l4_off;
	bool udp;               /* UDP or ISAKMP */
	bool whole;             /* not a first fragment: full UDP sum possible */
	uint16_t ip_check, udp_check;
	bool ip_right, udp_right;
	uint64_t ip_res, udp_res;
};

static inline void fz_facts(const uint8_t *buf, size_t len,
			    const struct pkt_view *v, struct fz_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->ihl = (size_t)(buf[0] & 0x0f) * 4;
	f->l4_off = v->l4_off;
	f->ip_check = fz_get16(buf + 10);
	f->ip_right = f->ip_check == pkt_ip_checksum(buf, f->ihl);
	f->ip_res = fz_sum(buf, f->ihl) % 0xffff;
	f->udp = v->kind == PKT_UDP || v->kind == PKT_ISAKMP;
	f->whole = !v->more_fragments;
	if (f->udp) {
		f->udp_check = fz_get16(buf + v->l4_off + 6);
		f->udp_right = f->udp_check != 0 && f->whole &&
			       f->udp_check == pkt_udp_checksum(buf, len,
								 v->l4_off);
		f->udp_res = (fz_sum(buf + 12, 8) + f->udp_check) % 0xffff;
	}
}

/*
 * `after` is `before` (len bytes, facts f) with the 4-byte address at
 * addr_off (12 or 16) rewritten. Checks that nothing else changed but the
 * checksum fields, and the checksums (see struct fz_facts).
 */
static inline void fz_check_rewrite(const uint8_t *before, const uint8_t *after,
				    size_t len, const struct fz_facts *f,
				    size_t addr_off)
{
	for (size_t i = 0; i < len; i++) {
		if ((i >= 10 && i < 12) || (i >= addr_off && i < addr_off + 4))
			continue;
		if (f->udp && i >= f->l4_off + 6 && i < f->l4_off + 8)
			continue;
		FUZZ_ASSERT(before[i] == after[i],
			    "byte %zu changed 0x%02x -> 0x%02x (len %zu)", i,
			    before[i], after[i], len);
	}
	FUZZ_ASSERT(fz_sum(after, f->ihl) % 0xffff == f->ip_res,
		    "IPv4 header residual changed");
	if (f->ip_right)
		FUZZ_ASSERT(fz_get16(after + 10) ==
				    pkt_ip_checksum(after, f->ihl),
			    "IP checksum 0x%04x, full recomputation 0x%04x",
			    fz_get16(after + 10),
			    pkt_ip_checksum(after, f->ihl));
	if (!f->udp)
		return;
	if (f->udp_check == 0) {
		FUZZ_ASSERT(fz_get16(after + f->l4_off + 6) == 0,
			    "UDP checksum 0 (none) became 0x%04x",
			    fz_get16(after + f->l4_off + 6));
		return;
	}
	FUZZ_ASSERT(fz_get16(after + f->l4_off + 6) != 0,
		    "UDP checksum became 0 (none)");
	FUZZ_ASSERT((fz_sum(after + 12, 8) + fz_get16(after + f->l4_off + 6)) %
			    0xffff == f->udp_res,
		    "UDP pseudo-header residual changed");
	if (f->udp_right)
		FUZZ_ASSERT(fz_get16(after + f->l4_off + 6) ==
				    pkt_udp_checksum(after, len, f->l4_off),
			    "UDP checksum 0x%04x, full recomputation 0x%04x",
			    fz_get16(after + f->l4_off + 6),
			    pkt_udp_checksum(after, len, f->l4_off));
}

#endif
