/*
 * bpf/relay_structs.h: the map keys, values and constants shared by the XDP
 * program (bpf/relay.bpf.c) and the relay (relayd/forward_xdp.c). Plain
 * structs only; fixed-width types with explicit padding, because the flow
 * key is hashed byte for byte and maps stay pinned across relay restarts.
 */
#ifndef RELAY_STRUCTS_H
#define RELAY_STRUCTS_H

/*
 * BPF C gets __u8 and friends from vmlinux.h, which clashes with
 * <linux/types.h>, so only user space includes the latter.
 */
#ifdef __bpf__
#ifndef __VMLINUX_H__
#error "include vmlinux.h before relay_structs.h"
#endif
#else
#include <linux/types.h>
#endif

/* Values of AF_INET / AF_INET6 on Linux; vmlinux.h carries no macros. */
#define RELAY_FAMILY_INET	2
#define RELAY_FAMILY_INET6	10

/* Default flow map size; the loader may change it with
 * bpf_map__set_max_entries() before load (one entry per direction). */
#define RELAY_FLOW_MAX_DEFAULT	65536

/* Default devmap size for redirect targets (keyed by ifindex). */
#define RELAY_TX_PORTS_MAX	64

/*
 * Addresses are 16 bytes in network order: IPv6 as is, IPv4 as an
 * IPv4-mapped address (::ffff:a.b.c.d), so one key type serves both.
 */
#define RELAY_ADDR_LEN		16

/*
 * Flow map key: where a packet arrived, i.e. the relay's own address and
 * port that the sender latched on to. One entry per direction of a stream.
 */
struct relay_flow_key {
	__u8  addr[RELAY_ADDR_LEN];	/* relay address, IPv4-mapped for v4, network order */
	__u16 port;			/* relay port, network order */
	__u8  family;			/* RELAY_FAMILY_INET or RELAY_FAMILY_INET6 */
	__u8  pad;			/* always zero: the whole key is hashed */
};

/*
 * The program's cache of bpf_fib_lookup() for one flow (bpf/README.md,
 * "Egress cache"): where the rewritten packet leaves and with which MACs.
 * User space writes it as zeroes (valid == 0: look up) and never relies on
 * it; the program fills it after a successful lookup, uses it while it
 * holds, and looks up again every RELAY_EGRESS_REFRESH forwarded packets of
 * the flow, and whenever the frame differs from what was looked up
 * (ingress interface, TOS / traffic class and flow label, an IP packet
 * longer than any the route's MTU check passed since the last refresh).
 *
 * The 12 MAC bytes sit as the Ethernet header has them, 8-byte aligned, so
 * the program reads and writes them as one 8-byte and one 4-byte access.
 */
struct relay_flow_egress {
	__u8  mac[12];			/* destination MAC, then source MAC */
	__u32 ifindex;			/* egress interface */
	__u32 ingress;			/* ingress ifindex the lookup was made for */
	__u32 tos;			/* the lookup's tos (v4 TOS) or flowinfo (v6), as sent */
	__u32 max_len;			/* longest IP packet (host order) the MTU check passed */
	__u8  valid;			/* RELAY_EGRESS_VALID, or 0: look up; written last */
	__u8  pad[3];			/* always zero */
} __attribute__((aligned(8)));

#define RELAY_EGRESS_VALID	1

/* Forwarded packets of a flow between two real lookups: the cache is
 * refreshed when the flow's packet counter is a multiple of this (a power
 * of two), so a route or neighbour change reaches a flow within this many
 * packets (~5 s of one 50 pps RTP stream). */
#define RELAY_EGRESS_REFRESH	256

/*
 * Flow map value. User space writes the first block (match + rewrite); the
 * XDP program writes only the counters and the egress cache.
 *
 * Counters: only frames the program forwards (XDP_TX or a successful
 * redirect) are counted here; frames it passes reach the relay's sockets
 * and user space counts those, so nothing is counted twice.
 *
 * The flow map is a plain BPF_MAP_TYPE_HASH and the program adds with
 * atomic instructions (last_seen_ns is a plain store, last writer wins).
 * One direction of an RTP stream is one 5-tuple, which RSS steers to a
 * single RX queue, so the atomics are uncontended in practice, while a
 * per-CPU hash would make user space replicate the rewrite data on every
 * CPU and sum nr_cpus values per flow. Measured: see bpf/README.md.
 *
 * Writing an entry replaces the counters too: before replacing or deleting
 * an entry, user space reads the counters and adds them to its own totals
 * (PROTOCOL.md §7: counters of successive forwarding rules accumulate).
 * It writes the egress block as zeroes, never as read back: a copy taken
 * while the program refreshes it may be half old, half new.
 */
struct relay_flow_value {
	/* match: only packets from the latched source take the fast path */
	__u8  src_addr[RELAY_ADDR_LEN];	/* latched source address, network order */
	/* rewrite: what the forwarded packet carries on the far side */
	__u8  dst_addr[RELAY_ADDR_LEN];	/* destination: the other party's latched address */
	__u8  new_src_addr[RELAY_ADDR_LEN]; /* new source: relay address on the far side */
	__u16 src_port;			/* latched source port, network order */
	__u16 dst_port;			/* destination port, network order */
	__u16 new_src_port;		/* relay port on the far side, network order */
	__u8  family;			/* family of dst/new_src, == key family (else never forwarded) */
	__u8  pad;			/* always zero; reserved */
	/* counters, written by the XDP program (D4: UDP payload bytes) */
	__u64 bytes;			/* UDP payload bytes received from src */
	__u64 packets;			/* packets received from src */
	__u64 last_seen_ns;		/* coarse CLOCK_MONOTONIC of the last one */
	/* the program's bpf_fib_lookup cache; user space writes zeroes */
	struct relay_flow_egress egress;
};

/*
 * Why the program returned what it did: the index into the stats map.
 * The stats map may be pinned across restarts: append new reasons before
 * RELAY_STAT_MAX, never renumber.
 */
enum relay_stat_reason {
	RELAY_STAT_FORWARDED = 0,	 /* rewritten and sent (XDP_TX / redirect) */
	RELAY_STAT_PASS_NOT_YET,	 /* unused: counted matches before forwarding existed */
	RELAY_STAT_PASS_MALFORMED,	 /* truncated or inconsistent headers */
	RELAY_STAT_PASS_NOT_IP,		 /* neither IPv4 nor IPv6 (ARP, LLDP, QinQ, ...) */
	RELAY_STAT_PASS_NOT_UDP,	 /* IP, but not UDP */
	RELAY_STAT_PASS_FRAGMENT,	 /* IPv4 fragment or IPv6 fragment header */
	RELAY_STAT_PASS_IPV6_EXT,	 /* IPv6 extension header before UDP */
	RELAY_STAT_PASS_OTHER_PORT,	 /* UDP outside relay_port_min..relay_port_max */
	RELAY_STAT_PASS_NO_FLOW,	 /* no flow for (address, port, family), or value family differs */
	RELAY_STAT_PASS_SOURCE_MISMATCH, /* flow exists; sender is not the latched source */
	RELAY_STAT_PASS_FIB_MISS,	 /* no usable route: none, local, forwarding off, MTU */
	RELAY_STAT_PASS_NO_NEIGH,	 /* route found, neighbour not resolved */
	RELAY_STAT_PASS_TTL,		 /* TTL / hop limit would expire */
	RELAY_STAT_PASS_VLAN,		 /* matched, but VLAN-tagged: the stack forwards it */
	RELAY_STAT_PASS_NO_TX_PORT,	 /* egress interface not in relay_tx_ports */
	RELAY_STAT_MAX
};

/*
 * Stats map value, one per reason and CPU (BPF_MAP_TYPE_PERCPU_ARRAY);
 * user space sums over CPUs. Bytes are whole frames (Ethernet header
 * included), as seen by XDP, because most reasons have no UDP payload.
 */
struct relay_stat {
	__u64 packets;
	__u64 bytes;
};

_Static_assert(sizeof(struct relay_flow_key) == 20, "relay_flow_key is BPF ABI");
_Static_assert(sizeof(struct relay_flow_egress) == 32, "relay_flow_egress is BPF ABI");
_Static_assert(sizeof(struct relay_flow_value) == 112, "relay_flow_value is BPF ABI");
_Static_assert(__builtin_offsetof(struct relay_flow_value, egress) % 8 == 0,
	       "the cached MACs are read as an 8-byte and a 4-byte word");
_Static_assert(__builtin_offsetof(struct relay_flow_value, bytes) % 8 == 0,
	       "counters must be 8-byte aligned for atomic adds");
_Static_assert(__builtin_offsetof(struct relay_flow_value, src_addr) % 4 == 0,
	       "src_addr is compared as 32-bit words");
_Static_assert(sizeof(struct relay_stat) == 16, "relay_stat is BPF ABI");

#endif /* RELAY_STRUCTS_H */
