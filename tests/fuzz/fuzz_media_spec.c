/* libFuzzer target for relayd/media_spec.c: the `media` header of an
 * update (PROTOCOL.md 1.4). Parses the input; whatever parses must hold
 * the documented limits, format back, and parse again to the same
 * streams. Seeds: corpus/media_spec/. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media_spec.h"

#define check(cond) check_at((cond), __LINE__)

/* abort() with the failing line, so a crash report names the invariant. */
static void check_at(int cond, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_media_spec.c:%d: invariant broken\n", line);
		abort();
	}
}

static void check_stream(const struct media_spec_stream *m)
{
	size_t n = strnlen(m->type, sizeof(m->type));

	check(n > 0 && n < sizeof(m->type));
	check(!strpbrk(m->type, ",: ="));
	check(m->ip.family == AF_INET || m->ip.family == AF_INET6);
	check((unsigned)m->direction <= MEDIA_INACTIVE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct media_spec a, b;
	static char text[MEDIA_SPEC_MAX_STREAMS * 128];
	const char *fault = NULL;
	size_t len = 0;
	int rc;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	rc = media_spec_parse((const char *)data, size, &a, &fault);
	if (rc) {
		check((rc == -EINVAL || rc == -E2BIG) && fault && fault[0]);
		return 0;
	}
	check(!fault && a.count <= MEDIA_SPEC_MAX_STREAMS);
	for (size_t i = 0; i < a.count; i++)
		check_stream(&a.streams[i]);
	check(media_spec_format(&a, text, sizeof(text), &len) == 0);
	check(len == strlen(text));
	check(media_spec_parse(text, len, &b, NULL) == 0);
	check(b.count == a.count);
	check(!memcmp(a.streams, b.streams, a.count * sizeof(a.streams[0])));
	return 0;
}
