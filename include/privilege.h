/*
 * Least privilege after start-up (issue 7): once the queue is bound and
 * every socket is open, the daemon keeps only CAP_NET_ADMIN (nfnetlink
 * verdicts and queue commands, SO_RCVBUFFORCE on reload) and CAP_NET_RAW,
 * in its effective, permitted and bounding sets; ambient and inheritable
 * are emptied and no_new_privs is set. Under the packaged unit the process
 * already has nothing more, and nothing is changed (the unit's system call
 * filter refuses capset). The uid is never changed here.
 */
#ifndef IPSEC_MASQD_PRIVILEGE_H
#define IPSEC_MASQD_PRIVILEGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/capability.h>

/* Bit n stands for capability n (CAP_* of linux/capability.h). */
#define PRIV_BIT(cap) (UINT64_C(1) << (cap))
/* What the daemon keeps: 0x3000 in /proc/PID/status. */
#define PRIV_KEEP (PRIV_BIT(CAP_NET_ADMIN) | PRIV_BIT(CAP_NET_RAW))

/* The process's capability sets, one bit per capability. */
struct priv_caps {
	uint64_t eff, prm, inh, bnd, amb;
	unsigned last_cap;        /* highest capability the kernel knows */
};

/* What privilege_drop will do, worked out from the current sets. */
struct priv_plan {
	bool act;                 /* permitted holds more than keep: capset */
	bool clear_amb;           /* ambient set not empty */
	uint64_t bnd_drop;        /* bounding bits to drop (needs SETPCAP) */
	uint64_t eff, prm, inh;   /* the sets to capset when act */
};

/*
 * The plan for reducing cur to keep: nothing when permitted holds nothing
 * beyond keep (the unit's case: no capset, no bounding drops, which a
 * filter or the missing CAP_SETPCAP would refuse); otherwise drop every
 * bounding bit outside keep while CAP_SETPCAP is still held, then
 * effective = permitted = keep & permitted, inheritable = 0. Pure.
 */
void privilege_plan(const struct priv_caps *cur, uint64_t keep,
		    struct priv_plan *plan);

/* "cap_net_admin,cap_net_raw" for set (unknown bits "cap_N", "none" for
 * 0) into buf. Returns 0, or -1 with errno ENOSPC when cut. */
int privilege_format(uint64_t set, char *buf, size_t len);

/* Reads the current sets (capget, PR_CAPBSET_READ, PR_CAP_AMBIENT_IS_SET).
 * Returns 0, or -1 with errno. */
int privilege_read(struct priv_caps *c);

/*
 * Called once, after every socket is open and the control socket chowned:
 * sets no_new_privs and reduces the capability sets to PRIV_KEEP (see
 * privilege_plan), then logs one line with CAPS=. Then checks, with the
 * reduced privileges, what a later reload and the stop still need:
 * config_path readable, the directory of state_file (if any) writable;
 * a problem is logged as a warning (a reload would fail, the state would
 * not be saved). Never fatal. Returns 0 when the process holds nothing
 * beyond PRIV_KEEP afterwards, -1 (logged) when it still does.
 */
int privilege_drop(const char *config_path, const char *state_file);

/* The checks of privilege_drop alone. Returns the number of problems
 * (each logged as a warning). */
int privilege_check_files(const char *config_path, const char *state_file);

#endif
