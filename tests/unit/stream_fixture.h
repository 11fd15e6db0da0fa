/* Shared by the stream tests (test_stream.c, test_stream_state.c): a
 * relay address and three "phones" on a /24 of 127/8 picked from the pid
 * (or ::1), a small port pool below the ephemeral range so parallel runs
 * stay apart, a fake clock, a recording stand-in for an in-kernel
 * backend, and helpers that send, pump the event loop and receive. */
#ifndef TEST_STREAM_FIXTURE_H
#define TEST_STREAM_FIXTURE_H

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "log.h"
#include "stream.h"
#include "traffic.h"

#define NS 1000000000ull
#define PAIRS 6 /* three streams' worth */

/* ---- fixtures ------------------------------------------------------------ */

struct phone {
	int fd;
	struct net_addr addr;
	uint16_t port;
};

/* A recording stand-in for an in-kernel backend. */
struct forward {
	int adds, removes, reads;
	int add_rc;
	struct forward_pair last_added, last_removed;
	struct forward_counters fwd, bwd; /* what the "kernel" counted so far */
};

struct fixture {
	struct event_base *base;
	struct ports_pool *pool;
	struct stream_env *env;
	struct net_addr relay_ip;
	struct phone caller, callee, stranger;
	struct forward stub;
	struct net_cidr lab_items[1];
	struct config_cidr_list lab; /* 127.0.0.0/8 as routable_private_ranges */
	unsigned int base_port;
	int family;
};

static uint64_t fake_now;

static inline uint64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static inline int stub_add(struct forward *fw, const struct forward_pair *pair)
{
	fw->adds++;
	fw->last_added = *pair;
	return fw->add_rc;
}

static inline int stub_read(struct forward *fw, const struct forward_pair *pair,
		     struct forward_counters *f, struct forward_counters *b)
{
	(void)pair;
	fw->reads++;
	*f = fw->fwd;
	*b = fw->bwd;
	return 0;
}

static inline int stub_remove(struct forward *fw, const struct forward_pair *pair,
		       struct forward_counters *f, struct forward_counters *b)
{
	fw->removes++;
	fw->last_removed = *pair;
	if (f)
		*f = fw->fwd;
	if (b)
		*b = fw->bwd;
	/* a new rule starts counting from zero */
	memset(&fw->fwd, 0, sizeof(fw->fwd));
	memset(&fw->bwd, 0, sizeof(fw->bwd));
	return 0;
}

static const struct forward_backend stub_backend = {
	.name = "stub",
	.add_pair = stub_add,
	.read_pair = stub_read,
	.remove_pair = stub_remove,
	.in_kernel = true,
};

static inline void phone_open(struct phone *ph, const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t len;

	assert_int_equal(net_addr_parse(ip, &ph->addr), 0);
	len = (socklen_t)net_addr_to_sockaddr(&ph->addr, 0, &ss);
	ph->fd = socket(ph->addr.family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(ph->fd >= 0);
	assert_int_equal(bind(ph->fd, (struct sockaddr *)&ss, len), 0);
	len = sizeof(ss);
	assert_int_equal(getsockname(ph->fd, (struct sockaddr *)&ss, &len), 0);
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, &ph->addr,
						&ph->port), 0);
}

/* Everything else: the relay's own address and a few phones' addresses,
 * all in a /24 of 127/8 picked from the pid, ports below the ephemeral
 * range, so that parallel runs stay apart. */
static inline int fixture_open(void **state, int family, const struct stream_env_options *extra)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct config_port_range range;
	struct stream_env_options o = { 0 };
	char ip[4][48];
	unsigned int a = 100 + (unsigned)getpid() % 100, b = (unsigned)getpid() / 100 % 250 + 1;

	assert_non_null(f);
	log_init("test_stream", LOG_LEVEL_CRITICAL, false);
	f->family = family;
	for (int i = 0; i < 4; i++) {
		if (family == AF_INET6)
			snprintf(ip[i], sizeof(ip[i]), "::1");
		else
			snprintf(ip[i], sizeof(ip[i]), "127.%u.%u.%d", a, b, 11 + i);
	}
	assert_int_equal(net_addr_parse(ip[0], &f->relay_ip), 0);
	f->base_port = 30000 - 2 * PAIRS * (1 + (unsigned)getpid() % 400);
	range.start = f->base_port;
	range.end = f->base_port + 2 * PAIRS;
	f->base = event_base_new();
	assert_non_null(f->base);
	assert_int_equal(ports_pool_new(&f->pool, &f->relay_ip, &range), 0);
	phone_open(&f->caller, ip[1]);
	phone_open(&f->callee, ip[2]);
	phone_open(&f->stranger, ip[3]);
	assert_int_equal(net_cidr_parse("127.0.0.0/8", &f->lab_items[0], NULL), 0);
	f->lab.items = f->lab_items;
	f->lab.count = 1;
	if (extra)
		o = *extra;
	o.base = f->base;
	o.pool = f->pool;
	o.clock = fake_clock;
	if (o.backend == &stub_backend)
		o.fw = &f->stub;
	if (o.routable_private_ranges)
		o.routable_private_ranges = &f->lab;
	fake_now = 1000 * NS;
	assert_int_equal(stream_env_new(&f->env, &o), 0);
	*state = f;
	return 0;
}

static inline int setup_v4(void **state)
{
	return fixture_open(state, AF_INET, NULL);
}

static inline int setup_v6(void **state)
{
	return fixture_open(state, AF_INET6, NULL);
}

static inline int setup_lab(void **state)
{
	struct stream_env_options o = { .routable_private_ranges = (void *)1 };

	return fixture_open(state, AF_INET, &o);
}

static inline int setup_kernel(void **state)
{
	struct stream_env_options o = { .backend = &stub_backend };

	return fixture_open(state, AF_INET, &o);
}

static inline int setup_every2(void **state)
{
	struct stream_env_options o = { .transmit_every = 2 };

	return fixture_open(state, AF_INET, &o);
}

static inline int teardown(void **state)
{
	struct fixture *f = *state;
	struct ports_usage u;

	stream_env_free(f->env);
	ports_get_usage(f->pool, &u);
	assert_int_equal(u.taken, 0); /* every stream gave its ports back */
	ports_pool_free(f->pool);
	event_base_free(f->base);
	close(f->caller.fd);
	close(f->callee.fd);
	close(f->stranger.fd);
	free(f);
	return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static inline void pump(struct fixture *f)
{
	/* loopback delivers within sendto(), so the sockets are readable */
	for (int i = 0; i < 3; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
}

static inline size_t make_rtp(uint8_t *buf, int pt, uint16_t seq, size_t len)
{
	memset(buf, 0xd5, len);
	buf[0] = 0x80;
	buf[1] = (uint8_t)pt;
	buf[2] = (uint8_t)(seq >> 8);
	buf[3] = (uint8_t)seq;
	return len;
}

static inline size_t make_stun(uint8_t *buf)
{
	static const uint8_t req[20] = { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42,
					 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

	memcpy(buf, req, sizeof(req));
	return sizeof(req);
}

static inline void send_to_relay(struct fixture *f, struct phone *ph, uint16_t port,
			  const void *data, size_t len)
{
	struct sockaddr_storage ss;
	int sl = net_addr_to_sockaddr(&f->relay_ip, port, &ss);

	assert_int_equal(sendto(ph->fd, data, len, 0, (struct sockaddr *)&ss, (socklen_t)sl),
			 (ssize_t)len);
	pump(f);
}

/* Receives one datagram within timeout_ms; returns its length or -1, and
 * checks that it came from the relay's address. */
static inline ssize_t phone_recv(struct fixture *f, struct phone *ph, void *buf, size_t len,
			  uint16_t *from_port, int timeout_ms)
{
	struct pollfd pfd = { .fd = ph->fd, .events = POLLIN };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct net_addr from;
	ssize_t n;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -1;
	n = recvfrom(ph->fd, buf, len, 0, (struct sockaddr *)&ss, &sl);
	assert_true(n >= 0);
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, &from, from_port), 0);
	assert_true(net_addr_equal(&from, &f->relay_ip));
	return n;
}

static inline void expect_packet(struct fixture *f, struct phone *ph, const void *data, size_t len,
			  uint16_t from_port)
{
	uint8_t buf[2048];
	uint16_t port = 0;
	ssize_t n = phone_recv(f, ph, buf, sizeof(buf), &port, 500);

	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(buf, data, len);
	assert_int_equal(port, from_port);
}

static inline void expect_nothing(struct fixture *f, struct phone *ph)
{
	uint8_t buf[2048];

	assert_int_equal(phone_recv(f, ph, buf, sizeof(buf), NULL, 30), -1);
}

static inline struct stream *new_stream(struct fixture *f)
{
	struct stream *s = NULL;

	assert_int_equal(stream_new(f->env, &s), 0);
	assert_non_null(s);
	return s;
}

static inline uint16_t rtp_port(struct stream *s, enum stream_side side)
{
	return stream_local_port(s, side);
}

static inline void remote_of(const struct phone *ph, char *buf, size_t len)
{
	assert_int_equal(net_addr_port_format(&ph->addr, ph->port, buf, len), 0);
}

/* Both sides latched on RTP, each having sent one packet of `len`. */
static inline void latch_both(struct fixture *f, struct stream *s, size_t len)
{
	uint8_t pkt[512];

	make_rtp(pkt, 0, 1, len);
	send_to_relay(f, &f->caller, rtp_port(s, STREAM_CALLER), pkt, len);
	make_rtp(pkt, 8, 1, len);
	send_to_relay(f, &f->callee, rtp_port(s, STREAM_CALLEE), pkt, len);
	expect_packet(f, &f->caller, pkt, len, rtp_port(s, STREAM_CALLER));
}

#endif
