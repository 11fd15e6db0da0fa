/*
 * bpf/relay.bpf.c: the XDP fast path of media-relay (ARCHITECTURE.md, "The
 * fast path", step 4).
 *
 * For each frame: parse Ethernet (plus one 802.1Q/802.1ad tag), IPv4 (with
 * options) or IPv6 (fixed header) and UDP; look up (relay address, port,
 * family) in relay_flows; check that the sender is the latched source. A
 * match is rewritten (addresses, ports, TTL, checksums, MACs) and sent with
 * XDP_TX, or XDP_REDIRECT through relay_tx_ports, to where bpf_fib_lookup
 * says the kernel would route it; the flow value caches that answer and
 * looks it up again every RELAY_EGRESS_REFRESH packets (bpf/README.md,
 * "Egress cache"). Anything else goes XDP_PASS to the stack, untouched,
 * where the relay's sockets see it; relay_stats counts why.
 *
 * Every check that can end in XDP_PASS (TTL, FIB, neighbour, devmap) runs
 * before the first write to the frame, so a passed frame is the frame that
 * arrived.
 *
 * Counting contract (PROTOCOL.md D4, relayd/forward.h): a flow's bytes,
 * packets and last_seen_ns move only for frames this program forwards.
 * Whatever it passes reaches user space, which counts it there, so no
 * packet is counted twice.
 *
 * Maps: relay_flows (user space writes entries, this program writes their
 * counters and egress cache), relay_stats (this program counts, user space
 * sums the CPUs), relay_tx_ports (user space lists the interfaces it attached to; this
 * program redirects only to those). Before load, user space may set
 * relay_port_min/relay_port_max and bpf_map__set_max_entries() on
 * relay_flows. With an empty flow map the program passes everything.
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
#define ETH_ALEN	6
#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD
#define ETH_P_8021Q	0x8100
#define ETH_P_8021AD	0x88A8
#define IP_MF		0x2000	/* more fragments */
#define IP_OFFSET	0x1fff	/* fragment offset, 8-byte units */
#define IPV6_FLOWINFO_MASK	0x0fffffff	/* traffic class + flow label */
#define RELAY_ADDR_WORDS	(RELAY_ADDR_LEN / 4)

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

/* Redirect targets keyed by ifindex (value: the same ifindex): the relay
 * adds every interface it attached to; this program redirects there. An
 * egress interface missing here means "not ours": the frame passes. */
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
	__u32 ip_len;			/* IP packet incl. header, host order (FIB MTU check) */
	__be32 flowinfo;		/* IPv6 traffic class + flow label */
	__u8  ip_hlen;			/* IP header bytes: UDP follows them */
	__u8  ttl;			/* TTL / hop limit as received */
	__u8  tos;			/* IPv4 TOS */
	__u8  vlan;			/* the frame carried a VLAN tag */
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

/* The IPv4 address in an IPv4-mapped one (relay_structs.h). */
static __always_inline __be32 addr_v4(const __u8 *mapped)
{
	return ((const __u32 *)mapped)[3];
}

/* Sets *proto to the EtherType after at most one VLAN tag: a relay's
 * interface carries plain or singly tagged frames; QinQ passes as not IP. */
static __always_inline int parse_eth(void *data, void *end, __be16 *proto,
				     struct relay_pkt *pkt)
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
	pkt->vlan = 1;
	return sizeof(*eth) + sizeof(*vlan);
}

/* A forwarded packet must be whole: an IP length beyond the frame would
 * send bytes we do not have (the stack drops such a packet too). Ethernet
 * padding after it is fine. */
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
	if (data + off + tot > end)
		return -RELAY_STAT_PASS_MALFORMED;
	pkt->l4_max = tot - hlen;
	pkt->ip_len = tot;
	pkt->ip_hlen = hlen;
	pkt->ttl = ip->ttl;
	pkt->tos = ip->tos;
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
	__u32 plen;

	if ((void *)(ip6 + 1) > end)
		return -RELAY_STAT_PASS_MALFORMED;
	if (ip6->version != 6)
		return -RELAY_STAT_PASS_MALFORMED;
	if (ip6->nexthdr != IPPROTO_UDP)
		return -ipv6_nexthdr_reason(ip6->nexthdr);
	plen = bpf_ntohs(ip6->payload_len);
	if ((void *)(ip6 + 1) + plen > end)
		return -RELAY_STAT_PASS_MALFORMED;
	pkt->l4_max = plen;
	pkt->ip_len = sizeof(*ip6) + plen;
	pkt->ip_hlen = sizeof(*ip6);
	pkt->ttl = ip6->hop_limit;
	pkt->flowinfo = *(__be32 *)ip6 & bpf_htonl(IPV6_FLOWINFO_MASK);
	pkt->key.family = RELAY_FAMILY_INET6;
	addr_set_v6((__u32 *)pkt->key.addr, &ip6->daddr);
	addr_set_v6(pkt->saddr, &ip6->saddr);
	return off + sizeof(*ip6);
}

/* The UDP length must fit the IP payload (and so the frame, which may
 * carry Ethernet padding beyond it). */
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

	off = parse_eth(data, end, &proto, pkt);
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

/*
 * Asks the kernel where the rewritten packet would go if the stack
 * forwarded it from the ingress interface (flags 0: full lookup with
 * rules, input semantics, the ingress interface must have forwarding on;
 * as xdp-forward and the kernel's xdp_fwd sample do). The MTU check uses
 * the whole IP packet. Returns 0 with egress ifindex and MACs in *fib, or
 * the reason to pass.
 */
static __always_inline int relay_fib(struct xdp_md *ctx, const struct relay_pkt *pkt,
				     const struct relay_flow_value *v,
				     struct bpf_fib_lookup *fib)
{
	const __u32 *src = (const __u32 *)v->new_src_addr;
	const __u32 *dst = (const __u32 *)v->dst_addr;
	long rc;

	fib->l4_protocol = IPPROTO_UDP;
	fib->sport = v->new_src_port;
	fib->dport = v->dst_port;
	fib->tot_len = pkt->ip_len;
	fib->ifindex = ctx->ingress_ifindex;
	if (pkt->key.family == RELAY_FAMILY_INET) {
		fib->family = RELAY_FAMILY_INET;
		fib->tos = pkt->tos;
		fib->ipv4_src = addr_v4(v->new_src_addr);
		fib->ipv4_dst = addr_v4(v->dst_addr);
	} else {
		fib->family = RELAY_FAMILY_INET6;
		fib->flowinfo = pkt->flowinfo;
		for (int i = 0; i < RELAY_ADDR_WORDS; i++) {
			fib->ipv6_src[i] = src[i];
			fib->ipv6_dst[i] = dst[i];
		}
	}
	rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	/* The stack resolves the neighbour when it forwards this one. */
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return RELAY_STAT_PASS_NO_NEIGH;
	return RELAY_STAT_PASS_FIB_MISS;
}

/*
 * Incremental checksum update, RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
 * Words are summed as they sit in memory, whatever the CPU's byte order:
 * a one's complement sum is byte-order independent (RFC 1071 §2.B), and
 * the result goes back to memory the same way. The diff helpers add the
 * "~m + m'" terms; csum_patch() applies them to a checksum field.
 */
static __always_inline __u32 csum_diff32(__u32 diff, __u32 from, __u32 to)
{
	from = ~from;
	return diff + (from >> 16) + (from & 0xffff) + (to >> 16) + (to & 0xffff);
}

static __always_inline __u32 csum_diff16(__u32 diff, __u16 from, __u16 to)
{
	return diff + (__u16)~from + to;
}

/* At most 70 words go into a diff (< 2^23): two folds end every carry. */
static __always_inline __u16 csum_patch(__u16 check, __u32 diff)
{
	__u32 sum = (__u16)~check + diff;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Ports, plus the UDP checksum over them and the pseudo-header's address
 * diff. A zero IPv4 UDP checksum means "none" and stays zero; a checksum
 * that computes to zero is sent as 0xffff (RFC 768; IPv6 requires one). */
static __always_inline void rewrite_udp(struct udphdr *udp,
					const struct relay_flow_value *v,
					__u32 addr_diff, bool v4)
{
	__u32 diff = addr_diff;
	__u16 check;

	diff = csum_diff16(diff, udp->source, v->new_src_port);
	diff = csum_diff16(diff, udp->dest, v->dst_port);
	udp->source = v->new_src_port;
	udp->dest = v->dst_port;
	if (v4 && !udp->check)
		return;
	check = csum_patch(udp->check, diff);
	udp->check = check ? check : 0xffff;
}

/* The TTL shares a 16-bit word with the protocol; the header checksum
 * covers that word and both addresses, the UDP checksum the addresses. */
static __always_inline int rewrite_ipv4(void *data, void *end,
					const struct relay_pkt *pkt,
					const struct relay_flow_value *v)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct udphdr *udp = data + sizeof(struct ethhdr) + pkt->ip_hlen;
	__be32 saddr = addr_v4(v->new_src_addr);
	__be32 daddr = addr_v4(v->dst_addr);
	__u16 *ttl_word = (__u16 *)&ip->ttl;
	__u16 ttl_old, ttl_new;
	__u32 addr_diff;

	if ((void *)(ip + 1) > end || (void *)(udp + 1) > end)
		return -1;
	addr_diff = csum_diff32(0, ip->saddr, saddr);
	addr_diff = csum_diff32(addr_diff, ip->daddr, daddr);
	/* TTL >= 2 here: the high byte does not borrow from anything. */
	ttl_old = *ttl_word;
	ttl_new = bpf_htons(bpf_ntohs(ttl_old) - 0x0100);
	*ttl_word = ttl_new;
	ip->check = csum_patch(ip->check, csum_diff16(addr_diff, ttl_old, ttl_new));
	ip->saddr = saddr;
	ip->daddr = daddr;
	rewrite_udp(udp, v, addr_diff, true);
	return 0;
}

/* IPv6 has no header checksum; the UDP one covers both addresses. */
static __always_inline int rewrite_ipv6(void *data, void *end,
					const struct relay_flow_value *v)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	struct udphdr *udp = (void *)(ip6 + 1);
	const __u32 *src = (const __u32 *)v->new_src_addr;
	const __u32 *dst = (const __u32 *)v->dst_addr;
	__u32 diff = 0;

	if ((void *)(udp + 1) > end)
		return -1;
	for (int i = 0; i < RELAY_ADDR_WORDS; i++) {
		diff = csum_diff32(diff, ip6->saddr.in6_u.u6_addr32[i], src[i]);
		diff = csum_diff32(diff, ip6->daddr.in6_u.u6_addr32[i], dst[i]);
		ip6->saddr.in6_u.u6_addr32[i] = src[i];
		ip6->daddr.in6_u.u6_addr32[i] = dst[i];
	}
	ip6->hop_limit--;
	rewrite_udp(udp, v, diff, false);
	return 0;
}

/* Where a forwarded frame leaves: from the cache or a fresh lookup. The
 * MACs as the Ethernet header has them (destination, source), aligned
 * like the cache's so they move as one 8-byte and one 4-byte word. */
struct relay_egress {
	__u8  mac[12] __attribute__((aligned(8)));
	__u32 ifindex;
};

#define MAC_LO(mac)	(*(__u64 *)(mac))
#define MAC_HI(mac)	(*(__u32 *)((mac) + 8))

/* Only untagged frames get here, so IP starts right after Ethernet. The
 * bounds checks come before any write: on failure the frame is untouched. */
static __always_inline int relay_rewrite(struct xdp_md *ctx, const struct relay_pkt *pkt,
					 const struct relay_flow_value *v,
					 const struct relay_egress *eg)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	int err;

	if ((void *)(eth + 1) > end)
		return -1;
	if (pkt->key.family == RELAY_FAMILY_INET)
		err = rewrite_ipv4(data, end, pkt, v);
	else
		err = rewrite_ipv6(data, end, v);
	if (err)
		return err;
	__builtin_memcpy(eth, eg->mac, sizeof(eg->mac));
	return 0;
}

/* Atomics, not a per-CPU map: see relay_structs.h. last_seen_ns only
 * feeds stream timeouts (seconds), so the coarse clock (same timebase as
 * CLOCK_MONOTONIC, jiffy resolution) does: it costs a few ns where
 * bpf_ktime_get_ns() cost ~40 ns a packet (make bench, issue 7). */
static __always_inline void relay_flow_account(struct relay_flow_value *v,
					       __u32 payload_len)
{
	__sync_fetch_and_add(&v->bytes, payload_len);
	__sync_fetch_and_add(&v->packets, 1);
	v->last_seen_ns = bpf_ktime_get_coarse_ns();
}

/*
 * Whether the packet may take the fast path at all. A foreign source is
 * not counted in the flow (D4): the relay drops it and counts it as the
 * stream's dropped_packets. A value whose family disagrees with its key
 * has unusable rewrite addresses: treated as no flow. VLAN-tagged frames
 * pass (see bpf/README.md): bpf_fib_lookup does not know which VLAN the
 * next hop is on, and the tag is not ours to keep or strip.
 */
static __always_inline int relay_flow_check(const struct relay_flow_value *v,
					    const struct relay_pkt *pkt)
{
	if (!v || v->family != pkt->key.family)
		return RELAY_STAT_PASS_NO_FLOW;
	if (!relay_source_matches(v, pkt))
		return RELAY_STAT_PASS_SOURCE_MISMATCH;
	if (pkt->vlan)
		return RELAY_STAT_PASS_VLAN;
	/* The stack sends the ICMP time exceeded. */
	if (pkt->ttl <= 1)
		return RELAY_STAT_PASS_TTL;
	return 0;
}

/*
 * The egress cache (relay_structs.h, bpf/README.md). It holds for frames
 * like the one that was looked up: same ingress interface, same tos /
 * flowinfo (policy rules and multipath may look at them), an IP length the
 * route's MTU check passed. And it is refreshed with a real lookup when
 * the flow's packet counter (forwarded packets) is a multiple of
 * RELAY_EGRESS_REFRESH, so route and neighbour changes reach a flow within
 * that many packets.
 *
 * Concurrency: one flow's frames arrive on one RX queue (RSS hashes the
 * 5-tuple), so one CPU reads and writes its cache. Should two CPUs meet on
 * one entry, a writer clears `valid` first and sets it last, with compiler
 * barriers between (x86 keeps stores in order); two writers store the same
 * values unless the route changed between their lookups; a refresh that
 * finds what is cached writes nothing. A reader can only see a mix of old
 * and new MACs while another CPU rewrites the entry for a changed route,
 * i.e. while packets of the old route are still in flight anyway.
 */
static __always_inline __u32 relay_egress_tos(const struct relay_pkt *pkt)
{
	return pkt->key.family == RELAY_FAMILY_INET ? pkt->tos : pkt->flowinfo;
}

/* True, with *eg filled, when the cached egress may be used for this frame. */
static __always_inline bool relay_egress_cached(__u32 ingress, const struct relay_pkt *pkt,
						const struct relay_flow_value *v,
						struct relay_egress *eg)
{
	const struct relay_flow_egress *c = &v->egress;

	if (!(v->packets & (RELAY_EGRESS_REFRESH - 1)))
		return false;
	if (c->valid != RELAY_EGRESS_VALID)
		return false;
	barrier();	/* the marker before what it vouches for */
	if (c->ingress != ingress || c->tos != relay_egress_tos(pkt) ||
	    pkt->ip_len > c->max_len)
		return false;
	MAC_LO(eg->mac) = MAC_LO(c->mac);
	MAC_HI(eg->mac) = MAC_HI(c->mac);
	eg->ifindex = c->ifindex;
	return true;
}

static __always_inline void relay_egress_invalidate(struct relay_flow_value *v)
{
	if (v->egress.valid)
		v->egress.valid = 0;
}

/* After a successful lookup that led to a forward. A longer packet only
 * raises max_len; a refresh starts it again from this packet. */
static __always_inline void relay_egress_store(__u32 ingress, const struct relay_pkt *pkt,
					       struct relay_flow_value *v,
					       const struct relay_egress *eg)
{
	struct relay_flow_egress *c = &v->egress;
	__u32 tos = relay_egress_tos(pkt);

	if (c->valid == RELAY_EGRESS_VALID && MAC_LO(c->mac) == MAC_LO(eg->mac) &&
	    MAC_HI(c->mac) == MAC_HI(eg->mac) && c->ifindex == eg->ifindex &&
	    c->ingress == ingress && c->tos == tos) {
		if (c->max_len != pkt->ip_len)
			c->max_len = pkt->ip_len;
		return;
	}
	c->valid = 0;
	barrier();
	MAC_LO(c->mac) = MAC_LO(eg->mac);
	MAC_HI(c->mac) = MAC_HI(eg->mac);
	c->ifindex = eg->ifindex;
	c->ingress = ingress;
	c->tos = tos;
	c->max_len = pkt->ip_len;
	barrier();
	c->valid = RELAY_EGRESS_VALID;
}

/* A real lookup: 0 with *eg filled, or the reason to pass. */
static __always_inline int relay_egress_lookup(struct xdp_md *ctx, const struct relay_pkt *pkt,
					       const struct relay_flow_value *v,
					       struct relay_egress *eg)
{
	struct bpf_fib_lookup fib = {};
	int reason = relay_fib(ctx, pkt, v, &fib);

	if (reason)
		return reason;
	__builtin_memcpy(eg->mac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eg->mac + ETH_ALEN, fib.smac, ETH_ALEN);
	eg->ifindex = fib.ifindex;
	return 0;
}

/* Returns the stats reason and sets *verdict when the frame is sent. */
static __always_inline int relay_forward(struct xdp_md *ctx, struct relay_pkt *pkt,
					 __u32 *verdict)
{
	__u32 ingress = ctx->ingress_ifindex;
	struct relay_egress eg;
	struct relay_flow_value *v;
	bool fresh = false;
	__u32 action;
	int reason;

	v = bpf_map_lookup_elem(&relay_flows, &pkt->key);
	reason = relay_flow_check(v, pkt);
	if (reason || !v)	/* !v never gets past the check; the verifier wants it */
		return reason;
	if (!relay_egress_cached(ingress, pkt, v, &eg)) {
		reason = relay_egress_lookup(ctx, pkt, v, &eg);
		if (reason) {
			relay_egress_invalidate(v);
			return reason;
		}
		fresh = true;
	}
	if (eg.ifindex == ingress) {
		action = XDP_TX;
	} else {
		/* Falls back to XDP_PASS when the egress interface is not in
		 * the devmap; the redirect itself happens after we return,
		 * so the rewrite below may follow. A cache that names such
		 * an interface is dropped, so the next frame looks again. */
		action = bpf_redirect_map(&relay_tx_ports, eg.ifindex, XDP_PASS);
		if (action != XDP_REDIRECT) {
			relay_egress_invalidate(v);
			return RELAY_STAT_PASS_NO_TX_PORT;
		}
	}
	if (fresh)
		relay_egress_store(ingress, pkt, v, &eg);
	if (relay_rewrite(ctx, pkt, v, &eg))
		return RELAY_STAT_PASS_MALFORMED;
	relay_flow_account(v, pkt->payload_len);
	*verdict = action;
	return RELAY_STAT_FORWARDED;
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
	__u64 frame_len = end - data;
	struct relay_pkt pkt = {};
	__u32 verdict = XDP_PASS;
	int off, reason;

	off = relay_parse(data, end, &pkt);
	if (off < 0)
		reason = -off;
	else
		reason = relay_forward(ctx, &pkt, &verdict);
	relay_stat_count(reason, frame_len);
	return verdict;
}
