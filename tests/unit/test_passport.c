/* passport_parse(), passport_match() and passport_format(): the subject
 * filters of [Relay] passport, [Dispatcher] passport and
 * management_passport (PROTOCOL.md 2.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "passport.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct parse_case {
	const char *name;
	const char *spec;
	int want_rc;
	const char *want;	/* passport_format() of the result, or a word
				 * the error message must contain */
};

static const struct parse_case parse_cases[] = {
	{ "upstream default None", "None", 0, "None" },
	{ "None in lower case, padded", "  none ", 0, "None" },
	{ "option set but empty", "", 0, "None" },
	{ "organisation and wildcard host (sample config)",
	  "O:AG Projects, CN:*.example.com", 0, "O:AG Projects, CN:*.example.com" },
	{ "lower-case attribute names, no space after comma",
	  "o:AG Projects,cn:relay*", 0, "O:AG Projects, CN:relay*" },
	{ "blanks around name and value", "  OU : Relays ,  C: NL", 0, "OU:Relays, C:NL" },
	{ "every attribute",
	  "O:a, OU:b, CN:c, C:d, L:e, ST:f, EMAIL:ops@example.com", 0,
	  "O:a, OU:b, CN:c, C:d, L:e, ST:f, EMAIL:ops@example.com" },
	{ "Email in mixed case", "Email:*@example.com", 0, "EMAIL:*@example.com" },
	{ "escaped comma inside a value", "O:Example\\, Inc., CN:relay", 0,
	  "O:Example\\, Inc., CN:relay" },
	{ "escaped backslash", "CN:a\\\\b", 0, "CN:a\\\\b" },
	{ "lone star: attribute must exist", "CN:*", 0, "CN:*" },
	{ "star on both ends is a suffix match", "CN:*relay*", 0, "CN:*relay*" },
	{ "same attribute twice", "CN:relay*, CN:*.example.com", 0,
	  "CN:relay*, CN:*.example.com" },
	{ "value with a colon", "CN:host:5060", 0, "CN:host:5060" },

	{ "pair without colon", "AG Projects", -EINVAL, "ATTRIBUTE:value" },
	{ "second pair without colon", "O:AG, CN", -EINVAL, "pair 2" },
	{ "trailing comma", "CN:relay,", -EINVAL, "pair 2" },
	{ "empty pair in the middle", "CN:relay,,O:x", -EINVAL, "pair 2" },
	{ "leading comma", ", CN:relay", -EINVAL, "pair 1" },
	{ "unknown attribute SN", "SN:Smith", -EINVAL, "SN" },
	{ "long attribute name emailAddress", "emailAddress:a@b", -EINVAL, "emailAddress" },
	{ "empty attribute name", ":relay", -EINVAL, "unknown attribute" },
	{ "empty value", "CN:", -EINVAL, "empty value" },
	{ "blank value", "CN:   , O:x", -EINVAL, "empty value" },
	{ "None followed by a pair", "None, CN:x", -EINVAL, "pair 1" },
};

static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct passport p;
		char err[256] = "", out[512];
		int rc = passport_parse(c->spec, &p, err, sizeof(err));

		if (rc != c->want_rc)
			fail_msg("%s: rc %d, want %d (%s)", c->name, rc, c->want_rc, err);
		if (rc == 0) {
			passport_format(&p, out, sizeof(out));
			if (strcmp(out, c->want))
				fail_msg("%s: got \"%s\", want \"%s\"", c->name, out, c->want);
		} else {
			if (!strstr(err, c->want))
				fail_msg("%s: error \"%s\" lacks \"%s\"", c->name, err, c->want);
			assert_int_equal(p.n, 0);
		}
	}
}

static void test_parse_null_is_none(void **state)
{
	struct passport p;

	(void)state;
	assert_int_equal(passport_parse(NULL, &p, NULL, 0), 0);
	assert_int_equal(p.n, 0);
}

static void test_parse_limits(void **state)
{
	char spec[PASSPORT_MAX_SPEC + 16], err[256];
	struct passport p;
	size_t off;

	(void)state;
	/* The longest value that fits, then one byte more. */
	memcpy(spec, "CN:", 3);
	memset(spec + 3, 'a', PASSPORT_MAX_VALUE - 1);
	spec[3 + PASSPORT_MAX_VALUE - 1] = '\0';
	assert_int_equal(passport_parse(spec, &p, err, sizeof(err)), 0);
	assert_int_equal(strlen(p.pairs[0].value), PASSPORT_MAX_VALUE - 1);
	spec[3 + PASSPORT_MAX_VALUE - 1] = 'a';
	spec[3 + PASSPORT_MAX_VALUE] = '\0';
	assert_int_equal(passport_parse(spec, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than"));

	/* PASSPORT_MAX_PAIRS pairs, then one more. */
	off = 0;
	for (int i = 0; i < PASSPORT_MAX_PAIRS; i++)
		off += (size_t)sprintf(spec + off, "%sOU:u%d", i ? "," : "", i);
	assert_int_equal(passport_parse(spec, &p, err, sizeof(err)), 0);
	assert_int_equal(p.n, PASSPORT_MAX_PAIRS);
	sprintf(spec + off, ",OU:x");
	assert_int_equal(passport_parse(spec, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "more than"));

	/* A whole spec over the limit is refused before it is read. */
	memset(spec, ' ', PASSPORT_MAX_SPEC + 1);
	memcpy(spec, "CN:a", 4);
	spec[PASSPORT_MAX_SPEC + 1] = '\0';
	assert_int_equal(passport_parse(spec, &p, err, sizeof(err)), -EINVAL);
}

/* Each parse case that succeeds reads back to the same passport. */
static void test_format_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct passport a, b;
		char out[512];

		if (c->want_rc || passport_parse(c->spec, &a, NULL, 0))
			continue;
		passport_format(&a, out, sizeof(out));
		assert_int_equal(passport_parse(out, &b, NULL, 0), 0);
		assert_int_equal(a.n, b.n);
		for (unsigned int j = 0; j < a.n; j++) {
			assert_int_equal(a.pairs[j].attr, b.pairs[j].attr);
			assert_int_equal(a.pairs[j].kind, b.pairs[j].kind);
			assert_string_equal(a.pairs[j].value, b.pairs[j].value);
		}
	}
}

static void test_format_truncates(void **state)
{
	struct passport p;
	char buf[8];

	(void)state;
	assert_int_equal(passport_parse("O:AG Projects", &p, NULL, 0), 0);
	assert_int_equal(passport_format(&p, buf, sizeof(buf)), 13);
	assert_string_equal(buf, "O:AG Pr");
	assert_int_equal(passport_format(&p, NULL, 0), 13);
}

#define MAX_TEST_FIELDS 8

struct match_case {
	const char *name;
	const char *spec;
	struct {
		enum passport_attr attr;
		const char *value;
		size_t len;	/* 0: strlen(value) */
	} subject[MAX_TEST_FIELDS];	/* ends at value == NULL */
	bool want;
};

#define F(a, v) { PASSPORT_ATTR_##a, v, 0 }

static const struct match_case match_cases[] = {
	{ "no passport accepts any subject", "None", { F(CN, "relay") }, true },
	{ "no passport accepts an empty subject", "None", { { 0 } }, true },
	{ "exact CN", "CN:relay1", { F(O, "AG"), F(CN, "relay1") }, true },
	{ "exact CN is not a prefix match", "CN:relay1", { F(CN, "relay10") }, false },
	{ "exact CN is case-sensitive", "CN:Relay1", { F(CN, "relay1") }, false },
	{ "prefix", "CN:relay*", { F(CN, "relay7") }, true },
	{ "prefix equal to the whole value", "CN:relay*", { F(CN, "relay") }, true },
	{ "prefix elsewhere in the value", "CN:relay*", { F(CN, "xrelay") }, false },
	{ "suffix host", "CN:*.example.com", { F(CN, "r1.example.com") }, true },
	{ "suffix needs the dot", "CN:*.example.com", { F(CN, "example.com") }, false },
	{ "suffix not a substring", "CN:*.example.com",
	  { F(CN, "r1.example.com.evil.org") }, false },
	{ "lone star with a CN", "CN:*", { F(CN, "anything") }, true },
	{ "lone star without a CN", "CN:*", { F(O, "AG") }, false },
	{ "two attributes both match", "O:AG Projects, CN:*.example.com",
	  { F(C, "NL"), F(O, "AG Projects"), F(CN, "r1.example.com") }, true },
	{ "two attributes, organisation differs", "O:AG Projects, CN:*.example.com",
	  { F(O, "AG Projekte"), F(CN, "r1.example.com") }, false },
	{ "attribute missing from the subject", "OU:Relays, CN:relay",
	  { F(O, "AG"), F(CN, "relay") }, false },
	{ "value under another attribute does not count", "OU:relay",
	  { F(CN, "relay") }, false },
	{ "one of several OUs", "OU:Relays", { F(OU, "Europe"), F(OU, "Relays") }, true },
	{ "same attribute twice: both must hold", "CN:relay*, CN:*.example.com",
	  { F(CN, "relay3.example.com") }, true },
	{ "same attribute twice: one fails", "CN:relay*, CN:*.example.com",
	  { F(CN, "relay3.example.org") }, false },
	{ "email", "EMAIL:*@example.com", { F(EMAIL, "ops@example.com") }, true },
	{ "escaped comma", "O:Example\\, Inc.", { F(O, "Example, Inc.") }, true },
	{ "all seven attributes", "O:o, OU:ou, CN:cn, C:NL, L:l, ST:st, EMAIL:e",
	  { F(C, "NL"), F(ST, "st"), F(L, "l"), F(O, "o"), F(OU, "ou"), F(CN, "cn"),
	    F(EMAIL, "e") }, true },
	{ "all seven attributes, no EMAIL in the subject",
	  "O:o, OU:ou, CN:cn, C:NL, L:l, ST:st, EMAIL:e",
	  { F(O, "o"), F(OU, "ou"), F(CN, "cn"), F(C, "NL"), F(L, "l"), F(ST, "st") },
	  false },
	{ "NUL inside a subject value never matches", "CN:relay1*",
	  { { PASSPORT_ATTR_CN, "relay1\0.evil.org", 16 } }, false },
	{ "NUL inside, suffix", "CN:*.evil.org",
	  { { PASSPORT_ATTR_CN, "relay1\0.evil.org", 16 } }, false },
};

static void test_match_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(match_cases); i++) {
		const struct match_case *c = &match_cases[i];
		struct passport_field fields[MAX_TEST_FIELDS];
		struct passport p;
		size_t n = 0;
		char err[256] = "";

		if (passport_parse(c->spec, &p, err, sizeof(err)))
			fail_msg("%s: parse: %s", c->name, err);
		for (; n < MAX_TEST_FIELDS && c->subject[n].value; n++) {
			fields[n].attr = c->subject[n].attr;
			fields[n].value = c->subject[n].value;
			fields[n].len = c->subject[n].len ? c->subject[n].len :
							    strlen(c->subject[n].value);
		}
		if (passport_match(&p, fields, n) != c->want)
			fail_msg("%s: passport \"%s\" gave %d, want %d", c->name, c->spec,
				 !c->want, c->want);
	}
}

static void test_attr_names(void **state)
{
	(void)state;
	assert_string_equal(passport_attr_name(PASSPORT_ATTR_EMAIL), "EMAIL");
	assert_string_equal(passport_attr_name(PASSPORT_ATTR_O), "O");
	assert_null(passport_attr_name(PASSPORT_ATTR_COUNT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_null_is_none),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_format_truncates),
		cmocka_unit_test(test_match_table),
		cmocka_unit_test(test_attr_names),
	};

	return cmocka_run_group_tests_name("passport", tests, NULL, NULL);
}
