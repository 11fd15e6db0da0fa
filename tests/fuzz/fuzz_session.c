/* libFuzzer target for the relay's session model (relayd/session*.c): the
 * input is a stream of dispatcher commands (update, remove, summary,
 * sessions), framed by lineproto_parse() as the relay link does and run
 * through session_table_command() over real streams on loopback with a
 * small port pool, so exhaustion happens too. Every reply must be a
 * payload the dispatcher understands; after the streams' timeouts and
 * session_table_expire_all(), no session, stream or port may be left.
 * Seeds: corpus/session/. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "log.h"
#include "ports.h"
#include "session.h"
#include "stream.h"

#define check(cond) check_at((cond), __LINE__)
#define PAIRS 8 /* four streams */

static void check_at(int cond, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_session.c:%d: invariant broken\n", line);
		abort();
	}
}

static struct {
	struct event_base *base;
	struct ports_pool *pool;
	struct stream_env *env;
	struct net_addr relay_ip;
	uint64_t now;
	unsigned int expired;
} fx;

static uint64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fx.now;
}

static void on_expired(void *ctx, const char *dispatcher, const char *json)
{
	struct json_object *o = json_tokener_parse(json);

	(void)ctx;
	check(dispatcher && o && json_object_is_type(o, json_type_object));
	json_object_put(o);
	fx.expired++;
}

static void setup_once(void)
{
	struct config_port_range range;
	struct stream_env_options o = { 0 };
	char ip[32];

	log_init("fuzz_session", LOG_LEVEL_CRITICAL, false);
	snprintf(ip, sizeof(ip), "127.77.%u.1", (unsigned)getpid() % 250);
	check(net_addr_parse(ip, &fx.relay_ip) == 0);
	range.start = 33000;
	range.end = 33000 + 2 * PAIRS;
	fx.base = event_base_new();
	check(fx.base && ports_pool_new(&fx.pool, &fx.relay_ip, &range) == 0);
	o.base = fx.base;
	o.pool = fx.pool;
	o.clock = fake_clock;
	fx.now = 1000ull * 1000000000ull;
	check(stream_env_new(&fx.env, &o) == 0);
}

/* What a dispatcher may get back (2.2). */
static void check_reply(const struct lineproto_msg *msg, const char *reply)
{
	struct json_object *o;

	check(reply && reply[0] && !strpbrk(reply, "\r\n"));
	if (!strcmp(reply, "error") || !strcmp(reply, "None") || !strcmp(reply, "halting"))
		return;
	if (reply[0] == '{' || reply[0] == '[') {
		o = json_tokener_parse(reply);
		check(o != NULL);
		json_object_put(o);
		return;
	}
	/* "<ip> <port> ...": only an update gets this */
	check(lineproto_str_eq(msg->command, "update") && strchr(reply, ' '));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session_table_options so = { 0 };
	struct session_table *t;
	const char *buf = (const char *)data;
	struct ports_usage u;

	if (!fx.base)
		setup_once();
	so.streams = fx.env;
	so.relay_ip = fx.relay_ip;
	so.expired = on_expired;
	check(session_table_new(&t, &so) == 0);
	while (size) {
		struct lineproto_msg msg;
		size_t used;
		char *reply = NULL;
		int rc = lineproto_parse(buf, size, NULL, &msg, &used);

		if (rc == LINEPROTO_OK) {
			/* a "halt" command line turns halting on, as SIGHUP does */
			if (lineproto_str_eq(msg.command, "halt"))
				session_table_set_halting(t);
			session_table_command(t, "fuzz:25060", &msg, &reply);
			check_reply(&msg, reply);
			free(reply);
			fx.now += 7ull * 1000000000ull;
			stream_env_check_timeouts(fx.env, 30, 60);
		} else if (rc < 0 && rc != LINEPROTO_ERR_LINE_TOO_LONG) {
			buf += used;
			size -= used;
			if (lineproto_skip_message(buf, size, NULL, &used) != LINEPROTO_OK)
				break;
		} else {
			break;
		}
		buf += used;
		size -= used;
	}
	fx.now += 100ull * 1000000000ull;
	stream_env_check_timeouts(fx.env, 30, 60);
	session_table_expire_all(t);
	check(session_table_count(t) == 0);
	session_table_free(t);
	check(stream_env_count(fx.env) == 0);
	ports_get_usage(fx.pool, &u);
	check(u.taken == 0);
	return 0;
}
