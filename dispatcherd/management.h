/* The dispatcher's management port (PROTOCOL.md §3, D12): a listener on
 * [Dispatcher] listen_management, mutual TLS with management_passport
 * unless management_use_tls = no, and the line commands summary, sessions,
 * version, accounting and quit/exit, answered in order per connection.
 * summary/sessions ask every connected relay (relay_link.h) at once with
 * the relay_timeout deadline. Runs in the dispatcher's libevent loop. */
#ifndef MP_MANAGEMENT_H
#define MP_MANAGEMENT_H

#include <stdint.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/ssl.h>

#include "config.h"
#include "passport.h"
#include "relay_link.h"

#define MANAGEMENT_MAX_CLIENTS 64        /* default cap on open connections */
#define MANAGEMENT_HANDSHAKE_TIMEOUT 10  /* s for a TLS client to finish its handshake */
#define MANAGEMENT_MAX_BACKLOG 65536     /* bytes of unsent replies before we stop
					  * taking the client's next command */
#define MANAGEMENT_MAX_INPUT 65536       /* bytes of commands queued unanswered
					  * before we drop the client */

struct management;

/* The `accounting` command (D12): appends to backends (a json array) one
 * object per configured backend, {"backend": "jsonl", "pending": 0,
 * "oldest_age_s": 0, "last_error": null}. Returns 0, or -errno to answer
 * `error`. Called in the loop; must not block. */
typedef int (*management_accounting_fn)(void *ctx, struct json_object *backends);

struct management_options {
	struct event_base *base;
	/* listen_management, management_use_tls, management_format,
	 * relay_timeout; read while open, so it must outlive the port. */
	const struct config_dispatcher *config;
	/* Server context (tls_context_new(..., true, ...)), required when
	 * config->management_use_tls; we take our own reference. */
	SSL_CTX *tls;
	/* management_passport, parsed; NULL = any certificate the CA accepts.
	 * Copied. */
	const struct passport *passport;
	/* The relays to ask; NULL = none connected (summary and sessions
	 * answer with no objects). Must outlive the port. */
	struct relay_links *relay_links;
	/* NULL = no accounting configured: `accounting` answers no objects. */
	management_accounting_fn accounting;
	void *accounting_ctx;
	/* Open connections allowed at once; 0 = MANAGEMENT_MAX_CLIENTS. Extra
	 * ones are closed at accept, with a log line. */
	unsigned int max_clients;
};

/* Binds and listens on config->listen_management ("any" = 0.0.0.0; a
 * port 0 picks a free port, see management_port()). Returns 0, -EINVAL for
 * TLS wanted without a context, or -errno after logging the address that
 * failed. */
int management_open(struct management **out, const struct management_options *opts);

/* Closes every client (cancelling the relay requests they wait for) and
 * the listener, and drops our TLS reference. NULL is a no-op. */
void management_close(struct management *mgmt);

/* New TLS connections use tls from now on (SIGHUP re-read, D17); open ones
 * keep theirs. We take a reference, so the caller may free its own at
 * once. Ignored when the port runs without TLS. */
void management_set_tls(struct management *mgmt, SSL_CTX *tls);

/* The port actually bound (host order). */
uint16_t management_port(const struct management *mgmt);

#endif
