/* A stream's state for a restart without media loss (PROTOCOL.md D6):
 * the snapshot the session store writes to disk, putting it back on a
 * stream re-created on the same ports, and the hook that tells the store
 * when a stream changed on its own (a party latched). */
#include "stream_internal.h"

#include <string.h>

void stream_set_change_cb(struct stream *s, stream_change_fn cb, void *ctx)
{
	s->change_cb = cb;
	s->change_ctx = ctx;
}

void stream_changed(struct stream *s)
{
	if (s->change_cb)
		s->change_cb(s, s->change_ctx);
}

static void save_side(const struct stream *s, enum stream_side side, struct stream_saved_side *o)
{
	const struct stream_side_state *sd = &s->side[side];

	o->rtp_port = sd->local_port;
	o->sdp = sd->sdp;
	o->sdp_port = sd->sdp_port;
	o->on_hold = sd->on_hold;
	memcpy(o->codec, sd->codec, sizeof(o->codec));
	o->bytes = sd->restored_bytes;
	o->packets = sd->restored_packets;
	for (int leg = 0; leg < 2; leg++) {
		const struct stream_leg_state *l = &s->leg[leg];
		const struct stream_party *p = &l->party[side];

		o->bytes += p->bytes + l->base[side].bytes;
		o->packets += p->packets + l->base[side].packets;
		/* an obsolete address (its side was reset) is not kept: the
		 * party latches again on its next packet */
		if (p->in_use) {
			o->latched[leg].addr = p->remote;
			o->latched[leg].port = p->remote_port;
		}
		if (l->installed) {
			o->kernel[leg].bytes = l->cur[side].bytes;
			o->kernel[leg].packets = l->cur[side].packets;
		}
	}
}

void stream_save(const struct stream *s, struct stream_saved *out)
{
	memset(out, 0, sizeof(*out));
	save_side(s, STREAM_CALLER, &out->side[STREAM_CALLER]);
	save_side(s, STREAM_CALLEE, &out->side[STREAM_CALLEE]);
	for (int leg = 0; leg < 2; leg++)
		out->installed[leg] = s->leg[leg].installed;
	out->dropped_packets = s->dropped;
	out->created_ns = s->created_ns;
	out->first_media_ns = s->first_media_ns;
}

int stream_restore(struct stream *s, const struct stream_saved *in, const bool adopted[2])
{
	uint64_t now = stream_env_now(s->env);
	int rc;

	for (int side = 0; side < 2; side++) {
		const struct stream_saved_side *sd = &in->side[side];

		if (sd->sdp.family != AF_UNSPEC)
			stream_set_sdp(s, (enum stream_side)side, &sd->sdp, sd->sdp_port);
		stream_set_hold(s, (enum stream_side)side, sd->on_hold);
	}
	for (int leg = 0; leg < 2; leg++) {
		const struct forward_endpoint latched[2] = {
			in->side[STREAM_CALLER].latched[leg], in->side[STREAM_CALLEE].latched[leg],
		};

		rc = stream_restore_leg(s, (enum stream_leg)leg, latched, adopted[leg]);
		if (rc)
			return rc;
		/* idleness is measured from now: what the kernel saw since
		 * (an adopted rule's last_seen) still counts */
		for (int side = 0; side < 2; side++)
			if (latched[side].port)
				s->leg[leg].party[side].last_ns = now;
	}
	for (int side = 0; side < 2; side++) {
		const struct stream_saved_side *sd = &in->side[side];
		uint64_t bytes = sd->bytes, packets = sd->packets;

		for (int leg = 0; leg < 2; leg++) {
			if (adopted[leg] && s->leg[leg].installed)
				continue;
			bytes += sd->kernel[leg].bytes;
			packets += sd->kernel[leg].packets;
		}
		stream_restore_counters(s, (enum stream_side)side, bytes, packets, sd->codec);
	}
	s->dropped = in->dropped_packets;
	if (in->created_ns)
		s->created_ns = in->created_ns;
	s->first_media_ns = in->first_media_ns;
	return 0;
}
