/* Media streams (relayd/stream*.c), the data path, with real UDP sockets on
 * loopback: two local "phones" talk through a stream. Latching on the first
 * packet, STUN included (PROTOCOL.md 4.4, D19); forwarding with the relay
 * port as source; exact D4 counters; foreign sources dropped and counted;
 * re-latching only after an SDP change; no sending to an unroutable SDP
 * address before latching (D5); codecs; IPv6; port exhaustion (D1). */
#include "stream_fixture.h"

/* ---- latching and forwarding ------------------------------------------------ */

static void test_latch_forward_and_count(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint16_t cp = rtp_port(s, STREAM_CALLER), ep = rtp_port(s, STREAM_CALLEE);
	struct stream_stats st;
	uint8_t a[172], b[100], c[80];
	char want[NET_ADDRPORT_STRLEN];

	assert_int_equal(ep, cp + 2); /* two pairs in FIFO order */
	stream_get_stats(s, &st);
	assert_string_equal(st.side[STREAM_CALLER].remote, "Unknown");
	assert_string_equal(st.side[STREAM_CALLER].codec, "Unknown");
	assert_int_equal(st.first_media_ns, 0);

	/* the caller latches; the callee is unknown, so nothing goes out */
	make_rtp(a, 0, 1, sizeof(a));
	fake_now += 2 * NS;
	send_to_relay(f, &f->caller, cp, a, sizeof(a));
	expect_nothing(f, &f->callee);
	stream_get_stats(s, &st);
	assert_int_equal(st.side[STREAM_CALLER].bytes, 172);
	assert_int_equal(st.side[STREAM_CALLER].packets, 1);
	assert_string_equal(st.side[STREAM_CALLER].codec, "G711u");
	remote_of(&f->caller, want, sizeof(want));
	assert_string_equal(st.side[STREAM_CALLER].remote, want);
	assert_int_equal(st.first_media_ns, st.created_ns + 2 * NS);

	/* the callee latches and its packet reaches the caller, from the
	 * caller-facing port */
	make_rtp(b, 8, 1, sizeof(b));
	send_to_relay(f, &f->callee, ep, b, sizeof(b));
	expect_packet(f, &f->caller, b, sizeof(b), cp);
	/* and now the caller reaches the callee from the callee-facing port */
	make_rtp(a, 0, 2, sizeof(a));
	send_to_relay(f, &f->caller, cp, a, sizeof(a));
	expect_packet(f, &f->callee, a, sizeof(a), ep);
	/* RTCP latches on its own ports and is summed into the same counters */
	memset(c, 0x81, sizeof(c));
	send_to_relay(f, &f->caller, cp + 1, c, sizeof(c));
	send_to_relay(f, &f->callee, ep + 1, c, sizeof(c));
	expect_packet(f, &f->caller, c, sizeof(c), cp + 1);

	stream_get_stats(s, &st);
	assert_int_equal(st.side[STREAM_CALLER].bytes, 172 + 172 + 80);
	assert_int_equal(st.side[STREAM_CALLER].packets, 3);
	assert_int_equal(st.side[STREAM_CALLEE].bytes, 100 + 80);
	assert_int_equal(st.side[STREAM_CALLEE].packets, 2);
	assert_string_equal(st.side[STREAM_CALLEE].codec, "G711a");
	assert_int_equal(st.dropped_packets, 0);
	assert_int_equal(st.last_activity_ns, fake_now);
	assert_int_equal(net_addr_port_format(&f->relay_ip, ep, want, sizeof(want)), 0);
	assert_string_equal(st.side[STREAM_CALLEE].local, want);
	assert_int_equal(stream_env_relayed_bytes(f->env), 424 + 180);
	stream_free(s);
	/* freed streams still count in the relay's total */
	assert_int_equal(stream_env_relayed_bytes(f->env), 424 + 180);
	assert_int_equal(stream_env_count(f->env), 0);
}

static void test_foreign_source_dropped(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint16_t cp = rtp_port(s, STREAM_CALLER);
	struct stream_stats st;
	uint8_t pkt[160];

	latch_both(f, s, 160);
	/* someone else sends to the caller-facing port: RTP bleed attempt */
	make_rtp(pkt, 0, 99, sizeof(pkt));
	pkt[20] = 0x42;
	send_to_relay(f, &f->stranger, cp, pkt, sizeof(pkt));
	send_to_relay(f, &f->stranger, cp, pkt, sizeof(pkt));
	expect_nothing(f, &f->callee);
	stream_get_stats(s, &st);
	assert_int_equal(st.dropped_packets, 2);
	assert_int_equal(st.side[STREAM_CALLER].packets, 1);
	assert_int_equal(st.side[STREAM_CALLER].bytes, 160);
	/* the latched caller still gets through */
	make_rtp(pkt, 0, 2, sizeof(pkt));
	send_to_relay(f, &f->caller, cp, pkt, sizeof(pkt));
	expect_packet(f, &f->callee, pkt, sizeof(pkt), rtp_port(s, STREAM_CALLEE));
	stream_free(s);
}

static void test_stun_latches_and_waits_for_its_destination(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint16_t cp = rtp_port(s, STREAM_CALLER), ep = rtp_port(s, STREAM_CALLEE);
	struct stream_stats st;
	uint8_t stun[64], rtp[120];
	size_t sl = make_stun(stun);

	send_to_relay(f, &f->caller, cp, stun, sl);
	stream_get_stats(s, &st);
	assert_int_equal(st.side[STREAM_CALLER].packets, 1); /* STUN counts (D4) */
	assert_int_equal(st.side[STREAM_CALLER].bytes, sl);
	assert_string_equal(st.side[STREAM_CALLER].codec, "Unknown"); /* not from STUN */
	assert_string_not_equal(st.side[STREAM_CALLER].remote, "Unknown");
	/* a stranger cannot take the port over once STUN latched it */
	send_to_relay(f, &f->stranger, cp, stun, sl);
	stream_get_stats(s, &st);
	assert_int_equal(st.dropped_packets, 1);
	/* the callee shows up: the queued STUN is delivered first */
	make_rtp(rtp, 18, 1, sizeof(rtp));
	send_to_relay(f, &f->callee, ep, rtp, sizeof(rtp));
	expect_packet(f, &f->callee, stun, sl, ep);
	expect_nothing(f, &f->callee); /* once only */
	expect_packet(f, &f->caller, rtp, sizeof(rtp), cp);
	/* the caller's codec comes from its first RTP packet */
	make_rtp(rtp, 101, 2, sizeof(rtp));
	send_to_relay(f, &f->caller, cp, rtp, sizeof(rtp));
	expect_packet(f, &f->callee, rtp, sizeof(rtp), ep);
	stream_get_stats(s, &st);
	assert_string_equal(st.side[STREAM_CALLER].codec, "Dynamic(101)");
	assert_string_equal(st.side[STREAM_CALLEE].codec, "G729");
	stream_free(s);
}

static void test_stun_queue_is_bounded(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint16_t cp = rtp_port(s, STREAM_CALLER), ep = rtp_port(s, STREAM_CALLEE);
	uint8_t stun[8][64], rtp[40];
	size_t sl = 0;

	for (int i = 0; i < 8; i++) {
		sl = make_stun(stun[i]);
		stun[i][19] = (uint8_t)i; /* transaction ids differ */
		send_to_relay(f, &f->caller, cp, stun[i], sl);
	}
	make_rtp(rtp, 0, 1, sizeof(rtp));
	send_to_relay(f, &f->callee, ep, rtp, sizeof(rtp));
	/* the newest four wait; older ones gave way */
	for (int i = 4; i < 8; i++)
		expect_packet(f, &f->callee, stun[i], sl, ep);
	expect_nothing(f, &f->callee);
	stream_free(s);
}

static void test_sdp_change_relatches(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint16_t cp = rtp_port(s, STREAM_CALLER), ep = rtp_port(s, STREAM_CALLEE);
	struct stream_stats st;
	struct net_addr any;
	uint8_t pkt[60];
	char want[NET_ADDRPORT_STRLEN];

	stream_set_sdp(s, STREAM_CALLER, &f->caller.addr, f->caller.port);
	latch_both(f, s, 60);
	/* the same SDP again, and a hold marker, change nothing */
	stream_set_sdp(s, STREAM_CALLER, &f->caller.addr, f->caller.port);
	assert_int_equal(net_addr_parse("0.0.0.0", &any), 0);
	stream_set_sdp(s, STREAM_CALLER, &any, f->caller.port);
	make_rtp(pkt, 0, 2, sizeof(pkt));
	send_to_relay(f, &f->caller, cp, pkt, sizeof(pkt));
	expect_packet(f, &f->callee, pkt, sizeof(pkt), ep);
	/* without an SDP change a new source cannot take over */
	send_to_relay(f, &f->stranger, cp, pkt, sizeof(pkt));
	expect_nothing(f, &f->callee);
	/* the caller moves (re-INVITE with the stranger's address) */
	stream_set_sdp(s, STREAM_CALLER, &f->stranger.addr, f->stranger.port);
	/* the old address is obsolete now: dropped */
	send_to_relay(f, &f->caller, cp, pkt, sizeof(pkt));
	expect_nothing(f, &f->callee);
	/* the new one latches and both directions use it */
	make_rtp(pkt, 3, 3, sizeof(pkt));
	send_to_relay(f, &f->stranger, cp, pkt, sizeof(pkt));
	expect_packet(f, &f->callee, pkt, sizeof(pkt), ep);
	send_to_relay(f, &f->callee, ep, pkt, sizeof(pkt));
	expect_packet(f, &f->stranger, pkt, sizeof(pkt), cp);
	expect_nothing(f, &f->caller);
	stream_get_stats(s, &st);
	assert_int_equal(st.dropped_packets, 2);
	remote_of(&f->stranger, want, sizeof(want));
	assert_string_equal(st.side[STREAM_CALLER].remote, want);
	assert_string_equal(st.side[STREAM_CALLER].codec, "G711u"); /* the first one stays */
	/* caller: 60 (latch) + 60 + 60 (stranger, now latched) */
	assert_int_equal(st.side[STREAM_CALLER].packets, 3);
	stream_free(s);
}

static void test_unroutable_sdp_not_sent_before_latching(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint16_t cp = rtp_port(s, STREAM_CALLER);
	uint8_t pkt[50];

	/* 127.x is not routable without routable_private_ranges */
	stream_set_sdp(s, STREAM_CALLEE, &f->callee.addr, f->callee.port);
	make_rtp(pkt, 0, 1, sizeof(pkt));
	send_to_relay(f, &f->caller, cp, pkt, sizeof(pkt));
	expect_nothing(f, &f->callee);
	stream_free(s);
}

static void test_routable_private_range_is_sent_to(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint16_t cp = rtp_port(s, STREAM_CALLER), ep = rtp_port(s, STREAM_CALLEE);
	struct phone rtcp;
	char ip[48];
	uint8_t pkt[50], stun[64];
	size_t sl = make_stun(stun);

	/* the callee's RTCP goes to its SDP port + 1 */
	assert_int_equal(net_addr_format(&f->callee.addr, ip, sizeof(ip)), 0);
	phone_open(&rtcp, ip);
	stream_set_sdp(s, STREAM_CALLEE, &f->callee.addr, (uint16_t)(rtcp.port - 1));
	make_rtp(pkt, 0, 1, sizeof(pkt));
	send_to_relay(f, &f->caller, cp + 1, pkt, sizeof(pkt));
	expect_packet(f, &rtcp, pkt, sizeof(pkt), ep + 1);
	/* RTP to the SDP address; STUN is not held back either */
	stream_set_sdp(s, STREAM_CALLEE, &f->callee.addr, f->callee.port);
	send_to_relay(f, &f->caller, cp, stun, sl);
	expect_packet(f, &f->callee, stun, sl, ep);
	send_to_relay(f, &f->caller, cp, pkt, sizeof(pkt));
	expect_packet(f, &f->callee, pkt, sizeof(pkt), ep);
	close(rtcp.fd);
	stream_free(s);
}

static void test_sdp_flushes_waiting_stun(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint8_t stun[64];
	size_t sl = make_stun(stun);

	send_to_relay(f, &f->caller, rtp_port(s, STREAM_CALLER), stun, sl);
	expect_nothing(f, &f->callee);
	/* the answer arrives with a routable (here: lab) address */
	stream_set_sdp(s, STREAM_CALLEE, &f->callee.addr, f->callee.port);
	expect_packet(f, &f->callee, stun, sl, rtp_port(s, STREAM_CALLEE));
	stream_free(s);
}

static void test_transmit_every(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	uint16_t cp = rtp_port(s, STREAM_CALLER), ep = rtp_port(s, STREAM_CALLEE);
	struct stream_stats st;
	uint8_t pkt[40];

	latch_both(f, s, 40); /* caller's first packet: number 0, sent */
	for (uint16_t seq = 2; seq <= 5; seq++) {
		make_rtp(pkt, 0, seq, sizeof(pkt));
		send_to_relay(f, &f->caller, cp, pkt, sizeof(pkt));
	}
	/* 1 of 2: seq 3 and 5 (the 2nd and 4th after the first) */
	make_rtp(pkt, 0, 3, sizeof(pkt));
	expect_packet(f, &f->callee, pkt, sizeof(pkt), ep);
	make_rtp(pkt, 0, 5, sizeof(pkt));
	expect_packet(f, &f->callee, pkt, sizeof(pkt), ep);
	expect_nothing(f, &f->callee);
	stream_get_stats(s, &st);
	assert_int_equal(st.side[STREAM_CALLER].packets, 5); /* all counted */
	stream_free(s);
}

static void test_ipv6(void **state)
{
	struct fixture *f = *state;
	struct stream *s = new_stream(f);
	struct stream_stats st;
	char want[NET_ADDRPORT_STRLEN];

	latch_both(f, s, 100);
	stream_get_stats(s, &st);
	assert_int_equal(st.side[STREAM_CALLEE].bytes, 100);
	snprintf(want, sizeof(want), "[::1]:%u", rtp_port(s, STREAM_CALLER));
	assert_string_equal(st.side[STREAM_CALLER].local, want);
	stream_free(s);
}

static void test_exhaustion_is_ebusy(void **state)
{
	struct fixture *f = *state;
	struct stream *s[3], *none = (void *)1;
	struct ports_usage u;

	for (int i = 0; i < 3; i++)
		s[i] = new_stream(f);
	assert_int_equal(stream_new(f->env, &none), -EBUSY);
	assert_null(none);
	ports_get_usage(f->pool, &u);
	assert_int_equal(u.taken, 6);
	assert_int_equal(stream_env_count(f->env), 3);
	stream_free(s[1]);
	s[1] = new_stream(f);
	/* closed but not freed: the ports are back, the statistics stay */
	stream_close(s[0]);
	stream_close(s[0]);
	ports_get_usage(f->pool, &u);
	assert_int_equal(u.taken, 4);
	for (int i = 0; i < 3; i++)
		stream_free(s[i]);
}

static void test_new_on_ports(void **state)
{
	struct fixture *f = *state;
	struct stream *s, *t;
	uint16_t want_caller = (uint16_t)(f->base_port + 6);
	uint16_t want_callee = (uint16_t)(f->base_port + 2);

	assert_int_equal(stream_new_on_ports(f->env, want_caller, want_callee, &s), 0);
	assert_int_equal(stream_local_port(s, STREAM_CALLER), want_caller);
	assert_int_equal(stream_local_port(s, STREAM_CALLEE), want_callee);
	assert_int_equal(stream_new_on_ports(f->env, want_caller, f->base_port + 4, &t), -EBUSY);
	assert_int_equal(stream_env_count(f->env), 1);
	latch_both(f, s, 30);
	stream_free(s);
}

int main(void)
{
#define T(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_latch_forward_and_count, setup_v4),
		T(test_foreign_source_dropped, setup_v4),
		T(test_stun_latches_and_waits_for_its_destination, setup_v4),
		T(test_stun_queue_is_bounded, setup_v4),
		T(test_sdp_change_relatches, setup_v4),
		T(test_unroutable_sdp_not_sent_before_latching, setup_v4),
		T(test_routable_private_range_is_sent_to, setup_lab),
		T(test_sdp_flushes_waiting_stun, setup_lab),
		T(test_transmit_every, setup_every2),
		T(test_ipv6, setup_v6),
		T(test_exhaustion_is_ebusy, setup_v4),
		T(test_new_on_ports, setup_v4),
	};
#undef T

	return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}
