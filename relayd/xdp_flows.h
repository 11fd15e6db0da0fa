/* The relay_flows map seen as forward_pairs: one entry per direction, keyed
 * by the relay's own endpoint; counters that survive rewrites; and the pairs
 * an earlier relay left behind (PROTOCOL.md D6). Only forward_xdp.c uses
 * this module. */
#ifndef MP_XDP_FLOWS_H
#define MP_XDP_FLOWS_H

#include <stdbool.h>
#include <stddef.h>

#include "forward.h"
#include "relay_structs.h"

/* The two keys of a pair found in the map. */
struct xdp_flows_pair {
	struct relay_flow_key forward, backward;
};

typedef void (*xdp_flows_fn)(void *ctx, const struct forward_pair *pair,
			     const struct forward_counters *forward,
			     const struct forward_counters *backward);

/* Writes both directions into the map fd. An existing entry keeps its
 * counters. If the second write fails the first is undone. 0 or -errno
 * (-E2BIG: map full; -EAFNOSUPPORT: mixed address families). */
int xdp_flows_add(int fd, const struct forward_pair *pair);

/* Reads both directions' counters (either pointer may be NULL), deleting
 * the entries if `remove`. A missing direction reads as zero. 0 if at
 * least one direction was there, -ENOENT if neither, or -errno. */
int xdp_flows_get(int fd, const struct forward_pair *pair, bool remove,
		  struct forward_counters *forward, struct forward_counters *backward);

/* Pairs up the entries in the map: two entries form a pair when each one's
 * new source is the other's key; forward is the one with the lower key
 * (the lower relay port). Entries without a mirror are skipped. *pairs is
 * malloc'ed (free it). 0 or -ENOMEM. */
int xdp_flows_scan(int fd, struct xdp_flows_pair **pairs, size_t *count);

/* Calls fn for each pair still in the map as scanned, with its counters
 * now; pairs removed or rewired since are skipped. */
void xdp_flows_report(int fd, const struct xdp_flows_pair *pairs, size_t count,
		      xdp_flows_fn fn, void *ctx);

#endif
