/* The user-space data path of a stream: read a socket in batches, latch
 * the sender (4.4, D19), count (D4), and forward out of the other side's
 * socket of the same leg, to that side's latched address or, before it
 * latched, to its SDP address when that is routable (D5). It runs before
 * latching completes, for the userspace backend, and for whatever an
 * in-kernel backend still passes up (an XDP FIB miss, a foreign source). */
#include "stream_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Where packets for party p go now: its latched address, else its SDP
 * address (RTCP: port + 1) if that may be sent to. false = nowhere. */
static bool party_destination(const struct stream *s, const struct stream_party *p,
			      struct sockaddr_storage *ss, socklen_t *sslen)
{
	const struct stream_side_state *sd = &s->side[p->side];
	const struct net_addr *relay_ip = ports_relay_ip(s->env->opts.pool);
	const struct net_addr *addr;
	unsigned int port;
	int len;

	if (p->in_use) {
		addr = &p->remote;
		port = p->remote_port;
	} else {
		addr = &sd->sdp;
		port = sd->sdp_port ? sd->sdp_port + p->leg : 0;
		if (addr->family == AF_UNSPEC || net_addr_is_any(addr) || !port ||
		    port > 65535 ||
		    !rtp_addr_routable(addr, s->env->opts.routable_private_ranges))
			return false;
	}
	/* one socket family per relay: no v4 <-> v6 translation */
	if (addr->family != relay_ip->family)
		return false;
	len = net_addr_to_sockaddr(addr, (uint16_t)port, ss);
	if (len < 0)
		return false;
	*sslen = (socklen_t)len;
	return true;
}

static void stun_enqueue(struct stream_party *p, const uint8_t *data, size_t len)
{
	struct stream_stun *slot;
	uint8_t *copy;

	if (len > STREAM_STUN_MAX)
		return;
	copy = malloc(len);
	if (!copy)
		return;
	memcpy(copy, data, len);
	if (p->stun_count == STREAM_STUN_QUEUE) {
		free(p->stun[0].data);
		memmove(&p->stun[0], &p->stun[1], sizeof(p->stun[0]) * (STREAM_STUN_QUEUE - 1));
		p->stun_count--;
	}
	slot = &p->stun[p->stun_count++];
	slot->data = copy;
	slot->len = len;
}

void stream_io_drop_stun(struct stream_party *p)
{
	for (unsigned int i = 0; i < p->stun_count; i++)
		free(p->stun[i].data);
	p->stun_count = 0;
}

void stream_io_flush_stun(struct stream *s, struct stream_party *p)
{
	struct iovec iov[STREAM_STUN_QUEUE];
	struct sockaddr_storage ss;
	socklen_t sslen;
	int rc;

	if (!p->stun_count || p->fd < 0 || !party_destination(s, p, &ss, &sslen))
		return;
	for (unsigned int i = 0; i < p->stun_count; i++) {
		iov[i].iov_base = p->stun[i].data;
		iov[i].iov_len = p->stun[i].len;
	}
	rc = udp_batch_send(p->fd, (struct sockaddr *)&ss, sslen, iov, p->stun_count);
	if (rc < 0)
		log_debug("%s: port %u: %s", __func__, s->side[p->side].local_port + p->leg,
			  strerror(-rc));
	stream_io_drop_stun(p);
}

static void log_latch(const struct stream *s, const struct stream_party *p)
{
	char buf[NET_ADDRPORT_STRLEN];

	if (log_get_level() < LOG_LEVEL_DEBUG)
		return;
	if (net_addr_port_format(&p->remote, p->remote_port, buf, sizeof(buf)))
		return;
	log_debug("stream %u/%u: %s %s latched to %s", s->side[STREAM_CALLER].local_port,
		  s->side[STREAM_CALLEE].local_port,
		  p->side == STREAM_CALLER ? "caller" : "callee",
		  p->leg == STREAM_RTP ? "RTP" : "RTCP", buf);
}

static void latch(struct stream *s, struct stream_party *p, const struct net_addr *src,
		  uint16_t port, uint64_t now)
{
	p->remote = *src;
	p->remote_port = port;
	p->remote_known = true;
	p->in_use = true;
	if (!s->first_media_ns)
		s->first_media_ns = now;
	log_latch(s, p);
	stream_io_flush_stun(s, p);
	stream_install_leg(s, p->leg);
	stream_changed(s);
}

/* Upstream's rule: the latched source is accepted, an obsolete one (its
 * side was reset by an SDP change) is not, and any source latches a party
 * that has no address yet. Returns false for a packet to drop. */
static bool accept_source(struct stream *s, struct stream_party *p,
			  const struct sockaddr *sa, uint64_t now)
{
	struct net_addr src;
	uint16_t port;

	if (net_addr_from_sockaddr(sa, &src, &port))
		return false;
	if (p->remote_known && p->remote_port == port && net_addr_equal(&p->remote, &src))
		return p->in_use;
	if (p->in_use)
		return false;
	latch(s, p, &src, port, now);
	return true;
}

static void detect_codec(struct stream_side_state *sd, const uint8_t *data, size_t len)
{
	int pt;

	if (rtp_is_stun(data, len))
		return;
	pt = rtp_payload_type(data, len);
	if (pt < 0)
		return;
	rtp_codec_name(pt, sd->codec);
	sd->codec_set = true;
}

/* Handles one received batch on party p's socket. Only p's own state can
 * change while it runs, so the destination (the other party) is fixed. */
static void handle_batch(struct stream *s, struct stream_party *p, struct udp_batch *b)
{
	struct stream_party *to = &s->leg[p->leg].party[!p->side];
	struct stream_side_state *sd = &s->side[p->side];
	unsigned int every = s->env->transmit_every, n = 0;
	struct iovec iov[UDP_BATCH_MAX];
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	bool have_dest = party_destination(s, to, &ss, &sslen);
	uint64_t now = stream_env_now(s->env);
	int rc;

	for (unsigned int i = 0; i < b->count; i++) {
		const uint8_t *data = udp_batch_data(b, i);
		size_t len = udp_batch_len(b, i);

		if (!accept_source(s, p, udp_batch_src(b, i), now)) {
			s->dropped++;
			continue;
		}
		p->bytes += len;
		p->packets++;
		p->last_ns = now;
		if (p->leg == STREAM_RTP && !sd->codec_set)
			detect_codec(sd, data, len);
		if (every > 1 && p->tx_seq++ % every)
			continue;
		if (!have_dest) {
			if (rtp_is_stun(data, len))
				stun_enqueue(to, data, len);
			continue;
		}
		iov[n].iov_base = (void *)data;
		iov[n].iov_len = len;
		n++;
	}
	if (!n || to->fd < 0)
		return;
	rc = udp_batch_send(to->fd, (struct sockaddr *)&ss, sslen, iov, n);
	if (rc < 0)
		log_debug("%s: forwarding from port %u: %s", __func__,
			  s->side[to->side].local_port + to->leg, strerror(-rc));
}

void stream_io_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct stream_party *p = arg;
	struct stream *s = p->stream;
	struct udp_batch *b = &s->env->batch;

	(void)what;
	for (int round = 0; round < STREAM_READ_ROUNDS; round++) {
		int n = udp_batch_recv(b, fd);

		if (n < 0) {
			/* ICMP errors of earlier sends surface here; nothing
			 * to do about them but carry on */
			log_debug("%s: port %u: %s", __func__,
				  s->side[p->side].local_port + p->leg, strerror(-n));
			continue;
		}
		if (n == 0)
			break;
		handle_batch(s, p, b);
		if (n < UDP_BATCH_MAX)
			break;
	}
}
