/*
 * /etc/ipsec-masqd.conf (libconfig syntax), parsed and validated into a
 * struct that the daemon swaps in whole on reload. Every error names the
 * file and the line.
 */
#ifndef IPSEC_MASQD_CONFFILE_H
#define IPSEC_MASQD_CONFFILE_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define CONFIG_MAX_PRELOAD 1024
#define CONFIG_STATE_INTERVAL_MS 300000ULL   /* state.interval: 5 minutes */
#define CONFIG_DEFAULT_USER "ipsec-masqd"   /* user: the packaged system user */

enum log_level {                 /* syslog priorities */
	LOG_LEVEL_ERROR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

struct config_preload {          /* preload = ( { remote; host; spi_in; ... } ) */
	uint32_t remote, host, spi_in, spi_out;  /* host order; spi_out 0 = unset */
	int line;
};

/* io = { ... }: the queue socket and the loop (nfq.h has the defaults). */
struct io_config {
	unsigned batch;                       /* messages per recvmmsg: 64 */
	unsigned receive_buffer;              /* bytes: 8 MiB */
	unsigned verdict_buffer;              /* verdict bytes per send */
	unsigned queue_maxlen;                /* kernel queue length: 4096 */
	int cpu;                              /* pin the loop here; -1: no */
};

/* fastpath = { ... }: established ESP rewritten by the kernel (fastpath.h). */
struct fastpath_config {
	bool enable;                          /* default: FASTPATH_DEFAULT_ON */
	uint64_t poll_ms;                     /* kernel counters read: 1 s */
	unsigned admit_rate;                  /* queued packets/s admitted from
					       * the WAN; 0 = no limit */
	unsigned admit_burst;                 /* packets; 0 = rate / 10 */
};

#define FASTPATH_DEFAULT_ON true
#define FASTPATH_POLL_MIN_MS 100
#define FASTPATH_POLL_MAX_MS 60000
#define FASTPATH_ADMIT_MAX 100000000u

#define ANNOUNCE_MAX_ENTRIES_DEFAULT 4096   /* as announce.h's */

/* announce = { ... }: the LAN listener for SPI announcements (announce.h);
 * off unless the group is there. */
struct announce_config {
	bool enabled;
	uint32_t listen;                      /* host order, inside internal */
	unsigned port;                        /* UDP: 4510 */
	char key_file[4096];                  /* absolute path */
	uint64_t max_skew_ms;                 /* timestamp window: 30 s */
	unsigned rate;                        /* messages/s per sender: 10 */
	unsigned burst;                       /* per sender: 20 */
	size_t max_entries;                   /* announced entries, all hosts */
};

/* Where a setting came from: a default, the file, the command line. */
enum config_source { CONFIG_DEFAULT, CONFIG_FILE, CONFIG_CMDLINE };

struct masqd_config {
	char path[4096];                      /* file it came from */
	unsigned queue;                       /* NFQUEUE number */
	struct io_config io;
	struct fastpath_config fastpath;
	char ext_interface[IF_NAMESIZE];      /* "" when address is given */
	/* engine.external_addr: the fixed address, or 0 to follow the interface */
	struct engine_config engine;
	char control_socket[108];             /* sun_path */
	unsigned control_mode;                /* permission bits: 0660 */
	char control_owner[64];               /* user name or uid; "" = ours */
	char control_group[64];               /* group name or gid; "" = ours */
	char state_file[4096];                /* "" = no state file */
	/* Started as root: the user to run as once set up (privilege.h).
	 * "ipsec-masqd" by default, switched to only if it exists; set in
	 * the file or by -u it must exist; one with uid 0 means stay root. */
	char user[64];
	enum config_source user_source;
	uint64_t state_interval_ms;           /* periodic save: 300 s */
	enum log_level log_level;
	struct announce_config announce;
	size_t n_preload;
	struct config_preload preload[CONFIG_MAX_PRELOAD];
};

/* Built-in defaults (what an empty file means, but for the required keys). */
void config_defaults(struct masqd_config *cfg);

/*
 * Parse and validate `path` into *cfg (defaults first). Returns 0, or -1 with
 * "FILE:LINE: what is wrong" (or "FILE: what is wrong" when no line applies)
 * in err. *cfg is undefined on error: parse into a scratch struct and swap.
 */
int config_load(const char *path, struct masqd_config *cfg, char *err,
		size_t errlen);

#endif
