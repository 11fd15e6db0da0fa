/* The RADIUS accounting record of PROTOCOL.md §5.2 as a plain list of
 * attributes, computed from an accounting record (the relay's statistics
 * object plus dialog_id, timed_out, all_streams_ice). Pure: no radcli, no
 * I/O, no logging; accounting/radius.c turns the list into radcli pairs.
 *
 * Choices where §5.2 or upstream leave room (each is tested):
 *  - An attribute whose string value is empty is left out. Upstream sends
 *    Sip-To-Tag "" for a null to_tag and Media-Info "" for a normal call as
 *    zero-length attributes, which RFC 2865 does not allow (Length >= 3)
 *    and which FreeRADIUS drops on receipt, so leaving them out gives the
 *    server the same record in a valid packet.
 *  - User-Name is username, or "mediaproxy@default" when username is null,
 *    missing or empty.
 *  - Acct-Input-Octets / Acct-Output-Octets / Acct-Session-Time saturate
 *    at 2^32-1 instead of wrapping (the attributes are 32 bits; §5.2 has no
 *    Gigawords attribute), so a huge call never looks like a small one.
 *  - NAS-IP-Address is the address of the first stream's caller_local; an
 *    IPv6 address goes into NAS-IPv6-Address instead (RFC 3162). With no
 *    stream, or a caller_local that is not ip:port ("Unknown"), neither is
 *    set here (radcli then fills in the address it sends from).
 *  - Sip-User-Agents, Sip-Applications and Media-Codecs longer than 253
 *    bytes are cut to at most 253 without splitting a UTF-8 sequence
 *    (upstream cuts all three at 253).
 *  - Identifiers are never cut: a call_id, from_tag, to_tag or username
 *    over 253 bytes makes the record unusable (-EINVAL), as does a missing
 *    or mistyped field or a negative number.
 *  - Media-Info: "ICE session" when all_streams_ice, else "timeout" when
 *    timed_out, else empty (so left out): upstream's precedence.
 *  - Acct-Delay-Time: the first non-null post_dial_delay, truncated to whole
 *    seconds; absent when every stream's is null. */
#ifndef MP_RADIUS_ATTRS_H
#define MP_RADIUS_ATTRS_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define RADIUS_STRING_MAX 253 /* bytes of one string attribute's value */
#define RADIUS_ACCT_STATUS_UPDATE 3u /* "Update" (MediaProxy), "Interim-Update" */
#define RADIUS_DEFAULT_USER "mediaproxy@default"

/* Every attribute the backend may send, in the order they are sent. */
enum radius_attr_id {
	RADIUS_ATTR_ACCT_STATUS_TYPE,
	RADIUS_ATTR_USER_NAME,
	RADIUS_ATTR_ACCT_SESSION_ID,
	RADIUS_ATTR_ACCT_SESSION_TIME,
	RADIUS_ATTR_ACCT_INPUT_OCTETS,
	RADIUS_ATTR_ACCT_OUTPUT_OCTETS,
	RADIUS_ATTR_SIP_FROM_TAG,
	RADIUS_ATTR_SIP_TO_TAG,
	RADIUS_ATTR_NAS_IP_ADDRESS,
	RADIUS_ATTR_NAS_IPV6_ADDRESS,
	RADIUS_ATTR_SIP_USER_AGENTS,
	RADIUS_ATTR_SIP_APPLICATIONS,
	RADIUS_ATTR_MEDIA_CODECS,
	RADIUS_ATTR_MEDIA_INFO,
	RADIUS_ATTR_ACCT_DELAY_TIME,
	RADIUS_ATTR_COUNT
};

enum radius_attr_type {
	RADIUS_TYPE_STRING,
	RADIUS_TYPE_INTEGER,
	RADIUS_TYPE_IPV4,
	RADIUS_TYPE_IPV6,
};

struct radius_attr {
	enum radius_attr_id id;
	uint32_t u32;   /* INTEGER; IPV4 in host byte order (radcli's form) */
	uint8_t ip6[16]; /* IPV6, network byte order */
	size_t len;     /* STRING: bytes in str, 1..RADIUS_STRING_MAX */
	char str[RADIUS_STRING_MAX + 1]; /* STRING, NUL-terminated */
};

struct radius_attr_list {
	size_t count;
	struct radius_attr attr[RADIUS_ATTR_COUNT];
	char error[80]; /* after -EINVAL: what was wrong, e.g. "streams[1].caller_bytes" */
};

/* The dictionary name of an attribute ("Acct-Session-Id", ...). */
const char *radius_attr_name(enum radius_attr_id id);
enum radius_attr_type radius_attr_type(enum radius_attr_id id);

/* Fills out with the attributes for record (a JSON object), each id at most
 * once, in enum order. Returns 0, or -EINVAL with out->error set when the
 * record lacks a field §3.3 requires or holds one of the wrong type or size. */
int radius_attrs_from_record(const struct json_object *record,
			     struct radius_attr_list *out);

/* The attribute with this id in list, or NULL if the record did not set it. */
const struct radius_attr *radius_attrs_find(const struct radius_attr_list *list,
					    enum radius_attr_id id);

#endif
