/* The forwarding backends: one interface, three implementations.
 *
 * The relay's streams (relayd/stream.c) always receive the first packets
 * in user space, latch each side, and forward there until both sides of a
 * leg (RTP or RTCP) are latched. Then they hand the leg to the backend as
 * a flow *pair* (one flow per direction) and the backend forwards it:
 *
 *   xdp        map entries for the XDP program in bpf/ (forward_xdp.c)
 *   conntrack  one conntrack entry with DNAT+SNAT per pair (forward_conntrack.c)
 *   userspace  nothing in the kernel: the stream keeps forwarding with
 *              recvmmsg/sendmmsg in the relay's loop (forward_user.c)
 *
 * Counting (PROTOCOL.md D4): a backend counts only what it forwarded itself
 * (UDP payload bytes and packets per direction, conntrack's IP-level counts
 * converted). Whatever reaches the relay's sockets (before latching, a
 * foreign source, an XDP FIB miss or unresolved neighbour) is counted by the
 * stream, so the totals are stream counters + backend counters, never twice.
 */
#ifndef MP_FORWARD_H
#define MP_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "net.h"

struct forward_endpoint {
	struct net_addr addr;
	uint16_t port; /* host order */
};

/* One direction: packets from `source` arriving at the relay's `local`
 * leave from the relay's `out_local` towards `destination`. */
struct forward_flow {
	struct forward_endpoint local;
	struct forward_endpoint source;
	struct forward_endpoint out_local;
	struct forward_endpoint destination;
};

/* A leg in both directions: `forward.local` is the caller-facing port for a
 * caller->callee flow, and `backward` is its mirror image. */
struct forward_pair {
	struct forward_flow forward;
	struct forward_flow backward;
};

struct forward_counters {
	uint64_t bytes;        /* UDP payload bytes forwarded by the backend */
	uint64_t packets;
	uint64_t last_seen_ns; /* CLOCK_MONOTONIC ns of the last one; 0 = never */
};

struct forward_options {
	struct net_addr relay_ip;        /* the address every relay port is bound on */
	const struct config_str_list *interfaces; /* NULL/empty: automatic */
	const char *pin_dir;             /* xdp: bpffs directory for maps and links */
	const char *nft_table;           /* conntrack: name of our nftables table */
	uint16_t port_min, port_max;     /* the relay's port range, inclusive */
	unsigned int flow_max;           /* map capacity in flows (directions) */
};

/* How a backend is closed (PROTOCOL.md D6). */
enum forward_close_mode {
	FORWARD_CLOSE_CLEAN, /* INT/TERM: remove every flow, table, pin, program */
	FORWARD_CLOSE_KEEP,  /* USR2 (and what a crash leaves): media keeps flowing */
};

struct forward;

struct forward_backend {
	const char *name;  /* "xdp", "conntrack", "userspace", as in config.ini */
	/* Opens the backend, adopting state a previous relay left (pinned
	 * maps, our nftables table). 0, or -errno with `why` saying what is
	 * missing (logged by the caller when `auto` moves on). */
	int (*open)(struct forward **out, const struct forward_options *opts,
		    char *why, size_t whylen);
	/* Installs (or replaces) both directions. 0 or -errno. */
	int (*add_pair)(struct forward *fw, const struct forward_pair *pair);
	/* Reads both directions' counters. 0, -ENOENT if not installed. */
	int (*read_pair)(struct forward *fw, const struct forward_pair *pair,
			 struct forward_counters *forward, struct forward_counters *backward);
	/* Removes both directions and returns their final counters (either
	 * pointer may be NULL). 0, -ENOENT if not installed. */
	int (*remove_pair)(struct forward *fw, const struct forward_pair *pair,
			   struct forward_counters *forward, struct forward_counters *backward);
	/* Lists the pairs adopted at open (what a previous relay left), so a
	 * restarted relay can take them over. Calls fn for each; may be NULL. */
	int (*foreach_adopted)(struct forward *fw,
			       void (*fn)(void *ctx, const struct forward_pair *pair,
					  const struct forward_counters *forward,
					  const struct forward_counters *backward),
			       void *ctx);
	void (*close)(struct forward *fw, enum forward_close_mode mode);
	bool in_kernel;    /* false: the stream forwards these pairs itself */
};

extern const struct forward_backend forward_xdp_backend;
extern const struct forward_backend forward_conntrack_backend;
extern const struct forward_backend forward_user_backend;

/* Opens the backend `choice` names; for CONFIG_FWD_AUTO tries xdp, then
 * conntrack, then userspace, logging the choice and why each earlier one
 * was not usable. 0, or -1 after logging why the named one cannot run. */
int forward_open(enum config_forwarding choice, const struct forward_options *opts,
		 const struct forward_backend **backend, struct forward **fw);

#endif
