/* Media streams (relayd/stream*.c), state over time: timeouts on a fake
 * clock (PROTOCOL.md 4.5), the hand-over of latched legs to an in-kernel
 * backend (a recording test double) with totals = user space + backend
 * (D4, section 7), restart adoption (D6), and the traffic sampler. */
#include "stream_fixture.h"

/* ---- timeouts ------------------------------------------------------------ */

static unsigned int cb_calls;
static enum stream_timeout cb_why;
static unsigned int cb_wait;

static void on_timeout(struct stream *s, enum stream_timeout why, unsigned int wait, void *ctx)
{
	(void)ctx;
	cb_calls++;
	cb_why = why;
	cb_wait = wait;
	stream_free(s);
}

static void test_no_traffic_timeout(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f), *t = new_stream(f);
	uint64_t t0 = fake_now;
	unsigned int wait = 1;
	uint8_t pkt[20];

	assert_int_equal(stream_check_timeout(s, t0 + 89 * NS, 90, 7200, &wait), STREAM_ACTIVE);
	assert_int_equal(wait, 0);
	assert_int_equal(stream_check_timeout(s, t0 + 90 * NS, 90, 7200, &wait),
			 STREAM_NO_TRAFFIC_TIMEOUT);
	assert_int_equal(wait, 90);
	/* the verdict sticks */
	assert_int_equal(stream_check_timeout(s, t0 + 91 * NS, 90, 7200, NULL),
			 STREAM_NO_TRAFFIC_TIMEOUT);
	/* one side sending is not enough: the other side's timer runs */
	make_rtp(pkt, 0, 1, sizeof(pkt));
	fake_now = t0 + 50 * NS;
	send_to_relay(f, &f->caller, rtp_port(t, STREAM_CALLER), pkt, sizeof(pkt));
	assert_int_equal(stream_check_timeout(t, t0 + 89 * NS, 90, 7200, NULL), STREAM_ACTIVE);
	assert_int_equal(stream_check_timeout(t, t0 + 90 * NS, 90, 7200, NULL),
			 STREAM_NO_TRAFFIC_TIMEOUT);
	stream_free(s);
	stream_free(t);
}

static void test_idle_timeout_userspace(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint64_t t0 = fake_now;
	unsigned int wait;

	fake_now = t0 + 10 * NS;
	latch_both(f, s, 20);
	assert_int_equal(stream_check_timeout(s, t0 + 99 * NS, 90, 7200, NULL), STREAM_ACTIVE);
	assert_int_equal(stream_check_timeout(s, t0 + 100 * NS, 90, 7200, &wait),
			 STREAM_IDLE_TIMEOUT);
	assert_int_equal(wait, 90);
	stream_free(s);
}

static void test_hold_timers(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f), *t = new_stream(f);
	uint64_t t0 = fake_now;
	struct stream_stats st;
	unsigned int wait;

	/* on hold from t0+5: no no-traffic timeout, an on-hold one instead */
	fake_now = t0 + 5 * NS;
	stream_set_hold(s, STREAM_CALLEE, true);
	assert_true(stream_on_hold(s));
	stream_get_stats(s, &st);
	assert_true(st.on_hold);
	assert_int_equal(stream_check_timeout(s, t0 + 1000 * NS, 90, 7200, NULL), STREAM_ACTIVE);
	assert_int_equal(stream_check_timeout(s, t0 + 7204 * NS, 90, 7200, NULL), STREAM_ACTIVE);
	assert_int_equal(stream_check_timeout(s, t0 + 7205 * NS, 90, 7200, &wait),
			 STREAM_ON_HOLD_TIMEOUT);
	assert_int_equal(wait, 7200);
	/* off hold at t0+200: the no-traffic timers start over from there */
	fake_now = t0 + 100 * NS;
	stream_set_hold(t, STREAM_CALLER, true);
	stream_set_hold(t, STREAM_CALLER, true);
	fake_now = t0 + 200 * NS;
	stream_set_hold(t, STREAM_CALLER, false);
	assert_false(stream_on_hold(t));
	assert_int_equal(stream_check_timeout(t, t0 + 289 * NS, 90, 7200, NULL), STREAM_ACTIVE);
	assert_int_equal(stream_check_timeout(t, t0 + 290 * NS, 90, 7200, NULL),
			 STREAM_NO_TRAFFIC_TIMEOUT);
	stream_free(s);
	stream_free(t);
}

static void test_idle_while_on_hold_uses_hold_limit(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint64_t t0 = fake_now;
	unsigned int wait;

	latch_both(f, s, 20);
	stream_set_hold(s, STREAM_CALLER, true);
	assert_int_equal(stream_check_timeout(s, t0 + 3000 * NS, 90, 7200, NULL), STREAM_ACTIVE);
	stream_set_hold(s, STREAM_CALLER, false);
	assert_int_equal(stream_check_timeout(s, t0 + 3000 * NS, 90, 7200, &wait),
			 STREAM_IDLE_TIMEOUT);
	assert_int_equal(wait, 90);
	stream_free(s);
}

static void test_idle_rtcp_is_forgotten(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint16_t cp = rtp_port(s, STREAM_CALLER), ep = rtp_port(s, STREAM_CALLEE);
	uint64_t t0 = fake_now;
	uint8_t rtcp[28], rtp[40];

	memset(rtcp, 0x81, sizeof(rtcp));
	latch_both(f, s, 40);
	send_to_relay(f, &f->caller, cp + 1, rtcp, sizeof(rtcp));
	send_to_relay(f, &f->callee, ep + 1, rtcp, sizeof(rtcp));
	expect_packet(f, &f->caller, rtcp, sizeof(rtcp), cp + 1);
	/* RTP keeps flowing, RTCP stops */
	fake_now = t0 + 80 * NS;
	make_rtp(rtp, 0, 2, sizeof(rtp));
	send_to_relay(f, &f->caller, cp, rtp, sizeof(rtp));
	expect_packet(f, &f->callee, rtp, sizeof(rtp), ep);
	assert_int_equal(stream_check_timeout(s, t0 + 95 * NS, 90, 7200, NULL), STREAM_ACTIVE);
	/* RTCP forgot the caller: a new source may latch it */
	send_to_relay(f, &f->stranger, cp + 1, rtcp, sizeof(rtcp));
	/* ...and the callee's RTCP was forgotten too: nowhere to send */
	expect_nothing(f, &f->callee);
	send_to_relay(f, &f->callee, ep + 1, rtcp, sizeof(rtcp));
	expect_packet(f, &f->stranger, rtcp, sizeof(rtcp), cp + 1);
	stream_free(s);
}

static void test_env_check_calls_back_once(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f), *t = new_stream(f);
	uint64_t t0 = fake_now;

	stream_set_timeout_cb(s, on_timeout, NULL);
	stream_set_timeout_cb(t, on_timeout, NULL);
	fake_now = t0 + 10 * NS;
	latch_both(f, t, 20);
	cb_calls = 0;
	fake_now = t0 + 90 * NS;
	stream_env_check_timeouts(f->env, 90, 7200);
	assert_int_equal(cb_calls, 1);
	assert_int_equal(cb_why, STREAM_NO_TRAFFIC_TIMEOUT);
	assert_int_equal(cb_wait, 90);
	assert_int_equal(stream_env_count(f->env), 1);
	stream_env_check_timeouts(f->env, 90, 7200);
	assert_int_equal(cb_calls, 1);
	fake_now = t0 + 100 * NS;
	stream_env_check_timeouts(f->env, 90, 7200);
	assert_int_equal(cb_calls, 2);
	assert_int_equal(cb_why, STREAM_IDLE_TIMEOUT);
	assert_int_equal(stream_env_count(f->env), 0);
}

/* ---- in-kernel backend hand-over ---------------------------------------- */

static void check_flow(const struct forward_flow *fl, const struct net_addr *relay,
		       uint16_t local, const struct phone *src, uint16_t out_local,
		       const struct phone *dst)
{
	assert_true(net_addr_equal(&fl->local.addr, relay));
	assert_int_equal(fl->local.port, local);
	assert_true(net_addr_equal(&fl->source.addr, &src->addr));
	assert_int_equal(fl->source.port, src->port);
	assert_true(net_addr_equal(&fl->out_local.addr, relay));
	assert_int_equal(fl->out_local.port, out_local);
	assert_true(net_addr_equal(&fl->destination.addr, &dst->addr));
	assert_int_equal(fl->destination.port, dst->port);
}

static void test_kernel_pair_on_latching(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint16_t cp = rtp_port(s, STREAM_CALLER), ep = rtp_port(s, STREAM_CALLEE);
	struct stream_stats st;
	uint8_t pkt[100];

	make_rtp(pkt, 0, 1, sizeof(pkt));
	send_to_relay(f, &f->caller, cp, pkt, sizeof(pkt));
	assert_int_equal(f->stub.adds, 0);
	latch_both(f, s, 100);
	assert_int_equal(f->stub.adds, 1);
	check_flow(&f->stub.last_added.forward, &f->relay_ip, cp, &f->caller, ep, &f->callee);
	check_flow(&f->stub.last_added.backward, &f->relay_ip, ep, &f->callee, cp, &f->caller);

	/* the "kernel" forwards 50 packets each way */
	f->stub.fwd = (struct forward_counters){ 5000, 50, fake_now + 30 * NS };
	f->stub.bwd = (struct forward_counters){ 4000, 40, fake_now + 20 * NS };
	/* an XDP FIB miss still reaches the socket: forwarded, counted */
	send_to_relay(f, &f->caller, cp, pkt, sizeof(pkt));
	expect_packet(f, &f->callee, pkt, sizeof(pkt), ep);
	stream_get_stats(s, &st);
	/* user space: caller 3 x 100 (the first, latch_both's, this one) */
	assert_int_equal(st.side[STREAM_CALLER].bytes, 300 + 5000);
	assert_int_equal(st.side[STREAM_CALLER].packets, 3 + 50);
	assert_int_equal(st.side[STREAM_CALLEE].bytes, 100 + 4000);
	assert_int_equal(st.side[STREAM_CALLEE].packets, 1 + 40);
	assert_int_equal(st.last_activity_ns, fake_now + 30 * NS);
	/* idleness follows the backend's last-seen time */
	assert_int_equal(stream_check_timeout(s, fake_now + 119 * NS, 90, 7200, NULL),
			 STREAM_ACTIVE);

	/* the caller moves: the rule goes, its counters stay in the totals */
	stream_set_sdp(s, STREAM_CALLER, &f->caller.addr, f->caller.port);
	assert_int_equal(f->stub.removes, 0); /* first SDP: no reset */
	stream_set_sdp(s, STREAM_CALLER, &f->stranger.addr, f->stranger.port);
	assert_int_equal(f->stub.removes, 1);
	check_flow(&f->stub.last_removed.forward, &f->relay_ip, cp, &f->caller, ep, &f->callee);
	send_to_relay(f, &f->stranger, cp, pkt, sizeof(pkt));
	expect_packet(f, &f->callee, pkt, sizeof(pkt), ep);
	assert_int_equal(f->stub.adds, 2);
	check_flow(&f->stub.last_added.forward, &f->relay_ip, cp, &f->stranger, ep, &f->callee);
	f->stub.fwd = (struct forward_counters){ 700, 7, fake_now };
	stream_get_stats(s, &st);
	assert_int_equal(st.side[STREAM_CALLER].bytes, 400 + 5000 + 700);
	assert_int_equal(st.side[STREAM_CALLER].packets, 4 + 50 + 7);
	assert_int_equal(st.side[STREAM_CALLEE].bytes, 100 + 4000);
	/* closing removes the live rule and keeps its final counters */
	stream_close(s);
	assert_int_equal(f->stub.removes, 2);
	stream_get_stats(s, &st);
	assert_int_equal(st.side[STREAM_CALLER].bytes, 400 + 5000 + 700);
	assert_int_equal(stream_env_relayed_bytes(f->env), 6100 + 4100);
	stream_free(s);
	assert_int_equal(f->stub.removes, 2);
	assert_int_equal(stream_env_relayed_bytes(f->env), 6100 + 4100);
}

static void test_kernel_add_failure_stays_in_userspace(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint8_t pkt[30];

	f->stub.add_rc = -EOPNOTSUPP;
	latch_both(f, s, 30);
	assert_int_equal(f->stub.adds, 1);
	make_rtp(pkt, 0, 2, sizeof(pkt));
	send_to_relay(f, &f->caller, rtp_port(s, STREAM_CALLER), pkt, sizeof(pkt));
	expect_packet(f, &f->callee, pkt, sizeof(pkt), rtp_port(s, STREAM_CALLEE));
	stream_free(s);
	assert_int_equal(f->stub.removes, 0); /* nothing was installed */
}

static void test_restore_adopted_leg(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	struct forward_endpoint latched[2] = {
		{ f->caller.addr, f->caller.port },
		{ f->callee.addr, f->callee.port },
	};
	struct stream_stats st;

	stream_restore_counters(s, STREAM_CALLER, 1000, 10, "G722");
	assert_int_equal(stream_restore_leg(s, STREAM_RTP, latched, true), 0);
	assert_int_equal(f->stub.adds, 0); /* adopted: already in the kernel */
	f->stub.fwd = (struct forward_counters){ 200, 2, fake_now };
	stream_get_stats(s, &st);
	assert_int_equal(st.side[STREAM_CALLER].bytes, 1200);
	assert_int_equal(st.side[STREAM_CALLER].packets, 12);
	assert_string_equal(st.side[STREAM_CALLER].codec, "G722");
	/* not adopted: installed anew */
	assert_int_equal(stream_restore_leg(s, STREAM_RTCP, latched, false), 0);
	assert_int_equal(f->stub.adds, 1);
	stream_free(s);
	assert_int_equal(f->stub.removes, 2);
}

static void test_keep_flows_on_restart(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);

	latch_both(f, s, 20);
	assert_int_equal(f->stub.adds, 1);
	stream_env_keep_flows(f->env, true);
	stream_free(s);
	assert_int_equal(f->stub.removes, 0);
}

/* ---- traffic sampler ----------------------------------------------------- */

static void test_traffic_sampler(void **state)
{
	struct traffic_sampler t;

	(void)state;
	traffic_sampler_init(&t);
	assert_true(traffic_sampler_sample(&t, 5000, 10 * NS) == 0.0);
	/* 15 s later, 240000 more bytes: 128 kbit/s */
	assert_true(traffic_sampler_sample(&t, 245000, 25 * NS) == 128000.0);
	/* a late timer: the real interval counts */
	assert_true(traffic_sampler_sample(&t, 485000, 55 * NS) == 64000.0);
	assert_true(traffic_sampler_sample(&t, 485000, 70 * NS) == 0.0);
	/* a total that went down is no traffic, and the new baseline */
	assert_true(traffic_sampler_sample(&t, 1000, 85 * NS) == 0.0);
	assert_true(traffic_sampler_sample(&t, 2000, 86 * NS) == 8000.0);
}

int main(void)
{
#define T(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_no_traffic_timeout, setup_v4),
		T(test_idle_timeout_userspace, setup_v4),
		T(test_hold_timers, setup_v4),
		T(test_idle_while_on_hold_uses_hold_limit, setup_v4),
		T(test_idle_rtcp_is_forgotten, setup_v4),
		T(test_env_check_calls_back_once, setup_v4),
		T(test_kernel_pair_on_latching, setup_kernel),
		T(test_kernel_add_failure_stays_in_userspace, setup_kernel),
		T(test_restore_adopted_leg, setup_kernel),
		T(test_keep_flows_on_restart, setup_kernel),
		cmocka_unit_test(test_traffic_sampler),
	};
#undef T

	return cmocka_run_group_tests_name("stream_state", tests, NULL, NULL);
}
