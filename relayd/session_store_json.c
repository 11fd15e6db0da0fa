/* The session table on disk as JSON (session_store_image.h): the image
 * written field by field, and read back with every value checked, so
 * that a damaged file is refused with a reason instead of restoring
 * half a call. Pure: no I/O, no logging. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "session_store_image.h"

static const char *const side_names[2] = { "caller", "callee" };
static const char *const leg_names[2] = { "rtp", "rtcp" };

/* ---- writing ------------------------------------------------------------- */

/* Doubles that read back exactly. */
static struct json_object *jdouble(double d)
{
	char buf[40];

	snprintf(buf, sizeof(buf), "%.17g", d);
	if (!strpbrk(buf, ".eEn")) /* n: nan/inf never get here, but stay valid */
		strcat(buf, ".0");
	return json_object_new_double_s(d, buf);
}

static struct json_object *jstr_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static struct json_object *jaddr_or_null(const struct net_addr *a)
{
	char buf[INET6_ADDRSTRLEN];

	if (a->family == AF_UNSPEC || net_addr_format(a, buf, sizeof(buf)))
		return NULL;
	return json_object_new_string(buf);
}

static struct json_object *jpair(const uint64_t v[2])
{
	struct json_object *a = json_object_new_array();

	json_object_array_add(a, json_object_new_uint64(v[0]));
	json_object_array_add(a, json_object_new_uint64(v[1]));
	return a;
}

static void add(struct json_object *o, const char *key, struct json_object *v)
{
	json_object_object_add(o, key, v);
}

static struct json_object *party_json(const struct session_party *p)
{
	struct json_object *o = json_object_new_object();

	add(o, "ip", p->known ? jaddr_or_null(&p->ip) : NULL);
	add(o, "port", json_object_new_int(p->port));
	add(o, "on_hold", json_object_new_boolean(p->on_hold));
	add(o, "ice", json_object_new_boolean(p->ice));
	return o;
}

static struct json_object *dp_side_json(const struct stream_saved_side *sd)
{
	struct json_object *o = json_object_new_object();

	add(o, "port", json_object_new_int(sd->rtp_port));
	add(o, "sdp_ip", jaddr_or_null(&sd->sdp));
	add(o, "sdp_port", json_object_new_int(sd->sdp_port));
	add(o, "on_hold", json_object_new_boolean(sd->on_hold));
	add(o, "codec", json_object_new_string(sd->codec));
	add(o, "bytes", json_object_new_uint64(sd->bytes));
	add(o, "packets", json_object_new_uint64(sd->packets));
	for (int leg = 0; leg < 2; leg++) {
		struct json_object *l = json_object_new_object();
		const struct forward_endpoint *ep = &sd->latched[leg];

		add(l, "latched_ip", ep->port ? jaddr_or_null(&ep->addr) : NULL);
		add(l, "latched_port", json_object_new_int(ep->port));
		add(l, "kernel_bytes", json_object_new_uint64(sd->kernel[leg].bytes));
		add(l, "kernel_packets", json_object_new_uint64(sd->kernel[leg].packets));
		add(o, leg_names[leg], l);
	}
	return o;
}

static struct json_object *dp_json(const struct session_store_stream *st)
{
	struct json_object *o = json_object_new_object(), *be = json_object_new_object();

	add(o, "created", jdouble(st->created));
	add(o, "first_media", st->first_media > 0 ? jdouble(st->first_media) : NULL);
	add(o, "dropped_packets", json_object_new_uint64(st->dp.dropped_packets));
	for (int leg = 0; leg < 2; leg++)
		add(be, leg_names[leg], json_object_new_boolean(st->dp.installed[leg]));
	add(o, "handed_to_backend", be);
	for (int side = 0; side < 2; side++)
		add(o, side_names[side], dp_side_json(&st->dp.side[side]));
	return o;
}

static struct json_object *final_json(const struct stream_stats *f)
{
	struct json_object *o = json_object_new_object();

	add(o, "post_dial_delay", f->first_media_ns
		   ? jdouble((double)(f->first_media_ns - f->created_ns) / 1e9) : NULL);
	add(o, "dropped_packets", json_object_new_uint64(f->dropped_packets));
	for (int side = 0; side < 2; side++) {
		const struct stream_side_stats *s = &f->side[side];
		struct json_object *j = json_object_new_object();

		add(j, "codec", json_object_new_string(s->codec));
		add(j, "bytes", json_object_new_uint64(s->bytes));
		add(j, "packets", json_object_new_uint64(s->packets));
		add(j, "local", json_object_new_string(s->local));
		add(j, "remote", json_object_new_string(s->remote));
		add(o, side_names[side], j);
	}
	return o;
}

static const char *stream_status(const struct session_store_stream *st)
{
	if (st->alive)
		return st->party[0].on_hold || st->party[1].on_hold ? "on hold" : "active";
	return session_end_name(st->end);
}

static struct json_object *stream_json(const struct session_store_stream *st)
{
	struct json_object *o = json_object_new_object();

	add(o, "media_type", json_object_new_string(st->media_type));
	add(o, "status", json_object_new_string(stream_status(st)));
	add(o, "timeout_wait", json_object_new_int64(st->timeout_wait));
	add(o, "start_time", st->started ? jdouble(st->start_time) : NULL);
	add(o, "end_time", st->ended ? jdouble(st->end_time) : NULL);
	for (int side = 0; side < 2; side++)
		add(o, side_names[side], party_json(&st->party[side]));
	if (st->has_dp)
		add(o, "relay", dp_json(st));
	else
		add(o, "final", final_json(&st->final));
	return o;
}

static struct json_object *session_json(const struct session_store_session *se)
{
	struct json_object *o = json_object_new_object();
	struct json_object *offers = json_object_new_array(), *streams = json_object_new_array();

	add(o, "call_id", json_object_new_string(se->call_id));
	add(o, "from_tag", json_object_new_string(se->from_tag));
	add(o, "to_tag", jstr_or_null(se->to_tag));
	add(o, "from_uri", json_object_new_string(se->from_uri));
	add(o, "to_uri", json_object_new_string(se->to_uri));
	add(o, "caller_ua", jstr_or_null(se->caller_ua));
	add(o, "callee_ua", jstr_or_null(se->callee_ua));
	add(o, "username", jstr_or_null(se->username));
	add(o, "dispatcher", json_object_new_string(se->dispatcher));
	add(o, "cseq", se->has_cseq ? jpair(se->cseq) : NULL);
	add(o, "start_time", se->started ? jdouble(se->start_time) : NULL);
	for (size_t i = 0; i < se->offer_count; i++) {
		const struct session_store_offer *of = &se->offers[i];
		struct json_object *j = json_object_new_object(), *idx = json_object_new_array();

		add(j, "cseq", jpair(of->cseq));
		for (size_t k = 0; k < of->count; k++)
			json_object_array_add(idx, json_object_new_uint64(of->streams[k]));
		add(j, "streams", idx);
		json_object_array_add(offers, j);
	}
	add(o, "offers", offers);
	for (size_t i = 0; i < se->stream_count; i++)
		json_object_array_add(streams, stream_json(&se->streams[i]));
	add(o, "streams", streams);
	return o;
}

int session_store_format(const struct session_store_image *img, char **out)
{
	struct json_object *root = json_object_new_object(), *sessions = json_object_new_array();
	const char *text;

	*out = NULL;
	if (!root || !sessions) {
		json_object_put(root);
		json_object_put(sessions);
		return -ENOMEM;
	}
	add(root, "format", json_object_new_string(SESSION_STORE_FORMAT));
	add(root, "version", json_object_new_int(SESSION_STORE_VERSION));
	add(root, "saved_at", jdouble(img->saved_at));
	add(root, "relay_ip", json_object_new_string(img->relay_ip));
	for (size_t i = 0; i < img->count; i++)
		json_object_array_add(sessions, session_json(&img->sessions[i]));
	add(root, "sessions", sessions);
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
							JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text)
		*out = strdup(text);
	json_object_put(root);
	return *out ? 0 : -ENOMEM;
}

/* ---- reading ------------------------------------------------------------- */

struct reader {
	char *why;
	size_t why_len;
	char where[96];  /* "session 3: stream 1: caller" */
};

static int fail(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct reader *r, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(r->why, r->why_len, "%s%s%s", r->where, r->where[0] ? ": " : "", msg);
	return -EINVAL;
}

/* The member, which must be there (null counts as there). */
static int member(struct reader *r, struct json_object *o, const char *key,
		  struct json_object **v)
{
	if (!json_object_object_get_ex(o, key, v))
		return fail(r, "no \"%s\"", key);
	return 0;
}

static int get_typed(struct reader *r, struct json_object *o, const char *key,
		     enum json_type type, const char *what, struct json_object **v)
{
	int rc = member(r, o, key, v);

	if (!rc && !json_object_is_type(*v, type))
		return fail(r, "\"%s\" is not %s", key, what);
	return rc;
}

static int get_object(struct reader *r, struct json_object *o, const char *key,
		      struct json_object **v)
{
	return get_typed(r, o, key, json_type_object, "an object", v);
}

static int get_bool(struct reader *r, struct json_object *o, const char *key, bool *out)
{
	struct json_object *v;
	int rc = get_typed(r, o, key, json_type_boolean, "true or false", &v);

	if (!rc)
		*out = json_object_get_boolean(v);
	return rc;
}

static int u64_of(struct reader *r, struct json_object *v, const char *key, uint64_t max,
		  uint64_t *out)
{
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
	    json_object_get_uint64(v) > max)
		return fail(r, "\"%s\" is not an integer in 0..%llu", key, (unsigned long long)max);
	*out = json_object_get_uint64(v);
	return 0;
}

static int get_u64(struct reader *r, struct json_object *o, const char *key, uint64_t max,
		   uint64_t *out)
{
	struct json_object *v;
	int rc = member(r, o, key, &v);

	return rc ? rc : u64_of(r, v, key, max, out);
}

static int get_port(struct reader *r, struct json_object *o, const char *key, uint16_t *out)
{
	uint64_t v;
	int rc = get_u64(r, o, key, 65535, &v);

	if (!rc)
		*out = (uint16_t)v;
	return rc;
}

/* A finite double, or null (*present false) when nullable. */
static int get_time(struct reader *r, struct json_object *o, const char *key, bool nullable,
		    bool *present, double *out)
{
	struct json_object *v;
	int rc = member(r, o, key, &v);

	if (rc)
		return rc;
	*present = v != NULL;
	*out = 0;
	if (!v && nullable)
		return 0;
	if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
		return fail(r, "\"%s\" is not a number", key);
	*out = json_object_get_double(v);
	if (!isfinite(*out) || *out < 0)
		return fail(r, "\"%s\" is not a time", key);
	return 0;
}

/* A string of at most max characters without NUL; NULL for null when
 * nullable. Points into the JSON object. */
static int get_cstr(struct reader *r, struct json_object *o, const char *key, bool nullable,
		    size_t max, const char **out)
{
	struct json_object *v;
	int rc = member(r, o, key, &v);
	size_t len;

	if (rc)
		return rc;
	*out = NULL;
	if (!v && nullable)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return fail(r, "\"%s\" is not a string", key);
	len = (size_t)json_object_get_string_len(v);
	*out = json_object_get_string(v);
	if (len > max || strlen(*out) != len)
		return fail(r, "\"%s\" is too long or holds a NUL", key);
	return 0;
}

static int get_strdup(struct reader *r, struct json_object *o, const char *key, bool nullable,
		      char **out)
{
	const char *s;
	int rc = get_cstr(r, o, key, nullable, SESSION_STORE_MAX_STRING, &s);

	if (rc || !s)
		return rc;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static int get_strbuf(struct reader *r, struct json_object *o, const char *key, char *buf,
		      size_t size)
{
	const char *s;
	int rc = get_cstr(r, o, key, false, size - 1, &s);

	if (!rc)
		snprintf(buf, size, "%s", s);
	return rc;
}

static int get_addr(struct reader *r, struct json_object *o, const char *key,
		    struct net_addr *out)
{
	const char *s;
	int rc = get_cstr(r, o, key, true, INET6_ADDRSTRLEN, &s);

	memset(out, 0, sizeof(*out));
	if (rc || !s)
		return rc;
	if (net_addr_parse(s, out))
		return fail(r, "\"%s\" is not an IP address", key);
	return 0;
}

static int get_cseq(struct reader *r, struct json_object *o, const char *key, bool nullable,
		    bool *present, uint64_t out[2])
{
	struct json_object *v;
	int rc = member(r, o, key, &v);

	if (rc)
		return rc;
	*present = v != NULL;
	if (!v && nullable)
		return 0;
	if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) != 2)
		return fail(r, "\"%s\" is not a pair of integers", key);
	for (size_t i = 0; i < 2 && !rc; i++)
		rc = u64_of(r, json_object_array_get_idx(v, i), key, UINT64_MAX, &out[i]);
	return rc;
}

static int read_party(struct reader *r, struct json_object *o, struct session_party *p)
{
	int rc;

	if ((rc = get_addr(r, o, "ip", &p->ip)) || (rc = get_port(r, o, "port", &p->port)) ||
	    (rc = get_bool(r, o, "on_hold", &p->on_hold)) || (rc = get_bool(r, o, "ice", &p->ice)))
		return rc;
	p->known = p->ip.family != AF_UNSPEC;
	return 0;
}

static int read_dp_leg(struct reader *r, struct json_object *o, struct stream_saved_side *sd,
		       int leg)
{
	struct forward_endpoint *ep = &sd->latched[leg];
	int rc;

	if ((rc = get_addr(r, o, "latched_ip", &ep->addr)) ||
	    (rc = get_port(r, o, "latched_port", &ep->port)) ||
	    (rc = get_u64(r, o, "kernel_bytes", UINT64_MAX, &sd->kernel[leg].bytes)) ||
	    (rc = get_u64(r, o, "kernel_packets", UINT64_MAX, &sd->kernel[leg].packets)))
		return rc;
	if ((ep->addr.family == AF_UNSPEC) != (ep->port == 0))
		return fail(r, "%s: a latched address needs both an IP and a port", leg_names[leg]);
	return 0;
}

static int read_dp_side(struct reader *r, struct json_object *o, struct stream_saved_side *sd)
{
	struct json_object *l;
	int rc;

	if ((rc = get_port(r, o, "port", &sd->rtp_port)) ||
	    (rc = get_addr(r, o, "sdp_ip", &sd->sdp)) ||
	    (rc = get_port(r, o, "sdp_port", &sd->sdp_port)) ||
	    (rc = get_bool(r, o, "on_hold", &sd->on_hold)) ||
	    (rc = get_strbuf(r, o, "codec", sd->codec, sizeof(sd->codec))) ||
	    (rc = get_u64(r, o, "bytes", UINT64_MAX, &sd->bytes)) ||
	    (rc = get_u64(r, o, "packets", UINT64_MAX, &sd->packets)))
		return rc;
	if (!sd->rtp_port || sd->rtp_port % 2)
		return fail(r, "port %u is not an even relay port", sd->rtp_port);
	for (int leg = 0; leg < 2 && !rc; leg++)
		if (!(rc = get_object(r, o, leg_names[leg], &l)))
			rc = read_dp_leg(r, l, sd, leg);
	return rc;
}

static int read_dp(struct reader *r, struct json_object *o, struct session_store_stream *st)
{
	size_t n = strlen(r->where);
	struct json_object *v;
	bool present;
	int rc;

	st->has_dp = true;
	if ((rc = get_time(r, o, "created", false, &present, &st->created)) ||
	    (rc = get_time(r, o, "first_media", true, &present, &st->first_media)) ||
	    (rc = get_u64(r, o, "dropped_packets", UINT64_MAX, &st->dp.dropped_packets)) ||
	    (rc = get_object(r, o, "handed_to_backend", &v)))
		return rc;
	for (int leg = 0; leg < 2 && !rc; leg++)
		rc = get_bool(r, v, leg_names[leg], &st->dp.installed[leg]);
	for (int side = 0; side < 2 && !rc; side++) {
		if ((rc = get_object(r, o, side_names[side], &v)))
			break;
		snprintf(r->where + n, sizeof(r->where) - n, ": relay %s", side_names[side]);
		rc = read_dp_side(r, v, &st->dp.side[side]);
		r->where[n] = '\0';
	}
	return rc;
}

static int read_final(struct reader *r, struct json_object *o, struct stream_stats *f)
{
	struct json_object *v;
	double pdd;
	bool present;
	int rc;

	if ((rc = get_time(r, o, "post_dial_delay", true, &present, &pdd)) ||
	    (rc = get_u64(r, o, "dropped_packets", UINT64_MAX, &f->dropped_packets)))
		return rc;
	if (present) {
		if (pdd > 1e9)
			return fail(r, "\"post_dial_delay\" is out of range");
		f->created_ns = 1; /* 0 would read as "no media" */
		f->first_media_ns = 1 + (uint64_t)llround(pdd * 1e9);
	}
	for (int side = 0; side < 2 && !rc; side++) {
		struct stream_side_stats *s = &f->side[side];

		if ((rc = get_object(r, o, side_names[side], &v)) ||
		    (rc = get_strbuf(r, v, "codec", s->codec, sizeof(s->codec))) ||
		    (rc = get_u64(r, v, "bytes", UINT64_MAX, &s->bytes)) ||
		    (rc = get_u64(r, v, "packets", UINT64_MAX, &s->packets)) ||
		    (rc = get_strbuf(r, v, "local", s->local, sizeof(s->local))) ||
		    (rc = get_strbuf(r, v, "remote", s->remote, sizeof(s->remote))))
			break;
	}
	return rc;
}

static int read_status(struct reader *r, struct json_object *o, struct session_store_stream *st)
{
	const char *status;
	int rc = get_cstr(r, o, "status", false, 64, &status);

	if (rc)
		return rc;
	st->alive = !strcmp(status, "active") || !strcmp(status, "on hold");
	if (st->alive)
		return 0;
	for (int e = 0; session_end_name((enum session_end)e); e++) {
		if (!strcmp(status, session_end_name((enum session_end)e))) {
			st->end = (enum session_end)e;
			return 0;
		}
	}
	return fail(r, "unknown status \"%s\"", status);
}

static int read_stream(struct reader *r, struct json_object *o, struct session_store_stream *st)
{
	struct json_object *v;
	uint64_t wait;
	int rc;

	if (!json_object_is_type(o, json_type_object))
		return fail(r, "not an object");
	if ((rc = get_strbuf(r, o, "media_type", st->media_type, sizeof(st->media_type))) ||
	    (rc = read_status(r, o, st)) ||
	    (rc = get_u64(r, o, "timeout_wait", UINT32_MAX, &wait)) ||
	    (rc = get_time(r, o, "start_time", true, &st->started, &st->start_time)) ||
	    (rc = get_time(r, o, "end_time", true, &st->ended, &st->end_time)))
		return rc;
	st->timeout_wait = (unsigned int)wait;
	for (int side = 0; side < 2 && !rc; side++)
		if (!(rc = get_object(r, o, side_names[side], &v)))
			rc = read_party(r, v, &st->party[side]);
	if (rc)
		return rc;
	if (json_object_object_get_ex(o, "relay", &v) && v) {
		if (!json_object_is_type(v, json_type_object))
			return fail(r, "\"relay\" is not an object");
		if (!st->alive)
			return fail(r, "an ended stream has relay ports");
		return read_dp(r, v, st);
	}
	if ((rc = get_object(r, o, "final", &v)))
		return rc;
	return read_final(r, v, &st->final);
}

static int read_offer(struct reader *r, struct json_object *o, size_t stream_count,
		      struct session_store_offer *of)
{
	struct json_object *idx;
	bool present;
	int rc;

	if (!json_object_is_type(o, json_type_object))
		return fail(r, "not an object");
	if ((rc = get_cseq(r, o, "cseq", false, &present, of->cseq)) ||
	    (rc = get_typed(r, o, "streams", json_type_array, "an array", &idx)))
		return rc;
	of->count = json_object_array_length(idx);
	if (of->count > MEDIA_SPEC_MAX_STREAMS)
		return fail(r, "%zu streams in one offer", of->count);
	for (size_t k = 0; k < of->count && !rc; k++) {
		uint64_t i;

		rc = u64_of(r, json_object_array_get_idx(idx, k), "streams", stream_count - 1, &i);
		of->streams[k] = (size_t)i;
	}
	return rc;
}

/* An array member of at most max elements, each allocated in *items. */
static int get_array(struct reader *r, struct json_object *o, const char *key, size_t max,
		     size_t item_size, struct json_object **arr, size_t *count, void **items)
{
	int rc = get_typed(r, o, key, json_type_array, "an array", arr);

	if (rc)
		return rc;
	*count = json_object_array_length(*arr);
	if (*count > max)
		return fail(r, "%zu %s, more than %zu", *count, key, max);
	*items = calloc(*count ? *count : 1, item_size);
	return *items ? 0 : -ENOMEM;
}

static int read_session_strings(struct reader *r, struct json_object *o,
				struct session_store_session *se)
{
	int rc;

	if ((rc = get_strdup(r, o, "call_id", false, &se->call_id)) ||
	    (rc = get_strdup(r, o, "from_tag", false, &se->from_tag)) ||
	    (rc = get_strdup(r, o, "to_tag", true, &se->to_tag)) ||
	    (rc = get_strdup(r, o, "from_uri", false, &se->from_uri)) ||
	    (rc = get_strdup(r, o, "to_uri", false, &se->to_uri)) ||
	    (rc = get_strdup(r, o, "caller_ua", true, &se->caller_ua)) ||
	    (rc = get_strdup(r, o, "callee_ua", true, &se->callee_ua)) ||
	    (rc = get_strdup(r, o, "username", true, &se->username)) ||
	    (rc = get_strdup(r, o, "dispatcher", false, &se->dispatcher)))
		return rc;
	if (!se->call_id[0] || !se->from_tag[0])
		return fail(r, "empty call_id or from_tag");
	return 0;
}

static int read_session(struct reader *r, struct json_object *o, struct session_store_session *se)
{
	struct json_object *arr;
	size_t n = strlen(r->where);
	int rc;

	if (!json_object_is_type(o, json_type_object))
		return fail(r, "not an object");
	if ((rc = read_session_strings(r, o, se)) ||
	    (rc = get_cseq(r, o, "cseq", true, &se->has_cseq, se->cseq)) ||
	    (rc = get_time(r, o, "start_time", true, &se->started, &se->start_time)) ||
	    (rc = get_array(r, o, "streams", SESSION_MAX_STREAMS, sizeof(*se->streams), &arr,
			    &se->stream_count, (void **)&se->streams)))
		return rc;
	for (size_t i = 0; i < se->stream_count && !rc; i++) {
		snprintf(r->where + n, sizeof(r->where) - n, ": stream %zu", i);
		rc = read_stream(r, json_object_array_get_idx(arr, i), &se->streams[i]);
	}
	r->where[n] = '\0';
	if (rc || (rc = get_array(r, o, "offers", SESSION_MAX_OFFERS, sizeof(*se->offers), &arr,
				  &se->offer_count, (void **)&se->offers)))
		return rc;
	if (!se->offer_count || !se->stream_count)
		return fail(r, "a session without offers or streams");
	for (size_t i = 0; i < se->offer_count && !rc; i++) {
		snprintf(r->where + n, sizeof(r->where) - n, ": offer %zu", i);
		rc = read_offer(r, json_object_array_get_idx(arr, i), se->stream_count,
				&se->offers[i]);
	}
	r->where[n] = '\0';
	return rc;
}

static int read_image(struct reader *r, struct json_object *root, struct session_store_image *img)
{
	struct json_object *arr;
	const char *format;
	uint64_t version;
	bool present;
	int rc;

	if (!json_object_is_type(root, json_type_object))
		return fail(r, "not a JSON object");
	if ((rc = get_cstr(r, root, "format", false, 64, &format)))
		return rc;
	if (strcmp(format, SESSION_STORE_FORMAT))
		return fail(r, "format is \"%s\", not \"%s\"", format, SESSION_STORE_FORMAT);
	if ((rc = get_u64(r, root, "version", UINT32_MAX, &version)))
		return rc;
	if (version != SESSION_STORE_VERSION)
		return fail(r, "version %llu, not %d", (unsigned long long)version,
			    SESSION_STORE_VERSION);
	if ((rc = get_time(r, root, "saved_at", false, &present, &img->saved_at)) ||
	    (rc = get_strbuf(r, root, "relay_ip", img->relay_ip, sizeof(img->relay_ip))) ||
	    (rc = get_array(r, root, "sessions", SIZE_MAX / sizeof(*img->sessions) / 2,
			    sizeof(*img->sessions), &arr, &img->count, (void **)&img->sessions)))
		return rc;
	for (size_t i = 0; i < img->count && !rc; i++) {
		snprintf(r->where, sizeof(r->where), "session %zu", i);
		rc = read_session(r, json_object_array_get_idx(arr, i), &img->sessions[i]);
	}
	return rc;
}

static bool only_space(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
			return false;
	return true;
}

int session_store_parse(const char *text, size_t len, struct session_store_image *out,
			char *why, size_t why_len)
{
	struct reader r = { .why = why, .why_len = why_len };
	struct json_tokener *tok;
	struct json_object *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if (why_len)
		why[0] = '\0';
	if (len > SESSION_STORE_MAX_BYTES || len > INT32_MAX)
		return fail(&r, "%zu bytes, more than a session table can be", len);
	if (memchr(text, '\0', len))
		return fail(&r, "a NUL byte in the text");
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, text, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success ||
	    !only_space(text + json_tokener_get_parse_end(tok),
			len - json_tokener_get_parse_end(tok))) {
		rc = fail(&r, "not JSON, or truncated (%s)",
			  json_tokener_error_desc(json_tokener_get_error(tok)));
		json_object_put(root);
		json_tokener_free(tok);
		return rc;
	}
	json_tokener_free(tok);
	rc = read_image(&r, root, out);
	json_object_put(root);
	if (rc)
		session_store_image_free(out);
	return rc;
}

void session_store_image_free(struct session_store_image *img)
{
	for (size_t i = 0; img->sessions && i < img->count; i++) {
		struct session_store_session *se = &img->sessions[i];

		free(se->call_id);
		free(se->from_tag);
		free(se->from_uri);
		free(se->to_uri);
		free(se->dispatcher);
		free(se->to_tag);
		free(se->caller_ua);
		free(se->callee_ua);
		free(se->username);
		free(se->streams);
		free(se->offers);
	}
	free(img->sessions);
	memset(img, 0, sizeof(*img));
}
