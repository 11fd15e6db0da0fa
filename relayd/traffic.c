/* The relay-wide traffic sampler (traffic.h). */
#include "traffic.h"

#include <string.h>

void traffic_sampler_init(struct traffic_sampler *t)
{
	memset(t, 0, sizeof(*t));
}

double traffic_sampler_sample(struct traffic_sampler *t, uint64_t total_bytes, uint64_t now_ns)
{
	/* divide by the time that really passed, not the configured period:
	 * a timer that fires late must not inflate the rate */
	if (t->primed && now_ns > t->last_ns) {
		uint64_t delta = total_bytes > t->last_bytes ? total_bytes - t->last_bytes : 0;

		t->bps = 8.0 * (double)delta * 1e9 / (double)(now_ns - t->last_ns);
	} else if (!t->primed) {
		t->bps = 0;
	}
	t->primed = true;
	t->last_bytes = total_bytes;
	t->last_ns = now_ns;
	return t->bps;
}
