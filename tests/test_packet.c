/*
 * pkt_parse, pkt_set_saddr/daddr and the reason names. Every malformed
 * reason has a minimal packet that triggers exactly it, with its boundary
 * neighbours; every truncation of a valid packet is parsed from an exact-size
 * heap copy (so ASan and valgrind see any over-read); and random packets are
 * rewritten and compared with full checksums from tests/pktbuild.c, written
 * independently of src/csum.c. Hex fixtures live in tests/data/packets
 * (found through $top_srcdir, "." when unset). Fixed-seed PRNG, printed;
 * TEST_SEED overrides it.
 */
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "pktbuild.h"

#define CAP 2048

/* Check's ck_assert_* records a checkpoint on every success (I/O to the
 * parent process); the hot loops below use this, which costs only on
 * failure. Without it the suite takes minutes under valgrind. */
#define REQUIRE(cond, ...) do {				\
		if (!(cond))					\
			ck_abort_msg(__VA_ARGS__);		\
	} while (0)

static uint64_t rng_seed, rng_state;

/* Each test starts from the printed seed, forked or not (CK_FORK=no). */
static void rng_reset(void)
{
	rng_state = rng_seed;
}

/* splitmix64: independent of libc's rand() state. */
static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t rng_below(uint32_t n)
{
	return (uint32_t)(rng() % n);
}

static const uint32_t LAN = 0xc0a8010a;   /* 192.168.1.10 */
static const uint32_t REM = 0xcb007107;   /* 203.0.113.7 */
static const uint32_t EXT = 0xc6336401;   /* 198.51.100.1 */

/* Sets the total length to len and recomputes the header checksum (the UDP
 * one too when non-zero and the datagram is whole), as pb_fix_checksums. */
static void set_totlen(uint8_t *b, size_t len)
{
	pb_put16(b + 2, (uint16_t)len);
	pb_put16(b + 10, pb_ip_csum(b));
}

/* Parses an exact-size heap copy of b[0..len): an over-read is an ASan or
 * valgrind error rather than a silent read of the caller's slack. */
static enum reason parse_copy(const uint8_t *b, size_t len,
			      struct pkt_view *v)
{
	uint8_t *c = malloc(len ? len : 1);
	enum reason r;

	REQUIRE(c != NULL, "out of memory");
	if (len)
		memcpy(c, b, len);
	r = pkt_parse(c, len, v);
	v->buf = NULL;
	free(c);
	return r;
}

#define ck_parse(b, len, want) do {					\
		struct pkt_view v_;					\
		enum reason r_ = parse_copy((b), (len), &v_);		\
		REQUIRE(r_ == (want), "len %zu: got %s, want %s",	\
			      (size_t)(len), reason_name(r_),		\
			      reason_name(want));			\
	} while (0)

/* Inserts optlen bytes of IP options (filled by the caller's pattern) after
 * the 20-byte header, sets IHL and total length, fixes checksums. */
static size_t add_options(uint8_t *b, size_t len, const uint8_t *opt,
			  size_t optlen)
{
	memmove(b + 20 + optlen, b + 20, len - 20);
	memcpy(b + 20, opt, optlen);
	b[0] = (uint8_t)(0x40 | (5 + optlen / 4));
	len += optlen;
	pb_put16(b + 2, (uint16_t)len);
	pb_fix_checksums(b, len);
	return len;
}

/* ---- fixtures ------------------------------------------------------------ */

struct fixture {
	uint8_t b[CAP];
	size_t len;
	char expect[64];   /* the "# expect:" line: "<reason> [kind]" */
};

/* Reads tests/data/packets/<name>.hex: hex byte pairs, whitespace, '#'
 * comments to end of line. Fails the test on anything else. */
static void load_fixture(const char *name, struct fixture *f)
{
	const char *top = getenv("top_srcdir");
	char path[1024];
	FILE *fp;
	int c, nib = -1;

	snprintf(path, sizeof(path), "%s/tests/data/packets/%s.hex",
		 top ? top : ".", name);
	fp = fopen(path, "r");
	ck_assert_msg(fp != NULL, "cannot open %s", path);
	f->len = 0;
	f->expect[0] = 0;
	while ((c = getc(fp)) != EOF) {
		if (c == '#') {
			char line[256];

			if (!fgets(line, sizeof(line), fp))
				break;
			if (!strncmp(line, " expect: ", 9)) {
				size_t k = strcspn(line + 9, "\n");

				ck_assert_msg(k < sizeof(f->expect),
					      "%s: expect line too long", path);
				memcpy(f->expect, line + 9, k);
				f->expect[k] = 0;
			} else if (!strchr(line, '\n')) {
				ck_abort_msg("%s: comment too long", path);
			}
			continue;
		}
		if (isspace(c))
			continue;
		ck_assert_msg(isxdigit(c), "%s: bad character '%c'", path, c);
		if (nib < 0) {
			nib = c;
			continue;
		}
		ck_assert_msg(f->len < CAP, "%s: too long", path);
		{
			char hx[3] = { (char)nib, (char)c, 0 };

			f->b[f->len++] = (uint8_t)strtoul(hx, NULL, 16);
		}
		nib = -1;
	}
	fclose(fp);
	ck_assert_msg(nib < 0, "%s: odd number of hex digits", path);
	ck_assert_msg(f->expect[0], "%s: no '# expect:' line", path);
}

static const char *const kind_names[] = {
	[PKT_OTHER] = "other", [PKT_ESP] = "esp", [PKT_AH] = "ah",
	[PKT_UDP] = "udp", [PKT_ISAKMP] = "isakmp",
};

static const char *const fixtures[] = {
	"ah_ok", "esp_first_fragment", "esp_ok", "esp_spi_255",
	"esp_spi_256", "esp_spi_zero", "ikev1_ip_options", "ikev1_quick_mode",
	"ikev2_auth_response", "ikev2_sa_init", "ip_checksum_bad",
	"ip_fragment", "isakmp_27_bytes", "isakmp_version3",
	"udp_4500_nocsum", "udp_length_lie",
};
#define N_FIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

/* Every fixture parses to what its "# expect:" line says. */
START_TEST(fixtures_parse_as_expected)
{
	static struct fixture f;
	struct pkt_view v;
	char got[64];

	for (size_t i = 0; i < N_FIXTURES; i++) {
		enum reason r;

		load_fixture(fixtures[i], &f);
		r = parse_copy(f.b, f.len, &v);
		if (r == R_PASS)
			snprintf(got, sizeof(got), "ok %s", kind_names[v.kind]);
		else
			snprintf(got, sizeof(got), "%s", reason_name(r));
		ck_assert_msg(!strcmp(got, f.expect), "%s: got '%s', want '%s'",
			      fixtures[i], got, f.expect);
	}
}
END_TEST

/* No fixture file sits in the directory unlisted (and so untested). */
START_TEST(fixtures_all_listed)
{
	const char *top = getenv("top_srcdir");
	char path[1024];
	DIR *d;
	struct dirent *de;
	unsigned seen = 0;

	snprintf(path, sizeof(path), "%s/tests/data/packets",
		 top ? top : ".");
	d = opendir(path);
	ck_assert_msg(d != NULL, "cannot open %s", path);
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name), i;

		if (n < 5 || strcmp(de->d_name + n - 4, ".hex"))
			continue;
		for (i = 0; i < N_FIXTURES; i++)
			if (strlen(fixtures[i]) == n - 4 &&
			    !strncmp(fixtures[i], de->d_name, n - 4))
				break;
		ck_assert_msg(i < N_FIXTURES, "%s not listed", de->d_name);
		seen++;
	}
	closedir(d);
	ck_assert_uint_eq(seen, N_FIXTURES);
}
END_TEST

/* ESP: every field, in host order. */
START_TEST(fixture_esp_fields)
{
	static struct fixture f;
	struct pkt_view v;

	load_fixture("esp_ok", &f);
	ck_assert_int_eq(pkt_parse(f.b, f.len, &v), R_PASS);
	ck_assert_ptr_eq(v.buf, f.b);
	ck_assert_uint_eq(v.len, 52);
	ck_assert_uint_eq(v.l4_off, 20);
	ck_assert_uint_eq(v.saddr, LAN);
	ck_assert_uint_eq(v.daddr, REM);
	ck_assert_uint_eq(v.protocol, 50);
	ck_assert_uint_eq(v.more_fragments, 0);
	ck_assert_int_eq(v.kind, PKT_ESP);
	ck_assert_uint_eq(v.esp.spi, 0xc0ffee01u);
	ck_assert_uint_eq(v.esp.seq, 7);

	load_fixture("esp_first_fragment", &f);
	ck_assert_int_eq(pkt_parse(f.b, f.len, &v), R_PASS);
	ck_assert_uint_eq(v.more_fragments, 1);
	ck_assert_uint_eq(v.esp.spi, 0x1000);
	ck_assert_uint_eq(v.saddr, REM);
	ck_assert_uint_eq(v.daddr, EXT);

	load_fixture("esp_spi_256", &f);
	ck_assert_int_eq(pkt_parse(f.b, f.len, &v), R_PASS);
	ck_assert_uint_eq(v.esp.spi, 256);
	ck_assert_uint_eq(v.esp.seq, 1);
	ck_assert_uint_eq(v.len, 28);
}
END_TEST

/* IKEv1 and IKEv2 headers: every field of struct isakmp_hdr_view. */
START_TEST(fixture_isakmp_fields)
{
	static struct fixture f;
	struct pkt_view v;

	load_fixture("ikev1_quick_mode", &f);
	ck_assert_int_eq(pkt_parse(f.b, f.len, &v), R_PASS);
	ck_assert_int_eq(v.kind, PKT_ISAKMP);
	ck_assert_uint_eq(v.udp.sport, 500);
	ck_assert_uint_eq(v.udp.dport, 500);
	ck_assert_uint_eq(v.udp.length, 72);
	ck_assert_uint_eq(v.udp.check, pb_get16(f.b + 26));
	ck_assert_uint_ne(v.udp.check, 0);
	ck_assert_uint_eq(v.isakmp.cookie_i, 0x0123456789abcdefull);
	ck_assert_uint_eq(v.isakmp.cookie_r, 0xfedcba9876543210ull);
	ck_assert_uint_eq(v.isakmp.next_payload, 8);
	ck_assert_uint_eq(v.isakmp.major_version, 1);
	ck_assert_uint_eq(v.isakmp.minor_version, 0);
	ck_assert_uint_eq(v.isakmp.exchange_type, 32);
	ck_assert_uint_eq(v.isakmp.flags, 0x01);
	ck_assert_uint_eq(v.isakmp.message_id, 0x5a5aa5a5u);
	ck_assert_uint_eq(v.isakmp.length, 64);

	load_fixture("ikev2_sa_init", &f);
	ck_assert_int_eq(pkt_parse(f.b, f.len, &v), R_PASS);
	ck_assert_int_eq(v.kind, PKT_ISAKMP);
	ck_assert_uint_eq(v.isakmp.cookie_i, 0x1122334455667788ull);
	ck_assert_uint_eq(v.isakmp.cookie_r, 0);
	ck_assert_uint_eq(v.isakmp.next_payload, 33);
	ck_assert_uint_eq(v.isakmp.major_version, 2);
	ck_assert_uint_eq(v.isakmp.minor_version, 0);
	ck_assert_uint_eq(v.isakmp.exchange_type, 34);
	ck_assert_uint_eq(v.isakmp.flags, 0x08);
	ck_assert_uint_eq(v.isakmp.message_id, 0);
	ck_assert_uint_eq(v.isakmp.length, 48);

	load_fixture("ikev2_auth_response", &f);
	ck_assert_int_eq(pkt_parse(f.b, f.len, &v), R_PASS);
	ck_assert_uint_eq(v.saddr, REM);
	ck_assert_uint_eq(v.daddr, EXT);
	ck_assert_uint_eq(v.isakmp.cookie_i, 0x1122334455667788ull);
	ck_assert_uint_eq(v.isakmp.cookie_r, 0x99aabbccddeeff00ull);
	ck_assert_uint_eq(v.isakmp.next_payload, 46);
	ck_assert_uint_eq(v.isakmp.major_version, 2);
	ck_assert_uint_eq(v.isakmp.exchange_type, 35);
	ck_assert_uint_eq(v.isakmp.flags, 0x20);
	ck_assert_uint_eq(v.isakmp.message_id, 1);
	ck_assert_uint_eq(v.isakmp.length, 79);
	ck_assert_uint_eq(v.udp.length, 87);
	ck_assert_uint_eq(v.len, 107);
}
END_TEST

/* IP options are skipped, not refused: the transport header follows them. */
START_TEST(fixture_ip_options)
{
	static struct fixture f;
	struct pkt_view v;

	load_fixture("ikev1_ip_options", &f);
	ck_assert_int_eq(pkt_parse(f.b, f.len, &v), R_PASS);
	ck_assert_uint_eq(v.l4_off, 28);
	ck_assert_int_eq(v.kind, PKT_ISAKMP);
	ck_assert_uint_eq(v.udp.length, 40);
	ck_assert_uint_eq(v.isakmp.cookie_i, 0xabcdef0102030405ull);
	ck_assert_uint_eq(v.isakmp.length, 32);
	ck_assert_uint_eq(pkt_ip_checksum(f.b, 28), pb_get16(f.b + 10));
	ck_assert_uint_eq(pkt_udp_checksum(f.b, f.len, 28),
			  pb_get16(f.b + 34));
}
END_TEST

/* Built packets with every option length 4..40: l4_off follows IHL. */
START_TEST(ip_options_every_length)
{
	static uint8_t b[CAP];
	uint8_t opt[40];
	struct pkt_view v;

	memset(opt, 1, sizeof(opt));            /* NOPs */
	for (size_t ol = 0; ol <= 40; ol += 4) {
		size_t n = pb_esp(b, CAP, LAN, REM, 0x4242, 9, 5);

		n = add_options(b, n, opt, ol);
		ck_assert_int_eq(parse_copy(b, n, &v), R_PASS);
		ck_assert_uint_eq(v.l4_off, 20 + ol);
		ck_assert_int_eq(v.kind, PKT_ESP);
		ck_assert_uint_eq(v.esp.spi, 0x4242);
		ck_assert_uint_eq(v.esp.seq, 9);

		n = pb_isakmp(b, CAP, LAN, REM, 0x77, 0x88, 2, 3);
		n = add_options(b, n, opt, ol);
		ck_assert_int_eq(parse_copy(b, n, &v), R_PASS);
		ck_assert_uint_eq(v.l4_off, 20 + ol);
		ck_assert_int_eq(v.kind, PKT_ISAKMP);
		ck_assert_uint_eq(v.isakmp.cookie_i, 0x77);
		ck_assert_uint_eq(v.isakmp.cookie_r, 0x88);
		ck_assert_uint_eq(v.isakmp.length, 31);
	}
}
END_TEST

/* ---- malformed IPv4 -------------------------------------------------------- */

START_TEST(ip_truncated)
{
	static uint8_t b[CAP];
	size_t n = pb_esp(b, CAP, LAN, REM, 0x1000, 1, 8);
	struct pkt_view v;

	for (size_t len = 0; len < 20; len++)
		ck_parse(b, len, R_IP_TRUNCATED);
	/* 19 bytes whose total length says 19: still too short */
	set_totlen(b, 19);
	ck_parse(b, 19, R_IP_TRUNCATED);
	/* exactly 20: a bare header of another protocol is fine */
	n = pb_esp(b, CAP, LAN, REM, 0x1000, 1, 0);
	b[9] = 6;
	set_totlen(b, 20);
	ck_assert_int_eq(parse_copy(b, 20, &v), R_PASS);
	ck_assert_int_eq(v.kind, PKT_OTHER);
	ck_assert_uint_eq(v.protocol, 6);
	ck_assert_uint_eq(v.l4_off, 20);
	ck_assert_uint_eq(n, 28);
}
END_TEST

START_TEST(ip_version)
{
	static uint8_t b[CAP];
	size_t n;

	for (unsigned ver = 0; ver < 16; ver++) {
		n = pb_esp(b, CAP, LAN, REM, 0x1000, 1, 8);
		b[0] = (uint8_t)(ver << 4 | 5);
		pb_fix_checksums(b, n);
		ck_parse(b, n, ver == 4 ? R_PASS : R_IP_VERSION);
	}
	/* version is checked first: version 6 with IHL 4, bad checksum */
	n = pb_esp(b, CAP, LAN, REM, 0x1000, 1, 8);
	b[0] = 0x64;
	ck_parse(b, n, R_IP_VERSION);
}
END_TEST

START_TEST(ip_ihl_short)
{
	static uint8_t b[CAP];
	size_t n;

	for (unsigned ihl = 0; ihl < 5; ihl++) {
		n = pb_esp(b, CAP, LAN, REM, 0x1000, 1, 8);
		b[0] = (uint8_t)(0x40 | ihl);
		pb_fix_checksums(b, n);      /* sums the short header */
		ck_parse(b, n, R_IP_IHL_SHORT);
		pb_put16(b + 2, 3);          /* and before the total length */
		ck_parse(b, n, R_IP_IHL_SHORT);
	}
	n = pb_esp(b, CAP, LAN, REM, 0x1000, 1, 8);
	ck_parse(b, n, R_PASS);                /* IHL 5 is the boundary */
}
END_TEST

START_TEST(ip_ihl_past_end)
{
	static uint8_t b[CAP];
	size_t n;
	struct pkt_view v;

	/* 20-byte packet claiming 24 bytes of header: past the buffer */
	n = pb_esp(b, CAP, LAN, REM, 0x1000, 1, 0);
	b[9] = 6;
	set_totlen(b, 20);
	b[0] = 0x46;
	ck_parse(b, 20, R_IP_IHL_PAST_END);
	/* 24 bytes, header of 24, but total length 20: past the total */
	memset(b + 20, 1, 4);
	ck_parse(b, 24, R_IP_IHL_PAST_END);
	/* IHL 6 with total length 24: the boundary, fine */
	set_totlen(b, 24);
	ck_assert_int_eq(parse_copy(b, 24, &v), R_PASS);
	ck_assert_uint_eq(v.l4_off, 24);
	ck_assert_int_eq(v.kind, PKT_OTHER);
	/* IHL 15: 59 bytes are one short, 60 are enough */
	memset(b + 20, 1, 40);
	b[0] = 0x4f;
	set_totlen(b, 59);
	ck_parse(b, 59, R_IP_IHL_PAST_END);
	set_totlen(b, 60);
	ck_assert_int_eq(parse_copy(b, 60, &v), R_PASS);
	ck_assert_uint_eq(v.l4_off, 60);
	/* the ESP packet of test_engine: IHL 15 on 36 bytes */
	n = pb_esp(b, CAP, LAN, REM, 0x1000, 1, 8);
	b[0] = 0x4f;
	ck_parse(b, n, R_IP_IHL_PAST_END);
}
END_TEST

START_TEST(ip_totlen)
{
	static uint8_t b[CAP];
	size_t n = pb_esp(b, CAP, LAN, REM, 0x1000, 1, 8);

	set_totlen(b, n + 1);
	ck_parse(b, n, R_IP_TOTLEN);
	set_totlen(b, n - 1);
	ck_parse(b, n, R_IP_TOTLEN);
	set_totlen(b, 0xffff);
	ck_parse(b, n, R_IP_TOTLEN);
	/* a buffer longer than the datagram (link padding) also disagrees */
	set_totlen(b, n);
	ck_parse(b, n + 2, R_IP_TOTLEN);
	ck_parse(b, n, R_PASS);
	/* total length is checked before the header checksum */
	pb_put16(b + 2, (uint16_t)(n + 1));
	ck_parse(b, n, R_IP_TOTLEN);
}
END_TEST

START_TEST(ip_checksum)
{
	static uint8_t b[CAP];
	size_t n = pb_esp(b, CAP, LAN, REM, 0x1000, 1, 8);
	static const unsigned bytes[] = { 1, 4, 5, 6, 7, 8, 9, 10, 11, 12,
					  13, 14, 15, 16, 17, 18, 19 };

	/* any single bit flipped outside version/IHL/total length */
	for (size_t i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			b[bytes[i]] ^= (uint8_t)(1u << bit);
			ck_parse(b, n, R_IP_CHECKSUM);
			b[bytes[i]] ^= (uint8_t)(1u << bit);
		}
	}
	ck_parse(b, n, R_PASS);
	/* covers the options too */
	{
		uint8_t opt[8] = { 0x94, 4, 0, 0, 1, 1, 1, 0 };

		n = add_options(b, n, opt, 8);
		ck_parse(b, n, R_PASS);
		b[27] ^= 0x80;
		ck_parse(b, n, R_IP_CHECKSUM);
	}
	/* the checksum is tested before the fragment offset */
	n = pb_esp(b, CAP, LAN, REM, 0x1000, 1, 8);
	pb_put16(b + 6, 0x0001);
	ck_parse(b, n, R_IP_CHECKSUM);
}
END_TEST

START_TEST(ip_fragment)
{
	static uint8_t b[CAP];
	size_t n = pb_esp(b, CAP, LAN, REM, 0x1000, 1, 8);
	struct pkt_view v;
	static const uint16_t bad[] = { 0x0001, 0x1fff, 0x2001, 0x4001,
					0x00b9, 0x1000, 0x0800, 0x0100 };
	static const struct { uint16_t f; uint8_t mf; } good[] = {
		{ 0x0000, 0 }, { 0x4000, 0 }, { 0x2000, 1 }, { 0x6000, 1 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pb_put16(b + 6, bad[i]);
		pb_fix_checksums(b, n);
		ck_parse(b, n, R_IP_FRAGMENT);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		pb_put16(b + 6, good[i].f);
		pb_fix_checksums(b, n);
		ck_assert_int_eq(parse_copy(b, n, &v), R_PASS);
		ck_assert_uint_eq(v.more_fragments, good[i].mf);
		ck_assert_int_eq(v.kind, PKT_ESP);
	}
}
END_TEST

/* ---- ESP and AH ------------------------------------------------------------ */

START_TEST(esp_truncated)
{
	static uint8_t b[CAP];
	struct pkt_view v;

	for (size_t body = 0; body < 8; body++) {
		pb_esp(b, CAP, LAN, REM, 0x1000, 1, 0);
		set_totlen(b, 20 + body);
		ck_parse(b, 20 + body, R_ESP_TRUNCATED);
	}
	/* SPI 0 in a 7-byte header: truncation is found first */
	pb_esp(b, CAP, LAN, REM, 0, 1, 0);
	set_totlen(b, 27);
	ck_parse(b, 27, R_ESP_TRUNCATED);
	/* exactly 8: fine */
	pb_esp(b, CAP, LAN, REM, 0x1000, 1, 0);
	ck_assert_int_eq(parse_copy(b, 28, &v), R_PASS);
	ck_assert_int_eq(v.kind, PKT_ESP);
}
END_TEST

START_TEST(esp_spi_values)
{
	static uint8_t b[CAP];
	static const struct { uint32_t spi; enum reason r; } c[] = {
		{ 0, R_ESP_SPI_ZERO }, { 1, R_ESP_SPI_RESERVED },
		{ 2, R_ESP_SPI_RESERVED }, { 255, R_ESP_SPI_RESERVED },
		{ 256, R_PASS }, { 0x01000000, R_PASS }, { 0xffffffffu, R_PASS },
		{ 0x00000100, R_PASS }, { 0x80000000u, R_PASS },
	};
	struct pkt_view v;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t n = pb_esp(b, CAP, REM, EXT, c[i].spi, 0xdeadbeefu, 3);

		ck_assert_msg(parse_copy(b, n, &v) == c[i].r, "spi %" PRIu32,
			      c[i].spi);
		if (c[i].r == R_PASS) {
			ck_assert_uint_eq(v.esp.spi, c[i].spi);
			ck_assert_uint_eq(v.esp.seq, 0xdeadbeefu);
		}
	}
}
END_TEST

START_TEST(ah_not_checked)
{
	static uint8_t b[CAP];
	struct pkt_view v;
	size_t n = pb_ah(b, CAP, LAN, REM, 0);   /* even SPI 0 */

	ck_assert_int_eq(parse_copy(b, n, &v), R_PASS);
	ck_assert_int_eq(v.kind, PKT_AH);
	ck_assert_uint_eq(v.protocol, 51);
	set_totlen(b, 20);                          /* no body at all */
	ck_assert_int_eq(parse_copy(b, 20, &v), R_PASS);
	ck_assert_int_eq(v.kind, PKT_AH);
}
END_TEST

START_TEST(other_protocols)
{
	static uint8_t b[CAP];
	static const uint8_t protos[] = { 0, 1, 4, 6, 41, 47, 52, 255 };
	struct pkt_view v;

	for (size_t i = 0; i < sizeof(protos); i++) {
		size_t n = pb_esp(b, CAP, LAN, REM, 0, 0, 1);

		b[9] = protos[i];
		pb_fix_checksums(b, n);
		ck_assert_int_eq(parse_copy(b, n, &v), R_PASS);
		ck_assert_int_eq(v.kind, PKT_OTHER);
		ck_assert_uint_eq(v.protocol, protos[i]);
		ck_assert_uint_eq(v.saddr, LAN);
		ck_assert_uint_eq(v.daddr, REM);
	}
}
END_TEST

/* ---- UDP ------------------------------------------------------------------- */

START_TEST(udp_truncated)
{
	static uint8_t b[CAP];
	struct pkt_view v;

	for (size_t body = 0; body < 8; body++) {
		pb_udp(b, CAP, LAN, REM, 500, 500, 0, 0);
		set_totlen(b, 20 + body);
		ck_parse(b, 20 + body, R_UDP_TRUNCATED);
	}
	pb_udp(b, CAP, LAN, REM, 1, 2, 0, 0);
	ck_assert_int_eq(parse_copy(b, 28, &v), R_PASS);
	ck_assert_int_eq(v.kind, PKT_UDP);
	ck_assert_uint_eq(v.udp.sport, 1);
	ck_assert_uint_eq(v.udp.dport, 2);
	ck_assert_uint_eq(v.udp.length, 8);
}
END_TEST

START_TEST(udp_length)
{
	static uint8_t b[CAP];
	size_t n = pb_udp(b, CAP, LAN, REM, 4500, 4500, 10, 0);
	struct pkt_view v;

	for (unsigned l = 0; l < 8; l++) {
		pb_put16(b + 24, (uint16_t)l);
		ck_parse(b, n, R_UDP_LENGTH);
	}
	pb_put16(b + 24, 19);
	ck_parse(b, n, R_UDP_LENGTH);
	pb_put16(b + 24, 17);
	ck_parse(b, n, R_UDP_LENGTH);
	pb_put16(b + 24, 0xffff);
	ck_parse(b, n, R_UDP_LENGTH);
	pb_put16(b + 24, 18);
	ck_parse(b, n, R_PASS);
	/* the same on port 500: the UDP check comes before ISAKMP's */
	n = pb_isakmp(b, CAP, LAN, REM, 7, 0, 1, 0);
	pb_put16(b + 24, 200);
	ck_parse(b, n, R_UDP_LENGTH);
	pb_put16(b + 24, 35);
	ck_parse(b, n, R_UDP_LENGTH);

	/* a first fragment: the datagram continues past this packet */
	n = pb_udp(b, CAP, LAN, REM, 4500, 4500, 10, 0);
	pb_put16(b + 6, 0x2000);
	pb_put16(b + 24, 1480);
	pb_fix_checksums(b, n);
	ck_assert_int_eq(parse_copy(b, n, &v), R_PASS);
	ck_assert_uint_eq(v.more_fragments, 1);
	ck_assert_uint_eq(v.udp.length, 1480);
	pb_put16(b + 24, 19);                   /* one more than here: fine */
	ck_parse(b, n, R_PASS);
	pb_put16(b + 24, 18);                   /* all here, yet MF: a lie */
	ck_parse(b, n, R_UDP_LENGTH);
	pb_put16(b + 24, 17);
	ck_parse(b, n, R_UDP_LENGTH);
	pb_put16(b + 24, 7);
	ck_parse(b, n, R_UDP_LENGTH);
}
END_TEST

/* ---- ISAKMP ---------------------------------------------------------------- */

START_TEST(isakmp_ports)
{
	static uint8_t b[CAP];
	static const struct { uint16_t s, d; enum pkt_kind k; } c[] = {
		{ 500, 500, PKT_ISAKMP }, { 500, 4500, PKT_ISAKMP },
		{ 4500, 500, PKT_ISAKMP }, { 33000, 500, PKT_ISAKMP },
		{ 4500, 4500, PKT_UDP }, { 499, 501, PKT_UDP },
		{ 0x01f4 << 1, 0xf401, PKT_UDP },
	};
	struct pkt_view v;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t n = pb_isakmp(b, CAP, LAN, REM, 5, 6, 2, 0);

		pb_put16(b + 20, c[i].s);
		pb_put16(b + 22, c[i].d);
		pb_fix_checksums(b, n);
		ck_assert_int_eq(parse_copy(b, n, &v), R_PASS);
		ck_assert_int_eq(v.kind, c[i].k);
		ck_assert_uint_eq(v.udp.sport, c[i].s);
		ck_assert_uint_eq(v.udp.dport, c[i].d);
	}
}
END_TEST

START_TEST(isakmp_short)
{
	static uint8_t b[CAP];
	struct pkt_view v;

	for (size_t pl = 0; pl < 28; pl++) {
		size_t n = pb_udp(b, CAP, LAN, REM, 500, 500, pl, 0);

		ck_parse(b, n, R_ISAKMP_SHORT);
	}
	/* 28 bytes: a bare header */
	pb_isakmp(b, CAP, LAN, REM, 1, 0, 1, 0);
	ck_assert_int_eq(parse_copy(b, 56, &v), R_PASS);
	ck_assert_uint_eq(v.isakmp.length, 28);
}
END_TEST

START_TEST(isakmp_length)
{
	static uint8_t b[CAP];
	size_t n = pb_isakmp(b, CAP, LAN, REM, 7, 0, 1, 12);   /* payload 40 */
	static const struct { uint32_t l; enum reason r; } c[] = {
		{ 0, R_ISAKMP_LENGTH }, { 27, R_ISAKMP_LENGTH },
		{ 28, R_PASS }, { 39, R_PASS }, { 40, R_PASS },
		{ 41, R_ISAKMP_LENGTH }, { 0x10000028u, R_ISAKMP_LENGTH },
		{ 0xffffffffu, R_ISAKMP_LENGTH },
	};
	struct pkt_view v;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		pb_put32(b + 28 + 24, c[i].l);
		ck_assert_msg(parse_copy(b, n, &v) == c[i].r, "length %" PRIu32,
			      c[i].l);
		if (c[i].r == R_PASS)
			ck_assert_uint_eq(v.isakmp.length, c[i].l);
	}
	/* length is checked before version and cookie */
	pb_put32(b + 28 + 24, 41);
	b[28 + 17] = 0x30;
	memset(b + 28, 0, 8);
	ck_parse(b, n, R_ISAKMP_LENGTH);

	/* a first fragment: the header is here, the rest of the message
	 * follows; the length may pass this packet but not the datagram */
	n = pb_isakmp(b, CAP, LAN, REM, 7, 0, 2, 0);      /* 28 bytes here */
	pb_put16(b + 6, 0x2000);
	pb_put16(b + 24, 8 + 1000);
	pb_put32(b + 28 + 24, 1000);
	pb_fix_checksums(b, n);
	ck_assert_int_eq(parse_copy(b, n, &v), R_PASS);
	ck_assert_uint_eq(v.isakmp.length, 1000);
	ck_assert_uint_eq(v.more_fragments, 1);
	pb_put32(b + 28 + 24, 1001);
	ck_parse(b, n, R_ISAKMP_LENGTH);
	pb_put32(b + 28 + 24, 27);
	ck_parse(b, n, R_ISAKMP_LENGTH);
	/* and with MF the header must still be all here */
	n = pb_udp(b, CAP, LAN, REM, 500, 500, 27, 0);
	pb_put16(b + 6, 0x2000);
	pb_put16(b + 24, 8 + 1000);
	pb_fix_checksums(b, n);
	ck_parse(b, n, R_ISAKMP_SHORT);
}
END_TEST

START_TEST(isakmp_version)
{
	static uint8_t b[CAP];
	struct pkt_view v;

	for (unsigned major = 0; major < 16; major++) {
		for (unsigned minor = 0; minor < 16; minor += 5) {
			size_t n = pb_isakmp(b, CAP, LAN, REM, 9, 0, 1, 0);
			int ok = major == 1 || major == 2;

			b[28 + 17] = (uint8_t)(major << 4 | minor);
			ck_assert_int_eq(parse_copy(b, n, &v),
					 ok ? R_PASS : R_ISAKMP_VERSION);
			if (ok) {
				ck_assert_uint_eq(v.isakmp.major_version,
						  major);
				ck_assert_uint_eq(v.isakmp.minor_version,
						  minor);
			}
		}
	}
	/* version before cookie */
	{
		size_t n = pb_isakmp(b, CAP, LAN, REM, 0, 0, 3, 0);

		ck_parse(b, n, R_ISAKMP_VERSION);
	}
}
END_TEST

START_TEST(isakmp_cookie_zero)
{
	static uint8_t b[CAP];
	static const struct { uint64_t ci, cr; enum reason r; } c[] = {
		{ 0, 0, R_ISAKMP_COOKIE_ZERO },
		{ 0, 0x1234, R_ISAKMP_COOKIE_ZERO },
		{ 1, 0, R_PASS },
		{ 0x0100000000000000ull, 0, R_PASS },   /* high byte only */
		{ 0x0000000100000000ull, 0, R_PASS },   /* upper half only */
		{ 0xffffffffffffffffull, 0xffffffffffffffffull, R_PASS },
	};
	struct pkt_view v;

	for (int ver = 1; ver <= 2; ver++) {
		for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
			size_t n = pb_isakmp(b, CAP, REM, EXT, c[i].ci,
					     c[i].cr, ver, 0);

			ck_assert_int_eq(parse_copy(b, n, &v), c[i].r);
			if (c[i].r != R_PASS)
				continue;
			ck_assert_uint_eq(v.isakmp.cookie_i, c[i].ci);
			ck_assert_uint_eq(v.isakmp.cookie_r, c[i].cr);
			ck_assert_uint_eq(v.isakmp.major_version, ver);
		}
	}
}
END_TEST

/* ---- truncation of valid packets -------------------------------------------- */

/* What pkt_parse must say about `full` cut to len bytes with the total
 * length and header checksum fixed to match. */
static enum reason truncated_expect(const uint8_t *full, size_t full_len,
				    size_t len)
{
	size_t ihl = (size_t)(full[0] & 15) * 4;

	if (len < 20)
		return R_IP_TRUNCATED;
	if (len < ihl)
		return R_IP_IHL_PAST_END;
	switch (full[9]) {
	case 50:
		return len < ihl + 8 ? R_ESP_TRUNCATED : R_PASS;
	case 17:
		if (len < ihl + 8)
			return R_UDP_TRUNCATED;
		return len < full_len ? R_UDP_LENGTH : R_PASS;
	default:
		return R_PASS;
	}
}

/* Checks an R_PASS view stays inside the len bytes it was given. */
static void assert_view_inside(const struct pkt_view *v, size_t len)
{
	REQUIRE(v->len == len, "view len %zu != %zu", v->len, len);
	REQUIRE(v->l4_off <= len, "l4_off %zu > %zu", v->l4_off, len);
	switch (v->kind) {
	case PKT_ESP:
		REQUIRE(v->l4_off + 8 <= len, "ESP past %zu", len);
		break;
	case PKT_ISAKMP:
		REQUIRE(v->l4_off + 8 + 28 <= len, "ISAKMP past %zu", len);
		REQUIRE(v->isakmp.length + 8 <= v->udp.length,
			"ISAKMP length %u past UDP %u",
			(unsigned)v->isakmp.length, (unsigned)v->udp.length);
		/* fall through */
	case PKT_UDP:
		REQUIRE(v->l4_off + 8 <= len, "UDP past %zu", len);
		REQUIRE(v->more_fragments || v->l4_off + v->udp.length == len,
			"UDP length %u with %zu bytes", (unsigned)v->udp.length,
			len - v->l4_off);
		break;
	default:
		break;
	}
}

static void truncate_all(const uint8_t *full, size_t full_len,
			 const char *what)
{
	static uint8_t b[CAP];
	size_t ihl = (size_t)(full[0] & 15) * 4;
	struct pkt_view v;

	for (size_t len = 0; len < full_len; len++) {
		enum reason r, want;

		/* as cut: the total length still says full_len */
		r = parse_copy(full, len, &v);
		want = len < 20 ? R_IP_TRUNCATED :
		       len < ihl ? R_IP_IHL_PAST_END : R_IP_TOTLEN;
		REQUIRE(r == want, "%s cut to %zu: %s, want %s", what,
			      len, reason_name(r), reason_name(want));
		/* cut, with total length and header checksum made to agree */
		memcpy(b, full, full_len);
		if (len >= 20) {
			pb_put16(b + 2, (uint16_t)len);
			pb_put16(b + 10, pb_ip_csum(b));
		}
		r = parse_copy(b, len, &v);
		want = truncated_expect(full, full_len, len);
		REQUIRE(r == want, "%s fixed at %zu: %s, want %s", what,
			      len, reason_name(r), reason_name(want));
		if (r == R_PASS)
			assert_view_inside(&v, len);
	}
	ck_assert_int_eq(parse_copy(full, full_len, &v), R_PASS);
	assert_view_inside(&v, full_len);
}

START_TEST(truncation_never_reads_past_end)
{
	static struct fixture f;
	static uint8_t b[CAP];
	static const char *const good[] = {
		"ah_ok", "esp_ok", "esp_spi_256", "esp_first_fragment",
		"ikev1_ip_options", "ikev1_quick_mode", "ikev2_auth_response",
		"ikev2_sa_init", "udp_4500_nocsum",
	};
	uint8_t opt[40];
	size_t n;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		load_fixture(good[i], &f);
		if (pb_get16(f.b + 6) & 0x2000)
			continue;        /* fragments: the rule differs below */
		truncate_all(f.b, f.len, good[i]);
	}
	memset(opt, 1, sizeof(opt));
	n = pb_esp(b, CAP, LAN, REM, 0x999, 3, 17);
	n = add_options(b, n, opt, 40);
	truncate_all(b, n, "esp with 40 bytes of options");
	n = pb_isakmp(b, CAP, LAN, REM, 0x999, 3, 2, 13);
	n = add_options(b, n, opt, 12);
	truncate_all(b, n, "ikev2 with 12 bytes of options");

	/* a first fragment cut anywhere: never R_PASS past its bytes */
	load_fixture("esp_first_fragment", &f);
	for (size_t len = 0; len < f.len; len++) {
		struct pkt_view v;
		enum reason r;

		memcpy(b, f.b, f.len);
		if (len >= 20) {
			pb_put16(b + 2, (uint16_t)len);
			pb_put16(b + 10, pb_ip_csum(b));
		}
		r = parse_copy(b, len, &v);
		REQUIRE(r == truncated_expect(f.b, f.len, len),
			"fragment at %zu: %s", len, reason_name(r));
		if (r == R_PASS)
			assert_view_inside(&v, len);
	}
}
END_TEST

/* Random bytes, and random mutations of valid packets: no crash, no R_PASS
 * view reaching past the buffer. */
START_TEST(random_garbage_is_bounded)
{
	static uint8_t b[CAP];
	unsigned ok = 0;

	for (int it = 0; it < 200000; it++) {
		size_t n;
		struct pkt_view v;

		switch (it & 3) {
		case 0:
			n = pb_esp(b, CAP, LAN, REM, (uint32_t)rng(), 1,
				   rng_below(64));
			break;
		case 1:
			n = pb_isakmp(b, CAP, LAN, REM, rng(), rng(),
				      1 + (int)rng_below(2), rng_below(64));
			break;
		case 2:
			n = pb_udp(b, CAP, LAN, REM, (uint16_t)rng(), 500,
				   rng_below(64), (int)rng_below(2));
			break;
		default:
			n = 20 + rng_below(100);
			for (size_t i = 0; i < n; i++)
				b[i] = (uint8_t)rng();
			b[0] = (uint8_t)(0x40 | (rng() & 15));
			break;
		}
		for (unsigned k = rng_below(4); k > 0; k--)
			b[rng_below((uint32_t)n)] = (uint8_t)rng();
		if (rng() & 1)
			n = rng_below((uint32_t)n + 1);
		if (n >= 20 && (rng() & 1)) {
			pb_put16(b + 2, (uint16_t)n);
			if (b[0] >= 0x45 && (size_t)(b[0] & 15) * 4 <= n)
				pb_put16(b + 10, pb_ip_csum(b));
		}
		if (parse_copy(b, n, &v) == R_PASS) {
			assert_view_inside(&v, n);
			ok++;
		}
	}
	ck_assert_uint_gt(ok, 1000);
}
END_TEST

/* ---- address rewrites --------------------------------------------------- */

/* An address from a mix with the corner values 0 and 255.255.255.255. */
static uint32_t random_addr(void)
{
	switch (rng_below(8)) {
	case 0:
		return 0;
	case 1:
		return 0xffffffffu;
	case 2:
		return (uint32_t)rng() & 0x0000ffffu;
	case 3:
		return (uint32_t)rng() | 0xffff0000u;
	default:
		return (uint32_t)rng();
	}
}

/* A random packet: UDP (checksum or none), ISAKMP or ESP, random payload
 * length (odd ones too), random TOS/ID/TTL/DF and 0..40 bytes of options. */
static size_t random_packet(uint8_t *b, int *udp_nocsum)
{
	uint32_t s = random_addr(), d = random_addr();
	size_t pl = rng_below(4) ? rng_below(200) : rng_below(1400);
	size_t n, ol = 4 * rng_below(11);
	uint8_t opt[40];

	*udp_nocsum = 0;
	switch (rng_below(4)) {
	case 0:
		n = pb_esp(b, CAP, s, d, 256 + rng_below(0xfffffe00u),
			   (uint32_t)rng(), pl);
		break;
	case 1:
		n = pb_isakmp(b, CAP, s, d, rng() | 1, rng(),
			      1 + (int)rng_below(2), pl);
		break;
	case 2:
		*udp_nocsum = 1;
		n = pb_udp(b, CAP, s, d, (uint16_t)rng(), (uint16_t)rng(), pl,
			   1);
		break;
	default:
		n = pb_udp(b, CAP, s, d, (uint16_t)rng(), (uint16_t)rng(), pl,
			   0);
		break;
	}
	for (size_t i = 0; i < sizeof(opt); i++)
		opt[i] = (uint8_t)rng();
	b[1] = (uint8_t)rng();
	pb_put16(b + 4, (uint16_t)rng());
	pb_put16(b + 6, rng() & 1 ? 0x4000 : 0);
	b[8] = (uint8_t)rng();
	return add_options(b, n, opt, ol);
}

/* After a rewrite: both checksums equal pktbuild's and packet.c's full
 * recomputations, a UDP "none" stayed 0, and no other byte moved. */
static void check_rewritten(const uint8_t *orig, const struct pkt_view *v,
			    int udp_nocsum, int it)
{
	const uint8_t *b = v->buf;
	size_t ihl = v->l4_off;
	uint16_t ipc = pb_get16(b + 10), udpc;

	REQUIRE(ipc == pb_ip_csum(b), "it %d: ip %04x != pb %04x", it, ipc,
		pb_ip_csum(b));
	REQUIRE(ipc == pkt_ip_checksum(b, ihl), "it %d: ip %04x != pkt %04x",
		it, ipc, pkt_ip_checksum(b, ihl));
	REQUIRE(pb_get32(b + 12) == v->saddr && pb_get32(b + 16) == v->daddr,
		"it %d: view addresses differ from the packet's", it);
	for (size_t i = 0; i < v->len; i++) {
		int udpf = v->protocol == 17 && (i == ihl + 6 || i == ihl + 7);

		if ((i >= 10 && i < 20) || udpf)
			continue;
		REQUIRE(b[i] == orig[i], "it %d: byte %zu moved", it, i);
	}
	if (v->protocol != 17)
		return;
	udpc = pb_get16(b + ihl + 6);
	if (udp_nocsum) {
		REQUIRE(udpc == 0 && v->udp.check == 0,
			"it %d: no-checksum became %04x", it, udpc);
		return;
	}
	REQUIRE(udpc == pb_udp_csum(b, v->len), "it %d: udp %04x != pb %04x",
		it, udpc, pb_udp_csum(b, v->len));
	REQUIRE(udpc == pkt_udp_checksum(b, v->len, ihl),
		"it %d: udp %04x != pkt %04x", it, udpc,
		pkt_udp_checksum(b, v->len, ihl));
	REQUIRE(v->udp.check == udpc, "it %d: view check %04x != %04x", it,
		v->udp.check, udpc);
}

START_TEST(rewrite_random_matches_full)
{
	static uint8_t b[CAP], orig[CAP];
	unsigned kinds[5] = { 0 }, nocsum = 0, odd = 0;

	for (int it = 0; it < 20000; it++) {
		int udp_nocsum;
		size_t n = random_packet(b, &udp_nocsum);
		struct pkt_view v, again;
		uint32_t ns = random_addr(), nd = random_addr();
		unsigned which = rng_below(3);

		/* the full recomputations agree before any rewrite */
		REQUIRE(pkt_ip_checksum(b, (b[0] & 15u) * 4) == pb_ip_csum(b),
			"it %d: ip checksums disagree", it);
		REQUIRE(pkt_parse(b, n, &v) == R_PASS, "it %d: not parsed", it);
		REQUIRE(v.protocol != 17 || udp_nocsum ||
			pkt_udp_checksum(b, n, v.l4_off) == pb_udp_csum(b, n),
			"it %d: udp checksums disagree", it);
		memcpy(orig, b, n);
		kinds[v.kind]++;
		nocsum += udp_nocsum;
		odd += n & 1;
		if (which != 1)
			pkt_set_saddr(&v, ns);
		if (which != 0)
			pkt_set_daddr(&v, nd);
		REQUIRE(v.saddr == (which != 1 ? ns : pb_get32(orig + 12)) &&
			v.daddr == (which != 0 ? nd : pb_get32(orig + 16)),
			"it %d: view addresses", it);
		check_rewritten(orig, &v, udp_nocsum, it);
		/* the result parses again, to the new addresses */
		REQUIRE(pkt_parse(b, n, &again) == R_PASS &&
			again.saddr == v.saddr && again.daddr == v.daddr &&
			again.kind == v.kind, "it %d: reparse differs", it);
	}
	fprintf(stderr, "rewrite: esp %u udp %u isakmp %u, no-csum %u, odd %u\n",
		kinds[PKT_ESP], kinds[PKT_UDP], kinds[PKT_ISAKMP], nocsum, odd);
	ck_assert_uint_gt(kinds[PKT_ESP], 1000);
	ck_assert_uint_gt(kinds[PKT_ISAKMP], 1000);
	ck_assert_uint_gt(kinds[PKT_UDP], 1000);
	ck_assert_uint_gt(nocsum, 1000);
	ck_assert_uint_gt(odd, 1000);
}
END_TEST

/* Same address in, same bytes out; and a rewrite there and back restores
 * the original packet exactly. */
START_TEST(rewrite_identity_and_round_trip)
{
	static uint8_t b[CAP], orig[CAP];

	for (int it = 0; it < 5000; it++) {
		int nocsum;
		size_t n = random_packet(b, &nocsum);
		struct pkt_view v;
		uint32_t s, d;

		REQUIRE(pkt_parse(b, n, &v) == R_PASS, "it %d: not parsed", it);
		memcpy(orig, b, n);
		s = v.saddr;
		d = v.daddr;
		pkt_set_saddr(&v, s);
		pkt_set_daddr(&v, d);
		REQUIRE(!memcmp(b, orig, n), "it %d: same address changed", it);
		pkt_set_saddr(&v, (uint32_t)rng());
		pkt_set_daddr(&v, (uint32_t)rng());
		pkt_set_saddr(&v, s);
		pkt_set_daddr(&v, d);
		REQUIRE(!memcmp(b, orig, n), "it %d: round trip differs",
			      it);
	}
}
END_TEST

/* RFC 768: a checksum of 0 means none and stays 0, whatever the address. */
START_TEST(rewrite_udp_zero_stays_zero)
{
	static uint8_t b[CAP];
	struct pkt_view v;
	size_t n = pb_udp(b, CAP, LAN, REM, 4500, 4500, 33, 1);

	ck_assert_int_eq(pkt_parse(b, n, &v), R_PASS);
	for (int i = 0; i < 1000; i++) {
		pkt_set_saddr(&v, random_addr());
		pkt_set_daddr(&v, random_addr());
		REQUIRE(pb_get16(b + 26) == 0, "%d: no-checksum changed", i);
		REQUIRE(pb_get16(b + 10) == pb_ip_csum(b), "%d: ip", i);
	}
	/* ISAKMP without a checksum too */
	n = pb_isakmp(b, CAP, LAN, REM, 3, 0, 1, 0);
	pb_put16(b + 26, 0);
	ck_assert_int_eq(pkt_parse(b, n, &v), R_PASS);
	pkt_set_saddr(&v, EXT);
	ck_assert_uint_eq(pb_get16(b + 26), 0);
	ck_assert_uint_eq(v.udp.check, 0);
}
END_TEST

/* Makes the full UDP checksum of b (20-byte header, current addresses)
 * compute to 0, stored as 0xffff, by choosing the first two payload bytes
 * (an even offset in the datagram, so they add as one word). */
static void force_udp_csum_zero(uint8_t *b, size_t n)
{
	pb_put16(b + 28, 0);
	pb_put16(b + 28, pb_udp_csum(b, n));
	ck_assert_uint_eq(pb_udp_csum(b, n), 0xffff);
	pb_put16(b + 26, 0xffff);
}

/* The computed-zero corner: a result of 0 is written as 0xffff, and a
 * stored 0xffff (computed zero) is rewritten like any other value. */
START_TEST(rewrite_udp_computed_zero)
{
	static uint8_t b[CAP];
	struct pkt_view v;
	size_t n = pb_udp(b, CAP, EXT, REM, 4500, 4500, 20, 0);

	/* the packet as it must end up, after src := EXT */
	force_udp_csum_zero(b, n);
	/* the same packet from LAN, with its own correct checksum */
	pb_put32(b + 12, LAN);
	pb_fix_checksums(b, n);
	ck_assert_uint_ne(pb_get16(b + 26), 0xffff);
	ck_assert_int_eq(pkt_parse(b, n, &v), R_PASS);
	pkt_set_saddr(&v, EXT);
	ck_assert_uint_eq(pb_get16(b + 26), 0xffff);
	ck_assert_uint_eq(v.udp.check, 0xffff);
	ck_assert_uint_eq(pb_udp_csum(b, n), 0xffff);
	ck_assert_uint_eq(pkt_udp_checksum(b, n, 20), 0xffff);
	/* and from 0xffff back to LAN: incremental from a stored 0xffff */
	pkt_set_saddr(&v, LAN);
	ck_assert_uint_eq(pb_get16(b + 26), pb_udp_csum(b, n));
	ck_assert_uint_ne(pb_get16(b + 26), 0);
	/* the same through the destination */
	n = pb_udp(b, CAP, REM, LAN, 4500, 4500, 41, 0);
	force_udp_csum_zero(b, n);
	ck_assert_int_eq(pkt_parse(b, n, &v), R_PASS);
	pkt_set_daddr(&v, EXT);
	ck_assert_uint_eq(pb_get16(b + 26), pb_udp_csum(b, n));
	pkt_set_daddr(&v, LAN);
	ck_assert_uint_eq(pb_get16(b + 26), 0xffff);
}
END_TEST

/* ESP and AH: only the IP header changes. */
START_TEST(rewrite_esp_and_ah)
{
	static uint8_t b[CAP], orig[CAP];
	struct pkt_view v;
	size_t n = pb_esp(b, CAP, LAN, REM, 0x1000, 5, 31);

	ck_assert_int_eq(pkt_parse(b, n, &v), R_PASS);
	memcpy(orig, b, n);
	pkt_set_saddr(&v, EXT);
	ck_assert_uint_eq(pb_get32(b + 12), EXT);
	ck_assert_uint_eq(pb_get16(b + 10), pb_ip_csum(b));
	ck_assert_mem_eq(b + 20, orig + 20, n - 20);
	ck_assert_uint_eq(v.esp.spi, 0x1000);

	n = pb_ah(b, CAP, REM, EXT, 0x2000);
	ck_assert_int_eq(pkt_parse(b, n, &v), R_PASS);
	memcpy(orig, b, n);
	pkt_set_daddr(&v, LAN);
	ck_assert_uint_eq(pb_get32(b + 16), LAN);
	ck_assert_uint_eq(pb_get16(b + 10), pb_ip_csum(b));
	ck_assert_mem_eq(b + 20, orig + 20, n - 20);
}
END_TEST

/* ---- reasons --------------------------------------------------------------- */

START_TEST(reason_names_stable)
{
	static const char *const want[R_MAX] = {
		"ok", "ip_truncated", "ip_version", "ip_ihl_short",
		"ip_ihl_past_end", "ip_totlen", "ip_checksum", "ip_fragment",
		"esp_truncated", "esp_spi_zero", "esp_spi_reserved",
		"udp_truncated", "udp_length", "isakmp_short", "isakmp_length",
		"isakmp_version", "isakmp_cookie_zero", "unexpected_proto",
		"ah_outbound", "no_external_addr", "esp_blocked",
		"esp_serialized", "esp_squelched", "esp_spi_conflict",
		"isakmp_collision", "table_full", "host_full",
		"guess_ratelimited", "not_ours", "isakmp_ratelimited",
		"isakmp_answer_limit", "esp_ambiguous", "not_internal",
	};

	ck_assert_int_eq(R_MAX, 33);
	ck_assert_int_eq(R_NOT_OURS, 28);
	for (int r = 0; r < R_MAX; r++) {
		ck_assert_str_eq(reason_name((enum reason)r), want[r]);
		for (const char *p = want[r]; *p; p++)
			ck_assert(islower((unsigned char)*p) || *p == '_');
	}
	ck_assert_str_eq(reason_name(R_ESP_SPI_ZERO), "esp_spi_zero");
	ck_assert_str_eq(reason_name(R_NOT_OURS), "not_ours");
	ck_assert_str_eq(reason_name(R_MAX), "unknown");
	ck_assert_str_eq(reason_name((enum reason)1000), "unknown");
	ck_assert_str_eq(reason_name((enum reason)-1), "unknown");
}
END_TEST

START_TEST(reason_malformed_range)
{
	for (int r = -1; r <= R_MAX + 1; r++) {
		int want = r >= R_IP_TRUNCATED && r <= R_ISAKMP_COOKIE_ZERO;

		ck_assert_msg(!!reason_is_malformed((enum reason)r) == want,
			      "reason %d (%s)", r, reason_name((enum reason)r));
	}
	ck_assert(reason_is_malformed(R_IP_TRUNCATED));
	ck_assert(reason_is_malformed(R_ISAKMP_COOKIE_ZERO));
	ck_assert(!reason_is_malformed(R_PASS));
	ck_assert(!reason_is_malformed(R_UNEXPECTED_PROTO));
	ck_assert(!reason_is_malformed(R_NOT_OURS));
}
END_TEST

static Suite *packet_suite(void)
{
	Suite *s = suite_create("packet");
	TCase *fx = tcase_create("fixtures");
	TCase *bad = tcase_create("malformed");
	TCase *cut = tcase_create("bounds");
	TCase *rw = tcase_create("rewrite");
	TCase *rs = tcase_create("reasons");

	tcase_add_checked_fixture(fx, rng_reset, NULL);
	tcase_add_test(fx, fixtures_parse_as_expected);
	tcase_add_test(fx, fixtures_all_listed);
	tcase_add_test(fx, fixture_esp_fields);
	tcase_add_test(fx, fixture_isakmp_fields);
	tcase_add_test(fx, fixture_ip_options);
	tcase_add_test(fx, ip_options_every_length);
	suite_add_tcase(s, fx);

	tcase_add_checked_fixture(bad, rng_reset, NULL);
	tcase_add_test(bad, ip_truncated);
	tcase_add_test(bad, ip_version);
	tcase_add_test(bad, ip_ihl_short);
	tcase_add_test(bad, ip_ihl_past_end);
	tcase_add_test(bad, ip_totlen);
	tcase_add_test(bad, ip_checksum);
	tcase_add_test(bad, ip_fragment);
	tcase_add_test(bad, esp_truncated);
	tcase_add_test(bad, esp_spi_values);
	tcase_add_test(bad, ah_not_checked);
	tcase_add_test(bad, other_protocols);
	tcase_add_test(bad, udp_truncated);
	tcase_add_test(bad, udp_length);
	tcase_add_test(bad, isakmp_ports);
	tcase_add_test(bad, isakmp_short);
	tcase_add_test(bad, isakmp_length);
	tcase_add_test(bad, isakmp_version);
	tcase_add_test(bad, isakmp_cookie_zero);
	suite_add_tcase(s, bad);

	tcase_set_timeout(cut, 120);
	tcase_add_checked_fixture(cut, rng_reset, NULL);
	tcase_add_test(cut, truncation_never_reads_past_end);
	tcase_add_test(cut, random_garbage_is_bounded);
	suite_add_tcase(s, cut);

	tcase_set_timeout(rw, 120);
	tcase_add_checked_fixture(rw, rng_reset, NULL);
	tcase_add_test(rw, rewrite_random_matches_full);
	tcase_add_test(rw, rewrite_identity_and_round_trip);
	tcase_add_test(rw, rewrite_udp_zero_stays_zero);
	tcase_add_test(rw, rewrite_udp_computed_zero);
	tcase_add_test(rw, rewrite_esp_and_ah);
	suite_add_tcase(s, rw);

	tcase_add_checked_fixture(rs, rng_reset, NULL);
	tcase_add_test(rs, reason_names_stable);
	tcase_add_test(rs, reason_malformed_range);
	suite_add_tcase(s, rs);
	return s;
}

int main(void)
{
	const char *env = getenv("TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x4e5f0c0ffeeull;
	SRunner *sr;
	int failed;

	rng_seed = seed;
	printf("test_packet: seed 0x%" PRIx64 " (set TEST_SEED to change)\n",
	       seed);
	fflush(stdout);
	sr = srunner_create(packet_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
