/* Unit tests for dispatcherd/selection.c over a fake relay layer (the
 * functions of relay_link.h are defined here, so the real relay_link.o is
 * never linked in): random order covering every relay, media_relay first,
 * failover on error / halting / timeout / lost connection within one request
 * (PROTOCOL.md §2.5, D1, D2), least_loaded ordering, the total time budget,
 * known calls staying on their relay, remove -> `removed` + accounting hook,
 * expired calls (§2.8) and racing requests for one new call. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "calls.h"
#include "lineproto.h"
#include "proxy_request.h"
#include "relay_link.h"
#include "selection.h"

/* --- the fake relay layer ------------------------------------------------- */
#define MAX_RELAYS 8
#define MAX_SENT 4096

struct relay {
	char ip[INET6_ADDRSTRLEN];
	enum relay_state state;
	bool connected;
};

struct relay_links {
	struct relay relays[MAX_RELAYS];
	size_t n;
};

struct relay_request {
	struct relay *relay;
	char command[16];
	char *headers;
	double timeout;
	relay_reply_fn reply;
	void *ctx;
	bool cancelled, answered;
};

static struct relay_links links;
static struct relay_request sent[MAX_SENT];
static size_t n_sent, n_answered;
/* When set, relay_request_send() answers at once, from inside the call. */
static const char *sync_payload;
static int sync_status;
/* When set, relay_request_send() fails for this relay. */
static const char *fail_send_ip;

struct relay *relay_links_first(struct relay_links *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->relays[i].connected)
			return &l->relays[i];
	return NULL;
}

struct relay *relay_links_next(struct relay *relay)
{
	struct relay *end = links.relays + links.n;

	for (relay++; relay < end; relay++)
		if (relay->connected)
			return relay;
	return NULL;
}

struct relay *relay_links_find(struct relay_links *l, const char *ip)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->relays[i].connected && !strcmp(l->relays[i].ip, ip))
			return &l->relays[i];
	return NULL;
}

const char *relay_ip(const struct relay *relay)
{
	return relay->ip;
}

enum relay_state relay_get_state(const struct relay *relay)
{
	return relay->state;
}

void relay_set_state(struct relay *relay, enum relay_state state)
{
	relay->state = state;
}

struct relay_request *relay_request_send(struct relay *relay, const char *command,
					 const char *header_block, size_t len, double timeout_s,
					 relay_reply_fn reply, void *ctx)
{
	struct relay_request *req;

	if (fail_send_ip && !strcmp(fail_send_ip, relay->ip)) {
		errno = EPIPE;
		return NULL;
	}
	assert_true(n_sent < MAX_SENT);
	req = &sent[n_sent++];
	memset(req, 0, sizeof(*req));
	req->relay = relay;
	snprintf(req->command, sizeof(req->command), "%s", command);
	req->headers = strndup(header_block, len);
	req->timeout = timeout_s;
	req->reply = reply;
	req->ctx = ctx;
	if (sync_payload || sync_status) {
		req->answered = true;
		n_answered++;
		reply(ctx, sync_status, sync_payload ? sync_payload : "",
		      sync_payload ? strlen(sync_payload) : 0);
	}
	return req;
}

void relay_request_cancel(struct relay_request *req)
{
	assert_false(req->answered);
	req->cancelled = true;
}

/* The relay answers the oldest request still waiting. */
static struct relay_request *next_waiting(void)
{
	size_t i;

	for (i = 0; i < n_sent; i++)
		if (!sent[i].answered && !sent[i].cancelled)
			return &sent[i];
	return NULL;
}

static const char *answer(int status, const char *payload)
{
	struct relay_request *req = next_waiting();
	const char *ip;

	assert_non_null(req);
	req->answered = true;
	n_answered++;
	ip = req->relay->ip;
	req->reply(req->ctx, status, payload ? payload : "", payload ? strlen(payload) : 0);
	return ip;
}

static struct relay *add_relay(const char *ip)
{
	struct relay *r = &links.relays[links.n++];

	snprintf(r->ip, sizeof(r->ip), "%s", ip);
	r->state = RELAY_ACTIVE;
	r->connected = true;
	return r;
}

/* --- the module side -------------------------------------------------------- */

struct module_req {
	struct proxy_request req;
	char reply[256];
	int replies;
};

static void on_done(void *ctx, const char *reply)
{
	struct module_req *m = ctx;

	m->replies++;
	snprintf(m->reply, sizeof(m->reply), "%s", reply);
}

struct ended {
	char relay_ip[64], dialog_id[64], json[256];
	int count;
};

static void on_session_ended(void *ctx, const char *relay_ip, const char *dialog_id,
			     const char *json)
{
	struct ended *e = ctx;

	e->count++;
	snprintf(e->relay_ip, sizeof(e->relay_ip), "%s", relay_ip);
	snprintf(e->dialog_id, sizeof(e->dialog_id), "%s", dialog_id ? dialog_id : "(null)");
	snprintf(e->json, sizeof(e->json), "%s", json);
}

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct module_req *make_req(const char *text)
{
	struct module_req *m = calloc(1, sizeof(*m));
	struct lineproto_msg msg;
	size_t used;

	assert_non_null(m);
	assert_int_equal(lineproto_parse(text, strlen(text), NULL, &msg, &used), 0);
	assert_int_equal(proxy_request_parse(&msg, &m->req, NULL), 0);
	m->req.received = now_mono();
	return m;
}

static void free_req(struct module_req *m)
{
	proxy_request_free(&m->req);
	free(m);
}

static char *offer(const char *call_id, const char *from_tag, const char *extra)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf),
		 "update\r\ntype: request\r\ndialog_id: 3431:9579\r\ncall_id: %s\r\ncseq: 1\r\n"
		 "from_uri: a@x\r\nto_uri: b@x\r\nfrom_tag: %s\r\nto_tag: \r\n"
		 "user_agent: ua\r\nsignaling_ip: 127.0.0.1\r\n%s"
		 "media: audio:127.0.0.1:23604:sendrecv:ice=no\r\n\r\n",
		 call_id, from_tag, extra ? extra : "");
	return buf;
}

static char *callee_update(const char *call_id, const char *callee_tag, const char *caller_tag)
{
	static char buf[512];

	snprintf(buf, sizeof(buf),
		 "update\r\ntype: request\r\ncall_id: %s\r\ncseq: 2\r\nfrom_tag: %s\r\n"
		 "to_tag: %s\r\nmedia: audio:127.0.0.1:20000:sendonly:ice=no\r\n\r\n",
		 call_id, callee_tag, caller_tag);
	return buf;
}

static char *remove_req(const char *call_id, const char *from_tag, const char *to_tag)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "remove\r\ncall_id: %s\r\nfrom_tag: %s\r\nto_tag: %s\r\n\r\n",
		 call_id, from_tag, to_tag);
	return buf;
}

/* --- fixture ------------------------------------------------------------------ */

struct fixture {
	struct config_dispatcher config;
	struct calls *calls;
	struct selection *sel;
	struct ended ended;
};

static void reset_fake(void)
{
	size_t i;

	for (i = 0; i < n_sent; i++)
		free(sent[i].headers);
	memset(&links, 0, sizeof(links));
	n_sent = n_answered = 0;
	sync_payload = NULL;
	sync_status = 0;
	fail_send_ip = NULL;
}

static int setup_with(void **state, enum config_selection mode)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct selection_options o = { 0 };

	if (!f)
		return -1;
	reset_fake();
	f->config.relay_request_timeout = 0.15;
	f->config.selection = mode;
	f->calls = calls_new();
	o.links = &links;
	o.calls = f->calls;
	o.config = &f->config;
	o.session_ended = on_session_ended;
	o.ctx = &f->ended;
	if (!f->calls || selection_new(&f->sel, &o))
		return -1;
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, CONFIG_SELECT_RANDOM);
}

static int setup_least_loaded(void **state)
{
	return setup_with(state, CONFIG_SELECT_LEAST_LOADED);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	selection_free(f->sel);
	calls_free(f->calls);
	reset_fake();
	free(f);
	return 0;
}

static void handle(struct fixture *f, struct module_req *m)
{
	selection_handle(f->sel, &m->req, on_done, m);
}

/* --- tests ---------------------------------------------------------------------- */

static void test_new_call_forwarded_verbatim(void **state)
{
	struct fixture *f = *state;
	struct module_req *m = make_req(offer("c1", "ftag", NULL));
	struct call *call;

	add_relay("198.51.100.1");
	handle(f, m);
	assert_int_equal(m->replies, 0); /* waits for the relay */
	assert_int_equal(n_sent, 1);
	assert_string_equal(sent[0].command, "update");
	assert_string_equal(sent[0].headers, m->req.headers);
	assert_null(strstr(sent[0].headers, "to_tag"));
	assert_true(sent[0].timeout > 0.149 && sent[0].timeout <= 0.15);
	answer(0, "198.51.100.1 40002");
	assert_int_equal(m->replies, 1);
	assert_string_equal(m->reply, "198.51.100.1 40002");
	call = calls_get(f->calls, "c1", "ftag");
	assert_non_null(call);
	assert_string_equal(call->relay_ip, "198.51.100.1");
	assert_string_equal(call->dialog_id, "3431:9579");
	free_req(m);
}

static void test_random_order_covers_all(void **state)
{
	struct fixture *f = *state;
	int first[3] = { 0 }, i, j, seen_second = 0;
	char cid[32];

	add_relay("10.0.0.1");
	add_relay("10.0.0.2");
	add_relay("10.0.0.3");
	for (i = 0; i < 300; i++) {
		struct module_req *m;
		const char *ip;

		snprintf(cid, sizeof(cid), "call-%d", i);
		m = make_req(offer(cid, "f", NULL));
		handle(f, m);
		ip = answer(0, "error");
		first[ip[7] - '1']++;
		/* The second try is never the relay that just failed. */
		assert_string_not_equal(next_waiting()->relay->ip, ip);
		seen_second++;
		answer(0, "10.0.0.9 40000");
		assert_string_equal(m->reply, "10.0.0.9 40000");
		free_req(m);
	}
	for (j = 0; j < 3; j++)
		if (first[j] < 50)
			fail_msg("relay %d tried first only %d times in 300", j + 1, first[j]);
	assert_int_equal(seen_second, 300);
}

static void test_media_relay_preferred(void **state)
{
	struct fixture *f = *state;
	struct module_req *m;
	int i;

	add_relay("10.0.0.1");
	add_relay("10.0.0.2");
	add_relay("10.0.0.3")->state = RELAY_HALTING;
	for (i = 0; i < 20; i++) {
		char cid[32];

		snprintf(cid, sizeof(cid), "pref-%d", i);
		m = make_req(offer(cid, "f", "media_relay: 10.0.0.2\r\n"));
		handle(f, m);
		assert_string_equal(answer(0, "10.0.0.2 40000"), "10.0.0.2");
		free_req(m);
	}
	/* A halting relay is never preferred, nor tried. */
	m = make_req(offer("pref-halting", "f", "media_relay: 10.0.0.3\r\n"));
	handle(f, m);
	assert_string_not_equal(answer(0, "error"), "10.0.0.3");
	assert_string_not_equal(answer(0, "error"), "10.0.0.3");
	assert_null(next_waiting());
	assert_string_equal(m->reply, "error");
	free_req(m);
	/* An unknown relay: warned about, another one chosen. */
	m = make_req(offer("pref-unknown", "f", "media_relay: 192.0.2.99\r\n"));
	handle(f, m);
	answer(0, "10.0.0.1 40000");
	assert_int_equal(m->replies, 1);
	free_req(m);
}

static void test_failover_kinds(void **state)
{
	struct fixture *f = *state;
	struct module_req *m = make_req(offer("fo", "f", NULL));
	const char *tried[5];
	struct relay *timedout;
	size_t i, j;

	add_relay("10.0.0.1");
	add_relay("10.0.0.2");
	add_relay("10.0.0.3");
	add_relay("10.0.0.4");
	add_relay("10.0.0.5");
	timedout = add_relay("10.0.0.6");
	timedout->state = RELAY_TIMEDOUT;
	handle(f, m);
	tried[0] = answer(0, "error");          /* D1: e.g. ports exhausted */
	tried[1] = answer(0, "halting");        /* §2.6 */
	tried[2] = answer(-ETIMEDOUT, NULL);    /* D2 */
	tried[3] = answer(-ECONNRESET, NULL);   /* relay went away */
	assert_int_equal(m->replies, 0);
	tried[4] = answer(0, "10.0.0.9 40000");
	assert_int_equal(m->replies, 1);
	assert_string_equal(m->reply, "10.0.0.9 40000");
	for (i = 0; i < 5; i++) {
		assert_string_not_equal(tried[i], "10.0.0.6");
		for (j = 0; j < i; j++)
			assert_string_not_equal(tried[i], tried[j]);
	}
	assert_int_equal(relay_get_state(relay_links_find(&links, tried[1])), RELAY_HALTING);
	assert_int_equal(relay_get_state(relay_links_find(&links, tried[0])), RELAY_ACTIVE);
	assert_string_equal(calls_get(f->calls, "fo", "f")->relay_ip, tried[4]);
	free_req(m);
}

static void test_unusable_reply_and_send_failure(void **state)
{
	struct fixture *f = *state;
	struct module_req *m = make_req(offer("odd", "f", NULL));

	add_relay("10.0.0.1");
	add_relay("10.0.0.2");
	add_relay("10.0.0.3");
	fail_send_ip = "10.0.0.3";
	handle(f, m);
	answer(0, "{\"not\": \"an update reply\"}");
	assert_int_equal(m->replies, 0);
	answer(0, "None"); /* upstream's reply to an update without media */
	assert_string_equal(m->reply, "None");
	assert_int_equal(n_sent, 2); /* the third relay could not be asked */
	free_req(m);
}

static void test_no_relay_left(void **state)
{
	struct fixture *f = *state;
	struct module_req *m = make_req(offer("none", "f", NULL));

	handle(f, m); /* no relay connected at all */
	assert_string_equal(m->reply, "error");
	assert_int_equal(n_sent, 0);
	free_req(m);

	add_relay("10.0.0.1");
	add_relay("10.0.0.2")->state = RELAY_TIMEDOUT;
	m = make_req(offer("none2", "f", NULL));
	handle(f, m);
	answer(0, "error");
	assert_string_equal(m->reply, "error");
	assert_int_equal(n_sent, 1);
	assert_null(calls_get(f->calls, "none2", "f"));
	free_req(m);
}

static void test_sync_answers(void **state)
{
	struct fixture *f = *state;
	struct module_req *m = make_req(offer("sync", "f", NULL));

	add_relay("10.0.0.1");
	add_relay("10.0.0.2");
	sync_payload = "error";
	handle(f, m);
	assert_string_equal(m->reply, "error");
	assert_int_equal(n_sent, 2);
	free_req(m);
	sync_payload = "10.0.0.1 40000";
	m = make_req(offer("sync2", "f", NULL));
	handle(f, m);
	assert_string_equal(m->reply, "10.0.0.1 40000");
	assert_non_null(calls_get(f->calls, "sync2", "f"));
	free_req(m);
}

static const char *first_tried(struct fixture *f, const char *cid)
{
	struct module_req *m = make_req(offer(cid, "f", NULL));
	static char ip[64];

	handle(f, m);
	snprintf(ip, sizeof(ip), "%s", answer(0, "error"));
	while (next_waiting())
		answer(0, "error");
	assert_string_equal(m->reply, "error");
	free_req(m);
	return ip;
}

static int note_json(struct fixture *f, const char *ip, const char *json)
{
	return selection_note_summary_json(f->sel, ip, json, strlen(json));
}

static void test_least_loaded(void **state)
{
	struct fixture *f = *state;
	struct module_req *m;
	size_t base;
	int i;

	add_relay("10.0.0.1");
	add_relay("10.0.0.2");
	add_relay("10.0.0.3");
	assert_int_equal(selection_note_summary(f->sel, "10.0.0.1", 5, 10, 10.0), 0);
	assert_int_equal(selection_note_summary(f->sel, "10.0.0.2", 1, 2, 500000.0), 0);
	assert_int_equal(note_json(f, "10.0.0.3",
				   "{\"ip\": \"10.0.0.3\", \"version\": \"0.1.0\", "
				   "\"status\": \"active\", \"uptime\": 3600, "
				   "\"session_count\": 1, \"stream_count\": 2, "
				   "\"bps_relayed\": 128000.0}"), 0);
	assert_int_equal(note_json(f, "10.0.0.3", "{\"session_count\": 1}"), -EINVAL);
	assert_int_equal(note_json(f, "10.0.0.3", "[]"), -EINVAL);
	assert_int_equal(note_json(f, "10.0.0.3", "{\"session_count\": 1, \"stream_count\": "
						  "-2, \"bps_relayed\": 0}"), -EINVAL);
	/* streams first, then bandwidth: 3 (2, 128k), 2 (2, 500k), 1 (10). */
	for (i = 0; i < 10; i++) {
		char cid[32];

		snprintf(cid, sizeof(cid), "ll-%d", i);
		base = n_sent;
		first_tried(f, cid);
		assert_string_equal(sent[base].relay->ip, "10.0.0.3");
		assert_string_equal(sent[base + 1].relay->ip, "10.0.0.2");
		assert_string_equal(sent[base + 2].relay->ip, "10.0.0.1");
	}
	/* A call placed on 10.0.0.3 with two streams counts before the next
	 * summary: 3 now has 4 streams and 2 comes first. */
	m = make_req("update\r\ntype: request\r\ncall_id: placed\r\nfrom_tag: f\r\n"
		     "media: audio:1.2.3.4:5:sendrecv,video:1.2.3.4:7:sendrecv\r\n\r\n");
	handle(f, m);
	assert_string_equal(answer(0, "10.0.0.3 40000 40004"), "10.0.0.3");
	free_req(m);
	assert_string_equal(first_tried(f, "after"), "10.0.0.2");
	/* A relay never summarised counts as empty: it goes first. */
	add_relay("10.0.0.4");
	assert_string_equal(first_tried(f, "fresh"), "10.0.0.4");
}

static void test_time_budget(void **state)
{
	struct fixture *f = *state;
	struct module_req *m;

	add_relay("10.0.0.1");
	add_relay("10.0.0.2");
	add_relay("10.0.0.3");
	add_relay("10.0.0.4");

	/* Every attempt gets min(relay_request_timeout, what is left). */
	m = make_req(offer("slow", "f", NULL));
	m->req.received = now_mono() - 0.40;
	handle(f, m);
	assert_int_equal(n_sent, 1);
	assert_true(sent[0].timeout <= 0.05 + 1e-9 && sent[0].timeout > 0.02);
	usleep(40 * 1000); /* the attempt runs (nearly) out */
	answer(-ETIMEDOUT, NULL);
	/* Under SELECTION_MIN_ATTEMPT left: give up instead of a 4th relay. */
	assert_string_equal(m->reply, "error");
	assert_int_equal(n_sent, 1);
	free_req(m);

	/* Nothing left on arrival: not even one attempt. */
	m = make_req(offer("late", "f", NULL));
	m->req.received = now_mono() - SELECTION_BUDGET;
	handle(f, m);
	assert_string_equal(m->reply, "error");
	assert_int_equal(n_sent, 1);
	free_req(m);

	/* Three relays timing out at 0.15 s cannot pass 0.45 s: the third
	 * attempt's deadline is what remains. */
	m = make_req(offer("three", "f", NULL));
	m->req.received = now_mono() - 0.30;
	handle(f, m);
	assert_true(sent[1].timeout > 0.14 && sent[1].timeout <= 0.15);
	answer(-ETIMEDOUT, NULL);
	assert_true(sent[2].timeout <= 0.15);
	assert_true(m->req.received + SELECTION_BUDGET >= now_mono() + sent[2].timeout - 0.01);
	answer(0, "10.0.0.1 40000");
	assert_int_equal(m->replies, 1);
	free_req(m);
}

static void test_known_call_stays(void **state)
{
	struct fixture *f = *state;
	struct module_req *m;
	struct relay *r2;
	const char *home;

	add_relay("10.0.0.1");
	r2 = add_relay("10.0.0.2");
	m = make_req(offer("known", "caller", NULL));
	handle(f, m);
	home = answer(0, "error") == r2->ip ? "10.0.0.1" : "10.0.0.2";
	answer(0, "10.0.0.7 40000");
	free_req(m);
	assert_string_equal(calls_get(f->calls, "known", "caller")->relay_ip, home);

	/* The callee's re-INVITE (tags swapped) and the caller's ACK-time
	 * update go to the same relay, with no failover. */
	m = make_req(callee_update("known", "callee", "caller"));
	handle(f, m);
	assert_string_equal(answer(0, "10.0.0.7 40002"), home);
	assert_string_equal(m->reply, "10.0.0.7 40002");
	free_req(m);
	m = make_req(offer("known", "caller", NULL));
	handle(f, m);
	assert_string_equal(answer(0, "error"), home);
	assert_string_equal(m->reply, "error");
	assert_null(next_waiting());
	free_req(m);

	/* Halting relays keep serving their calls (§2.6). */
	relay_set_state(relay_links_find(&links, home), RELAY_HALTING);
	m = make_req(offer("known", "caller", NULL));
	handle(f, m);
	assert_string_equal(answer(0, "None"), home);
	assert_string_equal(m->reply, "None");
	free_req(m);

	/* Its relay disconnected: error at once, no migration (§2.4). */
	relay_links_find(&links, home)->connected = false;
	m = make_req(offer("known", "caller", NULL));
	handle(f, m);
	assert_string_equal(m->reply, "error");
	assert_null(next_waiting());
	free_req(m);
	assert_non_null(calls_get(f->calls, "known", "caller"));
}

static struct call *place(struct fixture *f, const char *cid, const char *tag)
{
	struct module_req *m = make_req(offer(cid, tag, NULL));

	handle(f, m);
	answer(0, "10.0.0.1 40000");
	assert_int_equal(m->replies, 1);
	free_req(m);
	return calls_get(f->calls, cid, tag);
}

static void test_remove(void **state)
{
	struct fixture *f = *state;
	static const char json[] = "{\"call_id\": \"r1\", \"from_tag\": \"caller\", \"streams\": []}";
	struct module_req *m;

	add_relay("10.0.0.1");
	assert_non_null(place(f, "r1", "caller"));
	/* BYE from the callee: tags swapped. */
	m = make_req(remove_req("r1", "callee", "caller"));
	handle(f, m);
	assert_string_equal(sent[n_sent - 1].command, "remove");
	assert_string_equal(sent[n_sent - 1].headers, m->req.headers);
	answer(0, json);
	assert_string_equal(m->reply, "removed");
	assert_int_equal(f->ended.count, 1);
	assert_string_equal(f->ended.relay_ip, "10.0.0.1");
	assert_string_equal(f->ended.dialog_id, "3431:9579");
	assert_string_equal(f->ended.json, json);
	assert_null(calls_get(f->calls, "r1", "caller"));
	free_req(m);

	/* Unknown call. */
	m = make_req(remove_req("r1", "caller", "callee"));
	handle(f, m);
	assert_string_equal(m->reply, "error");
	free_req(m);

	/* The relay does not know it: error, and the entry goes. */
	assert_non_null(place(f, "r2", "caller"));
	m = make_req(remove_req("r2", "caller", "callee"));
	handle(f, m);
	answer(0, "error");
	assert_string_equal(m->reply, "error");
	assert_null(calls_get(f->calls, "r2", "caller"));
	free_req(m);

	/* No answer in time: error, the entry stays for resync/expiry. */
	assert_non_null(place(f, "r3", "caller"));
	m = make_req(remove_req("r3", "caller", "callee"));
	handle(f, m);
	answer(-ETIMEDOUT, NULL);
	assert_string_equal(m->reply, "error");
	assert_non_null(calls_get(f->calls, "r3", "caller"));
	free_req(m);
	assert_int_equal(f->ended.count, 1);
}

static void test_expired_calls(void **state)
{
	struct fixture *f = *state;
	struct module_req *m;
	size_t before;

	add_relay("10.0.0.1");
	/* remove of an expired call: `removed` without asking the relay. */
	calls_set_expired(place(f, "x1", "caller"), time(NULL));
	before = n_sent;
	m = make_req(remove_req("x1", "caller", "callee"));
	handle(f, m);
	assert_string_equal(m->reply, "removed");
	assert_int_equal(n_sent, before);
	assert_null(calls_get(f->calls, "x1", "caller"));
	assert_int_equal(f->ended.count, 0);
	free_req(m);

	/* update of an expired call: placed again as a new call. */
	calls_set_expired(place(f, "x2", "caller"), time(NULL));
	add_relay("10.0.0.2");
	m = make_req(offer("x2", "caller", "media_relay: 10.0.0.2\r\n"));
	handle(f, m);
	assert_string_equal(answer(0, "10.0.0.2 40000"), "10.0.0.2");
	assert_string_equal(calls_get(f->calls, "x2", "caller")->relay_ip, "10.0.0.2");
	assert_int_equal(calls_get(f->calls, "x2", "caller")->expire_time, 0);
	free_req(m);
}

static void test_racing_requests_for_one_new_call(void **state)
{
	struct fixture *f = *state;
	struct module_req *a = make_req(offer("race", "caller", NULL));
	struct module_req *b = make_req(callee_update("race", "callee", "caller"));
	struct module_req *other = make_req(offer("race", "someone-else", NULL));
	const char *home;

	add_relay("10.0.0.1");
	add_relay("10.0.0.2");
	handle(f, a);
	handle(f, b);      /* same call: waits for a */
	handle(f, other);  /* another dialog with the same Call-ID: does not wait */
	assert_int_equal(n_sent, 2);
	assert_string_equal(sent[1].headers, other->req.headers);
	home = answer(0, "10.0.0.9 40000");
	assert_string_equal(a->reply, "10.0.0.9 40000");
	/* b went to a's relay as a known call. */
	assert_int_equal(n_sent, 3);
	assert_string_equal(sent[2].relay->ip, home);
	assert_string_equal(sent[2].headers, b->req.headers);
	answer(0, "10.0.0.9 40002");   /* other's attempt */
	answer(0, "10.0.0.9 40004");   /* b */
	assert_string_equal(b->reply, "10.0.0.9 40004");
	assert_int_equal(other->replies, 1);
	assert_int_equal(calls_count(f->calls), 2);
	free_req(a);
	free_req(b);
	free_req(other);
}

static void test_free_answers_in_flight(void **state)
{
	struct fixture *f = *state;
	struct module_req *a = make_req(offer("inflight", "caller", NULL));
	struct module_req *b = make_req(callee_update("inflight", "callee", "caller"));

	add_relay("10.0.0.1");
	handle(f, a);
	handle(f, b);
	selection_free(f->sel);
	f->sel = NULL;
	assert_true(sent[0].cancelled);
	assert_string_equal(a->reply, "error");
	assert_string_equal(b->reply, "error");
	assert_int_equal(a->replies + b->replies, 2);
	free_req(a);
	free_req(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_call_forwarded_verbatim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_order_covers_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_media_relay_preferred, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failover_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_reply_and_send_failure, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_relay_left, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_least_loaded, setup_least_loaded, teardown),
		cmocka_unit_test_setup_teardown(test_time_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_known_call_stays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_racing_requests_for_one_new_call, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_free_answers_in_flight, setup, teardown),
	};

	return cmocka_run_group_tests_name("selection", tests, NULL, NULL);
}
