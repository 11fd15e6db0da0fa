/* Shared by the session tests (test_session.c, test_session_stats.c): a
 * session table over real streams on loopback (stream_fixture.h, with the
 * userspace forwarding backend), a fake wall clock, a recorder for
 * `expired` reports, builders for dispatcher messages, and helpers that
 * read the JSON replies back with json-c. */
#ifndef TEST_SESSION_FIXTURE_H
#define TEST_SESSION_FIXTURE_H

#include <json-c/json.h>

#include "lineproto.h"
#include "session.h"
#include "stream_fixture.h"

#define WALL_START 1718000000.25 /* exactly representable: JSON compares */
#define MAX_EXPIRED 8

/* Appendix A, byte for byte. */
#include "appendix_a.h"
#define KAM_CALLID "1-16898@127.0.0.1"

struct expired_report {
	char *dispatcher;
	char *json;
};

struct sfix {
	struct fixture *f;
	struct session_table *t;
	double wall;
	double bps;
	struct net_addr advertised;
	struct expired_report expired[MAX_EXPIRED];
	int n_expired;
	char relay_ip[INET6_ADDRSTRLEN];
};

static inline double fake_wall(void *ctx)
{
	return ((struct sfix *)ctx)->wall;
}

static inline void record_expired(void *ctx, const char *dispatcher, const char *json)
{
	struct sfix *s = ctx;

	assert_true(s->n_expired < MAX_EXPIRED);
	/* the session is already out of the table when it is reported */
	s->expired[s->n_expired].dispatcher = strdup(dispatcher);
	s->expired[s->n_expired].json = strdup(json);
	s->n_expired++;
}

static inline int sfix_open(void **state, bool advertised)
{
	struct stream_env_options o = { .backend = &forward_user_backend };
	struct session_table_options so = { 0 };
	struct sfix *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	fixture_open(state, AF_INET, &o);
	s->f = *state;
	s->wall = WALL_START;
	net_addr_format(&s->f->relay_ip, s->relay_ip, sizeof(s->relay_ip));
	so.streams = s->f->env;
	so.relay_ip = s->f->relay_ip;
	if (advertised) {
		assert_int_equal(net_addr_parse("198.51.100.1", &s->advertised), 0);
		so.advertised_ip = &s->advertised;
	}
	so.bps_relayed = &s->bps;
	so.expired = record_expired;
	so.ctx = s;
	so.clock = fake_wall;
	so.clock_ctx = s;
	assert_int_equal(session_table_new(&s->t, &so), 0);
	*state = s;
	return 0;
}

static inline int sfix_setup(void **state)
{
	return sfix_open(state, false);
}

static inline int sfix_setup_advertised(void **state)
{
	return sfix_open(state, true);
}

static inline int sfix_teardown(void **state)
{
	struct sfix *s = *state;
	struct ports_usage u;

	session_table_free(s->t);
	/* every session gave its streams back to the data plane */
	assert_int_equal(stream_env_count(s->f->env), 0);
	ports_get_usage(s->f->pool, &u);
	assert_int_equal(u.taken, 0);
	for (int i = 0; i < s->n_expired; i++) {
		free(s->expired[i].dispatcher);
		free(s->expired[i].json);
	}
	*state = s->f;
	free(s);
	return teardown(state);
}

/* ---- messages -------------------------------------------------------------- */

/* Runs one framed message (a relay-link command, or module bytes) and
 * returns the malloc'd reply. */
static inline char *run_as(struct sfix *s, const char *dispatcher, const char *bytes)
{
	struct lineproto_msg msg;
	size_t used;
	char *reply = NULL;

	assert_int_equal(lineproto_parse(bytes, strlen(bytes), NULL, &msg, &used), LINEPROTO_OK);
	session_table_command(s->t, dispatcher, &msg, &reply);
	assert_non_null(reply);
	return reply;
}

static inline char *run(struct sfix *s, const char *bytes)
{
	return run_as(s, "dispatcher-a:25060", bytes);
}

static inline void expect_reply(struct sfix *s, const char *bytes, const char *want)
{
	char *reply = run(s, bytes);

	assert_string_equal(reply, want);
	free(reply);
}

/* An update the way Kamailio builds it; NULL fields are left out. */
struct upd {
	const char *type, *call_id, *cseq, *from_tag, *to_tag, *ua, *media, *signaling_ip;
};

static inline const char *upd_text(const struct upd *u)
{
	static char buf[2048];
	size_t n = 0;

	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "update\r\n");
#define UPD_HDR(name, v)                                                                   \
	if (v)                                                                             \
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s: %s\r\n", name, v)
	UPD_HDR("type", u->type);
	UPD_HDR("call_id", u->call_id);
	UPD_HDR("cseq", u->cseq);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n,
			      "from_uri: alice@example.com\r\nto_uri: bob@example.com\r\n");
	UPD_HDR("from_tag", u->from_tag);
	UPD_HDR("to_tag", u->to_tag);
	UPD_HDR("user_agent", u->ua);
	UPD_HDR("signaling_ip", u->signaling_ip);
	UPD_HDR("media", u->media);
#undef UPD_HDR
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	return buf;
}

/* "<relay ip> <p1> <p2> ..." */
static inline const char *ports_reply(struct sfix *s, int count, ...)
{
	static char buf[256];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%s", s->relay_ip);
	va_list ap;

	va_start(ap, count);
	for (int i = 0; i < count; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %u", va_arg(ap, unsigned int));
	va_end(ap);
	return buf;
}

static inline const char *media_of(const struct phone *ph, const char *type, const char *dir)
{
	static char buf[4][128];
	static int next;
	char ip[INET6_ADDRSTRLEN];
	char *out = buf[next++ % 4];

	net_addr_format(&ph->addr, ip, sizeof(ip));
	snprintf(out, sizeof(buf[0]), "%s:%s:%u:%s:ice=no", type, ip, ph->port, dir);
	return out;
}

/* The base port of the n-th stream's pairs (FIFO pool, nothing freed yet). */
static inline unsigned int caller_port(struct sfix *s, int n)
{
	return s->f->base_port + 4 * (unsigned)n;
}

static inline unsigned int callee_port(struct sfix *s, int n)
{
	return s->f->base_port + 4 * (unsigned)n + 2;
}

/* ---- JSON ---------------------------------------------------------------------- */

static inline struct json_object *jparse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	return o;
}

static inline struct json_object *jget(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("JSON has no \"%s\": %s", key, json_object_to_json_string(o));
	return v;
}

static inline void jstr(struct json_object *o, const char *key, const char *want)
{
	struct json_object *v = jget(o, key);

	assert_true(json_object_is_type(v, json_type_string));
	assert_string_equal(json_object_get_string(v), want);
}

static inline void jint(struct json_object *o, const char *key, int64_t want)
{
	struct json_object *v = jget(o, key);

	if (!json_object_is_type(v, json_type_int))
		fail_msg("\"%s\" is not an int: %s", key, json_object_to_json_string(o));
	assert_int_equal(json_object_get_int64(v), want);
}

static inline void jdouble(struct json_object *o, const char *key, double want)
{
	struct json_object *v = jget(o, key);

	if (!json_object_is_type(v, json_type_double))
		fail_msg("\"%s\" is not a float: %s", key, json_object_to_json_string(o));
	assert_true(json_object_get_double(v) > want - 1e-6 && json_object_get_double(v) < want + 1e-6);
}

static inline void jnull(struct json_object *o, const char *key)
{
	assert_null(jget(o, key));
}

/* o has exactly these keys. */
static inline void jkeys(struct json_object *o, const char *const *keys, size_t n)
{
	assert_true(json_object_is_type(o, json_type_object));
	for (size_t i = 0; i < n; i++)
		jget(o, keys[i]);
	assert_int_equal(json_object_object_length(o), n);
}

static const char *const session_keys[] = {
	"call_id", "from_tag", "from_uri", "to_tag", "to_uri", "start_time", "duration",
	"caller_ua", "callee_ua", "username", "streams",
};

static const char *const stream_keys[] = {
	"media_type", "status", "timeout_wait", "caller_codec", "callee_codec", "start_time",
	"end_time", "post_dial_delay", "caller_bytes", "callee_bytes", "caller_packets",
	"callee_packets", "caller_local", "callee_local", "caller_remote", "callee_remote",
	"dropped_packets",
};

#define N_KEYS(a) (sizeof(a) / sizeof((a)[0]))

static inline struct json_object *jstream(struct json_object *session, size_t i)
{
	struct json_object *streams = jget(session, "streams"), *st;

	assert_true(json_object_is_type(streams, json_type_array));
	assert_true(i < json_object_array_length(streams));
	st = json_object_array_get_idx(streams, i);
	jkeys(st, stream_keys, N_KEYS(stream_keys));
	return st;
}

static inline size_t jstream_count(struct json_object *session)
{
	return json_object_array_length(jget(session, "streams"));
}

/* The `sessions` reply, parsed: an array. */
static inline struct json_object *sessions_now(struct sfix *s)
{
	char *reply = run(s, "sessions 4\r\n\r\n");
	struct json_object *a = jparse(reply);

	free(reply);
	assert_true(json_object_is_type(a, json_type_array));
	return a;
}

static inline const char *addr_port(const struct net_addr *a, unsigned int port)
{
	static char buf[4][NET_ADDRPORT_STRLEN];
	static int next;
	char *out = buf[next++ % 4];

	net_addr_port_format(a, (uint16_t)port, out, sizeof(buf[0]));
	return out;
}

#endif
