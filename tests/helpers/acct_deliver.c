/* acct_deliver: hands accounting records straight to one backend, without
 * the dispatcher and its spool, so the backend tests can do what the engine
 * never does on purpose: deliver the same record twice, or keep retrying
 * while a server is down.
 *
 *   acct_deliver CONFIG-FILE BACKEND [--attempts N] [--retry-ms MS] < records
 *
 * BACKEND is jsonl, database or radius, configured from CONFIG-FILE as the
 * dispatcher configures it. Each stdin line is one record as the dispatcher
 * spools it (a JSON object with call_id, from_tag, to_tag). A record whose
 * delivery returns -EAGAIN is tried again, up to N attempts in all
 * (default 1), MS milliseconds apart (default 200). Prints one line per
 * record: "delivered CALL-ID" or "failed CALL-ID rc=-E: REASON". Backend
 * logs go to stderr. Exit status: 0 when every record was delivered, 1 when
 * one was not, 2 for a usage, config or backend-open error. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "config.h"
#include "log.h"
#include "record.h"

typedef int (*backend_open_fn)(struct accounting_backend *, const struct mp_config *,
			       char *, size_t);

static const struct {
	const char *name;
	backend_open_fn open;
} backends[] = {
	{ "jsonl", accounting_jsonl_open },
	{ "database", accounting_database_open },
	{ "radius", accounting_radius_open },
};

struct options {
	const char *config, *backend;
	long attempts, retry_ms;
};

static void usage(void)
{
	fprintf(stderr, "usage: acct_deliver CONFIG-FILE jsonl|database|radius "
		"[--attempts N] [--retry-ms MS] < records\n");
	exit(2);
}

static long number_arg(const char *s, long min)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end || v < min || v > 1000000)
		usage();
	return v;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "attempts", required_argument, NULL, 'a' },
		{ "retry-ms", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct options){ .attempts = 1, .retry_ms = 200 };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'a')
			o->attempts = number_arg(optarg, 1);
		else if (c == 'r')
			o->retry_ms = number_arg(optarg, 0);
		else
			usage();
	}
	if (argc - optind != 2)
		usage();
	o->config = argv[optind];
	o->backend = argv[optind + 1];
}

static void print_warning(void *ctx, const char *file, int line, const char *message)
{
	(void)ctx;
	fprintf(stderr, "%s:%d: %s\n", file, line, message);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* One line: 0 delivered, 1 not. */
static int deliver_line(struct accounting_backend *b, const struct options *o,
			const char *line, size_t len)
{
	struct accounting_record rec;
	struct json_object *owned;
	char err[256] = "";
	int rc;

	if (accounting_record_parse(line, len, &rec, &owned)) {
		printf("failed ? rc=%d: not a record: %s\n", -EINVAL, line);
		return 1;
	}
	for (long attempt = 1;; attempt++) {
		rc = b->deliver(b->state, &rec, err, sizeof(err));
		if (rc != -EAGAIN || attempt >= o->attempts)
			break;
		sleep_ms(o->retry_ms);
	}
	if (rc)
		printf("failed %s rc=%d: %s\n", rec.call_id, rc, err);
	else
		printf("delivered %s\n", rec.call_id);
	fflush(stdout);
	json_object_put(owned);
	return rc != 0;
}

int main(int argc, char **argv)
{
	struct accounting_backend b = { 0 };
	struct mp_config cfg = { 0 };
	struct options o;
	char err[512], *line = NULL;
	size_t cap = 0, i;
	ssize_t n;
	int failed = 0;

	parse_args(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN); /* as in the dispatcher: a dead peer is an error, not an exit */
	log_init("acct_deliver", LOG_LEVEL_DEBUG, false);
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (!strcmp(backends[i].name, o.backend))
			break;
	if (i == sizeof(backends) / sizeof(backends[0]))
		usage();
	if (config_load(&cfg, o.config, print_warning, NULL, err, sizeof(err)) ||
	    backends[i].open(&b, &cfg, err, sizeof(err))) {
		fprintf(stderr, "acct_deliver: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	while ((n = getline(&line, &cap, stdin)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n > 0)
			failed |= deliver_line(&b, &o, line, (size_t)n);
	}
	free(line);
	if (b.close)
		b.close(b.state);
	config_free(&cfg);
	return failed;
}
