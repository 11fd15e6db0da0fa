/* The relay's port pool (relayd/ports.c): FIFO hand-out and reuse of port
 * pairs (PROTOCOL.md 4.2, D18), exhaustion as a clean -EBUSY (D1), pairs
 * held by another socket moved to the bad list and recycled, taking one
 * specific pair (restart, D6), sockets bound on IPv4 and IPv6 relay_ip. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "ports.h"
#include "log.h"

/* A loopback address of our own (all of 127/8 is local) and ports below
 * the ephemeral range, so parallel test runs do not collide. */
static struct net_addr test_ip;
static unsigned int test_base;

static int setup(void **state)
{
	char buf[32];

	(void)state;
	log_init("test_ports", LOG_LEVEL_CRITICAL, false);
	snprintf(buf, sizeof(buf), "127.%u.%u.1", 100 + (unsigned)getpid() % 100,
		 (unsigned)getpid() / 100 % 250 + 1);
	assert_int_equal(net_addr_parse(buf, &test_ip), 0);
	test_base = 20000 + 2 * ((unsigned)getpid() % 4000);
	return 0;
}

static struct config_port_range range_of(unsigned int pairs)
{
	struct config_port_range r = { test_base, test_base + 2 * pairs };

	return r;
}

static struct ports_pool *pool_of(unsigned int pairs)
{
	struct config_port_range r = range_of(pairs);
	struct ports_pool *pool;

	assert_int_equal(ports_pool_new(&pool, &test_ip, &r), 0);
	return pool;
}

static uint16_t port(unsigned int pair)
{
	return (uint16_t)(test_base + 2 * pair);
}

/* A socket holding ip:p, the way another program would. */
static int block_port(const struct net_addr *ip, uint16_t p)
{
	struct sockaddr_storage ss;
	int len = net_addr_to_sockaddr(ip, p, &ss);
	int fd = socket(ip->family, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, (socklen_t)len), 0);
	return fd;
}

static void check_bound(const struct ports_pair *pp, const struct net_addr *ip)
{
	for (int k = 0; k < 2; k++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct net_addr got;
		uint16_t p;

		assert_true(pp->fd[k] >= 0);
		assert_int_equal(getsockname(pp->fd[k], (struct sockaddr *)&ss, &len), 0);
		assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, &got, &p), 0);
		assert_true(net_addr_equal(&got, ip));
		assert_int_equal(p, pp->rtp_port + k);
		assert_true(fcntl(pp->fd[k], F_GETFL) & O_NONBLOCK);
		assert_true(fcntl(pp->fd[k], F_GETFD) & FD_CLOEXEC);
	}
}

static void test_rejects_bad_arguments(void **state)
{
	static const struct config_port_range bad[] = {
		{ 40001, 40011 }, /* odd start */
		{ 40000, 40011 }, /* odd end */
		{ 40000, 40000 }, /* empty */
		{ 40010, 40000 }, /* reversed */
		{ 65534, 65538 }, /* past 65536 */
	};
	struct config_port_range good = { 40000, 40010 };
	struct net_addr unset = { .family = AF_UNSPEC };
	struct ports_pool *pool = (void *)1;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ports_pool_new(&pool, &test_ip, &bad[i]), -EINVAL);
		assert_null(pool);
	}
	assert_int_equal(ports_pool_new(&pool, &unset, &good), -EINVAL);
}

static void test_fifo_order_and_exhaustion(void **state)
{
	struct ports_pool *pool = pool_of(3);
	struct ports_pair pp[3], extra;
	struct ports_usage u;

	(void)state;
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(ports_take(pool, &pp[i]), 0);
		assert_int_equal(pp[i].rtp_port, port(i));
		check_bound(&pp[i], &test_ip);
	}
	assert_int_equal(ports_take(pool, &extra), -EBUSY);
	assert_int_equal(extra.fd[0], -1);
	ports_get_usage(pool, &u);
	assert_int_equal(u.free, 0);
	assert_int_equal(u.taken, 3);
	/* freed pairs queue at the tail, in the order they were freed */
	ports_release(pool, &pp[1]);
	ports_release(pool, &pp[0]);
	assert_int_equal(pp[1].fd[0], -1);
	ports_release(pool, &pp[1]); /* twice: harmless */
	assert_int_equal(ports_take(pool, &pp[1]), 0);
	assert_int_equal(pp[1].rtp_port, port(1));
	assert_int_equal(ports_take(pool, &pp[0]), 0);
	assert_int_equal(pp[0].rtp_port, port(0));
	for (unsigned int i = 0; i < 3; i++)
		ports_release(pool, &pp[i]);
	ports_get_usage(pool, &u);
	assert_int_equal(u.free, 3);
	assert_int_equal(u.taken, 0);
	ports_pool_free(pool);
}

static void test_release_goes_to_tail(void **state)
{
	struct ports_pool *pool = pool_of(4);
	struct ports_pair a, b, c;

	(void)state;
	assert_int_equal(ports_take(pool, &a), 0);
	ports_release(pool, &a);
	/* P0 went behind P1..P3 */
	assert_int_equal(ports_take(pool, &b), 0);
	assert_int_equal(b.rtp_port, port(1));
	assert_int_equal(ports_take(pool, &c), 0);
	assert_int_equal(c.rtp_port, port(2));
	ports_release(pool, &b);
	ports_release(pool, &c);
	ports_pool_free(pool);
}

static void test_bad_pairs_are_skipped_and_recycled(void **state)
{
	struct ports_pool *pool = pool_of(6);
	struct ports_pair p[4], again, none;
	struct ports_usage u;
	int block1 = block_port(&test_ip, port(1));     /* RTP of P1 */
	int block2 = block_port(&test_ip, port(2) + 1); /* RTCP of P2 */

	(void)state;
	assert_int_equal(ports_take(pool, &p[0]), 0);
	assert_int_equal(p[0].rtp_port, port(0));
	/* P1 and P2 are held elsewhere: skipped, onto the bad list */
	assert_int_equal(ports_take(pool, &p[1]), 0);
	assert_int_equal(p[1].rtp_port, port(3));
	ports_get_usage(pool, &u);
	assert_int_equal(u.bad, 2);
	assert_int_equal(u.free, 2);
	assert_int_equal(ports_take(pool, &p[2]), 0);
	assert_int_equal(p[2].rtp_port, port(4));
	/* bad (2) > free (1): the bad pairs queue again behind P5 */
	assert_int_equal(ports_take(pool, &p[3]), 0);
	assert_int_equal(p[3].rtp_port, port(5));
	ports_get_usage(pool, &u);
	assert_int_equal(u.bad, 0);
	assert_int_equal(u.free, 2);
	/* still held: bad again, and no pair left */
	assert_int_equal(ports_take(pool, &none), -EBUSY);
	ports_get_usage(pool, &u);
	assert_int_equal(u.bad, 2);
	assert_int_equal(u.free, 0);
	/* once the other program lets go, the pair is usable again */
	close(block1);
	assert_int_equal(ports_take(pool, &again), 0);
	assert_int_equal(again.rtp_port, port(1));
	check_bound(&again, &test_ip);
	close(block2);
	ports_release(pool, &again);
	for (int i = 0; i < 4; i++)
		ports_release(pool, &p[i]);
	ports_pool_free(pool);
}

static void test_take_specific(void **state)
{
	struct ports_pool *pool = pool_of(4);
	struct ports_pair sp, pp[3], x;
	int block;

	(void)state;
	assert_int_equal(ports_take_specific(pool, port(2), &sp), 0);
	assert_int_equal(sp.rtp_port, port(2));
	check_bound(&sp, &test_ip);
	assert_int_equal(ports_take_specific(pool, port(2), &x), -EBUSY);
	assert_int_equal(ports_take_specific(pool, port(2) + 1, &x), -EINVAL);
	assert_int_equal(ports_take_specific(pool, port(4), &x), -EINVAL);
	assert_int_equal(ports_take_specific(pool, port(0) - 2, &x), -EINVAL);
	/* the queue skips the pair taken out of its middle */
	assert_int_equal(ports_take(pool, &pp[0]), 0);
	assert_int_equal(pp[0].rtp_port, port(0));
	assert_int_equal(ports_take(pool, &pp[1]), 0);
	assert_int_equal(pp[1].rtp_port, port(1));
	assert_int_equal(ports_take(pool, &pp[2]), 0);
	assert_int_equal(pp[2].rtp_port, port(3));
	assert_int_equal(ports_take(pool, &x), -EBUSY);
	/* a pair held elsewhere: the bind error, and the pair is bad */
	ports_release(pool, &pp[0]);
	block = block_port(&test_ip, port(0));
	assert_int_equal(ports_take_specific(pool, port(0), &x), -EADDRINUSE);
	close(block);
	assert_int_equal(ports_take_specific(pool, port(0), &x), 0);
	ports_release(pool, &x);
	ports_release(pool, &sp);
	ports_release(pool, &pp[1]);
	ports_release(pool, &pp[2]);
	ports_pool_free(pool);
}

static void test_ipv6_relay_ip(void **state)
{
	struct config_port_range r = range_of(2);
	struct ports_pool *pool;
	struct ports_pair pp;
	struct net_addr lo6;
	int fd = socket(AF_INET6, SOCK_DGRAM, 0);

	(void)state;
	if (fd < 0) {
		skip();
		return;
	}
	close(fd);
	assert_int_equal(net_addr_parse("::1", &lo6), 0);
	assert_int_equal(ports_pool_new(&pool, &lo6, &r), 0);
	assert_int_equal(ports_take(pool, &pp), 0);
	assert_int_equal(pp.rtp_port, port(0));
	check_bound(&pp, &lo6);
	assert_true(net_addr_equal(ports_relay_ip(pool), &lo6));
	ports_release(pool, &pp);
	ports_pool_free(pool);
}

static void test_raise_nofile_limit(void **state)
{
	struct config_port_range r = { 10000, 10000 + 2 * 600 };
	struct rlimit old, now;
	rlim_t need = 1200 + PORTS_NOFILE_MARGIN, want;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	now = old;
	now.rlim_cur = 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &now), 0);
	assert_int_equal(ports_raise_nofile_limit(&r), 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
	want = old.rlim_max != RLIM_INFINITY && old.rlim_max < need ? old.rlim_max : need;
	assert_true(now.rlim_cur >= want);
	/* never lowered */
	assert_int_equal(ports_raise_nofile_limit(&(struct config_port_range){ 10000, 10002 }), 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	assert_true(old.rlim_cur >= want);
}

/* A hard limit too low for the range: new pairs stop at what the limit
 * allows, with -EBUSY (D1), before any bind fails with EMFILE; restored
 * pairs are not refused. */
static void test_pairs_capped_by_nofile(void **state)
{
	struct ports_pool *pool = pool_of(100);
	struct ports_pair pp[6], extra;
	struct rlimit old, low;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(ports_pool_limit_by_nofile(pool), 0); /* the test's limit suffices */
	low = old;
	low.rlim_cur = PORTS_NOFILE_MARGIN + 2 * 5;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_int_equal(ports_pool_limit_by_nofile(pool), 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(ports_take(pool, &pp[i]), 0);
	assert_int_equal(ports_take(pool, &pp[5]), -EBUSY);
	assert_int_equal(ports_take_specific(pool, port(99), &extra), 0);
	ports_release(pool, &extra);
	ports_release(pool, &pp[0]);
	assert_int_equal(ports_take(pool, &pp[0]), 0);
	for (int i = 0; i < 5; i++)
		ports_release(pool, &pp[i]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	ports_pool_free(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rejects_bad_arguments),
		cmocka_unit_test(test_fifo_order_and_exhaustion),
		cmocka_unit_test(test_release_goes_to_tail),
		cmocka_unit_test(test_bad_pairs_are_skipped_and_recycled),
		cmocka_unit_test(test_take_specific),
		cmocka_unit_test(test_ipv6_relay_ip),
		cmocka_unit_test(test_raise_nofile_limit),
		cmocka_unit_test(test_pairs_capped_by_nofile),
	};

	return cmocka_run_group_tests_name("ports", tests, setup, NULL);
}
