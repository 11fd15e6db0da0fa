/* Passport: MediaProxy's optional filter on a TLS peer's certificate
 * subject ("O:AG Projects, CN:*.example.com"), PROTOCOL.md 2.1. Parsing and
 * matching are pure (no OpenSSL, no I/O, no logging); tls.c feeds it the
 * subject entries of a real certificate. */
#ifndef MP_PASSPORT_H
#define MP_PASSPORT_H

#include <stdbool.h>
#include <stddef.h>

#define PASSPORT_MAX_PAIRS 16	/* AN:value pairs in one spec */
#define PASSPORT_MAX_VALUE 256	/* bytes of one value, '*' included; X.509
				 * bounds CN/O/OU at 64 and email at 128 */
#define PASSPORT_MAX_SPEC 4096	/* bytes of a whole spec */

/* The subject attributes a passport may name (upstream's X509Name ids). */
enum passport_attr {
	PASSPORT_ATTR_O,
	PASSPORT_ATTR_OU,
	PASSPORT_ATTR_CN,
	PASSPORT_ATTR_C,
	PASSPORT_ATTR_L,
	PASSPORT_ATTR_ST,
	PASSPORT_ATTR_EMAIL,
	PASSPORT_ATTR_COUNT,
};

enum passport_match_kind {
	PASSPORT_EXACT,		/* "relay1"                    */
	PASSPORT_SUFFIX,	/* "*.example.com": ends with  */
	PASSPORT_PREFIX,	/* "relay*": starts with       */
};

struct passport_pair {
	enum passport_attr attr;
	enum passport_match_kind kind;
	char value[PASSPORT_MAX_VALUE];	/* without the '*', NUL-terminated */
};

/* n == 0 means "no constraints": any certificate the CA accepts passes. */
struct passport {
	unsigned int n;
	struct passport_pair pairs[PASSPORT_MAX_PAIRS];
};

/* One subject entry of a peer certificate, as the matcher sees it. value
 * need not be NUL-terminated; an entry holding a NUL byte never matches
 * (it would be a forged "CN=good\0.evil" style name). */
struct passport_field {
	enum passport_attr attr;
	const char *value;
	size_t len;
};

/* Parses a passport spec: comma-separated "AN:value" pairs, AN one of O, OU,
 * CN, C, L, ST, EMAIL (any case). Whitespace around names and values is
 * ignored; "\," is a literal comma inside a value. A value starting with '*'
 * matches by suffix, one ending with '*' by prefix, otherwise exactly (case
 * matters, as upstream). NULL, "" or "None" (any case) mean no constraints.
 * Returns 0, or -EINVAL with a message in err (errlen may be 0) for a pair
 * without ':', an unknown attribute, an empty value or a spec over a limit. */
int passport_parse(const char *spec, struct passport *out, char *err, size_t errlen);

/* True when every pair of p matches at least one subject entry of its
 * attribute (so "OU:Relays" accepts a subject with OU=Europe, OU=Relays).
 * A missing attribute fails the pair. */
bool passport_match(const struct passport *p, const struct passport_field *fields,
		    size_t nfields);

/* Writes p back as a spec that passport_parse() reads to the same passport
 * ("None" when it has no pairs), for log lines. Returns the length it
 * needed, like snprintf. */
int passport_format(const struct passport *p, char *buf, size_t len);

/* "O", "OU", ... for an attribute; NULL when out of range. */
const char *passport_attr_name(enum passport_attr attr);

#endif
