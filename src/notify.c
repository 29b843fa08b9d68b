/*
 * sd_notify behind the HAVE_SYSTEMD switch, so the daemon builds and runs
 * without libsystemd (procd, runit, tests).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "notify.h"

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

void notify_ready(const char *status)
{
	(void)sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void notify_reloading(void)
{
	struct timespec ts;
	unsigned long long usec = 0;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
		usec = (unsigned long long)ts.tv_sec * 1000000ULL +
		       (unsigned long long)ts.tv_nsec / 1000ULL;
	(void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
}

void notify_stopping(void)
{
	(void)sd_notify(0, "STOPPING=1");
}

void notify_status(const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);   /* cut is fine */
	va_end(ap);
	(void)sd_notifyf(0, "STATUS=%s", line);
}

uint64_t notify_watchdog_usec(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

void notify_watchdog(void)
{
	(void)sd_notify(0, "WATCHDOG=1");
}

#else /* !HAVE_SYSTEMD: no service manager to talk to */

void notify_ready(const char *status)
{
	(void)status;
}

void notify_reloading(void)
{
}

void notify_stopping(void)
{
}

void notify_status(const char *fmt, ...)
{
	(void)fmt;
}

uint64_t notify_watchdog_usec(void)
{
	return 0;
}

void notify_watchdog(void)
{
}

#endif
