/* The conntrack forwarding backend: each pair (one leg, both directions)
 * becomes one conntrack entry created through ctnetlink. Its original tuple
 * is caller -> relay caller-facing port; its NAT bindings (DNAT to the
 * callee, SNAT to the relay's callee-facing port) make the kernel forward
 * both directions and count them. Our nftables table (nft_table.c) supplies
 * the NAT hooks the bindings need.
 *
 * Choices:
 * - IP forwarding: open() refuses, saying why, when forwarding is off for
 *   the relay address's family. Turning on net.ipv4.ip_forward or
 *   net.ipv6.conf.all.forwarding makes the whole host a router (and stops
 *   IPv6 from accepting router advertisements); that is the operator's
 *   call, not a side effect of starting a media relay. `auto` then moves on
 *   to the next backend. A loopback relay_ip forwards nothing, so it needs
 *   no forwarding.
 * - Accounting: nf_conntrack_acct (per network namespace) is switched on if
 *   it is off, and open() fails if it cannot be: without counters there are
 *   no byte counts (D4) and no last-seen times, so streams would time out.
 * - Our entries carry ct mark CT_MARK; adoption at open and the clean exit
 *   find them by that mark, the relay address and the port range (so two
 *   relays on one host leave each other's entries alone). A host rule that
 *   rewrites ct marks would hide our entries from adoption.
 * - Timeout: entries are created with CT_TIMEOUT_S and every read_pair sets
 *   it again, so an entry outlives any idle period while the relay reads it
 *   at least every CT_TIMEOUT_S / 2 (its stream timers read every few
 *   seconds and decide idleness themselves from last_seen). Packets set the kernel's UDP timeouts (30 s
 *   unreplied, 120 s both ways), so entries a crashed or restarting relay
 *   left keep forwarding while media flows and expire after it stops.
 * - last_seen: conntrack keeps no time of the last packet, so read_pair
 *   sets it to now whenever the packet counter moved since the previous
 *   read: its resolution is the read interval.
 * - remove_pair reads the counters, then destroys the entry: a packet that
 *   arrives between the two is forwarded but not counted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "forward.h"
#include "log.h"
#include "net.h"
#include "nft_table.h"

#define CT_MARK 0x4d500001u    /* "MP" 0001: the ct mark of every entry we create */
#define CT_TIMEOUT_S 60        /* set at creation and on every read */
#define CT_CREATE_TRIES 4      /* a packet can recreate a clashing entry meanwhile */
#define CT_DEFAULT_TABLE "mediaproxy"
#define CT_OVERHEAD_V4 28      /* IPv4 + UDP headers: conntrack counts IP bytes */
#define CT_OVERHEAD_V6 48      /* IPv6 + UDP headers */

#define SYSCTL_ACCT "/proc/sys/net/netfilter/nf_conntrack_acct"
#define SYSCTL_FWD_V4 "/proc/sys/net/ipv4/ip_forward"
#define SYSCTL_FWD_V6 "/proc/sys/net/ipv6/conf/all/forwarding"

/* What we read back from one conntrack entry. */
struct ct_entry {
	int family;
	struct forward_endpoint orig_src, orig_dst, repl_src, repl_dst;
	uint32_t mark;
	uint64_t orig_packets, orig_bytes, repl_packets, repl_bytes;
};

/* Entries collected by a dump. */
struct ct_list {
	struct ct_entry *items;
	size_t count, cap;
	int err;
};

/* One installed pair, indexed by its caller-facing port: what we installed
 * (so a replacement removes it) and the packet counts of the previous read
 * (conntrack has no last-seen time; we derive it). */
struct ct_slot {
	struct forward_pair pair;
	uint64_t fwd_packets, back_packets;
	uint64_t fwd_seen_ns, back_seen_ns;
};

struct ct_adopted {
	struct forward_pair pair;
	struct forward_counters fwd, back;
};

struct forward {
	struct nfct_handle *h;
	struct net_addr relay_ip;
	uint16_t port_min, port_max;
	char table[NFT_TABLE_NAME_MAX + 1];
	struct ct_slot **slots;       /* [port - port_min] */
	struct ct_adopted *adopted;
	size_t adopted_count;
	/* where the query callback delivers: one entry (got) or a list */
	struct ct_entry *got;
	bool got_one;
	struct ct_list *list;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool endpoint_equal(const struct forward_endpoint *a, const struct forward_endpoint *b)
{
	return a->port == b->port && net_addr_equal(&a->addr, &b->addr);
}

/* --- sysctls ------------------------------------------------------------------ */

static int sysctl_read(const char *path, int *value)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = '\0';
	*value = atoi(buf);
	return 0;
}

static int sysctl_write(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		err = -errno;
	close(fd);
	return err;
}

static bool addr_is_loopback(const struct net_addr *a)
{
	if (a->family == AF_INET)
		return (ntohl(a->v4.s_addr) >> 24) == 127;
	return a->family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&a->v6);
}

static int check_forwarding(const struct net_addr *relay_ip, char *why, size_t whylen)
{
	const char *path = relay_ip->family == AF_INET ? SYSCTL_FWD_V4 : SYSCTL_FWD_V6;
	const char *name = relay_ip->family == AF_INET ? "net.ipv4.ip_forward"
						       : "net.ipv6.conf.all.forwarding";
	int on = 0, err;

	if (addr_is_loopback(relay_ip))
		return 0;
	err = sysctl_read(path, &on);
	if (err) {
		snprintf(why, whylen, "cannot read %s: %s", name, strerror(-err));
		return err;
	}
	if (!on) {
		snprintf(why, whylen, "IP forwarding is off (%s = 0); the kernel can only "
			 "forward NAT'd media with it on: set it with sysctl (not done "
			 "automatically: it makes the host a router)", name);
		return -ENOPROTOOPT;
	}
	return 0;
}

/* Counters exist only on entries created while accounting is on. */
static int enable_accounting(char *why, size_t whylen)
{
	int on = 0, err = sysctl_read(SYSCTL_ACCT, &on);

	if (!err && on)
		return 0;
	if (!err)
		err = sysctl_write(SYSCTL_ACCT, "1");
	if (err) {
		snprintf(why, whylen, "cannot enable conntrack accounting "
			 "(net.netfilter.nf_conntrack_acct): %s", strerror(-err));
		return err;
	}
	log_info("enabled conntrack accounting (net.netfilter.nf_conntrack_acct = 1) "
		 "for the relay's byte counters");
	return 0;
}

/* --- conntrack objects ------------------------------------------------------ */

static void ct_set_addr(struct nf_conntrack *ct, enum nf_conntrack_attr v4,
			enum nf_conntrack_attr v6, const struct net_addr *a)
{
	if (a->family == AF_INET)
		nfct_set_attr_u32(ct, v4, a->v4.s_addr);
	else
		nfct_set_attr(ct, v6, &a->v6);
}

static void ct_get_endpoint(const struct nf_conntrack *ct, int family,
			    enum nf_conntrack_attr v4, enum nf_conntrack_attr v6,
			    enum nf_conntrack_attr port, struct forward_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->addr.family = family;
	if (family == AF_INET)
		ep->addr.v4.s_addr = nfct_get_attr_u32(ct, v4);
	else if (nfct_get_attr(ct, v6))
		memcpy(&ep->addr.v6, nfct_get_attr(ct, v6), sizeof(ep->addr.v6));
	ep->port = ntohs(nfct_get_attr_u16(ct, port));
}

/* -EAFNOSUPPORT for anything but a UDP entry over IPv4 or IPv6. */
static int ct_entry_read(const struct nf_conntrack *ct, struct ct_entry *e)
{
	int family = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO);

	if ((family != AF_INET && family != AF_INET6) ||
	    nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_UDP)
		return -EAFNOSUPPORT;
	e->family = family;
	ct_get_endpoint(ct, family, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC,
			ATTR_ORIG_PORT_SRC, &e->orig_src);
	ct_get_endpoint(ct, family, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST,
			ATTR_ORIG_PORT_DST, &e->orig_dst);
	ct_get_endpoint(ct, family, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC,
			ATTR_REPL_PORT_SRC, &e->repl_src);
	ct_get_endpoint(ct, family, ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST,
			ATTR_REPL_PORT_DST, &e->repl_dst);
	e->mark = nfct_get_attr_u32(ct, ATTR_MARK);
	e->orig_packets = nfct_get_attr_u64(ct, ATTR_ORIG_COUNTER_PACKETS);
	e->orig_bytes = nfct_get_attr_u64(ct, ATTR_ORIG_COUNTER_BYTES);
	e->repl_packets = nfct_get_attr_u64(ct, ATTR_REPL_COUNTER_PACKETS);
	e->repl_bytes = nfct_get_attr_u64(ct, ATTR_REPL_COUNTER_BYTES);
	return 0;
}

static int ct_list_add(struct ct_list *list, const struct ct_entry *e)
{
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 64;
		struct ct_entry *items = realloc(list->items, cap * sizeof(*items));

		if (!items)
			return -ENOMEM;
		list->items = items;
		list->cap = cap;
	}
	list->items[list->count++] = *e;
	return 0;
}

/* Every answer to our queries passes through here; see struct forward. */
static int ct_callback(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	struct forward *fw = data;
	struct ct_entry e;

	(void)type;
	if (ct_entry_read(ct, &e))
		return NFCT_CB_CONTINUE;
	if (fw->list) {
		if (!fw->list->err)
			fw->list->err = ct_list_add(fw->list, &e);
	} else if (fw->got) {
		*fw->got = e;
		fw->got_one = true;
	}
	return NFCT_CB_CONTINUE;
}

/* An object naming the entry with a tuple src -> dst (either direction). */
static struct nf_conntrack *ct_tuple(const struct forward_endpoint *src,
				     const struct forward_endpoint *dst)
{
	struct nf_conntrack *ct = nfct_new();

	if (!ct)
		return NULL;
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, (uint8_t)src->addr.family);
	nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, IPPROTO_UDP);
	ct_set_addr(ct, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC, &src->addr);
	ct_set_addr(ct, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST, &dst->addr);
	nfct_set_attr_u16(ct, ATTR_ORIG_PORT_SRC, htons(src->port));
	nfct_set_attr_u16(ct, ATTR_ORIG_PORT_DST, htons(dst->port));
	return ct;
}

/* The entry for a pair: original tuple caller -> relay caller-facing port,
 * DNAT to the callee and SNAT to the relay's callee-facing port, which turns
 * the reply tuple into callee -> relay callee-facing port. The reply tuple
 * we send must be the plain inverse of the original: the kernel marks a
 * direction as NAT'd only where a binding changes the tuple it derives from
 * that one, and only marked directions are rewritten. */
static struct nf_conntrack *ct_pair_object(const struct forward_pair *p)
{
	const struct forward_flow *f = &p->forward;
	struct nf_conntrack *ct = ct_tuple(&f->source, &f->local);

	if (!ct)
		return NULL;
	nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, (uint8_t)f->source.addr.family);
	nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, IPPROTO_UDP);
	ct_set_addr(ct, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC, &f->local.addr);
	ct_set_addr(ct, ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST, &f->source.addr);
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(f->local.port));
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(f->source.port));
	ct_set_addr(ct, ATTR_DNAT_IPV4, ATTR_DNAT_IPV6, &f->destination.addr);
	nfct_set_attr_u16(ct, ATTR_DNAT_PORT, htons(f->destination.port));
	ct_set_addr(ct, ATTR_SNAT_IPV4, ATTR_SNAT_IPV6, &f->out_local.addr);
	nfct_set_attr_u16(ct, ATTR_SNAT_PORT, htons(f->out_local.port));
	nfct_set_attr_u32(ct, ATTR_TIMEOUT, CT_TIMEOUT_S);
	nfct_set_attr_u32(ct, ATTR_MARK, CT_MARK);
	return ct;
}

/* Runs one query on an object; 0 or -errno. */
static int ct_query(struct forward *fw, enum nf_conntrack_query q, struct nf_conntrack *ct)
{
	int err = 0;

	if (!ct)
		return -ENOMEM;
	if (nfct_query(fw->h, q, ct))
		err = errno ? -errno : -EIO;
	nfct_destroy(ct);
	return err;
}

/* The entry holding the tuple src -> dst. 0, -ENOENT or -errno. */
static int ct_get(struct forward *fw, const struct forward_endpoint *src,
		  const struct forward_endpoint *dst, struct ct_entry *out)
{
	int err;

	fw->got = out;
	fw->got_one = false;
	err = ct_query(fw, NFCT_Q_GET, ct_tuple(src, dst));
	if (!err && !fw->got_one)
		err = -ENOENT;
	fw->got = NULL;
	return err;
}

/* Destroys the entry holding the tuple src -> dst, if any. */
static int ct_clear(struct forward *fw, const struct forward_endpoint *src,
		    const struct forward_endpoint *dst)
{
	int err = ct_query(fw, NFCT_Q_DESTROY, ct_tuple(src, dst));

	return err == -ENOENT ? 0 : err;
}

static int ct_refresh(struct forward *fw, const struct forward_flow *f)
{
	struct nf_conntrack *ct = ct_tuple(&f->source, &f->local);

	if (ct)
		nfct_set_attr_u32(ct, ATTR_TIMEOUT, CT_TIMEOUT_S);
	return ct_query(fw, NFCT_Q_UPDATE, ct);
}

/* Our entries of this relay's address family, filtered by mark in the kernel. */
static int ct_dump_ours(struct forward *fw, struct ct_list *list)
{
	struct nfct_filter_dump_mark mark = { .val = CT_MARK, .mask = 0xffffffffu };
	struct nfct_filter_dump *filter = nfct_filter_dump_create();
	int err = 0;

	if (!filter)
		return -ENOMEM;
	nfct_filter_dump_set_attr(filter, NFCT_FILTER_DUMP_MARK, &mark);
	nfct_filter_dump_set_attr_u8(filter, NFCT_FILTER_DUMP_L3NUM,
				     (uint8_t)fw->relay_ip.family);
	fw->list = list;
	if (nfct_query(fw->h, NFCT_Q_DUMP_FILTER, filter))
		err = errno ? -errno : -EIO;
	fw->list = NULL;
	nfct_filter_dump_destroy(filter);
	return err ? err : list->err;
}

static bool port_ours(const struct forward *fw, uint16_t port)
{
	return port >= fw->port_min && port <= fw->port_max;
}

/* Ours, and this relay's: the mark, the relay address, ports in our range. */
static bool ct_entry_ours(const struct forward *fw, const struct ct_entry *e)
{
	return e->mark == CT_MARK && net_addr_equal(&e->orig_dst.addr, &fw->relay_ip) &&
	       port_ours(fw, e->orig_dst.port) && port_ours(fw, e->repl_dst.port);
}

/* Whether the entry is the one add_pair installs for p. */
static bool ct_entry_is_pair(const struct ct_entry *e, const struct forward_pair *p)
{
	const struct forward_flow *f = &p->forward;

	return e->mark == CT_MARK && endpoint_equal(&e->orig_src, &f->source) &&
	       endpoint_equal(&e->orig_dst, &f->local) &&
	       endpoint_equal(&e->repl_src, &f->destination) &&
	       endpoint_equal(&e->repl_dst, &f->out_local);
}

static void ct_pair_from_entry(const struct ct_entry *e, struct forward_pair *p)
{
	memset(p, 0, sizeof(*p));
	p->forward.local = e->orig_dst;
	p->forward.source = e->orig_src;
	p->forward.out_local = e->repl_dst;
	p->forward.destination = e->repl_src;
	p->backward.local = e->repl_dst;
	p->backward.source = e->repl_src;
	p->backward.out_local = e->orig_dst;
	p->backward.destination = e->orig_src;
}

/* --- pairs and their slots ------------------------------------------------- */

/* One conntrack entry can only express a pair whose directions mirror each
 * other, all in one family, with the caller-facing port in our range. */
static int pair_check(const struct forward *fw, const struct forward_pair *p)
{
	const struct forward_flow *f = &p->forward, *b = &p->backward;
	int family = f->local.addr.family;

	if (family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	if (f->source.addr.family != family || f->out_local.addr.family != family ||
	    f->destination.addr.family != family)
		return -EINVAL;
	if (!endpoint_equal(&b->local, &f->out_local) ||
	    !endpoint_equal(&b->source, &f->destination) ||
	    !endpoint_equal(&b->out_local, &f->local) ||
	    !endpoint_equal(&b->destination, &f->source))
		return -EINVAL;
	if (!port_ours(fw, f->local.port))
		return -ERANGE;
	return 0;
}

static struct ct_slot **slot_ref(struct forward *fw, const struct forward_pair *p)
{
	return &fw->slots[p->forward.local.port - fw->port_min];
}

static struct ct_slot *slot_get(struct forward *fw, const struct forward_pair *p)
{
	struct ct_slot **ref = slot_ref(fw, p);

	if (!*ref)
		*ref = calloc(1, sizeof(**ref));
	if (*ref)
		(*ref)->pair = *p;
	return *ref;
}

static void slot_drop(struct forward *fw, const struct forward_pair *p)
{
	struct ct_slot **ref = slot_ref(fw, p);

	free(*ref);
	*ref = NULL;
}

static uint64_t payload_bytes(int family, uint64_t ip_bytes, uint64_t packets)
{
	uint64_t overhead = packets * (family == AF_INET ? CT_OVERHEAD_V4 : CT_OVERHEAD_V6);

	return ip_bytes > overhead ? ip_bytes - overhead : 0;
}

/* Converts an entry's counters (D4) and derives last-seen times. */
static void fill_counters(struct forward *fw, const struct forward_pair *p,
			  const struct ct_entry *e, struct forward_counters *fwd,
			  struct forward_counters *back)
{
	struct ct_slot *s = slot_get(fw, p);
	uint64_t now = now_ns();

	if (s && e->orig_packets != s->fwd_packets) {
		s->fwd_packets = e->orig_packets;
		s->fwd_seen_ns = now;
	}
	if (s && e->repl_packets != s->back_packets) {
		s->back_packets = e->repl_packets;
		s->back_seen_ns = now;
	}
	if (fwd) {
		fwd->packets = e->orig_packets;
		fwd->bytes = payload_bytes(e->family, e->orig_bytes, e->orig_packets);
		fwd->last_seen_ns = s ? s->fwd_seen_ns : (e->orig_packets ? now : 0);
	}
	if (back) {
		back->packets = e->repl_packets;
		back->bytes = payload_bytes(e->family, e->repl_bytes, e->repl_packets);
		back->last_seen_ns = s ? s->back_seen_ns : (e->repl_packets ? now : 0);
	}
}

/* --- the backend ------------------------------------------------------------ */

/* Creates the entry, first removing whatever holds its tuples: entries the
 * kernel made for packets the relay's sockets saw before this pair was
 * installed, the relay's own sends, or our previous entry for this port. */
static int ct_create(struct forward *fw, const struct forward_pair *p)
{
	const struct forward_flow *f = &p->forward;
	int err = 0;

	for (int attempt = 0; attempt < CT_CREATE_TRIES; attempt++) {
		if ((err = ct_clear(fw, &f->source, &f->local)) ||
		    (err = ct_clear(fw, &f->destination, &f->out_local)))
			return err;
		err = ct_query(fw, NFCT_Q_CREATE, ct_pair_object(p));
		if (err != -EEXIST)
			return err;
	}
	return err;
}

static int ct_add_pair(struct forward *fw, const struct forward_pair *p)
{
	char caller[NET_ADDRPORT_STRLEN], callee[NET_ADDRPORT_STRLEN];
	const struct forward_flow *f = &p->forward;
	struct ct_slot *old;
	struct ct_entry e;
	int err = pair_check(fw, p);

	if (err)
		return err;
	old = *slot_ref(fw, p);
	net_addr_port_format(&f->source.addr, f->source.port, caller, sizeof(caller));
	net_addr_port_format(&f->destination.addr, f->destination.port, callee, sizeof(callee));
	/* A replacement with other peers: its old entry has other tuples. */
	if (old && !endpoint_equal(&old->pair.forward.source, &f->source))
		ct_clear(fw, &old->pair.forward.source, &old->pair.forward.local);
	slot_drop(fw, p);
	err = ct_create(fw, p);
	if (err)
		return log_errno(err, "%s: conntrack entry %s -> port %u -> %s", __func__,
				 caller, f->local.port, callee);
	/* The kernel picks another NAT port if ours is taken; then the entry
	 * would forward from the wrong port, so it must go. */
	err = ct_get(fw, &f->source, &f->local, &e);
	if (!err && !ct_entry_is_pair(&e, p)) {
		ct_clear(fw, &f->source, &f->local);
		err = -EADDRINUSE;
	}
	if (err)
		return log_errno(err, "%s: conntrack entry %s -> port %u -> %s not as created",
				 __func__, caller, f->local.port, callee);
	if (!slot_get(fw, p)) {
		ct_clear(fw, &f->source, &f->local);
		return -ENOMEM;
	}
	log_debug("conntrack: %s -> port %u, port %u -> %s", caller, f->local.port,
		  f->out_local.port, callee);
	return 0;
}

/* Reads the pair's entry; -ENOENT also when what holds its tuple is not our
 * entry (it expired and a packet made a plain one). */
static int ct_read_entry(struct forward *fw, const struct forward_pair *p, struct ct_entry *e)
{
	int err = pair_check(fw, p);

	if (!err)
		err = ct_get(fw, &p->forward.source, &p->forward.local, e);
	if (!err && !ct_entry_is_pair(e, p))
		err = -ENOENT;
	return err;
}

static int ct_read_pair(struct forward *fw, const struct forward_pair *p,
			struct forward_counters *fwd, struct forward_counters *back)
{
	struct ct_entry e;
	int err = ct_read_entry(fw, p, &e);

	if (!err)
		err = ct_refresh(fw, &p->forward);
	if (err == -ENOENT && !pair_check(fw, p))
		slot_drop(fw, p);
	if (err)
		return err;
	fill_counters(fw, p, &e, fwd, back);
	return 0;
}

static int ct_remove_pair(struct forward *fw, const struct forward_pair *p,
			  struct forward_counters *fwd, struct forward_counters *back)
{
	struct ct_entry e;
	int err = ct_read_entry(fw, p, &e);

	if (err && err != -ENOENT)
		return err;
	if (!err) {
		fill_counters(fw, p, &e, fwd, back);
		err = ct_clear(fw, &p->forward.source, &p->forward.local);
		if (err)
			return log_errno(err, "%s: port %u", __func__, p->forward.local.port);
	}
	if (!pair_check(fw, p))
		slot_drop(fw, p);
	return err;
}

static int ct_foreach_adopted(struct forward *fw,
			      void (*fn)(void *ctx, const struct forward_pair *pair,
					 const struct forward_counters *forward,
					 const struct forward_counters *backward),
			      void *ctx)
{
	for (size_t i = 0; i < fw->adopted_count; i++)
		fn(ctx, &fw->adopted[i].pair, &fw->adopted[i].fwd, &fw->adopted[i].back);
	return 0;
}

/* Takes over the entries a previous relay left: they get slots, so reads
 * and removals work at once, and are listed for foreach_adopted. */
static int ct_adopt(struct forward *fw)
{
	struct ct_list list = { 0 };
	int err = ct_dump_ours(fw, &list);

	if (!err && list.count)
		fw->adopted = calloc(list.count, sizeof(*fw->adopted));
	if (!err && list.count && !fw->adopted)
		err = -ENOMEM;
	for (size_t i = 0; !err && i < list.count; i++) {
		struct ct_adopted *a = &fw->adopted[fw->adopted_count];
		const struct ct_entry *e = &list.items[i];

		if (!ct_entry_ours(fw, e))
			continue;
		ct_pair_from_entry(e, &a->pair);
		if (*slot_ref(fw, &a->pair)) {
			log_warn("conntrack: two entries for port %u; adopting the first",
				 e->orig_dst.port);
			continue;
		}
		fill_counters(fw, &a->pair, e, &a->fwd, &a->back);
		fw->adopted_count++;
	}
	free(list.items);
	return err;
}

/* Destroys every entry of ours (clean exit). */
static void ct_remove_all(struct forward *fw)
{
	struct ct_list list = { 0 };
	size_t removed = 0;
	int err = ct_dump_ours(fw, &list);

	if (err)
		log_errno(err, "%s: listing conntrack entries", __func__);
	for (size_t i = 0; i < list.count; i++) {
		if (!ct_entry_ours(fw, &list.items[i]))
			continue;
		err = ct_clear(fw, &list.items[i].orig_src, &list.items[i].orig_dst);
		if (err)
			log_errno(err, "%s: port %u", __func__, list.items[i].orig_dst.port);
		else
			removed++;
	}
	free(list.items);
	log_info("conntrack: removed %zu forwarding entries", removed);
}

static void ct_free(struct forward *fw)
{
	if (fw->slots)
		for (size_t i = 0; i <= (size_t)(fw->port_max - fw->port_min); i++)
			free(fw->slots[i]);
	free(fw->slots);
	free(fw->adopted);
	if (fw->h)
		nfct_close(fw->h);
	free(fw);
}

/* A netlink socket, and a lookup that must answer "no such entry". */
static int ct_netlink_open(struct forward *fw, char *why, size_t whylen)
{
	struct forward_endpoint probe = { fw->relay_ip, 0 };
	struct ct_entry e;
	int err;

	fw->h = nfct_open(CONNTRACK, 0);
	if (!fw->h) {
		err = errno ? -errno : -EIO;
		snprintf(why, whylen, "ctnetlink not available: %s", strerror(-err));
		return err;
	}
	nfct_callback_register(fw->h, NFCT_T_ALL, ct_callback, fw);
	err = ct_get(fw, &probe, &probe, &e);
	if (err == -ENOENT || !err)
		return 0;
	snprintf(why, whylen, "ctnetlink not available: %s%s", strerror(-err),
		 err == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
	return err;
}

static int ct_open_options(struct forward *fw, const struct forward_options *opts,
			   char *why, size_t whylen)
{
	char table_default[NFT_TABLE_NAME_MAX + 1], ip[INET6_ADDRSTRLEN];
	const char *table = opts->nft_table;

	if (opts->relay_ip.family != AF_INET && opts->relay_ip.family != AF_INET6) {
		snprintf(why, whylen, "no relay address");
		return -EINVAL;
	}
	if (!table || !*table) {
		/* One table per relay address: relays sharing a host must not
		 * delete each other's table on a clean exit. */
		net_addr_format(&opts->relay_ip, ip, sizeof(ip));
		for (char *c = ip; *c; c++)
			if (*c == '.' || *c == ':')
				*c = '_';
		snprintf(table_default, sizeof(table_default), CT_DEFAULT_TABLE "_%s", ip);
		table = table_default;
	}
	if (!nft_table_name_valid(table)) {
		snprintf(why, whylen, "invalid nftables table name \"%s\"", table);
		return -EINVAL;
	}
	if (opts->port_min > opts->port_max) {
		snprintf(why, whylen, "empty port range");
		return -EINVAL;
	}
	fw->relay_ip = opts->relay_ip;
	fw->port_min = opts->port_min;
	fw->port_max = opts->port_max;
	snprintf(fw->table, sizeof(fw->table), "%s", table);
	fw->slots = calloc((size_t)(fw->port_max - fw->port_min) + 1, sizeof(*fw->slots));
	return fw->slots ? 0 : -ENOMEM;
}

static int ct_open(struct forward **out, const struct forward_options *opts,
		   char *why, size_t whylen)
{
	struct forward *fw = calloc(1, sizeof(*fw));
	bool existed = false, created = false;
	char nft_why[256];
	int err;

	if (!fw)
		return -ENOMEM;
	err = ct_open_options(fw, opts, why, whylen);
	if (!err)
		err = ct_netlink_open(fw, why, whylen);
	if (!err)
		err = check_forwarding(&fw->relay_ip, why, whylen);
	if (!err) {
		struct nft_table_spec spec = {
			.name = fw->table, .ct_mark = CT_MARK, .relay_ip = &fw->relay_ip,
			.port_min = fw->port_min, .port_max = fw->port_max,
		};

		err = nft_table_ensure(&spec, &existed, nft_why, sizeof(nft_why));
		if (err)
			snprintf(why, whylen, "cannot create nftables table inet %s: %s",
				 fw->table, nft_why);
		created = !err && !existed;
	}
	if (!err)
		err = enable_accounting(why, whylen);
	if (!err) {
		err = ct_adopt(fw);
		if (err)
			snprintf(why, whylen, "cannot list conntrack entries: %s", strerror(-err));
	}
	if (err) {
		if (created)
			nft_table_delete(fw->table);
		ct_free(fw);
		return err;
	}
	log_info("conntrack: %s nftables table inet %s, adopted %zu forwarding entries",
		 existed ? "adopted" : "created", fw->table, fw->adopted_count);
	*out = fw;
	return 0;
}

static void ct_close(struct forward *fw, enum forward_close_mode mode)
{
	if (!fw)
		return;
	if (mode == FORWARD_CLOSE_CLEAN) {
		/* Entries first: without the table their NAT would stop
		 * applying and packets would reach the relay's sockets. */
		ct_remove_all(fw);
		if (!nft_table_delete(fw->table))
			log_info("conntrack: removed nftables table inet %s", fw->table);
	} else {
		log_info("conntrack: leaving forwarding entries and nftables table inet %s "
			 "in place", fw->table);
	}
	ct_free(fw);
}

const struct forward_backend forward_conntrack_backend = {
	.name = "conntrack",
	.open = ct_open,
	.add_pair = ct_add_pair,
	.read_pair = ct_read_pair,
	.remove_pair = ct_remove_pair,
	.foreach_adopted = ct_foreach_adopted,
	.close = ct_close,
	.in_kernel = true,
};
