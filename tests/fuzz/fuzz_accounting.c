/* libFuzzer target for the accounting parsers that read outside input:
 * database_uri_parse() ([Database] dburi from config.ini), and the path a
 * spooled record takes to a backend, accounting_record_parse() and then
 * radius_attrs_from_record() (every attribute within RADIUS' limits). The
 * first byte picks the parser. The description of a parsed dburi meant
 * for log lines must not depend on its password. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "database_uri.h"
#include "radius_attrs.h"
#include "record.h"

static void fuzz_dburi(const char *text)
{
	struct database_uri u, other;
	char err[256], desc[512], other_desc[512];

	if (database_uri_parse(text, &u, err, sizeof(err)))
		return;
	/* The description must not depend on the password at all. */
	other = u;
	snprintf(other.password, sizeof(other.password), "%s", u.password[0] ? "" : "x");
	database_uri_describe(&u, desc, sizeof(desc));
	database_uri_describe(&other, other_desc, sizeof(other_desc));
	if (strcmp(desc, other_desc))
		abort();
}

static void fuzz_record(const char *text, size_t len)
{
	struct accounting_record rec;
	struct radius_attr_list attrs;
	struct json_object *owned;

	if (accounting_record_parse(text, len, &rec, &owned))
		return;
	if (!radius_attrs_from_record(rec.obj, &attrs)) {
		for (size_t i = 0; i < attrs.count; i++)
			if (attrs.attr[i].len > RADIUS_STRING_MAX)
				abort();
	}
	json_object_put(owned);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1)
		return 0;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1)
		fuzz_dburi(text);
	else
		fuzz_record(text, strlen(text));
	free(text);
	return 0;
}
