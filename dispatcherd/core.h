/* What the dispatcher does when a relay connects, goes away or reports an
 * expired session, and the periodic housekeeping of the call table
 * (PROTOCOL.md §2.4, §2.7, §2.8). The request path itself (proxy socket ->
 * selection -> relay) lives in selection.c. */
#ifndef MP_CORE_H
#define MP_CORE_H

#include <time.h>

#include <event2/event.h>

#include "accounting.h"
#include "calls.h"
#include "config.h"
#include "mi_client.h"
#include "relay_link.h"
#include "selection.h"

struct dispatcher_core {
	struct event_base *base;
	const struct config_dispatcher *config;
	struct calls *calls;
	struct relay_links *links;     /* set once the listener is open */
	struct selection *selection;   /* for least_loaded summaries */
	struct accounting *accounting; /* NULL = no accounting (D11) */
	struct mi_client *mi;          /* ends dialogs whose media expired */
	struct event *housekeeping;
	time_t last_purge;
};

/* Relay events, for relay_links_options.events (ctx = the core). */
void core_relay_connected(void *ctx, struct relay *relay);
void core_relay_disconnected(void *ctx, struct relay *relay);
void core_relay_expired(void *ctx, struct relay *relay, const char *json, size_t len);
/* A call ended by `remove` (selection_options.session_ended). */
void core_session_ended(void *ctx, const char *relay_ip, const char *dialog_id,
			const char *json);

/* Starts the timer that purges old calls and, for selection =
 * least_loaded, polls the relays' summaries. 0 or -1 after logging. */
int core_start(struct dispatcher_core *core);
void core_stop(struct dispatcher_core *core);

#endif
