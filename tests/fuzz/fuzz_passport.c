/* libFuzzer target for passport_parse(), the parser of the passport options
 * read from config.ini. A spec that parses must format back to a spec that
 * parses to the same passport (passport_format() is its mirror). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "passport.h"

static void check_round_trip(const struct passport *a)
{
	static char spec[2 * PASSPORT_MAX_PAIRS * (PASSPORT_MAX_VALUE + 16)];
	struct passport b;

	if ((size_t)passport_format(a, spec, sizeof(spec)) >= sizeof(spec))
		abort();
	if (passport_parse(spec, &b, NULL, 0) || a->n != b.n)
		abort();
	for (unsigned int i = 0; i < a->n; i++)
		if (a->pairs[i].attr != b.pairs[i].attr || a->pairs[i].kind != b.pairs[i].kind ||
		    strcmp(a->pairs[i].value, b.pairs[i].value))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct passport p;
	char err[256];
	char *spec = malloc(size + 1);

	if (!spec)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';	/* config values are C strings */
	if (passport_parse(spec, &p, err, sizeof(err)) == 0)
		check_round_trip(&p);
	free(spec);
	return 0;
}
