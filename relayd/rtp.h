/* What the relay needs to know about a media packet and a media address,
 * without parsing more than a few bytes: STUN or not (RFC 5389), the RTP
 * payload type and its codec name as MediaProxy reports it, and whether an
 * SDP address may be sent to before its party has latched (PROTOCOL.md D5).
 * Pure functions: no I/O, no logging. */
#ifndef MP_RTP_H
#define MP_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "net.h"

#define RTP_HEADER_MIN 12     /* fixed RTP header */
#define RTP_CODEC_MAX 16      /* "Unknown(127)" and "Dynamic(127)" fit */
#define STUN_HEADER_LEN 20
#define STUN_MAGIC_COOKIE 0x2112A442u

/* A STUN message: 20-byte header at least, the two top bits of the first
 * byte zero, the magic cookie at offset 4. */
bool rtp_is_stun(const uint8_t *buf, size_t len);

/* The payload type (0..127) of an RTP packet: version 2, at least a full
 * header, and not an RTCP packet multiplexed on the RTP port (RFC 5761:
 * packet types 192..223). Returns -1 for anything else. */
int rtp_payload_type(const uint8_t *buf, size_t len);

/* Writes MediaProxy's name for a payload type: the static table
 * ("G711u", "G729", ...), "Dynamic(<pt>)" above 95, "Unknown(<pt>)"
 * otherwise. out must hold RTP_CODEC_MAX bytes. */
void rtp_codec_name(int pt, char out[RTP_CODEC_MAX]);

/* Whether addr may receive media before its party latched: a public
 * address, or one inside extra ([Relay] routable_private_ranges; may be
 * NULL). Not routable, as upstream: 0/8, 10/8, 127/8, 169.254/16,
 * 172.16/12, 192.0.2/24, 192.168/16, multicast; for IPv6 (ours) also ::,
 * ::1, fe80::/10, fc00::/7, 2001:db8::/32 and ff00::/8. */
bool rtp_addr_routable(const struct net_addr *addr, const struct config_cidr_list *extra);

#endif
