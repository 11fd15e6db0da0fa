/* The relay's JSON and the end of sessions (relayd/session*.c): `summary`
 * (PROTOCOL.md 3.4) and `sessions` (3.3) read back with json-c field by
 * field; sessions expiring when their streams time out on the data plane's
 * own timeout check with a fake clock (4.5, 2.8), ICE, partial expiry;
 * and session_table_expire_all() for SIGINT/SIGTERM. */
#include "test_session_fixture.h"

#define STREAM_TIMEOUT 90
#define ON_HOLD_TIMEOUT 7200

static void offer_answer(struct sfix *s, const char *call_id, const char *from_tag,
			 const char *offer_media, const char *answer_media)
{
	struct upd offer = { "request", call_id, "1", from_tag, NULL, "uac", offer_media, NULL };
	struct upd answer = { "reply", call_id, "1", from_tag, "tt", "uas", answer_media, NULL };
	char *reply;

	reply = run(s, upd_text(&offer));
	assert_true(reply[0] >= '0' && reply[0] <= '9');
	free(reply);
	reply = run(s, upd_text(&answer));
	assert_true(reply[0] >= '0' && reply[0] <= '9');
	free(reply);
}

static void check_timeouts(struct sfix *s, unsigned int seconds)
{
	fake_now += (uint64_t)seconds * NS;
	s->wall += seconds;
	stream_env_check_timeouts(s->f->env, STREAM_TIMEOUT, ON_HOLD_TIMEOUT);
}

/* ---- summary ----------------------------------------------------------------------- */

static void test_summary(void **state)
{
	static const char *const keys[] = {
		"ip", "version", "status", "uptime", "session_count", "stream_count", "bps_relayed",
	};
	struct sfix *s = *state;
	struct json_object *j;
	char *reply;

	reply = run(s, "summary 0\r\n\r\n");
	j = jparse(reply);
	jkeys(j, keys, N_KEYS(keys));
	jint(j, "session_count", 0);
	jint(j, "stream_count", 0);
	jdouble(j, "bps_relayed", 0.0);
	json_object_put(j);
	free(reply);

	offer_answer(s, "a@x", "fa", "audio:192.0.2.10:4000:sendrecv:ice=no,"
		     "video:192.0.2.10:4002:sendrecv:ice=no",
		     "audio:198.18.0.20:5000:sendrecv:ice=no,video:198.18.0.20:0:sendrecv:ice=no");
	offer_answer(s, "b@x", "fb", "audio:192.0.2.30:4000:sendrecv:ice=no",
		     "audio:198.18.0.40:5000:sendrecv:ice=no");
	s->bps = 128000.0;
	s->wall += 3600.75;
	reply = run(s, "summary 12\r\n\r\n");
	j = jparse(reply);
	jkeys(j, keys, N_KEYS(keys));
	jstr(j, "ip", s->relay_ip);
	jstr(j, "version", MP_VERSION);
	jstr(j, "status", "active");
	jint(j, "uptime", 3600);
	jint(j, "session_count", 2);
	jint(j, "stream_count", 2); /* the rejected video is not counted */
	jdouble(j, "bps_relayed", 128000.0);
	/* a float stays a float on the wire, as Python writes it */
	assert_non_null(strstr(reply, "\"bps_relayed\":128000.0"));
	json_object_put(j);
	free(reply);
}

/* ---- sessions ----------------------------------------------------------------------- */

static void test_sessions_every_field(void **state)
{
	struct sfix *s = *state;
	struct upd offer = { "request", "json@x", "7", "fj", NULL, "Blink 5.1",
			     "audio:192.0.2.10:4000:sendrecv:ice=no",
			     "{\"signaling_ip\": \"203.0.113.5\", \"destination_ip\": \"198.18.7.20\", "
			     "\"username\": \"alice@example.com\"}" };
	struct json_object *a, *j, *st;
	char *reply;

	reply = run(s, "sessions 1\r\n\r\n");
	assert_string_equal(reply, "[]");
	free(reply);

	reply = run(s, upd_text(&offer));
	free(reply);
	offer_answer(s, "second@x", "f2", "audio:192.0.2.30:4000:sendrecv:ice=no",
		     "audio:198.18.0.40:5000:sendrecv:ice=no");
	s->wall += 12.5;
	a = sessions_now(s);
	assert_int_equal(json_object_array_length(a), 2);

	/* offered, not answered: no start, no streams yet */
	j = json_object_array_get_idx(a, 0);
	jkeys(j, session_keys, N_KEYS(session_keys));
	jstr(j, "call_id", "json@x");
	jstr(j, "from_tag", "fj");
	jstr(j, "from_uri", "alice@example.com");
	jnull(j, "to_tag");
	jstr(j, "to_uri", "bob@example.com");
	jnull(j, "start_time");
	jint(j, "duration", 0);
	jstr(j, "caller_ua", "Blink 5.1");
	jstr(j, "callee_ua", "Unknown");
	jstr(j, "username", "alice@example.com");
	assert_int_equal(jstream_count(j), 0);

	/* answered and running */
	j = json_object_array_get_idx(a, 1);
	jkeys(j, session_keys, N_KEYS(session_keys));
	jstr(j, "call_id", "second@x");
	jstr(j, "to_tag", "tt");
	jdouble(j, "start_time", WALL_START);
	jint(j, "duration", 12);
	jstr(j, "caller_ua", "uac");
	jstr(j, "callee_ua", "uas");
	jnull(j, "username");
	st = jstream(j, 0);
	jstr(st, "media_type", "audio");
	jstr(st, "status", "active");
	jint(st, "timeout_wait", 0);
	jint(st, "start_time", 0);
	jint(st, "end_time", 12);
	jnull(st, "post_dial_delay");
	jstr(st, "caller_local", addr_port(&s->f->relay_ip, caller_port(s, 1)));
	jstr(st, "callee_local", addr_port(&s->f->relay_ip, callee_port(s, 1)));
	jstr(st, "caller_remote", "Unknown");
	json_object_put(a);
}

/* A signaling_ip that is not JSON, or JSON without a string username,
 * leaves username null. */
static void test_username_forms(void **state)
{
	static const char *const forms[] = {
		"127.0.0.1", "203.0.113.5_198.18.7.20", "{\"signaling_ip\": \"203.0.113.5\"}",
		"{\"username\": 42}", "{not json",
	};
	struct sfix *s = *state;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char call_id[16];
		struct upd offer = { "request", call_id, "1", "f", NULL, "uac",
				     "audio:192.0.2.10:0:sendrecv:ice=no", forms[i] };
		struct json_object *a;
		char *reply;

		snprintf(call_id, sizeof(call_id), "u%zu@x", i);
		reply = run(s, upd_text(&offer));
		free(reply);
		a = sessions_now(s);
		jnull(json_object_array_get_idx(a, (int)i), "username");
		json_object_put(a);
	}
}

/* ---- expiry ------------------------------------------------------------------------- */

static void test_no_traffic_expires_session(void **state)
{
	struct sfix *s = *state;
	struct json_object *j, *st;

	offer_answer(s, "quiet@x", "fq", "audio:192.0.2.10:4000:sendrecv:ice=no",
		     "audio:198.18.0.20:5000:sendrecv:ice=no");
	check_timeouts(s, STREAM_TIMEOUT - 1);
	assert_int_equal(s->n_expired, 0);
	check_timeouts(s, 1);
	assert_int_equal(s->n_expired, 1);
	assert_int_equal(session_table_count(s->t), 0);
	assert_int_equal(stream_env_count(s->f->env), 0);
	assert_string_equal(s->expired[0].dispatcher, "dispatcher-a:25060");
	j = jparse(s->expired[0].json);
	jkeys(j, session_keys, N_KEYS(session_keys));
	jstr(j, "call_id", "quiet@x");
	jint(j, "duration", STREAM_TIMEOUT);
	st = jstream(j, 0);
	jstr(st, "status", "no-traffic timeout");
	jint(st, "timeout_wait", STREAM_TIMEOUT);
	jint(st, "end_time", STREAM_TIMEOUT);
	json_object_put(j);
	/* the dispatcher's remove after the expiry finds nothing */
	expect_reply(s, "remove\r\ncall_id: quiet@x\r\nfrom_tag: fq\r\n\r\n", "error");
}

/* Both parties did ICE: the expiry says the relay was not the chosen path. */
static void test_ice_expiry(void **state)
{
	struct sfix *s = *state;
	struct json_object *j;

	offer_answer(s, "ice@x", "fi", "audio:203.0.113.5:9:sendrecv:ice=yes",
		     "audio:198.51.100.7:9:sendrecv:ice=yes");
	check_timeouts(s, STREAM_TIMEOUT);
	assert_int_equal(s->n_expired, 1);
	j = jparse(s->expired[0].json);
	jstr(jstream(j, 0), "status", "unselected ICE candidate");
	json_object_put(j);
}

/* One stream of two dies: the session stays, and goes with the second. */
static void test_partial_expiry(void **state)
{
	struct sfix *s = *state;
	struct fixture *f = s->f;
	uint8_t pkt[160];
	struct json_object *a, *j;
	uint16_t cp = (uint16_t)caller_port(s, 0), ep = (uint16_t)callee_port(s, 0);
	char offer[160];

	char answer[160];

	/* SDP addresses on loopback: nothing is sent anywhere before latching */
	snprintf(offer, sizeof(offer), "%s,video:192.0.2.10:4002:sendrecv:ice=no",
		 media_of(&f->caller, "audio", "sendrecv"));
	snprintf(answer, sizeof(answer), "%s,video:192.0.2.20:5002:sendrecv:ice=no",
		 media_of(&f->callee, "audio", "sendrecv"));
	offer_answer(s, "two@x", "f2", offer, answer);
	/* audio carries RTP both ways; video never does */
	check_timeouts(s, 60);
	make_rtp(pkt, 0, 1, sizeof(pkt));
	send_to_relay(f, &f->caller, cp, pkt, sizeof(pkt));
	send_to_relay(f, &f->callee, ep, pkt, sizeof(pkt));
	check_timeouts(s, 30);
	assert_int_equal(s->n_expired, 0);
	a = sessions_now(s);
	j = json_object_array_get_idx(a, 0);
	jstr(jstream(j, 0), "status", "active");
	jstr(jstream(j, 1), "status", "no-traffic timeout");
	jint(jstream(j, 1), "timeout_wait", STREAM_TIMEOUT);
	jint(jstream(j, 1), "end_time", 90);
	json_object_put(a);
	assert_int_equal(stream_env_count(f->env), 1);
	/* then audio falls idle */
	check_timeouts(s, STREAM_TIMEOUT);
	assert_int_equal(s->n_expired, 1);
	j = jparse(s->expired[0].json);
	jint(j, "duration", 180);
	jstr(jstream(j, 0), "status", "conntrack timeout");
	jint(jstream(j, 0), "end_time", 180);
	jstr(jstream(j, 1), "status", "no-traffic timeout");
	json_object_put(j);
}

/* On hold the limit is on_hold_timeout, not stream_timeout. */
static void test_on_hold_timeout(void **state)
{
	struct sfix *s = *state;
	struct json_object *j;

	offer_answer(s, "held@x", "fh", "audio:192.0.2.10:4000:sendonly:ice=no",
		     "audio:198.18.0.20:5000:recvonly:ice=no");
	check_timeouts(s, STREAM_TIMEOUT * 2);
	assert_int_equal(s->n_expired, 0);
	check_timeouts(s, ON_HOLD_TIMEOUT);
	assert_int_equal(s->n_expired, 1);
	j = jparse(s->expired[0].json);
	jstr(jstream(j, 0), "status", "on hold timeout");
	jint(jstream(j, 0), "timeout_wait", ON_HOLD_TIMEOUT);
	json_object_put(j);
}

/* SIGINT/SIGTERM: every session ends now, each reported to the dispatcher
 * that created it. */
static void test_expire_all(void **state)
{
	struct sfix *s = *state;
	struct upd offer = { "request", "other@x", "1", "fo", NULL, "uac",
			     "audio:192.0.2.50:4000:sendrecv:ice=no", NULL };
	struct json_object *j;
	char *reply;

	offer_answer(s, "first@x", "f1", "audio:192.0.2.10:4000:sendrecv:ice=no",
		     "audio:198.18.0.20:5000:sendrecv:ice=no");
	reply = run_as(s, "dispatcher-b:25060", upd_text(&offer));
	free(reply);
	s->wall += 30;
	session_table_expire_all(s->t);
	assert_int_equal(session_table_count(s->t), 0);
	assert_int_equal(stream_env_count(s->f->env), 0);
	assert_int_equal(s->n_expired, 2);
	assert_string_equal(s->expired[0].dispatcher, "dispatcher-a:25060");
	assert_string_equal(s->expired[1].dispatcher, "dispatcher-b:25060");
	j = jparse(s->expired[0].json);
	jstr(j, "call_id", "first@x");
	jint(j, "duration", 30);
	jstr(jstream(j, 0), "status", "closed");
	json_object_put(j);
	j = jparse(s->expired[1].json);
	jstr(j, "call_id", "other@x");
	jnull(j, "start_time");
	json_object_put(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, sfix_setup, sfix_teardown)
		T(test_summary),
		T(test_sessions_every_field),
		T(test_username_forms),
		T(test_no_traffic_expires_session),
		T(test_ice_expiry),
		T(test_partial_expiry),
		T(test_on_hold_timeout),
		T(test_expire_all),
#undef T
	};

	return cmocka_run_group_tests_name("session_stats", tests, NULL, NULL);
}
