/* The userspace forwarding backend (forward.h): nothing goes into the
 * kernel. Streams see in_kernel = false and keep forwarding every packet
 * themselves with recvmmsg/sendmmsg (stream_io.c), counting as they go,
 * so the pair operations here succeed without doing anything and report
 * zero counters. Always available: the last choice of `auto`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"

struct forward {
	unsigned int pairs; /* pairs handed to us: only a count, for debugging */
};

static int user_open(struct forward **out, const struct forward_options *opts,
		     char *why, size_t whylen)
{
	(void)opts;
	if (why && whylen)
		why[0] = '\0';
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

static int user_add_pair(struct forward *fw, const struct forward_pair *pair)
{
	(void)pair;
	fw->pairs++;
	return 0;
}

static void zero(struct forward_counters *c)
{
	if (c)
		memset(c, 0, sizeof(*c));
}

static int user_read_pair(struct forward *fw, const struct forward_pair *pair,
			  struct forward_counters *forward, struct forward_counters *backward)
{
	(void)fw;
	(void)pair;
	zero(forward);
	zero(backward);
	return 0;
}

static int user_remove_pair(struct forward *fw, const struct forward_pair *pair,
			    struct forward_counters *forward, struct forward_counters *backward)
{
	(void)pair;
	if (fw->pairs)
		fw->pairs--;
	zero(forward);
	zero(backward);
	return 0;
}

static void user_close(struct forward *fw, enum forward_close_mode mode)
{
	(void)mode;
	free(fw);
}

const struct forward_backend forward_user_backend = {
	.name = "userspace",
	.open = user_open,
	.add_pair = user_add_pair,
	.read_pair = user_read_pair,
	.remove_pair = user_remove_pair,
	.foreach_adopted = NULL,
	.close = user_close,
	.in_kernel = false,
};
