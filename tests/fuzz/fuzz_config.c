/* libFuzzer target for config_load_buffer(), the config.ini parser of both
 * daemons. Besides not crashing or leaking, every message must name a line
 * that exists, and a loaded config must satisfy the documented invariants. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define NAME "/fuzz/config.ini"

struct bounds {
	int lines; /* lines in the input */
};

static void check_line(const struct bounds *b, int line)
{
	if (line < 1 || line > b->lines)
		abort();
}

static void on_warning(void *ctx, const char *file, int line, const char *message)
{
	if (strcmp(file, NAME) || !message[0])
		abort();
	check_line(ctx, line);
}

static void check_config(const struct mp_config *cfg)
{
	const struct config_relay *r = &cfg->relay;

	if (r->port_range.start % 2 || r->port_range.end % 2 ||
	    r->port_range.start >= r->port_range.end || r->port_range.start < 1024 ||
	    r->port_range.end > 65536)
		abort();
	if (r->dispatchers.count > CONFIG_MAX_LIST || r->interfaces.count > CONFIG_MAX_LIST ||
	    r->routable_private_ranges.count > 2 * CONFIG_MAX_LIST)
		abort();
	for (size_t i = 0; i < r->dispatchers.count; i++)
		if (r->dispatchers.items[i].port == 0)
			abort();
	if (r->dns_check_interval == 0 || r->reconnect_delay == 0 ||
	    r->keepalive_interval == 0 || r->userspace_transmit_every == 0 ||
	    !(cfg->dispatcher.relay_request_timeout > 0) ||
	    cfg->tls.certs_path[0] != '/' || cfg->dispatcher.accounting_file[0] != '/')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bounds b = { 1 };
	struct mp_config cfg = { 0 };
	char err[512], prefix[64];
	int line = 0;

	for (size_t i = 0; i < size; i++)
		b.lines += data[i] == '\n';
	if (config_load_buffer(&cfg, NAME, (const char *)data, size, on_warning, &b,
			       err, sizeof(err)) == 0) {
		check_config(&cfg);
		config_free(&cfg);
		return 0;
	}
	/* "NAME:LINE: ..." with a real line, or "NAME: ..." for the whole file */
	snprintf(prefix, sizeof(prefix), "%s:", NAME);
	if (strncmp(err, prefix, strlen(prefix)))
		abort();
	if (sscanf(err + strlen(prefix), "%d:", &line) == 1)
		check_line(&b, line);
	if (cfg.file || cfg.dir)
		abort();
	return 0;
}
