/*
 * Test packet builder: well-formed IPv4 packets with ESP, AH, UDP and ISAKMP
 * headers and correct checksums, computed here independently of src/csum.c
 * so that tests check the engine's arithmetic against a second opinion.
 * Addresses and integers are host order. Each builder returns the packet
 * length (0 if cap is too small).
 */
#ifndef IPSEC_MASQD_PKTBUILD_H
#define IPSEC_MASQD_PKTBUILD_H

#include <stddef.h>
#include <stdint.h>

/* "a.b.c.d" -> host-order address; aborts on a bad literal (tests only). */
uint32_t pb_addr(const char *dotted);

size_t pb_esp(uint8_t *buf, size_t cap, uint32_t src, uint32_t dst,
	      uint32_t spi, uint32_t seq, size_t payload_len);
size_t pb_ah(uint8_t *buf, size_t cap, uint32_t src, uint32_t dst,
	     uint32_t spi);
/* UDP with payload_len bytes of pattern payload; no_csum leaves the UDP
 * checksum 0 ("none"). */
size_t pb_udp(uint8_t *buf, size_t cap, uint32_t src, uint32_t dst,
	      uint16_t sport, uint16_t dport, size_t payload_len, int no_csum);
/* UDP/500 -> 500 with a 28-byte ISAKMP header (major version `version`,
 * exchange type 2 for IKEv1 / 34 for IKEv2) and `extra` payload bytes. */
size_t pb_isakmp(uint8_t *buf, size_t cap, uint32_t src, uint32_t dst,
		 uint64_t cookie_i, uint64_t cookie_r, int version,
		 size_t extra);

/* Recompute the IPv4 header checksum (and the UDP checksum when the packet
 * is UDP with a non-zero one) after a test edited the header. */
void pb_fix_checksums(uint8_t *buf, size_t len);

/* Independent full checksums, host order: the IPv4 header's, and UDP's over
 * the pseudo-header (0 mapped to 0xffff). */
uint16_t pb_ip_csum(const uint8_t *buf);
uint16_t pb_udp_csum(const uint8_t *buf, size_t len);

uint32_t pb_get32(const uint8_t *p);
uint16_t pb_get16(const uint8_t *p);
void pb_put32(uint8_t *p, uint32_t v);
void pb_put16(uint8_t *p, uint16_t v);

#endif
