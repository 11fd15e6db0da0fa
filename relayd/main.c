/* media-relay: allocates ports, latches the phones' addresses and forwards
 * their RTP/RTCP, under the control of one or more media-dispatchers.
 *
 * What this process owns, in start-up order:
 *   config.ini ([Relay], [TLS])          common/config
 *   TLS client context (relay.crt)       common/tls
 *   runtime dir, pid file, detaching     common/daemon
 *   signals (PROTOCOL.md D17)            here
 *   ports, forwarding backend, streams   relayd/dataplane
 * Dispatcher links and sessions arrive with the control-plane work. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "dataplane.h"
#include "log.h"
#include "net.h"
#include "tls.h"

enum relay_state {
	RELAY_RUNNING,
	RELAY_HALTING,       /* SIGHUP: no new sessions, exit after the last */
	RELAY_STOPPING,      /* SIGINT/SIGTERM: end every session now */
	RELAY_RESTARTING,    /* SIGUSR2: exit, leaving media forwarding */
};

static const int watched_signals[] = { SIGHUP, SIGINT, SIGTERM, SIGUSR2 };
#define SIGNAL_COUNT (sizeof(watched_signals) / sizeof(watched_signals[0]))

struct relay {
	struct daemon_options opts;
	struct mp_config config;
	SSL_CTX *tls;
	struct dataplane dataplane;
	struct event_base *base;
	struct event *signal_events[SIGNAL_COUNT];
	enum relay_state state;
	unsigned session_count;
};

static void relay_on_signal(evutil_socket_t signo, short what, void *arg)
{
	struct relay *relay = arg;

	(void)what;
	switch (signo) {
	case SIGHUP:
		log_info("SIGHUP: halting, accepting no new sessions; exiting after the last of %u ends",
			 relay->session_count);
		relay->state = RELAY_HALTING;
		break;
	case SIGINT:
	case SIGTERM:
		log_info("SIG%s: ending all %u sessions now and exiting",
			 sigabbrev_np(signo), relay->session_count);
		relay->state = RELAY_STOPPING;
		break;
	case SIGUSR2:
		log_info("SIGUSR2: restarting, leaving media forwarding and session state in place");
		relay->state = RELAY_RESTARTING;
		break;
	}
	if (relay->state != RELAY_RUNNING && relay->session_count == 0)
		event_base_loopbreak(relay->base);
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
	return 0;
}

static void relay_log_started(const struct relay *relay)
{
	char relay_ip[INET6_ADDRSTRLEN];

	net_addr_format(&relay->dataplane.relay_ip, relay_ip, sizeof(relay_ip));
	log_info("media-relay %s started: relay_ip %s, ports %u-%u, forwarding through %s, "
		 "%zu dispatcher(s); dispatcher links are not implemented yet", MP_VERSION,
		 relay_ip, relay->config.relay.port_range.start,
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
	if (relay.config.relay.dispatchers.count == 0)
		log_error("no dispatchers configured ([Relay] dispatchers); this relay will serve nobody");

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
	if (dataplane_open(&relay.dataplane, relay.base, &relay.config.relay))
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
