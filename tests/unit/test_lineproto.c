/* Unit tests for common/lineproto.c: request framing, single lines, limits,
 * resync and the formatters, driven by bytes captured from Kamailio 5.6.3
 * and OpenSIPS 3.4.18 (PROTOCOL.md Appendix A) plus relay-link and
 * management traffic (§2.2, §3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lineproto.h"
#include "appendix_a.h"

/* --- fixtures beyond Appendix A (those are in appendix_a.h) ---------------- */
/* PROTOCOL.md §2.2: the dispatcher forwards the offer minus empty headers. */
#define RELAY_UPDATE                                                                \
	"update 17\r\ntype: request\r\ndialog_id: 3421:1804289383\r\n"                      \
	"call_id: 5f1b2c3d@192.0.2.10\r\ncseq: 101\r\nfrom_uri: alice@example.com\r\n"      \
	"to_uri: bob@example.com\r\nfrom_tag: a73kszlfl\r\nuser_agent: Blink 5.1\r\n"       \
	"signaling_ip: 203.0.113.5\r\nmedia: audio:192.0.2.10:49170:sendrecv:ice=no\r\n\r\n"

#define ALL SIZE_MAX /* want_consumed: the whole input */
#define IN(s) .input = (s), .len = sizeof(s) - 1

struct kv {
	const char *name, *value;
};

#define KAM_OFFER_HEADERS                                                           \
	{ "type", "request" }, { "dialog_id", "3431:9579" },                              \
	{ "call_id", "1-16898@127.0.0.1" }, { "cseq", "1" },                              \
	{ "from_uri", "uac@127.0.0.1:54784" }, { "to_uri", "uas@127.0.0.1:32968" },       \
	{ "from_tag", "16898SIPpTag001" }, { "user_agent", "e2e-uac" },                   \
	{ "signaling_ip", "127.0.0.1" },                                                  \
	{ "media", "audio:127.0.0.1:23604:sendrecv:ice=no" }

struct parse_case {
	const char *name;
	const char *input;
	size_t len;
	struct lineproto_limits lim;
	int want_rc;
	size_t want_consumed;
	const char *want_command;	/* NULL: command line not parsed */
	const char *want_args;
	struct kv want[16];		/* checked on LINEPROTO_OK, {NULL}-ended */
	const char *want_bad_line;	/* checked when set */
};

static const struct parse_case parse_cases[] = {
	{ "Kamailio 5.6.3 offer with empty to_tag and media_relay", IN(KAM_OFFER),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "update",
	  .want_args = "", .want = { KAM_OFFER_HEADERS } },
	{ "Kamailio 5.6.3 answer carrying the callee to_tag", IN(KAM_ANSWER),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "update",
	  .want_args = "",
	  .want = { { "type", "reply" }, { "dialog_id", "3431:9579" },
		    { "call_id", "1-16898@127.0.0.1" }, { "cseq", "1" },
		    { "from_uri", "uac@127.0.0.1:54784" }, { "to_uri", "uas@127.0.0.1:32968" },
		    { "from_tag", "16898SIPpTag001" }, { "to_tag", "16885SIPpTag011" },
		    { "user_agent", "e2e-uas" }, { "signaling_ip", "127.0.0.1" },
		    { "media", "audio:127.0.0.1:21912:sendrecv:ice=no" } } },
	{ "Kamailio 5.6.3 remove at dialog end", IN(KAM_REMOVE),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "remove",
	  .want_args = "",
	  .want = { { "call_id", "1-16898@127.0.0.1" }, { "from_tag", "16898SIPpTag001" },
		    { "to_tag", "16885SIPpTag011" } } },
	{ "OpenSIPS 3.4.18 offer with 64-bit decimal dialog_id", IN(OSIPS_OFFER),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "update",
	  .want_args = "",
	  .want = { { "type", "request" }, { "dialog_id", "1181799336689" },
		    { "call_id", "1-3883@127.0.0.1" }, { "cseq", "1" },
		    { "from_uri", "caller@127.0.0.1:58326" },
		    { "to_uri", "callee@127.0.0.1:37132" }, { "from_tag", "3883SIPpTag001" },
		    { "user_agent", "e2e-opensips-uac" }, { "signaling_ip", "127.0.0.1" },
		    { "media", "audio:127.0.0.1:47504:sendrecv:ice=no" } } },
	{ "OpenSIPS 3.4.18 remove", IN(OSIPS_REMOVE),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "remove",
	  .want_args = "",
	  .want = { { "call_id", "1-3883@127.0.0.1" }, { "from_tag", "3883SIPpTag001" },
		    { "to_tag", "3880SIPpTag011" } } },
	{ "relay link update 17 forwarded by the dispatcher", IN(RELAY_UPDATE),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "update",
	  .want_args = "17",
	  .want = { { "type", "request" }, { "dialog_id", "3421:1804289383" },
		    { "call_id", "5f1b2c3d@192.0.2.10" }, { "cseq", "101" },
		    { "from_uri", "alice@example.com" }, { "to_uri", "bob@example.com" },
		    { "from_tag", "a73kszlfl" }, { "user_agent", "Blink 5.1" },
		    { "signaling_ip", "203.0.113.5" },
		    { "media", "audio:192.0.2.10:49170:sendrecv:ice=no" } } },
	{ "relay link summary 3 without headers", IN("summary 3\r\n\r\n"),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "summary",
	  .want_args = "3" },
	{ "bare LF line endings", IN("remove\ncall_id: abc@host\nfrom_tag: 1\n\n"),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "remove",
	  .want_args = "", .want = { { "call_id", "abc@host" }, { "from_tag", "1" } } },
	{ "mixed CRLF and bare LF", IN("remove\r\ncall_id: abc@host\nfrom_tag: 1\r\n\n"),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "remove",
	  .want_args = "", .want = { { "call_id", "abc@host" }, { "from_tag", "1" } } },
	{ "leading blank lines before the request", IN("\r\n\n\r\n" KAM_REMOVE),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "remove",
	  .want_args = "",
	  .want = { { "call_id", "1-16898@127.0.0.1" }, { "from_tag", "16898SIPpTag001" },
		    { "to_tag", "16885SIPpTag011" } } },
	{ "only blank lines are consumed", IN("\r\n\r\n\n"),
	  .want_rc = LINEPROTO_NEED_MORE, .want_consumed = ALL },
	{ "blank lines then a partial command line", IN("\r\nupd"),
	  .want_rc = LINEPROTO_NEED_MORE, .want_consumed = 2 },
	{ "empty read", IN(""), .want_rc = LINEPROTO_NEED_MORE, .want_consumed = 0 },
	{ "request without its final empty line", IN("remove\r\ncall_id: x\r\n"),
	  .want_rc = LINEPROTO_NEED_MORE, .want_consumed = 0 },
	{ "request cut inside a header line", IN("remove\r\ncall_id: x"),
	  .want_rc = LINEPROTO_NEED_MORE, .want_consumed = 0 },
	{ "request cut between CR and LF of the final line", IN("remove\r\ncall_id: x\r\n\r"),
	  .want_rc = LINEPROTO_NEED_MORE, .want_consumed = 0 },
	{ "two requests in one read: the first is framed", IN(KAM_REMOVE OSIPS_REMOVE),
	  .want_rc = LINEPROTO_OK, .want_consumed = sizeof(KAM_REMOVE) - 1,
	  .want_command = "remove", .want_args = "",
	  .want = { { "call_id", "1-16898@127.0.0.1" }, { "from_tag", "16898SIPpTag001" },
		    { "to_tag", "16885SIPpTag011" } } },
	{ "command line with a trailing space", IN("update \r\n\r\n"),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "update",
	  .want_args = "" },
	{ "command line starting with a space", IN("\r\n update 5\r\n\r\n"),
	  .want_rc = LINEPROTO_ERR_EMPTY_COMMAND, .want_consumed = 2,
	  .want_bad_line = " update 5" },
	{ "signaling_ip as JSON splits at the first ': '",
	  IN("update\r\nsignaling_ip: {\"signaling_ip\": \"10.0.0.1\", \"username\": \"bob\"}\r\n\r\n"),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "update",
	  .want_args = "",
	  .want = { { "signaling_ip", "{\"signaling_ip\": \"10.0.0.1\", \"username\": \"bob\"}" } } },
	{ "a line ending in ': ' is dropped even with text before it, as upstream",
	  IN("update\r\nuser_agent: odd: \r\ncall_id: x\r\n\r\n"),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "update",
	  .want_args = "", .want = { { "call_id", "x" } } },
	{ "a bare ': ' line is an empty header and dropped", IN("update\r\n: \r\ncall_id: x\r\n\r\n"),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "update",
	  .want_args = "", .want = { { "call_id", "x" } } },
	{ "value of two spaces is kept", IN("update\r\nto_tag:  \r\n\r\n"),
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "update",
	  .want_args = "", .want = { { "to_tag", " " } } },
	{ "header without ': ' separator", IN("update\r\ncall_id 5f1b2c3d\r\n\r\n"),
	  .want_rc = LINEPROTO_ERR_NO_SEPARATOR, .want_consumed = 0, .want_command = "update",
	  .want_args = "", .want_bad_line = "call_id 5f1b2c3d" },
	{ "header with a colon but no space", IN("remove 4\r\ncall_id:5f1b2c3d\r\n\r\n"),
	  .want_rc = LINEPROTO_ERR_NO_SEPARATOR, .want_consumed = 0, .want_command = "remove",
	  .want_args = "4", .want_bad_line = "call_id:5f1b2c3d" },
	{ "malformed header reported before the request is complete",
	  IN("\r\nupdate\r\ngarbage\r\ncall_id: x\r\n"),
	  .want_rc = LINEPROTO_ERR_NO_SEPARATOR, .want_consumed = 2, .want_command = "update",
	  .want_args = "", .want_bad_line = "garbage" },
	{ "header with an empty name", IN("update\r\n: 5f1b2c3d\r\n\r\n"),
	  .want_rc = LINEPROTO_ERR_EMPTY_NAME, .want_consumed = 0, .want_command = "update",
	  .want_args = "", .want_bad_line = ": 5f1b2c3d" },
	{ "NUL byte inside a header value", IN("update\r\ncall_id: a\0b\r\n\r\n"),
	  .want_rc = LINEPROTO_ERR_NUL_BYTE, .want_consumed = 0, .want_command = "update",
	  .want_args = "" },
	{ "NUL byte in the command line", IN("upd\0ate\r\n\r\n"),
	  .want_rc = LINEPROTO_ERR_NUL_BYTE, .want_consumed = 0 },
	{ "command line over the line limit", IN("update 12345\r\n\r\n"),
	  .lim = { .max_line = 8 }, .want_rc = LINEPROTO_ERR_LINE_TOO_LONG, .want_consumed = 0 },
	{ "line over limit with no newline yet is caught early", IN("update\r\ncall_id: 0123456789"),
	  .lim = { .max_line = 16 }, .want_rc = LINEPROTO_ERR_LINE_TOO_LONG, .want_consumed = 0,
	  .want_command = "update", .want_args = "" },
	{ "line exactly at the limit", IN("update\r\ncall_id: 01234567\r\n\r\n"),
	  .lim = { .max_line = 17 }, .want_rc = LINEPROTO_OK, .want_consumed = ALL,
	  .want_command = "update", .want_args = "", .want = { { "call_id", "01234567" } } },
	{ "line at the limit waiting for the LF after its CR", IN("update\r\ncall_id: 01234567\r"),
	  .lim = { .max_line = 17 }, .want_rc = LINEPROTO_NEED_MORE, .want_consumed = 0 },
	{ "line at the limit with no terminator yet", IN("update\r\ncall_id: 01234567"),
	  .lim = { .max_line = 17 }, .want_rc = LINEPROTO_NEED_MORE, .want_consumed = 0 },
	{ "line one over the limit", IN("update\r\ncall_id: 012345678\r\n\r\n"),
	  .lim = { .max_line = 17 }, .want_rc = LINEPROTO_ERR_LINE_TOO_LONG, .want_consumed = 0,
	  .want_command = "update", .want_args = "" },
	{ "too many headers", IN(KAM_REMOVE), .lim = { .max_headers = 2 },
	  .want_rc = LINEPROTO_ERR_TOO_MANY_HEADERS, .want_consumed = 0,
	  .want_command = "remove", .want_args = "",
	  .want_bad_line = "to_tag: 16885SIPpTag011" },
	{ "dropped empty headers do not count against max_headers",
	  IN("update\r\nto_tag: \r\nmedia_relay: \r\ncall_id: x\r\n\r\n"), .lim = { .max_headers = 1 },
	  .want_rc = LINEPROTO_OK, .want_consumed = ALL, .want_command = "update",
	  .want_args = "", .want = { { "call_id", "x" } } },
	{ "oversized message", IN(KAM_OFFER), .lim = { .max_message = 100 },
	  .want_rc = LINEPROTO_ERR_MESSAGE_TOO_BIG, .want_consumed = 0,
	  .want_command = "update", .want_args = "" },
	{ "oversized message caught before its end", IN("remove\r\ncall_id: 0123456789"),
	  .lim = { .max_message = 20 }, .want_rc = LINEPROTO_ERR_MESSAGE_TOO_BIG,
	  .want_consumed = 0, .want_command = "remove", .want_args = "" },
	{ "oversized command line alone", IN("summary 1234567890"), .lim = { .max_message = 10 },
	  .want_rc = LINEPROTO_ERR_MESSAGE_TOO_BIG, .want_consumed = 0 },
	{ "message exactly at max_message", IN("\r\nremove\r\ncall_id: x\r\n\r\n"),
	  .lim = { .max_message = 22 }, .want_rc = LINEPROTO_OK, .want_consumed = ALL,
	  .want_command = "remove", .want_args = "", .want = { { "call_id", "x" } } },
	{ "message one byte over max_message", IN("remove\r\ncall_id: xy\r\n\r\n"),
	  .lim = { .max_message = 22 }, .want_rc = LINEPROTO_ERR_MESSAGE_TOO_BIG,
	  .want_consumed = 0, .want_command = "remove", .want_args = "" },
	{ "partial message at max_message cannot end in time", IN("remove\r\ncall_id: x\r\n\r"),
	  .lim = { .max_message = 21 }, .want_rc = LINEPROTO_ERR_MESSAGE_TOO_BIG,
	  .want_consumed = 0, .want_command = "remove", .want_args = "" },
};

static void fail_unless_str(const char *case_name, const char *what, struct lineproto_str got,
			    const char *want)
{
	if (!lineproto_str_eq(got, want))
		fail_msg("%s: %s is '%.*s', want '%s'", case_name, what, (int)got.len,
			 got.ptr ? got.ptr : "", want);
}

/* Every slice must lie inside the input: ownership is "points into buf". */
static void fail_unless_inside(const char *case_name, struct lineproto_str s,
			       const char *buf, size_t len)
{
	if (s.len && (s.ptr < buf || s.ptr + s.len > buf + len))
		fail_msg("%s: slice outside the input buffer", case_name);
}

static void check_parse_case(const struct parse_case *c)
{
	size_t want_consumed = c->want_consumed == ALL ? c->len : c->want_consumed;
	struct lineproto_msg msg;
	size_t consumed = 12345, i, n = 0;
	int rc;

	rc = lineproto_parse(c->input, c->len, &c->lim, &msg, &consumed);
	if (rc != c->want_rc)
		fail_msg("%s: rc %d (%s), want %d (%s)", c->name, rc, lineproto_strerror(rc),
			 c->want_rc, lineproto_strerror(c->want_rc));
	if (consumed != want_consumed)
		fail_msg("%s: consumed %zu, want %zu", c->name, consumed, want_consumed);
	if (c->want_command) {
		fail_unless_str(c->name, "command", msg.command, c->want_command);
		fail_unless_str(c->name, "args", msg.args, c->want_args);
	} else if (rc < 0 && msg.command.len) {
		/* On NEED_MORE *out is unspecified; on errors command says how
		 * far the parser got. */
		fail_msg("%s: unexpected command", c->name);
	}
	if (c->want_bad_line)
		fail_unless_str(c->name, "bad_line", msg.bad_line, c->want_bad_line);
	fail_unless_inside(c->name, msg.bad_line, c->input, c->len);
	if (rc != LINEPROTO_OK)
		return;
	while (c->want[n].name)
		n++;
	if (msg.n_headers != n)
		fail_msg("%s: %zu headers, want %zu", c->name, msg.n_headers, n);
	for (i = 0; i < n; i++) {
		fail_unless_str(c->name, "header name", msg.headers[i].name, c->want[i].name);
		fail_unless_str(c->name, c->want[i].name, msg.headers[i].value, c->want[i].value);
		fail_unless_inside(c->name, msg.headers[i].value, c->input, c->len);
	}
}

static void test_parse_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++)
		check_parse_case(&parse_cases[i]);
}

/* The proxy module writes in one send(), but a stream socket may deliver it
 * in pieces: every prefix is NEED_MORE, the whole is the same message. */
static void test_request_split_across_three_reads(void **state)
{
	static const char in[] = "\r\n" KAM_OFFER;
	const size_t len = sizeof(in) - 1, cuts[] = { 40, 200, len };
	struct lineproto_msg msg;
	size_t consumed, i;
	int rc;

	(void)state;
	for (i = 0; i < 3; i++) {
		rc = lineproto_parse(in, cuts[i], NULL, &msg, &consumed);
		assert_int_equal(rc, i < 2 ? LINEPROTO_NEED_MORE : LINEPROTO_OK);
	}
	assert_int_equal(consumed, len);
	assert_int_equal(msg.n_headers, 10);
	assert_null(lineproto_header_get(&msg, "to_tag"));
	for (i = 0; i < len; i++) {
		rc = lineproto_parse(in, i, NULL, &msg, &consumed);
		if (rc != LINEPROTO_NEED_MORE)
			fail_msg("prefix of %zu bytes: rc %d", i, rc);
		assert_int_equal(consumed, i < 2 ? 0 : 2);
	}
}

static void test_two_requests_in_one_read(void **state)
{
	static const char in[] = KAM_OFFER KAM_REMOVE;
	struct lineproto_msg msg;
	size_t consumed, off;

	(void)state;
	assert_int_equal(lineproto_parse(in, sizeof(in) - 1, NULL, &msg, &consumed), LINEPROTO_OK);
	assert_true(lineproto_str_eq(msg.command, "update"));
	off = consumed;
	assert_int_equal(lineproto_parse(in + off, sizeof(in) - 1 - off, NULL, &msg, &consumed),
			 LINEPROTO_OK);
	assert_true(lineproto_str_eq(msg.command, "remove"));
	assert_int_equal(off + consumed, sizeof(in) - 1);
	assert_true(lineproto_str_eq(*lineproto_header_get(&msg, "to_tag"), "16885SIPpTag011"));
}

/* What a connection handler does: answer `error`, skip the bad request, go
 * on with the next one on the same connection. */
static void test_resync_after_header_without_separator(void **state)
{
	static const char in[] = "\r\nupdate\r\ntype request\r\ncall_id: x\r\n\r\n" KAM_REMOVE;
	struct lineproto_msg msg;
	size_t consumed, off = 0;

	(void)state;
	assert_int_equal(lineproto_parse(in, sizeof(in) - 1, NULL, &msg, &consumed),
			 LINEPROTO_ERR_NO_SEPARATOR);
	off += consumed;
	assert_int_equal(off, 2);
	assert_int_equal(lineproto_skip_message(in + off, sizeof(in) - 1 - off, NULL, &consumed),
			 LINEPROTO_OK);
	off += consumed;
	assert_int_equal(lineproto_parse(in + off, sizeof(in) - 1 - off, NULL, &msg, &consumed),
			 LINEPROTO_OK);
	assert_true(lineproto_str_eq(msg.command, "remove"));
	assert_int_equal(off + consumed, sizeof(in) - 1);
}

/* The rest of a bad request arrives later: skipped lines are dropped as they
 * come, and the empty line that ends the bad request is not mistaken for a
 * leading blank line of the next one. */
static void test_resync_across_reads(void **state)
{
	static const char part1[] = "x: 1\r\ny: 2\r\npart", part2[] = "ial\r\n\r\nremove\r\n\r\n";
	char buf[64];
	size_t consumed, have;

	(void)state;
	assert_int_equal(lineproto_skip_message(part1, sizeof(part1) - 1, NULL, &consumed),
			 LINEPROTO_NEED_MORE);
	assert_int_equal(consumed, 12);
	have = sizeof(part1) - 1 - consumed;
	memcpy(buf, part1 + consumed, have);
	memcpy(buf + have, part2, sizeof(part2) - 1);
	have += sizeof(part2) - 1;
	assert_int_equal(lineproto_skip_message(buf, have, NULL, &consumed), LINEPROTO_OK);
	assert_int_equal(consumed, 11);
	assert_int_equal(have - consumed, 10);
}

static void test_skip_over_long_line(void **state)
{
	static const char in[] = "ok\r\n0123456789abcdef";
	struct lineproto_limits lim = { .max_line = 8 };
	size_t consumed;

	(void)state;
	assert_int_equal(lineproto_skip_message(in, sizeof(in) - 1, &lim, &consumed),
			 LINEPROTO_ERR_LINE_TOO_LONG);
	assert_int_equal(consumed, 4);
	/* A NUL does not stop skipping: the line is thrown away anyway. */
	assert_int_equal(lineproto_skip_message("a\0b\r\n\r\n", 7, &lim, &consumed), LINEPROTO_OK);
	assert_int_equal(consumed, 7);
}

struct line_case {
	const char *name;
	const char *input;
	size_t len;
	size_t max_line;
	int want_rc;
	size_t want_consumed;
	const char *want_line;
};

static const struct line_case line_cases[] = {
	{ "relay update reply with seq, ip and port", IN("17 198.51.100.1 40002\r\n"), 0,
	  LINEPROTO_OK, ALL, "17 198.51.100.1 40002" },
	{ "relay ping", IN("ping\r\n"), 0, LINEPROTO_OK, ALL, "ping" },
	{ "dispatcher pong with bare LF", IN("pong\n"), 0, LINEPROTO_OK, ALL, "pong" },
	{ "management summary then sessions in one read", IN("summary\r\nsessions\r\n"), 0,
	  LINEPROTO_OK, 9, "summary" },
	{ "empty line ending a seed-format management reply", IN("\r\n"), 0, LINEPROTO_OK, ALL,
	  "" },
	{ "relay reply without its newline yet", IN("17 198.51.100.1 4000"), 0,
	  LINEPROTO_NEED_MORE, 0, NULL },
	{ "reply cut between CR and LF", IN("4 error\r"), 0, LINEPROTO_NEED_MORE, 0, NULL },
	{ "line at the limit", IN("4 halting\r\n"), 9, LINEPROTO_OK, ALL, "4 halting" },
	{ "line at the limit waiting for LF", IN("4 halting\r"), 9, LINEPROTO_NEED_MORE, 0, NULL },
	{ "line over the limit", IN("4 halting\r\n"), 8, LINEPROTO_ERR_LINE_TOO_LONG, 0, NULL },
	{ "growing line without newline over the limit", IN("expired {\"call_id\": \"x"), 16,
	  LINEPROTO_ERR_LINE_TOO_LONG, 0, NULL },
	{ "NUL byte in a management command", IN("sum\0mary\r\n"), 0, LINEPROTO_ERR_NUL_BYTE, 0,
	  NULL },
};

static void test_read_line_table(void **state)
{
	struct lineproto_str line;
	size_t i, consumed, want;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
		const struct line_case *c = &line_cases[i];

		want = c->want_consumed == ALL ? c->len : c->want_consumed;
		rc = lineproto_read_line(c->input, c->len, c->max_line, &line, &consumed);
		if (rc != c->want_rc)
			fail_msg("%s: rc %d, want %d", c->name, rc, c->want_rc);
		if (consumed != want)
			fail_msg("%s: consumed %zu, want %zu", c->name, consumed, want);
		if (c->want_line)
			fail_unless_str(c->name, "line", line, c->want_line);
	}
}

/* A `sessions` reply from a busy relay is one long JSON line: the dispatcher
 * reads it with the 4 MiB relay limit (§2.2) and refuses one byte more. */
static void test_relay_reply_at_4mib(void **state)
{
	const size_t n = LINEPROTO_RELAY_MAX_LINE;
	struct lineproto_str line;
	char *buf = malloc(n + 2);
	size_t consumed;

	(void)state;
	assert_non_null(buf);
	memset(buf, 'x', n);
	memcpy(buf, "9 [", 3);
	assert_int_equal(lineproto_read_line(buf, n, LINEPROTO_RELAY_MAX_LINE, &line, &consumed),
			 LINEPROTO_NEED_MORE);
	memcpy(buf + n, "\r\n", 2);
	assert_int_equal(lineproto_read_line(buf, n + 2, LINEPROTO_RELAY_MAX_LINE, &line,
					     &consumed), LINEPROTO_OK);
	assert_int_equal(line.len, n);
	assert_int_equal(consumed, n + 2);
	buf[n] = 'x';
	assert_int_equal(lineproto_read_line(buf, n + 1, LINEPROTO_RELAY_MAX_LINE, &line,
					     &consumed), LINEPROTO_ERR_LINE_TOO_LONG);
	assert_int_equal(lineproto_read_line(buf, n + 2, 0, &line, &consumed),
			 LINEPROTO_ERR_LINE_TOO_LONG);
	free(buf);
}

static void test_header_get(void **state)
{
	static const char in[] = "update\r\ncall_id: first\r\nCall_ID: other\r\ncall_id: last\r\n\r\n";
	struct lineproto_msg msg;
	size_t consumed;

	(void)state;
	assert_int_equal(lineproto_parse(in, sizeof(in) - 1, NULL, &msg, &consumed), LINEPROTO_OK);
	/* Upstream keeps headers in a dict: the last duplicate wins. */
	assert_true(lineproto_str_eq(*lineproto_header_get(&msg, "call_id"), "last"));
	assert_true(lineproto_str_eq(*lineproto_header_get(&msg, "Call_ID"), "other"));
	assert_null(lineproto_header_get(&msg, "CALL_ID"));
	assert_null(lineproto_header_get(&msg, "call_i"));
	assert_null(lineproto_header_get(&msg, "to_tag"));
}

struct word_case {
	const char *name;
	const char *input;
	const char *want_word, *want_rest;
	int want_rc;		/* of lineproto_str_to_u64(word) */
	uint64_t want_num;
};

static const struct word_case word_cases[] = {
	{ "relay reply seq and ports", "17 198.51.100.1 40002", "17", "198.51.100.1 40002", 0, 17 },
	{ "first seq of a connection", "0 error", "0", "error", 0, 0 },
	{ "expired notification", "expired {\"call_id\": \"x\"}", "expired", "{\"call_id\": \"x\"}",
	  -EINVAL, 0 },
	{ "largest 64-bit seq", "18446744073709551615 ok", "18446744073709551615", "ok", 0,
	  UINT64_MAX },
	{ "seq one over 64 bits", "18446744073709551616 ok", "18446744073709551616", "ok", -ERANGE,
	  0 },
	{ "negative seq", "-1 ok", "-1", "ok", -EINVAL, 0 },
	{ "seq with a plus sign", "+1 ok", "+1", "ok", -EINVAL, 0 },
	{ "no space at all", "ping", "ping", "", -EINVAL, 0 },
	{ "leading space gives an empty word", " 5", "", "5", -EINVAL, 0 },
	{ "empty line", "", "", "", -EINVAL, 0 },
};

static void test_split_word_and_seq(void **state)
{
	struct lineproto_str word, rest;
	uint64_t num = 42;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(word_cases) / sizeof(word_cases[0]); i++) {
		const struct word_case *c = &word_cases[i];

		lineproto_split_word(lineproto_str_from(c->input), &word, &rest);
		fail_unless_str(c->name, "word", word, c->want_word);
		fail_unless_str(c->name, "rest", rest, c->want_rest);
		num = 42;
		rc = lineproto_str_to_u64(word, &num);
		if (rc != c->want_rc)
			fail_msg("%s: to_u64 rc %d, want %d", c->name, rc, c->want_rc);
		if (rc == 0 && num != c->want_num)
			fail_msg("%s: number %llu", c->name, (unsigned long long)num);
		if (rc != 0 && num != 42)
			fail_msg("%s: output written on error", c->name);
	}
}

static void test_str_copy(void **state)
{
	char dst[8];

	(void)state;
	assert_int_equal(lineproto_str_copy(LINEPROTO_STR("1234567"), dst, sizeof(dst)), 0);
	assert_string_equal(dst, "1234567");
	assert_int_equal(lineproto_str_copy(LINEPROTO_STR("12345678"), dst, sizeof(dst)), -ENOSPC);
	assert_string_equal(dst, "");
	assert_int_equal(lineproto_str_copy(LINEPROTO_STR("a\0b"), dst, sizeof(dst)), -EILSEQ);
	assert_int_equal(lineproto_str_copy((struct lineproto_str){ NULL, 0 }, dst, 1), 0);
	assert_string_equal(dst, "");
}

static void add_header(struct lineproto_msg *m, const char *name, const char *value)
{
	m->headers[m->n_headers].name = lineproto_str_from(name);
	m->headers[m->n_headers++].value = lineproto_str_from(value);
}

/* A test client can speak exactly like Kamailio, empty headers included. */
static void test_format_kamailio_offer_bytes(void **state)
{
	static const char want[] = KAM_OFFER;
	struct lineproto_msg m = { .command = LINEPROTO_STR("update") };
	char buf[1024];
	size_t len;

	(void)state;
	add_header(&m, "type", "request");
	add_header(&m, "dialog_id", "3431:9579");
	add_header(&m, "call_id", "1-16898@127.0.0.1");
	add_header(&m, "cseq", "1");
	add_header(&m, "from_uri", "uac@127.0.0.1:54784");
	add_header(&m, "to_uri", "uas@127.0.0.1:32968");
	add_header(&m, "from_tag", "16898SIPpTag001");
	add_header(&m, "to_tag", "");
	add_header(&m, "user_agent", "e2e-uac");
	add_header(&m, "signaling_ip", "127.0.0.1");
	add_header(&m, "media_relay", "");
	add_header(&m, "media", "audio:127.0.0.1:23604:sendrecv:ice=no");
	assert_int_equal(lineproto_format_msg(buf, sizeof(buf), &m, &len), 0);
	assert_int_equal(len, sizeof(want) - 1);
	assert_memory_equal(buf, want, len);
	assert_int_equal(lineproto_format_msg(buf, len - 1, &m, &len), -ENOSPC);
	assert_int_equal(len, sizeof(want) - 1);
}

static void assert_same_msg(const char *name, const struct lineproto_msg *a,
			    const struct lineproto_msg *b)
{
	size_t i;

	if (a->command.len != b->command.len || memcmp(a->command.ptr, b->command.ptr, a->command.len) ||
	    a->args.len != b->args.len || (a->args.len && memcmp(a->args.ptr, b->args.ptr, a->args.len)) ||
	    a->n_headers != b->n_headers)
		fail_msg("%s: command line or header count differ after round trip", name);
	for (i = 0; i < a->n_headers; i++) {
		const struct lineproto_header *x = &a->headers[i], *y = &b->headers[i];

		if (x->name.len != y->name.len || memcmp(x->name.ptr, y->name.ptr, x->name.len) ||
		    x->value.len != y->value.len || memcmp(x->value.ptr, y->value.ptr, x->value.len))
			fail_msg("%s: header %zu differs after round trip", name, i);
	}
}

/* parse -> format -> parse gives the same message; the formatted bytes are
 * the canonical CRLF form (what the dispatcher forwards on the relay link). */
static void test_format_round_trip(void **state)
{
	static const struct {
		const char *name, *in, *want_out;
	} cases[] = {
		{ "Kamailio 5.6.3 offer loses its empty headers", KAM_OFFER,
		  "update\r\ntype: request\r\ndialog_id: 3431:9579\r\ncall_id: 1-16898@127.0.0.1\r\n"
		  "cseq: 1\r\nfrom_uri: uac@127.0.0.1:54784\r\nto_uri: uas@127.0.0.1:32968\r\n"
		  "from_tag: 16898SIPpTag001\r\nuser_agent: e2e-uac\r\nsignaling_ip: 127.0.0.1\r\n"
		  "media: audio:127.0.0.1:23604:sendrecv:ice=no\r\n\r\n" },
		{ "Kamailio 5.6.3 remove", KAM_REMOVE, KAM_REMOVE },
		{ "OpenSIPS 3.4.18 remove", OSIPS_REMOVE, OSIPS_REMOVE },
		{ "relay link update 17", RELAY_UPDATE, RELAY_UPDATE },
		{ "relay link sessions 0", "sessions 0\r\n\r\n", "sessions 0\r\n\r\n" },
		{ "bare LF becomes CRLF", "remove 5\ncall_id: a b\n\n",
		  "remove 5\r\ncall_id: a b\r\n\r\n" },
	};
	struct lineproto_msg m1, m2;
	char buf[1024];
	size_t i, len, consumed;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(lineproto_parse(cases[i].in, strlen(cases[i].in), NULL, &m1,
						 &consumed), LINEPROTO_OK);
		assert_int_equal(lineproto_format_msg(buf, sizeof(buf), &m1, &len), 0);
		if (len != strlen(cases[i].want_out) || memcmp(buf, cases[i].want_out, len))
			fail_msg("%s: formatted '%.*s'", cases[i].name, (int)len, buf);
		assert_int_equal(lineproto_parse(buf, len, NULL, &m2, &consumed), LINEPROTO_OK);
		assert_int_equal(consumed, len);
		assert_same_msg(cases[i].name, &m1, &m2);
	}
}

static void test_format_rejects_what_breaks_framing(void **state)
{
	static const struct {
		const char *name, *command, *args, *hname, *hvalue;
	} cases[] = {
		{ "empty command", "", "", NULL, NULL },
		{ "space inside the command", "up date", "", NULL, NULL },
		{ "LF in args would start a header", "update", "1\ncall_id: x", NULL, NULL },
		{ "CR in a value", "update", "", "call_id", "a\rb" },
		{ "LF in a value would inject a header", "update", "", "call_id", "x\r\nto_tag: y" },
		{ "empty header name", "update", "", "", "x" },
		{ "': ' inside a name moves the split", "update", "", "a: b", "x" },
		{ "LF in a name", "update", "", "a\nb", "x" },
	};
	char buf[256];
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lineproto_msg m = { .command = lineproto_str_from(cases[i].command),
					   .args = lineproto_str_from(cases[i].args) };
		int rc;

		if (cases[i].hname)
			add_header(&m, cases[i].hname, cases[i].hvalue);
		rc = lineproto_format_msg(buf, sizeof(buf), &m, &len);
		if (rc != -EINVAL)
			fail_msg("%s: rc %d, want -EINVAL", cases[i].name, rc);
	}
}

static void test_format_line_round_trip(void **state)
{
	struct lineproto_str line, word, rest;
	char buf[64];
	size_t len, consumed;
	uint64_t seq;

	(void)state;
	assert_int_equal(lineproto_format_line(buf, sizeof(buf), &len, "%llu %s %u",
					       17ULL, "198.51.100.1", 40002u), 0);
	assert_int_equal(len, 23);
	assert_memory_equal(buf, "17 198.51.100.1 40002\r\n", len);
	assert_int_equal(lineproto_read_line(buf, len, 0, &line, &consumed), LINEPROTO_OK);
	assert_int_equal(consumed, len);
	lineproto_split_word(line, &word, &rest);
	assert_int_equal(lineproto_str_to_u64(word, &seq), 0);
	assert_int_equal(seq, 17);
	assert_true(lineproto_str_eq(rest, "198.51.100.1 40002"));

	assert_int_equal(lineproto_format_line(buf, 23, &len, "17 198.51.100.1 40002"), 0);
	assert_int_equal(lineproto_format_line(buf, 22, &len, "17 198.51.100.1 40002"), -ENOSPC);
	assert_int_equal(len, 23);
	assert_int_equal(lineproto_format_line(buf, sizeof(buf), &len, "%s", "a\r\nb"), -EINVAL);
	assert_int_equal(lineproto_format_line(buf, sizeof(buf), &len, "a%cb", 0), -EINVAL);
	assert_int_equal(lineproto_format_line(buf, sizeof(buf), &len, "%s", ""), 0);
	assert_int_equal(len, 2);
	assert_memory_equal(buf, "\r\n", 2);
}

static void test_limits_defaults(void **state)
{
	static const char in[] = KAM_OFFER;
	struct lineproto_limits zero = { 0 }, huge = { .max_headers = 1000 };
	struct lineproto_msg msg;
	size_t consumed, i, n = 0;
	char big[64 * 40 + 16], *line;

	(void)state;
	assert_int_equal(lineproto_parse(in, sizeof(in) - 1, &zero, &msg, &consumed), LINEPROTO_OK);
	assert_int_equal(consumed, sizeof(in) - 1);
	/* max_headers above the array capacity is capped, not overflowed. */
	n += (size_t)sprintf(big, "update\r\n");
	for (i = 0; i <= LINEPROTO_MAX_HEADERS; i++)
		n += (size_t)sprintf(big + n, "h%zu: v\r\n", i);
	n += (size_t)sprintf(big + n, "\r\n");
	assert_int_equal(lineproto_parse(big, n, &huge, &msg, &consumed),
			 LINEPROTO_ERR_TOO_MANY_HEADERS);
	assert_int_equal(msg.n_headers, LINEPROTO_MAX_HEADERS);
	/* The default line limit applies when none is given. */
	line = malloc(LINEPROTO_MAX_LINE + 1);
	assert_non_null(line);
	memset(line, 'a', LINEPROTO_MAX_LINE + 1);
	assert_int_equal(lineproto_parse(line, LINEPROTO_MAX_LINE, NULL, &msg, &consumed),
			 LINEPROTO_NEED_MORE);
	assert_int_equal(lineproto_parse(line, LINEPROTO_MAX_LINE + 1, NULL, &msg, &consumed),
			 LINEPROTO_ERR_LINE_TOO_LONG);
	free(line);
}

static void test_empty_buffer_may_be_null(void **state)
{
	struct lineproto_msg msg;
	struct lineproto_str line;
	size_t consumed = 1;

	(void)state;
	assert_int_equal(lineproto_parse(NULL, 0, NULL, &msg, &consumed), LINEPROTO_NEED_MORE);
	assert_int_equal(consumed, 0);
	assert_int_equal(lineproto_read_line(NULL, 0, 0, &line, &consumed), LINEPROTO_NEED_MORE);
	assert_int_equal(lineproto_skip_message(NULL, 0, NULL, &consumed), LINEPROTO_NEED_MORE);
}

static void test_strerror_names_each_error(void **state)
{
	static const int codes[] = {
		LINEPROTO_ERR_LINE_TOO_LONG, LINEPROTO_ERR_MESSAGE_TOO_BIG,
		LINEPROTO_ERR_TOO_MANY_HEADERS, LINEPROTO_ERR_NO_SEPARATOR,
		LINEPROTO_ERR_EMPTY_NAME, LINEPROTO_ERR_NUL_BYTE, LINEPROTO_ERR_EMPTY_COMMAND,
		-EINVAL, -ENOSPC, -ERANGE,
	};
	size_t i, j;

	(void)state;
	assert_string_equal(lineproto_strerror(LINEPROTO_ERR_NO_SEPARATOR),
			    "header line without ': ' separator");
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_true(codes[i] < 0);
		for (j = 0; j < i; j++) {
			assert_int_not_equal(codes[i], codes[j]);
			assert_string_not_equal(lineproto_strerror(codes[i]),
						lineproto_strerror(codes[j]));
		}
	}
	assert_string_equal(lineproto_strerror(-ENOENT), strerror(ENOENT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_request_split_across_three_reads),
		cmocka_unit_test(test_two_requests_in_one_read),
		cmocka_unit_test(test_resync_after_header_without_separator),
		cmocka_unit_test(test_resync_across_reads),
		cmocka_unit_test(test_skip_over_long_line),
		cmocka_unit_test(test_read_line_table),
		cmocka_unit_test(test_relay_reply_at_4mib),
		cmocka_unit_test(test_header_get),
		cmocka_unit_test(test_split_word_and_seq),
		cmocka_unit_test(test_str_copy),
		cmocka_unit_test(test_format_kamailio_offer_bytes),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_format_rejects_what_breaks_framing),
		cmocka_unit_test(test_format_line_round_trip),
		cmocka_unit_test(test_limits_defaults),
		cmocka_unit_test(test_empty_buffer_may_be_null),
		cmocka_unit_test(test_strerror_names_each_error),
	};

	return cmocka_run_group_tests_name("lineproto", tests, NULL, NULL);
}
