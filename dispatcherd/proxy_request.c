/* Checks the module's update/remove requests and copies out the fields the
 * dispatcher uses plus the header block forwarded to the relay
 * (PROTOCOL.md §1.2-1.5, §2.2). Pure: no I/O, no logging. */
#include "proxy_request.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

/* The headers this file reads; the rest only travel in the header block. */
struct fields {
	const struct lineproto_str *call_id, *from_tag, *to_tag, *type, *cseq;
	const struct lineproto_str *dialog_id, *media_relay, *media;
};

static bool has_byte(struct lineproto_str s, char c)
{
	return s.len && memchr(s.ptr, c, s.len);
}

/* An optionally signed decimal that fits 32 bits (Kamailio's %d of an
 * unsigned int: over INT_MAX it arrives negative). */
static bool is_int32_text(const char *s, size_t len)
{
	struct lineproto_str digits = { s, len };
	uint64_t v;

	if (len && s[0] == '-') {
		digits.ptr++;
		digits.len--;
	}
	if (digits.len > 10 || lineproto_str_to_u64(digits, &v))
		return false;
	return s[0] == '-' ? v <= 2147483648u : v <= UINT32_MAX;
}

enum proxy_dialog_form proxy_dialog_form_of(const char *s, size_t len)
{
	const char *colon = len ? memchr(s, ':', len) : NULL;
	uint64_t v;

	if (!len)
		return PROXY_DIALOG_NONE;
	if (colon) {
		size_t left = (size_t)(colon - s);

		return is_int32_text(s, left) && is_int32_text(colon + 1, len - left - 1) ?
			       PROXY_DIALOG_PAIR :
			       PROXY_DIALOG_INVALID;
	}
	return lineproto_str_to_u64((struct lineproto_str){ s, len }, &v) ? PROXY_DIALOG_INVALID :
									     PROXY_DIALOG_DECIMAL;
}

static void get_fields(const struct lineproto_msg *msg, struct fields *f)
{
	f->call_id = lineproto_header_get(msg, "call_id");
	f->from_tag = lineproto_header_get(msg, "from_tag");
	f->to_tag = lineproto_header_get(msg, "to_tag");
	f->type = lineproto_header_get(msg, "type");
	f->cseq = lineproto_header_get(msg, "cseq");
	f->dialog_id = lineproto_header_get(msg, "dialog_id");
	f->media_relay = lineproto_header_get(msg, "media_relay");
	f->media = lineproto_header_get(msg, "media");
}

/* Returns 0 or -errno with *why set. */
static int check_command(const struct lineproto_msg *msg, struct proxy_request *out,
			 const char **why)
{
	if (lineproto_str_eq(msg->command, "update")) {
		out->command = PROXY_CMD_UPDATE;
	} else if (lineproto_str_eq(msg->command, "remove")) {
		out->command = PROXY_CMD_REMOVE;
	} else {
		*why = "unknown command";
		return -EOPNOTSUPP;
	}
	if (msg->args.len) {
		*why = "unexpected text after the command";
		return -EBADMSG;
	}
	return 0;
}

/* Returns the fault, or NULL when the request is acceptable. */
static const char *check_fields(const struct lineproto_msg *msg, const struct fields *f,
				struct proxy_request *out)
{
	size_t i;

	for (i = 0; i < msg->n_headers; i++)
		if (has_byte(msg->headers[i].name, '\r') || has_byte(msg->headers[i].value, '\r'))
			return "CR inside a header line";
	if (!f->call_id)
		return "missing call_id";
	if (!f->from_tag)
		return "missing from_tag";
	if (f->type && lineproto_str_eq(*f->type, "request"))
		out->type = PROXY_TYPE_REQUEST;
	else if (f->type && lineproto_str_eq(*f->type, "reply"))
		out->type = PROXY_TYPE_REPLY;
	else if (f->type)
		return "type is neither request nor reply";
	else if (out->command == PROXY_CMD_UPDATE)
		return "missing type";
	if (f->cseq) {
		if (lineproto_str_to_u64(*f->cseq, &out->cseq))
			return "cseq is not a decimal number";
		out->has_cseq = true;
	}
	if (f->dialog_id) {
		out->dialog_form = proxy_dialog_form_of(f->dialog_id->ptr, f->dialog_id->len);
		if (out->dialog_form == PROXY_DIALOG_INVALID)
			return "dialog_id is neither h_entry:h_id nor a 64-bit decimal";
	}
	return NULL;
}

static size_t block_size(const struct lineproto_msg *msg)
{
	size_t i, n = 0;

	for (i = 0; i < msg->n_headers; i++)
		n += msg->headers[i].name.len + 2 + msg->headers[i].value.len + 2;
	return n;
}

static char *put(char *p, struct lineproto_str s)
{
	if (s.len)
		memcpy(p, s.ptr, s.len);
	return p + s.len;
}

/* Copies s as a C string at *p; NULL (and nothing written) for an absent s. */
static const char *put_cstr(char **p, const struct lineproto_str *s)
{
	char *start = *p;

	if (!s)
		return NULL;
	*p = put(*p, *s);
	*(*p)++ = '\0';
	return start;
}

static unsigned int count_streams(const struct lineproto_str *media)
{
	unsigned int n = 1;
	size_t i;

	if (!media)
		return 0;
	for (i = 0; i < media->len; i++)
		n += media->ptr[i] == ',';
	return n;
}

/* One allocation: the header block, then each field as a C string. */
static int copy_out(const struct lineproto_msg *msg, const struct fields *f,
		    struct proxy_request *out)
{
	const struct lineproto_str *cstrs[] = { f->call_id, f->from_tag, f->to_tag,
						f->dialog_id, f->media_relay };
	size_t block = block_size(msg), size = block + 1, i;
	char *p;

	for (i = 0; i < sizeof(cstrs) / sizeof(cstrs[0]); i++)
		if (cstrs[i])
			size += cstrs[i]->len + 1;
	out->storage = p = malloc(size);
	if (!p)
		return -ENOMEM;
	out->headers = p;
	out->headers_len = block;
	for (i = 0; i < msg->n_headers; i++) {
		p = put(p, msg->headers[i].name);
		p = put(p, LINEPROTO_STR(": "));
		p = put(p, msg->headers[i].value);
		p = put(p, LINEPROTO_STR("\r\n"));
	}
	*p++ = '\0';
	out->call_id = put_cstr(&p, f->call_id);
	out->from_tag = put_cstr(&p, f->from_tag);
	out->to_tag = put_cstr(&p, f->to_tag);
	out->dialog_id = put_cstr(&p, f->dialog_id);
	out->media_relay = put_cstr(&p, f->media_relay);
	out->stream_count = count_streams(f->media);
	return 0;
}

int proxy_request_parse(const struct lineproto_msg *msg, struct proxy_request *out,
			const char **fault)
{
	const char *why = NULL;
	struct fields f;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = check_command(msg, out, &why);
	if (!rc) {
		get_fields(msg, &f);
		why = check_fields(msg, &f, out);
		rc = why ? -EBADMSG : copy_out(msg, &f, out);
		if (rc == -ENOMEM)
			why = "out of memory";
	}
	if (fault)
		*fault = why;
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

void proxy_request_free(struct proxy_request *req)
{
	free(req->storage);
	memset(req, 0, sizeof(*req));
}

/* "0".."65535", no sign, no leading '+'. */
static bool is_port(const char *s, size_t len)
{
	uint64_t v;

	return len <= 5 && !lineproto_str_to_u64((struct lineproto_str){ s, len }, &v) &&
	       v <= 65535;
}

bool proxy_update_reply_valid(const char *payload, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	struct net_addr addr;
	const char *p, *end = payload + len, *sp;

	if (len == 4 && memcmp(payload, "None", 4) == 0)
		return true;
	if (!len || len > PROXY_REPLY_MAX)
		return false;
	sp = memchr(payload, ' ', len);
	if (!sp)
		sp = end;
	if ((size_t)(sp - payload) >= sizeof(ip))
		return false;
	memcpy(ip, payload, (size_t)(sp - payload));
	ip[sp - payload] = '\0';
	if (net_addr_parse(ip, &addr))
		return false;
	for (p = sp; p < end; p = sp) {
		p++; /* the space before each port */
		sp = memchr(p, ' ', (size_t)(end - p));
		if (!sp)
			sp = end;
		if (!is_port(p, (size_t)(sp - p)))
			return false;
	}
	return true;
}
