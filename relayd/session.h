/* The relay's sessions (PROTOCOL.md 2.2, 3.3, 3.4, 4): one per call leg
 * pair, keyed (call_id, from_tag) and found also by (call_id, to_tag). The
 * dispatchers' commands `update`, `remove`, `summary` and `sessions` run
 * here: offer/answer by CSeq, streams matched, opened, held and closed on
 * the data plane (stream.h), replies and statistics JSON built. A session
 * whose streams have all timed out is reported through a callback and
 * forgotten. Everything runs in the relay's event loop. */
#ifndef MP_SESSION_H
#define MP_SESSION_H

#include <stdbool.h>

#include "lineproto.h"
#include "net.h"
#include "stream.h"

struct session_table;

/* Wall-clock UNIX time in seconds; tests inject a fake one. */
typedef double (*session_clock_fn)(void *ctx);

/* A session ended because no stream of it is alive any more (2.8), or
 * session_table_expire_all() ended it. json is its final statistics
 * (3.3); dispatcher the name given to session_table_command() when the
 * session was created. Both are valid during the call only. The session
 * is already gone from the table. */
typedef void (*session_expired_fn)(void *ctx, const char *dispatcher, const char *json);

/* The table changed in a way a restarted relay must know (D6): a session
 * created, updated, removed or expired, a stream ended, a party latched.
 * Called often and from the packet path: it should only take note. */
typedef void (*session_changed_fn)(void *ctx);

/* Pointers must outlive the table. */
struct session_table_options {
	struct stream_env *streams;
	struct net_addr relay_ip;             /* summary `ip`; the reply ip by default */
	const struct net_addr *advertised_ip; /* NULL or unset: none; else the reply ip */
	const double *bps_relayed;            /* the data plane's figure; NULL = 0 */
	session_expired_fn expired;           /* may be NULL */
	void *ctx;
	session_clock_fn clock;               /* NULL: CLOCK_REALTIME */
	void *clock_ctx;
	session_changed_fn changed;           /* may be NULL */
	void *changed_ctx;
};

/* 0, -EINVAL (no stream env, unset relay_ip) or -ENOMEM. */
int session_table_new(struct session_table **out, const struct session_table_options *opts);

/* Closes every session's streams without reporting them; call it before
 * stream_env_free(). NULL is fine. */
void session_table_free(struct session_table *t);

/* Executes one dispatcher command, msg->command being update, remove,
 * summary or sessions, for the dispatcher called `dispatcher` (the name
 * that expiry reports give back). Sets *reply to a malloc'd payload
 * without the seq, for the caller to send and free:
 *   update    "<ip> <port> ..." (port 0 for a closed or rejected stream),
 *             "None" (nothing to return), "halting" (unknown session while
 *             halting) or "error";
 *   remove    the final statistics JSON, or "error" for an unknown session;
 *   summary   the relay summary JSON (3.4);
 *   sessions  a JSON array of every session's statistics.
 * Bad input never fails the call: it answers "error" and logs one line
 * naming the call_id and the fault. *reply is NULL only when memory ran
 * out (the caller then answers "error" itself). */
void session_table_command(struct session_table *t, const char *dispatcher,
			   const struct lineproto_msg *msg, char **reply);

/* SIGHUP (2.6): updates for unknown sessions answer "halting" from now on;
 * known sessions carry on. The summary says "halting". */
void session_table_set_halting(struct session_table *t);

/* Sessions in the table now. */
unsigned int session_table_count(const struct session_table *t);

/* SIGINT/SIGTERM (2.6): ends every session now, reporting each through
 * the expired callback, and empties the table. */
void session_table_expire_all(struct session_table *t);

#endif
