/* Answers the module's requests (PROTOCOL.md §2.4, §2.5, D1, D2, D3): a
 * known call goes to its relay; an unknown call's `update` tries the active
 * relays one after the other (random order, or least loaded first with
 * `selection = least_loaded`; the module's media_relay first when it names
 * a connected active relay) until one accepts it; `remove` turns the
 * relay's statistics into `removed` and hands them to accounting.
 *
 * Time budget: each attempt waits at most relay_request_timeout (D2, 0.15 s),
 * and a request gives up once SELECTION_BUDGET seconds have passed since it
 * arrived, answering `error` before the module's own 500 ms timeout closes
 * its connection (after which it would refuse every call for 10 s, §1.1).
 * So with 3 relays that all time out the third attempt is cut to 0.15 s and
 * a fourth is not made.
 *
 * Everything runs in the dispatcher's event loop. */
#ifndef MP_SELECTION_H
#define MP_SELECTION_H

#include <stdint.h>

#include "calls.h"
#include "config.h"
#include "proxy_request.h"
#include "relay_link.h"

#define SELECTION_BUDGET 0.45      /* s from arrival to the last possible reply */
#define SELECTION_MIN_ATTEMPT 0.02 /* s: less left than this is not worth a try */

struct selection;

struct selection_options {
	struct relay_links *links;
	struct calls *calls;
	const struct config_dispatcher *config; /* selection, relay_request_timeout */
	/* A call ended by `remove`: json is the relay's final statistics (§3.3),
	 * NUL-terminated and valid during the call only; dialog_id may be NULL.
	 * Accounting adds dialog_id/timed_out itself. May be NULL. */
	void (*session_ended)(void *ctx, const char *relay_ip, const char *dialog_id,
			      const char *json);
	void *ctx;
};

/* 0, or -ENOMEM. The options' pointers must outlive the selection. */
int selection_new(struct selection **out, const struct selection_options *opts);
/* Cancels every relay request still in flight and answers its module
 * request `error`. */
void selection_free(struct selection *sel);

/* The proxy socket's handler (proxy_handler_fn; ctx = the selection).
 * Replies: the relay's "<ip> <port> ..." or "None" for update, "removed"
 * for remove, "error" otherwise (each failure logged with its call_id). */
void selection_handle(void *sel, const struct proxy_request *req, proxy_done_fn done,
		      void *done_ctx);

/* Records a relay's load from its summary (§3.4) for least_loaded; relays
 * never summarised count as empty. Between summaries each call placed
 * adds its streams (the entries of its `media` header) to its relay's
 * count, so a burst of calls spreads over the relays; the next summary
 * sets the true figures again. 0 or -ENOMEM. */
int selection_note_summary(struct selection *sel, const char *relay_ip, uint64_t session_count,
			   uint64_t stream_count, double bps_relayed);
/* The same from the summary JSON object text; -EINVAL if it is not one
 * (session_count, stream_count, bps_relayed numbers). */
int selection_note_summary_json(struct selection *sel, const char *relay_ip, const char *json,
				size_t len);

#endif
