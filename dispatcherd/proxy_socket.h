/* The UNIX stream socket the SIP proxy's mediaproxy module talks to
 * (PROTOCOL.md §1): one connection per SIP worker, each strictly
 * sequential. Requests are framed by common/lineproto, checked by
 * proxy_request_parse() and handed to one handler (proxy_request.h:
 * proxy_handler_fn), which answers through its completion function, now or
 * later. Replies go out one line per request, CRLF, in request order.
 *
 * Faults, each logged with the connection, the fault and the call_id when
 * known; the other connections and calls never notice:
 *   - a malformed, unknown or invalid request: `error`, then the stream is
 *     resynchronised at the next empty line and the connection goes on;
 *   - a line over LINEPROTO_MAX_LINE: `error`, then the connection is
 *     closed once the reply is out (the stream is mid-line: nothing after
 *     it can be framed reliably; the module reconnects).
 * A connection handles one request at a time: the next one is parsed only
 * after the handler answered, which is what keeps replies in order when a
 * client pipelines. Input is read ahead only up to a bound and output is
 * not produced while a client does not read its replies.
 *
 * Socket file: created mode 0600 (umask during bind), then chmod'ed to the
 * configured mode (default 0660: the proxy must run as the dispatcher's user
 * or group; upstream used 0666). An existing file at the path is replaced
 * only if it is a socket nobody listens on; a live socket (another
 * dispatcher) or a non-socket file makes the open fail. On close the file is
 * removed if it is still ours (same inode).
 *
 * The process must ignore SIGPIPE (daemon_watch_signals() does): a reply to
 * a module that hung up is then a write error that closes the connection. */
#ifndef MP_PROXY_SOCKET_H
#define MP_PROXY_SOCKET_H

#include <sys/types.h>

#include <event2/event.h>

#include "proxy_request.h"

#define PROXY_SOCKET_MODE 0660
#define PROXY_MAX_CONNECTIONS 1024  /* SIP workers are dozens; more is a leak */
#define PROXY_MAX_OUTPUT (64u << 10) /* bytes of unread replies before we stop */

struct proxy_socket;

struct proxy_socket_options {
	struct event_base *base;
	const char *runtime_dir; /* relative paths are placed here (D7) */
	const char *path;        /* [Dispatcher] socket_path */
	mode_t mode;             /* 0: PROXY_SOCKET_MODE */
	proxy_handler_fn handler;
	void *ctx;
};

/* Creates the socket file and starts accepting. 0, or -errno after logging:
 * -EADDRINUSE (a dispatcher already listens there), -EEXIST (a non-socket
 * file is in the way), -ENAMETOOLONG, or what socket/bind/listen said. */
int proxy_socket_open(struct proxy_socket **out, const struct proxy_socket_options *opts);

/* Closes every connection and the listener and removes the socket file.
 * Requests still with the handler stay valid until it answers them (the
 * answer is then dropped), so the handler may be shut down before or
 * after this. */
void proxy_socket_close(struct proxy_socket *ps);

/* The socket file's path (resolved against the runtime dir). */
const char *proxy_socket_path(const struct proxy_socket *ps);

/* Open module connections, for status output. */
size_t proxy_socket_connections(const struct proxy_socket *ps);

#endif
