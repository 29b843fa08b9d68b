/*
 * Least privilege after start-up: raw capget/capset and prctl, no libcap.
 *
 * What the daemon still does after privilege_drop, and what that needs:
 *  - verdicts, queue commands (unbind at stop, io.queue_maxlen on reload)
 *    over nfnetlink, SO_RCVBUFFORCE/SO_SNDBUFFORCE on reload: CAP_NET_ADMIN;
 *  - the raw socket is already open with IP_HDRINCL and SO_MARK: sending
 *    needs nothing more (CAP_NET_RAW is kept so that the set is the same as
 *    under the unit, and a future re-open would work);
 *  - a reload re-reads the config (DAC only: root owns its files), follows
 *    another interface (rtnetlink dumps: no capability), and does not touch
 *    the control socket (its settings, and the queue number, apply at the
 *    next restart, so no chown and no rebind: nothing beyond NET_ADMIN);
 *  - the state file is written at stop beside itself (mkstemp, rename,
 *    fsync of the directory): fine in a directory of our own uid; in one of
 *    another user's the write would need CAP_DAC_OVERRIDE, which is not
 *    kept: privilege_check_files says so at start instead.
 * Started as root, the daemon also becomes an unprivileged user (user,
 * default ipsec-masqd when it exists), as the unit's User= does: the
 * capabilities are what protects the system, but a uid of its own keeps
 * root's files (and any file CAP_DAC_OVERRIDE would not be needed for)
 * out of reach of a compromised daemon. What the user must still reach
 * is made its own before the switch: the control socket's directory and
 * the state file's, when the daemon makes them (privilege_prepare_dir).
 * The config file is read by the new uid at reload: it must be readable
 * by it (the usual root:root 0644 is; privilege_check_files warns).
 * no_new_privs and the bounding set mean nothing can be regained through
 * execve, which the daemon never calls anyway.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include "log.h"
#include "privilege.h"

#define PRIV_MAX_CAPS 64      /* two 32-bit words of capget v3 */

/* Names for the log, in CAP_* order (linux/capability.h). */
static const char *const cap_names[] = {
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner",
	"cap_fsetid", "cap_kill", "cap_setgid", "cap_setuid", "cap_setpcap",
	"cap_linux_immutable", "cap_net_bind_service", "cap_net_broadcast",
	"cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner",
	"cap_sys_module", "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace",
	"cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice",
	"cap_sys_resource", "cap_sys_time", "cap_sys_tty_config",
	"cap_mknod", "cap_lease", "cap_audit_write", "cap_audit_control",
	"cap_setfcap", "cap_mac_override", "cap_mac_admin", "cap_syslog",
	"cap_wake_alarm", "cap_block_suspend", "cap_audit_read",
	"cap_perfmon", "cap_bpf", "cap_checkpoint_restore",
};

void privilege_plan(const struct priv_caps *cur, uint64_t keep,
		    struct priv_plan *plan)
{
	memset(plan, 0, sizeof(*plan));
	plan->clear_amb = cur->amb != 0;
	if ((cur->prm & ~keep) == 0)
		return;   /* already within keep (the unit): leave it be */
	plan->act = true;
	plan->bnd_drop = cur->bnd & ~keep;
	plan->prm = cur->prm & keep;   /* capset can only lower permitted */
	plan->eff = plan->prm;
	plan->inh = 0;
}

int privilege_format(uint64_t set, char *buf, size_t len)
{
	size_t used = 0;
	int n;

	if (len == 0) {
		errno = ENOSPC;
		return -1;
	}
	buf[0] = '\0';
	if (set == 0) {
		n = snprintf(buf, len, "none");
		return (size_t)n < len ? 0 : (errno = ENOSPC, -1);
	}
	for (unsigned c = 0; c < PRIV_MAX_CAPS; c++) {
		if (!(set & PRIV_BIT(c)))
			continue;
		if (c < sizeof(cap_names) / sizeof(cap_names[0]))
			n = snprintf(buf + used, len - used, "%s%s",
				     used ? "," : "", cap_names[c]);
		else
			n = snprintf(buf + used, len - used, "%scap_%u",
				     used ? "," : "", c);
		if (n < 0 || (size_t)n >= len - used) {
			errno = ENOSPC;
			return -1;
		}
		used += (size_t)n;
	}
	return 0;
}

/* capget v3 of this process into c's eff, prm and inh. Returns 0 or -1. */
static int cap_get(struct priv_caps *c)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -1;
	c->eff = data[0].effective | (uint64_t)data[1].effective << 32;
	c->prm = data[0].permitted | (uint64_t)data[1].permitted << 32;
	c->inh = data[0].inheritable | (uint64_t)data[1].inheritable << 32;
	return 0;
}

/* capset v3 of this process. Returns 0 or -1 with errno. */
static int cap_set(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = {
		{ (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(prm >> 32),
		  (uint32_t)(inh >> 32) },
	};

	return (int)syscall(SYS_capset, &hdr, data);
}

int privilege_read(struct priv_caps *c)
{
	unsigned cap;

	memset(c, 0, sizeof(*c));
	if (cap_get(c) < 0)
		return -1;
	/* The bounding set, up to the first number the kernel does not know
	 * (EINVAL): that also gives the last capability. */
	for (cap = 0; cap < PRIV_MAX_CAPS; cap++) {
		int r = prctl(PR_CAPBSET_READ, (unsigned long)cap, 0UL, 0UL,
			      0UL);

		if (r < 0)
			break;
		if (r == 1)
			c->bnd |= PRIV_BIT(cap);
		/* Ambient (Linux 4.3): EINVAL before that, then empty. */
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET,
			  (unsigned long)cap, 0UL, 0UL) == 1)
			c->amb |= PRIV_BIT(cap);
	}
	if (cap == 0)
		return -1;   /* errno from prctl */
	c->last_cap = cap - 1;
	return 0;
}

/* Drops the bounding bits of `drop` (CAP_SETPCAP must be effective).
 * Returns 0, or -1 (logged) when one was refused. */
static int drop_bounding(uint64_t drop)
{
	for (unsigned cap = 0; cap < PRIV_MAX_CAPS; cap++) {
		if (!(drop & PRIV_BIT(cap)))
			continue;
		if (prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0UL, 0UL,
			  0UL) < 0) {
			log_warn("cannot drop capability %u from the bounding "
				 "set", cap);
			return -1;
		}
	}
	return 0;
}

/* Whether path, with the privileges held now, can be accessed as mode.
 * access(2) checks with the real uid, and for a real uid 0 with the
 * permitted set: after the drop, exactly what the daemon can do. */
static bool can_access(const char *path, int mode)
{
	return access(path, mode) == 0;
}

/* The directory of path into dir (dirname of a copy). Returns dir, or
 * NULL (logged) when the path does not fit. */
static const char *dir_of(const char *path, char *dir, size_t len)
{
	if ((size_t)snprintf(dir, len, "%s", path) >= len) {
		log_warnx("%s: path too long", path);
		return NULL;
	}
	return dirname(dir);
}

int privilege_check_socket_dir(const char *socket_path)
{
	char buf[4096];
	const char *dir;

	if (socket_path == NULL || socket_path[0] == '\0')
		return 0;
	dir = dir_of(socket_path, buf, sizeof(buf));
	if (dir == NULL)
		return 1;
	if (can_access(dir, W_OK | X_OK))
		return 0;
	log_warn("control socket %s: directory %s is not writable with the "
		 "privileges kept: the socket stays behind at stop (the next "
		 "start removes it)", socket_path, dir);
	return 1;
}

int privilege_check_files(const char *config_path, const char *state_file)
{
	char dir[4096];
	int problems = 0;

	if (config_path != NULL && config_path[0] != '\0' &&
	    !can_access(config_path, R_OK)) {
		log_warn("config file %s is not readable with the privileges "
			 "kept: a reload will fail", config_path);
		problems++;
	}
	if (state_file == NULL || state_file[0] == '\0')
		return problems;
	if ((size_t)snprintf(dir, sizeof(dir), "%s", state_file) >=
	    sizeof(dir)) {
		log_warnx("state file %s: path too long", state_file);
		return problems + 1;
	}
	/* mkstemp and rename in the directory, then open it to fsync. */
	if (!can_access(dirname(dir), R_OK | W_OK | X_OK)) {
		log_warn("state file %s: directory %s is not writable with the "
			 "privileges kept (no CAP_DAC_OVERRIDE): the state "
			 "will not be saved at stop", state_file, dir);
		problems++;
	}
	return problems;
}

enum priv_choice privilege_choose_user(const char *name, bool asked_for,
				       uid_t euid, struct priv_user *u)
{
	const struct passwd *pw;
	char *end;
	unsigned long v;

	memset(u, 0, sizeof(*u));
	u->uid = euid;
	u->gid = getegid();
	if (euid != 0)
		return PRIV_USER_NOT_ROOT;   /* the unit's User=, or a user's run */
	errno = 0;
	v = strtoul(name, &end, 10);
	if (name[0] >= '0' && name[0] <= '9' && *end == '\0' && errno == 0 &&
	    v == (uid_t)v)
		pw = getpwuid((uid_t)v);
	else
		pw = getpwnam(name);
	if (pw == NULL)
		return asked_for ? PRIV_USER_ERROR : PRIV_USER_MISSING;
	if (pw->pw_uid == 0)
		return PRIV_USER_STAY_ROOT;
	u->change = true;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
	return PRIV_USER_SWITCH;
}

int privilege_prepare_dir(const char *path, mode_t mode,
			  const struct priv_user *u)
{
	char buf[4096];
	const char *dir;

	if (path == NULL || path[0] == '\0')
		return 0;
	dir = dir_of(path, buf, sizeof(buf));
	if (dir == NULL)
		return -1;
	if (mkdir(dir, mode) < 0) {
		if (errno == EEXIST)
			return 0;
		log_warn("mkdir %s", dir);
		return -1;
	}
	/* mkdir applies the umask: the mode asked for, exactly */
	if (chmod(dir, mode) < 0)
		log_warn("chmod %s", dir);
	if (u != NULL && u->change && chown(dir, u->uid, u->gid) < 0) {
		log_warn("chown %s to user %s", dir, u->name);
		return -1;
	}
	return 1;
}

/* Becomes u (groups, gid, uid) keeping the permitted set (keepcaps: the
 * effective set is emptied by the kernel, capset restores it). Needs
 * CAP_SETUID and CAP_SETGID. Returns 0, or -1 (logged) with the ids
 * unchanged where it matters: the uid is changed last. */
static int switch_user(const struct priv_user *u)
{
	if (prctl(PR_SET_KEEPCAPS, 1UL, 0UL, 0UL, 0UL) < 0) {
		log_warn("prctl(PR_SET_KEEPCAPS)");
		return -1;
	}
	/* the user's groups, as systemd's User= gives them (a group named
	 * in control.group or the key file's group may be one of them) */
	if (initgroups(u->name, u->gid) < 0 ||
	    setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0) {
		log_warn("cannot switch to user %s (uid %u, gid %u); staying "
			 "root", u->name, (unsigned)u->uid, (unsigned)u->gid);
		(void)prctl(PR_SET_KEEPCAPS, 0UL, 0UL, 0UL, 0UL);
		return -1;
	}
	(void)prctl(PR_SET_KEEPCAPS, 0UL, 0UL, 0UL, 0UL);
	/* The uid change cleared "dumpable"; set it back, as a process the
	 * unit starts as the user has it: ptrace still needs every capability
	 * it holds (no other process of the user's can attach), and the
	 * sanitizers' leak check, which attaches from inside, works. */
	(void)prctl(PR_SET_DUMPABLE, 1UL, 0UL, 0UL, 0UL);
	log_info("switched to user %s (uid %u, gid %u)", u->name,
		 (unsigned)u->uid, (unsigned)u->gid);
	return 0;
}

/*
 * The reduction itself, when the plan says so, and the switch to u. The
 * bounding set first: its drops need CAP_SETPCAP; then the ids, which
 * need CAP_SETUID and CAP_SETGID; then the capset that gives those up
 * (and, after a switch, makes the two kept ones effective again). A
 * refused step is logged and the next one tried.
 */
static void reduce(const struct priv_caps *cur, const struct priv_plan *p,
		   const struct priv_user *u)
{
	bool switched = false;

	if (p->act && p->bnd_drop != 0) {
		if (cur->eff & PRIV_BIT(CAP_SETPCAP))
			(void)drop_bounding(p->bnd_drop);
		else
			log_msg(LOG_LEVEL_WARNING, "no CAP_SETPCAP: the bounding "
				"set stays as it is");
	}
	if (u != NULL && u->change)
		switched = switch_user(u) == 0;
	if (p->act) {
		if (cap_set(p->eff, p->prm, p->inh) < 0)
			log_warn("capset");
	} else if (switched &&
		   cap_set(cur->prm & PRIV_KEEP, cur->prm & PRIV_KEEP, 0) < 0) {
		log_warn("capset");
	}
}

int privilege_drop(const struct priv_user *u, const char *config_path,
		   const char *state_file)
{
	struct priv_caps cur, now;
	struct priv_plan plan;
	char caps[1024];
	int rc = 0;

	/* Unprivileged, and allowed by the unit's filter. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) < 0)
		log_warn("prctl(PR_SET_NO_NEW_PRIVS)");
	if (privilege_read(&cur) < 0) {
		log_warn("cannot read the capability sets; leaving them");
		(void)privilege_check_files(config_path, state_file);
		return -1;
	}
	privilege_plan(&cur, PRIV_KEEP, &plan);
	/* Ambient bits are lowered without any privilege. */
	if (plan.clear_amb && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL,
				    0UL, 0UL, 0UL) < 0)
		log_warn("cannot clear the ambient capability set");
	/*
	 * A refused reduction is logged and the daemon goes on: it was
	 * already running this way before this step existed, its queue is
	 * bound, and stopping now would turn a hardening step into an outage
	 * of every tunnel (fail-closed traffic, but the admin asked for it to
	 * run). The warning names what is still held.
	 */
	if (plan.act || (u != NULL && u->change))
		reduce(&cur, &plan, u);
	if (privilege_read(&now) < 0)
		now = cur;
	if (privilege_format(now.eff, caps, sizeof(caps)) < 0)
		snprintf(caps, sizeof(caps), "0x%llx",
			 (unsigned long long)now.eff);
	if ((now.prm & ~PRIV_KEEP) != 0) {
		log_msg(LOG_LEVEL_WARNING, "capabilities not reduced, still "
			"holding more than cap_net_admin,cap_net_raw: CAPS=%s",
			caps);
		rc = -1;
	} else if (plan.act) {
		log_info("capabilities reduced to CAPS=%s (effective and "
			 "permitted%s; ambient and inheritable empty; "
			 "no_new_privs)", caps, (now.bnd & ~PRIV_KEEP) ?
			 "; bounding set unchanged" : ", bounding");
	} else {
		log_info("capabilities already limited, not changed: CAPS=%s "
			 "(no_new_privs)", caps);
	}
	(void)privilege_check_files(config_path, state_file);
	return rc;
}
