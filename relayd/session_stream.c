/* One media stream of a session: what each party's SDP said about it
 * (address, hold, ICE), its state (alive, or how it ended) and the data
 * plane stream behind it, whose statistics are kept when it ends and its
 * ports go back to the pool. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session_internal.h"

static const char *const end_names[] = {
	[SESSION_END_CLOSED] = "closed",
	[SESSION_END_REJECTED] = "rejected",
	[SESSION_END_NO_TRAFFIC] = "no-traffic timeout",
	[SESSION_END_CONNTRACK] = "conntrack timeout",
	[SESSION_END_ON_HOLD] = "on hold timeout",
	[SESSION_END_ICE] = "unselected ICE candidate",
};

const char *session_end_name(enum session_end end)
{
	if ((size_t)end >= sizeof(end_names) / sizeof(end_names[0]))
		return NULL;
	return end_names[end];
}

const char *session_stream_status(const struct session_stream *s)
{
	if (s->alive)
		return s->party[STREAM_CALLER].on_hold || s->party[STREAM_CALLEE].on_hold
			       ? "on hold" : "active";
	return end_names[s->end];
}

/* A stream that never had ports (offered with port 0) reports like one
 * that has learnt nothing. */
static void stats_unknown(struct stream_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (int side = 0; side < 2; side++) {
		snprintf(st->side[side].codec, sizeof(st->side[side].codec), "Unknown");
		snprintf(st->side[side].local, sizeof(st->side[side].local), "Unknown");
		snprintf(st->side[side].remote, sizeof(st->side[side].remote), "Unknown");
	}
}

static void on_timeout(struct stream *dp, enum stream_timeout why, unsigned int wait, void *ctx)
{
	struct session_stream *s = ctx;
	enum session_end end;

	(void)dp;
	switch (why) {
	case STREAM_NO_TRAFFIC_TIMEOUT:
		end = SESSION_END_NO_TRAFFIC;
		break;
	case STREAM_ON_HOLD_TIMEOUT:
		end = SESSION_END_ON_HOLD;
		break;
	default:
		end = SESSION_END_CONNTRACK;
		break;
	}
	/* Both ends did ICE: media went a way that did not include us,
	 * which is not a failed call (the dispatcher leaves the dialog). */
	if (s->party[STREAM_CALLER].ice && s->party[STREAM_CALLEE].ice)
		end = SESSION_END_ICE;
	log_info("session %s: %s stream timed out: %s after %u s", s->session->call_id,
		 s->media_type, end_names[end], wait);
	session_stream_end(s, end);
	s->timeout_wait = wait;
	session_changed(s->session->table);
	session_stream_expired(s->session);
}

static void on_dp_change(struct stream *dp, void *ctx)
{
	struct session_stream *s = ctx;

	(void)dp;
	session_changed(s->session->table);
}

struct session_stream *session_stream_new(struct session *se, const struct media_spec_stream *m,
					  int *err)
{
	struct session_stream *s = calloc(1, sizeof(*s));

	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	s->session = se;
	snprintf(s->media_type, sizeof(s->media_type), "%s", m->type);
	stats_unknown(&s->final);
	if (m->port) {
		*err = stream_new(se->table->opts.streams, &s->dp);
		if (*err) {
			free(s);
			return NULL;
		}
		stream_set_timeout_cb(s->dp, on_timeout, s);
		stream_set_change_cb(s->dp, on_dp_change, s);
	}
	s->alive = true;
	return s;
}

struct session_stream *session_stream_restored(struct session *se, struct stream *dp)
{
	struct session_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->session = se;
	stats_unknown(&s->final);
	s->dp = dp;
	s->alive = dp != NULL;
	if (dp) {
		stream_set_timeout_cb(dp, on_timeout, s);
		stream_set_change_cb(dp, on_dp_change, s);
	}
	return s;
}

void session_stream_discard(struct session_stream *s)
{
	if (!s)
		return;
	stream_free(s->dp);
	free(s);
}

static void set_hold(struct session_stream *s, enum stream_side party,
		     const struct media_spec_stream *m)
{
	s->party[party].on_hold = media_spec_is_hold(m);
	if (s->alive && s->dp)
		stream_set_hold(s->dp, party, s->party[party].on_hold);
}

static void set_remote(struct session_stream *s, enum stream_side party,
		       const struct media_spec_stream *m)
{
	struct session_party *p = &s->party[party];

	p->known = true;
	p->ip = m->ip;
	p->port = m->port;
	if (s->alive && s->dp)
		stream_set_sdp(s->dp, party, &m->ip, m->port);
}

void session_stream_attach(struct session_stream *s, enum stream_side party,
			   const struct media_spec_stream *m)
{
	struct session *se = s->session;

	*se->streams_tail = s;
	se->streams_tail = &s->next;
	se->stream_count++;
	s->party[party].ice = m->ice;
	set_remote(s, party, m);
	set_hold(s, party, m);
	if (!m->port)
		session_stream_end(s, SESSION_END_CLOSED);
}

void session_stream_hold(struct session_stream *s, enum stream_side party,
			 const struct media_spec_stream *m)
{
	set_hold(s, party, m);
}

/* 4.3: the first real address is taken as is; a later different one (a
 * new port, or a new address that is not the 0.0.0.0 hold marker) resets
 * the party, which the data plane does when its SDP address changes. */
void session_stream_answer(struct session_stream *s, enum stream_side party,
			   const struct media_spec_stream *m)
{
	struct session_party *p = &s->party[party];
	bool changed;

	set_hold(s, party, m);
	p->ice = m->ice;
	if (!p->known || net_addr_is_any(&p->ip)) {
		set_remote(s, party, m);
		return;
	}
	changed = p->port != m->port || (!net_addr_equal(&p->ip, &m->ip) && !net_addr_is_any(&m->ip));
	if (changed) {
		log_debug("session %s: %s stream: the %s moved", s->session->call_id, s->media_type,
			  party == STREAM_CALLER ? "caller" : "callee");
		set_remote(s, party, m);
	}
}

void session_stream_end(struct session_stream *s, enum session_end why)
{
	if (!s->alive)
		return;
	s->alive = false;
	s->end = why;
	s->ended = true;
	s->end_time = session_now(s->session->table);
	if (s->dp) {
		stream_close(s->dp);
		stream_get_stats(s->dp, &s->final);
		stream_free(s->dp);
		s->dp = NULL;
	}
}

void session_stream_free(struct session_stream *s)
{
	stream_free(s->dp);
	free(s);
}

uint16_t session_stream_port(const struct session_stream *s, enum stream_side side)
{
	return s->alive && s->dp ? stream_local_port(s->dp, side) : 0;
}

void session_stream_stats(struct session_stream *s, struct stream_stats *out)
{
	if (s->dp)
		stream_get_stats(s->dp, out);
	else
		*out = s->final;
}
