/* accounting/radius_attrs.c: accounting record -> the RADIUS attributes of
 * PROTOCOL.md §5.2, for the §3.3 example record and the edge cases
 * (no streams, null to_tag, ICE, timeout, counters past 32 bits, long
 * user agents cut on a UTF-8 boundary, IPv6 relay, unusable records). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "radius_attrs.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The §3.3 example, with what the dispatcher adds before accounting. */
#define EXAMPLE_STREAM(extra)                                                              \
	"{\"media_type\": \"audio\", \"status\": \"active\", \"timeout_wait\": 0, "       \
	"\"caller_codec\": \"G711u\", \"callee_codec\": \"G711u\", \"start_time\": 0, "   \
	"\"end_time\": 63, \"post_dial_delay\": 1.73, \"caller_bytes\": 504000, "         \
	"\"callee_bytes\": 503800, \"caller_packets\": 3150, \"callee_packets\": 3149, "  \
	"\"caller_local\": \"198.51.100.1:40000\", \"callee_local\": \"198.51.100.1:40002\", " \
	"\"caller_remote\": \"203.0.113.5:49170\", \"callee_remote\": \"198.18.7.20:10000\"" \
	extra "}"
#define EXAMPLE(to_tag, username, streams, extra)                                          \
	"{\"call_id\": \"5f1b2c3d@192.0.2.10\", \"from_tag\": \"a73kszlfl\", "             \
	"\"from_uri\": \"alice@example.com\", \"to_tag\": " to_tag ", "                   \
	"\"to_uri\": \"bob@example.com\", \"start_time\": 1718000000.52, \"duration\": 63, " \
	"\"caller_ua\": \"Blink 5.1\", \"callee_ua\": \"Asterisk PBX 18\", "               \
	"\"username\": " username ", \"streams\": [" streams "], "                        \
	"\"dialog_id\": \"1234:5678\", \"timed_out\": false" extra "}"

#define HEAD_ATTRS                                                                         \
	"Acct-Status-Type=3\n"                                                             \
	"User-Name=mediaproxy@default\n"                                                   \
	"Acct-Session-Id=5f1b2c3d@192.0.2.10\n"                                            \
	"Acct-Session-Time=63\n"
#define UA_ATTR "Sip-User-Agents=Blink 5.1+Asterisk PBX 18\n"

/* A stream with only the fields the mapping reads. */
#define STREAM(type, codec, start, end, pdd, in, out, local)                               \
	"{\"media_type\": \"" type "\", \"caller_codec\": \"" codec "\", "                 \
	"\"start_time\": " #start ", \"end_time\": " #end ", \"post_dial_delay\": " pdd ", " \
	"\"caller_bytes\": " in ", \"callee_bytes\": " out ", \"caller_local\": \"" local "\"}"
#define SMALL(streams, extra)                                                              \
	"{\"call_id\": \"c1\", \"from_tag\": \"f1\", \"to_tag\": \"t1\", \"duration\": 10, " \
	"\"caller_ua\": \"A\", \"callee_ua\": \"B\", \"username\": null, "                 \
	"\"streams\": [" streams "], \"timed_out\": false" extra "}"
#define SMALL_HEAD(in, out)                                                                \
	"Acct-Status-Type=3\nUser-Name=mediaproxy@default\nAcct-Session-Id=c1\n"           \
	"Acct-Session-Time=10\nAcct-Input-Octets=" in "\nAcct-Output-Octets=" out "\n"      \
	"Sip-From-Tag=f1\nSip-To-Tag=t1\n"

/* The list as "Name=value" lines, in list order. */
static void render(const struct radius_attr_list *l, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < l->count; i++) {
		const struct radius_attr *a = &l->attr[i];
		char val[RADIUS_STRING_MAX + 1];
		struct in_addr v4;

		switch (radius_attr_type(a->id)) {
		case RADIUS_TYPE_STRING:
			assert_int_equal(strlen(a->str), a->len);
			assert_in_range(a->len, 1, RADIUS_STRING_MAX);
			snprintf(val, sizeof(val), "%s", a->str);
			break;
		case RADIUS_TYPE_INTEGER:
			snprintf(val, sizeof(val), "%u", a->u32);
			break;
		case RADIUS_TYPE_IPV4:
			v4.s_addr = htonl(a->u32);
			inet_ntop(AF_INET, &v4, val, sizeof(val));
			break;
		case RADIUS_TYPE_IPV6:
			inet_ntop(AF_INET6, a->ip6, val, sizeof(val));
			break;
		}
		used += snprintf(buf + used, len - used, "%s=%s\n", radius_attr_name(a->id), val);
		assert_true(used < len);
	}
}

static int map(const char *json, struct radius_attr_list *out)
{
	struct json_object *o = json_tokener_parse(json);
	int rc;

	assert_non_null(o);
	rc = radius_attrs_from_record(o, out);
	json_object_put(o);
	return rc;
}

static void test_records(void **state)
{
	static const struct {
		const char *name;
		const char *json;
		const char *want;
	} cases[] = {
		{ "the PROTOCOL.md §3.3 example record",
		  EXAMPLE("\"1928301774\"", "null", EXAMPLE_STREAM(""), ""),
		  HEAD_ATTRS "Acct-Input-Octets=504000\nAcct-Output-Octets=503800\n"
		  "Sip-From-Tag=a73kszlfl\nSip-To-Tag=1928301774\nNAS-IP-Address=198.51.100.1\n"
		  UA_ATTR "Sip-Applications=audio\nMedia-Codecs=G711u\nAcct-Delay-Time=1\n" },
		{ "callee tag never seen: to_tag null, Sip-To-Tag left out",
		  EXAMPLE("null", "null", EXAMPLE_STREAM(""), ""),
		  HEAD_ATTRS "Acct-Input-Octets=504000\nAcct-Output-Octets=503800\n"
		  "Sip-From-Tag=a73kszlfl\nNAS-IP-Address=198.51.100.1\n"
		  UA_ATTR "Sip-Applications=audio\nMedia-Codecs=G711u\nAcct-Delay-Time=1\n" },
		{ "username given through JSON signaling_ip",
		  EXAMPLE("\"1928301774\"", "\"alice@example.com\"", EXAMPLE_STREAM(""), ""),
		  "Acct-Status-Type=3\nUser-Name=alice@example.com\n"
		  "Acct-Session-Id=5f1b2c3d@192.0.2.10\nAcct-Session-Time=63\n"
		  "Acct-Input-Octets=504000\nAcct-Output-Octets=503800\n"
		  "Sip-From-Tag=a73kszlfl\nSip-To-Tag=1928301774\nNAS-IP-Address=198.51.100.1\n"
		  UA_ATTR "Sip-Applications=audio\nMedia-Codecs=G711u\nAcct-Delay-Time=1\n" },
		{ "expired call: timed_out true",
		  EXAMPLE("\"1928301774\"", "null", EXAMPLE_STREAM(""), ", \"timed_out\": true"),
		  HEAD_ATTRS "Acct-Input-Octets=504000\nAcct-Output-Octets=503800\n"
		  "Sip-From-Tag=a73kszlfl\nSip-To-Tag=1928301774\nNAS-IP-Address=198.51.100.1\n"
		  UA_ATTR "Sip-Applications=audio\nMedia-Codecs=G711u\nMedia-Info=timeout\n"
		  "Acct-Delay-Time=1\n" },
		{ "expired ICE session: all_streams_ice wins over timed_out",
		  EXAMPLE("\"1928301774\"", "null", EXAMPLE_STREAM(""),
			  ", \"timed_out\": true, \"all_streams_ice\": true"),
		  HEAD_ATTRS "Acct-Input-Octets=504000\nAcct-Output-Octets=503800\n"
		  "Sip-From-Tag=a73kszlfl\nSip-To-Tag=1928301774\nNAS-IP-Address=198.51.100.1\n"
		  UA_ATTR "Sip-Applications=audio\nMedia-Codecs=G711u\nMedia-Info=ICE session\n"
		  "Acct-Delay-Time=1\n" },
		{ "expired, not all ICE",
		  EXAMPLE("\"1928301774\"", "null", EXAMPLE_STREAM(""),
			  ", \"timed_out\": true, \"all_streams_ice\": false"),
		  HEAD_ATTRS "Acct-Input-Octets=504000\nAcct-Output-Octets=503800\n"
		  "Sip-From-Tag=a73kszlfl\nSip-To-Tag=1928301774\nNAS-IP-Address=198.51.100.1\n"
		  UA_ATTR "Sip-Applications=audio\nMedia-Codecs=G711u\nMedia-Info=timeout\n"
		  "Acct-Delay-Time=1\n" },
		{ "no streams: zero octets, no NAS address, codecs or delay",
		  EXAMPLE("\"1928301774\"", "null", "", ""),
		  HEAD_ATTRS "Acct-Input-Octets=0\nAcct-Output-Octets=0\n"
		  "Sip-From-Tag=a73kszlfl\nSip-To-Tag=1928301774\n" UA_ATTR },
		{ "audio + video + a second audio: sorted, unique; codecs in stream order",
		  SMALL(STREAM("video", "H264", 0, 10, "null", "100", "200", "192.0.2.1:40004") ","
			STREAM("audio", "PCMA", 0, 10, "0.4", "1", "2", "192.0.2.1:40000") ","
			STREAM("audio", "opus", 2, 9, "2.9", "10", "20", "192.0.2.1:40008"), ""),
		  SMALL_HEAD("111", "222") "NAS-IP-Address=192.0.2.1\nSip-User-Agents=A+B\n"
		  "Sip-Applications=audio, video\nMedia-Codecs=H264, PCMA, opus\n"
		  "Acct-Delay-Time=0\n" },
		{ "a zero-length stream counts for codecs, not applications",
		  SMALL(STREAM("audio", "PCMU", 0, 10, "3.2", "5", "6", "192.0.2.1:40000") ","
			STREAM("video", "VP8", 4, 4, "null", "0", "0", "192.0.2.1:40002"), ""),
		  SMALL_HEAD("5", "6") "NAS-IP-Address=192.0.2.1\nSip-User-Agents=A+B\n"
		  "Sip-Applications=audio\nMedia-Codecs=PCMU, VP8\nAcct-Delay-Time=3\n" },
		{ "only zero-length streams: Sip-Applications left out",
		  SMALL(STREAM("audio", "PCMU", 0, 0, "null", "0", "0", "192.0.2.1:40000"), ""),
		  SMALL_HEAD("0", "0") "NAS-IP-Address=192.0.2.1\nSip-User-Agents=A+B\n"
		  "Media-Codecs=PCMU\n" },
		{ "first non-null post_dial_delay is the second stream's",
		  SMALL(STREAM("audio", "PCMU", 0, 10, "null", "5", "6", "192.0.2.1:40000") ","
			STREAM("video", "VP8", 0, 10, "7.99", "1", "1", "192.0.2.1:40002"), ""),
		  SMALL_HEAD("6", "7") "NAS-IP-Address=192.0.2.1\nSip-User-Agents=A+B\n"
		  "Sip-Applications=audio, video\nMedia-Codecs=PCMU, VP8\nAcct-Delay-Time=7\n" },
		{ "counters past 2^32-1 saturate, never wrap",
		  SMALL(STREAM("audio", "PCMU", 0, 10, "1", "4294967296", "4294967295",
			       "192.0.2.1:40000") ","
			STREAM("audio", "PCMU", 0, 10, "1", "18446744073709551615",
			       "18446744073709551615", "192.0.2.1:40002"), ""),
		  SMALL_HEAD("4294967295", "4294967295") "NAS-IP-Address=192.0.2.1\n"
		  "Sip-User-Agents=A+B\nSip-Applications=audio\nMedia-Codecs=PCMU, PCMU\n"
		  "Acct-Delay-Time=1\n" },
		{ "sums just under 2^32 stay exact",
		  SMALL(STREAM("audio", "PCMU", 0, 10, "1", "4294967294", "0", "192.0.2.1:40000") ","
			STREAM("audio", "PCMU", 0, 10, "1", "1", "3", "192.0.2.1:40002"), ""),
		  SMALL_HEAD("4294967295", "3") "NAS-IP-Address=192.0.2.1\n"
		  "Sip-User-Agents=A+B\nSip-Applications=audio\nMedia-Codecs=PCMU, PCMU\n"
		  "Acct-Delay-Time=1\n" },
		{ "IPv6 relay address goes into NAS-IPv6-Address",
		  SMALL(STREAM("audio", "PCMU", 0, 10, "1", "1", "1", "[2001:db8::5]:40000"), ""),
		  "Acct-Status-Type=3\nUser-Name=mediaproxy@default\nAcct-Session-Id=c1\n"
		  "Acct-Session-Time=10\nAcct-Input-Octets=1\nAcct-Output-Octets=1\n"
		  "Sip-From-Tag=f1\nSip-To-Tag=t1\nNAS-IPv6-Address=2001:db8::5\n"
		  "Sip-User-Agents=A+B\nSip-Applications=audio\nMedia-Codecs=PCMU\n"
		  "Acct-Delay-Time=1\n" },
		{ "caller_local Unknown: no NAS address",
		  SMALL(STREAM("audio", "PCMU", 0, 10, "1", "1", "1", "Unknown"), ""),
		  "Acct-Status-Type=3\nUser-Name=mediaproxy@default\nAcct-Session-Id=c1\n"
		  "Acct-Session-Time=10\nAcct-Input-Octets=1\nAcct-Output-Octets=1\n"
		  "Sip-From-Tag=f1\nSip-To-Tag=t1\n"
		  "Sip-User-Agents=A+B\nSip-Applications=audio\nMedia-Codecs=PCMU\n"
		  "Acct-Delay-Time=1\n" },
		{ "empty username falls back to mediaproxy@default; timed_out absent = false",
		  "{\"call_id\": \"c1\", \"from_tag\": \"f1\", \"to_tag\": \"t1\", \"duration\": 0, "
		  "\"caller_ua\": \"Unknown\", \"callee_ua\": \"Unknown\", \"username\": \"\", "
		  "\"streams\": []}",
		  "Acct-Status-Type=3\nUser-Name=mediaproxy@default\nAcct-Session-Id=c1\n"
		  "Acct-Session-Time=0\nAcct-Input-Octets=0\nAcct-Output-Octets=0\n"
		  "Sip-From-Tag=f1\nSip-To-Tag=t1\nSip-User-Agents=Unknown+Unknown\n" },
	};
	char got[4096];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct radius_attr_list l;
		int rc = map(cases[i].json, &l);

		if (rc)
			fail_msg("%s: rc %d (%s)", cases[i].name, rc, l.error);
		render(&l, got, sizeof(got));
		if (strcmp(got, cases[i].want))
			fail_msg("%s:\n--- got\n%s--- want\n%s", cases[i].name, got, cases[i].want);
	}
}

static void test_unusable_records(void **state)
{
	static const struct {
		const char *name;
		const char *json;
		const char *error;
	} cases[] = {
		{ "not an object", "[1, 2]", "the record is not a JSON object" },
		{ "no streams member", "{\"call_id\": \"c\", \"from_tag\": \"f\"}",
		  "streams is not an array" },
		{ "no call_id", SMALL("", ", \"call_id\": null"), "call_id is not a string" },
		{ "empty call_id", SMALL("", ", \"call_id\": \"\""), "call_id is empty" },
		{ "duration as a string", SMALL("", ", \"duration\": \"10\""),
		  "duration is not an integer" },
		{ "negative duration", SMALL("", ", \"duration\": -1"), "duration is negative" },
		{ "to_tag a number", SMALL("", ", \"to_tag\": 7"), "to_tag is not a string" },
		{ "timed_out a string", SMALL("", ", \"timed_out\": \"yes\""),
		  "timed_out is not a boolean" },
		{ "callee_ua missing",
		  "{\"call_id\": \"c1\", \"from_tag\": \"f1\", \"to_tag\": null, \"duration\": 1, "
		  "\"caller_ua\": \"A\", \"streams\": []}", "callee_ua is not a string" },
		{ "negative bytes in the second stream",
		  SMALL(STREAM("audio", "PCMU", 0, 1, "null", "1", "1", "192.0.2.1:1") ","
			STREAM("audio", "PCMU", 0, 1, "null", "-5", "1", "192.0.2.1:2"), ""),
		  "streams[1].caller_bytes is not a non-negative integer" },
		{ "bytes as a float",
		  SMALL(STREAM("audio", "PCMU", 0, 1, "null", "1.5", "1", "192.0.2.1:1"), ""),
		  "streams[0].caller_bytes is not a non-negative integer" },
		{ "negative post_dial_delay",
		  SMALL(STREAM("audio", "PCMU", 0, 1, "-0.5", "1", "1", "192.0.2.1:1"), ""),
		  "streams[0].post_dial_delay is negative" },
		{ "stream not an object", SMALL("\"audio\"", ""), "streams[0] is not an object" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct radius_attr_list l;
		int rc = map(cases[i].json, &l);

		if (rc != -EINVAL)
			fail_msg("%s: rc %d, want -EINVAL", cases[i].name, rc);
		if (strcmp(l.error, cases[i].error))
			fail_msg("%s: error \"%s\", want \"%s\"", cases[i].name, l.error,
				 cases[i].error);
		assert_int_equal(l.count, 0);
	}
}

/* A record whose caller_ua is ua and callee_ua "B"; returns Sip-User-Agents. */
static const struct radius_attr *map_ua(const char *ua, struct radius_attr_list *l)
{
	struct json_object *o = json_tokener_parse(SMALL("", ""));
	int rc;

	assert_non_null(o);
	json_object_object_add(o, "caller_ua", json_object_new_string(ua));
	rc = radius_attrs_from_record(o, l);
	json_object_put(o);
	assert_int_equal(rc, 0);
	return radius_attrs_find(l, RADIUS_ATTR_SIP_USER_AGENTS);
}

static void test_user_agents_cut(void **state)
{
	struct radius_attr_list l;
	const struct radius_attr *a;
	char ua[600];

	(void)state;
	/* 251 + "+B" = 253: fits exactly */
	memset(ua, 'x', 251);
	ua[251] = '\0';
	a = map_ua(ua, &l);
	assert_int_equal(a->len, 253);
	assert_string_equal(a->str + 251, "+B");

	/* ASCII over the limit: cut at 253 bytes */
	memset(ua, 'y', 500);
	ua[500] = '\0';
	a = map_ua(ua, &l);
	assert_int_equal(a->len, 253);
	assert_int_equal(strspn(a->str, "y"), 253);

	/* 252 ASCII bytes then "é" (2 bytes) would end at byte 254: the whole
	 * "é" goes, leaving 252 bytes */
	memset(ua, 'z', 252);
	strcpy(ua + 252, "\xc3\xa9rest");
	a = map_ua(ua, &l);
	assert_int_equal(a->len, 252);
	assert_int_equal(strspn(a->str, "z"), 252);

	/* a 4-byte sequence (U+1F600) starting at byte 251 is dropped whole */
	memset(ua, 'w', 251);
	strcpy(ua + 251, "\xf0\x9f\x98\x80tail");
	a = map_ua(ua, &l);
	assert_int_equal(a->len, 251);

	/* a 3-byte sequence ending exactly at byte 253 is kept */
	memset(ua, 'v', 250);
	strcpy(ua + 250, "\xe2\x82\xacmore");
	a = map_ua(ua, &l);
	assert_int_equal(a->len, 253);
	assert_memory_equal(a->str + 250, "\xe2\x82\xac", 3);

	/* not UTF-8 at all (continuation bytes only): a plain byte cut */
	memset(ua, 0x80, 400);
	ua[400] = '\0';
	a = map_ua(ua, &l);
	assert_int_equal(a->len, 253);
}

static void test_long_codecs_cut(void **state)
{
	struct json_object *o = json_tokener_parse(SMALL("", ""));
	struct json_object *streams = json_object_new_array();
	struct radius_attr_list l;
	const struct radius_attr *a;

	(void)state;
	for (int i = 0; i < 40; i++) {
		struct json_object *s = json_tokener_parse(
			STREAM("audio", "G722-wideband", 0, 1, "null", "1", "1", "192.0.2.1:1"));

		json_object_array_add(streams, s);
	}
	json_object_object_add(o, "streams", streams);
	assert_int_equal(radius_attrs_from_record(o, &l), 0);
	a = radius_attrs_find(&l, RADIUS_ATTR_MEDIA_CODECS);
	assert_non_null(a);
	assert_int_equal(a->len, RADIUS_STRING_MAX);
	assert_memory_equal(a->str, "G722-wideband, G722-wideband, ", 30);
	a = radius_attrs_find(&l, RADIUS_ATTR_ACCT_INPUT_OCTETS);
	assert_int_equal(a->u32, 40);
	json_object_put(o);
}

static void test_identifiers_never_cut(void **state)
{
	static const char *const keys[] = { "call_id", "from_tag", "to_tag", "username" };
	char big[300];

	(void)state;
	memset(big, 'i', 254);
	big[254] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		struct json_object *o = json_tokener_parse(SMALL("", ""));
		struct radius_attr_list l;
		char want[80];

		json_object_object_add(o, keys[i], json_object_new_string(big));
		assert_int_equal(radius_attrs_from_record(o, &l), -EINVAL);
		snprintf(want, sizeof(want), "%s is longer than 253 bytes", keys[i]);
		assert_string_equal(l.error, want);
		/* 253 is fine */
		json_object_object_add(o, keys[i], json_object_new_string(big + 1));
		assert_int_equal(radius_attrs_from_record(o, &l), 0);
		json_object_put(o);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(radius_attr_name(RADIUS_ATTR_ACCT_STATUS_TYPE), "Acct-Status-Type");
	assert_string_equal(radius_attr_name(RADIUS_ATTR_ACCT_DELAY_TIME), "Acct-Delay-Time");
	assert_string_equal(radius_attr_name(RADIUS_ATTR_COUNT), "?");
	for (int id = 0; id < RADIUS_ATTR_COUNT; id++)
		assert_string_not_equal(radius_attr_name(id), "?");
	assert_int_equal(radius_attr_type(RADIUS_ATTR_NAS_IPV6_ADDRESS), RADIUS_TYPE_IPV6);
	assert_int_equal(radius_attr_type(RADIUS_ATTR_MEDIA_INFO), RADIUS_TYPE_STRING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_unusable_records),
		cmocka_unit_test(test_user_agents_cut),
		cmocka_unit_test(test_long_codecs_cut),
		cmocka_unit_test(test_identifiers_never_cut),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests_name("radius_attrs", tests, NULL, NULL);
}
