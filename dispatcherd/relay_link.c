/* The dispatcher's end of the relay links (see relay_link.h), connection
 * half: the TLS listener, the handshake and certificate check, one struct
 * relay per authenticated connection (a newer one from the same address
 * replacing it), relay_recover_interval, lookups. Requests and the relay's
 * reply stream are relay_link_io.c.
 *
 * Lifetime: callbacks into the core (replies, events) may re-enter this
 * module, even relay_links_close(). Bufferevent callbacks are deferred to
 * the loop (linkio_bev_new), so nothing runs nested inside our own calls;
 * a relay closed while one of its callbacks is on the stack is only
 * unlinked and freed when that callback returns (refs). */
#include "relay_link_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>

#include "lineproto.h"
#include "linkio.h"
#include "log.h"
#include "net.h"
#include "tls.h"

/* A client must finish TCP + TLS within this; a stuck one holds a socket. */
#define RELAY_HANDSHAKE_TIMEOUT 10.0
/* After accept() fails (e.g. EMFILE), pause the listener this long rather
 * than spin on a socket that stays readable. */
#define RELAY_ACCEPT_PAUSE 1.0

/* --- relay lifetime ---------------------------------------------------- */

static void relay_free(struct relay *r)
{
	if (r->bev)
		bufferevent_free(r->bev);
	if (r->timer)
		event_free(r->timer);
	free(r);
}

void relay_link_release(struct relay *r)
{
	if (--r->refs == 0 && !r->links)
		relay_free(r);
}

void relay_link_drop(struct relay *r)
{
	struct relay_links *links = r->links;
	struct relay_links_events ev;

	if (!links)
		return;
	ev = links->events;
	TAILQ_REMOVE(r->authenticated ? &links->relays : &links->handshaking, r, entry);
	r->links = NULL;
	/* No more I/O or timers for this relay; the struct stays until the
	 * callbacks below and any on the stack are done. */
	bufferevent_free(r->bev);
	r->bev = NULL;
	event_del(r->timer);
	r->refs++;
	relay_link_fail_requests(r);
	/* Our own shutdown is not the relay going away: its calls are saved
	 * as they are, not marked as waiting for a lost relay. */
	if (r->authenticated && ev.disconnected && !links->closing)
		ev.disconnected(ev.ctx, r);
	relay_link_release(r);
}

/* --- connection set-up ------------------------------------------------- */

static void recover_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;

	(void)fd;
	(void)what;
	if (!r->recovering) {
		log_warn("relay %s: TLS handshake not finished within %.0f s, closing connection",
			 r->ip, RELAY_HANDSHAKE_TIMEOUT);
		relay_link_drop(r);
		return;
	}
	log_warn("relay %s: timed out and sent no ping within relay_recover_interval (%u s), "
		 "closing connection", r->ip, r->links->config->relay_recover_interval);
	r->refs++;
	relay_link_drop(r);
	relay_link_release(r);
}

/* The handshake is done: check the certificate, then take the place of an
 * older connection from the same address (§2.1). */
static void relay_authenticate(struct relay *r)
{
	struct relay_links *links = r->links;
	struct relay *old;
	char err[768], subject[256];

	if (tls_verify_peer(bufferevent_openssl_get_ssl(r->bev), links->passport, err,
			    sizeof(err)) < 0) {
		bool mismatch = strstr(err, "does not match passport") != NULL;

		log_error("relay %s: %s: %s, closing connection", r->ip,
			  mismatch ? "passport mismatch" : "certificate refused", err);
		relay_link_drop(r);
		return;
	}
	tls_subject_name(SSL_get0_peer_certificate(bufferevent_openssl_get_ssl(r->bev)), subject,
			 sizeof(subject));
	event_del(r->timer);
	r->refs++;
	old = relay_links_find(links, r->ip);
	if (old) {
		log_warn("relay %s: reconnected, closing old connection", r->ip);
		relay_link_drop(old);
	}
	if (r->links) {	/* the core may have closed everything meanwhile */
		TAILQ_REMOVE(&links->handshaking, r, entry);
		TAILQ_INSERT_TAIL(&links->relays, r, entry);
		r->authenticated = true;
		log_info("relay %s: connected (%s)", r->ip, subject);
		if (links->events.connected)
			links->events.connected(links->events.ctx, r);
	}
	if (r->links && evbuffer_get_length(bufferevent_get_input(r->bev)))
		relay_link_read_cb(r->bev, r);
	relay_link_release(r);
}

static void relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;
	char why[768];

	if (what & BEV_EVENT_CONNECTED) {
		relay_authenticate(r);
		return;
	}
	linkio_explain(bev, what, why, sizeof(why), NULL);
	if (r->authenticated)
		log_warn("relay %s: connection lost: %s", r->ip, why);
	else
		log_error("relay %s: TLS handshake failed: %s", r->ip, why);
	r->refs++;
	relay_link_drop(r);
	relay_link_release(r);
}

/* IPv4 peers of a dual-stack socket show up as ::ffff:a.b.c.d; the relay is
 * known by its plain IPv4 address. */
static void peer_text(const struct sockaddr *sa, char *buf, size_t len)
{
	struct net_addr a;

	if (net_addr_from_sockaddr(sa, &a, NULL) < 0) {
		snprintf(buf, len, "(unknown)");
		return;
	}
	if (a.family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a.v6)) {
		struct in_addr v4;

		memcpy(&v4, &a.v6.s6_addr[12], sizeof(v4));
		a.family = AF_INET;
		a.v4 = v4;
	}
	if (net_addr_format(&a, buf, len) < 0)
		snprintf(buf, len, "(unknown)");
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct relay_links *links = arg;
	struct timeval tv = linkio_timeval(RELAY_HANDSHAKE_TIMEOUT);
	struct relay *r;

	(void)l;
	(void)salen;
	r = calloc(1, sizeof(*r));
	if (!r) {
		log_error("relays: out of memory accepting a connection");
		close(fd);
		return;
	}
	peer_text(sa, r->ip, sizeof(r->ip));
	TAILQ_INIT(&r->requests);
	r->state = RELAY_ACTIVE;
	linkio_set_nodelay(fd);
	r->timer = evtimer_new(links->base, recover_cb, r);
	r->bev = r->timer ? linkio_bev_new(links->base, fd, links->tls, true) : NULL;
	if (!r->bev) {
		log_errno(-ENOMEM, "relay %s: cannot set up TLS", r->ip);
		if (!r->timer)
			close(fd);
		relay_free(r);
		return;
	}
	r->links = links;
	TAILQ_INSERT_TAIL(&links->handshaking, r, entry);
	bufferevent_setcb(r->bev, relay_link_read_cb, NULL, relay_event_cb, r);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
	event_add(r->timer, &tv);
	log_debug("relay %s: TCP connection accepted", r->ip);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_links *links = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(links->listener);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct relay_links *links = arg;
	struct timeval tv = linkio_timeval(RELAY_ACCEPT_PAUSE);
	int err = EVUTIL_SOCKET_ERROR();

	log_error("relays: accept on %s: %s; pausing %.0f s", links->listen_text,
		  strerror(err), RELAY_ACCEPT_PAUSE);
	evconnlistener_disable(l);
	event_add(links->resume, &tv);
}

/* --- the listener ------------------------------------------------------ */

/* "any" is one IPv6 socket that takes IPv4 too, or plain IPv4 where the host
 * has no IPv6. */
static int listen_socket(const struct net_endpoint *ep, struct relay_links *links)
{
	struct sockaddr_storage ss;
	struct net_addr addr = { .family = AF_INET6 };
	int fd, len, one = 1, zero = 0;

	if (!ep->any && net_addr_parse(ep->host, &addr) < 0)
		return log_errno(-EINVAL, "relays: listen address \"%s\" is not an IP address",
				 ep->host);
	fd = socket(addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && ep->any && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)) {
		addr = (struct net_addr){ .family = AF_INET };
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	len = net_addr_to_sockaddr(&addr, ep->port, &ss);
	net_addr_port_format(&addr, ep->port, links->listen_text, sizeof(links->listen_text));
	if (fd < 0)
		return log_errno(-errno, "relays: socket for %s", links->listen_text);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr.family == AF_INET6 && ep->any)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len) < 0) {
		int err = -errno;

		close(fd);
		return log_errno(err, "relays: cannot listen on %s", links->listen_text);
	}
	return fd;
}

int relay_links_open(struct relay_links **out, const struct relay_links_options *opts)
{
	struct relay_links *links;
	int fd;

	*out = NULL;
	if (!opts->base || !opts->config || !opts->tls)
		return -EINVAL;
	links = calloc(1, sizeof(*links));
	if (!links)
		return log_errno(-ENOMEM, "relays: cannot allocate");
	links->base = opts->base;
	links->config = opts->config;
	links->tls = opts->tls;
	links->passport = opts->passport;
	links->events = opts->events;
	TAILQ_INIT(&links->relays);
	TAILQ_INIT(&links->handshaking);
	fd = listen_socket(&opts->config->listen, links);
	if (fd < 0) {
		free(links);
		return fd;
	}
	errno = 0;
	links->resume = evtimer_new(links->base, resume_cb, links);
	links->listener = links->resume ?
		evconnlistener_new(links->base, accept_cb, links,
				   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, fd) : NULL;
	if (!links->listener) {
		int err = errno ? -errno : -ENOMEM;

		log_errno(err, "relays: cannot listen on %s", links->listen_text);
		close(fd);
		if (links->resume)
			event_free(links->resume);
		free(links);
		return err;
	}
	evconnlistener_set_error_cb(links->listener, accept_error_cb);
	log_info("listening for relays on %s", links->listen_text);
	*out = links;
	return 0;
}

void relay_links_close(struct relay_links *links)
{
	struct relay *r;

	if (!links || links->closing)
		return;
	links->closing = true;
	evconnlistener_free(links->listener);
	event_free(links->resume);
	/* relay_link_drop() calls into the core, which must not find a half-closed
	 * listener: it is gone first. */
	while ((r = TAILQ_FIRST(&links->handshaking)))
		relay_link_drop(r);
	while ((r = TAILQ_FIRST(&links->relays)))
		relay_link_drop(r);
	free(links);
}

void relay_links_set_tls(struct relay_links *links, SSL_CTX *tls)
{
	links->tls = tls;
}

/* --- lookups and state ------------------------------------------------- */

static void set_recovery(struct relay *r, bool on)
{
	struct timeval tv;

	if (!r->links || on == r->recovering)
		return;
	r->recovering = on;
	if (!on) {
		event_del(r->timer);
		return;
	}
	tv = linkio_timeval(r->links->config->relay_recover_interval);
	event_add(r->timer, &tv);
}

struct relay *relay_links_first(struct relay_links *links)
{
	return TAILQ_FIRST(&links->relays);
}

struct relay *relay_links_next(struct relay *relay)
{
	return relay->links ? TAILQ_NEXT(relay, entry) : NULL;
}

struct relay *relay_links_find(struct relay_links *links, const char *ip)
{
	struct relay *r;

	TAILQ_FOREACH(r, &links->relays, entry)
		if (!strcmp(r->ip, ip))
			return r;
	return NULL;
}

const char *relay_ip(const struct relay *relay)
{
	return relay->ip;
}

enum relay_state relay_get_state(const struct relay *relay)
{
	return relay->state;
}

void relay_set_state(struct relay *relay, enum relay_state state)
{
	relay->state = state;
	/* TIMEDOUT is the only state with a clock on it (§2.4). */
	set_recovery(relay, state == RELAY_TIMEDOUT);
}

