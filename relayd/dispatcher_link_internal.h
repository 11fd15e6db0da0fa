/* Private to relayd/dispatcher_link*.c: the state of the relay's links to
 * its dispatchers, shared by the connection half (dispatcher_link.c:
 * connect, TLS, keep-alive, DNS) and the command half
 * (dispatcher_link_input.c: framing, handler calls, replies). */
#ifndef MP_DISPATCHER_LINK_INTERNAL_H
#define MP_DISPATCHER_LINK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "dispatcher_link.h"

#define LINK_MAX_LINE (64 * 1024)      /* a header line from the dispatcher */
#define LINK_MAX_MESSAGE (1024 * 1024) /* a whole command */
#define LINK_CONNECT_TIMEOUT 10.0      /* TCP + TLS handshake */
#define LINK_STABLE_AFTER 5.0          /* a connection up this long was "established" (§2.1) */
#define LINK_MAX_UNANSWERED 3          /* pings without a pong before reconnecting (§2.3) */

enum link_state {
	LINK_IDLE,        /* waiting for the retry timer */
	LINK_CONNECTING,  /* TCP connect in progress */
	LINK_HANDSHAKE,   /* TLS handshake in progress */
	LINK_UP,
};

struct dispatcher_link {
	struct dispatcher_links *owner;
	const struct net_endpoint *ep;
	char name[NET_HOST_MAX + 16];       /* "host:port" as configured */
	bool literal;                       /* ep->host is an IP address */
	enum link_state state;
	unsigned int gen;                   /* bumped on every disconnect */
	int fd;                             /* during LINK_CONNECTING */
	struct event *connect_ev;           /* fd writable: connect finished */
	struct event *retry, *deadline, *keepalive, *dns;
	struct bufferevent *bev;            /* LINK_HANDSHAKE, LINK_UP */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char peer_text[NET_ADDRPORT_STRLEN];
	double up_since;
	bool got_input;                     /* anything received since LINK_UP */
	bool skipping;                      /* resyncing after a malformed command */
	unsigned int unanswered;            /* pings sent since the last pong */
	uint64_t *pending;                  /* seqs handed to the handler, unanswered */
	size_t n_pending, cap_pending;
};

struct dispatcher_links {
	struct event_base *base;
	const struct config_relay *config;
	struct net_addr relay_ip;
	char relay_ip_text[INET6_ADDRSTRLEN];
	SSL_CTX *tls;
	const struct passport *passport;
	dispatcher_command_fn command;
	void *ctx;
	unsigned int busy;                  /* handler calls on the stack */
	bool closing;                       /* closed during a handler call */
	size_t count;
	struct dispatcher_link links[];
};


/* Ends whatever connection there is and, with delay >= 0, retries after
 * delay seconds. Bumps link->gen. */
void dispatcher_link_down(struct dispatcher_link *link, double delay);
/* The retry delay after losing an established connection (§2.1). */
double dispatcher_link_lost_delay(const struct dispatcher_link *link);
/* The bufferevent read callback: pongs and commands. */
void dispatcher_link_read_cb(struct bufferevent *bev, void *arg);

#endif
