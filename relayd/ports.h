/* The relay's UDP port pool (PROTOCOL.md 4.2, D1, D18): port pairs (even
 * RTP, RTP + 1 RTCP) from [Relay] port_range, handed out first in, first
 * out. A taken pair comes with both sockets bound on relay_ip, so the ports
 * are really ours and the first packets reach user space. */
#ifndef MP_PORTS_H
#define MP_PORTS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "net.h"

/* File descriptors kept free beyond the pool's own sockets: dispatcher
 * links, the BPF objects, the log, the session table. */
#define PORTS_NOFILE_MARGIN 256

struct ports_pool;

struct ports_pair {
	uint16_t rtp_port; /* even, host order; RTCP is rtp_port + 1 */
	int fd[2];         /* [0] RTP, [1] RTCP: bound, nonblocking, close-on-exec */
};

struct ports_usage {
	size_t free;  /* pairs waiting in the queue */
	size_t taken; /* pairs handed out */
	size_t bad;   /* pairs that could not be bound, waiting for recycling */
};

/* Builds the queue of every pair in range (start..end-1, both even) for
 * sockets on relay_ip (IPv4 or IPv6). No socket is opened yet. Returns 0,
 * -EINVAL (unset address, empty or odd range) or -ENOMEM. */
int ports_pool_new(struct ports_pool **out, const struct net_addr *relay_ip,
		   const struct config_port_range *range);

/* Frees the pool. Pairs still taken keep their sockets: close them with
 * ports_release() first. */
void ports_pool_free(struct ports_pool *pool);

/* Takes the pair at the head of the queue and binds both of its sockets.
 * A pair someone else holds (EADDRINUSE) moves to the bad list and the
 * next one is tried; when there are more bad pairs than free ones, the bad
 * ones go back to the queue first. Returns 0, -EBUSY when no pair can be
 * had (the relay answers `error`, D1), or the -errno of a failure that is
 * not the pair's fault (EMFILE, EADDRNOTAVAIL: the pair stays queued). */
int ports_take(struct ports_pool *pool, struct ports_pair *out);

/* Takes the pair whose RTP port is rtp_port, wherever it waits (a
 * restarted relay re-binding the ports of the streams it adopts, D6).
 * Returns 0, -EINVAL (odd or outside the range), -EBUSY (already taken)
 * or the bind error (an EADDRINUSE pair moves to the bad list). */
int ports_take_specific(struct ports_pool *pool, uint16_t rtp_port,
			struct ports_pair *out);

/* Closes the pair's sockets and queues the pair at the tail (D18). The
 * pair is marked released (fds -1); releasing it twice is harmless. */
void ports_release(struct ports_pool *pool, struct ports_pair *pair);

/* The address the pool binds on. */
const struct net_addr *ports_relay_ip(const struct ports_pool *pool);

void ports_get_usage(const struct ports_pool *pool, struct ports_usage *out);

/* Raises the soft RLIMIT_NOFILE to what the range needs (one descriptor
 * per port plus PORTS_NOFILE_MARGIN), as far as the hard limit allows,
 * and logs a warning naming the limit when that is not enough. Returns 0
 * or -errno from setrlimit(). */
int ports_raise_nofile_limit(const struct config_port_range *range);

/* Caps the pairs ports_take() hands out at what the open-file limit in
 * force now allows (two descriptors a pair, PORTS_NOFILE_MARGIN kept for
 * everything else), so a low hard limit makes new sessions get the D1
 * `error` cleanly instead of failing halfway with EMFILE, and the session
 * table and dispatcher links always have descriptors. Pairs restored with
 * ports_take_specific() are not refused. Returns the cap (0 = none). */
size_t ports_pool_limit_by_nofile(struct ports_pool *pool);

#endif
