/* Media streams (stream.h): creation on four ports, the control plane's
 * SDP and hold updates, hand-over of latched legs to the forwarding
 * backend, and the totals that combine user space and backend counters.
 * The packet path is in stream_io.c, timeouts in stream_timeout.c. */
#include "stream_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static uint64_t monotonic_ns(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int stream_env_new(struct stream_env **out, const struct stream_env_options *opts)
{
	struct stream_env *env;

	*out = NULL;
	if (!opts->base || !opts->pool)
		return -EINVAL;
	env = calloc(1, sizeof(*env));
	if (!env)
		return -ENOMEM;
	env->opts = *opts;
	if (!env->opts.clock)
		env->opts.clock = monotonic_ns;
	env->transmit_every = opts->transmit_every ? opts->transmit_every : 1;
	if (udp_batch_init(&env->batch)) {
		free(env);
		return -ENOMEM;
	}
	*out = env;
	return 0;
}

void stream_env_free(struct stream_env *env)
{
	if (!env)
		return;
	while (env->head)
		stream_free(env->head);
	udp_batch_free(&env->batch);
	free(env);
}

uint64_t stream_env_now(const struct stream_env *env)
{
	return env->opts.clock(env->opts.clock_ctx);
}

void stream_env_keep_flows(struct stream_env *env, bool keep)
{
	env->keep_flows = keep;
}

unsigned int stream_env_count(const struct stream_env *env)
{
	return env->count;
}

static uint64_t stream_total_bytes(struct stream *s)
{
	struct stream_stats st;

	stream_get_stats(s, &st);
	return st.side[STREAM_CALLER].bytes + st.side[STREAM_CALLEE].bytes;
}

uint64_t stream_env_relayed_bytes(struct stream_env *env)
{
	uint64_t total = env->freed_bytes;

	for (struct stream *s = env->head; s; s = s->next)
		total += stream_total_bytes(s);
	return total;
}

bool stream_is_kernel(const struct stream *s)
{
	const struct forward_backend *be = s->env->opts.backend;

	return be && be->in_kernel && s->env->opts.fw;
}

static int open_party(struct stream *s, enum stream_side side, enum stream_leg leg)
{
	struct stream_party *p = &s->leg[leg].party[side];

	p->stream = s;
	p->side = side;
	p->leg = leg;
	p->fd = s->side[side].ports.fd[leg];
	p->ev = event_new(s->env->opts.base, p->fd, EV_READ | EV_PERSIST,
			  stream_io_on_readable, p);
	if (!p->ev || event_add(p->ev, NULL) < 0)
		return log_errno(-ENOMEM, "%s: event for port %u", __func__,
				 s->side[side].local_port + leg);
	return 0;
}

/* Takes two port pairs: the next ones in the queue, or want[side]. */
static int stream_create(struct stream_env *env, const uint16_t want[2], struct stream **out)
{
	struct stream *s;
	int rc = 0;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->env = env;
	for (int side = 0; side < 2; side++) {
		struct ports_pair *pp = &s->side[side].ports;

		pp->fd[0] = pp->fd[1] = -1;
		s->leg[STREAM_RTP].party[side].fd = s->leg[STREAM_RTCP].party[side].fd = -1;
		snprintf(s->side[side].codec, sizeof(s->side[side].codec), "Unknown");
	}
	for (int side = 0; side < 2 && !rc; side++) {
		struct ports_pair *pp = &s->side[side].ports;

		rc = want ? ports_take_specific(env->opts.pool, want[side], pp)
			  : ports_take(env->opts.pool, pp);
		s->side[side].local_port = pp->rtp_port;
	}
	for (int i = 0; i < 4 && !rc; i++)
		rc = open_party(s, (enum stream_side)(i / 2), (enum stream_leg)(i % 2));
	s->created_ns = stream_env_now(env);
	s->side[STREAM_CALLER].wait_since_ns = s->side[STREAM_CALLEE].wait_since_ns = s->created_ns;
	s->next = env->head;
	if (env->head)
		env->head->prev = s;
	env->head = s;
	env->count++;
	if (rc) {
		stream_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int stream_new(struct stream_env *env, struct stream **out)
{
	return stream_create(env, NULL, out);
}

int stream_new_on_ports(struct stream_env *env, uint16_t caller_rtp, uint16_t callee_rtp,
			struct stream **out)
{
	const uint16_t want[2] = { caller_rtp, callee_rtp };

	return stream_create(env, want, out);
}

void stream_close(struct stream *s)
{
	if (s->closed)
		return;
	s->closed = true;
	for (int leg = 0; leg < 2; leg++) {
		if (s->env->keep_flows)
			s->leg[leg].installed = false;
		else
			stream_uninstall_leg(s, (enum stream_leg)leg);
		for (int side = 0; side < 2; side++) {
			struct stream_party *p = &s->leg[leg].party[side];

			if (p->ev)
				event_free(p->ev);
			p->ev = NULL;
			p->fd = -1;
			stream_io_drop_stun(p);
		}
	}
	for (int side = 0; side < 2; side++)
		ports_release(s->env->opts.pool, &s->side[side].ports);
}

void stream_free(struct stream *s)
{
	struct stream_env *env;

	if (!s)
		return;
	env = s->env;
	stream_close(s);
	env->freed_bytes += stream_total_bytes(s);
	if (s->prev)
		s->prev->next = s->next;
	else
		env->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	env->count--;
	free(s);
}

static void build_flow(const struct stream *s, enum stream_leg leg, enum stream_side from,
		       struct forward_flow *f)
{
	const struct net_addr *relay_ip = ports_relay_ip(s->env->opts.pool);
	const struct stream_party *src = &s->leg[leg].party[from];
	const struct stream_party *dst = &s->leg[leg].party[!from];

	memset(f, 0, sizeof(*f));
	f->local.addr = *relay_ip;
	f->local.port = s->side[from].local_port + leg;
	f->source.addr = src->remote;
	f->source.port = src->remote_port;
	f->out_local.addr = *relay_ip;
	f->out_local.port = s->side[!from].local_port + leg;
	f->destination.addr = dst->remote;
	f->destination.port = dst->remote_port;
}

void stream_install_leg(struct stream *s, enum stream_leg leg)
{
	struct stream_leg_state *l = &s->leg[leg];
	const struct forward_backend *be = s->env->opts.backend;
	int rc;

	if (!stream_is_kernel(s) || l->installed || s->closed ||
	    !l->party[STREAM_CALLER].in_use || !l->party[STREAM_CALLEE].in_use)
		return;
	build_flow(s, leg, STREAM_CALLER, &l->pair.forward);
	build_flow(s, leg, STREAM_CALLEE, &l->pair.backward);
	rc = be->add_pair(s->env->opts.fw, &l->pair);
	if (rc) {
		log_warn("%s: %s could not take over ports %u/%u (%s): forwarding in user space",
			 __func__, be->name, l->pair.forward.local.port,
			 l->pair.forward.out_local.port, strerror(-rc));
		return;
	}
	memset(l->cur, 0, sizeof(l->cur));
	l->installed = true;
}

static void counters_add(struct forward_counters *to, const struct forward_counters *c)
{
	to->bytes += c->bytes;
	to->packets += c->packets;
	if (c->last_seen_ns > to->last_seen_ns)
		to->last_seen_ns = c->last_seen_ns;
}

void stream_uninstall_leg(struct stream *s, enum stream_leg leg)
{
	struct stream_leg_state *l = &s->leg[leg];
	struct forward_counters fin[2];
	int rc;

	if (!l->installed)
		return;
	memset(fin, 0, sizeof(fin));
	rc = s->env->opts.backend->remove_pair(s->env->opts.fw, &l->pair, &fin[0], &fin[1]);
	if (rc) {
		/* gone already: the last counters read are the best we have */
		log_debug("%s: ports %u/%u: %s", __func__, l->pair.forward.local.port,
			  l->pair.forward.out_local.port, strerror(-rc));
		fin[0] = l->cur[0];
		fin[1] = l->cur[1];
	}
	counters_add(&l->base[0], &fin[0]);
	counters_add(&l->base[1], &fin[1]);
	memset(l->cur, 0, sizeof(l->cur));
	l->installed = false;
}

void stream_refresh_leg(struct stream *s, enum stream_leg leg)
{
	struct stream_leg_state *l = &s->leg[leg];
	struct forward_counters c[2];

	if (!l->installed || !s->env->opts.backend->read_pair)
		return;
	memset(c, 0, sizeof(c));
	if (s->env->opts.backend->read_pair(s->env->opts.fw, &l->pair, &c[0], &c[1]) == 0) {
		l->cur[0] = c[0];
		l->cur[1] = c[1];
	}
}

uint64_t stream_leg_last_activity(const struct stream *s, enum stream_leg leg)
{
	const struct stream_leg_state *l = &s->leg[leg];
	uint64_t last = 0;

	for (int side = 0; side < 2; side++) {
		uint64_t t[3] = { l->party[side].last_ns, l->base[side].last_seen_ns,
				  l->cur[side].last_seen_ns };

		for (int i = 0; i < 3; i++)
			if (t[i] > last)
				last = t[i];
	}
	return last;
}

/* A new address or port for a party that had a real one resets it:
 * what it latched becomes obsolete and its kernel flows go. */
static void reset_side(struct stream *s, enum stream_side side)
{
	for (int leg = 0; leg < 2; leg++) {
		struct stream_party *p = &s->leg[leg].party[side];

		stream_uninstall_leg(s, (enum stream_leg)leg);
		p->in_use = false;
	}
	s->side[side].wait_since_ns = stream_env_now(s->env);
}

void stream_set_sdp(struct stream *s, enum stream_side side, const struct net_addr *addr,
		    uint16_t port)
{
	struct stream_side_state *sd = &s->side[side];
	bool had = sd->sdp.family != AF_UNSPEC;

	if (net_addr_is_any(addr) || addr->family == AF_UNSPEC)
		return;
	if (had && sd->sdp_port == port && net_addr_equal(&sd->sdp, addr))
		return;
	sd->sdp = *addr;
	sd->sdp_port = port;
	if (had)
		reset_side(s, side);
	for (int leg = 0; leg < 2; leg++)
		stream_io_flush_stun(s, &s->leg[leg].party[side]);
}

bool stream_on_hold(const struct stream *s)
{
	return s->side[STREAM_CALLER].on_hold || s->side[STREAM_CALLEE].on_hold;
}

void stream_set_hold(struct stream *s, enum stream_side side, bool on_hold)
{
	bool was = stream_on_hold(s);
	uint64_t now = stream_env_now(s->env);

	s->side[side].on_hold = on_hold;
	if (!was && stream_on_hold(s))
		s->hold_since_ns = now;
	if (was && !stream_on_hold(s)) {
		/* off hold: the no-traffic timers start again for a party
		 * that has not sent yet, as upstream's after_hold() */
		for (int i = 0; i < 2; i++)
			if (!s->leg[STREAM_RTP].party[i].in_use)
				s->side[i].wait_since_ns = now;
	}
}

void stream_set_timeout_cb(struct stream *s, stream_timeout_fn cb, void *ctx)
{
	s->timeout_cb = cb;
	s->timeout_ctx = ctx;
}

uint16_t stream_local_port(const struct stream *s, enum stream_side side)
{
	return s->side[side].local_port;
}

int stream_restore_leg(struct stream *s, enum stream_leg leg,
		       const struct forward_endpoint latched[2], bool pair_adopted)
{
	struct stream_leg_state *l = &s->leg[leg];

	for (int side = 0; side < 2; side++) {
		if (!latched[side].port)
			continue;
		if (latched[side].addr.family != AF_INET && latched[side].addr.family != AF_INET6)
			return -EINVAL;
	}
	for (int side = 0; side < 2; side++) {
		struct stream_party *p = &l->party[side];

		if (!latched[side].port)
			continue;
		p->remote = latched[side].addr;
		p->remote_port = latched[side].port;
		p->remote_known = p->in_use = true;
	}
	if (pair_adopted && stream_is_kernel(s) && l->party[0].in_use && l->party[1].in_use) {
		build_flow(s, leg, STREAM_CALLER, &l->pair.forward);
		build_flow(s, leg, STREAM_CALLEE, &l->pair.backward);
		l->installed = true;
		stream_refresh_leg(s, leg);
	} else {
		stream_install_leg(s, leg);
	}
	return 0;
}

void stream_restore_counters(struct stream *s, enum stream_side side, uint64_t bytes,
			     uint64_t packets, const char *codec)
{
	struct stream_side_state *sd = &s->side[side];

	sd->restored_bytes = bytes;
	sd->restored_packets = packets;
	if (codec && *codec && strcmp(codec, "Unknown")) {
		snprintf(sd->codec, sizeof(sd->codec), "%s", codec);
		sd->codec_set = true;
	}
}

static void side_stats(struct stream *s, enum stream_side side, struct stream_side_stats *o)
{
	const struct stream_side_state *sd = &s->side[side];
	const struct stream_party *rtp = &s->leg[STREAM_RTP].party[side];
	const struct net_addr *relay_ip = ports_relay_ip(s->env->opts.pool);

	o->bytes = sd->restored_bytes;
	o->packets = sd->restored_packets;
	for (int leg = 0; leg < 2; leg++) {
		const struct stream_leg_state *l = &s->leg[leg];

		o->bytes += l->party[side].bytes + l->base[side].bytes + l->cur[side].bytes;
		o->packets += l->party[side].packets + l->base[side].packets +
			      l->cur[side].packets;
	}
	snprintf(o->codec, sizeof(o->codec), "%s", sd->codec);
	if (!sd->local_port ||
	    net_addr_port_format(relay_ip, sd->local_port, o->local, sizeof(o->local)))
		snprintf(o->local, sizeof(o->local), "Unknown");
	if (!rtp->remote_known ||
	    net_addr_port_format(&rtp->remote, rtp->remote_port, o->remote, sizeof(o->remote)))
		snprintf(o->remote, sizeof(o->remote), "Unknown");
}

int stream_get_stats(struct stream *s, struct stream_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int leg = 0; leg < 2; leg++)
		stream_refresh_leg(s, (enum stream_leg)leg);
	side_stats(s, STREAM_CALLER, &out->side[STREAM_CALLER]);
	side_stats(s, STREAM_CALLEE, &out->side[STREAM_CALLEE]);
	out->dropped_packets = s->dropped;
	out->created_ns = s->created_ns;
	out->first_media_ns = s->first_media_ns;
	for (int leg = 0; leg < 2; leg++) {
		uint64_t t = stream_leg_last_activity(s, (enum stream_leg)leg);

		if (t > out->last_activity_ns)
			out->last_activity_ns = t;
	}
	out->on_hold = stream_on_hold(s);
	return 0;
}
