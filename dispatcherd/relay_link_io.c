/* The request half of the dispatcher's relay links (see relay_link.h):
 * commands sent to a relay with a seq and a deadline each, and the relay's
 * reply stream (`<seq> <payload>`, `ping`, `expired <json>`), read line by
 * line with a 4 MiB limit. Bad lines are logged with the relay's address
 * and ignored; RELAY_MAX_BAD_LINES of them close the connection. */
#include "relay_link_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "lineproto.h"
#include "linkio.h"
#include "log.h"
#include "relay_reply.h"

/* --- requests ---------------------------------------------------------- */

static void request_free(struct relay_request *req)
{
	if (req->deadline)
		event_free(req->deadline);
	free(req);
}

void relay_link_fail_requests(struct relay *r)
{
	struct relay_request *req;

	/* Head first, every time: a callback may cancel any other request. */
	while ((req = TAILQ_FIRST(&r->requests))) {
		TAILQ_REMOVE(&r->requests, req, entry);
		event_del(req->deadline);
		if (req->reply)
			req->reply(req->ctx, -ECONNRESET, NULL, 0);
		request_free(req);
	}
}

static void request_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_request *req = arg;
	struct relay *r = req->relay;

	(void)fd;
	(void)what;
	TAILQ_REMOVE(&r->requests, req, entry);
	log_warn("relay %s: no reply to %s %" PRIu64 " within %.3g s%s", r->ip, req->command,
		 req->seq, req->timeout_s, r->state == RELAY_ACTIVE ? ", marking it timed out" : "");
	/* The relay is marked before the core hears of it, so a failover in
	 * the reply callback does not pick it again. */
	if (r->state == RELAY_ACTIVE)
		relay_set_state(r, RELAY_TIMEDOUT);
	r->refs++;
	if (req->reply)
		req->reply(req->ctx, -ETIMEDOUT, NULL, 0);
	request_free(req);
	relay_link_release(r);
}

/* An empty line inside the block would end the message early and turn the
 * rest into a bogus command on the relay; a NUL would be cut there. */
static bool header_block_ok(const char *block, size_t len)
{
	size_t i;

	if (!len)
		return true;
	if (block[len - 1] != '\n' || block[0] == '\n' || (block[0] == '\r' && len > 1 &&
							    block[1] == '\n'))
		return false;
	for (i = 0; i < len; i++) {
		if (block[i] == '\0')
			return false;
		if (block[i] == '\n' && i + 1 < len &&
		    (block[i + 1] == '\n' || (block[i + 1] == '\r' && i + 2 < len &&
					      block[i + 2] == '\n')))
			return false;
	}
	return true;
}

static bool command_ok(const char *command)
{
	return command && command[0] && !strpbrk(command, " \r\n");
}

struct relay_request *relay_request_send(struct relay *relay, const char *command,
					 const char *header_block, size_t len,
					 double timeout_s, relay_reply_fn reply, void *ctx)
{
	struct evbuffer *out;
	struct relay_request *req;
	struct timeval tv;

	if (!relay->links) {
		errno = ENOTCONN;
		return NULL;
	}
	if (!command_ok(command) || (len && !header_block) || !header_block_ok(header_block, len) ||
	    !(timeout_s > 0) || !reply) {
		errno = EINVAL;
		return NULL;
	}
	req = calloc(1, sizeof(*req));
	if (!req)
		return NULL;
	req->deadline = evtimer_new(relay->links->base, request_deadline_cb, req);
	if (!req->deadline) {
		free(req);
		errno = ENOMEM;
		return NULL;
	}
	req->relay = relay;
	req->seq = relay->next_seq;
	req->timeout_s = timeout_s;
	req->reply = reply;
	req->ctx = ctx;
	snprintf(req->command, sizeof(req->command), "%s", command);
	out = bufferevent_get_output(relay->bev);
	if (evbuffer_add_printf(out, "%s %" PRIu64 "\r\n", command, req->seq) < 0 ||
	    (len && evbuffer_add(out, header_block, len) < 0) || evbuffer_add(out, "\r\n", 2) < 0) {
		/* Half a command may be queued: the stream is unusable. */
		log_error("relay %s: cannot queue %s %" PRIu64 ", closing connection", relay->ip,
			  req->command, req->seq);
		request_free(req);
		relay_link_drop(relay);
		errno = ENOMEM;
		return NULL;
	}
	relay->next_seq++;
	tv = linkio_timeval(timeout_s);
	event_add(req->deadline, &tv);
	TAILQ_INSERT_TAIL(&relay->requests, req, entry);
	return req;
}

void relay_request_cancel(struct relay_request *req)
{
	/* It stays queued so that its answer, when it comes, is recognised
	 * and dropped quietly; the deadline still counts against the relay. */
	req->reply = NULL;
	req->ctx = NULL;
}

/* --- the relay's input ------------------------------------------------- */

static void bad_line(struct relay *r, const char *why, const char *p, size_t len)
{
	char ex[LINKIO_EXCERPT_BUF];

	linkio_excerpt(p, len, ex, sizeof(ex));
	log_warn("relay %s: %s, ignored: %s", r->ip, why, ex);
	if (++r->bad_lines == RELAY_MAX_BAD_LINES) {
		log_error("relay %s: %u malformed lines, closing connection", r->ip, r->bad_lines);
		relay_link_drop(r);
	}
}

static void handle_reply(struct relay *r, uint64_t seq, struct lineproto_str payload)
{
	struct relay_request *req;

	TAILQ_FOREACH(req, &r->requests, entry)
		if (req->seq == seq)
			break;
	if (!req) {
		char ex[LINKIO_EXCERPT_BUF];

		linkio_excerpt(payload.ptr, payload.len, ex, sizeof(ex));
		log_warn("relay %s: unexpected reply for seq %" PRIu64
			 " (timed out, never sent or already answered), ignored: %s", r->ip, seq, ex);
		return;
	}
	TAILQ_REMOVE(&r->requests, req, entry);
	if (req->reply)
		req->reply(req->ctx, 0, payload.ptr, payload.len);
	else
		log_debug("relay %s: reply to cancelled %s %" PRIu64 " dropped", r->ip,
			  req->command, seq);
	request_free(req);
}

static void handle_ping(struct relay *r)
{
	bufferevent_write(r->bev, "pong\r\n", 6);
	if (r->state == RELAY_TIMEDOUT) {
		log_info("relay %s: ping received, active again", r->ip);
		relay_set_state(r, RELAY_ACTIVE);
	}
}

/* One line of n bytes, LF included, at data (writable: the terminator is
 * replaced by a NUL so that payloads reach the core as C strings). */
static void handle_line(struct relay *r, char *data, size_t n)
{
	struct relay_reply rep;

	if (relay_reply_parse(data, n, LINEPROTO_RELAY_MAX_LINE, &rep)) {
		bad_line(r, rep.error, rep.line.ptr, rep.line.len);
		return;
	}
	data[rep.line.len] = '\0';
	switch (rep.kind) {
	case RELAY_REPLY_EMPTY:
		break;
	case RELAY_REPLY_PING:
		handle_ping(r);
		break;
	case RELAY_REPLY_EXPIRED:
		if (r->links->events.expired)
			r->links->events.expired(r->links->events.ctx, r, rep.body.ptr,
						 rep.body.len);
		break;
	case RELAY_REPLY_ANSWER:
		handle_reply(r, rep.seq, rep.body);
		break;
	}
}

void relay_link_read_cb(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (!r->authenticated)
		return;	/* read again once the peer is checked */
	r->refs++;
	while (r->links) {
		size_t len = evbuffer_get_length(in), n;
		struct evbuffer_ptr p;
		char *data;

		if (len <= r->scanned)
			break;
		/* Resume the LF search where the last one stopped: a 4 MiB
		 * reply arrives in many reads. */
		evbuffer_ptr_set(in, &p, r->scanned, EVBUFFER_PTR_SET);
		p = evbuffer_search(in, "\n", 1, &p);
		if (p.pos < 0) {
			r->scanned = len;
			if (len > LINEPROTO_RELAY_MAX_LINE + 1) {
				log_error("relay %s: line over %u bytes, closing connection",
					  r->ip, LINEPROTO_RELAY_MAX_LINE);
				relay_link_drop(r);
			}
			break;
		}
		n = (size_t)p.pos + 1;
		r->scanned = 0;
		if (n > LINEPROTO_RELAY_MAX_LINE + 2) {
			log_error("relay %s: line of %zu bytes is over %u, closing connection", r->ip,
				  n, LINEPROTO_RELAY_MAX_LINE);
			relay_link_drop(r);
			break;
		}
		data = (char *)evbuffer_pullup(in, (ssize_t)n);
		if (!data) {
			log_error("relay %s: out of memory reading a reply, closing connection",
				  r->ip);
			relay_link_drop(r);
			break;
		}
		handle_line(r, data, n);
		if (r->links)
			evbuffer_drain(in, n);
	}
	relay_link_release(r);
}

