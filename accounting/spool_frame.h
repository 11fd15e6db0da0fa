/* The spool's on-disk text (accounting/spool.c), encoded and decoded by pure
 * functions: record frames, segment file names, cursor files and reader
 * names. No I/O and no logging, so the fuzz target can drive all of it.
 *
 * A frame is one line:
 *   <seq: 16 hex> SP <spooled_at: decimal unix s> SP <crc: 8 hex> SP <json> LF
 * Hex is lowercase, the decimal has no sign and no leading zero, and the
 * crc is zlib's crc32 of the line without its crc field, i.e. of
 * "<seq> <spooled_at> " followed by the json, so a damaged sequence number
 * or timestamp is caught as surely as damaged JSON. The json holds no LF
 * and no NUL.
 *
 * A cursor file holds one line: <segment: 16 hex> SP <offset: decimal> SP
 * <seq: decimal> LF, the segment and byte offset of the reader's next
 * frame and the sequence number of the last record it passed (0: none). */
#ifndef MP_ACCOUNTING_SPOOL_FRAME_H
#define MP_ACCOUNTING_SPOOL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "spool.h"

/* "<16 hex> <19 digits> <8 hex> ": the longest header */
#define SPOOL_FRAME_HEADER_MAX 46
/* the longest frame, LF included */
#define SPOOL_FRAME_MAX (SPOOL_FRAME_HEADER_MAX + SPOOL_MAX_RECORD + 1)
/* "seg-" 16 hex ".log" */
#define SPOOL_SEGMENT_NAME_LEN 24
/* 16 hex, two 20-digit numbers, two spaces, LF */
#define SPOOL_CURSOR_MAX 59
/* bytes of a reader name; it becomes part of a file name */
#define SPOOL_READER_NAME_MAX 32

struct spool_frame {
	uint64_t seq;       /* never 0 */
	int64_t spooled_at; /* unix seconds, >= 0 */
	const char *json;   /* points into the parsed line, not NUL-terminated */
	size_t len;
};

struct spool_cursor {
	uint64_t seg; /* segment number (the seq of its first record) */
	uint64_t off; /* byte offset of the next frame in that segment */
	uint64_t seq; /* last record passed; 0 before the first */
};

/* 0 when json may be spooled; -EINVAL when it is empty or holds an LF or a
 * NUL, -EMSGSIZE when longer than SPOOL_MAX_RECORD. */
int spool_json_check(const char *json, size_t len);

/* Writes the header of the frame for (seq, spooled_at, json) into hdr,
 * trailing space included, without a NUL. Returns its length (at most
 * SPOOL_FRAME_HEADER_MAX) or -EINVAL for seq 0 or a negative time. The
 * json must have passed spool_json_check(). */
int spool_frame_header(char hdr[SPOOL_FRAME_HEADER_MAX], uint64_t seq, int64_t spooled_at,
		       const char *json, size_t len);

/* The whole frame, LF included, into buf. Returns its length, -EINVAL as
 * above or for a json spool_json_check() refuses, or -ENOBUFS when size is
 * too small. */
int spool_frame_format(char *buf, size_t size, uint64_t seq, int64_t spooled_at,
		       const char *json, size_t len);

/* Parses one line of a segment, without its LF. Returns 0 and fills out
 * (out->json points into line), or -EBADMSG when the line is not exactly
 * what spool_frame_format() writes or the crc does not match. */
int spool_frame_parse(const char *line, size_t len, struct spool_frame *out);

/* "seg-<16 hex>.log" for num into name (NUL-terminated). */
void spool_segment_name(char name[SPOOL_SEGMENT_NAME_LEN + 1], uint64_t num);

/* 0 and *num when name is exactly a segment file name with num != 0,
 * -EINVAL for anything else (other files in the directory). */
int spool_segment_parse(const char *name, uint64_t *num);

/* The cursor line into buf; returns its length or -ENOBUFS. */
int spool_cursor_format(char *buf, size_t size, const struct spool_cursor *c);

/* Parses a cursor file's whole content. Returns 0 or -EBADMSG. */
int spool_cursor_parse(const char *buf, size_t len, struct spool_cursor *c);

/* 0 when name may name a reader (1..SPOOL_READER_NAME_MAX of [A-Za-z0-9_-]),
 * else -EINVAL. */
int spool_reader_name_check(const char *name);

#endif
