/* libFuzzer target for the dispatcher's reading of a relay's reply stream
 * (dispatcherd/relay_reply.c): takes the input line by line as
 * relay_link_io.c does (each call gets one line, LF included, or the
 * unterminated rest), under the relay link's limit and a tiny one, and
 * aborts if a result breaks the documented contract. Seeds:
 * corpus/relay_reply/. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay_reply.h"

#define check(cond) check_at((cond), __LINE__)

static void check_at(int cond, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_relay_reply.c:%d: invariant broken\n", line);
		abort();
	}
}

static bool inside(struct lineproto_str s, struct lineproto_str in)
{
	return s.ptr >= in.ptr && s.ptr + s.len <= in.ptr + in.len;
}

static bool starts(struct lineproto_str s, const char *prefix)
{
	size_t n = strlen(prefix);

	return s.len >= n && !memcmp(s.ptr, prefix, n);
}

static void check_ok(const struct relay_reply *rep, const char *buf, size_t n)
{
	struct lineproto_str whole = { buf, n }, word = rep->line;
	char seq[24];

	check(!rep->error && rep->line.ptr == buf && inside(rep->line, whole));
	check(rep->consumed > rep->line.len && rep->consumed <= n);
	check(!memchr(rep->line.ptr, '\n', rep->line.len) &&
	      !memchr(rep->line.ptr, '\0', rep->line.len));
	check(!rep->body.len || inside(rep->body, rep->line));
	switch (rep->kind) {
	case RELAY_REPLY_EMPTY:
		check(!rep->line.len);
		break;
	case RELAY_REPLY_PING:
		check(lineproto_str_eq(rep->line, "ping"));
		break;
	case RELAY_REPLY_EXPIRED:
		check(starts(rep->line, "expired ") && rep->body.len &&
		      rep->body.ptr == rep->line.ptr + 8);
		break;
	case RELAY_REPLY_ANSWER:
		/* the seq is the line's first word, in plain decimal (leading
		 * zeros allowed) */
		while (word.len > 1 && word.ptr[0] == '0' && word.ptr[1] >= '0' && word.ptr[1] <= '9') {
			word.ptr++;
			word.len--;
		}
		snprintf(seq, sizeof(seq), "%" PRIu64 " ", rep->seq);
		check(starts(word, seq));
		check(rep->body.ptr + rep->body.len == rep->line.ptr + rep->line.len);
		check(rep->body.ptr > rep->line.ptr && rep->body.ptr[-1] == ' ');
		break;
	default:
		check(0);
	}
}

static void check_failed(int rc, const struct relay_reply *rep, const char *buf, size_t n)
{
	check(rep->error && rep->error[0]);
	if (rc == -EBADMSG) {
		check(rep->line.ptr == buf && rep->line.len < n);
		check(!strcmp(rep->error, "malformed line") ||
		      !strcmp(rep->error, "expired without a body"));
		return;
	}
	check(rc == LINEPROTO_NEED_MORE || rc == LINEPROTO_ERR_LINE_TOO_LONG ||
	      rc == LINEPROTO_ERR_NUL_BYTE);
	check(rep->line.ptr == buf && rep->line.len == n);
	check(!strcmp(rep->error, lineproto_strerror(rc)));
}

static void read_stream(const char *buf, size_t len, size_t max_line)
{
	while (len) {
		const char *lf = memchr(buf, '\n', len);
		size_t n = lf ? (size_t)(lf - buf) + 1 : len;
		struct relay_reply rep;
		int rc = relay_reply_parse(buf, n, max_line, &rep);

		if (rc)
			check_failed(rc, &rep, buf, n);
		else
			check_ok(&rep, buf, n);
		buf += n;
		len -= n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_stream((const char *)data, size, LINEPROTO_RELAY_MAX_LINE);
	read_stream((const char *)data, size, 16);
	return 0;
}
