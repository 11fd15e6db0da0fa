/* sink: the benchmark's counting receiver. Binds one UDP socket, receives
 * with recvmmsg and counts packets and payload bytes, and the first and
 * last arrival (CLOCK_MONOTONIC). With --rtp it also reads flood.c's stamp
 * after the RTP header: per-stream sequence gaps (lost, reordered) and the
 * one-way latency send -> arrival (arrival time is taken once per
 * recvmmsg batch, so it is an upper bound by at most one batch's time).
 *
 *   sink --bind IP:PORT [--hello IP:PORT [--hello-count N]] [--idle-ms T]
 *        [--duration S] [--rtp] [--batch N] [--rcvbuf BYTES]
 *
 * --hello sends N (default 3) small datagrams from the bound socket before
 * counting, so a relay latches this side (symmetric RTP). It prints
 * "ready" once bound. It stops on SIGTERM/SIGINT, after --duration, or
 * T ms after the last packet once one arrived (--idle-ms; 0, the default,
 * never). SIGUSR1 prints
 *   snap t_ns=T packets=N bytes=B
 * and at the end it prints
 *   done packets=N bytes=B first_ns=F last_ns=L span_ns=S
 * plus, with --rtp: " stamped=N lost=N reordered=N lat_p50_us=.. lat_p99_us=..
 * lat_p999_us=.. lat_max_us=.." (lost: per stream, sequence numbers up
 * to the highest seen that never arrived; duplicates are not counted). */
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

#include "bench_util.h"
#include "net.h"

#define SINK_MAX_BATCH		256
#define SINK_BUF		2048
#define SINK_RTP_HEADER		12
#define SINK_MAX_STREAMS	65536	/* stream ids flood --stream may use */
#define SINK_LAT_BUCKETS	100000	/* 1 us buckets: 0..100 ms, then one overflow */
#define SINK_POLL_MS		100	/* how often a quiet socket checks the clock */

/* Same layout as flood.c's struct bench_stamp. */
#define BENCH_STAMP_MAGIC	0x4d50424eu
struct bench_stamp {
	uint32_t magic;
	uint32_t stream;
	uint64_t seq;
	uint64_t send_ns;
};

struct sink_opts {
	struct sockaddr_storage bind, hello;
	socklen_t bind_len, hello_len;
	long batch, hello_count, idle_ms, rcvbuf;
	double duration;
	bool rtp, have_bind, have_hello;
};

struct sink_stream {
	uint64_t next_seq;	/* highest seq seen + 1 (0: none yet) */
	uint64_t received;	/* stamped packets, duplicates included */
	uint64_t reordered;	/* arrived below the highest seq seen */
};

struct sink_counts {
	unsigned long long packets, bytes, stamped;
	uint64_t first_ns, last_ns;
	struct sink_stream *streams;	/* SINK_MAX_STREAMS entries, with --rtp */
	uint64_t *lat;			/* SINK_LAT_BUCKETS + 1, with --rtp */
	uint64_t lat_max_ns;
};

static int parse_opts(int argc, char **argv, struct sink_opts *o)
{
	static const struct option longopts[] = {
		{ "bind", required_argument, NULL, 'b' }, { "hello", required_argument, NULL, 'h' },
		{ "hello-count", required_argument, NULL, 'n' },
		{ "idle-ms", required_argument, NULL, 'i' },
		{ "duration", required_argument, NULL, 'd' }, { "rtp", no_argument, NULL, 'R' },
		{ "batch", required_argument, NULL, 'B' }, { "rcvbuf", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*o = (struct sink_opts){ .batch = 64, .hello_count = 3, .rcvbuf = 4 << 20 };
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			if (parse_endpoint(optarg, &o->bind, &o->bind_len))
				return -1;
			o->have_bind = true;
			break;
		case 'h':
			if (parse_endpoint(optarg, &o->hello, &o->hello_len))
				return -1;
			o->have_hello = true;
			break;
		case 'n': o->hello_count = atol(optarg); break;
		case 'i': o->idle_ms = atol(optarg); break;
		case 'd': o->duration = atof(optarg); break;
		case 'R': o->rtp = true; break;
		case 'B': o->batch = atol(optarg); break;
		case 'r': o->rcvbuf = atol(optarg); break;
		default: return -1;
		}
	}
	if (!o->have_bind || o->batch < 1 || o->batch > SINK_MAX_BATCH || o->idle_ms < 0 ||
	    o->hello_count < 0 || o->rcvbuf < 0)
		return -1;
	return 0;
}

static int open_socket(const struct sink_opts *o)
{
	struct timeval tv = { 0, SINK_POLL_MS * 1000 };
	int fd = socket(o->bind.ss_family, SOCK_DGRAM, 0), one = 1, rcvbuf = (int)o->rcvbuf;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Root may exceed rmem_max: a deep buffer rides out the receiver
	 * being descheduled, so loss means the path, not a hiccup here. */
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(fd, (const struct sockaddr *)&o->bind, o->bind_len)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void send_hellos(int fd, const struct sink_opts *o)
{
	static const char hello[] = "sink hello";
	struct timespec ms = { 0, 1000000 };

	for (long i = 0; i < o->hello_count; i++) {
		if (sendto(fd, hello, sizeof(hello), 0, (const struct sockaddr *)&o->hello,
			   o->hello_len) < 0)
			perror("sink: hello");
		nanosleep(&ms, NULL);
	}
}

static void count_stamp(struct sink_counts *c, const uint8_t *buf, size_t len, uint64_t now)
{
	struct bench_stamp st;
	struct sink_stream *s;
	uint64_t lat;

	if (len < SINK_RTP_HEADER + sizeof(st))
		return;
	memcpy(&st, buf + SINK_RTP_HEADER, sizeof(st));
	if (st.magic != BENCH_STAMP_MAGIC || st.stream >= SINK_MAX_STREAMS)
		return;
	c->stamped++;
	s = &c->streams[st.stream];
	s->received++;
	if (st.seq + 1 > s->next_seq)
		s->next_seq = st.seq + 1;
	else
		s->reordered++;
	lat = now > st.send_ns ? now - st.send_ns : 0;
	if (lat > c->lat_max_ns)
		c->lat_max_ns = lat;
	lat /= 1000;
	c->lat[lat < SINK_LAT_BUCKETS ? lat : SINK_LAT_BUCKETS]++;
}

/* The latency below which fraction q of the stamped packets arrived, us. */
static unsigned long lat_quantile(const struct sink_counts *c, double q)
{
	uint64_t want = (uint64_t)(q * (double)c->stamped), seen = 0;

	for (unsigned long i = 0; i <= SINK_LAT_BUCKETS; i++) {
		seen += c->lat[i];
		if (seen > want)
			return i;
	}
	return SINK_LAT_BUCKETS;
}

static void print_done(const struct sink_counts *c, bool rtp)
{
	printf("done packets=%llu bytes=%llu first_ns=%llu last_ns=%llu span_ns=%llu",
	       c->packets, c->bytes, (unsigned long long)c->first_ns,
	       (unsigned long long)c->last_ns,
	       (unsigned long long)(c->packets ? c->last_ns - c->first_ns : 0));
	if (rtp) {
		unsigned long long lost = 0, reordered = 0;

		for (size_t i = 0; i < SINK_MAX_STREAMS; i++) {
			const struct sink_stream *s = &c->streams[i];

			reordered += s->reordered;
			if (s->next_seq > s->received)
				lost += s->next_seq - s->received;
		}
		printf(" stamped=%llu lost=%llu reordered=%llu lat_p50_us=%lu lat_p99_us=%lu "
		       "lat_p999_us=%lu lat_max_us=%llu", c->stamped, lost, reordered,
		       lat_quantile(c, 0.5), lat_quantile(c, 0.99), lat_quantile(c, 0.999),
		       (unsigned long long)(c->lat_max_ns / 1000));
	}
	printf("\n");
}

static bool should_stop(const struct sink_opts *o, const struct sink_counts *c,
			uint64_t start, uint64_t now)
{
	if (stop_flag)
		return true;
	if (o->duration > 0 && now - start >= (uint64_t)(o->duration * 1e9))
		return true;
	return o->idle_ms && c->packets &&
	       now - c->last_ns >= (uint64_t)o->idle_ms * 1000000ull;
}

static void sink_loop(int fd, const struct sink_opts *o, struct mmsghdr *msgs,
		      uint8_t *bufs, struct sink_counts *c)
{
	uint64_t start = now_ns(), now;
	int got;

	for (;;) {
		got = recvmmsg(fd, msgs, (unsigned int)o->batch, MSG_WAITFORONE, NULL);
		now = now_ns();
		if (got > 0) {
			if (!c->packets)
				c->first_ns = now;
			c->last_ns = now;
			for (int i = 0; i < got; i++) {
				c->packets++;
				c->bytes += msgs[i].msg_len;
				if (o->rtp)
					count_stamp(c, bufs + (size_t)i * SINK_BUF,
						    msgs[i].msg_len, now);
			}
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			perror("sink: recvmmsg");
			return;
		}
		if (snap_flag) {
			snap_flag = 0;
			printf("snap t_ns=%llu packets=%llu bytes=%llu\n", (unsigned long long)now,
			       c->packets, c->bytes);
		}
		if (should_stop(o, c, start, now))
			return;
	}
}

int main(int argc, char **argv)
{
	struct sink_opts o;
	struct sink_counts c = { 0 };
	struct mmsghdr *msgs = NULL;
	struct iovec *iov = NULL;
	uint8_t *bufs = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	int fd, rc = 1;

	if (parse_opts(argc, argv, &o)) {
		fprintf(stderr, "usage: sink --bind IP:PORT [--hello IP:PORT [--hello-count N]] "
				"[--idle-ms T] [--duration S] [--rtp] [--batch N<=%d] "
				"[--rcvbuf BYTES]\n", SINK_MAX_BATCH);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* No SA_RESTART: a signal ends a blocking recvmmsg at once. */
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fd = open_socket(&o);
	if (fd < 0) {
		perror("sink: bind");
		return 1;
	}
	bufs = malloc((size_t)o.batch * SINK_BUF);
	iov = calloc((size_t)o.batch, sizeof(*iov));
	msgs = calloc((size_t)o.batch, sizeof(*msgs));
	if (o.rtp) {
		c.streams = calloc(SINK_MAX_STREAMS, sizeof(*c.streams));
		c.lat = calloc(SINK_LAT_BUCKETS + 1, sizeof(*c.lat));
	}
	if (!bufs || !iov || !msgs || (o.rtp && (!c.streams || !c.lat)))
		goto out;
	for (long i = 0; i < o.batch; i++) {
		iov[i].iov_base = bufs + (size_t)i * SINK_BUF;
		iov[i].iov_len = SINK_BUF;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	if (o.have_hello)
		send_hellos(fd, &o);
	printf("ready\n");
	sink_loop(fd, &o, msgs, bufs, &c);
	print_done(&c, o.rtp);
	rc = 0;
out:
	free(c.lat);
	free(c.streams);
	free(msgs);
	free(iov);
	free(bufs);
	close(fd);
	return rc;
}
