/* The management port (PROTOCOL.md §3): accepts clients (mutual TLS with
 * the management passport, or plain TCP), reads their command lines one at
 * a time and answers in order; summary and sessions fan out to every
 * connected relay and are answered once every relay has replied or missed
 * relay_timeout (D2). Parsing and reply bytes live in management_cmd.c. */
#include "management.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "log.h"
#include "management_cmd.h"
#include "net.h"
#include "tls.h"

#ifndef MP_VERSION
#define MP_VERSION "unknown"
#endif

/* A client that accepts none of our bytes for this long is dropped, so
 * one that stopped reading cannot pin a reply in memory forever. */
#define MANAGEMENT_WRITE_TIMEOUT 60 /* s */
#define MANAGEMENT_LOG_LINE 64      /* bytes of a bad command shown in the log */

struct mgmt_request;

/* A client is killed (socket closed, relay requests cancelled) wherever
 * that is decided, but its memory goes only from the loop (reaper), so the
 * callers up the stack can still look at c->dead. */
struct mgmt_client {
	TAILQ_ENTRY(mgmt_client) entry;
	struct management *mgmt;
	struct bufferevent *bev;       /* NULL once dead */
	struct event *reaper;          /* frees us once dead */
	struct event *handshake_timer; /* TLS only, until the peer is verified */
	struct mgmt_request *request;  /* the summary/sessions being gathered */
	char peer[NET_ADDRPORT_STRLEN];
	bool tls;
	bool ready;      /* plain, or TLS verified: commands may be read */
	bool closing;    /* flushing the last replies, then closed */
	bool processing; /* inside client_process() */
	bool dead;
};

/* One relay's part of a summary/sessions request. */
struct mgmt_slot {
	struct mgmt_request *owner;
	struct relay *relay;         /* only while sending */
	struct relay_request *req;   /* NULL once answered (or never sent) */
	struct json_object *result;  /* summary: object; sessions: array; NULL = failed */
	bool done;
	char ip[INET6_ADDRSTRLEN];
};

struct mgmt_request {
	struct mgmt_client *client;
	enum management_cmd cmd;
	size_t outstanding;
	bool sending;   /* still in the send loop: do not finish yet */
	size_t n;
	struct mgmt_slot slots[];
};

struct management {
	struct event_base *base;
	const struct config_dispatcher *config;
	SSL_CTX *tls;
	struct passport passport;
	struct relay_links *links;
	management_accounting_fn accounting;
	void *accounting_ctx;
	unsigned int max_clients;
	unsigned int n_clients; /* live ones */
	struct evconnlistener *listener;
	TAILQ_HEAD(, mgmt_client) clients; /* live and dead-not-yet-reaped */
};

static void client_process(struct mgmt_client *c);

/* --- client lifetime -------------------------------------------------- */

static void request_free(struct mgmt_request *req, bool cancel)
{
	size_t i;

	for (i = 0; i < req->n; i++) {
		if (cancel && req->slots[i].req)
			relay_request_cancel(req->slots[i].req);
		json_object_put(req->slots[i].result);
	}
	free(req);
}

/* Closes the connection now. graceful: we chose to close (quit, a bad
 * line), so say goodbye in TLS too. */
static void client_kill(struct mgmt_client *c, bool graceful)
{
	SSL *ssl;

	if (c->dead)
		return;
	c->dead = true;
	c->mgmt->n_clients--;
	if (c->request) {
		request_free(c->request, true);
		c->request = NULL;
	}
	if (c->handshake_timer) {
		event_free(c->handshake_timer);
		c->handshake_timer = NULL;
	}
	ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;
	if (ssl && graceful && c->ready)
		SSL_shutdown(ssl); /* best effort close_notify */
	ERR_clear_error();
	bufferevent_free(c->bev);
	c->bev = NULL;
	event_active(c->reaper, EV_TIMEOUT, 0);
}

static void client_destroy(struct mgmt_client *c)
{
	client_kill(c, false);
	TAILQ_REMOVE(&c->mgmt->clients, c, entry);
	event_free(c->reaper);
	free(c);
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	client_destroy(arg);
}

/* Sends what is queued, then closes (write_cb finishes the job). */
static void client_close_after_flush(struct mgmt_client *c)
{
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	if (!evbuffer_get_length(bufferevent_get_output(c->bev)))
		client_kill(c, true);
}

static int client_send(struct mgmt_client *c, const char *buf, size_t len)
{
	if (bufferevent_write(c->bev, buf, len) < 0) {
		log_error("management: %s: cannot queue a %zu-byte reply", c->peer, len);
		client_kill(c, false);
		return -ENOMEM;
	}
	return 0;
}

/* --- replies ---------------------------------------------------------- */

/* Copies a peer's text for a log line: capped, non-printables as '?'. */
static void printable(char *dst, size_t size, const char *src, size_t len)
{
	size_t i, n = len < size - 1 ? len : size - 1;

	for (i = 0; i < n; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[n] = '\0';
}

static int client_send_items(struct mgmt_client *c, struct json_object *items)
{
	char *buf;
	size_t len;
	int rc;

	rc = management_format_reply(c->mgmt->config->management_format, items, &buf, &len);
	if (rc < 0) {
		log_error("management: %s: cannot format the reply: %s", c->peer, strerror(-rc));
		return client_send(c, "error\r\n", 7);
	}
	rc = client_send(c, buf, len);
	free(buf);
	return rc;
}

static int reply_accounting(struct mgmt_client *c)
{
	struct management *mgmt = c->mgmt;
	struct json_object *items = json_object_new_array();
	int rc = 0;

	if (!items)
		return client_send(c, "error\r\n", 7);
	if (mgmt->accounting)
		rc = mgmt->accounting(mgmt->accounting_ctx, items);
	if (rc < 0) {
		log_warn("management: %s: accounting status failed: %s", c->peer, strerror(-rc));
		rc = client_send(c, "error\r\n", 7);
	} else {
		rc = client_send_items(c, items);
	}
	json_object_put(items);
	return rc;
}

/* --- summary / sessions fan-out --------------------------------------- */

/* Parses a relay's payload: an object for summary, an array for sessions,
 * and nothing after it. NULL when it is anything else. */
static struct json_object *parse_payload(enum json_type want, const char *payload, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *v;
	size_t end;

	if (!payload || !tok || len > INT32_MAX) {
		json_tokener_free(tok);
		return NULL;
	}
	v = json_tokener_parse_ex(tok, payload, (int)len);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	while (end < len && (payload[end] == ' ' || payload[end] == '\t' || payload[end] == '\r'))
		end++;
	if (v && (!json_object_is_type(v, want) || end != len)) {
		json_object_put(v);
		v = NULL;
	}
	return v;
}

static struct json_object *summary_error(const char *ip)
{
	struct json_object *o = json_object_new_object();

	if (o) {
		json_object_object_add(o, "status", json_object_new_string("error"));
		json_object_object_add(o, "ip", json_object_new_string(ip));
	}
	return o;
}

/* Builds the reply in relay order: for summary one object per relay (a
 * failed one as {"status": "error", "ip": ...}), for sessions every
 * relay's sessions one after the other, the failed relays left out (the
 * upstream handler meant to do so, §8.5). */
static struct json_object *request_items(const struct mgmt_request *req)
{
	struct json_object *items = json_object_new_array();
	const struct mgmt_slot *s;
	size_t i, j, n;

	for (i = 0; items && i < req->n; i++) {
		s = &req->slots[i];
		if (req->cmd == MANAGEMENT_CMD_SUMMARY) {
			json_object_array_add(items, s->result ? json_object_get(s->result)
							       : summary_error(s->ip));
			continue;
		}
		n = s->result ? json_object_array_length(s->result) : 0;
		for (j = 0; j < n; j++)
			json_object_array_add(items,
					      json_object_get(json_object_array_get_idx(s->result, j)));
	}
	return items;
}

static void request_maybe_finish(struct mgmt_request *req)
{
	struct mgmt_client *c = req->client;
	struct json_object *items;
	int rc;

	if (req->sending || req->outstanding)
		return;
	items = request_items(req);
	c->request = NULL;
	request_free(req, false);
	rc = items ? client_send_items(c, items) : client_send(c, "error\r\n", 7);
	json_object_put(items);
	/* Inside client_process() (no relay, or an answer before send
	 * returned) its loop goes on by itself. */
	if (rc == 0 && !c->processing)
		client_process(c);
}

static void slot_reply(void *ctx, int status, const char *payload, size_t len)
{
	struct mgmt_slot *s = ctx;
	struct mgmt_request *req = s->owner;
	const char *what = management_cmd_name(req->cmd);
	enum json_type want = req->cmd == MANAGEMENT_CMD_SUMMARY ? json_type_object
								 : json_type_array;
	char shown[MANAGEMENT_LOG_LINE];

	s->req = NULL;
	s->done = true;
	req->outstanding--;
	if (status < 0) {
		log_warn("management: relay %s: %s failed: %s", s->ip, what, strerror(-status));
	} else if (!(s->result = parse_payload(want, payload, len))) {
		printable(shown, sizeof(shown), payload, len);
		log_warn("management: relay %s: %s answered \"%s\"%s, not a JSON %s; %s",
			 s->ip, what, shown, len >= sizeof(shown) ? "..." : "",
			 want == json_type_object ? "object" : "array",
			 req->cmd == MANAGEMENT_CMD_SUMMARY ? "shown as status error"
							    : "its sessions are left out");
	}
	request_maybe_finish(req);
}

static int request_start(struct mgmt_client *c, enum management_cmd cmd)
{
	struct management *mgmt = c->mgmt;
	const char *command = management_cmd_name(cmd);
	struct mgmt_request *req;
	struct relay *r;
	struct relay_request *rr;
	size_t n = 0, i;
	int err;

	for (r = mgmt->links ? relay_links_first(mgmt->links) : NULL; r; r = relay_links_next(r))
		n++;
	req = calloc(1, sizeof(*req) + n * sizeof(req->slots[0]));
	if (!req) {
		log_error("management: %s: out of memory for %s", c->peer, command);
		return client_send(c, "error\r\n", 7);
	}
	*req = (struct mgmt_request){ .client = c, .cmd = cmd, .sending = true, .n = n };
	/* Take the list first: sending may be what tells us a relay is gone. */
	i = 0;
	for (r = n ? relay_links_first(mgmt->links) : NULL; r && i < n; r = relay_links_next(r), i++) {
		req->slots[i].owner = req;
		req->slots[i].relay = r;
		snprintf(req->slots[i].ip, sizeof(req->slots[i].ip), "%s", relay_ip(r));
	}
	req->n = i;
	c->request = req;
	for (i = 0; i < req->n; i++) {
		struct mgmt_slot *s = &req->slots[i];

		req->outstanding++;
		rr = relay_request_send(s->relay, command, "", 0,
					(double)mgmt->config->relay_timeout, slot_reply, s);
		err = rr ? 0 : (errno ? -errno : -EIO);
		s->relay = NULL;
		if (s->done)	/* answered before send returned */
			continue;
		if (rr)
			s->req = rr;
		else
			slot_reply(s, err, NULL, 0);
	}
	req->sending = false;
	request_maybe_finish(req);
	return 0;
}

/* --- command loop ----------------------------------------------------- */

/* Runs one command; the caller's loop goes on unless c is dead, closing
 * or waiting for relays. */
static void client_run(struct mgmt_client *c, enum management_cmd cmd, const char *shown)
{
	char version[64];
	int n;

	switch (cmd) {
	case MANAGEMENT_CMD_NONE:
		return;
	case MANAGEMENT_CMD_QUIT:
		client_close_after_flush(c);
		return;
	case MANAGEMENT_CMD_VERSION:
		n = snprintf(version, sizeof(version), "%s\r\n", MP_VERSION);
		client_send(c, version, (size_t)n);
		return;
	case MANAGEMENT_CMD_ACCOUNTING:
		reply_accounting(c);
		return;
	case MANAGEMENT_CMD_SUMMARY:
	case MANAGEMENT_CMD_SESSIONS:
		request_start(c, cmd);
		return;
	case MANAGEMENT_CMD_UNKNOWN:
		break;
	}
	log_warn("management: %s: unknown command \"%s\"", c->peer, shown);
	client_send(c, "error\r\n", 7);
}

/* Takes one line off the input and runs it. Returns false when there is
 * no complete line (or the line was too long and we are closing). */
static bool client_next_line(struct mgmt_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char shown[MANAGEMENT_LOG_LINE];
	struct lineproto_str line;
	enum management_cmd cmd;
	size_t len, used;
	const char *data;
	int rc;

	len = evbuffer_get_length(in);
	if (!len)
		return false;
	/* The reader never looks further than a maximal line and its CRLF. */
	if (len > MANAGEMENT_MAX_LINE + 2)
		len = MANAGEMENT_MAX_LINE + 2;
	data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	rc = management_cmd_next(data, len, &cmd, &line, &used);
	if (rc == LINEPROTO_NEED_MORE)
		return false;
	printable(shown, sizeof(shown), line.ptr, line.len);
	if (rc < 0) {
		log_warn("management: %s: command line over %d bytes (\"%s...\"), closing",
			 c->peer, MANAGEMENT_MAX_LINE, shown);
		if (client_send(c, "error\r\n", 7) == 0)
			client_close_after_flush(c);
		return false;
	}
	evbuffer_drain(in, used);
	if (cmd != MANAGEMENT_CMD_NONE)
		log_debug("management: %s: %s", c->peer, management_cmd_name(cmd));
	client_run(c, cmd, shown);
	return true;
}

/* Handles complete lines, one command at a time: not while waiting for
 * relays, nor while the client leaves more than MANAGEMENT_MAX_BACKLOG of
 * replies unread (write_cb calls us again once it drains). */
static void client_process(struct mgmt_client *c)
{
	c->processing = true;
	while (!c->dead && c->ready && !c->request && !c->closing &&
	       evbuffer_get_length(bufferevent_get_output(c->bev)) <= MANAGEMENT_MAX_BACKLOG &&
	       client_next_line(c))
		;
	c->processing = false;
}

/* --- libevent callbacks ----------------------------------------------- */

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct mgmt_client *c = arg;
	size_t queued;

	client_process(c);
	if (c->dead || c->closing)
		return;
	/* Pipelining is fine, but not without limit while we wait for relays
	 * or for the client to read its replies. (A read watermark would be
	 * the gentler brake, but bufferevent_openssl can stall under one:
	 * data already decrypted inside OpenSSL is not read again when the
	 * socket has nothing new.) */
	queued = evbuffer_get_length(bufferevent_get_input(bev));
	if (queued > MANAGEMENT_MAX_INPUT) {
		log_warn("management: %s: %zu bytes of commands queued unanswered, closing",
			 c->peer, queued);
		client_kill(c, false);
	}
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct mgmt_client *c = arg;

	if (c->closing) {
		if (!evbuffer_get_length(bufferevent_get_output(bev)))
			client_kill(c, true);
		return;
	}
	client_process(c);
}

/* The handshake finished: check the CA result and the passport. */
static void client_verify(struct mgmt_client *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	char err[512];

	if (tls_verify_peer(ssl, &c->mgmt->passport, err, sizeof(err)) < 0) {
		log_warn("management: refused %s: %s", c->peer, err);
		client_kill(c, false);
		return;
	}
	event_free(c->handshake_timer);
	c->handshake_timer = NULL;
	c->ready = true;
	log_debug("management: %s connected over TLS", c->peer);
	client_process(c);
}

/* A TLS failure before the peer was verified: say whose fault it was. A
 * certificate we rejected is explained by tls_verify_peer(); anything else
 * (no certificate, not TLS at all, the peer refusing ours) by OpenSSL. */
static void log_handshake_failure(struct mgmt_client *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	unsigned long e = bufferevent_get_openssl_error(c->bev);
	char err[512];

	if (!SSL_get0_peer_certificate(ssl) ||
	    tls_verify_peer(ssl, &c->mgmt->passport, err, sizeof(err)) == 0) {
		if (e)
			ERR_error_string_n(e, err, sizeof(err));
		else
			snprintf(err, sizeof(err), "%s",
				 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
	log_warn("management: refused %s: TLS handshake failed: %s", c->peer, err);
	ERR_clear_error();
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct mgmt_client *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		client_verify(c);
		return;
	}
	if (!c->ready) {
		if (what & BEV_EVENT_ERROR)
			log_handshake_failure(c);
		else
			log_warn("management: refused %s: closed during the TLS handshake", c->peer);
		client_kill(c, false);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		log_warn("management: %s: reads no replies for %d s, closing", c->peer,
			 MANAGEMENT_WRITE_TIMEOUT);
		client_kill(c, false);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !c->request && !c->closing) {
		/* Answer what is already here, then let the queued replies go. */
		client_process(c);
		if (c->dead || c->closing)
			return;
		if (!c->request) {
			client_close_after_flush(c);
			return;
		}
	}
	/* A client gone mid-request: its relay requests are cancelled. */
	log_debug("management: %s disconnected", c->peer);
	client_kill(c, false);
}

static void handshake_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mgmt_client *c = arg;

	(void)fd;
	(void)what;
	log_warn("management: refused %s: no TLS handshake within %d s", c->peer,
		 MANAGEMENT_HANDSHAKE_TIMEOUT);
	client_kill(c, false);
}

/* --- accepting -------------------------------------------------------- */

static struct bufferevent *client_bufferevent(struct mgmt_client *c, evutil_socket_t fd)
{
	struct management *mgmt = c->mgmt;
	const int opts = BEV_OPT_CLOSE_ON_FREE;
	struct bufferevent *bev;
	SSL *ssl;

	if (!c->tls)
		return bufferevent_socket_new(mgmt->base, fd, opts);
	ssl = SSL_new(mgmt->tls);
	if (!ssl)
		return NULL;
	bev = bufferevent_openssl_socket_new(mgmt->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, opts);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	/* A client that just closes its socket is done, not an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static int client_setup(struct mgmt_client *c, evutil_socket_t fd)
{
	struct management *mgmt = c->mgmt;
	struct timeval hs = { MANAGEMENT_HANDSHAKE_TIMEOUT, 0 };
	struct timeval wr = { MANAGEMENT_WRITE_TIMEOUT, 0 };

	c->reaper = event_new(mgmt->base, -1, 0, reaper_cb, c);
	if (!c->reaper)
		return -ENOMEM;
	if (c->tls) {
		c->handshake_timer = evtimer_new(mgmt->base, handshake_timeout_cb, c);
		if (!c->handshake_timer || evtimer_add(c->handshake_timer, &hs) < 0)
			return -ENOMEM;
	}
	c->bev = client_bufferevent(c, fd);
	if (!c->bev)
		return -ENOMEM;
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, MANAGEMENT_MAX_BACKLOG, 0);
	bufferevent_set_timeouts(c->bev, NULL, &wr);
	return bufferevent_enable(c->bev, EV_READ) < 0 ? -ENOMEM : 0;
}

static void accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct management *mgmt = arg;
	struct mgmt_client *c;
	struct net_addr addr;
	uint16_t port = 0;
	char peer[NET_ADDRPORT_STRLEN] = "?";

	(void)listener;
	(void)salen;
	if (net_addr_from_sockaddr(sa, &addr, &port) == 0)
		net_addr_port_format(&addr, port, peer, sizeof(peer));
	if (mgmt->n_clients >= mgmt->max_clients) {
		log_warn("management: refused %s: already %u clients connected", peer,
			 mgmt->n_clients);
		evutil_closesocket(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		log_error("management: refused %s: out of memory", peer);
		evutil_closesocket(fd);
		return;
	}
	c->mgmt = mgmt;
	c->tls = mgmt->config->management_use_tls;
	c->ready = !c->tls;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	if (client_setup(c, fd) < 0) {
		log_error("management: refused %s: out of memory", peer);
		if (c->bev)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		if (c->handshake_timer)
			event_free(c->handshake_timer);
		if (c->reaper)
			event_free(c->reaper);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&mgmt->clients, c, entry);
	mgmt->n_clients++;
	if (!c->tls)
		log_debug("management: %s connected", peer);
}

static void accept_error_cb(struct evconnlistener *listener, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	(void)listener;
	(void)arg;
	/* EMFILE and the like: the listener retries on the next event. */
	log_warn("management: accept failed: %s", evutil_socket_error_to_string(err));
}

/* --- the port ------------------------------------------------------------ */

/* Resolves listen_management into a socket address ("any" = 0.0.0.0, as
 * upstream; a name is looked up once, here). */
static int listen_address(const struct net_endpoint *ep, struct sockaddr_storage *ss,
			  socklen_t *sslen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	struct net_addr any = { .family = AF_INET };
	char port[8];
	int rc;

	if (ep->any) {
		rc = net_addr_to_sockaddr(&any, ep->port, ss);
		if (rc < 0)
			return rc;
		*sslen = (socklen_t)rc;
		return 0;
	}
	snprintf(port, sizeof(port), "%u", ep->port);
	rc = getaddrinfo(ep->host, port, &hints, &res);
	if (rc) {
		log_error("management: cannot resolve listen_management %s: %s", ep->host,
			  gai_strerror(rc));
		return -EADDRNOTAVAIL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int management_open(struct management **out, const struct management_options *opts)
{
	const struct net_endpoint *ep = &opts->config->listen_management;
	struct management *mgmt;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int rc;

	*out = NULL;
	if (opts->config->management_use_tls && !opts->tls) {
		log_error("management: management_use_tls is on but there is no TLS context");
		return -EINVAL;
	}
	rc = listen_address(ep, &ss, &sslen);
	if (rc < 0)
		return rc;
	mgmt = calloc(1, sizeof(*mgmt));
	if (!mgmt)
		return log_errno(-ENOMEM, "management: open");
	mgmt->base = opts->base;
	mgmt->config = opts->config;
	if (opts->passport)
		mgmt->passport = *opts->passport;
	mgmt->links = opts->relay_links;
	mgmt->accounting = opts->accounting;
	mgmt->accounting_ctx = opts->accounting_ctx;
	mgmt->max_clients = opts->max_clients ? opts->max_clients : MANAGEMENT_MAX_CLIENTS;
	TAILQ_INIT(&mgmt->clients);
	mgmt->listener = evconnlistener_new_bind(opts->base, accept_cb, mgmt,
						 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						 LEV_OPT_CLOSE_ON_EXEC, -1,
						 (struct sockaddr *)&ss, (int)sslen);
	if (!mgmt->listener) {
		rc = -errno ? -errno : -EADDRNOTAVAIL;
		log_error("management: cannot listen on %s:%u: %s",
			  ep->any ? "any" : ep->host, ep->port, strerror(-rc));
		free(mgmt);
		return rc;
	}
	evconnlistener_set_error_cb(mgmt->listener, accept_error_cb);
	if (opts->config->management_use_tls) {
		SSL_CTX_up_ref(opts->tls);
		mgmt->tls = opts->tls;
	}
	log_info("management: listening on %s:%u (%s, %s format)",
		 ep->any ? "any" : ep->host, management_port(mgmt),
		 mgmt->tls ? "TLS" : "plain TCP",
		 config_mgmt_format_name(opts->config->management_format));
	*out = mgmt;
	return 0;
}

void management_close(struct management *mgmt)
{
	if (!mgmt)
		return;
	while (!TAILQ_EMPTY(&mgmt->clients))
		client_destroy(TAILQ_FIRST(&mgmt->clients));
	evconnlistener_free(mgmt->listener);
	SSL_CTX_free(mgmt->tls);
	free(mgmt);
}

void management_set_tls(struct management *mgmt, SSL_CTX *tls)
{
	if (!mgmt->tls || !tls || tls == mgmt->tls)
		return;
	SSL_CTX_up_ref(tls);
	SSL_CTX_free(mgmt->tls);
	mgmt->tls = tls;
}

uint16_t management_port(const struct management *mgmt)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct net_addr addr;
	uint16_t port = 0;

	if (getsockname(evconnlistener_get_fd(mgmt->listener), (struct sockaddr *)&ss, &len) ||
	    net_addr_from_sockaddr((struct sockaddr *)&ss, &addr, &port))
		return 0;
	return port;
}
