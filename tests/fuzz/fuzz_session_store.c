/* libFuzzer target for the relay's session table on disk
 * (relayd/session_store_json.c): the input is the text of a
 * relay-<ip>.sessions.json file. A refused file must leave the image empty
 * and say why; an accepted one must hold only what a restarting relay can
 * use (names, counts and offer indices in range), and must survive
 * session_store_format() and a second parse unchanged, since the relay
 * rewrites the file from what it read. Seeds: corpus/session_store/
 * (files written by a relay during real calls). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session_store_image.h"

#define check(cond) check_at((cond), __LINE__)

static void check_at(int cond, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_session_store.c:%d: invariant broken\n", line);
		abort();
	}
}

static bool terminated(const char *buf, size_t size)
{
	return memchr(buf, '\0', size) != NULL;
}

static void check_session(const struct session_store_session *se)
{
	check(se->call_id && se->call_id[0] && se->from_tag && se->from_tag[0]);
	check(se->from_uri && se->to_uri && se->dispatcher);
	check(se->stream_count >= 1 && se->stream_count <= SESSION_MAX_STREAMS && se->streams);
	check(se->offer_count >= 1 && se->offer_count <= SESSION_MAX_OFFERS && se->offers);
	for (size_t i = 0; i < se->offer_count; i++) {
		const struct session_store_offer *of = &se->offers[i];

		check(of->count <= MEDIA_SPEC_MAX_STREAMS);
		for (size_t k = 0; k < of->count; k++)
			check(of->streams[k] < se->stream_count);
	}
	for (size_t i = 0; i < se->stream_count; i++) {
		const struct session_store_stream *st = &se->streams[i];

		check(terminated(st->media_type, sizeof(st->media_type)));
		check(!st->has_dp || st->alive);
		for (int side = 0; side < 2; side++) {
			check(terminated(st->final.side[side].codec,
					 sizeof(st->final.side[side].codec)));
			check(!st->has_dp || (st->dp.side[side].rtp_port &&
					      st->dp.side[side].rtp_port % 2 == 0));
		}
	}
}

/* Formatting what was read and reading it again gives the same text. */
static void check_round_trip(const struct session_store_image *img)
{
	struct session_store_image again;
	char *text, *text2, why[256];
	int rc;

	rc = session_store_format(img, &text);
	if (rc == -ENOMEM)
		return;
	check(!rc && text);
	rc = session_store_parse(text, strlen(text), &again, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "formatted image refused: %s\n%s\n", why, text);
		abort();
	}
	check(again.count == img->count && !strcmp(again.relay_ip, img->relay_ip));
	rc = session_store_format(&again, &text2);
	check(rc == -ENOMEM || (!rc && !strcmp(text, text2)));
	free(text2);
	free(text);
	session_store_image_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session_store_image img;
	char why[256];
	int rc;

	memset(&img, 0xa5, sizeof(img)); /* the parser must set every byte it promises */
	rc = session_store_parse((const char *)data, size, &img, why, sizeof(why));
	if (rc) {
		check(rc == -EINVAL || rc == -ENOMEM);
		check(rc == -ENOMEM || why[0]);
		check(!img.count && !img.sessions);
		return 0;
	}
	check(terminated(img.relay_ip, sizeof(img.relay_ip)));
	check(!img.count || img.sessions);
	for (size_t i = 0; i < img.count; i++)
		check_session(&img.sessions[i]);
	check_round_trip(&img);
	session_store_image_free(&img);
	return 0;
}
