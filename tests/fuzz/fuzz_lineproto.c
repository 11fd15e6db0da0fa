/* libFuzzer target for common/lineproto.c: feeds the input as a stream to the
 * request framer (with resync after errors, as a connection handler does)
 * and to the single-line reader, under default and tiny limits, and aborts
 * if an output breaks the documented contract. Seeds: corpus/lineproto/. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lineproto.h"

#define check(cond) check_at((cond), __LINE__)

/* abort() with the failing line, so a crash report names the invariant. */
static void check_at(int cond, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_lineproto.c:%d: invariant broken\n", line);
		abort();
	}
}

static void check_inside(struct lineproto_str s, const char *buf, size_t len)
{
	check(!s.len || (s.ptr >= buf && s.ptr + s.len <= buf + len));
}

static void check_msg(const struct lineproto_msg *m, const char *buf, size_t len,
		      const struct lineproto_limits *lim)
{
	size_t i, max = lim ? lim->max_headers : 0;

	if (!max || max > LINEPROTO_MAX_HEADERS)
		max = LINEPROTO_MAX_HEADERS;
	check(m->command.len > 0 && m->n_headers <= max);
	check_inside(m->command, buf, len);
	check_inside(m->args, buf, len);
	for (i = 0; i < m->n_headers; i++) {
		const struct lineproto_header *h = &m->headers[i];

		check(h->name.len > 0 && h->value.len > 0);
		check(!memchr(h->name.ptr, '\n', h->name.len) && !memchr(h->value.ptr, '\0', h->value.len));
		check_inside(h->name, buf, len);
		check_inside(h->value, buf, len);
	}
	if (lineproto_header_get(m, "call_id"))
		check_inside(*lineproto_header_get(m, "call_id"), buf, len);
}

/* Every iteration drops at least one byte or stops, so this ends. */
static void frame_stream(const char *buf, size_t len, const struct lineproto_limits *lim)
{
	struct lineproto_msg msg;
	size_t used;
	int rc;

	while (len) {
		rc = lineproto_parse(buf, len, lim, &msg, &used);
		check(used <= len);
		if (rc == LINEPROTO_OK) {
			check(used > 0);
			check_msg(&msg, buf, len, lim);
		}
		check_inside(msg.bad_line, buf, len);
		buf += used;
		len -= used;
		if (rc == LINEPROTO_OK)
			continue;
		if (rc == LINEPROTO_NEED_MORE || rc == LINEPROTO_ERR_LINE_TOO_LONG)
			return;
		check(rc < 0 && lineproto_strerror(rc)[0]);
		rc = lineproto_skip_message(buf, len, lim, &used);
		check(used <= len && (rc != LINEPROTO_OK || used > 0));
		if (rc != LINEPROTO_OK)
			return;
		buf += used;
		len -= used;
	}
}

static void read_lines(const char *buf, size_t len, size_t max_line)
{
	struct lineproto_str line, word, rest;
	uint64_t seq;
	size_t used;

	while (lineproto_read_line(buf, len, max_line, &line, &used) == LINEPROTO_OK) {
		check(used > line.len && used <= len && line.ptr == buf);
		check(!memchr(line.ptr, '\0', line.len) && !memchr(line.ptr, '\n', line.len));
		lineproto_split_word(line, &word, &rest);
		check(word.len + (rest.ptr > word.ptr + word.len) + rest.len == line.len);
		lineproto_str_to_u64(word, &seq);
		buf += used;
		len -= used;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct lineproto_limits tiny = {
		.max_line = 24, .max_headers = 3, .max_message = 96,
	};
	const char *buf = (const char *)data;

	frame_stream(buf, size, NULL);
	frame_stream(buf, size, &tiny);
	read_lines(buf, size, 0);
	read_lines(buf, size, tiny.max_line);
	return 0;
}
