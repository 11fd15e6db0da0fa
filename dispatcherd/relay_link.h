/* The dispatcher's side of the relay links (PROTOCOL.md §2): a mutual-TLS
 * listener on [Dispatcher] listen that relays connect to, one connection per
 * relay (identified by its TCP source address; a new connection from the
 * same address replaces the old one), seq-numbered commands with a deadline
 * each, `ping` answered with `pong`, unsolicited `expired` messages.
 *
 * Everything runs in the dispatcher's libevent loop; callbacks are called
 * from it and may call back into this module. */
#ifndef MP_RELAY_LINK_H
#define MP_RELAY_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "passport.h"

struct relay_links;       /* the listener and every connected relay */
struct relay;             /* one connected relay */
struct relay_request;     /* one command in flight */

enum relay_state {
	RELAY_ACTIVE,     /* takes new sessions */
	RELAY_TIMEDOUT,   /* missed a deadline: no new sessions until it pings (§2.4) */
	RELAY_HALTING,    /* answered `halting`: no new sessions (§2.6) */
};

/* What the dispatcher core is told. All may be NULL. */
struct relay_links_events {
	/* A relay connected and passed TLS + passport (the core sends
	 * `sessions` to resync, §2.7). */
	void (*connected)(void *ctx, struct relay *relay);
	/* A relay's connection is gone (pending requests have already failed
	 * with -ECONNRESET). Not called for relay_links_close(): our own
	 * shutdown is not a relay going away. */
	void (*disconnected)(void *ctx, struct relay *relay);
	/* `expired <json>` arrived (§2.8); json is NUL-terminated, valid only
	 * during the call. */
	void (*expired)(void *ctx, struct relay *relay, const char *json, size_t len);
	void *ctx;
};

struct relay_links_options {
	struct event_base *base;
	const struct config_dispatcher *config; /* listen, relay_timeout, relay_recover_interval */
	SSL_CTX *tls;                           /* server context (tls_context_new) */
	const struct passport *passport;        /* [Dispatcher] passport; NULL = none */
	struct relay_links_events events;
};

/* Binds and listens. 0, or -errno after logging the address that failed. */
int relay_links_open(struct relay_links **out, const struct relay_links_options *opts);
/* Closes every relay (failing their requests) and the listener. */
void relay_links_close(struct relay_links *links);
/* Swaps in a new TLS context for new connections (SIGHUP re-read). */
void relay_links_set_tls(struct relay_links *links, SSL_CTX *tls);

/* Connected relays, in connection order; NULL-terminated walk. */
struct relay *relay_links_first(struct relay_links *links);
struct relay *relay_links_next(struct relay *relay);
/* A connected relay by its address text ("198.51.100.1" / "2001:db8::1"). */
struct relay *relay_links_find(struct relay_links *links, const char *ip);

const char *relay_ip(const struct relay *relay);   /* address text */
enum relay_state relay_get_state(const struct relay *relay);
void relay_set_state(struct relay *relay, enum relay_state state);

/* The reply to one command: status 0 with the payload after "<seq> "
 * (NUL-terminated, valid only during the call), -ETIMEDOUT when the
 * deadline passed (the relay is then marked RELAY_TIMEDOUT), -ECONNRESET
 * when the connection went away first. */
typedef void (*relay_reply_fn)(void *ctx, int status, const char *payload, size_t len);

/* Sends "<command> <seq>\r\n" + header_block + "\r\n" (header_block is zero
 * or more "name: value\r\n" lines, sent verbatim) and arms a deadline of
 * timeout_s seconds. reply is called exactly once, unless the request is
 * cancelled first. Returns the request, or NULL with errno set. */
struct relay_request *relay_request_send(struct relay *relay, const char *command,
					 const char *header_block, size_t len,
					 double timeout_s, relay_reply_fn reply, void *ctx);
/* The caller no longer wants the answer (e.g. the proxy connection that
 * asked went away): reply will not be called; a late answer is ignored. */
void relay_request_cancel(struct relay_request *req);

#endif
