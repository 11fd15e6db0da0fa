/* Telling the lines of a relay's reply stream apart (relay_reply.h).
 * Pure: no I/O, no logging. */
#include "relay_reply.h"

#include <errno.h>
#include <string.h>

int relay_reply_parse(const char *buf, size_t len, size_t max_line, struct relay_reply *out)
{
	struct lineproto_str word, rest;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = lineproto_read_line(buf, len, max_line, &out->line, &out->consumed);
	if (rc != LINEPROTO_OK) {
		out->line = (struct lineproto_str){ buf, len };
		out->error = lineproto_strerror(rc);
		return rc;
	}
	if (!out->line.len) {
		out->kind = RELAY_REPLY_EMPTY;
		return 0;
	}
	if (lineproto_str_eq(out->line, "ping")) {
		out->kind = RELAY_REPLY_PING;
		return 0;
	}
	lineproto_split_word(out->line, &word, &rest);
	if (lineproto_str_eq(word, "expired")) {
		if (!rest.len) {
			out->error = "expired without a body";
			return -EBADMSG;
		}
		out->kind = RELAY_REPLY_EXPIRED;
		out->body = rest;
		return 0;
	}
	/* "<seq>" alone, "pong" (a dispatcher never pings), or a word that
	 * is not a sequence number */
	if (word.len == out->line.len || lineproto_str_to_u64(word, &out->seq) < 0) {
		out->seq = 0;
		out->error = "malformed line";
		return -EBADMSG;
	}
	out->kind = RELAY_REPLY_ANSWER;
	out->body = rest;
	return 0;
}
