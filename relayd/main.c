/* media-relay: allocates ports, latches the phones' addresses and forwards
 * their RTP/RTCP, under the control of one or more media-dispatchers.
 *
 * What this process owns, in start-up order:
 *   config.ini ([Relay], [TLS])           common/config
 *   TLS client context (relay.crt)        common/tls
 *   runtime dir, pid file, detaching      common/daemon
 *   signals (PROTOCOL.md D17)             here
 *   ports, forwarding backend, streams    dataplane.c
 *   sessions: the dispatcher commands     session.c
 *   the session table on disk (D6)        session_store.c
 *   links to every dispatcher (§2)        dispatcher_link.c */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "dataplane.h"
#include "dispatcher_link.h"
#include "log.h"
#include "net.h"
#include "passport.h"
#include "session.h"
#include "session_store.h"
#include "tls.h"

enum relay_state {
	RELAY_RUNNING,
	RELAY_HALTING,       /* SIGHUP: no new sessions, exit after the last */
	RELAY_STOPPING,      /* SIGINT/SIGTERM: end every session now */
	RELAY_RESTARTING,    /* SIGUSR2: exit, leaving media forwarding */
};

/* After INT/TERM, how long the loop keeps running so that the `expired`
 * reports reach the dispatchers before the process exits. */
#define RELAY_FLUSH_MS 300

static const int watched_signals[] = { SIGHUP, SIGINT, SIGTERM, SIGUSR2 };
#define SIGNAL_COUNT (sizeof(watched_signals) / sizeof(watched_signals[0]))

struct relay {
	struct daemon_options opts;
	struct mp_config config;
	SSL_CTX *tls;
	struct passport passport;
	struct dataplane dataplane;
	struct session_table *sessions;
	struct session_store *store;
	struct dispatcher_links *links;
	struct event_base *base;
	struct event *signal_events[SIGNAL_COUNT];
	enum relay_state state;
};

static unsigned int relay_session_count(const struct relay *relay)
{
	return relay->sessions ? session_table_count(relay->sessions) : 0;
}

/* A halting relay leaves once its last session is gone (§2.6). */
static void relay_exit_if_done(struct relay *relay)
{
	struct timeval flush = { 0, RELAY_FLUSH_MS * 1000 };

	/* Not at once: the answer to the last remove (or the last expired
	 * report) is still on its way to the dispatcher. */
	if (relay->state == RELAY_HALTING && relay_session_count(relay) == 0) {
		log_info("halting: the last session has ended; exiting");
		event_base_loopexit(relay->base, &flush);
	}
}

static void relay_on_command(void *ctx, struct dispatcher_link *link, uint64_t seq,
			     const struct lineproto_msg *msg)
{
	struct relay *relay = ctx;
	char *reply = NULL;

	session_table_command(relay->sessions, dispatcher_link_name(link), msg, &reply);
	if (dispatcher_link_reply(link, seq, reply ? reply : "error"))
		log_warn("dispatcher %s went away before the answer to command %llu",
			 dispatcher_link_name(link), (unsigned long long)seq);
	free(reply);
	relay_exit_if_done(relay);
}

static void relay_on_expired(void *ctx, const char *dispatcher, const char *json)
{
	struct relay *relay = ctx;
	struct dispatcher_link *link = relay->links ? dispatcher_links_find(relay->links, dispatcher)
						    : NULL;

	/* §2.8: the report goes to the dispatcher that owns the session and
	 * is lost if that one is not connected now. */
	if (!link || dispatcher_link_send_expired(link, json))
		log_warn("dispatcher %s is not connected; an expired session report is lost",
			 dispatcher);
	relay_exit_if_done(relay);
}

static void relay_on_signal(evutil_socket_t signo, short what, void *arg)
{
	struct relay *relay = arg;
	struct timeval flush = { 0, RELAY_FLUSH_MS * 1000 };

	(void)what;
	switch (signo) {
	case SIGHUP:
		log_info("SIGHUP: halting, accepting no new sessions; exiting after the last of %u ends",
			 relay_session_count(relay));
		relay->state = RELAY_HALTING;
		if (relay->sessions)
			session_table_set_halting(relay->sessions);
		relay_exit_if_done(relay);
		break;
	case SIGINT:
	case SIGTERM:
		log_info("SIG%s: ending all %u sessions now and exiting", sigabbrev_np(signo),
			 relay_session_count(relay));
		relay->state = RELAY_STOPPING;
		if (relay->sessions)
			session_table_expire_all(relay->sessions);
		event_base_loopexit(relay->base, &flush);
		break;
	case SIGUSR2:
		log_info("SIGUSR2: restarting, leaving media forwarding in place");
		relay->state = RELAY_RESTARTING;
		event_base_loopbreak(relay->base);
		break;
	}
}

static int relay_load_tls(struct relay *relay)
{
	char err[512];
	struct tls_files files;

	if (tls_files_from_dir(&files, relay->config.tls.certs_path, "relay")) {
		log_error("TLS: certificate paths under %s are too long", relay->config.tls.certs_path);
		return -1;
	}
	relay->tls = tls_context_new(&files, false, err, sizeof(err));
	if (!relay->tls) {
		log_error("TLS: %s", err);
		return -1;
	}
	/* config.c has already checked the passport with the same parser. */
	if (passport_parse(relay->config.relay.passport, &relay->passport, err, sizeof(err))) {
		log_error("passport: %s", err);
		return -1;
	}
	return 0;
}

/* D6: the store is made first (the table reports its changes to it), and
 * loaded after the data plane has adopted what a previous relay left and
 * before any dispatcher can ask for `sessions`. */
static int relay_open_sessions(struct relay *relay)
{
	const struct config_relay *cfg = &relay->config.relay;
	char path[PATH_MAX];
	int err;

	err = session_store_path(relay->opts.runtime_dir, &relay->dataplane.relay_ip, path,
				 sizeof(path));
	if (!err) {
		struct session_store_options stopts = {
			.base = relay->base, .path = path, .stream_timeout = cfg->stream_timeout,
		};
		err = session_store_new(&relay->store, &stopts);
	}
	if (err) {
		log_errno(err, "cannot set up the session table file under %s",
			  relay->opts.runtime_dir);
		return -1;
	}
	struct session_table_options sopts = {
		.streams = relay->dataplane.streams, .relay_ip = relay->dataplane.relay_ip,
		.advertised_ip = &cfg->advertised_ip, .bps_relayed = &relay->dataplane.bps_relayed,
		.expired = relay_on_expired, .ctx = relay,
		.changed = session_store_changed, .changed_ctx = relay->store,
	};
	err = session_table_new(&relay->sessions, &sopts);
	if (err) {
		log_errno(err, "cannot set up the session table");
		return -1;
	}
	return session_store_load(relay->store, relay->sessions, relay->dataplane.backend,
				  relay->dataplane.fw) ? -1 : 0;
}

static int relay_open_services(struct relay *relay)
{
	const struct config_relay *cfg = &relay->config.relay;

	if (dataplane_open(&relay->dataplane, relay->base, cfg))
		return -1;
	if (relay_open_sessions(relay))
		return -1;
	if (cfg->dispatchers.count == 0) {
		log_error("no dispatchers configured ([Relay] dispatchers); this relay will serve nobody");
		return 0;
	}
	struct dispatcher_links_options lopts = {
		.base = relay->base, .config = cfg, .relay_ip = relay->dataplane.relay_ip,
		.tls = relay->tls, .passport = &relay->passport,
		.command = relay_on_command, .ctx = relay,
	};
	return dispatcher_links_open(&relay->links, &lopts) ? -1 : 0;
}

static void relay_log_started(const struct relay *relay)
{
	char relay_ip[INET6_ADDRSTRLEN];

	net_addr_format(&relay->dataplane.relay_ip, relay_ip, sizeof(relay_ip));
	log_info("media-relay %s started: relay_ip %s, ports %u-%u, forwarding through %s, "
		 "%zu dispatcher(s)", MP_VERSION, relay_ip, relay->config.relay.port_range.start,
		 relay->config.relay.port_range.end - 1, relay->dataplane.backend->name,
		 relay->config.relay.dispatchers.count);
}

/* INT/TERM and HUP end in a clean exit; USR2 leaves media flowing (D6). */
static enum forward_close_mode relay_close_mode(const struct relay *relay)
{
	return relay->state == RELAY_RESTARTING ? FORWARD_CLOSE_KEEP : FORWARD_CLOSE_CLEAN;
}

static void relay_free(struct relay *relay, enum forward_close_mode mode)
{
	if (relay->links)
		dispatcher_links_close(relay->links);
	/* Kept media needs its sessions on disk, as they are now; after a
	 * clean exit there is nothing to carry over. */
	if (mode == FORWARD_CLOSE_KEEP)
		session_store_flush(relay->store);
	session_store_free(relay->store, mode == FORWARD_CLOSE_CLEAN);
	if (relay->dataplane.streams)
		stream_env_keep_flows(relay->dataplane.streams, mode == FORWARD_CLOSE_KEEP);
	if (relay->sessions)
		session_table_free(relay->sessions);
	dataplane_close(&relay->dataplane, mode);
	daemon_unwatch_signals(relay->signal_events, SIGNAL_COUNT);
	if (relay->base)
		event_base_free(relay->base);
	if (relay->tls)
		SSL_CTX_free(relay->tls);
	config_free(&relay->config);
}

int main(int argc, char **argv)
{
	struct relay relay = { 0 };
	int rc;

	rc = daemon_parse_args(&relay.opts, argc, argv, "media-relay", "relay",
			       "MediaProxy-compatible media relay with an XDP fast path.");
	if (rc)
		return rc > 0 ? 0 : 1;

	if (daemon_start(&relay.opts, &relay.config, "media-relay", DAEMON_ROLE_RELAY))
		goto fail;
	if (relay_load_tls(&relay))
		goto fail;
	if (daemon_background(&relay.opts))
		goto fail;
	relay.base = event_base_new();
	if (!relay.base) {
		log_error("cannot create the event loop");
		goto fail;
	}
	if (daemon_watch_signals(relay.base, watched_signals, SIGNAL_COUNT, relay_on_signal,
				 &relay, relay.signal_events))
		goto fail;
	if (daemon_claim_pidfile(&relay.opts))
		goto fail;
	if (relay_open_services(&relay))
		goto fail;
	daemon_ready();

	relay_log_started(&relay);
	event_base_dispatch(relay.base);
	log_info("media-relay stopped");
	daemon_stop(&relay.opts);
	relay_free(&relay, relay_close_mode(&relay));
	return 0;

fail:
	/* Whatever a previous relay left forwarding (D6) stays: a relay that
	 * cannot start must not cut the media of calls it did not end. */
	daemon_stop(&relay.opts);
	relay_free(&relay, FORWARD_CLOSE_KEEP);
	return 1;
}
