/* Both ends of the dispatcher <-> relay link (dispatcherd/relay_link.c and
 * relayd/dispatcher_link.c) in one event loop over loopback, with real
 * certificates: the relay connects from 127.0.0.2 (D8) and the dispatcher
 * knows it by that address; commands round-trip with their headers
 * verbatim, many at once; deadlines, the TIMEDOUT state and recovery by
 * ping; keep-alive both ways; reconnection; a second connection from the
 * same address replacing the first; TLS refusals (wrong CA, passport, no
 * client certificate, revoked) logged on both sides; `expired` and
 * `halting`; and random garbage thrown at both ends. */
#include "link_fixture.h"

#include <netdb.h>

#include "dispatcher_link.h"
#include "relay_link.h"

/* --- the dispatcher end ---------------------------------------------------- */

struct disp {
	struct config_dispatcher cfg;
	struct passport passport;
	SSL_CTX *tls;
	struct relay_links *links;
	int connected, disconnected, expired;
	struct relay *last;
	char expired_json[256];
	bool close_on_reply;	/* a reply callback closes everything */
};

static void d_connected(void *ctx, struct relay *r)
{
	struct disp *d = ctx;

	d->connected++;
	d->last = r;
}

static void d_disconnected(void *ctx, struct relay *r)
{
	struct disp *d = ctx;

	d->disconnected++;
	if (d->last == r)
		d->last = NULL;
}

static void d_expired(void *ctx, struct relay *r, const char *json, size_t len)
{
	struct disp *d = ctx;

	(void)r;
	assert_int_equal(strlen(json), len);
	snprintf(d->expired_json, sizeof(d->expired_json), "%s", json);
	d->expired++;
}

static void disp_open(struct disp *d)
{
	struct relay_links_options o = {
		.base = base,
		.config = &d->cfg,
		.tls = d->tls,
		.passport = &d->passport,
		.events = { d_connected, d_disconnected, d_expired, d },
	};

	int rc;

	capture_on();
	rc = relay_links_open(&d->links, &o);
	capture_off();
	if (rc) {
		dump_log();
		fail_msg("relay_links_open: %s", strerror(-rc));
	}
}

/* Listens on host:port ("any" for every address). */
static void disp_init(struct disp *d, const char *host, uint16_t port)
{
	memset(d, 0, sizeof(*d));
	if (!strcmp(host, "any"))
		d->cfg.listen.any = true;
	else
		snprintf(d->cfg.listen.host, sizeof(d->cfg.listen.host), "%s", host);
	d->cfg.listen.port = port;
	d->cfg.relay_timeout = 5;
	d->cfg.relay_recover_interval = 60;
	d->tls = ctx_from(dir_a, "dispatcher", dir_a, true);
	disp_open(d);
}

static void disp_close(struct disp *d)
{
	capture_on();
	relay_links_close(d->links);
	capture_off();
	d->links = NULL;
	SSL_CTX_free(d->tls);
	d->tls = NULL;
}

/* --- the relay end ------------------------------------------------------- */

enum rel_mode { ANSWER, HOLD, HALTING, CLOSE };

struct held {
	struct dispatcher_link *link;
	uint64_t seq;
	char n[16];
};

struct rel {
	struct config_relay cfg;
	struct net_endpoint ep;
	struct passport passport;
	SSL_CTX *tls;
	const char *from;	/* relay_ip; default 127.0.0.2 */
	struct dispatcher_links *links;
	enum rel_mode mode;
	int commands;
	uint64_t last_seq;
	char last_command[32];
	char last_block[1024];	/* headers as received, re-joined */
	size_t last_headers;
	struct held *held;
	size_t n_held;
};

static void r_command(void *ctx, struct dispatcher_link *link, uint64_t seq,
		      const struct lineproto_msg *msg)
{
	struct rel *r = ctx;
	const struct lineproto_str *n = lineproto_header_get(msg, "n");
	size_t off = 0;

	r->commands++;
	r->last_seq = seq;
	snprintf(r->last_command, sizeof(r->last_command), "%.*s", (int)msg->command.len,
		 msg->command.ptr);
	for (size_t i = 0; i < msg->n_headers; i++)
		off += (size_t)snprintf(r->last_block + off, sizeof(r->last_block) - off,
					"%.*s: %.*s\r\n", (int)msg->headers[i].name.len,
					msg->headers[i].name.ptr, (int)msg->headers[i].value.len,
					msg->headers[i].value.ptr);
	r->last_headers = msg->n_headers;
	switch (r->mode) {
	case HOLD:
		r->held = realloc(r->held, (r->n_held + 1) * sizeof(*r->held));
		r->held[r->n_held] = (struct held){ link, seq, "" };
		if (n)
			lineproto_str_copy(*n, r->held[r->n_held].n, sizeof(r->held[0].n));
		r->n_held++;
		return;
	case HALTING:
		assert_int_equal(dispatcher_link_reply(link, seq, "halting"), 0);
		return;
	case CLOSE:
		dispatcher_links_close(r->links);
		r->links = NULL;
		assert_int_equal(dispatcher_link_reply(link, seq, "too late"), -ENOTCONN);
		return;
	case ANSWER:
		break;
	}
	if (lineproto_str_eq(msg->command, "update"))
		assert_int_equal(dispatcher_link_reply(link, seq, "198.51.100.1 40002"), 0);
	else if (strspn(r->last_command, "abcdefghijklmnopqrstuvwxyz") == strlen(r->last_command))
		assert_int_equal(dispatcher_link_reply(link, seq, r->last_command), 0);
	else	/* garbage from a fuzz test; may hold CR */
		assert_int_equal(dispatcher_link_reply(link, seq, "error"), 0);
}

static void rel_open(struct rel *r)
{
	struct dispatcher_links_options o = {
		.base = base,
		.config = &r->cfg,
		.tls = r->tls,
		.passport = &r->passport,
		.command = r_command,
		.ctx = r,
	};
	int rc;

	assert_int_equal(net_addr_parse(r->from ? r->from : "127.0.0.2", &o.relay_ip), 0);
	if (r->cfg.dispatchers.items == NULL) {
		r->cfg.dispatchers.items = &r->ep;
		r->cfg.dispatchers.count = 1;
	}
	capture_on();
	rc = dispatcher_links_open(&r->links, &o);
	capture_off();
	if (rc) {
		dump_log();
		fail_msg("dispatcher_links_open: %s", strerror(-rc));
	}
}

/* A relay from 127.0.0.2 (unless r->from says otherwise) to host:port with
 * the standard relay certificate; tests may swap r->tls. Not opened yet. */
static void rel_init(struct rel *r, const char *host, uint16_t port)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->ep.host, sizeof(r->ep.host), "%s", host);
	r->ep.port = port;
	r->cfg.reconnect_delay = 1;
	r->cfg.keepalive_interval = 60;
	r->cfg.dns_check_interval = 60;
	r->tls = ctx_from(dir_a, "relay", dir_a, false);
}

static void rel_close(struct rel *r)
{
	capture_on();
	dispatcher_links_close(r->links);
	capture_off();
	r->links = NULL;
	SSL_CTX_free(r->tls);
	r->tls = NULL;
	free(r->held);
	r->held = NULL;
}

static struct dispatcher_link *rel_link(struct rel *r)
{
	char name[NET_HOST_MAX + 16];

	snprintf(name, sizeof(name), strchr(r->ep.host, ':') ? "[%s]:%u" : "%s:%u", r->ep.host,
		 r->ep.port);
	return r->links ? dispatcher_links_find(r->links, name) : NULL;
}

/* --- replies ------------------------------------------------------------- */

struct reply {
	int done;
	int status;
	char payload[128];
	struct disp *d;
};

static void on_reply(void *ctx, int status, const char *payload, size_t len)
{
	struct reply *rep = ctx;

	rep->done++;
	rep->status = status;
	if (status == 0) {
		assert_non_null(payload);
		assert_int_equal(strlen(payload), len);
		snprintf(rep->payload, sizeof(rep->payload), "%s", payload);
	} else {
		assert_null(payload);
	}
	if (rep->d && rep->d->close_on_reply) {
		relay_links_close(rep->d->links);
		rep->d->links = NULL;
	}
}

static struct relay_request *send_cmd(struct relay *relay, const char *command,
				      const char *block, double timeout, struct reply *rep)
{
	struct relay_request *req;

	memset(rep, 0, sizeof(*rep));
	req = relay_request_send(relay, command, block, block ? strlen(block) : 0, timeout,
				 on_reply, rep);
	assert_non_null(req);
	return req;
}

static const char kamailio_block[] =
	"type: request\r\n"
	"dialog_id: 3421:1804289383\r\n"
	"call_id: 5f1b2c3d@192.0.2.10\r\n"
	"cseq: 101\r\n"
	"from_uri: alice@example.com\r\n"
	"to_uri: bob@example.com\r\n"
	"from_tag: a73kszlfl\r\n"
	"user_agent: Blink 5.1 (Linux): with: colons\r\n"
	"signaling_ip: 203.0.113.5\r\n"
	"media: audio:192.0.2.10:49170:sendrecv:ice=no,video:192.0.2.10:49172:sendonly:ice=no\r\n";

/* A dispatcher on 127.0.0.1 and a relay connected to it from 127.0.0.2. */
static void pair_up(struct disp *d, struct rel *r, uint16_t port)
{
	disp_init(d, "127.0.0.1", port);
	rel_init(r, "127.0.0.1", port);
	rel_open(r);
	WAIT(d->connected == 1 && rel_link(r), 3);
}

/* --- tests ------------------------------------------------------------------ */

static void test_round_trip(void **state)
{
	uint16_t port = free_port();
	struct disp d;
	struct rel r;
	struct reply rep;
	char name[32];

	(void)state;
	loop_setup();
	disp_init(&d, "127.0.0.1", port);
	d.passport = passport_of("O:MediaProxy Test, CN:relay");
	rel_init(&r, "127.0.0.1", port);
	r.passport = passport_of("CN:dispatcher");
	rel_open(&r);
	WAIT(d.connected == 1 && rel_link(&r), 3);

	/* the relay is known by the address it connected from (D8) */
	assert_string_equal(relay_ip(d.last), "127.0.0.2");
	assert_ptr_equal(relay_links_find(d.links, "127.0.0.2"), d.last);
	assert_null(relay_links_find(d.links, "127.0.0.1"));
	assert_ptr_equal(relay_links_first(d.links), d.last);
	assert_null(relay_links_next(d.last));
	assert_int_equal(relay_get_state(d.last), RELAY_ACTIVE);
	snprintf(name, sizeof(name), "127.0.0.1:%u", port);
	assert_string_equal(dispatcher_link_name(rel_link(&r)), name);
	assert_null(dispatcher_links_find(r.links, "127.0.0.9:1"));
	expect_log("relay 127.0.0.2: connected (/O=MediaProxy Test/CN=relay)");

	/* update: seq 0, every header as sent */
	send_cmd(d.last, "update", kamailio_block, 1, &rep);
	WAIT(rep.done, 2);
	assert_int_equal(rep.status, 0);
	assert_string_equal(rep.payload, "198.51.100.1 40002");
	assert_int_equal(r.last_seq, 0);
	assert_string_equal(r.last_command, "update");
	assert_string_equal(r.last_block, kamailio_block);

	/* summary: no headers, seq 1 */
	send_cmd(d.last, "summary", NULL, 1, &rep);
	WAIT(rep.done, 2);
	assert_int_equal(rep.status, 0);
	assert_string_equal(rep.payload, "summary");
	assert_int_equal(r.last_seq, 1);
	assert_int_equal(r.last_headers, 0);

	/* expired, unsolicited */
	assert_int_equal(dispatcher_link_send_expired(rel_link(&r),
		"{\"call_id\": \"abc@x\", \"from_tag\": \"t1\", \"streams\": []}"), 0);
	WAIT(d.expired == 1, 2);
	assert_string_equal(d.expired_json,
			    "{\"call_id\": \"abc@x\", \"from_tag\": \"t1\", \"streams\": []}");
	assert_int_equal(dispatcher_link_send_expired(rel_link(&r), "{\r\n}"), -EINVAL);

	/* halting goes through as a payload */
	r.mode = HALTING;
	send_cmd(d.last, "update", kamailio_block, 1, &rep);
	WAIT(rep.done, 2);
	assert_int_equal(rep.status, 0);
	assert_string_equal(rep.payload, "halting");
	assert_int_equal(relay_get_state(d.last), RELAY_ACTIVE);	/* the core's call */
	relay_set_state(d.last, RELAY_HALTING);
	assert_int_equal(relay_get_state(d.last), RELAY_HALTING);

	/* bad arguments are refused before anything is sent */
	assert_null(relay_request_send(d.last, "up date", NULL, 0, 1, on_reply, &rep));
	assert_int_equal(errno, EINVAL);
	assert_null(relay_request_send(d.last, "update", "a: b\r\n\r\nc: d\r\n", 14, 1,
				       on_reply, &rep));
	assert_int_equal(errno, EINVAL);
	assert_null(relay_request_send(d.last, "update", "a: b", 4, 1, on_reply, &rep));
	assert_int_equal(errno, EINVAL);
	assert_null(relay_request_send(d.last, "update", NULL, 0, 0, on_reply, &rep));
	assert_int_equal(errno, EINVAL);
	/* a seq this connection never handed out, a payload breaking the line */
	assert_int_equal(dispatcher_link_reply(rel_link(&r), 99, "error"), -ENOTCONN);
	r.mode = HOLD;
	send_cmd(d.last, "remove", "call_id: x\r\nfrom_tag: y\r\n", 1, &rep);
	WAIT(r.n_held == 1, 2);
	assert_int_equal(dispatcher_link_reply(r.held[0].link, r.held[0].seq, "a\nb"), -EINVAL);
	assert_int_equal(dispatcher_link_reply(r.held[0].link, r.held[0].seq, "{}"), 0);
	assert_int_equal(dispatcher_link_reply(r.held[0].link, r.held[0].seq, "{}"), -ENOTCONN);
	WAIT(rep.done, 2);
	assert_string_equal(rep.payload, "{}");
	assert_false(log_has("unexpected"));

	rel_close(&r);
	WAIT(d.disconnected == 1, 2);
	disp_close(&d);
	loop_teardown();
}

#define IN_FLIGHT 1000

static void test_many_in_flight(void **state)
{
	static struct reply reps[IN_FLIGHT];
	uint16_t port = free_port();
	char block[64];
	struct disp d;
	struct rel r;
	int i, done;

	(void)state;
	loop_setup();
	pair_up(&d, &r, port);
	r.mode = HOLD;
	for (i = 0; i < IN_FLIGHT; i++) {
		snprintf(block, sizeof(block), "n: %d\r\n", i);
		send_cmd(d.last, "update", block, 5, &reps[i]);
	}
	WAIT(r.n_held == IN_FLIGHT, 5);
	/* answered out of order: last first, echoing the request's n */
	for (i = IN_FLIGHT - 1; i >= 0; i--) {
		char payload[32];

		snprintf(payload, sizeof(payload), "ok %s", r.held[i].n);
		assert_int_equal(r.held[i].seq, (uint64_t)i);
		assert_int_equal(dispatcher_link_reply(r.held[i].link, r.held[i].seq, payload), 0);
	}
	WAIT(({ done = 0; for (i = 0; i < IN_FLIGHT; i++) done += reps[i].done; done; })
	     == IN_FLIGHT, 5);
	for (i = 0; i < IN_FLIGHT; i++) {
		char want[32];

		snprintf(want, sizeof(want), "ok %d", i);
		assert_int_equal(reps[i].done, 1);
		assert_int_equal(reps[i].status, 0);
		assert_string_equal(reps[i].payload, want);
	}
	rel_close(&r);
	disp_close(&d);
	loop_teardown();
}

static void test_deadline_then_ping(void **state)
{
	uint16_t port = free_port();
	struct disp d;
	struct rel r;
	struct reply rep;
	double t0;

	(void)state;
	loop_setup();
	disp_init(&d, "127.0.0.1", port);
	rel_init(&r, "127.0.0.1", port);
	r.cfg.keepalive_interval = 1;
	r.mode = HOLD;
	rel_open(&r);
	WAIT(d.connected == 1 && rel_link(&r), 3);

	t0 = now_s();
	send_cmd(d.last, "update", kamailio_block, 0.15, &rep);
	WAIT(rep.done, 2);
	assert_int_equal(rep.status, -ETIMEDOUT);
	assert_true(now_s() - t0 >= 0.14);
	assert_int_equal(relay_get_state(d.last), RELAY_TIMEDOUT);
	expect_log("relay 127.0.0.2: no reply to update 0 within 0.15 s, marking it timed out");

	/* the late answer is logged and dropped */
	assert_int_equal(r.n_held, 1);
	assert_int_equal(dispatcher_link_reply(r.held[0].link, r.held[0].seq, "1.2.3.4 5"), 0);
	WAIT(log_has("unexpected reply for seq 0"), 2);
	assert_int_equal(rep.done, 1);

	/* the next keep-alive ping makes it active again */
	WAIT(relay_get_state(d.last) == RELAY_ACTIVE, 2.5);
	expect_log("relay 127.0.0.2: ping received, active again");
	assert_int_equal(d.disconnected, 0);

	/* a cancelled request: no callback, its late answer dropped quietly */
	struct relay_request *req = send_cmd(d.last, "update", kamailio_block, 1, &rep);
	relay_request_cancel(req);
	WAIT(r.n_held == 2, 2);
	assert_int_equal(dispatcher_link_reply(r.held[1].link, r.held[1].seq, "x"), 0);
	run_for(0.1);
	assert_int_equal(rep.done, 0);
	assert_int_equal(log_count("unexpected reply"), 1);

	rel_close(&r);
	disp_close(&d);
	loop_teardown();
}

static void test_recover_interval(void **state)
{
	uint16_t port = free_port();
	struct disp d;
	struct rel r;
	struct reply rep;

	(void)state;
	loop_setup();
	disp_init(&d, "127.0.0.1", port);
	d.cfg.relay_recover_interval = 1;
	rel_init(&r, "127.0.0.1", port);
	r.mode = HOLD;	/* and no pings: keepalive_interval is 60 */
	rel_open(&r);
	WAIT(d.connected == 1 && rel_link(&r), 3);
	send_cmd(d.last, "summary", NULL, 0.1, &rep);
	WAIT(rep.done, 2);
	assert_int_equal(rep.status, -ETIMEDOUT);
	WAIT(d.disconnected == 1, 2.5);
	expect_log("relay 127.0.0.2: timed out and sent no ping within relay_recover_interval (1 s)");
	/* the relay notices and comes back after reconnect_delay */
	WAIT(d.connected == 2, 3);
	expect_log("lost connection to dispatcher 127.0.0.1:");
	assert_int_equal(relay_get_state(d.last), RELAY_ACTIVE);
	rel_close(&r);
	disp_close(&d);
	loop_teardown();
}

/* Pongs keep the link up; once it has been up 5 s ("established", §2.1)
 * a lost connection is retried after min(reconnect_delay, 1) s. */
static void test_keepalive_answered(void **state)
{
	uint16_t port = free_port();
	struct disp d;
	struct rel r;
	double t0;

	(void)state;
	loop_setup();
	disp_init(&d, "127.0.0.1", port);
	rel_init(&r, "127.0.0.1", port);
	r.cfg.keepalive_interval = 1;
	r.cfg.reconnect_delay = 3;
	rel_open(&r);
	WAIT(d.connected == 1 && rel_link(&r), 3);
	/* five ticks: without pongs the fourth would drop the link */
	run_for(5.2);
	assert_int_equal(d.connected, 1);
	assert_int_equal(d.disconnected, 0);
	assert_false(log_has("unanswered"));

	disp_close(&d);
	d.tls = ctx_from(dir_a, "dispatcher", dir_a, true);
	disp_open(&d);
	t0 = now_s();
	WAIT(d.connected == 2, 2);
	assert_true(now_s() - t0 < 1.5);
	expect_log("reconnecting in 1 s");
	rel_close(&r);
	disp_close(&d);
	loop_teardown();
}

static void test_keepalive_unanswered(void **state)
{
	uint16_t port = free_port();
	struct fake_server fake;
	struct rel r;
	SSL_CTX *dctx;

	(void)state;
	loop_setup();
	dctx = ctx_from(dir_a, "dispatcher", dir_a, true);
	fake_server_open(&fake, port, dctx);
	rel_init(&r, "127.0.0.1", port);
	r.cfg.keepalive_interval = 1;
	rel_open(&r);
	WAIT(fake.accepted == 1 && fake.peer.up, 3);
	bufferevent_write(fake.peer.bev, "summary 0\r\n\r\n", 13);
	WAIT(peer_got(&fake.peer, "0 summary"), 2);
	WAIT(fake.peer.closed, 6);
	assert_int_equal(fake.peer.pings, 3);
	expect_log("3 pings unanswered, reconnecting");
	WAIT(fake.accepted == 2, 3);
	rel_close(&r);
	fake_server_close(&fake);
	SSL_CTX_free(dctx);
	loop_teardown();
}

static void test_reconnect(void **state)
{
	uint16_t port = free_port();
	struct disp d;
	struct rel r;
	struct reply rep;

	(void)state;
	loop_setup();
	/* nobody listening yet: refused, logged, retried */
	rel_init(&r, "127.0.0.1", port);
	rel_open(&r);
	run_for(0.2);
	expect_log("from 127.0.0.2: Connection refused; retrying in 1 s");
	disp_init(&d, "127.0.0.1", port);
	WAIT(d.connected == 1 && rel_link(&r), 3);
	send_cmd(d.last, "sessions", NULL, 1, &rep);
	WAIT(rep.done, 2);

	/* the dispatcher restarts */
	disp_close(&d);
	WAIT(!rel_link(&r), 2);
	expect_log("lost connection to dispatcher");
	d.tls = ctx_from(dir_a, "dispatcher", dir_a, true);
	disp_open(&d);
	WAIT(d.connected == 2 && rel_link(&r), 3);
	send_cmd(d.last, "sessions", NULL, 1, &rep);
	WAIT(rep.done, 2);
	assert_int_equal(rep.status, 0);
	assert_int_equal(r.last_seq, 0);	/* seq restarts per connection */
	rel_close(&r);
	disp_close(&d);
	loop_teardown();
}

static void test_replace_same_ip(void **state)
{
	uint16_t port = free_port();
	struct disp d;
	struct rel a, b;
	struct reply rep, rep2;

	(void)state;
	loop_setup();
	disp_init(&d, "any", port);	/* dual-stack: IPv4 shows as plain IPv4 */
	rel_init(&a, "127.0.0.1", port);
	a.cfg.reconnect_delay = 30;	/* no flapping back */
	a.mode = HOLD;
	rel_open(&a);
	WAIT(d.connected == 1 && rel_link(&a), 3);
	assert_string_equal(relay_ip(d.last), "127.0.0.2");
	send_cmd(d.last, "update", kamailio_block, 5, &rep);
	WAIT(a.n_held == 1, 2);

	rel_init(&b, "127.0.0.1", port);
	rel_open(&b);
	WAIT(d.connected == 2 && rep.done && rel_link(&b), 3);
	assert_int_equal(rep.status, -ECONNRESET);
	assert_int_equal(d.disconnected, 1);
	expect_log("relay 127.0.0.2: reconnected, closing old connection");
	assert_ptr_equal(relay_links_first(d.links), d.last);
	assert_null(relay_links_next(d.last));
	send_cmd(relay_links_find(d.links, "127.0.0.2"), "summary", NULL, 1, &rep2);
	WAIT(rep2.done, 2);
	assert_int_equal(b.commands, 1);
	assert_int_equal(a.commands, 1);
	WAIT(!rel_link(&a), 2);
	/* the old connection's command can no longer be answered */
	assert_int_equal(dispatcher_link_reply(a.held[0].link, a.held[0].seq, "1.2.3.4 5"),
			 -ENOTCONN);
	rel_close(&a);
	rel_close(&b);
	disp_close(&d);
	loop_teardown();
}

/* A relay whose TLS set-up is wrong in some way; both sides must log. */
static void refused(SSL_CTX *relay_ctx, const char *disp_passport, const char *relay_passport,
		    const char *disp_says, const char *relay_says)
{
	uint16_t port = free_port();
	struct disp d;
	struct rel r;

	loop_setup();
	disp_init(&d, "127.0.0.1", port);
	if (disp_passport)
		d.passport = passport_of(disp_passport);
	rel_init(&r, "127.0.0.1", port);
	SSL_CTX_free(r.tls);
	r.tls = relay_ctx;
	if (relay_passport)
		r.passport = passport_of(relay_passport);
	rel_open(&r);
	WAIT(log_has(disp_says) && log_has(relay_says), 3);
	assert_null(rel_link(&r));
	assert_int_equal(d.connected - d.disconnected, 0);
	rel_close(&r);
	disp_close(&d);
	loop_teardown();
}

static void test_tls_refusals(void **state)
{
	(void)state;
	/* the relay trusts another CA */
	refused(ctx_from(dir_b, "relay", dir_b, false), NULL, NULL,
		"relay 127.0.0.2: TLS handshake failed: tlsv1 alert unknown ca",
		"TLS handshake failed: certificate /O=MediaProxy Test/CN=dispatcher rejected");
	/* the relay's certificate is from another CA */
	refused(ctx_from(dir_b, "relay", dir_a, false), NULL, NULL,
		"relay 127.0.0.2: TLS handshake failed: certificate /O=MediaProxy Test/CN=relay rejected",
		"it probably refused our certificate");
	/* revoked */
	refused(ctx_from(dir_a, "revoked", dir_a, false), NULL, NULL,
		"rejected: certificate revoked", "it probably refused our certificate");
	/* no client certificate */
	refused(ctx_without_cert(), NULL, NULL,
		"relay 127.0.0.2: TLS handshake failed: peer did not return a certificate",
		"it probably refused our certificate");
	/* the dispatcher's passport does not fit the relay */
	refused(ctx_from(dir_a, "relay", dir_a, false), "CN:relay-other", NULL,
		"relay 127.0.0.2: passport mismatch: certificate /O=MediaProxy Test/CN=relay "
		"does not match passport",
		"it probably refused our certificate");
	/* the relay's passport does not fit the dispatcher */
	refused(ctx_from(dir_a, "relay", dir_a, false), NULL, "O:Somebody Else",
		"relay 127.0.0.2: connection lost",
		"passport mismatch: certificate /O=MediaProxy Test/CN=dispatcher does not match");
}

static void test_dns_name(void **state)
{
	uint16_t port = free_port();
	struct addrinfo hints = { .ai_family = AF_INET }, *res;
	struct disp d;
	struct rel r;
	char name[32];

	(void)state;
	if (getaddrinfo("localhost", NULL, &hints, &res)) {
		skip();
	}
	freeaddrinfo(res);
	loop_setup();
	disp_init(&d, "127.0.0.1", port);
	rel_init(&r, "localhost", port);
	rel_open(&r);
	WAIT(d.connected == 1 && rel_link(&r), 3);
	snprintf(name, sizeof(name), "localhost:%u", port);
	assert_string_equal(dispatcher_link_name(rel_link(&r)), name);
	assert_string_equal(relay_ip(d.last), "127.0.0.2");
	rel_close(&r);
	disp_close(&d);
	loop_teardown();
}

static void test_ipv6(void **state)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	uint16_t port = free_port();
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	struct disp d;
	struct rel r;
	struct reply rep;
	char name[32];

	(void)state;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0) {
		if (fd >= 0)
			close(fd);
		skip();	/* no IPv6 loopback here */
	}
	close(fd);
	loop_setup();
	disp_init(&d, "::1", port);
	rel_init(&r, "::1", port);
	r.from = "::1";
	rel_open(&r);
	WAIT(d.connected == 1 && rel_link(&r), 3);
	assert_string_equal(relay_ip(d.last), "::1");
	snprintf(name, sizeof(name), "[::1]:%u", port);
	assert_string_equal(dispatcher_link_name(rel_link(&r)), name);
	send_cmd(d.last, "update", kamailio_block, 1, &rep);
	WAIT(rep.done, 2);
	assert_string_equal(rep.payload, "198.51.100.1 40002");
	rel_close(&r);
	disp_close(&d);
	loop_teardown();
}

/* Closing everything from inside a callback, on either side. */
static void test_close_from_callback(void **state)
{
	uint16_t port = free_port();
	struct disp d;
	struct rel r;
	struct reply rep, rep2;

	(void)state;
	loop_setup();
	pair_up(&d, &r, port);
	d.close_on_reply = true;
	send_cmd(d.last, "update", kamailio_block, 1, &rep);
	rep.d = &d;
	send_cmd(d.last, "summary", NULL, 1, &rep2);
	WAIT(rep.done, 2);
	assert_null(d.links);
	assert_int_equal(rep2.done, 1);
	assert_int_equal(rep2.status, -ECONNRESET);
	/* our own close is not the relay going away: no disconnected event */
	assert_int_equal(d.disconnected, 0);

	/* and the relay closing its links from its command handler */
	disp_open(&d);
	WAIT(d.connected == 2, 3);
	r.mode = CLOSE;
	send_cmd(d.last, "summary", NULL, 1, &rep);
	WAIT(rep.done, 2);
	assert_int_equal(rep.status, -ECONNRESET);
	assert_null(r.links);
	rel_close(&r);
	disp_close(&d);
	loop_teardown();
}

#include "link_garbage.h"

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_many_in_flight),
		cmocka_unit_test(test_deadline_then_ping),
		cmocka_unit_test(test_recover_interval),
		cmocka_unit_test(test_keepalive_answered),
		cmocka_unit_test(test_keepalive_unanswered),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_replace_same_ip),
		cmocka_unit_test(test_tls_refusals),
		cmocka_unit_test(test_dns_name),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_close_from_callback),
		cmocka_unit_test(test_garbage_to_dispatcher),
		cmocka_unit_test(test_garbage_to_relay),
	};

	return cmocka_run_group_tests_name("relay_link", tests, fixture_setup, fixture_teardown);
}
