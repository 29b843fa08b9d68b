/*
 * Stable names for enum reason: they appear in logs, journal fields, the
 * `stats` output and the state of tests, so they never change once shipped.
 */
#include "reason.h"

static const char *const reason_names[R_MAX] = {
	[R_PASS] = "ok",
	[R_IP_TRUNCATED] = "ip_truncated",
	[R_IP_VERSION] = "ip_version",
	[R_IP_IHL_SHORT] = "ip_ihl_short",
	[R_IP_IHL_PAST_END] = "ip_ihl_past_end",
	[R_IP_TOTLEN] = "ip_totlen",
	[R_IP_CHECKSUM] = "ip_checksum",
	[R_IP_FRAGMENT] = "ip_fragment",
	[R_ESP_TRUNCATED] = "esp_truncated",
	[R_ESP_SPI_ZERO] = "esp_spi_zero",
	[R_ESP_SPI_RESERVED] = "esp_spi_reserved",
	[R_UDP_TRUNCATED] = "udp_truncated",
	[R_UDP_LENGTH] = "udp_length",
	[R_ISAKMP_SHORT] = "isakmp_short",
	[R_ISAKMP_LENGTH] = "isakmp_length",
	[R_ISAKMP_VERSION] = "isakmp_version",
	[R_ISAKMP_COOKIE_ZERO] = "isakmp_cookie_zero",
	[R_UNEXPECTED_PROTO] = "unexpected_proto",
	[R_AH_OUTBOUND] = "ah_outbound",
	[R_NO_EXTERNAL_ADDR] = "no_external_addr",
	[R_ESP_BLOCKED] = "esp_blocked",
	[R_ESP_SERIALIZED] = "esp_serialized",
	[R_ESP_SQUELCHED] = "esp_squelched",
	[R_ESP_SPI_CONFLICT] = "esp_spi_conflict",
	[R_ISAKMP_COLLISION] = "isakmp_collision",
	[R_TABLE_FULL] = "table_full",
	[R_HOST_FULL] = "host_full",
	[R_GUESS_RATELIMITED] = "guess_ratelimited",
	[R_NOT_OURS] = "not_ours",
	[R_ISAKMP_RATELIMITED] = "isakmp_ratelimited",
	[R_ISAKMP_ANSWER_LIMIT] = "isakmp_answer_limit",
	[R_ESP_AMBIGUOUS] = "esp_ambiguous",
	[R_NOT_INTERNAL] = "not_internal",
};

/* Name of r for logs and counters; "unknown" when r is out of range or has
 * no name (a reason added to the enum but not here: the tests catch it). */
const char *reason_name(enum reason r)
{
	unsigned i = (unsigned)r;

	if (i >= R_MAX || !reason_names[i])
		return "unknown";
	return reason_names[i];
}

/* Non-zero when r says the input was malformed (dropped, never rewritten):
 * the contiguous block R_IP_TRUNCATED..R_ISAKMP_COOKIE_ZERO. */
int reason_is_malformed(enum reason r)
{
	int v = (int)r;

	return v >= R_IP_TRUNCATED && v <= R_ISAKMP_COOKIE_ZERO;
}
