/* The relay's session table kept on disk (PROTOCOL.md D6), so that a relay
 * restarted after SIGUSR2 or a crash (SIGKILL) carries every call on: the
 * whole table is written atomically (tmp file, fsync, rename) shortly
 * after every change and every few seconds while sessions exist, and read
 * back at start, where each session is re-created on its old ports with
 * the flows the forwarding backend kept.
 *
 * When writes happen (the choice D6 leaves open): a change marks the
 * table dirty and the write follows from the event loop, at once when
 * the last write is SESSION_STORE_DEBOUNCE_MS old, else when it is; so a
 * burst of changes costs one write, and a SIGKILL loses at most the
 * changes of the last SESSION_STORE_DEBOUNCE_MS. On top, while the table
 * is not empty, it is rewritten every SESSION_STORE_REFRESH_S (or half of
 * stream_timeout if shorter), because a file older than twice
 * stream_timeout is taken as stale, and because counters move without a
 * change of state: with an in-kernel backend the counts that matter live
 * in the kernel and are adopted live after a crash, but with the
 * userspace backend every count is in this process, so there the period
 * is SESSION_STORE_REFRESH_USER_S, which bounds what a SIGKILL loses of
 * the counters (the media itself stops for the gap anyway). SIGUSR2
 * writes the table once more before exiting, so it loses nothing. */
#ifndef MP_SESSION_STORE_H
#define MP_SESSION_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "forward.h"
#include "net.h"
#include "session.h"

#define SESSION_STORE_DEBOUNCE_MS 200
#define SESSION_STORE_REFRESH_S 10
#define SESSION_STORE_REFRESH_USER_S 2

struct session_store;

struct session_store_options {
	struct event_base *base;
	const char *path;             /* copied; see session_store_path() */
	unsigned int stream_timeout;  /* s: a file older than twice this is stale */
};

/* Where the table lives: <runtime_dir>/relay-<relay_ip>.sessions.json.
 * 0 or -ENAMETOOLONG. */
int session_store_path(const char *runtime_dir, const struct net_addr *relay_ip, char *out,
		       size_t len);

/* 0, -EINVAL or -ENOMEM. Nothing is read or written before
 * session_store_load(). */
int session_store_new(struct session_store **out, const struct session_store_options *opts);

/* A session_changed_fn: give it as session_table_options.changed with the
 * store as changed_ctx. */
void session_store_changed(void *store);

/* Restores the saved sessions into t (empty, and made with this store's
 * changed callback) and from then on keeps the file up to date. The
 * backend's adopted pairs (forward.h foreach_adopted) are matched to the
 * restored streams by their ports and taken over as they are; pairs no
 * session claims are removed. A missing, stale, unreadable or corrupt
 * file is logged and the relay starts empty; a session that cannot be
 * re-created (ports outside port_range, taken, ...) is skipped with a
 * log line. be and fw may be NULL (no adoption). 0, or -ENOMEM. */
int session_store_load(struct session_store *st, struct session_table *t,
		       const struct forward_backend *be, struct forward *fw);

/* Writes the table now, pending change or not (before a restart that
 * keeps media). Nothing before session_store_load(). 0 or -errno. */
int session_store_flush(struct session_store *st);

/* Frees the store without writing; remove_file: a clean exit (nothing
 * left to carry over) deletes the file. NULL is fine. */
void session_store_free(struct session_store *st, bool remove_file);

#endif
