/* rtp_load: the realistic-load generator of `make bench` (issue 7, part 2).
 *
 * One process per side of the relay (phone a, phone b). Each one sends the
 * RTP of its side of N calls at 50 packets/s (G.711, 20 ms: a 12-byte RTP
 * header and 160 bytes of audio = 172-byte UDP payload) to the relay port
 * facing it, and receives the other side's RTP of the same calls, which
 * the relay forwards. A map file gives one call per line:
 * "LOCAL_PORT RELAY_PORT".
 *
 * Design, and why:
 *  - Sending: one AF_PACKET socket on the side's interface that writes whole
 *    Ethernet frames (our IPv4 and UDP headers, full UDP checksum since the
 *    test bed turns tx checksum offload off and the XDP path updates
 *    checksums incrementally) with sendmmsg() in batches of at most
 *    RL_BATCH and PACKET_QDISC_BYPASS. One socket serves every call: 8,000
 *    calls x 50 pps = 400 kpps per side would not fit one core as one
 *    sendto() per packet on 8,000 UDP sockets, and no UDP socket is bound, so
 *    the ports need not be free. A frame the device refuses (the relay's
 *    ingress queue is full: veth drops, sendmmsg reports ENOBUFS) counts as
 *    offered and lost: that is the relay host not keeping up.
 *  - Pacing: call i of N sends at offset i * 20 ms / N within each 20 ms slot,
 *    so the load is even; the loop sleeps (ppoll, 1 us timer slack) until
 *    the next packet is due but at least --tick-us, and then sends whatever
 *    is due. Sleeping, not spinning: on 2 cores a spinning generator would
 *    take the CPU the relay needs. Packets that leave more than 1 ms after
 *    their slot are counted as "late" (the generator, not the relay, fell
 *    behind); a late generator sends at most RL_BURST frames between two
 *    reads of its RX ring and its CPU samples.
 *  - Payload: RTP v2, PT 0, per-call SSRC, sequence and timestamp (+160 per
 *    packet), then a magic, the CLOCK_MONOTONIC send time in ns (taken as
 *    the frame is built, right before its sendmmsg batch), the call index
 *    and a flag for "measured" packets, then A-law silence.
 *  - Receiving: an AF_PACKET TPACKET_V3 RX ring (ETH_P_ALL, so it sees the
 *    frame before the ingress hooks; PACKET_IGNORE_OUTGOING, so our own
 *    frames are not copied back). The kernel stamps every frame as it
 *    enters the ring; that CLOCK_REALTIME stamp minus (REALTIME -
 *    MONOTONIC), which NTP slewing does not change, is the receive time, so
 *    the latency does not include how late this loop reads the ring.
 *    load.sh drops the frames afterwards with an nftables netdev ingress
 *    rule, so no ICMP port-unreachable goes back and no socket is needed.
 *  - Measurement: a warm-up (latching, the backend taking over, caches)
 *    whose packets are not measured, then the measured window: packets
 *    due in it carry the flag, so sent and received counts cover the same
 *    packets however long they take; the receiver keeps reading for a
 *    grace period after the window (what comes later counts as lost).
 *    Latency = receive time - send time (same host, same clock), in a
 *    histogram of 1 us buckets up to 10 ms, 100 us up to 1 s, 10 ms up to
 *    10 s; percentiles are bucket middles. Jitter is RFC 3550's
 *    interarrival estimator per stream, J += (|D| - J) / 16, with D the
 *    change in transit time, the sender's clock being the payload's send
 *    time rather than the 125 us RTP clock, so the generator's own pacing
 *    error is not counted as relay jitter.
 *  - CPU: at the window's start and end the process samples /proc/stat
 *    (idle time of all CPUs and of each; busy = wall - idle, exact under
 *    nohz), its own CPU time, and the run time (/proc/PID/task/TID/schedstat)
 *    of the processes or threads named with --watch NAME=PID; `report`
 *    merges both sides: relay CPU = host busy - both generators - watched
 *    threads named rx* (the receivers' NAPI threads), over the window, in
 *    % of one core.
 *  - Drops: --netdev-of PID samples, at the same instants, the drop
 *    counters of the devices in PID's network namespace (the relay's). A
 *    veth counts a frame its peer's full ring refused as its own tx drop,
 *    so the relay's devices' tx drops are frames a receiving phone could
 *    not take in time: the test bed's loss, which `report` gives apart
 *    from the relay's (relay_loss_pct = loss_pct - phone_drop_pct).
 *
 *   rtp_load now                          print CLOCK_MONOTONIC ns
 *   rtp_load run --ifname IF --src-ip IP --dst-mac MAC --relay-ip IP
 *                --map FILE --out FILE --start-at NS [--pps 50] [--size 172]
 *                [--warmup-ms 1500] [--duration-ms 5000] [--grace-ms 300]
 *                [--tick-us 100] [--ring-mb 32] [--ssrc-seed N]
 *                [--watch NAME=TID]... [--netdev-of PID]
 *   rtp_load report A.out B.out           one JSON object on stdout
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RL_BATCH 16              /* frames per sendmmsg: small, so stamps stay close */
#define RL_BURST 256             /* frames sent before the ring is read again */
#define RL_MAX_CALLS 32768
#define RL_RTP_HDR 12
#define RL_MAGIC 0x4d504c44u     /* "MPLD" */
#define RL_FLAG_MEASURED 1u
#define RL_HIST_FINE 10000       /* 1 us buckets below 10 ms */
#define RL_HIST_COARSE 9900      /* 100 us buckets from 10 ms to 1 s */
#define RL_HIST_SLOW 900         /* 10 ms buckets from 1 s to 10 s; then one for the rest */
#define RL_HIST_N (RL_HIST_FINE + RL_HIST_COARSE + RL_HIST_SLOW + 1)
#define RL_LATE_NS 1000000
#define RL_MAX_WATCH 8
#define RL_MAX_CPUS 64
#define RL_MAX_DEVS 8
#define RL_NS ((uint64_t)1000000000)

/* What follows the RTP header in every packet, network byte order. */
struct rl_stamp {
	uint32_t magic;
	uint32_t send_hi, send_lo;  /* CLOCK_MONOTONIC ns */
	uint32_t call;
	uint32_t flags;
};

struct rl_call {
	uint16_t local_port, relay_port;
	uint32_t ssrc;
	uint16_t seq;
	uint32_t rtp_ts;
	/* receive side: the other direction of the same call */
	uint64_t rx_packets;
	uint64_t rx_reordered;
	int32_t last_seq;           /* -1: none yet */
	int64_t last_transit;
	double jitter_ns;
	bool have_transit;
};

struct rl_cpu_sample {
	uint64_t mono_ns;
	uint64_t idle[RL_MAX_CPUS + 1];  /* /proc/stat idle + iowait ticks: [0] all, [1 + n] cpu n */
	uint64_t self_ns;
	uint64_t watch_ns[RL_MAX_WATCH];
	unsigned int ndev;          /* devices of --netdev-of's namespace */
	char dev[RL_MAX_DEVS][IF_NAMESIZE];
	uint64_t dev_drops[RL_MAX_DEVS][2]; /* rx, tx */
};

struct rl {
	/* options */
	char ifname[IF_NAMESIZE];
	struct in_addr src_ip, relay_ip;
	uint8_t src_mac[6], dst_mac[6];
	unsigned int pps, size, tick_us, ring_mb;
	uint64_t warmup_ns, duration_ns, grace_ns, start_at;
	uint32_t ssrc_seed;
	const char *map_path, *out_path;
	unsigned int nwatch;
	char *watch_name[RL_MAX_WATCH];
	int watch_tid[RL_MAX_WATCH];
	int netdev_pid;             /* 0: none */
	/* state */
	int ifindex, tx_fd, rx_fd;
	struct rl_call *calls;
	unsigned int ncalls;
	int32_t *port_call;         /* local port -> call index, -1 */
	uint16_t ip_id;
	uint8_t *ring;
	size_t ring_len, block_size;
	unsigned int block_nr, block_cur;
	int64_t real_minus_mono;
	/* counters */
	uint64_t sent, tx_dropped, late, max_late_ns, unmeasured_sent;
	uint64_t rx_measured, rx_unmeasured, rx_foreign, rx_negative, rx_ring_drops;
	uint64_t hist[RL_HIST_N];
	struct rl_cpu_sample cpu[2];
	unsigned int ncpu;
	bool cpu_taken[2];
};

static uint64_t rl_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * RL_NS + (uint64_t)ts.tv_nsec;
}

static uint64_t rl_now(void)
{
	return rl_clock(CLOCK_MONOTONIC);
}

/* REALTIME - MONOTONIC, the REALTIME read between two MONOTONIC ones. */
static int64_t rl_real_minus_mono(void)
{
	int64_t best = 0;
	uint64_t best_span = UINT64_MAX;

	for (int i = 0; i < 5; i++) {
		uint64_t m1 = rl_now(), r = rl_clock(CLOCK_REALTIME), m2 = rl_now();

		if (m2 - m1 < best_span) {
			best_span = m2 - m1;
			best = (int64_t)r - (int64_t)(m1 + (m2 - m1) / 2);
		}
	}
	return best;
}

/* --- checksums ---------------------------------------------------------- */

static uint32_t rl_sum(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;

	for (; len > 1; len -= 2, p += 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t rl_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* --- the frame ------------------------------------------------------------ */

static size_t rl_frame_len(const struct rl *rl)
{
	return sizeof(struct ether_header) + sizeof(struct iphdr) + sizeof(struct udphdr) +
	       rl->size;
}

static void rl_put32(uint8_t *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static void rl_build(struct rl *rl, struct rl_call *c, unsigned int idx, bool measured,
		     uint8_t *frame)
{
	struct ether_header *eth = (struct ether_header *)frame;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct udphdr *udp = (struct udphdr *)(ip + 1);
	uint8_t *rtp = (uint8_t *)(udp + 1);
	uint16_t udp_len = (uint16_t)(sizeof(*udp) + rl->size);
	uint64_t now;
	uint32_t sum;

	memcpy(eth->ether_dhost, rl->dst_mac, 6);
	memcpy(eth->ether_shost, rl->src_mac, 6);
	eth->ether_type = htons(ETHERTYPE_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0xb8;  /* EF, as phones mark voice */
	ip->tot_len = htons((uint16_t)(sizeof(*ip) + udp_len));
	ip->id = htons(rl->ip_id++);
	ip->frag_off = htons(IP_DF);
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->check = 0;
	ip->saddr = rl->src_ip.s_addr;
	ip->daddr = rl->relay_ip.s_addr;
	ip->check = htons(rl_fold(rl_sum(ip, sizeof(*ip), 0)));
	udp->source = htons(c->local_port);
	udp->dest = htons(c->relay_port);
	udp->len = htons(udp_len);
	udp->check = 0;

	rtp[0] = 0x80;  /* version 2, no padding, extension or CSRC */
	rtp[1] = 0;     /* PT 0 (PCMU), no marker */
	rtp[2] = (uint8_t)(c->seq >> 8);
	rtp[3] = (uint8_t)c->seq;
	rl_put32(rtp + 4, c->rtp_ts);
	rl_put32(rtp + 8, c->ssrc);
	c->seq++;
	c->rtp_ts += 8000 / rl->pps;

	now = rl_now();
	uint8_t *st = rtp + RL_RTP_HDR;
	rl_put32(st, RL_MAGIC);
	rl_put32(st + 4, (uint32_t)(now >> 32));
	rl_put32(st + 8, (uint32_t)now);
	rl_put32(st + 12, idx);
	rl_put32(st + 16, measured ? RL_FLAG_MEASURED : 0);

	/* pseudo header + UDP header + payload */
	sum = rl_sum(&ip->saddr, 8, 0);
	sum += IPPROTO_UDP + udp_len;
	sum = rl_sum(udp, udp_len, sum);
	udp->check = htons(rl_fold(sum));
	if (!udp->check)
		udp->check = 0xffff;
}

/* --- sending -------------------------------------------------------------- */

struct rl_tx {
	uint8_t frames[RL_BATCH][2048];
	struct iovec iov[RL_BATCH];
	struct mmsghdr msgs[RL_BATCH];
	struct sockaddr_ll to;
	unsigned int n;
};

static int rl_flush(struct rl *rl, struct rl_tx *tx)
{
	unsigned int done = 0;

	while (done < tx->n) {
		int r = sendmmsg(rl->tx_fd, tx->msgs + done, tx->n - done, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ENOBUFS && errno != EAGAIN)
				return -errno;
			r = 0;
		}
		done += (unsigned int)r;
		if (done < tx->n) {
			/* The device refused this one (a full veth ring): offered, lost. */
			rl->tx_dropped++;
			done++;
		}
	}
	tx->n = 0;
	return 0;
}

/* --- receiving ------------------------------------------------------------ */

static unsigned int rl_hist_bucket(int64_t ns)
{
	uint64_t us = (uint64_t)ns / 1000;

	if (us < RL_HIST_FINE)
		return (unsigned int)us;
	if (us < 1000000)
		return RL_HIST_FINE + (unsigned int)((us - RL_HIST_FINE) / 100);
	us = (us - 1000000) / 10000;
	return us < RL_HIST_SLOW ? RL_HIST_FINE + RL_HIST_COARSE + (unsigned int)us : RL_HIST_N - 1;
}

/* The middle of bucket b, in us. */
static double rl_hist_value(unsigned int b)
{
	if (b < RL_HIST_FINE)
		return b + 0.5;
	if (b < RL_HIST_FINE + RL_HIST_COARSE)
		return RL_HIST_FINE + (b - RL_HIST_FINE) * 100.0 + 50.0;
	if (b < RL_HIST_N - 1)
		return 1000000 + (b - RL_HIST_FINE - RL_HIST_COARSE) * 10000.0 + 5000.0;
	return 10000000;  /* 10 s or more */
}

static uint32_t rl_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

static void rl_receive(struct rl *rl, const uint8_t *frame, uint32_t len, int64_t rx_ns)
{
	const struct ether_header *eth = (const void *)frame;
	const struct iphdr *ip = (const void *)(eth + 1);
	const struct udphdr *udp;
	const uint8_t *rtp;
	size_t ihl;

	if (len < sizeof(*eth) + sizeof(*ip) || eth->ether_type != htons(ETHERTYPE_IP))
		return;
	ihl = (size_t)ip->ihl * 4;
	if (ip->protocol != IPPROTO_UDP || ip->daddr != rl->src_ip.s_addr ||
	    len < sizeof(*eth) + ihl + sizeof(*udp) + RL_RTP_HDR + sizeof(struct rl_stamp))
		return;
	udp = (const void *)((const uint8_t *)ip + ihl);
	rtp = (const uint8_t *)(udp + 1);
	int32_t idx = rl->port_call[ntohs(udp->dest)];
	const uint8_t *st = rtp + RL_RTP_HDR;

	if (idx < 0 || rl_get32(st) != RL_MAGIC || rl_get32(st + 12) != (uint32_t)idx) {
		rl->rx_foreign++;
		return;
	}
	if (!(rl_get32(st + 16) & RL_FLAG_MEASURED)) {
		rl->rx_unmeasured++;
		return;
	}

	struct rl_call *c = &rl->calls[idx];
	uint64_t sent_ns = (uint64_t)rl_get32(st + 4) << 32 | rl_get32(st + 8);
	int64_t transit = rx_ns - (int64_t)sent_ns;
	int32_t seq = rtp[2] << 8 | rtp[3];

	rl->rx_measured++;
	c->rx_packets++;
	if (transit < 0) {
		rl->rx_negative++;
		transit = 0;
	}
	rl->hist[rl_hist_bucket(transit)]++;
	if (c->have_transit) {
		int64_t d = transit - c->last_transit;

		c->jitter_ns += ((double)(d < 0 ? -d : d) - c->jitter_ns) / 16.0;
	}
	c->last_transit = transit;
	c->have_transit = true;
	if (c->last_seq >= 0 && (int16_t)(seq - c->last_seq) <= 0)
		c->rx_reordered++;
	else
		c->last_seq = seq;
}

static void rl_drain(struct rl *rl)
{
	for (;;) {
		struct tpacket_block_desc *bd =
			(void *)(rl->ring + (size_t)rl->block_cur * rl->block_size);

		if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) &
		      TP_STATUS_USER))
			return;
		struct tpacket3_hdr *ph = (void *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);

		for (uint32_t i = 0; i < bd->hdr.bh1.num_pkts; i++) {
			int64_t real = (int64_t)ph->tp_sec * (int64_t)RL_NS + ph->tp_nsec;

			rl_receive(rl, (uint8_t *)ph + ph->tp_mac, ph->tp_snaplen,
				   real - rl->real_minus_mono);
			ph = (void *)((uint8_t *)ph + ph->tp_next_offset);
		}
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		rl->block_cur = (rl->block_cur + 1) % rl->block_nr;
	}
}

/* --- sockets -------------------------------------------------------------- */

static int rl_open(struct rl *rl)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	struct ifreq ifr = { 0 };
	int one = 1, v3 = TPACKET_V3, sndbuf = 16 << 20;

	rl->ifindex = (int)if_nametoindex(rl->ifname);
	if (!rl->ifindex)
		return -errno;
	rl->tx_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	rl->rx_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (rl->tx_fd < 0 || rl->rx_fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", rl->ifname);
	if (ioctl(rl->tx_fd, SIOCGIFHWADDR, &ifr) < 0)
		return -errno;
	memcpy(rl->src_mac, ifr.ifr_hwaddr.sa_data, 6);
	if (setsockopt(rl->tx_fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
		return -errno;
	if (setsockopt(rl->tx_fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
		setsockopt(rl->tx_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

	/* RX: a TPACKET_V3 ring of 128 KiB blocks, handed over when full or
	 * after 2 ms, whichever comes first. */
	struct tpacket_req3 req = { 0 };

	rl->block_size = 128 << 10;
	rl->block_nr = (unsigned int)(((size_t)rl->ring_mb << 20) / rl->block_size);
	req.tp_block_size = (unsigned int)rl->block_size;
	req.tp_block_nr = rl->block_nr;
	req.tp_frame_size = 2048;
	req.tp_frame_nr = (unsigned int)(rl->block_size / 2048) * rl->block_nr;
	req.tp_retire_blk_tov = 2;
	if (setsockopt(rl->rx_fd, SOL_PACKET, PACKET_VERSION, &v3, sizeof(v3)) < 0 ||
	    setsockopt(rl->rx_fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0 ||
	    setsockopt(rl->rx_fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
		return -errno;
	rl->ring_len = rl->block_size * rl->block_nr;
	rl->ring = mmap(NULL, rl->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			rl->rx_fd, 0);
	if (rl->ring == MAP_FAILED)
		return -errno;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = rl->ifindex;
	if (bind(rl->rx_fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		return -errno;
	return 0;
}

static uint64_t rl_ring_drops(struct rl *rl)
{
	struct tpacket_stats_v3 st = { 0 };
	socklen_t len = sizeof(st);

	if (getsockopt(rl->rx_fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0)
		return 0;
	return st.tp_drops;  /* since the last read: reading resets it */
}

/* --- CPU ------------------------------------------------------------------ */

/* Idle + iowait ticks, all CPUs and each. Busy time is taken as wall time
 * minus these: nohz keeps idle time exactly, while the busy fields of
 * /proc/stat are only sampled at the tick. */
static unsigned int rl_proc_stat(uint64_t idle[RL_MAX_CPUS + 1])
{
	unsigned long long v[5];
	char line[512];
	unsigned int n = 0, cpu;
	FILE *f = fopen("/proc/stat", "r");

	memset(idle, 0, sizeof(uint64_t) * (RL_MAX_CPUS + 1));
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f) && !strncmp(line, "cpu", 3)) {
		if (line[3] == ' ' && sscanf(line + 3, "%llu %llu %llu %llu %llu", &v[0], &v[1],
					     &v[2], &v[3], &v[4]) == 5) {
			idle[0] = v[3] + v[4];
		} else if (sscanf(line, "cpu%u %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2],
				  &v[3], &v[4]) == 6 && cpu < RL_MAX_CPUS) {
			idle[1 + cpu] = v[3] + v[4];
			if (cpu + 1 > n)
				n = cpu + 1;
		}
	}
	fclose(f);
	return n;
}

/* Drop counters of the devices in pid's network namespace (a veth counts
 * a frame its peer's full ring refused as its own tx drop). */
static void rl_netdev(int pid, struct rl_cpu_sample *s)
{
	char path[64], line[512], name[IF_NAMESIZE + 1];
	unsigned long long v[12];
	FILE *f;

	s->ndev = 0;
	snprintf(path, sizeof(path), "/proc/%d/net/dev", pid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && s->ndev < RL_MAX_DEVS) {
		char *colon = strchr(line, ':');

		if (!colon)
			continue;
		*colon = ' ';
		if (sscanf(line, "%16s %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   name, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
			   &v[9], &v[10], &v[11]) != 13 || !strcmp(name, "lo"))
			continue;
		snprintf(s->dev[s->ndev], IF_NAMESIZE, "%.*s", IF_NAMESIZE - 1, name);
		s->dev_drops[s->ndev][0] = v[3];   /* rx drop */
		s->dev_drops[s->ndev][1] = v[11];  /* tx drop */
		s->ndev++;
	}
	fclose(f);
}

/* Run time in ns of every thread of process (or thread) `pid`, from
 * schedstat: exact, unlike the 10 ms ticks of /proc/PID/stat. */
static uint64_t rl_schedstat(int pid)
{
	char path[300];
	unsigned long long ns, sum = 0;
	struct dirent *de;
	DIR *dir;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", pid, de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		fclose(f);
	}
	closedir(dir);
	return sum;
}

static void rl_cpu_take(struct rl *rl, int which)
{
	struct rl_cpu_sample *s = &rl->cpu[which];

	s->mono_ns = rl_now();
	rl->ncpu = rl_proc_stat(s->idle);
	s->self_ns = rl_clock(CLOCK_PROCESS_CPUTIME_ID);
	for (unsigned int i = 0; i < rl->nwatch; i++)
		s->watch_ns[i] = rl_schedstat(rl->watch_tid[i]);
	if (rl->netdev_pid)
		rl_netdev(rl->netdev_pid, s);
	rl->cpu_taken[which] = true;
}

/* --- the run -------------------------------------------------------------- */

static int rl_load_map(struct rl *rl)
{
	FILE *f = fopen(rl->map_path, "r");
	unsigned int local, relay;

	if (!f)
		return -errno;
	rl->calls = calloc(RL_MAX_CALLS, sizeof(*rl->calls));
	rl->port_call = malloc(65536 * sizeof(*rl->port_call));
	if (!rl->calls || !rl->port_call) {
		fclose(f);
		return -ENOMEM;
	}
	memset(rl->port_call, 0xff, 65536 * sizeof(*rl->port_call));
	srandom(rl->ssrc_seed);
	while (rl->ncalls < RL_MAX_CALLS && fscanf(f, "%u %u", &local, &relay) == 2) {
		struct rl_call *c = &rl->calls[rl->ncalls];

		if (!local || local > 65535 || !relay || relay > 65535 ||
		    rl->port_call[local] >= 0) {
			fclose(f);
			return -EINVAL;
		}
		c->local_port = (uint16_t)local;
		c->relay_port = (uint16_t)relay;
		c->ssrc = (uint32_t)random() ^ (uint32_t)random() << 16;
		c->seq = (uint16_t)random();
		c->rtp_ts = (uint32_t)random();
		c->last_seq = -1;
		rl->port_call[local] = (int32_t)rl->ncalls++;
	}
	fclose(f);
	return rl->ncalls ? 0 : -EINVAL;
}

static int rl_run(struct rl *rl)
{
	static struct rl_tx tx;
	uint64_t period = RL_NS / rl->pps;
	uint64_t t0 = rl->start_at, t_meas = t0 + rl->warmup_ns;
	uint64_t t_end = t_meas + rl->duration_ns, t_stop = t_end + rl->grace_ns;
	uint64_t slot = 0;          /* the 20 ms slot of the next packet */
	unsigned int next = 0;      /* the call of the next packet */
	struct pollfd pfd = { .fd = rl->rx_fd, .events = POLLIN };
	bool sending = true;
	int err;

	tx.to.sll_family = AF_PACKET;
	tx.to.sll_protocol = htons(ETH_P_IP);
	tx.to.sll_ifindex = rl->ifindex;
	tx.to.sll_halen = 6;
	memcpy(tx.to.sll_addr, rl->dst_mac, 6);
	for (unsigned int i = 0; i < RL_BATCH; i++) {
		tx.iov[i].iov_base = tx.frames[i];
		tx.iov[i].iov_len = rl_frame_len(rl);
		tx.msgs[i].msg_hdr.msg_iov = &tx.iov[i];
		tx.msgs[i].msg_hdr.msg_iovlen = 1;
		tx.msgs[i].msg_hdr.msg_name = &tx.to;
		tx.msgs[i].msg_hdr.msg_namelen = sizeof(tx.to);
	}
	rl->real_minus_mono = rl_real_minus_mono();

	for (;;) {
		uint64_t now = rl_now(), due = 0;

		if (!rl->cpu_taken[0] && now >= t_meas) {
			rl_cpu_take(rl, 0);
			rl_ring_drops(rl);  /* reset: count the window's drops only */
		}
		if (!rl->cpu_taken[1] && now >= t_end)
			rl_cpu_take(rl, 1);
		/* A bounded burst: a generator that fell behind still reads
		 * its ring and takes its samples between bursts. */
		unsigned int budget = RL_BURST;

		while (sending && budget--) {
			due = t0 + slot * period + (uint64_t)next * period / rl->ncalls;
			if (due >= t_end) {
				sending = false;
				break;
			}
			if (due > now)
				break;
			bool measured = due >= t_meas;

			if (measured) {
				uint64_t late = now - due;

				rl->sent++;
				if (late > RL_LATE_NS)
					rl->late++;
				if (late > rl->max_late_ns)
					rl->max_late_ns = late;
			} else {
				rl->unmeasured_sent++;
			}
			rl_build(rl, &rl->calls[next], next, measured, tx.frames[tx.n++]);
			if (tx.n == RL_BATCH && (err = rl_flush(rl, &tx)))
				return err;
			if (++next == rl->ncalls) {
				next = 0;
				slot++;
			}
			now = rl_now();
		}
		if (tx.n && (err = rl_flush(rl, &tx)))
			return err;
		rl_drain(rl);
		now = rl_now();
		if (now >= t_stop)
			break;
		if (sending && due <= now)
			continue;  /* behind: no sleep */

		uint64_t wake = sending ? due : t_stop, wait;

		if (rl->cpu_taken[1] == false && wake > t_end)
			wake = t_end;
		wait = wake > now ? wake - now : 0;
		if (wait < (uint64_t)rl->tick_us * 1000)
			wait = (uint64_t)rl->tick_us * 1000;
		struct timespec ts = { (time_t)(wait / RL_NS), (long)(wait % RL_NS) };

		if (ppoll(&pfd, 1, &ts, NULL) < 0 && errno != EINTR)
			return -errno;
	}
	rl_drain(rl);
	rl->rx_ring_drops = rl_ring_drops(rl);
	if (!rl->cpu_taken[1])
		rl_cpu_take(rl, 1);
	return 0;
}

static int rl_write(struct rl *rl)
{
	FILE *f = fopen(rl->out_path, "w");
	long hz = sysconf(_SC_CLK_TCK);

	if (!f)
		return -errno;
	fprintf(f, "calls %u\nsent %" PRIu64 "\ntx_dropped %" PRIu64 "\nlate %" PRIu64
		"\nmax_late_ns %" PRIu64 "\nrx %" PRIu64 "\nrx_unmeasured %" PRIu64
		"\nrx_foreign %" PRIu64 "\nrx_negative %" PRIu64 "\nrx_ring_drops %" PRIu64 "\n",
		rl->ncalls, rl->sent, rl->tx_dropped, rl->late, rl->max_late_ns, rl->rx_measured,
		rl->rx_unmeasured, rl->rx_foreign, rl->rx_negative, rl->rx_ring_drops);
	uint64_t window = rl->cpu[1].mono_ns - rl->cpu[0].mono_ns, tick = RL_NS / (uint64_t)hz;

	fprintf(f, "window_ns %" PRIu64 "\nself_ns %" PRIu64 "\nncpu %u\n", window,
		rl->cpu[1].self_ns - rl->cpu[0].self_ns, rl->ncpu);
	for (unsigned int c = 0; c <= rl->ncpu; c++) {
		uint64_t idle = (rl->cpu[1].idle[c] - rl->cpu[0].idle[c]) * tick;
		uint64_t wall = c ? window : window * rl->ncpu;

		if (c)
			fprintf(f, "cpu_busy_ns %u %" PRIu64 "\n", c - 1, wall > idle ? wall - idle : 0);
		else
			fprintf(f, "stat_busy_ns %" PRIu64 "\n", wall > idle ? wall - idle : 0);
	}
	for (unsigned int i = 0; i < rl->nwatch; i++)
		fprintf(f, "watch %s %" PRIu64 "\n", rl->watch_name[i],
			rl->cpu[1].watch_ns[i] - rl->cpu[0].watch_ns[i]);
	for (unsigned int i = 0; i < rl->cpu[1].ndev; i++)
		for (unsigned int j = 0; j < rl->cpu[0].ndev; j++)
			if (!strcmp(rl->cpu[1].dev[i], rl->cpu[0].dev[j]))
				fprintf(f, "netdev %s %" PRIu64 " %" PRIu64 "\n", rl->cpu[1].dev[i],
					rl->cpu[1].dev_drops[i][0] - rl->cpu[0].dev_drops[j][0],
					rl->cpu[1].dev_drops[i][1] - rl->cpu[0].dev_drops[j][1]);
	uint64_t reordered = 0;

	for (unsigned int i = 0; i < rl->ncalls; i++)
		reordered += rl->calls[i].rx_reordered;
	fprintf(f, "rx_reordered %" PRIu64 "\n", reordered);
	for (unsigned int b = 0; b < RL_HIST_N; b++)
		if (rl->hist[b])
			fprintf(f, "h %u %" PRIu64 "\n", b, rl->hist[b]);
	for (unsigned int i = 0; i < rl->ncalls; i++)
		if (rl->calls[i].rx_packets > 1)
			fprintf(f, "j %.0f\n", rl->calls[i].jitter_ns);
	fprintf(f, "end\n");
	if (fclose(f))
		return -errno;
	return 0;
}

static int rl_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int m[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)m[i];
	return 0;
}

static int rl_main_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ifname", required_argument, NULL, 'i' },
		{ "src-ip", required_argument, NULL, 's' },
		{ "relay-ip", required_argument, NULL, 'r' },
		{ "dst-mac", required_argument, NULL, 'm' },
		{ "map", required_argument, NULL, 'M' },
		{ "out", required_argument, NULL, 'o' },
		{ "start-at", required_argument, NULL, 'S' },
		{ "pps", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 'z' },
		{ "warmup-ms", required_argument, NULL, 'w' },
		{ "duration-ms", required_argument, NULL, 'd' },
		{ "grace-ms", required_argument, NULL, 'g' },
		{ "tick-us", required_argument, NULL, 't' },
		{ "ring-mb", required_argument, NULL, 'R' },
		{ "ssrc-seed", required_argument, NULL, 'x' },
		{ "watch", required_argument, NULL, 'W' },
		{ "netdev-of", required_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	static struct rl rl;
	bool have_mac = false;
	char *eq;
	int opt, err;

	rl.pps = 50;
	rl.size = 172;
	rl.tick_us = 100;
	rl.ring_mb = 32;
	rl.warmup_ns = 1500 * 1000000ull;
	rl.duration_ns = 5000 * 1000000ull;
	rl.grace_ns = 300 * 1000000ull;
	rl.tx_fd = rl.rx_fd = -1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'i': snprintf(rl.ifname, sizeof(rl.ifname), "%s", optarg); break;
		case 's': if (inet_pton(AF_INET, optarg, &rl.src_ip) != 1) goto usage; break;
		case 'r': if (inet_pton(AF_INET, optarg, &rl.relay_ip) != 1) goto usage; break;
		case 'm': if (rl_parse_mac(optarg, rl.dst_mac)) goto usage; have_mac = true; break;
		case 'M': rl.map_path = optarg; break;
		case 'o': rl.out_path = optarg; break;
		case 'S': rl.start_at = strtoull(optarg, NULL, 10); break;
		case 'p': rl.pps = (unsigned int)atoi(optarg); break;
		case 'z': rl.size = (unsigned int)atoi(optarg); break;
		case 'w': rl.warmup_ns = strtoull(optarg, NULL, 10) * 1000000ull; break;
		case 'd': rl.duration_ns = strtoull(optarg, NULL, 10) * 1000000ull; break;
		case 'g': rl.grace_ns = strtoull(optarg, NULL, 10) * 1000000ull; break;
		case 't': rl.tick_us = (unsigned int)atoi(optarg); break;
		case 'R': rl.ring_mb = (unsigned int)atoi(optarg); break;
		case 'N': rl.netdev_pid = atoi(optarg); break;
		case 'x': rl.ssrc_seed = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'W':
			eq = strchr(optarg, '=');
			if (!eq || rl.nwatch == RL_MAX_WATCH)
				goto usage;
			*eq = '\0';
			rl.watch_name[rl.nwatch] = optarg;
			rl.watch_tid[rl.nwatch++] = atoi(eq + 1);
			break;
		default: goto usage;
		}
	}
	if (!rl.ifname[0] || !rl.src_ip.s_addr || !rl.relay_ip.s_addr || !have_mac ||
	    !rl.map_path || !rl.out_path || !rl.pps || rl.pps > 8000 || !rl.duration_ns ||
	    rl.size < RL_RTP_HDR + sizeof(struct rl_stamp) || rl.size > 1400 || rl.ring_mb < 1)
		goto usage;
	err = rl_load_map(&rl);
	if (err) {
		fprintf(stderr, "rtp_load: map %s: %s\n", rl.map_path, strerror(-err));
		return 1;
	}
	err = rl_open(&rl);
	if (err) {
		fprintf(stderr, "rtp_load: sockets on %s: %s\n", rl.ifname, strerror(-err));
		return 1;
	}
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	if (!rl.start_at)
		rl.start_at = rl_now() + 100000000ull;
	if (rl.start_at < rl_now())
		fprintf(stderr, "rtp_load: start time already passed; the first slots go late\n");
	err = rl_run(&rl);
	if (!err)
		err = rl_write(&rl);
	if (err) {
		fprintf(stderr, "rtp_load: %s\n", strerror(-err));
		return 1;
	}
	return 0;
usage:
	fprintf(stderr, "usage: rtp_load run --ifname IF --src-ip IP --relay-ip IP --dst-mac MAC "
			"--map FILE --out FILE [--start-at MONO_NS] [--pps 50] [--size 172] "
			"[--warmup-ms 1500] [--duration-ms 5000] [--grace-ms 300] [--tick-us 100] "
			"[--ring-mb 32] [--ssrc-seed N] [--watch NAME=TID]... [--netdev-of PID]\n"
			"       rtp_load report A.out B.out\n       rtp_load now\n");
	return 2;
}

/* --- report: both sides into one JSON object --------------------------- */

struct rl_side {
	uint64_t calls, sent, tx_dropped, late, max_late_ns, rx, rx_unmeasured, rx_foreign,
		rx_negative, rx_ring_drops, rx_reordered;
	uint64_t window_ns, stat_busy_ns, self_ns, ncpu;
	uint64_t cpu_busy_ns[RL_MAX_CPUS];
	uint64_t netdev_tx_drops;
	unsigned int nwatch;
	char watch_name[RL_MAX_WATCH][32];
	uint64_t watch_ns[RL_MAX_WATCH];
	bool complete;
};

static uint64_t rl_report_hist[RL_HIST_N];
static double *rl_report_jitter;
static size_t rl_report_njitter, rl_report_jcap;

static int rl_read_side(const char *path, struct rl_side *s)
{
	static const struct { const char *key; size_t off; } keys[] = {
#define RL_KEY(k) { #k, offsetof(struct rl_side, k) }
		RL_KEY(calls), RL_KEY(sent), RL_KEY(tx_dropped), RL_KEY(late),
		RL_KEY(max_late_ns), RL_KEY(rx), RL_KEY(rx_unmeasured), RL_KEY(rx_foreign),
		RL_KEY(rx_negative), RL_KEY(rx_ring_drops), RL_KEY(rx_reordered),
		RL_KEY(window_ns), RL_KEY(stat_busy_ns), RL_KEY(self_ns), RL_KEY(ncpu),
#undef RL_KEY
	};
	char line[256], key[32], name[32];
	unsigned long long a, b;
	double d;
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	memset(s, 0, sizeof(*s));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "h %llu %llu", &a, &b) == 2 && a < RL_HIST_N) {
			rl_report_hist[a] += b;
		} else if (sscanf(line, "j %lf", &d) == 1) {
			if (rl_report_njitter == rl_report_jcap) {
				size_t cap = rl_report_jcap ? rl_report_jcap * 2 : 4096;
				double *grown = realloc(rl_report_jitter, cap * sizeof(*grown));

				if (!grown) {
					fclose(f);
					return -ENOMEM;
				}
				rl_report_jitter = grown;
				rl_report_jcap = cap;
			}
			rl_report_jitter[rl_report_njitter++] = d;
		} else if (sscanf(line, "netdev %31s %llu %llu", name, &a, &b) == 3) {
			s->netdev_tx_drops += b;
		} else if (sscanf(line, "cpu_busy_ns %llu %llu", &a, &b) == 2) {
			if (a < RL_MAX_CPUS)
				s->cpu_busy_ns[a] = b;
		} else if (sscanf(line, "watch %31s %llu", name, &a) == 2) {
			if (s->nwatch < RL_MAX_WATCH) {
				snprintf(s->watch_name[s->nwatch], sizeof(s->watch_name[0]), "%s", name);
				s->watch_ns[s->nwatch++] = a;
			}
		} else if (!strcmp(line, "end\n")) {
			s->complete = true;
		} else if (sscanf(line, "%31s %llu", key, &a) == 2) {
			for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
				if (!strcmp(key, keys[i].key))
					*(uint64_t *)((char *)s + keys[i].off) = a;
		}
	}
	fclose(f);
	return s->complete ? 0 : -EINVAL;
}

static double rl_hist_pct(const uint64_t *hist, uint64_t total, double q)
{
	uint64_t want = (uint64_t)(q * (double)total), seen = 0;

	if (!total)
		return -1;
	if (want >= total)
		want = total - 1;
	for (unsigned int b = 0; b < RL_HIST_N; b++) {
		seen += hist[b];
		if (seen > want)
			return rl_hist_value(b);
	}
	return rl_hist_value(RL_HIST_N - 1);
}

static unsigned int rl_hist_top(const uint64_t *hist)
{
	unsigned int top = RL_HIST_N - 1;

	while (top && !hist[top])
		top--;
	return top;
}

static int rl_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double rl_sorted_pct(const double *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n);

	if (!n)
		return -1;
	return v[i < n ? i : n - 1];
}

/* A number, or null when it could not be measured (negative). */
static void rl_num(const char *key, double v, int decimals, const char *sep)
{
	if (v < 0)
		printf("\"%s\": null%s", key, sep);
	else
		printf("\"%s\": %.*f%s", key, decimals, v, sep);
}

static int rl_main_report(int argc, char **argv)
{
	struct rl_side a, b;
	int err;

	if (argc != 3) {
		fprintf(stderr, "usage: rtp_load report A.out B.out\n");
		return 2;
	}
	if ((err = rl_read_side(argv[1], &a)) || (err = rl_read_side(argv[2], &b))) {
		fprintf(stderr, "rtp_load report: %s\n", strerror(-err));
		return 1;
	}
	uint64_t sent = a.sent + b.sent, rx = a.rx + b.rx, total = 0;

	for (unsigned int i = 0; i < RL_HIST_N; i++)
		total += rl_report_hist[i];
	qsort(rl_report_jitter, rl_report_njitter, sizeof(double), rl_cmp_double);

	/* CPU over side a's window; each generator's own CPU over its own
	 * (both windows start and end at the same agreed times). */
	double win = (double)a.window_ns, rx_napi = 0, lab = 0, relay_napi = 0;

	for (unsigned int i = 0; i < a.nwatch; i++) {
		if (!strncmp(a.watch_name[i], "rx", 2))
			rx_napi += (double)a.watch_ns[i];
		else if (!strcmp(a.watch_name[i], "relay"))
			lab += (double)a.watch_ns[i];
		else
			relay_napi += (double)a.watch_ns[i];
	}
	double gens = (double)a.self_ns + (double)b.self_ns;
	double relay = (double)a.stat_busy_ns - gens - rx_napi;
	double loss = sent ? 100.0 * (double)(sent - (rx < sent ? rx : sent)) / (double)sent : -1;
	uint64_t phone_drops = a.netdev_tx_drops + b.netdev_tx_drops + a.rx_ring_drops +
			       b.rx_ring_drops;
	double phone_pct = sent ? 100.0 * (double)phone_drops / (double)sent : -1;
	double relay_loss = loss < 0 ? -1 : loss > phone_pct ? loss - phone_pct : 0;

	printf("{");
	rl_num("loss_pct", loss, 4, ", ");
	rl_num("relay_loss_pct", relay_loss, 4, ", ");
	rl_num("phone_drop_pct", phone_pct, 4, ", ");
	printf("\"latency_us\": {");
	rl_num("p50", rl_hist_pct(rl_report_hist, total, 0.50), 1, ", ");
	rl_num("p99", rl_hist_pct(rl_report_hist, total, 0.99), 1, ", ");
	rl_num("p999", rl_hist_pct(rl_report_hist, total, 0.999), 1, ", ");
	rl_num("max", total ? rl_hist_value(rl_hist_top(rl_report_hist)) : -1, 1, "}, ");
	printf("\"jitter_us\": {");
	rl_num("p50", rl_report_njitter ?
		   rl_sorted_pct(rl_report_jitter, rl_report_njitter, 0.50) / 1000 : -1, 2, ", ");
	rl_num("p99", rl_report_njitter ?
		   rl_sorted_pct(rl_report_jitter, rl_report_njitter, 0.99) / 1000 : -1, 2, ", ");
	rl_num("max", rl_report_njitter ? rl_report_jitter[rl_report_njitter - 1] / 1000 : -1,
	       2, "}, ");
	rl_num("relay_cpu_pct", win > 0 ? 100.0 * (relay < 0 ? 0 : relay) / win : -1, 1, ", ");
	/* The same from the relay's own threads, immune to other load. */
	rl_num("relay_threads_cpu_pct", win > 0 && lab + relay_napi > 0 ?
	       100.0 * (lab + relay_napi) / win : -1, 1, ", ");
	printf("\"cpu_pct\": {");
	rl_num("host_busy", win > 0 ? 100.0 * (double)a.stat_busy_ns / win : -1, 1, ", ");
	rl_num("generators", win > 0 ? 100.0 * gens / win : -1, 1, ", ");
	rl_num("receiver_napi", win > 0 ? 100.0 * rx_napi / win : -1, 1, ", ");
	rl_num("relay_process", win > 0 && lab > 0 ? 100.0 * lab / win : -1, 1, ", ");
	rl_num("relay_napi_threads", win > 0 && relay_napi > 0 ? 100.0 * relay_napi / win : -1,
	       1, ", ");
	/* Other processes, and kernel work outside the watched threads
	 * (interrupts, wake-ups, timers): large means a disturbed run. */
	double other = (double)a.stat_busy_ns - gens - rx_napi - lab - relay_napi;

	rl_num("other", win > 0 ? 100.0 * (other < 0 ? 0 : other) / win : -1, 1, ", ");
	printf("\"per_cpu_busy\": [");
	for (uint64_t c = 0; c < a.ncpu && c < RL_MAX_CPUS; c++)
		printf("%s%.1f", c ? ", " : "", win > 0 ? 100.0 * (double)a.cpu_busy_ns[c] / win : 0);
	printf("]}, ");
	printf("\"calls\": %" PRIu64 ", \"sent\": %" PRIu64 ", \"received\": %" PRIu64
	       ", \"sent_dropped_by_relay_ingress\": %" PRIu64 ", \"phone_rx_drops\": %" PRIu64
	       ", \"receiver_ring_drops\": %" PRIu64
	       ", \"reordered\": %" PRIu64 ", \"negative_latency\": %" PRIu64
	       ", \"late_sends_pct\": %.3f, \"max_send_late_us\": %.0f, "
	       "\"window_s\": %.3f}\n",
	       a.calls, sent, rx, a.tx_dropped + b.tx_dropped, phone_drops,
	       a.rx_ring_drops + b.rx_ring_drops,
	       a.rx_reordered + b.rx_reordered, a.rx_negative + b.rx_negative,
	       sent ? 100.0 * (double)(a.late + b.late) / (double)sent : 0.0,
	       (double)(a.max_late_ns > b.max_late_ns ? a.max_late_ns : b.max_late_ns) / 1000,
	       win / 1e9);
	free(rl_report_jitter);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "now")) {
		printf("%" PRIu64 "\n", rl_now());
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return rl_main_run(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "report"))
		return rl_main_report(argc - 1, argv + 1);
	fprintf(stderr, "usage: rtp_load run|report|now ... (see the top of rtp_load.c)\n");
	return 2;
}
