/* media-dispatcher: runs beside the SIP proxy, answers its mediaproxy module
 * and hands each call to a media-relay.
 *
 * What this process owns, in start-up order:
 *   config.ini ([Dispatcher], [TLS], ...)  common/config
 *   TLS server context (dispatcher.crt)    common/tls
 *   runtime dir, pid file, detaching       common/daemon
 *   signals (PROTOCOL.md D17)              here
 * The proxy socket, relay links, selection, management, accounting and the
 * MI client arrive with the control-plane and accounting work. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "tls.h"

static const int watched_signals[] = { SIGHUP, SIGUSR1, SIGINT, SIGTERM };
#define SIGNAL_COUNT (sizeof(watched_signals) / sizeof(watched_signals[0]))

struct dispatcher {
	struct daemon_options opts;
	struct mp_config config;
	SSL_CTX *tls;
	struct event_base *base;
	struct event *signal_events[SIGNAL_COUNT];
};

/* (Re)reads the TLS files; on a reload failure the old context stays. */
static int dispatcher_load_tls(struct dispatcher *dispatcher)
{
	char err[512];
	struct tls_files files;
	SSL_CTX *ctx;

	if (tls_files_from_dir(&files, dispatcher->config.tls.certs_path, "dispatcher")) {
		log_error("TLS: certificate paths under %s are too long",
			  dispatcher->config.tls.certs_path);
		return -1;
	}
	ctx = tls_context_new(&files, true, err, sizeof(err));
	if (!ctx) {
		log_error("TLS: %s", err);
		return -1;
	}
	if (dispatcher->tls)
		SSL_CTX_free(dispatcher->tls);
	dispatcher->tls = ctx;
	return 0;
}

static void dispatcher_on_signal(evutil_socket_t signo, short what, void *arg)
{
	struct dispatcher *dispatcher = arg;

	(void)what;
	switch (signo) {
	case SIGHUP:
	case SIGUSR1:
		log_info("SIG%s: re-opening files and re-reading the TLS files", sigabbrev_np(signo));
		if (dispatcher_load_tls(dispatcher))
			log_warn("TLS reload failed; keeping the previous certificates");
		break;
	case SIGINT:
	case SIGTERM:
		log_info("SIG%s: saving state and exiting", sigabbrev_np(signo));
		event_base_loopbreak(dispatcher->base);
		break;
	}
}

static void dispatcher_free(struct dispatcher *dispatcher)
{
	daemon_unwatch_signals(dispatcher->signal_events, SIGNAL_COUNT);
	if (dispatcher->base)
		event_base_free(dispatcher->base);
	if (dispatcher->tls)
		SSL_CTX_free(dispatcher->tls);
	config_free(&dispatcher->config);
}

int main(int argc, char **argv)
{
	struct dispatcher dispatcher = { 0 };
	int rc;

	rc = daemon_parse_args(&dispatcher.opts, argc, argv, "media-dispatcher", "dispatcher",
			       "MediaProxy-compatible media dispatcher for OpenSIPS and Kamailio.");
	if (rc)
		return rc > 0 ? 0 : 1;

	if (daemon_start(&dispatcher.opts, &dispatcher.config, "media-dispatcher",
			 DAEMON_ROLE_DISPATCHER))
		goto fail;
	if (dispatcher_load_tls(&dispatcher))
		goto fail;
	if (daemon_background(&dispatcher.opts))
		goto fail;
	dispatcher.base = event_base_new();
	if (!dispatcher.base) {
		log_error("cannot create the event loop");
		goto fail;
	}
	if (daemon_watch_signals(dispatcher.base, watched_signals, SIGNAL_COUNT, dispatcher_on_signal,
				 &dispatcher, dispatcher.signal_events))
		goto fail;
	if (daemon_claim_pidfile(&dispatcher.opts))
		goto fail;
	daemon_ready();

	log_info("media-dispatcher %s started; the proxy socket, relay links and management "
		 "interface are not implemented yet", MP_VERSION);
	event_base_dispatch(dispatcher.base);
	log_info("media-dispatcher stopped");
	daemon_stop(&dispatcher.opts);
	dispatcher_free(&dispatcher);
	return 0;

fail:
	daemon_stop(&dispatcher.opts);
	dispatcher_free(&dispatcher);
	return 1;
}
