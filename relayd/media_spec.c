/* The `media` header sub-format (media_spec.h): split at commas, then at
 * colons, every field bound-checked before it is copied. */
#include "media_spec.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* A cursor over one entry: [p, end); done once the last field is taken. */
struct field_cursor {
	const char *p, *end;
	bool done;
};

static const char *const direction_names[] = {
	[MEDIA_SENDRECV] = "sendrecv",
	[MEDIA_SENDONLY] = "sendonly",
	[MEDIA_RECVONLY] = "recvonly",
	[MEDIA_INACTIVE] = "inactive",
};

const char *media_direction_name(enum media_direction dir)
{
	if ((unsigned)dir >= sizeof(direction_names) / sizeof(direction_names[0]))
		return "sendrecv";
	return direction_names[dir];
}

bool media_spec_is_hold(const struct media_spec_stream *m)
{
	return m->direction == MEDIA_SENDONLY || m->direction == MEDIA_INACTIVE ||
	       net_addr_is_any(&m->ip);
}

/* The next colon-separated field; false when the entry has no more. */
static bool next_field(struct field_cursor *c, const char **f, size_t *n)
{
	const char *colon;

	if (c->done)
		return false;
	colon = memchr(c->p, ':', (size_t)(c->end - c->p));
	*f = c->p;
	if (!colon) {
		*n = (size_t)(c->end - c->p);
		c->p = c->end;
		c->done = true;
		return true;
	}
	*n = (size_t)(colon - c->p);
	c->p = colon + 1;
	return true;
}

/* An SDP token (RFC 4566 `token`): what an m= line's media type is. */
static bool is_token_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`{|}~", ch));
}

static int parse_type(const char *f, size_t n, struct media_spec_stream *m, const char **fault)
{
	if (!n || n >= sizeof(m->type)) {
		*fault = n ? "media type too long" : "empty media type";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!is_token_char(f[i])) {
			*fault = "bad character in media type";
			return -EINVAL;
		}
	}
	memcpy(m->type, f, n);
	m->type[n] = '\0';
	return 0;
}

/* IPv4 as a plain field; IPv6 in brackets, which holds colons, so it is
 * cut here rather than by next_field(). */
static int parse_ip(struct field_cursor *c, struct net_addr *ip, const char **fault)
{
	char text[INET6_ADDRSTRLEN + 1];
	const char *f, *close;
	size_t n;

	if (c->p < c->end && *c->p == '[') {
		close = memchr(c->p, ']', (size_t)(c->end - c->p));
		if (!close || close + 1 >= c->end || close[1] != ':') {
			*fault = "unterminated [IPv6] address";
			return -EINVAL;
		}
		f = c->p + 1;
		n = (size_t)(close - f);
		c->p = close + 2;
	} else if (!next_field(c, &f, &n)) {
		*fault = "no address";
		return -EINVAL;
	}
	if (!n || n >= sizeof(text)) {
		*fault = "bad address";
		return -EINVAL;
	}
	memcpy(text, f, n);
	text[n] = '\0';
	if (net_addr_parse(text, ip) || (f[-1] == '[') != (ip->family == AF_INET6)) {
		*fault = "bad address";
		return -EINVAL;
	}
	return 0;
}

static int parse_port(const char *f, size_t n, uint16_t *port, const char **fault)
{
	unsigned long v = 0;

	if (!n || n > 5) {
		*fault = "bad port";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (f[i] < '0' || f[i] > '9') {
			*fault = "bad port";
			return -EINVAL;
		}
		v = v * 10 + (unsigned long)(f[i] - '0');
	}
	if (v > 65535) {
		*fault = "port out of range";
		return -EINVAL;
	}
	*port = (uint16_t)v;
	return 0;
}

static int parse_direction(const char *f, size_t n, enum media_direction *dir,
			   const char **fault)
{
	for (size_t i = 0; i < sizeof(direction_names) / sizeof(direction_names[0]); i++) {
		if (strlen(direction_names[i]) == n && !strncasecmp(f, direction_names[i], n)) {
			*dir = (enum media_direction)i;
			return 0;
		}
	}
	*fault = "unknown direction";
	return -EINVAL;
}

/* `key=value`: only ice is interpreted; an empty field is skipped as
 * upstream skips it. */
static int parse_param(const char *f, size_t n, struct media_spec_stream *m, const char **fault)
{
	const char *eq;

	if (!n)
		return 0;
	eq = memchr(f, '=', n);
	if (!eq || eq == f || memchr(eq + 1, '=', n - (size_t)(eq + 1 - f))) {
		*fault = "parameter is not key=value";
		return -EINVAL;
	}
	if ((size_t)(eq - f) == 3 && !memcmp(f, "ice", 3))
		m->ice = n - 4 == 3 && !memcmp(eq + 1, "yes", 3);
	return 0;
}

static int parse_entry(const char *s, size_t n, struct media_spec_stream *m, const char **fault)
{
	struct field_cursor c = { s, s + n, false };
	const char *f;
	size_t fn;
	int rc;

	memset(m, 0, sizeof(*m));
	if (!next_field(&c, &f, &fn) || (rc = parse_type(f, fn, m, fault)))
		return -EINVAL;
	if ((rc = parse_ip(&c, &m->ip, fault)))
		return rc;
	if (!next_field(&c, &f, &fn)) {
		*fault = "no port";
		return -EINVAL;
	}
	if ((rc = parse_port(f, fn, &m->port, fault)))
		return rc;
	if (!next_field(&c, &f, &fn)) {
		*fault = "no direction";
		return -EINVAL;
	}
	if ((rc = parse_direction(f, fn, &m->direction, fault)))
		return rc;
	while (next_field(&c, &f, &fn))
		if ((rc = parse_param(f, fn, m, fault)))
			return rc;
	return 0;
}

int media_spec_parse(const char *s, size_t len, struct media_spec *out, const char **fault)
{
	const char *end = s + len, *comma;
	const char *dummy;

	if (!fault)
		fault = &dummy;
	*fault = NULL;
	out->count = 0;
	while (s < end) {
		comma = memchr(s, ',', (size_t)(end - s));
		if (!comma)
			comma = end;
		if (comma > s) {
			if (out->count == MEDIA_SPEC_MAX_STREAMS) {
				*fault = "too many streams";
				return -E2BIG;
			}
			if (parse_entry(s, (size_t)(comma - s), &out->streams[out->count], fault))
				return -EINVAL;
			out->count++;
		}
		s = comma + 1;
	}
	return 0;
}

int media_spec_format(const struct media_spec *spec, char *buf, size_t size, size_t *len)
{
	size_t used = 0;

	if (spec->count > MEDIA_SPEC_MAX_STREAMS)
		return -EINVAL;
	for (size_t i = 0; i < spec->count; i++) {
		const struct media_spec_stream *m = &spec->streams[i];
		char ip[INET6_ADDRSTRLEN];
		bool v6 = m->ip.family == AF_INET6;
		int n;

		if (!m->type[0] || net_addr_format(&m->ip, ip, sizeof(ip)))
			return -EINVAL;
		n = snprintf(used < size ? buf + used : NULL, used < size ? size - used : 0,
			     "%s%s:%s%s%s:%u:%s:ice=%s", i ? "," : "", m->type, v6 ? "[" : "", ip,
			     v6 ? "]" : "", m->port, media_direction_name(m->direction),
			     m->ice ? "yes" : "no");
		if (n < 0)
			return -EINVAL;
		used += (size_t)n;
	}
	*len = used;
	if (used >= size)
		return -ENOSPC;
	if (!spec->count)
		buf[0] = '\0';
	return 0;
}
