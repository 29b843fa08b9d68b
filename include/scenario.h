/*
 * Scripted traffic for the engine: the built-in two-hosts-one-remote story
 * that the demo prints, and the runner the replay tool and its test share.
 * Each step carries the verdict the masquerade rules predict, so a run both
 * shows the decisions and checks them.
 */
#ifndef IPSEC_MASQD_SCENARIO_H
#define IPSEC_MASQD_SCENARIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine.h"

enum step_kind {
	STEP_ESP,          /* an ESP packet src -> dst with spi */
	STEP_ISAKMP,       /* IKEv2 header with cookie_i / cookie_r */
	STEP_AH,           /* an AH packet */
	STEP_PARALLEL_ON,  /* reload with parallel_sessions = true */
	STEP_TIMERS,       /* run the timer wheel */
	STEP_TABLES,       /* print the tables */
};

struct scenario_step {
	uint64_t at_ms;
	enum step_kind kind;
	enum direction dir;
	const char *src, *dst;      /* dotted quads */
	uint32_t spi;
	uint64_t cookie_i, cookie_r;
	const char *story;          /* what this step shows, for the reader */
	enum verdict expect;
	enum reason expect_reason;
	const char *expect_addr;    /* rewritten dst (in) / src (out), or NULL */
	unsigned expect_copies;
};

/* The built-in story and the config it runs with. */
size_t scenario_builtin(const struct scenario_step **steps);
void scenario_builtin_config(struct engine_config *cfg);

/*
 * Run steps through eng, printing each packet's decision to out (NULL:
 * silent). The engine's events should be printed by its log callback (see
 * scenario_print_event). Returns the number of steps whose outcome differs
 * from the expectation.
 */
size_t scenario_run(struct engine *eng, const struct scenario_step *steps,
		    size_t n, FILE *out);

/* An engine_log_fn printing one line per decision to the FILE in ctx. */
void scenario_print_event(void *ctx, const struct engine_event *ev);

/* Print the live tables as aligned text. */
void scenario_print_tables(const struct engine *eng, uint64_t now, FILE *out);

#endif
