/* The command half of the relay's dispatcher links (see
 * dispatcher_link.h): the byte stream from a dispatcher, `pong` lines and
 * commands (`<command> <seq>` + headers + empty line) framed with
 * lineproto, each command handed to the handler; replies and `expired`
 * messages going back. A malformed command is answered `<seq> error` when
 * its seq could be read, and the stream resyncs at the next empty line. */
#include "dispatcher_link_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "linkio.h"
#include "log.h"

static const struct lineproto_limits link_limits = {
	.max_line = LINK_MAX_LINE,
	.max_message = LINK_MAX_MESSAGE,
};

static int pending_add(struct dispatcher_link *link, uint64_t seq)
{
	if (link->n_pending == link->cap_pending) {
		size_t cap = link->cap_pending ? 2 * link->cap_pending : 8;
		uint64_t *p = realloc(link->pending, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		link->pending = p;
		link->cap_pending = cap;
	}
	link->pending[link->n_pending++] = seq;
	return 0;
}

static bool pending_take(struct dispatcher_link *link, uint64_t seq)
{
	size_t i;

	for (i = 0; i < link->n_pending; i++) {
		if (link->pending[i] == seq) {
			link->pending[i] = link->pending[--link->n_pending];
			return true;
		}
	}
	return false;
}

static void write_reply(struct dispatcher_link *link, uint64_t seq, const char *payload)
{
	evbuffer_add_printf(bufferevent_get_output(link->bev), "%" PRIu64 " %s\r\n", seq, payload);
}

/* A command that does not parse: answer `<seq> error` when its command line
 * at least named a seq, so the dispatcher fails over at once. */
static void bad_command(struct dispatcher_link *link, int rc, const struct lineproto_msg *msg)
{
	char ex[LINKIO_EXCERPT_BUF];
	uint64_t seq;
	bool has_seq = msg->command.len && lineproto_str_to_u64(msg->args, &seq) == 0;

	linkio_excerpt(msg->bad_line.ptr, msg->bad_line.len, ex, sizeof(ex));
	log_warn("dispatcher %s: malformed command (%s)%s: %s", link->name, lineproto_strerror(rc),
		 has_seq ? ", answering error" : "", ex);
	if (has_seq)
		write_reply(link, seq, "error");
}

/* Hands one parsed command to the handler. False when the connection (or
 * everything) went away meanwhile: the input buffer is gone then. */
static bool deliver(struct dispatcher_link *link, const struct lineproto_msg *msg)
{
	struct dispatcher_links *links = link->owner;
	unsigned int gen = link->gen;
	char ex[LINKIO_EXCERPT_BUF];
	uint64_t seq;

	if (lineproto_str_to_u64(msg->args, &seq) < 0) {
		linkio_excerpt(msg->args.ptr, msg->args.len, ex, sizeof(ex));
		log_warn("dispatcher %s: command %.*s without a valid seq (%s), ignored", link->name,
			 (int)(msg->command.len < 32 ? msg->command.len : 32), msg->command.ptr, ex);
		return true;
	}
	if (pending_add(link, seq) < 0) {
		log_error("dispatcher %s: out of memory, answering %" PRIu64 " error", link->name,
			  seq);
		write_reply(link, seq, "error");
		return true;
	}
	links->command(links->ctx, link, seq, msg);
	return !links->closing && link->gen == gen;
}

/* Skips the rest of a malformed command. True once back in sync. */
static bool skip_bad(struct dispatcher_link *link, struct evbuffer *in, const char *data,
		     size_t n)
{
	size_t used;
	int rc = lineproto_skip_message(data, n, &link_limits, &used);

	evbuffer_drain(in, used);
	if (rc == LINEPROTO_ERR_LINE_TOO_LONG) {
		log_warn("dispatcher %s: line over %u bytes, reconnecting", link->name,
			 LINK_MAX_LINE);
		dispatcher_link_down(link, dispatcher_link_lost_delay(link));
		return false;
	}
	if (rc == LINEPROTO_OK)
		link->skipping = false;
	return rc == LINEPROTO_OK;
}

/* Handles what the buffer starts with: a `pong`, a command or not enough.
 * False when the loop must stop. */
static bool handle_input(struct dispatcher_link *link, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in), n, used;
	struct lineproto_str line;
	struct lineproto_msg msg;
	const char *data;
	int rc;

	/* lineproto_parse() reports an oversized message from its first
	 * max_message bytes, so that much contiguous input is enough. */
	n = len < LINK_MAX_MESSAGE ? len : LINK_MAX_MESSAGE;
	data = (const char *)evbuffer_pullup(in, (ssize_t)n);
	if (!data) {
		log_error("dispatcher %s: out of memory reading a command, reconnecting", link->name);
		dispatcher_link_down(link, dispatcher_link_lost_delay(link));
		return false;
	}
	if (link->skipping)
		return skip_bad(link, in, data, n);
	if (lineproto_read_line(data, n, LINK_MAX_LINE, &line, &used) == LINEPROTO_OK &&
	    lineproto_str_eq(line, "pong")) {
		link->unanswered = 0;
		evbuffer_drain(in, used);
		return true;
	}
	rc = lineproto_parse(data, n, &link_limits, &msg, &used);
	if (rc == LINEPROTO_NEED_MORE) {
		evbuffer_drain(in, used);
		return used > 0;
	}
	if (rc == LINEPROTO_OK) {
		if (!deliver(link, &msg))
			return false;
		evbuffer_drain(in, used);
		return true;
	}
	bad_command(link, rc, &msg);
	if (rc == LINEPROTO_ERR_LINE_TOO_LONG) {
		/* Mid-line: no way to find the next command. */
		dispatcher_link_down(link, dispatcher_link_lost_delay(link));
		return false;
	}
	evbuffer_drain(in, used);
	link->skipping = true;
	return true;
}

void dispatcher_link_read_cb(struct bufferevent *bev, void *arg)
{
	struct dispatcher_link *link = arg;
	struct dispatcher_links *links = link->owner;
	struct evbuffer *in = bufferevent_get_input(bev);
	unsigned int gen = link->gen;

	if (link->state != LINK_UP)
		return;	/* read again once the peer is checked */
	link->got_input = true;
	links->busy++;
	while (!links->closing && link->gen == gen && evbuffer_get_length(in))
		if (!handle_input(link, in))
			break;
	if (--links->busy == 0 && links->closing)
		dispatcher_links_close(links);
}


static bool breaks_line(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

int dispatcher_link_reply(struct dispatcher_link *link, uint64_t seq, const char *payload)
{
	if (link->state != LINK_UP || link->owner->closing)
		return -ENOTCONN;
	if (breaks_line(payload))
		return -EINVAL;
	/* A seq this connection did not hand out (or already answered) may
	 * belong to an earlier connection: never send it on this one. */
	if (!pending_take(link, seq))
		return -ENOTCONN;
	write_reply(link, seq, payload);
	return 0;
}

int dispatcher_link_send_expired(struct dispatcher_link *link, const char *json)
{
	if (link->state != LINK_UP || link->owner->closing)
		return -ENOTCONN;
	if (breaks_line(json))
		return -EINVAL;
	evbuffer_add_printf(bufferevent_get_output(link->bev), "expired %s\r\n", json);
	return 0;
}

