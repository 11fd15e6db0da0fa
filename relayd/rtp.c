/* Media packet and address classification (rtp.h). */
#include "rtp.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* MediaProxy's table of static payload types (RFC 3551 names, G.711 as
 * "G711u"/"G711a"); 13 (comfort noise) is not in it, so it reads
 * "Unknown(13)" as upstream. */
static const char *const static_codecs[96] = {
	[0] = "G711u", [1] = "1016",  [2] = "G721",  [3] = "GSM",
	[4] = "G723",  [5] = "DVI4",  [6] = "DVI4",  [7] = "LPC",
	[8] = "G711a", [9] = "G722",  [10] = "L16",  [11] = "L16",
	[14] = "MPA",  [15] = "G728", [18] = "G729", [25] = "CelB",
	[26] = "JPEG", [28] = "nv",   [31] = "H261", [32] = "MPV",
	[33] = "MP2T", [34] = "H263",
};

bool rtp_is_stun(const uint8_t *buf, size_t len)
{
	uint32_t cookie;

	if (len < STUN_HEADER_LEN || (buf[0] & 0xc0))
		return false;
	memcpy(&cookie, buf + 4, sizeof(cookie));
	return ntohl(cookie) == STUN_MAGIC_COOKIE;
}

int rtp_payload_type(const uint8_t *buf, size_t len)
{
	if (len < RTP_HEADER_MIN || (buf[0] >> 6) != 2)
		return -1;
	/* RTCP on a muxed port: its packet type byte sits where the marker
	 * bit and payload type are, and 192..223 never is an RTP type */
	if (buf[1] >= 192 && buf[1] <= 223)
		return -1;
	return buf[1] & 0x7f;
}

void rtp_codec_name(int pt, char out[RTP_CODEC_MAX])
{
	if (pt > 95 && pt < 128)
		snprintf(out, RTP_CODEC_MAX, "Dynamic(%d)", pt);
	else if (pt >= 0 && pt <= 95 && static_codecs[pt])
		snprintf(out, RTP_CODEC_MAX, "%s", static_codecs[pt]);
	else
		snprintf(out, RTP_CODEC_MAX, "Unknown(%d)", pt);
}

/* Whether ip lies in net/len (both host order). */
static bool v4_in(uint32_t ip, uint32_t net, unsigned int len)
{
	uint32_t mask = len ? 0xffffffffu << (32 - len) : 0;

	return (ip & mask) == net;
}

static bool v4_routable(uint32_t ip)
{
	static const struct { uint32_t net; unsigned int len; } nonroutable[] = {
		{ 0x00000000, 8 },  /* "this network", 0.0.0.0 = on hold */
		{ 0x0a000000, 8 },  /* 10/8 */
		{ 0x7f000000, 8 },  /* loopback */
		{ 0xa9fe0000, 16 }, /* link local */
		{ 0xac100000, 12 }, /* 172.16/12 */
		{ 0xc0000200, 24 }, /* TEST-NET-1 */
		{ 0xc0a80000, 16 }, /* 192.168/16 */
		{ 0xe0000000, 4 },  /* multicast */
	};

	for (size_t i = 0; i < sizeof(nonroutable) / sizeof(nonroutable[0]); i++)
		if (v4_in(ip, nonroutable[i].net, nonroutable[i].len))
			return false;
	return true;
}

static bool v6_routable(const struct in6_addr *a)
{
	const uint8_t *b = a->s6_addr;
	uint32_t v4;

	if (IN6_IS_ADDR_V4MAPPED(a)) {
		memcpy(&v4, b + 12, sizeof(v4));
		return v4_routable(ntohl(v4));
	}
	if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a))
		return false;
	if (b[0] == 0xff)                          /* multicast */
		return false;
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 link local */
		return false;
	if ((b[0] & 0xfe) == 0xfc)                 /* fc00::/7 unique local */
		return false;
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
		return false;                      /* 2001:db8::/32 documentation */
	return true;
}

bool rtp_addr_routable(const struct net_addr *addr, const struct config_cidr_list *extra)
{
	if (extra)
		for (size_t i = 0; i < extra->count; i++)
			if (net_cidr_contains(&extra->items[i], addr))
				return true;
	if (addr->family == AF_INET)
		return v4_routable(ntohl(addr->v4.s_addr));
	if (addr->family == AF_INET6)
		return v6_routable(&addr->v6);
	return false;
}
