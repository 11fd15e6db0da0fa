/* Accounting record -> the attribute list of PROTOCOL.md §5.2 (see
 * radius_attrs.h for the choices). Reads the JSON, never changes it. */
#include "radius_attrs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

static const struct {
	const char *name;
	enum radius_attr_type type;
} attr_info[RADIUS_ATTR_COUNT] = {
	[RADIUS_ATTR_ACCT_STATUS_TYPE] = { "Acct-Status-Type", RADIUS_TYPE_INTEGER },
	[RADIUS_ATTR_USER_NAME] = { "User-Name", RADIUS_TYPE_STRING },
	[RADIUS_ATTR_ACCT_SESSION_ID] = { "Acct-Session-Id", RADIUS_TYPE_STRING },
	[RADIUS_ATTR_ACCT_SESSION_TIME] = { "Acct-Session-Time", RADIUS_TYPE_INTEGER },
	[RADIUS_ATTR_ACCT_INPUT_OCTETS] = { "Acct-Input-Octets", RADIUS_TYPE_INTEGER },
	[RADIUS_ATTR_ACCT_OUTPUT_OCTETS] = { "Acct-Output-Octets", RADIUS_TYPE_INTEGER },
	[RADIUS_ATTR_SIP_FROM_TAG] = { "Sip-From-Tag", RADIUS_TYPE_STRING },
	[RADIUS_ATTR_SIP_TO_TAG] = { "Sip-To-Tag", RADIUS_TYPE_STRING },
	[RADIUS_ATTR_NAS_IP_ADDRESS] = { "NAS-IP-Address", RADIUS_TYPE_IPV4 },
	[RADIUS_ATTR_NAS_IPV6_ADDRESS] = { "NAS-IPv6-Address", RADIUS_TYPE_IPV6 },
	[RADIUS_ATTR_SIP_USER_AGENTS] = { "Sip-User-Agents", RADIUS_TYPE_STRING },
	[RADIUS_ATTR_SIP_APPLICATIONS] = { "Sip-Applications", RADIUS_TYPE_STRING },
	[RADIUS_ATTR_MEDIA_CODECS] = { "Media-Codecs", RADIUS_TYPE_STRING },
	[RADIUS_ATTR_MEDIA_INFO] = { "Media-Info", RADIUS_TYPE_STRING },
	[RADIUS_ATTR_ACCT_DELAY_TIME] = { "Acct-Delay-Time", RADIUS_TYPE_INTEGER },
};

const char *radius_attr_name(enum radius_attr_id id)
{
	return (unsigned int)id < RADIUS_ATTR_COUNT ? attr_info[id].name : "?";
}

enum radius_attr_type radius_attr_type(enum radius_attr_id id)
{
	return (unsigned int)id < RADIUS_ATTR_COUNT ? attr_info[id].type : RADIUS_TYPE_STRING;
}

const struct radius_attr *radius_attrs_find(const struct radius_attr_list *list,
					    enum radius_attr_id id)
{
	for (size_t i = 0; i < list->count; i++)
		if (list->attr[i].id == id)
			return &list->attr[i];
	return NULL;
}

/* One stream's fields that the record uses, checked. */
struct stream_view {
	const char *media_type;
	const char *caller_codec;
	const char *caller_local;
	int64_t start_time, end_time;
	uint64_t caller_bytes, callee_bytes;
	bool has_pdd;
	double pdd; /* s */
};

/* A string value built by appending, cut to RADIUS_STRING_MAX bytes. buf
 * keeps one byte past the limit: it tells whether the cut falls inside a
 * UTF-8 sequence. */
struct text {
	char buf[RADIUS_STRING_MAX + 2];
	size_t len;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	size_t room = RADIUS_STRING_MAX + 1 - t->len;

	if (n > room)
		n = room;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

static void text_add_str(struct text *t, const char *s)
{
	text_add(t, s, strlen(s));
}

/* Cuts to RADIUS_STRING_MAX bytes; when the first byte dropped continues a
 * UTF-8 sequence, drops that whole sequence too (at most 3 bytes back: the
 * longest sequence is 4 bytes, and invalid input must not eat the text). */
static void text_finish(struct text *t)
{
	size_t cut = RADIUS_STRING_MAX;

	if (t->len <= RADIUS_STRING_MAX)
		return;
	for (int back = 0; back < 3 && cut > 0 &&
			   ((unsigned char)t->buf[cut] & 0xc0) == 0x80; back++)
		cut--;
	if (((unsigned char)t->buf[cut] & 0xc0) == 0x80)
		cut = RADIUS_STRING_MAX; /* 4 continuation bytes: not UTF-8, cut bytes */
	t->len = cut;
	t->buf[cut] = '\0';
}

__attribute__((format(printf, 2, 3)))
static int fail(struct radius_attr_list *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->error, sizeof(out->error), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static struct radius_attr *push(struct radius_attr_list *out, enum radius_attr_id id)
{
	struct radius_attr *a = &out->attr[out->count++];

	memset(a, 0, sizeof(*a));
	a->id = id;
	return a;
}

static void add_u32(struct radius_attr_list *out, enum radius_attr_id id, uint64_t v)
{
	push(out, id)->u32 = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Empty strings are left out (radius_attrs.h); n <= RADIUS_STRING_MAX. */
static void add_str(struct radius_attr_list *out, enum radius_attr_id id,
		    const char *s, size_t n)
{
	struct radius_attr *a;

	if (n == 0)
		return;
	a = push(out, id);
	memcpy(a->str, s, n);
	a->str[n] = '\0';
	a->len = n;
}

static void add_text(struct radius_attr_list *out, enum radius_attr_id id, struct text *t)
{
	text_finish(t);
	add_str(out, id, t->buf, t->len);
}

static const struct json_object *member(const struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* key as a string; *s = NULL for null or absent when nullable. */
static int get_string(struct radius_attr_list *out, const struct json_object *o,
		      const char *where, const char *key, bool nullable, const char **s)
{
	const struct json_object *v = member(o, key);

	*s = NULL;
	if (!v && nullable)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return fail(out, "%s%s is not a string", where, key);
	*s = json_object_get_string((struct json_object *)v);
	return 0;
}

static int get_int(struct radius_attr_list *out, const struct json_object *o,
		   const char *where, const char *key, int64_t *n)
{
	const struct json_object *v = member(o, key);

	if (!json_object_is_type(v, json_type_int))
		return fail(out, "%s%s is not an integer", where, key);
	*n = json_object_get_int64(v);
	return 0;
}

/* A counter: a non-negative integer, up to 2^64-1. */
static int get_count(struct radius_attr_list *out, const struct json_object *o,
		     const char *where, const char *key, uint64_t *n)
{
	const struct json_object *v = member(o, key);

	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return fail(out, "%s%s is not a non-negative integer", where, key);
	*n = json_object_get_uint64(v);
	return 0;
}

static int get_bool(struct radius_attr_list *out, const struct json_object *o,
		    const char *key, bool *b)
{
	const struct json_object *v = member(o, key);

	*b = false;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return fail(out, "%s is not a boolean", key);
	*b = json_object_get_boolean(v);
	return 0;
}

static int get_stream(struct radius_attr_list *out, const struct json_object *streams,
		      size_t i, struct stream_view *v)
{
	const struct json_object *s = json_object_array_get_idx(streams, i);
	const struct json_object *pdd;
	char where[32];
	int rc;

	snprintf(where, sizeof(where), "streams[%zu].", i);
	if (!json_object_is_type(s, json_type_object))
		return fail(out, "streams[%zu] is not an object", i);
	if ((rc = get_string(out, s, where, "media_type", false, &v->media_type)) ||
	    (rc = get_string(out, s, where, "caller_codec", false, &v->caller_codec)) ||
	    (rc = get_string(out, s, where, "caller_local", false, &v->caller_local)) ||
	    (rc = get_int(out, s, where, "start_time", &v->start_time)) ||
	    (rc = get_int(out, s, where, "end_time", &v->end_time)) ||
	    (rc = get_count(out, s, where, "caller_bytes", &v->caller_bytes)) ||
	    (rc = get_count(out, s, where, "callee_bytes", &v->callee_bytes)))
		return rc;
	pdd = member(s, "post_dial_delay");
	v->has_pdd = pdd != NULL;
	if (!pdd)
		return 0;
	if (!json_object_is_type(pdd, json_type_double) && !json_object_is_type(pdd, json_type_int))
		return fail(out, "%spost_dial_delay is not a number", where);
	v->pdd = json_object_get_double(pdd);
	if (!(v->pdd >= 0))
		return fail(out, "%spost_dial_delay is negative", where);
	return 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* NAS-IP-Address or NAS-IPv6-Address from "ip:port" / "[v6]:port"; nothing
 * for "Unknown" or anything else that is not an address. */
static void add_nas_address(struct radius_attr_list *out, const char *local)
{
	struct net_endpoint ep;
	struct net_addr addr;

	if (net_endpoint_parse(local, 0, 0, &ep) || net_addr_parse(ep.host, &addr))
		return;
	if (addr.family == AF_INET) {
		add_u32(out, RADIUS_ATTR_NAS_IP_ADDRESS, ntohl(addr.v4.s_addr));
	} else if (IN6_IS_ADDR_V4MAPPED(&addr.v6)) {
		uint32_t v4;

		memcpy(&v4, &addr.v6.s6_addr[12], sizeof(v4));
		add_u32(out, RADIUS_ATTR_NAS_IP_ADDRESS, ntohl(v4));
	} else {
		memcpy(push(out, RADIUS_ATTR_NAS_IPV6_ADDRESS)->ip6, addr.v6.s6_addr, 16);
	}
}

/* Sorted unique media types of the streams with non-zero length, ", "
 * joined. Picks the next larger name on each pass: no allocation, and the
 * handful of streams a call has makes the n^2 irrelevant. */
static int add_applications(struct radius_attr_list *out, const struct json_object *streams,
			    size_t n)
{
	struct text t = { .len = 0 };
	const char *last = NULL;

	for (;;) {
		const char *next = NULL;

		for (size_t i = 0; i < n; i++) {
			struct stream_view v;
			int rc = get_stream(out, streams, i, &v);

			if (rc)
				return rc;
			if (v.start_time == v.end_time)
				continue;
			if ((!last || strcmp(v.media_type, last) > 0) &&
			    (!next || strcmp(v.media_type, next) < 0))
				next = v.media_type;
		}
		if (!next)
			break;
		if (last)
			text_add_str(&t, ", ");
		text_add_str(&t, next);
		last = next;
	}
	add_text(out, RADIUS_ATTR_SIP_APPLICATIONS, &t);
	return 0;
}

/* Acct-Input/Output-Octets; NAS address from streams[0]. */
static int add_stream_totals(struct radius_attr_list *out, const struct json_object *streams,
			     size_t n)
{
	uint64_t in = 0, octets_out = 0;

	for (size_t i = 0; i < n; i++) {
		struct stream_view v;
		int rc = get_stream(out, streams, i, &v);

		if (rc)
			return rc;
		in = sat_add(in, v.caller_bytes);
		octets_out = sat_add(octets_out, v.callee_bytes);
	}
	add_u32(out, RADIUS_ATTR_ACCT_INPUT_OCTETS, in);
	add_u32(out, RADIUS_ATTR_ACCT_OUTPUT_OCTETS, octets_out);
	return 0;
}

static int add_codecs_and_info(struct radius_attr_list *out, const struct json_object *record,
			       const struct json_object *streams, size_t n)
{
	struct text t = { .len = 0 };
	bool timed_out, ice;
	int rc;

	for (size_t i = 0; i < n; i++) {
		struct stream_view v;

		if ((rc = get_stream(out, streams, i, &v)))
			return rc;
		if (i)
			text_add_str(&t, ", ");
		text_add_str(&t, v.caller_codec);
	}
	add_text(out, RADIUS_ATTR_MEDIA_CODECS, &t);
	if ((rc = get_bool(out, record, "timed_out", &timed_out)) ||
	    (rc = get_bool(out, record, "all_streams_ice", &ice)))
		return rc;
	if (ice)
		add_str(out, RADIUS_ATTR_MEDIA_INFO, "ICE session", strlen("ICE session"));
	else if (timed_out)
		add_str(out, RADIUS_ATTR_MEDIA_INFO, "timeout", strlen("timeout"));
	return 0;
}

static void add_delay(struct radius_attr_list *out, const struct json_object *streams, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct stream_view v;

		if (get_stream(out, streams, i, &v) == 0 && v.has_pdd) {
			/* truncated to whole seconds, as upstream's int() */
			add_u32(out, RADIUS_ATTR_ACCT_DELAY_TIME,
				v.pdd >= 4294967296.0 ? UINT64_MAX : (uint64_t)v.pdd);
			return;
		}
	}
}

/* An identifier: never cut; too long makes the record unusable. */
static int add_ident(struct radius_attr_list *out, enum radius_attr_id id, const char *key,
		     const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n > RADIUS_STRING_MAX)
		return fail(out, "%s is longer than %d bytes", key, RADIUS_STRING_MAX);
	add_str(out, id, s, n);
	return 0;
}

/* Acct-Status-Type .. Sip-To-Tag: the call's identity and totals. */
static int add_identity(struct radius_attr_list *out, const struct json_object *record,
			const struct json_object *streams, size_t n)
{
	const char *call_id, *from_tag, *to_tag, *user;
	int64_t duration;
	int rc;

	if ((rc = get_string(out, record, "", "call_id", false, &call_id)) ||
	    (rc = get_string(out, record, "", "from_tag", false, &from_tag)) ||
	    (rc = get_string(out, record, "", "to_tag", true, &to_tag)) ||
	    (rc = get_string(out, record, "", "username", true, &user)) ||
	    (rc = get_int(out, record, "", "duration", &duration)))
		return rc;
	if (!*call_id)
		return fail(out, "call_id is empty");
	if (duration < 0)
		return fail(out, "duration is negative");
	add_u32(out, RADIUS_ATTR_ACCT_STATUS_TYPE, RADIUS_ACCT_STATUS_UPDATE);
	if ((rc = add_ident(out, RADIUS_ATTR_USER_NAME, "username",
			    user && *user ? user : RADIUS_DEFAULT_USER)) ||
	    (rc = add_ident(out, RADIUS_ATTR_ACCT_SESSION_ID, "call_id", call_id)))
		return rc;
	add_u32(out, RADIUS_ATTR_ACCT_SESSION_TIME, (uint64_t)duration);
	if ((rc = add_stream_totals(out, streams, n)) ||
	    (rc = add_ident(out, RADIUS_ATTR_SIP_FROM_TAG, "from_tag", from_tag)) ||
	    (rc = add_ident(out, RADIUS_ATTR_SIP_TO_TAG, "to_tag", to_tag)))
		return rc;
	return 0;
}

int radius_attrs_from_record(const struct json_object *record, struct radius_attr_list *out)
{
	const struct json_object *streams;
	const char *caller_ua, *callee_ua;
	struct text ua = { .len = 0 };
	struct stream_view first;
	size_t n;
	int rc;

	out->count = 0;
	out->error[0] = '\0';
	if (!json_object_is_type(record, json_type_object))
		return fail(out, "the record is not a JSON object");
	streams = member(record, "streams");
	if (!json_object_is_type(streams, json_type_array))
		return fail(out, "streams is not an array");
	n = json_object_array_length(streams);
	if ((rc = add_identity(out, record, streams, n)))
		goto bad;
	if (n > 0) {
		if ((rc = get_stream(out, streams, 0, &first)))
			goto bad;
		add_nas_address(out, first.caller_local);
	}
	if ((rc = get_string(out, record, "", "caller_ua", false, &caller_ua)) ||
	    (rc = get_string(out, record, "", "callee_ua", false, &callee_ua)))
		goto bad;
	text_add_str(&ua, caller_ua);
	text_add_str(&ua, "+");
	text_add_str(&ua, callee_ua);
	add_text(out, RADIUS_ATTR_SIP_USER_AGENTS, &ua);
	if ((rc = add_applications(out, streams, n)) ||
	    (rc = add_codecs_and_info(out, record, streams, n)))
		goto bad;
	add_delay(out, streams, n);
	return 0;
bad:
	out->count = 0;
	return rc;
}
