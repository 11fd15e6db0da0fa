/* Media classification (relayd/rtp.c): STUN by its magic cookie (RFC 5389),
 * the RTP payload type of version-2 packets (RTCP on a muxed port is not
 * one), MediaProxy's codec names, and which SDP addresses may be sent to
 * before latching (PROTOCOL.md D5). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rtp.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_stun(void **state)
{
	static const struct {
		const char *name;
		uint8_t bytes[24];
		size_t len;
		bool stun;
	} cases[] = {
		{ "ICE binding request",
		  { 0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xa4, 0x42 }, 24, true },
		{ "binding success response",
		  { 0x01, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42 }, 20, true },
		{ "header cut short",
		  { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42 }, 19, false },
		{ "RFC 3489 STUN without the cookie",
		  { 0x00, 0x01, 0x00, 0x00, 1, 2, 3, 4 }, 20, false },
		{ "RTP whose bytes 4..7 happen to be the cookie",
		  { 0x80, 0x00, 0x00, 0x01, 0x21, 0x12, 0xa4, 0x42 }, 24, false },
		{ "cookie one bit off",
		  { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x43 }, 20, false },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		if (rtp_is_stun(cases[i].bytes, cases[i].len) != cases[i].stun)
			fail_msg("%s: misclassified", cases[i].name);
}

static void test_payload_type(void **state)
{
	static const struct {
		const char *name;
		uint8_t b0, b1;
		size_t len;
		int pt;
	} cases[] = {
		{ "PCMU", 0x80, 0, 172, 0 },
		{ "PCMA with the marker bit", 0x80, 0x80 | 8, 172, 8 },
		{ "telephone-event 101", 0x80, 101, 16, 101 },
		{ "CSRC count and extension bits set", 0x9f, 18, 80, 18 },
		{ "RTCP sender report on the RTP port", 0x80, 200, 28, -1 },
		{ "RTCP receiver report on the RTP port", 0x81, 201, 32, -1 },
		{ "version 1", 0x40, 0, 172, -1 },
		{ "STUN", 0x00, 0x01, 20, -1 },
		{ "shorter than a header", 0x80, 0, 11, -1 },
	};
	uint8_t buf[200];

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		memset(buf, 0, sizeof(buf));
		buf[0] = cases[i].b0;
		buf[1] = cases[i].b1;
		if (rtp_payload_type(buf, cases[i].len) != cases[i].pt)
			fail_msg("%s: got %d", cases[i].name, rtp_payload_type(buf, cases[i].len));
	}
}

static void test_codec_names(void **state)
{
	static const struct {
		int pt;
		const char *name;
	} cases[] = {
		{ 0, "G711u" },      { 3, "GSM" },        { 4, "G723" },
		{ 8, "G711a" },      { 9, "G722" },       { 18, "G729" },
		{ 34, "H263" },      { 13, "Unknown(13)" }, /* CN: not in upstream's table */
		{ 19, "Unknown(19)" }, { 95, "Unknown(95)" }, { 96, "Dynamic(96)" },
		{ 101, "Dynamic(101)" }, { 127, "Dynamic(127)" },
	};
	char name[RTP_CODEC_MAX];

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		rtp_codec_name(cases[i].pt, name);
		assert_string_equal(name, cases[i].name);
	}
}

static void test_routable(void **state)
{
	static const struct {
		const char *addr;
		bool plain;   /* without routable_private_ranges */
		bool lab;     /* with 127.0.0.0/8, 10.0.0.0/8, 192.168.0.0/16, fd00::/8 */
	} cases[] = {
		{ "203.0.113.5", true, true },
		{ "198.51.100.1", true, true },
		{ "8.8.8.8", true, true },
		{ "0.0.0.0", false, false },    /* on hold */
		{ "10.1.2.3", false, true },
		{ "127.0.0.1", false, true },
		{ "169.254.1.1", false, false },
		{ "172.16.0.1", false, false },
		{ "172.31.255.255", false, false },
		{ "172.32.0.1", true, true },
		{ "192.0.2.10", false, false },
		{ "192.168.1.10", false, true },
		{ "224.0.0.1", false, false },
		{ "239.255.255.250", false, false },
		{ "2001:4860::8888", true, true },
		{ "::", false, false },
		{ "::1", false, false },
		{ "fe80::1", false, false },
		{ "fd12::1", false, true },
		{ "2001:db8::1", false, false },
		{ "ff02::1", false, false },
		{ "::ffff:10.1.2.3", false, true },
		{ "::ffff:203.0.113.5", true, true },
	};
	static const char *const lab_ranges[] = { "127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16",
						 "fd00::/8" };
	struct net_cidr items[N(lab_ranges)];
	struct config_cidr_list lab = { items, N(lab_ranges) };
	struct net_addr a;

	(void)state;
	for (size_t i = 0; i < N(lab_ranges); i++)
		assert_int_equal(net_cidr_parse(lab_ranges[i], &items[i], NULL), 0);
	for (size_t i = 0; i < N(cases); i++) {
		assert_int_equal(net_addr_parse(cases[i].addr, &a), 0);
		if (rtp_addr_routable(&a, NULL) != cases[i].plain)
			fail_msg("%s: routable should be %d", cases[i].addr, cases[i].plain);
		if (rtp_addr_routable(&a, &lab) != cases[i].lab)
			fail_msg("%s with lab ranges: routable should be %d", cases[i].addr,
				 cases[i].lab);
	}
	a.family = AF_UNSPEC;
	assert_false(rtp_addr_routable(&a, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stun),
		cmocka_unit_test(test_payload_type),
		cmocka_unit_test(test_codec_names),
		cmocka_unit_test(test_routable),
	};

	return cmocka_run_group_tests_name("rtp", tests, NULL, NULL);
}
