/* Requests of the SIP proxy's mediaproxy module (PROTOCOL.md §1): checks a
 * framed `update` / `remove` and copies out what the dispatcher needs (call
 * identity, dialog_id in the form received, the preferred relay) plus the
 * header block it forwards verbatim to a relay (§2.2). Pure: no I/O, no
 * logging. Also the contract between the proxy socket and whoever answers
 * its requests (proxy_handler_fn). */
#ifndef MP_PROXY_REQUEST_H
#define MP_PROXY_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lineproto.h"

/* The longest reply line we send (without CRLF): the module reads replies
 * into an 8192-byte buffer that must also hold the CRLF and its NUL. */
#define PROXY_REPLY_MAX 8189

enum proxy_command {
	PROXY_CMD_UPDATE,
	PROXY_CMD_REMOVE,
};

enum proxy_type {
	PROXY_TYPE_NONE,    /* no `type` header (allowed on remove only) */
	PROXY_TYPE_REQUEST,
	PROXY_TYPE_REPLY,
};

/* PROTOCOL.md §1.3, §5.3, D13. */
enum proxy_dialog_form {
	PROXY_DIALOG_INVALID = -1,
	PROXY_DIALOG_NONE = 0,  /* absent (use_media_proxy() sends it empty) */
	PROXY_DIALOG_PAIR,      /* Kamailio "h_entry:h_id" */
	PROXY_DIALOG_DECIMAL,   /* OpenSIPS (h_entry << 32) | h_id as one decimal */
};

/* A checked request. Every string is NUL-terminated and lives in storage,
 * which the request owns: release it with proxy_request_free(). */
struct proxy_request {
	enum proxy_command command;
	enum proxy_type type;
	const char *call_id;     /* never NULL or empty */
	const char *from_tag;    /* never NULL or empty */
	const char *to_tag;      /* NULL when absent (provisional replies, offers) */
	const char *dialog_id;   /* NULL when absent; text exactly as received */
	enum proxy_dialog_form dialog_form;
	const char *media_relay; /* preferred relay IP (§2.5); NULL when absent */
	bool has_cseq;
	uint64_t cseq;
	unsigned int stream_count; /* entries of the `media` header; 0 when absent */
	/* The headers as received minus the empty-valued ones, in order, each
	 * "name: value\r\n"; what relay_request_send() takes. */
	const char *headers;
	size_t headers_len;
	double received;         /* CLOCK_MONOTONIC seconds; set by the reader */
	char *storage;
};

/* Checks msg (a LINEPROTO_OK result) and fills *out. Returns 0, -ENOMEM,
 * -EOPNOTSUPP for a command other than update/remove, or -EBADMSG for a
 * malformed request; on error *fault (if not NULL) names the problem for a
 * log line and *out is empty. Rules: no text after the command; call_id and
 * from_tag present; update needs `type: request|reply` (remove: optional,
 * checked if present); cseq all digits when present; dialog_id
 * "h_entry:h_id" (two 32-bit decimals, each may carry a '-' because
 * Kamailio prints them with %d) or one unsigned 64-bit decimal; no CR in
 * any header. */
int proxy_request_parse(const struct lineproto_msg *msg, struct proxy_request *out,
			const char **fault);

void proxy_request_free(struct proxy_request *req);

/* The form of a dialog_id text (len bytes, no NUL needed). */
enum proxy_dialog_form proxy_dialog_form_of(const char *s, size_t len);

/* True if a relay's `update` payload is something the module can use:
 * "None" (§1.6) or "<ip> <port> ..." with an IPv4/IPv6 literal and ports
 * 0..65535, single spaces, at most PROXY_REPLY_MAX bytes. */
bool proxy_update_reply_valid(const char *payload, size_t len);

/* --- the proxy socket's handler contract ----------------------------------
 * The proxy socket calls the handler once per checked request. The handler
 * answers by calling done(done_ctx, reply) exactly once, synchronously or
 * later from the event loop; reply is the line without CRLF ("removed",
 * "error", "198.51.100.1 40002"). req stays valid until done is called and
 * must not be touched afterwards. done is safe to call after the module's
 * connection is gone (or the proxy socket closed): the reply is dropped. */
typedef void (*proxy_done_fn)(void *done_ctx, const char *reply);
typedef void (*proxy_handler_fn)(void *ctx, const struct proxy_request *req,
				 proxy_done_fn done, void *done_ctx);

#endif
