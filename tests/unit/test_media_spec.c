/* Unit tests for relayd/media_spec.c: the `media` header of an update
 * (PROTOCOL.md 1.4) as Kamailio 5.6 and OpenSIPS 3.4 send it, each bad
 * input path, and the formatter's round trip. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "media_spec.h"

struct want_stream {
	const char *type, *ip;
	uint16_t port;
	enum media_direction dir;
	bool ice;
};

struct parse_case {
	const char *name;
	const char *input;
	int want_rc;
	size_t want_count;
	struct want_stream want[3];
};

static const struct parse_case parse_cases[] = {
	{ "Kamailio 5.6 offer (Appendix A)", "audio:127.0.0.1:23604:sendrecv:ice=no", 0, 1,
	  { { "audio", "127.0.0.1", 23604, MEDIA_SENDRECV, false } } },
	{ "OpenSIPS 3.4 offer (Appendix A)", "audio:127.0.0.1:47504:sendrecv:ice=no", 0, 1,
	  { { "audio", "127.0.0.1", 47504, MEDIA_SENDRECV, false } } },
	{ "audio and video, section 1.4 example",
	  "audio:192.0.2.10:49170:sendrecv:ice=no,video:192.0.2.10:51372:sendrecv:ice=no", 0, 2,
	  { { "audio", "192.0.2.10", 49170, MEDIA_SENDRECV, false },
	    { "video", "192.0.2.10", 51372, MEDIA_SENDRECV, false } } },
	{ "hold re-INVITE with sendonly", "audio:192.0.2.10:49170:sendonly:ice=no", 0, 1,
	  { { "audio", "192.0.2.10", 49170, MEDIA_SENDONLY, false } } },
	{ "RFC 2543 hold with 0.0.0.0", "audio:0.0.0.0:49170:sendrecv:ice=no", 0, 1,
	  { { "audio", "0.0.0.0", 49170, MEDIA_SENDRECV, false } } },
	{ "direction copied as written in capitals", "audio:192.0.2.10:4000:INACTIVE:ice=no", 0, 1,
	  { { "audio", "192.0.2.10", 4000, MEDIA_INACTIVE, false } } },
	{ "T.38 re-INVITE with the stream rejected",
	  "audio:192.0.2.10:0:recvonly:ice=no,image:192.0.2.10:4002:sendrecv:ice=no", 0, 2,
	  { { "audio", "192.0.2.10", 0, MEDIA_RECVONLY, false },
	    { "image", "192.0.2.10", 4002, MEDIA_SENDRECV, false } } },
	{ "WebRTC offer with ICE candidates", "audio:203.0.113.5:9:sendrecv:ice=yes", 0, 1,
	  { { "audio", "203.0.113.5", 9, MEDIA_SENDRECV, true } } },
	{ "no parameters at all", "audio:192.0.2.10:4000:sendrecv", 0, 1,
	  { { "audio", "192.0.2.10", 4000, MEDIA_SENDRECV, false } } },
	{ "unknown parameters ignored, empty ones skipped",
	  "audio:192.0.2.10:4000:sendrecv:foo=bar::ice=yes:x=", 0, 1,
	  { { "audio", "192.0.2.10", 4000, MEDIA_SENDRECV, true } } },
	{ "empty entries skipped as upstream", ",audio:192.0.2.10:4000:sendrecv:ice=no,,", 0, 1,
	  { { "audio", "192.0.2.10", 4000, MEDIA_SENDRECV, false } } },
	{ "IPv6 in brackets (our addition)", "audio:[2001:db8::1]:4000:sendrecv:ice=no", 0, 1,
	  { { "audio", "2001:db8::1", 4000, MEDIA_SENDRECV, false } } },
	{ "only commas: no streams", ",", 0, 0, { { 0 } } },
	{ "port 65535", "audio:192.0.2.10:65535:sendrecv", 0, 1,
	  { { "audio", "192.0.2.10", 65535, MEDIA_SENDRECV, false } } },

	{ "three fields only", "audio:192.0.2.10:4000", -EINVAL, 0, { { 0 } } },
	{ "type only", "audio", -EINVAL, 0, { { 0 } } },
	{ "empty type", ":192.0.2.10:4000:sendrecv", -EINVAL, 0, { { 0 } } },
	{ "space in the type", "au dio:192.0.2.10:4000:sendrecv", -EINVAL, 0, { { 0 } } },
	{ "type longer than the limit", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:192.0.2.10:4000:sendrecv",
	  -EINVAL, 0, { { 0 } } },
	{ "host name instead of an address", "audio:example.com:4000:sendrecv", -EINVAL, 0, { { 0 } } },
	{ "IPv4 in brackets", "audio:[192.0.2.10]:4000:sendrecv", -EINVAL, 0, { { 0 } } },
	{ "unterminated bracket", "audio:[2001:db8::1:4000:sendrecv", -EINVAL, 0, { { 0 } } },
	{ "port over 65535", "audio:192.0.2.10:65536:sendrecv", -EINVAL, 0, { { 0 } } },
	{ "negative port", "audio:192.0.2.10:-1:sendrecv", -EINVAL, 0, { { 0 } } },
	{ "port with a sign", "audio:192.0.2.10:+4000:sendrecv", -EINVAL, 0, { { 0 } } },
	{ "empty port", "audio:192.0.2.10::sendrecv", -EINVAL, 0, { { 0 } } },
	{ "unknown direction", "audio:192.0.2.10:4000:sendandreceive", -EINVAL, 0, { { 0 } } },
	{ "parameter without =", "audio:192.0.2.10:4000:sendrecv:ice", -EINVAL, 0, { { 0 } } },
	{ "parameter with two =", "audio:192.0.2.10:4000:sendrecv:ice=yes=no", -EINVAL, 0, { { 0 } } },
	{ "parameter with an empty key", "audio:192.0.2.10:4000:sendrecv:=yes", -EINVAL, 0, { { 0 } } },
	{ "one good stream then a bad one", "audio:192.0.2.10:4000:sendrecv,video:x:1:sendrecv",
	  -EINVAL, 0, { { 0 } } },
};

static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct media_spec spec;
		const char *fault = NULL;
		int rc = media_spec_parse(c->input, strlen(c->input), &spec, &fault);

		print_message("# %s\n", c->name);
		assert_int_equal(rc, c->want_rc);
		if (rc) {
			assert_non_null(fault);
			continue;
		}
		assert_null(fault);
		assert_int_equal(spec.count, c->want_count);
		for (size_t j = 0; j < c->want_count; j++) {
			const struct want_stream *w = &c->want[j];
			const struct media_spec_stream *m = &spec.streams[j];
			char ip[64];

			assert_string_equal(m->type, w->type);
			assert_int_equal(net_addr_format(&m->ip, ip, sizeof(ip)), 0);
			assert_string_equal(ip, w->ip);
			assert_int_equal(m->port, w->port);
			assert_int_equal(m->direction, w->dir);
			assert_int_equal(m->ice, w->ice);
		}
	}
}

/* 32 m= lines is the modules' limit; one more is refused, not cut. */
static void test_stream_limit(void **state)
{
	char buf[64 * (MEDIA_SPEC_MAX_STREAMS + 1)];
	struct media_spec spec;
	size_t used = 0;

	(void)state;
	for (int i = 0; i < MEDIA_SPEC_MAX_STREAMS; i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%saudio:192.0.2.1:%d:sendrecv",
					 i ? "," : "", 4000 + 2 * i);
	assert_int_equal(media_spec_parse(buf, used, &spec, NULL), 0);
	assert_int_equal(spec.count, MEDIA_SPEC_MAX_STREAMS);
	assert_int_equal(spec.streams[31].port, 4062);
	used += (size_t)snprintf(buf + used, sizeof(buf) - used, ",video:192.0.2.1:5000:sendrecv");
	assert_int_equal(media_spec_parse(buf, used, &spec, NULL), -E2BIG);
}

/* The header value is a slice: nothing past len is read. */
static void test_parse_stops_at_len(void **state)
{
	static const char value[] = "audio:192.0.2.10:4000:sendrecv:ice=no,video:bad";
	struct media_spec spec;

	(void)state;
	assert_int_equal(media_spec_parse(value, strlen("audio:192.0.2.10:4000:sendrecv:ice=no"),
					  &spec, NULL), 0);
	assert_int_equal(spec.count, 1);
	assert_int_equal(media_spec_parse(value, sizeof(value) - 1, &spec, NULL), -EINVAL);
}

static void test_format_round_trip(void **state)
{
	static const char *const inputs[] = {
		"audio:127.0.0.1:23604:sendrecv:ice=no",
		"audio:192.0.2.10:0:recvonly:ice=no,image:192.0.2.10:4002:sendrecv:ice=no",
		"audio:0.0.0.0:49170:inactive:ice=yes,video:[2001:db8::1]:5000:sendonly:ice=no",
	};
	char out[512];
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct media_spec a, b;

		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		assert_int_equal(media_spec_parse(inputs[i], strlen(inputs[i]), &a, NULL), 0);
		assert_int_equal(media_spec_format(&a, out, sizeof(out), &len), 0);
		/* these inputs are already in the module's canonical form */
		assert_string_equal(out, inputs[i]);
		assert_int_equal(len, strlen(inputs[i]));
		assert_int_equal(media_spec_parse(out, len, &b, NULL), 0);
		assert_int_equal(a.count, b.count);
		/* entries are zeroed before they are filled: bytes compare */
		assert_memory_equal(a.streams, b.streams, a.count * sizeof(a.streams[0]));
	}
}

static void test_format_limits(void **state)
{
	struct media_spec spec = { 0 };
	char out[16];
	size_t len = 0;

	(void)state;
	assert_int_equal(media_spec_parse("audio:192.0.2.10:4000:sendrecv", 30, &spec, NULL), 0);
	assert_int_equal(media_spec_format(&spec, out, sizeof(out), &len), -ENOSPC);
	assert_int_equal(len, strlen("audio:192.0.2.10:4000:sendrecv:ice=no"));
	spec.streams[0].type[0] = '\0';
	assert_int_equal(media_spec_format(&spec, out, sizeof(out), &len), -EINVAL);
	spec.count = 0;
	assert_int_equal(media_spec_format(&spec, out, sizeof(out), &len), 0);
	assert_string_equal(out, "");
}

static void test_hold(void **state)
{
	static const struct {
		const char *input;
		bool hold;
	} cases[] = {
		{ "audio:192.0.2.10:4000:sendrecv", false },
		{ "audio:192.0.2.10:4000:recvonly", false },
		{ "audio:192.0.2.10:4000:sendonly", true },
		{ "audio:192.0.2.10:4000:inactive", true },
		{ "audio:0.0.0.0:4000:sendrecv", true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct media_spec spec;

		assert_int_equal(media_spec_parse(cases[i].input, strlen(cases[i].input), &spec, NULL), 0);
		assert_int_equal(media_spec_is_hold(&spec.streams[0]), cases[i].hold);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_stream_limit),
		cmocka_unit_test(test_parse_stops_at_len),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_format_limits),
		cmocka_unit_test(test_hold),
	};

	return cmocka_run_group_tests_name("media_spec", tests, NULL, NULL);
}
