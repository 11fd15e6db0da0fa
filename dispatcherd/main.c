/* media-dispatcher: runs beside the SIP proxy, answers its mediaproxy module
 * and hands each call to a media-relay.
 *
 * What this process owns, in start-up order:
 *   config.ini ([Dispatcher], [TLS], ...)   common/config
 *   TLS server context (dispatcher.crt)     common/tls
 *   runtime dir, pid file, detaching        common/daemon
 *   signals (PROTOCOL.md D17)               here
 *   the call table and its state file       calls.c
 *   relay links (TLS listener, §2)          relay_link.c
 *   relay selection and failover            selection.c
 *   relay events, housekeeping              core.c
 *   the module's UNIX socket (§1)           proxy_socket.c
 *   accounting spool and backends (§5)      accounting/accounting.c
 *   the proxy's MI, for expired dialogs     mi_client.c
 *   the management interface (§3)           management.c */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "accounting.h"
#include "calls.h"
#include "config.h"
#include "core.h"
#include "daemon.h"
#include "log.h"
#include "management.h"
#include "mi_client.h"
#include "passport.h"
#include "proxy_socket.h"
#include "relay_link.h"
#include "selection.h"
#include "tls.h"

static const int watched_signals[] = { SIGHUP, SIGUSR1, SIGINT, SIGTERM };
#define SIGNAL_COUNT (sizeof(watched_signals) / sizeof(watched_signals[0]))

struct dispatcher {
	struct daemon_options opts;
	struct mp_config config;
	SSL_CTX *tls;
	struct passport relay_passport, management_passport;
	struct event_base *base;
	struct event *signal_events[SIGNAL_COUNT];
	char state_path[PATH_MAX];
	struct dispatcher_core core;
	struct relay_links *links;
	struct selection *selection;
	struct proxy_socket *proxy;
	struct management *management;
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
	if (dispatcher->links)
		relay_links_set_tls(dispatcher->links, ctx);
	if (dispatcher->management)
		management_set_tls(dispatcher->management, ctx);
	if (dispatcher->tls)
		SSL_CTX_free(dispatcher->tls);
	dispatcher->tls = ctx;
	return 0;
}

static int dispatcher_load_passports(struct dispatcher *dispatcher)
{
	char err[256];

	/* config.c has already checked both with the same parser. */
	if (passport_parse(dispatcher->config.dispatcher.passport, &dispatcher->relay_passport,
			   err, sizeof(err)) ||
	    passport_parse(dispatcher->config.dispatcher.management_passport,
			   &dispatcher->management_passport, err, sizeof(err))) {
		log_error("passport: %s", err);
		return -1;
	}
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
		accounting_reopen(dispatcher->core.accounting);
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

static int dispatcher_open_calls(struct dispatcher *dispatcher)
{
	const struct config_dispatcher *cfg = &dispatcher->config.dispatcher;

	if (config_runtime_path(dispatcher->opts.runtime_dir, CALLS_STATE_FILE,
				dispatcher->state_path, sizeof(dispatcher->state_path))) {
		log_error("runtime directory path too long: %s", dispatcher->opts.runtime_dir);
		return -1;
	}
	dispatcher->core.calls = calls_new();
	if (!dispatcher->core.calls) {
		log_error("out of memory for the call table");
		return -1;
	}
	/* A missing or unreadable state file is logged and ignored. */
	calls_load(dispatcher->core.calls, dispatcher->state_path, time(NULL),
		   cfg->cleanup_expired_sessions_after, cfg->cleanup_dead_relays_after);
	return 0;
}

/* Everything that talks to relays or to the proxy, in dependency order. */
static int dispatcher_open_services(struct dispatcher *dispatcher)
{
	struct dispatcher_core *core = &dispatcher->core;
	const struct config_dispatcher *cfg = &dispatcher->config.dispatcher;
	int err;

	core->base = dispatcher->base;
	core->config = cfg;
	struct relay_links_options links = {
		.base = dispatcher->base, .config = cfg, .tls = dispatcher->tls,
		.passport = &dispatcher->relay_passport,
		.events = { core_relay_connected, core_relay_disconnected, core_relay_expired, core },
	};
	err = relay_links_open(&dispatcher->links, &links);
	if (err)
		return -1;
	core->links = dispatcher->links;

	if (accounting_open(&core->accounting, &dispatcher->config))
		return -1;
	struct mi_client_options mi = {
		.base = dispatcher->base, .runtime_dir = dispatcher->opts.runtime_dir,
		.config = &dispatcher->config.opensips,
	};
	err = mi_client_open(&core->mi, &mi);
	if (err) {
		log_errno(err, "cannot open the MI client socket in %s", dispatcher->opts.runtime_dir);
		return -1;
	}

	struct selection_options sel = {
		.links = dispatcher->links, .calls = core->calls, .config = cfg,
		.session_ended = core_session_ended, .ctx = core,
	};
	err = selection_new(&dispatcher->selection, &sel);
	if (err) {
		log_errno(err, "cannot set up relay selection");
		return -1;
	}
	core->selection = dispatcher->selection;

	struct proxy_socket_options proxy = {
		.base = dispatcher->base, .runtime_dir = dispatcher->opts.runtime_dir,
		.path = cfg->socket_path, .handler = selection_handle,
		.ctx = dispatcher->selection,
	};
	err = proxy_socket_open(&dispatcher->proxy, &proxy);
	if (err) {
		log_errno(err, "cannot open the proxy socket %s", cfg->socket_path);
		return -1;
	}

	struct management_options mgmt = {
		.base = dispatcher->base, .config = cfg, .tls = dispatcher->tls,
		.passport = &dispatcher->management_passport, .relay_links = dispatcher->links,
		.accounting = core->accounting ? accounting_status : NULL,
		.accounting_ctx = core->accounting,
	};
	err = management_open(&dispatcher->management, &mgmt);
	if (err)
		return -1;
	return core_start(core);
}

static void dispatcher_close_services(struct dispatcher *dispatcher)
{
	core_stop(&dispatcher->core);
	if (dispatcher->management)
		management_close(dispatcher->management);
	if (dispatcher->proxy)
		proxy_socket_close(dispatcher->proxy);
	if (dispatcher->selection)
		selection_free(dispatcher->selection);
	if (dispatcher->links)
		relay_links_close(dispatcher->links);
	if (dispatcher->core.mi)
		mi_client_close(dispatcher->core.mi);
	/* Last: what is still undelivered stays spooled for the next start. */
	accounting_close(dispatcher->core.accounting);
	dispatcher->core.mi = NULL;
	dispatcher->core.accounting = NULL;
	dispatcher->management = NULL;
	dispatcher->proxy = NULL;
	dispatcher->selection = NULL;
	dispatcher->links = NULL;
}

static void dispatcher_free(struct dispatcher *dispatcher)
{
	dispatcher_close_services(dispatcher);
	daemon_unwatch_signals(dispatcher->signal_events, SIGNAL_COUNT);
	if (dispatcher->base)
		event_base_free(dispatcher->base);
	if (dispatcher->core.calls)
		calls_free(dispatcher->core.calls);
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
	if (dispatcher_load_tls(&dispatcher) || dispatcher_load_passports(&dispatcher))
		goto fail;
	if (daemon_background(&dispatcher.opts))
		goto fail;
	dispatcher.base = event_base_new();
	if (!dispatcher.base) {
		log_error("cannot create the event loop");
		goto fail;
	}
	if (daemon_watch_signals(dispatcher.base, watched_signals, SIGNAL_COUNT,
				 dispatcher_on_signal, &dispatcher, dispatcher.signal_events))
		goto fail;
	if (daemon_claim_pidfile(&dispatcher.opts))
		goto fail;
	if (dispatcher_open_calls(&dispatcher) || dispatcher_open_services(&dispatcher))
		goto fail;
	daemon_ready();

	log_info("media-dispatcher %s started: module socket %s, %zu call(s) restored",
		 MP_VERSION, proxy_socket_path(dispatcher.proxy),
		 calls_count(dispatcher.core.calls));
	event_base_dispatch(dispatcher.base);
	dispatcher_close_services(&dispatcher);
	if (calls_save(dispatcher.core.calls, dispatcher.state_path, time(NULL)))
		log_error("could not save the call table to %s", dispatcher.state_path);
	log_info("media-dispatcher stopped");
	daemon_stop(&dispatcher.opts);
	dispatcher_free(&dispatcher);
	return 0;

fail:
	daemon_stop(&dispatcher.opts);
	dispatcher_free(&dispatcher);
	return 1;
}
