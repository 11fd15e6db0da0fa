/* The relay's side of the relay links (PROTOCOL.md §2): one mutual-TLS
 * connection to every dispatcher in [Relay] dispatchers, made from relay_ip
 * (D8), names re-resolved every dns_check_interval, reconnecting after
 * reconnect_delay, `ping` every keepalive_interval and a reconnect after 3
 * unanswered. Commands from a dispatcher ("<command> <seq>" + headers +
 * empty line) go to one handler; replies are "<seq> <payload>" lines.
 *
 * Everything runs in the relay's libevent loop. */
#ifndef MP_DISPATCHER_LINK_H
#define MP_DISPATCHER_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "lineproto.h"
#include "net.h"
#include "passport.h"

struct dispatcher_links;  /* every configured dispatcher */
struct dispatcher_link;   /* one dispatcher connection */

/* A command arrived. msg (command, args = seq text, headers) points into
 * the link's buffer and is valid only during the call; the handler answers
 * with dispatcher_link_reply(), now or later. */
typedef void (*dispatcher_command_fn)(void *ctx, struct dispatcher_link *link, uint64_t seq,
				      const struct lineproto_msg *msg);

struct dispatcher_links_options {
	struct event_base *base;
	const struct config_relay *config;  /* dispatchers, reconnect_delay, keepalive_interval,
					     * dns_check_interval */
	struct net_addr relay_ip;           /* connections are made from this address */
	SSL_CTX *tls;                       /* client context (tls_context_new) */
	const struct passport *passport;    /* [Relay] passport; NULL = none */
	dispatcher_command_fn command;
	void *ctx;
};

/* Starts connecting to every dispatcher. 0 or -errno (after logging). */
int dispatcher_links_open(struct dispatcher_links **out,
			  const struct dispatcher_links_options *opts);
void dispatcher_links_close(struct dispatcher_links *links);
void dispatcher_links_set_tls(struct dispatcher_links *links, SSL_CTX *tls);

/* A stable name for the dispatcher behind a link ("host:port" as
 * configured): sessions remember which dispatcher owns them (§2.1). */
const char *dispatcher_link_name(const struct dispatcher_link *link);
/* The link to the dispatcher of that name, if connected now; else NULL. */
struct dispatcher_link *dispatcher_links_find(struct dispatcher_links *links,
					      const char *name);

/* Sends "<seq> <payload>\r\n". 0, or -ENOTCONN if the link went away. */
int dispatcher_link_reply(struct dispatcher_link *link, uint64_t seq, const char *payload);
/* Sends "expired <json>\r\n" (§2.8), unsolicited. 0 or -ENOTCONN. */
int dispatcher_link_send_expired(struct dispatcher_link *link, const char *json);

#endif
