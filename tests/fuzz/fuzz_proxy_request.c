/* libFuzzer target for dispatcherd/proxy_request.c: frames the input as the
 * proxy socket does (lineproto_parse, resync after errors), checks every
 * framed message with proxy_request_parse() and aborts if a result breaks
 * the contract: required fields present, the header block frames back to
 * the same headers, dialog_id form consistent. Every input line also goes
 * through the relay-reply and dialog-id checks. Seeds: corpus/proxy_request/. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lineproto.h"
#include "proxy_request.h"

#define check(cond) check_at((cond), __LINE__)

static void check_at(int cond, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_proxy_request.c:%d: invariant broken\n", line);
		abort();
	}
}

/* The block a relay receives must frame back to the request's headers. */
static void check_block(const struct proxy_request *req, const struct lineproto_msg *msg)
{
	size_t len = req->headers_len + 16, used;
	struct lineproto_msg back;
	char *wire = malloc(len);
	int n;

	check(wire != NULL);
	n = snprintf(wire, len, "update 0\r\n%s\r\n", req->headers);
	check(n > 0 && (size_t)n < len);
	check(lineproto_parse(wire, (size_t)n, NULL, &back, &used) == LINEPROTO_OK);
	check(used == (size_t)n && back.n_headers == msg->n_headers);
	free(wire);
}

static void check_request(const struct lineproto_msg *msg)
{
	struct proxy_request req;
	const char *fault = NULL;
	int rc = proxy_request_parse(msg, &req, &fault);

	if (rc) {
		check(fault && *fault && !req.storage && !req.headers);
		return;
	}
	check(!fault && req.call_id && *req.call_id && req.from_tag && *req.from_tag);
	check(strlen(req.headers) == req.headers_len);
	check(req.command != PROXY_CMD_UPDATE || req.type != PROXY_TYPE_NONE);
	check(!req.to_tag || *req.to_tag);
	if (req.dialog_id)
		check(req.dialog_form > PROXY_DIALOG_NONE &&
		      proxy_dialog_form_of(req.dialog_id, strlen(req.dialog_id)) == req.dialog_form);
	else
		check(req.dialog_form == PROXY_DIALOG_NONE);
	check(!strchr(req.call_id, '\r') && !strchr(req.from_tag, '\r'));
	check_block(&req, msg);
	proxy_request_free(&req);
	check(!req.storage);
}

static void frame_stream(const char *buf, size_t len, const struct lineproto_limits *lim)
{
	struct lineproto_msg msg;
	size_t used;
	int rc;

	while (len) {
		rc = lineproto_parse(buf, len, lim, &msg, &used);
		if (rc == LINEPROTO_OK)
			check_request(&msg);
		buf += used;
		len -= used;
		if (rc == LINEPROTO_OK)
			continue;
		if (rc == LINEPROTO_NEED_MORE || rc == LINEPROTO_ERR_LINE_TOO_LONG)
			return;
		if (lineproto_skip_message(buf, len, lim, &used) != LINEPROTO_OK)
			return;
		buf += used;
		len -= used;
	}
}

static void check_lines(const char *buf, size_t len)
{
	struct lineproto_str line;
	size_t used;

	while (lineproto_read_line(buf, len, 0, &line, &used) == LINEPROTO_OK) {
		bool ok = proxy_update_reply_valid(line.ptr, line.len);

		check(!ok || line.len <= PROXY_REPLY_MAX);
		check(!ok || !line.len || line.ptr[0] != ' ');
		proxy_dialog_form_of(line.ptr, line.len);
		buf += used;
		len -= used;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct lineproto_limits tiny = {
		.max_line = 40, .max_headers = 4, .max_message = 160,
	};
	const char *buf = (const char *)data;

	frame_stream(buf, size, NULL);
	frame_stream(buf, size, &tiny);
	check_lines(buf, size);
	return 0;
}
