/* flood: the benchmark's UDP sender. Sends fixed-size datagrams to one
 * destination with sendmmsg, as fast as it can or at a given rate, for a
 * duration or a count. With --rtp every datagram starts with an RTP header
 * (sequence number, timestamp advancing 160 per packet as G.711 at 20 ms)
 * followed by a bench stamp that sink.c reads: magic, stream id, 64-bit
 * sequence number and the CLOCK_MONOTONIC send time in ns.
 *
 *   flood --to IP:PORT [--bind IP:PORT] [--size BYTES] [--rate PPS]
 *         [--duration S] [--count N] [--rtp] [--stream ID] [--pt PT]
 *         [--batch N]
 *
 * --size is the UDP payload (default 172: G.711 20 ms plus RTP header);
 * --rate 0 (default) means unlimited. Without --duration and --count it
 * runs until SIGTERM/SIGINT. SIGUSR1 prints a snapshot line
 *   snap t_ns=T sent=N bytes=B errors=E
 * (t_ns is CLOCK_MONOTONIC); at the end it prints
 *   done sent=N bytes=B errors=E elapsed_ns=T
 * bytes are UDP payload bytes; errors counts sendmmsg calls that failed
 * (a full veth ring or an ICMP error on the connected socket: the packets
 * of that call count as not sent). Pin it with taskset. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "bench_util.h"
#include "net.h"

#define FLOOD_MAX_BATCH		256
#define FLOOD_MAX_SIZE		1472	/* one unfragmented datagram on a 1500 MTU */
#define FLOOD_RTP_HEADER	12
#define FLOOD_RTP_TS_STEP	160	/* G.711 samples per 20 ms */
#define FLOOD_SSRC		0x6d70626eu
/* How far a rate-limited sender may fall behind before it stops catching
 * up in bursts and restarts its schedule from now. */
#define FLOOD_MAX_LAG_NS	(100 * 1000000ull)

/* The stamp after the RTP header; sink.c keeps the same layout. Host byte
 * order: sender and receiver share the machine and its CLOCK_MONOTONIC. */
#define BENCH_STAMP_MAGIC	0x4d50424eu	/* "MPBN" */
struct bench_stamp {
	uint32_t magic;
	uint32_t stream;	/* --stream: which flow this is */
	uint64_t seq;		/* 0, 1, 2, ... per flow */
	uint64_t send_ns;	/* CLOCK_MONOTONIC when its batch was sent */
};

struct flood_opts {
	struct sockaddr_storage bind, to;
	socklen_t bind_len, to_len;
	long size, batch, pt;
	uint32_t stream;
	double rate, duration;
	unsigned long long count;
	bool rtp, have_bind, have_to;
};

struct flood_counts {
	unsigned long long sent, bytes, errors;
};

static int parse_opts(int argc, char **argv, struct flood_opts *o)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, 't' }, { "bind", required_argument, NULL, 'b' },
		{ "size", required_argument, NULL, 's' }, { "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' }, { "count", required_argument, NULL, 'c' },
		{ "rtp", no_argument, NULL, 'R' }, { "stream", required_argument, NULL, 'i' },
		{ "pt", required_argument, NULL, 'p' }, { "batch", required_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*o = (struct flood_opts){ .size = 172, .batch = 64, .pt = 0 };
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (parse_endpoint(optarg, &o->to, &o->to_len))
				return -1;
			o->have_to = true;
			break;
		case 'b':
			if (parse_endpoint(optarg, &o->bind, &o->bind_len))
				return -1;
			o->have_bind = true;
			break;
		case 's': o->size = atol(optarg); break;
		case 'r': o->rate = atof(optarg); break;
		case 'd': o->duration = atof(optarg); break;
		case 'c': o->count = strtoull(optarg, NULL, 10); break;
		case 'R': o->rtp = true; break;
		case 'i': o->stream = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'p': o->pt = atol(optarg); break;
		case 'B': o->batch = atol(optarg); break;
		default: return -1;
		}
	}
	if (!o->have_to || o->size < 1 || o->size > FLOOD_MAX_SIZE || o->rate < 0 ||
	    o->batch < 1 || o->batch > FLOOD_MAX_BATCH || o->pt < 0 || o->pt > 127)
		return -1;
	if (o->rtp && o->size < FLOOD_RTP_HEADER + (long)sizeof(struct bench_stamp))
		return -1;
	return 0;
}

static int open_socket(const struct flood_opts *o)
{
	int fd = socket(o->to.ss_family, SOCK_DGRAM, 0), one = 1, sndbuf = 4 << 20;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Root can go past wmem_max; a deep socket buffer keeps the
	 * sender from blocking on its own completions. */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));
	if ((o->have_bind && bind(fd, (const struct sockaddr *)&o->bind, o->bind_len)) ||
	    connect(fd, (const struct sockaddr *)&o->to, o->to_len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Writes the RTP header and stamp of packet number seq into buf. */
static void stamp_packet(uint8_t *buf, const struct flood_opts *o, uint64_t seq,
			 uint64_t send_ns)
{
	struct bench_stamp st = {
		.magic = BENCH_STAMP_MAGIC, .stream = o->stream, .seq = seq, .send_ns = send_ns,
	};
	uint16_t seq16 = htons((uint16_t)seq);
	uint32_t ts = htonl((uint32_t)(seq * FLOOD_RTP_TS_STEP)), ssrc = htonl(FLOOD_SSRC + o->stream);

	buf[0] = 0x80;			/* version 2, no padding/extension/CSRC */
	buf[1] = (uint8_t)o->pt;	/* marker clear */
	memcpy(buf + 2, &seq16, 2);
	memcpy(buf + 4, &ts, 4);
	memcpy(buf + 8, &ssrc, 4);
	memcpy(buf + FLOOD_RTP_HEADER, &st, sizeof(st));
}

static void print_snap(const char *what, const struct flood_counts *c, uint64_t t_ns)
{
	printf("%s t_ns=%llu sent=%llu bytes=%llu errors=%llu\n", what,
	       (unsigned long long)t_ns, c->sent, c->bytes, c->errors);
}

/* Sends one batch of n packets starting at sequence number seq; returns
 * how many the kernel took. */
static int send_batch(int fd, const struct flood_opts *o, uint8_t *bufs,
		      struct mmsghdr *msgs, int n, uint64_t seq)
{
	if (o->rtp) {
		uint64_t t = now_ns();

		for (int i = 0; i < n; i++)
			stamp_packet(bufs + (size_t)i * (size_t)o->size, o, seq + (uint64_t)i, t);
	}
	return sendmmsg(fd, msgs, (unsigned int)n, 0);
}

/* With a rate: sleeps until the next batch is due; a sender that fell far
 * behind (descheduled) restarts its schedule rather than bursting. */
static void pace(uint64_t *next_ns, uint64_t step_ns)
{
	uint64_t now = now_ns();
	struct timespec ts;

	if (now > *next_ns + FLOOD_MAX_LAG_NS)
		*next_ns = now;
	if (*next_ns > now) {
		ts.tv_sec = (time_t)(*next_ns / 1000000000ull);
		ts.tv_nsec = (long)(*next_ns % 1000000000ull);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	*next_ns += step_ns;
}

static void flood_loop(int fd, const struct flood_opts *o, uint8_t *bufs,
		       struct mmsghdr *msgs, struct flood_counts *c)
{
	uint64_t start = now_ns(), next = start, step = 0, seq = 0;
	uint64_t end = o->duration > 0 ? start + (uint64_t)(o->duration * 1e9) : UINT64_MAX;
	long batch = o->batch;

	if (o->rate > 0) {
		/* About one batch per millisecond, so pacing stays smooth. */
		batch = (long)(o->rate / 1000.0);
		batch = batch < 1 ? 1 : batch > o->batch ? o->batch : batch;
		step = (uint64_t)((double)batch * 1e9 / o->rate);
	}
	while (!stop_flag) {
		unsigned long long left = o->count ? o->count - c->sent : (unsigned long long)batch;
		int n = (int)(left < (unsigned long long)batch ? left : (unsigned long long)batch), got;

		if (snap_flag) {
			snap_flag = 0;
			print_snap("snap", c, now_ns());
		}
		if (n == 0 || (o->duration > 0 && now_ns() >= end))
			break;
		if (step)
			pace(&next, step);
		got = send_batch(fd, o, bufs, msgs, n, seq);
		if (got < 0) {
			c->errors++;
			if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED &&
			    errno != EINTR) {
				perror("flood: sendmmsg");
				break;
			}
			continue;
		}
		seq += (uint64_t)got;
		c->sent += (unsigned long long)got;
		c->bytes += (unsigned long long)got * (unsigned long long)o->size;
	}
}

int main(int argc, char **argv)
{
	struct flood_opts o;
	struct flood_counts c = { 0 };
	struct mmsghdr *msgs = NULL;
	struct iovec *iov = NULL;
	uint8_t *bufs = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t start;
	int fd, rc = 1;

	if (parse_opts(argc, argv, &o)) {
		fprintf(stderr, "usage: flood --to IP:PORT [--bind IP:PORT] [--size BYTES] "
				"[--rate PPS] [--duration S] [--count N] [--rtp] [--stream ID] "
				"[--pt PT] [--batch N<=%d]\n", FLOOD_MAX_BATCH);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* No SA_RESTART: a signal ends a blocking sendmmsg or sleep at once. */
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fd = open_socket(&o);
	if (fd < 0) {
		perror("flood: socket");
		return 1;
	}
	bufs = calloc((size_t)o.batch, (size_t)o.size);
	iov = calloc((size_t)o.batch, sizeof(*iov));
	msgs = calloc((size_t)o.batch, sizeof(*msgs));
	if (!bufs || !iov || !msgs)
		goto out;
	for (long i = 0; i < o.batch; i++) {
		iov[i].iov_base = bufs + (size_t)i * (size_t)o.size;
		iov[i].iov_len = (size_t)o.size;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	start = now_ns();
	flood_loop(fd, &o, bufs, msgs, &c);
	printf("done sent=%llu bytes=%llu errors=%llu elapsed_ns=%llu\n", c.sent, c.bytes,
	       c.errors, (unsigned long long)(now_ns() - start));
	rc = 0;
out:
	free(msgs);
	free(iov);
	free(bufs);
	close(fd);
	return rc;
}
