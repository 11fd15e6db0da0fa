/* A media stream (PROTOCOL.md 4.2-4.5, D4, D5, D19): two sides, caller and
 * callee, each with an RTP and an RTCP socket from the port pool. Each
 * side latches per leg on the first packet it sends, STUN included; media
 * is forwarded in user space until both sides of a leg are latched, then
 * handed to an in-kernel forwarding backend (forward.h) if there is one.
 * Counters, codecs, addresses and timeouts are kept here whichever path
 * carried the packets. The session model (offer/answer) lives elsewhere. */
#ifndef MP_STREAM_H
#define MP_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "forward.h"
#include "net.h"
#include "ports.h"
#include "rtp.h"

enum stream_side { STREAM_CALLER = 0, STREAM_CALLEE = 1 };
enum stream_leg { STREAM_RTP = 0, STREAM_RTCP = 1 };

enum stream_timeout {
	STREAM_ACTIVE = 0,
	STREAM_NO_TRAFFIC_TIMEOUT, /* a side sent no RTP in time: "no-traffic timeout" */
	STREAM_IDLE_TIMEOUT,       /* started, then idle too long: "conntrack timeout" */
	STREAM_ON_HOLD_TIMEOUT,    /* on hold for on_hold_timeout: "on hold timeout" */
};

struct stream;
struct stream_env;

/* Monotonic time in ns; tests inject a fake one. */
typedef uint64_t (*stream_clock_fn)(void *ctx);
/* Told once when a stream times out; may close and free that stream and
 * any other. timeout_wait is the limit that expired, in seconds. */
typedef void (*stream_timeout_fn)(struct stream *s, enum stream_timeout why,
				  unsigned int timeout_wait, void *ctx);

/* What every stream of one relay shares. Pointers must outlive the env. */
struct stream_env_options {
	struct event_base *base;
	struct ports_pool *pool;
	const struct forward_backend *backend; /* NULL or !in_kernel: user space only */
	struct forward *fw;
	const struct config_cidr_list *routable_private_ranges; /* may be NULL */
	unsigned int transmit_every;           /* user space forwards 1 of N; 0 = 1 */
	stream_clock_fn clock;                 /* NULL: CLOCK_MONOTONIC */
	void *clock_ctx;
};

/* 0, -EINVAL or -ENOMEM. */
int stream_env_new(struct stream_env **out, const struct stream_env_options *opts);
/* Frees the env and every stream still in it (their kernel flows go
 * unless stream_env_keep_flows()): call it before closing the backend. */
void stream_env_free(struct stream_env *env);
uint64_t stream_env_now(const struct stream_env *env);
/* keep = true (SIGUSR2, D6): closing a stream leaves its kernel flows. */
void stream_env_keep_flows(struct stream_env *env, bool keep);
/* Checks every stream (stream_check_timeout) and tells each one that
 * timed out to its callback. Called every few seconds by the relay. */
void stream_env_check_timeouts(struct stream_env *env, unsigned int stream_timeout,
			       unsigned int on_hold_timeout);
/* Payload bytes relayed so far by every stream, freed ones included:
 * monotonic, for struct traffic_sampler. */
uint64_t stream_env_relayed_bytes(struct stream_env *env);
unsigned int stream_env_count(const struct stream_env *env);

/* Takes two port pairs and starts listening. 0, -EBUSY when the pool is
 * exhausted (D1: the relay answers `error`), or -errno. */
int stream_new(struct stream_env *env, struct stream **out);
/* The same on given RTP ports (a restarted relay re-adopting, D6). */
int stream_new_on_ports(struct stream_env *env, uint16_t caller_rtp, uint16_t callee_rtp,
			struct stream **out);
/* Removes the kernel flows (their final counters join the totals), stops
 * listening and returns the ports; statistics stay readable. Idempotent. */
void stream_close(struct stream *s);
/* stream_close() and free. NULL is fine. */
void stream_free(struct stream *s);

/* The SDP address of one side (RTCP goes to port + 1). A change of
 * address or port after a first one resets that side (4.3): its latched
 * addresses become obsolete, packets from them are dropped, and the next
 * new source latches; its no-traffic timer restarts. An unspecified
 * address (0.0.0.0, ::) is a hold marker: it changes nothing here. */
void stream_set_sdp(struct stream *s, enum stream_side side, const struct net_addr *addr,
		    uint16_t port);
/* sendonly/inactive or 0.0.0.0, as the control plane sees it (4.5). */
void stream_set_hold(struct stream *s, enum stream_side side, bool on_hold);
bool stream_on_hold(const struct stream *s);
void stream_set_timeout_cb(struct stream *s, stream_timeout_fn cb, void *ctx);

/* The relay's RTP port facing side (what a reply to that side's peer
 * advertises: the callee-facing one in a reply to a downstream offer). */
uint16_t stream_local_port(const struct stream *s, enum stream_side side);

/* Restores what a previous relay learnt (D6): the latched address of each
 * side of one leg (port 0 = not latched); pair_adopted = the backend
 * already forwards it, so it is not added again. 0 or -EINVAL. */
int stream_restore_leg(struct stream *s, enum stream_leg leg,
		       const struct forward_endpoint latched[2], bool pair_adopted);
void stream_restore_counters(struct stream *s, enum stream_side side, uint64_t bytes,
			     uint64_t packets, const char *codec);

/* What a restarted relay needs to carry a stream on (D6), as stream_save()
 * takes it and stream_restore() puts it back. The counters are split so
 * that nothing is counted twice: bytes/packets are everything except the
 * rules the backend holds now (user space, removed rules, earlier relays);
 * kernel[] are those rules' counts when last read. */
struct stream_saved_side {
	uint16_t rtp_port;                  /* the relay's, facing this side */
	struct net_addr sdp;                /* AF_UNSPEC: none yet */
	uint16_t sdp_port;
	bool on_hold;
	char codec[RTP_CODEC_MAX];
	uint64_t bytes, packets;
	struct forward_endpoint latched[2]; /* [leg]; port 0 = not latched */
	struct forward_counters kernel[2];  /* [leg]; last_seen_ns unused */
};

struct stream_saved {
	struct stream_saved_side side[2];   /* [STREAM_CALLER], [STREAM_CALLEE] */
	bool installed[2];                  /* [leg]: handed to the backend */
	uint64_t dropped_packets;
	uint64_t created_ns, first_media_ns; /* the env's clock; first_media 0 = none */
};

/* A snapshot, without reading the backend (its counters as last read). */
void stream_save(const struct stream *s, struct stream_saved *out);
/* Puts a snapshot back on a stream made by stream_new_on_ports() on the
 * saved ports: SDP addresses, hold, latches, counters, codecs, times.
 * adopted[leg]: the backend still holds that leg's pair, so its counters
 * go on from the kernel's running totals and the saved kernel[] counts
 * are dropped; otherwise they join the base and the leg is installed
 * anew. Restored latches count as active now (no idle timeout at once).
 * 0 or -EINVAL (a latched address that is not IPv4/IPv6). */
int stream_restore(struct stream *s, const struct stream_saved *in, const bool adopted[2]);

/* Told when the stream changes on its own, without the control plane: a
 * party latched, or an idle RTCP leg forgot its latches. Must not free
 * the stream (it runs on the packet path). */
typedef void (*stream_change_fn)(struct stream *s, void *ctx);
void stream_set_change_cb(struct stream *s, stream_change_fn cb, void *ctx);

struct stream_side_stats {
	uint64_t bytes;   /* D4: UDP payload from the latched address, RTP + RTCP */
	uint64_t packets;
	char codec[RTP_CODEC_MAX];        /* "Unknown" until its first RTP packet */
	char local[NET_ADDRPORT_STRLEN];  /* relay_ip:RTP port facing this side */
	char remote[NET_ADDRPORT_STRLEN]; /* latched RTP address, or "Unknown" */
};

struct stream_stats {
	struct stream_side_stats side[2];  /* [STREAM_CALLER], [STREAM_CALLEE] */
	uint64_t dropped_packets;          /* from any other source: not forwarded */
	uint64_t created_ns;               /* stream_env_now() clock */
	uint64_t first_media_ns;           /* first packet latched; 0 = none yet */
	uint64_t last_activity_ns;         /* user space or backend; 0 = none yet */
	bool on_hold;
};

/* Totals: user space counts plus the backend's (removed rules and the
 * live one, read now). Returns 0. */
int stream_get_stats(struct stream *s, struct stream_stats *out);

/* Decides whether the stream timed out at now_ns (4.5): a side without
 * RTP stream_timeout after creation, its last reset or the end of a hold;
 * started media idle for stream_timeout (on_hold_timeout while on hold),
 * idleness taken from the last packet on any path; or on hold for
 * on_hold_timeout. An idle RTCP leg only forgets its latched addresses.
 * The first verdict other than STREAM_ACTIVE sticks. timeout_wait (may be
 * NULL) gets the limit in seconds. */
enum stream_timeout stream_check_timeout(struct stream *s, uint64_t now_ns,
					 unsigned int stream_timeout,
					 unsigned int on_hold_timeout,
					 unsigned int *timeout_wait);

#endif
