/* Glue shared by both ends of the dispatcher <-> relay link
 * (dispatcherd/relay_link.c, relayd/dispatcher_link.c): a libevent
 * bufferevent_openssl over a connected socket, the explanation of a failed
 * handshake or a broken link for the log, and printable excerpts of bad
 * input. No logging here: callers log with the peer they are talking to. */
#ifndef MP_LINKIO_H
#define MP_LINKIO_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "passport.h"

/* Bytes of a bad line quoted in a log line. */
#define LINKIO_EXCERPT 64
/* Buffer size for linkio_excerpt(): every byte may become "\xNN", plus
 * quotes, "..." and the NUL. */
#define LINKIO_EXCERPT_BUF (LINKIO_EXCERPT * 4 + 8)

/* Wraps the connected, non-blocking socket fd in a TLS bufferevent that
 * starts the handshake (server: accepting, else connecting). Callbacks are
 * deferred to the event loop, so none of them runs inside a call we make
 * on the bufferevent; an EOF without close_notify is reported as
 * BEV_EVENT_EOF. Freeing the bufferevent frees the SSL and closes fd.
 * Returns NULL with errno set; fd is then closed unless libevent failed
 * after taking it (an allocation failure; nothing else can fail there). */
struct bufferevent *linkio_bev_new(struct event_base *base, int fd, SSL_CTX *tls, bool server);

/* Why a TLS link failed, for the log: called from the event callback with
 * its `what` flags. Looks at, in order: the peer certificate our side
 * rejected (with the verification error), the OpenSSL errors queued on the bufferevent
 * (e.g. the peer's "tlsv1 alert unknown ca"), the socket error, and EOF.
 * *cert_problem (may be NULL) is set when the failure is about a
 * certificate on either side, which callers treat as "retry slowly". */
void linkio_explain(struct bufferevent *bev, short what, char *buf, size_t len,
		    bool *cert_problem);

/* Quotes up to LINKIO_EXCERPT bytes of p for a log line: printable ASCII
 * as is, anything else as \xNN, "..." when cut. out needs
 * LINKIO_EXCERPT_BUF bytes. */
void linkio_excerpt(const char *p, size_t len, char *out, size_t outlen);

/* Disables Nagle: commands and replies are small and latency bound
 * (a relay attempt has 150 ms, D2). Errors are ignored. */
void linkio_set_nodelay(int fd);

/* Monotonic clock in seconds. */
double linkio_now(void);

/* Seconds as a struct timeval for event_add(). */
struct timeval linkio_timeval(double seconds);

#endif
