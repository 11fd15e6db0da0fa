/*
 * tests/bench/bare_redirect.bpf.c: the forwarding benchmark's baseline,
 * the cheapest XDP forwarder the testbed allows. Every IPv4 frame that
 * arrives is sent out of one other interface with XDP_REDIRECT through a
 * one-entry devmap (the same redirect mechanism bpf/relay.bpf.c uses).
 * No parsing beyond the EtherType, no lookup, no IP/UDP rewrite: only the
 * two MAC addresses change, the minimum for the frame to be accepted by
 * the next hop (the sender addresses the receiver's IP directly, so the
 * IP header is already right). Anything not IPv4 (ARP) passes.
 *
 * Maps: bare_tx (the loader puts the egress ifindex at key 0), bare_count
 * (per-CPU count of redirected frames; the loader sums it at exit).
 * Rodata set before load: bare_dmac (next hop), bare_smac (egress MAC).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define ETH_ALEN	6
#define ETH_P_IP	0x0800

const volatile __u8 bare_dmac[ETH_ALEN] = {};
const volatile __u8 bare_smac[ETH_ALEN] = {};

/* The egress interface; written once by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bare_tx SEC(".maps");

/* Frames handed to the redirect, per CPU; the loader sums them. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bare_count SEC(".maps");

SEC("xdp")
int bare_redirect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0;
	__u64 *n;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	for (int i = 0; i < ETH_ALEN; i++) {
		eth->h_dest[i] = bare_dmac[i];
		eth->h_source[i] = bare_smac[i];
	}
	n = bpf_map_lookup_elem(&bare_count, &zero);
	if (n)
		(*n)++;
	return bpf_redirect_map(&bare_tx, 0, XDP_PASS);
}
