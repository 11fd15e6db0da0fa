/* The relay's end of the relay links (see dispatcher_link.h), connection
 * half: for every configured dispatcher, a connection made from relay_ip,
 * TLS with the passport check, reconnection, keep-alive pings and DNS
 * re-checks. The command stream is dispatcher_link_input.c.
 *
 * One struct dispatcher_link per configured dispatcher lives as long as the
 * dispatcher_links, so a handler may keep the pointer and answer later. A
 * reply is only sent for a seq that the current connection handed to the
 * handler and that is still unanswered; an answer that comes after a
 * reconnect gets -ENOTCONN (unless the new connection happens to have the
 * same seq waiting: seqs restart at 0, and the API carries no connection
 * id; our handlers answer at once, so that window stays closed). SRV lookups (`_sip._udp.<host>`, PROTOCOL.md §2.1) are not
 * done: a name is resolved with getaddrinfo() (blocking, on each connect
 * attempt and every dns_check_interval), which covers A/AAAA and
 * /etc/hosts. */
#include "dispatcher_link_internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "linkio.h"
#include "log.h"
#include "tls.h"

static void link_connect(struct dispatcher_link *link);

/* --- connection teardown and retry ------------------------------------- */

void dispatcher_link_down(struct dispatcher_link *link, double delay)
{
	struct timeval tv = linkio_timeval(delay);

	if (link->bev) {
		bufferevent_free(link->bev);
		link->bev = NULL;
	}
	if (link->connect_ev) {
		event_free(link->connect_ev);
		link->connect_ev = NULL;
	}
	if (link->fd >= 0) {
		close(link->fd);
		link->fd = -1;
	}
	event_del(link->deadline);
	event_del(link->keepalive);
	event_del(link->retry);
	link->state = LINK_IDLE;
	link->gen++;
	link->n_pending = 0;
	link->skipping = false;
	link->unanswered = 0;
	if (delay >= 0)
		event_add(link->retry, &tv);
}

static double reconnect_delay(const struct dispatcher_link *link)
{
	return link->owner->config->reconnect_delay;
}

/* After losing an established connection (up LINK_STABLE_AFTER s) the first
 * retry comes within a second; otherwise reconnect_delay (§2.1). */
double dispatcher_link_lost_delay(const struct dispatcher_link *link)
{
	double rd = reconnect_delay(link);

	if (linkio_now() - link->up_since >= LINK_STABLE_AFTER)
		return rd < 1 ? rd : 1;
	return rd;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	link_connect(arg);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dispatcher_link *link = arg;

	(void)fd;
	(void)what;
	log_error("dispatcher %s (%s): %s not finished within %.0f s, retrying in %.0f s",
		  link->name, link->peer_text,
		  link->state == LINK_CONNECTING ? "TCP connect" : "TLS handshake",
		  LINK_CONNECT_TIMEOUT, reconnect_delay(link));
	dispatcher_link_down(link, reconnect_delay(link));
}

/* --- name resolution --------------------------------------------------- */

/* The addresses of the dispatcher in the family relay_ip needs (any when
 * relay_ip is unset). Returns 0 or -1 after logging. */
static int resolve(struct dispatcher_link *link, struct addrinfo **res)
{
	const struct dispatcher_links *links = link->owner;
	struct addrinfo hints = {
		.ai_family = links->relay_ip.family,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV | (link->literal ? AI_NUMERICHOST : 0),
	};
	char port[8];
	int rc;

	snprintf(port, sizeof(port), "%u", link->ep->port);
	rc = getaddrinfo(link->ep->host, port, &hints, res);
	if (rc == 0)
		return 0;
	if (rc == EAI_FAMILY || rc == EAI_ADDRFAMILY || (rc == EAI_NONAME && link->literal))
		log_error("dispatcher %s: no %s address to connect to from relay_ip %s",
			  link->name, links->relay_ip.family == AF_INET ? "IPv4" : "IPv6",
			  links->relay_ip_text);
	else
		log_error("dispatcher %s: cannot resolve %s: %s", link->name, link->ep->host,
			  rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	return -1;
}

static void sockaddr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	struct net_addr a;
	uint16_t port;

	if (net_addr_from_sockaddr(sa, &a, &port) < 0 ||
	    net_addr_port_format(&a, port, buf, len) < 0)
		snprintf(buf, len, "?");
}

/* Every dns_check_interval: a name that now points elsewhere is followed. */
static void dns_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dispatcher_link *link = arg;
	struct addrinfo *res, *ai;
	char now[NET_ADDRPORT_STRLEN];

	(void)fd;
	(void)what;
	if (link->state == LINK_IDLE || resolve(link, &res) < 0)
		return;
	for (ai = res; ai; ai = ai->ai_next)
		if (ai->ai_addrlen == link->peerlen && !memcmp(ai->ai_addr, &link->peer, link->peerlen))
			break;
	if (!ai) {
		sockaddr_text(res->ai_addr, now, sizeof(now));
		log_info("dispatcher %s now resolves to %s (was %s), reconnecting", link->name, now,
			 link->peer_text);
		dispatcher_link_down(link, 0);
	}
	freeaddrinfo(res);
}

/* --- connecting -------------------------------------------------------- */

static void event_cb(struct bufferevent *bev, short what, void *arg);

static void start_tls(struct dispatcher_link *link)
{
	struct dispatcher_links *links = link->owner;

	event_free(link->connect_ev);
	link->connect_ev = NULL;
	link->bev = linkio_bev_new(links->base, link->fd, links->tls, false);
	link->fd = -1;
	if (!link->bev) {
		log_errno(-errno, "dispatcher %s: cannot set up TLS", link->name);
		dispatcher_link_down(link, reconnect_delay(link));
		return;
	}
	link->state = LINK_HANDSHAKE;
	bufferevent_setcb(link->bev, dispatcher_link_read_cb, NULL, event_cb, link);
	bufferevent_enable(link->bev, EV_READ | EV_WRITE);
}

static void connected_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dispatcher_link *link = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)what;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		log_error("dispatcher %s: cannot connect to %s from %s: %s; retrying in %.0f s",
			  link->name, link->peer_text, link->owner->relay_ip_text, strerror(err),
			  reconnect_delay(link));
		dispatcher_link_down(link, reconnect_delay(link));
		return;
	}
	start_tls(link);
}

/* A non-blocking socket bound to relay_ip (D8: the dispatcher knows us by
 * that source address), connecting to the first usable address. */
static int open_socket(struct dispatcher_link *link, const struct addrinfo *ai)
{
	struct dispatcher_links *links = link->owner;
	struct sockaddr_storage ss;
	int fd, len, one = 1;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (links->relay_ip.family != AF_UNSPEC) {
		/* The port is chosen at connect() time, per destination, so
		 * many relays on one address do not run out of ports. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		len = net_addr_to_sockaddr(&links->relay_ip, 0, &ss);
		if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len) < 0) {
			int err = -errno;

			close(fd);
			return err;
		}
	}
	linkio_set_nodelay(fd);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void link_connect(struct dispatcher_link *link)
{
	struct dispatcher_links *links = link->owner;
	struct timeval tv = linkio_timeval(LINK_CONNECT_TIMEOUT);
	struct addrinfo *res;
	int fd;

	dispatcher_link_down(link, -1);
	if (resolve(link, &res) < 0) {
		dispatcher_link_down(link, reconnect_delay(link));
		return;
	}
	memcpy(&link->peer, res->ai_addr, res->ai_addrlen);
	link->peerlen = res->ai_addrlen;
	sockaddr_text(res->ai_addr, link->peer_text, sizeof(link->peer_text));
	fd = open_socket(link, res);
	freeaddrinfo(res);
	if (fd < 0) {
		log_error("dispatcher %s: cannot connect to %s from %s: %s; retrying in %.0f s",
			  link->name, link->peer_text, links->relay_ip_text, strerror(-fd),
			  reconnect_delay(link));
		dispatcher_link_down(link, reconnect_delay(link));
		return;
	}
	link->fd = fd;
	link->connect_ev = event_new(links->base, fd, EV_WRITE, connected_cb, link);
	if (!link->connect_ev) {
		log_error("dispatcher %s: out of memory", link->name);
		dispatcher_link_down(link, reconnect_delay(link));
		return;
	}
	link->state = LINK_CONNECTING;
	event_add(link->connect_ev, NULL);
	event_add(link->deadline, &tv);
	log_debug("dispatcher %s: connecting to %s from %s", link->name, link->peer_text,
		  links->relay_ip_text);
}

/* --- TLS events ---------------------------------------------------------- */

static void link_up(struct dispatcher_link *link)
{
	struct dispatcher_links *links = link->owner;
	SSL *ssl = bufferevent_openssl_get_ssl(link->bev);
	struct timeval tv = linkio_timeval(links->config->keepalive_interval);
	char err[768];

	if (tls_verify_peer(ssl, links->passport, err, sizeof(err)) < 0) {
		log_error("dispatcher %s (%s): %s: %s; retrying in %.0f s", link->name,
			  link->peer_text,
			  strstr(err, "does not match passport") ? "passport mismatch" :
								  "certificate refused",
			  err, reconnect_delay(link));
		dispatcher_link_down(link, reconnect_delay(link));
		return;
	}
	event_del(link->deadline);
	link->state = LINK_UP;
	link->up_since = linkio_now();
	link->got_input = false;
	event_add(link->keepalive, &tv);
	log_info("connected to dispatcher %s (%s) from %s", link->name, link->peer_text,
		 links->relay_ip_text);
	if (evbuffer_get_length(bufferevent_get_input(link->bev)))
		dispatcher_link_read_cb(link->bev, link);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct dispatcher_link *link = arg;
	char why[768];
	bool cert = false;
	double delay;

	if (what & BEV_EVENT_CONNECTED) {
		link_up(link);
		return;
	}
	linkio_explain(bev, what, why, sizeof(why), &cert);
	if (link->state != LINK_UP) {
		log_error("dispatcher %s (%s): TLS handshake failed: %s; retrying in %.0f s",
			  link->name, link->peer_text, why, reconnect_delay(link));
		dispatcher_link_down(link, reconnect_delay(link));
		return;
	}
	if (cert || (!link->got_input && linkio_now() - link->up_since < LINK_STABLE_AFTER)) {
		/* With TLS 1.3 the dispatcher checks our certificate (and its
		 * passport) after our side of the handshake is done: its
		 * refusal shows up as an alert or a bare close right away. */
		delay = reconnect_delay(link);
		log_error("dispatcher %s (%s) closed the connection right after the handshake (%s): "
			  "it probably refused our certificate; retrying in %.0f s",
			  link->name, link->peer_text, why, delay);
	} else {
		delay = dispatcher_link_lost_delay(link);
		log_warn("lost connection to dispatcher %s (%s): %s; reconnecting in %.0f s",
			 link->name, link->peer_text, why, delay);
	}
	dispatcher_link_down(link, delay);
}

static void keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dispatcher_link *link = arg;

	(void)fd;
	(void)what;
	if (link->state != LINK_UP)
		return;
	if (link->unanswered >= LINK_MAX_UNANSWERED) {
		double delay = dispatcher_link_lost_delay(link);

		log_warn("dispatcher %s (%s): %u pings unanswered, reconnecting in %.0f s",
			 link->name, link->peer_text, link->unanswered, delay);
		dispatcher_link_down(link, delay);
		return;
	}
	bufferevent_write(link->bev, "ping\r\n", 6);
	link->unanswered++;
}

/* --- public ------------------------------------------------------------ */

const char *dispatcher_link_name(const struct dispatcher_link *link)
{
	return link->name;
}

struct dispatcher_link *dispatcher_links_find(struct dispatcher_links *links, const char *name)
{
	size_t i;

	for (i = 0; i < links->count; i++)
		if (links->links[i].state == LINK_UP && !strcmp(links->links[i].name, name))
			return &links->links[i];
	return NULL;
}

static void endpoint_name(const struct net_endpoint *ep, char *buf, size_t len)
{
	snprintf(buf, len, strchr(ep->host, ':') ? "[%s]:%u" : "%s:%u", ep->host, ep->port);
}

static int link_init(struct dispatcher_links *links, struct dispatcher_link *link,
		     const struct net_endpoint *ep)
{
	struct event_base *base = links->base;
	struct net_addr a;

	link->owner = links;
	link->ep = ep;
	link->fd = -1;
	link->literal = net_addr_parse(ep->host, &a) == 0;
	endpoint_name(ep, link->name, sizeof(link->name));
	link->retry = evtimer_new(base, retry_cb, link);
	link->deadline = evtimer_new(base, deadline_cb, link);
	link->keepalive = event_new(base, -1, EV_PERSIST, keepalive_cb, link);
	if (!link->literal)
		link->dns = event_new(base, -1, EV_PERSIST, dns_cb, link);
	if (link->retry && link->deadline && link->keepalive && (link->literal || link->dns))
		return 0;
	/* link_free() skips a link without an owner */
	link->owner = NULL;
	if (link->retry)
		event_free(link->retry);
	if (link->deadline)
		event_free(link->deadline);
	if (link->keepalive)
		event_free(link->keepalive);
	if (link->dns)
		event_free(link->dns);
	return -ENOMEM;
}

int dispatcher_links_open(struct dispatcher_links **out,
			  const struct dispatcher_links_options *opts)
{
	const struct config_endpoint_list *list = &opts->config->dispatchers;
	struct dispatcher_links *links;
	size_t i;

	*out = NULL;
	if (!opts->base || !opts->tls || !opts->command)
		return -EINVAL;
	links = calloc(1, sizeof(*links) + list->count * sizeof(links->links[0]));
	if (!links)
		return log_errno(-ENOMEM, "dispatcher links");
	links->base = opts->base;
	links->config = opts->config;
	links->relay_ip = opts->relay_ip;
	links->tls = opts->tls;
	links->passport = opts->passport;
	links->command = opts->command;
	links->ctx = opts->ctx;
	links->count = list->count;
	if (links->relay_ip.family == AF_UNSPEC ||
	    net_addr_format(&links->relay_ip, links->relay_ip_text,
			    sizeof(links->relay_ip_text)) < 0)
		snprintf(links->relay_ip_text, sizeof(links->relay_ip_text), "any address");
	for (i = 0; i < list->count; i++) {
		if (link_init(links, &links->links[i], &list->items[i]) < 0) {
			links->count = i + 1;
			dispatcher_links_close(links);
			return log_errno(-ENOMEM, "dispatcher links");
		}
	}
	if (!list->count)
		log_error("no dispatchers configured ([Relay] dispatchers): nobody will use this relay");
	for (i = 0; i < links->count; i++) {
		struct dispatcher_link *link = &links->links[i];
		struct timeval tv = linkio_timeval(opts->config->dns_check_interval);

		if (link->dns)
			event_add(link->dns, &tv);
		link_connect(link);
	}
	*out = links;
	return 0;
}

static void link_free(struct dispatcher_link *link)
{
	if (!link->owner)
		return;
	dispatcher_link_down(link, -1);
	event_free(link->retry);
	event_free(link->deadline);
	event_free(link->keepalive);
	if (link->dns)
		event_free(link->dns);
	free(link->pending);
}

void dispatcher_links_close(struct dispatcher_links *links)
{
	size_t i;

	if (!links)
		return;
	if (links->busy) {
		/* Called from the handler: the caller's input buffer must
		 * survive until it returns; dispatcher_link_read_cb() finishes this. */
		links->closing = true;
		for (i = 0; i < links->count; i++)
			if (links->links[i].owner)
				dispatcher_link_down(&links->links[i], -1);
		return;
	}
	for (i = 0; i < links->count; i++)
		link_free(&links->links[i]);
	free(links);
}

void dispatcher_links_set_tls(struct dispatcher_links *links, SSL_CTX *tls)
{
	links->tls = tls;
}

