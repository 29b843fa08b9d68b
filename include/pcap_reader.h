/*
 * Reads a classic pcap capture into memory and replays its IPv4 packets
 * through the engine, for ipsec-masqd-replay and the benchmarks.
 */
#ifndef IPSEC_MASQD_PCAP_READER_H
#define IPSEC_MASQD_PCAP_READER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine.h"

struct pcap_packet {
	size_t off;          /* of the IPv4 header in data */
	size_t len;          /* IPv4 bytes captured */
	uint64_t at_ms;      /* since the first packet */
};

struct pcap_capture {
	uint8_t *data;
	struct pcap_packet *pkts;
	size_t n;
	size_t skipped;      /* not IPv4, or cut short by the snap length */
	uint64_t span_ms;    /* first to last packet */
};

/* Load path; link types Ethernet (1), raw (101, 228), Linux SLL (113) and
 * SLL2 (276). Returns 0, or -1 with a message in err. */
int pcap_load(const char *path, struct pcap_capture *cap, char *err,
	      size_t errlen);
void pcap_free(struct pcap_capture *cap);

/*
 * Feed every packet to eng once, as repetition `rep` (its clock continues
 * after the previous repetitions). The direction is outbound when the source
 * is internal, inbound otherwise. One line per packet to out unless NULL.
 * Returns the number of packets fed.
 */
size_t pcap_replay(const struct pcap_capture *cap, struct engine *eng,
		   long rep, FILE *out);

#endif
