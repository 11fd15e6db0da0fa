/*
 * tests/bench/xdp_prog_ns.c: ns/packet of bpf/relay.bpf.c under
 * BPF_PROG_TEST_RUN (issue 7, section 3), on the miss path, the IPv4
 * match path and the IPv6 match path.
 *
 *   xdp_prog_ns [--quick] [--spin-seconds N]
 *
 * A forwarded frame is rewritten in place and the kernel reruns the
 * program on the rewritten bytes, so each match measurement installs two
 * flows: A (the caller's packet to the relay) and B, keyed on what A
 * produces and rewriting it back into A's input. Iterations alternate
 * A, B, A, ... and every one is a full match: lookup, source check,
 * bpf_fib_lookup, devmap redirect, rewrite, counters. The TTL / hop limit
 * drops by one per iteration, so one syscall runs at most MATCH_REPEAT
 * (< 254) iterations on a fresh frame with TTL 255, and a batch is many
 * syscalls. Proof that every iteration matched: each syscall returns
 * XDP_REDIRECT with the expected output frame (TTL - MATCH_REPEAT, the
 * egress MACs, everything else as sent), and afterwards both flows'
 * packet counters and the FORWARDED stat moved by exactly the number of
 * iterations (and no other stat moved).
 *
 * The program runs in a private network namespace (unshare) with veths
 * rx0 (ingress) and tx0 (egress, in relay_tx_ports), forwarding on and
 * permanent neighbours, so bpf_fib_lookup succeeds as on a relay host.
 * The program is also attached to a veth that stays down: attached, it is
 * in the kernel's XDP dispatcher and test runs call it as a driver does
 * (unattached, every syscall with repeat > 1 re-patches the dispatcher,
 * ~30 ms). The relay loader's port range (2048..65535) is set. The figure
 * per path is the median of several batches of the kernel's own per-run
 * time (ns/packet includes the test-run loop, a few ns). --spin-seconds N
 * then keeps running the IPv4 match path for N seconds (for perf from
 * outside; Debian's bpftool has no `prog profile`).
 *
 * Prints "# " lines for people and, last, one JSON object:
 * {"match":…, "ipv6":…, "miss":…, "miss_ipv6":…, ...} (ns/packet).
 * Exits 1 when it could not measure. Needs root.
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "relay_structs.h"
#include "relay.skel.h"
/* The BPF tests' frame builder; not every helper of it is used here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../bpf/xdp_frames.h"
#pragma GCC diagnostic pop

#define MATCH_REPEAT	200	/* iterations per syscall; TTL 255 -> 55 */
#define MISS_REPEAT	100000	/* the miss path does not change the frame */
#define PORT_MIN	2048	/* as the bench relay's port_range */
#define PORT_MAX	65535

struct bench_opts {
	int batches;		/* median over this many */
	int match_calls;	/* syscalls per match batch */
	int miss_calls;		/* syscalls per miss batch */
	int spin_seconds;
};

/* Interfaces and neighbours of the private namespace. Nothing here is a
 * local address the flows use: the relay addresses (10.9.0.x) are routed
 * out of tx0 like the peers, so flow B's destination (flow A's relay
 * address) is forwardable too. */
static const char netns_script[] =
	"exec >&2; set -e\n"
	"ip link set lo up\n"
	"ip link add rx0 address 02:00:00:00:01:00 type veth peer name rx1\n"
	"ip link add tx0 address 02:00:00:00:02:00 type veth peer name tx1\n"
	"ip link add xd0 type veth peer name xd1\n"
	"for i in rx0 rx1 tx0 tx1; do ip link set $i up; done\n"
	"sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1\n"
	"for i in rx0 tx0; do\n"
	"  sysctl -qw net.ipv4.conf.$i.forwarding=1 net.ipv6.conf.$i.forwarding=1\n"
	"done\n"
	"ip addr add 10.1.0.1/24 dev rx0\n"
	"ip addr add fd00:1::1/64 dev rx0 nodad\n"
	"ip addr add 10.2.0.1/24 dev tx0\n"
	"ip addr add fd00:2::1/64 dev tx0 nodad\n"
	"ip route add 10.9.0.0/24 dev tx0\n"
	"ip route add fd00:9::/64 dev tx0\n"
	"ip neigh add 10.2.0.20 lladdr 02:00:00:00:02:99 dev tx0 nud permanent\n"
	"ip neigh add 10.9.0.1 lladdr 02:00:00:00:02:98 dev tx0 nud permanent\n"
	"ip neigh add fd00:2::20 lladdr 02:00:00:00:02:99 dev tx0 nud permanent\n"
	"ip neigh add fd00:9::1 lladdr 02:00:00:00:02:98 dev tx0 nud permanent\n";

static const uint8_t tx0_mac[6] = { 2, 0, 0, 0, 2, 0 };

static unsigned int rx_ifindex, tx_ifindex;

/* One pair of flows: A takes caller -> relay A-side to relay B-side ->
 * callee; B takes exactly that output back to A's input. */
struct flow_pair {
	int family;
	const char *caller;	uint16_t caller_port;
	const char *relay_a;	uint16_t port_a;	/* A's key */
	const char *relay_b;	uint16_t port_b;	/* A's new source */
	const char *callee;	uint16_t callee_port;	/* A's destination, B's key */
};

static const struct flow_pair pair_v4 = {
	AF_INET, "10.1.0.7", 7000, "10.9.0.1", 40000, "10.9.0.2", 40002,
	"10.2.0.20", 30000,
};

static const struct flow_pair pair_v6 = {
	AF_INET6, "fd00:1::7", 7000, "fd00:9::1", 40000, "fd00:9::2", 40002,
	"fd00:2::20", 30000,
};

/* ---- helpers ------------------------------------------------------------ */

static void addr_mapped(int family, const char *s, uint8_t out[16])
{
	memset(out, 0, 16);
	if (family == AF_INET6) {
		inet_pton(AF_INET6, s, out);
		return;
	}
	out[10] = 0xff;
	out[11] = 0xff;
	inet_pton(AF_INET, s, out + 12);
}

static uint8_t family_code(int family)
{
	return family == AF_INET ? RELAY_FAMILY_INET : RELAY_FAMILY_INET6;
}

static void key_of(int family, const char *addr, uint16_t port,
		   struct relay_flow_key *k)
{
	memset(k, 0, sizeof(*k));
	addr_mapped(family, addr, k->addr);
	k->port = htons(port);
	k->family = family_code(family);
}

/* key (addr:port) <- from src:sport, rewritten to new_src:nport -> dst:dport */
static int flow_put(struct relay_bpf *skel, int family, const char *addr, uint16_t port,
		    const char *src, uint16_t sport, const char *new_src, uint16_t nport,
		    const char *dst, uint16_t dport)
{
	struct relay_flow_value v;
	struct relay_flow_key k;

	key_of(family, addr, port, &k);
	memset(&v, 0, sizeof(v));
	addr_mapped(family, src, v.src_addr);
	addr_mapped(family, new_src, v.new_src_addr);
	addr_mapped(family, dst, v.dst_addr);
	v.src_port = htons(sport);
	v.new_src_port = htons(nport);
	v.dst_port = htons(dport);
	v.family = family_code(family);
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.relay_flows), &k, &v, BPF_ANY))
		return -errno;
	return 0;
}

static int pair_install(struct relay_bpf *skel, const struct flow_pair *p)
{
	int err;

	err = flow_put(skel, p->family, p->relay_a, p->port_a, p->caller, p->caller_port,
		       p->relay_b, p->port_b, p->callee, p->callee_port);
	if (!err)
		err = flow_put(skel, p->family, p->callee, p->callee_port, p->relay_b,
			       p->port_b, p->caller, p->caller_port, p->relay_a, p->port_a);
	return err;
}

static uint64_t flow_packets(struct relay_bpf *skel, int family, const char *addr,
			     uint16_t port)
{
	struct relay_flow_value v;
	struct relay_flow_key k;

	key_of(family, addr, port, &k);
	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.relay_flows), &k, &v))
		return UINT64_MAX;
	return v.packets;
}

/* Packets per reason, summed over CPUs. */
static int stats_read(struct relay_bpf *skel, uint64_t out[RELAY_STAT_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	struct relay_stat *per_cpu;

	if (ncpu <= 0)
		return -EINVAL;
	per_cpu = calloc((size_t)ncpu, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	for (__u32 r = 0; r < RELAY_STAT_MAX; r++) {
		out[r] = 0;
		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.relay_stats), &r, per_cpu)) {
			free(per_cpu);
			return -errno;
		}
		for (int c = 0; c < ncpu; c++)
			out[r] += per_cpu[c].packets;
	}
	free(per_cpu);
	return 0;
}

/* Only `reason` moved, by exactly `n`. */
static int stats_check(const uint64_t a[RELAY_STAT_MAX], const uint64_t b[RELAY_STAT_MAX],
		       unsigned int reason, uint64_t n)
{
	for (unsigned int r = 0; r < RELAY_STAT_MAX; r++) {
		uint64_t want = r == reason ? n : 0;

		if (b[r] - a[r] != want) {
			printf("# stat %u moved by %llu, want %llu\n", r,
			       (unsigned long long)(b[r] - a[r]), (unsigned long long)want);
			return -1;
		}
	}
	return 0;
}

static int test_run(struct relay_bpf *skel, const struct frame *f, uint8_t *out,
		    __u32 repeat, __u32 *retval, __u32 *out_len, __u32 *ns)
{
	struct xdp_md ctx = {
		.data_end = (__u32)f->len,
		.ingress_ifindex = rx_ifindex,
	};
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = f->buf,
		.data_size_in = (__u32)f->len,
		.data_out = out,
		.data_size_out = out ? FRAME_MAX : 0,
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = repeat,
	);
	int err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.relay_xdp), &opts);

	*retval = opts.retval;
	*ns = opts.duration;
	if (out_len)
		*out_len = opts.data_size_out;
	return err ? -errno : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- frames --------------------------------------------------------------- */

static void frame_of(const struct flow_pair *p, uint8_t ttl, const uint8_t *mac_src,
		     const uint8_t *mac_dst, uint16_t dport, struct frame *f)
{
	struct frame_spec s;

	memset(&s, 0, sizeof(s));
	s.family = p->family;
	s.src = p->caller;
	s.dst = p->relay_a;
	s.sport = p->caller_port;
	s.dport = dport;
	s.proto = IPPROTO_UDP;
	s.ihl = 5;
	s.ttl = ttl;
	s.payload = 172;	/* 20 ms of G.711 with its RTP header */
	s.mac_src = mac_src;
	s.mac_dst = mac_dst;
	frame_build(&s, f);
}

/* ---- the measurements --------------------------------------------------------- */

/* The median ns/packet of o->batches batches on the match path of `p`;
 * -1 when any iteration did not match. */
static double bench_match(struct relay_bpf *skel, const struct flow_pair *p,
			  const struct bench_opts *o, const char *name)
{
	struct frame in, want;
	uint8_t out[FRAME_MAX];
	uint64_t st0[RELAY_STAT_MAX], st1[RELAY_STAT_MAX];
	uint64_t a0, b0, a1, b1, iters;
	double *per = calloc((size_t)o->batches, sizeof(double));
	double res = -1;

	if (!per)
		return -1;
	frame_of(p, 255, NULL, NULL, p->port_a, &in);
	/* After an even number of iterations: A's input again, TTL lower,
	 * sent by tx0 to the neighbour of B's destination (A's relay address,
	 * 02:..:02:98). */
	frame_of(p, 255 - MATCH_REPEAT, tx0_mac, (const uint8_t[6]){ 2, 0, 0, 0, 2, 0x98 },
		 p->port_a, &want);
	if (stats_read(skel, st0))
		goto out;
	a0 = flow_packets(skel, p->family, p->relay_a, p->port_a);
	b0 = flow_packets(skel, p->family, p->callee, p->callee_port);
	for (int b = 0; b < o->batches; b++) {
		uint64_t sum = 0;

		for (int c = 0; c < o->match_calls; c++) {
			__u32 rv, len, ns;
			int err = test_run(skel, &in, out, MATCH_REPEAT, &rv, &len, &ns);

			if (err) {
				printf("# %s: BPF_PROG_TEST_RUN: %s\n", name, strerror(-err));
				goto out;
			}
			if (rv != XDP_REDIRECT || len != want.len || memcmp(out, want.buf, len)) {
				printf("# %s: verdict %u, %u bytes out: not %d full matches\n",
				       name, rv, len, MATCH_REPEAT);
				goto out;
			}
			sum += ns;
		}
		per[b] = (double)sum / o->match_calls;
	}
	iters = (uint64_t)o->batches * o->match_calls * MATCH_REPEAT;
	a1 = flow_packets(skel, p->family, p->relay_a, p->port_a);
	b1 = flow_packets(skel, p->family, p->callee, p->callee_port);
	if (stats_read(skel, st1) || stats_check(st0, st1, RELAY_STAT_FORWARDED, iters))
		goto out;
	if (a1 - a0 != iters / 2 || b1 - b0 != iters / 2) {
		printf("# %s: flow counters moved by %llu and %llu, want %llu each\n", name,
		       (unsigned long long)(a1 - a0), (unsigned long long)(b1 - b0),
		       (unsigned long long)(iters / 2));
		goto out;
	}
	res = median(per, o->batches);
	printf("# %s match path: %.1f ns/packet (median of %d batches of %d x repeat %d; "
	       "%llu iterations, all forwarded, flows +%llu/+%llu)\n", name, res,
	       o->batches, o->match_calls, MATCH_REPEAT, (unsigned long long)iters,
	       (unsigned long long)(a1 - a0), (unsigned long long)(b1 - b0));
out:
	free(per);
	return res;
}

/* The miss path: a port in range that has no flow. */
static double bench_miss(struct relay_bpf *skel, const struct flow_pair *p,
			 const struct bench_opts *o, const char *name)
{
	uint64_t st0[RELAY_STAT_MAX], st1[RELAY_STAT_MAX];
	double *per = calloc((size_t)o->batches, sizeof(double));
	struct frame in;
	double res = -1;

	if (!per)
		return -1;
	frame_of(p, 64, NULL, NULL, p->port_a + 100, &in);
	if (stats_read(skel, st0))
		goto out;
	for (int b = 0; b < o->batches; b++) {
		uint64_t sum = 0;

		for (int c = 0; c < o->miss_calls; c++) {
			__u32 rv, ns;
			int err = test_run(skel, &in, NULL, MISS_REPEAT, &rv, NULL, &ns);

			if (err || rv != XDP_PASS) {
				printf("# %s miss: error %d verdict %u\n", name, err, rv);
				goto out;
			}
			sum += ns;
		}
		per[b] = (double)sum / o->miss_calls;
	}
	if (stats_read(skel, st1) ||
	    stats_check(st0, st1, RELAY_STAT_PASS_NO_FLOW,
			(uint64_t)o->batches * o->miss_calls * MISS_REPEAT))
		goto out;
	res = median(per, o->batches);
	printf("# %s miss path: %.1f ns/packet (median of %d batches of %d x repeat %d, "
	       "all counted as no flow)\n", name, res, o->batches, o->miss_calls, MISS_REPEAT);
out:
	free(per);
	return res;
}

/* Keeps the IPv4 match path busy so a profiler can look at it. */
static void spin(struct relay_bpf *skel, int seconds)
{
	struct timespec t0, t;
	struct frame in;
	uint64_t n = 0;
	__u32 rv, ns;

	frame_of(&pair_v4, 255, NULL, NULL, pair_v4.port_a, &in);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < 1000; i++, n++)
			if (test_run(skel, &in, NULL, MATCH_REPEAT, &rv, NULL, &ns))
				return;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < seconds);
	printf("# spun %llu syscalls of repeat %d on the IPv4 match path\n",
	       (unsigned long long)n, MATCH_REPEAT);
}

/* ---- set-up ------------------------------------------------------------------- */

static int setup(struct relay_bpf **out)
{
	struct relay_bpf *skel;
	__u32 ifindex;
	int err;

	*out = NULL;
	if (unshare(CLONE_NEWNET)) {
		printf("# cannot create a network namespace: %s\n", strerror(errno));
		return -1;
	}
	if (system(netns_script) != 0) {
		printf("# namespace set-up script failed\n");
		return -1;
	}
	rx_ifindex = if_nametoindex("rx0");
	tx_ifindex = if_nametoindex("tx0");
	if (!rx_ifindex || !tx_ifindex)
		return -1;
	skel = relay_bpf__open();
	if (!skel) {
		printf("# open skeleton: %s\n", strerror(errno));
		return -1;
	}
	/* what the relay's loader does with its port_range */
	skel->rodata->relay_port_min = PORT_MIN;
	skel->rodata->relay_port_max = PORT_MAX;
	err = relay_bpf__load(skel);
	if (err) {
		printf("# load relay.bpf.o: %s\n", strerror(-err));
		relay_bpf__destroy(skel);
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		ifindex = i ? tx_ifindex : rx_ifindex;
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.relay_tx_ports), &ifindex,
					&ifindex, 0))
			goto fail;
	}
	if (pair_install(skel, &pair_v4) || pair_install(skel, &pair_v6))
		goto fail;
	/* Attached, as on a relay: the program then sits in the kernel's XDP
	 * dispatcher, so a test run with repeat > 1 does not re-patch the
	 * dispatcher (two RCU grace periods, ~30 ms per syscall here) and
	 * calls the program the way the driver does. To xd0, which stays
	 * down: no real frame (IPv6 router solicitations, MLD) may reach the
	 * program and move the stats that prove every run matched. */
	if (bpf_xdp_attach((int)if_nametoindex("xd0"), bpf_program__fd(skel->progs.relay_xdp),
			   XDP_FLAGS_DRV_MODE, NULL))
		goto fail;
	*out = skel;
	return 0;
fail:
	printf("# filling the maps: %s\n", strerror(errno));
	relay_bpf__destroy(skel);
	return -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: xdp_prog_ns [--quick] [--spin-seconds N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct bench_opts o = { .batches = 9, .match_calls = 1000, .miss_calls = 10 };
	struct relay_bpf *skel;
	double m4, m6, x4, x6;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			o.batches = 3;
			o.match_calls = 100;
			o.miss_calls = 2;
		} else if (!strcmp(argv[i], "--spin-seconds") && i + 1 < argc) {
			o.spin_seconds = atoi(argv[++i]);
		} else {
			usage();
		}
	}
	if (geteuid() != 0) {
		printf("# needs root (BPF_PROG_TEST_RUN, a network namespace)\n");
		return 1;
	}
	if (setup(&skel))
		return 1;
	x4 = bench_miss(skel, &pair_v4, &o, "IPv4");
	x6 = bench_miss(skel, &pair_v6, &o, "IPv6");
	m4 = bench_match(skel, &pair_v4, &o, "IPv4");
	m6 = bench_match(skel, &pair_v6, &o, "IPv6");
	if (o.spin_seconds > 0)
		spin(skel, o.spin_seconds);
	relay_bpf__destroy(skel);
	if (m4 < 0 || m6 < 0 || x4 < 0 || x6 < 0)
		return 1;
	printf("{\"match\": %.1f, \"ipv6\": %.1f, \"miss\": %.1f, \"miss_ipv6\": %.1f, "
	       "\"match_repeat_per_call\": %d, \"match_packets\": %llu, "
	       "\"miss_packets\": %llu}\n", m4, m6, x4, x6, MATCH_REPEAT,
	       (unsigned long long)o.batches * o.match_calls * MATCH_REPEAT,
	       (unsigned long long)o.batches * o.miss_calls * MISS_REPEAT);
	return 0;
}
