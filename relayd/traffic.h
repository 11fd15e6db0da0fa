/* bps_relayed for the relay summary (PROTOCOL.md 3.4, 7): the bit rate of
 * relayed payload between two samples taken every traffic_sampling_period
 * seconds. Pure arithmetic; the caller supplies the byte total and time. */
#ifndef MP_TRAFFIC_H
#define MP_TRAFFIC_H

#include <stdbool.h>
#include <stdint.h>

struct traffic_sampler {
	uint64_t last_bytes; /* total at the previous sample */
	uint64_t last_ns;    /* monotonic ns of the previous sample */
	bool primed;         /* a previous sample exists */
	double bps;          /* bits/s between the last two samples */
};

void traffic_sampler_init(struct traffic_sampler *t);

/* Takes a sample: total_bytes is every payload byte relayed so far
 * (monotonic, e.g. stream_env_relayed_bytes()), now_ns the monotonic
 * time. Returns the new bps_relayed: 0 on the first sample, and a total
 * that went down counts as no traffic (the baseline moves to it). */
double traffic_sampler_sample(struct traffic_sampler *t, uint64_t total_bytes, uint64_t now_ns);

#endif
