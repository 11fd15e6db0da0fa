/* [Database] dburi parsing: SQLObject's mysql:// URI into the pieces
 * mysql_real_connect() takes. Pure: no I/O, no logging. Error messages name
 * the part at fault but quote nothing a password could have leaked into
 * (an unescaped "/" in a password moves the rest of it into the host or
 * port), so only the scheme and parameter names are ever quoted. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "database_uri.h"

#define USAGE "expected mysql://user:password@host[:port]/database"

/* SQLObject and MySQLdb options that change nothing here; anything else in
 * the query (ssl_ca, say) is refused rather than silently dropped. */
static const char *const ignored_params[] = {
	"autoCommit", "cache", "charset", "connect_timeout", "debug",
	"debugOutput", "debugThreading", "driver", "logger", "loglevel",
	"read_timeout", "sqlobject_encoding", "style", "use_unicode",
	"write_timeout", NULL,
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) into out (cap bytes with the NUL); with plus, a
 * '+' is a space (form encoding, as Python's parse_qsl). Returns 0,
 * -EINVAL for a bad escape or an encoded NUL, -E2BIG when it does not fit. */
static int pct_decode(const char *s, size_t n, bool plus, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -EINVAL;
			hi = hex_value(s[i + 1]);
			lo = hex_value(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EINVAL;
			c = hi << 4 | lo;
			i += 2;
		} else if (plus && c == '+') {
			c = ' ';
		}
		if (o + 1 >= cap)
			return -E2BIG;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* pct_decode() with the messages for one named part of the URI. */
static int decode_part(const char *what, size_t max, const char *s, size_t n,
		       bool plus, char *out, char *err, size_t errlen)
{
	int rc = pct_decode(s, n, plus, out, max + 1);

	if (rc == -E2BIG)
		return fail(err, errlen, "dburi: the %s is longer than %zu bytes", what, max);
	if (rc)
		return fail(err, errlen, "dburi: bad percent escape in the %s "
			    "(write %% as %%25; %%00 is not allowed)", what);
	return 0;
}

static int parse_scheme(const char *uri, const char **rest, char *err, size_t errlen)
{
	const char *sep = strstr(uri, "://");
	size_t n;

	if (!sep)
		return fail(err, errlen, "dburi: no scheme; " USAGE);
	n = (size_t)(sep - uri);
	if ((n == 5 && !strncasecmp(uri, "mysql", 5)) ||
	    (n == 13 && !strncasecmp(uri, "mysql+mysqldb", 13))) {
		*rest = sep + 3;
		return 0;
	}
	if (n > 32 || strcspn(uri, ":@/?") < n)
		return fail(err, errlen, "dburi: no scheme; " USAGE);
	return fail(err, errlen, "dburi: scheme \"%.*s\" is not supported: only "
		    "MariaDB/MySQL (mysql://) is; " USAGE, (int)n, uri);
}

static int parse_userinfo(const char *s, size_t n, struct database_uri *out,
			  char *err, size_t errlen)
{
	const char *colon = memchr(s, ':', n);
	size_t ulen = colon ? (size_t)(colon - s) : n;
	int rc;

	if (colon && ulen == 0)
		return fail(err, errlen, "dburi: a password without a user name");
	rc = decode_part("user name", DATABASE_URI_MAX_USER, s, ulen, false, out->user,
			 err, errlen);
	if (rc || !colon)
		return rc;
	return decode_part("password", DATABASE_URI_MAX_PASSWORD, colon + 1,
			   n - ulen - 1, false, out->password, err, errlen);
}

static int parse_port(const char *s, size_t n, unsigned int *port, char *err,
		      size_t errlen)
{
	unsigned long v = 0;

	if (n == 0 || n > 5 || strspn(s, "0123456789") < n)
		return fail(err, errlen, "dburi: the port is not a number 1-65535");
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (v == 0 || v > 65535)
		return fail(err, errlen, "dburi: the port is not a number 1-65535");
	*port = (unsigned int)v;
	return 0;
}

static int parse_ipv6(const char *s, size_t n, struct database_uri *out,
		      const char **after, char *err, size_t errlen)
{
	const char *close = memchr(s, ']', n);
	size_t len;

	if (!close)
		return fail(err, errlen, "dburi: \"[\" without \"]\" around the IPv6 address");
	len = (size_t)(close - s - 1);
	if (len < 2 || !memchr(s + 1, ':', len) ||
	    strspn(s + 1, "0123456789abcdefABCDEF:.%_-") < len)
		return fail(err, errlen, "dburi: not an IPv6 address between \"[\" and \"]\"");
	if (len > DATABASE_URI_MAX_HOST)
		return fail(err, errlen, "dburi: the host is too long");
	memcpy(out->host, s + 1, len);
	out->host[len] = '\0';
	*after = close + 1;
	return 0;
}

static int parse_hostport(const char *s, size_t n, struct database_uri *out,
			  char *err, size_t errlen)
{
	const char *end = s + n, *colon;
	size_t hlen;
	int rc;

	if (n && s[0] == '[') {
		const char *after = NULL;

		rc = parse_ipv6(s, n, out, &after, err, errlen);
		if (rc || after == end)
			return rc;
		if (*after != ':')
			return fail(err, errlen, "dburi: only \":port\" may follow \"]\"");
		return parse_port(after + 1, (size_t)(end - after - 1), &out->port, err, errlen);
	}
	colon = memchr(s, ':', n);
	hlen = colon ? (size_t)(colon - s) : n;
	if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
		return fail(err, errlen, "dburi: an IPv6 address must be written in "
			    "brackets, e.g. [::1]:3306 (or a \"/\" in the password "
			    "is not written %%2F)");
	if (hlen > DATABASE_URI_MAX_HOST)
		return fail(err, errlen, "dburi: the host is too long");
	for (size_t i = 0; i < hlen; i++)
		if (s[i] == '\0' || !strchr("abcdefghijklmnopqrstuvwxyz"
					     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", s[i]))
			return fail(err, errlen, "dburi: invalid character in the host name");
	if (colon && hlen == 0)
		return fail(err, errlen, "dburi: a port without a host");
	memcpy(out->host, s, hlen);
	out->host[hlen] = '\0';
	if (!colon)
		return 0;
	return parse_port(colon + 1, (size_t)(end - colon - 1), &out->port, err, errlen);
}

static bool param_is_ignored(const char *name, size_t n)
{
	for (const char *const *p = ignored_params; *p; p++)
		if (strlen(*p) == n && !memcmp(*p, name, n))
			return true;
	return false;
}

static void note_ignored(struct database_uri *out, const char *name, size_t n)
{
	size_t used = strlen(out->ignored);

	if (used + n + 2 > sizeof(out->ignored))
		return;
	if (used)
		out->ignored[used++] = ',';
	memcpy(out->ignored + used, name, n);
	out->ignored[used + n] = '\0';
}

static int parse_query(const char *q, struct database_uri *out, char *err, size_t errlen)
{
	while (*q) {
		size_t len = strcspn(q, "&"), nlen = strcspn(q, "=&");
		int rc;

		if (len == 0) { /* "&&" or a trailing "&" */
			q++;
			continue;
		}
		if (nlen == len)
			return fail(err, errlen, "dburi: query parameter without \"=value\"");
		if (nlen == 11 && !memcmp(q, "unix_socket", 11)) {
			rc = decode_part("unix_socket path", DATABASE_URI_MAX_SOCKET,
					 q + 12, len - 12, true, out->unix_socket, err, errlen);
			if (rc)
				return rc;
			if (out->unix_socket[0] != '/')
				return fail(err, errlen, "dburi: unix_socket must be an "
					    "absolute path");
		} else if (param_is_ignored(q, nlen)) {
			note_ignored(out, q, nlen);
		} else {
			return fail(err, errlen, "dburi: unsupported parameter \"%.*s\" "
				    "(only unix_socket is used)", (int)(nlen > 40 ? 40 : nlen), q);
		}
		q += len;
		if (*q)
			q++;
	}
	return 0;
}

static int check_chars(const char *uri, char *err, size_t errlen)
{
	size_t n = strnlen(uri, DATABASE_URI_MAX + 1);

	if (n == 0)
		return fail(err, errlen, "dburi is empty; " USAGE);
	if (n > DATABASE_URI_MAX)
		return fail(err, errlen, "dburi is longer than %d characters", DATABASE_URI_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)uri[i];

		if (c < 0x20 || c == 0x7f)
			return fail(err, errlen, "dburi: control character at offset %zu", i);
		if (c == '#')
			return fail(err, errlen, "dburi: \"#\" is not allowed (write it "
				    "%%23 in a user name or password)");
	}
	return 0;
}

/* Combinations libmariadb would quietly resolve some other way. */
static int check_consistent(const struct database_uri *out, char *err, size_t errlen)
{
	if (!out->unix_socket[0])
		return 0;
	if (out->host[0] && strcasecmp(out->host, "localhost"))
		return fail(err, errlen, "dburi: unix_socket needs the host localhost "
			    "or no host (mysql://user:password@/database?unix_socket=PATH)");
	if (out->port)
		return fail(err, errlen, "dburi: a port and unix_socket together; "
			    "choose one");
	return 0;
}

int database_uri_parse(const char *uri, struct database_uri *out, char *err,
		       size_t errlen)
{
	const char *rest = NULL, *slash, *at, *db, *query;
	size_t alen, dlen;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = check_chars(uri, err, errlen)) || (rc = parse_scheme(uri, &rest, err, errlen)))
		return rc;
	alen = strcspn(rest, "/?");
	slash = rest + alen;
	if (*slash != '/')
		return fail(err, errlen, "dburi: no \"/database\" after the host; " USAGE);
	/* The last "@" ends the user part, as in Python's urlparse, so an
	 * unescaped "@" in a password still works. */
	at = NULL;
	for (const char *p = rest; p < slash; p++)
		if (*p == '@')
			at = p;
	if (at && (rc = parse_userinfo(rest, (size_t)(at - rest), out, err, errlen)))
		goto fail;
	if ((rc = parse_hostport(at ? at + 1 : rest, (size_t)(slash - (at ? at + 1 : rest)),
				 out, err, errlen)))
		goto fail;
	db = slash + 1;
	dlen = strcspn(db, "?");
	query = db + dlen;
	if (dlen == 0)
		rc = fail(err, errlen, "dburi: no database name after the host; " USAGE);
	else if (memchr(db, '/', dlen))
		rc = fail(err, errlen, "dburi: the database name has a \"/\" in it");
	else
		rc = decode_part("database name", DATABASE_URI_MAX_DATABASE, db, dlen,
				 false, out->database, err, errlen);
	if (!rc && *query)
		rc = parse_query(query + 1, out, err, errlen);
	if (!rc)
		rc = check_consistent(out, err, errlen);
fail:
	if (rc)
		memset(out, 0, sizeof(*out)); /* no password left behind */
	return rc;
}

void database_uri_describe(const struct database_uri *u, char *buf, size_t len)
{
	char where[DATABASE_URI_MAX_HOST + DATABASE_URI_MAX_SOCKET + 32];
	const char *host = u->host[0] ? u->host : "localhost";

	if (u->unix_socket[0])
		snprintf(where, sizeof(where), "unix:%s", u->unix_socket);
	else if (!strcasecmp(host, "localhost"))
		snprintf(where, sizeof(where), "localhost (default socket)");
	else if (strchr(host, ':'))
		snprintf(where, sizeof(where), "[%s]:%u", host, u->port ? u->port : 3306);
	else
		snprintf(where, sizeof(where), "%s:%u", host, u->port ? u->port : 3306);
	if (u->user[0])
		snprintf(buf, len, "database %s on %s as %s", u->database, where, u->user);
	else
		snprintf(buf, len, "database %s on %s", u->database, where);
}
