/* The stream's insides, shared by stream.c (lifecycle, SDP, statistics),
 * stream_io.c (receiving, latching, forwarding), stream_timeout.c and
 * stream_save.c (snapshots for a restart, D6). Nothing outside those
 * files includes this. */
#ifndef MP_STREAM_INTERNAL_H
#define MP_STREAM_INTERNAL_H

#include "stream.h"
#include "udp_batch.h"

/* STUN that arrives before its destination is known waits here (4.4): a
 * few messages per destination, the oldest dropped first, since ICE
 * retransmits and the newest check is the one worth delivering. */
#define STREAM_STUN_QUEUE 4
#define STREAM_STUN_MAX 1280 /* bytes; a larger "STUN" message is not queued */
/* batches read per wake-up before other sockets get their turn */
#define STREAM_READ_ROUNDS 4

struct stream_env {
	struct stream_env_options opts;
	unsigned int transmit_every; /* >= 1 */
	bool keep_flows;
	struct udp_batch batch;      /* shared: one loop, one batch at a time */
	struct stream *head;         /* every stream, newest first */
	unsigned int count;
	uint64_t freed_bytes;        /* payload bytes of streams already freed */
};

struct stream_stun {
	uint8_t *data;
	size_t len;
};

/* One side on one leg: a socket and what it learnt about its peer. */
struct stream_party {
	struct stream *stream;
	uint8_t side, leg;           /* enum stream_side, enum stream_leg */
	int fd;                      /* from the port pair; -1 once closed */
	struct event *ev;
	struct net_addr remote;      /* latched address (kept while obsolete) */
	uint16_t remote_port;
	bool remote_known;           /* remote holds an address */
	bool in_use;                 /* latched; false + remote_known = obsolete */
	uint64_t bytes, packets;     /* D4, user space only */
	uint64_t last_ns;            /* last packet from remote; 0 = never */
	uint64_t tx_seq;             /* for transmit_every */
	struct stream_stun stun[STREAM_STUN_QUEUE]; /* waiting to go TO this party */
	unsigned int stun_count;
};

struct stream_leg_state {
	struct stream_party party[2];
	bool installed;                  /* the backend holds `pair` */
	struct forward_pair pair;
	struct forward_counters base[2]; /* removed rules, [side]: forward = caller */
	struct forward_counters cur[2];  /* the installed rule, last read */
};

struct stream_side_state {
	struct ports_pair ports;     /* released (fds -1, port 0) on close */
	uint16_t local_port;         /* its RTP port, kept for the statistics */
	struct net_addr sdp;         /* AF_UNSPEC until set */
	uint16_t sdp_port;
	bool on_hold;
	uint64_t wait_since_ns;      /* no-traffic timer start for its RTP */
	bool codec_set;
	char codec[RTP_CODEC_MAX];
	uint64_t restored_bytes, restored_packets; /* D6: a previous relay's */
};

struct stream {
	struct stream_env *env;
	struct stream *prev, *next;
	struct stream_side_state side[2];
	struct stream_leg_state leg[2];
	uint64_t dropped;
	uint64_t created_ns, first_media_ns;
	uint64_t hold_since_ns;      /* valid while stream_on_hold() */
	bool closed;
	enum stream_timeout verdict; /* sticks once not STREAM_ACTIVE */
	unsigned int verdict_wait;
	stream_timeout_fn timeout_cb;
	void *timeout_ctx;
	stream_change_fn change_cb;
	void *change_ctx;
};

/* stream_io.c */
void stream_io_on_readable(evutil_socket_t fd, short what, void *arg);
/* Sends what waits for party p if it now has a destination. */
void stream_io_flush_stun(struct stream *s, struct stream_party *p);
void stream_io_drop_stun(struct stream_party *p);

/* stream.c */
bool stream_is_kernel(const struct stream *s);
void stream_install_leg(struct stream *s, enum stream_leg leg);
void stream_uninstall_leg(struct stream *s, enum stream_leg leg);
void stream_refresh_leg(struct stream *s, enum stream_leg leg);
uint64_t stream_leg_last_activity(const struct stream *s, enum stream_leg leg);
void stream_changed(struct stream *s);

#endif
