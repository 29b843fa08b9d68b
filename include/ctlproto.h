/*
 * The control protocol, version 1, without the socket: parsing a request
 * line and answering it from the engine. Pure but for the engine calls and
 * the callbacks in struct ctl_env, so it is unit-tested with a real engine.
 *
 * Request: one line, at most CTL_MAX_REQUEST bytes with its newline:
 *     v1 COMMAND [key=value ...]
 * COMMAND is ping, show, stats, flush, add-esp, del-esp or reload; keys are
 * remote, host (dotted quads), spi_in, spi_out (0x hex or decimal, 256 and
 * up), ttl (whole seconds) and format (text or json).
 * Response: a status line, "ok" or "error KIND message", then the body
 * (for ok), then the server closes the connection.
 */
#ifndef IPSEC_MASQD_CTLPROTO_H
#define IPSEC_MASQD_CTLPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "json.h"
#include "nfq.h"

#define CTL_VERSION 1
#define CTL_MAX_REQUEST 4096          /* one request line, newline included */
#define CTL_MAX_RESPONSE (4u << 20)   /* one response or slice, bytes */
#define CTL_MAX_TTL_S 604800u         /* add-esp ttl: one week */
#define CTL_SHOW_SLICE 256            /* show entries walked at a time */
#define CTL_SHOW_END "(end)\n"        /* the last line of a text show */
#define CTL_FLUSH_FACTOR 40           /* flush: entries walked a slice, per
				       * show entry (40 x 256 = 10240) */

enum ctl_cmd {
	CTL_PING, CTL_SHOW, CTL_STATS, CTL_FLUSH, CTL_ADD_ESP, CTL_DEL_ESP,
	CTL_RELOAD,
};

struct ctl_request {
	enum ctl_cmd cmd;
	bool json;
	bool has_remote, has_host, has_spi_in, has_spi_out;
	uint32_t remote, host, spi_in, spi_out;   /* host order */
	uint64_t ttl_ms;                          /* 0 = esp.lifetime */
};

struct ctl_counter {
	const char *name;
	uint64_t value;
};

#define CTL_MAX_COUNTERS 24

/* What a request may see and do, filled in by the daemon per request. */
struct ctl_env {
	struct engine *eng;
	uint64_t now;                      /* engine clock, ms */
	uint64_t started;                  /* engine clock at start, ms */
	const struct nfqueue_stats *queue; /* NULL: no queue section */
	struct ctl_counter daemon[CTL_MAX_COUNTERS];  /* "daemon" section */
	size_t n_daemon;
	struct ctl_counter fastpath[CTL_MAX_COUNTERS]; /* "fastpath" section */
	size_t n_fastpath;                 /* 0: fast path off, no section */
	/* FASTPATH_IN | FASTPATH_OUT for ESP entry (remote, spi_in); NULL
	 * when the fast path is off */
	unsigned (*offloaded)(void *ctx, uint32_t remote, uint32_t spi_in);
	/* "firewall" section: the egress guard's counter read from the kernel
	 * (fwcount.h); has_firewall false: no section; guard_read false: the
	 * counter could not be read (iptables backend, rules not loaded),
	 * guard_errno says why */
	bool has_firewall, guard_read;
	int guard_errno;
	uint64_t guard_packets, guard_bytes;
	struct ctl_counter announce[CTL_MAX_COUNTERS]; /* "announce"; 0: off */
	size_t n_announce;
	int (*reload)(void *ctx);          /* 0 applied, -1 refused; NULL: no */
	void (*note)(void *ctx, const char *what);   /* flush/add/del/reload
							 * log line */
	const char *who;                   /* "uid=0 pid=1234": the peer, for
					    * the note lines; NULL: unknown */
	void *ctx;
};

/*
 * Parses one request line (without or with its newline) into *req. Returns
 * 0, or -1 with a one-line reason in err: "protocol ..." for an unknown
 * version, command or key, "invalid ..." for a bad value.
 */
int ctl_parse(const char *line, struct ctl_request *req, char *err,
	      size_t errlen);

/* A show answered in slices (see ctl_execute). */
struct ctl_cont;

/*
 * Answers req into out (status line and body). Never fails: errors become
 * an "error" response. With cont NULL the whole answer is written, and one
 * larger than out's limit becomes "error toolarge ...". With cont, a show
 * writes its status line and first slice and leaves the rest in *cont
 * (NULL when all is written): nothing is copied from the engine, the rows
 * are formatted from the live entries by ctl_continue() as the client
 * reads (engine_cursor), so packet work goes on in between and memory does
 * not grow with the table. An entry created or removed while a show is
 * sent may or may not be in it; one alive throughout is there once. Text
 * counts and column widths are measured by a first walk; the text answer
 * ends with the line CTL_SHOW_END. A flush with cont removes the entries
 * in slices too (CTL_FLUSH_FACTOR x CTL_SHOW_SLICE entries walked a
 * slice) and answers, with the count, only when it is done.
 */
void ctl_execute(const struct ctl_request *req, struct ctl_env *env,
		 struct jbuf *out, struct ctl_cont **cont);

/* Writes the rows of up to about max more entries (a bounded walk of the
 * tables: at most 3 x max entries, and some free slots) into out (after
 * jbuf_consume). Returns 1 when the answer is complete, 0 if more
 * remain. The engine must outlive k. */
int ctl_continue(struct ctl_cont *k, struct jbuf *out, size_t max);
void ctl_cont_free(struct ctl_cont *k);

/* A flush answered in slices is finished at once (its client went away
 * or the daemon stops: what a flush began is never left half done);
 * nothing for a show. Call before ctl_cont_free. */
void ctl_cont_finish(struct ctl_cont *k);

/* Parses and answers one line: ctl_parse + ctl_execute. */
void ctl_handle_line(const char *line, struct ctl_env *env, struct jbuf *out,
		     struct ctl_cont **cont);

/* Strict parsers shared with the client. Return 0 or -1. */
int ctl_parse_addr(const char *s, uint32_t *addr);
int ctl_parse_spi(const char *s, uint32_t *spi);
int ctl_parse_seconds(const char *s, uint64_t max, uint64_t *out);

#endif
