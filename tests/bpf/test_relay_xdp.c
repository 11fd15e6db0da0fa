/*
 * tests/bpf/test_relay_xdp.c: the XDP program's decisions and rewrites,
 * byte for byte, through BPF_PROG_TEST_RUN on crafted frames.
 *
 * The process moves itself into a fresh network namespace (unshare) and
 * builds the routing the program's bpf_fib_lookup sees there: veth rx0
 * (where every test frame arrives), tx0 (a redirect target in
 * relay_tx_ports) and nd0 (routed, but not in relay_tx_ports), with
 * addresses, routes and permanent neighbour entries. The namespace and its
 * interfaces die with the process, however it ends.
 *
 * Each case checks the verdict (XDP_TX, XDP_REDIRECT or XDP_PASS), the
 * output frame against one built independently (a passed frame must be
 * the input, untouched), both checksums with a full reference
 * recomputation, the per-reason stats (summed over CPUs) and the flow
 * counters (moved only when forwarded), and that a forwarded frame left
 * where the flow's egress cache now says. The cache itself (bpf_fib_lookup
 * result per flow) is exercised by changing neighbours, routes' MTU, TOS /
 * flow label and the ingress interface between frames. Then it measures
 * the miss and match paths (the "# ... ns/packet" lines). Needs root;
 * prints TAP.
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "relay_structs.h"
#include "relay.skel.h"
#include "xdp_frames.h"

/* A clock tick is 1-10 ms (CONFIG_HZ); allow several. */
#define COARSE_LAG_NS (50ull * 1000 * 1000)

#define RTP_PAYLOAD	172	/* 20 ms of G.711 plus the RTP header */
#define BENCH_REPEAT	1000000
#define BENCH_SINGLES	200000

/* ---- TAP ---------------------------------------------------------------- */

static int tap_count;
static int tap_failed;

static void tap(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", ok ? "" : "not ", ++tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!ok)
		tap_failed++;
}

/* Failure detail as TAP comments, printed before the verdict line. */
static bool check(bool cond, const char *fmt, ...)
{
	va_list ap;

	if (cond)
		return true;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	return false;
}

/* ---- the test namespace ------------------------------------------------- */

enum port_id { PORT_RX, PORT_TX, PORT_ND, PORT_COUNT };

struct port {
	const char *name;
	uint8_t mac[6];
	bool tx_port;		/* listed in relay_tx_ports */
	unsigned int ifindex;
};

static struct port ports[PORT_COUNT] = {
	[PORT_RX] = { "rx0", { 2, 0, 0, 0, 1, 0 }, true, 0 },
	[PORT_TX] = { "tx0", { 2, 0, 0, 0, 2, 0 }, true, 0 },
	[PORT_ND] = { "nd0", { 2, 0, 0, 0, 3, 0 }, false, 0 },
};

/* Neighbours with permanent entries: the MACs a forwarded frame goes to. */
static const uint8_t neigh_rx[6] = { 2, 0, 0, 0, 1, 0x99 };
static const uint8_t neigh_tx[6] = { 2, 0, 0, 0, 2, 0x99 };
/* What the egress cache tests change a neighbour to, and a made-up MAC
 * that no lookup can return. */
static const uint8_t neigh_new[6] = { 2, 0, 0, 0, 2, 0x77 };
static const uint8_t mac_bogus[6] = { 2, 0, 0, 0, 1, 0x55 };

/* Must agree with ports[], neigh_*[] and flows[]; a disagreement fails
 * cases, it cannot make them pass. Forwarding on for all, then per
 * interface (TESTING.md: ip_forward=1 would reset the latter). */
static const char netns_script[] =
	"exec >&2; set -e\n"
	"ip link set lo up\n"
	"ip link add rx0 address 02:00:00:00:01:00 type veth peer name rx1\n"
	"ip link add tx0 address 02:00:00:00:02:00 type veth peer name tx1\n"
	"ip link add nd0 address 02:00:00:00:03:00 type veth peer name nd1\n"
	"for i in rx0 rx1 tx0 tx1 nd0 nd1; do ip link set $i up; done\n"
	"sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1\n"
	"for i in rx0 tx0 nd0; do\n"
	"  sysctl -qw net.ipv4.conf.$i.forwarding=1 net.ipv6.conf.$i.forwarding=1\n"
	"done\n"
	"ip addr add 192.0.2.1/24 dev rx0\n"
	"ip addr add 198.51.100.1/24 dev rx0\n"
	"ip addr add 2001:db8::1/64 dev rx0 nodad\n"
	"ip addr add 2001:db8:1::1/64 dev rx0 nodad\n"
	"ip addr add 203.0.113.1/24 dev tx0\n"
	"ip addr add 2001:db8:2::1/64 dev tx0 nodad\n"
	"ip addr add 100.64.3.1/24 dev nd0\n"
	"ip route add 100.64.4.0/24 dev tx0 mtu lock 100\n"
	"ip neigh add 198.51.100.9 lladdr 02:00:00:00:01:99 dev rx0 nud permanent\n"
	"ip neigh add 2001:db8:1::9 lladdr 02:00:00:00:01:99 dev rx0 nud permanent\n"
	"ip neigh add 203.0.113.20 lladdr 02:00:00:00:02:99 dev tx0 nud permanent\n"
	"ip neigh add 100.64.4.9 lladdr 02:00:00:00:02:99 dev tx0 nud permanent\n"
	"ip neigh add 2001:db8:2::9 lladdr 02:00:00:00:02:99 dev tx0 nud permanent\n"
	"ip neigh add 100.64.3.9 lladdr 02:00:00:00:03:99 dev nd0 nud permanent\n"
	/* the egress cache flows: own neighbours (the tests change them) and
	 * host routes with an MTU */
	"ip route add 203.0.113.30/32 dev tx0 mtu lock 300\n"
	"ip -6 route add 2001:db8:2::30/128 dev tx0 mtu lock 1280\n"
	"ip neigh add 203.0.113.30 lladdr 02:00:00:00:02:99 dev tx0 nud permanent\n"
	"ip neigh add 2001:db8:2::30 lladdr 02:00:00:00:02:99 dev tx0 nud permanent\n";

/* 0, or why the namespace could not be made (a skip, not a failure). */
static const char *netns_enter(void)
{
	static char why[128];

	if (unshare(CLONE_NEWNET)) {
		snprintf(why, sizeof(why), "cannot create a network namespace: %s",
			 strerror(errno));
		return why;
	}
	return NULL;
}

static bool netns_setup(void)
{
	int rc = system(netns_script);
	bool ok = check(rc == 0, "namespace set-up script failed (status %d)", rc);

	for (int i = 0; i < PORT_COUNT && ok; i++) {
		ports[i].ifindex = if_nametoindex(ports[i].name);
		ok = check(ports[i].ifindex != 0, "no interface %s", ports[i].name);
	}
	return ok;
}

static bool sysctl_write(const char *path, const char *value)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (!f)
		return check(false, "%s: %s", path, strerror(errno));
	ok = fputs(value, f) >= 0;
	ok &= fclose(f) == 0;
	return check(ok, "writing %s to %s failed", value, path);
}

/* ---- flows -------------------------------------------------------------- */

enum flow_id {
	FLOW_NONE,
	FLOW_V4,		/* callee behind tx0: XDP_REDIRECT */
	FLOW_V4_TX,		/* callee behind rx0, the ingress: XDP_TX */
	FLOW_V4_NO_NEIGH,	/* routed out of tx0, no neighbour entry */
	FLOW_V4_NO_ROUTE,	/* no route at all */
	FLOW_V4_MTU,		/* route with MTU 100 out of tx0 */
	FLOW_V4_NO_TX_PORT,	/* routed out of nd0, not in relay_tx_ports */
	FLOW_V4_BAD_FAMILY,	/* value says IPv6 under an IPv4 key */
	FLOW_V6,
	FLOW_V6_TX,
	FLOW_V6_NO_NEIGH,
	FLOW_V6_NO_ROUTE,
	FLOW_V4_CACHE,		/* egress cache tests: tx0, neighbour and MTU change */
	FLOW_V6_CACHE,
	FLOW_COUNT
};

struct flow_def {
	int family;
	const char *relay;	uint16_t relay_port;
	const char *src;	uint16_t src_port;
	const char *new_src;	uint16_t new_src_port;
	const char *dst;	uint16_t dst_port;
	enum port_id egress;	/* where a forwarded frame leaves */
	const uint8_t *next_hop; /* and to which MAC */
};

#define V4_FLOW(port, dst, eg, nh) \
	{ AF_INET, "192.0.2.1", port, "198.51.100.7", (port) - 10000, \
	  "192.0.2.1", (port) + 2, dst, (port) - 20000, eg, nh }
#define V6_FLOW(port, dst, eg, nh) \
	{ AF_INET6, "2001:db8::1", port, "2001:db8:1::7", (port) - 10000, \
	  "2001:db8::1", (port) + 2, dst, (port) - 20000, eg, nh }

static const struct flow_def flows[FLOW_COUNT] = {
	[FLOW_V4] = V4_FLOW(50000, "203.0.113.20", PORT_TX, neigh_tx),
	[FLOW_V4_TX] = V4_FLOW(50008, "198.51.100.9", PORT_RX, neigh_rx),
	[FLOW_V4_NO_NEIGH] = V4_FLOW(50012, "203.0.113.21", PORT_TX, NULL),
	[FLOW_V4_NO_ROUTE] = V4_FLOW(50016, "10.255.0.1", PORT_TX, NULL),
	[FLOW_V4_MTU] = V4_FLOW(50020, "100.64.4.9", PORT_TX, neigh_tx),
	[FLOW_V4_NO_TX_PORT] = V4_FLOW(50024, "100.64.3.9", PORT_ND, NULL),
	[FLOW_V4_BAD_FAMILY] = V4_FLOW(50028, "203.0.113.20", PORT_TX, neigh_tx),
	[FLOW_V6] = V6_FLOW(50004, "2001:db8:2::9", PORT_TX, neigh_tx),
	[FLOW_V6_TX] = V6_FLOW(50032, "2001:db8:1::9", PORT_RX, neigh_rx),
	[FLOW_V6_NO_NEIGH] = V6_FLOW(50036, "2001:db8:2::a", PORT_TX, NULL),
	[FLOW_V6_NO_ROUTE] = V6_FLOW(50040, "2001:db8:ff::1", PORT_TX, NULL),
	[FLOW_V4_CACHE] = V4_FLOW(50044, "203.0.113.30", PORT_TX, neigh_tx),
	[FLOW_V6_CACHE] = V6_FLOW(50048, "2001:db8:2::30", PORT_TX, neigh_tx),
};

/* IPv6 as is, IPv4 as ::ffff:a.b.c.d, as relay_structs.h wants. */
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

static void flow_key(enum flow_id id, struct relay_flow_key *k)
{
	const struct flow_def *d = &flows[id];

	memset(k, 0, sizeof(*k));
	addr_mapped(d->family, d->relay, k->addr);
	k->port = htons(d->relay_port);
	k->family = family_code(d->family);
}

/* The value as the relay writes it: counters and egress cache zero. */
static void flow_value(enum flow_id id, struct relay_flow_value *v)
{
	const struct flow_def *d = &flows[id];

	memset(v, 0, sizeof(*v));
	addr_mapped(d->family, d->src, v->src_addr);
	addr_mapped(d->family, d->dst, v->dst_addr);
	addr_mapped(d->family, d->new_src, v->new_src_addr);
	v->src_port = htons(d->src_port);
	v->dst_port = htons(d->dst_port);
	v->new_src_port = htons(d->new_src_port);
	v->family = family_code(id == FLOW_V4_BAD_FAMILY ? AF_INET6 : d->family);
}

static int flow_write(struct relay_bpf *skel, enum flow_id id,
		      const struct relay_flow_value *v, __u64 flags)
{
	struct relay_flow_key k;

	flow_key(id, &k);
	return bpf_map_update_elem(bpf_map__fd(skel->maps.relay_flows), &k, v, flags);
}

static int flow_insert(struct relay_bpf *skel, enum flow_id id)
{
	struct relay_flow_value v;

	flow_value(id, &v);
	return flow_write(skel, id, &v, BPF_NOEXIST);
}

/* Rewrites the entry as the relay does when a stream changes: the
 * counters start again and the egress cache is invalid. */
static bool flow_reset(struct relay_bpf *skel, enum flow_id id)
{
	struct relay_flow_value v;

	flow_value(id, &v);
	return check(flow_write(skel, id, &v, BPF_EXIST) == 0, "rewriting flow %d: %s", id,
		     strerror(errno));
}

static int flow_read(struct relay_bpf *skel, enum flow_id id,
		     struct relay_flow_value *v)
{
	struct relay_flow_key k;

	flow_key(id, &k);
	return bpf_map_lookup_elem(bpf_map__fd(skel->maps.relay_flows), &k, v);
}

/* What the relay does after load: every flow, and its interfaces as
 * redirect targets. */
static bool skel_fill(struct relay_bpf *skel)
{
	int fd = bpf_map__fd(skel->maps.relay_tx_ports);
	bool ok = true;

	for (int id = FLOW_V4; id < FLOW_COUNT; id++)
		ok &= check(flow_insert(skel, id) == 0, "flow %d insert: %s", id,
			    strerror(errno));
	for (int i = 0; i < PORT_COUNT; i++) {
		__u32 ifindex = ports[i].ifindex;

		if (ports[i].tx_port)
			ok &= check(!bpf_map_update_elem(fd, &ifindex, &ifindex, 0),
				    "relay_tx_ports add %s: %s", ports[i].name,
				    strerror(errno));
	}
	return ok;
}

/* ---- frames of a flow --------------------------------------------------- */

/* A case's frame: the flow's RTP from its latched source to its relay
 * address and port, with every non-zero field of .spec overriding. */
struct frame_def {
	enum flow_id flow;
	struct frame_spec spec;
	bool empty;		/* no payload, not the default 172 bytes */
	bool ttl_zero;		/* TTL 0, not the default 64 */
	bool zero_sum;		/* payload tuned: forwarded UDP checksum computes to 0 */
	bool set_tos;		/* .tos replaces the IPv4 TOS / the IPv6 flow label */
	uint32_t tos;
};

static void def_defaults(const struct frame_def *fd, struct frame_spec *s)
{
	const struct flow_def *d = &flows[fd->flow];

	*s = fd->spec;
	s->family = d->family;
	s->src = s->src ? s->src : d->src;
	s->dst = s->dst ? s->dst : d->relay;
	s->sport = s->sport ? s->sport : d->src_port;
	s->dport = s->dport ? s->dport : d->relay_port;
	s->proto = s->proto ? s->proto : IPPROTO_UDP;
	s->ihl = s->ihl ? s->ihl : 5;
	s->ttl = fd->ttl_zero ? 0 : s->ttl ? s->ttl : 64;
	s->payload = fd->empty ? 0 : s->payload ? s->payload : RTP_PAYLOAD;
}

/* The frame `in` must become when its flow forwards it, built from
 * scratch: the flow's addresses and ports, TTL - 1, the egress MACs. */
static void spec_forwarded(const struct frame_spec *in, enum flow_id id,
			   struct frame_spec *out)
{
	const struct flow_def *d = &flows[id];

	*out = *in;
	out->src = d->new_src;
	out->dst = d->dst;
	out->sport = d->new_src_port;
	out->dport = d->dst_port;
	out->ttl = in->ttl - 1;
	out->mac_src = ports[d->egress].mac;
	out->mac_dst = d->next_hop;
}

static void def_resolve(const struct frame_def *fd, struct frame_spec *s)
{
	struct frame_spec fwd;

	def_defaults(fd, s);
	if (fd->zero_sum) {
		spec_forwarded(s, fd->flow, &fwd);
		s->set_word = true;
		s->word = frame_zero_sum_word(&fwd);
	}
}

/* The frame builder has no TOS / flow label knob: patched in afterwards.
 * Neither is in the UDP pseudo-header; the IPv4 header checksum is redone. */
static void frame_set_tos(const struct frame_def *fd, struct frame *f)
{
	uint8_t *ip = f->buf + f->ip_off;

	if (!fd->set_tos)
		return;
	if (f->family == AF_INET) {
		ip[1] = (uint8_t)fd->tos;
		put16(ip + 10, 0);
		put16(ip + 10, csum_fold(csum_add(0, ip, 4 * (ip[0] & 0xf))));
	} else {
		ip[1] = (uint8_t)((ip[1] & 0xf0) | ((fd->tos >> 16) & 0x0f));
		put16(ip + 2, (uint16_t)fd->tos);
	}
}

/* What the program sees as the lookup's tos / flowinfo for this frame. */
static uint32_t frame_tos_key(const struct frame *f)
{
	const uint8_t *ip = f->buf + f->ip_off;
	uint32_t w;

	if (f->family == AF_INET)
		return ip[1];
	memcpy(&w, ip, 4);
	return w & htonl(0x0fffffff);
}

static uint32_t frame_ip_len(const struct frame *f)
{
	const uint8_t *ip = f->buf + f->ip_off;

	return f->family == AF_INET ? get16(ip + 2) : 40u + get16(ip + 4);
}

/* ---- stats -------------------------------------------------------------- */

struct stats {
	struct relay_stat r[RELAY_STAT_MAX];
};

static int stats_read(struct relay_bpf *skel, struct stats *out)
{
	int ncpu = libbpf_num_possible_cpus();
	int fd = bpf_map__fd(skel->maps.relay_stats);
	struct relay_stat *per_cpu;

	if (ncpu <= 0)
		return ncpu;
	per_cpu = calloc(ncpu, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	for (__u32 r = 0; r < RELAY_STAT_MAX; r++) {
		if (bpf_map_lookup_elem(fd, &r, per_cpu)) {
			free(per_cpu);
			return -errno;
		}
		for (int c = 0; c < ncpu; c++) {
			out->r[r].packets += per_cpu[c].packets;
			out->r[r].bytes += per_cpu[c].bytes;
		}
	}
	free(per_cpu);
	return 0;
}

static const char *reason_name(unsigned int r)
{
	static const char *names[RELAY_STAT_MAX] = {
		[RELAY_STAT_FORWARDED] = "FORWARDED",
		[RELAY_STAT_PASS_NOT_YET] = "PASS_NOT_YET",
		[RELAY_STAT_PASS_MALFORMED] = "PASS_MALFORMED",
		[RELAY_STAT_PASS_NOT_IP] = "PASS_NOT_IP",
		[RELAY_STAT_PASS_NOT_UDP] = "PASS_NOT_UDP",
		[RELAY_STAT_PASS_FRAGMENT] = "PASS_FRAGMENT",
		[RELAY_STAT_PASS_IPV6_EXT] = "PASS_IPV6_EXT",
		[RELAY_STAT_PASS_OTHER_PORT] = "PASS_OTHER_PORT",
		[RELAY_STAT_PASS_NO_FLOW] = "PASS_NO_FLOW",
		[RELAY_STAT_PASS_SOURCE_MISMATCH] = "PASS_SOURCE_MISMATCH",
		[RELAY_STAT_PASS_FIB_MISS] = "PASS_FIB_MISS",
		[RELAY_STAT_PASS_NO_NEIGH] = "PASS_NO_NEIGH",
		[RELAY_STAT_PASS_TTL] = "PASS_TTL",
		[RELAY_STAT_PASS_VLAN] = "PASS_VLAN",
		[RELAY_STAT_PASS_NO_TX_PORT] = "PASS_NO_TX_PORT",
	};

	return r < RELAY_STAT_MAX && names[r] ? names[r] : "?";
}

/* ---- running one frame -------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* What one run must do. FORWARDED: the verdict follows the flow's egress
 * (XDP_TX out of the ingress, else XDP_REDIRECT) and only that flow's
 * counters move; anything else: XDP_PASS, untouched, no flow moves. */
struct expect {
	enum relay_stat_reason reason;
	enum flow_id flow;
	uint64_t payload;		/* bytes the flow must gain */
	const struct port *via;		/* leaves here; NULL: the flow's egress */
	const uint8_t *next_hop;	/* to this MAC; NULL: the flow's next hop */
};

static const struct port *expect_via(const struct expect *want)
{
	return want->via ? want->via : &ports[flows[want->flow].egress];
}

static const uint8_t *expect_next_hop(const struct expect *want)
{
	return want->next_hop ? want->next_hop : flows[want->flow].next_hop;
}

/* Where test frames arrive (ctx ingress_ifindex). */
static enum port_id run_ingress = PORT_RX;

struct run_state {
	struct stats stats;
	struct relay_flow_value flow[FLOW_COUNT];
};

static bool state_read(struct relay_bpf *skel, struct run_state *st)
{
	memset(st, 0, sizeof(*st));
	if (!check(stats_read(skel, &st->stats) == 0, "reading relay_stats failed"))
		return false;
	for (int id = FLOW_V4; id < FLOW_COUNT; id++)
		flow_read(skel, id, &st->flow[id]);	/* absent: stays zero */
	return true;
}

static bool stats_moved(const struct run_state *a, const struct run_state *b,
			enum relay_stat_reason reason, uint64_t packets,
			uint64_t bytes)
{
	bool ok = true;

	for (unsigned int r = 0; r < RELAY_STAT_MAX; r++) {
		uint64_t dp = b->stats.r[r].packets - a->stats.r[r].packets;
		uint64_t db = b->stats.r[r].bytes - a->stats.r[r].bytes;
		uint64_t wp = r == reason ? packets : 0;
		uint64_t wb = r == reason ? bytes : 0;

		ok &= check(dp == wp && db == wb,
			    "stat %s: +%llu packets +%llu bytes, want +%llu +%llu",
			    reason_name(r), (unsigned long long)dp,
			    (unsigned long long)db, (unsigned long long)wp,
			    (unsigned long long)wb);
	}
	return ok;
}

/* After a forward the cache is valid and names where the frame went. */
static bool egress_says(const struct relay_flow_egress *e, const struct expect *want)
{
	const struct port *via = expect_via(want);
	const uint8_t *nh = expect_next_hop(want);

	return check(e->valid == RELAY_EGRESS_VALID, "egress cache invalid after a forward") &&
	       check(e->ifindex == via->ifindex && e->ingress == ports[run_ingress].ifindex,
		     "egress cache: out of ifindex %u for ingress %u, want %u for %u",
		     e->ifindex, e->ingress, via->ifindex, ports[run_ingress].ifindex) &&
	       check(nh && !memcmp(e->mac, nh, 6) && !memcmp(e->mac + 6, via->mac, 6),
		     "egress cache: MACs %02x..%02x %02x..%02x are not the frame's",
		     e->mac[0], e->mac[5], e->mac[6], e->mac[11]);
}

static bool flows_moved(const struct run_state *a, const struct run_state *b,
			const struct expect *want, uint64_t t0, uint64_t t1)
{
	bool ok = true;

	for (int id = FLOW_V4; id < FLOW_COUNT; id++) {
		const struct relay_flow_value *x = &a->flow[id], *y = &b->flow[id];

		if (want->reason != RELAY_STAT_FORWARDED || id != (int)want->flow) {
			ok &= check(!memcmp(x, y, __builtin_offsetof(struct relay_flow_value,
								       egress)),
				    "flow %d changed, but it did not forward", id);
			/* a failed lookup may drop the cache, never fill it */
			ok &= check(!y->egress.valid ||
				    !memcmp(&x->egress, &y->egress, sizeof(x->egress)),
				    "flow %d: egress cache filled without a forward", id);
			continue;
		}
		ok &= check(y->packets == x->packets + 1,
			    "flow packets %llu -> %llu, want +1",
			    (unsigned long long)x->packets,
			    (unsigned long long)y->packets);
		ok &= check(y->bytes == x->bytes + want->payload,
			    "flow bytes %llu -> %llu, want +%llu",
			    (unsigned long long)x->bytes,
			    (unsigned long long)y->bytes,
			    (unsigned long long)want->payload);
		/* The program reads the coarse clock: it may lag the run's
		 * CLOCK_MONOTONIC by up to a tick (COARSE_LAG_NS). */
		ok &= check(y->last_seen_ns + COARSE_LAG_NS >= t0 && y->last_seen_ns <= t1 &&
			    y->last_seen_ns >= x->last_seen_ns,
			    "last_seen_ns %llu outside the run [%llu, %llu]",
			    (unsigned long long)y->last_seen_ns,
			    (unsigned long long)t0, (unsigned long long)t1);
		/* the rewrite part is user space's; the program must not touch it */
		ok &= check(!memcmp(x, y, __builtin_offsetof(struct relay_flow_value, bytes)),
			    "flow match/rewrite fields changed");
		ok &= egress_says(&y->egress, want);
	}
	return ok;
}

/* XDP_TX when the frame leaves where it arrived. */
static __u32 verdict_of(const struct expect *want)
{
	if (want->reason != RELAY_STAT_FORWARDED)
		return XDP_PASS;
	return expect_via(want) == &ports[run_ingress] ? XDP_TX : XDP_REDIRECT;
}

/* Output bytes as expected, and checksums right by full recomputation. */
static bool output_ok(const uint8_t *out, size_t out_len, const struct frame *want)
{
	struct frame got = *want;
	size_t i;

	if (!check(out_len == want->len, "%zu bytes out, want %zu", out_len, want->len))
		return false;
	for (i = 0; i < out_len && out[i] == want->buf[i]; i++)
		;
	if (!check(i == out_len, "output differs at byte %zu: %02x, want %02x",
		   i, i < out_len ? out[i] : 0, i < out_len ? want->buf[i] : 0))
		return false;
	memcpy(got.buf, out, out_len);
	return check(frame_checksums_ok(&got), "output checksums do not verify");
}

static int test_run(struct relay_bpf *skel, const uint8_t *data, size_t len,
		    uint8_t *out, __u32 repeat, __u32 *out_len, __u32 *retval,
		    __u32 *duration)
{
	struct xdp_md ctx = {
		.data_end = (__u32)len,
		.ingress_ifindex = ports[run_ingress].ifindex,
	};
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = data,
		.data_size_in = (__u32)len,
		.data_out = out,
		.data_size_out = out ? FRAME_MAX : 0,
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = repeat,
	);
	int err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.relay_xdp), &opts);

	*retval = opts.retval;
	if (out_len)
		*out_len = opts.data_size_out;
	if (duration)
		*duration = opts.duration;
	return err;
}

/* Runs one frame; true when verdict, output, stats and flows are as
 * wanted. `fwd` is the expected output of a forwarded frame. */
static bool run_frame(struct relay_bpf *skel, const uint8_t *data, size_t len,
		      const struct expect *want, const struct frame *fwd)
{
	uint8_t out[FRAME_MAX];
	struct run_state before, after;
	__u32 retval, out_len;
	uint64_t t0, t1;
	bool ok = true;
	int err;

	if (!state_read(skel, &before))
		return false;
	t0 = now_ns();
	err = test_run(skel, data, len, out, 1, &out_len, &retval, NULL);
	t1 = now_ns();
	if (!check(err == 0, "BPF_PROG_TEST_RUN: %s", strerror(-err)))
		return false;
	ok &= check(retval == verdict_of(want), "verdict %u, want %u", retval,
		    verdict_of(want));
	if (fwd)
		ok &= output_ok(out, out_len, fwd);
	else
		ok &= check(out_len == len && !memcmp(out, data, len),
			    "frame changed (%u bytes out, %zu in)", out_len, len);
	if (!state_read(skel, &after))
		return false;
	ok &= stats_moved(&before, &after, want->reason, 1, len);
	ok &= flows_moved(&before, &after, want, t0, t1);
	return ok;
}

/* The frame `fd` describes, and what it must become when forwarded as
 * `want` says (from scratch: the flow's addresses, the egress MACs). */
static void def_build(const struct frame_def *fd, struct frame *in)
{
	struct frame_spec s;

	def_resolve(fd, &s);
	frame_build(&s, in);
	frame_set_tos(fd, in);
}

static void def_build_forwarded(const struct frame_def *fd, const struct expect *want,
				struct frame *out)
{
	struct frame_spec s, fs;

	def_resolve(fd, &s);
	spec_forwarded(&s, want->flow, &fs);
	fs.mac_src = expect_via(want)->mac;
	fs.mac_dst = expect_next_hop(want);
	frame_build(&fs, out);
	frame_set_tos(fd, out);
}

static bool run_def(struct relay_bpf *skel, const struct frame_def *fd,
		    const struct expect *want)
{
	struct frame in, out;

	def_build(fd, &in);
	if (want->reason != RELAY_STAT_FORWARDED)
		return run_frame(skel, in.buf, in.len, want, NULL);
	def_build_forwarded(fd, want, &out);
	if (fd->zero_sum && !check(get16(out.buf + out.l4_off + 6) == 0xffff,
				   "tuned frame's checksum is not 0xffff"))
		return false;
	return run_frame(skel, in.buf, in.len, want, &out);
}

/* ---- the cases ---------------------------------------------------------- */

#define ON(f, ...)	{ .flow = (f), __VA_ARGS__ }
#define FWD(f, n)	{ .reason = RELAY_STAT_FORWARDED, .flow = (f), .payload = (n) }
#define PASS(r)		{ .reason = (r) }

struct xdp_case {
	const char *name;
	struct frame_def frame;
	struct expect want;
};

static const struct xdp_case forward_cases[] = {
	{ "IPv4 RTP from the latched source is rewritten and redirected to tx0",
	  ON(FLOW_V4), FWD(FLOW_V4, 172) },
	{ "IPv4 RTP to a peer behind the ingress interface leaves with XDP_TX",
	  ON(FLOW_V4_TX), FWD(FLOW_V4_TX, 172) },
	{ "IPv4 RTP without a UDP checksum keeps checksum 0",
	  ON(FLOW_V4, .spec.no_udp_csum = true), FWD(FLOW_V4, 172) },
	{ "IPv4 RTP whose new UDP checksum computes to 0 is sent with 0xffff",
	  ON(FLOW_V4, .zero_sum = true), FWD(FLOW_V4, 172) },
	{ "IPv4 with 12 bytes of options (IHL 8) is forwarded with them",
	  ON(FLOW_V4, .spec.ihl = 8), FWD(FLOW_V4, 172) },
	{ "IPv4 with the longest header (IHL 15) is forwarded",
	  ON(FLOW_V4_TX, .spec.ihl = 15), FWD(FLOW_V4_TX, 172) },
	{ "minimum Ethernet frame: 4-byte payload counts 4, padding kept",
	  ON(FLOW_V4, .spec.payload = 4, .spec.pad_to = ETH_ZLEN), FWD(FLOW_V4, 4) },
	{ "empty UDP datagram is forwarded and counts 0 bytes",
	  ON(FLOW_V4, .empty = true), FWD(FLOW_V4, 0) },
	{ "IPv4 with DF set is a whole datagram and is forwarded",
	  ON(FLOW_V4, .spec.frag = 0x4000), FWD(FLOW_V4, 172) },
	{ "IPv4 TTL 2 is forwarded with TTL 1",
	  ON(FLOW_V4, .spec.ttl = 2), FWD(FLOW_V4, 172) },
	{ "IPv4 packet under the route MTU of 100 is forwarded",
	  ON(FLOW_V4_MTU, .spec.payload = 40), FWD(FLOW_V4_MTU, 40) },
	{ "IPv6 RTP from the latched source is rewritten and redirected to tx0",
	  ON(FLOW_V6), FWD(FLOW_V6, 172) },
	{ "IPv6 RTP to a peer behind the ingress interface leaves with XDP_TX",
	  ON(FLOW_V6_TX), FWD(FLOW_V6_TX, 172) },
	{ "IPv6 RTP whose new UDP checksum computes to 0 is sent with 0xffff",
	  ON(FLOW_V6, .zero_sum = true), FWD(FLOW_V6, 172) },
	{ "IPv6 with an odd payload length (171) is forwarded",
	  ON(FLOW_V6, .spec.payload = 171), FWD(FLOW_V6, 171) },
	{ "IPv6 hop limit 2 is forwarded with hop limit 1",
	  ON(FLOW_V6_TX, .spec.ttl = 2), FWD(FLOW_V6_TX, 172) },
	{ "IPv6 RTP of 1300 bytes is forwarded",
	  ON(FLOW_V6, .spec.payload = 1300), FWD(FLOW_V6, 1300) },
};

static const struct xdp_case matched_pass_cases[] = {
	{ "IPv4 TTL 1 passes untouched (the stack sends time exceeded)",
	  ON(FLOW_V4, .spec.ttl = 1), PASS(RELAY_STAT_PASS_TTL) },
	{ "IPv4 TTL 0 passes untouched",
	  ON(FLOW_V4, .ttl_zero = true), PASS(RELAY_STAT_PASS_TTL) },
	{ "IPv6 hop limit 1 passes untouched",
	  ON(FLOW_V6, .spec.ttl = 1), PASS(RELAY_STAT_PASS_TTL) },
	{ "IPv4 to a neighbour not yet resolved passes untouched",
	  ON(FLOW_V4_NO_NEIGH), PASS(RELAY_STAT_PASS_NO_NEIGH) },
	{ "IPv6 to a neighbour not yet resolved passes untouched",
	  ON(FLOW_V6_NO_NEIGH), PASS(RELAY_STAT_PASS_NO_NEIGH) },
	{ "IPv4 to a destination without a route passes as FIB miss",
	  ON(FLOW_V4_NO_ROUTE), PASS(RELAY_STAT_PASS_FIB_MISS) },
	{ "IPv6 to a destination without a route passes as FIB miss",
	  ON(FLOW_V6_NO_ROUTE), PASS(RELAY_STAT_PASS_FIB_MISS) },
	{ "IPv4 packet over the route MTU of 100 passes as FIB miss",
	  ON(FLOW_V4_MTU), PASS(RELAY_STAT_PASS_FIB_MISS) },
	{ "IPv4 routed out of an interface not in relay_tx_ports passes",
	  ON(FLOW_V4_NO_TX_PORT), PASS(RELAY_STAT_PASS_NO_TX_PORT) },
	{ "a flow whose value family disagrees with its key is no flow",
	  ON(FLOW_V4_BAD_FAMILY), PASS(RELAY_STAT_PASS_NO_FLOW) },
	{ "802.1Q-tagged IPv4 RTP from the latched source passes to the stack",
	  ON(FLOW_V4, .spec.tpid = 0x8100), PASS(RELAY_STAT_PASS_VLAN) },
	{ "802.1ad-tagged IPv4 RTP from the latched source passes to the stack",
	  ON(FLOW_V4, .spec.tpid = 0x88a8), PASS(RELAY_STAT_PASS_VLAN) },
	{ "tagged IPv4 with the longest header (IHL 15) passes to the stack",
	  ON(FLOW_V4, .spec.ihl = 15, .spec.tpid = 0x8100), PASS(RELAY_STAT_PASS_VLAN) },
	{ "802.1Q-tagged IPv6 RTP from the latched source passes to the stack",
	  ON(FLOW_V6, .spec.tpid = 0x8100), PASS(RELAY_STAT_PASS_VLAN) },
};

static const struct xdp_case other_pass_cases[] = {
	{ "IPv4 RTP from another address is a source mismatch",
	  ON(FLOW_V4, .spec.src = "198.51.100.8"), PASS(RELAY_STAT_PASS_SOURCE_MISMATCH) },
	{ "IPv4 RTP from the latched address but another port is a source mismatch",
	  ON(FLOW_V4, .spec.sport = 40001), PASS(RELAY_STAT_PASS_SOURCE_MISMATCH) },
	{ "tagged IPv4 RTP from another address is a source mismatch",
	  ON(FLOW_V4, .spec.src = "198.51.100.8", .spec.tpid = 0x8100),
	  PASS(RELAY_STAT_PASS_SOURCE_MISMATCH) },
	{ "IPv4 RTP to a relay port without a flow",
	  ON(FLOW_V4, .spec.dport = 50010), PASS(RELAY_STAT_PASS_NO_FLOW) },
	{ "IPv4 RTP to the flow's port on another local address",
	  ON(FLOW_V4, .spec.dst = "192.0.2.2"), PASS(RELAY_STAT_PASS_NO_FLOW) },
	{ "IPv6 to the IPv4-mapped relay address is not the IPv4 flow",
	  ON(FLOW_V6, .spec.dst = "::ffff:192.0.2.1", .spec.src = "::ffff:198.51.100.7",
	     .spec.sport = 40000, .spec.dport = 50000), PASS(RELAY_STAT_PASS_NO_FLOW) },
	{ "IPv4 first fragment (MF set)",
	  ON(FLOW_V4, .spec.frag = 0x2000), PASS(RELAY_STAT_PASS_FRAGMENT) },
	{ "IPv4 later fragment (offset 185)",
	  ON(FLOW_V4, .spec.frag = 185), PASS(RELAY_STAT_PASS_FRAGMENT) },
	{ "IPv4 TCP to the relay port is not UDP",
	  ON(FLOW_V4, .spec.proto = IPPROTO_TCP), PASS(RELAY_STAT_PASS_NOT_UDP) },
	{ "ARP is not IP",
	  ON(FLOW_V4, .spec.ethertype = 0x0806), PASS(RELAY_STAT_PASS_NOT_IP) },
	{ "IPv4 header length below 20 bytes is malformed",
	  ON(FLOW_V4, .spec.ihl = 4), PASS(RELAY_STAT_PASS_MALFORMED) },
	/* Read at IHL 4, the addresses and ports would make a plausible UDP
	 * header (length 8 from the source port): only the IHL check stops it. */
	{ "IPv4 IHL 4 with bytes that would parse as UDP is malformed",
	  ON(FLOW_V4, .spec.ihl = 4, .spec.sport = 8), PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "IPv4 EtherType carrying an IPv6 version nibble is malformed",
	  ON(FLOW_V4, .spec.version = 6), PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "IPv6 EtherType carrying an IPv4 version nibble is malformed",
	  ON(FLOW_V6, .spec.version = 4), PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "IPv4 total length beyond the frame is malformed",
	  ON(FLOW_V4, .spec.ip_len_delta = 1), PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "IPv6 payload length beyond the frame is malformed",
	  ON(FLOW_V6, .spec.ip_len_delta = 1), PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "UDP length below the UDP header is malformed",
	  ON(FLOW_V4, .spec.udp_len_delta = -173), PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "UDP length beyond the IP payload is malformed",
	  ON(FLOW_V4, .spec.udp_len_delta = 1), PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "UDP length reaching into Ethernet padding is malformed",
	  ON(FLOW_V4, .spec.payload = 4, .spec.pad_to = ETH_ZLEN, .spec.udp_len_delta = 10),
	  PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "IPv6 UDP length beyond the IPv6 payload is malformed",
	  ON(FLOW_V6, .spec.payload = 4, .spec.pad_to = 80, .spec.udp_len_delta = 10),
	  PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "IPv6 RTP from another address is a source mismatch",
	  ON(FLOW_V6, .spec.src = "2001:db8:1::8"), PASS(RELAY_STAT_PASS_SOURCE_MISMATCH) },
	{ "IPv6 with a hop-by-hop header passes as extension header",
	  ON(FLOW_V6, .spec.v6_ext = true, .spec.v6_ext_type = 0),
	  PASS(RELAY_STAT_PASS_IPV6_EXT) },
	{ "IPv6 with a fragment header passes as fragment",
	  ON(FLOW_V6, .spec.v6_ext = true, .spec.v6_ext_type = 44),
	  PASS(RELAY_STAT_PASS_FRAGMENT) },
	{ "IPv6 TCP is not UDP",
	  ON(FLOW_V6, .spec.proto = IPPROTO_TCP), PASS(RELAY_STAT_PASS_NOT_UDP) },
};

static void run_cases(struct relay_bpf *skel, const struct xdp_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tap(run_def(skel, &c[i].frame, &c[i].want), "%s", c[i].name);
}

#define RUN_CASES(skel, table) \
	run_cases(skel, table, sizeof(table) / sizeof((table)[0]))

/* Every cut of a valid frame (BPF_PROG_TEST_RUN refuses fewer than 14
 * bytes) must pass as malformed and touch no flow, including frames that
 * would be forwarded whole. */
static void test_truncated(struct relay_bpf *skel)
{
	static const struct { const char *name; struct frame_def def; } t[] = {
		{ "tagged IPv4 with options", ON(FLOW_V4, .spec.tpid = 0x8100, .spec.ihl = 7) },
		{ "forwardable IPv4 with options", ON(FLOW_V4, .spec.ihl = 7) },
		{ "forwardable IPv6", ON(FLOW_V6) },
	};
	const struct expect want = PASS(RELAY_STAT_PASS_MALFORMED);

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct frame_spec s;
		struct frame f;
		bool ok = true;

		def_resolve(&t[i].def, &s);
		frame_build(&s, &f);
		for (size_t cut = ETH_HLEN; cut < f.len && ok; cut++)
			ok = check(run_frame(skel, f.buf, cut, &want, NULL),
				   "cut at %zu of %zu bytes", cut, f.len);
		tap(ok, "every truncation of a %s RTP frame passes as malformed",
		    t[i].name);
	}
}

/* TESTING.md: bpf_fib_lookup wants forwarding on the ingress interface.
 * The sysctl reaches a flow at its next lookup: at once for a value the
 * relay has just written (cache invalid), as here; within
 * RELAY_EGRESS_REFRESH packets for a cached one (test_egress_cache). */
static void test_forwarding_off(struct relay_bpf *skel)
{
	static const struct {
		const char *path;
		enum flow_id flow;
	} t[] = {
		{ "/proc/sys/net/ipv4/conf/rx0/forwarding", FLOW_V4 },
		{ "/proc/sys/net/ipv6/conf/rx0/forwarding", FLOW_V6 },
	};
	const struct expect miss = PASS(RELAY_STAT_PASS_FIB_MISS);

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const struct frame_def def = ON(t[i].flow);
		const struct expect fwd = FWD(t[i].flow, 172);
		bool ok;

		ok = sysctl_write(t[i].path, "0") && flow_reset(skel, t[i].flow) &&
		     check(run_def(skel, &def, &miss), "with forwarding off");
		ok &= sysctl_write(t[i].path, "1") &&
		      check(run_def(skel, &def, &fwd), "with forwarding back on");
		tap(ok, "%s RTP passes as FIB miss while rx0 forwarding is off",
		    flows[t[i].flow].family == AF_INET ? "IPv4" : "IPv6");
	}
}

/* ---- the egress cache ------------------------------------------------------- */

static bool ip_cmd(const char *fmt, ...)
{
	char cmd[256];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return check(rc == 0, "`%s` failed (status %d)", cmd, rc);
}

static const char *mac_str(const uint8_t *m)
{
	static char buf[4][18];
	static int n;
	char *b = buf[n++ % 4];

	snprintf(b, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return b;
}

/* Sets the flow destination's neighbour on tx0 (NULL: deletes it). */
static bool neigh_set(enum flow_id id, const uint8_t *mac)
{
	const char *fam = flows[id].family == AF_INET ? "-4" : "-6";

	if (!mac)
		return ip_cmd("ip %s neigh del %s dev tx0", fam, flows[id].dst);
	return ip_cmd("ip %s neigh replace %s lladdr %s dev tx0 nud permanent", fam,
		      flows[id].dst, mac_str(mac));
}

/* `n` frames of `payload` bytes, each forwarded out of tx0 to `mac`. */
static bool run_n(struct relay_bpf *skel, enum flow_id id, int n, uint16_t payload,
		  const uint8_t *mac)
{
	const struct frame_def fd = ON(id, .spec.payload = payload);
	const struct expect want = { .reason = RELAY_STAT_FORWARDED, .flow = id,
				     .payload = payload, .next_hop = mac };
	bool ok = true;

	for (int i = 0; i < n && ok; i++)
		ok = check(run_def(skel, &fd, &want), "frame %d of %d to %s", i + 1, n,
			   mac_str(mac));
	return ok;
}

static bool flow_read_ok(struct relay_bpf *skel, enum flow_id id, struct relay_flow_value *v)
{
	return check(flow_read(skel, id, v) == 0, "reading flow %d: %s", id, strerror(errno));
}

/* Per family: route MTU of the cache flow's host route, and payloads
 * under it, longer but still under it, and over it. */
struct cache_sizes {
	uint16_t small, longer, over;
};

static const struct cache_sizes sizes_v4 = { 172, 250, 400 };	/* mtu 300 */
static const struct cache_sizes sizes_v6 = { 172, 1000, 1300 };	/* mtu 1280 */

/* A value the relay has just written (cache invalid, whatever else the
 * cache bytes say) is looked up, and the lookup fills the cache. */
static void test_cache_fresh(struct relay_bpf *skel, enum flow_id id)
{
	const struct frame_def fd = ON(id);
	struct relay_flow_value v;
	struct frame f;
	bool ok;

	def_build(&fd, &f);
	flow_value(id, &v);
	memcpy(v.egress.mac, mac_bogus, 6);
	memcpy(v.egress.mac + 6, ports[PORT_ND].mac, 6);
	v.egress.ifindex = ports[PORT_ND].ifindex;
	v.egress.ingress = ports[PORT_RX].ifindex;
	v.egress.tos = frame_tos_key(&f);
	v.egress.max_len = 9000;
	v.egress.valid = 0;
	v.packets = 7;				/* not a refresh either */
	ok = check(flow_write(skel, id, &v, BPF_EXIST) == 0, "write: %s", strerror(errno)) &&
	     run_n(skel, id, 1, RTP_PAYLOAD, neigh_tx) && flow_read_ok(skel, id, &v);
	ok = ok && check(v.egress.tos == frame_tos_key(&f), "cached tos %08x, want %08x",
			 v.egress.tos, frame_tos_key(&f)) &&
	     check(v.egress.max_len == frame_ip_len(&f), "cached max_len %u, want %u",
		   v.egress.max_len, frame_ip_len(&f));
	tap(ok, "%s: an invalid egress cache is not used; the lookup fills it",
	    flows[id].family == AF_INET ? "IPv4" : "IPv6");
}

/*
 * A valid cache is used without a lookup: made up here (a MAC no lookup
 * returns, out of the ingress interface so the verdict is XDP_TX) with
 * the packet counter just before a refresh. Two frames leave as the cache
 * says; the third (counter 256) looks up and leaves as the FIB says.
 */
static void test_cache_used(struct relay_bpf *skel, enum flow_id id)
{
	const struct frame_def fd = ON(id);
	const struct expect cached = { .reason = RELAY_STAT_FORWARDED, .flow = id,
				       .payload = RTP_PAYLOAD, .via = &ports[PORT_RX],
				       .next_hop = mac_bogus };
	const struct expect looked_up = FWD(id, RTP_PAYLOAD);
	struct relay_flow_value v;
	struct frame f;
	bool ok;

	def_build(&fd, &f);
	ok = flow_read_ok(skel, id, &v);
	memcpy(v.egress.mac, mac_bogus, 6);
	memcpy(v.egress.mac + 6, ports[PORT_RX].mac, 6);
	v.egress.ifindex = ports[PORT_RX].ifindex;
	v.egress.ingress = ports[PORT_RX].ifindex;
	v.egress.tos = frame_tos_key(&f);
	v.egress.max_len = 1500;
	v.egress.valid = RELAY_EGRESS_VALID;
	v.packets = 2 * RELAY_EGRESS_REFRESH - 2;
	ok = ok && check(flow_write(skel, id, &v, BPF_EXIST) == 0, "write: %s", strerror(errno));
	for (int i = 0; i < 2 && ok; i++)
		ok = check(run_def(skel, &fd, &cached), "counter %llu: cached",
			   (unsigned long long)v.packets + i);
	ok = ok && check(run_def(skel, &fd, &looked_up), "counter %llu: refreshed",
			 (unsigned long long)v.packets + 2);
	tap(ok, "%s: a valid egress cache decides MACs and XDP_TX until the counter reaches "
	    "a multiple of %d", flows[id].family == AF_INET ? "IPv4" : "IPv6",
	    RELAY_EGRESS_REFRESH);
}

/* A cache naming an interface that is not in relay_tx_ports passes the
 * frame (PASS_NO_TX_PORT, as a lookup would) and is dropped, so the next
 * frame is looked up even between refreshes. */
static void test_cache_no_tx_port(struct relay_bpf *skel, enum flow_id id)
{
	const struct frame_def fd = ON(id);
	const struct expect pass = PASS(RELAY_STAT_PASS_NO_TX_PORT);
	struct relay_flow_value v;
	struct frame f;
	bool ok;

	def_build(&fd, &f);
	ok = flow_read_ok(skel, id, &v);
	memcpy(v.egress.mac, neigh_tx, 6);
	memcpy(v.egress.mac + 6, ports[PORT_ND].mac, 6);
	v.egress.ifindex = ports[PORT_ND].ifindex;
	v.egress.ingress = ports[PORT_RX].ifindex;
	v.egress.tos = frame_tos_key(&f);
	v.egress.max_len = 1500;
	v.egress.valid = RELAY_EGRESS_VALID;
	v.packets = 3;
	ok = ok && check(flow_write(skel, id, &v, BPF_EXIST) == 0, "write: %s", strerror(errno)) &&
	     check(run_def(skel, &fd, &pass), "cache names nd0") && flow_read_ok(skel, id, &v) &&
	     check(v.egress.valid == 0, "cache still valid after PASS_NO_TX_PORT") &&
	     check(run_n(skel, id, 1, RTP_PAYLOAD, neigh_tx), "next frame: looked up");
	tap(ok, "%s: a cached egress missing from relay_tx_ports passes the frame and drops "
	    "the cache", flows[id].family == AF_INET ? "IPv4" : "IPv6");
}

/*
 * The refresh bound with real neighbour changes: a new MAC is used from
 * the RELAY_EGRESS_REFRESH-th packet after the change on (the cached one
 * before); a deleted neighbour makes that refresh fail, which passes the
 * frame (PASS_NO_NEIGH, as without the cache) and drops the cache.
 */
static void test_cache_refresh(struct relay_bpf *skel, enum flow_id id)
{
	const struct frame_def fd = ON(id);
	const struct expect no_neigh = PASS(RELAY_STAT_PASS_NO_NEIGH);
	const int n = RELAY_EGRESS_REFRESH - 1;
	struct relay_flow_value v;
	bool ok;

	ok = flow_reset(skel, id) && run_n(skel, id, 1, RTP_PAYLOAD, neigh_tx) &&
	     neigh_set(id, neigh_new) &&
	     check(run_n(skel, id, n, RTP_PAYLOAD, neigh_tx), "after the change: cached") &&
	     check(run_n(skel, id, 1, RTP_PAYLOAD, neigh_new), "refresh: the new MAC");
	ok = ok && neigh_set(id, NULL) &&
	     check(run_n(skel, id, n, RTP_PAYLOAD, neigh_new), "neighbour gone: cached") &&
	     check(run_def(skel, &fd, &no_neigh), "refresh: no neighbour") &&
	     flow_read_ok(skel, id, &v) &&
	     check(v.egress.valid == 0, "egress cache still valid after a failed lookup") &&
	     check(run_def(skel, &fd, &no_neigh), "and the frame after it");
	ok &= neigh_set(id, neigh_tx);
	tap(ok, "%s: a changed neighbour is used from the %dth frame after the change; a "
	    "failed refresh passes the frame and invalidates the cache",
	    flows[id].family == AF_INET ? "IPv4" : "IPv6", RELAY_EGRESS_REFRESH);
}

/*
 * Between refreshes, a frame the cache does not vouch for is looked up:
 * longer than any since the refresh (route MTU), another TOS / flow label,
 * another ingress interface. Each time the neighbour changes first, so the
 * new MAC shows the lookup. A lookup that fails (over the MTU) drops the
 * cache, so the next frame looks up even between refreshes.
 */
static void test_cache_keys(struct relay_bpf *skel, enum flow_id id,
			    const struct cache_sizes *sz)
{
	const uint32_t tos = flows[id].family == AF_INET ? 0x10 : 0x12345;
	const struct frame_def small = ON(id, .spec.payload = sz->small),
			       over = ON(id, .spec.payload = sz->over),
			       tossed = ON(id, .spec.payload = sz->small, .set_tos = true, .tos = tos);
	const struct expect miss = PASS(RELAY_STAT_PASS_FIB_MISS);
	struct expect fwd = { .reason = RELAY_STAT_FORWARDED, .flow = id,
			      .payload = sz->small, .next_hop = neigh_tx };
	struct relay_flow_value v;
	struct frame f;
	bool ok;

	def_build(&small, &f);
	ok = flow_reset(skel, id) && run_n(skel, id, 2, sz->small, neigh_tx) &&
	     /* longer: looked up, and max_len grows */
	     neigh_set(id, neigh_new) &&
	     check(run_n(skel, id, 1, sz->longer, neigh_new), "longer frame") &&
	     flow_read_ok(skel, id, &v) &&
	     check(v.egress.max_len == frame_ip_len(&f) + sz->longer - sz->small,
		   "max_len %u after the longer frame", v.egress.max_len) &&
	     neigh_set(id, neigh_tx) &&
	     check(run_n(skel, id, 1, sz->small, neigh_new), "shorter frame: cached") &&
	     check(run_n(skel, id, 1, sz->longer, neigh_new), "as long again: cached");
	/* over the MTU: FIB miss, cache dropped, the next frame looks up */
	ok = ok && check(run_def(skel, &over, &miss), "frame over the route MTU") &&
	     flow_read_ok(skel, id, &v) && check(v.egress.valid == 0, "cache valid after FIB miss") &&
	     check(run_n(skel, id, 1, sz->small, neigh_tx), "after the miss: looked up");
	/* another TOS / flow label */
	fwd.next_hop = neigh_new;
	ok = ok && neigh_set(id, neigh_new) &&
	     check(run_def(skel, &tossed, &fwd), "other TOS / flow label: looked up") &&
	     flow_read_ok(skel, id, &v) &&
	     check(v.egress.tos == (flows[id].family == AF_INET ? tos : htonl(tos)),
		   "cached tos %08x", v.egress.tos) &&
	     neigh_set(id, neigh_tx) &&
	     check(run_def(skel, &tossed, &fwd), "same TOS / flow label again: cached");
	/* another ingress interface (forwarding is on for nd0 too) */
	run_ingress = PORT_ND;
	fwd.next_hop = neigh_tx;
	ok = ok && check(run_def(skel, &tossed, &fwd), "arriving on nd0: looked up");
	run_ingress = PORT_RX;
	ok &= neigh_set(id, neigh_tx);
	tap(ok, "%s: a longer frame, another %s or another ingress interface is looked up; a "
	    "failed lookup drops the cache", flows[id].family == AF_INET ? "IPv4" : "IPv6",
	    flows[id].family == AF_INET ? "TOS" : "flow label");
}

static void test_egress_cache(struct relay_bpf *skel)
{
	test_cache_fresh(skel, FLOW_V4_CACHE);
	test_cache_fresh(skel, FLOW_V6_CACHE);
	test_cache_used(skel, FLOW_V4_CACHE);
	test_cache_used(skel, FLOW_V6_CACHE);
	test_cache_no_tx_port(skel, FLOW_V4_CACHE);
	test_cache_refresh(skel, FLOW_V4_CACHE);
	test_cache_refresh(skel, FLOW_V6_CACHE);
	test_cache_keys(skel, FLOW_V4_CACHE, &sizes_v4);
	test_cache_keys(skel, FLOW_V6_CACHE, &sizes_v6);
}

static void test_checksum_routine(void)
{
	/* IPv4 header with a known checksum (0xb861). */
	static const uint8_t hdr[20] = {
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	};
	const struct frame_def v4 = ON(FLOW_V4, .spec.ihl = 6, .spec.tpid = 0x8100);
	const struct frame_def v6 = ON(FLOW_V6, .spec.payload = 171);
	const struct frame_def nosum = ON(FLOW_V4, .spec.no_udp_csum = true);
	const struct frame_def tuned = ON(FLOW_V6, .spec.set_word = true);
	struct frame_spec s;
	struct frame f4, f6, f;
	bool ok;

	ok = check(csum_fold(csum_add(0, hdr, sizeof(hdr))) == 0xb861,
		   "reference IPv4 header checksum wrong");
	def_resolve(&v4, &s);
	frame_build(&s, &f4);
	def_resolve(&v6, &s);
	frame_build(&s, &f6);
	ok &= check(frame_checksums_ok(&f4), "IPv4 frame checksums");
	ok &= check(frame_checksums_ok(&f6), "IPv6 frame checksums (odd length)");
	def_resolve(&nosum, &s);
	frame_build(&s, &f);
	ok &= check(frame_checksums_ok(&f) && get16(f.buf + f.l4_off + 6) == 0,
		    "IPv4 frame without UDP checksum");
	def_resolve(&tuned, &s);
	s.word = frame_zero_sum_word(&s);
	frame_build(&s, &f);
	ok &= check(frame_checksums_ok(&f) && get16(f.buf + f.l4_off + 6) == 0xffff,
		    "tuned frame: checksum %04x, want ffff", get16(f.buf + f.l4_off + 6));
	f4.buf[f4.len - 1] ^= 0x40;
	ok &= check(!frame_checksums_ok(&f4), "a flipped bit went unnoticed");
	f6.buf[f6.l4_off + 6] = f6.buf[f6.l4_off + 7] = 0;
	ok &= check(!frame_checksums_ok(&f6), "IPv6 UDP without checksum accepted");
	tap(ok, "reference checksum routine and crafted frames agree");
}

/* bpftool map dump prints field names only if the kernel map has BTF. */
static void test_btf(struct relay_bpf *skel)
{
	const struct bpf_map *m = skel->maps.relay_flows;
	const struct btf *btf = bpf_object__btf(skel->obj);
	struct bpf_map_info info;
	__u32 info_len = sizeof(info);
	const char *kname = NULL, *vname = NULL;
	bool ok = true;

	if (btf && bpf_map__btf_key_type_id(m) && bpf_map__btf_value_type_id(m)) {
		kname = btf__name_by_offset(btf, btf__type_by_id(btf,
				bpf_map__btf_key_type_id(m))->name_off);
		vname = btf__name_by_offset(btf, btf__type_by_id(btf,
				bpf_map__btf_value_type_id(m))->name_off);
	}
	ok &= check(kname && !strcmp(kname, "relay_flow_key"),
		    "flow map key type is %s", kname ? kname : "(none)");
	ok &= check(vname && !strcmp(vname, "relay_flow_value"),
		    "flow map value type is %s", vname ? vname : "(none)");
	memset(&info, 0, sizeof(info));
	ok &= check(!bpf_obj_get_info_by_fd(bpf_map__fd(m), &info, &info_len),
		    "map info: %s", strerror(errno));
	ok &= check(info.btf_id && info.btf_key_type_id && info.btf_value_type_id,
		    "kernel map has no BTF (btf_id %u key %u value %u)",
		    info.btf_id, info.btf_key_type_id, info.btf_value_type_id);
	tap(ok, "flow map carries BTF for relay_flow_key/relay_flow_value");
}

/* The loader's knobs: port range (rodata) and flow map size. */
static void test_loader_tunables(void)
{
	const struct frame_def in = ON(FLOW_V4), below = ON(FLOW_V4, .spec.dport = 49998),
			       above = ON(FLOW_V4, .spec.dport = 50002);
	const struct expect fwd = FWD(FLOW_V4, 172),
			    other = PASS(RELAY_STAT_PASS_OTHER_PORT);
	struct relay_bpf *skel;
	struct bpf_map_info info;
	__u32 info_len = sizeof(info);
	bool ok = true;
	int err;

	skel = relay_bpf__open();
	if (!skel) {
		tap(false, "loader tunables: open skeleton: %s", strerror(errno));
		return;
	}
	skel->rodata->relay_port_min = 50000;
	skel->rodata->relay_port_max = 50001;
	bpf_map__set_max_entries(skel->maps.relay_flows, 1024);
	err = relay_bpf__load(skel);
	if (!check(err == 0, "load: %s", strerror(-err)) || !skel_fill(skel)) {
		ok = false;
		goto out;
	}
	memset(&info, 0, sizeof(info));
	ok &= check(!bpf_obj_get_info_by_fd(bpf_map__fd(skel->maps.relay_flows),
					    &info, &info_len) &&
		    info.max_entries == 1024,
		    "flow map max_entries %u, want 1024", info.max_entries);
	ok &= check(run_def(skel, &in, &fwd), "port 50000 in range");
	ok &= check(run_def(skel, &below, &other), "port 49998 below range");
	ok &= check(run_def(skel, &above, &other), "port 50002 above range");
out:
	relay_bpf__destroy(skel);
	tap(ok, "relay_port_min/max skip lookups outside the range; flow map size is settable");
}

/* ---- measurements --------------------------------------------------------- */

/* Runs `def` `repeat` times in one BPF_PROG_TEST_RUN; checks that every
 * run counted under `reason`; *ns is the kernel's mean per run. */
static bool bench_repeat(struct relay_bpf *skel, const struct frame_def *def,
			 enum relay_stat_reason reason, __u32 *ns)
{
	struct run_state before, after;
	struct frame f;
	__u32 retval;
	int err;

	def_build(def, &f);
	if (!state_read(skel, &before))
		return false;
	err = test_run(skel, f.buf, f.len, NULL, BENCH_REPEAT, NULL, &retval, ns);
	if (!check(err == 0, "BPF_PROG_TEST_RUN: %s", strerror(-err)) ||
	    !check(retval == XDP_PASS, "verdict %u", retval) ||
	    !state_read(skel, &after))
		return false;
	return stats_moved(&before, &after, reason, BENCH_REPEAT,
			   (uint64_t)BENCH_REPEAT * f.len);
}

/*
 * A forwarded frame cannot be timed with repeat: the kernel reruns the
 * program on the frame it rewrote, which no longer matches (and its TTL
 * would run out anyway). So time single runs of forwarded frames (`fwd`,
 * alternating between its two frames) and of `base`, which passes at a
 * known step, alternately; their difference is what the steps after base's
 * add (the per-run timer overhead cancels). Returns that difference in ns.
 */
static bool bench_forward_delta(struct relay_bpf *skel, const struct frame_def fwd[2],
				const struct frame_def *base, double *delta)
{
	const struct expect want = FWD(fwd[0].flow, 0);
	struct frame f[2], b;
	uint64_t sum_f = 0, sum_b = 0;
	__u32 rf, rb, nf, nb;
	bool ok = true;

	def_build(&fwd[0], &f[0]);
	def_build(&fwd[1], &f[1]);
	def_build(base, &b);
	for (int i = 0; i < BENCH_SINGLES && ok; i++) {
		const struct frame *fi = &f[i & 1];

		ok = !test_run(skel, fi->buf, fi->len, NULL, 1, NULL, &rf, &nf) &&
		     !test_run(skel, b.buf, b.len, NULL, 1, NULL, &rb, &nb);
		ok = check(ok && rf == verdict_of(&want) && rb == XDP_PASS,
			   "single runs: verdicts %u and %u", rf, rb);
		sum_f += nf;
		sum_b += nb;
	}
	*delta = ((double)sum_f - (double)sum_b) / BENCH_SINGLES;
	return ok;
}

/*
 * Three figures per family. The FIB lookup path: a flow whose neighbour is
 * missing (looked up on every frame, passes). The match path as it runs:
 * the flow's frames up to the TTL check (TTL 1 passes there, just before
 * the egress step), timed with repeat, plus the single-run difference to
 * forwarded frames, whose egress comes from the cache (a real lookup every
 * RELAY_EGRESS_REFRESH frames is included). And the same without the cache:
 * forwarded frames alternating between two TOS values (IPv6: flow labels),
 * so each one misses the cache, looks up and stores it.
 */
static void bench_family(struct relay_bpf *skel, const char *fam, enum flow_id fwd,
			 enum flow_id no_neigh)
{
	const bool v4 = flows[fwd].family == AF_INET;
	const struct frame_def nn = ON(no_neigh), ttl1 = ON(fwd, .spec.ttl = 1);
	const struct frame_def same[2] = { ON(fwd), ON(fwd) };
	const struct frame_def other[2] = {
		ON(fwd, .set_tos = true, .tos = v4 ? 0x00 : 0x11111),
		ON(fwd, .set_tos = true, .tos = v4 ? 0x10 : 0x22222),
	};
	const char *how = flows[fwd].egress == PORT_RX ? "TX" : "REDIRECT";
	__u32 fib_ns = 0, pre_ns = 0;
	double hit = 0, miss = 0;
	bool ok;

	ok = bench_repeat(skel, &nn, RELAY_STAT_PASS_NO_NEIGH, &fib_ns) &&
	     bench_repeat(skel, &ttl1, RELAY_STAT_PASS_TTL, &pre_ns) &&
	     bench_forward_delta(skel, same, &ttl1, &hit) &&
	     bench_forward_delta(skel, other, &ttl1, &miss);
	if (ok) {
		printf("# match path up to the FIB lookup (%s, no neighbour): %u ns/packet "
		       "(repeat=%d)\n", fam, fib_ns, BENCH_REPEAT);
		printf("# match path: %.0f ns/packet (%s, egress cached, rewrite + XDP_%s: %u up "
		       "to the egress step (TTL 1, repeat=%d) + %.1f measured over %d single "
		       "runs each; a real lookup every %d packets)\n",
		       pre_ns + hit, fam, how, pre_ns, BENCH_REPEAT, hit, BENCH_SINGLES,
		       RELAY_EGRESS_REFRESH);
		printf("# match path without the cache: %.0f ns/packet (%s, every frame looked "
		       "up, rewrite + XDP_%s: %u + %.1f over %d single runs each)\n",
		       pre_ns + miss, fam, how, pre_ns, miss, BENCH_SINGLES);
	}
	tap(ok, "%s match path timed with and without the egress cache; every run counted "
	    "under its reason", fam);
}

static void bench_miss(struct relay_bpf *skel, const char *fam, enum flow_id flow,
		       uint16_t port)
{
	const struct frame_def miss = ON(flow, .spec.dport = port);
	__u32 ns = 0;
	bool ok;

	ok = bench_repeat(skel, &miss, RELAY_STAT_PASS_NO_FLOW, &ns);
	if (ok)
		printf("# miss path: %u ns/packet (%s, no flow for the port; repeat=%d)\n",
		       ns, fam, BENCH_REPEAT);
	tap(ok, "%s miss path timed with repeat=%d; every run counted as no flow",
	    fam, BENCH_REPEAT);
}

static void test_bench(struct relay_bpf *skel)
{
	bench_miss(skel, "IPv4", FLOW_V4, 50010);
	bench_miss(skel, "IPv6", FLOW_V6, 50010);
	bench_family(skel, "IPv4", FLOW_V4, FLOW_V4_NO_NEIGH);
	bench_family(skel, "IPv6", FLOW_V6, FLOW_V6_NO_NEIGH);
}

/* ---- main ------------------------------------------------------------------ */

static const char *skip_reason(void)
{
	if (geteuid() != 0)
		return "needs root (BPF_PROG_TEST_RUN, a network namespace)";
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, NULL) != 1)
		return "BPF/XDP programs unavailable in this kernel or container";
	return netns_enter();
}

int main(void)
{
	const char *skip;
	struct relay_bpf *skel;

	setvbuf(stdout, NULL, _IOLBF, 0);
	skip = skip_reason();
	if (skip) {
		printf("1..1\nok 1 - relay XDP program under BPF_PROG_TEST_RUN # SKIP %s\n",
		       skip);
		return 0;
	}
	test_checksum_routine();
	tap(netns_setup(), "test namespace with rx0, tx0, nd0, routes and neighbours");
	skel = relay_bpf__open_and_load();
	tap(skel != NULL, "relay.bpf.o opens and passes the verifier");
	if (!skel || tap_failed) {
		relay_bpf__destroy(skel);
		printf("1..%d\n", tap_count);
		return 1;
	}
	test_btf(skel);
	tap(skel_fill(skel), "flows and relay_tx_ports entries insert");
	RUN_CASES(skel, forward_cases);
	RUN_CASES(skel, matched_pass_cases);
	RUN_CASES(skel, other_pass_cases);
	test_truncated(skel);
	test_forwarding_off(skel);
	test_egress_cache(skel);
	test_bench(skel);
	relay_bpf__destroy(skel);
	test_loader_tunables();
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}
