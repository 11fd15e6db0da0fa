/* The dispatcher's MI client (see mi_client.h): the datagram socket, the
 * queue, the requests in flight with their deadlines, and what each reply
 * leads to (done, a second form, the text fallback, or a failure). The wire
 * formats are mi_dialect.c's. */
#include "mi_client.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "mi_dialect.h"

#define MI_SOCKET_MODE 0660       /* the proxy sends its replies here (as proxy_socket) */
#define MI_READ_BATCH 16          /* datagrams per wake-up, so a flood cannot starve the loop */
#define MI_SEND_RETRY_MS 20       /* the proxy's socket was full: try again after this */
#define MI_RPC_ID_MAX 0x7fffffffu /* OpenSIPS reads the id as a C int */
#define MI_LOG_ID_MAX 64          /* bytes of a bad dialog id quoted in the log */

struct mi_request {
	TAILQ_ENTRY(mi_request) entry;
	struct mi_client *c;
	char *call_id;
	char *dialog;             /* as the module sent it */
	struct mi_dialog_id id;
	enum mi_dialect dialect;  /* of the current attempt */
	enum mi_id_form form;
	unsigned int rpc_id;      /* JSON-RPC id of the current attempt */
	bool in_flight;
	bool keyed;               /* its reply names rpc_id: others may be in flight */
	bool unsent;              /* in flight, but the proxy's socket was full */
	struct event *deadline;
	char note[320];           /* what an earlier attempt got, for the last log line */
	char buf[MI_REQUEST_MAX];
	size_t len;
};

TAILQ_HEAD(mi_request_list, mi_request);

struct mi_client {
	struct event_base *base;
	int fd;
	struct event *read_ev;
	struct event *pump_ev;  /* sends what may go now, outside the caller's stack */
	struct event *retry_ev; /* resends what found the proxy's socket full */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct sockaddr_un proxy;
	enum config_mi_protocol proto;
	unsigned int max_in_flight;
	double timeout_s;
	mi_client_done_fn done;
	void *ctx;
	struct mi_request_list queue;  /* not sent yet, oldest first */
	struct mi_request_list flight; /* sent (or being sent), oldest first */
	size_t n_queued, n_flight, n_unkeyed;
	unsigned int last_rpc_id;
	bool json_seen;    /* the proxy answered JSON-RPC in JSON (D13 auto) */
	bool send_blocked; /* waiting for retry_ev */
	char rbuf[MI_REPLY_MAX + 1];
};

static void client_pump(struct mi_client *c);

/* --- small helpers ------------------------------------------------------------ */

static const char *form_name(enum mi_id_form form)
{
	switch (form) {
	case MI_ID_REVERSE_HEX:
		return "reverse-hex";
	case MI_ID_DECIMAL:
		return "decimal";
	case MI_ID_PAIR:
		return "pair";
	}
	return "unknown";
}

/* Printable excerpt of untrusted text for a log line. */
static const char *excerpt(const char *s, size_t len, char *buf, size_t size)
{
	size_t i;

	for (i = 0; i < len && i < MI_LOG_ID_MAX && i + 1 < size; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	if (i < len && i + 4 < size)
		strcat(buf, "...");
	return buf;
}

static unsigned int next_rpc_id(struct mi_client *c)
{
	c->last_rpc_id = c->last_rpc_id >= MI_RPC_ID_MAX ? 1 : c->last_rpc_id + 1;
	return c->last_rpc_id;
}

static struct timeval to_timeval(double s)
{
	struct timeval tv = { (time_t)s, (suseconds_t)((s - floor(s)) * 1e6) };

	return tv;
}

/* --- a request's life --------------------------------------------------------- */

static void request_free(struct mi_request *req)
{
	if (req->deadline)
		event_free(req->deadline);
	free(req->call_id);
	free(req->dialog);
	free(req);
}

static void request_unlink(struct mi_request *req)
{
	struct mi_client *c = req->c;

	event_del(req->deadline);
	if (!req->in_flight) {
		TAILQ_REMOVE(&c->queue, req, entry);
		c->n_queued--;
		return;
	}
	TAILQ_REMOVE(&c->flight, req, entry);
	c->n_flight--;
	if (!req->keyed)
		c->n_unkeyed--;
	req->in_flight = false;
}

/* The end of a request: after its log line, tell done and free it. Room in
 * flight may have opened, so the pump runs (later, from the loop). */
static void request_finish(struct mi_request *req, bool ok, const char *detail)
{
	struct mi_client *c = req->c;

	request_unlink(req);
	if (c->done)
		c->done(c->ctx, req->call_id, ok, detail);
	request_free(req);
	event_active(c->pump_ev, EV_TIMEOUT, 0);
}

static void request_failed(struct mi_request *req, const char *detail, const char *why)
{
	log_warn("call %s: cannot end dialog %s through %s: %s%s%s", req->call_id, req->dialog,
		 mi_dialect_name(req->dialect), why, req->note[0] ? "; " : "", req->note);
	request_finish(req, false, detail);
}

static void request_succeeded(struct mi_request *req)
{
	char detail[64];

	log_info("call %s: dialog %s ended through %s, %s id%s%s", req->call_id, req->dialog,
		 mi_dialect_name(req->dialect), form_name(req->form), req->note[0] ? "; " : "",
		 req->note);
	snprintf(detail, sizeof(detail), "%s %s", mi_dialect_name(req->dialect),
		 form_name(req->form));
	request_finish(req, true, detail);
}

/* Sends the current attempt. A full socket on the proxy's side is waited
 * out (under the attempt's deadline); any other error ends the request. */
static void request_transmit(struct mi_request *req)
{
	struct mi_client *c = req->c;
	char why[192], detail[128];
	int err;

	if (sendto(c->fd, req->buf, req->len, MSG_NOSIGNAL, (const struct sockaddr *)&c->proxy,
		   sizeof(c->proxy)) >= 0) {
		req->unsent = false;
		log_debug("call %s: sent %s request %u for dialog %s to %s", req->call_id,
			  mi_dialect_name(req->dialect), req->rpc_id, req->dialog, c->proxy.sun_path);
		return;
	}
	err = errno;
	if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
		static const struct timeval retry = { 0, MI_SEND_RETRY_MS * 1000 };

		req->unsent = true;
		if (!c->send_blocked)
			evtimer_add(c->retry_ev, &retry);
		c->send_blocked = true;
		return;
	}
	/* The proxy may come back as another version: probe again. */
	c->json_seen = false;
	snprintf(why, sizeof(why), "cannot send to %s: %s%s", c->proxy.sun_path, strerror(err),
		 err == ENOENT || err == ECONNREFUSED ? " (is the proxy running?)" : "");
	snprintf(detail, sizeof(detail), "send: %s", strerror(err));
	request_failed(req, detail, why);
}

/* Whether the reply to this attempt will carry its JSON-RPC id. */
static bool request_keyed(const struct mi_client *c, const struct mi_request *req)
{
	if (req->dialect == MI_OPENSIPS_TEXT)
		return false;
	/* Until the proxy answers JSON-RPC in JSON, it may be an OpenSIPS 1.x/2.x
	 * that answers with a bare text line. */
	return !(req->dialect == MI_OPENSIPS_JSON && c->proto == CONFIG_MI_AUTO && !c->json_seen);
}

static bool request_may_start(const struct mi_client *c, const struct mi_request *req)
{
	if (c->send_blocked || c->n_unkeyed)
		return false;
	if (!request_keyed(c, req))
		return !c->n_flight;
	return c->n_flight < c->max_in_flight;
}

static void request_start(struct mi_request *req)
{
	struct mi_client *c = req->c;
	struct timeval tv = to_timeval(c->timeout_s);
	int n;

	TAILQ_REMOVE(&c->queue, req, entry);
	c->n_queued--;
	req->in_flight = true;
	req->keyed = request_keyed(c, req);
	TAILQ_INSERT_TAIL(&c->flight, req, entry);
	c->n_flight++;
	if (!req->keyed)
		c->n_unkeyed++;
	req->rpc_id = next_rpc_id(c);
	n = mi_encode_end_dialog(req->dialect, &req->id, req->form, req->rpc_id, req->buf,
				 sizeof(req->buf));
	if (n < 0) { /* cannot happen: forms are picked per dialect */
		request_failed(req, "internal error", "cannot encode the request");
		return;
	}
	req->len = (size_t)n;
	evtimer_add(req->deadline, &tv);
	request_transmit(req);
}

/* Another attempt for the same dialog, ahead of everything queued. */
static void request_again(struct mi_request *req, enum mi_dialect dialect, enum mi_id_form form)
{
	struct mi_client *c = req->c;

	request_unlink(req);
	req->dialect = dialect;
	req->form = form;
	TAILQ_INSERT_HEAD(&c->queue, req, entry);
	c->n_queued++;
	client_pump(c);
}

static void request_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mi_request *req = arg;
	char why[192];

	(void)fd;
	(void)what;
	if (req->unsent)
		snprintf(why, sizeof(why), "could not send to %s within %.3g s (its queue is full)",
			 req->c->proxy.sun_path, req->c->timeout_s);
	else
		snprintf(why, sizeof(why), "no reply from %s within %.3g s", req->c->proxy.sun_path,
			 req->c->timeout_s);
	request_failed(req, "timeout", why);
}

/* --- replies ------------------------------------------------------------------- */

static void request_reply(struct mi_request *req, int rc, const struct mi_reply *rep)
{
	struct mi_client *c = req->c;
	char detail[300];

	if (rep->json)
		c->json_seen = true;
	else if (req->dialect != MI_OPENSIPS_TEXT)
		c->json_seen = false;
	if (!rc && rep->ok) {
		request_succeeded(req);
		return;
	}
	if (!rc && rep->json && rep->code == 404 && req->dialect == MI_OPENSIPS_JSON &&
	    req->form == MI_ID_REVERSE_HEX) {
		/* OpenSIPS 3.0 and older only know the decimal (§5.3). */
		snprintf(req->note, sizeof(req->note), "the reverse-hex DID got %d %s first",
			 rep->code, rep->message);
		request_again(req, MI_OPENSIPS_JSON, MI_ID_DECIMAL);
		return;
	}
	if (!rep->json && req->dialect == MI_OPENSIPS_JSON && c->proto == CONFIG_MI_AUTO) {
		/* D13: a proxy that does not answer in JSON speaks the legacy MI. */
		if (rc)
			snprintf(req->note, sizeof(req->note),
				 "JSON-RPC got a reply that is not JSON (%s) first", rep->message);
		else
			snprintf(req->note, sizeof(req->note),
				 "JSON-RPC got the non-JSON reply '%d %s' first", rep->code,
				 rep->message);
		request_again(req, MI_OPENSIPS_TEXT, req->id.pair ? MI_ID_PAIR : MI_ID_DECIMAL);
		return;
	}
	if (rc) {
		snprintf(detail, sizeof(detail), "reply: %s", rep->message);
		request_failed(req, detail, detail);
		return;
	}
	snprintf(detail, sizeof(detail), "%d %s", rep->code, rep->message);
	request_failed(req, detail, detail);
}

/* Finds the request a datagram answers: the first one in flight (oldest
 * first) whose id it carries. A reply without an id goes to the oldest,
 * which is exact when it is alone in flight (unkeyed requests are). */
static void client_reply(struct mi_client *c, const char *buf, size_t len)
{
	struct mi_request *req;
	struct mi_reply rep;
	char ex[MI_LOG_ID_MAX * 2];
	int rc;

	TAILQ_FOREACH(req, &c->flight, entry) {
		if (req->unsent)
			continue;
		rc = mi_parse_reply(req->dialect, buf, len, req->rpc_id, &rep);
		if (rc == -ESTALE || (rc == -EINVAL && rep.json && req->dialect == MI_OPENSIPS_TEXT))
			continue;
		request_reply(req, rc, &rep);
		return;
	}
	log_debug("MI: a reply that answers no request in flight (a late one?): '%s'",
		  excerpt(buf, len, ex, sizeof(ex)));
}

static void client_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mi_client *c = arg;
	ssize_t n;
	int i;

	(void)what;
	for (i = 0; i < MI_READ_BATCH; i++) {
		n = recv(fd, c->rbuf, MI_REPLY_MAX, MSG_TRUNC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("MI: reading %s: %s", c->path, strerror(errno));
			return;
		}
		if (n > MI_REPLY_MAX) {
			log_warn("MI: ignoring a %zd-byte datagram on %s (over %d bytes)", n, c->path,
				 MI_REPLY_MAX);
			continue;
		}
		c->rbuf[n] = '\0';
		client_reply(c, c->rbuf, (size_t)n);
	}
}

/* --- the queue --------------------------------------------------------------------- */

/* Starts queued requests in order while the limits allow; the head waits
 * rather than being overtaken, so a text request is not starved. */
static void client_pump(struct mi_client *c)
{
	struct mi_request *req;

	while ((req = TAILQ_FIRST(&c->queue)) && request_may_start(c, req))
		request_start(req);
}

static void client_pump_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	client_pump(arg);
}

static void client_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mi_client *c = arg;
	struct mi_request *req, *next;

	(void)fd;
	(void)what;
	c->send_blocked = false;
	for (req = TAILQ_FIRST(&c->flight); req && !c->send_blocked; req = next) {
		next = TAILQ_NEXT(req, entry);
		if (req->unsent)
			request_transmit(req);
	}
	client_pump(c);
}

int mi_client_end_dialog(struct mi_client *c, const char *call_id, const char *dialog_id)
{
	struct mi_request *req;
	struct mi_dialog_id id;
	char ex[MI_LOG_ID_MAX * 2];

	if (!call_id)
		call_id = "?";
	if (!dialog_id || !*dialog_id) {
		/* use_media_proxy(): the module sends no dialog, nothing to end */
		log_debug("call %s: no dialog_id; no dialog to end", call_id);
		return -EINVAL;
	}
	if (mi_dialog_id_parse(dialog_id, &id)) {
		log_warn("call %s: dialog_id '%s' is neither h_entry:h_id nor a 64-bit decimal; "
			 "cannot end the dialog", call_id,
			 excerpt(dialog_id, strlen(dialog_id), ex, sizeof(ex)));
		return -EINVAL;
	}
	if (c->n_queued + c->n_flight >= MI_CLIENT_MAX_QUEUE) {
		log_warn("call %s: %d MI requests are already waiting; not ending dialog %s",
			 call_id, MI_CLIENT_MAX_QUEUE, dialog_id);
		return -ENOBUFS;
	}
	req = calloc(1, sizeof(*req));
	if (req) {
		req->call_id = strdup(call_id);
		req->dialog = strdup(dialog_id);
		req->deadline = evtimer_new(c->base, request_deadline_cb, req);
	}
	if (!req || !req->call_id || !req->dialog || !req->deadline) {
		log_warn("call %s: out of memory; not ending dialog %s", call_id, dialog_id);
		if (req)
			request_free(req);
		return -ENOMEM;
	}
	req->c = c;
	req->id = id;
	req->dialect = mi_dialect_for(c->proto, &id);
	if (req->dialect == MI_OPENSIPS_JSON)
		req->form = MI_ID_REVERSE_HEX;
	else if (req->dialect == MI_KAMAILIO_JSONRPC || id.pair)
		req->form = MI_ID_PAIR;
	else
		req->form = MI_ID_DECIMAL;
	TAILQ_INSERT_TAIL(&c->queue, req, entry);
	c->n_queued++;
	event_active(c->pump_ev, EV_TIMEOUT, 0);
	return 0;
}

/* --- the socket ------------------------------------------------------------------ */

/* A datagram socket file has no listener to ask: one left at our path is
 * from an earlier run (D7) and goes. Anything else is not ours to delete. */
static int claim_path(const char *path)
{
	struct stat st;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : log_errno(-errno, "MI: cannot check %s", path);
	if (!S_ISSOCK(st.st_mode)) {
		log_error("MI: %s exists and is not a socket; not replacing it", path);
		return -EEXIST;
	}
	if (unlink(path) && errno != ENOENT)
		return log_errno(-errno, "MI: cannot remove the stale %s", path);
	log_info("MI: removed the stale socket file %s", path);
	return 0;
}

static int client_bind(struct mi_client *c)
{
	struct sockaddr_un sun;
	struct stat st;
	int rc = net_unix_sockaddr(&sun, c->path);

	if (!rc)
		rc = claim_path(c->path);
	if (rc)
		return rc;
	c->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return log_errno(-errno, "MI: socket");
	if (bind(c->fd, (const struct sockaddr *)&sun, sizeof(sun)))
		return log_errno(-errno, "MI: cannot bind %s", c->path);
	/* chmod, not umask: the mask is process-wide and other threads run. */
	if (lstat(c->path, &st) || chmod(c->path, MI_SOCKET_MODE)) {
		rc = log_errno(-errno, "MI: cannot set mode %04o on %s", MI_SOCKET_MODE, c->path);
		unlink(c->path);
		return rc;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	return 0;
}

static int client_paths(struct mi_client *c, const struct mi_client_options *opts)
{
	const char *proxy = opts->config->socket_path;
	char path[sizeof(c->path)];
	int rc;

	rc = config_runtime_path(opts->runtime_dir, MI_CLIENT_SOCKET, c->path, sizeof(c->path));
	if (!rc)
		rc = config_runtime_path(opts->runtime_dir, proxy, path, sizeof(path));
	if (rc) {
		log_error("MI: socket paths in %s (ours: %s, the proxy's: %s) are empty or longer "
			  "than %zu bytes", opts->runtime_dir, MI_CLIENT_SOCKET, proxy ? proxy : "",
			  sizeof(c->path) - 1);
		return rc;
	}
	net_unix_sockaddr(&c->proxy, path); /* fits: path has sun_path's size */
	if (!strcmp(path, c->path)) {
		log_error("MI: [OpenSIPS] socket_path %s is the dispatcher's own MI socket", path);
		return -EINVAL;
	}
	return 0;
}

static int client_events(struct mi_client *c)
{
	c->read_ev = event_new(c->base, c->fd, EV_READ | EV_PERSIST, client_read_cb, c);
	c->pump_ev = event_new(c->base, -1, 0, client_pump_cb, c);
	c->retry_ev = evtimer_new(c->base, client_retry_cb, c);
	if (!c->read_ev || !c->pump_ev || !c->retry_ev || event_add(c->read_ev, NULL))
		return log_errno(-ENOMEM, "MI: event setup");
	return 0;
}

int mi_client_open(struct mi_client **out, const struct mi_client_options *opts)
{
	struct mi_client *c;
	int rc;

	*out = NULL;
	if (!opts->base || !opts->runtime_dir || !opts->config || !(opts->timeout_s >= 0) ||
	    !isfinite(opts->timeout_s)) {
		log_error("MI: bad client options");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return log_errno(-ENOMEM, "MI client");
	c->fd = -1;
	c->base = opts->base;
	c->proto = opts->config->mi_protocol;
	c->max_in_flight = opts->config->max_connections ? opts->config->max_connections : 1;
	if (c->max_in_flight > MI_CLIENT_MAX_QUEUE)
		c->max_in_flight = MI_CLIENT_MAX_QUEUE;
	c->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : MI_CLIENT_TIMEOUT_S;
	c->done = opts->done;
	c->ctx = opts->ctx;
	TAILQ_INIT(&c->queue);
	TAILQ_INIT(&c->flight);
	rc = client_paths(c, opts);
	if (!rc)
		rc = client_bind(c);
	if (!rc)
		rc = client_events(c);
	if (rc) {
		mi_client_close(c);
		return rc;
	}
	log_info("MI: %s sends to %s (mi_protocol %s, up to %u requests in flight, %.3g s "
		 "timeout)", c->path, c->proxy.sun_path, config_mi_protocol_name(c->proto),
		 c->max_in_flight, c->timeout_s);
	*out = c;
	return 0;
}

static void cancel_all(struct mi_client *c, struct mi_request_list *list)
{
	struct mi_request *req;

	while ((req = TAILQ_FIRST(list))) {
		log_warn("call %s: dialog %s not ended: the dispatcher is shutting down%s",
			 req->call_id, req->dialog,
			 req->in_flight ? " (the proxy has not answered yet)" : "");
		request_unlink(req);
		if (c->done)
			c->done(c->ctx, req->call_id, false, "cancelled");
		request_free(req);
	}
}

void mi_client_close(struct mi_client *c)
{
	struct stat st;

	if (!c)
		return;
	cancel_all(c, &c->flight);
	cancel_all(c, &c->queue);
	if (c->read_ev)
		event_free(c->read_ev);
	if (c->pump_ev)
		event_free(c->pump_ev);
	if (c->retry_ev)
		event_free(c->retry_ev);
	if (c->fd >= 0)
		close(c->fd);
	/* Only our own file: another process may have taken the path since. */
	if (c->ino && !lstat(c->path, &st) && st.st_dev == c->dev && st.st_ino == c->ino &&
	    unlink(c->path))
		log_warn("MI: cannot remove %s: %s", c->path, strerror(errno));
	free(c);
}
