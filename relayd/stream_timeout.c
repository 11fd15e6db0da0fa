/* Stream timeouts (PROTOCOL.md 4.5): sampled every few seconds rather than
 * one timer per party, because with an in-kernel backend the only sign of
 * life is the flow's last-seen time, which has to be read anyway. */
#include "stream_internal.h"

#include "log.h"

#define NS_PER_S 1000000000ull

static uint64_t since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static bool leg_started(const struct stream *s, enum stream_leg leg)
{
	return s->leg[leg].party[STREAM_CALLER].in_use && s->leg[leg].party[STREAM_CALLEE].in_use;
}

/* An idle RTCP leg forgets both latched addresses, so that RTCP from
 * wherever the parties send it next is learnt again (upstream does this on
 * the expiry of an RTCP forwarding rule); it never ends the stream. */
static void check_rtcp(struct stream *s, uint64_t now, uint64_t limit)
{
	struct stream_leg_state *l = &s->leg[STREAM_RTCP];

	if (!l->party[STREAM_CALLER].in_use && !l->party[STREAM_CALLEE].in_use)
		return;
	if (since(now, stream_leg_last_activity(s, STREAM_RTCP)) < limit)
		return;
	stream_uninstall_leg(s, STREAM_RTCP);
	for (int side = 0; side < 2; side++) {
		l->party[side].in_use = false;
		l->party[side].remote_known = false;
	}
	stream_changed(s);
}

static enum stream_timeout verdict(struct stream *s, uint64_t now, unsigned int st,
				   unsigned int oh, unsigned int *wait)
{
	uint64_t idle = since(now, stream_leg_last_activity(s, STREAM_RTP));

	if (stream_on_hold(s)) {
		*wait = oh;
		if (since(now, s->hold_since_ns) >= oh * NS_PER_S)
			return STREAM_ON_HOLD_TIMEOUT;
		if (leg_started(s, STREAM_RTP) && idle >= oh * NS_PER_S)
			return STREAM_IDLE_TIMEOUT;
		return STREAM_ACTIVE;
	}
	*wait = st;
	for (int side = 0; side < 2; side++)
		if (!s->leg[STREAM_RTP].party[side].in_use &&
		    since(now, s->side[side].wait_since_ns) >= st * NS_PER_S)
			return STREAM_NO_TRAFFIC_TIMEOUT;
	if (leg_started(s, STREAM_RTP) && idle >= st * NS_PER_S)
		return STREAM_IDLE_TIMEOUT;
	return STREAM_ACTIVE;
}

enum stream_timeout stream_check_timeout(struct stream *s, uint64_t now_ns,
					 unsigned int stream_timeout,
					 unsigned int on_hold_timeout,
					 unsigned int *timeout_wait)
{
	unsigned int wait = 0;

	if (s->verdict == STREAM_ACTIVE && !s->closed) {
		stream_refresh_leg(s, STREAM_RTP);
		stream_refresh_leg(s, STREAM_RTCP);
		check_rtcp(s, now_ns, (uint64_t)(stream_on_hold(s) ? on_hold_timeout
						 : stream_timeout) * NS_PER_S);
		s->verdict = verdict(s, now_ns, stream_timeout, on_hold_timeout, &wait);
		s->verdict_wait = s->verdict == STREAM_ACTIVE ? 0 : wait;
	}
	if (timeout_wait)
		*timeout_wait = s->verdict_wait;
	return s->verdict;
}

void stream_env_check_timeouts(struct stream_env *env, unsigned int stream_timeout,
			       unsigned int on_hold_timeout)
{
	uint64_t now = stream_env_now(env);
	struct stream *s;

	/* A callback may free any stream (a session ending closes all of
	 * its streams), so after each one the walk starts over; streams that
	 * already have a verdict are skipped, and timeouts are rare. */
restart:
	for (s = env->head; s; s = s->next) {
		enum stream_timeout why;
		unsigned int wait;

		if (s->closed || s->verdict != STREAM_ACTIVE)
			continue;
		why = stream_check_timeout(s, now, stream_timeout, on_hold_timeout, &wait);
		if (why == STREAM_ACTIVE || !s->timeout_cb)
			continue;
		s->timeout_cb(s, why, wait, s->timeout_ctx);
		goto restart;
	}
}
