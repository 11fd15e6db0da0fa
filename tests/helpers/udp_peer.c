/* udp_peer: a phone's media socket for the netns tests. Sends numbered
 * RTP-like datagrams, or receives them and reports how many arrived, from
 * which sources, and whether every payload arrived intact.
 *
 *   udp_peer send --bind IP:PORT --to IP:PORT --count N [--size BYTES]
 *                 [--interval-us U] [--freebind] [--pt PT]
 *   udp_peer recv --bind IP:PORT [--count N] [--timeout-ms T]
 *   udp_peer talk --bind IP:PORT --to IP:PORT --count N [--expect M]
 *                 [--delay-ms D] ...
 *
 * send prints "sent=N bytes=B"; recv prints "ready", then one line:
 * packets=N bytes=B bad=M sources=IP:PORT[,IP:PORT...] span_ms=T (bytes
 * are UDP payload bytes; IPv6 addresses are written [addr]:port; T is the
 * time from the first to the last packet). talk is a phone
 * with symmetric RTP: it sends and receives on one socket, as latching
 * expects, and prints both lines after receiving M packets or the timeout.
 * Without --interval-us, send uses sendmmsg in batches (load tests). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

#define RTP_HEADER 12
#define MAX_SOURCES 8

struct options {
	struct sockaddr_storage bind, to;
	socklen_t bind_len, to_len;
	long count, size, interval_us, timeout_ms, expect, delay_ms;
	int payload_type;
	bool freebind, have_to;
};

static int parse_endpoint(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct net_endpoint ep;
	struct net_addr addr;
	int n;

	if (net_endpoint_parse(s, 0, 0, &ep) || ep.port == 0 || net_addr_parse(ep.host, &addr))
		return -1;
	n = net_addr_to_sockaddr(&addr, ep.port, ss);
	if (n < 0)
		return -1;
	*len = (socklen_t)n;
	return 0;
}

static void fill_payload(uint8_t *buf, long size, uint16_t seq, int pt)
{
	buf[0] = 0x80;
	buf[1] = (uint8_t)pt;
	buf[2] = seq >> 8;
	buf[3] = seq & 0xff;
	memset(buf + 4, 0, 4);            /* timestamp */
	memcpy(buf + 8, "\x12\x34\x56\x78", 4); /* ssrc */
	for (long i = RTP_HEADER; i < size; i++)
		buf[i] = (uint8_t)(seq + i);
}

static bool payload_intact(const uint8_t *buf, long size)
{
	uint16_t seq;

	if (size < RTP_HEADER || buf[0] != 0x80)
		return false;
	seq = (uint16_t)(buf[2] << 8 | buf[3]);
	for (long i = RTP_HEADER; i < size; i++)
		if (buf[i] != (uint8_t)(seq + i))
			return false;
	return true;
}

static int open_socket(const struct options *o)
{
	int one = 1, fd = socket(o->bind.ss_family, SOCK_DGRAM, 0);

	if (fd < 0)
		return -1;
	if (o->freebind) {
		int level = o->bind.ss_family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
		int name = o->bind.ss_family == AF_INET ? IP_FREEBIND : IPV6_FREEBIND;

		setsockopt(fd, level, name, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&o->bind, o->bind_len)) {
		perror("udp_peer: bind");
		close(fd);
		return -1;
	}
	return fd;
}

#define SEND_BATCH 64

/* Back-to-back sending for load: sendmmsg in batches of SEND_BATCH. */
static int send_batched(const struct options *o, int fd)
{
	static uint8_t bufs[SEND_BATCH][2048];
	struct mmsghdr msgs[SEND_BATCH];
	struct iovec iov[SEND_BATCH];
	long sent = 0;

	memset(msgs, 0, sizeof(msgs));
	while (sent < o->count) {
		int n = o->count - sent < SEND_BATCH ? (int)(o->count - sent) : SEND_BATCH, done;

		for (int i = 0; i < n; i++) {
			fill_payload(bufs[i], o->size, (uint16_t)(sent + i), o->payload_type);
			iov[i] = (struct iovec){ bufs[i], (size_t)o->size };
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = (void *)&o->to;
			msgs[i].msg_hdr.msg_namelen = o->to_len;
		}
		done = sendmmsg(fd, msgs, (unsigned)n, 0);
		if (done < 0) {
			if (errno == ECONNREFUSED || errno == ENOBUFS || errno == EAGAIN)
				continue;
			perror("udp_peer: sendmmsg");
			return 1;
		}
		sent += done;
	}
	printf("sent=%ld bytes=%ld\n", sent, sent * o->size);
	return 0;
}

static int do_send(const struct options *o, int fd)
{
	uint8_t buf[65536];
	long sent = 0, bytes = 0;

	if (!o->interval_us && o->size <= 2048)
		return send_batched(o, fd);
	for (long i = 0; i < o->count; i++) {
		fill_payload(buf, o->size, (uint16_t)i, o->payload_type);
		if (sendto(fd, buf, o->size, 0, (struct sockaddr *)&o->to, o->to_len) < 0) {
			if (errno == ECONNREFUSED)  /* ICMP from an earlier packet */
				continue;
			perror("udp_peer: sendto");
			return 1;
		}
		sent++;
		bytes += o->size;
		if (o->interval_us)
			usleep(o->interval_us);
	}
	printf("sent=%ld bytes=%ld\n", sent, bytes);
	return 0;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Receives until `expect` packets (0: until the timeout) and prints the
 * summary line. */
static int receive_loop(const struct options *o, int fd, long expect)
{
	char sources[MAX_SOURCES][NET_ADDRPORT_STRLEN];
	long packets = 0, bytes = 0, bad = 0, deadline = now_ms() + o->timeout_ms;
	long first_ms = 0, last_ms = 0;
	int nsources = 0;
	uint8_t buf[65536];

	while ((expect == 0 || packets < expect) && now_ms() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		struct net_addr addr;
		char name[NET_ADDRPORT_STRLEN];
		uint16_t port;
		ssize_t n;
		int i;

		if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
			continue;
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
		if (n < 0)
			continue;
		last_ms = now_ms();
		if (!packets)
			first_ms = last_ms;
		packets++;
		bytes += n;
		if (!payload_intact(buf, n))
			bad++;
		if (net_addr_from_sockaddr((struct sockaddr *)&from, &addr, &port) ||
		    net_addr_port_format(&addr, port, name, sizeof(name)))
			snprintf(name, sizeof(name), "?");
		for (i = 0; i < nsources && strcmp(sources[i], name); i++)
			;
		if (i == nsources && nsources < MAX_SOURCES)
			snprintf(sources[nsources++], sizeof(sources[0]), "%s", name);
	}
	printf("packets=%ld bytes=%ld bad=%ld sources=", packets, bytes, bad);
	for (int i = 0; i < nsources; i++)
		printf("%s%s", i ? "," : "", sources[i]);
	printf(" span_ms=%ld\n", last_ms - first_ms);
	return 0;
}

static int do_recv(const struct options *o, int fd)
{
	printf("ready\n");
	fflush(stdout);
	return receive_loop(o, fd, o->count);
}

/* Sends with the pacing asked for, then collects what came back. The
 * socket buffers what arrives while sending. */
static int do_talk(const struct options *o, int fd)
{
	int size = 4 << 20;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	/* Bound now: let the other phone bind too before media starts, as
	 * real phones listen before they send. */
	if (o->delay_ms)
		usleep((useconds_t)o->delay_ms * 1000);
	if (do_send(o, fd))
		return 1;
	return receive_loop(o, fd, o->expect);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "bind", required_argument, NULL, 'b' }, { "to", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'c' }, { "size", required_argument, NULL, 's' },
		{ "interval-us", required_argument, NULL, 'i' },
		{ "timeout-ms", required_argument, NULL, 'w' },
		{ "pt", required_argument, NULL, 'p' }, { "freebind", no_argument, NULL, 'f' },
		{ "expect", required_argument, NULL, 'e' },
		{ "delay-ms", required_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	struct options o = { .count = 0, .size = 172, .timeout_ms = 3000 };
	const char *mode = argc > 1 ? argv[1] : "";
	int opt, fd, rc;

	optind = 2;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b': if (parse_endpoint(optarg, &o.bind, &o.bind_len)) goto usage; break;
		case 't': if (parse_endpoint(optarg, &o.to, &o.to_len)) goto usage; o.have_to = true; break;
		case 'c': o.count = atol(optarg); break;
		case 's': o.size = atol(optarg); break;
		case 'i': o.interval_us = atol(optarg); break;
		case 'w': o.timeout_ms = atol(optarg); break;
		case 'p': o.payload_type = atoi(optarg) & 0x7f; break;
		case 'f': o.freebind = true; break;
		case 'e': o.expect = atol(optarg); break;
		case 'D': o.delay_ms = atol(optarg); break;
		default: goto usage;
		}
	}
	if (!o.bind_len || o.size < RTP_HEADER || o.size > 65000)
		goto usage;
	if (!strcmp(mode, "send") && o.have_to && o.count > 0) {
		fd = open_socket(&o);
		rc = fd < 0 ? 1 : do_send(&o, fd);
	} else if (!strcmp(mode, "talk") && o.have_to && o.count > 0) {
		fd = open_socket(&o);
		rc = fd < 0 ? 1 : do_talk(&o, fd);
	} else if (!strcmp(mode, "recv")) {
		fd = open_socket(&o);
		rc = fd < 0 ? 1 : do_recv(&o, fd);
	} else {
		goto usage;
	}
	if (fd >= 0)
		close(fd);
	return rc;
usage:
	fprintf(stderr, "usage: udp_peer send --bind IP:PORT --to IP:PORT --count N [--size B] "
			"[--interval-us U] [--freebind] [--pt PT]\n"
			"       udp_peer recv --bind IP:PORT [--count N] [--timeout-ms T]\n"
			"       udp_peer talk --bind IP:PORT --to IP:PORT --count N [--expect M] "
			"[--timeout-ms T] [--interval-us U] [--size B] [--delay-ms D]\n");
	return 2;
}
