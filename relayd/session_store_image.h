/* The relay's session table as it is kept on disk (PROTOCOL.md D6): a
 * plain image of every session, built from the live table when saving
 * and read back into one on start, and its JSON text. Formatting and
 * parsing are pure functions (session_store_json.c); building and applying
 * images is session_store.c. Times here are wall clock (UNIX seconds):
 * the data plane's monotonic times are converted on the way in and out. */
#ifndef MP_SESSION_STORE_IMAGE_H
#define MP_SESSION_STORE_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session_internal.h"

#define SESSION_STORE_FORMAT "media-relay sessions"
#define SESSION_STORE_VERSION 1
/* A file larger than this is not read (corrupt, or not ours). */
#define SESSION_STORE_MAX_BYTES (512u << 20)
/* Bytes of a string field (call_id, tags, URIs, user agents): no less
 * than a header line the relay accepts from a dispatcher, so that what it
 * took it can read back. */
#define SESSION_STORE_MAX_STRING 65536

struct session_store_stream {
	char media_type[MEDIA_SPEC_TYPE_MAX];
	struct session_party party[2];  /* what each party's SDP said */
	bool alive;
	enum session_end end;           /* meaningful when !alive */
	unsigned int timeout_wait;      /* s */
	bool started, ended;
	double start_time, end_time;
	/* alive with ports: the data plane to re-create ... */
	bool has_dp;
	struct stream_saved dp;         /* created_ns/first_media_ns unused */
	double created, first_media;    /* first_media 0 = no media yet */
	/* ... else what it reported when it ended */
	struct stream_stats final;      /* post-dial delay: first_media_ns - created_ns */
};

/* One offer: its CSeq pair and its streams, as indices into streams[]. */
struct session_store_offer {
	uint64_t cseq[2];
	size_t count;
	size_t streams[MEDIA_SPEC_MAX_STREAMS];
};

struct session_store_session {
	char *call_id, *from_tag, *from_uri, *to_uri, *dispatcher; /* never NULL */
	char *to_tag, *caller_ua, *callee_ua, *username;           /* NULL: not known */
	bool has_cseq;
	uint64_t cseq[2];
	bool started;
	double start_time;
	size_t stream_count;
	struct session_store_stream *streams;  /* oldest first */
	size_t offer_count;
	struct session_store_offer *offers;    /* newest first */
};

struct session_store_image {
	double saved_at;                       /* wall clock s */
	char relay_ip[INET6_ADDRSTRLEN];
	size_t count;
	struct session_store_session *sessions;
};

/* Frees what the image holds (not the image itself) and zeroes it. */
void session_store_image_free(struct session_store_image *img);

/* The image as one JSON document, malloc'd into *out. 0 or -ENOMEM. */
int session_store_format(const struct session_store_image *img, char **out);

/* Reads a document written by session_store_format(). Everything is
 * checked (types, ranges, limits, offer indices, addresses); on failure
 * *out is left empty, the return is -EINVAL (or -ENOMEM) and why (why_len
 * bytes) says what is wrong, naming the session's position. */
int session_store_parse(const char *text, size_t len, struct session_store_image *out,
			char *why, size_t why_len);

#endif
