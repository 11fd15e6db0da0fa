/* libFuzzer target for the reading of a proxy's MI reply datagram
 * (dispatcherd/mi_dialect.c mi_parse_reply): the input as one datagram, read
 * as the answer to each dialect's request, with request id 1 (what the seeds
 * carry) and a large one; aborts if a result breaks the documented contract.
 * Seeds: corpus/mi_reply/ (the real replies of test_mi_dialect.c). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mi_dialect.h"

#define check(cond) check_at((cond), __LINE__)

static void check_at(int cond, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_mi_reply.c:%d: invariant broken\n", line);
		abort();
	}
}

static void check_message(const struct mi_reply *rep)
{
	size_t i, n = strnlen(rep->message, sizeof(rep->message));

	check(n < sizeof(rep->message));
	for (i = 0; i < n; i++)
		check(rep->message[i] >= 0x20 && rep->message[i] < 0x7f);
}

static void read_as(enum mi_dialect dialect, const char *buf, size_t len, unsigned int id)
{
	struct mi_reply rep;
	int rc;

	memset(&rep, 0xa5, sizeof(rep));
	rc = mi_parse_reply(dialect, buf, len, id, &rep);
	check(rc == 0 || rc == -EINVAL || rc == -ESTALE);
	check_message(&rep);
	if (rc) {
		check(!rep.ok && rep.code == 0 && rep.message[0]);
		/* only JSON names a request id */
		check(rc != -ESTALE || (rep.json && dialect != MI_OPENSIPS_TEXT));
		return;
	}
	check(!rep.ok || rep.code == 200);
	check(!rep.json || dialect != MI_OPENSIPS_TEXT);
	/* a text line has a three-digit code; success says 200 */
	check(rep.json || (rep.code >= 100 && rep.code <= 999));
	check(rep.json || rep.ok == (rep.code == 200));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;

	read_as(MI_OPENSIPS_TEXT, buf, size, 0);
	read_as(MI_OPENSIPS_JSON, buf, size, 1);
	read_as(MI_OPENSIPS_JSON, buf, size, 2147483647u);
	read_as(MI_KAMAILIO_JSONRPC, buf, size, 1);
	return 0;
}
