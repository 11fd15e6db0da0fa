/* Address helpers shared by both daemons: IP literals (IPv4 and IPv6),
 * host[:port] endpoints, CIDR ranges and their text forms. Pure functions:
 * no name resolution, no sockets, no logging. */
#ifndef MP_NET_H
#define MP_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#define NET_HOST_MAX 256 /* host buffer: a DNS name is at most 253 chars */
/* "[" v6 "]:" 65535, plus NUL: the longest net_addr_port_format() output */
#define NET_ADDRPORT_STRLEN (INET6_ADDRSTRLEN + 8)

/* An IP address without a port. family is AF_INET, AF_INET6, or AF_UNSPEC
 * for "not set". Addresses are in network byte order. */
struct net_addr {
	int family;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	};
};

/* A configured host[:port]. host is an IP literal (IPv6 without brackets)
 * or a DNS name, resolved later by whoever connects or binds. any = the
 * keyword "any" was given: bind to every address; host is then empty. */
struct net_endpoint {
	char host[NET_HOST_MAX];
	uint16_t port; /* host byte order */
	bool any;
};

/* addr/prefix with the host bits cleared. */
struct net_cidr {
	struct net_addr addr;
	unsigned int prefix; /* 0..32 for IPv4, 0..128 for IPv6 */
};

/* Flags for net_endpoint_parse(). */
#define NET_EP_ANY 0x1      /* accept the keyword "any" (listen options) */
#define NET_EP_HOSTNAME 0x2 /* accept a DNS name, not only an IP literal */

/* Parses a strict IP literal: dotted-quad IPv4 or IPv6 (no brackets, no
 * zone). Returns 0 or -EINVAL. */
int net_addr_parse(const char *s, struct net_addr *out);

/* Writes the address as text ("192.0.2.1", "2001:db8::1"). Returns 0,
 * -EINVAL for an unset family, or -ENOSPC if buf is too small. */
int net_addr_format(const struct net_addr *addr, char *buf, size_t len);

/* Writes "ip:port" or "[v6]:port". Returns 0, -EINVAL or -ENOSPC. */
int net_addr_port_format(const struct net_addr *addr, uint16_t port,
			 char *buf, size_t len);

/* Same family and same bytes. An AF_UNSPEC address equals only itself. */
bool net_addr_equal(const struct net_addr *a, const struct net_addr *b);

/* 0.0.0.0 or :: */
bool net_addr_is_any(const struct net_addr *addr);

/* Converts to a socket address (sin_port/sin6_port set from port). Returns
 * the address length, or -EINVAL for an unset family. */
int net_addr_to_sockaddr(const struct net_addr *addr, uint16_t port,
			 struct sockaddr_storage *ss);

/* Converts from AF_INET/AF_INET6 socket addresses; port may be NULL.
 * Returns 0 or -EAFNOSUPPORT. */
int net_addr_from_sockaddr(const struct sockaddr *sa, struct net_addr *out,
			   uint16_t *port);

/* A decimal port 1..65535, digits only. Returns 0 or -EINVAL. */
int net_port_parse(const char *s, uint16_t *port);

/* Fills a UNIX socket address for path. 0, or -ENAMETOOLONG when path does
 * not fit sun_path. */
int net_unix_sockaddr(struct sockaddr_un *sun, const char *path);

/* A DNS host name: dot-separated labels of letters, digits, '-' and '_',
 * each 1..63 characters, 253 in total, one trailing dot allowed. */
bool net_hostname_valid(const char *s);

/* Parses host[:port] into out: "192.0.2.1", "192.0.2.1:5060",
 * "[2001:db8::1]:5060", "[2001:db8::1]", a bare "2001:db8::1" (always
 * taken as a whole address: use brackets to give a port), and with flags
 * "any[:port]" and "name.example.com[:port]". default_port is used when no
 * port is given. Returns 0 or -EINVAL. */
int net_endpoint_parse(const char *s, uint16_t default_port, unsigned int flags,
		       struct net_endpoint *out);

/* Parses "addr/prefix" or a lone address (a host route, /32 or /128).
 * Host bits beyond the prefix are cleared; *had_host_bits (may be NULL)
 * tells whether there were any. Returns 0 or -EINVAL. */
int net_cidr_parse(const char *s, struct net_cidr *out, bool *had_host_bits);

/* Writes "addr/prefix". Returns 0, -EINVAL or -ENOSPC. */
int net_cidr_format(const struct net_cidr *cidr, char *buf, size_t len);

/* Whether addr lies inside cidr. An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, as seen on a dual-stack socket) matches IPv4 ranges. */
bool net_cidr_contains(const struct net_cidr *cidr, const struct net_addr *addr);

#endif
