/* `update` (PROTOCOL.md 2.2, 4.1-4.3): the headers checked, the session
 * found or made, the message taken as an offer (a higher CSeq with media)
 * or an answer (the same CSeq), and the relay's ports for the streams of
 * that offer returned. An offer is all or nothing: when a stream cannot
 * get ports (D1), what this update opened is released and the session is
 * left as it was. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session_internal.h"

#define LOG_ID_MAX 128 /* call_id characters in a log line */

/* An update's headers, as slices of the message. */
struct session_request {
	bool is_request;               /* type: request (else reply) */
	struct lineproto_str call_id, from_tag, to_tag, from_uri, to_uri;
	struct lineproto_str user_agent, signaling_ip; /* to_tag, signaling_ip: len 0 = absent */
	uint64_t cseq;
	struct media_spec media;       /* count 0: no media header */
};

static const char *const required_headers[] = {
	"call_id", "from_tag", "from_uri", "to_uri", "cseq", "user_agent", "type",
};

static struct lineproto_str header_or_empty(const struct lineproto_msg *msg, const char *name)
{
	const struct lineproto_str *v = lineproto_header_get(msg, name);

	return v ? *v : (struct lineproto_str){ "", 0 };
}

/* Pure: fills rq or says in fault (fault_len bytes) what is wrong. */
static int request_parse(const struct lineproto_msg *msg, struct session_request *rq,
			 char *fault, size_t fault_len)
{
	const struct lineproto_str *media, *type;
	const char *why;
	int rc;

	memset(rq, 0, sizeof(*rq));
	for (size_t i = 0; i < sizeof(required_headers) / sizeof(required_headers[0]); i++) {
		if (!lineproto_header_get(msg, required_headers[i])) {
			snprintf(fault, fault_len, "missing header %s", required_headers[i]);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < msg->n_headers; i++) {
		if (memchr(msg->headers[i].value.ptr, '\0', msg->headers[i].value.len)) {
			snprintf(fault, fault_len, "NUL byte in a header value");
			return -EINVAL;
		}
	}
	type = lineproto_header_get(msg, "type");
	if (!lineproto_str_eq(*type, "request") && !lineproto_str_eq(*type, "reply")) {
		snprintf(fault, fault_len, "type is neither request nor reply");
		return -EINVAL;
	}
	rq->is_request = lineproto_str_eq(*type, "request");
	if (lineproto_str_to_u64(*lineproto_header_get(msg, "cseq"), &rq->cseq)) {
		snprintf(fault, fault_len, "cseq is not an integer");
		return -EINVAL;
	}
	rq->call_id = header_or_empty(msg, "call_id");
	rq->from_tag = header_or_empty(msg, "from_tag");
	rq->to_tag = header_or_empty(msg, "to_tag");
	rq->from_uri = header_or_empty(msg, "from_uri");
	rq->to_uri = header_or_empty(msg, "to_uri");
	rq->user_agent = header_or_empty(msg, "user_agent");
	rq->signaling_ip = header_or_empty(msg, "signaling_ip");
	media = lineproto_header_get(msg, "media");
	if (media && (rc = media_spec_parse(media->ptr, media->len, &rq->media, &why))) {
		snprintf(fault, fault_len, "bad media header: %s", why);
		return rc;
	}
	return 0;
}

/* The username of the JSON signaling_ip form (1.3); NULL otherwise. */
static char *username_from(struct lineproto_str signaling_ip)
{
	struct json_object *root, *name;
	char *text, *user = NULL;

	if (!signaling_ip.len || signaling_ip.ptr[0] != '{')
		return NULL;
	text = strndup(signaling_ip.ptr, signaling_ip.len);
	if (!text)
		return NULL;
	root = json_tokener_parse(text);
	if (root && json_object_is_type(root, json_type_object) &&
	    json_object_object_get_ex(root, "username", &name) &&
	    json_object_is_type(name, json_type_string))
		user = strdup(json_object_get_string(name));
	json_object_put(root);
	free(text);
	return user;
}

static char *str_dup(struct lineproto_str s)
{
	return strndup(s.ptr, s.len);
}

static struct session *session_create(struct session_table *t, const char *dispatcher,
				      const struct session_request *rq)
{
	struct session *se = calloc(1, sizeof(*se));

	if (!se)
		return NULL;
	se->table = t;
	se->streams_tail = &se->streams;
	se->call_id = str_dup(rq->call_id);
	se->from_tag = str_dup(rq->from_tag);
	se->from_uri = str_dup(rq->from_uri);
	se->to_uri = str_dup(rq->to_uri);
	se->dispatcher = strdup(dispatcher ? dispatcher : "");
	se->username = username_from(rq->signaling_ip);
	if (!se->call_id || !se->from_tag || !se->from_uri || !se->to_uri || !se->dispatcher) {
		session_free(se);
		return NULL;
	}
	return se;
}

static bool offer_has(const struct session_offer *o, const struct session_stream *s)
{
	for (size_t i = 0; o && i < o->count; i++)
		if (o->streams[i] == s)
			return true;
	return false;
}

/* 4.3: an alive stream of the current offer, of the same type, that this
 * party had at the same address, or at 0.0.0.0 with the same port (hold),
 * or at the same address with port 0 (closing it). Each stream matches
 * one entry at most. */
static struct session_stream *match_stream(const struct session_offer *cur,
					   const struct media_spec_stream *m, enum stream_side party,
					   struct session_stream *const *taken, size_t ntaken)
{
	for (size_t i = 0; cur && i < cur->count; i++) {
		struct session_stream *s = cur->streams[i];
		const struct session_party *p = &s->party[party];
		bool same_ip = net_addr_equal(&m->ip, &p->ip);
		bool dup = false;

		if (!s->alive || !p->known || strcmp(s->media_type, m->type))
			continue;
		for (size_t j = 0; j < ntaken; j++)
			dup = dup || taken[j] == s;
		if (dup)
			continue;
		if ((same_ip && m->port == p->port) || (net_addr_is_any(&m->ip) && m->port == p->port) ||
		    (same_ip && m->port == 0))
			return s;
	}
	return NULL;
}

static void trim_offers(struct session *se)
{
	struct session_offer *o = se->offers, *next;

	if (se->offer_count <= SESSION_MAX_OFFERS)
		return;
	for (unsigned int n = 1; n < SESSION_MAX_OFFERS; n++)
		o = o->next;
	next = o->next;
	o->next = NULL;
	for (o = next; o; o = next) {
		next = o->next;
		free(o);
		se->offer_count--;
	}
}

/* The changes of a new offer, once all its streams exist: matched
 * streams take the party's hold state, port 0 closes, the streams of the
 * offer before the current one that neither keeps are closed (4.3), and
 * the offer becomes the current one. */
static void offer_commit(struct session *se, struct session_offer *o, const struct media_spec *ms,
			 const bool *fresh, enum stream_side party)
{
	struct session_offer *prev = se->offers ? se->offers->next : NULL;

	for (size_t i = 0; i < ms->count; i++) {
		const struct media_spec_stream *m = &ms->streams[i];

		if (fresh[i]) {
			session_stream_attach(o->streams[i], party, m);
			continue;
		}
		session_stream_hold(o->streams[i], party, m);
		if (!m->port)
			session_stream_end(o->streams[i], SESSION_END_CLOSED);
	}
	for (size_t i = 0; prev && i < prev->count; i++)
		if (!offer_has(se->offers, prev->streams[i]) && !offer_has(o, prev->streams[i]))
			session_stream_end(prev->streams[i], SESSION_END_CLOSED);
	o->next = se->offers;
	se->offers = o;
	se->offer_count++;
	se->cseq[0] = o->cseq[0];
	se->cseq[1] = o->cseq[1];
	se->has_cseq = true;
	trim_offers(se);
}

/* A new offer: first every match and every new stream, which may fail
 * and is then undone, then the changes, which cannot fail. */
static int apply_offer(struct session *se, const struct media_spec *ms, enum stream_side party,
		       const uint64_t cseq[2], const char **fault)
{
	bool fresh[MEDIA_SPEC_MAX_STREAMS] = { false };
	struct session_offer *o;
	size_t nfresh = 0;
	int err = 0;

	o = calloc(1, sizeof(*o) + ms->count * sizeof(o->streams[0]));
	if (!o)
		return -ENOMEM;
	o->count = ms->count;
	o->cseq[0] = cseq[0];
	o->cseq[1] = cseq[1];
	for (size_t i = 0; i < ms->count; i++) {
		o->streams[i] = match_stream(se->offers, &ms->streams[i], party, o->streams, i);
		fresh[i] = !o->streams[i];
		nfresh += fresh[i];
	}
	if (se->stream_count + nfresh > SESSION_MAX_STREAMS) {
		*fault = "the session has had too many streams";
		err = -E2BIG;
		goto undo;
	}
	for (size_t i = 0; i < ms->count; i++) {
		if (fresh[i] && !(o->streams[i] = session_stream_new(se, &ms->streams[i], &err))) {
			*fault = err == -EBUSY ? "no free ports left in port_range" : strerror(-err);
			goto undo;
		}
	}
	offer_commit(se, o, ms, fresh, party);
	return 0;

undo:
	for (size_t i = 0; i < ms->count; i++)
		if (fresh[i])
			session_stream_discard(o->streams[i]);
	free(o);
	return err;
}

/* The answer to the current offer: the call (and each stream) starts;
 * streams the answer leaves out or gives port 0 are rejected. The media
 * types are checked before anything changes. */
static int apply_answer(struct session *se, const struct session_request *rq,
			enum stream_side party, const char **fault)
{
	struct session_offer *cur = se->offers;
	const struct media_spec *ms = &rq->media;
	size_t n = ms->count < cur->count ? ms->count : cur->count;
	double now;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(cur->streams[i]->media_type, ms->streams[i].type)) {
			*fault = "media types of the answer do not match the offer";
			return -EINVAL;
		}
	}
	now = session_now(se->table);
	if (!se->started) {
		se->started = true;
		se->start_time = now;
	}
	for (size_t i = 0; i < cur->count; i++) {
		if (!cur->streams[i]->started) {
			cur->streams[i]->started = true;
			cur->streams[i]->start_time = now;
		}
	}
	/* a 200 OK without SDP: it only brings the to-tag */
	if (rq->to_tag.len && !ms->count)
		return 0;
	for (size_t i = ms->count; i < cur->count; i++)
		session_stream_end(cur->streams[i], SESSION_END_REJECTED);
	for (size_t i = 0; i < n; i++) {
		if (ms->streams[i].port)
			session_stream_answer(cur->streams[i], party, &ms->streams[i]);
		else
			session_stream_end(cur->streams[i], SESSION_END_REJECTED);
	}
	for (size_t i = 0; cur->next && i < cur->next->count; i++)
		if (!offer_has(cur, cur->next->streams[i]))
			session_stream_end(cur->next->streams[i], SESSION_END_CLOSED);
	return 0;
}

static int cseq_cmp(const uint64_t a[2], const uint64_t b[2])
{
	if (a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	if (a[1] != b[1])
		return a[1] < b[1] ? -1 : 1;
	return 0;
}

static void remember_party(struct session *se, const struct session_request *rq,
			   bool downstream, bool caller_cseq)
{
	char **ua = downstream ? &se->caller_ua : &se->callee_ua;

	if (caller_cseq && !se->to_tag && rq->to_tag.len)
		se->to_tag = str_dup(rq->to_tag);
	if (!*ua)
		*ua = str_dup(rq->user_agent);
}

/* 4.1: CSeq is a pair, (caller's, callee's); a message advances the
 * element of the side that sent it. */
static int update_media(struct session *se, const struct session_request *rq, bool downstream,
			bool caller_cseq, const char **fault)
{
	enum stream_side party = downstream ? STREAM_CALLER : STREAM_CALLEE;
	uint64_t cseq[2] = { 0, 0 };
	int cmp, rc = 0;

	if (se->has_cseq) {
		cseq[0] = se->cseq[0];
		cseq[1] = se->cseq[1];
	}
	cseq[caller_cseq ? 0 : 1] = rq->cseq;
	cmp = se->has_cseq ? cseq_cmp(cseq, se->cseq) : 1;
	if (cmp > 0 && rq->media.count)
		rc = apply_offer(se, &rq->media, party, cseq, fault);
	else if (cmp == 0)
		rc = apply_answer(se, rq, party, fault);
	else if (cmp < 0)
		log_debug("session %s: old CSeq %" PRIu64 ", ignored", se->call_id, rq->cseq);
	if (!rc)
		remember_party(se, rq, downstream, caller_cseq);
	return rc;
}

/* "<ip> <port> ..." for the newest offer with this CSeq on this side, or
 * "None" (upstream's reply when there is none). */
static char *local_media(struct session_table *t, const struct session *se, bool downstream,
			 uint64_t cseq, bool caller_cseq)
{
	const struct net_addr *ip = &t->opts.relay_ip;
	struct session_offer *o;
	char *buf;
	size_t len, used;

	for (o = se->offers; o; o = o->next)
		if (o->cseq[caller_cseq ? 0 : 1] == cseq)
			break;
	if (!o)
		return strdup("None");
	if (t->opts.advertised_ip && t->opts.advertised_ip->family != AF_UNSPEC)
		ip = t->opts.advertised_ip;
	len = INET6_ADDRSTRLEN + o->count * 6 + 1;
	buf = malloc(len);
	if (!buf || net_addr_format(ip, buf, len)) {
		free(buf);
		return NULL;
	}
	used = strlen(buf);
	for (size_t i = 0; i < o->count; i++) {
		uint16_t port = session_stream_port(o->streams[i], downstream ? STREAM_CALLEE
									   : STREAM_CALLER);

		used += (size_t)snprintf(buf + used, len - used, " %u", port);
	}
	return buf;
}

/* One line naming the call and the fault: a warning for bad input, an
 * error when the relay itself ran short (ports, memory). */
static void log_fault(const struct session_request *rq, const struct lineproto_msg *msg,
		      enum log_level level, const char *fault)
{
	struct lineproto_str id = rq->call_id;

	if (!id.len) {
		const struct lineproto_str *h = lineproto_header_get(msg, "call_id");

		id = h ? *h : (struct lineproto_str){ "unknown", 7 };
	}
	log_msg(level, "update for call %.*s: %s", (int)(id.len > LOG_ID_MAX ? LOG_ID_MAX : id.len),
		id.ptr, fault);
}

char *session_update(struct session_table *t, const char *dispatcher,
		     const struct lineproto_msg *msg)
{
	struct session_request rq;
	char fault_buf[128];
	const char *fault = "out of memory";
	struct session *se;
	bool created = false, downstream, caller_cseq;
	int rc;

	if (request_parse(msg, &rq, fault_buf, sizeof(fault_buf))) {
		log_fault(&rq, msg, LOG_LEVEL_WARNING, fault_buf);
		return strdup("error");
	}
	se = session_find(t, rq.call_id, rq.from_tag);
	if (!se)
		se = session_find(t, rq.call_id, rq.to_tag);
	if (se) {
		caller_cseq = lineproto_str_eq(rq.from_tag, se->from_tag);
		downstream = !caller_cseq ^ rq.is_request;
	} else {
		if (t->halting) {
			log_fault(&rq, msg, LOG_LEVEL_INFO, "halting: no new sessions");
			return strdup("halting");
		}
		if (!rq.media.count)
			return strdup("None");
		se = session_create(t, dispatcher, &rq);
		if (!se) {
			log_fault(&rq, msg, LOG_LEVEL_ERROR, fault);
			return strdup("error");
		}
		created = true;
		caller_cseq = true;
		downstream = rq.is_request;
	}
	rc = update_media(se, &rq, downstream, caller_cseq, &fault);
	if (rc) {
		log_fault(&rq, msg, rc == -EINVAL ? LOG_LEVEL_WARNING : LOG_LEVEL_ERROR, fault);
		if (created)
			session_free(se);
		return strdup("error");
	}
	if (created) {
		session_insert(t, se);
		log_info("session %s: created for dispatcher %s", se->call_id, se->dispatcher);
	}
	session_changed(t);
	return local_media(t, se, downstream, rq.cseq, caller_cseq);
}
