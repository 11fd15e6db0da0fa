/* dispatcherd/management_cmd.c: naming command lines, taking lines off a
 * client's input, and the reply bytes of both formats (PROTOCOL.md §3.2),
 * compared byte for byte with what upstream's Python json.dumps() writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "management_cmd.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define S(lit) (lit), sizeof(lit) - 1 /* a literal with its length, NULs kept */

/* PROTOCOL.md §3.2 and §3.4: a relay summary as MediaProxy prints it. */
static const char seed_summary[] =
	"{\"ip\": \"198.51.100.1\", \"version\": \"2.4.4\", \"status\": \"active\", "
	"\"uptime\": 3600, \"session_count\": 1, \"stream_count\": 1, \"bps_relayed\": 128000.0}";

/* PROTOCOL.md §3.3: a session statistics object. */
static const char seed_session[] =
	"{\"call_id\": \"5f1b2c3d@192.0.2.10\", \"from_tag\": \"a73kszlfl\", "
	"\"from_uri\": \"alice@example.com\", \"to_tag\": \"1928301774\", \"to_uri\": "
	"\"bob@example.com\", \"start_time\": 1718000000.52, \"duration\": 63, \"caller_ua\": "
	"\"Blink 5.1\", \"callee_ua\": \"Asterisk PBX 18\", \"username\": null, \"streams\": "
	"[{\"media_type\": \"audio\", \"status\": \"active\", \"timeout_wait\": 0, "
	"\"caller_codec\": \"G711u\", \"callee_codec\": \"G711u\", \"start_time\": 0, "
	"\"end_time\": 63, \"post_dial_delay\": 1.73, \"caller_bytes\": 504000, "
	"\"callee_bytes\": 503800, \"caller_packets\": 3150, \"callee_packets\": 3149, "
	"\"caller_local\": \"198.51.100.1:40000\", \"callee_local\": \"198.51.100.1:40002\", "
	"\"caller_remote\": \"203.0.113.5:49170\", \"callee_remote\": \"198.18.7.20:10000\"}]}";

static void test_parse_table(void **state)
{
	static const struct {
		const char *name;
		const char *line;
		size_t len;
		enum management_cmd want;
	} cases[] = {
		{ "summary", S("summary"), MANAGEMENT_CMD_SUMMARY },
		{ "sessions", S("sessions"), MANAGEMENT_CMD_SESSIONS },
		{ "version (2.5+)", S("version"), MANAGEMENT_CMD_VERSION },
		{ "accounting (D12)", S("accounting"), MANAGEMENT_CMD_ACCOUNTING },
		{ "quit", S("quit"), MANAGEMENT_CMD_QUIT },
		{ "exit", S("exit"), MANAGEMENT_CMD_QUIT },
		{ "empty line", S(""), MANAGEMENT_CMD_NONE },
		{ "blank line typed by hand", S(" \t "), MANAGEMENT_CMD_NONE },
		{ "trailing space from a terminal", S("summary "), MANAGEMENT_CMD_SUMMARY },
		{ "leading tab", S("\tsessions"), MANAGEMENT_CMD_SESSIONS },
		{ "upper case is not upstream's", S("SUMMARY"), MANAGEMENT_CMD_UNKNOWN },
		{ "a prefix of a command", S("sum"), MANAGEMENT_CMD_UNKNOWN },
		{ "a command with an argument", S("sessions all"), MANAGEMENT_CMD_UNKNOWN },
		{ "a command run on", S("summarysessions"), MANAGEMENT_CMD_UNKNOWN },
		{ "a stray CR inside", S("sum\rmary"), MANAGEMENT_CMD_UNKNOWN },
		{ "a NUL byte after the word", S("summary\0"), MANAGEMENT_CMD_UNKNOWN },
		{ "HTTP probe", S("GET / HTTP/1.1"), MANAGEMENT_CMD_UNKNOWN },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		enum management_cmd got = management_cmd_parse(cases[i].line, cases[i].len);

		if (got != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].name, management_cmd_name(got),
				 management_cmd_name(cases[i].want));
	}
	assert_string_equal(management_cmd_name(MANAGEMENT_CMD_SUMMARY), "summary");
	assert_string_equal(management_cmd_name(MANAGEMENT_CMD_SESSIONS), "sessions");
	assert_string_equal(management_cmd_name((enum management_cmd)99), "unknown");
}

static void test_next_table(void **state)
{
	static char too_long[MANAGEMENT_MAX_LINE + 3];
	static char max_line[MANAGEMENT_MAX_LINE + 2];
	static const struct {
		const char *name;
		const char *buf;
		size_t len;
		int want_rc;
		enum management_cmd want_cmd;
		size_t want_consumed;
		size_t want_line_len;
	} fixed[] = {
		{ "CRLF command", S("summary\r\n"), LINEPROTO_OK, MANAGEMENT_CMD_SUMMARY, 9, 7 },
		{ "bare LF tolerated", S("version\n"), LINEPROTO_OK, MANAGEMENT_CMD_VERSION, 8, 7 },
		{ "pipelined: first line only", S("quit\r\nsummary\r\n"), LINEPROTO_OK,
		  MANAGEMENT_CMD_QUIT, 6, 4 },
		{ "empty line", S("\r\n"), LINEPROTO_OK, MANAGEMENT_CMD_NONE, 2, 0 },
		{ "partial command", S("summ"), LINEPROTO_NEED_MORE, MANAGEMENT_CMD_UNKNOWN, 0, 4 },
		{ "CR waiting for its LF", S("summary\r"), LINEPROTO_NEED_MORE,
		  MANAGEMENT_CMD_UNKNOWN, 0, 7 },
		{ "nothing yet", "", 0, LINEPROTO_NEED_MORE, MANAGEMENT_CMD_UNKNOWN, 0, 0 },
		{ "NUL inside a line: dropped as unknown", S("su\0mmary\r\nversion\r\n"),
		  LINEPROTO_OK, MANAGEMENT_CMD_UNKNOWN, 10, 8 },
		{ "unknown command", S("status\r\n"), LINEPROTO_OK, MANAGEMENT_CMD_UNKNOWN, 8, 6 },
	};
	struct lineproto_str line;
	enum management_cmd cmd;
	size_t i, used;
	int rc;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(fixed); i++) {
		rc = management_cmd_next(fixed[i].buf, fixed[i].len, &cmd, &line, &used);
		if (rc != fixed[i].want_rc || used != fixed[i].want_consumed ||
		    (rc == LINEPROTO_OK && cmd != fixed[i].want_cmd) ||
		    line.len != fixed[i].want_line_len)
			fail_msg("%s: rc %d used %zu cmd %s line %zu", fixed[i].name, rc, used,
				 management_cmd_name(cmd), line.len);
	}

	/* A maximal line still fits; one byte more closes the connection,
	 * whether or not its end has arrived yet. */
	memset(max_line, 'x', MANAGEMENT_MAX_LINE);
	max_line[MANAGEMENT_MAX_LINE] = '\r';
	max_line[MANAGEMENT_MAX_LINE + 1] = '\n';
	assert_int_equal(management_cmd_next(max_line, sizeof(max_line), &cmd, &line, &used),
			 LINEPROTO_OK);
	assert_int_equal(cmd, MANAGEMENT_CMD_UNKNOWN);
	assert_int_equal(used, sizeof(max_line));
	memset(too_long, 'x', sizeof(too_long));
	assert_int_equal(management_cmd_next(too_long, sizeof(too_long), &cmd, &line, &used),
			 LINEPROTO_ERR_LINE_TOO_LONG);
	assert_int_equal(used, 0);
	too_long[MANAGEMENT_MAX_LINE + 1] = '\r';
	too_long[MANAGEMENT_MAX_LINE + 2] = '\n';
	assert_int_equal(management_cmd_next(too_long, sizeof(too_long), &cmd, NULL, &used),
			 LINEPROTO_ERR_LINE_TOO_LONG);
}

/* Parses text, dumps it back: Python-style JSON must survive unchanged. */
static void assert_round_trip(const char *text)
{
	struct json_object *v = json_tokener_parse(text);
	char *out;
	size_t len;

	assert_non_null(v);
	assert_int_equal(management_json_dumps(v, &out, &len), 0);
	assert_int_equal(len, strlen(text));
	assert_string_equal(out, text);
	free(out);
	json_object_put(v);
}

static void test_dumps_protocol_examples(void **state)
{
	(void)state;
	assert_round_trip(seed_summary);
	assert_round_trip(seed_session);
	assert_round_trip("{\"backend\": \"jsonl\", \"pending\": 0, \"oldest_age_s\": 0, "
			  "\"last_error\": null}");
	assert_round_trip("[]");
	assert_round_trip("{}");
	assert_round_trip("[true, false, null, -1, 18446744073709551615, 1e+16, [[]], {\"a\": {}}]");
}

static void test_dumps_strings(void **state)
{
	static const struct {
		const char *name;
		const char *in;
		size_t len;
		const char *want;
	} cases[] = {
		{ "plain ASCII, slash not escaped", S("sip:alice@example.com/x"),
		  "\"sip:alice@example.com/x\"" },
		{ "quote and backslash", S("a\"b\\c"), "\"a\\\"b\\\\c\"" },
		{ "short escapes", S("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"" },
		{ "other controls, NUL and DEL", S("\x01\x1f\0\x7f"),
		  "\"\\u0001\\u001f\\u0000\\u007f\"" },
		{ "Latin-1 user agent", S("Bj\xc3\xb6rk UA"), "\"Bj\\u00f6rk UA\"" },
		{ "three-byte UTF-8", S("\xe2\x82\xac"), "\"\\u20ac\"" },
		{ "astral plane as a surrogate pair", S("\xf0\x9f\x98\x80"),
		  "\"\\ud83d\\ude00\"" },
		{ "stray continuation byte", S("a\x80z"), "\"a\\ufffdz\"" },
		{ "truncated sequence at the end", S("\xe2\x82"), "\"\\ufffd\\ufffd\"" },
		{ "overlong slash", S("\xc0\xaf"), "\"\\ufffd\\ufffd\"" },
		{ "encoded surrogate", S("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"" },
		{ "past U+10FFFF", S("\xf4\x90\x80\x80"),
		  "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
		{ "empty", S(""), "\"\"" },
	};
	struct json_object *v;
	char *out;
	size_t i, len;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		v = json_object_new_string_len(cases[i].in, (int)cases[i].len);
		assert_int_equal(management_json_dumps(v, &out, &len), 0);
		if (strcmp(out, cases[i].want) || len != strlen(cases[i].want))
			fail_msg("%s: got %s, want %s", cases[i].name, out, cases[i].want);
		free(out);
		json_object_put(v);
	}
}

/* Whatever bytes a string holds, the output is ASCII JSON that json-c reads
 * back, and ASCII text comes back unchanged. */
static void test_dumps_random_strings(void **state)
{
	unsigned char in[24];
	struct json_object *v, *back;
	unsigned int seed = 12345;
	char *out;
	size_t len, i;
	int round;

	(void)state;
	for (round = 0; round < 20000; round++) {
		size_t n = (size_t)(rand_r(&seed) % sizeof(in));
		bool ascii_only = true;

		for (i = 0; i < n; i++) {
			in[i] = (unsigned char)rand_r(&seed);
			if (round % 2)	/* half the rounds: text-like bytes */
				in[i] = (unsigned char)(0x20 + in[i] % 0x60);
			ascii_only &= in[i] < 0x80;
		}
		v = json_object_new_string_len((const char *)in, (int)n);
		assert_int_equal(management_json_dumps(v, &out, &len), 0);
		for (i = 0; i < len; i++)
			assert_true(out[i] >= 0x20 && out[i] < 0x7f);
		back = json_tokener_parse(out);
		assert_non_null(back);
		assert_true(json_object_is_type(back, json_type_string));
		if (ascii_only) {
			assert_int_equal(json_object_get_string_len(back), n);
			assert_memory_equal(json_object_get_string(back), in, n);
		}
		json_object_put(back);
		json_object_put(v);
		free(out);
	}
}

static void test_dumps_built_values(void **state)
{
	struct json_object *o = json_object_new_object();
	char *out;
	size_t len;

	(void)state;
	json_object_object_add(o, "status", json_object_new_string("error"));
	json_object_object_add(o, "ip", json_object_new_string("127.0.0.3"));
	json_object_object_add(o, "bps", json_object_new_double(128000.0));
	json_object_object_add(o, "pdd", json_object_new_double(1.73));
	json_object_object_add(o, "n", json_object_new_int64(-7));
	json_object_object_add(o, "none", NULL);
	assert_int_equal(management_json_dumps(o, &out, &len), 0);
	assert_string_equal(out, "{\"status\": \"error\", \"ip\": \"127.0.0.3\", "
				 "\"bps\": 128000.0, \"pdd\": 1.73, \"n\": -7, \"none\": null}");
	free(out);
	json_object_put(o);
	assert_int_equal(management_json_dumps(NULL, &out, &len), 0);
	assert_string_equal(out, "null");
	free(out);
}

static struct json_object *items_of(const char *const *texts, size_t n)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, json_tokener_parse(texts[i]));
	return a;
}

static void assert_reply(enum config_mgmt_format fmt, struct json_object *items,
			 const char *want)
{
	char *out;
	size_t len;

	assert_int_equal(management_format_reply(fmt, items, &out, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	assert_int_equal(out[len], '\0');
	free(out);
}

static void test_format_lines(void **state)
{
	const char *two[] = { seed_summary, "{\"status\": \"error\", \"ip\": \"127.0.0.3\"}" };
	const char *one[] = { seed_summary };
	struct json_object *items;
	char want[1024];

	(void)state;
	/* The seed example of §3.2: the object, CRLF, the empty line. */
	items = items_of(one, 1);
	snprintf(want, sizeof(want), "%s\r\n\r\n", seed_summary);
	assert_reply(CONFIG_MGMT_LINES, items, want);
	json_object_put(items);

	items = items_of(two, 2);
	snprintf(want, sizeof(want), "%s\r\n%s\r\n\r\n", two[0], two[1]);
	assert_reply(CONFIG_MGMT_LINES, items, want);
	json_object_put(items);

	/* No relay, no session: just the empty line. */
	items = json_object_new_array();
	assert_reply(CONFIG_MGMT_LINES, items, "\r\n");
	json_object_put(items);
	assert_reply(CONFIG_MGMT_LINES, NULL, "\r\n");
}

static void test_format_array(void **state)
{
	const char *two[] = { seed_summary, seed_session };
	struct json_object *items;
	char want[4096];

	(void)state;
	/* §3.4's example shape: one line holding the array, no empty line. */
	items = items_of(two, 2);
	snprintf(want, sizeof(want), "[%s, %s]\r\n", two[0], two[1]);
	assert_reply(CONFIG_MGMT_ARRAY, items, want);
	json_object_put(items);

	items = json_object_new_array();
	assert_reply(CONFIG_MGMT_ARRAY, items, "[]\r\n");
	json_object_put(items);
	assert_reply(CONFIG_MGMT_ARRAY, NULL, "[]\r\n");
}

static void test_format_rejects(void **state)
{
	struct json_object *obj = json_tokener_parse(seed_summary);
	char *out = (char *)"x";
	size_t len = 1;

	(void)state;
	assert_int_equal(management_format_reply(CONFIG_MGMT_LINES, obj, &out, &len), -EINVAL);
	assert_null(out);
	assert_int_equal(len, 0);
	assert_int_equal(management_format_reply((enum config_mgmt_format)7, NULL, &out, &len),
			 -EINVAL);
	json_object_put(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_next_table),
		cmocka_unit_test(test_dumps_protocol_examples),
		cmocka_unit_test(test_dumps_strings),
		cmocka_unit_test(test_dumps_random_strings),
		cmocka_unit_test(test_dumps_built_values),
		cmocka_unit_test(test_format_lines),
		cmocka_unit_test(test_format_array),
		cmocka_unit_test(test_format_rejects),
	};

	return cmocka_run_group_tests_name("management_cmd", tests, NULL, NULL);
}
