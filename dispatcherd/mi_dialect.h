/* Ending a dialog through the SIP proxy's management interface (PROTOCOL.md
 * §5.3, §5.4, D13): the three wire dialects, as pure functions. No I/O and
 * no logging here; mi_client.c does the socket work. */
#ifndef MP_MI_DIALECT_H
#define MP_MI_DIALECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define MI_REQUEST_MAX 256   /* bytes of the longest end-dialog request, NUL included */
#define MI_REPLY_MAX 65536   /* bytes of a reply datagram we read; longer is garbage */

enum mi_dialect {
	MI_OPENSIPS_TEXT,     /* OpenSIPS 1.x/2.x mi_datagram ":dlg_end_dlg:" */
	MI_OPENSIPS_JSON,     /* OpenSIPS >= 3.0 mi_datagram JSON-RPC dlg_end_dlg */
	MI_KAMAILIO_JSONRPC,  /* Kamailio jsonrpcs dlg.end_dlg [h_entry, h_id] */
};

/* The module's dialog_id, either form (§5.3). */
struct mi_dialog_id {
	bool pair;         /* written "h_entry:h_id" (Kamailio) */
	uint32_t h_entry;
	uint32_t h_id;
	uint64_t decimal;  /* (h_entry << 32) | h_id; what OpenSIPS sent */
};

/* How the id is written in a request. */
enum mi_id_form {
	MI_ID_REVERSE_HEX, /* OpenSIPS >= 3.1 DID "0fa.e1566887" */
	MI_ID_DECIMAL,     /* the 64-bit decimal (OpenSIPS 1.11 - 3.0) */
	MI_ID_PAIR,        /* h_entry and h_id apart */
};

/* Parses "a:b" (two unsigned 32-bit decimals) or one unsigned 64-bit
 * decimal; every field of out is filled either way (a decimal's halves are
 * h_entry = id >> 32, h_id = id & 0xffffffff). Returns 0 or -EINVAL
 * (anything else: signs, spaces, overflow, empty parts). */
int mi_dialog_id_parse(const char *text, struct mi_dialog_id *out);

/* The dialect D13 picks for mi_protocol = auto: a pair id -> Kamailio,
 * otherwise OpenSIPS JSON (the caller falls back to text when the reply
 * is not JSON). Other settings map one to one. */
enum mi_dialect mi_dialect_for(enum config_mi_protocol proto, const struct mi_dialog_id *id);

/* Writes the end-dialog request for dialect/form into buf (NUL-terminated;
 * MI_REQUEST_MAX always suffices). request_id is the JSON-RPC id (ignored by
 * text MI; keep it <= INT32_MAX: OpenSIPS 3.4 answers larger ids with
 * 2147483647). Forms each dialect carries: OpenSIPS JSON reverse hex or
 * decimal; Kamailio the pair; text the pair (two lines) or the decimal (one
 * line). Returns the length in bytes, -EINVAL for a form the dialect cannot
 * carry, or -ENOSPC. */
int mi_encode_end_dialog(enum mi_dialect dialect, const struct mi_dialog_id *id,
			 enum mi_id_form form, unsigned int request_id, char *buf,
			 size_t buflen);

struct mi_reply {
	bool ok;            /* the proxy ended the dialog */
	bool json;          /* the reply was JSON (D13's fallback test) */
	int code;           /* 200 on success; the proxy's error code otherwise,
			     * 0 when the reply carried none */
	char message[256];  /* the proxy's text ("OK", "Requested Dialog not found") */
};

/* Parses a reply datagram of len bytes. JSON-RPC: {"result": ...} is
 * success, {"error": {"code", "message"}} failure; the id must match
 * request_id when present and not null (JSON-RPC answers a request it could
 * not read with id null). Text: first line "<code> <text>", 200 = success,
 * the rest ignored. A JSON dialect also accepts a plain "<code> <text>" line
 * (json = false); the text dialect rejects JSON. message is printable ASCII
 * (other bytes as '?'), cut to fit.
 * Returns 0 with out filled, or -EINVAL for a reply that is neither (out
 * then says why in message), -ESTALE for a JSON reply to another id. out->json
 * says whether the bytes were JSON in every case (D13's fallback test). */
int mi_parse_reply(enum mi_dialect dialect, const char *buf, size_t len,
		   unsigned int request_id, struct mi_reply *out);

/* As config.ini spells mi_protocol: "opensips-text", "opensips-json",
 * "kamailio-jsonrpc". */
const char *mi_dialect_name(enum mi_dialect dialect);

#endif
