/* The relay's data plane as one unit for main.c: the port pool, the
 * forwarding backend chosen by `[Relay] forwarding`, the streams, and the
 * timer that checks them for timeouts and samples bps_relayed. */
#ifndef MP_DATAPLANE_H
#define MP_DATAPLANE_H

#include <event2/event.h>

#include "config.h"
#include "forward.h"
#include "ports.h"
#include "stream.h"
#include "traffic.h"

struct dataplane {
	const struct config_relay *config;
	struct net_addr relay_ip;          /* configured, or the default route's */
	struct ports_pool *pool;
	const struct forward_backend *backend;
	struct forward *fw;
	struct stream_env *streams;
	struct event *tick;
	struct traffic_sampler sampler;
	uint64_t last_sample_ns;
	double bps_relayed;                /* bits/s over traffic_sampling_period */
};

/* Resolves relay_ip, raises RLIMIT_NOFILE, opens the port pool and the
 * backend (logging the choice), and starts the timer. 0, or -1 after
 * logging why. dataplane_close() is safe after a failure. */
int dataplane_open(struct dataplane *dp, struct event_base *base,
		   const struct config_relay *config);

/* Closes every stream, then the backend in `mode` (D6), then the pool. */
void dataplane_close(struct dataplane *dp, enum forward_close_mode mode);

#endif
