/*
 * Classic pcap (not pcapng) reading: the whole file in memory, an index of
 * the IPv4 packets in it. Both byte orders and both timestamp resolutions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "pcap_reader.h"

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_MAGIC_NS 0xa1b23c4du

struct pcap_format {
	int swapped;
	int nanoseconds;
	uint32_t linktype;
};

static uint32_t rd32(const uint8_t *p, int swapped)
{
	uint32_t v;

	memcpy(&v, p, 4);
	if (swapped)
		v = __builtin_bswap32(v);
	return v;
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = NULL;

	if (!f)
		return -1;
	for (;;) {
		uint8_t *grown = realloc(buf, cap);

		if (!grown) {
			free(buf);
			fclose(f);
			errno = ENOMEM;
			return -1;
		}
		buf = grown;
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		cap *= 2;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		errno = EIO;
		return -1;
	}
	fclose(f);
	*data = buf;
	*len = n;
	return 0;
}

/* Offset of the IPv4 header in a frame of this link type, or -1. */
static long l3_offset(uint32_t linktype, const uint8_t *frame, size_t len)
{
	size_t off;
	uint16_t type;

	switch (linktype) {
	case 101:
	case 228:
		return 0;
	case 1:
		off = 12;
		if (len < off + 2)
			return -1;
		type = (uint16_t)(frame[off] << 8 | frame[off + 1]);
		while (type == 0x8100 && len >= off + 6) {
			off += 4;
			type = (uint16_t)(frame[off] << 8 | frame[off + 1]);
		}
		return type == 0x0800 ? (long)off + 2 : -1;
	case 113:
		if (len < 16)
			return -1;
		return (frame[14] << 8 | frame[15]) == 0x0800 ? 16 : -1;
	case 276:
		if (len < 20)
			return -1;
		return (frame[0] << 8 | frame[1]) == 0x0800 ? 20 : -1;
	default:
		return -1;
	}
}

static int parse_header(const uint8_t *d, size_t len, struct pcap_format *f)
{
	uint32_t magic;

	if (len < 24)
		return -1;
	memcpy(&magic, d, 4);
	f->swapped = magic == __builtin_bswap32(PCAP_MAGIC_US) ||
		     magic == __builtin_bswap32(PCAP_MAGIC_NS);
	magic = rd32(d, f->swapped);
	if (magic != PCAP_MAGIC_US && magic != PCAP_MAGIC_NS)
		return -1;
	f->nanoseconds = magic == PCAP_MAGIC_NS;
	f->linktype = rd32(d + 20, f->swapped) & 0x0fffffff;
	return 0;
}

/* Index the records; the IPv4 length is taken from the frame (captured
 * length), trailing link padding included — the engine will see any
 * mismatch with the IP total length and say so. */
static int index_records(struct pcap_capture *cap, size_t len,
			 const struct pcap_format *f)
{
	size_t pos = 24, max = 0;
	uint64_t first = 0;

	while (pos + 16 <= len) {
		const uint8_t *rec = cap->data + pos;
		uint64_t sec = rd32(rec, f->swapped), frac = rd32(rec + 4, f->swapped);
		size_t caplen = rd32(rec + 8, f->swapped);
		uint64_t ms = sec * 1000 + (f->nanoseconds ? frac / 1000000 : frac / 1000);
		long l3;

		if (caplen > len - pos - 16)
			return -1;
		if (cap->n == max) {
			struct pcap_packet *grown;

			max = max ? max * 2 : 1024;
			grown = realloc(cap->pkts, max * sizeof(*grown));
			if (!grown)
				return -1;
			cap->pkts = grown;
		}
		l3 = l3_offset(f->linktype, rec + 16, caplen);
		if (l3 < 0) {
			cap->skipped++;
		} else {
			if (!cap->n)
				first = ms;
			cap->pkts[cap->n].off = pos + 16 + (size_t)l3;
			cap->pkts[cap->n].len = caplen - (size_t)l3;
			cap->pkts[cap->n].at_ms = ms >= first ? ms - first : 0;
			cap->span_ms = cap->pkts[cap->n].at_ms;
			cap->n++;
		}
		pos += 16 + caplen;
	}
	return 0;
}

int pcap_load(const char *path, struct pcap_capture *cap, char *err,
	      size_t errlen)
{
	struct pcap_format f;
	size_t len;

	memset(cap, 0, sizeof(*cap));
	if (read_file(path, &cap->data, &len)) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	if (parse_header(cap->data, len, &f)) {
		snprintf(err, errlen, "%s: not a pcap file (pcapng is not supported)", path);
		pcap_free(cap);
		return -1;
	}
	if (index_records(cap, len, &f)) {
		snprintf(err, errlen, "%s: truncated or corrupt record", path);
		pcap_free(cap);
		return -1;
	}
	return 0;
}

void pcap_free(struct pcap_capture *cap)
{
	free(cap->data);
	free(cap->pkts);
	memset(cap, 0, sizeof(*cap));
}

size_t pcap_replay(const struct pcap_capture *cap, struct engine *eng,
		   long rep, FILE *out)
{
	static const char *const verdicts[] = { "accept", "rewrite", "drop" };
	uint64_t base = (uint64_t)rep * (cap->span_ms + 1000);
	uint8_t buf[65536];

	for (size_t i = 0; i < cap->n; i++) {
		const struct pcap_packet *p = &cap->pkts[i];
		struct engine_decision d;
		enum direction dir = DIR_INBOUND;
		size_t len = p->len < sizeof(buf) ? p->len : sizeof(buf);

		memcpy(buf, cap->data + p->off, len);
		if (len >= 20 && engine_is_internal(eng, (uint32_t)buf[12] << 24 |
						    (uint32_t)buf[13] << 16 |
						    (uint32_t)buf[14] << 8 | buf[15]))
			dir = DIR_OUTBOUND;
		engine_run_timers(eng, base + p->at_ms);
		engine_process(eng, buf, len, dir, base + p->at_ms, &d);
		if (out)
			fprintf(out, "%6zu %9.3fs %s %s %s copies=%u\n", i + 1,
				(double)p->at_ms / 1000.0,
				dir == DIR_OUTBOUND ? "out" : "in ",
				verdicts[d.verdict], reason_name(d.reason),
				d.n_copies);
	}
	return cap->n;
}
