/* libFuzzer target for the management command reader
 * (dispatcherd/management_cmd.c): takes lines off the input as a client
 * connection does, until it needs more or must close, and aborts if a
 * result breaks the documented contract. Seeds: corpus/management/. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "management_cmd.h"

#define check(cond) check_at((cond), __LINE__)

static void check_at(int cond, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_management.c:%d: invariant broken\n", line);
		abort();
	}
}

/* What the reader must say about buf, worked out the slow way. */
static int expected_rc(const char *buf, size_t size)
{
	const char *lf = memchr(buf, '\n', size);
	size_t content;

	if (!lf) {
		content = size - (size && buf[size - 1] == '\r');
		return content > MANAGEMENT_MAX_LINE ? LINEPROTO_ERR_LINE_TOO_LONG
						     : LINEPROTO_NEED_MORE;
	}
	content = (size_t)(lf - buf);
	content -= content && lf[-1] == '\r';
	return content > MANAGEMENT_MAX_LINE ? LINEPROTO_ERR_LINE_TOO_LONG : LINEPROTO_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct lineproto_str line;
	enum management_cmd cmd;
	size_t used;
	int rc;

	for (;;) {
		rc = management_cmd_next(buf, size, &cmd, &line, &used);
		check(rc == expected_rc(buf, size));
		if (rc != LINEPROTO_OK) {
			check(used == 0);
			return 0;
		}
		check(used > 0 && used <= size && used <= MANAGEMENT_MAX_LINE + 2);
		check(buf[used - 1] == '\n' && !memchr(buf, '\n', used - 1));
		check(line.ptr == buf && line.len < used);
		check(cmd >= MANAGEMENT_CMD_NONE && cmd <= MANAGEMENT_CMD_UNKNOWN);
		check(management_cmd_name(cmd)[0]);
		/* A NUL anywhere in the line makes it unknown; otherwise the
		 * line's own parse is the answer. */
		if (memchr(buf, '\0', used))
			check(cmd == MANAGEMENT_CMD_UNKNOWN);
		else
			check(cmd == management_cmd_parse(line.ptr, line.len));
		buf += used;
		size -= used;
	}
}
