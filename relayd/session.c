/* The session table (session.h): sessions hashed by (call_id, from_tag)
 * and listed in order of creation, the dispatcher commands other than
 * update (session_offer.c), and the end of sessions: removed, expired
 * when their streams timed out, or all at once on shutdown. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "session_internal.h"

#define SESSION_BUCKETS_MIN 256

static double realtime_now(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double session_now(const struct session_table *t)
{
	return t->opts.clock(t->opts.clock_ctx);
}

/* FNV-1a over call_id, a separator that cannot occur in a header value
 * (NUL), and the tag. */
static size_t key_hash(struct lineproto_str call_id, struct lineproto_str tag)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < call_id.len; i++)
		h = (h ^ (uint8_t)call_id.ptr[i]) * 1099511628211ull;
	h = (h ^ 0) * 1099511628211ull;
	for (size_t i = 0; i < tag.len; i++)
		h = (h ^ (uint8_t)tag.ptr[i]) * 1099511628211ull;
	return (size_t)h;
}

static struct session **bucket_of(struct session_table *t, struct lineproto_str call_id,
				  struct lineproto_str tag)
{
	return &t->buckets[key_hash(call_id, tag) & (t->bucket_count - 1)];
}

struct session *session_find(struct session_table *t, struct lineproto_str call_id,
			     struct lineproto_str tag)
{
	struct session *se;

	if (!tag.len)
		return NULL;
	for (se = *bucket_of(t, call_id, tag); se; se = se->hash_next)
		if (lineproto_str_eq(call_id, se->call_id) && lineproto_str_eq(tag, se->from_tag))
			return se;
	return NULL;
}

/* Doubles the buckets when sessions outnumber them. Failing to grow only
 * makes chains longer, so it is not an error. */
static void maybe_grow(struct session_table *t)
{
	size_t n = t->bucket_count * 2;
	struct session **b;

	if (t->count < t->bucket_count)
		return;
	b = calloc(n, sizeof(*b));
	if (!b)
		return;
	free(t->buckets);
	t->buckets = b;
	t->bucket_count = n;
	for (struct session *se = t->head; se; se = se->next) {
		struct session **slot = bucket_of(t, lineproto_str_from(se->call_id),
						  lineproto_str_from(se->from_tag));

		se->hash_next = *slot;
		*slot = se;
	}
}

void session_changed(struct session_table *t)
{
	if (t->opts.changed)
		t->opts.changed(t->opts.changed_ctx);
}

int session_insert(struct session_table *t, struct session *se)
{
	struct session **slot;

	maybe_grow(t);
	slot = bucket_of(t, lineproto_str_from(se->call_id), lineproto_str_from(se->from_tag));
	se->hash_next = *slot;
	*slot = se;
	se->prev = t->tail;
	se->next = NULL;
	if (t->tail)
		t->tail->next = se;
	else
		t->head = se;
	t->tail = se;
	t->count++;
	return 0;
}

static void session_unlink(struct session *se)
{
	struct session_table *t = se->table;
	struct session **slot = bucket_of(t, lineproto_str_from(se->call_id),
					  lineproto_str_from(se->from_tag));

	while (*slot && *slot != se)
		slot = &(*slot)->hash_next;
	if (*slot)
		*slot = se->hash_next;
	if (se->prev)
		se->prev->next = se->next;
	else
		t->head = se->next;
	if (se->next)
		se->next->prev = se->prev;
	else
		t->tail = se->prev;
	t->count--;
}

void session_free(struct session *se)
{
	struct session_offer *o, *onext;
	struct session_stream *s, *snext;

	if (!se)
		return;
	for (o = se->offers; o; o = onext) {
		onext = o->next;
		free(o);
	}
	for (s = se->streams; s; s = snext) {
		snext = s->next;
		session_stream_free(s);
	}
	free(se->call_id);
	free(se->from_tag);
	free(se->to_tag);
	free(se->from_uri);
	free(se->to_uri);
	free(se->caller_ua);
	free(se->callee_ua);
	free(se->username);
	free(se->dispatcher);
	free(se);
}

/* Ends every stream still alive: the session's end time is now. */
static void session_end(struct session *se)
{
	se->ended = true;
	se->end_time = session_now(se->table);
	for (struct session_stream *s = se->streams; s; s = s->next)
		session_stream_end(s, SESSION_END_CLOSED);
}

/* Takes se out of the table, ends it and hands its final statistics to
 * the expired callback. */
static void session_expire(struct session *se)
{
	struct session_table *t = se->table;
	char *json;

	session_unlink(se);
	session_end(se);
	json = session_json_string(session_json_statistics(se));
	log_info("session %s: expired", se->call_id);
	if (!json)
		log_error("session %s: no memory for its statistics; the dispatcher is not told",
			  se->call_id);
	else if (t->opts.expired)
		t->opts.expired(t->opts.ctx, se->dispatcher, json);
	free(json);
	session_free(se);
	session_changed(t);
}

void session_stream_expired(struct session *se)
{
	struct session_offer *o = se->offers;

	/* the current offer and the previous one, as 4.5 says */
	for (int n = 0; o && n < 2; n++, o = o->next)
		for (size_t i = 0; i < o->count; i++)
			if (o->streams[i]->alive)
				return;
	session_expire(se);
}

int session_table_new(struct session_table **out, const struct session_table_options *opts)
{
	struct session_table *t;

	*out = NULL;
	if (!opts->streams || opts->relay_ip.family == AF_UNSPEC)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->opts = *opts;
	if (!t->opts.clock)
		t->opts.clock = realtime_now;
	t->bucket_count = SESSION_BUCKETS_MIN;
	t->buckets = calloc(t->bucket_count, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return -ENOMEM;
	}
	t->start_time = session_now(t);
	*out = t;
	return 0;
}

void session_table_free(struct session_table *t)
{
	if (!t)
		return;
	while (t->head) {
		struct session *se = t->head;

		session_unlink(se);
		session_free(se);
	}
	free(t->buckets);
	free(t);
}

void session_table_set_halting(struct session_table *t)
{
	t->halting = true;
}

unsigned int session_table_count(const struct session_table *t)
{
	return t->count;
}

void session_table_expire_all(struct session_table *t)
{
	while (t->head)
		session_expire(t->head);
}

static char *session_remove(struct session_table *t, const struct lineproto_msg *msg)
{
	const struct lineproto_str *call_id = lineproto_header_get(msg, "call_id");
	const struct lineproto_str *from_tag = lineproto_header_get(msg, "from_tag");
	const struct lineproto_str *to_tag = lineproto_header_get(msg, "to_tag");
	struct session *se;
	char *json;

	if (!call_id || !from_tag) {
		log_warn("remove for call %.*s: missing %s header", call_id ? (int)call_id->len : 7,
			 call_id ? call_id->ptr : "unknown", call_id ? "from_tag" : "call_id");
		return strdup("error");
	}
	se = session_find(t, *call_id, *from_tag);
	if (!se && to_tag)
		se = session_find(t, *call_id, *to_tag);
	if (!se) {
		log_warn("remove for call %.*s: no such session on this relay", (int)call_id->len,
			 call_id->ptr);
		return strdup("error");
	}
	session_unlink(se);
	session_end(se);
	log_info("session %s: removed", se->call_id);
	json = session_json_string(session_json_statistics(se));
	session_free(se);
	session_changed(t);
	return json;
}

static char *session_list(struct session_table *t)
{
	struct json_object *a = json_object_new_array();

	if (!a)
		return NULL;
	for (struct session *se = t->head; se; se = se->next) {
		struct json_object *o = session_json_statistics(se);

		if (!o || json_object_array_add(a, o)) {
			json_object_put(o);
			json_object_put(a);
			return NULL;
		}
	}
	return session_json_string(a);
}

void session_table_command(struct session_table *t, const char *dispatcher,
			   const struct lineproto_msg *msg, char **reply)
{
	const struct lineproto_str *cmd = &msg->command;

	if (lineproto_str_eq(*cmd, "update"))
		*reply = session_update(t, dispatcher, msg);
	else if (lineproto_str_eq(*cmd, "remove"))
		*reply = session_remove(t, msg);
	else if (lineproto_str_eq(*cmd, "summary"))
		*reply = session_json_string(session_json_summary(t));
	else if (lineproto_str_eq(*cmd, "sessions"))
		*reply = session_list(t);
	else {
		log_warn("unknown command %.*s from dispatcher %s", (int)(cmd->len > 64 ? 64 : cmd->len),
			 cmd->ptr ? cmd->ptr : "", dispatcher);
		*reply = strdup("error");
	}
}
