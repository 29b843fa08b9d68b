/*
 * The service manager's notification socket (sd_notify): readiness, reload,
 * stop, status and watchdog. Real calls when built with libsystemd
 * (HAVE_SYSTEMD), no-ops otherwise; also no-ops when NOTIFY_SOCKET is unset.
 */
#ifndef IPSEC_MASQD_NOTIFY_H
#define IPSEC_MASQD_NOTIFY_H

#include <stdint.h>

/* READY=1 with a STATUS= line. */
void notify_ready(const char *status);

/* RELOADING=1 with MONOTONIC_USEC= of now (systemd >= 253 wants it). */
void notify_reloading(void);

void notify_stopping(void);

/* STATUS=, printf-style. */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval the manager asked for (microseconds), 0 if none. */
uint64_t notify_watchdog_usec(void);

/* WATCHDOG=1: the main loop is alive. */
void notify_watchdog(void);

#endif
