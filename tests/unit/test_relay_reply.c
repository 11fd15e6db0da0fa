/* dispatcherd/relay_reply.c: the lines a relay sends its dispatcher
 * (PROTOCOL.md §2.2), each kind and each way a line can be wrong, with
 * what the link code logs for it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "relay_reply.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define S(lit) (lit), sizeof(lit) - 1 /* a literal with its length, NULs kept */

static void test_lines(void **state)
{
	static const struct {
		const char *name;
		const char *in;
		size_t len;
		int want_rc;
		enum relay_reply_kind kind;
		uint64_t seq;
		const char *body;	/* or, on failure, the quoted text */
		const char *error;
	} cases[] = {
		{ "update answer", S("17 127.0.0.1 40000 40002\r\n"), 0, RELAY_REPLY_ANSWER, 17,
		  "127.0.0.1 40000 40002", NULL },
		{ "remove answer, bare LF", S("18 {\"call_id\": \"c\"}\n"), 0, RELAY_REPLY_ANSWER, 18,
		  "{\"call_id\": \"c\"}", NULL },
		{ "answer with an empty payload", S("19 \r\n"), 0, RELAY_REPLY_ANSWER, 19, "", NULL },
		{ "largest seq", S("18446744073709551615 error\r\n"), 0, RELAY_REPLY_ANSWER,
		  UINT64_MAX, "error", NULL },
		{ "only the first line is read", S("20 halting\r\nping\r\n"), 0, RELAY_REPLY_ANSWER, 20,
		  "halting", NULL },
		{ "payload keeps its spaces", S("21  a  b \r\n"), 0, RELAY_REPLY_ANSWER, 21,
		  " a  b ", NULL },
		{ "ping", S("ping\r\n"), 0, RELAY_REPLY_PING, 0, "", NULL },
		{ "expired", S("expired {\"call_id\": \"c\"}\r\n"), 0, RELAY_REPLY_EXPIRED, 0,
		  "{\"call_id\": \"c\"}", NULL },
		{ "empty line", S("\r\n"), 0, RELAY_REPLY_EMPTY, 0, "", NULL },
		{ "expired alone", S("expired\r\n"), -EBADMSG, 0, 0, "expired",
		  "expired without a body" },
		{ "expired and a space", S("expired \r\n"), -EBADMSG, 0, 0, "expired ",
		  "expired without a body" },
		{ "a seq alone", S("17\r\n"), -EBADMSG, 0, 0, "17", "malformed line" },
		{ "pong (a dispatcher never pings)", S("pong\r\n"), -EBADMSG, 0, 0, "pong",
		  "malformed line" },
		{ "ping with an argument", S("ping 1\r\n"), -EBADMSG, 0, 0, "ping 1",
		  "malformed line" },
		{ "upper-case PING", S("PING\r\n"), -EBADMSG, 0, 0, "PING", "malformed line" },
		{ "seq not a number", S("1x7 removed\r\n"), -EBADMSG, 0, 0, "1x7 removed",
		  "malformed line" },
		{ "negative seq", S("-1 removed\r\n"), -EBADMSG, 0, 0, "-1 removed",
		  "malformed line" },
		{ "seq over 64 bits", S("18446744073709551616 x\r\n"), -EBADMSG, 0, 0,
		  "18446744073709551616 x", "malformed line" },
		{ "leading space", S(" 17 x\r\n"), -EBADMSG, 0, 0, " 17 x", "malformed line" },
		{ "NUL byte", S("17 a\0b\r\n"), LINEPROTO_ERR_NUL_BYTE, 0, 0, NULL, NULL },
		{ "no terminator yet", S("17 x"), LINEPROTO_NEED_MORE, 0, 0, NULL, NULL },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct relay_reply rep;
		int rc = relay_reply_parse(cases[i].in, cases[i].len, 0, &rep);

		print_message("# %s\n", cases[i].name);
		assert_int_equal(rc, cases[i].want_rc);
		if (!rc) {
			assert_int_equal(rep.kind, cases[i].kind);
			assert_true(rep.seq == cases[i].seq);
			assert_int_equal(rep.body.len, strlen(cases[i].body));
			assert_memory_equal(rep.body.ptr, cases[i].body, rep.body.len);
			assert_true(rep.consumed > rep.line.len && rep.consumed <= cases[i].len);
			assert_null(rep.error);
			continue;
		}
		assert_non_null(rep.error);
		if (rc == -EBADMSG) {
			assert_string_equal(rep.error, cases[i].error);
			assert_int_equal(rep.line.len, strlen(cases[i].body));
			assert_memory_equal(rep.line.ptr, cases[i].body, rep.line.len);
		} else {
			/* unreadable: the whole input is quoted, as lineproto names it */
			assert_string_equal(rep.error, lineproto_strerror(rc));
			assert_ptr_equal(rep.line.ptr, cases[i].in);
			assert_int_equal(rep.line.len, cases[i].len);
		}
	}
}

/* The relay link's 4 MiB limit, at a small size. */
static void test_line_limit(void **state)
{
	struct relay_reply rep;

	(void)state;
	assert_int_equal(relay_reply_parse(S("12345 abcd\r\n"), 10, &rep), 0);
	assert_int_equal(rep.seq, 12345);
	assert_int_equal(relay_reply_parse(S("12345 abcde\r\n"), 10, &rep),
			 LINEPROTO_ERR_LINE_TOO_LONG);
	assert_string_equal(rep.error, lineproto_strerror(LINEPROTO_ERR_LINE_TOO_LONG));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_line_limit),
	};

	return cmocka_run_group_tests_name("relay_reply", tests, NULL, NULL);
}
