/* The relay's session model (relayd/session*.c) driven by dispatcher
 * commands, over real streams on loopback: offers and answers as Kamailio
 * 5.6 and OpenSIPS 3.4 send them (PROTOCOL.md Appendix A), re-INVITEs
 * adding video, hold and unhold, rejected streams, the callee's re-INVITE
 * with swapped tags, the reply ports of 4.2, `None`, `halting`, port
 * exhaustion (D1), and every bad-input path answering `error`. */
#include "test_session_fixture.h"

/* ---- a whole call --------------------------------------------------------------- */

static void test_kamailio_offer_answer_remove(void **state)
{
	struct sfix *s = *state;
	struct json_object *j, *st;
	char *reply;

	/* the offer goes to the callee: it gets the callee-facing port */
	expect_reply(s, KAM_OFFER, ports_reply(s, 1, callee_port(s, 0)));
	assert_int_equal(session_table_count(s->t), 1);
	s->wall += 1.5;
	/* the answer goes to the caller: the caller-facing port */
	expect_reply(s, KAM_ANSWER, ports_reply(s, 1, caller_port(s, 0)));
	s->wall += 63.75;
	reply = run(s, KAM_REMOVE);
	assert_int_equal(session_table_count(s->t), 0);
	assert_int_equal(stream_env_count(s->f->env), 0);

	j = jparse(reply);
	jkeys(j, session_keys, N_KEYS(session_keys));
	jstr(j, "call_id", "1-16898@127.0.0.1");
	jstr(j, "from_tag", "16898SIPpTag001");
	jstr(j, "from_uri", "uac@127.0.0.1:54784");
	jstr(j, "to_tag", "16885SIPpTag011");
	jstr(j, "to_uri", "uas@127.0.0.1:32968");
	jdouble(j, "start_time", WALL_START + 1.5);
	jint(j, "duration", 63);
	jstr(j, "caller_ua", "e2e-uac");
	jstr(j, "callee_ua", "e2e-uas");
	jnull(j, "username");
	assert_int_equal(jstream_count(j), 1);
	st = jstream(j, 0);
	jstr(st, "media_type", "audio");
	jstr(st, "status", "closed");
	jint(st, "timeout_wait", 0);
	jstr(st, "caller_codec", "Unknown");
	jstr(st, "callee_codec", "Unknown");
	jint(st, "start_time", 0);
	jint(st, "end_time", 63);
	jnull(st, "post_dial_delay");
	jint(st, "caller_bytes", 0);
	jint(st, "callee_bytes", 0);
	jint(st, "caller_packets", 0);
	jint(st, "callee_packets", 0);
	jstr(st, "caller_local", addr_port(&s->f->relay_ip, caller_port(s, 0)));
	jstr(st, "callee_local", addr_port(&s->f->relay_ip, callee_port(s, 0)));
	jstr(st, "caller_remote", "Unknown");
	jstr(st, "callee_remote", "Unknown");
	jint(st, "dropped_packets", 0);
	/* one line, floats written as floats */
	assert_null(strchr(reply, '\n'));
	assert_non_null(strstr(reply, "\"start_time\":1718000001.75"));
	json_object_put(j);
	free(reply);
	/* the session is gone */
	expect_reply(s, KAM_REMOVE, "error");
}

/* RTP through the ports the replies gave, counted into the final JSON. */
static void test_media_flows_and_is_counted(void **state)
{
	struct sfix *s = *state;
	struct fixture *f = s->f;
	struct upd offer = { "request", "flow@192.0.2.10", "101", "a73kszlfl", NULL, "Blink 5.1",
			     media_of(&f->caller, "audio", "sendrecv"), NULL };
	struct upd answer = { "reply", "flow@192.0.2.10", "101", "a73kszlfl", "1928301774",
			      "Asterisk PBX 18", media_of(&f->callee, "audio", "sendrecv"), NULL };
	uint16_t cp = (uint16_t)caller_port(s, 0), ep = (uint16_t)callee_port(s, 0);
	struct json_object *j, *st;
	uint8_t a[172], b[100];
	char *reply;

	expect_reply(s, upd_text(&offer), ports_reply(s, 1, ep));
	expect_reply(s, upd_text(&answer), ports_reply(s, 1, cp));
	fake_now += 2 * NS + NS / 4;
	make_rtp(a, 0, 1, sizeof(a));
	send_to_relay(f, &f->caller, cp, a, sizeof(a));
	make_rtp(b, 8, 1, sizeof(b));
	send_to_relay(f, &f->callee, ep, b, sizeof(b));
	expect_packet(f, &f->caller, b, sizeof(b), cp);
	make_rtp(a, 0, 2, sizeof(a));
	send_to_relay(f, &f->caller, cp, a, sizeof(a));
	expect_packet(f, &f->callee, a, sizeof(a), ep);
	/* a stranger's packet is dropped and counted apart (D4) */
	send_to_relay(f, &f->stranger, cp, a, sizeof(a));
	expect_nothing(f, &f->callee);

	s->wall += 10;
	reply = run(s, "remove\r\ncall_id: flow@192.0.2.10\r\nfrom_tag: a73kszlfl\r\n\r\n");
	j = jparse(reply);
	jint(j, "duration", 10);
	st = jstream(j, 0);
	jstr(st, "status", "closed");
	jstr(st, "caller_codec", "G711u");
	jstr(st, "callee_codec", "G711a");
	jdouble(st, "post_dial_delay", 2.25);
	jint(st, "caller_bytes", 2 * 172);
	jint(st, "caller_packets", 2);
	jint(st, "callee_bytes", 100);
	jint(st, "callee_packets", 1);
	jint(st, "dropped_packets", 1);
	jstr(st, "caller_remote", addr_port(&f->caller.addr, f->caller.port));
	jstr(st, "callee_remote", addr_port(&f->callee.addr, f->callee.port));
	json_object_put(j);
	free(reply);
	/* the ports are closed now */
	send_to_relay(f, &f->caller, cp, a, sizeof(a));
	expect_nothing(f, &f->callee);
}

/* OpenSIPS sends dialog_id as one 64-bit decimal; the relay does not care.
 * Its remove came before any answer: nothing started (D16). */
static void test_opensips_offer_then_remove_unanswered(void **state)
{
	struct sfix *s = *state;
	struct json_object *j;
	char *reply;

	expect_reply(s, OSIPS_OFFER, ports_reply(s, 1, callee_port(s, 0)));
	s->wall += 4;
	reply = run(s, OSIPS_REMOVE);
	j = jparse(reply);
	jkeys(j, session_keys, N_KEYS(session_keys));
	jstr(j, "call_id", "1-3883@127.0.0.1");
	jnull(j, "to_tag");
	jnull(j, "start_time");
	jint(j, "duration", 0);
	jstr(j, "caller_ua", "e2e-opensips-uac");
	jstr(j, "callee_ua", "Unknown");
	assert_int_equal(jstream_count(j), 0);
	json_object_put(j);
	free(reply);
}

/* ---- re-INVITEs ------------------------------------------------------------------ */

static void test_reinvite_adds_video(void **state)
{
	struct sfix *s = *state;
	struct upd offer = { "request", "video@x", "1", "ft", NULL, "uac",
			     "audio:192.0.2.10:4000:sendrecv:ice=no", NULL };
	struct upd answer = { "reply", "video@x", "1", "ft", "tt", "uas",
			      "audio:198.18.0.20:5000:sendrecv:ice=no", NULL };
	struct upd reoffer = { "request", "video@x", "2", "ft", "tt", "uac",
			       "audio:192.0.2.10:4000:sendrecv:ice=no,"
			       "video:192.0.2.10:4002:sendrecv:ice=no", NULL };
	struct upd reanswer = { "reply", "video@x", "2", "ft", "tt", "uas",
				"audio:198.18.0.20:5000:sendrecv:ice=no,"
				"video:198.18.0.20:5002:sendrecv:ice=no", NULL };
	struct json_object *a, *j;

	expect_reply(s, upd_text(&offer), ports_reply(s, 1, callee_port(s, 0)));
	expect_reply(s, upd_text(&answer), ports_reply(s, 1, caller_port(s, 0)));
	s->wall += 20;
	/* audio is the same stream (same ports); video is new */
	expect_reply(s, upd_text(&reoffer), ports_reply(s, 2, callee_port(s, 0), callee_port(s, 1)));
	s->wall += 1;
	expect_reply(s, upd_text(&reanswer), ports_reply(s, 2, caller_port(s, 0), caller_port(s, 1)));
	assert_int_equal(stream_env_count(s->f->env), 2);
	s->wall += 9;
	a = sessions_now(s);
	assert_int_equal(json_object_array_length(a), 1);
	j = json_object_array_get_idx(a, 0);
	jint(j, "duration", 30);
	assert_int_equal(jstream_count(j), 2);
	jstr(jstream(j, 0), "media_type", "audio");
	jint(jstream(j, 0), "start_time", 0);
	jint(jstream(j, 0), "end_time", 30);
	jstr(jstream(j, 0), "status", "active");
	jstr(jstream(j, 1), "media_type", "video");
	jint(jstream(j, 1), "start_time", 21);
	jint(jstream(j, 1), "end_time", 30);
	json_object_put(a);
}

/* The caller changes its port: a new stream; the old one lives until the
 * answer (the re-INVITE might fail), then is closed. */
static void test_reinvite_new_port_replaces_stream(void **state)
{
	struct sfix *s = *state;
	struct upd offer = { "request", "move@x", "1", "ft", NULL, "uac",
			     "audio:192.0.2.10:4000:sendrecv:ice=no", NULL };
	struct upd answer = { "reply", "move@x", "1", "ft", "tt", "uas",
			      "audio:198.18.0.20:5000:sendrecv:ice=no", NULL };
	struct upd reoffer = { "request", "move@x", "2", "ft", "tt", "uac",
			       "audio:192.0.2.10:4100:sendrecv:ice=no", NULL };
	struct upd reanswer = { "reply", "move@x", "2", "ft", "tt", "uas",
				"audio:198.18.0.20:5000:sendrecv:ice=no", NULL };
	struct json_object *a, *j;

	expect_reply(s, upd_text(&offer), ports_reply(s, 1, callee_port(s, 0)));
	expect_reply(s, upd_text(&answer), ports_reply(s, 1, caller_port(s, 0)));
	expect_reply(s, upd_text(&reoffer), ports_reply(s, 1, callee_port(s, 1)));
	assert_int_equal(stream_env_count(s->f->env), 2);
	expect_reply(s, upd_text(&reanswer), ports_reply(s, 1, caller_port(s, 1)));
	assert_int_equal(stream_env_count(s->f->env), 1);
	a = sessions_now(s);
	j = json_object_array_get_idx(a, 0);
	assert_int_equal(jstream_count(j), 2);
	jstr(jstream(j, 0), "status", "closed");
	jstr(jstream(j, 1), "status", "active");
	json_object_put(a);
}

static const char *stream_status(struct sfix *s, size_t i)
{
	static char status[32];
	struct json_object *a = sessions_now(s);

	snprintf(status, sizeof(status), "%s",
		 json_object_get_string(jget(jstream(json_object_array_get_idx(a, 0), i), "status")));
	json_object_put(a);
	return status;
}

static void test_hold_and_unhold(void **state)
{
	static const struct {
		const char *name, *offer_media, *answer_media, *want_status;
	} steps[] = {
		{ "caller holds with sendonly", "audio:192.0.2.10:4000:sendonly:ice=no",
		  "audio:198.18.0.20:5000:recvonly:ice=no", "on hold" },
		{ "caller resumes", "audio:192.0.2.10:4000:sendrecv:ice=no",
		  "audio:198.18.0.20:5000:sendrecv:ice=no", "active" },
		{ "caller holds RFC 2543 style", "audio:0.0.0.0:4000:sendrecv:ice=no",
		  "audio:198.18.0.20:5000:sendrecv:ice=no", "on hold" },
		{ "caller resumes again", "audio:192.0.2.10:4000:sendrecv:ice=no",
		  "audio:198.18.0.20:5000:sendrecv:ice=no", "active" },
		{ "both inactive", "audio:192.0.2.10:4000:inactive:ice=no",
		  "audio:198.18.0.20:5000:inactive:ice=no", "on hold" },
	};
	struct sfix *s = *state;
	struct upd offer = { "request", "hold@x", "1", "ft", NULL, "uac",
			     "audio:192.0.2.10:4000:sendrecv:ice=no", NULL };
	struct upd answer = { "reply", "hold@x", "1", "ft", "tt", "uas",
			      "audio:198.18.0.20:5000:sendrecv:ice=no", NULL };
	char cseq[8];

	expect_reply(s, upd_text(&offer), ports_reply(s, 1, callee_port(s, 0)));
	expect_reply(s, upd_text(&answer), ports_reply(s, 1, caller_port(s, 0)));
	assert_string_equal(stream_status(s, 0), "active");
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		print_message("# %s\n", steps[i].name);
		snprintf(cseq, sizeof(cseq), "%zu", i + 2);
		offer.cseq = answer.cseq = cseq;
		offer.to_tag = "tt";
		offer.media = steps[i].offer_media;
		answer.media = steps[i].answer_media;
		/* the same stream all along: the same ports */
		expect_reply(s, upd_text(&offer), ports_reply(s, 1, callee_port(s, 0)));
		expect_reply(s, upd_text(&answer), ports_reply(s, 1, caller_port(s, 0)));
		assert_string_equal(stream_status(s, 0), steps[i].want_status);
	}
	assert_int_equal(stream_env_count(s->f->env), 1);
}

/* The offer's port 0 closes a stream; the answer's port 0 rejects one,
 * and so does leaving it out. */
static void test_answer_rejects_streams(void **state)
{
	struct sfix *s = *state;
	struct upd offer = { "request", "reject@x", "1", "ft", NULL, "uac",
			     "audio:192.0.2.10:4000:sendrecv:ice=no,video:192.0.2.10:4002:sendrecv:ice=no,"
			     "image:192.0.2.10:4004:sendrecv:ice=no", NULL };
	struct upd answer = { "reply", "reject@x", "1", "ft", "tt", "uas",
			      "audio:198.18.0.20:5000:sendrecv:ice=no,video:198.18.0.20:0:sendrecv:ice=no",
			      NULL };
	struct upd reoffer = { "request", "reject@x", "2", "ft", "tt", "uac",
			       "audio:192.0.2.10:0:sendrecv:ice=no", NULL };
	struct json_object *a, *j;

	expect_reply(s, upd_text(&offer),
		     ports_reply(s, 3, callee_port(s, 0), callee_port(s, 1), callee_port(s, 2)));
	s->wall += 2;
	/* one port per stream of the offer, as upstream: the module only
	 * uses as many as the answer has m= lines */
	expect_reply(s, upd_text(&answer), ports_reply(s, 3, caller_port(s, 0), 0, 0));
	assert_int_equal(stream_env_count(s->f->env), 1);
	s->wall += 5;
	a = sessions_now(s);
	j = json_object_array_get_idx(a, 0);
	assert_int_equal(jstream_count(j), 3);
	jstr(jstream(j, 0), "status", "active");
	jstr(jstream(j, 1), "media_type", "video");
	jstr(jstream(j, 1), "status", "rejected");
	jint(jstream(j, 1), "end_time", 0);
	jstr(jstream(j, 2), "media_type", "image");
	jstr(jstream(j, 2), "status", "rejected");
	json_object_put(a);
	/* the caller disables audio: the matching stream closes, port 0 */
	expect_reply(s, upd_text(&reoffer), ports_reply(s, 1, 0));
	assert_int_equal(stream_env_count(s->f->env), 0);
	assert_string_equal(stream_status(s, 0), "closed");
}

/* A stream offered with port 0 never takes ports. */
static void test_offer_with_disabled_stream(void **state)
{
	struct sfix *s = *state;
	struct upd offer = { "request", "t38@x", "1", "ft", NULL, "uac",
			     "audio:192.0.2.10:0:sendrecv:ice=no,image:192.0.2.10:4004:sendrecv:ice=no",
			     NULL };

	expect_reply(s, upd_text(&offer), ports_reply(s, 2, 0, callee_port(s, 0)));
	assert_int_equal(stream_env_count(s->f->env), 1);
}

/* The callee sends a re-INVITE: its tag is now the From tag, the caller's
 * the To tag; the session is found by the to_tag and the callee's CSeq
 * counts apart. */
static void test_callee_reinvite_with_swapped_tags(void **state)
{
	struct sfix *s = *state;
	struct upd callee_offer = { "request", KAM_CALLID, "1", "16885SIPpTag011", "16898SIPpTag001",
				    "e2e-uas", "audio:127.0.0.1:21912:sendonly:ice=no", NULL };
	struct upd caller_answer = { "reply", KAM_CALLID, "1", "16885SIPpTag011", "16898SIPpTag001",
				     "e2e-uac", "audio:127.0.0.1:23604:recvonly:ice=no", NULL };
	char *reply;

	expect_reply(s, KAM_OFFER, ports_reply(s, 1, callee_port(s, 0)));
	expect_reply(s, KAM_ANSWER, ports_reply(s, 1, caller_port(s, 0)));
	/* callee -> caller: the caller gets the caller-facing port */
	expect_reply(s, upd_text(&callee_offer), ports_reply(s, 1, caller_port(s, 0)));
	assert_string_equal(stream_status(s, 0), "on hold");
	/* caller's 200 OK -> callee: the callee-facing port */
	expect_reply(s, upd_text(&caller_answer), ports_reply(s, 1, callee_port(s, 0)));
	assert_int_equal(session_table_count(s->t), 1);
	assert_int_equal(stream_env_count(s->f->env), 1);
	/* the callee hangs up: remove with the tags its way round */
	reply = run(s, "remove\r\ncall_id: " KAM_CALLID "\r\nfrom_tag: 16885SIPpTag011\r\n"
		       "to_tag: 16898SIPpTag001\r\n\r\n");
	assert_int_equal(reply[0], '{');
	free(reply);
	assert_int_equal(session_table_count(s->t), 0);
}

/* A CSeq below the current one changes nothing. */
static void test_old_cseq_ignored(void **state)
{
	struct sfix *s = *state;
	struct upd offer = { "request", "old@x", "5", "ft", NULL, "uac",
			     "audio:192.0.2.10:4000:sendrecv:ice=no", NULL };

	expect_reply(s, upd_text(&offer), ports_reply(s, 1, callee_port(s, 0)));
	offer.cseq = "4";
	offer.media = "audio:192.0.2.10:4100:sendrecv:ice=no,video:192.0.2.10:4102:sendrecv:ice=no";
	expect_reply(s, upd_text(&offer), "None");
	assert_int_equal(stream_env_count(s->f->env), 1);
}

/* ---- None, halting, advertised_ip --------------------------------------------- */

static void test_none_replies(void **state)
{
	struct sfix *s = *state;
	struct upd reply_no_sdp = { "reply", "none@x", "1", "ft", "tt", "uas", NULL, NULL };
	struct upd request_no_sdp = { "request", "none@x", "1", "ft", NULL, "uac", NULL, NULL };
	struct upd offer = { "request", "none@x", "1", "ft", NULL, "uac",
			     "audio:192.0.2.10:4000:sendrecv:ice=no", NULL };
	struct upd reinvite_no_sdp = { "request", "none@x", "2", "ft", "tt", "uac", NULL, NULL };

	expect_reply(s, upd_text(&reply_no_sdp), "None");
	expect_reply(s, upd_text(&request_no_sdp), "None");
	assert_int_equal(session_table_count(s->t), 0);
	expect_reply(s, upd_text(&offer), ports_reply(s, 1, callee_port(s, 0)));
	/* 200 OK without SDP: it brings the to-tag, the ports stay */
	expect_reply(s, upd_text(&reply_no_sdp), ports_reply(s, 1, caller_port(s, 0)));
	expect_reply(s, upd_text(&reinvite_no_sdp), "None");
	assert_int_equal(session_table_count(s->t), 1);
}

static void test_halting(void **state)
{
	struct sfix *s = *state;
	struct upd reinvite = { "request", KAM_CALLID, "2", "16898SIPpTag001", "16885SIPpTag011",
				"e2e-uac", "audio:127.0.0.1:23604:sendonly:ice=no", NULL };
	struct json_object *j;
	char *reply;

	expect_reply(s, KAM_OFFER, ports_reply(s, 1, callee_port(s, 0)));
	session_table_set_halting(s->t);
	/* a known session carries on */
	expect_reply(s, KAM_ANSWER, ports_reply(s, 1, caller_port(s, 0)));
	expect_reply(s, upd_text(&reinvite), ports_reply(s, 1, callee_port(s, 0)));
	/* a new one is turned away */
	expect_reply(s, OSIPS_OFFER, "halting");
	assert_int_equal(session_table_count(s->t), 1);
	reply = run(s, "summary 3\r\n\r\n");
	j = jparse(reply);
	jstr(j, "status", "halting");
	json_object_put(j);
	free(reply);
	reply = run(s, KAM_REMOVE);
	free(reply);
	assert_int_equal(session_table_count(s->t), 0);
}

static void test_advertised_ip(void **state)
{
	struct sfix *s = *state;
	char want[64];

	snprintf(want, sizeof(want), "198.51.100.1 %u", callee_port(s, 0));
	expect_reply(s, KAM_OFFER, want);
}

/* ---- D1: port exhaustion --------------------------------------------------------- */

static void test_port_exhaustion(void **state)
{
	struct sfix *s = *state;
	struct upd call = { "request", "full@x", "1", "ft", NULL, "uac",
			     "audio:192.0.2.10:4000:sendrecv:ice=no,video:192.0.2.10:4002:sendrecv:ice=no",
			     NULL };
	struct upd two = { "request", "more@x", "1", "ft2", NULL, "uac",
			   "audio:192.0.2.20:4000:sendrecv:ice=no,video:192.0.2.20:4002:sendrecv:ice=no",
			   NULL };
	struct upd answer = { "reply", "full@x", "1", "ft", "tt", "uas",
			      "audio:198.18.0.20:5000:sendrecv:ice=no,video:198.18.0.20:5002:sendrecv:ice=no",
			      NULL };
	struct upd add_image = { "request", "full@x", "2", "ft", "tt", "uac",
				 "audio:192.0.2.10:4000:sendrecv:ice=no,"
				 "video:192.0.2.10:4002:sendrecv:ice=no,"
				 "image:192.0.2.10:4004:sendrecv:ice=no,"
				 "audio:192.0.2.10:4006:sendrecv:ice=no", NULL };
	char *reply;

	/* the pool holds three streams: two are taken */
	expect_reply(s, upd_text(&call), ports_reply(s, 2, callee_port(s, 0), callee_port(s, 1)));
	/* a new call needing two gets one, then none: `error`, and the one it
	 * got goes back */
	expect_reply(s, upd_text(&two), "error");
	assert_int_equal(session_table_count(s->t), 1);
	assert_int_equal(stream_env_count(s->f->env), 2);
	/* a re-INVITE needing two more fails and leaves the call as it was */
	expect_reply(s, upd_text(&add_image), "error");
	assert_int_equal(stream_env_count(s->f->env), 2);
	expect_reply(s, upd_text(&answer), ports_reply(s, 2, caller_port(s, 0), caller_port(s, 1)));
	assert_string_equal(stream_status(s, 0), "active");
	assert_string_equal(stream_status(s, 1), "active");
	/* once the first call is gone the second one fits */
	reply = run(s, "remove\r\ncall_id: full@x\r\nfrom_tag: ft\r\n\r\n");
	free(reply);
	reply = run(s, upd_text(&two));
	assert_string_not_equal(reply, "error");
	free(reply);
	assert_int_equal(stream_env_count(s->f->env), 2);
}

/* ---- bad input -------------------------------------------------------------------- */

static const struct {
	const char *name, *bytes;
} bad_requests[] = {
	{ "update without type",
	  "update\r\ncall_id: c\r\ncseq: 1\r\nfrom_uri: a\r\nto_uri: b\r\nfrom_tag: f\r\n"
	  "user_agent: u\r\nmedia: audio:192.0.2.10:4000:sendrecv\r\n\r\n" },
	{ "update without call_id",
	  "update\r\ntype: request\r\ncseq: 1\r\nfrom_uri: a\r\nto_uri: b\r\nfrom_tag: f\r\n"
	  "user_agent: u\r\nmedia: audio:192.0.2.10:4000:sendrecv\r\n\r\n" },
	{ "update without cseq",
	  "update\r\ntype: request\r\ncall_id: c\r\nfrom_uri: a\r\nto_uri: b\r\nfrom_tag: f\r\n"
	  "user_agent: u\r\nmedia: audio:192.0.2.10:4000:sendrecv\r\n\r\n" },
	{ "update without from_uri",
	  "update\r\ntype: request\r\ncall_id: c\r\ncseq: 1\r\nto_uri: b\r\nfrom_tag: f\r\n"
	  "user_agent: u\r\nmedia: audio:192.0.2.10:4000:sendrecv\r\n\r\n" },
	{ "update without to_uri",
	  "update\r\ntype: request\r\ncall_id: c\r\ncseq: 1\r\nfrom_uri: a\r\nfrom_tag: f\r\n"
	  "user_agent: u\r\nmedia: audio:192.0.2.10:4000:sendrecv\r\n\r\n" },
	{ "INVITE without a From tag (Kamailio sends it empty)",
	  "update\r\ntype: request\r\ncall_id: c\r\ncseq: 1\r\nfrom_uri: a\r\nto_uri: b\r\n"
	  "from_tag: \r\nuser_agent: u\r\nmedia: audio:192.0.2.10:4000:sendrecv\r\n\r\n" },
	{ "update without user_agent",
	  "update\r\ntype: request\r\ncall_id: c\r\ncseq: 1\r\nfrom_uri: a\r\nto_uri: b\r\n"
	  "from_tag: f\r\nmedia: audio:192.0.2.10:4000:sendrecv\r\n\r\n" },
	{ "type neither request nor reply",
	  "update\r\ntype: INVITE\r\ncall_id: c\r\ncseq: 1\r\nfrom_uri: a\r\nto_uri: b\r\n"
	  "from_tag: f\r\nuser_agent: u\r\nmedia: audio:192.0.2.10:4000:sendrecv\r\n\r\n" },
	{ "cseq with the method",
	  "update\r\ntype: request\r\ncall_id: c\r\ncseq: 1 INVITE\r\nfrom_uri: a\r\nto_uri: b\r\n"
	  "from_tag: f\r\nuser_agent: u\r\nmedia: audio:192.0.2.10:4000:sendrecv\r\n\r\n" },
	{ "negative cseq",
	  "update\r\ntype: request\r\ncall_id: c\r\ncseq: -1\r\nfrom_uri: a\r\nto_uri: b\r\n"
	  "from_tag: f\r\nuser_agent: u\r\nmedia: audio:192.0.2.10:4000:sendrecv\r\n\r\n" },
	{ "cseq over 64 bits",
	  "update\r\ntype: request\r\ncall_id: c\r\ncseq: 99999999999999999999\r\nfrom_uri: a\r\n"
	  "to_uri: b\r\nfrom_tag: f\r\nuser_agent: u\r\nmedia: audio:192.0.2.10:4000:sendrecv\r\n\r\n" },
	{ "media with a host name",
	  "update\r\ntype: request\r\ncall_id: c\r\ncseq: 1\r\nfrom_uri: a\r\nto_uri: b\r\n"
	  "from_tag: f\r\nuser_agent: u\r\nmedia: audio:pbx.example.com:4000:sendrecv\r\n\r\n" },
	{ "media with a port over 65535",
	  "update\r\ntype: request\r\ncall_id: c\r\ncseq: 1\r\nfrom_uri: a\r\nto_uri: b\r\n"
	  "from_tag: f\r\nuser_agent: u\r\nmedia: audio:192.0.2.10:70000:sendrecv\r\n\r\n" },
	{ "media cut after the port",
	  "update\r\ntype: request\r\ncall_id: c\r\ncseq: 1\r\nfrom_uri: a\r\nto_uri: b\r\n"
	  "from_tag: f\r\nuser_agent: u\r\nmedia: audio:192.0.2.10:4000\r\n\r\n" },
	{ "remove without from_tag", "remove\r\ncall_id: c\r\n\r\n" },
	{ "remove without call_id", "remove\r\nfrom_tag: f\r\n\r\n" },
	{ "remove of a call this relay does not have",
	  "remove\r\ncall_id: nobody@x\r\nfrom_tag: f\r\nto_tag: t\r\n\r\n" },
	{ "unknown command", "reload 9\r\n\r\n" },
};

static void test_bad_requests_answer_error(void **state)
{
	struct sfix *s = *state;

	for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
		print_message("# %s\n", bad_requests[i].name);
		expect_reply(s, bad_requests[i].bytes, "error");
		assert_int_equal(session_table_count(s->t), 0);
		assert_int_equal(stream_env_count(s->f->env), 0);
	}
}

/* The answer's media types must follow the offer's order (4.3); a
 * mismatch is an error and changes nothing. */
static void test_answer_with_wrong_media_type(void **state)
{
	struct sfix *s = *state;
	struct upd answer = { "reply", KAM_CALLID, "1", "16898SIPpTag001", "16885SIPpTag011",
			      "e2e-uas", "video:127.0.0.1:21912:sendrecv:ice=no", NULL };
	struct json_object *a;

	expect_reply(s, KAM_OFFER, ports_reply(s, 1, callee_port(s, 0)));
	expect_reply(s, upd_text(&answer), "error");
	a = sessions_now(s);
	jnull(json_object_array_get_idx(a, 0), "start_time");
	json_object_put(a);
	expect_reply(s, KAM_ANSWER, ports_reply(s, 1, caller_port(s, 0)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, sfix_setup, sfix_teardown)
		T(test_kamailio_offer_answer_remove),
		T(test_media_flows_and_is_counted),
		T(test_opensips_offer_then_remove_unanswered),
		T(test_reinvite_adds_video),
		T(test_reinvite_new_port_replaces_stream),
		T(test_hold_and_unhold),
		T(test_answer_rejects_streams),
		T(test_offer_with_disabled_stream),
		T(test_callee_reinvite_with_swapped_tags),
		T(test_old_cseq_ignored),
		T(test_none_replies),
		T(test_halting),
		cmocka_unit_test_setup_teardown(test_advertised_ip, sfix_setup_advertised,
						sfix_teardown),
		T(test_port_exhaustion),
		T(test_bad_requests_answer_error),
		T(test_answer_with_wrong_media_type),
#undef T
	};

	return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
