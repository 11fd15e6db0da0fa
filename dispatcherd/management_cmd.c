/* Management commands and replies as pure functions (PROTOCOL.md §3.2): the
 * command line reader on top of lineproto_read_line(), and a JSON writer
 * that produces the bytes upstream's Python json.dumps() produces, so tools
 * that compare or grep MediaProxy's output keep working. */
#include "management_cmd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *word;
	enum management_cmd cmd;
} commands[] = {
	{ "summary", MANAGEMENT_CMD_SUMMARY },
	{ "sessions", MANAGEMENT_CMD_SESSIONS },
	{ "version", MANAGEMENT_CMD_VERSION },
	{ "accounting", MANAGEMENT_CMD_ACCOUNTING },
	{ "quit", MANAGEMENT_CMD_QUIT },
	{ "exit", MANAGEMENT_CMD_QUIT },
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

enum management_cmd management_cmd_parse(const char *line, size_t len)
{
	size_t i;

	while (len && is_blank(line[0])) {
		line++;
		len--;
	}
	while (len && is_blank(line[len - 1]))
		len--;
	if (!len)
		return MANAGEMENT_CMD_NONE;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strlen(commands[i].word) == len && !memcmp(commands[i].word, line, len))
			return commands[i].cmd;
	return MANAGEMENT_CMD_UNKNOWN;
}

int management_cmd_next(const char *buf, size_t len, enum management_cmd *cmd,
			struct lineproto_str *line, size_t *consumed)
{
	struct lineproto_str l;
	const char *lf;
	int rc;

	*consumed = 0;
	*cmd = MANAGEMENT_CMD_UNKNOWN;
	rc = lineproto_read_line(buf, len, MANAGEMENT_MAX_LINE, &l, consumed);
	if (rc == LINEPROTO_OK) {
		*cmd = management_cmd_parse(l.ptr, l.len);
	} else if (rc == LINEPROTO_ERR_NUL_BYTE) {
		/* The line is complete and within the limit (the reader checks
		 * NULs last): drop it whole and answer `error`, as for any other
		 * command we do not know. */
		lf = memchr(buf, '\n', len);
		*consumed = (size_t)(lf - buf) + 1;
		rc = LINEPROTO_OK;
	}
	if (line)
		*line = l;
	return rc;
}

const char *management_cmd_name(enum management_cmd cmd)
{
	switch (cmd) {
	case MANAGEMENT_CMD_NONE: return "empty line";
	case MANAGEMENT_CMD_SUMMARY: return "summary";
	case MANAGEMENT_CMD_SESSIONS: return "sessions";
	case MANAGEMENT_CMD_VERSION: return "version";
	case MANAGEMENT_CMD_ACCOUNTING: return "accounting";
	case MANAGEMENT_CMD_QUIT: return "quit";
	case MANAGEMENT_CMD_UNKNOWN: break;
	}
	return "unknown";
}

/* --- JSON writer ------------------------------------------------------ */

/* A growing output buffer; after a failed allocation every append is a
 * no-op and err stays set, so callers check once at the end. */
struct outbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void out_grow(struct outbuf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (b->err)
		return;
	if (more > SIZE_MAX / 2 - b->len - 1) {
		b->err = -ENOMEM;
		return;
	}
	while (cap < b->len + more + 1)
		cap *= 2;
	if (cap == b->cap)
		return;
	p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void out_put(struct outbuf *b, const char *s, size_t n)
{
	out_grow(b, n);
	if (b->err)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void out_str(struct outbuf *b, const char *s)
{
	out_put(b, s, strlen(s));
}

static void out_u16(struct outbuf *b, unsigned int unit)
{
	char esc[8];

	snprintf(esc, sizeof(esc), "\\u%04x", unit & 0xffff);
	out_put(b, esc, 6);
}

/* Decodes one UTF-8 sequence at s (n > 0 bytes left). Returns its length
 * with the code point in *cp, or 0 when it is not valid UTF-8 (overlong,
 * a surrogate, past U+10FFFF, truncated or a stray continuation byte). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	static const uint32_t min_cp[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t need, i;
	uint32_t c;

	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		c = s[0] & 0x07;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		c = s[0] & 0x1f;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min_cp[need] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return need;
}

/* A JSON string with Python's ensure_ascii escaping. */
static void out_json_string(struct outbuf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, step, run;
	uint32_t cp;

	out_put(b, "\"", 1);
	while (i < n) {
		/* Copy the longest run that needs no escaping in one go. */
		for (run = i; run < n && s[run] >= 0x20 && s[run] < 0x7f &&
			      s[run] != '"' && s[run] != '\\'; run++)
			;
		out_put(b, str + i, run - i);
		if ((i = run) == n)
			break;
		switch (s[i]) {
		case '"': out_put(b, "\\\"", 2); i++; continue;
		case '\\': out_put(b, "\\\\", 2); i++; continue;
		case '\b': out_put(b, "\\b", 2); i++; continue;
		case '\f': out_put(b, "\\f", 2); i++; continue;
		case '\n': out_put(b, "\\n", 2); i++; continue;
		case '\r': out_put(b, "\\r", 2); i++; continue;
		case '\t': out_put(b, "\\t", 2); i++; continue;
		}
		if (s[i] < 0x80) {
			out_u16(b, s[i++]);
			continue;
		}
		step = utf8_decode(s + i, n - i, &cp);
		if (!step) {
			out_u16(b, 0xfffd);
			i++;
		} else if (cp < 0x10000) {
			out_u16(b, cp);
			i += step;
		} else {
			cp -= 0x10000;
			out_u16(b, 0xd800 | (cp >> 10));
			out_u16(b, 0xdc00 | (cp & 0x3ff));
			i += step;
		}
	}
	out_put(b, "\"", 1);
}

/* Recursion depth is that of the value: json-c's parser caps it (32 by
 * default) and the objects we build ourselves are two levels deep. */
static void out_json(struct outbuf *b, struct json_object *v)
{
	size_t i, n;
	bool first = true;

	switch (json_object_get_type(v)) {
	case json_type_object:
		out_put(b, "{", 1);
		json_object_object_foreach(v, key, val) {
			if (!first)
				out_put(b, ", ", 2);
			first = false;
			out_json_string(b, key, strlen(key));
			out_put(b, ": ", 2);
			out_json(b, val);
		}
		out_put(b, "}", 1);
		break;
	case json_type_array:
		out_put(b, "[", 1);
		n = json_object_array_length(v);
		for (i = 0; i < n; i++) {
			if (i)
				out_put(b, ", ", 2);
			out_json(b, json_object_array_get_idx(v, i));
		}
		out_put(b, "]", 1);
		break;
	case json_type_string:
		out_json_string(b, json_object_get_string(v),
				(size_t)json_object_get_string_len(v));
		break;
	case json_type_null:
		out_str(b, "null");
		break;
	default: /* boolean, int, double: json-c's own text */
		out_str(b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		break;
	}
}

static int out_finish(struct outbuf *b, char **out, size_t *len)
{
	out_grow(b, 0); /* an empty result still gets its NUL */
	if (b->err) {
		free(b->p);
		*out = NULL;
		*len = 0;
		return b->err;
	}
	*out = b->p;
	*len = b->len;
	return 0;
}

int management_json_dumps(struct json_object *v, char **out, size_t *len)
{
	struct outbuf b = { 0 };

	out_json(&b, v);
	return out_finish(&b, out, len);
}

int management_format_reply(enum config_mgmt_format fmt, struct json_object *items,
			    char **out, size_t *len)
{
	struct outbuf b = { 0 };
	size_t i, n;

	*out = NULL;
	*len = 0;
	if (items && !json_object_is_type(items, json_type_array))
		return -EINVAL;
	n = items ? json_object_array_length(items) : 0;
	switch (fmt) {
	case CONFIG_MGMT_LINES:
		for (i = 0; i < n; i++) {
			out_json(&b, json_object_array_get_idx(items, i));
			out_put(&b, "\r\n", 2);
		}
		out_put(&b, "\r\n", 2);
		break;
	case CONFIG_MGMT_ARRAY:
		if (items)
			out_json(&b, items);
		else
			out_put(&b, "[]", 2);
		out_put(&b, "\r\n", 2);
		break;
	default:
		return -EINVAL;
	}
	return out_finish(&b, out, len);
}
