/* Address parsing and formatting (see net.h). Everything here is a pure
 * function over its arguments; inet_pton/inet_ntop do the literal work. */
#include "net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t addr_len(int family)
{
	return family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr);
}

static const uint8_t *addr_bytes(const struct net_addr *addr)
{
	return addr->family == AF_INET ? (const uint8_t *)&addr->v4 :
					 (const uint8_t *)&addr->v6;
}

int net_addr_parse(const char *s, struct net_addr *out)
{
	struct net_addr a;

	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, s, &a.v4) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, s, &a.v6) == 1)
		a.family = AF_INET6;
	else
		return -EINVAL;
	*out = a;
	return 0;
}

int net_addr_format(const struct net_addr *addr, char *buf, size_t len)
{
	char tmp[INET6_ADDRSTRLEN];

	if (addr->family != AF_INET && addr->family != AF_INET6)
		return -EINVAL;
	/* inet_ntop cannot fail here: the family is valid and tmp is big enough */
	inet_ntop(addr->family, addr_bytes(addr), tmp, sizeof(tmp));
	if (strlen(tmp) >= len)
		return -ENOSPC;
	strcpy(buf, tmp);
	return 0;
}

int net_addr_port_format(const struct net_addr *addr, uint16_t port,
			 char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	int n, err;

	if ((err = net_addr_format(addr, ip, sizeof(ip))) < 0)
		return err;
	if (addr->family == AF_INET6)
		n = snprintf(buf, len, "[%s]:%u", ip, port);
	else
		n = snprintf(buf, len, "%s:%u", ip, port);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

bool net_addr_equal(const struct net_addr *a, const struct net_addr *b)
{
	if (a->family != b->family)
		return false;
	if (a->family != AF_INET && a->family != AF_INET6)
		return true;
	return !memcmp(addr_bytes(a), addr_bytes(b), addr_len(a->family));
}

bool net_addr_is_any(const struct net_addr *addr)
{
	static const uint8_t zero[16];

	if (addr->family != AF_INET && addr->family != AF_INET6)
		return false;
	return !memcmp(addr_bytes(addr), zero, addr_len(addr->family));
}

int net_addr_to_sockaddr(const struct net_addr *addr, uint16_t port,
			 struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (addr->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr = addr->v4;
		return sizeof(*sin);
	}
	if (addr->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = addr->v6;
		return sizeof(*sin6);
	}
	return -EINVAL;
}

int net_addr_from_sockaddr(const struct sockaddr *sa, struct net_addr *out,
			   uint16_t *port)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		out->family = AF_INET;
		out->v4 = sin->sin_addr;
		if (port)
			*port = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		out->family = AF_INET6;
		out->v6 = sin6->sin6_addr;
		if (port)
			*port = ntohs(sin6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

int net_port_parse(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	/* digits only: strtoul would take signs, spaces and "0x" */
	for (i = 0; s[i]; i++) {
		if (!isdigit((unsigned char)s[i]) || i >= 5)
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

bool net_hostname_valid(const char *s)
{
	size_t len = strlen(s), label = 0;
	bool digits_only = true;

	if (len == 0 || len > 254 || (len == 254 && s[253] != '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			/* an empty label; only the root label after a final dot may be */
			if (label == 0)
				return false;
			if (i + 1 < len)
				digits_only = true;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return false;
		if (!isdigit(c))
			digits_only = false;
		if (++label > 63)
			return false;
	}
	/* an all-digit last label is a mistyped IPv4 address (RFC 3696 2) */
	return !digits_only;
}

/* Splits "host:port" / "[v6]:port" / "[v6]" / "host" into host text and
 * port text (NULL when absent). Returns -EINVAL on a malformed bracket. */
static int split_host_port(char *buf, char **host, char **port)
{
	char *colon;

	*port = NULL;
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (!close)
			return -EINVAL;
		*close = '\0';
		*host = buf + 1;
		if (close[1] == '\0')
			return 0;
		if (close[1] != ':')
			return -EINVAL;
		*port = close + 2;
		return 0;
	}
	*host = buf;
	colon = strchr(buf, ':');
	/* more than one colon: a bare IPv6 literal, never host:port */
	if (colon && !strchr(colon + 1, ':')) {
		*colon = '\0';
		*port = colon + 1;
	}
	return 0;
}

int net_endpoint_parse(const char *s, uint16_t default_port, unsigned int flags,
		       struct net_endpoint *out)
{
	char buf[NET_HOST_MAX + 8], *host, *port_s;
	struct net_endpoint ep;
	struct net_addr addr;
	bool bracketed = s[0] == '[';

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	if (split_host_port(buf, &host, &port_s) < 0)
		return -EINVAL;

	memset(&ep, 0, sizeof(ep));
	ep.port = default_port;
	if (port_s && net_port_parse(port_s, &ep.port) < 0)
		return -EINVAL;

	if (net_addr_parse(host, &addr) == 0) {
		/* brackets belong to IPv6 only (split_host_port never splits a
		 * port off a bare IPv6 literal) */
		if (bracketed && addr.family != AF_INET6)
			return -EINVAL;
	} else if (bracketed) {
		return -EINVAL;
	} else if ((flags & NET_EP_ANY) && !strcasecmp(host, "any")) {
		ep.any = true;
		host = "";
	} else if (!(flags & NET_EP_HOSTNAME) || !net_hostname_valid(host)) {
		return -EINVAL;
	}
	if (strlen(host) >= sizeof(ep.host))
		return -EINVAL;
	strcpy(ep.host, host);
	*out = ep;
	return 0;
}

static void cidr_mask(struct net_addr *addr, unsigned int prefix, bool *had_host_bits)
{
	uint8_t *b = addr->family == AF_INET ? (uint8_t *)&addr->v4 : (uint8_t *)&addr->v6;
	size_t len = addr_len(addr->family);

	for (size_t i = 0; i < len; i++) {
		unsigned int bits = prefix > 8 * i ? prefix - 8 * (unsigned int)i : 0;
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff00 >> bits);

		if (b[i] & ~mask)
			*had_host_bits = true;
		b[i] &= mask;
	}
}

int net_cidr_parse(const char *s, struct net_cidr *out, bool *had_host_bits)
{
	char buf[INET6_ADDRSTRLEN + 8];
	struct net_cidr c;
	char *slash;
	unsigned int max;
	bool host_bits = false;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(&c, 0, sizeof(c));
	if (net_addr_parse(buf, &c.addr) < 0)
		return -EINVAL;
	max = c.addr.family == AF_INET ? 32 : 128;
	c.prefix = max;
	if (slash) {
		const char *p = slash + 1;

		/* 1..3 digits, no sign or spaces */
		if (!*p || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p))
			return -EINVAL;
		c.prefix = (unsigned int)atoi(p);
		if (c.prefix > max)
			return -EINVAL;
	}
	cidr_mask(&c.addr, c.prefix, &host_bits);
	if (had_host_bits)
		*had_host_bits = host_bits;
	*out = c;
	return 0;
}

int net_cidr_format(const struct net_cidr *cidr, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	int n, err;

	if ((err = net_addr_format(&cidr->addr, ip, sizeof(ip))) < 0)
		return err;
	n = snprintf(buf, len, "%s/%u", ip, cidr->prefix);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

bool net_cidr_contains(const struct net_cidr *cidr, const struct net_addr *addr)
{
	struct net_addr a = *addr;
	bool ignored = false;

	if (a.family == AF_INET6 && cidr->addr.family == AF_INET &&
	    IN6_IS_ADDR_V4MAPPED(&a.v6)) {
		struct in_addr v4;

		memcpy(&v4, &a.v6.s6_addr[12], sizeof(v4));
		memset(&a, 0, sizeof(a));
		a.family = AF_INET;
		a.v4 = v4;
	}
	if (a.family != cidr->addr.family ||
	    (a.family != AF_INET && a.family != AF_INET6))
		return false;
	cidr_mask(&a, cidr->prefix, &ignored);
	return net_addr_equal(&a, &cidr->addr);
}

int net_unix_sockaddr(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}
