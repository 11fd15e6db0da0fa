/* The management interface's pure half (PROTOCOL.md §3.2, D12): finding and
 * naming command lines in a client's input, and writing replies in the
 * `lines` or `array` format. No I/O, no logging; management.c does those. */
#ifndef MP_MANAGEMENT_CMD_H
#define MP_MANAGEMENT_CMD_H

#include <stddef.h>

#include <json-c/json.h>

#include "config.h"
#include "lineproto.h"

/* Bytes of one command line, terminator excluded. The longest command is
 * 10 bytes; a client past this is not speaking the protocol and is closed. */
#define MANAGEMENT_MAX_LINE 1024

enum management_cmd {
	MANAGEMENT_CMD_NONE,       /* empty (or all blank) line: no reply */
	MANAGEMENT_CMD_SUMMARY,    /* one relay summary per connected relay */
	MANAGEMENT_CMD_SESSIONS,   /* every relay's sessions, concatenated */
	MANAGEMENT_CMD_VERSION,    /* one line: our version */
	MANAGEMENT_CMD_ACCOUNTING, /* one object per accounting backend (D12) */
	MANAGEMENT_CMD_QUIT,       /* `quit` or `exit`: close, no reply */
	MANAGEMENT_CMD_UNKNOWN,    /* anything else: `error` */
};

/* Names a command line (without its terminator). Matching is exact and
 * case-sensitive as upstream's, except that spaces and tabs around the
 * word are ignored, so "summary \r\n" from a hand-typed session works. A
 * line holding a NUL byte is UNKNOWN. */
enum management_cmd management_cmd_parse(const char *line, size_t len);

/* Takes the first line off a client's input (CRLF or bare LF):
 *   LINEPROTO_OK                *cmd is its command, *consumed the bytes to
 *                               drop (line and terminator); a line holding
 *                               a NUL byte is consumed as UNKNOWN;
 *   LINEPROTO_NEED_MORE         no complete line yet, *consumed = 0;
 *   LINEPROTO_ERR_LINE_TOO_LONG over MANAGEMENT_MAX_LINE (complete or not):
 *                               answer `error` and close, *consumed = 0.
 * *line (may be NULL) is the line's text without the terminator on OK, the
 * part examined otherwise; it points into buf. */
int management_cmd_next(const char *buf, size_t len, enum management_cmd *cmd,
			struct lineproto_str *line, size_t *consumed);

/* "summary", "sessions", ...; "unknown" for UNKNOWN and out-of-range. */
const char *management_cmd_name(enum management_cmd cmd);

/* Writes v as Python's json.dumps() does by default, which is what
 * MediaProxy's management port sends: ", " and ": " separators, keys in
 * insertion order, every character outside printable ASCII as \uXXXX
 * (lower-case hex, surrogate pairs above U+FFFF; a byte that is not valid
 * UTF-8 becomes \ufffd). Numbers keep json-c's text, which for parsed
 * values is the text they were parsed from. NULL v is written as null.
 * Returns 0 with a malloc'd NUL-terminated *out of *len bytes, or -ENOMEM. */
int management_json_dumps(struct json_object *v, char **out, size_t *len);

/* A whole reply to summary/sessions/accounting from items (a json array of
 * the result objects; NULL = none):
 *   CONFIG_MGMT_LINES  each item, then CRLF; then one more CRLF (so no
 *                      items is the bare "\r\n");
 *   CONFIG_MGMT_ARRAY  the array on one line, then CRLF ("[]\r\n" when
 *                      empty).
 * Returns 0 with a malloc'd *out of *len bytes (NUL-terminated, the NUL not
 * counted), -EINVAL for another format or items not an array, or -ENOMEM. */
int management_format_reply(enum config_mgmt_format fmt, struct json_object *items,
			    char **out, size_t *len);

#endif
