/* Passport spec parser, formatter and matcher (see passport.h). Pure code:
 * config validation calls passport_parse() at startup, tls.c calls
 * passport_match() with the subject of each peer certificate. */
#include "passport.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const attr_names[PASSPORT_ATTR_COUNT] = {
	[PASSPORT_ATTR_O] = "O",
	[PASSPORT_ATTR_OU] = "OU",
	[PASSPORT_ATTR_CN] = "CN",
	[PASSPORT_ATTR_C] = "C",
	[PASSPORT_ATTR_L] = "L",
	[PASSPORT_ATTR_ST] = "ST",
	[PASSPORT_ATTR_EMAIL] = "EMAIL",
};

const char *passport_attr_name(enum passport_attr attr)
{
	if ((unsigned int)attr >= PASSPORT_ATTR_COUNT)
		return NULL;
	return attr_names[attr];
}

static int attr_from_name(const char *name, size_t len)
{
	for (int i = 0; i < PASSPORT_ATTR_COUNT; i++)
		if (strlen(attr_names[i]) == len && !strncasecmp(name, attr_names[i], len))
			return i;
	return -1;
}

__attribute__((format(printf, 3, 4)))
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

static const char *skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static bool is_none(const char *spec)
{
	size_t len;

	spec = skip_space(spec);
	len = strlen(spec);
	while (len && (spec[len - 1] == ' ' || spec[len - 1] == '\t'))
		len--;
	return len == 0 || (len == 4 && !strncasecmp(spec, "none", 4));
}

/* Reads one value from *sp up to an unescaped ',' or the end, resolving
 * "\," and "\\", into val (trailing blanks dropped). Leaves *sp on the ','
 * or the NUL. Returns its length, or -1 when it does not fit. */
static int read_value(const char **sp, char *val)
{
	const char *s = skip_space(*sp);
	size_t n = 0, keep = 0;	/* keep: length without trailing blanks */

	while (*s && *s != ',') {
		char c = *s++;

		if (c == '\\' && (*s == ',' || *s == '\\'))
			c = *s++;
		else if (c == ' ' || c == '\t') {
			if (n + 1 >= PASSPORT_MAX_VALUE)
				return -1;
			val[n++] = c;
			continue;
		}
		if (n + 1 >= PASSPORT_MAX_VALUE)
			return -1;
		val[n++] = c;
		keep = n;	/* escaped blanks are never dropped */
	}
	val[keep] = '\0';
	*sp = s;
	return (int)keep;
}

/* Turns the decoded value in pair->value into kind + bare value. */
static void set_wildcard(struct passport_pair *pair, size_t len)
{
	if (pair->value[0] == '*') {
		pair->kind = PASSPORT_SUFFIX;
		memmove(pair->value, pair->value + 1, len);	/* with the NUL */
	} else if (pair->value[len - 1] == '*') {
		pair->kind = PASSPORT_PREFIX;
		pair->value[len - 1] = '\0';
	} else {
		pair->kind = PASSPORT_EXACT;
	}
}

/* Parses the pair at *sp (number idx, for messages) into pair. */
static int parse_pair(const char **sp, unsigned int idx, struct passport_pair *pair,
		      char *err, size_t errlen)
{
	const char *s = skip_space(*sp), *name = s;
	size_t nlen;
	int attr, vlen;

	while (*s && *s != ':' && *s != ',')
		s++;
	if (*s != ':')
		return fail(err, errlen, "passport pair %u \"%.*s\": expected ATTRIBUTE:value",
			    idx, (int)(s - name > 64 ? 64 : s - name), name);
	nlen = (size_t)(s - name);
	while (nlen && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
		nlen--;
	attr = attr_from_name(name, nlen);
	if (attr < 0)
		return fail(err, errlen,
			    "passport pair %u: unknown attribute \"%.*s\" (want O, OU, CN, C, L, ST or EMAIL)",
			    idx, (int)(nlen > 64 ? 64 : nlen), name);
	s++;
	vlen = read_value(&s, pair->value);
	if (vlen < 0)
		return fail(err, errlen, "passport pair %u (%s): value longer than %d bytes",
			    idx, attr_names[attr], PASSPORT_MAX_VALUE - 1);
	if (vlen == 0)
		return fail(err, errlen, "passport pair %u (%s): empty value", idx, attr_names[attr]);
	pair->attr = attr;
	set_wildcard(pair, (size_t)vlen);
	*sp = s;
	return 0;
}

int passport_parse(const char *spec, struct passport *out, char *err, size_t errlen)
{
	const char *s = spec;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!spec || is_none(spec))
		return 0;
	if (strnlen(spec, PASSPORT_MAX_SPEC + 1) > PASSPORT_MAX_SPEC)
		return fail(err, errlen, "passport longer than %d bytes", PASSPORT_MAX_SPEC);
	for (;;) {
		if (out->n == PASSPORT_MAX_PAIRS)
			return fail(err, errlen, "passport has more than %d pairs", PASSPORT_MAX_PAIRS);
		rc = parse_pair(&s, out->n + 1, &out->pairs[out->n], err, errlen);
		if (rc < 0) {
			memset(out, 0, sizeof(*out));
			return rc;
		}
		out->n++;
		if (*s == '\0')
			return 0;
		s++;	/* the ',': another pair must follow */
	}
}

static bool value_matches(const struct passport_pair *pair, const char *have, size_t len)
{
	size_t wlen = strlen(pair->value);

	if (memchr(have, '\0', len))
		return false;
	switch (pair->kind) {
	case PASSPORT_EXACT:
		return len == wlen && !memcmp(have, pair->value, len);
	case PASSPORT_PREFIX:
		return len >= wlen && !memcmp(have, pair->value, wlen);
	case PASSPORT_SUFFIX:
		return len >= wlen && !memcmp(have + len - wlen, pair->value, wlen);
	}
	return false;
}

static bool pair_matches(const struct passport_pair *pair, const struct passport_field *fields,
			 size_t nfields)
{
	for (size_t i = 0; i < nfields; i++)
		if (fields[i].attr == pair->attr && fields[i].value &&
		    value_matches(pair, fields[i].value, fields[i].len))
			return true;
	return false;
}

bool passport_match(const struct passport *p, const struct passport_field *fields,
		    size_t nfields)
{
	for (unsigned int i = 0; i < p->n; i++)
		if (!pair_matches(&p->pairs[i], fields, nfields))
			return false;
	return true;
}

/* Appends value with ',' and '\' escaped; returns the length it needed. */
static size_t format_value(const char *v, char *buf, size_t len, size_t off)
{
	for (; *v; v++) {
		if (*v == ',' || *v == '\\') {
			if (off + 1 < len)
				buf[off] = '\\';
			off++;
		}
		if (off + 1 < len)
			buf[off] = *v;
		off++;
	}
	return off;
}

static size_t append(const char *s, char *buf, size_t len, size_t off)
{
	for (; *s; s++, off++)
		if (off + 1 < len)
			buf[off] = *s;
	return off;
}

int passport_format(const struct passport *p, char *buf, size_t len)
{
	size_t off = 0;

	if (p->n == 0)
		off = append("None", buf, len, off);
	for (unsigned int i = 0; i < p->n; i++) {
		const struct passport_pair *pair = &p->pairs[i];

		if (i)
			off = append(", ", buf, len, off);
		off = append(attr_names[pair->attr], buf, len, off);
		off = append(":", buf, len, off);
		if (pair->kind == PASSPORT_SUFFIX)
			off = append("*", buf, len, off);
		off = format_value(pair->value, buf, len, off);
		if (pair->kind == PASSPORT_PREFIX)
			off = append("*", buf, len, off);
	}
	if (len)
		buf[off < len ? off : len - 1] = '\0';
	return (int)off;
}
