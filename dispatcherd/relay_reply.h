/* One line of what a relay sends its dispatcher (PROTOCOL.md §2.2):
 * `<seq> <payload>` answering a command, `ping`, or `expired <json>`.
 * A pure parser, so that the link code (relay_link_io.c) only acts on the
 * result and the fuzzer can reach every branch. */
#ifndef MP_RELAY_REPLY_H
#define MP_RELAY_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "lineproto.h"

enum relay_reply_kind {
	RELAY_REPLY_EMPTY,	/* an empty line: nothing to do */
	RELAY_REPLY_PING,	/* `ping`: answer `pong` */
	RELAY_REPLY_EXPIRED,	/* `expired <json>`: body is the JSON, never empty */
	RELAY_REPLY_ANSWER,	/* `<seq> <payload>`: body is the payload, may be empty */
};

struct relay_reply {
	enum relay_reply_kind kind;
	uint64_t seq;			/* RELAY_REPLY_ANSWER only */
	struct lineproto_str line;	/* the line without its terminator */
	struct lineproto_str body;	/* inside line */
	size_t consumed;		/* bytes of the line, terminator included */
	const char *error;		/* on failure: what is wrong, for the log */
};

/* Reads the line at the start of buf (len bytes; max_line as for
 * lineproto_read_line(), 0 meaning LINEPROTO_MAX_LINE) and says what it
 * is. Returns 0 with *out filled in. Otherwise out->error says what is
 * wrong, for the log, and out->line is the text to quote there:
 *   lineproto_read_line()'s code (LINEPROTO_NEED_MORE without a complete
 *   line, or an error): the line could not be read; out->line is all of buf;
 *   -EBADMSG: the line means nothing (`malformed line`, `expired without a
 *   body`); out->line is its content. */
int relay_reply_parse(const char *buf, size_t len, size_t max_line, struct relay_reply *out);

#endif
