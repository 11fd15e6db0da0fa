/* Address helpers (common/net.c): IP literals, host[:port] with default
 * ports and IPv6 brackets, CIDR parsing and membership, text forms and
 * their round trips. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "net.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_addr_parse_and_format(void **state)
{
	static const struct {
		const char *in;
		int family; /* 0 = rejected */
		const char *out;
	} cases[] = {
		{ "192.0.2.1", AF_INET, "192.0.2.1" },
		{ "0.0.0.0", AF_INET, "0.0.0.0" },
		{ "255.255.255.255", AF_INET, "255.255.255.255" },
		{ "2001:DB8:0:0::1", AF_INET6, "2001:db8::1" },
		{ "::", AF_INET6, "::" },
		{ "::ffff:192.0.2.1", AF_INET6, "::ffff:192.0.2.1" },
		{ "256.0.0.1", 0, NULL },
		{ "192.0.2", 0, NULL },          /* inet_aton shorthand: not accepted */
		{ "192.0.2.01", 0, NULL },       /* leading zero: octal to some parsers */
		{ " 192.0.2.1", 0, NULL },
		{ "[::1]", 0, NULL },            /* brackets belong to host[:port] */
		{ "fe80::1%eth0", 0, NULL },     /* no zones */
		{ "relay.example.com", 0, NULL },
		{ "", 0, NULL },
	};
	struct net_addr a, back;
	char buf[INET6_ADDRSTRLEN];

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		int rc = net_addr_parse(cases[i].in, &a);

		if (!cases[i].family) {
			if (rc != -EINVAL)
				fail_msg("'%s' accepted", cases[i].in);
			continue;
		}
		if (rc != 0 || a.family != cases[i].family)
			fail_msg("'%s' rejected or wrong family", cases[i].in);
		assert_int_equal(net_addr_format(&a, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].out);
		/* round trip: the text form parses back to the same address */
		assert_int_equal(net_addr_parse(buf, &back), 0);
		assert_true(net_addr_equal(&a, &back));
	}
	/* formatting into too small a buffer */
	assert_int_equal(net_addr_parse("192.0.2.123", &a), 0);
	assert_int_equal(net_addr_format(&a, buf, 11), -ENOSPC);
	assert_int_equal(net_addr_format(&a, buf, 12), 0);
	memset(&a, 0, sizeof(a));
	assert_int_equal(net_addr_format(&a, buf, sizeof(buf)), -EINVAL);
}

static void test_addr_port_format(void **state)
{
	static const struct {
		const char *ip;
		uint16_t port;
		const char *out;
	} cases[] = {
		{ "127.0.0.2", 25060, "127.0.0.2:25060" },
		{ "::1", 25060, "[::1]:25060" },
		{ "2001:db8::8", 65535, "[2001:db8::8]:65535" },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
		  "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535" },
		{ "::ffff:255.255.255.255", 65535, "[::ffff:255.255.255.255]:65535" },
	};
	struct net_addr a;
	char buf[NET_ADDRPORT_STRLEN];

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		assert_int_equal(net_addr_parse(cases[i].ip, &a), 0);
		assert_int_equal(net_addr_port_format(&a, cases[i].port, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].out);
	}
	assert_int_equal(net_addr_port_format(&a, 1, buf, 8), -ENOSPC);
}

static void test_addr_equal_any_sockaddr(void **state)
{
	struct net_addr a, b, c;
	struct sockaddr_storage ss;
	uint16_t port = 0;

	(void)state;
	assert_int_equal(net_addr_parse("10.1.2.3", &a), 0);
	assert_int_equal(net_addr_parse("10.1.2.3", &b), 0);
	assert_int_equal(net_addr_parse("::ffff:10.1.2.3", &c), 0);
	assert_true(net_addr_equal(&a, &b));
	assert_false(net_addr_equal(&a, &c)); /* different families */
	assert_false(net_addr_is_any(&a));
	assert_int_equal(net_addr_parse("::", &b), 0);
	assert_true(net_addr_is_any(&b));
	assert_int_equal(net_addr_parse("0.0.0.0", &b), 0);
	assert_true(net_addr_is_any(&b));

	assert_int_equal(net_addr_to_sockaddr(&a, 4000, &ss), sizeof(struct sockaddr_in));
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_port, htons(4000));
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, &b, &port), 0);
	assert_true(net_addr_equal(&a, &b));
	assert_int_equal(port, 4000);

	assert_int_equal(net_addr_parse("2001:db8::2", &a), 0);
	assert_int_equal(net_addr_to_sockaddr(&a, 5, &ss), sizeof(struct sockaddr_in6));
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, &b, NULL), 0);
	assert_true(net_addr_equal(&a, &b));

	memset(&a, 0, sizeof(a));
	assert_int_equal(net_addr_to_sockaddr(&a, 5, &ss), -EINVAL);
	ss.ss_family = AF_UNIX;
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, &b, NULL),
			 -EAFNOSUPPORT);
}

static void test_port_and_hostname(void **state)
{
	static const struct {
		const char *in;
		int rc;
		uint16_t port;
	} ports[] = {
		{ "1", 0, 1 }, { "25060", 0, 25060 }, { "65535", 0, 65535 },
		{ "0", -EINVAL, 0 }, { "65536", -EINVAL, 0 }, { "", -EINVAL, 0 },
		{ "+5", -EINVAL, 0 }, { "5 ", -EINVAL, 0 }, { "0x10", -EINVAL, 0 },
		{ "000001", -EINVAL, 0 }, { "-1", -EINVAL, 0 },
	};
	static const struct {
		const char *in;
		bool ok;
	} names[] = {
		{ "example.com", true }, { "example.com.", true }, { "a", true },
		{ "_sip._udp.example.com", true }, { "relay-1.example.com", true },
		{ "", false }, { ".", false }, { "a..b", false }, { ".a", false },
		{ "bad!name", false }, { "a b", false }, { "10.0.0.300", false },
		{ "1.2.3", false }, { "host.123", false }, { "123.host", true },
		{ "xn--bcher-kva.example", true },
	};
	char longlabel[80], longname[4 * 80 + 4];
	uint16_t port;

	(void)state;
	for (size_t i = 0; i < N(ports); i++) {
		port = 0;
		if (net_port_parse(ports[i].in, &port) != ports[i].rc ||
		    (!ports[i].rc && port != ports[i].port))
			fail_msg("port '%s'", ports[i].in);
	}
	for (size_t i = 0; i < N(names); i++)
		if (net_hostname_valid(names[i].in) != names[i].ok)
			fail_msg("hostname '%s' should be %s", names[i].in,
				 names[i].ok ? "valid" : "invalid");
	memset(longlabel, 'a', 64);
	longlabel[64] = '\0';
	assert_false(net_hostname_valid(longlabel)); /* label of 64 */
	longlabel[63] = '\0';
	assert_true(net_hostname_valid(longlabel));
	/* 4 labels of 63 + 3 dots = 255 characters: too long */
	snprintf(longname, sizeof(longname), "%s.%s.%s.%s", longlabel, longlabel,
		 longlabel, longlabel);
	assert_false(net_hostname_valid(longname));
	longname[253] = '\0'; /* 253 characters, last label 61 */
	assert_true(net_hostname_valid(longname));
}

static void test_endpoint_parse(void **state)
{
	static const struct {
		const char *in;
		unsigned int flags;
		int rc;
		const char *host;
		uint16_t port;
		bool any;
	} cases[] = {
		{ "192.0.2.1", 0, 0, "192.0.2.1", 25060, false },
		{ "192.0.2.1:5", 0, 0, "192.0.2.1", 5, false },
		{ "[2001:db8::1]:25061", 0, 0, "2001:db8::1", 25061, false },
		{ "[::1]", 0, 0, "::1", 25060, false },
		{ "2001:db8::1", 0, 0, "2001:db8::1", 25060, false },
		{ "::1:2507", 0, 0, "::1:2507", 25060, false }, /* a whole v6 literal */
		{ "::1:25070", 0, -EINVAL, NULL, 0, false },    /* never host:port */
		{ "any", NET_EP_ANY, 0, "", 25060, true },
		{ "ANY:26000", NET_EP_ANY, 0, "", 26000, true },
		{ "any", 0, -EINVAL, NULL, 0, false },
		{ "any", NET_EP_HOSTNAME, 0, "any", 25060, false },
		{ "dispatcher.example.com", NET_EP_HOSTNAME, 0, "dispatcher.example.com", 25060, false },
		{ "dispatcher.example.com:1", NET_EP_HOSTNAME, 0, "dispatcher.example.com", 1, false },
		{ "dispatcher.example.com", NET_EP_ANY, -EINVAL, NULL, 0, false },
		{ "[192.0.2.1]:5", NET_EP_HOSTNAME, -EINVAL, NULL, 0, false },
		{ "[example.com]:5", NET_EP_HOSTNAME, -EINVAL, NULL, 0, false },
		{ "[::1]5", 0, -EINVAL, NULL, 0, false },
		{ "[::1", 0, -EINVAL, NULL, 0, false },
		{ "192.0.2.1:", 0, -EINVAL, NULL, 0, false },
		{ "192.0.2.1:0", 0, -EINVAL, NULL, 0, false },
		{ "192.0.2.1:65536", 0, -EINVAL, NULL, 0, false },
		{ ":5", NET_EP_HOSTNAME, -EINVAL, NULL, 0, false },
		{ "", NET_EP_HOSTNAME | NET_EP_ANY, -EINVAL, NULL, 0, false },
	};
	struct net_endpoint ep;

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		int rc = net_endpoint_parse(cases[i].in, 25060, cases[i].flags, &ep);

		if (rc != cases[i].rc)
			fail_msg("'%s': rc %d, want %d", cases[i].in, rc, cases[i].rc);
		if (rc)
			continue;
		if (strcmp(ep.host, cases[i].host) || ep.port != cases[i].port ||
		    ep.any != cases[i].any)
			fail_msg("'%s': got %s %u %d", cases[i].in, ep.host, ep.port, ep.any);
	}
}

static void test_cidr(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *out;
		bool host_bits;
	} cases[] = {
		{ "10.0.0.0/8", 0, "10.0.0.0/8", false },
		{ "192.168.1.5/24", 0, "192.168.1.0/24", true },
		{ "192.168.1.5", 0, "192.168.1.5/32", false },
		{ "0.0.0.0/0", 0, "0.0.0.0/0", false },
		{ "172.16.0.0/12", 0, "172.16.0.0/12", false },
		{ "172.17.0.0/12", 0, "172.16.0.0/12", true },
		{ "fd00::/8", 0, "fd00::/8", false },
		{ "2001:db8::1/64", 0, "2001:db8::/64", true },
		{ "2001:db8::1", 0, "2001:db8::1/128", false },
		{ "10.0.0.0/33", -EINVAL, NULL, false },
		{ "::/129", -EINVAL, NULL, false },
		{ "10.0.0.0/", -EINVAL, NULL, false },
		{ "10.0.0.0/-1", -EINVAL, NULL, false },
		{ "10.0.0.0/8/8", -EINVAL, NULL, false },
		{ "10.0.0.0/ 8", -EINVAL, NULL, false },
		{ "lan/24", -EINVAL, NULL, false },
		{ "", -EINVAL, NULL, false },
	};
	struct net_cidr c, back;
	char buf[64];
	bool hb;

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		int rc = net_cidr_parse(cases[i].in, &c, &hb);

		if (rc != cases[i].rc)
			fail_msg("'%s': rc %d", cases[i].in, rc);
		if (rc)
			continue;
		assert_int_equal(net_cidr_format(&c, buf, sizeof(buf)), 0);
		if (strcmp(buf, cases[i].out) || hb != cases[i].host_bits)
			fail_msg("'%s': got %s host bits %d", cases[i].in, buf, hb);
		/* round trip, now without host bits */
		assert_int_equal(net_cidr_parse(buf, &back, &hb), 0);
		assert_false(hb);
		assert_true(net_addr_equal(&c.addr, &back.addr) && c.prefix == back.prefix);
	}
	assert_int_equal(net_cidr_parse("10.0.0.0/8", &c, NULL), 0);
	assert_int_equal(net_cidr_format(&c, buf, 10), -ENOSPC);
}

static void test_cidr_contains(void **state)
{
	static const struct {
		const char *cidr, *addr;
		bool in;
	} cases[] = {
		{ "10.0.0.0/8", "10.255.1.2", true },
		{ "10.0.0.0/8", "11.0.0.1", false },
		{ "172.16.0.0/12", "172.31.255.255", true },
		{ "172.16.0.0/12", "172.32.0.0", false },
		{ "192.168.1.0/24", "192.168.1.77", true },
		{ "192.168.1.0/24", "192.168.2.1", false },
		{ "192.0.2.7", "192.0.2.7", true },
		{ "192.0.2.7", "192.0.2.8", false },
		{ "0.0.0.0/0", "203.0.113.1", true },
		{ "0.0.0.0/0", "2001:db8::1", false },          /* family differs */
		{ "10.0.0.0/8", "::ffff:10.1.1.1", true },      /* dual-stack socket */
		{ "10.0.0.0/8", "::ffff:11.1.1.1", false },
		{ "::ffff:10.0.0.0/104", "10.1.1.1", false },   /* only v4 ranges unmap */
		{ "fd00::/8", "fd12:3456::1", true },
		{ "fd00::/8", "fe80::1", false },
		{ "2001:db8::/33", "2001:db8:7fff::1", true },
		{ "2001:db8::/33", "2001:db8:8000::1", false },
		{ "::/0", "::1", true },
	};
	struct net_cidr c;
	struct net_addr a;

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		assert_int_equal(net_cidr_parse(cases[i].cidr, &c, NULL), 0);
		assert_int_equal(net_addr_parse(cases[i].addr, &a), 0);
		if (net_cidr_contains(&c, &a) != cases[i].in)
			fail_msg("%s in %s: want %d", cases[i].addr, cases[i].cidr, cases[i].in);
	}
	memset(&a, 0, sizeof(a));
	assert_false(net_cidr_contains(&c, &a));
}

static void test_unix_sockaddr(void **state)
{
	struct sockaddr_un sun;
	char longest[sizeof(sun.sun_path)];

	(void)state;
	assert_int_equal(net_unix_sockaddr(&sun, "/run/mediaproxy/dispatcher.sock"), 0);
	assert_int_equal(sun.sun_family, AF_UNIX);
	assert_string_equal(sun.sun_path, "/run/mediaproxy/dispatcher.sock");
	memset(longest, 'x', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	assert_int_equal(net_unix_sockaddr(&sun, longest), 0); /* 107 bytes + NUL fit */
	char too_long[sizeof(sun.sun_path) + 1];

	memset(too_long, 'x', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = '\0';
	assert_int_equal(net_unix_sockaddr(&sun, too_long), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_parse_and_format),
		cmocka_unit_test(test_addr_port_format),
		cmocka_unit_test(test_addr_equal_any_sockaddr),
		cmocka_unit_test(test_port_and_hostname),
		cmocka_unit_test(test_endpoint_parse),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_cidr_contains),
		cmocka_unit_test(test_unix_sockaddr),
	};

	return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
