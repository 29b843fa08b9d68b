/*
 * Least privilege after start-up (issue 7): once the queue is bound and
 * every socket is open, the daemon keeps only CAP_NET_ADMIN (nfnetlink
 * verdicts and queue commands, SO_RCVBUFFORCE on reload) and CAP_NET_RAW,
 * in its effective, permitted and bounding sets; ambient and inheritable
 * are emptied and no_new_privs is set. Under the packaged unit the process
 * already has nothing more, and nothing is changed (the unit's system call
 * filter refuses capset). Started as root, it also switches to an
 * unprivileged user (config key user, default ipsec-masqd when that user
 * exists), keeping the same two capabilities: privilege_choose_user
 * decides, privilege_prepare_dir gives that user the directories it must
 * write to, privilege_drop switches.
 */
#ifndef IPSEC_MASQD_PRIVILEGE_H
#define IPSEC_MASQD_PRIVILEGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
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

/* Who the daemon runs as after privilege_drop. */
struct priv_user {
	bool change;              /* switch uid and gids in privilege_drop */
	uid_t uid;
	gid_t gid;                /* the user's primary group */
	char name[64];            /* for initgroups and the log */
};

/* What privilege_choose_user found. */
enum priv_choice {
	PRIV_USER_SWITCH,         /* root, the user exists and is not root */
	PRIV_USER_STAY_ROOT,      /* root, and the user has uid 0 */
	PRIV_USER_NOT_ROOT,       /* started unprivileged (the unit): no change */
	PRIV_USER_MISSING,        /* the default user does not exist: stay root */
	PRIV_USER_ERROR,          /* a user asked for (file, -u) does not exist */
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
 * Who to run as, for a process with effective uid euid: name (a user name
 * or number) looked up in the user database; asked_for says it was set in
 * the config file or on the command line (then it must exist), otherwise
 * it is the default and a missing user only means staying root. Fills *u
 * (u->change only for PRIV_USER_SWITCH; uid 0 or the caller's uid
 * otherwise). Logs nothing.
 */
enum priv_choice privilege_choose_user(const char *name, bool asked_for,
				       uid_t euid, struct priv_user *u);

/*
 * Makes the directory of file path (one level, mode) when it is missing,
 * owned by u's user when u->change: the control socket's and the state
 * file's, which the daemon must still write to after the switch (remove
 * the socket at stop, rename the state file). An existing directory is
 * left as it is (privilege_drop's checks warn when it is not writable).
 * Returns 1 when it was made, 0 when it existed, -1 (logged) on error.
 */
int privilege_prepare_dir(const char *path, mode_t mode,
			  const struct priv_user *u);

/*
 * Called once, after every socket is open and the control socket chowned:
 * sets no_new_privs and reduces the capability sets to PRIV_KEEP (see
 * privilege_plan), then logs one line with CAPS=. Then checks, with the
 * reduced privileges, what a later reload and the stop still need:
 * config_path readable, the directory of state_file (if any) writable;
 * a problem is logged as a warning (a reload would fail, the state would
 * not be saved). With u->change (u may be NULL), the uid, gid and groups
 * become u's in between: the bounding set is dropped while still root,
 * then the ids change with PR_SET_KEEPCAPS, then capset restores the two
 * capabilities to the effective set; a refused switch is logged and the
 * daemon goes on as root with the two capabilities. Never fatal. Returns
 * 0 when the process holds nothing beyond PRIV_KEEP afterwards, -1
 * (logged) when it still does.
 */
int privilege_drop(const struct priv_user *u, const char *config_path,
		   const char *state_file);

/* The checks of privilege_drop alone. Returns the number of problems
 * (each logged as a warning). */
int privilege_check_files(const char *config_path, const char *state_file);

/* Whether the control socket's directory is writable with the privileges
 * held now (removing the socket at stop). Returns 0, or 1 (warned). */
int privilege_check_socket_dir(const char *socket_path);

#endif
