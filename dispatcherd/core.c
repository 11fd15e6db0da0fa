/* Relay events and call-table housekeeping (see core.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "core.h"
#include "log.h"
#include "record.h"

/* How often expired and dead calls are purged (§2.8: every 600 s) and,
 * with least_loaded, how often relays are asked for their load. */
#define CORE_PURGE_SECONDS 600
#define CORE_TICK_SECONDS 5

struct resync {
	struct dispatcher_core *core;
	char relay_ip[INET6_ADDRSTRLEN];
};

static const char *json_string_field(struct json_object *obj, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, name, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The relay's sessions as sorted (call_id, from_tag) pairs, so the
 * resync costs O(n log n): a relay with thousands of calls used to stall
 * the dispatcher for a second, comparing every call with every session. */
struct session_key {
	const char *call_id, *from_tag;
};

static int session_key_cmp(const void *a, const void *b)
{
	const struct session_key *x = a, *y = b;
	int c = strcmp(x->call_id, y->call_id);

	return c ? c : strcmp(x->from_tag, y->from_tag);
}

static struct session_key *session_keys(struct json_object *list, size_t *count)
{
	size_t n = json_object_array_length(list), k = 0;
	struct session_key *keys = calloc(n ? n : 1, sizeof(*keys));

	if (!keys)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(list, i);
		const char *cid = json_string_field(s, "call_id");
		const char *ftag = json_string_field(s, "from_tag");

		if (cid && ftag)
			keys[k++] = (struct session_key){ cid, ftag };
	}
	qsort(keys, k, sizeof(*keys), session_key_cmp);
	*count = k;
	return keys;
}

/* §2.7: every call we map to this relay that it no longer knows is gone. */
static void resync_apply(struct dispatcher_core *core, const char *ip, struct json_object *list)
{
	struct call *call = calls_first(core->calls), *next;
	size_t dropped = 0, count;
	struct session_key *keys = session_keys(list, &count);

	if (!keys) {
		log_error("relay %s: out of memory for the resync; calls left as they are", ip);
		return;
	}
	for (; call; call = next) {
		struct session_key want = { call->call_id, call->from_tag };

		next = calls_next(call);
		if (strcmp(call->relay_ip, ip) || call->expire_time)
			continue;
		if (bsearch(&want, keys, count, sizeof(*keys), session_key_cmp))
			continue;
		log_warn("relay %s no longer knows call %s (from_tag %s)%s", ip, call->call_id,
			 call->from_tag, call->dialog_id ? "; its dialog should be ended" : "");
		calls_remove(core->calls, call);
		dropped++;
	}
	free(keys);
	log_info("relay %s resynchronised: %zu session(s) on the relay, %zu stale call(s) dropped",
		 ip, json_object_array_length(list), dropped);
}

static void on_sessions_reply(void *ctx, int status, const char *payload, size_t len)
{
	struct resync *rs = ctx;
	struct json_tokener *tok;
	struct json_object *list;

	if (status) {
		log_warn("relay %s: no answer to the resync request: %s", rs->relay_ip,
			 strerror(-status));
		free(rs);
		return;
	}
	tok = json_tokener_new();
	list = tok ? json_tokener_parse_ex(tok, payload, (int)len) : NULL;
	if (!list || !json_object_is_type(list, json_type_array))
		log_error("relay %s: the resync answer is not a JSON array; calls left as they are",
			  rs->relay_ip);
	else
		resync_apply(rs->core, rs->relay_ip, list);
	json_object_put(list);
	if (tok)
		json_tokener_free(tok);
	free(rs);
}

void core_relay_connected(void *ctx, struct relay *relay)
{
	struct dispatcher_core *core = ctx;
	struct resync *rs = calloc(1, sizeof(*rs));
	size_t back = calls_relay_back(core->calls, relay_ip(relay));

	log_info("relay %s connected (%zu call(s) mapped to it)", relay_ip(relay), back);
	if (!rs) {
		log_error("relay %s: out of memory for the resync", relay_ip(relay));
		return;
	}
	rs->core = core;
	snprintf(rs->relay_ip, sizeof(rs->relay_ip), "%s", relay_ip(relay));
	if (!relay_request_send(relay, "sessions", "", 0, core->config->relay_timeout,
				on_sessions_reply, rs)) {
		log_error("relay %s: cannot send the resync request: %s", rs->relay_ip,
			  strerror(errno));
		free(rs);
	}
}

void core_relay_disconnected(void *ctx, struct relay *relay)
{
	struct dispatcher_core *core = ctx;
	size_t lost = calls_relay_lost(core->calls, relay_ip(relay), time(NULL));

	log_warn("relay %s disconnected; %zu call(s) wait up to %u s for it to come back",
		 relay_ip(relay), lost, core->config->cleanup_dead_relays_after);
}

/* The final statistics of a call, completed and spooled (§5, D16: only
 * answered sessions are accounted). Adds its fields to stats. */
static void account(struct dispatcher_core *core, struct json_object *stats,
		    const char *call_id, const char *dialog_id, bool expired)
{
	if (!core->accounting)
		return;
	if (!accounting_stats_started(stats)) {
		log_debug("call %s was never answered: no accounting record (D16)", call_id);
		return;
	}
	if (accounting_record_complete(stats, dialog_id, expired)) {
		log_error("call %s: out of memory completing its accounting record", call_id);
		return;
	}
	accounting_submit(core->accounting, stats); /* logs any failure */
}

static struct json_object *parse_stats(const char *json, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *stats = tok ? json_tokener_parse_ex(tok, json, (int)len) : NULL;

	if (tok)
		json_tokener_free(tok);
	if (stats && !json_object_is_type(stats, json_type_object)) {
		json_object_put(stats);
		stats = NULL;
	}
	return stats;
}

void core_relay_expired(void *ctx, struct relay *relay, const char *json, size_t len)
{
	struct dispatcher_core *core = ctx;
	struct json_object *stats = parse_stats(json, len);
	const char *call_id, *from_tag;
	struct call *call;
	bool ice, started;

	if (!stats) {
		log_error("relay %s: expired message is not a JSON object", relay_ip(relay));
		return;
	}
	call_id = json_string_field(stats, "call_id");
	from_tag = json_string_field(stats, "from_tag");
	call = call_id && from_tag ? calls_get(core->calls, call_id, from_tag) : NULL;
	if (!call || strcmp(call->relay_ip, relay_ip(relay))) {
		log_info("relay %s: expired session %s is not one of its calls here; ignored",
			 relay_ip(relay), call_id ? call_id : "(no call_id)");
		json_object_put(stats);
		return;
	}
	ice = accounting_stats_all_ice(stats);
	started = accounting_stats_started(stats);
	log_info("relay %s: call %s expired (%s)", relay_ip(relay), call_id,
		 ice ? "all streams unselected ICE candidates" : "media timed out");
	/* The record is spooled before the call may be forgotten below. */
	account(core, stats, call_id, call->dialog_id, true);
	/* use_media_proxy() sends an empty dialog_id: no dialog to end. */
	if (call->dialog_id && call->dialog_id[0] && started && !ice && core->mi)
		mi_client_end_dialog(core->mi, call_id, call->dialog_id);
	/* Kept marked rather than deleted (§2.8 deletes it when no dialog is
	 * ended): the proxy still sends its `remove` when the call ends, and
	 * that is then answered `removed` here instead of `error` and a
	 * warning. Purged after cleanup_expired_sessions_after. */
	calls_set_expired(call, time(NULL));
	json_object_put(stats);
}

void core_session_ended(void *ctx, const char *relay_ip, const char *dialog_id,
			const char *json)
{
	struct dispatcher_core *core = ctx;
	struct json_object *stats = parse_stats(json, strlen(json));
	const char *call_id;

	if (!stats) {
		log_error("relay %s: the final statistics of a removed call are not a JSON "
			  "object; no accounting record: %s", relay_ip, json);
		return;
	}
	call_id = json_string_field(stats, "call_id");
	account(core, stats, call_id ? call_id : "(no call_id)", dialog_id, false);
	json_object_put(stats);
}

static void on_summary_reply(void *ctx, int status, const char *payload, size_t len)
{
	struct resync *rs = ctx;

	if (!status)
		selection_note_summary_json(rs->core->selection, rs->relay_ip, payload, len);
	free(rs);
}

static void poll_load(struct dispatcher_core *core)
{
	for (struct relay *r = relay_links_first(core->links); r; r = relay_links_next(r)) {
		struct resync *rs = calloc(1, sizeof(*rs));

		if (!rs)
			return;
		rs->core = core;
		snprintf(rs->relay_ip, sizeof(rs->relay_ip), "%s", relay_ip(r));
		if (!relay_request_send(r, "summary", "", 0, core->config->relay_timeout,
					on_summary_reply, rs))
			free(rs);
	}
}

static void on_housekeeping(evutil_socket_t fd, short what, void *arg)
{
	struct dispatcher_core *core = arg;
	time_t now = time(NULL);

	(void)fd;
	(void)what;
	if (now - core->last_purge >= CORE_PURGE_SECONDS) {
		size_t n = calls_purge(core->calls, now, core->config->cleanup_expired_sessions_after,
				       core->config->cleanup_dead_relays_after);

		if (n)
			log_info("purged %zu expired or orphaned call(s)", n);
		core->last_purge = now;
	}
	if (core->links && core->config->selection == CONFIG_SELECT_LEAST_LOADED)
		poll_load(core);
}

int core_start(struct dispatcher_core *core)
{
	struct timeval tick = { CORE_TICK_SECONDS, 0 };

	core->last_purge = time(NULL);
	core->housekeeping = event_new(core->base, -1, EV_PERSIST, on_housekeeping, core);
	if (!core->housekeeping || event_add(core->housekeeping, &tick)) {
		log_error("cannot start the housekeeping timer");
		return -1;
	}
	return 0;
}

void core_stop(struct dispatcher_core *core)
{
	if (core->housekeeping)
		event_free(core->housekeeping);
	core->housekeeping = NULL;
}
