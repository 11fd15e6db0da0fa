/* The end-dialog request of each MI dialect and the reading of the proxy's
 * reply (PROTOCOL.md §5.3, §5.4, D13): pure functions over buffers, no I/O,
 * no logging. Requests are written with snprintf (their only variable parts
 * are digits); replies are read with json-c. */
#include "mi_dialect.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

/* --- dialog ids ------------------------------------------------------------- */

/* Plain decimal digits only (no sign, no space, no base prefix), at least
 * one, within max. strtoull would take "-1", " 1" and "0x1". */
static int parse_decimal(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!len)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned int d = (unsigned char)s[i] - '0';

		if (d > 9 || v > (max - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int mi_dialog_id_parse(const char *text, struct mi_dialog_id *out)
{
	const char *colon;
	uint64_t a, b;

	memset(out, 0, sizeof(*out));
	if (!text)
		return -EINVAL;
	colon = strchr(text, ':');
	if (colon) {
		if (parse_decimal(text, (size_t)(colon - text), UINT32_MAX, &a) ||
		    parse_decimal(colon + 1, strlen(colon + 1), UINT32_MAX, &b))
			return -EINVAL;
		out->pair = true;
		out->h_entry = (uint32_t)a;
		out->h_id = (uint32_t)b;
		out->decimal = a << 32 | b;
		return 0;
	}
	if (parse_decimal(text, strlen(text), UINT64_MAX, &a))
		return -EINVAL;
	out->decimal = a;
	out->h_entry = (uint32_t)(a >> 32);
	out->h_id = (uint32_t)(a & 0xffffffffu);
	return 0;
}

enum mi_dialect mi_dialect_for(enum config_mi_protocol proto, const struct mi_dialog_id *id)
{
	switch (proto) {
	case CONFIG_MI_OPENSIPS_TEXT:
		return MI_OPENSIPS_TEXT;
	case CONFIG_MI_OPENSIPS_JSON:
		return MI_OPENSIPS_JSON;
	case CONFIG_MI_KAMAILIO_JSONRPC:
		return MI_KAMAILIO_JSONRPC;
	case CONFIG_MI_AUTO:
	default:
		return id->pair ? MI_KAMAILIO_JSONRPC : MI_OPENSIPS_JSON;
	}
}

/* --- requests ----------------------------------------------------------------- */

/* OpenSIPS' int2reverse_hex: lowercase hex digits, least significant nibble
 * first, no padding; "0" for zero. At most 8 digits for 32 bits. */
static size_t reverse_hex(uint32_t v, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t n = 0;

	do {
		out[n++] = digits[v & 0xf];
		v >>= 4;
	} while (v);
	out[n] = '\0';
	return n;
}

static int finish(int n, size_t buflen)
{
	if (n < 0)
		return -EINVAL;
	return (size_t)n >= buflen ? -ENOSPC : n;
}

static int encode_opensips_json(const struct mi_dialog_id *id, enum mi_id_form form,
				unsigned int request_id, char *buf, size_t buflen)
{
	char did[32];

	if (form == MI_ID_REVERSE_HEX) {
		size_t n = reverse_hex(id->h_entry, did);

		did[n++] = '.';
		reverse_hex(id->h_id, did + n);
	} else if (form == MI_ID_DECIMAL) {
		snprintf(did, sizeof(did), "%" PRIu64, id->decimal);
	} else {
		return -EINVAL;
	}
	/* The named form OpenSIPS 3.4 answered in Appendix A, byte for byte. */
	return finish(snprintf(buf, buflen,
			       "{\"jsonrpc\": \"2.0\", \"method\": \"dlg_end_dlg\", "
			       "\"params\": {\"dialog_id\": \"%s\"}, \"id\": %u}",
			       did, request_id), buflen);
}

static int encode_kamailio(const struct mi_dialog_id *id, enum mi_id_form form,
			   unsigned int request_id, char *buf, size_t buflen)
{
	if (form != MI_ID_PAIR)
		return -EINVAL;
	return finish(snprintf(buf, buflen,
			       "{\"jsonrpc\": \"2.0\", \"method\": \"dlg.end_dlg\", "
			       "\"params\": [%" PRIu32 ", %" PRIu32 "], \"id\": %u}",
			       id->h_entry, id->h_id, request_id), buflen);
}

static int encode_text(const struct mi_dialog_id *id, enum mi_id_form form, char *buf,
		       size_t buflen)
{
	if (form == MI_ID_PAIR)
		return finish(snprintf(buf, buflen, ":dlg_end_dlg:\n%" PRIu32 "\n%" PRIu32 "\n\n",
				       id->h_entry, id->h_id), buflen);
	if (form == MI_ID_DECIMAL)
		return finish(snprintf(buf, buflen, ":dlg_end_dlg:\n%" PRIu64 "\n\n", id->decimal),
			      buflen);
	return -EINVAL;
}

int mi_encode_end_dialog(enum mi_dialect dialect, const struct mi_dialog_id *id,
			 enum mi_id_form form, unsigned int request_id, char *buf,
			 size_t buflen)
{
	if (!buflen)
		return -ENOSPC;
	switch (dialect) {
	case MI_OPENSIPS_JSON:
		return encode_opensips_json(id, form, request_id, buf, buflen);
	case MI_KAMAILIO_JSONRPC:
		return encode_kamailio(id, form, request_id, buf, buflen);
	case MI_OPENSIPS_TEXT:
		return encode_text(id, form, buf, buflen);
	}
	return -EINVAL;
}

/* --- replies ------------------------------------------------------------------ */

/* Copies at most len bytes of s into the message, non-printable bytes as '?',
 * cut to fit: the text ends up in log lines. */
static void set_message(struct mi_reply *out, const char *s, size_t len)
{
	size_t i;

	if (len > sizeof(out->message) - 1)
		len = sizeof(out->message) - 1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		out->message[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out->message[len] = '\0';
}

static int reject(struct mi_reply *out, int rc, const char *why)
{
	set_message(out, why, strlen(why));
	return rc;
}

/* "<code> <text>", the first line of a text MI reply; the rest (a body, if
 * any) is ignored. The code is three digits, 100-999. */
static int parse_text(const char *buf, size_t len, struct mi_reply *out)
{
	const char *eol = memchr(buf, '\n', len);
	size_t line = eol ? (size_t)(eol - buf) : len, skip = 3;

	if (line && buf[line - 1] == '\r')
		line--;
	if (line < 3 || buf[0] < '1' || buf[0] > '9' || !isdigit((unsigned char)buf[1]) ||
	    !isdigit((unsigned char)buf[2]) || (line > 3 && buf[3] != ' '))
		return reject(out, -EINVAL, "neither JSON-RPC nor a '<code> <text>' line");
	out->code = (buf[0] - '0') * 100 + (buf[1] - '0') * 10 + (buf[2] - '0');
	out->ok = out->code == 200;
	if (line > 3)
		skip = 4;
	set_message(out, buf + skip, line - skip);
	return 0;
}

/* The reply's id against ours: absent or null is taken as ours (JSON-RPC
 * answers a request it could not read with a null id). */
static bool id_matches(struct json_object *id, unsigned int request_id)
{
	char want[16];

	if (!id)
		return true;
	switch (json_object_get_type(id)) {
	case json_type_int:
		return json_object_get_int64(id) == (int64_t)request_id;
	case json_type_double:
		return json_object_get_double(id) == (double)request_id;
	case json_type_string:
		snprintf(want, sizeof(want), "%u", request_id);
		return !strcmp(json_object_get_string(id), want);
	default:
		return false;
	}
}

static int read_error(struct json_object *err, struct mi_reply *out)
{
	struct json_object *code, *msg;

	if (!json_object_is_type(err, json_type_object))
		return reject(out, -EINVAL, "JSON-RPC error is not an object");
	if (json_object_object_get_ex(err, "code", &code)) {
		if (!json_object_is_type(code, json_type_int))
			return reject(out, -EINVAL, "JSON-RPC error code is not an integer");
		out->code = json_object_get_int(code);
	}
	if (json_object_object_get_ex(err, "message", &msg) &&
	    json_object_is_type(msg, json_type_string))
		set_message(out, json_object_get_string(msg),
			    (size_t)json_object_get_string_len(msg));
	return 0;
}

static int read_object(struct json_object *obj, unsigned int request_id, struct mi_reply *out)
{
	struct json_object *id = NULL, *result = NULL, *err = NULL;
	bool has_result, has_error;

	if (!json_object_is_type(obj, json_type_object))
		return reject(out, -EINVAL, "JSON reply is not an object");
	json_object_object_get_ex(obj, "id", &id);
	if (!id_matches(id, request_id))
		return reject(out, -ESTALE, "JSON-RPC reply to another request id");
	has_result = json_object_object_get_ex(obj, "result", &result);
	has_error = json_object_object_get_ex(obj, "error", &err);
	if (has_result == has_error)
		return reject(out, -EINVAL, has_result ? "JSON-RPC reply with both result and error"
						       : "JSON-RPC reply without result or error");
	if (has_error)
		return read_error(err, out);
	out->ok = true;
	out->code = 200;
	if (json_object_is_type(result, json_type_string))
		set_message(out, json_object_get_string(result),
			    (size_t)json_object_get_string_len(result));
	return 0;
}

static bool only_space(const char *p, size_t len)
{
	for (; len; p++, len--)
		if (!isspace((unsigned char)*p))
			return false;
	return true;
}

/* One JSON value filling the whole datagram (white space around it
 * allowed). Returns the object, or NULL with why set. */
static struct json_object *parse_json(const char *buf, size_t len, const char **why)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj;

	*why = "out of memory";
	if (!tok)
		return NULL;
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	*why = "malformed JSON";
	if (obj && !only_space(buf + json_tokener_get_parse_end(tok),
			       len - json_tokener_get_parse_end(tok))) {
		json_object_put(obj);
		obj = NULL;
		*why = "bytes after the JSON reply";
	}
	json_tokener_free(tok);
	return obj;
}

int mi_parse_reply(enum mi_dialect dialect, const char *buf, size_t len,
		   unsigned int request_id, struct mi_reply *out)
{
	struct json_object *obj;
	const char *why;
	size_t lead = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!len)
		return reject(out, -EINVAL, "empty reply");
	if (memchr(buf, '\0', len))
		return reject(out, -EINVAL, "reply contains a NUL byte");
	if (len > MI_REPLY_MAX)
		return reject(out, -EINVAL, "reply too long");
	while (lead < len && isspace((unsigned char)buf[lead]))
		lead++;
	if (lead == len || buf[lead] != '{')
		return parse_text(buf, len, out);
	obj = parse_json(buf, len, &why);
	if (!obj)
		return reject(out, -EINVAL, why);
	out->json = true;
	if (dialect == MI_OPENSIPS_TEXT)
		rc = reject(out, -EINVAL, "JSON reply to a text MI request");
	else
		rc = read_object(obj, request_id, out);
	json_object_put(obj);
	return rc;
}

const char *mi_dialect_name(enum mi_dialect dialect)
{
	switch (dialect) {
	case MI_OPENSIPS_TEXT:
		return "opensips-text";
	case MI_OPENSIPS_JSON:
		return "opensips-json";
	case MI_KAMAILIO_JSONRPC:
		return "kamailio-jsonrpc";
	}
	return "unknown";
}
