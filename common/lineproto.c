/* Line-protocol framing: finds lines and `command / name: value / empty line`
 * messages in a stream buffer, enforcing the limits while input is still
 * partial, and formats the same shapes back. No I/O, no logging, no state. */
#include "lineproto.h"

#include <stdarg.h>
#include <stdio.h>

static struct lineproto_limits limits_or_default(const struct lineproto_limits *lim)
{
	struct lineproto_limits l = { 0 };

	if (lim)
		l = *lim;
	if (!l.max_line)
		l.max_line = LINEPROTO_MAX_LINE;
	if (!l.max_headers || l.max_headers > LINEPROTO_MAX_HEADERS)
		l.max_headers = LINEPROTO_MAX_HEADERS;
	if (!l.max_message)
		l.max_message = LINEPROTO_MAX_MESSAGE;
	return l;
}

/*
 * Finds the line at buf. Only the first max_line + 2 bytes are searched
 * (content + CRLF), so a peer that never sends LF costs bounded work and is
 * reported as soon as the line cannot fit any more. On error *line is the
 * part examined, for the caller's log line.
 */
static int next_line(const char *buf, size_t len, size_t max_line,
		     struct lineproto_str *line, size_t *used)
{
	size_t window = len;
	const char *lf;
	size_t n;

	/* len 0 may come with buf NULL (an empty evbuffer): no mem*() on it. */
	if (!len) {
		*line = (struct lineproto_str){ buf, 0 };
		*used = 0;
		return LINEPROTO_NEED_MORE;
	}
	if (len > max_line && len - max_line > 2)
		window = max_line + 2;
	lf = memchr(buf, '\n', window);
	if (!lf) {
		/* A trailing CR may still turn out to be the terminator. */
		n = window - (buf[window - 1] == '\r');
		*line = (struct lineproto_str){ buf, n };
		*used = 0;
		return n > max_line ? LINEPROTO_ERR_LINE_TOO_LONG : LINEPROTO_NEED_MORE;
	}
	n = (size_t)(lf - buf);
	*used = n + 1;
	if (n && buf[n - 1] == '\r')
		n--;
	*line = (struct lineproto_str){ buf, n };
	return n > max_line ? LINEPROTO_ERR_LINE_TOO_LONG : LINEPROTO_OK;
}

/* next_line() plus the NUL check: a NUL would silently cut the strings
 * callers make from these slices. Skipped lines are not checked. */
static int next_text_line(const char *buf, size_t len, size_t max_line,
			  struct lineproto_str *line, size_t *used)
{
	int rc = next_line(buf, len, max_line, line, used);

	if (rc == LINEPROTO_OK && memchr(line->ptr, '\0', line->len))
		return LINEPROTO_ERR_NUL_BYTE;
	return rc;
}

/* First ": " in s, or NULL. A loop, not memmem(): lines are short and this
 * keeps the NULL-pointer-with-zero-length case out of libc. */
static const char *find_separator(struct lineproto_str s)
{
	size_t i;

	for (i = 1; i < s.len; i++)
		if (s.ptr[i] == ' ' && s.ptr[i - 1] == ':')
			return s.ptr + i - 1;
	return NULL;
}

/*
 * Splits a header line at its first ": ". Returns 1 for a line upstream
 * drops (it ends in ": ", i.e. an empty value, §1.2), 0 for a header.
 */
static int parse_header(struct lineproto_str line, struct lineproto_header *h)
{
	const char *sep;

	if (line.len >= 2 && line.ptr[line.len - 2] == ':' && line.ptr[line.len - 1] == ' ')
		return 1;
	sep = find_separator(line);
	if (!sep)
		return LINEPROTO_ERR_NO_SEPARATOR;
	if (sep == line.ptr)
		return LINEPROTO_ERR_EMPTY_NAME;
	h->name = (struct lineproto_str){ line.ptr, (size_t)(sep - line.ptr) };
	h->value = (struct lineproto_str){ sep + 2, line.len - h->name.len - 2 };
	return 0;
}

/* Parses header lines from buf + *pos up to the empty line; *pos is an offset
 * from the message start, which buf points to. */
static int parse_headers(const char *buf, size_t len, const struct lineproto_limits *l,
			 struct lineproto_msg *out, size_t *pos)
{
	struct lineproto_header h;
	struct lineproto_str line;
	size_t used;
	int rc;

	for (;;) {
		rc = next_text_line(buf + *pos, len - *pos, l->max_line, &line, &used);
		if (rc == LINEPROTO_NEED_MORE)
			/* At least one more byte is due, so len bytes are too many. */
			return len >= l->max_message ? LINEPROTO_ERR_MESSAGE_TOO_BIG : rc;
		if (rc == LINEPROTO_OK && *pos + used > l->max_message)
			rc = LINEPROTO_ERR_MESSAGE_TOO_BIG;
		if (rc < 0) {
			out->bad_line = line;
			return rc;
		}
		*pos += used;
		if (!line.len)
			return LINEPROTO_OK;
		rc = parse_header(line, &h);
		if (rc == 0 && out->n_headers == l->max_headers)
			rc = LINEPROTO_ERR_TOO_MANY_HEADERS;
		if (rc < 0) {
			out->bad_line = line;
			return rc;
		}
		if (rc == 0)
			out->headers[out->n_headers++] = h;
	}
}

int lineproto_parse(const char *buf, size_t len, const struct lineproto_limits *lim,
		    struct lineproto_msg *out, size_t *consumed)
{
	struct lineproto_limits l = limits_or_default(lim);
	struct lineproto_str line;
	size_t start = 0, pos, used;
	int rc;

	memset(out, 0, sizeof(*out));
	*consumed = 0;
	if (!len)
		return LINEPROTO_NEED_MORE;
	/* Blank lines between requests are ignored (§1.2) and dropped at once,
	 * so they never count against max_message. */
	for (;;) {
		rc = next_text_line(buf + start, len - start, l.max_line, &line, &used);
		if (rc != LINEPROTO_OK || line.len)
			break;
		start += used;
	}
	*consumed = start;
	if (rc == LINEPROTO_NEED_MORE && len - start >= l.max_message)
		rc = LINEPROTO_ERR_MESSAGE_TOO_BIG;
	if (rc != LINEPROTO_OK) {
		if (rc < 0)
			out->bad_line = line;
		return rc;
	}
	if (used > l.max_message) {
		out->bad_line = line;
		return LINEPROTO_ERR_MESSAGE_TOO_BIG;
	}
	lineproto_split_word(line, &out->command, &out->args);
	if (!out->command.len) {
		out->bad_line = line;
		return LINEPROTO_ERR_EMPTY_COMMAND;
	}
	pos = used;
	rc = parse_headers(buf + start, len - start, &l, out, &pos);
	if (rc == LINEPROTO_OK)
		*consumed = start + pos;
	return rc;
}

int lineproto_skip_message(const char *buf, size_t len,
			   const struct lineproto_limits *lim, size_t *consumed)
{
	struct lineproto_limits l = limits_or_default(lim);
	struct lineproto_str line;
	size_t pos = 0, used;
	int rc;

	*consumed = 0;
	if (!len)
		return LINEPROTO_NEED_MORE;
	for (;;) {
		rc = next_line(buf + pos, len - pos, l.max_line, &line, &used);
		if (rc != LINEPROTO_OK)
			break;
		pos += used;
		if (!line.len)
			break;
	}
	*consumed = pos;
	return rc;
}

int lineproto_read_line(const char *buf, size_t len, size_t max_line,
			struct lineproto_str *line, size_t *consumed)
{
	size_t used;
	int rc;

	rc = next_text_line(buf, len, max_line ? max_line : LINEPROTO_MAX_LINE, line, &used);
	*consumed = rc == LINEPROTO_OK ? used : 0;
	return rc;
}

const struct lineproto_str *lineproto_header_get(const struct lineproto_msg *msg,
						 const char *name)
{
	size_t i;

	for (i = msg->n_headers; i-- > 0;)
		if (lineproto_str_eq(msg->headers[i].name, name))
			return &msg->headers[i].value;
	return NULL;
}

void lineproto_split_word(struct lineproto_str s, struct lineproto_str *word,
			  struct lineproto_str *rest)
{
	const char *sp = s.len ? memchr(s.ptr, ' ', s.len) : NULL;

	if (!sp) {
		*word = s;
		*rest = (struct lineproto_str){ s.ptr + s.len, 0 };
		return;
	}
	*word = (struct lineproto_str){ s.ptr, (size_t)(sp - s.ptr) };
	*rest = (struct lineproto_str){ sp + 1, s.len - word->len - 1 };
}

int lineproto_str_to_u64(struct lineproto_str s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!s.len)
		return -EINVAL;
	for (i = 0; i < s.len; i++) {
		unsigned int d = (unsigned char)s.ptr[i] - '0';

		if (d > 9)
			return -EINVAL;
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

bool lineproto_str_eq(struct lineproto_str s, const char *cstr)
{
	return strlen(cstr) == s.len && (!s.len || memcmp(s.ptr, cstr, s.len) == 0);
}

int lineproto_str_copy(struct lineproto_str s, char *dst, size_t size)
{
	if (size)
		dst[0] = '\0';
	if (s.len >= size)
		return -ENOSPC;
	if (s.len && memchr(s.ptr, '\0', s.len))
		return -EILSEQ;
	if (s.len)
		memcpy(dst, s.ptr, s.len);
	dst[s.len] = '\0';
	return 0;
}

/* True if s could not survive a trip through the framer as line content. */
static bool breaks_line(struct lineproto_str s)
{
	size_t i;

	for (i = 0; i < s.len; i++)
		if (s.ptr[i] == '\r' || s.ptr[i] == '\n' || s.ptr[i] == '\0')
			return true;
	return false;
}

static int check_msg(const struct lineproto_msg *msg)
{
	const struct lineproto_header *h;
	size_t i;

	if (!msg->command.len || memchr(msg->command.ptr, ' ', msg->command.len) ||
	    breaks_line(msg->command) || breaks_line(msg->args) ||
	    msg->n_headers > LINEPROTO_MAX_HEADERS)
		return -EINVAL;
	for (i = 0; i < msg->n_headers; i++) {
		h = &msg->headers[i];
		/* A ": " inside the name would move the parser's split point. */
		if (!h->name.len || find_separator(h->name) || breaks_line(h->name) ||
		    breaks_line(h->value))
			return -EINVAL;
	}
	return 0;
}

static char *put(char *p, struct lineproto_str s)
{
	if (s.len)
		memcpy(p, s.ptr, s.len);
	return p + s.len;
}

int lineproto_format_msg(char *buf, size_t size, const struct lineproto_msg *msg,
			 size_t *len)
{
	const struct lineproto_str sep = LINEPROTO_STR(": "), crlf = LINEPROTO_STR("\r\n");
	size_t need, i;
	char *p = buf;
	int rc;

	*len = 0;
	rc = check_msg(msg);
	if (rc)
		return rc;
	need = msg->command.len + (msg->args.len ? 1 + msg->args.len : 0) + 2 + 2;
	for (i = 0; i < msg->n_headers; i++)
		need += msg->headers[i].name.len + 2 + msg->headers[i].value.len + 2;
	*len = need;
	if (need > size)
		return -ENOSPC;
	p = put(p, msg->command);
	if (msg->args.len) {
		*p++ = ' ';
		p = put(p, msg->args);
	}
	p = put(p, crlf);
	for (i = 0; i < msg->n_headers; i++) {
		p = put(p, msg->headers[i].name);
		p = put(p, sep);
		p = put(p, msg->headers[i].value);
		p = put(p, crlf);
	}
	put(p, crlf);
	return 0;
}

int lineproto_format_line(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	size_t n;
	int rc;

	va_start(ap, fmt);
	rc = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	*len = 0;
	if (rc < 0)
		return -EINVAL;
	n = (size_t)rc;
	*len = n + 2;
	/* vsnprintf needs n + 1 bytes for its NUL, which the CR then replaces. */
	if (n + 2 > size)
		return -ENOSPC;
	if (breaks_line((struct lineproto_str){ buf, n })) {
		*len = 0;
		return -EINVAL;
	}
	buf[n] = '\r';
	buf[n + 1] = '\n';
	return 0;
}

const char *lineproto_strerror(int code)
{
	switch (code) {
	case LINEPROTO_OK:
		return "complete";
	case LINEPROTO_NEED_MORE:
		return "incomplete, more data needed";
	case LINEPROTO_ERR_LINE_TOO_LONG:
		return "line over the length limit";
	case LINEPROTO_ERR_MESSAGE_TOO_BIG:
		return "message over the size limit";
	case LINEPROTO_ERR_TOO_MANY_HEADERS:
		return "too many header lines";
	case LINEPROTO_ERR_NO_SEPARATOR:
		return "header line without ': ' separator";
	case LINEPROTO_ERR_EMPTY_NAME:
		return "header line with an empty name";
	case LINEPROTO_ERR_NUL_BYTE:
		return "NUL byte in a line";
	case LINEPROTO_ERR_EMPTY_COMMAND:
		return "command line starting with a space";
	case -EINVAL:
		return "invalid argument (bad characters or number)";
	case -ENOSPC:
		return "output buffer too small";
	case -ERANGE:
		return "number out of range";
	default:
		return code < 0 ? strerror(-code) : "unknown lineproto status";
	}
}
