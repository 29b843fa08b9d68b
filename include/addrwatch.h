/*
 * The rtnetlink address state of the external interface, without the
 * socket (netwatch.c owns that): it reads RTM_NEWADDR/RTM_DELADDR
 * notifications and the messages of the address dumps it asks for, and
 * decides when the watched address changes. Pure, so that the unit tests
 * can feed it netlink messages.
 *
 * The rules (issue 13): one dump at a time per socket, and an overrun
 * (ENOBUFS) does not end the running dump: the next one waits for it. Only
 * a dump that ended with NLMSG_DONE, without error and without
 * NLM_F_DUMP_INTR, is applied; a failed one (NLMSG_ERROR such as EBUSY) or
 * an interrupted one changes nothing and is asked for again, so the known
 * address stays until a complete dump says otherwise.
 */
#ifndef IPSEC_MASQD_ADDRWATCH_H
#define IPSEC_MASQD_ADDRWATCH_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct addrwatch_stats {
	uint64_t messages;      /* address messages read */
	uint64_t changes;       /* address changes applied */
	uint64_t resyncs;       /* dumps asked for */
	uint64_t enobufs;       /* overruns (then a dump after the running one) */
	uint64_t dumps_failed;  /* dumps ended by an error or interrupted */
	uint64_t errors;        /* malformed messages, other netlink errors */
};

/* Called with each new address (host order, 0 = none). */
typedef void (*addrwatch_apply_fn)(void *ctx, uint32_t addr);

/* Failed dumps asked for again at once, in a row; beyond, the next one
 * waits for the next address message or overrun. */
#define ADDRWATCH_RETRIES 3

struct addrwatch {
	char ifname[IF_NAMESIZE];  /* "" = not watching */
	unsigned ifindex;          /* for messages without a label; 0 = none */
	uint32_t addr;             /* host order, 0 = none */
	uint32_t seq;              /* of our last dump request */
	bool dumping;              /* our dump is running */
	bool want_dump;            /* a dump is wanted (after the running one) */
	bool wait_other;           /* EBUSY: another dump runs; wait for its end */
	bool dump_bad;             /* the running dump was interrupted */
	bool dump_seen;            /* the running dump listed addr */
	uint32_t dump_candidate;   /* its first primary address */
	unsigned failures;         /* failed dumps in a row */
	addrwatch_apply_fn apply;
	void *ctx;
	struct addrwatch_stats st;
};

/* Starts with no interface; seq0 seeds the request numbers. */
void addrwatch_init(struct addrwatch *aw, addrwatch_apply_fn apply,
		    void *ctx, uint32_t seq0);

/* Watches ifname (index ifindex, 0 if unknown; "" = nothing) and asks for a
 * dump. A changed name starts from "no address" (not applied). */
void addrwatch_set_interface(struct addrwatch *aw, const char *ifname,
			     unsigned ifindex);

/* Asks for a dump: at once when none runs, else after the running one. */
void addrwatch_want_dump(struct addrwatch *aw);

/* An overrun (ENOBUFS): notifications were lost; a dump after the running
 * one (which goes on). */
void addrwatch_overrun(struct addrwatch *aw);

/*
 * True when a dump request should be sent now: *seq is its sequence number
 * and the dump counts as running. The caller sends it, and calls
 * addrwatch_send_failed() if it could not.
 */
bool addrwatch_take_request(struct addrwatch *aw, uint32_t *seq);

/* The request of addrwatch_take_request() was not sent. */
void addrwatch_send_failed(struct addrwatch *aw);

/* Reads the netlink messages of one datagram. */
void addrwatch_feed(struct addrwatch *aw, const void *buf, size_t len);

#endif
