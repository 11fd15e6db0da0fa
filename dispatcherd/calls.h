/* The dispatcher's call table (PROTOCOL.md D3, §2.4, §2.5, §2.8, §2.9):
 * which relay holds each call. A call is keyed by (call_id, from_tag of the
 * request that created it); a lookup tries (call_id, from_tag) and then
 * (call_id, to_tag), so requests from the callee (tags swapped) find the
 * call and forked or parallel dialogs sharing a Call-ID stay apart.
 *
 * Times are wall-clock seconds (time(2)), because they survive a restart in
 * the state file. The table knows nothing of relay connections; the core
 * tells it when a relay goes away or comes back. */
#ifndef MP_CALLS_H
#define MP_CALLS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The state file's name in the runtime dir (D7), as upstream. */
#define CALLS_STATE_FILE "dispatcher_state"

struct calls;

struct call {
	char *call_id;
	char *from_tag;          /* of the creating request */
	char *dialog_id;         /* NULL: none; else as the module sent it */
	char relay_ip[INET6_ADDRSTRLEN];
	time_t created;
	/* Set when the relay reported the call `expired` and the dialog is
	 * being ended (§2.8); 0 while live. Purged cleanup_expired_sessions_after
	 * seconds later; a `remove` meanwhile is answered `removed` locally. */
	time_t expire_time;
	/* Set when the call's relay disconnected (§2.4); 0 while connected.
	 * Purged cleanup_dead_relays_after seconds later. */
	time_t relay_lost_time;
	/* internal: walk order */
	struct call *prev, *next;
};

/* NULL with errno set on failure. */
struct calls *calls_new(void);
void calls_free(struct calls *calls);
size_t calls_count(const struct calls *calls);

/* (call_id, from_tag), then (call_id, to_tag); to_tag may be NULL. */
struct call *calls_find(struct calls *calls, const char *call_id, const char *from_tag,
			const char *to_tag);
/* Exact key only. */
struct call *calls_get(struct calls *calls, const char *call_id, const char *from_tag);

/* Adds a call created now on relay_ip; dialog_id may be NULL. Returns 0,
 * -EEXIST if the key is taken, -EINVAL for an empty key or a relay_ip that
 * does not fit, or -ENOMEM. The new entry goes to *out if out is not NULL. */
int calls_add(struct calls *calls, const char *call_id, const char *from_tag,
	      const char *relay_ip, const char *dialog_id, time_t now, struct call **out);
/* Deletes and frees call. */
void calls_remove(struct calls *calls, struct call *call);

/* Walk in insertion order. Removing the current call is safe when the next
 * one was fetched first. */
struct call *calls_first(struct calls *calls);
struct call *calls_next(struct call *call);

/* §2.8: the relay said the call expired and the dialog is being ended. */
void calls_set_expired(struct call *call, time_t now);

/* §2.4: relay_ip disconnected at now (calls already marked keep their
 * time) / reconnected (marks cleared). Return how many calls they touched. */
size_t calls_relay_lost(struct calls *calls, const char *relay_ip, time_t now);
size_t calls_relay_back(struct calls *calls, const char *relay_ip);

/* Deletes expired calls older than expired_after seconds and calls whose
 * relay has been gone dead_after seconds; logs and returns how many. Meant
 * for a timer (upstream scans every 600 s). */
size_t calls_purge(struct calls *calls, time_t now, unsigned int expired_after,
		   unsigned int dead_after);

/* §2.9. The state file is ours: JSON lines, a header object
 * {"mediaproxy_dispatcher_state": 1, "saved": <time>} then one object per
 * call {"call_id", "from_tag", "relay_ip", "dialog_id" (string|null),
 * "created", "expire_time", "relay_lost_time" (int|null)}.
 *
 * calls_save writes path atomically (path.tmp, fsync, rename, fsync of the
 * directory), mode 0600. 0 or -errno after logging. */
int calls_save(struct calls *calls, const char *path, time_t now);

/* Adds the calls saved in path to the table. A missing file is not an
 * error (0, nothing loaded). Entries past their cleanup limits (as
 * calls_purge would judge them at now) are dropped; since no relay is
 * connected yet at start, every loaded call whose relay_lost_time is 0 gets
 * now, and calls_relay_back() clears it when its relay connects. A file
 * without the header is ignored as a whole; a bad entry line is skipped;
 * both are logged. Returns the number of calls loaded, or -errno when the
 * file could not be read (logged). */
int calls_load(struct calls *calls, const char *path, time_t now, unsigned int expired_after,
	       unsigned int dead_after);

#endif
