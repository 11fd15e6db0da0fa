/* One accounting destination (PROTOCOL.md §5, D11-D15): jsonl, database or
 * radius. The engine (accounting.c) gives each backend its own delivery
 * thread that reads records from the durable spool in order and hands them
 * over one at a time, so every call below runs on that thread, never on the
 * dispatcher's event loop, and may block for as long as the backend's own
 * timeouts allow (a few seconds at most). A backend never sees the same
 * record concurrently and never sees record N+1 before N was delivered. */
#ifndef MP_ACCOUNTING_BACKEND_H
#define MP_ACCOUNTING_BACKEND_H

#include <stddef.h>

#include <json-c/json.h>

#include "config.h"

/* A record as it came out of the spool: the relay's statistics object
 * (§3.3) plus dialog_id, timed_out and, on expiry, all_streams_ice. */
struct accounting_record {
	const char *json;       /* one line of JSON, no newline, NUL-terminated */
	size_t len;
	struct json_object *obj; /* json parsed; a JSON object */
	const char *call_id;    /* never NULL */
	const char *from_tag;   /* never NULL */
	const char *to_tag;     /* NULL when the record has "to_tag": null */
};

struct accounting_backend {
	const char *name; /* "jsonl", "database", "radius": the D12 name */
	void *state;
	/* 0: delivered, or already there (a retried record must be a no-op
	 * where the destination allows it: D15).
	 * -EAGAIN: not delivered for now (server down, no table yet, ...);
	 *   the engine retries the same record with capped backoff.
	 * any other -errno: this record can never be delivered; the engine
	 *   logs it in full and moves on.
	 * err receives a one-line reason (no newline) for the log and for the
	 * `accounting` command's last_error whenever the result is not 0. */
	int (*deliver)(void *state, const struct accounting_record *rec, char *err,
		       size_t errlen);
	/* Optional: called on the delivery thread after SIGHUP/SIGUSR1 (D17),
	 * e.g. to re-open a file logrotate moved. */
	void (*reopen)(void *state);
	/* Releases everything; called once, on the delivery thread's owner
	 * after the thread has stopped. */
	void (*close)(void *state);
};

/* Each constructor checks the configuration and fills *b without touching
 * the network (connections are made lazily by deliver). Returns 0, or -1
 * with err set to a reason naming the option or file at fault; the
 * dispatcher then refuses to start. */
int accounting_jsonl_open(struct accounting_backend *b, const struct mp_config *cfg,
			  char *err, size_t errlen);
int accounting_database_open(struct accounting_backend *b, const struct mp_config *cfg,
			     char *err, size_t errlen);
int accounting_radius_open(struct accounting_backend *b, const struct mp_config *cfg,
			   char *err, size_t errlen);

#endif
