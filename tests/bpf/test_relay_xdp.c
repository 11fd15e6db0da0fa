/*
 * tests/bpf/test_relay_xdp.c: the XDP program's parsing, flow lookup and
 * counters, run through BPF_PROG_TEST_RUN on crafted frames with correct
 * checksums. Each case checks the verdict, that the frame comes out
 * unchanged, the per-reason stats (summed over CPUs) and the flow counters.
 * Needs root; prints TAP (a skip says why).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "relay_structs.h"
#include "relay.skel.h"

#define FRAME_MAX	512
#define ETH_HLEN	14
#define ETH_ZLEN	60	/* minimum frame without FCS */

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

/* ---- reference Internet checksum (RFC 1071) ----------------------------- */

static uint32_t csum_add(uint32_t sum, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* Pseudo-header sum for an L4 segment (RFC 768, RFC 8200 §8.1). */
static uint32_t csum_pseudo(int family, const uint8_t *ip, uint8_t proto,
			    size_t l4_len)
{
	uint8_t w[4];
	uint32_t sum;

	if (family == AF_INET)
		sum = csum_add(0, ip + 12, 8);
	else
		sum = csum_add(0, ip + 8, 32);
	put16(w, 0);
	put16(w + 2, (uint16_t)l4_len);
	sum = csum_add(sum, w, 4);
	put16(w, 0);
	put16(w + 2, proto);
	return csum_add(sum, w, 4);
}

/* ---- flows -------------------------------------------------------------- */

enum flow_id { FLOW_NONE, FLOW_V4, FLOW_V6, FLOW_COUNT };

struct flow_def {
	int family;
	const char *relay;	uint16_t relay_port;
	const char *src;	uint16_t src_port;
	const char *new_src;	uint16_t new_src_port;
	const char *dst;	uint16_t dst_port;
};

static const struct flow_def flows[FLOW_COUNT] = {
	[FLOW_V4] = { AF_INET, "192.0.2.1", 50000, "198.51.100.7", 40000,
		      "192.0.2.1", 50002, "203.0.113.20", 30000 },
	[FLOW_V6] = { AF_INET6, "2001:db8::1", 50004, "2001:db8:1::7", 40004,
		      "2001:db8::1", 50006, "2001:db8:2::9", 30004 },
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

static int flow_insert(struct relay_bpf *skel, enum flow_id id)
{
	const struct flow_def *d = &flows[id];
	struct relay_flow_value v;
	struct relay_flow_key k;

	memset(&v, 0, sizeof(v));
	flow_key(id, &k);
	addr_mapped(d->family, d->src, v.src_addr);
	addr_mapped(d->family, d->dst, v.dst_addr);
	addr_mapped(d->family, d->new_src, v.new_src_addr);
	v.src_port = htons(d->src_port);
	v.dst_port = htons(d->dst_port);
	v.new_src_port = htons(d->new_src_port);
	v.family = family_code(d->family);
	return bpf_map_update_elem(bpf_map__fd(skel->maps.relay_flows), &k, &v,
				   BPF_NOEXIST);
}

static int flow_read(struct relay_bpf *skel, enum flow_id id,
		     struct relay_flow_value *v)
{
	struct relay_flow_key k;

	flow_key(id, &k);
	return bpf_map_lookup_elem(bpf_map__fd(skel->maps.relay_flows), &k, v);
}

/* ---- frames ------------------------------------------------------------- */

/* Zero fields take the defaults of .flow: RTP from its latched source to
 * its relay address and port, 172 bytes of payload. */
struct frame_spec {
	int flow;		/* FLOW_V4 or FLOW_V6: family and defaults */
	uint16_t tpid;		/* VLAN TPID; 0 = untagged */
	uint16_t ethertype;	/* override (ARP); 0 = from family */
	const char *src, *dst;
	uint16_t sport, dport;
	uint8_t proto;		/* 0 = UDP */
	uint8_t ihl;		/* IPv4 header length in words; 0 = 5 */
	uint8_t version;	/* IP version nibble; 0 = the right one */
	uint16_t frag;		/* IPv4 flags + fragment offset, host order */
	bool v6_ext;		/* one IPv6 extension header before L4 */
	uint8_t v6_ext_type;	/* its type: 0 hop-by-hop, 44 fragment, ... */
	uint16_t payload;	/* L4 payload bytes; 0 = 172 */
	bool empty;		/* no payload at all */
	int udp_len_delta;	/* added to the true UDP length field */
	size_t pad_to;		/* zero-pad the frame to this length */
	int family;		/* set by spec_resolve() from .flow */
};

struct frame {
	uint8_t buf[FRAME_MAX];
	size_t len;
	size_t ip_off, l4_off, l4_len;
	int family;
	uint8_t proto;
};

#define RTP_PAYLOAD	172	/* 20 ms of G.711 plus the RTP header */

/* Copies *in with every zero field replaced by its default. */
static void spec_resolve(const struct frame_spec *in, struct frame_spec *s)
{
	const struct flow_def *d = &flows[in->flow ? in->flow : FLOW_V4];

	*s = *in;
	s->family = d->family;
	s->src = s->src ? s->src : d->src;
	s->dst = s->dst ? s->dst : d->relay;
	s->sport = s->sport ? s->sport : d->src_port;
	s->dport = s->dport ? s->dport : d->relay_port;
	s->proto = s->proto ? s->proto : IPPROTO_UDP;
	s->ihl = s->ihl ? s->ihl : 5;
	s->payload = s->empty ? 0 : s->payload ? s->payload : RTP_PAYLOAD;
}

static size_t put_eth(const struct frame_spec *s, uint8_t *p)
{
	static const uint8_t macs[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
	uint16_t type = s->ethertype ? s->ethertype :
			s->family == AF_INET ? 0x0800 : 0x86dd;
	size_t off = 12;

	memcpy(p, macs, sizeof(macs));
	if (s->tpid) {
		put16(p + off, s->tpid);
		put16(p + off + 2, 100);	/* VLAN 100 */
		off += 4;
	}
	put16(p + off, type);
	return off + 2;
}

static size_t put_ipv4(const struct frame_spec *s, uint8_t *p, size_t l4_len)
{
	size_t hlen = 4 * s->ihl;

	memset(p, 1, hlen < 20 ? 20 : hlen);	/* options, if any: NOPs */
	p[0] = (s->version ? s->version : 4) << 4 | s->ihl;
	p[1] = 0;
	put16(p + 2, (uint16_t)(hlen + l4_len));
	put16(p + 4, 0x1234);
	put16(p + 6, s->frag);
	p[8] = 64;
	p[9] = s->proto;
	put16(p + 10, 0);
	inet_pton(AF_INET, s->src, p + 12);
	inet_pton(AF_INET, s->dst, p + 16);
	if (hlen < 20)		/* a broken IHL: keep the 20 bytes written */
		hlen = 20;
	put16(p + 10, csum_fold(csum_add(0, p, hlen)));
	return hlen;
}

static size_t put_ipv6(const struct frame_spec *s, uint8_t *p, size_t l4_len)
{
	size_t ext = s->v6_ext ? 8 : 0;

	memset(p, 0, 40 + ext);
	p[0] = (s->version ? s->version : 6) << 4;
	put16(p + 4, (uint16_t)(ext + l4_len));
	p[6] = s->v6_ext ? s->v6_ext_type : s->proto;
	p[7] = 64;
	inet_pton(AF_INET6, s->src, p + 8);
	inet_pton(AF_INET6, s->dst, p + 24);
	if (!s->v6_ext)
		return 40;
	p[40] = s->proto;		/* next header after the extension */
	if (s->v6_ext_type == 44) {
		put16(p + 42, 0x0001);	/* offset 0, M flag: a first fragment */
		put16(p + 46, 0x5678);	/* identification */
	} else {
		p[42] = 1;		/* PadN option, 4 bytes of padding */
		p[43] = 4;
	}
	return 48;
}

static void put_l4(const struct frame_spec *s, struct frame *f)
{
	uint8_t *l4 = f->buf + f->l4_off;
	size_t hlen = f->l4_len - s->payload;
	uint16_t sum;

	put16(l4, s->sport);
	put16(l4 + 2, s->dport);
	if (s->proto == IPPROTO_TCP) {
		l4[12] = 5 << 4;	/* data offset */
		l4[13] = 0x02;		/* SYN */
		put16(l4 + 14, 65535);
	} else {
		put16(l4 + 4, (uint16_t)(f->l4_len + s->udp_len_delta));
	}
	for (size_t i = 0; i < s->payload; i++)
		l4[hlen + i] = (uint8_t)(i * 7 + 1);
	sum = csum_fold(csum_add(csum_pseudo(f->family, f->buf + f->ip_off,
					     s->proto, f->l4_len), l4, f->l4_len));
	if (s->proto == IPPROTO_UDP && sum == 0)
		sum = 0xffff;		/* 0 means "no checksum" in UDP */
	put16(l4 + (s->proto == IPPROTO_TCP ? 16 : 6), sum);
}

/* Builds the frame with valid IP and L4 checksums (the L4 checksum covers
 * the whole segment, even when the UDP length field is made wrong). */
static void frame_build(const struct frame_spec *in, struct frame *f)
{
	struct frame_spec s;

	spec_resolve(in, &s);
	memset(f, 0, sizeof(*f));
	f->family = s.family;
	f->proto = s.proto;
	f->ip_off = put_eth(&s, f->buf);
	if (s.ethertype) {		/* not IP: an ARP-sized body */
		f->len = f->ip_off + 28;
		return;
	}
	f->l4_len = (s.proto == IPPROTO_TCP ? 20 : 8) + s.payload;
	if (s.family == AF_INET)
		f->l4_off = f->ip_off + put_ipv4(&s, f->buf + f->ip_off, f->l4_len);
	else
		f->l4_off = f->ip_off + put_ipv6(&s, f->buf + f->ip_off, f->l4_len);
	put_l4(&s, f);
	f->len = f->l4_off + f->l4_len;
	if (f->len < s.pad_to)
		f->len = s.pad_to;
}

/* Checksums as a receiver verifies them: each sum must fold to zero. */
static bool frame_checksums_ok(const struct frame *f)
{
	const uint8_t *ip = f->buf + f->ip_off;
	const uint8_t *l4 = f->buf + f->l4_off;

	if (f->family == AF_INET && csum_fold(csum_add(0, ip, 4 * (ip[0] & 0xf))))
		return false;
	return csum_fold(csum_add(csum_pseudo(f->family, ip, f->proto, f->l4_len),
				  l4, f->l4_len)) == 0;
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

/* What one run must change. */
struct expect {
	enum relay_stat_reason reason;
	enum flow_id flow;		/* FLOW_NONE: no flow changes */
	uint64_t payload;		/* bytes the flow must gain */
};

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
			const struct expect *want, uint64_t frame_len)
{
	bool ok = true;

	for (unsigned int r = 0; r < RELAY_STAT_MAX; r++) {
		uint64_t dp = b->stats.r[r].packets - a->stats.r[r].packets;
		uint64_t db = b->stats.r[r].bytes - a->stats.r[r].bytes;
		uint64_t wp = r == want->reason ? 1 : 0;
		uint64_t wb = r == want->reason ? frame_len : 0;

		ok &= check(dp == wp && db == wb,
			    "stat %s: +%llu packets +%llu bytes, want +%llu +%llu",
			    reason_name(r), (unsigned long long)dp,
			    (unsigned long long)db, (unsigned long long)wp,
			    (unsigned long long)wb);
	}
	return ok;
}

static bool flows_moved(const struct run_state *a, const struct run_state *b,
			const struct expect *want, uint64_t t0, uint64_t t1)
{
	bool ok = true;

	for (int id = FLOW_V4; id < FLOW_COUNT; id++) {
		const struct relay_flow_value *x = &a->flow[id], *y = &b->flow[id];

		if (id != (int)want->flow) {
			ok &= check(!memcmp(x, y, sizeof(*x)),
				    "flow %d changed, but the frame is not its", id);
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
		ok &= check(y->last_seen_ns >= t0 && y->last_seen_ns <= t1,
			    "last_seen_ns %llu outside the run [%llu, %llu]",
			    (unsigned long long)y->last_seen_ns,
			    (unsigned long long)t0, (unsigned long long)t1);
		/* the rewrite part is user space's; the program must not touch it */
		ok &= check(!memcmp(x, y, __builtin_offsetof(struct relay_flow_value, bytes)),
			    "flow match/rewrite fields changed");
	}
	return ok;
}

/* Runs one frame; true when verdict, output, stats and flows are as wanted. */
static bool run_frame(struct relay_bpf *skel, const uint8_t *data, size_t len,
		      const struct expect *want)
{
	uint8_t out[FRAME_MAX];
	struct run_state before, after;
	uint64_t t0, t1;
	bool ok = true;
	int err;
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = data,
		.data_size_in = (__u32)len,
		.data_out = out,
		.data_size_out = sizeof(out),
		.repeat = 1,
	);

	if (!state_read(skel, &before))
		return false;
	t0 = now_ns();
	err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.relay_xdp), &opts);
	t1 = now_ns();
	if (!check(err == 0, "BPF_PROG_TEST_RUN: %s", strerror(-err)))
		return false;
	ok &= check(opts.retval == XDP_PASS, "verdict %u, want XDP_PASS", opts.retval);
	ok &= check(opts.data_size_out == len && !memcmp(out, data, len),
		    "frame changed (%u bytes out, %zu in)", opts.data_size_out, len);
	if (!state_read(skel, &after))
		return false;
	ok &= stats_moved(&before, &after, want, len);
	ok &= flows_moved(&before, &after, want, t0, t1);
	return ok;
}

/* ---- the cases ---------------------------------------------------------- */

#define V4		.flow = FLOW_V4
#define V6		.flow = FLOW_V6
#define HIT(f, n)	{ .reason = RELAY_STAT_PASS_NOT_YET, .flow = (f), .payload = (n) }
#define PASS(r)		{ .reason = (r) }

struct xdp_case {
	const char *name;
	struct frame_spec spec;
	struct expect want;
};

static const struct xdp_case cases[] = {
	{ "IPv4 RTP from the latched source updates its flow",
	  { V4 }, HIT(FLOW_V4, 172) },
	{ "IPv4 RTP from another address is a source mismatch",
	  { V4, .src = "198.51.100.8" }, PASS(RELAY_STAT_PASS_SOURCE_MISMATCH) },
	{ "IPv4 RTP from the latched address but another port is a source mismatch",
	  { V4, .sport = 40001 }, PASS(RELAY_STAT_PASS_SOURCE_MISMATCH) },
	{ "IPv4 RTP to a relay port without a flow",
	  { V4, .dport = 50010 }, PASS(RELAY_STAT_PASS_NO_FLOW) },
	{ "IPv4 RTP to the flow's port on another local address",
	  { V4, .dst = "192.0.2.2" }, PASS(RELAY_STAT_PASS_NO_FLOW) },
	{ "IPv6 to the IPv4-mapped relay address is not the IPv4 flow",
	  { V6, .dst = "::ffff:192.0.2.1", .src = "::ffff:198.51.100.7",
	    .sport = 40000, .dport = 50000 }, PASS(RELAY_STAT_PASS_NO_FLOW) },
	{ "802.1Q-tagged IPv4 RTP from the latched source",
	  { V4, .tpid = 0x8100 }, HIT(FLOW_V4, 172) },
	{ "802.1ad-tagged IPv4 RTP from the latched source",
	  { V4, .tpid = 0x88a8 }, HIT(FLOW_V4, 172) },
	{ "IPv4 with 12 bytes of options (IHL 8) from the latched source",
	  { V4, .ihl = 8 }, HIT(FLOW_V4, 172) },
	{ "tagged IPv4 with the longest header (IHL 15)",
	  { V4, .ihl = 15, .tpid = 0x8100 }, HIT(FLOW_V4, 172) },
	{ "minimum Ethernet frame: 4-byte payload plus padding counts 4 bytes",
	  { V4, .payload = 4, .pad_to = ETH_ZLEN }, HIT(FLOW_V4, 4) },
	{ "empty UDP datagram from the latched source counts 0 bytes",
	  { V4, .empty = true }, HIT(FLOW_V4, 0) },
	{ "IPv4 first fragment (MF set)",
	  { V4, .frag = 0x2000 }, PASS(RELAY_STAT_PASS_FRAGMENT) },
	{ "IPv4 later fragment (offset 185)",
	  { V4, .frag = 185 }, PASS(RELAY_STAT_PASS_FRAGMENT) },
	{ "IPv4 with DF set is a whole datagram",
	  { V4, .frag = 0x4000 }, HIT(FLOW_V4, 172) },
	{ "IPv4 TCP to the relay port is not UDP",
	  { V4, .proto = IPPROTO_TCP }, PASS(RELAY_STAT_PASS_NOT_UDP) },
	{ "ARP is not IP",
	  { V4, .ethertype = 0x0806 }, PASS(RELAY_STAT_PASS_NOT_IP) },
	{ "IPv4 header length below 20 bytes is malformed",
	  { V4, .ihl = 4 }, PASS(RELAY_STAT_PASS_MALFORMED) },
	/* Read at IHL 4, the addresses and ports would make a plausible UDP
	 * header (length 8 from the source port): only the IHL check stops it. */
	{ "IPv4 IHL 4 with bytes that would parse as UDP is malformed",
	  { V4, .ihl = 4, .sport = 8 }, PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "IPv4 EtherType carrying an IPv6 version nibble is malformed",
	  { V4, .version = 6 }, PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "IPv6 EtherType carrying an IPv4 version nibble is malformed",
	  { V6, .version = 4 }, PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "UDP length below the UDP header is malformed",
	  { V4, .udp_len_delta = -173 }, PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "UDP length beyond the IP payload is malformed",
	  { V4, .udp_len_delta = 1 }, PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "UDP length reaching into Ethernet padding is malformed",
	  { V4, .payload = 4, .pad_to = ETH_ZLEN, .udp_len_delta = 10 },
	  PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "IPv6 UDP length beyond the IPv6 payload is malformed",
	  { V6, .payload = 4, .pad_to = 80, .udp_len_delta = 10 },
	  PASS(RELAY_STAT_PASS_MALFORMED) },
	{ "IPv6 RTP from the latched source updates its flow",
	  { V6 }, HIT(FLOW_V6, 172) },
	{ "802.1Q-tagged IPv6 RTP from the latched source",
	  { V6, .tpid = 0x8100 }, HIT(FLOW_V6, 172) },
	{ "IPv6 RTP from another address is a source mismatch",
	  { V6, .src = "2001:db8:1::8" }, PASS(RELAY_STAT_PASS_SOURCE_MISMATCH) },
	{ "IPv6 with a hop-by-hop header passes as extension header",
	  { V6, .v6_ext = true, .v6_ext_type = 0 }, PASS(RELAY_STAT_PASS_IPV6_EXT) },
	{ "IPv6 with a fragment header passes as fragment",
	  { V6, .v6_ext = true, .v6_ext_type = 44 }, PASS(RELAY_STAT_PASS_FRAGMENT) },
	{ "IPv6 TCP is not UDP",
	  { V6, .proto = IPPROTO_TCP }, PASS(RELAY_STAT_PASS_NOT_UDP) },
};

static void test_cases(struct relay_bpf *skel)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct xdp_case *c = &cases[i];
		struct frame f;

		frame_build(&c->spec, &f);
		tap(run_frame(skel, f.buf, f.len, &c->want), "%s", c->name);
	}
}

/* Every cut of a valid frame (BPF_PROG_TEST_RUN refuses fewer than 14
 * bytes) must pass as malformed and touch no flow. */
static void test_truncated(struct relay_bpf *skel)
{
	static const struct { const char *name; struct frame_spec spec; } t[] = {
		{ "tagged IPv4 with options", { V4, .tpid = 0x8100, .ihl = 7 } },
		{ "IPv6", { V6 } },
	};
	const struct expect want = PASS(RELAY_STAT_PASS_MALFORMED);

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct frame f;
		bool ok = true;

		frame_build(&t[i].spec, &f);
		for (size_t cut = ETH_HLEN; cut < f.len && ok; cut++)
			ok = check(run_frame(skel, f.buf, cut, &want),
				   "cut at %zu of %zu bytes", cut, f.len);
		tap(ok, "every truncation of a %s RTP frame passes as malformed",
		    t[i].name);
	}
}

static void test_checksum_routine(void)
{
	/* IPv4 header with a known checksum (0xb861). */
	static const uint8_t hdr[20] = {
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	};
	struct frame_spec v4 = { V4, .ihl = 6, .tpid = 0x8100 };
	struct frame_spec v6 = { V6, .payload = 171 };
	struct frame f4, f6;
	bool ok;

	ok = check(csum_fold(csum_add(0, hdr, sizeof(hdr))) == 0xb861,
		   "reference IPv4 header checksum wrong");
	frame_build(&v4, &f4);
	frame_build(&v6, &f6);
	ok &= check(frame_checksums_ok(&f4), "IPv4 frame checksums");
	ok &= check(frame_checksums_ok(&f6), "IPv6 frame checksums (odd length)");
	f4.buf[f4.len - 1] ^= 0x40;
	ok &= check(!frame_checksums_ok(&f4), "a flipped bit went unnoticed");
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
	struct frame_spec in = { V4 }, below = { V4, .dport = 49998 },
			  above = { V4, .dport = 50002 };
	const struct expect hit = HIT(FLOW_V4, 172),
			    other = PASS(RELAY_STAT_PASS_OTHER_PORT);
	struct relay_bpf *skel;
	struct bpf_map_info info;
	__u32 info_len = sizeof(info);
	struct frame f;
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
	if (!check(err == 0, "load: %s", strerror(-err)) ||
	    !check(flow_insert(skel, FLOW_V4) == 0, "flow insert: %s", strerror(errno))) {
		ok = false;
		goto out;
	}
	memset(&info, 0, sizeof(info));
	ok &= check(!bpf_obj_get_info_by_fd(bpf_map__fd(skel->maps.relay_flows),
					    &info, &info_len) &&
		    info.max_entries == 1024,
		    "flow map max_entries %u, want 1024", info.max_entries);
	frame_build(&in, &f);
	ok &= check(run_frame(skel, f.buf, f.len, &hit), "port 50000 in range");
	frame_build(&below, &f);
	ok &= check(run_frame(skel, f.buf, f.len, &other), "port 49998 below range");
	frame_build(&above, &f);
	ok &= check(run_frame(skel, f.buf, f.len, &other), "port 50002 above range");
out:
	relay_bpf__destroy(skel);
	tap(ok, "relay_port_min/max skip lookups outside the range; flow map size is settable");
}

static const char *skip_reason(void)
{
	if (geteuid() != 0)
		return "needs root (BPF_PROG_TEST_RUN)";
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, NULL) != 1)
		return "BPF/XDP programs unavailable in this kernel or container";
	return NULL;
}

int main(void)
{
	const char *skip = skip_reason();
	struct relay_bpf *skel;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (skip) {
		printf("1..1\nok 1 - relay XDP program under BPF_PROG_TEST_RUN # SKIP %s\n",
		       skip);
		return 0;
	}
	test_checksum_routine();
	skel = relay_bpf__open_and_load();
	tap(skel != NULL, "relay.bpf.o opens and passes the verifier");
	if (!skel) {
		printf("1..%d\n", tap_count);
		return 1;
	}
	test_btf(skel);
	tap(flow_insert(skel, FLOW_V4) == 0 && flow_insert(skel, FLOW_V6) == 0,
	    "flow entries insert with bpf_map_update_elem");
	test_cases(skel);
	test_truncated(skel);
	relay_bpf__destroy(skel);
	test_loader_tunables();
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}
