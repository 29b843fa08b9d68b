/*
 * libFuzzer target: config_load() on arbitrary file contents. The input is
 * written to one memfd per process (opened by path through /proc/self/fd,
 * as config_load() wants a path), so a run costs no file system traffic.
 * An error must be "PATH..." text within errlen; a config that loads must
 * drive an engine (engine_new accepts its engine part, its preloads are
 * never refused as invalid) and keep its strings terminated.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conffile.h"
#include "engine.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

/* Bounded copies of what the engine would be built with: the limits are
 * capped so that a config asking for millions of entries does not allocate
 * their hash buckets on every run. */
static void check_engine(const struct masqd_config *cfg)
{
	struct engine_config ec = cfg->engine;
	struct engine *eng;

	if (ec.max_entries > 4096)
		ec.max_entries = 4096;
	if (ec.max_per_host > ec.max_entries)
		ec.max_per_host = ec.max_entries;
	eng = engine_new(&ec, 1, 0, NULL, NULL);
	FUZZ_ASSERT(eng != NULL, "engine_new refuses a loaded config: %s",
		    strerror(errno));
	/* 0 is "not known yet" (external = { interface = ...; }): the
	 * address comes from rtnetlink later, and an internal 0.0.0.0/8 may
	 * hold that placeholder. conffile.c checks a configured address. */
	FUZZ_ASSERT(ec.external_addr == 0 ||
		    !engine_is_internal(eng, ec.external_addr),
		    "external address %08x is internal", ec.external_addr);
	for (size_t i = 0; i < cfg->n_preload; i++) {
		const struct config_preload *p = &cfg->preload[i];

		if (engine_preload(eng, p->remote, p->host, p->spi_in,
				   p->spi_out, 0, 0) < 0)
			FUZZ_ASSERT(errno != EINVAL, "preload at line %d "
				    "loaded but the engine calls it invalid",
				    p->line);
	}
	engine_free(eng);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct masqd_config cfg;
	char err[512];
	int r;

	if (fd < 0) {
		fd = memfd_create("fuzz_config", 0);
		FUZZ_ASSERT(fd >= 0, "memfd_create: %s", strerror(errno));
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	FUZZ_ASSERT(ftruncate(fd, 0) == 0, "ftruncate");
	FUZZ_ASSERT(pwrite(fd, data, size, 0) == (ssize_t)size, "pwrite");
	memset(err, 'x', sizeof(err));
	r = config_load(path, &cfg, err, sizeof(err));
	FUZZ_ASSERT(r == 0 || r == -1, "config_load returned %d", r);
	FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL,
		    "error text not terminated");
	if (r < 0) {
		FUZZ_ASSERT(strncmp(err, path, strlen(path)) == 0,
			    "error does not name the file: %s", err);
		return 0;
	}
	FUZZ_ASSERT(err[0] == '\0', "success with an error text: %s", err);
	FUZZ_ASSERT(strcmp(cfg.path, path) == 0, "path");
	FUZZ_ASSERT(memchr(cfg.ext_interface, '\0',
			   sizeof(cfg.ext_interface)) != NULL &&
			    memchr(cfg.control_socket, '\0',
				   sizeof(cfg.control_socket)) != NULL &&
			    memchr(cfg.state_file, '\0',
				   sizeof(cfg.state_file)) != NULL,
		    "unterminated string");
	FUZZ_ASSERT(cfg.n_preload <= CONFIG_MAX_PRELOAD, "n_preload");
	FUZZ_ASSERT(cfg.control_socket[0] == '/', "control socket %s",
		    cfg.control_socket);
	check_engine(&cfg);
	return 0;
}
