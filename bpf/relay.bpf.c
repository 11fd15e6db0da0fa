/*
 * bpf/relay.bpf.c: the XDP fast path of media-relay (ARCHITECTURE.md, "The
 * fast path", step 4).
 *
 * For each frame: parse Ethernet (plus one 802.1Q/802.1ad tag), IPv4 (with
 * options) or IPv6 (fixed header) and UDP; look up (relay address, port,
 * family) in relay_flows; check that the sender is the latched source; count
 * the outcome in relay_stats. Anything the program does not handle goes
 * XDP_PASS to the stack, where the relay's sockets see it.
 *
 * This version stops after the lookup: every frame is XDP_PASS. A frame that
 * matches its flow updates that flow's counters and is counted as
 * RELAY_STAT_PASS_NOT_YET. Rewriting addresses and ports, incremental
 * checksums, bpf_fib_lookup and XDP_TX / redirect through relay_tx_ports come
 * in the next issue (RELAY_STAT_FORWARDED, _FIB_MISS, _NO_NEIGH and _TTL are
 * reserved for it).
 *
 * Maps: relay_flows (user space writes entries, this program writes their
 * counters), relay_stats (this program counts, user space sums the CPUs),
 * relay_tx_ports (redirect targets; unused yet). Before load, user space may
 * set relay_port_min/relay_port_max and bpf_map__set_max_entries() on
 * relay_flows; it then adds one relay_flows entry per latched direction.
 * With an empty flow map the program passes everything.
 *
 * Loading needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (or CAP_SYS_ADMIN):
 * without CAP_PERFMON the verifier refuses variable packet offsets (IPv4
 * options, the VLAN tag) and packet pointer subtraction (Spectre v1).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "relay_structs.h"

char LICENSE[] SEC("license") = "GPL";

/* vmlinux.h carries types, not macros: the constants we need. */
#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD
#define ETH_P_8021Q	0x8100
#define ETH_P_8021AD	0x88A8
#define IP_MF		0x2000	/* more fragments */
#define IP_OFFSET	0x1fff	/* fragment offset, 8-byte units */

/* IPv6 next-header values that are extension headers (RFC 7045 list,
 * minus ESP, which ends header parsing like any upper layer). */
#define RELAY_NH_HOPOPTS	0
#define RELAY_NH_ROUTING	43
#define RELAY_NH_FRAGMENT	44
#define RELAY_NH_AUTH		51
#define RELAY_NH_DSTOPTS	60
#define RELAY_NH_MOBILITY	135
#define RELAY_NH_HIP		139
#define RELAY_NH_SHIM6		140
#define RELAY_NH_EXP1		253
#define RELAY_NH_EXP2		254

/*
 * Tunables, set by the loader before load. Only UDP to a port in
 * [relay_port_min, relay_port_max] (host order; the relay's port_range)
 * costs a hash lookup. The defaults look up every port.
 */
const volatile __u16 relay_port_min = 0;
const volatile __u16 relay_port_max = 65535;

/* Flows: relayd/forward_xdp.c inserts/deletes one entry per latched
 * direction; this program reads the match/rewrite part and adds to the
 * counters; the relay reads the counters every few seconds. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RELAY_FLOW_MAX_DEFAULT);
	__type(key, struct relay_flow_key);
	__type(value, struct relay_flow_value);
} relay_flows SEC(".maps");

/* Per-reason counters: this program writes its CPU's slot; the relay and
 * tests sum all CPUs (katran-style stats). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RELAY_STAT_MAX);
	__type(key, __u32);
	__type(value, struct relay_stat);
} relay_stats SEC(".maps");

/* Redirect targets keyed by ifindex: the relay fills it with the
 * interfaces it forwards to; the next issue's redirect reads it. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, RELAY_TX_PORTS_MAX);
	__type(key, __u32);
	__type(value, __u32);
} relay_tx_ports SEC(".maps");

/* Own copy: struct vlan_hdr in vmlinux.h would add a CO-RE relocation
 * against a kernel type that a kernel's BTF need not contain. */
struct relay_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* What the parsers learnt about one frame. */
struct relay_pkt {
	struct relay_flow_key key;	/* destination: the relay side */
	__u32 saddr[4];			/* source, IPv4-mapped for v4, network order */
	__be16 sport;			/* source port */
	__u16 l4_max;			/* bytes the IP header says follow it */
	__u32 payload_len;		/* UDP payload bytes (D4) */
};

/* Parsers below take the offset of their header and return the offset of
 * the next one, or minus a RELAY_STAT_PASS_* reason. */

static __always_inline void addr_set_v4(__u32 *dst, __be32 v4)
{
	dst[0] = 0;
	dst[1] = 0;
	dst[2] = bpf_htonl(0x0000ffff);
	dst[3] = v4;
}

static __always_inline void addr_set_v6(__u32 *dst, const struct in6_addr *a)
{
	dst[0] = a->in6_u.u6_addr32[0];
	dst[1] = a->in6_u.u6_addr32[1];
	dst[2] = a->in6_u.u6_addr32[2];
	dst[3] = a->in6_u.u6_addr32[3];
}

/* Sets *proto to the EtherType after at most one VLAN tag: a relay's
 * interface carries plain or singly tagged frames; QinQ passes as not IP. */
static __always_inline int parse_eth(void *data, void *end, __be16 *proto)
{
	struct ethhdr *eth = data;
	struct relay_vlan_hdr *vlan;

	if ((void *)(eth + 1) > end)
		return -RELAY_STAT_PASS_MALFORMED;
	*proto = eth->h_proto;
	if (*proto != bpf_htons(ETH_P_8021Q) && *proto != bpf_htons(ETH_P_8021AD))
		return sizeof(*eth);
	vlan = data + sizeof(*eth);
	if ((void *)(vlan + 1) > end)
		return -RELAY_STAT_PASS_MALFORMED;
	*proto = vlan->proto;
	return sizeof(*eth) + sizeof(*vlan);
}

static __always_inline int parse_ipv4(void *data, void *end, int off,
				      struct relay_pkt *pkt)
{
	struct iphdr *ip = data + off;
	__u32 hlen, tot;

	if ((void *)(ip + 1) > end)
		return -RELAY_STAT_PASS_MALFORMED;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (ip->version != 4 || hlen < sizeof(*ip) || tot < hlen)
		return -RELAY_STAT_PASS_MALFORMED;
	if (data + off + hlen > end)	/* options present but cut off */
		return -RELAY_STAT_PASS_MALFORMED;
	if (ip->protocol != IPPROTO_UDP)
		return -RELAY_STAT_PASS_NOT_UDP;
	/* Only a whole datagram has a UDP header we can trust and forward. */
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return -RELAY_STAT_PASS_FRAGMENT;
	pkt->l4_max = tot - hlen;
	pkt->key.family = RELAY_FAMILY_INET;
	addr_set_v4((__u32 *)pkt->key.addr, ip->daddr);
	addr_set_v4(pkt->saddr, ip->saddr);
	return off + hlen;
}

static __always_inline int ipv6_nexthdr_reason(__u8 nh)
{
	switch (nh) {
	case RELAY_NH_FRAGMENT:
		return RELAY_STAT_PASS_FRAGMENT;
	case RELAY_NH_HOPOPTS:
	case RELAY_NH_ROUTING:
	case RELAY_NH_AUTH:
	case RELAY_NH_DSTOPTS:
	case RELAY_NH_MOBILITY:
	case RELAY_NH_HIP:
	case RELAY_NH_SHIM6:
	case RELAY_NH_EXP1:
	case RELAY_NH_EXP2:
		return RELAY_STAT_PASS_IPV6_EXT;
	default:
		return RELAY_STAT_PASS_NOT_UDP;
	}
}

/* Fixed header only: RTP from a media peer carries no extension headers,
 * and walking them would cost a bounded loop for traffic we never relay. */
static __always_inline int parse_ipv6(void *data, void *end, int off,
				      struct relay_pkt *pkt)
{
	struct ipv6hdr *ip6 = data + off;

	if ((void *)(ip6 + 1) > end)
		return -RELAY_STAT_PASS_MALFORMED;
	if (ip6->version != 6)
		return -RELAY_STAT_PASS_MALFORMED;
	if (ip6->nexthdr != IPPROTO_UDP)
		return -ipv6_nexthdr_reason(ip6->nexthdr);
	pkt->l4_max = bpf_ntohs(ip6->payload_len);
	pkt->key.family = RELAY_FAMILY_INET6;
	addr_set_v6((__u32 *)pkt->key.addr, &ip6->daddr);
	addr_set_v6(pkt->saddr, &ip6->saddr);
	return off + sizeof(*ip6);
}

/* The UDP length must fit both the IP payload and the frame, which may
 * carry Ethernet padding beyond it (so the frame length is not used). */
static __always_inline int parse_udp(void *data, void *end, int off,
				     struct relay_pkt *pkt)
{
	struct udphdr *udp = data + off;
	__u32 ulen;

	if ((void *)(udp + 1) > end)
		return -RELAY_STAT_PASS_MALFORMED;
	ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(*udp) || ulen > pkt->l4_max)
		return -RELAY_STAT_PASS_MALFORMED;
	if ((void *)udp + ulen > end)
		return -RELAY_STAT_PASS_MALFORMED;
	pkt->key.port = udp->dest;
	pkt->sport = udp->source;
	pkt->payload_len = ulen - sizeof(*udp);
	return off + sizeof(*udp);
}

/* Returns the offset of the UDP payload, or minus a reason. */
static __always_inline int relay_parse(void *data, void *end,
				       struct relay_pkt *pkt)
{
	__u16 port;
	__be16 proto;
	int off;

	off = parse_eth(data, end, &proto);
	if (off < 0)
		return off;
	if (proto == bpf_htons(ETH_P_IP))
		off = parse_ipv4(data, end, off, pkt);
	else if (proto == bpf_htons(ETH_P_IPV6))
		off = parse_ipv6(data, end, off, pkt);
	else
		return -RELAY_STAT_PASS_NOT_IP;
	if (off < 0)
		return off;
	off = parse_udp(data, end, off, pkt);
	if (off < 0)
		return off;
	port = bpf_ntohs(pkt->key.port);
	if (port < relay_port_min || port > relay_port_max)
		return -RELAY_STAT_PASS_OTHER_PORT;
	return off;
}

static __always_inline bool relay_source_matches(const struct relay_flow_value *v,
						 const struct relay_pkt *pkt)
{
	const __u32 *want = (const __u32 *)v->src_addr;

	return v->src_port == pkt->sport &&
	       want[0] == pkt->saddr[0] && want[1] == pkt->saddr[1] &&
	       want[2] == pkt->saddr[2] && want[3] == pkt->saddr[3];
}

/* Atomics, not a per-CPU map: see relay_structs.h. */
static __always_inline void relay_flow_account(struct relay_flow_value *v,
					       __u32 payload_len)
{
	__sync_fetch_and_add(&v->bytes, payload_len);
	__sync_fetch_and_add(&v->packets, 1);
	v->last_seen_ns = bpf_ktime_get_ns();
}

/* Source mismatch is not counted in the flow (D4): the relay drops and
 * counts such packets as the stream's dropped_packets. */
static __always_inline int relay_flow_handle(struct relay_pkt *pkt)
{
	struct relay_flow_value *v;

	v = bpf_map_lookup_elem(&relay_flows, &pkt->key);
	if (!v)
		return RELAY_STAT_PASS_NO_FLOW;
	if (!relay_source_matches(v, pkt))
		return RELAY_STAT_PASS_SOURCE_MISMATCH;
	relay_flow_account(v, pkt->payload_len);
	return RELAY_STAT_PASS_NOT_YET;
}

static __always_inline void relay_stat_count(__u32 reason, __u64 bytes)
{
	struct relay_stat *s = bpf_map_lookup_elem(&relay_stats, &reason);

	if (!s)
		return;
	s->packets++;	/* per-CPU slot: no atomics needed */
	s->bytes += bytes;
}

SEC("xdp")
int relay_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct relay_pkt pkt = {};
	int off, reason;

	off = relay_parse(data, end, &pkt);
	if (off < 0)
		reason = -off;
	else
		reason = relay_flow_handle(&pkt);
	relay_stat_count(reason, end - data);
	return XDP_PASS;
}
