/* The relay's JSON (PROTOCOL.md 3.3, 3.4): session statistics, field by
 * field with the types upstream's Python produced (floats stay floats,
 * absent values are null), and the relay summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session_internal.h"

/* A float that prints like Python's repr: the shortest text that reads
 * back to the same double, and always with a '.' or an exponent, so a
 * reader sees a float (128000.0, not 128000). */
static struct json_object *json_float(double d)
{
	char buf[48];

	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	if (!strpbrk(buf, ".eE"))
		strcat(buf, ".0");
	return json_object_new_double_s(d, buf);
}

static struct json_object *json_str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

/* Whole seconds as Python's int() of a difference, never below 0 (a
 * wall clock stepped back must not give negative durations). */
static int64_t whole_seconds(double d)
{
	return d > 0 ? (int64_t)d : 0;
}

static int64_t session_duration(const struct session *se)
{
	if (!se->started)
		return 0;
	return whole_seconds((se->ended ? se->end_time : session_now(se->table)) - se->start_time);
}

struct stream_ref {
	struct session_stream *s;
	size_t order; /* creation order: ties keep it */
};

static int by_start_time(const void *a, const void *b)
{
	const struct stream_ref *x = a, *y = b;

	if (x->s->start_time != y->s->start_time)
		return x->s->start_time < y->s->start_time ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void add(struct json_object *o, const char *key, struct json_object *v)
{
	json_object_object_add(o, key, v);
}

static void add_times(struct json_object *o, const struct session *se,
		      const struct session_stream *s, int64_t duration)
{
	int64_t start = se->started ? whole_seconds(s->start_time - se->start_time) : 0;
	int64_t end;

	if (!se->started)
		end = 0;
	else if (!s->alive && s->end == SESSION_END_REJECTED)
		end = start;
	else if (!s->ended)
		end = duration;
	else
		end = whole_seconds(s->end_time - se->start_time) < duration
			      ? whole_seconds(s->end_time - se->start_time) : duration;
	add(o, "start_time", json_object_new_int64(start));
	add(o, "end_time", json_object_new_int64(end));
}

static struct json_object *stream_json(const struct session *se, struct session_stream *s,
				       int64_t duration)
{
	struct json_object *o = json_object_new_object();
	const struct stream_side_stats *caller, *callee;
	struct stream_stats st;

	if (!o)
		return NULL;
	session_stream_stats(s, &st);
	caller = &st.side[STREAM_CALLER];
	callee = &st.side[STREAM_CALLEE];
	add(o, "media_type", json_object_new_string(s->media_type));
	add(o, "status", json_object_new_string(session_stream_status(s)));
	add(o, "timeout_wait", json_object_new_int64(s->timeout_wait));
	add(o, "caller_codec", json_object_new_string(caller->codec));
	add(o, "callee_codec", json_object_new_string(callee->codec));
	add_times(o, se, s, duration);
	add(o, "post_dial_delay", st.first_media_ns
		   ? json_float((double)(st.first_media_ns - st.created_ns) / 1e9) : NULL);
	add(o, "caller_bytes", json_object_new_uint64(caller->bytes));
	add(o, "callee_bytes", json_object_new_uint64(callee->bytes));
	add(o, "caller_packets", json_object_new_uint64(caller->packets));
	add(o, "callee_packets", json_object_new_uint64(callee->packets));
	add(o, "caller_local", json_object_new_string(caller->local));
	add(o, "callee_local", json_object_new_string(callee->local));
	add(o, "caller_remote", json_object_new_string(caller->remote));
	add(o, "callee_remote", json_object_new_string(callee->remote));
	add(o, "dropped_packets", json_object_new_uint64(st.dropped_packets)); /* D4 */
	return o;
}

/* Only streams that an answer reached, in the order they started. */
static struct json_object *streams_json(struct session *se, int64_t duration)
{
	struct json_object *a = json_object_new_array();
	struct stream_ref *refs;
	size_t n = 0;

	if (!a)
		return NULL;
	refs = calloc(se->stream_count ? se->stream_count : 1, sizeof(*refs));
	if (!refs) {
		json_object_put(a);
		return NULL;
	}
	for (struct session_stream *s = se->streams; s; s = s->next) {
		if (s->started) {
			refs[n].s = s;
			refs[n].order = n;
			n++;
		}
	}
	qsort(refs, n, sizeof(*refs), by_start_time);
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = stream_json(se, refs[i].s, duration);

		if (!o || json_object_array_add(a, o)) {
			json_object_put(o);
			json_object_put(a);
			a = NULL;
			break;
		}
	}
	free(refs);
	return a;
}

struct json_object *session_json_statistics(struct session *se)
{
	struct json_object *o = json_object_new_object(), *streams;
	int64_t duration = session_duration(se);

	if (!o)
		return NULL;
	add(o, "call_id", json_object_new_string(se->call_id));
	add(o, "from_tag", json_object_new_string(se->from_tag));
	add(o, "from_uri", json_object_new_string(se->from_uri));
	add(o, "to_tag", json_str_or_null(se->to_tag));
	add(o, "to_uri", json_object_new_string(se->to_uri));
	add(o, "start_time", se->started ? json_float(se->start_time) : NULL);
	add(o, "duration", json_object_new_int64(duration));
	add(o, "caller_ua", json_object_new_string(se->caller_ua ? se->caller_ua : "Unknown"));
	add(o, "callee_ua", json_object_new_string(se->callee_ua ? se->callee_ua : "Unknown"));
	add(o, "username", json_str_or_null(se->username));
	streams = streams_json(se, duration);
	if (!streams) {
		json_object_put(o);
		return NULL;
	}
	add(o, "streams", streams);
	return o;
}

struct json_object *session_json_summary(struct session_table *t)
{
	struct json_object *o = json_object_new_object();
	char ip[INET6_ADDRSTRLEN] = "";
	int64_t streams = 0;

	if (!o)
		return NULL;
	for (struct session *se = t->head; se; se = se->next)
		for (struct session_stream *s = se->streams; s; s = s->next)
			streams += s->alive;
	net_addr_format(&t->opts.relay_ip, ip, sizeof(ip));
	add(o, "ip", json_object_new_string(ip));
	add(o, "version", json_object_new_string(MP_VERSION));
	add(o, "status", json_object_new_string(t->halting ? "halting" : "active"));
	add(o, "uptime", json_object_new_int64(whole_seconds(session_now(t) - t->start_time)));
	add(o, "session_count", json_object_new_int64(t->count));
	add(o, "stream_count", json_object_new_int64(streams));
	add(o, "bps_relayed", json_float(t->opts.bps_relayed ? *t->opts.bps_relayed : 0.0));
	return o;
}

char *session_json_string(struct json_object *obj)
{
	const char *text;
	char *copy = NULL;

	if (!obj)
		return NULL;
	text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text)
		copy = strdup(text);
	json_object_put(obj);
	return copy;
}
