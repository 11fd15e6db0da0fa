/*
 * tests/bpf/xdp_frames.h: crafted Ethernet (+VLAN) / IPv4 / IPv6 / UDP or
 * TCP frames with valid checksums for the XDP tests, and the reference
 * Internet checksum (RFC 1071, recomputed in full over the pseudo-header)
 * that checks what a program sent. It shares no code with the program.
 * Header-only: each tests/bpf/test_*.c is one program and one unit.
 */
#ifndef XDP_FRAMES_H
#define XDP_FRAMES_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FRAME_MAX	1600
#define ETH_HLEN	14
#define ETH_ZLEN	60	/* minimum frame without FCS */

/* ---- reference Internet checksum (RFC 1071) ----------------------------- */

static uint32_t csum_add(uint32_t sum, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Pseudo-header sum for an L4 segment (RFC 768, RFC 8200 §8.1). */
static uint32_t csum_pseudo(int family, const uint8_t *ip, uint8_t proto,
			    size_t l4_len)
{
	uint8_t w[4];
	uint32_t sum;

	if (family == AF_INET)
		sum = csum_add(0, ip + 12, 8);
	else
		sum = csum_add(0, ip + 8, 32);
	put16(w, 0);
	put16(w + 2, (uint16_t)l4_len);
	sum = csum_add(sum, w, 4);
	put16(w, 0);
	put16(w + 2, proto);
	return csum_add(sum, w, 4);
}

/* ---- frames ------------------------------------------------------------- */

/* Everything a frame carries; the test fills every field it relies on
 * (src, dst, ports, ihl, ttl, proto are used as given). */
struct frame_spec {
	int family;		/* AF_INET or AF_INET6 */
	uint16_t tpid;		/* VLAN TPID; 0 = untagged */
	uint16_t ethertype;	/* override (ARP); 0 = from family */
	const uint8_t *mac_dst;	/* NULL: 02:00:00:00:00:01 */
	const uint8_t *mac_src;	/* NULL: 02:00:00:00:00:02 */
	const char *src, *dst;
	uint16_t sport, dport;
	uint8_t proto;		/* IPPROTO_UDP or IPPROTO_TCP */
	uint8_t ihl;		/* IPv4 header length in words */
	uint8_t version;	/* IP version nibble; 0 = the right one */
	uint8_t ttl;		/* TTL / hop limit */
	uint16_t frag;		/* IPv4 flags + fragment offset, host order */
	bool v6_ext;		/* one IPv6 extension header before L4 */
	uint8_t v6_ext_type;	/* its type: 0 hop-by-hop, 44 fragment, ... */
	uint16_t payload;	/* L4 payload bytes */
	bool no_udp_csum;	/* IPv4 UDP checksum 0: "none" */
	bool set_word;		/* first payload word is .word, not the pattern */
	uint16_t word;
	int udp_len_delta;	/* added to the true UDP length field */
	int ip_len_delta;	/* added to the true IP length field */
	size_t pad_to;		/* zero-pad the frame to this length */
};

struct frame {
	uint8_t buf[FRAME_MAX];
	size_t len;
	size_t ip_off, l4_off, l4_len;
	int family;
	uint8_t proto;
};

static size_t put_eth(const struct frame_spec *s, uint8_t *p)
{
	static const uint8_t mac_dst[6] = { 2, 0, 0, 0, 0, 1 };
	static const uint8_t mac_src[6] = { 2, 0, 0, 0, 0, 2 };
	uint16_t type = s->ethertype ? s->ethertype :
			s->family == AF_INET ? 0x0800 : 0x86dd;
	size_t off = 12;

	memcpy(p, s->mac_dst ? s->mac_dst : mac_dst, 6);
	memcpy(p + 6, s->mac_src ? s->mac_src : mac_src, 6);
	if (s->tpid) {
		put16(p + off, s->tpid);
		put16(p + off + 2, 100);	/* VLAN 100 */
		off += 4;
	}
	put16(p + off, type);
	return off + 2;
}

static size_t put_ipv4(const struct frame_spec *s, uint8_t *p, size_t l4_len)
{
	size_t hlen = 4 * s->ihl;

	memset(p, 1, hlen < 20 ? 20 : hlen);	/* options, if any: NOPs */
	p[0] = (s->version ? s->version : 4) << 4 | s->ihl;
	p[1] = 0;
	put16(p + 2, (uint16_t)(hlen + l4_len + s->ip_len_delta));
	put16(p + 4, 0x1234);
	put16(p + 6, s->frag);
	p[8] = s->ttl;
	p[9] = s->proto;
	put16(p + 10, 0);
	inet_pton(AF_INET, s->src, p + 12);
	inet_pton(AF_INET, s->dst, p + 16);
	if (hlen < 20)		/* a broken IHL: keep the 20 bytes written */
		hlen = 20;
	put16(p + 10, csum_fold(csum_add(0, p, hlen)));
	return hlen;
}

static size_t put_ipv6(const struct frame_spec *s, uint8_t *p, size_t l4_len)
{
	size_t ext = s->v6_ext ? 8 : 0;

	memset(p, 0, 40 + ext);
	p[0] = (s->version ? s->version : 6) << 4;
	p[1] = 0x0a;			/* a flow label, to be carried as is */
	put16(p + 2, 0xbcde);
	put16(p + 4, (uint16_t)(ext + l4_len + s->ip_len_delta));
	p[6] = s->v6_ext ? s->v6_ext_type : s->proto;
	p[7] = s->ttl;
	inet_pton(AF_INET6, s->src, p + 8);
	inet_pton(AF_INET6, s->dst, p + 24);
	if (!s->v6_ext)
		return 40;
	p[40] = s->proto;		/* next header after the extension */
	if (s->v6_ext_type == 44) {
		put16(p + 42, 0x0001);	/* offset 0, M flag: a first fragment */
		put16(p + 46, 0x5678);	/* identification */
	} else {
		p[42] = 1;		/* PadN option, 4 bytes of padding */
		p[43] = 4;
	}
	return 48;
}

/* Sum over pseudo-header and segment with the checksum field as it is. */
static uint32_t frame_l4_sum(const struct frame *f)
{
	return csum_add(csum_pseudo(f->family, f->buf + f->ip_off, f->proto,
				    f->l4_len), f->buf + f->l4_off, f->l4_len);
}

static void put_l4(const struct frame_spec *s, struct frame *f)
{
	uint8_t *l4 = f->buf + f->l4_off;
	size_t hlen = f->l4_len - s->payload;
	size_t sum_off = s->proto == IPPROTO_TCP ? 16 : 6;
	uint16_t sum;

	put16(l4, s->sport);
	put16(l4 + 2, s->dport);
	if (s->proto == IPPROTO_TCP) {
		l4[12] = 5 << 4;	/* data offset */
		l4[13] = 0x02;		/* SYN */
		put16(l4 + 14, 65535);
	} else {
		put16(l4 + 4, (uint16_t)(f->l4_len + s->udp_len_delta));
	}
	for (size_t i = 0; i < s->payload; i++)
		l4[hlen + i] = (uint8_t)(i * 7 + 1);
	if (s->set_word && s->payload >= 2)
		put16(l4 + hlen, s->word);
	if (s->no_udp_csum && s->proto == IPPROTO_UDP && f->family == AF_INET)
		return;
	sum = csum_fold(frame_l4_sum(f));
	if (s->proto == IPPROTO_UDP && sum == 0)
		sum = 0xffff;		/* 0 means "no checksum" in UDP */
	put16(l4 + sum_off, sum);
}

/* Builds the frame with valid IP and L4 checksums (the L4 checksum covers
 * the whole segment, even when the UDP length field is made wrong). */
static void frame_build(const struct frame_spec *s, struct frame *f)
{
	memset(f, 0, sizeof(*f));
	f->family = s->family;
	f->proto = s->proto;
	f->ip_off = put_eth(s, f->buf);
	if (s->ethertype) {		/* not IP: an ARP-sized body */
		f->len = f->ip_off + 28;
		return;
	}
	f->l4_len = (s->proto == IPPROTO_TCP ? 20 : 8) + s->payload;
	if (s->family == AF_INET)
		f->l4_off = f->ip_off + put_ipv4(s, f->buf + f->ip_off, f->l4_len);
	else
		f->l4_off = f->ip_off + put_ipv6(s, f->buf + f->ip_off, f->l4_len);
	put_l4(s, f);
	f->len = f->l4_off + f->l4_len;
	if (f->len < s->pad_to)
		f->len = s->pad_to;
}

/* Checksums as a receiver verifies them: each sum must fold to zero, and
 * only an IPv4 UDP checksum may be absent (0). */
static bool frame_checksums_ok(const struct frame *f)
{
	const uint8_t *ip = f->buf + f->ip_off;
	const uint8_t *l4 = f->buf + f->l4_off;

	if (f->family == AF_INET && csum_fold(csum_add(0, ip, 4 * (ip[0] & 0xf))))
		return false;
	if (f->proto == IPPROTO_UDP && get16(l4 + 6) == 0)
		return f->family == AF_INET;
	return csum_fold(frame_l4_sum(f)) == 0;
}

/* The first payload word that makes the UDP checksum of `s` compute to 0
 * (and so be sent as 0xffff). */
static uint16_t frame_zero_sum_word(const struct frame_spec *s)
{
	struct frame_spec t = *s;
	struct frame f;
	uint16_t folded;

	t.set_word = true;
	t.word = 0;
	t.no_udp_csum = false;
	frame_build(&t, &f);
	put16(f.buf + f.l4_off + 6, 0);
	folded = (uint16_t)~csum_fold(frame_l4_sum(&f));	/* in 1..0xffff */
	return (uint16_t)(0xffff - folded);
}

#endif /* XDP_FRAMES_H */
