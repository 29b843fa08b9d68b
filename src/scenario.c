/*
 * The built-in story: two LAN hosts, one remote gateway, IKE then ESP, the
 * serialization of their inits, the parallel-sessions block, a reload, a
 * rekey started by the remote (the guess), AH and a bad SPI refused, and
 * expiry. Packets are built with the test packet builder.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>

#include "pktbuild.h"
#include "scenario.h"

#define A "192.168.1.10"
#define B "192.168.1.11"
#define R "203.0.113.20"
#define EXT "198.51.100.1"
#define CI_A 0xa1a1a1a1a1a1a1a1ULL
#define CR_A 0x5151515151515151ULL
#define CI_B 0xb2b2b2b2b2b2b2b2ULL
#define CR_B 0x5252525252525252ULL
#define MOD VERDICT_ACCEPT_MODIFIED
#define IN DIR_INBOUND
#define OUT DIR_OUTBOUND

static const struct scenario_step builtin[] = {
	{ 0, STEP_ISAKMP, OUT, A, R, 0, CI_A, 0,
	  "A starts IKE with R: the source becomes the external address, port 500 is kept",
	  MOD, R_PASS, EXT, 0 },
	{ 40, STEP_ISAKMP, IN, R, EXT, 0, CI_A, CR_A,
	  "R answers: routed back to A by A's initiator SPI; R's responder SPI is learnt",
	  MOD, R_PASS, A, 0 },
	{ 100, STEP_ISAKMP, OUT, B, R, 0, CI_B, 0,
	  "B starts IKE with the same remote: ISAKMP is never serialized",
	  MOD, R_PASS, EXT, 0 },
	{ 140, STEP_ISAKMP, IN, R, EXT, 0, CI_B, CR_B,
	  "R answers B: the initiator SPI tells the two exchanges apart",
	  MOD, R_PASS, B, 0 },
	{ 1000, STEP_ESP, OUT, A, R, 0xc1000001, 0, 0,
	  "A's first ESP packet: a new out-SPI, so an init with R is now pending",
	  MOD, R_PASS, EXT, 0 },
	{ 1010, STEP_ESP, OUT, B, R, 0xc2000001, 0, 0,
	  "B's first ESP while A's init is pending: serialized (dropped; B's IPsec stack retries)",
	  VERDICT_DROP, R_ESP_SERIALIZED, NULL, 0 },
	{ 1050, STEP_ESP, IN, R, EXT, 0xa1000001, 0, 0,
	  "the first unknown inbound SPI from R belongs to the pending init: A",
	  MOD, R_PASS, A, 0 },
	{ 2000, STEP_ESP, OUT, B, R, 0xc2000001, 0, 0,
	  "parallel sessions are off by default: A holds R, so B is blocked",
	  VERDICT_DROP, R_ESP_BLOCKED, NULL, 0 },
	{ 3000, STEP_PARALLEL_ON, OUT, NULL, NULL, 0, 0, 0,
	  "the admin reloads with esp.parallel_sessions = true",
	  VERDICT_ACCEPT, R_PASS, NULL, 0 },
	{ 3100, STEP_ESP, OUT, B, R, 0xc2000001, 0, 0,
	  "B retries: its init is pending now",
	  MOD, R_PASS, EXT, 0 },
	{ 3150, STEP_ESP, IN, R, EXT, 0xa2000001, 0, 0,
	  "R's next new SPI is bound to B",
	  MOD, R_PASS, B, 0 },
	{ 4000, STEP_ESP, IN, R, EXT, 0xa1000001, 0, 0,
	  "both tunnels run side by side: A's inbound SPI goes to A ...",
	  MOD, R_PASS, A, 0 },
	{ 4001, STEP_ESP, IN, R, EXT, 0xa2000001, 0, 0,
	  "... and B's to B",
	  MOD, R_PASS, B, 0 },
	{ 4100, STEP_TABLES, OUT, NULL, NULL, 0, 0, 0,
	  "the tables now", VERDICT_ACCEPT, R_PASS, NULL, 0 },
	{ 600000, STEP_ISAKMP, IN, R, EXT, 0, CI_A, CR_A,
	  "ten minutes later R rekeys A's tunnel over IKE",
	  MOD, R_PASS, A, 0 },
	{ 600100, STEP_ESP, IN, R, EXT, 0xa1000002, 0, 0,
	  "R's new SPI arrives before A sent any: nothing pending, so it is guessed: "
	  "A (latest IKE with R) and a copy to B; B will drop it (bad ICV)",
	  MOD, R_PASS, A, 1 },
	{ 600200, STEP_ESP, OUT, A, R, 0xc1000002, 0, 0,
	  "A answers under its new out-SPI: a normal init starts",
	  MOD, R_PASS, EXT, 0 },
	{ 600250, STEP_ESP, IN, R, EXT, 0xa1000002, 0, 0,
	  "and R's new SPI is now associated with A: no more copies",
	  MOD, R_PASS, A, 0 },
	{ 600300, STEP_AH, OUT, A, R, 0x0a000001, 0, 0,
	  "AH cannot be masqueraded (its ICV covers the addresses): dropped",
	  VERDICT_DROP, R_AH_OUTBOUND, NULL, 0 },
	{ 600400, STEP_ESP, OUT, A, R, 0, 0, 0,
	  "SPI 0 is invalid: dropped, never let out with a LAN source",
	  VERDICT_DROP, R_ESP_SPI_ZERO, NULL, 0 },
	{ 2500000, STEP_TIMERS, OUT, NULL, NULL, 0, 0, 0,
	  "30 minutes of silence: every entry reaches its lifetime",
	  VERDICT_ACCEPT, R_PASS, NULL, 0 },
	{ 2500001, STEP_TABLES, OUT, NULL, NULL, 0, 0, 0,
	  "the tables at the end", VERDICT_ACCEPT, R_PASS, NULL, 0 },
};

size_t scenario_builtin(const struct scenario_step **steps)
{
	*steps = builtin;
	return sizeof(builtin) / sizeof(builtin[0]);
}

void scenario_builtin_config(struct engine_config *cfg)
{
	engine_config_defaults(cfg);
	cfg->external_addr = pb_addr(EXT);
	cfg->internal[0].addr = pb_addr("192.168.0.0");
	cfg->internal[0].mask = 0xffff0000u;
	cfg->n_internal = 1;
}

static const char *dotted(uint32_t addr, char *buf)
{
	struct in_addr in = { .s_addr = htonl(addr) };

	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

static double secs(uint64_t ms)
{
	return (double)ms / 1000.0;
}

/* Build the packet of a packet step; returns its length. */
static size_t build(const struct scenario_step *st, uint8_t *pkt, size_t cap)
{
	uint32_t src, dst;

	if (st->kind != STEP_ESP && st->kind != STEP_AH &&
	    st->kind != STEP_ISAKMP)
		return 0;
	src = pb_addr(st->src);
	dst = pb_addr(st->dst);
	switch (st->kind) {
	case STEP_ESP:
		return pb_esp(pkt, cap, src, dst, st->spi, 1, 96);
	case STEP_AH:
		return pb_ah(pkt, cap, src, dst, st->spi);
	case STEP_ISAKMP:
		return pb_isakmp(pkt, cap, src, dst, st->cookie_i,
				 st->cookie_r, 2, 200);
	default:
		return 0;
	}
}

static const char *verdict_name(enum verdict v)
{
	return v == VERDICT_DROP ? "DROP" :
	       v == VERDICT_ACCEPT ? "ACCEPT unchanged" : "ACCEPT rewritten";
}

/* The packet as it arrives; its decisions and verdict follow. */
static void print_packet(const struct scenario_step *st, FILE *out)
{
	fprintf(out, "%9.3fs %s %s -> %s ", secs(st->at_ms),
		st->dir == DIR_OUTBOUND ? "out" : "in ", st->src, st->dst);
	if (st->kind == STEP_ISAKMP)
		fprintf(out, "IKE spi_i=%016" PRIx64 " spi_r=%016" PRIx64 "\n",
			st->cookie_i, st->cookie_r);
	else
		fprintf(out, "%s spi=0x%08" PRIx32 "\n",
			st->kind == STEP_AH ? "AH" : "ESP", st->spi);
}

static void print_verdict(const struct engine_decision *d,
			  const uint8_t *pkt, FILE *out)
{
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];

	fprintf(out, "           => %s", verdict_name(d->verdict));
	if (d->verdict == VERDICT_ACCEPT_MODIFIED)
		fprintf(out, ": now %s -> %s",
			dotted(pb_get32(pkt + 12), a),
			dotted(pb_get32(pkt + 16), b));
	if (d->verdict == VERDICT_DROP)
		fprintf(out, " (%s)", reason_name(d->reason));
	for (unsigned i = 0; i < d->n_copies; i++)
		fprintf(out, "%s%s", i ? ", " : "; copy to ",
			dotted(d->copy_to[i], a));
	fputc('\n', out);
}

/* Non-zero when the decision differs from what the step predicts. */
static int mismatch(const struct scenario_step *st,
		    const struct engine_decision *d, const uint8_t *pkt)
{
	uint32_t got;

	if (d->verdict != st->expect || d->reason != st->expect_reason ||
	    d->n_copies != st->expect_copies)
		return 1;
	if (!st->expect_addr)
		return 0;
	got = pb_get32(pkt + (st->dir == DIR_OUTBOUND ? 12 : 16));
	return got != pb_addr(st->expect_addr);
}

/* A step that is not a packet: reload, timers, tables. */
static void control_step(struct engine *eng, const struct scenario_step *st,
			 FILE *out)
{
	if (st->kind == STEP_PARALLEL_ON) {
		struct engine_config cfg = *engine_get_config(eng);

		cfg.parallel_sessions = true;
		engine_reconfigure(eng, &cfg);
	} else if (st->kind == STEP_TIMERS) {
		engine_run_timers(eng, st->at_ms);
	} else if (st->kind == STEP_TABLES && out) {
		scenario_print_tables(eng, st->at_ms, out);
	}
}

size_t scenario_run(struct engine *eng, const struct scenario_step *steps,
		    size_t n, FILE *out)
{
	size_t wrong = 0;

	for (size_t i = 0; i < n; i++) {
		const struct scenario_step *st = &steps[i];
		struct engine_decision d;
		uint8_t pkt[512];
		size_t len;

		if (out)
			fprintf(out, "\n# %s\n", st->story);
		engine_run_timers(eng, st->at_ms);
		len = build(st, pkt, sizeof(pkt));
		if (!len) {
			control_step(eng, st, out);
			continue;
		}
		if (out)
			print_packet(st, out);
		engine_process(eng, pkt, len, st->dir, st->at_ms, &d);
		if (out)
			print_verdict(&d, pkt, out);
		if (mismatch(st, &d, pkt)) {
			wrong++;
			if (out)
				fprintf(out, "           !! expected %s (%s)\n",
					verdict_name(st->expect),
					reason_name(st->expect_reason));
		}
	}
	return wrong;
}

void scenario_print_event(void *ctx, const struct engine_event *ev)
{
	FILE *out = ctx;
	char a[INET_ADDRSTRLEN];

	fprintf(out, "           decision: %-12s %s", engine_event_name(ev->kind),
		ev->table == TABLE_ISAKMP ? "isakmp" : "esp");
	if (ev->remote)
		fprintf(out, " remote=%s", dotted(ev->remote, a));
	if (ev->host)
		fprintf(out, " host=%s", dotted(ev->host, a));
	if (ev->spi_out)
		fprintf(out, " spi_out=0x%08" PRIx32, ev->spi_out);
	if (ev->spi_in)
		fprintf(out, " spi_in=0x%08" PRIx32, ev->spi_in);
	if (ev->cookie_i)
		fprintf(out, " spi_i=%016" PRIx64, ev->cookie_i);
	if (ev->reason != R_PASS)
		fprintf(out, " reason=%s", reason_name(ev->reason));
	for (unsigned i = 0; i < ev->n_hosts; i++)
		fprintf(out, "%s%s", i ? "," : " hosts=",
			dotted(ev->hosts[i], a));
	fputc('\n', out);
}

struct table_print {
	FILE *out;
	uint64_t now;
};

static void print_esp(void *ctx, const struct engine_esp_info *e)
{
	struct table_print *tp = ctx;
	char r[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN];

	fprintf(tp->out, "  %-15s %-15s 0x%08" PRIx32 " 0x%08" PRIx32
		" %-11s %5" PRIu64 " %5" PRIu64 " %9.1f\n",
		dotted(e->remote, r), dotted(e->host, h), e->spi_out,
		e->spi_in, esp_state_name(e->state), e->pkts_out, e->pkts_in,
		secs(e->expires > tp->now ? e->expires - tp->now : 0));
}

static void print_isakmp(void *ctx, const struct engine_isakmp_info *e)
{
	struct table_print *tp = ctx;
	char r[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN];

	fprintf(tp->out, "  %-15s %-15s %016" PRIx64 " %016" PRIx64
		" %9.1f\n", dotted(e->remote, r), dotted(e->host, h),
		e->cookie_i, e->cookie_r,
		secs(e->expires > tp->now ? e->expires - tp->now : 0));
}

void scenario_print_tables(const struct engine *eng, uint64_t now, FILE *out)
{
	struct table_print tp = { out, now };
	const struct engine_stats *st = engine_get_stats(eng);

	fprintf(out, "  ESP (%zu entries)\n  %-15s %-15s %-10s %-10s %-11s "
		"%5s %5s %9s\n", st->esp_entries, "remote", "host", "spi_out",
		"spi_in", "state", "out", "in", "ttl(s)");
	engine_walk_esp(eng, print_esp, &tp);
	fprintf(out, "  ISAKMP (%zu entries)\n  %-15s %-15s %-16s %-16s "
		"%9s\n", st->isakmp_entries, "remote", "host", "spi_i",
		"spi_r", "ttl(s)");
	engine_walk_isakmp(eng, print_isakmp, &tp);
}
