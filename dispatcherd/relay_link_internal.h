/* Private to dispatcherd/relay_link*.c: the dispatcher's relay links,
 * shared by the connection half (relay_link.c: listener, TLS, relay
 * lifetime, lookups) and the request half (relay_link_io.c: commands,
 * deadlines, the relay's reply stream). */
#ifndef MP_RELAY_LINK_INTERNAL_H
#define MP_RELAY_LINK_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "net.h"
#include "relay_link.h"

#define RELAY_HANDSHAKE_TIMEOUT 10.0
/* A relay that sends this many malformed lines on one connection is broken:
 * it is disconnected (it reconnects and is resynced). Replies for unknown
 * or timed-out seqs are not malformed and do not count. */
#define RELAY_MAX_BAD_LINES 100

TAILQ_HEAD(relay_list, relay);
TAILQ_HEAD(request_list, relay_request);

struct relay_request {
	TAILQ_ENTRY(relay_request) entry;
	struct relay *relay;
	struct event *deadline;
	uint64_t seq;
	double timeout_s;
	char command[16];     /* for log lines; cut if longer */
	relay_reply_fn reply; /* NULL once cancelled */
	void *ctx;
};

struct relay {
	TAILQ_ENTRY(relay) entry;
	struct relay_links *links;  /* NULL once closed */
	struct bufferevent *bev;
	struct event *timer;        /* handshake deadline, then recovery (§2.4) */
	char ip[INET6_ADDRSTRLEN];
	enum relay_state state;
	bool authenticated;         /* on links->relays, else on links->handshaking */
	bool recovering;            /* timer is the relay_recover_interval one */
	unsigned int refs;          /* callbacks on the stack */
	uint64_t next_seq;
	size_t scanned;             /* input bytes known to hold no LF */
	unsigned int bad_lines;
	struct request_list requests; /* in seq order */
};

struct relay_links {
	struct event_base *base;
	const struct config_dispatcher *config;
	SSL_CTX *tls;
	const struct passport *passport;
	struct relay_links_events events;
	struct evconnlistener *listener;
	struct event *resume;       /* re-enables the listener after an accept error */
	char listen_text[NET_ADDRPORT_STRLEN];
	struct relay_list relays;      /* authenticated, in connection order */
	struct relay_list handshaking;
	bool closing;
};


/* Closes the connection: every pending request fails with -ECONNRESET,
 * then the core hears `disconnected`. Safe to call more than once; the
 * struct lives on while refs holds it. */
void relay_link_drop(struct relay *r);
/* Drops a reference taken with r->refs++; frees a closed relay at 0. */
void relay_link_release(struct relay *r);
/* Fails (or, when cancelled, just frees) every request of r. */
void relay_link_fail_requests(struct relay *r);
/* The bufferevent read callback: replies, pings, expired messages. */
void relay_link_read_cb(struct bufferevent *bev, void *arg);

#endif
