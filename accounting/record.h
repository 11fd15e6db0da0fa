/* The accounting record (PROTOCOL.md §2.8, §3.3, §5): the relay's final
 * statistics object with the dispatcher's own fields added, and the view
 * backends read it through (backend.h). Pure functions: no I/O, no log. */
#ifndef MP_ACCOUNTING_RECORD_H
#define MP_ACCOUNTING_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "backend.h"

/* Every answered stream an unselected ICE candidate (vacuously true with no
 * stream at all, as upstream). */
bool accounting_stats_all_ice(struct json_object *stats);

/* start_time present and not null: the session was answered (D16). */
bool accounting_stats_started(struct json_object *stats);

/* Adds to stats (a JSON object; modified in place) dialog_id (string, or
 * null when the module sent none), timed_out and, when expired, also
 * all_streams_ice. timed_out is false after a `remove`, and after an
 * `expired` it is true unless every stream was an unselected ICE candidate
 * (§2.8). Returns 0 or -ENOMEM. */
int accounting_record_complete(struct json_object *stats, const char *dialog_id,
			       bool expired);

/* Parses one spooled record into out; *owned receives the parsed object,
 * which the caller releases with json_object_put() once done with out.
 * Returns 0, or -EINVAL when json is not an object with string call_id and
 * from_tag (to_tag may be a string or null). */
int accounting_record_parse(const char *json, size_t len, struct accounting_record *out,
			    struct json_object **owned);

#endif
