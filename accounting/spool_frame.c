/* Pure encoding and decoding of the spool's frames, segment names and
 * cursor files (see spool_frame.h for the formats). */
#include "spool_frame.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case is not what we write, so it is damage */
}

/* Exactly n lowercase hex digits (n <= 16). */
static int parse_hex(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		int d = hexval(p[i]);

		if (d < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

/* A decimal without sign or leading zero, at most max, ending at the first
 * non-digit. Returns the digits used, or -1. */
static int parse_dec(const char *p, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
		unsigned d = (unsigned)(p[i] - '0');

		if (i == 1 && p[0] == '0')
			return -1;
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (i == 0)
		return -1;
	*out = v;
	return (int)i;
}

int spool_json_check(const char *json, size_t len)
{
	if (len > SPOOL_MAX_RECORD)
		return -EMSGSIZE;
	if (!json || !len || memchr(json, '\n', len) || memchr(json, '\0', len))
		return -EINVAL;
	return 0;
}

/* zlib takes uInt lengths; a frame is far below 4 GiB. */
static uint32_t frame_crc(const char *prefix, size_t plen, const char *json, size_t len)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	crc = crc32(crc, (const Bytef *)prefix, (uInt)plen);
	crc = crc32(crc, (const Bytef *)json, (uInt)len);
	return (uint32_t)crc;
}

int spool_frame_header(char hdr[SPOOL_FRAME_HEADER_MAX], uint64_t seq, int64_t spooled_at,
		       const char *json, size_t len)
{
	char buf[SPOOL_FRAME_HEADER_MAX + 1];
	int n, m;

	if (!seq || spooled_at < 0)
		return -EINVAL;
	n = snprintf(buf, sizeof(buf), "%016" PRIx64 " %" PRId64 " ", seq, spooled_at);
	m = snprintf(buf + n, sizeof(buf) - (size_t)n, "%08" PRIx32 " ",
		     frame_crc(buf, (size_t)n, json, len));
	memcpy(hdr, buf, (size_t)(n + m));
	return n + m;
}

int spool_frame_format(char *buf, size_t size, uint64_t seq, int64_t spooled_at,
		       const char *json, size_t len)
{
	char hdr[SPOOL_FRAME_HEADER_MAX];
	int err = spool_json_check(json, len), n;

	if (err)
		return -EINVAL;
	n = spool_frame_header(hdr, seq, spooled_at, json, len);
	if (n < 0)
		return n;
	if (size < (size_t)n + len + 1)
		return -ENOBUFS;
	memcpy(buf, hdr, (size_t)n);
	memcpy(buf + n, json, len);
	buf[(size_t)n + len] = '\n';
	return n + (int)len + 1;
}

int spool_frame_parse(const char *line, size_t len, struct spool_frame *out)
{
	uint64_t seq, at, crc;
	size_t pos;
	int n;

	/* 16 hex, space, >= 1 digit, space, 8 hex, space, >= 1 byte of json */
	if (len < 29 || parse_hex(line, 16, &seq) || !seq || line[16] != ' ')
		return -EBADMSG;
	n = parse_dec(line + 17, len - 17, INT64_MAX, &at);
	if (n < 0)
		return -EBADMSG;
	pos = 17 + (size_t)n;
	if (len < pos + 11 || line[pos] != ' ' || parse_hex(line + pos + 1, 8, &crc) ||
	    line[pos + 9] != ' ')
		return -EBADMSG;
	out->json = line + pos + 10;
	out->len = len - pos - 10;
	if (spool_json_check(out->json, out->len) ||
	    frame_crc(line, pos + 1, out->json, out->len) != crc)
		return -EBADMSG;
	out->seq = seq;
	out->spooled_at = (int64_t)at;
	return 0;
}

void spool_segment_name(char name[SPOOL_SEGMENT_NAME_LEN + 1], uint64_t num)
{
	snprintf(name, SPOOL_SEGMENT_NAME_LEN + 1, "seg-%016" PRIx64 ".log", num);
}

int spool_segment_parse(const char *name, uint64_t *num)
{
	if (strlen(name) != SPOOL_SEGMENT_NAME_LEN || memcmp(name, "seg-", 4) ||
	    strcmp(name + 20, ".log") || parse_hex(name + 4, 16, num) || !*num)
		return -EINVAL;
	return 0;
}

int spool_cursor_format(char *buf, size_t size, const struct spool_cursor *c)
{
	int n = snprintf(buf, size, "%016" PRIx64 " %" PRIu64 " %" PRIu64 "\n", c->seg, c->off,
			 c->seq);

	return n < 0 || (size_t)n >= size ? -ENOBUFS : n;
}

int spool_cursor_parse(const char *buf, size_t len, struct spool_cursor *c)
{
	struct spool_cursor v;
	size_t pos = 17;
	int n;

	if (len < 21 || parse_hex(buf, 16, &v.seg) || !v.seg || buf[16] != ' ')
		return -EBADMSG;
	n = parse_dec(buf + pos, len - pos, UINT64_MAX, &v.off);
	if (n < 0 || pos + (size_t)n >= len || buf[pos + (size_t)n] != ' ')
		return -EBADMSG;
	pos += (size_t)n + 1;
	n = parse_dec(buf + pos, len - pos, UINT64_MAX, &v.seq);
	if (n < 0 || pos + (size_t)n + 1 != len || buf[len - 1] != '\n')
		return -EBADMSG;
	*c = v;
	return 0;
}

int spool_reader_name_check(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (!len || len > SPOOL_READER_NAME_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return -EINVAL;
	}
	return 0;
}
