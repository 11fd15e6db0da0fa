/* Ending the dialogs of expired calls through the SIP proxy's management
 * interface (PROTOCOL.md §2.8, §5.3, §5.4, D13), from the dispatcher's event
 * loop, never blocking it.
 *
 * A datagram UNIX socket bound to <runtime dir>/opensips.sock (D7) sends one
 * request per dialog to [OpenSIPS] socket_path and reads the reply, each
 * attempt with its own deadline (3 s by default): a proxy that never answers
 * costs a timeout and nothing else. Failures are logged and dropped, never
 * retried later.
 *
 * Dialect (mi_dialect.h): mi_protocol, or for auto the dialog id's form.
 * OpenSIPS JSON sends the reverse-hex DID first and, on 404, the decimal once
 * (OpenSIPS 3.0); auto with a decimal id falls back to the legacy text MI
 * when the reply is not JSON. Kamailio gets [h_entry, h_id].
 *
 * Concurrency: at most [OpenSIPS] max_connections requests in flight, told
 * apart by their JSON-RPC id. A request whose reply carries no id (text MI,
 * and auto-mode OpenSIPS JSON until the proxy has once answered in JSON) is
 * sent only when nothing else is in flight, and holds the others back. The
 * rest wait in a queue of MI_CLIENT_MAX_QUEUE.
 *
 * Log lines name the call id and the dialog id: info on success (with the
 * dialect and id form that worked), warning on failure (the proxy's error,
 * the timeout, or why sending failed). */
#ifndef MP_MI_CLIENT_H
#define MP_MI_CLIENT_H

#include <stdbool.h>

#include <event2/event.h>

#include "config.h"

#define MI_CLIENT_SOCKET "opensips.sock" /* in the runtime dir (D7) */
#define MI_CLIENT_TIMEOUT_S 3.0          /* per attempt (§5.4) */
#define MI_CLIENT_MAX_QUEUE 1024         /* requests queued or in flight */

struct mi_client;

/* Called once for every request mi_client_end_dialog() accepted, from the
 * event loop (never from inside mi_client_end_dialog()), after the log line.
 * detail: on success "<dialect> <form>" (e.g. "opensips-json reverse-hex",
 * "opensips-json decimal", "opensips-text decimal", "kamailio-jsonrpc pair");
 * on failure the proxy's "<code> <message>", "timeout", "send: <strerror>",
 * "reply: <why it could not be read>" or "cancelled". It must not call
 * mi_client_close(). */
typedef void (*mi_client_done_fn)(void *ctx, const char *call_id, bool ok,
				  const char *detail);

struct mi_client_options {
	struct event_base *base;
	const char *runtime_dir;                /* our socket; a relative socket_path */
	const struct config_opensips *config;   /* read at open, not kept */
	double timeout_s;                       /* per attempt; 0: MI_CLIENT_TIMEOUT_S */
	mi_client_done_fn done;                 /* optional (tests) */
	void *ctx;
};

/* Binds <runtime_dir>/opensips.sock (a stale socket file there is replaced;
 * any other file makes the open fail with -EEXIST) and is ready to send. The
 * proxy need not be running yet. Returns 0, or -errno after logging:
 * -EINVAL (bad options), -ENAMETOOLONG, or what socket/bind said. */
int mi_client_open(struct mi_client **out, const struct mi_client_options *opts);

/* Queues the end-dialog request for call_id's dialog dialog_id ("h_entry:h_id"
 * or a 64-bit decimal, as the proxy module sent it). Returns 0 (the outcome
 * is logged, and given to done), or after logging a warning: -EINVAL for an
 * unparsable dialog id, -ENOBUFS when MI_CLIENT_MAX_QUEUE requests are
 * already waiting, -ENOMEM. An empty or NULL dialog_id (use_media_proxy()
 * sends none) is -EINVAL too, logged at debug only. */
int mi_client_end_dialog(struct mi_client *c, const char *call_id, const char *dialog_id);

/* Cancels every request not yet answered (each logged, and given to done as
 * "cancelled"), closes the socket and removes its file. NULL is a no-op. */
void mi_client_close(struct mi_client *c);

#endif
