/* The insides of the session table, shared by session.c (the table and
 * the commands), session_offer.c (update: offer/answer), session_stream.c
 * (one media stream of a session), session_json.c (statistics) and
 * session_store*.c (the table on disk, D6). Nothing outside those files
 * includes this. */
#ifndef MP_SESSION_INTERNAL_H
#define MP_SESSION_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "media_spec.h"
#include "session.h"

/* Streams one session may create over its life. Each re-INVITE that
 * moves a party to a new port makes a new stream, and every one stays in
 * the statistics; past this an update answers `error` rather than let a
 * misbehaving phone grow the session (and its JSON line) without end. */
#define SESSION_MAX_STREAMS 1024
/* Offers remembered per session, newest first. Only the last two matter
 * for the media; older ones only answer a late retransmission. */
#define SESSION_MAX_OFFERS 16

/* How a stream ended (4.5). While alive its status is "active" or "on
 * hold", from the hold state. */
enum session_end {
	SESSION_END_CLOSED = 0,
	SESSION_END_REJECTED,
	SESSION_END_NO_TRAFFIC,
	SESSION_END_CONNTRACK,
	SESSION_END_ON_HOLD,
	SESSION_END_ICE,
};

/* What one party said about a stream in its SDP. */
struct session_party {
	bool known;           /* an SDP address was given */
	struct net_addr ip;
	uint16_t port;
	bool on_hold;         /* sendonly, inactive or 0.0.0.0 */
	bool ice;             /* ice=yes */
};

struct session_stream {
	struct session_stream *next;   /* the session's streams, oldest first */
	struct session *session;
	struct stream *dp;             /* the data plane's; NULL once ended */
	struct stream_stats final;     /* taken when it ended (or zero, "Unknown") */
	char media_type[MEDIA_SPEC_TYPE_MAX];
	struct session_party party[2]; /* [STREAM_CALLER], [STREAM_CALLEE] */
	bool alive;
	enum session_end end;          /* meaningful once !alive */
	unsigned int timeout_wait;     /* s: the limit that expired, 0 otherwise */
	bool started, ended;
	double start_time, end_time;   /* wall clock s: the first answer, the end */
};

/* The streams of one offer, position by position as in its media header. */
struct session_offer {
	struct session_offer *next;    /* the offer before */
	uint64_t cseq[2];              /* (caller CSeq, callee CSeq) */
	size_t count;
	struct session_stream *streams[];
};

struct session {
	struct session *hash_next;
	struct session *prev, *next;   /* the table's order of creation */
	struct session_table *table;
	char *call_id, *from_tag, *to_tag; /* to_tag NULL until known */
	char *from_uri, *to_uri;
	char *caller_ua, *callee_ua;   /* NULL until seen */
	char *username;                /* from a JSON signaling_ip; NULL = none */
	char *dispatcher;              /* the one that created it */
	bool has_cseq;
	uint64_t cseq[2];
	struct session_offer *offers;  /* newest (current) first, then previous */
	unsigned int offer_count;
	struct session_stream *streams, **streams_tail;
	unsigned int stream_count;
	bool started, ended;
	double start_time, end_time;   /* wall clock s */
};

struct session_table {
	struct session_table_options opts;
	struct session **buckets;
	size_t bucket_count;           /* a power of two */
	struct session *head, *tail;
	unsigned int count;
	bool halting;
	double start_time;
};

/* session.c */
double session_now(const struct session_table *t);
struct session *session_find(struct session_table *t, struct lineproto_str call_id,
			     struct lineproto_str tag);
int session_insert(struct session_table *t, struct session *se);
/* Tells the table's `changed` callback, if any. */
void session_changed(struct session_table *t);
void session_free(struct session *se);
/* A stream of se ended on its own: when none of the last two offers has
 * a live stream left, the session expires (2.8) and is freed. */
void session_stream_expired(struct session *se);

/* session_offer.c */
char *session_update(struct session_table *t, const char *dispatcher,
		     const struct lineproto_msg *msg);

/* session_stream.c */
/* A stream for media entry m, proposed by `party`; not yet part of se.
 * Opens it on the data plane unless m->port is 0. NULL with *err set
 * (-EBUSY: ports exhausted, D1). */
struct session_stream *session_stream_new(struct session *se, const struct media_spec_stream *m,
					  int *err);
/* Makes s part of se and applies the party's SDP; a port of 0 ends it. */
void session_stream_attach(struct session_stream *s, enum stream_side party,
			   const struct media_spec_stream *m);
/* A stream of se around a data plane stream a restarted relay re-created
 * (D6); alive when dp is not NULL. Not yet part of se. NULL: no memory. */
struct session_stream *session_stream_restored(struct session *se, struct stream *dp);
/* Frees a stream that session_stream_attach() never took. */
void session_stream_discard(struct session_stream *s);
/* A party's new SDP for a stream it already has (an answer, or an offer
 * matching it): hold state, ICE, and its address (a change relatches). */
void session_stream_hold(struct session_stream *s, enum stream_side party,
			 const struct media_spec_stream *m);
void session_stream_answer(struct session_stream *s, enum stream_side party,
			   const struct media_spec_stream *m);
/* Ends s if alive: its ports go back, its statistics are kept. */
void session_stream_end(struct session_stream *s, enum session_end why);
void session_stream_free(struct session_stream *s);
/* The relay's RTP port facing `side`; 0 unless alive. */
uint16_t session_stream_port(const struct session_stream *s, enum stream_side side);
const char *session_stream_status(const struct session_stream *s);
/* "closed", "rejected", ... (4.5); NULL past the last. */
const char *session_end_name(enum session_end end);
void session_stream_stats(struct session_stream *s, struct stream_stats *out);

/* session_json.c */
struct json_object *session_json_statistics(struct session *se);
struct json_object *session_json_summary(struct session_table *t);
/* One line of JSON, malloc'd; NULL if out of memory. Puts obj. */
char *session_json_string(struct json_object *obj);

#endif
