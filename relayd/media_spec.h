/* The `media` header of an update (PROTOCOL.md 1.4): one entry per SDP
 * stream the proxy module relays, `type:ip:port:direction[:k=v...]`,
 * joined by commas. Pure parser and its mirror formatter: no I/O, no
 * logging. */
#ifndef MP_MEDIA_SPEC_H
#define MP_MEDIA_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define MEDIA_SPEC_MAX_STREAMS 32 /* the modules send at most 32 m= lines */
#define MEDIA_SPEC_TYPE_MAX 32    /* bytes of a media type, NUL included */

enum media_direction {
	MEDIA_SENDRECV = 0,
	MEDIA_SENDONLY,
	MEDIA_RECVONLY,
	MEDIA_INACTIVE,
};

struct media_spec_stream {
	char type[MEDIA_SPEC_TYPE_MAX]; /* "audio", "video", "image", ... */
	struct net_addr ip;             /* 0.0.0.0 = hold (RFC 2543) */
	uint16_t port;                  /* 0 = disabled / rejected stream */
	enum media_direction direction;
	bool ice;                       /* ice=yes; other parameters are ignored */
};

struct media_spec {
	size_t count;
	struct media_spec_stream streams[MEDIA_SPEC_MAX_STREAMS];
};

/* Parses len bytes at s (not NUL-terminated). Empty entries between commas
 * are skipped, as upstream does. ip is an IPv4 literal, or (our addition)
 * an IPv6 one in brackets; port is decimal 0..65535; direction one of the
 * four SDP attributes, any case; each parameter is `key=value` with a
 * non-empty key and exactly one '='. Returns 0; -EINVAL for a malformed
 * entry (*fault, may be NULL, then says what was wrong); -E2BIG for more
 * than MEDIA_SPEC_MAX_STREAMS entries. */
int media_spec_parse(const char *s, size_t len, struct media_spec *out, const char **fault);

/* Mirror of media_spec_parse(): writes the entries as the Kamailio module
 * does (lowercase direction, one `ice=yes|no` parameter) plus a NUL.
 * Returns 0 with *len = bytes written without the NUL, -ENOSPC (*len =
 * bytes needed without the NUL) or -EINVAL (an entry that would not parse
 * back: empty type, unset address). */
int media_spec_format(const struct media_spec *spec, char *buf, size_t size, size_t *len);

/* "sendrecv", "sendonly", ... */
const char *media_direction_name(enum media_direction dir);

/* Whether this side of the stream puts it on hold (4.5): sendonly,
 * inactive, or the address 0.0.0.0. */
bool media_spec_is_hold(const struct media_spec_stream *m);

#endif
