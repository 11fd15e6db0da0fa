/* Framing shared by the three text protocols (PROTOCOL.md §1 proxy socket,
 * §2.2 relay link, §3 management): pure functions over a caller's buffer that
 * find, split and bound-check messages and lines, and their mirror formatters. */
#ifndef MP_LINEPROTO_H
#define MP_LINEPROTO_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Default limits. Lengths exclude the CRLF / LF terminator. */
#define LINEPROTO_MAX_LINE	 16384	   /* bytes per line: upstream's Twisted default */
#define LINEPROTO_MAX_HEADERS	 32	   /* capacity of struct lineproto_msg (Kamailio sends 12) */
#define LINEPROTO_MAX_MESSAGE	 65536	   /* bytes per request, command line to final empty line */
#define LINEPROTO_RELAY_MAX_LINE (4u << 20) /* relay replies read by the dispatcher (§2.2) */

/* Return codes. Errors are distinct negative errno values, so they can be
 * passed up as -errno; lineproto_strerror() names the exact problem. */
enum lineproto_status {
	LINEPROTO_OK = 0,		/* a complete message / line was found */
	LINEPROTO_NEED_MORE = 1,	/* incomplete: read more, call again */
	LINEPROTO_ERR_LINE_TOO_LONG = -E2BIG,
	LINEPROTO_ERR_MESSAGE_TOO_BIG = -EMSGSIZE,
	LINEPROTO_ERR_TOO_MANY_HEADERS = -ENOBUFS,
	LINEPROTO_ERR_NO_SEPARATOR = -EBADMSG,	/* header line without ": " */
	LINEPROTO_ERR_EMPTY_NAME = -EPROTO,	/* header line starting with ": " */
	LINEPROTO_ERR_NUL_BYTE = -EILSEQ,
	LINEPROTO_ERR_EMPTY_COMMAND = -ENOMSG,	/* command line starting with a space */
};

/* Caller limits; a field left 0 takes the default above. max_headers is
 * capped at LINEPROTO_MAX_HEADERS. NULL means all defaults. */
struct lineproto_limits {
	size_t max_line;
	size_t max_headers;
	size_t max_message;
};

/* A byte range inside the caller's buffer. NOT NUL-terminated: compare with
 * lineproto_str_eq(), copy with lineproto_str_copy() or strndup(). */
struct lineproto_str {
	const char *ptr;
	size_t len;
};

#define LINEPROTO_STR(lit) ((struct lineproto_str){ (lit), sizeof(lit) - 1 })

static inline struct lineproto_str lineproto_str_from(const char *s)
{
	return (struct lineproto_str){ s, s ? strlen(s) : 0 };
}

struct lineproto_header {
	struct lineproto_str name;	/* non-empty, case kept as received */
	struct lineproto_str value;	/* after the first ": "; never empty */
};

/* A parsed request. Ownership: every lineproto_str points into the buffer
 * given to lineproto_parse(); the message is valid only while the caller
 * keeps those bytes unchanged (i.e. until it drops the consumed bytes). */
struct lineproto_msg {
	struct lineproto_str command;	/* command line up to its first space;
					 * never empty on LINEPROTO_OK */
	struct lineproto_str args;	/* after that space ("17" in "update 17") */
	size_t n_headers;		/* in wire order; empty-valued ones dropped */
	struct lineproto_header headers[LINEPROTO_MAX_HEADERS];
	struct lineproto_str bad_line;	/* on error: the offending (maybe partial,
					 * maybe long) line; log it with a cap */
};

/* Frames one request: [blank lines] command line, `name: value` lines, an
 * empty line. CRLF or bare LF; one CR before LF is stripped. Header lines
 * ending in ": " are dropped as upstream does (§1.2), so an absent header and
 * an empty one look the same. Always sets *consumed, the bytes to drop now:
 *   LINEPROTO_OK         the whole message including leading blank lines;
 *   LINEPROTO_NEED_MORE  leading blank lines only (may be 0);
 *   < 0                  leading blank lines only; out->command/args are set
 *                        if the command line was complete. Answer `error`,
 *                        drop *consumed, then lineproto_skip_message() to
 *                        resync -- except after LINEPROTO_ERR_LINE_TOO_LONG,
 *                        where the stream is mid-line: close the connection.
 * *out is meaningful on LINEPROTO_OK only, except command/args/bad_line on
 * errors (command empty: the command line itself was bad).
 * Limits are enforced on partial input too, so a peer that never sends a
 * newline is reported as soon as the buffer passes a limit. */
int lineproto_parse(const char *buf, size_t len,
		    const struct lineproto_limits *lim,
		    struct lineproto_msg *out, size_t *consumed);

/* Resync after a parse error: discards up to and including the next empty
 * line. Call with the buffer starting at a line start (where the bad message
 * began). Returns LINEPROTO_OK (*consumed ends after the empty line),
 * LINEPROTO_NEED_MORE (*consumed = complete lines seen: drop them and call
 * again with more data) or LINEPROTO_ERR_LINE_TOO_LONG (close). */
int lineproto_skip_message(const char *buf, size_t len,
			   const struct lineproto_limits *lim, size_t *consumed);

/* Reads one line (relay replies `<seq> <payload>`, ping/pong, management
 * commands). max_line 0 means LINEPROTO_MAX_LINE. On LINEPROTO_OK *line is
 * the content without terminator (may be empty) and *consumed includes the
 * terminator; otherwise *consumed = 0. Errors: LINE_TOO_LONG, NUL_BYTE. */
int lineproto_read_line(const char *buf, size_t len, size_t max_line,
			struct lineproto_str *line, size_t *consumed);

/* Value of header `name` (exact, case-sensitive match, as upstream's dict);
 * with duplicates the last one wins, as upstream. NULL if absent. */
const struct lineproto_str *lineproto_header_get(const struct lineproto_msg *msg,
						 const char *name);

/* Splits s at its first space: *word before it, *rest after it (empty when
 * there is no space). For `<seq> <payload>` and command lines. */
void lineproto_split_word(struct lineproto_str s, struct lineproto_str *word,
			  struct lineproto_str *rest);

/* Parses a plain decimal (digits only, as in `seq` and `cseq`). Returns 0,
 * -EINVAL (empty or not a digit) or -ERANGE (over UINT64_MAX). */
int lineproto_str_to_u64(struct lineproto_str s, uint64_t *out);

bool lineproto_str_eq(struct lineproto_str s, const char *cstr);

/* Copies s into dst as a C string. -ENOSPC (dst set to "") if it does not
 * fit, -EILSEQ if s holds a NUL byte: never truncates silently. */
int lineproto_str_copy(struct lineproto_str s, char *dst, size_t size);

/* Mirror of lineproto_parse(): writes msg->command [SP args] CRLF, each
 * header as `name: value` CRLF, then CRLF. No NUL is appended. On success
 * returns 0 with *len = bytes written. -ENOSPC: buf too small, *len = bytes
 * needed. -EINVAL: empty command, a space in the command, CR/LF/NUL anywhere,
 * an empty header name or one containing ": ", too many headers.
 * An empty value is written (as Kamailio does: `to_tag: `), and parsing
 * drops it again: round trip holds for messages without such headers. */
int lineproto_format_msg(char *buf, size_t size, const struct lineproto_msg *msg,
			 size_t *len);

/* Mirror of lineproto_read_line(): printf into buf and append CRLF.
 * Returns 0 with *len = bytes written (no NUL kept), -ENOSPC with *len =
 * bytes needed, or -EINVAL if the text holds CR, LF or NUL. */
int lineproto_format_line(char *buf, size_t size, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Short text for a code returned above, for log lines. */
const char *lineproto_strerror(int code);

#endif
