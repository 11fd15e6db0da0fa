/* What the bench's sender (flood.c) and receiver (sink.c) share: the
 * signal flags (TERM/INT stop, USR1 asks for a snapshot line), the clock
 * and "ip:port" parsing. Each includes it once; all static. */
#ifndef MP_BENCH_UTIL_H
#define MP_BENCH_UTIL_H

#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "net.h"

static volatile sig_atomic_t stop_flag, snap_flag;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		snap_flag = 1;
	else
		stop_flag = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int parse_endpoint(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct net_endpoint ep;
	struct net_addr addr;
	int n;

	if (net_endpoint_parse(s, 0, 0, &ep) || net_addr_parse(ep.host, &addr))
		return -1;
	n = net_addr_to_sockaddr(&addr, ep.port, ss);
	if (n < 0)
		return -1;
	*len = (socklen_t)n;
	return 0;
}

#endif
