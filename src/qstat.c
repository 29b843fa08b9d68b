/*
 * Parsing the kernel's nfnetlink_queue table (qstat.h). Kept apart from the
 * socket code so the parser is tested on text, without a kernel.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qstat.h"

/* The fields of one line, in the kernel's order (seq_show). */
#define QSTAT_FIELDS 9

/* Parses one line into *out when it is queue `queue`. Returns 1 (found), 0
 * (another queue) or -1 (garbled). */
static int qstat_line(const char *line, unsigned queue, struct qstat *out)
{
	unsigned long long f[QSTAT_FIELDS];

	if (sscanf(line, "%llu %llu %llu %llu %llu %llu %llu %llu %llu",
		   &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7],
		   &f[8]) != QSTAT_FIELDS)
		return -1;
	for (int i = 0; i < QSTAT_FIELDS; i++)
		if (f[i] > UINT32_MAX)
			return -1;
	if (f[0] != queue)
		return 0;
	out->portid = (uint32_t)f[1];
	out->waiting = (uint32_t)f[2];
	out->queue_full = (uint32_t)f[5];
	out->socket_full = (uint32_t)f[6];
	out->id_sequence = (uint32_t)f[7];
	return 1;
}

int qstat_parse(const char *text, unsigned queue, struct qstat *out)
{
	const char *line = text;

	/* Only whole lines: a read cut short must not yield half a number. */
	for (const char *end; (end = strchr(line, '\n')) != NULL;
	     line = end + 1) {
		int r = qstat_line(line, queue, out);

		if (r != 0)
			return r > 0 ? 0 : -1;
	}
	return -1;
}

int qstat_read(const char *path, unsigned queue, struct qstat *out)
{
	char text[8192];   /* 40 bytes a queue: ~200 queues */
	ssize_t n;
	int fd = open(path ? path : QSTAT_PROC_PATH, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return -1;
	text[n] = '\0';
	if (qstat_parse(text, queue, out) < 0) {
		errno = ENOENT;
		return -1;
	}
	return 0;
}
